"""Anomalies in market data and in our own execution, and a way to let them stop trading.

Per one-second bucket, known at the bucket's end (causal), four features:

* ``log_messages``: log(1 + book updates and trades in the bucket) -- quote stuffing is a
  burst of them;
* ``max_spread``: the widest touch spread (ticks) seen in the bucket -- a blow-out;
* ``fill_ratio``: (fills + 1) / (orders + 1) over the trailing ``window_s`` -- a collapse;
* ``reject_ratio``: rejects / (orders + 1) over the trailing ``window_s`` -- a storm.

Two detectors, both fitted on clean history and calibrated to a false-alarm rate on it:
:class:`RobustZ` (per feature a one-sided z-score against the median and a robust scale,
the bucket's score the largest) and :class:`IsolationForestDetector` (scikit-learn). On
generated days with injected anomalies (:func:`inject_market`, :func:`inject_execution`,
:func:`evaluate`) the robust z-score finds more of them at the same false-alarm rate --
every anomaly here moves one feature a long way in a known direction, which a per-feature
one-sided score sees and an isolation forest dilutes over the other dimensions -- so
:func:`fit_detector` uses it by default (numbers: ``python -m benchmarks ml`` and the tests).

:class:`KillSwitchAdapter` turns detections into a kill: it calls ``trip(reason)`` on
anything that has it -- ``live.control.KillSwitch``, or :class:`HaltStrategy`, which halts a
strategy's trading state in the engine's risk checks (backtest and live alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

from framework.book.l2 import (
    BOOK_FULL,
    NO_PRICE,
    l2_apply,
    l2_apply_events,
    l2_best_ask,
    l2_best_bid,
    l2_made_room,
    l2_new,
    l2_qty_at,
)
from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
    EventArray,
    empty_events,
)

FEATURES: tuple[str, ...] = ("log_messages", "max_spread", "fill_ratio", "reject_ratio")
#: +1: an anomaly raises the feature, -1: lowers it
DIRECTIONS = np.array([1.0, 1.0, -1.0, 1.0])
MARKET_KINDS = ("spread_blowout", "quote_stuffing")
EXECUTION_KINDS = ("fill_collapse", "reject_storm")
#: execution stream kinds
EX_ORDER, EX_FILL, EX_REJECT = 0, 1, 2
NS = 1_000_000_000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --- features ------------------------------------------------------------------------------
@njit(cache=True)
def _touch(events: EventArray, meta: IntArray, qty: IntArray, out: FloatArray, start: int) -> int:
    """Best bid and ask after every event (NaN for an empty side); -1 or where to go on
    once the book has grown."""
    for i in range(start, events.shape[0]):
        e = events[i]
        k = e["kind"]
        full = False
        if k == KIND_LEVEL or k == KIND_BBO or k == KIND_CLEAR:
            full = l2_apply(meta, qty, k, e["side"], e["price"], e["qty"]) == BOOK_FULL
        bb, ba = l2_best_bid(meta, qty), l2_best_ask(meta, qty)
        out[i, 0] = np.nan if bb == NO_PRICE else float(bb)
        out[i, 1] = np.nan if ba == NO_PRICE else float(ba)
        if full:
            return i + 1
    return -1


def touch(events: EventArray) -> FloatArray:
    """Best bid and ask (ticks) after every L2 event, float64[n, 2], from the framework's
    L2 book (NaN for an empty side)."""
    meta, qty = l2_new(1 << 15)
    out = np.full((len(events), 2), np.nan)
    i = 0
    while (i := _touch(events, meta, qty, out, i)) >= 0:
        meta, qty = l2_made_room(meta, qty)
    return out


def spreads(events: EventArray) -> FloatArray:
    """The touch spread (ticks) after every L2 event (NaN for a one-sided book)."""
    t = touch(events)
    return np.asarray(t[:, 1] - t[:, 0], np.float64)


def bucket_edges(t0: int, t1: int, bucket_ns: int = NS) -> IntArray:
    """Bucket start times covering [t0, t1)."""
    first = t0 // bucket_ns * bucket_ns
    return np.arange(first, t1 + bucket_ns, bucket_ns, dtype=np.int64)[:-1]


def market_features(events: EventArray, edges: IntArray, bucket_ns: int = NS) -> FloatArray:
    """``log_messages`` and ``max_spread`` per bucket (float64[len(edges), 2]); a bucket
    without events keeps the spread it had."""
    lt = events["local_ts"]
    b = np.searchsorted(edges, lt, side="right") - 1
    ok = (b >= 0) & (lt < edges[-1] + bucket_ns)
    counts = np.bincount(b[ok], minlength=len(edges)).astype(np.float64)
    sp = spreads(events)
    mx = np.full(len(edges), -np.inf)
    good = ok & ~np.isnan(sp)
    np.maximum.at(mx, b[good], sp[good])
    mx[np.isinf(mx)] = np.nan
    # carry the last known spread into empty buckets (a quiet second is not a blow-out)
    idx = np.where(~np.isnan(mx), np.arange(len(mx)), 0)
    np.maximum.accumulate(idx, out=idx)
    mx = mx[idx]
    mx[np.isnan(mx)] = 0.0
    return np.stack([np.log1p(counts), mx], axis=1)


def execution_features(
    ts: IntArray, kind: npt.NDArray[np.integer[Any]], edges: IntArray, *,
    window_s: float = 10.0, bucket_ns: int = NS,
) -> FloatArray:
    """``fill_ratio`` and ``reject_ratio`` over the trailing ``window_s`` at each bucket's
    end (float64[len(edges), 2]); 1 and 0 while nothing was sent."""
    w = max(1, round(window_s * NS / bucket_ns))
    b = np.searchsorted(edges, ts, side="right") - 1
    ok = (b >= 0) & (ts < edges[-1] + bucket_ns)  # nothing after the last bucket
    per = np.zeros((3, len(edges)))
    for k in (EX_ORDER, EX_FILL, EX_REJECT):
        sel = ok & (kind == k)
        per[k] = np.bincount(b[sel], minlength=len(edges))[: len(edges)]
    c = np.cumsum(per, axis=1)
    trail = c - np.concatenate([np.zeros((3, w)), c[:, :-w]], axis=1) if len(edges) > w else c
    orders = trail[EX_ORDER]
    return np.stack([(trail[EX_FILL] + 1.0) / (orders + 1.0), trail[EX_REJECT] / (orders + 1.0)],
                    axis=1)


def features(
    events: EventArray, execution: pl.DataFrame, t0: int, t1: int, *, window_s: float = 10.0
) -> tuple[IntArray, FloatArray]:
    """Bucket starts and the four :data:`FEATURES` per bucket over [t0, t1)."""
    edges = bucket_edges(t0, t1)
    m = market_features(events, edges)
    x = execution_features(execution["ts"].to_numpy(), execution["kind"].to_numpy(), edges,
                           window_s=window_s)
    return edges, np.concatenate([m, x], axis=1)


class OnlineFeatures:
    """The same bucket features, one event at a time (live, or inside a strategy): feed
    book updates (:meth:`market`) and execution events (:meth:`execution`) in time order;
    :meth:`roll` returns the rows of the buckets that ended by ``now``, equal to what
    :func:`features` gives over the same data."""

    def __init__(self, t0: int, *, window_s: float = 10.0, bucket_ns: int = NS) -> None:
        self.bucket_ns = bucket_ns
        self.start = t0 // bucket_ns * bucket_ns  #: start of the open bucket
        self.w = max(1, round(window_s * NS / bucket_ns))
        self.msgs = 0
        self.max_spread = -math.inf
        self.last_spread = 0.0
        self.counts = np.zeros(3)  #: orders, fills, rejects in the open bucket
        self.past: list[np.ndarray] = []  #: the last w-1 buckets' counts

    def market(self, ts: int, spread: float) -> None:
        self.msgs += 1
        if not math.isnan(spread):
            self.max_spread = max(self.max_spread, spread)

    def execution(self, ts: int, kind: int) -> None:
        self.counts[kind] += 1

    def roll(self, now: int) -> list[tuple[int, FloatArray]]:
        """Rows (bucket end, features) of every bucket that ended at or before ``now``."""
        out = []
        while self.start + self.bucket_ns <= now:
            if self.max_spread > -math.inf:
                self.last_spread = self.max_spread
            self.past.append(self.counts)
            self.past = self.past[-self.w :]
            o, f, r = np.sum(self.past, axis=0)
            row = np.array([math.log1p(self.msgs), self.last_spread, (f + 1.0) / (o + 1.0),
                            r / (o + 1.0)])
            out.append((self.start + self.bucket_ns, row))
            self.start += self.bucket_ns
            self.msgs, self.max_spread, self.counts = 0, -math.inf, np.zeros(3)
        return out


# --- detectors -----------------------------------------------------------------------------
class Detector(Protocol):
    threshold: float

    def score(self, x: FloatArray) -> FloatArray: ...


@dataclass
class RobustZ:
    """One-sided robust z-scores: (x - median) / scale in each feature's anomalous direction.

    ``scale`` is 1.4826 MAD, floored by a quarter of the 5-95 % range (a feature that is
    mostly constant, like a one-tick spread, has MAD 0). Features differ in how heavy their
    clean tails are (a volatile market widens the spread often), so each z is divided by its
    own 99th percentile on the clean rows before the largest is taken: one threshold then
    means the same rarity for every feature."""

    median: FloatArray = field(default_factory=lambda: np.zeros(0))
    scale: FloatArray = field(default_factory=lambda: np.zeros(0))
    tail: FloatArray = field(default_factory=lambda: np.zeros(0))
    threshold: float = math.inf

    def fit(self, x: FloatArray) -> RobustZ:
        self.median = np.median(x, axis=0)
        mad = 1.4826 * np.median(np.abs(x - self.median), axis=0)
        q5, q95 = np.percentile(x, [5, 95], axis=0)
        self.scale = np.maximum(np.maximum(mad, (q95 - q5) / 4.0), 1e-3)
        self.tail = np.maximum(np.percentile(self.z(x), 99, axis=0), 1.0)
        return self

    def z(self, x: FloatArray) -> FloatArray:
        """Per-feature one-sided z-scores."""
        return np.asarray(DIRECTIONS * (x - self.median) / self.scale, np.float64)

    def score(self, x: FloatArray) -> FloatArray:
        return np.asarray(np.max(self.z(x) / self.tail, axis=1), np.float64)


@dataclass
class IsolationForestDetector:
    """scikit-learn's IsolationForest; the score is minus its ``score_samples``."""

    seed: int = 0
    model: Any = None
    threshold: float = math.inf

    def fit(self, x: FloatArray) -> IsolationForestDetector:
        from sklearn.ensemble import IsolationForest

        self.model = IsolationForest(n_estimators=200, random_state=self.seed).fit(x)
        return self

    def score(self, x: FloatArray) -> FloatArray:
        return np.asarray(-self.model.score_samples(x), np.float64)


