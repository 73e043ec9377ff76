"""The evaluation unit of a study -- one parameter set on one day -- run in batches, and the
results table the units are written to as they arrive.

A *batch* is one day and N parameter sets of one strategy, evaluated in ONE replay of the
day: ``Backtest(..., strategies=copies(cls, sets), isolated=True)``. Each copy has its own
orders, venue slots, risk and portfolio, so its rows are bit for bit those of a run alone
(``tests/unit/research/test_evaluate.py``), while reading, decoding and replaying the day is
paid once for the N sets.

:func:`evaluate_batch` is pure: an :class:`EvalSpec` (plain picklable values: the store's
path, never an open file), a day and the sets in, the result frames out. A Dask task calls
it as it is; nothing in it writes anywhere but a temporary folder the result owns.

Results of a study live in a folder (:class:`ResultsDir`), one Parquet file per batch:

* ``results/*.parquet`` -- one row per (set, day): the metrics (:data:`METRICS`), the set's
  canonical ``key`` and its full parameters as JSON;
* ``equity/*.parquet`` -- per (set, day) the equity sampled on a grid of ``interval_ns``
  (default one minute): the per-set intraday returns the objectives, walk-forward and the
  overfitting statistics are computed from.

Why a file per batch rather than row groups appended to one file: a Parquet file cannot be
reopened for appending, so one open file would hold every result of a study in a writer
that a crash leaves unreadable. A batch's file is written to a temporary name and renamed
into place (atomic on POSIX), so a study killed at any moment leaves whole batches only,
and the set of done (key, day) units -- what a resume skips -- is exactly what the files
hold. ``pl.scan_parquet`` over the folder reads them as one table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from framework.analysis.results import BacktestResult
from framework.analysis.stats import (
    DEFAULT_INTERVAL_NS,
    equity_frame,
    resample_last,
    summarize,
)
from framework.core.errors import ConfigError, StoreError
from framework.engine.backtest import Backtest, Mode, store_streams
from framework.engine.config import LatencyConfig, QueueConfig
from framework.engine.instances import copies
from framework.risk.limits import RiskLimits
from framework.store.tickstore import TickStore
from framework.strategy import Strategy
from framework.strategy.loader import load_strategy_class
from research.space import params_json, params_key

#: per (set, day) metrics, as in ``summarize``: name -> polars dtype
METRICS: dict[str, pl.DataType] = {
    "pnl": pl.Float64(),
    "gross_pnl": pl.Float64(),
    "fees": pl.Float64(),
    "sharpe": pl.Float64(),
    "sortino": pl.Float64(),
    "max_drawdown": pl.Float64(),
    "n_fills": pl.Int64(),
    "n_orders": pl.Int64(),
    "maker_share": pl.Float64(),  # of filled quantity
    "turnover": pl.Float64(),
    "n_denials": pl.Int64(),
    "n_intervals": pl.Int64(),
}
#: the results table: the unit's key, then metrics, then how it was run
RESULTS_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String(),
    "day": pl.Date(),
    **METRICS,
    "params": pl.String(),
    "events": pl.Int64(),
    "batch_size": pl.Int64(),
    "batch_seconds": pl.Float64(),
}
EQUITY_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String(),
    "day": pl.Date(),
    "ts": pl.Int64(),
    "equity": pl.Float64(),
}


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """What every evaluation of a study shares: the strategy, the data, the venue model and
    the fixed parameters. Plain values only, so it travels to Dask workers as it is."""

    strategy: str  #: ``module:Class`` (or a bundled name)
    venue: str
    symbol: str
    store: str  #: the store's root folder
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    risk: RiskLimits | None = None  #: None: the strategy's own limits
    latency: LatencyConfig = dataclasses.field(default_factory=LatencyConfig)
    queue: QueueConfig = dataclasses.field(default_factory=QueueConfig)
    mode: Mode = "auto"
    sample_ns: int = 1_000_000_000  #: equity and position sampling of the engine
    interval_ns: int = DEFAULT_INTERVAL_NS  #: return interval of Sharpe / Sortino

    @property
    def strategy_class(self) -> type[Strategy]:
        return load_strategy_class(self.strategy)

    def describe(self) -> dict[str, Any]:
        """Everything that decides a unit's result besides its parameters and day: a study
        resumed with other settings would mix results that do not compare."""
        return {
            "strategy": self.strategy,
            "venue": self.venue,
            "symbol": self.symbol,
            "fixed": {k: str(v) for k, v in sorted(self.fixed.items())},
            "risk": None if self.risk is None else dataclasses.asdict(self.risk),
            "latency": self.latency.describe(),
            "queue": self.queue.describe(),
            "mode": self.mode,
            "sample_ns": self.sample_ns,
            "interval_ns": self.interval_ns,
        }


def strategy_path(cls: type[Strategy]) -> str:
    """``module:Class`` of a strategy class (how a worker finds it)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def run_batch(
    spec: EvalSpec, day: dt.date, sets: Sequence[Mapping[str, Any]], *, name: str = "set"
) -> BacktestResult:
    """One replay of ``day`` with one isolated copy of the strategy per set (``{name}_{i}``)."""
    store = TickStore(spec.store)
    instruments, streams = store_streams(store, [(spec.venue, spec.symbol)], [day])
    strategies = copies(
        spec.strategy_class, [{**spec.fixed, **s} for s in sets], name=name, risk=spec.risk
    )
    return Backtest(
        instruments=instruments,
        streams=streams,
        strategies=strategies,
        latency=spec.latency,
        queue=spec.queue,
        mode=spec.mode,
        sample_ns=spec.sample_ns,
        isolated=True,
    ).run()


