"""The strategy's side of the engine: its view of the book, its orders, fills reaching it.

Everything a strategy can do — submit, cancel, modify — is a compiled function here, so the
compiled and the Python paths run the same code: a Python strategy's Context calls these
through a command buffer, a compiled strategy calls them directly.

Pre-trade risk counts every order at the most it may still fill (``O_LOCAL_OPEN``, summed
per side in ``P_OPEN_BUY`` / ``P_OPEN_SELL``), from the moment a request is sent until its
answer reaches the strategy: a new order counts fully before its ack; a modify counts the
larger of its confirmed and requested sizes (a fill at the old size may come first); a
cancel in flight leaves the order counted, lots and open-order count, until it is
confirmed. Only an answer from the venue lowers the count.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from framework.arena.enums import (
    DENY_BAD_ORDER,
    DENY_NONE,
    ST_CANCELED,
    ST_EXPIRED,
    ST_FILLED,
    ST_NEW,
    ST_PARTIAL,
    ST_PENDING_CANCEL,
    ST_PENDING_MODIFY,
    ST_PENDING_NEW,
    ST_REJECTED,
    TS_HALTED,
)
from framework.arena.messages import (
    alloc_slot,
    log_latency,
    log_order,
    msg_fee,
    push_request,
    release_slot,
)
from framework.arena.models import entry_latency
from framework.arena.state import (
    DENY_COLS,
    DENY_INST,
    DENY_PRICE,
    DENY_QTY,
    DENY_REASON,
    DENY_SIDE,
    DENY_STRAT,
    DENY_TS,
    DENY_TYPE,
    F_EXCH_TS,
    F_FEE,
    F_INST,
    F_LIQ,
    F_OID,
    F_POS,
    F_PRICE,
    F_QTY,
    F_SIDE,
    F_STRAT,
    F_TS,
    H_MAX_ORDERS,
    H_N_DENY,
    H_N_FILL,
    H_WAKE_INST,
    H_WAKE_OID,
    H_WAKE_ORDER_KIND,
    H_WAKE_PRICE,
    H_WAKE_QTY,
    H_WAKE_REASON,
    H_WAKE_SIDE,
    H_WAKE_SLOT,
    H_WAKE_STRAT,
    I_BA,
    I_BAQ,
    I_BB,
    I_BBQ,
    I_LAST_TRADE_PX,
    I_LAST_TRADE_QTY,
    I_LAST_TRADE_SIDE,
    LATK_ENTRY,
    LATK_RESP,
    LATK_ROUND_TRIP,
    M_EXCH_TS,
    M_ID,
    M_KIND,
    M_LIQ,
    M_PRICE,
    M_QTY,
    M_REASON,
    M_SLOT,
    O_CXL_SENT,
    O_FILLED,
    O_ID,
    O_INST,
    O_LEAVES,
    O_LOCAL_OPEN,
    O_LPRICE,
    O_LQTY,
    O_MOD_SENT,
    O_NOTIONAL,
    O_PEND_PRICE,
    O_PEND_QTY,
    O_PRICE,
    O_QTY,
    O_REASON,
    O_SIDE,
    O_STATUS,
    O_STRAT,
    O_SUBMIT_TS,
    O_TIF,
    O_TYPE,
    P_N_DONE,
    P_N_OPEN,
    P_OPEN_BUY,
    P_OPEN_SELL,
    P_POS,
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_NEW,
    RESP_ACK,
    RESP_CANCEL_REJECT,
    RESP_CANCELED,
    RESP_EXPIRED,
    RESP_FILL,
    RESP_MODIFIED,
    RESP_REJECT,
    S_KILLED,
    S_N_OPEN,
    S_SEQ,
    S_STATE,
    WAKE_BOOK,
    WAKE_ERROR,
    WAKE_FILL,
    WAKE_NONE,
    WAKE_ORDER,
    WAKE_TRADE,
    Arena,
    State,
    slot_of,
    unpack_raw,
)
from framework.book.l2 import (
    BOOK_FULL,
    l2_apply,
    l2_best_ask,
    l2_best_ask_qty,
    l2_best_bid,
    l2_best_bid_qty,
)
from framework.core.events import BUY, FLAG_LAST, KIND_BBO, KIND_CLEAR, KIND_LEVEL, KIND_TRADE
from framework.core.jit import inline, outline
from framework.portfolio.accounting import apply_fill
from framework.risk.checks import check_order

# --- the strategy's order API ---------------------------------------------------------------


@inline
def _deny(
    st: State,
    sid: int,
    inst: int,
    side: int,
    price: int,
    qty: int,
    otype: int,
    reason: int,
    now: int,
) -> None:
    _h = st.h
    _rec_deny = st.rec_deny
    r = _h[H_N_DENY]
    if r < _rec_deny.shape[0]:
        row = _rec_deny[r]
        row[DENY_TS] = now
        row[DENY_STRAT] = sid
        row[DENY_INST] = inst
        row[DENY_SIDE] = side
        row[DENY_PRICE] = price
        row[DENY_QTY] = qty
        row[DENY_REASON] = reason
        row[DENY_TYPE] = otype
        _h[H_N_DENY] = r + 1
    _ = DENY_COLS


@inline
def _open_delta(st: State, slot: int, lots: int) -> None:
    """Change the strategy-view open quantity of an order by ``lots`` (negative: less open)."""
    _ord = st.ord
    _pos = st.pos
    o = _ord[slot]
    p = _pos[o[O_STRAT], o[O_INST]]
    o[O_LOCAL_OPEN] += lots
    if o[O_SIDE] == BUY:
        p[P_OPEN_BUY] += lots
    else:
        p[P_OPEN_SELL] += lots


@inline
def _finish(st: State, slot: int, status: int, now: int) -> None:
    """The order reached a final status in the strategy's view: log it and free its slot."""
    _ord = st.ord
    _pos = st.pos
    _strat = st.strat
    o = _ord[slot]
    if o[O_LOCAL_OPEN] != 0:
        _open_delta(st, slot, -o[O_LOCAL_OPEN])
    o[O_STATUS] = status
    sid = o[O_STRAT]
    _pos[sid, o[O_INST], P_N_OPEN] -= 1
    _pos[sid, o[O_INST], P_N_DONE] += 1
    _strat[sid, S_N_OPEN] -= 1
    log_order(st, slot, now)
    release_slot(st, slot)


