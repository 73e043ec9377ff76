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
from framework.book.project import PREFETCH_MAX
from framework.core.events import FLAG_LAST
from framework.core.nrt import borrowed as _borrowed
from framework.ingest.itch_nb import MSG_OK, classify_nb, decode_more_nb, prefetch_refs_nb
from live.wire.mmsg import MSG_DONTWAIT
from live.wire.mmsg import clock_gettime_nb as clock_gettime
from live.wire.mmsg import recvmmsg_nb as recvmmsg
from live.wire.moldudp64 import (
    COUNT_END_OF_SESSION,
    COUNT_HEARTBEAT,
    PKT_OK,
    SESSION_LEN,
    frame_packet_nb,
)

PKT_OTHER_SESSION = 100  #: a valid packet of another session than the one followed
#: a packet whose sequence numbers (its first, or the one after its last message) pass
#: 2^63 - 1: MoldUDP64 allows them, but no real session gets there (a damaged header), and
#: the handler's sequence state is int64, where such a number would wrap negative and the
#: packet pass for one seen already
PKT_SEQ_RANGE = 101
_SEQ_MAX = np.uint64((1 << 63) - 1)
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
    ``npk``. ``counters[0]`` counts the heartbeats taken here. A packet whose sequence
    numbers do not fit int64 is refused (``PKT_SEQ_RANGE``), never taken for a duplicate.
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
        if st == PKT_OK:
            data = count != COUNT_HEARTBEAT and count != COUNT_END_OF_SESSION
            if useq > _SEQ_MAX - np.uint64(count if data else 0):
                st = PKT_SEQ_RANGE
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
    if m <= PREFETCH_MAX:  # a live tick's few packets; a catching-up batch streams
        prefetch_refs_nb(pbuf, offs[:m], status, tbl)
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


# --- the fused path: frame + decode + apply per batch, and a receive loop around it ---------
# State of the handler that the kernels below keep: one int64 vector (rows S_*), so a call
# passes one array instead of a dozen numbers and Python reads the counters from it.
(S_EXPECTED, S_LIVE, S_NROWS, S_MESSAGES, S_PACKETS, S_BATCHES, S_BAD_SEEN, S_RECV_NS,
 S_STOP, S_NA, S_M, S_NEV, S_NOK, S_I, S_PK, S_SEEN, S_T_DEC, S_T_CPU, S_T1) = range(19)
STATE_LEN = 24
L_DEC, L_CPU, L_APP, L_MSGS = range(4)  #: rows of the latency ring (one column per batch)
BATCH_DONE = 0  #: the batch is applied and nothing in it needs Python
BATCH_ROOM = 1  #: the book is full: grow it, then :func:`apply_rest_nb` continues
BATCH_PYTHON = 2  #: applied; bad packets/messages to report or a packet at ``S_STOP`` left
RECV_EMPTY = 3  #: :func:`recv_apply_nb`: the socket had nothing (more) waiting
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID = 0, 1, 3
#: the thread CPU clock is a system call (~0.5 us here, the others ~25 ns through the vDSO):
#: read around one batch's decode in this many (the others' ``L_CPU`` is -1), so a feed
#: received a packet or two per batch does not pay ~20 ns a message for it
CPU_SAMPLE = 16





@njit(cache=True, inline="always")
def _clock_ns(clock: int, ts: npt.NDArray[np.int64]) -> int:
    clock_gettime(clock, ts.ctypes.data)  # type: ignore[call-overload]
    return ts[0] * 1_000_000_000 + ts[1]


