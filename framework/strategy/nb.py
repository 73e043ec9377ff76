"""The strategy API as compiled functions (the fast path).

A compiled strategy's callbacks receive ``ctx`` (the engine state) and call these. The
Python :class:`~framework.strategy.context.Context` calls the very same functions, so
both paths share one implementation.

Prices are integer ticks, quantities integer lots, times int64 ns. ``sid`` is the
strategy's index in the run (passed to every callback).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from framework.arena.enums import (
    ORD_LIMIT,
    ORD_MARKET,
    ST_NONE,
    TIF_FOK,
    TIF_GTC,
    TIF_IOC,
    TIF_POST_ONLY,
)
from framework.arena.fnptr import call_i64
from framework.arena.state import (
    H_FN_CANCEL,
    H_FN_MODIFY,
    H_FN_SUBMIT,
    H_NOW,
    H_TIMER_DIRTY,
    H_WAKE_INST,
    I_BA,
    I_BAQ,
    I_BB,
    I_BBQ,
    I_LAST_TRADE_PX,
    I_LAST_TRADE_QTY,
    I_LAST_TRADE_SIDE,
    IF_MAKER_FEE,
    IF_TAKER_FEE,
    O_FILLED,
    O_LPRICE,
    O_LQTY,
    O_STATUS,
    P_N_DONE,
    P_N_OPEN,
    P_OPEN_BUY,
    P_OPEN_SELL,
    P_POS,
    RESP_ACK,
    RESP_CANCEL_REJECT,
    RESP_CANCELED,
    RESP_EXPIRED,
    RESP_MODIFIED,
    RESP_REJECT,
    S_STATE,
    S_TIMER_AT,
    S_TIMER_EVERY,
    slot_of,
    unpack_raw,
)
from framework.book.l2 import (
    NO_PRICE,
    l2_depth,
    l2_qty_at,
)
from framework.core.jit import inline, outline
from framework.portfolio.accounting import strategy_equity

#: what compiled callbacks receive as ``ctx``: the engine's arena (one int64 array). Each
#: function below builds the views it needs from it; inlined, that costs a few loads, and
#: passing one array to a strategy's own helper functions is as cheap as a call gets.
Ctx = npt.NDArray[np.int64]

__all__ = [
    "NO_PRICE",
    "RESP_ACK",
    "RESP_CANCELED",
    "RESP_CANCEL_REJECT",
    "RESP_EXPIRED",
    "RESP_MODIFIED",
    "RESP_REJECT",
    "ST_NONE",
    "TIF_FOK",
    "TIF_GTC",
    "TIF_IOC",
    "TIF_POST_ONLY",
    "ask_qty",
    "best_ask",
    "best_bid",
    "bid_qty",
    "cancel",
    "depth",
    "equity",
    "event_inst",
    "feature",
    "finished_count",
    "last_trade",
    "level_qty",
    "maker_fee",
    "modify",
    "now",
    "open_buy_qty",
    "open_orders",
    "open_sell_qty",
    "order_filled",
    "order_price",
    "order_qty",
    "order_status",
    "position",
    "set_timer",
    "set_trading_state",
    "submit",
    "submit_market",
    "taker_fee",
]


@inline
def now(ctx: Ctx) -> int:
    """Current local time (ns): the strategy never sees anything later."""
    st = unpack_raw(ctx)
    _h = st.h
    return _h[H_NOW]


@inline
def _touch(ctx: Ctx, inst: int, col: int) -> int:
    """One word of the touch the strategy view last saw at a message boundary."""
    st = unpack_raw(ctx)
    _inst = st.inst
    return _inst[inst, col]


@inline
def best_bid(ctx: Ctx, inst: int) -> int:
    """Best bid (ticks) as of the last whole message the strategy saw, or NO_PRICE."""
    return _touch(ctx, inst, I_BB)


@inline
def best_ask(ctx: Ctx, inst: int) -> int:
    """Best ask (ticks), or NO_PRICE."""
    return _touch(ctx, inst, I_BA)


@inline
def bid_qty(ctx: Ctx, inst: int) -> int:
    """Lots at the best bid (0 when none)."""
    return _touch(ctx, inst, I_BBQ)


@inline
def ask_qty(ctx: Ctx, inst: int) -> int:
    """Lots at the best ask."""
    return _touch(ctx, inst, I_BAQ)


@inline(python=True)  # the Python Context calls it too
def level_qty(ctx: Ctx, inst: int, side: int, price: int) -> int:
    st = unpack_raw(ctx)
    _lmeta = st.lmeta
    _lqty = st.lqty
    return l2_qty_at(_lmeta[inst], _lqty[inst], side, price)


@outline(python=True)  # the Python Context calls it too
def depth(ctx: Ctx, inst: int, side: int, n: int, out: npt.NDArray[np.int64]) -> int:
    """Up to ``n`` levels of ``side`` as (price, qty) rows of ``out``, best first (as
    Context.depth); returns how many."""
    st = unpack_raw(ctx)
    return l2_depth(st.lmeta[inst], st.lqty[inst], side, n, out)


@inline
def position(ctx: Ctx, sid: int, inst: int) -> int:
    """Position in lots as the strategy knows it (fills that have reached it)."""
    st = unpack_raw(ctx)
    _pos = st.pos
    return _pos[sid, inst, P_POS]


@inline
def open_buy_qty(ctx: Ctx, sid: int, inst: int) -> int:
    st = unpack_raw(ctx)
    _pos = st.pos
    return _pos[sid, inst, P_OPEN_BUY]


@inline
def open_sell_qty(ctx: Ctx, sid: int, inst: int) -> int:
    st = unpack_raw(ctx)
    _pos = st.pos
    return _pos[sid, inst, P_OPEN_SELL]


@inline
def open_orders(ctx: Ctx, sid: int, inst: int) -> int:
    st = unpack_raw(ctx)
    _pos = st.pos
    return _pos[sid, inst, P_N_OPEN]


@inline
def finished_count(ctx: Ctx, sid: int, inst: int) -> int:
    """Orders of ours on ``inst`` that have finished so far (filled, cancelled, rejected or
    expired). It only grows: while it stands still, every order that was working still is."""
    st = unpack_raw(ctx)
    _pos = st.pos
    return _pos[sid, inst, P_N_DONE]


@inline(python=True)  # the Python Context calls it too
def equity(ctx: Ctx, sid: int) -> float:
    """Cash plus positions marked to the mid, in currency (starts at 0)."""
    st = unpack_raw(ctx)
    return strategy_equity(st, sid)[0]


@inline
def _core(ctx: Ctx, word: int) -> int:
    """Address of a core entry point (framework/kernel/core.py) from the header."""
    st = unpack_raw(ctx)
    _h = st.h
    return _h[word]


# The order path (risk checks, the order table, the request queue) is the engine core's:
# called through its address, so a strategy's callbacks compile in a second or two instead
# of carrying (and compiling) the engine's code.
@inline
def submit(
    ctx: Ctx, sid: int, inst: int, side: int, price: int, qty: int, tif: int = TIF_GTC
) -> int:
    """A limit order; returns its id (> 0) or ``-reason`` if risk denied it."""
    i8 = np.int64
    args = (i8(ctx.ctypes.data), i8(sid), i8(inst), i8(side), i8(price), i8(qty),
            i8(ORD_LIMIT), i8(tif))
    return call_i64(_core(ctx, H_FN_SUBMIT), args)


@inline(python=True)  # the Python Context calls it too
def submit_market(ctx: Ctx, sid: int, inst: int, side: int, qty: int, tif: int = TIF_IOC) -> int:
    """A market order (IOC unless ``tif`` says otherwise, as ``Context.submit_market``)."""
    i8 = np.int64
    args = (i8(ctx.ctypes.data), i8(sid), i8(inst), i8(side), i8(0), i8(qty),
            i8(ORD_MARKET), i8(tif))
    return call_i64(_core(ctx, H_FN_SUBMIT), args)


@inline
def cancel(ctx: Ctx, sid: int, oid: int) -> bool:
    """Ask to cancel order ``oid``; False when it is not live (or a cancel is in flight)."""
    i8 = np.int64
    return call_i64(_core(ctx, H_FN_CANCEL), (i8(ctx.ctypes.data), i8(sid), i8(oid))) != 0


@inline(python=True)  # the Python Context calls it too
def modify(ctx: Ctx, sid: int, oid: int, price: int, qty: int) -> int:
    """Change an order's price and/or total size: DENY_NONE (0), a deny reason, or -1 when
    the order is not live."""
    i8 = np.int64
    args = (i8(ctx.ctypes.data), i8(sid), i8(oid), i8(price), i8(qty))
    return call_i64(_core(ctx, H_FN_MODIFY), args)


@inline
def order_status(ctx: Ctx, sid: int, oid: int) -> int:
    """ST_* of a live order, ST_NONE once it is finished (see on_order for how it ended)."""
    st = unpack_raw(ctx)
    _ord = st.ord
    slot = slot_of(st, sid, oid)
    return ST_NONE if slot < 0 else _ord[slot, O_STATUS]


@inline
def order_price(ctx: Ctx, sid: int, oid: int) -> int:
    st = unpack_raw(ctx)
    _ord = st.ord
    slot = slot_of(st, sid, oid)
    return NO_PRICE if slot < 0 else _ord[slot, O_LPRICE]  # as the venue last confirmed it


@inline
def order_qty(ctx: Ctx, sid: int, oid: int) -> int:
    st = unpack_raw(ctx)
    _ord = st.ord
    slot = slot_of(st, sid, oid)
    return 0 if slot < 0 else _ord[slot, O_LQTY]  # as the venue last confirmed it


@inline
def order_filled(ctx: Ctx, sid: int, oid: int) -> int:
    st = unpack_raw(ctx)
    _ord = st.ord
    slot = slot_of(st, sid, oid)
    return 0 if slot < 0 else _ord[slot, O_FILLED]


@inline
def feature(ctx: Ctx, inst: int, which: int) -> float:
    """Latest value of a feature (``framework.features.F_*``; ``F_REGIME`` needs the run's
    ``feature_model``) at the strategy's time; NaN until defined, or when the run computes
    no features (``Strategy.features = True``)."""
    st = unpack_raw(ctx)
    _feat = st.feat
    return _feat[inst, which]


@inline(python=True)  # the Python Context calls it too
def set_trading_state(ctx: Ctx, sid: int, state: int) -> None:
    """TS_ACTIVE, TS_REDUCING (only orders that shrink the position) or TS_HALTED."""
    st = unpack_raw(ctx)
    _strat = st.strat
    _strat[sid, S_STATE] = state


@inline(python=True)  # the Python Context calls it too
def set_timer(ctx: Ctx, sid: int, every_ns: int, first_in_ns: int = -1) -> None:
    """Call on_timer every ``every_ns`` (0 stops it); the first call after ``first_in_ns``."""
    st = unpack_raw(ctx)
    _h = st.h
    _strat = st.strat
    first = every_ns if first_in_ns < 0 else first_in_ns
    _strat[sid, S_TIMER_EVERY] = every_ns
    _strat[sid, S_TIMER_AT] = _h[H_NOW] + first if every_ns > 0 or first_in_ns >= 0 else 0
    _h[H_TIMER_DIRTY] = 1  # the loop finds the next timer again


@inline
def last_trade(ctx: Ctx, inst: int) -> tuple[int, int, int]:
    """(price, qty, aggressor side) of the last trade the strategy saw on ``inst``."""
    st = unpack_raw(ctx)
    r = st.inst[inst]
    return r[I_LAST_TRADE_PX], r[I_LAST_TRADE_QTY], r[I_LAST_TRADE_SIDE]


@inline
def event_inst(ctx: Ctx) -> int:
    """The instrument of the fill or order update being delivered (in on_fill / on_order)."""
    st = unpack_raw(ctx)
    _h = st.h
    return _h[H_WAKE_INST]


@inline
def maker_fee(ctx: Ctx, inst: int) -> float:
    """Maker fee rate of ``inst`` (a fraction of notional; negative = rebate)."""
    st = unpack_raw(ctx)
    return st.instf[inst, IF_MAKER_FEE]


@inline
def taker_fee(ctx: Ctx, inst: int) -> float:
    """Taker fee rate of ``inst`` (a fraction of notional)."""
    st = unpack_raw(ctx)
    return st.instf[inst, IF_TAKER_FEE]
