"""Backtest statistics: small public functions over arrays, and :func:`summarize` over a result.

P&L is in currency. Equity starts at 0, so there is no capital base to divide by: Sharpe and
Sortino are computed on equity *changes* over fixed intervals (a "dollar Sharpe"), which is
scale-free in the way that matters (doubling size leaves it unchanged).
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.analysis.results import SCHEMAS, TOTAL, BacktestResult
from framework.analysis.tally import Tally, tally_of
from framework.analysis.trips import round_trip_pnl_nb, round_trip_scan_nb, round_trips
from framework.core.errors import ConfigError
from framework.core.timeutil import NS_PER_S

__all__ = [
    "DEFAULT_INTERVAL_NS",
    "DEFAULT_PERIODS_PER_YEAR",
    "MIN_INTERVALS",
    "TRADING_SECONDS_PER_YEAR",
    "Tally",
    "drawdown",
    "equity_frame",
    "max_drawdown",
    "max_drawdown_relative",
    "net_positions",
    "resample_last",
    "round_trip_pnl_nb",
    "round_trip_scan_nb",
    "round_trips",
    "sharpe",
    "sortino",
    "summarize",
    "summarize_all",
    "tally_of",
]

FloatArray = npt.NDArray[np.float64]

#: Seconds of trading in a year for equities: 252 days of 6.5 hours.
TRADING_SECONDS_PER_YEAR = 252 * 6.5 * 3600
#: Fewest equity intervals for which Sharpe and Sortino are reported (else NaN, "n/a").
MIN_INTERVALS = 30
#: Default Sharpe interval: one minute.
DEFAULT_INTERVAL_NS = 60 * NS_PER_S
#: Periods per year of the default interval (98,280 one-minute periods).
DEFAULT_PERIODS_PER_YEAR = TRADING_SECONDS_PER_YEAR * NS_PER_S / DEFAULT_INTERVAL_NS


# --- array functions --------------------------------------------------------------------------
def drawdown(equity: npt.ArrayLike) -> FloatArray:
    """Depth below the running peak at each point (``>= 0``; 0 at a new high).

    >>> drawdown([0.0, 2.0, 1.0, 3.0, 0.5]).tolist()
    [0.0, 0.0, 1.0, 0.0, 2.5]
    """
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return np.zeros(0, dtype=np.float64)
    return np.maximum.accumulate(eq) - eq


def max_drawdown(equity: npt.ArrayLike) -> float:
    """Largest drawdown in currency (0.0 for an empty or never-falling series)."""
    dd = drawdown(equity)
    return float(dd.max()) if dd.size else 0.0


def max_drawdown_relative(equity: npt.ArrayLike) -> float:
    """Largest drawdown as a fraction of the running peak, over points where the peak is > 0.

    NaN when the peak never rises above 0 (equity starts at 0, so a fraction of a
    non-positive peak means nothing).

    >>> max_drawdown_relative([0.0, 4.0, 3.0, 10.0, 5.0])
    0.5
    """
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return math.nan
    peak = np.maximum.accumulate(eq)
    pos = peak > 0
    if not pos.any():
        return math.nan
    return float(((peak[pos] - eq[pos]) / peak[pos]).max())


def resample_last(
    ts: npt.ArrayLike, values: npt.ArrayLike, interval_ns: int, *, start_ts: int | None = None
) -> FloatArray:
    """Value of the last sample at or before each grid point ``start + k * interval``.

    The grid runs from ``start_ts`` (default: the first timestamp) to the last timestamp;
    a final partial interval is dropped so every interval has the same length. ``ts`` must
    be sorted.

    >>> resample_last([0, 30, 60, 150], [0.0, 1.0, 2.0, 5.0], 60).tolist()
    [0.0, 2.0, 2.0]
    """
    if interval_ns <= 0:
        msg = f"interval_ns must be positive, got {interval_ns}"
        raise ConfigError(msg)
    t = np.asarray(ts, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0, dtype=np.float64)
    t0 = int(t[0]) if start_ts is None else int(start_ts)
    n = (int(t[-1]) - t0) // interval_ns + 1
    if n <= 0:
        return np.zeros(0, dtype=np.float64)
    grid = t0 + np.arange(n, dtype=np.int64) * interval_ns
    idx = np.searchsorted(t, grid, side="right") - 1
    out = np.full(n, np.nan)
    ok = idx >= 0
    out[ok] = v[idx[ok]]
    return out


#: a deviation at most this share of the mean is the rounding of a constant series
FLAT = 1e-12


def has_spread(sd: npt.ArrayLike, mean: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Where the deviation ``sd`` is a spread, not the rounding dust a constant series leaves
    (the mean of n equal floats is not always exactly that float, so its standard deviation
    comes out ~1e-17 and a ratio over it ~1e15): only then is a Sharpe or Sortino defined."""
    sd_a = np.asarray(sd, dtype=np.float64)
    return (sd_a > 0) & (sd_a > FLAT * np.abs(np.asarray(mean, dtype=np.float64)))


