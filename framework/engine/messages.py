"""In-flight messages (requests to the venue, responses to the strategy), order slots and the
recorder buffers. All compiled; all state in the arena."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from framework.core.jit import inline
from framework.engine.state import (
    ERR_MESSAGES_FULL,
    ERR_ORDERS_FULL,
    H_ERROR,
    H_MSG_SEQ,
    H_N_FREE,
    H_N_LAT,
    H_N_ORD,
    H_N_REQ,
    H_N_RESP,
    LAT_KIND,
    LAT_NS,
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
    O_FILLED,
    O_ID,
    O_INST,
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
    State,
)

INT64_MAX = np.iinfo(np.int64).max


# --- order slots ------------------------------------------------------------------------
@inline
def alloc_slot(st: State) -> int:
    """A free order slot, or -1 when the table is full (H_WAKE_REASON set)."""
    _free = st.free
    _h = st.h
    _ord = st.ord
    _ordf = st.ordf
    n = _h[H_N_FREE]
    if n == 0:
        _h[H_ERROR] = ERR_ORDERS_FULL
        return -1
    _h[H_N_FREE] = n - 1
    slot = _free[n - 1]
    for c in range(ORD_COLS):
        _ord[slot, c] = 0
    for c in range(ORDF_COLS):
        _ordf[slot, c] = 0.0
    return slot


@inline
def release_slot(st: State, slot: int) -> None:
    _free = st.free
    _h = st.h
    _ord = st.ord
    _ord[slot, O_ID] = 0
    n = _h[H_N_FREE]
    _free[n] = slot
    _h[H_N_FREE] = n + 1


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
def log_latency(st: State, kind: int, ns: int) -> None:
    _h = st.h
    _rec_lat = st.rec_lat
    r = _h[H_N_LAT]
    if r < _rec_lat.shape[0]:
        _rec_lat[r, LAT_KIND] = kind
        _rec_lat[r, LAT_NS] = ns
        _h[H_N_LAT] = r + 1


# --- message queues ------------------------------------------------------------------------
@inline
def push_msg(
    st: State,
    q: npt.NDArray[np.int64],
    count_word: int,
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
    n = _h[count_word]
    if n >= q.shape[0]:
        _h[H_ERROR] = ERR_MESSAGES_FULL
        return False
    m = q[n]
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
def next_msg(h: npt.NDArray[np.int64], q: npt.NDArray[np.int64], count_word: int) -> int:
    """Index of the earliest message (FIFO among equal times), or -1. Takes the header
    ``h`` rather than the whole state: it runs on every step of the replay loop."""
    n = h[count_word]
    best = -1
    bt = INT64_MAX
    bs = INT64_MAX
    for i in range(n):
        t = q[i, M_TS]
        if t < bt or (t == bt and q[i, M_SEQ] < bs):
            best = i
            bt = t
            bs = q[i, M_SEQ]
    return best


@inline
def pop_msg(
    st: State, q: npt.NDArray[np.int64], count_word: int, i: int, out: npt.NDArray[np.int64]
) -> None:
    """Copy message ``i`` to ``out`` and remove it (the last one takes its place)."""
    _h = st.h
    n = _h[count_word]
    for c in range(MSG_COLS):
        out[c] = q[i, c]
    if i != n - 1:
        for c in range(MSG_COLS):
            q[i, c] = q[n - 1, c]
    _h[count_word] = n - 1


@inline
def msg_fee(m: npt.NDArray[np.int64]) -> float:
    return m[MSG_FEE : MSG_FEE + 1].view(np.float64)[0]


@inline
def push_request(st: State, ts: int, kind: int, slot: int, price: int, qty: int, sent: int) -> bool:
    _req = st.req
    return push_msg(st, _req, H_N_REQ, ts, kind, slot, price, qty, 0, 0, 0, sent, 0.0)


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
        st, _resp, H_N_RESP, ts, kind, slot, price, qty, liq, reason, exch_ts, exch_ts, fee
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