@inline
def _settle(st: State, slot: int) -> None:
    """The venue answered a modify: the order may fill its confirmed size, no more."""
    _ord = st.ord
    o = _ord[slot]
    _open_delta(st, slot, (o[O_LQTY] - o[O_FILLED]) - o[O_LOCAL_OPEN])
    if o[O_CXL_SENT]:
        o[O_STATUS] = ST_PENDING_CANCEL
    else:
        o[O_STATUS] = ST_PARTIAL if o[O_FILLED] > 0 else ST_NEW


@outline(python=True)
def order_submit(
    a: Arena,
    sid: int,
    inst: int,
    side: int,
    price: int,
    qty: int,
    otype: int,
    tif: int,
    now: int,
) -> int:
    """Send an order; returns its id (> 0) or ``-reason`` when pre-trade risk denies it."""
    st = unpack_raw(a)
    _h = st.h
    _ord = st.ord
    _pos = st.pos
    _strat = st.strat
    reason = check_order(st, sid, inst, side, price, qty, qty, qty, 0, 0, otype, True, now)
    if reason != DENY_NONE:
        _deny(st, sid, inst, side, price, qty, otype, reason, now)
        return -reason
    slot = alloc_slot(st, sid)
    if slot < 0:
        return 0
    # numbered per strategy, from its own sequence and slot partition: a strategy's ids are
    # the same whatever else runs beside it (they are unique per strategy, not per run)
    seq = _strat[sid, S_SEQ] + 1
    _strat[sid, S_SEQ] = seq
    m = _h[H_MAX_ORDERS]
    oid = seq * m + slot - sid * m  # the slot is recoverable from the id and the strategy
    o = _ord[slot]
    o[O_ID] = oid
    o[O_STRAT] = sid
    o[O_INST] = inst
    o[O_SIDE] = side
    o[O_PRICE] = price
    o[O_QTY] = qty
    o[O_LEAVES] = qty
    o[O_TYPE] = otype
    o[O_TIF] = tif
    o[O_STATUS] = ST_PENDING_NEW
    o[O_SUBMIT_TS] = now
    o[O_LQTY] = qty
    o[O_LPRICE] = price
    _open_delta(st, slot, qty)
    _pos[sid, inst, P_N_OPEN] += 1
    _strat[sid, S_N_OPEN] += 1
    lat = entry_latency(st, now)
    push_request(st, now + lat, REQ_NEW, slot, price, qty, now)
    log_latency(st, LATK_ENTRY, lat)
    return oid


@outline(python=True)
def order_cancel(a: Arena, sid: int, oid: int, now: int) -> bool:
    """Ask the venue to cancel; False if the order is not live (or a cancel is in flight).

    The order stays counted by risk, in full, until the venue confirms: it can still fill.
    """
    st = unpack_raw(a)
    _ord = st.ord
    slot = slot_of(st, sid, oid)
    if slot < 0:
        return False
    o = _ord[slot]
    if o[O_CXL_SENT]:
        return False
    o[O_CXL_SENT] = 1
    o[O_STATUS] = ST_PENDING_CANCEL
    lat = entry_latency(st, now)
    push_request(st, now + lat, REQ_CANCEL, slot, o[O_PRICE], 0, now)
    log_latency(st, LATK_ENTRY, lat)
    return True


