"""Backtest statistics: small public functions over arrays, and :func:`summarize` over a result.

P&L is in currency. Equity starts at 0, so there is no capital base to divide by: Sharpe and
Sortino are computed on equity *changes* over fixed intervals (a "dollar Sharpe"), which is
scale-free in the way that matters (doubling size leaves it unchanged).
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

from framework.analysis.results import SCHEMAS, TOTAL, BacktestResult
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
def round_trip_scan_nb(
    side: npt.NDArray[np.int8],
    price: FloatArray,
    qty: FloatArray,
    fee: FloatArray,
    position: FloatArray,
    out: FloatArray,
    carry: FloatArray,
) -> int:
    """:func:`round_trip_pnl_nb` over the fills in parts: ``carry`` (float64[2], zeros at the
    start) holds whether a trip is open and its P&L so far, and is updated in place, so a
    scan over consecutive parts gives the trips of the whole."""
    n = side.shape[0]
    n_out = 0
    is_open = carry[0] != 0.0
    pnl = carry[1]
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
    carry[0] = 1.0 if is_open else 0.0
    carry[1] = pnl
    return n_out


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
    return round_trip_scan_nb(side, price, qty, fee, position, out, np.zeros(2))


def _trip_args(
    g: pl.DataFrame,
) -> tuple[npt.NDArray[np.int8], FloatArray, FloatArray, FloatArray, FloatArray]:
    """The arrays :func:`round_trip_scan_nb` takes, from fills of one strategy and instrument."""
    return (
        g["side"].to_numpy().astype(np.int8),
        g["price"].to_numpy().astype(np.float64),
        g["qty"].to_numpy().astype(np.float64),
        g["fee"].to_numpy().astype(np.float64),
        g["position"].to_numpy().astype(np.float64),
    )


def round_trips(fills: pl.DataFrame) -> FloatArray:
    """Net P&L of every closed round trip in ``fills`` (per strategy and instrument)."""
    if fills.height == 0:
        return np.zeros(0, dtype=np.float64)
    parts: list[FloatArray] = []
    ordered = fills.sort(["strategy", "instrument", "ts"], maintain_order=True)
    for _, g in ordered.group_by(["strategy", "instrument"], maintain_order=True):
        out = np.empty(g.height, dtype=np.float64)
        side, price, qty, fee, position = _trip_args(g)
        k = round_trip_pnl_nb(side, price, qty, fee, position, out)
        parts.append(out[:k])
    return np.concatenate(parts)


# --- statistics accumulated over tables read (or written) a part at a time --------------------
#: The tables a :class:`Tally` accumulates, with the columns it reads of each.
TALLY_COLUMNS: dict[str, list[str]] = {
    "orders": ["strategy", "instrument", "status"],
    "fills": [
        "ts",
        "strategy",
        "instrument",
        "side",
        "price",
        "qty",
        "liquidity",
        "fee",
        "position",
    ],
    "denials": ["strategy", "instrument", "reason"],
}


@dataclass
class _FillSums:
    """Sums over one strategy's fills."""

    n: int = 0
    qty: float = 0.0
    fees: float = 0.0
    turnover: float = 0.0
    maker_n: int = 0
    maker_qty: float = 0.0
    taker_n: int = 0
    taker_qty: float = 0.0
    trips: int = 0
    wins: int = 0


@dataclass
class _NetPath:
    """The position right after each fill on one instrument, as its running sum of signed
    fill quantities (from 0) and that sum's extremes; ``start`` is the position before the
    first fill (the peak |position| is at one of the extremes)."""

    cum: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    start: float = 0.0

    def add(self, signed: FloatArray) -> None:
        path = np.cumsum(np.concatenate(([self.cum], signed)))[1:]
        self.cum = float(path[-1])
        self.lo = min(self.lo, float(path.min()))
        self.hi = max(self.hi, float(path.max()))

    def peak(self, start: float) -> float:
        return max(abs(self.hi + start), abs(self.lo + start))


def _ranked(counts: Counter[str]) -> dict[str, int]:
    """Counts from most to least frequent (ties by name)."""
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


