"""Pre-trade risk checks and the kill switch, compiled into the order path.

Every order a strategy submits passes :func:`check_order` before it can leave for the venue;
a denial carries a reason code (``DENY_*``) and is recorded. After every fill and every
equity sample :func:`check_kill_switch` compares the strategy's equity with its loss and
drawdown limits; tripping it halts the strategy and cancels all its orders.
"""

from __future__ import annotations

import math

from numba import njit

from framework.book.l2 import NO_PRICE, l2_best_ask, l2_best_bid
from framework.core.events import BUY
from framework.engine.enums import (
    DENY_BAD_ORDER,
    DENY_HALTED,
    DENY_KILL_SWITCH,
    DENY_MAX_NOTIONAL,
    DENY_MAX_OPEN_ORDERS,
    DENY_MAX_ORDER_QTY,
    DENY_MAX_POSITION_INSTRUMENT,
    DENY_MAX_POSITION_STRATEGY,
    DENY_NONE,
    DENY_PRICE_COLLAR,
    DENY_RATE_LIMIT,
    DENY_REDUCE_ONLY,
    DENY_SELF_TRADE,
    ORD_MARKET,
    TS_HALTED,
    TS_REDUCING,
)
from framework.engine.state import (
    H_N_REST,
    IF_LOT,
    IF_MULT,
    IF_TICK,
    O_INST,
    O_PRICE,
    O_SIDE,
    P_OPEN_BUY,
    P_OPEN_SELL,
    P_POS,
    R_COLLAR_TICKS,
    R_MAX_NOTIONAL,
    R_MAX_OPEN,
    R_MAX_ORDER_QTY,
    R_MAX_POS_INST,
    R_MAX_POS_STRAT,
    R_RATE_BURST,
    R_RATE_PER_S,
    R_SELF_TRADE,
    S_KILLED,
    S_LAST_REFILL,
    S_N_OPEN,
    S_STATE,
    SF_PEAK_EQUITY,
    SF_TOKENS,
    State,
)

NS = 1e9


@njit(cache=True, inline="always")
def _exposure(st: State, sid: int, inst: int) -> int:
    """Worst-case absolute position of (strategy, instrument) if its open orders all fill."""
    _pos = st.pos
    p = _pos[sid, inst]
    return max(abs(p[P_POS] + p[P_OPEN_BUY]), abs(p[P_POS] - p[P_OPEN_SELL]))


@njit(cache=True, inline="always")
def _take_token(st: State, sid: int, now: int) -> bool:
    _risk = st.risk
    _strat = st.strat
    _stratf = st.stratf
    lim = _risk[sid]
    rate = lim[R_RATE_PER_S]
    if not math.isfinite(rate):
        return True
    burst = lim[R_RATE_BURST] if math.isfinite(lim[R_RATE_BURST]) else max(rate, 1.0)
    s = _strat[sid]
    if s[S_LAST_REFILL] == 0:
        _stratf[sid, SF_TOKENS] = burst
    else:
        dt = (now - s[S_LAST_REFILL]) / NS
        _stratf[sid, SF_TOKENS] = min(burst, _stratf[sid, SF_TOKENS] + dt * rate)
    s[S_LAST_REFILL] = now
    if _stratf[sid, SF_TOKENS] < 1.0:
        return False
    _stratf[sid, SF_TOKENS] -= 1.0
    return True