@outline(python=True)
def order_modify(a: Arena, sid: int, oid: int, price: int, qty: int, now: int) -> int:
    """Change price and/or total size; returns DENY_NONE, a deny reason, or -1 if the order
    is not live or a modify or cancel of it is in flight (wait for its answer).

    Until the venue answers, risk counts the larger of the confirmed and the new size at
    the higher of the two prices: fills at the old terms may arrive first, and the venue
    may refuse the change.
    """
    st = unpack_raw(a)
    _ord = st.ord
    slot = slot_of(st, sid, oid)
    if slot < 0:
        return -1
    o = _ord[slot]
    if o[O_MOD_SENT] or o[O_CXL_SENT]:
        return -1
    inst = o[O_INST]
    side = o[O_SIDE]
    if qty <= 0:  # cancel() takes an order away
        _deny(st, sid, inst, side, price, qty, o[O_TYPE], DENY_BAD_ORDER, now)
        return DENY_BAD_ORDER
    add = max(qty - o[O_LQTY], 0)
    if add > 0 or price != o[O_LPRICE]:
        # a bigger or re-priced order must pass the same checks as a new one for the change
        reason = check_order(
            st,
            sid,
            inst,
            side,
            price,
            qty,
            add,
            max(o[O_LQTY], qty) - o[O_FILLED],
            o[O_NOTIONAL],
            o[O_LPRICE],
            o[O_TYPE],
            False,
            now,
        )
        if reason != DENY_NONE:
            _deny(st, sid, inst, side, price, qty, o[O_TYPE], reason, now)
            return reason
    o[O_PEND_PRICE] = price
    o[O_PEND_QTY] = qty
    o[O_MOD_SENT] = 1
    o[O_STATUS] = ST_PENDING_MODIFY
    if add > 0:
        _open_delta(st, slot, add)
    lat = entry_latency(st, now)
    push_request(st, now + lat, REQ_MODIFY, slot, price, qty, now)
    log_latency(st, LATK_ENTRY, lat)
    return DENY_NONE


@outline
def cancel_all(a: Arena, sid: int, now: int) -> int:
    """Cancel every live order of a strategy; returns how many cancels were sent."""
    st = unpack_raw(a)
    _ord = st.ord
    m = st.h[H_MAX_ORDERS]
    n = 0
    for slot in range(sid * m, (sid + 1) * m):  # the strategy's own slots
        o = _ord[slot]
        live = o[O_ID] != 0 and o[O_STRAT] == sid and not o[O_CXL_SENT]
        if live and order_cancel(a, sid, o[O_ID], now):
            n += 1
    return n


@outline
def trip_kill_switch(a: Arena, sid: int, now: int) -> None:
    st = unpack_raw(a)
    _strat = st.strat
    _strat[sid, S_KILLED] = 1
    _strat[sid, S_STATE] = TS_HALTED
    cancel_all(a, sid, now)


# --- market data reaching the strategy --------------------------------------------------------


@inline
def local_book_event(
    meta: npt.NDArray[np.int64],
    book: npt.NDArray[np.int64],
    r: npt.NDArray[np.int64],
    kind: int,
    side: int,
    price: int,
    qty: int,
    flags: int,
) -> int:
    """Apply an event to the strategy's book (one instrument's arrays): WAKE_BOOK when the
    touch changed at a message boundary, WAKE_TRADE for a trade print, WAKE_ERROR when the
    book is over its far capacity (the caller stops the run), else WAKE_NONE."""
    if kind == KIND_TRADE:
        r[I_LAST_TRADE_PX] = price
        r[I_LAST_TRADE_QTY] = qty
        r[I_LAST_TRADE_SIDE] = side
        return WAKE_TRADE
    is_book = kind == KIND_LEVEL or kind == KIND_BBO or kind == KIND_CLEAR
    if is_book and l2_apply(meta, book, kind, side, price, qty) == BOOK_FULL:
        return WAKE_ERROR
    if not flags & FLAG_LAST:
        return WAKE_NONE
    bb = l2_best_bid(meta, book)
    ba = l2_best_ask(meta, book)
    bq = l2_best_bid_qty(meta, book)
    aq = l2_best_ask_qty(meta, book)
    if bb != r[I_BB] or ba != r[I_BA] or bq != r[I_BBQ] or aq != r[I_BAQ]:
        r[I_BB] = bb
        r[I_BA] = ba
        r[I_BBQ] = bq
        r[I_BAQ] = aq
        return WAKE_BOOK
    return WAKE_NONE


