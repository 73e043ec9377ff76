"""The compiled replay loop: one clock, two views of every event.

:func:`advance` runs the engine forward over the event window until something needs the
strategy (a book change, a trade, a fill, an order update, a timer) or the driver (more
data, a full recorder, the end). Actions are taken in time order; at equal times the venue
applies market data first, then order requests arriving at it, then responses reaching the
strategy, then market data reaching the strategy, then timers and samples.

The venue applies the window's events in row order (rows are sorted by ``local_ts``) at
``max(exch_ts, clock)``: where a source's exchange times are not monotonic in receive order
(separate Binance streams), an event is applied at the latest exchange time already seen.
"""

from __future__ import annotations

import math

import numpy as np
from numba import carray

from framework.arena.fnptr import call_i64
from framework.arena.messages import log_order, next_msg, pop_msg
from framework.arena.state import (
    EQ_CASH,
    EQ_COLS,
    EQ_EQUITY,
    EQ_FEES,
    EQ_POSVAL,
    EQ_STRAT,
    EQ_STRAT_TOTAL,
    EQ_TS,
    ERR_BOOK_FULL,
    H_END_TS,
    H_ERROR,
    H_EV_PTR,
    H_EVENTS_LOCAL,
    H_EVENTS_VENUE,
    H_EXTERNAL,
    H_FEAT_PTR,
    H_FEED_LAT,
    H_FINAL,
    H_FN_WAKE,
    H_HORIZON,
    H_LAST_TS,
    H_LOCAL_CUR,
    H_MAX_ORDERS,
    H_MSG_SEQ,
    H_N_DENY,
    H_N_EQ,
    H_N_EV,
    H_N_FILL,
    H_N_MKT,
    H_N_ORD,
    H_N_POS,
    H_N_REQ,
    H_N_RESP,
    H_NEXT_SAMPLE,
    H_NOW,
    H_REQ_HEAD,
    H_RESP_HEAD,
    H_SAMPLE_NS,
    H_SHARED_NOW,
    H_TIMER_AT,
    H_TIMER_DIRTY,
    H_TIMER_SID,
    H_VENUE_CUR,
    H_WAKE,
    H_WAKE_INST,
    H_WAKE_STRAT,
    H_WALL,
    I_BA,
    I_BB,
    I_N_BOOK_WAKES,
    I_N_RESTING,
    I_N_TRADE_WAKES,
    I_REST_DIRTY,
    I_SUB_BOOK,
    I_SUB_TRADE,
    M_SLOT,
    M_TS,
    MKT_ASK,
    MKT_BID,
    MKT_INST,
    MKT_TS,
    MSG_COLS,
    O_ID,
    O_STRAT,
    P_POS,
    POSREC_INST,
    POSREC_MID,
    POSREC_POS,
    POSREC_STRAT,
    POSREC_TS,
    R_MAX_DRAWDOWN,
    R_MAX_LOSS,
    S_KILLED,
    S_N_WAKES,
    S_OWN_NOW,
    S_SUB_FILL,
    S_SUB_ORDER,
    S_TIMER_AT,
    S_TIMER_EVERY,
    WAKE_BOOK,
    WAKE_DONE,
    WAKE_ERROR,
    WAKE_FILL,
    WAKE_FLUSH,
    WAKE_NEED_DATA,
    WAKE_NONE,
    WAKE_REQUESTS,
    WAKE_TIMER,
    WAKE_TRADE,
    Arena,
    State,
    _as_voidptr,
    arena_at,
    unpack_raw,
)
from framework.book.l2 import BOOK_FULL, l2_apply, l2_qty_at
from framework.core.events import EVENT_DTYPE, KIND_BBO, KIND_CLEAR, KIND_LEVEL, KIND_STATUS
from framework.core.jit import inline, outline
from framework.features.kernels import N_FEATURES
from framework.kernel.local import local_book_event, local_response, trip_kill_switch
from framework.kernel.venue import (
    apply_fills,
    rest_bounds,
    rest_relevant,
    scan_resting,
    venue_request,
    venue_status,
)
from framework.portfolio.accounting import mark_price, strategy_equity
from framework.risk.checks import kill_switch_breached

INF = np.iinfo(np.int64).max
NO_HORIZON = np.iinfo(np.int64).min  #: h[H_HORIZON] when the engine waits for input
FLUSH_MARGIN = 256  # rows every recorder must have free before the loop takes an action


