"""The order seam between the strategies' side of the engine and a venue.

Strategies send orders through the local order path (risk checks, the strategy's view of its
orders); each order that passes becomes a *request* message, and the venue's answers come back
as *response* messages (acks, fills, rejects, cancels). With the simulated venue both queues
stay inside the compiled loop. With an external venue (``Engine(venue="external")``) the
driver takes the requests out with :meth:`~framework.engine.engine.Engine.drain_requests`,
hands them to a gateway, and gives its answers back with
:meth:`~framework.engine.engine.Engine.inject`. The two record layouts here are that seam.

Prices are in ticks and quantities in lots of the instrument (``Instrument.tick_size`` and
``lot_size`` convert), times in nanoseconds.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.arena.enums import LIQ_MAKER, LIQ_TAKER
from framework.arena.messages import push_response
from framework.arena.state import (
    H_N_REQ,
    H_REQ_HEAD,
    M_ID,
    M_KIND,
    M_PRICE,
    M_QTY,
    M_SENT,
    M_SLOT,
    M_TS,
    O_INST,
    O_SIDE,
    O_STRAT,
    O_TIF,
    O_TYPE,
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
    Arena,
    slot_of,
    unpack_raw,
)
from framework.kernel.venue import fee_of

#: an order request that passed the risk checks, as a gateway receives it
REQUEST_DTYPE: Final = np.dtype(
    [
        ("ts", "<i8"),  # when the strategy sent it (engine clock)
        ("arrive_ts", "<i8"),  # when the latency model has it reach the venue
        ("kind", "<i1"),  # REQ_NEW / REQ_CANCEL / REQ_MODIFY
        ("oid", "<i8"),
        ("strategy", "<i4"),  # index in the engine's strategies
        ("instrument", "<i4"),  # index in the engine's instruments
        ("side", "<i1"),  # +1 buy, -1 sell
        ("order_type", "<i1"),  # ORD_LIMIT / ORD_MARKET
        ("tif", "<i1"),  # TIF_*
        ("price", "<i8"),  # ticks (a modify: the new price)
        ("qty", "<i8"),  # lots (a modify: the new total size)
    ]
)

#: a venue's answer to an order, as a gateway gives it back
RESPONSE_DTYPE: Final = np.dtype(
    [
        ("ts", "<i8"),  # when it reaches the strategy (the engine acts on it then)
        ("exch_ts", "<i8"),  # when the venue acted
        ("kind", "<i1"),  # RESP_*
        ("oid", "<i8"),
        ("strategy", "<i4"),  # the request's: order ids are unique per strategy
        ("price", "<i8"),  # ticks: a fill's price; an ack's or modify's order price
        ("qty", "<i8"),  # lots: a fill's size; an ack's open size; a cancel's lots removed
        ("liquidity", "<i1"),  # LIQ_MAKER / LIQ_TAKER (fills)
        ("reason", "<i2"),  # REJ_* (rejects)
        ("fee", "<f8"),  # currency; NaN: the instrument's fee schedule prices it
    ]
)

REQUEST_KINDS: Final = {REQ_NEW: "new", REQ_CANCEL: "cancel", REQ_MODIFY: "modify"}
RESPONSE_KINDS: Final = {
    RESP_ACK: "ack",
    RESP_FILL: "fill",
    RESP_CANCELED: "canceled",
    RESP_REJECT: "rejected",
    RESP_EXPIRED: "expired",
    RESP_MODIFIED: "modified",
    RESP_CANCEL_REJECT: "cancel_rejected",
}


@njit(cache=True)
def drain_requests_state(a: Arena, out: npt.NDArray[np.int64]) -> int:
    """Move the request queue into ``out`` as int64 rows ``[ts, arrive_ts, kind, oid,
    strategy, instrument, side, type, tif, price, qty]`` (:func:`request_records` makes
    them REQUEST_DTYPE records) in the order the venue would see them (arrival time, then
    sending order); returns how many."""
    st = unpack_raw(a)
    h = st.h
    req = st.req
    ordm = st.ord
    n = h[H_N_REQ]
    cap = req.shape[0]
    for r in range(n):  # the queue is a ring in arrival order (messages.py)
        i = h[H_REQ_HEAD] + r
        m = req[i - cap if i >= cap else i]
        o = ordm[m[M_SLOT]]
        row = out[r]
        row[0] = m[M_SENT]
        row[1] = m[M_TS]
        row[2] = m[M_KIND]
        row[3] = m[M_ID]
        row[4] = o[O_STRAT]
        row[5] = o[O_INST]
        row[6] = o[O_SIDE]
        row[7] = o[O_TYPE]
        row[8] = o[O_TIF]
        row[9] = m[M_PRICE]
        row[10] = m[M_QTY]
    h[H_N_REQ] = 0
    h[H_REQ_HEAD] = 0
    return n


@njit(cache=True)
def inject_state(
    a: Arena,
    ints: npt.NDArray[np.int64],
    fees: npt.NDArray[np.float64],
    matched: npt.NDArray[np.bool_],
) -> bool:
    """Queue responses ``ints[k] = [ts, exch_ts, kind, oid, strategy, price, qty, liq,
    reason]`` with
    ``fees[k]`` (NaN: priced by the instrument's schedule) for the strategies' side.
    ``matched[k]`` says whether response ``k`` names a live order; the others are not
    queued. Returns False when the message queue is full (h[H_ERROR] is set)."""
    st = unpack_raw(a)
    ordm = st.ord
    n_strat = st.strat.shape[0]
    for k in range(ints.shape[0]):
        r = ints[k]
        sid = r[4]
        slot = slot_of(st, sid, r[3]) if 0 <= sid < n_strat else -1
        if slot < 0:
            matched[k] = False
            continue
        matched[k] = True
        fee = fees[k]
        if np.isnan(fee):
            fee = fee_of(st, ordm[slot, O_INST], r[5], r[6], r[7]) if r[2] == RESP_FILL else 0.0
        if not push_response(st, r[0], r[2], slot, r[5], r[6], r[7], r[8], r[1], fee):
            return False
    return True


def request_records(words: npt.NDArray[np.int64]) -> npt.NDArray[np.void]:
    """Rows from :func:`drain_requests_state` as REQUEST_DTYPE records."""
    out = np.empty(len(words), REQUEST_DTYPE)
    for j, name in enumerate(REQUEST_DTYPE.names or ()):
        out[name] = words[:, j]
    return out


def check_responses(responses: npt.NDArray[np.void]) -> str | None:
    """What is wrong with a batch of responses (a sentence), or None."""
    kinds = responses["kind"]
    bad = ~np.isin(kinds, list(RESPONSE_KINDS))
    if bad.any():
        return (
            f"response {int(np.argmax(bad))} has kind {int(kinds[bad][0])}; the kinds are "
            + ", ".join(f"{k} ({v})" for k, v in RESPONSE_KINDS.items())
        )
    fill = kinds == RESP_FILL
    if (responses["qty"][fill] <= 0).any():
        return "a fill response has a quantity <= 0 (fills carry the lots filled)"
    liq = responses["liquidity"][fill]
    odd = liq[~np.isin(liq, [LIQ_MAKER, LIQ_TAKER])]
    if len(odd):
        return f"a fill response has liquidity {int(odd[0])}; use 0 (maker) or 1 (taker)"
    return None


__all__ = [
    "REQUEST_DTYPE",
    "REQUEST_KINDS",
    "RESPONSE_DTYPE",
    "RESPONSE_KINDS",
    "check_responses",
    "drain_requests_state",
    "inject_state",
    "request_records",
]
