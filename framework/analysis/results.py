"""What a backtest hands to analysis: :class:`BacktestResult`, a set of polars tables.

All timestamps are int64 ns since the epoch (UTC); prices and quantities are in real units
(float64), not ticks or lots. The engine builds one result per run, its tables written to
Parquet files as it runs (:mod:`framework.analysis.sink`) and read from them on first use;
:meth:`BacktestResult.write` stores a result as one Parquet file per table plus
``summary.json`` and :meth:`BacktestResult.read` opens it again.

Conventions the engine follows (and the report relies on):

- ``equity`` holds one row set per strategy plus a row set named :data:`TOTAL` (the sum over
  strategies, same timestamps). If ``TOTAL`` is missing, analysis sums the strategies itself.
- ``config`` may carry tick sizes for the spread histogram, either as
  ``{"tick_sizes": {"XNAS/AAPL": 0.01}}`` or as ``{"instruments": [Instrument.to_dict(), ...]}``
  (a list, or a dict keyed by ``VENUE/SYMBOL``); see :func:`tick_sizes`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import polars as pl
import pyarrow.parquet as pq

from framework.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    from framework.analysis.tally import Tally

#: Strategy name of the equity rows that sum every strategy.
TOTAL = "TOTAL"

#: Column names and dtypes of every table (extra columns are kept as they are).
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "orders": {
        "order_id": pl.UInt64(),
        "strategy": pl.String(),
        "instrument": pl.String(),
        "side": pl.Int8(),
        "order_type": pl.String(),
        "tif": pl.String(),
        "price": pl.Float64(),
        "qty": pl.Float64(),
        "submit_ts": pl.Int64(),
        "status": pl.String(),
        "filled_qty": pl.Float64(),
        "avg_price": pl.Float64(),
        "reason": pl.String(),
    },
    "fills": {
        "ts": pl.Int64(),
        "exch_ts": pl.Int64(),
        "strategy": pl.String(),
        "instrument": pl.String(),
        "order_id": pl.UInt64(),
        "side": pl.Int8(),
        "price": pl.Float64(),
        "qty": pl.Float64(),
        "liquidity": pl.String(),
        "fee": pl.Float64(),
        "position": pl.Float64(),
    },
    "equity": {
        "ts": pl.Int64(),
        "strategy": pl.String(),
        "equity": pl.Float64(),
        "cash": pl.Float64(),
        "fees": pl.Float64(),
        "position_value": pl.Float64(),
    },
    "positions": {
        "ts": pl.Int64(),
        "strategy": pl.String(),
        "instrument": pl.String(),
        "position": pl.Float64(),
        "mid": pl.Float64(),
    },
    "denials": {
        "ts": pl.Int64(),
        "strategy": pl.String(),
        "instrument": pl.String(),
        "side": pl.Int8(),
        "price": pl.Float64(),
        "qty": pl.Float64(),
        "reason": pl.String(),
    },
    "market": {
        "ts": pl.Int64(),
        "instrument": pl.String(),
        "bid": pl.Float64(),
        "ask": pl.Float64(),
    },
    # a histogram: the mean latency of each bucket and how many fell in it
    "latency": {"kind": pl.String(), "ns": pl.Int64(), "count": pl.Int64()},
}
TABLES: tuple[str, ...] = tuple(SCHEMAS)
SUMMARY_FILE = "summary.json"
_SCALARS = ("events", "wall_seconds", "start_ts", "end_ts", "config")


def empty_table(name: str) -> pl.DataFrame:
    """An empty table with the columns and dtypes of table ``name``."""
    return pl.DataFrame(schema=SCHEMAS[name])


def _wrong_dtypes(name: str, schema: Mapping[str, pl.DataType], where: str) -> list[str]:
    """Columns of table ``name`` whose dtype in ``schema`` differs from :data:`SCHEMAS`;
    a missing column is a :class:`DataError` naming ``where`` the table came from."""
    want = SCHEMAS[name]
    missing = [c for c in want if c not in schema]
    if missing:
        msg = (
            f"{where} lacks column(s) {missing}; it needs {list(want)} "
            "(build it with these names or start from analysis.results.empty_table)"
        )
        raise DataError(msg)
    return [c for c, t in want.items() if schema[c] != t]


def _casts(name: str, wrong: list[str]) -> list[pl.Expr]:
    return [pl.col(c).cast(SCHEMAS[name][c], strict=True) for c in wrong]


def _conform(name: str, df: pl.DataFrame | None) -> pl.DataFrame:
    """Check that ``df`` has table ``name``'s columns and cast them to its dtypes."""
    if df is None:
        return empty_table(name)
    if not isinstance(df, pl.DataFrame):
        msg = f"BacktestResult.{name} must be a polars DataFrame, not {type(df).__name__}"
        raise DataError(msg)
    wrong = _wrong_dtypes(name, df.schema, f"BacktestResult.{name}")
    if not wrong:
        return df
    try:
        return df.with_columns(_casts(name, wrong))
    except pl.exceptions.PolarsError as exc:
        msg = (
            f"BacktestResult.{name} column(s) {wrong} cannot be cast to "
            f"{[str(SCHEMAS[name][c]) for c in wrong]} ({exc}); fix the engine's recorder"
        )
        raise DataError(msg) from exc