@inline
def _put_f(row: np.ndarray, col: int, x: float) -> None:
    """Store a float bit for bit in an int64 recorder cell (no allocation)."""
    row[col : col + 1].view(np.float64)[0] = x


@outline
def check_kill(a: Arena, sid: int, now: int) -> None:
    st = unpack_raw(a)
    lim = st.risk[sid]
    if st.strat[sid, S_KILLED] or (math.isinf(lim[R_MAX_LOSS]) and math.isinf(lim[R_MAX_DRAWDOWN])):
        return
    eq, _, _ = strategy_equity(st, sid)
    if kill_switch_breached(st, sid, eq, lim[R_MAX_LOSS], lim[R_MAX_DRAWDOWN]):
        trip_kill_switch(a, sid, now)


@inline
def _equity_row(st: State, now: int, sid: int, eq: float, cash: float, fees: float) -> None:
    """Append an equity row (``sid``: a strategy, or EQ_STRAT_TOTAL)."""
    h = st.h
    r = h[H_N_EQ]
    row = st.rec_eq[r]
    row[EQ_TS] = now
    row[EQ_STRAT] = sid
    _put_f(row, EQ_CASH, cash)
    _put_f(row, EQ_FEES, fees)
    _put_f(row, EQ_POSVAL, eq - cash)
    _put_f(row, EQ_EQUITY, eq)
    h[H_N_EQ] = r + 1


@outline
def _sample_strategy(a: Arena, sid: int, now: int) -> tuple[float, float, float]:
    """Record one strategy's equity and positions at ``now`` (then check its kill switch);
    returns its (equity, cash, fees)."""
    st = unpack_raw(a)
    h = st.h
    eq, cash, fees = strategy_equity(st, sid)
    _equity_row(st, now, sid, eq, cash, fees)
    for i in range(st.inst.shape[0]):
        r = h[H_N_POS]
        row = st.rec_pos[r]
        row[POSREC_TS] = now
        row[POSREC_STRAT] = sid
        row[POSREC_INST] = i
        row[POSREC_POS] = st.pos[sid, i, P_POS]
        _put_f(row, POSREC_MID, mark_price(st, i))
        h[H_N_POS] = r + 1
    check_kill(a, sid, now)
    return eq, cash, fees


@outline
def _sample_all(a: Arena, now: int, final: bool) -> None:
    st = unpack_raw(a)
    h = st.h
    n_strat = st.strat.shape[0]
    tot_eq = 0.0
    tot_cash = 0.0
    tot_fees = 0.0
    for sid in range(n_strat):
        t = end_clock(h, st.strat, sid) if final else now
        eq, cash, fees = _sample_strategy(a, sid, t)
        tot_eq += eq
        tot_cash += cash
        tot_fees += fees
    if n_strat > 1:
        _equity_row(st, now, EQ_STRAT_TOTAL, tot_eq, tot_cash, tot_fees)
    for i in range(st.inst.shape[0]):
        r = h[H_N_MKT]
        row = st.rec_mkt[r]
        row[MKT_TS] = now
        row[MKT_INST] = i
        row[MKT_BID] = st.inst[i, I_BB]
        row[MKT_ASK] = st.inst[i, I_BA]
        h[H_N_MKT] = r + 1
    _ = EQ_COLS


@outline
def sample(a: Arena, now: int) -> None:
    """Record equity per strategy (and the total), positions and the touch per instrument."""
    _sample_all(a, now, False)


@outline
def end_clock(h: np.ndarray, strat: np.ndarray, sid: int) -> int:
    """The clock at the end of the run as a run of strategy ``sid`` alone would have it: the
    later of the last shared action (market data, samples) and the strategy's own last action
    (its orders' messages, its timer). The run's clock (``H_NOW``) may be later: messages of
    other strategies still in flight when the data ended."""
    return max(h[H_SHARED_NOW], strat[sid, S_OWN_NOW])


@outline
def _next_timer(h: np.ndarray, strat: np.ndarray) -> None:
    """Find the next timer (H_TIMER_AT / H_TIMER_SID; sid -1 when none is set): the
    earliest, the lowest strategy index at equal times. Only after a timer was set or fired:
    looking at every strategy on every step would cost K times as much for K strategies."""
    at_min = 0
    sid_min = -1
    for sid in range(strat.shape[0]):
        at = strat[sid, S_TIMER_AT]
        if at > 0 and (sid_min < 0 or at < at_min):
            at_min = at
            sid_min = sid
    h[H_TIMER_AT] = at_min
    h[H_TIMER_SID] = sid_min
    h[H_TIMER_DIRTY] = 0


