"""In-flight messages (requests to the venue, responses to the strategy), order slots and the
recorder buffers. All compiled; all state in the arena."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from framework.arena.state import (
    ERR_MESSAGES_FULL,
    ERR_ORDERS_FULL,
    H_ERROR,
    H_MAX_ORDERS,
    H_MSG_SEQ,
    H_N_ORD,
    H_N_REQ,
    H_N_RESP,
    H_REQ_HEAD,
    H_RESP_HEAD,
    LAT_EXACT_BITS,
    LAT_MAX_BITS,
    LAT_SUB_BITS,
    LATH_COUNT,
    LATH_SUM,
    M_EXCH_TS,
    M_ID,
    M_KIND,
    M_LIQ,
    M_PRICE,
    M_QTY,
    M_REASON,
    M_SENT,
    M_SEQ,
    M_SLOT,
    M_TS,
    MSG_COLS,
    MSG_FEE,
    N_LAT_BUCKETS,
    O_FILLED,
    O_ID,
    O_INST,
    O_LIVE_IDX,
    O_NOTIONAL,
    O_PRICE,
    O_QTY,
    O_REASON,
    O_SIDE,
    O_STATUS,
    O_STRAT,
    O_SUBMIT_TS,
    O_TIF,
    O_TYPE,
    OL_END,
    OL_FILLED,
    OL_ID,
    OL_INST,
    OL_NOTIONAL,
    OL_PRICE,
    OL_QTY,
    OL_REASON,
    OL_SIDE,
    OL_STATUS,
    OL_STRAT,
    OL_SUBMIT,
    OL_TIF,
    OL_TYPE,
    ORD_COLS,
    ORDF_COLS,
    S_LAST_REQ_TS,
    S_LAST_RESP_TS,
    S_N_FREE,
    State,
)
from framework.core.jit import inline

INT64_MAX = np.iinfo(np.int64).max


# --- order slots ------------------------------------------------------------------------
# Each strategy allocates from its own partition of the order table (state.py, SEG_ORD), so
# its slots -- and the order ids made from them -- are what they would be in a run alone.
@inline
def alloc_slot(st: State, sid: int) -> int:
    """A free order slot of strategy ``sid``, or -1 when its slots are all in use (H_ERROR
    set)."""
    _free = st.free
    _h = st.h
    _ord = st.ord
    _ordf = st.ordf
    _strat = st.strat
    n = _strat[sid, S_N_FREE]
    if n == 0:
        _h[H_ERROR] = ERR_ORDERS_FULL
        return -1
    _strat[sid, S_N_FREE] = n - 1
    slot = _free[sid * _h[H_MAX_ORDERS] + n - 1]
    for c in range(ORD_COLS):
        _ord[slot, c] = 0
    for c in range(ORDF_COLS):
        _ordf[slot, c] = 0.0
    _ord[slot, O_LIVE_IDX] = sid * _h[H_MAX_ORDERS] + n - 1  # the first of its live slots
    return slot


@inline
def release_slot(st: State, slot: int) -> None:
    """Give ``slot`` back to its strategy's free list: it trades places with the first
    live slot of the partition, which then ends the free stack (slots are taken in the
    same order as from a plain stack)."""
    _free = st.free
    _h = st.h
    _ord = st.ord
    _strat = st.strat
    sid = _ord[slot, O_STRAT]
    _ord[slot, O_ID] = 0
    base = sid * _h[H_MAX_ORDERS]
    n = _strat[sid, S_N_FREE]
    p = _ord[slot, O_LIVE_IDX]
    q = _free[base + n]
    _free[p] = q
    _ord[q, O_LIVE_IDX] = p
    _free[base + n] = slot
    _strat[sid, S_N_FREE] = n + 1


@inline
def log_order(st: State, slot: int, end_ts: int) -> None:
    """Append an order's final state to the order log."""
    _h = st.h
    _ord = st.ord
    _rec_ord = st.rec_ord
    r = _h[H_N_ORD]
    row = _rec_ord[r]
    o = _ord[slot]
    row[OL_ID] = o[O_ID]
    row[OL_STRAT] = o[O_STRAT]
    row[OL_INST] = o[O_INST]
    row[OL_SIDE] = o[O_SIDE]
    row[OL_TYPE] = o[O_TYPE]
    row[OL_TIF] = o[O_TIF]
    row[OL_PRICE] = o[O_PRICE]
    row[OL_QTY] = o[O_QTY]
    row[OL_SUBMIT] = o[O_SUBMIT_TS]
    row[OL_STATUS] = o[O_STATUS]
    row[OL_FILLED] = o[O_FILLED]
    row[OL_NOTIONAL] = o[O_NOTIONAL]
    row[OL_REASON] = o[O_REASON]
    row[OL_END] = end_ts
    _h[H_N_ORD] = r + 1


