"""Positions, cash and fees per (strategy, instrument); equity marked to the mid."""

from __future__ import annotations

from framework.arena.state import (
    I_LAST_TRADE_PX,
    IF_LOT,
    IF_MULT,
    IF_TICK,
    P_N_FILLS,
    P_POS,
    PF_CASH,
    PF_FEES,
    PF_TRADED,
    State,
)
from framework.book.l2 import NO_PRICE, l2_best_ask, l2_best_bid
from framework.core.events import BUY
from framework.core.jit import inline


@inline
def apply_fill(st: State, sid: int, inst: int, side: int, price: int, qty: int, fee: float) -> None:
    """Book a fill: position in lots, cash in currency (fees paid from cash)."""
    _instf = st.instf
    _pos = st.pos
    _posf = st.posf
    f = _instf[inst]
    value = price * f[IF_TICK] * qty * f[IF_LOT] * f[IF_MULT]
    pf = _posf[sid, inst]
    p = _pos[sid, inst]
    if side == BUY:
        p[P_POS] += qty
        pf[PF_CASH] -= value
    else:
        p[P_POS] -= qty
        pf[PF_CASH] += value
    pf[PF_CASH] -= fee
    pf[PF_FEES] += fee
    pf[PF_TRADED] += abs(value)
    p[P_N_FILLS] += 1


@inline
def mark_price(st: State, inst: int) -> float:
    """Mid of the strategy's view of the book in ticks (last trade if one side is empty)."""
    _inst = st.inst
    _lmeta = st.lmeta
    _lqty = st.lqty
    bb = l2_best_bid(_lmeta[inst], _lqty[inst])
    ba = l2_best_ask(_lmeta[inst], _lqty[inst])
    if bb != NO_PRICE and ba != NO_PRICE:
        return 0.5 * (bb + ba)
    return float(_inst[inst, I_LAST_TRADE_PX])


@inline
def position_value(st: State, sid: int, inst: int) -> float:
    _instf = st.instf
    _pos = st.pos
    f = _instf[inst]
    q = _pos[sid, inst, P_POS]
    if q == 0:
        return 0.0
    return q * mark_price(st, inst) * f[IF_TICK] * f[IF_LOT] * f[IF_MULT]


@inline
def strategy_equity(st: State, sid: int) -> tuple[float, float, float]:
    """(equity, cash, fees) of a strategy; equity = cash + marked positions, starting at 0."""
    _inst = st.inst
    _posf = st.posf
    cash = 0.0
    fees = 0.0
    val = 0.0
    for i in range(_inst.shape[0]):
        cash += _posf[sid, i, PF_CASH]
        fees += _posf[sid, i, PF_FEES]
        val += position_value(st, sid, i)
    return cash + val, cash, fees