@inline
def _marks(h: np.ndarray) -> tuple[int, int, int, int, int]:
    """What a strategy's callback changes when it acts (messages sent, denials and orders
    logged, a timer set, an error): unchanged, the next action is still the one the inner
    data loop had found."""
    return h[H_MSG_SEQ], h[H_N_DENY], h[H_N_ORD], h[H_TIMER_DIRTY], h[H_ERROR]


@inline
def _sync(h: np.ndarray, ev: np.ndarray, vc: int, lc: int, l0: int) -> None:
    """Write the inner data loop's cursors and counters back to the header (they live in
    registers meanwhile: every view aliases the arena, so LLVM reloads after each store)."""
    h[H_EVENTS_VENUE] += vc - h[H_VENUE_CUR]
    h[H_EVENTS_LOCAL] += lc - h[H_LOCAL_CUR]
    h[H_VENUE_CUR] = vc
    h[H_LOCAL_CUR] = lc
    if lc > l0:
        e = ev[lc - 1]
        h[H_FEED_LAT] = e["local_ts"] - e["exch_ts"]
        h[H_LAST_TS] = e["local_ts"]


def advance(p: int) -> int:
    """Run the arena at address ``p`` until a wake-up; returns its WAKE_* code (also left in
    ``h[H_WAKE]``). The event window is found through ``h[H_EV_PTR]``.

    Not decorated: it is the body of the core's ``advance`` entry point
    (:mod:`framework.kernel.core` compiles it as a C function), compiled there and nowhere
    else (a compiled function in between would be optimised and turned into machine code
    twice, once on its own and once inside the entry point).

    The per-event path calls only functions that take a few arrays: passing the whole
    state to a function that LLVM does not inline costs more than the event's work.
    """
    a = arena_at(p)
    st = unpack_raw(a)
    h = st.h
    ev = carray(_as_voidptr(h[H_EV_PTR]), (h[H_N_EV],), EVENT_DTYPE)  # type: ignore[call-arg]
    hf = st.hf
    instarr = st.inst
    vmeta = st.vmeta
    vqty = st.vqty
    lmeta = st.lmeta
    lqty = st.lqty
    rest = st.rest
    ordm = st.ord
    ordf = st.ordf
    req = st.req
    resp = st.resp
    strat = st.strat
    n = h[H_N_EV]
    final = h[H_FINAL] != 0
    if h[H_SHARED_NOW] == 0:  # the clock the driver started (nothing shared happened yet)
        h[H_SHARED_NOW] = h[H_NOW]
    scratch = st.scratch
    fills = scratch[: rest.shape[0]]
    n_strat = strat.shape[0]
    n_inst = instarr.shape[0]
    lim = st.rec_fill.shape[0] - FLUSH_MARGIN
    # feature rows aligned with the window, computed in one pass per batch by the driver
    use_feats = h[H_FEAT_PTR] != 0
    feat = st.feat
    feats = carray(_as_voidptr(h[H_FEAT_PTR]), (n, N_FEATURES), np.float64) if use_feats else feat
    # orders go to a gateway through the driver: the venue view and the request queue are
    # the driver's, and the strategy view alone consumes the window
    external = h[H_EXTERNAL] != 0
    horizon = h[H_HORIZON]
    # the strategies' callbacks as a C function (0: return to the caller at a wake-up)
    fnw = h[H_FN_WAKE]
    while True:
        if (
            h[H_N_FILL] >= lim
            or h[H_N_ORD] >= lim
            or h[H_N_DENY] >= lim
            or h[H_N_EQ] + n_strat + 1 >= lim
            or h[H_N_POS] + n_strat * n_inst >= lim
            or h[H_N_MKT] + n_inst >= lim
        ):
            h[H_WAKE] = WAKE_FLUSH
            return WAKE_FLUSH
        if external and h[H_N_REQ] > 0:
            h[H_WAKE] = WAKE_REQUESTS
            return WAKE_REQUESTS
        vc = h[H_VENUE_CUR]
        lc = h[H_LOCAL_CUR]
        venue_out = external or vc >= n
        # the input has run out but more may come: wait for it, unless the driver vouches
        # for a horizon (wall clock) up to which the other actions can run meanwhile
        waiting = (lc >= n or (vc >= n and not external)) and not final
        if waiting and horizon == NO_HORIZON:
            h[H_WAKE] = WAKE_NEED_DATA
            return WAKE_NEED_DATA
        now = h[H_NOW]
        tv = INF if venue_out or waiting else max(ev[vc]["exch_ts"], now)
        tl = INF if lc >= n or waiting else max(ev[lc]["local_ts"], now)
        ireq = -1 if external else next_msg(h, H_N_REQ, H_REQ_HEAD)
        treq = INF if ireq < 0 else max(req[ireq, M_TS], now)
        iresp = next_msg(h, H_N_RESP, H_RESP_HEAD)
        tresp = INF if iresp < 0 else max(resp[iresp, M_TS], now)
        ttimer = INF
        tsid = -1
        tsample = INF
        if not final or lc < n or not venue_out:  # once the data has ended, timers and samples stop
            if h[H_TIMER_DIRTY]:
                _next_timer(h, strat)
            if h[H_TIMER_SID] >= 0:
                ttimer = max(h[H_TIMER_AT], now)
                tsid = h[H_TIMER_SID]
            if h[H_SAMPLE_NS] > 0:
                tsample = max(h[H_NEXT_SAMPLE], now)
        t = min(tv, treq, tresp, tl, ttimer, tsample)
        if waiting and t > horizon:
            h[H_WAKE] = WAKE_NEED_DATA
            return WAKE_NEED_DATA
        if t == INF or t > h[H_END_TS]:
            h[H_WAKE] = WAKE_DONE
            return WAKE_DONE
        h[H_NOW] = t
        if t == tv or t == tl:
            # Market data, in time order, for as long as it comes before every other action
            # (requests and responses win ties against the strategy view; the venue view
            # wins all ties). Nothing else changes meanwhile, so those times stand, and this
            # inner loop is the whole cost of an event: no per-event search for the next
            # action. It stops at a wake, at fills (they send responses), at the window's end.
            t_rr = min(treq, tresp)
            t_ts = min(ttimer, tsample)
            end = h[H_END_TS]
            l0 = lc
            while True:
                if t == tv:
                    e = ev[vc]
                    i = e["instrument"]
                    kind = e["kind"]
                    side = e["side"]
                    price = e["price"]
                    qty = e["qty"]
                    vc += 1
                    if kind == KIND_STATUS:
                        venue_status(instarr, i, qty)
                    else:
                        is_level = kind == KIND_LEVEL or kind == KIND_BBO
                        resting = instarr[i, I_N_RESTING] > 0
                        if resting:
                            if instarr[i, I_REST_DIRTY]:
                                rest_bounds(h, strat, rest, ordm, instarr[i], i)
                            resting = rest_relevant(instarr[i], kind, side, price)
                        old = 0
                        if resting and is_level:
                            old = l2_qty_at(vmeta[i], vqty[i], side, price)
                        is_book = is_level or kind == KIND_CLEAR
                        if is_book and (
                            l2_apply(vmeta[i], vqty[i], kind, side, price, qty) == BOOK_FULL
                        ):
                            h[H_ERROR] = ERR_BOOK_FULL  # stop now: the book cannot grow
                            break
                        if resting:
                            nf = scan_resting(
                                h,
                                hf,
                                strat,
                                rest,
                                ordm,
                                ordf,
                                i,
                                kind,
                                side,
                                price,
                                qty,
                                old,
                                e["flags"],
                                np.int64(e["order_id"]),
                                fills,
                            )
                            if nf > 0:
                                _sync(h, ev, vc, lc, l0)
                                h[H_NOW] = t
                                apply_fills(st, t, fills, nf)
                                break
                else:
                    e = ev[lc]
                    i = e["instrument"]
                    lc += 1
                    if use_feats:
                        for j in range(N_FEATURES):
                            feat[i, j] = feats[lc - 1, j]
                    w = local_book_event(
                        lmeta[i],
                        lqty[i],
                        instarr[i],
                        e["kind"],
                        e["side"],
                        e["price"],
                        e["qty"],
                        e["flags"],
                    )
                    if w == WAKE_ERROR:
                        h[H_ERROR] = ERR_BOOK_FULL
                        break
                    if (w == WAKE_BOOK and instarr[i, I_SUB_BOOK]) or (
                        w == WAKE_TRADE and instarr[i, I_SUB_TRADE]
                    ):
                        instarr[i, I_N_BOOK_WAKES if w == WAKE_BOOK else I_N_TRADE_WAKES] += 1
                        _sync(h, ev, vc, lc, l0)
                        h[H_NOW] = t
                        h[H_SHARED_NOW] = t
                        h[H_WAKE_INST] = i
                        h[H_WAKE] = w
                        if fnw == 0:
                            return w
                        mark = _marks(h)
                        call_i64(fnw, (p, np.int64(w)))
                        if _marks(h) != mark:
                            break  # the strategies acted: the outer loop looks again
                if lc >= n or (vc >= n and not external):
                    break  # the window's end: the outer loop asks for data or finishes
                tv = INF if external else max(ev[vc]["exch_ts"], t)
                tl = max(ev[lc]["local_ts"], t)
                if tv <= tl and tv <= t_rr and tv <= t_ts and tv <= end:
                    t = tv
                elif tl < tv and tl < t_rr and tl <= t_ts and tl <= end:
                    t = tl
                else:
                    break
            _sync(h, ev, vc, lc, l0)
            h[H_NOW] = t
            h[H_SHARED_NOW] = t
        elif t == treq:
            # the message's words, made here: a reshape calls into numba's helper library,
            # which costs every wake-up when made at the top
            mbuf = scratch[rest.shape[0] :].reshape(-1)[:MSG_COLS]
            pop_msg(st, req, H_N_REQ, H_REQ_HEAD, mbuf)
            strat[ordm[mbuf[M_SLOT], O_STRAT], S_OWN_NOW] = t  # slots belong to a strategy
            venue_request(a, mbuf, t)
        elif t == tresp:
            mbuf = scratch[rest.shape[0] :].reshape(-1)[:MSG_COLS]
            pop_msg(st, resp, H_N_RESP, H_RESP_HEAD, mbuf)
            strat[ordm[mbuf[M_SLOT], O_STRAT], S_OWN_NOW] = t
            w = local_response(a, mbuf, t)
            if w == WAKE_FILL:
                check_kill(a, h[H_WAKE_STRAT], t)
            wants = S_SUB_FILL if w == WAKE_FILL else S_SUB_ORDER
            if w != WAKE_NONE and strat[h[H_WAKE_STRAT], wants]:
                strat[h[H_WAKE_STRAT], S_N_WAKES] += 1
                h[H_WAKE] = w
                if fnw == 0:
                    return w
                call_i64(fnw, (p, np.int64(w)))
        elif t == ttimer:
            every = strat[tsid, S_TIMER_EVERY]
            nxt = t + every if every > 0 else 0
            if every > 0 and h[H_WALL] and nxt <= horizon:  # behind the wall: skip ahead
                nxt += every * ((horizon - nxt) // every + 1)
            strat[tsid, S_TIMER_AT] = nxt
            h[H_TIMER_DIRTY] = 1
            strat[tsid, S_OWN_NOW] = t
            h[H_WAKE_STRAT] = tsid
            strat[tsid, S_N_WAKES] += 1
            h[H_WAKE] = WAKE_TIMER
            if fnw == 0:
                return WAKE_TIMER
            call_i64(fnw, (p, np.int64(WAKE_TIMER)))
        else:
            sample(a, t)
            h[H_SHARED_NOW] = t
            h[H_NEXT_SAMPLE] = (t // h[H_SAMPLE_NS] + 1) * h[H_SAMPLE_NS]
        if h[H_ERROR] != 0:
            h[H_WAKE] = WAKE_ERROR
            return WAKE_ERROR


def finish(p: int) -> int:
    """The sample at the end of a run (each strategy's at its :func:`end_clock`, the total
    and the touch at the engine clock), then the orders still working into the order log
    (status as they stand, end time = the strategy's :func:`end_clock`) so the orders table
    lists every order sent; returns how many. The body of the core's ``finish`` entry
    point, as :func:`advance`."""
    a = arena_at(p)
    st = unpack_raw(a)
    _sample_all(a, st.h[H_NOW], True)
    m = st.h[H_MAX_ORDERS]
    n = 0
    # strategy by strategy, each one's in the order it sent them (its ids grow with each
    # submission), whatever slots they hold: an insertion sort, as np.argsort would compile
    # numba's quicksort (seconds) for a list that is short and mostly in order already
    for sid in range(st.strat.shape[0]):
        now = end_clock(st.h, st.strat, sid)
        ids = st.ord[sid * m : (sid + 1) * m, O_ID]
        live = np.nonzero(ids)[0]
        for k in range(1, live.shape[0]):
            j = live[k]
            i = k - 1
            while i >= 0 and ids[live[i]] > ids[j]:
                live[i + 1] = live[i]
                i -= 1
            live[i + 1] = j
        for j in live:
            log_order(st, sid * m + j, now)
        n += live.shape[0]
    return n


__all__ = ["advance", "end_clock", "finish", "sample"]
