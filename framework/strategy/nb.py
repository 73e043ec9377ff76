"""The strategy API as compiled functions (the fast path).

A compiled strategy's callbacks receive ``ctx`` (the engine state) and call these. The
Python :class:`~framework.strategy.context.Context` calls the very same functions through
:mod:`framework.engine.api`, so both paths share one implementation.

Prices are integer ticks, quantities integer lots, times int64 ns. ``sid`` is the
strategy's index in the run (passed to every callback).
"""

from __future__ import annotations

from numba import njit

from framework.book.l2 import (
    NO_PRICE,
    l2_best_ask,
    l2_best_ask_qty,
    l2_best_bid,
    l2_best_bid_qty,
    l2_qty_at,
)
from framework.engine.enums import ORD_LIMIT, ORD_MARKET, ST_NONE, TIF_GTC
from framework.engine.local import order_cancel, order_modify, order_submit, slot_of
from framework.engine.state import (
    H_NOW,
    O_FILLED,
    O_PRICE,
    O_QTY,
    O_STATUS,
    P_N_OPEN,
    P_OPEN_BUY,
    P_OPEN_SELL,
    P_POS,
    S_STATE,
    S_TIMER_AT,
    S_TIMER_EVERY,
    State,
)
from framework.portfolio.accounting import strategy_equity

__all__ = [
    "NO_PRICE",
    "ask_qty",
    "best_ask",
    "best_bid",
    "bid_qty",
    "cancel",
    "equity",
    "feature",
    "level_qty",
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
]


@njit(cache=True, inline="always")
def now(ctx: State) -> int:
    """Current local time (ns): the strategy never sees anything later."""
    _h = ctx.h
    return _h[H_NOW]


@njit(cache=True, inline="always")
def best_bid(ctx: State, inst: int) -> int:
    _lmeta = ctx.lmeta
    _lqty = ctx.lqty
    return l2_best_bid(_lmeta[inst], _lqty[inst])


@njit(cache=True, inline="always")
def best_ask(ctx: State, inst: int) -> int:
    _lmeta = ctx.lmeta
    _lqty = ctx.lqty
    return l2_best_ask(_lmeta[inst], _lqty[inst])


@njit(cache=True, inline="always")
def bid_qty(ctx: State, inst: int) -> int:
    _lmeta = ctx.lmeta
    _lqty = ctx.lqty
    return l2_best_bid_qty(_lmeta[inst], _lqty[inst])


@njit(cache=True, inline="always")
def ask_qty(ctx: State, inst: int) -> int:
    _lmeta = ctx.lmeta
    _lqty = ctx.lqty
    return l2_best_ask_qty(_lmeta[inst], _lqty[inst])


@njit(cache=True, inline="always")
def level_qty(ctx: State, inst: int, side: int, price: int) -> int:
    _lmeta = ctx.lmeta
    _lqty = ctx.lqty
    return l2_qty_at(_lmeta[inst], _lqty[inst], side, price)


@njit(cache=True, inline="always")
def position(ctx: State, sid: int, inst: int) -> int:
    """Position in lots as the strategy knows it (fills that have reached it)."""
    _pos = ctx.pos
    return _pos[sid, inst, P_POS]


@njit(cache=True, inline="always")
def open_buy_qty(ctx: State, sid: int, inst: int) -> int:
    _pos = ctx.pos
    return _pos[sid, inst, P_OPEN_BUY]


@njit(cache=True, inline="always")
def open_sell_qty(ctx: State, sid: int, inst: int) -> int:
    _pos = ctx.pos
    return _pos[sid, inst, P_OPEN_SELL]


@njit(cache=True, inline="always")
def open_orders(ctx: State, sid: int, inst: int) -> int:
    _pos = ctx.pos
    return _pos[sid, inst, P_N_OPEN]


@njit(cache=True, inline="always")
def equity(ctx: State, sid: int) -> float:
    """Cash plus positions marked to the mid, in currency (starts at 0)."""
    return strategy_equity(ctx, sid)[0]


@njit(cache=True, inline="always")
def submit(
    ctx: State, sid: int, inst: int, side: int, price: int, qty: int, tif: int = TIF_GTC
) -> int:
    """A limit order; returns its id (> 0) or ``-reason`` if risk denied it."""
    _h = ctx.h
    return order_submit(ctx, sid, inst, side, price, qty, ORD_LIMIT, tif, _h[H_NOW])


@njit(cache=True, inline="always")
def submit_market(ctx: State, sid: int, inst: int, side: int, qty: int, tif: int = TIF_GTC) -> int:
    _h = ctx.h
    return order_submit(ctx, sid, inst, side, 0, qty, ORD_MARKET, tif, _h[H_NOW])


@njit(cache=True, inline="always")
def cancel(ctx: State, sid: int, oid: int) -> bool:
    _h = ctx.h
    return order_cancel(ctx, sid, oid, _h[H_NOW])


@njit(cache=True, inline="always")
def modify(ctx: State, sid: int, oid: int, price: int, qty: int) -> int:
    _h = ctx.h
    return order_modify(ctx, sid, oid, price, qty, _h[H_NOW])


@njit(cache=True, inline="always")
def order_status(ctx: State, sid: int, oid: int) -> int:
    """ST_* of a live order, ST_NONE once it is finished (see on_order for how it ended)."""
    _ord = ctx.ord
    slot = slot_of(ctx, sid, oid)
    return ST_NONE if slot < 0 else _ord[slot, O_STATUS]


@njit(cache=True, inline="always")
def order_price(ctx: State, sid: int, oid: int) -> int:
    _ord = ctx.ord
    slot = slot_of(ctx, sid, oid)
    return NO_PRICE if slot < 0 else _ord[slot, O_PRICE]


@njit(cache=True, inline="always")
def order_qty(ctx: State, sid: int, oid: int) -> int:
    _ord = ctx.ord
    slot = slot_of(ctx, sid, oid)
    return 0 if slot < 0 else _ord[slot, O_QTY]


@njit(cache=True, inline="always")
def order_filled(ctx: State, sid: int, oid: int) -> int:
    _ord = ctx.ord
    slot = slot_of(ctx, sid, oid)
    return 0 if slot < 0 else _ord[slot, O_FILLED]


@njit(cache=True, inline="always")
def feature(ctx: State, inst: int, which: int) -> float:
    """Latest value of a feature (``framework.features.F_*``) at the strategy's time; NaN
    until defined, or when the run computes no features (``Strategy.features = True``)."""
    _feat = ctx.feat
    return _feat[inst, which]


@njit(cache=True, inline="always")
def set_trading_state(ctx: State, sid: int, state: int) -> None:
    """TS_ACTIVE, TS_REDUCING (only orders that shrink the position) or TS_HALTED."""
    _strat = ctx.strat
    _strat[sid, S_STATE] = state


@njit(cache=True, inline="always")
def set_timer(ctx: State, sid: int, every_ns: int, first_in_ns: int = -1) -> None:
    """Call on_timer every ``every_ns`` (0 stops it); the first call after ``first_in_ns``."""
    _h = ctx.h
    _strat = ctx.strat
    first = every_ns if first_in_ns < 0 else first_in_ns
    _strat[sid, S_TIMER_EVERY] = every_ns
    _strat[sid, S_TIMER_AT] = _h[H_NOW] + first if every_ns > 0 or first_in_ns >= 0 else 0