def sharpe(returns: npt.ArrayLike, periods_per_year: float = DEFAULT_PERIODS_PER_YEAR) -> float:
    """Annualised Sharpe ratio: ``mean / std * sqrt(periods_per_year)`` (sample std).

    NaN with fewer than 2 returns or zero variance.

    >>> round(sharpe([1.0, -1.0, 3.0], periods_per_year=4), 6)
    1.0
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan
    sd, mu = float(r.std(ddof=1)), float(r.mean())
    if not has_spread(sd, mu):
        return math.nan
    return mu / sd * math.sqrt(periods_per_year)


def sortino(returns: npt.ArrayLike, periods_per_year: float = DEFAULT_PERIODS_PER_YEAR) -> float:
    """Annualised Sortino ratio: ``mean / downside deviation * sqrt(periods_per_year)``.

    The downside deviation is ``sqrt(mean(min(r, 0)**2))`` over all periods (target 0).
    NaN with fewer than 2 returns or no losing period (the ratio is unbounded then).

    >>> round(sortino([1.0, -1.0, 3.0, -1.0], periods_per_year=1), 6)
    0.707107
    """
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan
    dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    mu = float(r.mean())
    if not has_spread(dd, mu):
        return math.nan
    return mu / dd * math.sqrt(periods_per_year)


# --- tables -> series ---------------------------------------------------------------------------
def equity_frame(
    result: BacktestResult, strategy: str | None = None, *, columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """Equity rows of one strategy, or the total (``TOTAL`` rows, else the sum), by time;
    only ``columns`` when given (a long run's equity is worth reading in part)."""
    cols = list(SCHEMAS["equity"]) if columns is None else list(columns)
    eq = result.scan("equity")
    if strategy is not None:
        return eq.filter(pl.col("strategy") == strategy).sort("ts").select(cols).collect()
    total = eq.filter(pl.col("strategy") == TOTAL).sort("ts").select(cols).collect()
    if total.height or result.rows("equity") == 0:
        return total
    sums = [c for c in cols if c not in ("ts", "strategy")]
    return (
        eq.group_by("ts")
        .agg(pl.col(sums).sum())
        .with_columns(pl.lit(TOTAL).alias("strategy"))
        .sort("ts")
        .select(cols)
        .collect()
    )


def _net_positions(result: BacktestResult, strategy: str | None) -> pl.LazyFrame:
    pos = result.scan("positions")
    if strategy is not None:
        return pos.filter(pl.col("strategy") == strategy).select("ts", "instrument", "position")
    return pos.group_by("ts", "instrument").agg(pl.col("position").sum()).sort("instrument", "ts")


def net_positions(result: BacktestResult, strategy: str | None = None) -> pl.DataFrame:
    """Sampled positions (ts, instrument, position), summed over strategies for the total."""
    return _net_positions(result, strategy).collect()


# --- summary ------------------------------------------------------------------------------------
def summarize(
    result: BacktestResult,
    *,
    strategy: str | None = None,
    interval_ns: int = DEFAULT_INTERVAL_NS,
    periods_per_year: float | None = None,
    min_intervals: int = MIN_INTERVALS,
) -> dict[str, Any]:
    """Headline statistics of one strategy (or of all together when ``strategy`` is None).

    Sharpe and Sortino need ``min_intervals`` equity intervals (default 30): annualising a
    few minutes of data gives numbers in the hundreds that mean nothing.

    ``periods_per_year`` defaults to equity trading time (252 days x 6.5 h) divided by
    ``interval_ns``; pass ``365 * 86_400 * 1e9 / interval_ns`` for a 24/7 crypto venue.
    NaN marks a statistic that has no value (no fills, too few intervals, no variance).

    Orders, fills and denials are counted by the result's :class:`Tally` (no table is
    loaded whole); equity and positions are sampled, small tables, read as needed. A result
    does not change, so its statistics are computed once (writing it, its report and the
    command line's summary all ask for them); each call returns its own copy.
    """
    key = (strategy, interval_ns, periods_per_year, min_intervals)
    memo = _SUMMARIES.setdefault(result, {})
    if key not in memo:
        memo[key] = _summarize(result, strategy, interval_ns, periods_per_year, min_intervals)
    return copy.deepcopy(memo[key])


#: Statistics computed per result and arguments, kept while the result lives.
_SUMMARIES: weakref.WeakKeyDictionary[BacktestResult, dict[tuple[Any, ...], dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _summarize(
    result: BacktestResult,
    strategy: str | None,
    interval_ns: int,
    periods_per_year: float | None,
    min_intervals: int,
) -> dict[str, Any]:
    if periods_per_year is None:
        periods_per_year = TRADING_SECONDS_PER_YEAR * NS_PER_S / interval_ns
    counts = tally_of(result).summary(strategy)
    f = counts.fills
    eq = equity_frame(result, strategy, columns=["ts", "equity", "fees"])

    if eq.height:
        equity = eq["equity"].to_numpy().astype(np.float64)
        pnl = float(equity[-1])
        fees = float(eq["fees"][-1])
    else:
        equity = np.zeros(0, dtype=np.float64)
        # no marks: a strategy that never traded made nothing; one that traded is unknown
        pnl = 0.0 if f.n == 0 else math.nan
        fees = f.fees

    if f.n and f.qty > 0:
        maker_qty = f.maker_qty / f.qty
        taker_qty = f.taker_qty / f.qty
    else:
        maker_qty = taker_qty = math.nan
    maker_cnt = f.maker_n / f.n if f.n else math.nan
    taker_cnt = f.taker_n / f.n if f.n else math.nan

    changes = np.diff(resample_last(eq["ts"].to_numpy(), equity, interval_ns))
    enough = len(changes) >= min_intervals

    agg = (
        _net_positions(result, strategy)
        .group_by("instrument")
        .agg(
            pl.col("position").abs().mean().alias("avg"),
            pl.col("position").abs().max().alias("max"),
        )
        .sort("instrument")
        .collect()
    )
    avg_abs: dict[str, float] = {}
    max_abs: dict[str, float] = {}
    for inst, a, m in agg.iter_rows():
        avg_abs[inst] = float(a)
        max_abs[inst] = float(m)
    for inst, m in counts.fill_position_peaks.items():
        # samples can miss a peak between two sampling instants; fills cannot
        max_abs[inst] = max(max_abs.get(inst, 0.0), m)

    status = counts.orders_by_status
    reasons = counts.denials_by_reason
    wall = float(result.wall_seconds)
    return {
        "strategy": TOTAL if strategy is None else strategy,
        "pnl": pnl,
        "gross_pnl": pnl + fees,
        "fees": fees,
        "n_orders": sum(status.values()),
        "orders_by_status": status,
        "n_fills": f.n,
        "filled_qty": f.qty,
        "maker_share_qty": maker_qty,
        "taker_share_qty": taker_qty,
        "maker_share_count": maker_cnt,
        "taker_share_count": taker_cnt,
        "turnover": f.turnover,
        "max_drawdown": max_drawdown(equity),
        "max_drawdown_rel": max_drawdown_relative(equity),
        "n_intervals": len(changes),
        "sharpe": sharpe(changes, periods_per_year) if enough else math.nan,
        "sortino": sortino(changes, periods_per_year) if enough else math.nan,
        "n_round_trips": f.trips,
        "hit_ratio": f.wins / f.trips if f.trips else math.nan,
        "avg_abs_position": avg_abs,
        "max_abs_position": max_abs,
        "n_denials": sum(reasons.values()),
        "denials_by_reason": reasons,
        "events": int(result.events),
        "wall_seconds": wall,
        "events_per_s": result.events / wall if wall > 0 else math.nan,
    }


def summarize_all(result: BacktestResult, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """:func:`summarize` for every strategy, then ``TOTAL`` (all strategies together)."""
    out = {s: summarize(result, strategy=s, **kwargs) for s in result.strategies}
    out[TOTAL] = summarize(result, **kwargs)
    return out
