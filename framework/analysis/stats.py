"""Backtest statistics: small public functions over arrays, and :func:`summarize` over a result.

P&L is in currency. Equity starts at 0, so there is no capital base to divide by: Sharpe and
Sortino are computed on equity *changes* over fixed intervals (a "dollar Sharpe"), which is
scale-free in the way that matters (doubling size leaves it unchanged).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

from framework.analysis.results import TOTAL, BacktestResult
from framework.core.errors import ConfigError
from framework.core.timeutil import NS_PER_S

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
    sd = float(r.std(ddof=1))
    if not sd > 0:
        return math.nan
    return float(r.mean()) / sd * math.sqrt(periods_per_year)


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
    if not dd > 0:
        return math.nan
    return float(r.mean()) / dd * math.sqrt(periods_per_year)


@njit(cache=True)
def round_trip_pnl_nb(
    side: npt.NDArray[np.int8],
    price: FloatArray,
    qty: FloatArray,
    fee: FloatArray,
    position: FloatArray,
    out: FloatArray,
) -> int:
    """Net P&L of each flat-to-flat round trip of one strategy on one instrument.

    Fills must be in time order; ``position`` is the position after each fill. A trip opens
    when a fill starts from flat and closes when the position returns to flat; a fill that
    flips the position closes one trip and opens the next, its cash and fee split by quantity.
    A trip already open before the first fill is not counted. Writes P&Ls to ``out`` (length
    at least ``len(side)``) and returns how many.
    """
    n = side.shape[0]
    n_out = 0
    pnl = 0.0
    is_open = False
    for i in range(n):
        q = qty[i]
        after = position[i]
        before = after - side[i] * q
        # positions are float sums of lot quantities: compare with a tolerance, not == 0
        tol = 1e-9 * max(1.0, abs(q))
        cash = -side[i] * price[i] * q - fee[i]
        if abs(before) <= tol:
            is_open = True
            pnl = 0.0
        if abs(after) <= tol:
            if is_open:
                out[n_out] = pnl + cash
                n_out += 1
            is_open = False
            pnl = 0.0
        elif before * after < 0.0 and q > 0.0:
            closing = abs(before) / q
            if is_open:
                out[n_out] = pnl + cash * closing
                n_out += 1
            is_open = True
            pnl = cash * (1.0 - closing)
        else:
            pnl += cash
    return n_out


def round_trips(fills: pl.DataFrame) -> FloatArray:
    """Net P&L of every closed round trip in ``fills`` (per strategy and instrument)."""
    if fills.height == 0:
        return np.zeros(0, dtype=np.float64)
    parts: list[FloatArray] = []
    ordered = fills.sort(["strategy", "instrument", "ts"], maintain_order=True)
    for _, g in ordered.group_by(["strategy", "instrument"], maintain_order=True):
        out = np.empty(g.height, dtype=np.float64)
        k = round_trip_pnl_nb(
            g["side"].to_numpy().astype(np.int8),
            g["price"].to_numpy().astype(np.float64),
            g["qty"].to_numpy().astype(np.float64),
            g["fee"].to_numpy().astype(np.float64),
            g["position"].to_numpy().astype(np.float64),
            out,
        )
        parts.append(out[:k])
    return np.concatenate(parts)


# --- tables -> series ---------------------------------------------------------------------------
def equity_frame(result: BacktestResult, strategy: str | None = None) -> pl.DataFrame:
    """Equity rows of one strategy, or the total (``TOTAL`` rows, else the sum), by time."""
    eq = result.equity
    if strategy is not None:
        return eq.filter(pl.col("strategy") == strategy).sort("ts")
    total = eq.filter(pl.col("strategy") == TOTAL)
    if total.height or eq.height == 0:
        return total.sort("ts")
    return (
        eq.group_by("ts")
        .agg(pl.col("equity", "cash", "fees", "position_value").sum())
        .with_columns(pl.lit(TOTAL).alias("strategy"))
        .select(eq.columns)
        .sort("ts")
    )


def net_positions(result: BacktestResult, strategy: str | None = None) -> pl.DataFrame:
    """Sampled positions (ts, instrument, position), summed over strategies for the total."""
    pos = result.positions
    if strategy is not None:
        return pos.filter(pl.col("strategy") == strategy).select("ts", "instrument", "position")
    return pos.group_by("ts", "instrument").agg(pl.col("position").sum()).sort("instrument", "ts")


def _fill_position_peaks(fills: pl.DataFrame) -> dict[str, float]:
    """Largest absolute position right after any fill, per instrument, net over strategies.

    Each strategy's position before its first fill (normally 0) is taken from that fill, so
    the net path is exact even when several strategies trade one instrument.
    """
    if fills.height == 0:
        return {}
    signed = pl.col("side").cast(pl.Float64) * pl.col("qty")
    start = (
        fills.sort("ts", maintain_order=True)
        .group_by("strategy", "instrument")
        .agg((pl.col("position") - signed).first().alias("start"))
        .group_by("instrument")
        .agg(pl.col("start").sum())
    )
    path = (
        fills.sort("ts", maintain_order=True)
        .with_columns(signed.cum_sum().over("instrument").alias("net"))
        .join(start, on="instrument")
        .group_by("instrument")
        .agg((pl.col("net") + pl.col("start")).abs().max().alias("peak"))
    )
    return {str(i): float(m) for i, m in path.iter_rows()}


def _by_strategy(df: pl.DataFrame, strategy: str | None) -> pl.DataFrame:
    return df if strategy is None else df.filter(pl.col("strategy") == strategy)


def _counts(df: pl.DataFrame, column: str) -> dict[str, int]:
    if df.height == 0:
        return {}
    vc = df[column].value_counts(sort=True)
    pairs = zip(vc[column].to_list(), vc["count"].to_list(), strict=True)
    return {str(k): int(v) for k, v in pairs}


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
    """
    if periods_per_year is None:
        periods_per_year = TRADING_SECONDS_PER_YEAR * NS_PER_S / interval_ns
    orders = _by_strategy(result.orders, strategy)
    fills = _by_strategy(result.fills, strategy)
    denials = _by_strategy(result.denials, strategy)
    eq = equity_frame(result, strategy)

    fee_sum = float(fills["fee"].sum()) if fills.height else 0.0
    if eq.height:
        equity = eq["equity"].to_numpy().astype(np.float64)
        pnl = float(equity[-1])
        fees = float(eq["fees"][-1])
    else:
        equity = np.zeros(0, dtype=np.float64)
        # no marks: a strategy that never traded made nothing; one that traded is unknown
        pnl = 0.0 if fills.height == 0 else math.nan
        fees = fee_sum

    n_fills = fills.height
    filled_qty = float(fills["qty"].sum()) if n_fills else 0.0
    maker = fills.filter(pl.col("liquidity") == "maker")
    taker = fills.filter(pl.col("liquidity") == "taker")
    if n_fills and filled_qty > 0:
        maker_qty = float(maker["qty"].sum()) / filled_qty
        taker_qty = float(taker["qty"].sum()) / filled_qty
    else:
        maker_qty = taker_qty = math.nan
    maker_cnt = maker.height / n_fills if n_fills else math.nan
    taker_cnt = taker.height / n_fills if n_fills else math.nan
    turnover = float((fills["price"] * fills["qty"]).sum()) if n_fills else 0.0

    changes = np.diff(resample_last(eq["ts"].to_numpy(), equity, interval_ns))
    enough = len(changes) >= min_intervals
    trips = round_trips(fills)
    wins = int((trips > 0).sum())

    pos = net_positions(result, strategy)
    avg_abs: dict[str, float] = {}
    max_abs: dict[str, float] = {}
    if pos.height:
        agg = pos.group_by("instrument").agg(
            pl.col("position").abs().mean().alias("avg"),
            pl.col("position").abs().max().alias("max"),
        )
        for inst, a, m in agg.sort("instrument").iter_rows():
            avg_abs[inst] = float(a)
            max_abs[inst] = float(m)
    for inst, m in _fill_position_peaks(fills).items():
        # samples can miss a peak between two sampling instants; fills cannot
        max_abs[inst] = max(max_abs.get(inst, 0.0), m)

    wall = float(result.wall_seconds)
    return {
        "strategy": TOTAL if strategy is None else strategy,
        "pnl": pnl,
        "gross_pnl": pnl + fees,
        "fees": fees,
        "n_orders": orders.height,
        "orders_by_status": _counts(orders, "status"),
        "n_fills": n_fills,
        "filled_qty": filled_qty,
        "maker_share_qty": maker_qty,
        "taker_share_qty": taker_qty,
        "maker_share_count": maker_cnt,
        "taker_share_count": taker_cnt,
        "turnover": turnover,
        "max_drawdown": max_drawdown(equity),
        "max_drawdown_rel": max_drawdown_relative(equity),
        "n_intervals": len(changes),
        "sharpe": sharpe(changes, periods_per_year) if enough else math.nan,
        "sortino": sortino(changes, periods_per_year) if enough else math.nan,
        "n_round_trips": int(trips.size),
        "hit_ratio": wins / trips.size if trips.size else math.nan,
        "avg_abs_position": avg_abs,
        "max_abs_position": max_abs,
        "n_denials": denials.height,
        "denials_by_reason": _counts(denials, "reason"),
        "events": int(result.events),
        "wall_seconds": wall,
        "events_per_s": result.events / wall if wall > 0 else math.nan,
    }


def summarize_all(result: BacktestResult, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """:func:`summarize` for every strategy, then ``TOTAL`` (all strategies together)."""
    out = {s: summarize(result, strategy=s, **kwargs) for s in result.strategies}
    out[TOTAL] = summarize(result, **kwargs)
    return out
