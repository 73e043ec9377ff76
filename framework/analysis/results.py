"""What a backtest hands to analysis: :class:`BacktestResult`, a set of polars tables.

All timestamps are int64 ns since the epoch (UTC); prices and quantities are in real units
(float64), not ticks or lots. The engine builds one result per run; :meth:`BacktestResult.write`
stores it as one Parquet file per table plus ``summary.json`` and :meth:`BacktestResult.read`
loads it back.

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
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from framework.core.errors import ConfigError, DataError

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
    "latency": {"kind": pl.String(), "ns": pl.Int64()},
}
TABLES: tuple[str, ...] = tuple(SCHEMAS)
SUMMARY_FILE = "summary.json"
_SCALARS = ("events", "wall_seconds", "start_ts", "end_ts", "config")


def empty_table(name: str) -> pl.DataFrame:
    """An empty table with the columns and dtypes of table ``name``."""
    return pl.DataFrame(schema=SCHEMAS[name])


def _conform(name: str, df: pl.DataFrame | None) -> pl.DataFrame:
    """Check that ``df`` has table ``name``'s columns and cast them to its dtypes."""
    if df is None:
        return empty_table(name)
    if not isinstance(df, pl.DataFrame):
        msg = f"BacktestResult.{name} must be a polars DataFrame, not {type(df).__name__}"
        raise DataError(msg)
    schema = SCHEMAS[name]
    missing = [c for c in schema if c not in df.columns]
    if missing:
        msg = (
            f"BacktestResult.{name} lacks column(s) {missing}; it needs {list(schema)} "
            "(build it with these names or start from analysis.results.empty_table)"
        )
        raise DataError(msg)
    wrong = [c for c, t in schema.items() if df.schema[c] != t]
    if not wrong:
        return df
    try:
        return df.with_columns([pl.col(c).cast(schema[c], strict=True) for c in wrong])
    except pl.exceptions.PolarsError as exc:
        msg = (
            f"BacktestResult.{name} column(s) {wrong} cannot be cast to "
            f"{[str(schema[c]) for c in wrong]} ({exc}); fix the engine's recorder"
        )
        raise DataError(msg) from exc


@dataclass(frozen=True, kw_only=True, eq=False)
class BacktestResult:
    """Everything a backtest run produced, as polars tables (see the module docstring).

    Tables left out are empty; columns are checked and cast to :data:`SCHEMAS` on
    construction (extra columns are kept). Compared by identity: tables have no truth value.
    """

    orders: pl.DataFrame = field(default_factory=lambda: empty_table("orders"))
    fills: pl.DataFrame = field(default_factory=lambda: empty_table("fills"))
    equity: pl.DataFrame = field(default_factory=lambda: empty_table("equity"))
    positions: pl.DataFrame = field(default_factory=lambda: empty_table("positions"))
    denials: pl.DataFrame = field(default_factory=lambda: empty_table("denials"))
    market: pl.DataFrame = field(default_factory=lambda: empty_table("market"))
    latency: pl.DataFrame = field(default_factory=lambda: empty_table("latency"))
    events: int = 0
    wall_seconds: float = 0.0
    start_ts: int = 0
    end_ts: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in TABLES:
            object.__setattr__(self, name, _conform(name, getattr(self, name)))
        if not isinstance(self.config, Mapping):
            msg = f"BacktestResult.config must be a dict, not {type(self.config).__name__}"
            raise ConfigError(msg)

    # --- views -------------------------------------------------------------------------
    @property
    def strategies(self) -> list[str]:
        """Names of the strategies that appear anywhere in the result (``TOTAL`` excluded)."""
        names: set[str] = set()
        for name in ("orders", "fills", "equity", "positions", "denials"):
            names.update(getattr(self, name)["strategy"].unique().to_list())
        names.discard(TOTAL)
        names.discard("")
        return sorted(names)

    @property
    def instruments(self) -> list[str]:
        """``VENUE/SYMBOL`` of every instrument that appears in the result."""
        names: set[str] = set()
        for name in ("orders", "fills", "positions", "denials", "market"):
            names.update(getattr(self, name)["instrument"].unique().to_list())
        names.discard("")
        return sorted(names)

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
        to a temporary name and renamed into place, so readers never see half a file.
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
                tmp = out / f".tmp-{uuid.uuid4().hex}-{final.name}"
                staged.append((tmp, final))
                getattr(self, name).write_parquet(tmp, compression="zstd")
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
        """Load a result written by :meth:`write`."""
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
        tables: dict[str, pl.DataFrame] = {}
        for name in TABLES:
            p = out / f"{name}.parquet"
            if not p.is_file():
                msg = f"{p} not found; the result directory {out} is incomplete"
                raise DataError(msg)
            try:
                tables[name] = pl.read_parquet(p)
            except (OSError, pl.exceptions.PolarsError) as exc:
                msg = f"{p} cannot be read as Parquet ({exc}); the file may be corrupt"
                raise DataError(msg) from exc
        kwargs: dict[str, Any] = {**tables, **{k: summary[k] for k in _SCALARS}}
        return cls(**kwargs)


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