class Tally:
    """Statistics of the orders, fills and denials tables, accumulated a part at a time.

    The engine feeds it every batch of rows it writes, so :func:`summarize` needs neither
    table in memory; :meth:`of` builds one from a result's tables. Fills must come in time
    order (as the engine records them) for the round trips and position peaks; parts that
    do not are noted (``fills_in_order`` False) and :func:`summarize` then recounts from
    the fills table sorted.
    """

    tables: tuple[str, ...] = tuple(TALLY_COLUMNS)

    def __init__(self) -> None:
        self._status: dict[str, Counter[str]] = {}
        self._reasons: dict[str, Counter[str]] = {}
        self._names: dict[tuple[str, str], set[str]] = {}
        self._reset_fills()

    def _reset_fills(self) -> None:
        self._fills: dict[str, _FillSums] = {}
        self._carry: dict[tuple[str, str], FloatArray] = {}  #: round-trip scan state
        self._paths: dict[tuple[str, str], _NetPath] = {}  #: per strategy and instrument
        self._net: dict[str, _NetPath] = {}  #: per instrument, all strategies together
        self._last_ts: int | None = None
        self.fills_in_order = True

    @classmethod
    def of(cls, result: BacktestResult) -> Tally:
        """The tally of ``result``'s tables, read a batch at a time."""
        t = cls()
        for name, columns in TALLY_COLUMNS.items():
            for batch in result.batches(name, columns):
                t.update(name, batch)
        if not t.fills_in_order:  # sort the whole table (what the batches could not)
            t._reset_fills()
            t.update("fills", result.scan("fills").select(TALLY_COLUMNS["fills"]).collect())
        return t

    def names(self, table: str, column: str) -> set[str]:
        """The values of ``column`` (strategy or instrument) seen in ``table``."""
        return set(self._names.get((table, column), ()))

    def update(self, name: str, df: pl.DataFrame) -> None:
        """Add rows of table ``name`` (tables other than :attr:`tables` are ignored)."""
        if name not in TALLY_COLUMNS or df.height == 0:
            return
        for col in ("strategy", "instrument"):
            self._names.setdefault((name, col), set()).update(df[col].unique().to_list())
        if name == "orders":
            self._count(self._status, df, "status")
        elif name == "denials":
            self._count(self._reasons, df, "reason")
        else:
            self._add_fills(df)

    @staticmethod
    def _count(into: dict[str, Counter[str]], df: pl.DataFrame, column: str) -> None:
        for strat, key, n in df.group_by("strategy", column).len().iter_rows():
            into.setdefault(strat, Counter())[key] += n

    def _add_fills(self, df: pl.DataFrame) -> None:
        if not self.fills_in_order:
            return
        if not df["ts"].is_sorted():
            if self._last_ts is not None:
                self.fills_in_order = False
                return
            df = df.sort("ts", maintain_order=True)
        elif self._last_ts is not None and df["ts"][0] < self._last_ts:
            self.fills_in_order = False
            return
        self._last_ts = int(df["ts"][-1])
        parts = df.partition_by("strategy", "instrument", maintain_order=True, as_dict=True)
        shared = Counter(str(inst) for _, inst in parts)  # strategies per instrument
        for (strat, inst), g in parts.items():
            key = (str(strat), str(inst))
            side, price, qty, fee, position = _trip_args(g)
            liq = g["liquidity"]
            maker = (liq == "maker").to_numpy()
            taker = (liq == "taker").to_numpy()
            acc = self._fills.setdefault(key[0], _FillSums())
            acc.n += g.height
            acc.qty += float(qty.sum())
            acc.fees += float(fee.sum())
            acc.turnover += float((price * qty).sum())
            acc.maker_n += int(maker.sum())
            acc.maker_qty += float(qty[maker].sum())
            acc.taker_n += int(taker.sum())
            acc.taker_qty += float(qty[taker].sum())
            carry = self._carry.setdefault(key, np.zeros(2))
            out = np.empty(g.height, dtype=np.float64)
            k = round_trip_scan_nb(side, price, qty, fee, position, out, carry)
            acc.trips += k
            acc.wins += int((out[:k] > 0).sum())
            signed = side * qty
            path = self._paths.get(key)
            if path is None:
                # the position before the strategy's first fill here (normally 0)
                path = self._paths[key] = _NetPath(start=float(position[0] - signed[0]))
            path.add(signed)
            if shared[key[1]] == 1:  # the instrument's net path is this strategy's
                self._net.setdefault(key[1], _NetPath()).add(signed)
        for inst, n in shared.items():
            if n > 1:  # several strategies: their fills interleaved in time order
                g = df.filter(pl.col("instrument") == inst)
                signed = g["side"].to_numpy().astype(np.float64) * g["qty"].to_numpy()
                self._net.setdefault(inst, _NetPath()).add(signed)

    def summary(self, strategy: str | None = None) -> dict[str, Any]:
        """Counts and sums of one strategy, or of all together (``strategy`` None)."""
        strats = sorted(self._fills) if strategy is None else [strategy]
        f = _FillSums()
        for s in strats:
            one = self._fills.get(s)
            if one is None:
                continue
            for fld in dataclasses.fields(f):
                setattr(f, fld.name, getattr(f, fld.name) + getattr(one, fld.name))
        status: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for s in sorted(self._status) if strategy is None else [strategy]:
            status.update(self._status.get(s, Counter()))
        for s in sorted(self._reasons) if strategy is None else [strategy]:
            reasons.update(self._reasons.get(s, Counter()))
        # largest |position| right after a fill, per instrument (net over strategies)
        peaks: dict[str, float] = {}
        if strategy is None:
            starts: dict[str, float] = {}
            for (_, inst), p in sorted(self._paths.items()):
                starts[inst] = starts.get(inst, 0.0) + p.start
            peaks = {i: p.peak(starts.get(i, 0.0)) for i, p in sorted(self._net.items())}
        else:
            peaks = {
                i: p.peak(p.start) for (s, i), p in sorted(self._paths.items()) if s == strategy
            }
        return {
            "fills": f,
            "orders_by_status": _ranked(status),
            "denials_by_reason": _ranked(reasons),
            "fill_position_peaks": peaks,
        }


#: Tallies built from a result's tables, kept while the result lives.
_BUILT: weakref.WeakKeyDictionary[BacktestResult, Tally] = weakref.WeakKeyDictionary()


def tally_of(result: BacktestResult) -> Tally:
    """The result's own tally (accumulated by the engine), else one built from its tables."""
    t = result.tally
    if t is not None and t.fills_in_order:
        return t
    built = _BUILT.get(result)
    if built is None:
        built = _BUILT[result] = Tally.of(result)
    return built


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
    loaded whole); equity and positions are sampled, small tables, read as needed.
    """
    if periods_per_year is None:
        periods_per_year = TRADING_SECONDS_PER_YEAR * NS_PER_S / interval_ns
    tally = tally_of(result).summary(strategy)
    f: _FillSums = tally["fills"]
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
    for inst, m in tally["fill_position_peaks"].items():
        # samples can miss a peak between two sampling instants; fills cannot
        max_abs[inst] = max(max_abs.get(inst, 0.0), m)

    status = tally["orders_by_status"]
    reasons = tally["denials_by_reason"]
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
