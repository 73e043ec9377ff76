"""Seeded synthetic market data: a regime-switching day of L2 or L3 events with labels.

The model, in one paragraph: a latent mid price (in ticks) follows a Markov chain over three
regimes -- *calm* (small diffusion), *volatile* (large diffusion plus jumps) and *trending*
(a persistent drift whose sign is drawn per segment, with aggressor flow leaning the same
way, so a naive market maker is adversely selected). The book follows the latent mid with a
one-tick hysteresis: when the mid leaves the book's mid by a tick or more, the touch moves,
swept by trades or faded by cancels. Between moves, messages are noise trades at the touch
and size changes at the touch or deeper levels, mean-reverting to a depth profile. Message
times are a Poisson process whose rate scales per regime; each message is delivered after a
feed latency (a floor plus lognormal jitter) in FIFO order, so ``local_ts`` never goes back.

>>> import datetime as dt
>>> day = generate_day(date=dt.date(2024, 3, 1), n_events=20_000, seed=1)
>>> len(day.events) <= 20_000, day.labels.column_names[:3]
(True, ['start_ts', 'end_ts', 'regime'])
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Literal, get_args
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from framework.core.errors import ConfigError
from framework.core.events import empty_events
from framework.core.instrument import Instrument
from framework.core.timeutil import NS_PER_S
from framework.ingest import synthetic_nb as nb
from framework.ingest.base import DayData

Mode = Literal["l2", "l3"]
MODES: tuple[str, ...] = get_args(Mode)

#: Regime codes are indices into this tuple (and into every per-regime parameter tuple).
REGIMES: tuple[str, str, str] = ("calm", "volatile", "trending")
CALM, VOLATILE, TRENDING = 0, 1, 2

MARKET_TZ = "America/New_York"
OPEN_TIME = dt.time(9, 30)
CLOSE_TIME = dt.time(16, 0)

Triple = tuple[float, float, float]


@dataclass(frozen=True, kw_only=True)
class SyntheticParams:
    """Knobs of the synthetic market. Per-regime tuples are ordered (calm, volatile, trending).

    Units: prices in ticks, sizes in lots, times in seconds unless the name says ``_ns``.
    """

    # regimes
    mean_duration_s: Triple = (600.0, 180.0, 300.0)  #: mean segment length per regime
    transition: tuple[Triple, Triple, Triple] = (  #: row r: next-regime probabilities from r
        (0.0, 0.4, 0.6),
        (0.7, 0.0, 0.3),
        (0.7, 0.3, 0.0),
    )
    initial_regime: Literal["calm", "volatile", "trending"] = "calm"
    volatility: Triple = (0.25, 0.9, 0.3)  #: diffusion of the latent mid, ticks / sqrt(s)
    trend_drift: tuple[float, float] = (0.05, 0.15)  #: |drift| range of trending, ticks / s
    jump_rate_per_s: Triple = (0.0, 1.0 / 30.0, 0.0)  #: mid jumps per second
    jump_mean_ticks: float = 4.0  #: mean jump size beyond one tick
    # activity
    rate_multiplier: Triple = (1.0, 2.0, 1.4)  #: relative message rate per regime
    trade_prob: Triple = (0.15, 0.25, 0.2)  #: probability a message is a trade (L3: execute)
    trend_flow_bias: float = 0.15  #: extra aggressor probability in the trend's direction
    #: 0 off; up to 1: extra aggressor probability toward the latent mid, per tick of it
    #: (informed flow: trades at the touch precede the moves they point to, so a resting
    #: quote that is hit is more often about to be run over -- adverse selection)
    informed_flow: float = 0.0
    move_by_trade_prob: float = 0.7  #: a touch move is a sweep by trades (else a fade)
    touch_update_share: float = 0.4  #: share of size changes that happen at the touch
    # book shape
    spread_ticks: int = 1
    depth_levels: int = 15  #: levels per side
    orders_at_touch: float = 3.0  #: mean resting orders at the touch
    orders_per_level_slope: float = 0.3  #: extra mean orders per level away from the touch
    order_size_median: float = 100.0  #: lots; order sizes are lognormal
    order_size_sigma: float = 0.7
    trade_size_median: float = 100.0  #: lots; noise-trade sizes are lognormal
    trade_size_sigma: float = 1.0
    # feed latency, exchange -> local: floor + lognormal jitter
    latency_base_ns: int = 20_000
    latency_jitter_median_ns: float = 10_000.0
    latency_jitter_sigma: float = 0.8
    # L3
    partial_cancel_prob: float = 0.3  #: a cancel removes part of an order (else deletes it)
    max_orders_per_level: int = 32
    # predictive imbalance signal (off by default)
    signal_strength: float = 0.0  #: 0 off; 1: imbalance = tanh(mid move ahead / scale)
    signal_horizon_s: float = 5.0  #: how far ahead the imbalance sees the latent mid
    signal_scale_ticks: float = 1.5  #: move ahead (ticks) at which the imbalance is ~0.76
    # numerics
    mid_grid_ms: float = 50.0  #: time step of the latent mid

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"SyntheticParams.{name} = {getattr(self, name)!r}: {why}")

        for name in ("mean_duration_s", "rate_multiplier"):
            if len(getattr(self, name)) != 3 or min(getattr(self, name)) <= 0:
                raise bad(name, "give three positive numbers (calm, volatile, trending)")
        for name in ("volatility", "jump_rate_per_s"):
            if len(getattr(self, name)) != 3 or min(getattr(self, name)) < 0:
                raise bad(name, "give three non-negative numbers (calm, volatile, trending)")
        if len(self.trade_prob) != 3 or not all(0 <= p < 1 for p in self.trade_prob):
            raise bad("trade_prob", "give three probabilities in [0, 1)")
        rows = self.transition
        if len(rows) != 3 or any(
            len(r) != 3 or min(r) < 0 or not math.isclose(sum(r), 1.0) for r in rows
        ):
            raise bad("transition", "give a 3x3 matrix of non-negative rows summing to 1")
        if self.initial_regime not in REGIMES:
            raise bad("initial_regime", f"choose one of {REGIMES}")
        lo, hi = self.trend_drift
        if not 0 <= lo <= hi:
            raise bad("trend_drift", "give (low, high) with 0 <= low <= high")
        for name in ("move_by_trade_prob", "touch_update_share", "partial_cancel_prob",
                     "signal_strength"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "must lie in [0, 1]")
        if not 0 <= self.trend_flow_bias <= 0.5:
            raise bad("trend_flow_bias", "must lie in [0, 0.5]")
        if not 0 <= self.informed_flow <= 1:
            raise bad("informed_flow", "must lie in [0, 1]")
        if self.spread_ticks < 1:
            raise bad("spread_ticks", "must be at least 1")
        if not 2 <= self.depth_levels <= 200:
            raise bad("depth_levels", "must lie in 2..200")
        if self.orders_at_touch < 1 or self.orders_per_level_slope < 0:
            raise bad("orders_at_touch", "need orders_at_touch >= 1 and a non-negative slope")
        if self.orders_at_touch + self.orders_per_level_slope * self.depth_levels > 20:
            raise bad("orders_per_level_slope", "mean orders per level must stay <= 20")
        if self.max_orders_per_level < 2:
            raise bad("max_orders_per_level", "must be at least 2")
        for name in ("order_size_median", "trade_size_median", "latency_jitter_median_ns",
                     "signal_horizon_s", "signal_scale_ticks", "mid_grid_ms", "jump_mean_ticks"):
            if getattr(self, name) <= 0:
                raise bad(name, "must be positive")
        for name in ("order_size_sigma", "trade_size_sigma", "latency_jitter_sigma"):
            if getattr(self, name) < 0:
                raise bad(name, "must be non-negative")
        if self.latency_base_ns < 0:
            raise bad("latency_base_ns", "must be non-negative")

    def replace(self, **changes: object) -> SyntheticParams:
        """A copy with some knobs changed; an unknown knob fails with the list of knobs."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            msg = f"unknown SyntheticParams knob(s) {unknown}; knobs are {sorted(names)}"
            raise ConfigError(msg)
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def _global_vector(self, horizon_steps: int, mean_order: float) -> np.ndarray:
        gp = np.zeros(nb.N_GP)
        gp[nb.GP_SPREAD] = self.spread_ticks
        gp[nb.GP_DEPTH] = self.depth_levels
        gp[nb.GP_ORDERS_TOUCH] = self.orders_at_touch
        gp[nb.GP_ORDERS_SLOPE] = self.orders_per_level_slope
        gp[nb.GP_MEAN_ORDER] = mean_order
        gp[nb.GP_MOVE_BY_TRADE] = self.move_by_trade_prob
        gp[nb.GP_TOUCH_SHARE] = self.touch_update_share
        gp[nb.GP_FLOW_BIAS] = self.trend_flow_bias
        gp[nb.GP_INFORMED] = self.informed_flow
        gp[nb.GP_PARTIAL_CANCEL] = self.partial_cancel_prob
        gp[nb.GP_MAX_ORDERS] = self.max_orders_per_level
        gp[nb.GP_SIGNAL] = self.signal_strength
        gp[nb.GP_SIGNAL_STEPS] = horizon_steps
        gp[nb.GP_GRID_NS] = self.mid_grid_ms * 1e6
        gp[nb.GP_SIGNAL_SCALE] = self.signal_scale_ticks
        return gp


