"""Compiled hot path of the ITCH-over-MoldUDP64 feed handler.

A batch of received packets sits in one ``uint8`` buffer, one fixed-size slot per packet.
:func:`frame_batch_nb` takes the packets that continue the sequence (dropping what was seen
already, stopping at the first packet that would leave a gap, a control packet that says
one exists, or the end of the session: those go back to Python), and lists their messages;
the framework's ITCH kernels classify and decode them into EVENT_DTYPE rows with the order
table kept across batches; :func:`apply_nb` applies the events to the framework's L3 book
and can take a snapshot of the book at every packet boundary.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.book.l2 import BOOK_FULL, POOL_FULL, l2_snapshot
from framework.book.l3 import l3_apply
from framework.core.events import FLAG_LAST
from framework.ingest.itch_nb import MSG_OK, classify_nb, decode_more_nb
from live.wire.moldudp64 import (
    COUNT_END_OF_SESSION,
    COUNT_HEARTBEAT,
    PKT_OK,
    SESSION_LEN,
    frame_packet_nb,
)

PKT_OTHER_SESSION = 100  #: a valid packet of another session than the one followed
DONE = 0  #: :func:`apply_nb` applied every event
# rows of the two int64 work matrices :func:`frame_decode_nb` takes (one array argument each
# instead of ten: numba's dispatch costs ~0.2 us per array argument, per batch)
P_LEN, P_RTS, P_ST, P_ACC_END, P_ACC_NEXT, P_OK_CUM, P_CTR = range(7)  #: per packet
M_OFFS, M_LENS, M_LTS = range(3)  #: per message


@njit(cache=True)
def frame_batch_nb(
    pbuf: npt.NDArray[np.uint8],
    slot: int,
    plen: npt.NDArray[np.int64],
    k0: int,
    npk: int,
    session: npt.NDArray[np.uint8],
    expected: int,
    offs: npt.NDArray[np.int64],
    lens: npt.NDArray[np.int64],
    msg_lts: npt.NDArray[np.int64],
    prts: npt.NDArray[np.int64],
    pkt_status: npt.NDArray[np.int64],
    acc_end: npt.NDArray[np.int64],
    acc_next: npt.NDArray[np.int64],
    counters: npt.NDArray[np.int64],
) -> tuple[int, int, int, int]:
    """Frame packets ``k0..npk-1``: ``(stop, accepted packets, messages, expected)``.

    Messages of accepted packets (in sequence order, duplicates dropped) go to ``offs`` /
    ``lens`` with their packet's receive time in ``msg_lts``; ``acc_end[a]`` is the message
    count after accepted packet ``a`` and ``acc_next[a]`` the sequence number after it.
    ``pkt_status[k]`` gets each packet's framing status. ``stop`` is the first packet left
    for the caller (a gap, a control packet ahead of ``expected``, an end of session), or
    ``npk``. ``counters[0]`` counts the heartbeats taken here.
    """
    m = 0
    na = 0
    for k in range(k0, npk):
        off = k * slot
        st, useq, count = frame_packet_nb(pbuf, off, plen[k], offs, lens, m)
        if st == PKT_OK:
            for i in range(SESSION_LEN):
                if pbuf[off + i] != session[i]:
                    st = PKT_OTHER_SESSION
                    break
        pkt_status[k] = st
        if st != PKT_OK:
            continue
        seq = int(useq)
        if count == COUNT_HEARTBEAT or count == COUNT_END_OF_SESSION:
            if seq > expected or count == COUNT_END_OF_SESSION:
                return k, na, m, expected
            counters[0] += 1
            continue
        if seq > expected:
            return k, na, m, expected
        last = seq + count
        if last <= expected:  # seen already (a resend, a duplicate)
            continue
        skip = expected - seq
        keep = count - skip
        if skip > 0:
            for q in range(keep):
                offs[m + q] = offs[m + skip + q]
                lens[m + q] = lens[m + skip + q]
        for q in range(m, m + keep):
            msg_lts[q] = prts[k]
        m += keep
        expected = last
        acc_end[na] = m
        acc_next[na] = expected
        na += 1
    return npk, na, m, expected


@njit(cache=True)
def ok_counts_nb(status: npt.NDArray[np.int8], acc_end: npt.NDArray[np.int64], na: int,
                 ok_cum: npt.NDArray[np.int64]) -> int:
    """``ok_cum[a]`` = decoded (MSG_OK) messages up to the end of accepted packet ``a``;
    returns the total."""
    n = 0
    i = 0
    for a in range(na):
        while i < acc_end[a]:
            n += status[i] == MSG_OK
            i += 1
        ok_cum[a] = n
    return n


@njit(cache=True)
def apply_nb(
    meta: npt.NDArray[np.int64],
    qty: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    orders: npt.NDArray[np.int64],
    table: npt.NDArray[np.int64],
    ev: npt.NDArray[np.void],
    i0: int,
    n_ev: int,
    locate: int,
    pkm: npt.NDArray[np.int64],
    na: int,
    pk0: int,
    seen0: int,
    levels: int,
    rows: npt.NDArray[np.int64],
    r0: int,
) -> tuple[int, int, int, int, int]:
    """Apply ``ev[i0:n_ev]`` (events of ``locate`` only) to the L3 book; after the last
    message of each accepted packet (``pkm`` rows ``P_OK_CUM``, ``P_ACC_NEXT``), snapshot the
    top ``levels`` into ``rows[r, :4 * levels]`` (the next sequence number into
    ``rows[r, 4 * levels]``) while there is room. Returns ``(next event,
    next packet, messages seen, rows written, code)``: code ``DONE``, or ``POOL_FULL`` /
    ``BOOK_FULL`` (grow the book and call again from the returned position)."""
    pk = pk0
    seen = seen0
    r = r0
    i = i0
    record = rows.shape[0] > 0
    ok_cum, acc_next = pkm[P_OK_CUM], pkm[P_ACC_NEXT]
    while True:
        while pk < na and seen == ok_cum[pk]:
            if record and r < rows.shape[0]:
                l2_snapshot(meta, qty, levels, rows[r])
                rows[r, 4 * levels] = acc_next[pk]
                r += 1
            pk += 1
        if i >= n_ev:
            break
        e = ev[i]
        res = DONE
        if e.instrument == locate:
            res = l3_apply(meta, qty, ends, orders, table, e.kind, e.side, e.price, e.qty,
                           int(np.int64(e.order_id)))
            if res == POOL_FULL:
                return i, pk, seen, r, POOL_FULL
        if e.flags & FLAG_LAST:
            seen += 1
        i += 1
        if res == BOOK_FULL:
            return i, pk, seen, r, BOOK_FULL
    return i, pk, seen, r, DONE


@njit(cache=True)
def decode_batch_nb(
    pbuf: npt.NDArray[np.uint8],
    offs: npt.NDArray[np.int64],
    lens: npt.NDArray[np.int64],
    msg_lts: npt.NDArray[np.int64],
    base_ns: int,
    price_step: int,
    qty_step: int,
    ev: npt.NDArray[np.void],
    tbl: npt.NDArray[np.int64],
    first_stock: npt.NDArray[np.int64],
    live: int,
    acc_end: npt.NDArray[np.int64],
    na: int,
    ok_cum: npt.NDArray[np.int64],
) -> tuple[int, npt.NDArray[np.int64], int, int, npt.NDArray[np.int8]]:
    """The framework's ITCH pass 1 (classify) and pass 2 (decode, order table kept) over
    the ``acc_end[na - 1]`` messages framed: ``(events, table, live orders, decoded
    messages, status per message)``; fills ``ok_cum`` (:func:`ok_counts_nb`)."""
    m = acc_end[na - 1]
    status = classify_nb(pbuf, offs[:m], lens[:m])
    n_ev, tbl, live = decode_more_nb(pbuf, offs[:m], status, msg_lts[:m], base_ns, price_step,
                                     qty_step, ev, tbl, first_stock, live)
    n_ok = ok_counts_nb(status, acc_end, na, ok_cum)
    return n_ev, tbl, live, n_ok, status


_NO_STATUS = np.zeros(0, np.int8)



@njit(cache=True)
def frame_decode_nb(
    pbuf: npt.NDArray[np.uint8],
    slot: int,
    k0: int,
    npk: int,
    session: npt.NDArray[np.uint8],
    expected: int,
    pk: npt.NDArray[np.int64],
    msg: npt.NDArray[np.int64],
    base_ns: int,
    price_step: int,
    qty_step: int,
    ev: npt.NDArray[np.void],
    tbl: npt.NDArray[np.int64],
    first_stock: npt.NDArray[np.int64],
    live: int,
) -> tuple[int, int, int, int, npt.NDArray[np.int64], int, int, npt.NDArray[np.int8]]:
    """:func:`frame_batch_nb` then :func:`decode_batch_nb` in one call (one dispatch per
    batch) over the rows of ``pk`` (``P_*``) and ``msg`` (``M_*``): ``(stop, accepted
    packets, messages, events, table, live orders, decoded messages, status per message)``;
    ``pk[P_CTR, 0]`` counts heartbeats, ``pk[P_CTR, 1]`` packets that did not frame."""
    offs, lens, lts = msg[M_OFFS], msg[M_LENS], msg[M_LTS]
    st, acc_end, counters = pk[P_ST], pk[P_ACC_END], pk[P_CTR]
    stop, na, m, _ = frame_batch_nb(pbuf, slot, pk[P_LEN], k0, npk, session, expected, offs,
                                    lens, lts, pk[P_RTS], st, acc_end, pk[P_ACC_NEXT],
                                    counters)
    for k in range(k0, stop):
        if st[k] != PKT_OK:
            counters[1] += 1
    if na == 0:
        return stop, 0, 0, 0, tbl, live, 0, _NO_STATUS
    n_ev, tbl, live, n_ok, status = decode_batch_nb(pbuf, offs, lens, lts, base_ns, price_step,
                                                    qty_step, ev, tbl, first_stock, live,
                                                    acc_end, na, pk[P_OK_CUM])
    return stop, na, m, n_ev, tbl, live, n_ok, status
