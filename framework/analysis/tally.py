"""Statistics of the orders, fills and denials tables accumulated a part at a time.

The engine writes its tables a recorder flush at a time (:mod:`framework.analysis.sink`) and
feeds each part to a :class:`Tally` too, so :func:`framework.analysis.stats.summarize` counts
orders, fills, round trips and position peaks of a long run without loading those tables.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl

from framework.analysis.results import BacktestResult
from framework.analysis.trips import FloatArray, round_trip_scan_nb, trip_args

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
class FillSums:
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


@dataclass(frozen=True)
class Counts:
    """What a :class:`Tally` counted for one strategy (or all)."""

    fills: FillSums
    orders_by_status: dict[str, int]  #: most frequent first
    denials_by_reason: dict[str, int]
    #: largest |position| right after a fill, per instrument (net over strategies)
    fill_position_peaks: dict[str, float]


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
        self._fills: dict[str, FillSums] = {}
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
        if name == "fills":
            self._add_fills(df)
            return
        column, into = ("status", self._status) if name == "orders" else ("reason", self._reasons)
        for strat, inst, key, n in df.group_by("strategy", "instrument", column).len().iter_rows():
            self._seen(name, strat, inst)
            into.setdefault(strat, Counter())[key] += n

    def _seen(self, table: str, strategy: str, instrument: str) -> None:
        self._names.setdefault((table, "strategy"), set()).add(strategy)
        self._names.setdefault((table, "instrument"), set()).add(instrument)

    def _add_fills(self, df: pl.DataFrame) -> None:
        in_order = self.fills_in_order
        if in_order and not df["ts"].is_sorted():
            if self._last_ts is None:
                df = df.sort("ts", maintain_order=True)
            else:
                in_order = False
        elif in_order and self._last_ts is not None and df["ts"][0] < self._last_ts:
            in_order = False
        if not in_order:  # counted again from the sorted table: only the names here
            self.fills_in_order = False
            for strat, inst in df.select("strategy", "instrument").unique().iter_rows():
                self._seen("fills", strat, inst)
            return
        self._last_ts = int(df["ts"][-1])
        # the columns once for the whole part, then each (strategy, instrument)'s rows by
        # index: a run of K strategies has K groups in every part, and a polars operation per
        # group costs more than the group's arithmetic
        side_all, price_all, qty_all, fee_all, position_all = trip_args(df)
        liq = df["liquidity"]
        maker_all = (liq == "maker").to_numpy()
        taker_all = (liq == "taker").to_numpy()
        groups = (
            df.select("strategy", "instrument")
            .with_row_index("row")
            .group_by("strategy", "instrument", maintain_order=True)
            .agg("row")
        )
        shared = Counter(groups["instrument"].to_list())  # strategies per instrument
        for strat, inst, rows in zip(
            groups["strategy"].to_list(), groups["instrument"].to_list(), groups["row"], strict=True
        ):
            key = (str(strat), str(inst))
            self._seen("fills", *key)
            at = rows.to_numpy()
            side, price, qty, fee, position = (
                side_all[at],
                price_all[at],
                qty_all[at],
                fee_all[at],
                position_all[at],
            )
            maker = maker_all[at]
            taker = taker_all[at]
            acc = self._fills.setdefault(key[0], FillSums())
            acc.n += len(at)
            acc.qty += float(qty.sum())
            acc.fees += float(fee.sum())
            acc.turnover += float((price * qty).sum())
            acc.maker_n += int(maker.sum())
            acc.maker_qty += float(qty[maker].sum())
            acc.taker_n += int(taker.sum())
            acc.taker_qty += float(qty[taker].sum())
            carry = self._carry.setdefault(key, np.zeros(2))
            out = np.empty(len(at), dtype=np.float64)
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

    def summary(self, strategy: str | None = None) -> Counts:
        """Counts and sums of one strategy, or of all together (``strategy`` None)."""
        strats = sorted(self._fills) if strategy is None else [strategy]
        f = FillSums()
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
        return Counts(f, _ranked(status), _ranked(reasons), peaks)


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