@dataclass(frozen=True)
class Segments:
    """Regime segments of a day: ``[start_ns[i], end_ns[i])`` in regime ``regime[i]``."""

    start_ns: np.ndarray  # int64 epoch ns
    end_ns: np.ndarray
    regime: np.ndarray  # int64 codes into REGIMES
    drift: np.ndarray  # ticks / s
    volatility: np.ndarray  # ticks / sqrt(s)

    def table(self) -> pa.Table:
        """The labels stored beside the events."""
        schema = pa.schema([
            pa.field("start_ts", pa.int64(), metadata={"unit": "ns since epoch, inclusive"}),
            pa.field("end_ts", pa.int64(), metadata={"unit": "ns since epoch, exclusive"}),
            pa.field("regime", pa.string()),
            pa.field("drift", pa.float64(), metadata={"unit": "ticks per second"}),
            pa.field("volatility", pa.float64(), metadata={"unit": "ticks per sqrt(second)"}),
        ])
        return pa.table(
            {
                "start_ts": self.start_ns,
                "end_ts": self.end_ns,
                "regime": [REGIMES[int(r)] for r in self.regime],
                "drift": self.drift,
                "volatility": self.volatility,
            },
            schema=schema,
        )


def market_hours_ns(date: dt.date) -> tuple[int, int]:
    """Epoch ns of 09:30 and 16:00 New York time on ``date``."""
    tz = ZoneInfo(MARKET_TZ)
    a = dt.datetime.combine(date, OPEN_TIME, tzinfo=tz)
    b = dt.datetime.combine(date, CLOSE_TIME, tzinfo=tz)
    return int(a.timestamp()) * NS_PER_S, int(b.timestamp()) * NS_PER_S