@njit(cache=True, nogil=True)
def apply_rest_nb(
    meta: npt.NDArray[np.int64],
    qty: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    orders: npt.NDArray[np.int64],
    table: npt.NDArray[np.int64],
    ev: npt.NDArray[np.void],
    locate: int,
    pk: npt.NDArray[np.int64],
    levels: int,
    rows: npt.NDArray[np.int64],
    st: npt.NDArray[np.int64],
    lat: npt.NDArray[np.int64],
    clk: npt.NDArray[np.int64],
) -> int:
    """Apply the decoded batch from where ``st`` says (:func:`apply_nb`), then account for
    it: next expected sequence number, message and packet counts, a latency-ring column.
    ``BATCH_ROOM`` (the position kept in ``st``) when the book must grow first."""
    i, p, seen, r, code = apply_nb(
        _borrowed(meta), _borrowed(qty), _borrowed(ends), _borrowed(orders), _borrowed(table),
        _borrowed(ev), st[S_I], st[S_NEV], locate, _borrowed(pk), st[S_NA], st[S_PK],
        st[S_SEEN], levels, _borrowed(rows), st[S_NROWS])
    st[S_I], st[S_PK], st[S_SEEN], st[S_NROWS] = i, p, seen, r
    if code != DONE:
        return BATCH_ROOM
    t2 = _clock_ns(CLOCK_MONOTONIC, clk)
    na, m = st[S_NA], st[S_M]
    st[S_EXPECTED] = pk[P_ACC_NEXT, na - 1]
    st[S_MESSAGES] += m
    st[S_PACKETS] += na
    b = st[S_BATCHES] % lat.shape[1]
    lat[L_DEC, b] = st[S_T_DEC]
    lat[L_CPU, b] = st[S_T_CPU]
    lat[L_APP, b] = t2 - st[S_T1]
    lat[L_MSGS, b] = m
    st[S_BATCHES] += 1
    return BATCH_DONE


@njit(cache=True, nogil=True)
def frame_decode_apply_nb(
    pbuf: npt.NDArray[np.uint8],
    slot: int,
    k0: int,
    npk: int,
    session: npt.NDArray[np.uint8],
    pk: npt.NDArray[np.int64],
    msg: npt.NDArray[np.int64],
    base_ns: int,
    price_step: int,
    qty_step: int,
    ev: npt.NDArray[np.void],
    tbl: npt.NDArray[np.int64],
    first_stock: npt.NDArray[np.int64],
    meta: npt.NDArray[np.int64],
    qty: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    orders: npt.NDArray[np.int64],
    table: npt.NDArray[np.int64],
    locate: int,
    levels: int,
    rows: npt.NDArray[np.int64],
    st: npt.NDArray[np.int64],
    lat: npt.NDArray[np.int64],
    clk: npt.NDArray[np.int64],
) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """One batch, packets ``k0..npk-1``, in one call: :func:`frame_decode_nb` (timed: wall,
    and thread CPU one batch in :data:`CPU_SAMPLE`) then :func:`apply_rest_nb`. Returns
    ``(code, table, status per message)``; ``st`` holds the batch's figures (``S_STOP``,
    ``S_NA``, ``S_M``, ``S_NEV``, ``S_NOK``) and the handler's counters."""
    sample = st[S_BATCHES] % CPU_SAMPLE == 0
    c0 = _clock_ns(CLOCK_THREAD_CPUTIME_ID, clk) if sample else 0
    t0 = _clock_ns(CLOCK_MONOTONIC, clk)
    stop, na, m, n_ev, grown, live, n_ok, status = frame_decode_nb(
        _borrowed(pbuf), slot, k0, npk, _borrowed(session), st[S_EXPECTED], _borrowed(pk),
        _borrowed(msg), base_ns, price_step, qty_step, _borrowed(ev), _borrowed(tbl),
        _borrowed(first_stock), st[S_LIVE])
    if grown.ctypes.data != tbl.ctypes.data:  # the decoder grew its table: a new array
        tbl = grown
    t1 = _clock_ns(CLOCK_MONOTONIC, clk)
    st[S_T_CPU] = _clock_ns(CLOCK_THREAD_CPUTIME_ID, clk) - c0 if sample else -1
    st[S_T_DEC] = t1 - t0
    st[S_T1] = t1
    st[S_LIVE], st[S_STOP], st[S_NA], st[S_M], st[S_NEV], st[S_NOK] = live, stop, na, m, n_ev, n_ok
    st[S_I], st[S_PK], st[S_SEEN] = 0, 0, 0
    code = BATCH_DONE
    if na:
        code = apply_rest_nb(meta, qty, ends, orders, table, ev, locate, pk, levels, rows, st,
                             lat, clk)
    if code == BATCH_DONE and (stop < npk or n_ok < m or pk[P_CTR, 1] != st[S_BAD_SEEN]):
        code = BATCH_PYTHON
    return code, tbl, status


