"""Latency and queue-position models (compiled; state in the engine arena)."""

from __future__ import annotations

import math

from numba import njit

from framework.engine.enums import LAT_CONSTANT, LAT_FEED, QUEUE_LOG, QUEUE_POWER, QUEUE_RISK_AVERSE
from framework.engine.state import (
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


@njit(cache=True)
def _series_at(st: State, now: int, col: int) -> float:
    """Latency of the empirical series row in force at ``now`` (rows sorted by time)."""
    n = st.h[H_N_LAT_SERIES]
    i = st.h[H_LAT_IDX]
    while i + 1 < n and st.lat_series[i + 1, 0] <= now:
        i += 1
    st.h[H_LAT_IDX] = i
    return st.lat_series[i, col]


@njit(cache=True)
def entry_latency(st: State, now: int) -> int:
    """Nanoseconds from the strategy sending an order to the venue receiving it."""
    m = st.h[H_LAT_MODEL]
    if m == LAT_CONSTANT:
        return int(st.hf[HF_LAT_ENTRY])
    if m == LAT_FEED:
        return max(0, int(st.hf[HF_LAT_ENTRY] * st.h[H_FEED_LAT]))
    return max(0, int(_series_at(st, now, 1)))


@njit(cache=True)
def response_latency(st: State, now: int) -> int:
    """Nanoseconds from the venue acting to the strategy learning of it."""
    m = st.h[H_LAT_MODEL]
    if m == LAT_CONSTANT:
        return int(st.hf[HF_LAT_RESP])
    if m == LAT_FEED:
        return max(0, int(st.hf[HF_LAT_RESP] * st.h[H_FEED_LAT]))
    return max(0, int(_series_at(st, now, 2)))


@njit(cache=True)
def _f(model: int, n: float, x: float) -> float:
    if model == QUEUE_LOG:
        return math.log1p(x)
    return x**n


@njit(cache=True)
def front_after_decrease(st: State, front: float, old_qty: int, new_qty: int) -> float:
    """Our estimated queue position after a level shrinks from ``old_qty`` to ``new_qty``.

    Risk-averse: nothing ahead of us cancels; we only move up when the level becomes shorter
    than our position. Probabilistic (Rigtorp / hftbacktest's family): a decrease of ``d``
    lots falls behind us with probability ``f(back) / (f(front) + f(back))``, so the part
    ``d * f(front) / (f(front) + f(back))`` is taken from the front.
    """
    model = st.h[H_QUEUE_MODEL]
    if new_qty >= old_qty:
        return min(front, float(new_qty))
    if model == QUEUE_RISK_AVERSE or not (model == QUEUE_POWER or model == QUEUE_LOG):
        return min(front, float(new_qty))
    d = float(old_qty - new_qty)
    back = max(float(old_qty) - front, 0.0)
    ff = _f(model, st.hf[HF_QUEUE_N], front)
    fb = _f(model, st.hf[HF_QUEUE_N], back)
    share = 0.5 if ff + fb <= 0.0 else ff / (ff + fb)
    est = front - d * share
    return max(0.0, min(est, float(new_qty)))