@inline
def _record_fill(st: State, slot: int, now: int, m: npt.NDArray[np.int64], fee: float) -> None:
    _h = st.h
    _hf = st.hf
    _ord = st.ord
    _pos = st.pos
    _rec_fill = st.rec_fill
    r = _h[H_N_FILL]
    o = _ord[slot]
    row = _rec_fill[r]
    row[F_TS] = now
    row[F_EXCH_TS] = m[M_EXCH_TS]
    row[F_STRAT] = o[O_STRAT]
    row[F_INST] = o[O_INST]
    row[F_OID] = o[O_ID]
    row[F_SIDE] = o[O_SIDE]
    row[F_PRICE] = m[M_PRICE]
    row[F_QTY] = m[M_QTY]
    row[F_LIQ] = m[M_LIQ]
    row[F_POS] = _pos[o[O_STRAT], o[O_INST], P_POS]
    row[F_FEE : F_FEE + 1].view(_hf.dtype)[0] = fee
    _h[H_N_FILL] = r + 1


@outline(python=True)
def local_response(a: Arena, m: npt.NDArray[np.int64], now: int) -> int:
    """A venue response reaches the strategy. Returns WAKE_FILL / WAKE_ORDER / WAKE_NONE and
    sets the wake words (strategy, slot, kind, qty, price)."""
    st = unpack_raw(a)
    _h = st.h
    _ord = st.ord
    slot = m[M_SLOT]
    o = _ord[slot]
    if o[O_ID] != m[M_ID]:
        return WAKE_NONE
    kind = m[M_KIND]
    _h[H_WAKE_STRAT] = o[O_STRAT]
    _h[H_WAKE_INST] = o[O_INST]
    _h[H_WAKE_SLOT] = slot
    _h[H_WAKE_OID] = o[O_ID]
    _h[H_WAKE_ORDER_KIND] = kind
    _h[H_WAKE_QTY] = m[M_QTY]
    _h[H_WAKE_PRICE] = m[M_PRICE]
    _h[H_WAKE_SIDE] = o[O_SIDE]
    _h[H_WAKE_REASON] = m[M_REASON]
    log_latency(st, LATK_RESP, now - m[M_EXCH_TS])
    if kind == RESP_FILL:
        q = m[M_QTY]
        fee = msg_fee(m)
        apply_fill(st, o[O_STRAT], o[O_INST], o[O_SIDE], m[M_PRICE], q, fee)
        o[O_FILLED] += q
        o[O_NOTIONAL] += q * m[M_PRICE]
        _open_delta(st, slot, -q)
        _record_fill(st, slot, now, m, fee)
        if o[O_FILLED] >= o[O_LQTY]:
            # a fill ends the order; the strategy hears of the fill (WAKE_FILL) and the slot
            # is logged now: the engine keeps the wake words, not the slot
            _finish(st, slot, ST_FILLED, now)
        elif o[O_STATUS] == ST_PENDING_NEW or o[O_STATUS] == ST_NEW:
            o[O_STATUS] = ST_PARTIAL
        return WAKE_FILL
    if kind == RESP_ACK:
        log_latency(st, LATK_ROUND_TRIP, now - o[O_SUBMIT_TS])
        if o[O_STATUS] == ST_PENDING_NEW:
            o[O_STATUS] = ST_NEW
        return WAKE_ORDER
    if kind == RESP_CANCELED:
        _finish(st, slot, ST_CANCELED, now)
        return WAKE_ORDER
    if kind == RESP_EXPIRED:
        _finish(st, slot, ST_FILLED if o[O_FILLED] >= o[O_LQTY] else ST_EXPIRED, now)
        return WAKE_ORDER
    if kind == RESP_REJECT:
        o[O_REASON] = m[M_REASON]
        _finish(st, slot, ST_REJECTED, now)
        return WAKE_ORDER
    if kind == RESP_MODIFIED:
        if o[O_MOD_SENT]:
            o[O_MOD_SENT] = 0
            o[O_LQTY] = o[O_PEND_QTY]
            o[O_LPRICE] = o[O_PEND_PRICE]
            _settle(st, slot)
        return WAKE_ORDER
    if kind == RESP_CANCEL_REJECT:
        # a modify in flight was sent before any cancel in flight (order_modify waits for a
        # cancel's answer), so the venue answers it first
        if o[O_MOD_SENT]:
            o[O_MOD_SENT] = 0
            _settle(st, slot)
        elif o[O_CXL_SENT]:
            o[O_CXL_SENT] = 0
            o[O_STATUS] = ST_PARTIAL if o[O_FILLED] > 0 else ST_NEW
        return WAKE_ORDER
    return WAKE_NONE


__all__ = [
    "cancel_all",
    "local_book_event",
    "local_response",
    "order_cancel",
    "order_modify",
    "order_submit",
    "trip_kill_switch",
]