@inline
def lat_bucket(ns: int) -> int:
    """The latency histogram's bucket of ``ns`` (see ``N_LAT_BUCKETS``)."""
    if ns < (1 << LAT_EXACT_BITS):
        return max(ns, 0)
    x = ns
    k = 0  # floor(log2(ns)), by halving the range
    if x >= 1 << 32:
        x >>= 32
        k += 32
    if x >= 1 << 16:
        x >>= 16
        k += 16
    if x >= 1 << 8:
        x >>= 8
        k += 8
    if x >= 1 << 4:
        x >>= 4
        k += 4
    if x >= 1 << 2:
        x >>= 2
        k += 2
    if x >= 1 << 1:
        k += 1
    if k >= LAT_MAX_BITS:
        return N_LAT_BUCKETS - 1
    sub = (ns >> (k - LAT_SUB_BITS)) & ((1 << LAT_SUB_BITS) - 1)
    return (1 << LAT_EXACT_BITS) + ((k - LAT_EXACT_BITS) << LAT_SUB_BITS) + sub


@inline
def log_latency(st: State, kind: int, ns: int) -> None:
    """Count a latency of ``kind`` (LATK_*) in the run's histogram."""
    _lat_hist = st.lat_hist
    b = lat_bucket(ns)
    _lat_hist[kind, LATH_COUNT, b] += 1
    _lat_hist[kind, LATH_SUM, b] += ns


# --- message queues ------------------------------------------------------------------------
# Each queue is a ring (``q``'s rows from ``h[head_word]``, ``h[count_word]`` of them) kept in
# order of arrival time, FIFO at equal times: the next message is the head, found and taken
# in constant time however many are in flight (K strategies in one run send K times as many).
# A message is inserted from the tail, moving past the later ones; with a constant latency
# messages arrive in the order they are sent and nothing moves.
@inline
def push_msg(
    st: State,
    q: npt.NDArray[np.int64],
    count_word: int,
    head_word: int,
    fifo_col: int,
    ts: int,
    kind: int,
    slot: int,
    price: int,
    qty: int,
    liq: int,
    reason: int,
    exch_ts: int,
    sent: int,
    fee: float,
) -> bool:
    _h = st.h
    _ord = st.ord
    _strat = st.strat
    n = _h[count_word]
    cap = q.shape[0]
    if n >= cap:
        _h[H_ERROR] = ERR_MESSAGES_FULL
        return False
    # FIFO per strategy and direction: not before the channel's previous message
    sid = _ord[slot, O_STRAT]
    ts = max(ts, _strat[sid, fifo_col])
    _strat[sid, fifo_col] = ts
    i = _h[head_word] + n
    if i >= cap:
        i -= cap
    for _ in range(n):  # past the messages arriving later (none at a constant latency)
        j = i - 1 if i > 0 else cap - 1
        if q[j, M_TS] <= ts:
            break
        for c in range(MSG_COLS):
            q[i, c] = q[j, c]
        i = j
    m = q[i]
    seq = _h[H_MSG_SEQ]
    _h[H_MSG_SEQ] = seq + 1
    m[M_TS] = ts
    m[M_SEQ] = seq
    m[M_KIND] = kind
    m[M_SLOT] = slot
    m[M_ID] = _ord[slot, O_ID]
    m[M_PRICE] = price
    m[M_QTY] = qty
    m[M_LIQ] = liq
    m[M_REASON] = reason
    m[M_EXCH_TS] = exch_ts
    m[M_SENT] = sent
    m[MSG_FEE : MSG_FEE + 1].view(np.float64)[0] = fee
    _h[count_word] = n + 1
    return True


@inline
def next_msg(h: npt.NDArray[np.int64], count_word: int, head_word: int) -> int:
    """Row of the earliest message (FIFO among equal times), or -1. Takes the header ``h``
    rather than the whole state: it runs on every step of the replay loop."""
    return h[head_word] if h[count_word] > 0 else -1


@inline
def pop_msg(
    st: State, q: npt.NDArray[np.int64], count_word: int, head_word: int, out: npt.NDArray[np.int64]
) -> None:
    """Copy the earliest message to ``out`` and remove it."""
    _h = st.h
    i = _h[head_word]
    for c in range(MSG_COLS):
        out[c] = q[i, c]
    _h[head_word] = i + 1 if i + 1 < q.shape[0] else 0
    _h[count_word] -= 1


@inline
def msg_fee(m: npt.NDArray[np.int64]) -> float:
    return m[MSG_FEE : MSG_FEE + 1].view(np.float64)[0]


@inline
def push_request(st: State, ts: int, kind: int, slot: int, price: int, qty: int, sent: int) -> bool:
    _req = st.req
    return push_msg(
        st, _req, H_N_REQ, H_REQ_HEAD, S_LAST_REQ_TS, ts, kind, slot, price, qty, 0, 0, 0, sent,
        0.0
    )


@inline
def push_response(
    st: State,
    ts: int,
    kind: int,
    slot: int,
    price: int,
    qty: int,
    liq: int,
    reason: int,
    exch_ts: int,
    fee: float,
) -> bool:
    _resp = st.resp
    return push_msg(
        st,
        _resp,
        H_N_RESP,
        H_RESP_HEAD,
        S_LAST_RESP_TS,
        ts,
        kind,
        slot,
        price,
        qty,
        liq,
        reason,
        exch_ts,
        exch_ts,
        fee,
    )


__all__ = [
    "alloc_slot",
    "log_latency",
    "log_order",
    "msg_fee",
    "next_msg",
    "pop_msg",
    "push_request",
    "push_response",
    "release_slot",
]
