"""The screen: every parameter set of a signal in ONE vectorbt portfolio (a column each),
with fees and slippage, ranked by a metric.

Costs, per order of ``size`` lots at a bar's close (the mid at the bar's end): the
instrument's taker fee (a fraction of the notional) plus its fee per lot, and a slippage of
``slippage_ticks`` ticks against us (half the usual spread, 0.5, is crossing from the mid to
the touch). Fills are immediate and whole: what the tick-level backtest adds -- latency, the
queue, the touch moving before the order arrives -- is what ``--to-strategy`` measures.

Metrics are computed the way :func:`framework.analysis.stats.summarize` computes a
backtest's, from the P&L sampled on a one-minute grid (Sharpe and Sortino annualised over
252 days of 6.5 h, NaN below 30 intervals), so the screen's and the tick side's numbers
compare.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.analysis.stats import (
    DEFAULT_INTERVAL_NS,
    MIN_INTERVALS,
    max_drawdown,
    resample_last,
    sharpe,
    sortino,
)
from framework.core.errors import ConfigError
from framework.core.instrument import Instrument
from framework.strategy import Strategy
from research.screen.signals import Signal, signal_matrix
from research.space import Space, params_json

#: metric -> True when higher is better
METRICS: Final[dict[str, bool]] = {
    "sharpe": True,
    "sortino": True,
    "pnl": True,
    "total_return": True,
    "win_rate": True,
    "n_trades": True,
    "max_drawdown": False,
}
#: most bar x set cells one screen holds (a float matrix of them is its equity)
MAX_CELLS: Final = 60_000_000
INSTALL_HINT: Final = "pip install 'hftlab[research]'"


def vectorbt() -> Any:
    """The vectorbt module, or one line saying how to install it."""
    try:
        import vectorbt as vbt
    except ImportError as exc:
        msg = f"the screen needs vectorbt, which is not installed ({exc}): {INSTALL_HINT}"
        raise ConfigError(msg) from exc
    return vbt


@dataclasses.dataclass(frozen=True)
class Costs:
    """What an order costs in the screen (see the module's docstring)."""

    taker_fee: float = 0.0  #: fraction of the notional
    fee_per_lot: float = 0.0  #: currency per lot
    slippage_ticks: float = 0.5
    size: int = 1  #: lots per order

    @classmethod
    def of(cls, inst: Instrument, *, slippage_ticks: float = 0.5, size: int = 1) -> Costs:
        if not (math.isfinite(slippage_ticks) and slippage_ticks >= 0):
            msg = f"--slippage {slippage_ticks}: give a number of ticks >= 0"
            raise ConfigError(msg)
        if size < 1:
            msg = f"--size {size}: give at least 1 lot"
            raise ConfigError(msg)
        return cls(float(inst.taker_fee), float(inst.fee_per_lot), float(slippage_ticks), size)


@dataclasses.dataclass
class ScreenResult:
    """A screen's ranking and each set's equity.

    ``table``: one row per parameter set, best first: ``rank``, the searched parameters,
    then the metrics (``pnl``, ``gross``, ``fees``, ``n_trades``, ``n_orders``, ``win_rate``,
    ``total_return``, ``sharpe``, ``sortino``, ``max_drawdown``), and ``params`` (the full
    set as JSON). ``equity``: P&L (currency) of each set on the one-minute grid and at the
    last bar, long (``rank``, ``ts``, ``equity``)."""

    signal: str
    names: list[str]
    metric: str
    table: pl.DataFrame
    equity: pl.DataFrame
    sets: list[dict[str, Any]]
    n_bars: int
    costs: Costs
    seconds: float = 0.0

    def best(self, rank: int = 1) -> dict[str, Any]:
        """The searched values of the set ranked ``rank`` (1 = best)."""
        if not 1 <= rank <= self.table.height:
            n = self.table.height
            msg = f"--pick {rank}: the screen ranked {n} set(s); pick 1..{n}"
            raise ConfigError(msg)
        row = self.table.row(rank - 1, named=True)
        return {n: row[n] for n in self.names}

    def row(self, rank: int = 1) -> dict[str, Any]:
        return self.table.row(rank - 1, named=True)


def space_of(signal: Signal, words: Sequence[str], fixed: Mapping[str, Any] | None = None) -> Space:
    """The parameter grid of ``--space`` words, parsed and checked by research.space (a
    signal carries ``Params`` and a name, which is all Space reads of a strategy)."""
    return Space.parse(cast(type[Strategy], signal), words, fixed)


def run_screen(
    bars: pl.DataFrame,
    signal: Signal,
    sets: Sequence[dict[str, Any]],
    *,
    instrument: Instrument,
    costs: Costs,
    metric: str = "sharpe",
    every_ns: int = 1_000_000_000,
) -> ScreenResult:
    """Screen ``sets`` of ``signal`` over ``bars`` in one vectorbt portfolio."""
    import time

    if metric not in METRICS:
        msg = f"--metric {metric!r} is unknown; choose one of {', '.join(METRICS)}"
        raise ConfigError(msg)
    if not sets:
        msg = "the space holds no parameter set"
        raise ConfigError(msg)
    if bars.height < 2:
        msg = f"{bars.height} bar(s) to screen; give more days or shorter bars (--every)"
        raise ConfigError(msg)
    if bars.height * len(sets) > MAX_CELLS:
        msg = (
            f"{len(sets):,} sets x {bars.height:,} bars is more than {MAX_CELLS:,} cells; "
            "screen fewer sets or days, or longer bars (--every)"
        )
        raise ConfigError(msg)
    vbt = vectorbt()
    import pandas as pd

    t0 = time.perf_counter()
    # no price before the book has both sides: carry the first one back (no entry there)
    close_ticks = (
        bars["close"]
        .fill_nan(None)
        .fill_null(strategy="backward")
        .fill_null(strategy="forward")
        .to_numpy()
    )
    if not np.isfinite(close_ticks).any():
        msg = "the bars hold no mid price (the book never had both sides)"
        raise ConfigError(msg)
    valid = np.isfinite(bars["close"].to_numpy())
    le, lx, se, sx = signal_matrix(signal, bars, sets)
    le &= valid[:, None]
    se &= valid[:, None]
    unit = float(instrument.tick_size) * float(instrument.lot_size) * float(instrument.multiplier)
    price = close_ticks * unit
    # naive UTC: a tz-aware index costs vectorbt a Timestamp object per bar at each wrap
    index = pd.DatetimeIndex(bars["ts"].to_numpy().astype("datetime64[ns]"))
    cols = pd.RangeIndex(len(sets), name="set")
    init_cash = float(np.nanmax(price)) * costs.size * 1_000.0
    pf = vbt.Portfolio.from_signals(
        pd.Series(price, index=index),
        entries=pd.DataFrame(le, index=index, columns=cols),
        exits=pd.DataFrame(lx, index=index, columns=cols),
        short_entries=pd.DataFrame(se, index=index, columns=cols),
        short_exits=pd.DataFrame(sx, index=index, columns=cols),
        size=float(costs.size),
        fees=costs.taker_fee,
        fixed_fees=costs.fee_per_lot * costs.size,
        slippage=(costs.slippage_ticks / close_ticks)[:, None],
        init_cash=init_cash,
        freq=pd.Timedelta(every_ns, unit="ns"),
    )
    value = np.asarray(pf.value().to_numpy(), dtype=np.float64) - init_cash
    fees = np.asarray(pf.orders.fees.sum().to_numpy(), dtype=np.float64)
    n_trades = np.asarray(pf.trades.count().to_numpy(), dtype=np.int64)
    n_orders = np.asarray(pf.orders.count().to_numpy(), dtype=np.int64)
    win_rate = np.asarray(pf.trades.win_rate().to_numpy(), dtype=np.float64)
    total_return = np.asarray(pf.total_return().to_numpy(), dtype=np.float64)
    seconds = time.perf_counter() - t0
    ts = bars["ts"].to_numpy()
    grid_end = ts[0] + (ts[-1] - ts[0]) // DEFAULT_INTERVAL_NS * DEFAULT_INTERVAL_NS
    rows: list[dict[str, Any]] = []
    curves: list[npt.NDArray[np.float64]] = []
    for j, values in enumerate(sets):
        eq = value[:, j]
        grid = resample_last(ts, eq, DEFAULT_INTERVAL_NS)
        changes = np.diff(grid)
        enough = len(changes) >= MIN_INTERVALS
        pnl = float(eq[-1])
        rows.append(
            {
                **values,
                "pnl": pnl,
                "gross": pnl + float(fees[j]),
                "fees": float(fees[j]),
                "n_trades": int(n_trades[j]),
                "n_orders": int(n_orders[j]),
                "win_rate": float(win_rate[j]),
                "total_return": float(total_return[j]),
                "sharpe": sharpe(changes) if enough else math.nan,
                "sortino": sortino(changes) if enough else math.nan,
                "max_drawdown": max_drawdown(grid),
                "params": params_json(signal.Params.create(values)),
                "set": j,
            }
        )
        curves.append(grid if len(grid) and grid_end == ts[-1] else np.append(grid, eq[-1]))
    table = _ranked(pl.DataFrame(rows), metric)
    grid_ts = ts[0] + np.arange(len(curves[0]), dtype=np.int64) * DEFAULT_INTERVAL_NS
    grid_ts[-1] = ts[-1]  # the minute grid, and the last bar (where the P&L is final)
    order = table["set"].to_list()
    equity = pl.DataFrame(
        {
            "rank": np.repeat(np.arange(1, len(sets) + 1, dtype=np.int64), len(grid_ts)),
            "ts": np.tile(grid_ts, len(sets)),
            "equity": np.concatenate([curves[j] for j in order]),
        }
    )
    return ScreenResult(
        signal=signal.name,
        names=list(sets[0]),
        metric=metric,
        table=table.drop("set"),
        equity=equity,
        sets=[sets[j] for j in order],
        n_bars=bars.height,
        costs=costs,
        seconds=seconds,
    )


def _ranked(table: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Best first by ``metric`` (NaN last), ties kept in grid order."""
    desc = METRICS[metric]
    t = table.with_columns(pl.col(metric).fill_nan(None).alias("_m"))
    t = t.sort(["_m", "set"], descending=[desc, False], nulls_last=True).drop("_m")
    return t.with_columns(pl.int_range(1, t.height + 1, dtype=pl.Int64).alias("rank")).select(
        "rank", pl.exclude("rank")
    )


__all__ = ["METRICS", "Costs", "ScreenResult", "run_screen", "space_of", "vectorbt"]