def evaluate_batch(
    spec: EvalSpec, day: dt.date, sets: Sequence[Mapping[str, Any]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Metrics (:data:`RESULTS_SCHEMA`) and sampled equity (:data:`EQUITY_SCHEMA`) of each set
    on ``day``, from one replay. Pure: a Dask task calls it as it is."""
    if not sets:
        msg = "evaluate_batch got no parameter sets"
        raise ConfigError(msg)
    t0 = time.perf_counter()
    result = run_batch(spec, day, sets)
    seconds = time.perf_counter() - t0
    cls = spec.strategy_class
    rows: list[dict[str, Any]] = []
    curves: list[pl.DataFrame] = []
    for i, values in enumerate(sets):
        full = cls.Params.create({**spec.fixed, **values})
        key = params_key(full)
        name = f"set_{i}"
        s = summarize(result, strategy=name, interval_ns=spec.interval_ns)
        rows.append(
            {
                "key": key,
                "day": day,
                "pnl": s["pnl"],
                "gross_pnl": s["gross_pnl"],
                "fees": s["fees"],
                "sharpe": s["sharpe"],
                "sortino": s["sortino"],
                "max_drawdown": s["max_drawdown"],
                "n_fills": s["n_fills"],
                "n_orders": s["n_orders"],
                "maker_share": s["maker_share_qty"],
                "turnover": s["turnover"],
                "n_denials": s["n_denials"],
                "n_intervals": s["n_intervals"],
                "params": params_json(full),
                "events": int(result.events),
                "batch_size": len(sets),
                "batch_seconds": seconds,
            }
        )
        curves.append(_equity_grid(result, name, key, day, spec.interval_ns))
    metrics = pl.DataFrame(rows, schema=RESULTS_SCHEMA)
    equity = pl.concat(curves) if curves else pl.DataFrame(schema=EQUITY_SCHEMA)
    return metrics, equity


def _equity_grid(
    result: BacktestResult, name: str, key: str, day: dt.date, interval_ns: int
) -> pl.DataFrame:
    """A strategy's equity on the grid ``summarize`` takes its returns from (the first
    sample, then every ``interval_ns``): its diffs are the returns of Sharpe and Sortino."""
    eq = equity_frame(result, name, columns=["ts", "equity"])
    ts = eq["ts"].to_numpy()
    values = resample_last(ts, eq["equity"].to_numpy(), interval_ns)
    grid = ts[0] + np.arange(len(values), dtype=np.int64) * interval_ns if len(ts) else ts
    return pl.DataFrame(
        {"key": key, "day": day, "ts": grid, "equity": values},
        schema=EQUITY_SCHEMA,
    )


def warm(spec: EvalSpec, day: dt.date, events: int = 2_000) -> float:
    """Compile (or load from numba's cache) what a batch runs: the engine, the strategy's
    callbacks and the runner of several copies, on the first ``events`` of ``day``. Returns
    the seconds it took. A worker calls it before its first task."""
    from framework.core.events import EventArray

    t0 = time.perf_counter()
    store = TickStore(spec.store)
    batches = store.iter_batches(spec.venue, spec.symbol, [day])
    try:
        first: EventArray = next(batches)[:events].copy()
    finally:
        batches.close()  # type: ignore[attr-defined]  # a generator: its reader thread ends
    inst = store.instrument(spec.venue, spec.symbol, day)
    Backtest(
        instruments=[inst],
        streams=[[first]],
        strategies=copies(spec.strategy_class, [dict(spec.fixed)] * 2, risk=spec.risk),
        latency=spec.latency,
        queue=spec.queue,
        mode=spec.mode,
        sample_ns=spec.sample_ns,
        isolated=True,
    ).run()
    return time.perf_counter() - t0


# --- the results folder ---------------------------------------------------------------
class ResultsDir:
    """A study's results: one Parquet file per batch under ``results/`` and ``equity/``,
    each written whole (temporary name, then rename); duplicates of a (key, day) already
    written are dropped, so a task Dask re-ran never counts twice."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.results = self.root / "results"
        self.equity = self.root / "equity"
        try:
            self.results.mkdir(parents=True, exist_ok=True)
            self.equity.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the results folder {self.root}: {exc.strerror or exc}"
            raise StoreError(msg) from exc
        self._done: set[tuple[str, dt.date]] | None = None
        #: the tables as read once and then extended by this object's writes (a study asks
        #: for them after every batch; the files are read again only by a new ResultsDir)
        self._metrics: pl.DataFrame | None = None
        self._equity: pl.DataFrame | None = None

    def done(self) -> set[tuple[str, dt.date]]:
        """The (key, day) units written so far."""
        if self._done is None:
            df = self.metrics()
            self._done = set(zip(df["key"].to_list(), df["day"].to_list(), strict=True))
        return self._done

    def write(self, metrics: pl.DataFrame, equity: pl.DataFrame) -> pl.DataFrame:
        """Write a batch's rows (those not written before); returns the rows written."""
        done = self.done()
        fresh = [
            (k, d) not in done
            for k, d in zip(metrics["key"].to_list(), metrics["day"].to_list(), strict=True)
        ]
        metrics = metrics.filter(pl.Series(fresh, dtype=pl.Boolean))
        if metrics.height == 0:
            return metrics
        units = metrics.select("key", "day")
        equity = equity.join(units, on=["key", "day"], how="semi")
        name = f"{metrics['day'][0]}_{uuid.uuid4().hex[:12]}.parquet"
        # equity first: a unit is done when its metrics row is there (a crash between the two
        # leaves equity rows a re-run writes again; reads drop the repeats)
        _write_whole(equity, self.equity / name)
        _write_whole(metrics, self.results / name)
        done.update(zip(units["key"].to_list(), units["day"].to_list(), strict=True))
        if self._metrics is not None:
            self._metrics = pl.concat([self._metrics, metrics]).sort("day", "key")
        if self._equity is not None:
            self._equity = pl.concat([self._equity, equity]).sort("key", "day", "ts")
        return metrics

    def metrics(self) -> pl.DataFrame:
        """Every unit's row, sorted by day and key."""
        if self._metrics is None:
            self._metrics = _read_dir(self.results, RESULTS_SCHEMA, ["day", "key"])
        return self._metrics

    def equity_curves(self) -> pl.DataFrame:
        """Every unit's sampled equity, sorted by key, day and time (repeats dropped)."""
        if self._equity is None:
            self._equity = _read_dir(self.equity, EQUITY_SCHEMA, ["key", "day", "ts"])
        return self._equity


def _read_dir(folder: Path, schema: Mapping[str, pl.DataType], by: list[str]) -> pl.DataFrame:
    if not any(folder.glob("*.parquet")):
        return pl.DataFrame(schema=dict(schema))
    try:
        lf = pl.scan_parquet(folder / "*.parquet").select(list(schema))
        return lf.unique(subset=by, keep="first").sort(by).collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        msg = f"the results in {folder} cannot be read ({exc}); a file there is damaged"
        raise StoreError(msg) from exc


def write_whole(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` a file whole, then rename it to ``path``: a reader never sees half of
    it, a failure leaves no temporary behind and is one line."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"cannot write {path}: {exc.strerror or exc}"
        raise StoreError(msg) from exc


def _write_whole(df: pl.DataFrame, path: Path) -> None:
    write_whole(path, df.write_parquet)


__all__ = [
    "EQUITY_SCHEMA",
    "METRICS",
    "RESULTS_SCHEMA",
    "EvalSpec",
    "ResultsDir",
    "evaluate_batch",
    "run_batch",
    "strategy_path",
    "warm",
    "write_whole",
]
