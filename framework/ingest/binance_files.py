"""NautilusTrader's Binance fixtures: depth CSV, trades and quotes Parquet.

NautilusTrader depth CSV
    Columns ``symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty[,pu]``;
    ms timestamps (``local_ts = exch_ts``); each row -> ``KIND_LEVEL`` (``b`` BUY, ``a``
    SELL); ``snap`` rows get ``FLAG_SNAPSHOT`` and a run of them starts with an implied
    ``KIND_CLEAR``; rows sharing ``(timestamp, last_update_id)`` are one message;
    ``order_id = last_update_id``. Venue ``BINANCE_USDM`` when a ``pu`` column is present.

NautilusTrader Parquet: trades (``timestamp,trade_id,price,quantity,buyer_maker``) ->
    ``KIND_TRADE`` (buyer maker: SELL aggressor), quotes (``timestamp,symbol,ask_size,ask,
    bid_size,bid``) -> two ``KIND_BBO``. Venue ``BINANCE``; symbol from the ``symbol``
    column (``BTC/USDT`` -> ``BTCUSDT``) or the file name (``btcusdt-trades`` -> ``BTCUSDT``).
    Float columns are snapped to the coarsest decimal grid (<= 12 places) they sit on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.core.errors import FormatError
from framework.core.events import (
    BUY,
    FLAG_SNAPSHOT,
    KIND_BBO,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
)
from framework.ingest.assemble import Batch, make_batch, runs_start, snapshot_groups
from framework.ingest.base import ImportOptions, ImportReport, printable_name
from framework.ingest.binance_market import clean_symbol, market_is_usdm, quote_currency
from framework.ingest.csv_text import LINE, drop_rows, int_column, read_csv_text
from framework.ingest.decimal_text import I64, Scaled, floats_to_scaled, parse_decimals

_MS_LIMIT = (1 << 63) // 1_000_000  # ms times that still fit int64 ns
NAUTILUS_DEPTH_COLS = ("symbol", "timestamp", "first_update_id", "last_update_id", "side",
                       "update_type", "price", "qty")


def _sides(df: pl.DataFrame) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_],
                                       npt.NDArray[np.bool_]]:
    """Side (BUY/SELL, 0 unknown), snapshot flag and "side and update_type are known"."""
    side = df["side"].str.strip_chars().str.to_lowercase().replace_strict(
        {"b": BUY, "bid": BUY, "a": SELL, "ask": SELL}, default=0, return_dtype=pl.Int8
    ).to_numpy()
    utype = df["update_type"].str.strip_chars().str.to_lowercase().to_numpy()
    snap = utype == "snap"
    return side, snap, (side != 0) & (snap | (utype == "set"))


def import_nautilus_depth(
    path: Path, data: bytes, opts: ImportOptions, report: ImportReport
) -> list[Batch]:
    df = read_csv_text(path, data, report)
    missing = [c for c in NAUTILUS_DEPTH_COLS if c not in df.columns]
    if missing:
        msg = (f"{path}: NautilusTrader depth CSV lacks column(s) {missing}; expected "
               f"{','.join(NAUTILUS_DEPTH_COLS)}[,pu]")
        raise FormatError(msg)
    _, bad = int_column(df, "timestamp")
    _, bad2 = int_column(df, "last_update_id")
    df = drop_rows(df, bad | bad2, report, "unparseable timestamp or update id", damaged=True)
    ts, _ = int_column(df, "timestamp")
    lid, _ = int_column(df, "last_update_id")
    df = drop_rows(df, (ts < 0) | (ts >= _MS_LIMIT) | (lid < 0), report,
                   "timestamp or update id out of range", damaged=True)
    side, snap, known = _sides(df)
    df = drop_rows(df, ~known, report, "unknown side or update_type", damaged=True)
    ts, _ = int_column(df, "timestamp")
    lid, _ = int_column(df, "last_update_id")
    side, snap, _ = _sides(df)
    report.rows_imported = (report.rows_imported or 0) + df.height
    futures = market_is_usdm(opts, "pu" in df.columns, path.name) if "pu" in df.columns or \
        opts.get("market") else False
    batches = []
    syms = df["symbol"].str.strip_chars().str.to_uppercase().to_numpy()
    lines = df[LINE].to_numpy()
    for sym in dict.fromkeys(syms.tolist()):
        m = syms == sym
        n = int(m.sum())
        t_ns = ts[m] * 1_000_000
        oid = lid[m].astype(np.uint64)
        new = np.ones(n, np.bool_)
        new[1:] = (t_ns[1:] != t_ns[:-1]) | (oid[1:] != oid[:-1])
        msg_no = np.cumsum(new, dtype=np.int64)
        rows = np.arange(n, dtype=np.int64)
        sub = df.filter(pl.Series(m))
        levels = {
            "local_ts": t_ns, "exch_ts": t_ns, "price": parse_decimals(sub["price"]),
            "qty": parse_decimals(sub["qty"]), "order_id": oid, "kind": np.full(n, KIND_LEVEL),
            "side": side[m], "flags": np.where(snap[m], FLAG_SNAPSHOT, 0), "msg": msg_no,
            "pos": 2 * rows + 1, "line": lines[m],
        }
        clears = snapshot_groups(n=n, snap=snap[m], msg=msg_no, local_ts=t_ns, exch_ts=t_ns,
                                 order_id=oid)
        clears["line"] = lines[m][runs_start(snap[m])]
        batches.append(make_batch(
            venue="BINANCE_USDM" if futures else "BINANCE", symbol=clean_symbol(sym),
            currency=quote_currency(clean_symbol(sym)), source=str(path), groups=[clears, levels]))
    return batches


def _ts_column_ns(col: Any) -> tuple[I64, npt.NDArray[np.bool_]]:
    """A Parquet timestamp column (or integer s/ms/us/ns by magnitude) as epoch ns."""
    import pyarrow as pa

    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ns", tz=col.type.tz))
    arr = col.cast(pa.int64()).to_numpy(zero_copy_only=False)
    bad = col.is_null().to_numpy(zero_copy_only=False)
    arr = np.where(bad, 0, arr).astype(np.int64)
    if not pa.types.is_timestamp(col.type) and len(arr):
        mx = int(np.abs(arr).max())
        arr = arr * (1 if mx > 10**17 else 1_000 if mx > 10**14 else
                     1_000_000 if mx > 10**11 else 1_000_000_000)
    return arr, bad


def _number_column(col: Any) -> Scaled:
    import pyarrow as pa

    if pa.types.is_floating(col.type):
        x = col.to_numpy(zero_copy_only=False).astype(np.float64)
        return floats_to_scaled(x)
    if pa.types.is_integer(col.type):
        bad = col.is_null().to_numpy(zero_copy_only=False)
        v = col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return Scaled(v, 0, bad)
    return parse_decimals(pl.Series("x", col.cast(pa.string()).to_pylist(), pl.String))


_TRADE_PQ = ("timestamp", "trade_id", "price", "quantity", "buyer_maker")
_QUOTE_PQ = ("timestamp", "ask_size", "ask", "bid_size", "bid")


def import_parquet(path: Path, opts: ImportOptions, report: ImportReport) -> Batch:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        msg = f"{path}: not a readable Parquet file ({exc})"
        raise FormatError(msg) from exc
    cols = set(t.column_names)
    report.rows_read += t.num_rows
    if "timestamp" not in cols:
        msg = f"{path}: Parquet file has no 'timestamp' column; columns are {sorted(cols)}"
        raise FormatError(msg)
    _, bad_ts = _ts_column_ns(t.column("timestamp"))
    if bad_ts.any():
        report.reject_rows("missing timestamp", int(bad_ts.sum()))
        t = t.filter(pa.array(~bad_ts))
    ts, _ = _ts_column_ns(t.column("timestamp"))
    n = t.num_rows
    report.rows_imported = (report.rows_imported or 0) + n
    rows = np.arange(n, dtype=np.int64)
    base = {"local_ts": ts, "exch_ts": ts, "msg": rows, "flags": np.zeros(n)}
    if set(_TRADE_PQ) <= cols:
        bm_text = pl.Series(t.column("buyer_maker").cast(pa.string()).to_pylist(),
                            dtype=pl.String)
        bm = bm_text.str.to_lowercase().is_in(["true", "1", "t", "yes"]).to_numpy()
        groups = [{**base, "price": _number_column(t.column("price")),
                   "qty": _number_column(t.column("quantity")),
                   "order_id": t.column("trade_id").fill_null(0).to_numpy().astype(np.uint64),
                   "kind": np.full(n, KIND_TRADE), "side": np.where(bm, SELL, BUY),
                   "pos": 2 * rows}]
    elif set(_QUOTE_PQ) <= cols:
        common = {**base, "order_id": np.zeros(n), "kind": np.full(n, KIND_BBO)}
        groups = [
            {**common, "price": _number_column(t.column("bid")),
             "qty": _number_column(t.column("bid_size")), "side": np.full(n, BUY),
             "pos": 2 * rows},
            {**common, "price": _number_column(t.column("ask")),
             "qty": _number_column(t.column("ask_size")), "side": np.full(n, SELL),
             "pos": 2 * rows + 1},
        ]
    else:
        msg = (f"{path}: Parquet columns {sorted(cols)} are neither NautilusTrader trades "
               f"({','.join(_TRADE_PQ)}) nor quotes ({','.join(_QUOTE_PQ)})")
        raise FormatError(msg)
    name = str(t.column("symbol")[0].as_py()) if "symbol" in cols and n else \
        re.split(r"[-_.]", path.name)[0]
    if not printable_name(name):
        msg = f"{path}: the symbol {name!r} holds unprintable characters; pass a clean file"
        raise FormatError(msg)
    symbol = clean_symbol(name)
    return make_batch(venue="BINANCE", symbol=symbol,
                      currency=quote_currency(symbol), source=str(path), groups=groups)