def draw_segments(
    params: SyntheticParams, rng: np.random.Generator, t_open: int, t_close: int
) -> Segments:
    """The regime path of a day: exponential durations, Markov transitions."""
    starts: list[int] = []
    regimes: list[int] = []
    drifts: list[float] = []
    t = t_open
    r = REGIMES.index(params.initial_regime)
    while t < t_close:
        starts.append(t)
        regimes.append(r)
        if r == TRENDING:
            size = rng.uniform(*params.trend_drift)
            drifts.append(size if rng.random() < 0.5 else -size)
        else:
            drifts.append(0.0)
        t += max(1, round(rng.exponential(params.mean_duration_s[r]) * NS_PER_S))
        r = int(rng.choice(3, p=np.asarray(params.transition[r], dtype=float)))
    start = np.asarray(starts, np.int64)
    end = np.append(start[1:], np.int64(t_close))
    reg = np.asarray(regimes, np.int64)
    vol = np.asarray(params.volatility, float)[reg]
    return Segments(start, end, reg, np.asarray(drifts, float), vol)


def _lognormal_quantiles(median: float, sigma: float) -> np.ndarray:
    """Equiprobable quantiles (bin midpoints) of a lognormal, ``2**TABLE_BITS`` of them."""
    n = 1 << nb.TABLE_BITS
    inv = NormalDist().inv_cdf
    z = np.array([inv((i + 0.5) / n) for i in range(n)])
    return np.asarray(median * np.exp(sigma * z))


