"""DuckDB SQL over the tick store (for ``hftlab data sql``).

Three relations are defined over the stored day files (and nothing else in the store
folder: files being written live in ``.staging`` and are never listed):

* ``events`` — every stored event as stored (kinds, sides and flags as numbers, prices in
  ticks, sizes in lots) plus ``venue``, ``symbol`` and ``date``;
* ``events_named`` — the same rows as ``hftlab data dump`` shows them: ``kind``, ``side``
  and ``flags`` as names, ``price`` and ``qty`` in real units;
* ``days`` — one row per stored day: ``venue``, ``symbol``, ``date``, ``rows``, ``bytes``,
  the instrument's ``tick_size``, ``lot_size``, ``currency``, and the file's ``path``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from framework.core.errors import ConfigError
from framework.core.events import FLAG_NAMES, KIND_NAMES, SIDE_NAMES
from framework.store.schema import ARROW_SCHEMA

if TYPE_CHECKING:
    from framework.store.tickstore import TickStore

#: what ``hftlab data sql --help`` and the error for an unknown table list
RELATIONS = (
    "events (as stored: codes, ticks, lots; plus venue, symbol, date), "
    "events_named (kind, side, flags as names; price, qty in real units, like `data dump`), "
    "days (venue, symbol, date, rows, bytes, tick_size, lot_size, currency, path)"
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _case(column: str, names: dict[int, str]) -> str:
    whens = " ".join(f"WHEN {code} THEN {_quote(name)}" for code, name in names.items())
    return f"CASE {column} {whens} ELSE CAST({column} AS VARCHAR) END"


def _flag_names(column: str) -> str:
    parts = ", ".join(
        f"CASE WHEN ({column} & {bit}) <> 0 THEN {_quote(name)} END"
        for bit, name in FLAG_NAMES.items()
    )
    return f"concat_ws('|', {parts})"


def _days_table(store: TickStore) -> pa.Table:
    """The ``days`` relation, from the files' metadata (a corrupt file is named here)."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "venue",
            "symbol",
            "date",
            "rows",
            "bytes",
            "tick_size",
            "lot_size",
            "price_decimals",
            "qty_decimals",
            "currency",
            "path",
        )
    }
    for key in store.keys():  # noqa: SIM118 (a method, not a dict)
        info = store.info(key.venue, key.symbol, key.date)
        inst = info.instrument
        for name, value in (
            ("venue", key.venue),
            ("symbol", key.symbol),
            ("date", key.date),
            ("rows", info.rows),
            ("bytes", info.bytes_on_disk),
            ("tick_size", float(inst.tick_size)),
            ("lot_size", float(inst.lot_size)),
            ("price_decimals", inst.price_decimals),
            ("qty_decimals", inst.qty_decimals),
            ("currency", inst.currency),
            ("path", str(info.path)),
        ):
            cols[name].append(value)
    types = {
        "venue": pa.string(),
        "symbol": pa.string(),
        "date": pa.date32(),
        "rows": pa.int64(),
        "bytes": pa.int64(),
        "tick_size": pa.float64(),
        "lot_size": pa.float64(),
        "price_decimals": pa.int32(),
        "qty_decimals": pa.int32(),
        "currency": pa.string(),
        "path": pa.string(),
    }
    return pa.table({k: pa.array(v, type=types[k]) for k, v in cols.items()})


def run_sql(store: TickStore, query: str) -> Any:
    """Run ``query`` over the store's relations; returns a polars DataFrame."""
    import duckdb
    import polars as pl

    days = _days_table(store)
    con = duckdb.connect()
    try:
        con.register("_days", days)
        con.execute(
            "CREATE VIEW days AS SELECT * EXCLUDE (price_decimals, qty_decimals) FROM _days"
        )
        if days.num_rows:
            files = ", ".join(_quote(p) for p in days.column("path").to_pylist())
            con.execute(
                "CREATE VIEW events AS SELECT * EXCLUDE (filename), "
                "split_part(filename, '/', -3) AS venue, "
                "split_part(filename, '/', -2) AS symbol, "
                "CAST(replace(split_part(filename, '/', -1), '.parquet', '') AS DATE) AS date "
                f"FROM read_parquet([{files}], filename=true)"
            )
        else:  # an empty store: the same views, with no rows
            empty = ARROW_SCHEMA.empty_table()
            for name, typ in (("venue", pa.string()), ("symbol", pa.string())):
                empty = empty.append_column(name, pa.array([], type=typ))
            empty = empty.append_column("date", pa.array([], type=pa.date32()))
            con.register("_no_events", empty)
            con.execute("CREATE VIEW events AS SELECT * FROM _no_events")
        con.execute(
            "CREATE VIEW events_named AS SELECT e.venue, e.symbol, e.date, "
            "e.exch_ts, e.local_ts, "
            f"{_case('e.kind', KIND_NAMES)} AS kind, "
            f"{_case('e.side', SIDE_NAMES)} AS side, "
            "round(e.price * d.tick_size, d.price_decimals) AS price, "
            "round(e.qty * d.lot_size, d.qty_decimals) AS qty, "
            f"e.order_id, {_flag_names('e.flags')} AS flags "
            "FROM events e JOIN _days d USING (venue, symbol, date)"
        )
        try:
            rel = con.sql(query)
            return pl.DataFrame() if rel is None else rel.pl()
        except duckdb.Error as exc:
            msg = f"SQL failed: {exc}".splitlines()[0]
            if isinstance(exc, duckdb.CatalogException):
                msg += f" (relations: {RELATIONS})"
            raise ConfigError(msg) from exc
    finally:
        con.close()