@njit(cache=True, inline="always")
def received_nb(pk: npt.NDArray[np.int64], lengths: npt.NDArray[np.uint32], n: int, now: int,
                st: npt.NDArray[np.int64]) -> None:
    """Packets ``0..n-1`` of a batch were received at ``now`` with byte counts ``lengths``
    (a :class:`live.wire.mmsg.BatchReceiver`'s): into ``pk`` and ``st`` for the kernels."""
    plen, prts = pk[P_LEN], pk[P_RTS]
    for k in range(n):
        plen[k] = lengths[k]
        prts[k] = now
    st[S_RECV_NS] = now


@njit(cache=True, nogil=True)
def recv_apply_nb(
    fd: int,
    hdrs: int,
    lengths: npt.NDArray[np.uint32],
    slots: int,
    max_batches: int,
    pbuf: npt.NDArray[np.uint8],
    slot: int,
    session: npt.NDArray[np.uint8],
    pk: npt.NDArray[np.int64],
    msg: npt.NDArray[np.int64],
    base_ns: int,
    price_step: int,
    qty_step: int,
    ev: npt.NDArray[np.void],
    tbl: npt.NDArray[np.int64],
    first_stock: npt.NDArray[np.int64],
    meta: npt.NDArray[np.int64],
    qty: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    orders: npt.NDArray[np.int64],
    table: npt.NDArray[np.int64],
    locate: int,
    levels: int,
    rows: npt.NDArray[np.int64],
    st: npt.NDArray[np.int64],
    lat: npt.NDArray[np.int64],
    clk: npt.NDArray[np.int64],
) -> tuple[int, int, int, npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """Receive and apply batches until the socket is empty, ``max_batches`` were applied,
    or a batch needs Python: per batch one ``recvmmsg`` (``hdrs``: the address of a
    :class:`live.wire.mmsg.BatchReceiver`'s headers over ``pbuf``, ``lengths`` their byte
    counts) into slots ``0..`` then :func:`frame_decode_apply_nb`; no Python in between.

    Returns ``(code, packets of the last batch, packets in all, table, status)``: code
    ``RECV_EMPTY`` (all applied), ``BATCH_DONE`` (``max_batches`` reached) or the last
    batch's ``BATCH_ROOM`` / ``BATCH_PYTHON`` for the caller to finish. A failing
    ``recvmmsg`` (nothing waiting, or an error such as a pending ICMP unreachable) ends the
    loop as ``RECV_EMPTY``, as the Python receive path treats it."""
    total = 0
    batches = 0
    status: npt.NDArray[np.int8] = _NO_STATUS
    while True:
        n = recvmmsg(fd, hdrs, slots, MSG_DONTWAIT, 0)  # type: ignore[call-overload]
        if n <= 0:
            return RECV_EMPTY, 0, total, tbl, status
        received_nb(pk, lengths, n, _clock_ns(CLOCK_REALTIME, clk), st)
        total += n
        code, tbl, status = frame_decode_apply_nb(
            pbuf, slot, 0, n, session, pk, msg, base_ns, price_step, qty_step, ev, tbl,
            first_stock, meta, qty, ends, orders, table, locate, levels, rows, st, lat, clk)
        batches += 1
        if code != BATCH_DONE or batches >= max_batches:
            return code, n, total, tbl, status