class TableFiles:
    """The Parquet file of each of a result's tables.

    A folder given as ``temp_dir`` belongs to these files alone: it is deleted when the last
    result using them is gone (a run without an output folder writes its tables there).
    Each file is identified as it is now (:meth:`path` refuses one replaced since): a result
    read lazily from a folder must not show another run's tables written there later.
    """

    def __init__(self, paths: Mapping[str, Path], *, temp_dir: Path | None = None) -> None:
        self.paths = {name: Path(p) for name, p in paths.items()}
        self.temp_dir = temp_dir
        self._ids = {name: _file_id(p) for name, p in self.paths.items()}
        if temp_dir is not None:
            weakref.finalize(self, shutil.rmtree, str(temp_dir), ignore_errors=True)

    def path(self, name: str) -> Path:
        """The file of table ``name``, checked to be the one this result was made with."""
        p = self.paths[name]
        if _file_id(p) != self._ids[name]:
            msg = (
                f"{p} was replaced or changed after this result was made (another run wrote "
                "to the folder?); read it again with BacktestResult.read"
            )
            raise DataError(msg)
        return p


def _file_id(path: Path) -> tuple[int, ...] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Table:
    """A table of :class:`BacktestResult`: read from its file on first use, then kept."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Table: ...

    @overload
    def __get__(self, obj: BacktestResult, owner: type | None = None) -> pl.DataFrame: ...

    def __get__(
        self, obj: BacktestResult | None, owner: type | None = None
    ) -> pl.DataFrame | _Table:
        return self if obj is None else obj.table(self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        msg = f"BacktestResult.{self.name} is read-only; build a new BacktestResult"
        raise AttributeError(msg)


#: Rows per batch when a table is read from its file a part at a time.
BATCH_ROWS = 1 << 17


class BacktestResult:
    """Everything a backtest run produced, as polars tables (see the module docstring).

    Tables are given as DataFrames or, with ``files``, live in Parquet files and are read on
    first use (:meth:`scan` and :meth:`batches` read them without loading them whole, which
    is what statistics and the report do). Tables left out are empty; columns are checked
    and cast to :data:`SCHEMAS` (extra columns are kept). ``tally`` carries statistics the
    engine accumulated while it wrote the tables (:class:`framework.analysis.tally.Tally`).
    Read-only; compared by identity: tables have no truth value.
    """

    orders = _Table()
    fills = _Table()
    equity = _Table()
    positions = _Table()
    denials = _Table()
    market = _Table()
    latency = _Table()
    events: int
    wall_seconds: float
    start_ts: int
    end_ts: int
    config: dict[str, Any]
    tally: Tally | None
    _frames: dict[str, pl.DataFrame]  #: tables given or already read
    _filed: list[str]  #: tables that live in a file (of _files)
    _casts: dict[str, list[pl.Expr]]  #: per file: casts to the table's dtypes
    _files: TableFiles | None

    def __init__(
        self,
        *,
        orders: pl.DataFrame | None = None,
        fills: pl.DataFrame | None = None,
        equity: pl.DataFrame | None = None,
        positions: pl.DataFrame | None = None,
        denials: pl.DataFrame | None = None,
        market: pl.DataFrame | None = None,
        latency: pl.DataFrame | None = None,
        events: int = 0,
        wall_seconds: float = 0.0,
        start_ts: int = 0,
        end_ts: int = 0,
        config: dict[str, Any] | None = None,
        files: TableFiles | None = None,
        tally: Tally | None = None,
    ) -> None:
        given = {
            "orders": orders,
            "fills": fills,
            "equity": equity,
            "positions": positions,
            "denials": denials,
            "market": market,
            "latency": latency,
        }
        frames = {name: _conform(name, df) for name, df in given.items() if df is not None}
        filed: list[str] = []
        casts: dict[str, list[pl.Expr]] = {}
        for name, path in (files.paths if files is not None else {}).items():
            if name in TABLES and name not in frames:
                filed.append(name)
                casts[name] = _casts(name, _wrong_dtypes(name, _file_schema(path), str(path)))
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            msg = f"BacktestResult.config must be a dict, not {type(config).__name__}"
            raise ConfigError(msg)
        for key, value in (
            ("_frames", frames),
            ("_filed", filed),
            ("_casts", casts),
            ("_files", files),  # keeps a temporary folder alive while this result lives
            ("events", events),
            ("wall_seconds", wall_seconds),
            ("start_ts", start_ts),
            ("end_ts", end_ts),
            ("config", config),
            ("tally", tally),
        ):
            object.__setattr__(self, key, value)

    def __setattr__(self, name: str, value: Any) -> None:
        msg = f"BacktestResult is read-only (tried to set {name}); build a new BacktestResult"
        raise AttributeError(msg)

    # --- tables ------------------------------------------------------------------------
    def table(self, name: str) -> pl.DataFrame:
        """Table ``name`` as a DataFrame (read from its file the first time)."""
        frames = self._frames
        df = frames.get(name)
        if df is None:
            path = self.file(name)
            if path is None:
                df = empty_table(name)
            else:
                try:
                    df = self.scan(name).collect()
                except (OSError, pl.exceptions.PolarsError) as exc:
                    msg = f"{path} cannot be read as Parquet ({exc}); the file may be corrupt"
                    raise DataError(msg) from exc
            frames[name] = df
        return df

    def file(self, name: str) -> Path | None:
        """The Parquet file table ``name`` is read from, or None when it was given in memory."""
        if name not in SCHEMAS:
            msg = f"a backtest result has no table {name!r}; its tables are {list(TABLES)}"
            raise KeyError(msg)
        if name not in self._filed or self._files is None:
            return None
        return self._files.path(name)

    def scan(self, name: str) -> pl.LazyFrame:
        """Table ``name`` as a lazy frame: a query over it reads only what it needs."""
        frames = self._frames
        if name in frames:
            return frames[name].lazy()
        path = self.file(name)
        if path is None:
            return empty_table(name).lazy()
        lf = pl.scan_parquet(path)
        casts = self._casts[name]
        return lf.with_columns(casts) if casts else lf

    def batches(self, name: str, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        """Table ``name`` a part at a time, in row order (memory bounded by one part)."""
        frames = self._frames
        path = self.file(name)
        if name in frames or path is None:
            df = self.table(name)
            yield df if columns is None else df.select(columns)
            return
        casts = self._casts[name]
        if columns is not None:
            casts = [c for c in casts if c.meta.output_name() in columns]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            df = pl.DataFrame(pl.from_arrow(batch))
            yield df.with_columns(casts) if casts else df

    def rows(self, name: str) -> int:
        """Rows of table ``name`` (from the file's metadata when it is not loaded)."""
        frames = self._frames
        if name in frames:
            return frames[name].height
        path = self.file(name)
        return 0 if path is None else int(pq.ParquetFile(path).metadata.num_rows)

    # --- views -------------------------------------------------------------------------
    def _names(self, column: str, tables: tuple[str, ...]) -> set[str]:
        names: set[str] = set()
        for name in tables:
            if self.tally is not None and name in self.tally.tables:
                names.update(self.tally.names(name, column))
            else:
                got = self.scan(name).select(pl.col(column).unique()).collect()
                names.update(got[column].to_list())
        names.discard("")
        return names

    @property
    def strategies(self) -> list[str]:
        """Names of the strategies that appear anywhere in the result (``TOTAL`` excluded)."""
        names = self._names("strategy", ("orders", "fills", "equity", "positions", "denials"))
        names.discard(TOTAL)
        return sorted(names)

    @property
    def instruments(self) -> list[str]:
        """``VENUE/SYMBOL`` of every instrument that appears in the result."""
        return sorted(
            self._names("instrument", ("orders", "fills", "positions", "denials", "market"))
        )

    def scalars(self) -> dict[str, Any]:
        """The non-table fields, JSON-ready."""
        return {
            "events": int(self.events),
            "wall_seconds": float(self.wall_seconds),
            "start_ts": int(self.start_ts),
            "end_ts": int(self.end_ts),
            "config": dict(self.config),
        }

    # --- persistence -------------------------------------------------------------------
    def write(self, out_dir: str | os.PathLike[str], *, stats: bool = True) -> Path:
        """Write each table as ``<name>.parquet`` and the scalars as ``summary.json``.

        ``summary.json`` also holds the statistics of :func:`framework.analysis.stats.summarize`
        (per strategy and total) under ``"stats"`` unless ``stats=False``. Each file is written
        to a temporary name and renamed into place, so readers never see half a file. A table
        that already lives in a Parquet file is linked (copied across file systems), not
        written again; one already in place in ``out_dir`` is left as it is.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary = self.scalars()
        if stats:
            from framework.analysis.stats import summarize_all

            summary["stats"] = _json_safe(summarize_all(self))
        try:
            text = json.dumps(summary, indent=2, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            msg = f"BacktestResult.config is not JSON-able ({exc}); keep it to plain values"
            raise ConfigError(msg) from exc
        staged: list[tuple[Path, Path]] = []
        try:
            for name in TABLES:
                final = out / f"{name}.parquet"
                src = self.file(name)
                if src is not None and final.exists() and os.path.samefile(src, final):
                    continue
                tmp = out / f".tmp-{uuid.uuid4().hex}-{final.name}"
                staged.append((tmp, final))
                if src is not None:
                    _link_or_copy(src, tmp)
                else:
                    self.table(name).write_parquet(tmp, compression="zstd")
            final = out / SUMMARY_FILE
            tmp = out / f".tmp-{uuid.uuid4().hex}-{SUMMARY_FILE}"
            staged.append((tmp, final))
            tmp.write_text(text + "\n", encoding="utf-8")
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        for tmp, final in staged:
            os.replace(tmp, final)
        return out

    @classmethod
    def read(cls, out_dir: str | os.PathLike[str]) -> BacktestResult:
        """A result written by :meth:`write`; its tables are read from the files on first use."""
        out = Path(out_dir)
        path = out / SUMMARY_FILE
        if not path.is_file():
            msg = f"{path} not found; is {out} a directory written by BacktestResult.write?"
            raise DataError(msg)
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"{path} is not valid JSON ({exc}); the result directory may be corrupt"
            raise DataError(msg) from exc
        missing = [k for k in _SCALARS if k not in summary]
        if missing:
            msg = f"{path} lacks {missing}; it was not written by BacktestResult.write"
            raise DataError(msg)
        files: dict[str, Path] = {}
        for name in TABLES:
            p = out / f"{name}.parquet"
            if not p.is_file():
                msg = f"{p} not found; the result directory {out} is incomplete"
                raise DataError(msg)
            files[name] = p
        return cls(files=TableFiles(files), **{k: summary[k] for k in _SCALARS})


def _file_schema(path: Path) -> dict[str, pl.DataType]:
    try:
        return dict(pl.read_parquet_schema(path))
    except (OSError, pl.exceptions.PolarsError) as exc:
        msg = f"{path} cannot be read as Parquet ({exc}); the file may be corrupt"
        raise DataError(msg) from exc


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` becomes the same file as ``src``: a hard link, or a copy where links fail
    (another file system)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def tick_sizes(config: Mapping[str, Any]) -> dict[str, float]:
    """Tick size per ``VENUE/SYMBOL`` found in a run's config (empty if none is given)."""
    out: dict[str, float] = {}
    direct = config.get("tick_sizes")
    if isinstance(direct, Mapping):
        for key, value in direct.items():
            _put_tick(out, str(key), value)
    insts = config.get("instruments")
    items: list[tuple[str | None, Any]] = []
    if isinstance(insts, Mapping):
        items = [(str(k), v) for k, v in insts.items()]
    elif isinstance(insts, list | tuple):
        items = [(None, v) for v in insts]
    for key, spec in items:
        if not isinstance(spec, Mapping) or "tick_size" not in spec:
            continue
        name = key
        if name is None and "venue" in spec and "symbol" in spec:
            name = f"{spec['venue']}/{spec['symbol']}"
        if name is not None:
            _put_tick(out, name, spec["tick_size"])
    return out


def _put_tick(out: dict[str, float], key: str, value: Any) -> None:
    try:
        tick = float(value)
    except (TypeError, ValueError):
        return
    if math.isfinite(tick) and tick > 0:
        out[key] = tick


def _json_safe(value: Any) -> Any:
    """NaN and infinities become ``None`` (JSON has no NaN); containers are walked."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
