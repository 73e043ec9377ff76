"""Latency and queue-position models (compiled; state in the engine arena)."""

from __future__ import annotations

import math

from framework.arena.enums import LAT_CONSTANT, LAT_FEED, QUEUE_LOG, QUEUE_POWER, QUEUE_RISK_AVERSE
from framework.arena.state import (
    H_FEED_LAT,
    H_LAT_IDX,
    H_LAT_MODEL,
    H_N_LAT_SERIES,
    H_QUEUE_MODEL,
    HF_LAT_ENTRY,
    HF_LAT_RESP,
    HF_QUEUE_N,
    State,
)
from framework.core.jit import inline


@inline
def _series_at(st: State, now: int, col: int) -> float:
    """Latency of the empirical series row in force at ``now`` (rows sorted by time)."""
    _h = st.h
    _lat_series = st.lat_series
    n = _h[H_N_LAT_SERIES]
    i = _h[H_LAT_IDX]
    while i + 1 < n and _lat_series[i + 1, 0] <= now:
        i += 1
    _h[H_LAT_IDX] = i
    return _lat_series[i, col]


@inline
def entry_latency(st: State, now: int) -> int:
    """Nanoseconds from the strategy sending an order to the venue receiving it."""
    _h = st.h
    _hf = st.hf
    m = _h[H_LAT_MODEL]
    if m == LAT_CONSTANT:
        return int(_hf[HF_LAT_ENTRY])
    if m == LAT_FEED:
        return max(0, int(_hf[HF_LAT_ENTRY] * _h[H_FEED_LAT]))
    return max(0, int(_series_at(st, now, 1)))


@inline
def response_latency(st: State, now: int) -> int:
    """Nanoseconds from the venue acting to the strategy learning of it."""
    _h = st.h
    _hf = st.hf
    m = _h[H_LAT_MODEL]
    if m == LAT_CONSTANT:
        return int(_hf[HF_LAT_RESP])
    if m == LAT_FEED:
        return max(0, int(_hf[HF_LAT_RESP] * _h[H_FEED_LAT]))
    return max(0, int(_series_at(st, now, 2)))


@inline
def _f(model: int, n: float, x: float) -> float:
    if model == QUEUE_LOG:
        return math.log1p(x)
    # the usual exponents without a pow() call: this runs on every update of our level
    if n == 2.0:
        return x * x
    if n == 3.0:
        return x * x * x
    return x**n


@inline
def front_after_decrease(st: State, front: float, old_qty: int, new_qty: int) -> float:
    """:func:`queue_front` with the run's queue model."""
    _h = st.h
    _hf = st.hf
    return queue_front(_h[H_QUEUE_MODEL], _hf[HF_QUEUE_N], front, old_qty, new_qty)


@inline
def queue_front(model: int, n: float, front: float, old_qty: int, new_qty: int) -> float:
    """Our estimated queue position after a level shrinks from ``old_qty`` to ``new_qty``.

    Risk-averse: nothing ahead of us cancels; we only move up when the level becomes shorter
    than our position. Probabilistic (Rigtorp / hftbacktest's family): a decrease of ``d``
    lots falls behind us with probability ``f(back) / (f(front) + f(back))``, so the part
    ``d * f(front) / (f(front) + f(back))`` is taken from the front.
    """
    if new_qty >= old_qty:
        return min(front, float(new_qty))
    if model == QUEUE_RISK_AVERSE or not (model == QUEUE_POWER or model == QUEUE_LOG):
        return min(front, float(new_qty))
    d = float(old_qty - new_qty)
    back = max(float(old_qty) - front, 0.0)
    ff = _f(model, n, front)
    fb = _f(model, n, back)
    share = 0.5 if ff + fb <= 0.0 else ff / (ff + fb)
    est = front - d * share
    return max(0.0, min(est, float(new_qty)))
