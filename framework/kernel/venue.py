"""The simulated venue: applies market data at exchange time, matches our orders.

The venue's book is rebuilt from the data at each event's ``exch_ts``. Our orders are
virtual: they never change the replayed book (no market impact), but they hold an estimated
place in the queue of their level (:mod:`framework.arena.models`) and fill when trades or
book moves reach them. Taker orders walk the venue's book level by level.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from framework.arena.enums import (
    LIQ_MAKER,
    LIQ_TAKER,
    ORD_MARKET,
    QUEUE_FIFO,
    REJ_HALTED,
    REJ_NO_LIQUIDITY,
    REJ_POST_ONLY_WOULD_TAKE,
    REJ_UNKNOWN_ORDER,
    TIF_FOK,
    TIF_IOC,
    TIF_POST_ONLY,
)
from framework.arena.messages import push_response
from framework.arena.models import queue_front, response_latency
from framework.arena.state import (
    H_MAX_ORDERS,
    H_QUEUE_MODEL,
    HF_QUEUE_N,
    I_HALTED,
    I_N_RESTING,
    I_REST_BMAX,
    I_REST_BMIN,
    I_REST_DIRTY,
    I_REST_SMAX,
    I_REST_SMIN,
    IF_FEE_PER_LOT,
    IF_LOT,
    IF_MAKER_FEE,
    IF_MULT,
    IF_TAKER_FEE,
    IF_TICK,
    M_ID,
    M_KIND,
    M_PRICE,
    M_QTY,
    M_SLOT,
    O_ID,
    O_INST,
    O_LEAVES,
    O_PRICE,
    O_QTY,
    O_REST_IDX,
    O_SIDE,
    O_STRAT,
    O_TIF,
    O_TYPE,
    O_VENUE_TS,
    O_VSTATE,
    OF_FRONT,
    OF_TRADE_CREDIT,
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
    S_N_REST,
    V_DONE,
    V_RESTING,
    Arena,
    State,
    unpack_raw,
)
from framework.book.l2 import (
    NO_PRICE,
    l2_best_ask,
    l2_best_bid,
    l2_next_level,
    l2_qty_at,
)
from framework.core.events import (
    BUY,
    FLAG_QUEUE_TS,
    KIND_BBO,
    KIND_LEVEL,
    KIND_TRADE,
    STATUS_HALTED,
    STATUS_OPEN,
    STATUS_PAUSED,
    STATUS_QUOTING,
)
from framework.core.jit import inline, outline


@inline
def fee_of(st: State, inst: int, price: int, qty: int, liq: int) -> float:
    """Fee in currency for a fill (negative = rebate)."""
    _instf = st.instf
    f = _instf[inst]
    notional = price * f[IF_TICK] * qty * f[IF_LOT] * f[IF_MULT]
    rate = f[IF_MAKER_FEE] if liq == LIQ_MAKER else f[IF_TAKER_FEE]
    return notional * rate + qty * f[IF_FEE_PER_LOT]


@inline
def _rest_add(st: State, slot: int) -> None:
    """Put an order on its strategy's resting list (the strategy's part of SEG_REST)."""
    _h = st.h
    _inst = st.inst
    _ord = st.ord
    _rest = st.rest
    _strat = st.strat
    sid = _ord[slot, O_STRAT]
    n = _strat[sid, S_N_REST]
    _rest[sid * _h[H_MAX_ORDERS] + n] = slot
    _ord[slot, O_REST_IDX] = n
    _strat[sid, S_N_REST] = n + 1
    _inst[_ord[slot, O_INST], I_N_RESTING] += 1
    _inst[_ord[slot, O_INST], I_REST_DIRTY] = 1
    _ord[slot, O_VSTATE] = V_RESTING


@inline
def _rest_remove(st: State, slot: int) -> None:
    """Take a resting order off the venue (its strategy's last resting one fills its place:
    one list per strategy, so another strategy's orders never reorder it)."""
    _h = st.h
    _inst = st.inst
    _ord = st.ord
    _rest = st.rest
    _strat = st.strat
    sid = _ord[slot, O_STRAT]
    base = sid * _h[H_MAX_ORDERS]
    n = _strat[sid, S_N_REST] - 1
    i = _ord[slot, O_REST_IDX]
    last = _rest[base + n]
    _rest[base + i] = last
    _ord[last, O_REST_IDX] = i
    _strat[sid, S_N_REST] = n
    _inst[_ord[slot, O_INST], I_N_RESTING] -= 1
    _inst[_ord[slot, O_INST], I_REST_DIRTY] = 1
    _ord[slot, O_VSTATE] = V_DONE


@inline
def _fill(st: State, slot: int, now: int, price: int, qty: int, liq: int) -> None:
    """The venue fills ``qty`` of ``slot`` at ``price``; the strategy learns after latency."""
    _ord = st.ord
    o = _ord[slot]
    o[O_LEAVES] -= qty
    inst = o[O_INST]
    if o[O_LEAVES] <= 0:
        if o[O_VSTATE] == V_RESTING:
            _rest_remove(st, slot)
        o[O_VSTATE] = V_DONE
    push_response(
        st,
        now + response_latency(st, now),
        RESP_FILL,
        slot,
        price,
        qty,
        liq,
        0,
        now,
        fee_of(st, inst, price, qty, liq),
    )


@inline
def _rest(st: State, slot: int, now: int) -> None:
    _ord = st.ord
    _ordf = st.ordf
    _vmeta = st.vmeta
    _vqty = st.vqty
    o = _ord[slot]
    inst = o[O_INST]
    o[O_VENUE_TS] = now
    _ordf[slot, OF_FRONT] = float(l2_qty_at(_vmeta[inst], _vqty[inst], o[O_SIDE], o[O_PRICE]))
    _ordf[slot, OF_TRADE_CREDIT] = 0.0
    _rest_add(st, slot)


@inline
def _available(st: State, inst: int, side: int, limit: int, is_market: bool) -> int:
    """Lots our ``side`` order could take from the opposite side up to ``limit``."""
    _vmeta = st.vmeta
    _vqty = st.vqty
    meta = _vmeta[inst]
    qty = _vqty[inst]
    total = 0
    other = -side
    p = l2_best_ask(meta, qty) if side == BUY else l2_best_bid(meta, qty)
    while p != NO_PRICE:
        if not is_market and (p > limit if side == BUY else p < limit):
            break
        total += l2_qty_at(meta, qty, other, p)
        p = l2_next_level(meta, qty, other, p)
    return total


@inline
def _take(st: State, slot: int, now: int, is_market: bool) -> None:
    """Walk the opposite side of the venue's book, filling ``slot`` as a taker."""
    _ord = st.ord
    _vmeta = st.vmeta
    _vqty = st.vqty
    o = _ord[slot]
    inst = o[O_INST]
    meta = _vmeta[inst]
    qty = _vqty[inst]
    limit = o[O_PRICE]
    buy = o[O_SIDE] == BUY
    other = -o[O_SIDE]
    p = l2_best_ask(meta, qty) if buy else l2_best_bid(meta, qty)
    while p != NO_PRICE and o[O_LEAVES] > 0:
        if not is_market and (p > limit if buy else p < limit):
            break
        _fill(st, slot, now, p, min(l2_qty_at(meta, qty, other, p), o[O_LEAVES]), LIQ_TAKER)
        p = l2_next_level(meta, qty, other, p)


@inline
def _crosses(st: State, inst: int, side: int, price: int) -> bool:
    _vmeta = st.vmeta
    _vqty = st.vqty
    if side == BUY:
        a = l2_best_ask(_vmeta[inst], _vqty[inst])
        return a != NO_PRICE and price >= a
    b = l2_best_bid(_vmeta[inst], _vqty[inst])
    return b != NO_PRICE and price <= b


@inline
def _respond(st: State, slot: int, now: int, kind: int, qty: int, reason: int) -> None:
    _ord = st.ord
    push_response(
        st,
        now + response_latency(st, now),
        kind,
        slot,
        _ord[slot, O_PRICE],
        qty,
        0,
        reason,
        now,
        0.0,
    )


@inline
def _new_order(st: State, slot: int, now: int) -> None:
    _inst = st.inst
    _ord = st.ord
    o = _ord[slot]
    inst = o[O_INST]
    if _inst[inst, I_HALTED]:
        o[O_VSTATE] = V_DONE
        _respond(st, slot, now, RESP_REJECT, o[O_LEAVES], REJ_HALTED)
        return
    is_market = o[O_TYPE] == ORD_MARKET
    tif = o[O_TIF]
    crossing = is_market or _crosses(st, inst, o[O_SIDE], o[O_PRICE])
    if tif == TIF_POST_ONLY and crossing:
        o[O_VSTATE] = V_DONE
        _respond(st, slot, now, RESP_REJECT, o[O_LEAVES], REJ_POST_ONLY_WOULD_TAKE)
        return
    if is_market and _available(st, inst, o[O_SIDE], 0, True) == 0:
        o[O_VSTATE] = V_DONE
        _respond(st, slot, now, RESP_REJECT, o[O_LEAVES], REJ_NO_LIQUIDITY)
        return
    _respond(st, slot, now, RESP_ACK, o[O_LEAVES], 0)
    if tif == TIF_FOK and _available(st, inst, o[O_SIDE], o[O_PRICE], is_market) < o[O_LEAVES]:
        o[O_VSTATE] = V_DONE
        _respond(st, slot, now, RESP_EXPIRED, o[O_LEAVES], 0)
        o[O_LEAVES] = 0
        return
    if crossing:
        _take(st, slot, now, is_market)
    if o[O_LEAVES] > 0:
        if is_market or tif == TIF_IOC or tif == TIF_FOK:
            o[O_VSTATE] = V_DONE
            _respond(st, slot, now, RESP_EXPIRED, o[O_LEAVES], 0)
            o[O_LEAVES] = 0
        else:
            _rest(st, slot, now)


@inline
def _cancel(st: State, slot: int, now: int) -> None:
    _ord = st.ord
    o = _ord[slot]
    if o[O_VSTATE] != V_RESTING:
        _respond(st, slot, now, RESP_CANCEL_REJECT, 0, REJ_UNKNOWN_ORDER)
        return
    left = o[O_LEAVES]
    o[O_LEAVES] = 0
    _rest_remove(st, slot)
    _respond(st, slot, now, RESP_CANCELED, left, 0)


@inline
def _modify(st: State, slot: int, now: int, price: int, qty: int) -> None:
    """``qty`` is the new total size. A price change or a size increase loses priority."""
    _ord = st.ord
    _ordf = st.ordf
    _vmeta = st.vmeta
    _vqty = st.vqty
    o = _ord[slot]
    if o[O_VSTATE] != V_RESTING:
        _respond(st, slot, now, RESP_CANCEL_REJECT, 0, REJ_UNKNOWN_ORDER)
        return
    filled = o[O_QTY] - o[O_LEAVES]
    new_leaves = qty - filled
    if new_leaves <= 0:
        _cancel(st, slot, now)
        return
    inst = o[O_INST]
    lose = price != o[O_PRICE] or new_leaves > o[O_LEAVES]
    o[O_QTY] = qty
    o[O_LEAVES] = new_leaves
    _respond(st, slot, now, RESP_MODIFIED, new_leaves, 0)
    if price != o[O_PRICE]:
        o[O_PRICE] = price
        st.inst[inst, I_REST_DIRTY] = 1  # its place in the resting price range moved
        if _crosses(st, inst, o[O_SIDE], price):
            _rest_remove(st, slot)
            _take(st, slot, now, False)
            if o[O_LEAVES] > 0:
                _rest(st, slot, now)
            return
    if lose:
        _ordf[slot, OF_FRONT] = float(l2_qty_at(_vmeta[inst], _vqty[inst], o[O_SIDE], price))
        _ordf[slot, OF_TRADE_CREDIT] = 0.0
        o[O_VENUE_TS] = now


@outline
def venue_request(a: Arena, m: npt.NDArray[np.int64], now: int) -> None:
    """An order request arrives at the venue at ``now``."""
    st = unpack_raw(a)
    _ord = st.ord
    slot = m[M_SLOT]
    if _ord[slot, O_ID] != m[M_ID]:
        return  # the order is gone (slot reused): nothing to act on
    k = m[M_KIND]
    if k == REQ_NEW:
        _new_order(st, slot, now)
    elif k == REQ_CANCEL:
        _cancel(st, slot, now)
    elif k == REQ_MODIFY:
        _modify(st, slot, now, m[M_PRICE], m[M_QTY])


# --- market data at the venue ---------------------------------------------------------------
_NONE_LO = np.iinfo(np.int64).max
_NONE_HI = np.iinfo(np.int64).min


@outline
def rest_bounds(
    h: npt.NDArray[np.int64],
    strat: npt.NDArray[np.int64],
    rest: npt.NDArray[np.int64],
    ordm: npt.NDArray[np.int64],
    instrow: npt.NDArray[np.int64],
    inst: int,
) -> None:
    """Recompute the price range of our orders resting on ``inst`` (its ``instrow``), per
    side, after a resting list changed: rare next to the events it lets
    :func:`rest_relevant` pass by."""
    bmin = _NONE_LO
    bmax = _NONE_HI
    smin = _NONE_LO
    smax = _NONE_HI
    m = h[H_MAX_ORDERS]
    for sid in range(strat.shape[0]):
        base = sid * m
        for j in range(base, base + strat[sid, S_N_REST]):
            o = ordm[rest[j]]
            if o[O_INST] != inst:
                continue
            p = o[O_PRICE]
            if o[O_SIDE] == BUY:
                bmin = min(bmin, p)
                bmax = max(bmax, p)
            else:
                smin = min(smin, p)
                smax = max(smax, p)
    instrow[I_REST_BMIN] = bmin
    instrow[I_REST_BMAX] = bmax
    instrow[I_REST_SMIN] = smin
    instrow[I_REST_SMAX] = smax
    instrow[I_REST_DIRTY] = 0


@inline(python=True)
def rest_relevant(instrow: npt.NDArray[np.int64], kind: int, side: int, price: int) -> bool:
    """Whether a venue event may change one of our resting orders on its instrument (the
    row's range from :func:`rest_bounds`): false only where :func:`scan_resting` would
    neither fill nor move any of them. A level update on our side can move queues at our
    prices (within the side's range); one on the other side, or a trade by the other side,
    can fill us at or through our price (the best of our prices on that side)."""
    is_level = kind == KIND_LEVEL or kind == KIND_BBO
    if not (is_level or kind == KIND_TRADE):
        return False
    if side == BUY:
        return price >= instrow[I_REST_SMIN] or (
            is_level and instrow[I_REST_BMIN] <= price <= instrow[I_REST_BMAX]
        )
    return price <= instrow[I_REST_BMAX] or (
        is_level and instrow[I_REST_SMIN] <= price <= instrow[I_REST_SMAX]
    )


@inline
def scan_resting(
    h: npt.NDArray[np.int64],
    hf: npt.NDArray[np.float64],
    strat: npt.NDArray[np.int64],
    rest: npt.NDArray[np.int64],
    ordm: npt.NDArray[np.int64],
    ordf: npt.NDArray[np.float64],
    inst: int,
    kind: int,
    side: int,
    price: int,
    qty: int,
    old_qty: int,
    flags: int,
    prio: int,
    out: npt.NDArray[np.int64],
) -> int:
    """Update queue positions of our resting orders after one venue event and list the
    fills it causes as ``out[k] = (slot, price, qty)``; returns how many.

    It takes only the arrays it needs (not the whole state): it runs on every venue event
    while we have orders resting, and passing the state costs more than the scan. Strategy
    by strategy, each one's resting list from its end: a strategy's fills of one event come
    in the same order whatever else runs (its messages keep their relative order).

    Exact FIFO (queue model ``fifo``, events projected from L3 data with ``FLAG_QUEUE_TS``):
    ``prio`` is the queue-priority time of the order the event changed. An order that joined
    the queue no later than ours (``prio <= O_VENUE_TS``; at equal times the venue applied the
    data first) is ahead of us: its cancels and executions move us up lot for lot. One that
    joined later is behind us: its cancels do not move us, and an execution against it would
    have hit us first, so it fills us. Events without the flag fall back to risk-averse.
    """
    nf = 0
    model = h[H_QUEUE_MODEL]
    qn = hf[HF_QUEUE_N]
    fifo = model == QUEUE_FIFO and (flags & FLAG_QUEUE_TS) != 0
    m = h[H_MAX_ORDERS]
    for sid in range(strat.shape[0]):
        base = sid * m
        for j in range(base + strat[sid, S_N_REST] - 1, base - 1, -1):
            slot = rest[j]
            o = ordm[slot]
            if o[O_INST] != inst:
                continue
            os_ = o[O_SIDE]
            op = o[O_PRICE]
            # the book moved through our price: everything ahead of us is gone, we are filled.
            # Only liquidity this event brings to (or through) our price counts: a book that was
            # crossed already (the rest of an order that took liquidity) still shows the levels
            # that order took, since our orders do not change the replayed book.
            if (
                (kind == KIND_LEVEL or kind == KIND_BBO)
                and side == -os_
                and qty > old_qty
                and ((os_ == BUY and price <= op) or (os_ != BUY and price >= op))
            ):
                out[nf, 0] = slot
                out[nf, 1] = op
                out[nf, 2] = o[O_LEAVES]
                nf += 1
                continue
            if kind == KIND_TRADE and side == -os_:
                # a trade by an aggressor on the other side at or through our price
                if (os_ == BUY and price < op) or (os_ != BUY and price > op):
                    out[nf, 0] = slot
                    out[nf, 1] = op
                    out[nf, 2] = o[O_LEAVES]
                    nf += 1
                    continue
                if price == op and fifo:
                    if prio > o[O_VENUE_TS]:
                        ordf[slot, OF_FRONT] = 0.0
                        fq = min(o[O_LEAVES], qty)
                        if fq > 0:
                            out[nf, 0] = slot
                            out[nf, 1] = op
                            out[nf, 2] = fq
                            nf += 1
                    # an order ahead of ours traded: the level update that follows moves us up
                elif price == op:
                    f = ordf[slot, OF_FRONT] - qty
                    ordf[slot, OF_TRADE_CREDIT] += min(float(qty), ordf[slot, OF_FRONT])
                    if f < 0.0:
                        ordf[slot, OF_FRONT] = 0.0
                        fq = min(o[O_LEAVES], int(-f))
                        if fq > 0:
                            out[nf, 0] = slot
                            out[nf, 1] = op
                            out[nf, 2] = fq
                            nf += 1
                    else:
                        ordf[slot, OF_FRONT] = f
            elif (kind == KIND_LEVEL or kind == KIND_BBO) and side == os_ and price == op and fifo:
                if qty < old_qty and prio <= o[O_VENUE_TS]:
                    ordf[slot, OF_FRONT] = max(ordf[slot, OF_FRONT] - float(old_qty - qty), 0.0)
            elif (kind == KIND_LEVEL or kind == KIND_BBO) and side == os_ and price == op:
                # a level update at our price: trades already counted are not cancels
                credit = ordf[slot, OF_TRADE_CREDIT]
                eff_old = old_qty
                if credit > 0.0 and qty < old_qty:
                    used = min(credit, float(old_qty - qty))
                    ordf[slot, OF_TRADE_CREDIT] = credit - used
                    eff_old = old_qty - int(used)
                ordf[slot, OF_FRONT] = queue_front(model, qn, ordf[slot, OF_FRONT], eff_old, qty)
    return nf


@inline
def apply_fills(st: State, now: int, fills: npt.NDArray[np.int64], nf: int) -> None:
    """Execute the maker fills :func:`scan_resting` listed."""
    for k in range(nf):
        _fill(st, fills[k, 0], now, fills[k, 1], fills[k, 2], LIQ_MAKER)


@inline
def venue_status(instarr: npt.NDArray[np.int64], inst: int, status: int) -> None:
    """A trading-status event: halts, pauses and quote-only periods stop our orders."""
    if status == STATUS_HALTED or status == STATUS_PAUSED or status == STATUS_QUOTING:
        instarr[inst, I_HALTED] = 1
    elif status == STATUS_OPEN:
        instarr[inst, I_HALTED] = 0


__all__ = ["apply_fills", "fee_of", "scan_resting", "venue_request", "venue_status"]