def calibrate(det: Detector, clean: FloatArray, false_alarm: float) -> None:
    """Set ``det.threshold`` so that ``false_alarm`` of the clean rows score above it."""
    det.threshold = float(np.quantile(det.score(clean), 1.0 - false_alarm))


def fit_detector(
    clean: FloatArray, *, method: str = "robust_z", false_alarm: float = 0.01, seed: int = 0
) -> Detector:
    """A detector fitted and calibrated on clean feature rows (``method``: ``robust_z`` or
    ``isolation_forest``)."""
    if method == "robust_z":
        det: RobustZ | IsolationForestDetector = RobustZ().fit(clean)
    elif method == "isolation_forest":
        det = IsolationForestDetector(seed=seed).fit(clean)
    else:
        msg = f"anomaly method {method!r}: choose 'robust_z' or 'isolation_forest'"
        raise ConfigError(msg)
    calibrate(det, clean, false_alarm)
    return det


# --- injected anomalies --------------------------------------------------------------------
def _episodes(rng: np.random.Generator, t0: int, t1: int, n: int, dur_s: tuple[float, float],
              gap_s: float) -> list[tuple[int, int]]:
    """``n`` non-overlapping [start, end) windows at least ``gap_s`` apart."""
    room = (t1 - t0) / NS - 2 * gap_s - dur_s[1]
    if n > 0 and room <= 0:
        msg = (f"the session is {(t1 - t0) / NS:.0f} s; anomalies need {2 * gap_s + dur_s[1]:.0f}"
               " s of it at least (a quiet margin each side): give a longer day")
        raise ConfigError(msg)
    out: list[tuple[int, int]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 10_000:
            msg = f"cannot place {n} anomalies of {dur_s} s in the session; ask for fewer"
            raise ConfigError(msg)
        d = int(rng.uniform(*dur_s) * NS)
        s = int(rng.integers(t0 + int(gap_s * NS), t1 - d - int(gap_s * NS)))
        if all(s + d + gap_s * NS < a or s > b + gap_s * NS for a, b in out):
            out.append((s, s + d))
    return sorted(out)


def _apply_all(book: tuple[IntArray, IntArray], ev: EventArray) -> tuple[IntArray, IntArray]:
    """``ev`` applied to the L2 book, grown as it needs."""
    meta, qty = book
    i = 0
    while i < len(ev):
        i += l2_apply_events(meta, qty, ev[i:])
        meta, qty = l2_made_room(meta, qty)
    return meta, qty


def _levels(side: npt.ArrayLike, price: npt.ArrayLike, qty: npt.ArrayLike, ts: int,
            exch: int) -> EventArray:
    side_a = np.atleast_1d(np.asarray(side))
    ev = empty_events(len(side_a))
    ev["kind"] = KIND_LEVEL
    ev["side"] = side_a
    ev["price"] = price
    ev["qty"] = qty
    ev["local_ts"] = ts
    ev["exch_ts"] = exch
    ev["flags"][-1:] = FLAG_LAST  # one message
    return ev


def inject_market(
    events: EventArray, *, n: int = 10, seed: int = 0, levels: int = 4,
    stuffing_rate: float = 300.0,
) -> tuple[EventArray, pl.DataFrame]:
    """Plant ``n`` market anomalies, alternately spread blow-outs and quote stuffing, in a
    day of one instrument's L2 events; returns the new events and the labels
    (``start_ts``, ``end_ts``, ``kind``).

    A blow-out empties the ``levels`` best levels of each side for 2-6 s (updates inside
    that zone are held back) and then restores exactly the book the day had by then; quote
    stuffing sends ``stuffing_rate`` updates per second for 1-4 s to a price far outside
    the book, on and off, leaving the book as it was (also in place of a blow-out when the
    book has no touch then)."""
    rng = np.random.default_rng(seed)
    lt = events["local_ts"]
    eps = _episodes(rng, int(lt[0]), int(lt[-1]), n, (1.0, 6.0), 120.0)
    keep = np.ones(len(events), bool)
    extra: list[EventArray] = []
    kinds: list[str] = []
    inst = int(events["instrument"][0]) if len(events) else 0
    book = l2_new(1 << 15)
    done = 0  # events applied to the running book of the day as it was
    for j, (s, e) in enumerate(eps):
        a, b = (int(v) for v in np.searchsorted(lt, [s, e]))
        book = _apply_all(book, events[done:a])
        done = a
        meta, qty = book
        bb, ba = l2_best_bid(meta, qty), l2_best_ask(meta, qty)
        kind = MARKET_KINDS[j % 2]
        if NO_PRICE in (bb, ba):  # no touch to blow out: stuff quotes instead
            kind = "quote_stuffing"
        kinds.append(kind)
        exch = int(events["exch_ts"][max(a - 1, 0)])
        if kind == "spread_blowout":
            zone_lo, zone_hi = bb - levels + 1, ba + levels - 1
            wipe_px = np.r_[np.arange(zone_lo, bb + 1), np.arange(ba, zone_hi + 1)]
            wipe_side = np.r_[np.full(bb - zone_lo + 1, BUY), np.full(zone_hi - ba + 1, SELL)]
            extra.append(_levels(wipe_side, wipe_px, 0, s, exch))
            seg = events[a:b]
            inside = (seg["price"] >= zone_lo) & (seg["price"] <= zone_hi)
            keep[a:b] &= ~(inside | (seg["kind"] == KIND_TRADE))
            # the day's own book at the end, over the zone: zeros first (no transient cross)
            book = _apply_all(book, events[a:b])
            done = b
            meta, qty = book
            px = np.arange(zone_lo, zone_hi + 1)
            rows = [(sd, p, l2_qty_at(meta, qty, sd, int(p))) for sd in (BUY, SELL) for p in px]
            rows.sort(key=lambda r: r[2] != 0)
            sd, p, q = (np.array(c) for c in zip(*rows, strict=True))
            extra.append(_levels(sd, p, q, e, int(events["exch_ts"][max(b - 1, 0)])))
        else:
            # a price no level of the day is near: far below the bid (above the ask when
            # the bid is missing or too close to zero)
            far = bb - 200 if bb != NO_PRICE and bb > 400 else (
                ba + 200 if ba != NO_PRICE else 1_000_000)
            m = max(2, int(stuffing_rate * (e - s) / NS) // 2 * 2)
            # integer steps: a float linspace of epoch ns rounds past e
            ts = s + np.arange(m, dtype=np.int64) * ((e - 1 - s) // (m - 1))
            for i, t in enumerate(ts):
                extra.append(_levels(BUY, far, 100 if i % 2 == 0 else 0, int(t), int(t)))
    out = np.concatenate([events[keep], *extra]) if extra else events.copy()
    out["instrument"] = inst
    out = out[np.argsort(out["local_ts"], kind="stable")]
    labels = pl.DataFrame({"start_ts": [s for s, _ in eps], "end_ts": [e for _, e in eps],
                           "kind": kinds}, schema={"start_ts": pl.Int64, "end_ts": pl.Int64,
                                                   "kind": pl.String})
    return out, labels


def generate_execution(
    t0: int, t1: int, *, seed: int = 0, order_rate: float = 4.0, fill_prob: float = 0.35,
    reject_prob: float = 0.01,
) -> pl.DataFrame:
    """A seeded stream of our orders and their outcomes over [t0, t1): orders a Poisson
    process of ``order_rate`` per second, each filled with ``fill_prob`` after up to 2 s and
    rejected with ``reject_prob`` (columns ``ts``, ``kind``: EX_ORDER, EX_FILL, EX_REJECT)."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(order_rate * (t1 - t0) / NS)
    ts = np.sort(rng.integers(t0, t1, n))
    u = rng.random(n)
    rej = u < reject_prob
    fill = (u >= reject_prob) & (u < reject_prob + fill_prob)
    fts = ts[fill] + rng.integers(1_000_000, 2 * NS, int(fill.sum()))
    t = np.concatenate([ts, ts[rej] + 100_000, fts])
    k = np.concatenate([np.full(n, EX_ORDER), np.full(int(rej.sum()), EX_REJECT),
                        np.full(len(fts), EX_FILL)])
    o = np.argsort(t, kind="stable")
    return pl.DataFrame({"ts": t[o], "kind": k[o]}, schema={"ts": pl.Int64, "kind": pl.Int8})


def inject_execution(
    stream: pl.DataFrame, t0: int, t1: int, *, n: int = 10, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plant ``n`` execution anomalies, alternately a fill-rate collapse (15-60 s in which
    no order fills: the fills are dropped) and a reject storm (3-15 s in which 70 % of the
    orders are rejected); returns the stream and the labels."""
    rng = np.random.default_rng(seed + 7_919)
    eps = _episodes(rng, t0, t1, n, (15.0, 60.0), 120.0)
    ts, kind = stream["ts"].to_numpy().copy(), stream["kind"].to_numpy().copy()
    keep = np.ones(len(ts), bool)
    add: list[int] = []
    kinds = []
    for j, (s, end) in enumerate(eps):
        k = EXECUTION_KINDS[j % 2]
        e = s + (end - s) // 4 if k == "reject_storm" else end  # 3.75-15 s
        eps[j] = (s, e)
        kinds.append(k)
        inside = (ts >= s) & (ts < e)
        if k == "fill_collapse":
            keep &= ~(inside & (kind == EX_FILL))
        else:
            o = np.flatnonzero(inside & (kind == EX_ORDER))
            add += (ts[o[rng.random(len(o)) < 0.7]] + 100_000).tolist()
    t = np.concatenate([ts[keep], np.asarray(add, np.int64)])
    k2 = np.concatenate([kind[keep], np.full(len(add), EX_REJECT, kind.dtype)])
    o2 = np.argsort(t, kind="stable")
    labels = pl.DataFrame({"start_ts": [s for s, _ in eps], "end_ts": [e for _, e in eps],
                           "kind": kinds}, schema={"start_ts": pl.Int64, "end_ts": pl.Int64,
                                                   "kind": pl.String})
    return (pl.DataFrame({"ts": t[o2], "kind": k2[o2]}, schema=stream.schema), labels)


def execution_stream(orders: pl.DataFrame, fills: pl.DataFrame,
                     denials: pl.DataFrame | None = None) -> pl.DataFrame:
    """The execution stream of a run's result tables (``BacktestResult.orders``,
    ``.fills``, ``.denials``, or a live session's): every order sent, every fill, every
    order rejected by the venue or denied by the risk checks."""
    parts = [
        orders.select(pl.col("submit_ts").alias("ts"), pl.lit(EX_ORDER, pl.Int8).alias("kind")),
        fills.select(pl.col("ts"), pl.lit(EX_FILL, pl.Int8).alias("kind")),
        orders.filter(pl.col("status") == "rejected").select(
            pl.col("end_ts").fill_null(pl.col("submit_ts")).alias("ts")
            if "end_ts" in orders.columns else pl.col("submit_ts").alias("ts"),
            pl.lit(EX_REJECT, pl.Int8).alias("kind")),
    ]
    if denials is not None and denials.height:
        parts.append(denials.select(pl.col("ts"), pl.lit(EX_REJECT, pl.Int8).alias("kind")))
    return pl.concat([p.cast({"ts": pl.Int64}) for p in parts]).sort("ts", maintain_order=True)


# --- evaluation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """How a detector did on labelled anomalies."""

    found: int
    injected: int
    false_alarm_rate: float  #: flagged buckets among those outside every anomaly
    by_kind: dict[str, tuple[int, int]]  #: kind -> (found, injected)

    @property
    def recall(self) -> float:
        return self.found / self.injected if self.injected else math.nan


def evaluate(
    det: Detector, edges: IntArray, x: FloatArray, labels: pl.DataFrame, *,
    window_s: float = 10.0, bucket_ns: int = NS,
) -> Evaluation:
    """An anomaly is found when a bucket ending inside it, or within ``window_s`` after it
    (the trailing execution window), is flagged; other flagged buckets are false alarms."""
    flagged = det.score(x) > det.threshold
    ends = edges + bucket_ns
    near = np.zeros(len(edges), bool)
    by: dict[str, list[int]] = {}
    for s, e, k in labels.iter_rows():
        hit = (ends > s) & (ends <= e + int(window_s * NS) + bucket_ns)
        near |= hit
        f, t = by.get(k, [0, 0])
        by[k] = [f + int(flagged[hit].any()), t + 1]
    calm = ~near
    fa = float(flagged[calm].mean()) if calm.any() else math.nan
    found = sum(f for f, _ in by.values())
    return Evaluation(found, labels.height, fa, {k: (f, t) for k, (f, t) in by.items()})


# --- kill switch ---------------------------------------------------------------------------
class Trippable(Protocol):
    def trip(self, reason: str) -> bool: ...


@dataclass
class HaltStrategy:
    """A kill switch in the engine's risk checks: ``trip`` halts the strategy's trading
    state (``ctx.set_trading_state("halted")``: no new orders pass the pre-trade checks)."""

    ctx: Any
    tripped: bool = False
    reason: str = ""

    def trip(self, reason: str) -> bool:
        if self.tripped:
            return False
        self.ctx.set_trading_state("halted")
        self.tripped, self.reason = True, reason
        return True


@dataclass
class KillSwitchAdapter:
    """Feeds bucket feature rows to a detector and trips ``switch`` on the first anomaly
    (``live.control.KillSwitch``, a :class:`HaltStrategy`, or anything with ``trip``).

    >>> # adapter = KillSwitchAdapter(detector, switch); adapter.observe(ts, row)
    """

    detector: Detector
    switch: Trippable
    names: Sequence[str] = FEATURES
    on_detect: list[Callable[[int, str], None]] = field(default_factory=list)
    detections: list[tuple[int, str]] = field(default_factory=list)

    def observe(self, ts: int, row: FloatArray) -> bool:
        """One bucket's features at its end ``ts``; returns whether it was anomalous."""
        r = np.asarray(row, np.float64)[None, :]
        score = float(self.detector.score(r)[0])
        if score <= self.detector.threshold:
            return False
        reason = f"anomaly at {ts}: {self._why(r[0])} (score {score:.1f} > " \
                 f"{self.detector.threshold:.1f})"
        self.detections.append((ts, reason))
        for cb in self.on_detect:
            cb(ts, reason)
        self.switch.trip(reason)
        return True

    def _why(self, row: FloatArray) -> str:
        det = self.detector
        if isinstance(det, RobustZ):
            z = det.z(row[None, :])[0]
            j = int(np.argmax(z / det.tail))
            return f"{self.names[j]} = {row[j]:.3g} (z {z[j]:.1f})"
        return ", ".join(f"{n} = {v:.3g}" for n, v in zip(self.names, row, strict=False))


__all__ = [
    "EXECUTION_KINDS",
    "FEATURES",
    "MARKET_KINDS",
    "Evaluation",
    "HaltStrategy",
    "IsolationForestDetector",
    "KillSwitchAdapter",
    "RobustZ",
    "calibrate",
    "evaluate",
    "execution_features",
    "execution_stream",
    "features",
    "fit_detector",
    "generate_execution",
    "inject_execution",
    "inject_market",
    "market_features",
    "spreads",
    "touch",
]