@njit(cache=True, inline="always")
def check_order(
    st: State,
    sid: int,
    inst: int,
    side: int,
    price: int,
    qty: int,
    order_type: int,
    now: int,
    new_size: int = 0,
) -> int:
    """``DENY_NONE`` or the first limit the order would break.

    For a new order ``qty`` is its size. A modify passes ``new_size`` > 0, the order's new size,
    and ``qty`` >= 0, the lots it adds: size and notional limits apply to the new size,
    position limits to the added lots, and the open-order count does not grow.
    """
    _h = st.h
    _inst = st.inst
    _instf = st.instf
    _lmeta = st.lmeta
    _lqty = st.lqty
    _ord = st.ord
    _pos = st.pos
    _rest = st.rest
    _risk = st.risk
    _strat = st.strat
    size = qty if new_size <= 0 else new_size
    if inst < 0 or inst >= _inst.shape[0] or size <= 0 or qty < 0 or (side != 1 and side != -1):
        return DENY_BAD_ORDER
    s = _strat[sid]
    lim = _risk[sid]
    if s[S_KILLED]:
        return DENY_KILL_SWITCH
    if s[S_STATE] == TS_HALTED:
        return DENY_HALTED
    p = _pos[sid, inst]
    if s[S_STATE] == TS_REDUCING:
        pos = p[P_POS]
        grows = (side == BUY and pos + p[P_OPEN_BUY] + qty > 0) or (
            side != BUY and pos - p[P_OPEN_SELL] - qty < 0
        )
        if grows:
            return DENY_REDUCE_ONLY
    if size > lim[R_MAX_ORDER_QTY]:
        return DENY_MAX_ORDER_QTY
    meta = _lmeta[inst]
    book = _lqty[inst]
    bb = l2_best_bid(meta, book)
    ba = l2_best_ask(meta, book)
    ref = price
    if order_type == ORD_MARKET:
        ref = ba if side == BUY else bb
    f = _instf[inst]
    if (
        ref != NO_PRICE
        and size * abs(ref) * f[IF_TICK] * f[IF_LOT] * f[IF_MULT] > lim[R_MAX_NOTIONAL]
    ):
        return DENY_MAX_NOTIONAL
    if (
        order_type != ORD_MARKET
        and math.isfinite(lim[R_COLLAR_TICKS])
        and bb != NO_PRICE
        and ba != NO_PRICE
    ):
        mid2 = bb + ba  # twice the mid, to stay in integers
        if abs(2 * price - mid2) > 2.0 * lim[R_COLLAR_TICKS]:
            return DENY_PRICE_COLLAR
    new_pos = p[P_POS] + p[P_OPEN_BUY] + qty if side == BUY else p[P_POS] - p[P_OPEN_SELL] - qty
    if abs(new_pos) > lim[R_MAX_POS_INST] and abs(new_pos) > abs(p[P_POS]):
        return DENY_MAX_POSITION_INSTRUMENT
    if math.isfinite(lim[R_MAX_POS_STRAT]):
        total = 0
        for j in range(_inst.shape[0]):
            total += abs(new_pos) if j == inst else _exposure(st, sid, j)
        if total > lim[R_MAX_POS_STRAT] and abs(new_pos) > abs(p[P_POS]):
            return DENY_MAX_POSITION_STRATEGY
    if new_size <= 0 and s[S_N_OPEN] + 1 > lim[R_MAX_OPEN]:
        return DENY_MAX_OPEN_ORDERS
    if lim[R_SELF_TRADE] > 0.0:
        for j in range(_h[H_N_REST]):
            o = _ord[_rest[j]]
            if o[O_INST] != inst or o[O_SIDE] == side:
                continue
            if order_type == ORD_MARKET:
                return DENY_SELF_TRADE
            if (side == BUY and price >= o[O_PRICE]) or (side != BUY and price <= o[O_PRICE]):
                return DENY_SELF_TRADE
    if not _take_token(st, sid, now):
        return DENY_RATE_LIMIT
    return DENY_NONE


@njit(cache=True, inline="always")
def kill_switch_breached(
    st: State, sid: int, equity: float, max_loss: float, max_dd: float
) -> bool:
    """Loss or drawdown limit broken at ``equity`` (updates the running peak)."""
    _stratf = st.stratf
    peak = max(_stratf[sid, SF_PEAK_EQUITY], equity)
    _stratf[sid, SF_PEAK_EQUITY] = peak
    return equity < -max_loss or peak - equity > max_dd


__all__ = ["check_order", "kill_switch_breached"]
