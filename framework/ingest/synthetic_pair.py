"""Two related instruments for one day: a leader, and a follower whose mid lags it.

The leader is an ordinary synthetic day (:func:`~framework.ingest.synthetic.generate_day`).
The follower's latent mid is the leader's delayed by ``lag_ms``, shifted by a constant
``basis_ticks`` and, optionally, disturbed by a mean-reverting tracking error; its messages
come from a seed of its own, so the two books update at different moments, as two venues
do. ``pushes`` add steps of known size at known times to the leader's latent mid; the
follower repeats each one ``lag_ms`` later. That is the answer a lead-lag test checks
against: a strategy should trade the follower right after each push and not otherwise.

:func:`follow_stored` builds a follower of a *stored* day (say the LOBSTER AMZN day): the
leader's mid is read from its book, so a two-instrument strategy can run on real data that
has only one instrument.

>>> import datetime as dt
>>> lead, lag = generate_pair(date=dt.date(2024, 3, 1), n_events=20_000, seed=1)
>>> lead.instrument.key, lag.instrument.key
('SIM/LEAD', 'SIM/LAG')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from framework.core.errors import ConfigError
from framework.core.events import FLAG_LAST, KIND_ADD
from framework.core.timeutil import NS_PER_S
from framework.ingest.base import DayData
from framework.ingest.synthetic import (
    CALM,
    LatentPath,
    Mode,
    Segments,
    SyntheticParams,
    draw_latent,
    generate_day,
    market_hours_ns,
)
from framework.ingest.synthetic_nb import normal


@dataclass(frozen=True, kw_only=True)
class PairParams:
    """How the follower relates to the leader. Prices in ticks, times as the names say."""

    lag_ms: float = 200.0  #: the follower's latent mid is the leader's this much later
    basis_ticks: float = 0.0  #: constant offset of the follower's mid
    tracking_ticks: float = 0.0  #: std of a mean-reverting tracking error (0: none)
    tracking_half_life_s: float = 5.0  #: how fast the tracking error decays
    #: steps added to the leader's latent mid: (seconds after the open, ticks)
    pushes: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lag_ms) and self.lag_ms >= 0):
            msg = f"PairParams.lag_ms = {self.lag_ms!r}: give a delay >= 0 ms"
            raise ConfigError(msg)
        if not math.isfinite(self.basis_ticks):
            msg = f"PairParams.basis_ticks = {self.basis_ticks!r}: give a finite number"
            raise ConfigError(msg)
        if not self.tracking_ticks >= 0 or not self.tracking_half_life_s > 0:
            msg = (
                f"PairParams tracking error: tracking_ticks={self.tracking_ticks!r} must be "
                f">= 0 and tracking_half_life_s={self.tracking_half_life_s!r} > 0"
            )
            raise ConfigError(msg)
        for push in self.pushes:
            if len(push) != 2 or push[0] < 0 or not all(map(math.isfinite, push)):
                msg = f"push {push!r}: give (seconds after the open >= 0, ticks)"
                raise ConfigError(msg)


@njit(cache=True)
def _ou_nb(seed_state: np.ndarray, n: int, a: float, sd: float) -> np.ndarray:
    """AR(1) path ``x[i+1] = a x[i] + sqrt(1 - a^2) sd z``, stationary std ``sd``."""
    out = np.empty(n)
    x = sd * normal(seed_state)
    b = sd * math.sqrt(1.0 - a * a)
    for i in range(n):
        out[i] = x
        x = a * x + b * normal(seed_state)
    return out


def _sub_seed(seed: int, stream: int) -> int:
    """A seed for one of the pair's own random streams (never equal to a plain day's seed)."""
    return int(np.random.SeedSequence((seed, 0x1A6, stream)).generate_state(1, np.uint64)[0] >> 2)


def pushed(latent: LatentPath, pushes: tuple[tuple[float, float], ...]) -> LatentPath:
    """``latent`` with each push (seconds after the open, ticks) added from its time on."""
    mid = latent.mid.copy()
    span_s = (latent.t_close - latent.t_open) / NS_PER_S
    for at_s, ticks in pushes:
        if at_s >= span_s:
            msg = f"push at {at_s} s lies after the session's end ({span_s:.0f} s after the open)"
            raise ConfigError(msg)
        mid[math.ceil(at_s * 1e9 / latent.grid_ns) :] += ticks
    return latent.with_mid(mid)


def follower_latent(latent: LatentPath, pair: PairParams, seed: int) -> LatentPath:
    """The follower's latent path: ``latent`` delayed by ``pair.lag_ms`` (rounded to the
    mid grid), plus the basis and the tracking error."""
    steps = round(pair.lag_ms * 1e6 / latent.grid_ns)
    mid = np.empty_like(latent.mid)
    mid[steps:] = latent.mid[: len(mid) - steps]
    mid[:steps] = latent.mid[0]
    mid += pair.basis_ticks
    if pair.tracking_ticks > 0:
        a = 0.5 ** (latent.grid_ns / (pair.tracking_half_life_s * 1e9))
        state = np.random.SeedSequence(_sub_seed(seed, 2)).generate_state(4, np.uint64)
        mid += _ou_nb(state, len(mid), a, pair.tracking_ticks)
    return latent.with_mid(mid)


def _follower_day(
    latent: LatentPath,
    *,
    leader_key: str,
    venue: str,
    symbol: str,
    date: dt.date,
    mode: Mode,
    n_events: int,
    seed: int,
    tick_size: str,
    params: SyntheticParams,
    pair: PairParams,
) -> DayData:
    day = generate_day(
        symbol=symbol,
        venue=venue,
        date=date,
        mode=mode,
        n_events=n_events,
        seed=_sub_seed(seed, 1),
        tick_size=tick_size,
        params=params,
        latent=follower_latent(latent, pair, seed),
    )
    extra: dict[str, Any] = {
        **day.instrument.extra,
        "follows": leader_key,
        "lag_ms": pair.lag_ms,
        "basis_ticks": pair.basis_ticks,
    }
    inst = dataclasses.replace(day.instrument, extra=extra)
    return dataclasses.replace(day, instrument=inst)


def generate_pair(
    *,
    date: dt.date,
    n_events: int = 1_000_000,
    seed: int = 0,
    leader: tuple[str, str] = ("SIM", "LEAD"),
    follower: tuple[str, str] = ("SIM", "LAG"),
    mode: Mode = "l2",
    tick_size: str = "0.01",
    start_price: float = 100.0,
    params: SyntheticParams | None = None,
    pair: PairParams | None = None,
    session_s: float | None = None,
) -> tuple[DayData, DayData]:
    """A leader day and its follower, about ``n_events`` events each.

    ``leader`` and ``follower`` are (venue, symbol). The session opens at 09:30 New York
    and lasts until 16:00, or ``session_s`` seconds (a short session packs the same events
    densely: a test's lag then spans several messages). Without pushes the leader is
    exactly ``generate_day(seed=seed)`` over that session; the same arguments always give
    bit-identical days.
    """
    p = params if params is not None else SyntheticParams()
    pp = pair if pair is not None else PairParams()
    if leader == follower:
        msg = f"leader and follower are both {leader[0]}/{leader[1]}; give two instruments"
        raise ConfigError(msg)
    t_open, t_close = market_hours_ns(date)
    if session_s is not None:
        if not 0 < session_s * NS_PER_S <= t_close - t_open:
            msg = f"session_s={session_s}: give 0 < session_s <= {(t_close - t_open) // NS_PER_S}"
            raise ConfigError(msg)
        t_close = t_open + round(session_s * NS_PER_S)
    start_ticks = round(start_price / float(tick_size))
    latent = draw_latent(
        t_open=t_open, t_close=t_close, start_ticks=start_ticks, seed=seed, params=p
    )
    latent = pushed(latent, pp.pushes)
    lead = generate_day(
        symbol=leader[1],
        venue=leader[0],
        date=date,
        mode=mode,
        n_events=n_events,
        seed=seed,
        tick_size=tick_size,
        params=p,
        latent=latent,
    )
    lag = _follower_day(
        latent,
        leader_key=lead.instrument.key,
        venue=follower[0],
        symbol=follower[1],
        date=date,
        mode=mode,
        n_events=n_events,
        seed=seed,
        tick_size=tick_size,
        params=p,
        pair=pp,
    )
    return lead, lag


def stored_mid_path(
    store: Any, venue: str, symbol: str, date: dt.date, *, grid_ns: float
) -> tuple[int, int, np.ndarray]:
    """``(t_open, t_close, mid)`` of a stored day: its book's mid in ticks, sampled on a grid
    of ``grid_ns`` from its first two-sided book (last value at or before each point)."""
    from framework.book.replay import replay_book_rows

    ev = store.read(venue, symbol, date)
    l3 = bool(np.any(ev["kind"] == KIND_ADD))
    rows = replay_book_rows(ev, levels=1, l3=l3)
    ts = ev["exch_ts"][(ev["flags"] & FLAG_LAST) != 0]
    ask, bid = rows[:, 0], rows[:, 2]
    ok = (ask != np.iinfo(np.int64).min) & (bid != np.iinfo(np.int64).min) & (ask > bid)
    if not ok.any():
        msg = f"{venue}/{symbol}/{date} never has a two-sided book; it cannot lead a follower"
        raise ConfigError(msg)
    ts, mids = ts[ok], 0.5 * (ask[ok] + bid[ok])
    t_open, t_close = int(ts[0]), int(ev["exch_ts"][-1]) + 1
    grid = t_open + np.arange(math.ceil((t_close - t_open) / grid_ns) + 1) * grid_ns
    idx = np.searchsorted(ts, grid, side="right") - 1
    return t_open, t_close, mids[np.maximum(idx, 0)].astype(np.float64)


def follow_stored(
    store: Any,
    leader: tuple[str, str, dt.date],
    *,
    follower: tuple[str, str],
    n_events: int = 1_000_000,
    seed: int = 0,
    mode: Mode = "l2",
    params: SyntheticParams | None = None,
    pair: PairParams | None = None,
) -> DayData:
    """A synthetic follower of a stored day ``(venue, symbol, date)``, on the same tick grid.

    The session is the stored day's span; its one regime segment is labelled ``calm`` (the
    message rate is flat; the mid's own dynamics come from the data). ``pair.pushes`` are
    not applied: a stored leader cannot be pushed.
    """
    p = params if params is not None else SyntheticParams()
    pp = pair if pair is not None else PairParams()
    venue, symbol, date = leader
    if (venue, symbol) == follower:
        msg = f"the follower cannot be the stored instrument {venue}/{symbol} itself"
        raise ConfigError(msg)
    if pp.pushes:
        msg = "pushes apply to a generated leader; a stored day cannot be pushed"
        raise ConfigError(msg)
    grid_ns = p.mid_grid_ms * 1e6
    t_open, t_close, mid = stored_mid_path(store, venue, symbol, date, grid_ns=grid_ns)
    seg = Segments(
        start_ns=np.array([t_open], np.int64),
        end_ns=np.array([t_close], np.int64),
        regime=np.array([CALM], np.int64),
        drift=np.zeros(1),
        volatility=np.full(1, np.nan),  # not modelled: the mid is the data's
    )
    latent = LatentPath(t_open=t_open, t_close=t_close, segments=seg, mid=mid, grid_ns=grid_ns)
    tick = store.instrument(venue, symbol, date).tick_size
    return _follower_day(
        latent,
        leader_key=f"{venue}/{symbol}",
        venue=follower[0],
        symbol=follower[1],
        date=date,
        mode=mode,
        n_events=n_events,
        seed=seed,
        tick_size=str(tick),
        params=p,
        pair=pp,
    )


__all__ = [
    "PairParams",
    "follow_stored",
    "follower_latent",
    "generate_pair",
    "pushed",
    "stored_mid_path",
]