def _tables(p: SyntheticParams) -> np.ndarray:
    """Quantile tables the kernels draw order sizes, trade sizes and latencies from."""
    tabs = np.empty((nb.N_TAB, 1 << nb.TABLE_BITS))
    for row, med, sig in (
        (nb.TAB_ORDER_SIZE, p.order_size_median, p.order_size_sigma),
        (nb.TAB_TRADE_SIZE, p.trade_size_median, p.trade_size_sigma),
    ):
        tabs[row] = np.maximum(1.0, np.floor(_lognormal_quantiles(med, sig) + 0.5))
    lat = p.latency_base_ns + _lognormal_quantiles(p.latency_jitter_median_ns,
                                                   p.latency_jitter_sigma)
    tabs[nb.TAB_LATENCY] = np.floor(lat)
    return tabs


def _seed_states(seed: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Independent streams for the mid path, the event kernel and the regime path."""
    mid_ss, ev_ss, reg_ss = np.random.SeedSequence(seed).spawn(3)
    return (
        mid_ss.generate_state(4, np.uint64),
        ev_ss.generate_state(4, np.uint64),
        np.random.Generator(np.random.PCG64(reg_ss)),
    )


@dataclass(frozen=True)
class LatentPath:
    """The hidden state a day's events are drawn from.

    The session ``[t_open, t_close)`` (epoch ns), its regime ``segments``, and the latent
    mid in ticks on a grid of ``grid_ns`` from the open (``mid[i]`` holds at
    ``t_open + i * grid_ns``). :func:`draw_latent` makes one; a caller may transform its mid
    (delay it, push it) and hand it to :func:`generate_day` to make related instruments.
    """

    t_open: int
    t_close: int
    segments: Segments
    mid: np.ndarray  # float64 ticks, ceil((t_close - t_open) / grid_ns) + 1 points
    grid_ns: float

    def with_mid(self, mid: np.ndarray) -> LatentPath:
        """The same session and regimes with another mid path (same length)."""
        if mid.shape != self.mid.shape:
            msg = f"a latent mid of {mid.shape} points replaces one of {self.mid.shape}"
            raise ConfigError(msg)
        return dataclasses.replace(self, mid=np.ascontiguousarray(mid, dtype=np.float64))


def _floor_ticks(p: SyntheticParams) -> int:
    """Lowest latent mid (ticks) that keeps every level of the book at a positive price."""
    return 2 * (p.depth_levels + p.spread_ticks) + 2


def draw_latent(
    *,
    t_open: int,
    t_close: int,
    start_ticks: int,
    seed: int = 0,
    params: SyntheticParams | None = None,
) -> LatentPath:
    """The regime path and latent mid that :func:`generate_day` draws for ``seed``.

    ``start_ticks`` is the opening best bid; the mid starts half a spread above it.
    """
    p = params if params is not None else SyntheticParams()
    if t_close <= t_open:
        msg = f"session [{t_open}, {t_close}) is empty; t_close must follow t_open"
        raise ConfigError(msg)
    mid_state, _, rng = _seed_states(seed)
    seg = draw_segments(p, rng, t_open, t_close)
    grid_ns = p.mid_grid_ms * 1e6
    n_grid = math.ceil((t_close - t_open) / grid_ns)
    seg_first = np.ceil((seg.start_ns - t_open) / grid_ns).astype(np.int64)
    jump_rate = np.asarray(p.jump_rate_per_s, float)[seg.regime]
    mid = nb.latent_mid_nb(
        mid_state, n_grid, grid_ns / 1e9, seg_first, seg.volatility, seg.drift, jump_rate,
        p.jump_mean_ticks, start_ticks + 0.5 * p.spread_ticks, float(_floor_ticks(p)),
    )
    return LatentPath(t_open=t_open, t_close=t_close, segments=seg, mid=mid, grid_ns=grid_ns)


def generate_day(
    *,
    symbol: str = "SYN",
    venue: str = "SIM",
    date: dt.date,
    mode: Mode = "l2",
    n_events: int = 1_000_000,
    seed: int = 0,
    tick_size: str = "0.01",
    start_price: float = 100.0,
    params: SyntheticParams | None = None,
    latent: LatentPath | None = None,
) -> DayData:
    """Generate one synthetic trading day (09:30-16:00 New York) of about ``n_events`` events.

    The day holds at most ``n_events`` events (it ends a message short of it, or at the
    close); the same arguments always give bit-identical events and labels. ``labels`` is a
    table of regime segments (``start_ts``, ``end_ts``, ``regime``, ``drift``,
    ``volatility``) that tiles the session exactly.

    ``latent`` replaces the session, regimes and mid that ``seed`` would draw (the book then
    opens at its first mid and ``start_price`` is ignored); ``seed`` still drives the
    messages. :mod:`framework.ingest.synthetic_pair` uses it for related instruments.
    """
    p = params if params is not None else SyntheticParams()
    if mode not in MODES:
        msg = f"synthetic mode {mode!r} is unknown; choose one of {MODES}"
        raise ConfigError(msg)
    if seed < 0:
        msg = f"seed {seed} is negative; give a seed >= 0"
        raise ConfigError(msg)
    min_events = 4 * (2 * p.depth_levels + 1)
    if n_events < min_events:
        msg = f"n_events {n_events:,} is too small; give at least {min_events} (4 snapshots)"
        raise ConfigError(msg)
    inst = Instrument(
        venue=venue,
        symbol=symbol,
        tick_size=Decimal(tick_size),
        extra={"synthetic": True, "seed": seed, "mode": mode},
    )
    floor = _floor_ticks(p)
    if latent is None:
        start_ticks = int(Decimal(str(start_price)) / inst.tick_size)
        what = f"start price {start_price} is only {start_ticks} ticks of {inst.tick_size}"
        fix = "raise start_price or lower tick_size"
    else:
        start_ticks = math.floor(float(latent.mid[0]) - 0.5 * p.spread_ticks)
        what = f"the latent path opens at {start_ticks} ticks of {inst.tick_size}"
        fix = "shift the path up or lower tick_size"
        if not math.isclose(latent.grid_ns, p.mid_grid_ms * 1e6):
            msg = (f"the latent path's grid is {latent.grid_ns / 1e6} ms but params.mid_grid_ms "
                   f"is {p.mid_grid_ms}; draw the path with the same params")
            raise ConfigError(msg)
        if float(latent.mid.min()) < floor:
            msg = (f"the latent mid falls to {float(latent.mid.min()):.1f} ticks; the book "
                   f"needs at least {floor}: shift the path up or lower tick_size")
            raise ConfigError(msg)
    if start_ticks < 4 * floor:
        msg = f"{what}; the book needs at least {4 * floor} ticks: {fix}"
        raise ConfigError(msg)
    if latent is None:
        t_open, t_close = market_hours_ns(date)
        latent = draw_latent(
            t_open=t_open, t_close=t_close, start_ticks=start_ticks, seed=seed, params=p
        )
    _, ev_state, _ = _seed_states(seed)
    t_open, t_close, seg, mid = latent.t_open, latent.t_close, latent.segments, latent.mid

    # operational time: each regime's clock runs rate_multiplier times faster
    seg_start_s = (seg.start_ns - t_open) / 1e9
    mult = np.asarray(p.rate_multiplier, float)[seg.regime]
    op = (seg.end_ns - seg.start_ns) / 1e9 * mult
    seg_tau0 = np.concatenate(([0.0], np.cumsum(op)[:-1]))
    tau_total = float(op.sum())
    seg_sign = np.sign(seg.drift)
    tabs = _tables(p)
    gp = p._global_vector(
        max(1, round(p.signal_horizon_s * 1e3 / p.mid_grid_ms)),
        float(tabs[nb.TAB_ORDER_SIZE].mean()),
    )
    rp = np.zeros((3, nb.N_RP))
    rp[:, nb.RP_TRADE_PROB] = p.trade_prob

    if mode == "l2":
        out = empty_events(n_events + 6 * p.depth_levels + 8)
        n = nb.gen_l2_nb(out, n_events, ev_state, t_open, mid, seg_start_s, seg_tau0, mult,
                         seg.regime, seg_sign, tau_total, gp, rp, tabs, start_ticks)
    else:
        slack = 4 * (p.depth_levels + 2) * (p.max_orders_per_level + 2) + 64
        out = empty_events(n_events + slack)
        n = nb.gen_l3_nb(out, n_events, ev_state, t_open, mid, seg_start_s, seg_tau0, mult,
                         seg.regime, seg_sign, tau_total, gp, rp, tabs, start_ticks)
    # a view keeps the few spare rows of slack; copy only if the day ended well short
    events = out[:n] if n > 0.9 * len(out) else out[:n].copy()
    return DayData(instrument=inst, date=date, events=events, labels=seg.table())
