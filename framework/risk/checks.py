"""Pre-trade risk checks and the kill switch, compiled into the order path.

Every order a strategy submits passes :func:`check_order` before it can leave for the venue;
a denial carries a reason code (``DENY_*``) and is recorded. After every fill and every
equity sample :func:`kill_switch_breached` compares the strategy's equity with its loss and
drawdown limits; tripping it halts the strategy and cancels all its orders.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from framework.arena.enums import (
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
    TIF_FOK,
    TIF_IOC,
    TS_HALTED,
    TS_REDUCING,
)
from framework.arena.state import (
    H_MAX_ORDERS,
    IF_LOT,
    IF_MULT,
    IF_TICK,
    O_CXL_SENT,
    O_INST,
    O_LOCAL_OPEN,
    O_LPRICE,
    O_MOD_SENT,
    O_PEND_PRICE,
    O_SIDE,
    O_TIF,
    O_TYPE,
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
    S_ACCOUNT,
    S_KILLED,
    S_LAST_REFILL,
    S_N_FREE,
    S_N_OPEN,
    S_STATE,
    SF_PEAK_EQUITY,
    SF_TOKENS,
    State,
)
from framework.book.l2 import NO_PRICE, l2_best_ask, l2_best_bid, l2_qty_at
from framework.core.events import BUY
from framework.core.jit import inline

NS = 1e9


@inline
def _exposure(p: npt.NDArray[np.int64]) -> int:
    """Worst-case absolute position of one (strategy, instrument) row of the position table.

    The position lies between its short bound (position less every sell lot that may still
    fill) and its long bound (position plus every buy lot), whatever the venue has done that
    the strategy has not heard of yet: a fill in flight moves lots from open to position.
    """
    return max(abs(p[P_POS] + p[P_OPEN_BUY]), abs(p[P_POS] - p[P_OPEN_SELL]))


@inline
def worst_price(st: State, inst: int, side: int, price: int, qty: int, order_type: int) -> int:
    """The largest |price| in ticks ``qty`` lots of an order can trade at, for its notional.

    A limit order's limit. A market order has none: it is valued at the levels of the
    strategy's book it would take, up to the one that completes ``qty`` (the deepest for a
    buy, the touch for a sell when prices are positive); ``NO_PRICE`` when that side of the
    book cannot fill it, as then nothing bounds the price.
    """
    if order_type != ORD_MARKET:
        return abs(price)
    _lmeta = st.lmeta
    _lqty = st.lqty
    meta = _lmeta[inst]
    book = _lqty[inst]
    px = l2_best_ask(meta, book) if side == BUY else l2_best_bid(meta, book)
    if px == NO_PRICE:
        return NO_PRICE
    step = 1 if side == BUY else -1
    worst = 0
    got = 0
    for _ in range(book.shape[1]):  # a level further away than the window holds none
        q = l2_qty_at(meta, book, -side, px)
        if q > 0:
            worst = max(worst, abs(px))
            got += q
            if got >= qty:
                return worst
        px += step
    return NO_PRICE


@inline
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


@inline
def _self_trade(st: State, sid: int, inst: int, side: int, price: int, order_type: int) -> bool:
    """Could an order (``price`` ignored for a market order) trade against a working order of
    the same account on the other side: the strategy's own or another's that trades for the
    same account (``S_ACCOUNT``; isolated copies have accounts of their own, so they never
    deny each other)? Judged from the strategies' own record of their orders, as a
    pre-trade check must be, on what the venue will hold when this order reaches it: a
    strategy's requests reach the venue in the order sent (messages.py), so orders still on
    their way count, orders with a cancel in flight do not (it arrives first), and an order
    with a modify in flight counts at the modify's price. Only orders that can rest count
    (not IOC / FOK / market)."""
    _h = st.h
    _ord = st.ord
    _free = st.free
    _strat = st.strat
    m = _h[H_MAX_ORDERS]
    account = _strat[sid, S_ACCOUNT]
    for other in range(_strat.shape[0]):
        if _strat[other, S_ACCOUNT] != account:
            continue
        for j in range(other * m + _strat[other, S_N_FREE], (other + 1) * m):  # its live ones
            o = _ord[_free[j]]
            if o[O_INST] != inst or o[O_SIDE] == side or o[O_LOCAL_OPEN] <= 0:
                continue
            if o[O_CXL_SENT] or o[O_TYPE] == ORD_MARKET or o[O_TIF] == TIF_IOC:
                continue
            if o[O_TIF] == TIF_FOK:
                continue
            if order_type == ORD_MARKET:
                return True
            px = o[O_PEND_PRICE] if o[O_MOD_SENT] else o[O_LPRICE]
            if (side == BUY and price >= px) or (side != BUY and price <= px):
                return True
    return False


@inline
def check_order(
    st: State,
    sid: int,
    inst: int,
    side: int,
    price: int,
    size: int,
    add: int,
    open_lots: int,
    filled_worth: int,
    old_px: int,
    order_type: int,
    new_order: bool,
    now: int,
) -> int:
    """``DENY_NONE`` or the first limit the request would break.

    Every request counts at its worst case, from the moment it is sent until the venue's
    answer reaches the strategy. ``size`` is the order's size once the request is done (its
    new size for a modify); ``add`` the lots the request adds to what may still fill on
    ``side`` (all of a new order; what a modify asks above the larger of the order's
    confirmed and requested sizes). Position limits bound each side apart: the position
    plus every buy lot that may still fill, the position less every sell lot, so fills the
    venue made that the strategy has not heard of yet are covered too.

    The notional is the order's worst case afterwards: ``filled_worth`` (ticks x lots
    filled so far) plus ``open_lots`` at the worst price they may fill at — the larger of
    ``old_px`` (the confirmed price, which fills in flight may carry) and the request's
    price (:func:`worst_price`). A new order (``new_order``) also counts against the
    open-order limit; it stays counted until it is finished, a cancel in flight included.
    """
    _inst = st.inst
    _instf = st.instf
    _lmeta = st.lmeta
    _lqty = st.lqty
    _pos = st.pos
    _risk = st.risk
    _strat = st.strat
    if inst < 0 or inst >= _inst.shape[0] or size <= 0 or add < 0 or (side != 1 and side != -1):
        return DENY_BAD_ORDER
    s = _strat[sid]
    lim = _risk[sid]
    if s[S_KILLED]:
        return DENY_KILL_SWITCH
    if s[S_STATE] == TS_HALTED:
        return DENY_HALTED
    p = _pos[sid, inst]
    pos = p[P_POS]
    # each side's worst-case position after the request; only the order's side grows
    long_after = pos + p[P_OPEN_BUY] + (add if side == BUY else 0)
    short_after = pos - p[P_OPEN_SELL] - (add if side != BUY else 0)
    grown = long_after if side == BUY else -short_after  # in the order's direction
    if s[S_STATE] == TS_REDUCING and add > 0 and grown > 0:
        return DENY_REDUCE_ONLY
    if size > lim[R_MAX_ORDER_QTY]:
        return DENY_MAX_ORDER_QTY
    if math.isfinite(lim[R_MAX_NOTIONAL]):
        px = worst_price(st, inst, side, price, open_lots, order_type)
        if px == NO_PRICE:
            return DENY_MAX_NOTIONAL
        f = _instf[inst]
        worth = float(abs(filled_worth)) + float(open_lots) * max(px, abs(old_px))
        if worth * f[IF_TICK] * f[IF_LOT] * f[IF_MULT] > lim[R_MAX_NOTIONAL]:
            return DENY_MAX_NOTIONAL
    meta = _lmeta[inst]
    book = _lqty[inst]
    if order_type != ORD_MARKET and math.isfinite(lim[R_COLLAR_TICKS]):
        bb = l2_best_bid(meta, book)
        ba = l2_best_ask(meta, book)
        if bb != NO_PRICE and ba != NO_PRICE:
            mid2 = bb + ba  # twice the mid, to stay in integers
            if abs(2 * price - mid2) > 2.0 * lim[R_COLLAR_TICKS]:
                return DENY_PRICE_COLLAR
    if add > 0:
        if grown > lim[R_MAX_POS_INST]:
            return DENY_MAX_POSITION_INSTRUMENT
        if math.isfinite(lim[R_MAX_POS_STRAT]):
            mine = max(abs(long_after), abs(short_after))
            if mine > _exposure(p):
                total = mine
                for j in range(_inst.shape[0]):
                    if j != inst:
                        total += _exposure(_pos[sid, j])
                if total > lim[R_MAX_POS_STRAT]:
                    return DENY_MAX_POSITION_STRATEGY
    if new_order and s[S_N_OPEN] + 1 > lim[R_MAX_OPEN]:
        return DENY_MAX_OPEN_ORDERS
    if lim[R_SELF_TRADE] > 0.0 and _self_trade(st, sid, inst, side, price, order_type):
        return DENY_SELF_TRADE
    if not _take_token(st, sid, now):
        return DENY_RATE_LIMIT
    return DENY_NONE


@inline
def kill_switch_breached(
    st: State, sid: int, equity: float, max_loss: float, max_dd: float
) -> bool:
    """Loss or drawdown limit broken at ``equity`` (updates the running peak)."""
    _stratf = st.stratf
    peak = max(_stratf[sid, SF_PEAK_EQUITY], equity)
    _stratf[sid, SF_PEAK_EQUITY] = peak
    return equity < -max_loss or peak - equity > max_dd


__all__ = ["check_order", "kill_switch_breached", "worst_price"]
