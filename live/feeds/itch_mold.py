"""ITCH 5.0 over MoldUDP64 feed handler: UDP packets in, the framework's event record and
L3 book out.

Each :meth:`MoldFeedHandler.poll` reads at most ``batch`` packets from a non-blocking socket
(unicast, or a multicast group joined on the loopback interface) and hands the whole batch to
compiled code (:mod:`live.feeds.itch_mold_nb`): framing, sequence check, the framework's
ITCH decode (:func:`framework.ingest.itch_nb.decode_more_nb`, the importer's kernel, order
table kept across packets) and the framework's L3 book (:func:`framework.book.l3.l3_apply`).

**Gaps.** Messages must be applied in sequence order. A packet that starts past the next
expected sequence number (or a heartbeat/end-of-session announcing more than we have) opens
a gap: the packets after it are held, a re-request for the missing range goes to the
venue's re-request port, and is repeated every ``retry_s`` while nothing arrives. Resent
packets are applied in order, then the held ones. If the gap has not moved for
``gap_timeout_s`` the handler raises :class:`GapError` naming the session and the lost
sequence range — and keeps raising it: it never skips messages to carry on.

**Bad frames** (packets that do not frame, another session's packets, sequence numbers
past 2^63 - 1, ITCH messages the decoder refuses) are counted by reason in
:attr:`MoldFeedHandler.bad` and logged, never applied.

**Latency.** Each batch's decode (framing + ITCH decode) and book-apply times
(``perf_counter_ns`` around the compiled calls; the decode also in the thread's CPU time,
which a busy machine's preemptions do not inflate) and message counts go into preallocated
arrays (a ring of
``stats_capacity`` batches); :meth:`MoldFeedHandler.latency_summary` summarises them off
the hot path as ns per message.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import select
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from framework.book.l3 import l3_made_room, l3_new
from framework.core.errors import VenueError
from framework.core.events import EVENT_DTYPE
from framework.core.timeutil import midnight_ns
from framework.ingest.itch_nb import MSG_OK, REASONS
from live.feeds.itch_mold_nb import (
    BATCH_DONE,
    BATCH_ROOM,
    L_APP,
    L_CPU,
    L_DEC,
    L_MSGS,
    P_CTR,
    P_LEN,
    P_RTS,
    P_ST,
    PKT_OTHER_SESSION,
    PKT_SEQ_RANGE,
    RECV_EMPTY,
    S_BAD_SEEN,
    S_BATCHES,
    S_EXPECTED,
    S_LIVE,
    S_M,
    S_MESSAGES,
    S_NA,
    S_NEV,
    S_NOK,
    S_NROWS,
    S_PACKETS,
    S_RECV_NS,
    S_STOP,
    STATE_LEN,
    apply_nb,
    apply_rest_nb,
    frame_decode_apply_nb,
    frame_decode_nb,
    recv_apply_nb,
)
from live.venue.feed import is_multicast
from live.wire import mmsg
from live.wire.mmsg import BatchReceiver
from live.wire.moldudp64 import (
    COUNT_END_OF_SESSION,
    COUNT_HEARTBEAT,
    HEADER_LEN,
    PKT_OK,
    PKT_REASONS,
    SESSION_LEN,
    encode_packet,
    encode_request,
)

log = logging.getLogger("hftlab.feeds.itch_mold")

NY = "America/New_York"
SLOT = 2048  #: bytes per received packet (a MoldUDP64 packet is at most ~1,420)
#: socket receive buffer asked for: ~0.4 s of a 5 M msgs/s feed (~115 k packets/s at ~2.3 kB
#: of kernel memory each), so a receiver preempted for a while on a busy machine catches up
#: instead of losing packets. Granted up to ``net.core.rmem_max`` (x2) with SO_RCVBUF;
#: SO_RCVBUFFORCE (CAP_NET_ADMIN) lifts that cap where the process may use it.
RECV_BUFFER = 64 << 20
SO_RCVBUFFORCE = 33  #: Linux (not in the socket module)
#: batches applied per compiled receive call at most before Python looks again (gap timers,
#: the caller's loop): ~2 ms of a 5 M msgs/s feed at 64 packets a batch
MAX_BATCHES_PER_POLL = 4
_MSGS_PER_SLOT = (SLOT - HEADER_LEN) // 3
#: messages asked for per re-request (~100 packets): a large gap is filled a range at a time,
#: so one request's resend cannot overflow the socket buffer it is meant to repair
REQUEST_CHUNK = 4096
#: why a packet was refused: the framer's reasons and the handler's own
BAD_PACKET_REASONS = {
    **PKT_REASONS,
    PKT_OTHER_SESSION: "packet of another MoldUDP64 session",
    PKT_SEQ_RANGE: "sequence number past 2^63 - 1 (no real session gets there: a damaged "
                   "header)",
}


class GapError(VenueError):
    """A sequence range the venue did not resend in time: the book cannot be trusted."""

    def __init__(self, session: bytes, first: int, last: int, waited_s: float) -> None:
        self.session, self.first, self.last, self.waited_s = session, first, last, waited_s
        super().__init__(
            f"MoldUDP64 session {session.decode('ascii', 'replace').strip()!r}: messages "
            f"{first}..{last} lost: no resend within {waited_s:.2f} s of re-requesting them; "
            "the book stops here (check the re-request port and the venue's buffer)")


def set_recv_buffer(sock: socket.socket, size: int) -> int:
    """Ask for ``size`` bytes of receive buffer, past ``net.core.rmem_max`` where the
    process may (SO_RCVBUFFORCE); returns what the kernel granted (it doubles the figure
    for its bookkeeping)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:  # no CAP_NET_ADMIN (or not Linux): capped at rmem_max
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


class _StateField:
    """An int attribute of the handler kept in its kernels' state vector (``_st``), so the
    compiled receive loop and Python read and write the same counter."""

    def __init__(self, row: int) -> None:
        self.row = row

    @overload
    def __get__(self, obj: None, owner: Any = None) -> _StateField: ...

    @overload
    def __get__(self, obj: MoldFeedHandler, owner: Any = None) -> int: ...

    def __get__(self, obj: MoldFeedHandler | None, owner: Any = None) -> _StateField | int:
        return self if obj is None else int(obj._st[self.row])

    def __set__(self, obj: MoldFeedHandler, value: int) -> None:
        obj._st[self.row] = value


@dataclass
class _Gap:
    lo: int  #: first missing sequence number
    opened: float
    last_progress: float
    last_request: float
    requests: int = 0
    req_end: int = 0  #: end (exclusive) of the range last asked for


class MoldFeedHandler:
    """Follows one MoldUDP64 session of one instrument's ITCH feed into an L3 book."""

    def __init__(
        self,
        *,
        listen: tuple[str, int],
        date: dt.date,
        price_step: int = 1,
        qty_step: int = 1,
        locate: int = 1,
        rerequest: tuple[str, int] | None = None,
        session: str | bytes | None = None,
        levels: int = 10,
        record_rows: int = 0,
        batch: int = 64,
        gap_timeout_s: float = 2.0,
        retry_s: float = 0.1,
        book_capacity: int = 1 << 16,
        n_ticks: int = 1 << 15,
        stats_capacity: int = 1 << 16,
        interface: str = "127.0.0.1",
    ) -> None:
        self.base_ns = midnight_ns(date, NY)
        self.price_step, self.qty_step, self.locate = int(price_step), int(qty_step), int(locate)
        #: the stock the handler's own L3 book (``book``) follows: ``locate``, or -1 when a
        #: consumer keeps the book from the events itself (the live runner's projection to
        #: price levels does: one book instead of two, the tick's memory halved); no book
        #: snapshots (``record_rows``) then
        self.book_locate = self.locate
        self.rerequest = rerequest
        self.session: bytes | None = None
        self._session_arr = np.zeros(SESSION_LEN, np.uint8)
        if session is not None:
            self._set_session(session.encode() if isinstance(session, str) else bytes(session))
        self.levels, self.batch = int(levels), int(batch)
        self.gap_timeout_s, self.retry_s = float(gap_timeout_s), float(retry_s)
        # socket
        host, port = listen
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        #: bytes of socket receive buffer the kernel granted (it reports twice what is set)
        self.recv_buffer = set_recv_buffer(self.sock, RECV_BUFFER)
        if is_multicast(host):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                                 socket.inet_aton(host) + socket.inet_aton(interface))
        else:
            self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        # re-requests go out of (and resends come back to) a unicast socket of their own: a
        # socket bound to a multicast group would not receive the unicast resends
        self.req_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        set_recv_buffer(self.req_sock, RECV_BUFFER)
        self.req_sock.bind((interface, 0))
        self.req_sock.setblocking(False)
        self._socks = (self.sock, self.req_sock)
        self._fd = self.sock.fileno()
        # batch buffers (allocated once)
        self._pbuf = np.zeros(self.batch * SLOT, np.uint8)
        self._pmv = self._pbuf.data
        self._views = [self._pmv[k * SLOT : (k + 1) * SLOT] for k in range(self.batch)]
        #: one recvmmsg per socket and poll where the platform has it (None: recv_into each)
        self._rx = (
            [BatchReceiver(s, self._pbuf, SLOT, self.batch) for s in self._socks]
            if mmsg.AVAILABLE
            else None
        )
        self._pk = np.zeros((7, max(self.batch, 2)), np.int64)  # rows P_* (itch_mold_nb)
        self._plen, self._prts, self._pst = self._pk[P_LEN], self._pk[P_RTS], self._pk[P_ST]
        nm = self.batch * _MSGS_PER_SLOT
        self._msg = np.zeros((3, nm), np.int64)  # rows M_* (itch_mold_nb)
        self._counters = self._pk[P_CTR]  # heartbeats, packets that did not frame
        self._ev = np.zeros(2 * nm, EVENT_DTYPE)
        self._tbl: npt.NDArray[np.int64] = np.zeros(4 << 16, np.int64)
        self._first_stock = np.full(65536, -1, np.int64)
        self.book = l3_new(book_capacity, n_ticks)
        #: counters the compiled kernels keep (rows S_* of itch_mold_nb; read as properties)
        self._st = np.zeros(STATE_LEN, np.int64)
        self._clk = np.zeros(2, np.int64)  # struct timespec for the kernels' clock reads
        # sequence state
        self.expected = 1
        self._hi = 1
        self.end_seq: int | None = None
        self._held: dict[int, bytes] = {}  #: packets past a gap, by first sequence number
        self._held_seqs: list[int] = []  #: their keys as a heap (the lowest is the gap's end)
        self._gap: _Gap | None = None
        self.alarm: GapError | None = None
        # results
        #: book rows at packet boundaries, the next sequence number in the last column
        self.rows = np.zeros((int(record_rows), 4 * self.levels + 1), np.int64)
        self.n_rows = 0
        self.bad: Counter[str] = Counter()
        self.gaps = 0  #: gaps opened (each filled by re-request, or the alarm)
        self.requests_sent = 0
        self.compiled_polls = 0  #: receive calls that stayed in compiled code
        self._lat = np.zeros((4, int(stats_capacity)), np.int64)  # rows L_* (itch_mold_nb)
        self.lat_decode_ns = self._lat[L_DEC]
        #: the thread's CPU time (no preemption), one batch in CPU_SAMPLE (-1: not read)
        self.lat_decode_cpu_ns = self._lat[L_CPU]
        self.lat_apply_ns = self._lat[L_APP]
        self.lat_msgs = self._lat[L_MSGS]
        #: called with each received packet as it is read (before any framing or decoding),
        #: with its receive time: the live runner journals the packets here
        self.on_packet: Callable[[memoryview, int], None] | None = None
        #: called with the events each applied chunk decoded (a view of a reused buffer:
        #: copy what is kept; events of every stock locate, ``instrument`` = locate)
        self.on_events: Callable[[npt.NDArray[np.void]], None] | None = None

    expected = _StateField(S_EXPECTED)  #: sequence number of the next message to apply
    messages = _StateField(S_MESSAGES)  #: messages applied
    packets = _StateField(S_PACKETS)  #: packets applied
    n_batches = _StateField(S_BATCHES)  #: batches applied (columns of the latency ring)
    n_rows = _StateField(S_NROWS)  #: book rows recorded
    last_receive_ns = _StateField(S_RECV_NS)  #: local receive time of the last packets read
    #: the venue's last packet (data or heartbeat: every packet read is the venue's)
    heard_ns = _StateField(S_RECV_NS)
    _live = _StateField(S_LIVE)  # orders in the decoder's table
    _bad_packets_seen = _StateField(S_BAD_SEEN)  # bad packets reported so far

    def _set_session(self, raw: bytes) -> None:
        self.session = raw[:SESSION_LEN].ljust(SESSION_LEN, b" ")
        self._session_arr[:] = np.frombuffer(self.session, np.uint8)

    @property
    def hi(self) -> int:
        """Highest next-sequence any packet announced (or applied): a Python int, as a
        damaged or hostile header may announce any 64-bit sequence number."""
        return max(self._hi, self.expected)

    @hi.setter
    def hi(self, value: int) -> None:
        self._hi = value

    @property
    def heartbeats(self) -> int:
        """Heartbeat packets received."""
        return int(self._counters[0])

    @property
    def recoveries(self) -> dict[str, int]:
        """How the handler kept the book whole, for the session's summary and /status:
        re-requests sent for the gaps (:attr:`gaps`). UDP has no connection to make again."""
        return {"rerequests": self.requests_sent}

    @property
    def ended(self) -> bool:
        """The end of session arrived and every message before it is applied."""
        return self.end_seq is not None and self.expected >= self.end_seq

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the batch kernels on scratch state, so the
        first packets are not held up by it (loading alone takes a few tenths of a second)."""
        pkt = encode_packet("WARMUP", 1, [b"S\0\0\0\0\0\0\0\0\0\0O"])
        pbuf = np.zeros(SLOT, np.uint8)
        pbuf[: len(pkt)] = np.frombuffer(pkt, np.uint8)
        session = np.frombuffer(pkt[:SESSION_LEN], np.uint8).copy()
        pk = np.zeros((7, 2), np.int64)
        pk[P_LEN, 0] = len(pkt)
        msg = np.zeros((3, _MSGS_PER_SLOT), np.int64)
        ev = np.zeros(2 * _MSGS_PER_SLOT, EVENT_DTYPE)
        first_stock = np.full(65536, -1, np.int64)
        rows = np.zeros((1, 4 * self.levels + 1), np.int64)
        _, na, _, n_ev, *_ = frame_decode_nb(
            pbuf, SLOT, 0, 1, session, 1, pk, msg, self.base_ns, 1, 1, ev,
            np.zeros(64, np.int64), first_stock, 0)
        apply_nb(*l3_new(16, 64), ev, 0, n_ev, self.locate, pk, na, 0, 0, self.levels, rows, 0)
        # the fused kernels, the same packet again on scratch state
        st = np.zeros(STATE_LEN, np.int64)
        st[S_EXPECTED] = 1
        lat = np.zeros((4, 1), np.int64)
        meta, qty, ends, orders, table = l3_new(16, 64)
        tbl = np.zeros(64, np.int64)
        frame_decode_apply_nb(pbuf, SLOT, 0, 1, session, pk, msg, self.base_ns, 1, 1, ev, tbl,
                              first_stock, meta, qty, ends, orders, table, self.locate,
                              self.levels, rows, st, lat, self._clk)
        if self._rx is not None:  # an empty receive on a scratch socket
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                rx = BatchReceiver(s, pbuf, SLOT, 1)
                recv_apply_nb(s.fileno(), rx.headers_address, rx.lengths, 1, 1, pbuf, SLOT,
                              session, pk, msg, self.base_ns, 1, 1, ev, tbl, first_stock, meta,
                              qty, ends, orders, table, self.locate, self.levels, rows, st, lat,
                              self._clk)

    # --- receiving -----------------------------------------------------------------------
    def poll(self, timeout_s: float = 0.0) -> int:
        """Read and apply the packets waiting (waiting up to ``timeout_s`` for the first), at
        most :data:`MAX_BATCHES_PER_POLL` batches; returns the messages applied. Raises
        :class:`GapError` once a gap times out.

        In sequence and with no ``on_packet`` tap, one compiled call receives and applies
        batch after batch (:func:`~live.feeds.itch_mold_nb.recv_apply_nb`); a gap, a
        control or bad packet, a full book come back here."""
        if self.alarm is not None:
            raise self.alarm
        if (self._rx is not None and self._gap is None and not self._held
                and self.session is not None and self.on_packet is None):
            applied = self._recv_apply()
            if applied < 0 and timeout_s > 0:
                select.select(self._socks[:1], [], [], timeout_s)
                applied = self._recv_apply()
            applied = max(applied, 0)
        else:
            n = self._recv(timeout_s)
            applied = self._process(0, n) if n else 0
        return applied + self._settle()

    def _settle(self) -> int:
        """The end of a poll: the held packets the sequence reached applied (how many
        messages), the gap's re-requests and timeout checked."""
        applied = self._drain_held() if self._held else 0
        self._check_gap()
        return applied

    def _recv_apply(self) -> int:
        """The compiled receive loop on the feed socket: messages applied, -1 when nothing
        was waiting."""
        assert self._rx is not None
        rx = self._rx[0]
        m0 = self.messages
        code, n, total, self._tbl, status = recv_apply_nb(
            self._fd, rx.headers_address, rx.lengths, self.batch,
            1 if self.on_events is not None else MAX_BATCHES_PER_POLL, self._pbuf, SLOT,
            self._session_arr, self._pk, self._msg, self.base_ns, self.price_step,
            self.qty_step, self._ev, self._tbl, self._first_stock, *self.book, self.book_locate,
            self.levels, self.rows, self._st, self._lat, self._clk)
        if not total:
            return -1
        self.compiled_polls += 1
        self._received(code, n, status)
        return self.messages - m0

    def _received(self, code: int, n: int, status: npt.NDArray[np.int8], *,
                  events: bool = True) -> None:
        """After a compiled call that received (or was given) ``n`` packets as its last
        batch: their events to ``on_events`` (unless ``events`` is false: the caller took
        them), or, if the batch stopped for Python, the batch finished and its other
        packets applied here (their events to ``on_events``)."""
        if code == RECV_EMPTY or code == BATCH_DONE:
            if events and self.on_events is not None and n and self._st[S_NA]:
                self.on_events(self._ev[: self._st[S_NEV]])
        else:
            self._process(self._finish_batch(code, 0, n, status), n)

    def _recv(self, timeout_s: float) -> int:
        """Fill the batch from the feed socket, then from the resend socket."""
        now = time.time_ns()
        n = 0
        views = self._views
        # resends only come while a gap is open: no system call on their socket otherwise;
        # then they are read first: behind a feed socket that always has a batch waiting
        # (a receiver catching up) they would never be read, and the gap never filled
        for j in (1, 0) if self._gap is not None else (0,):
            sock = self._socks[j]
            try:
                if self._rx is not None:  # slots n.. in one call
                    rx = self._rx[j]
                    got = rx.recv(n, self.batch)
                    self._plen[n : n + got] = rx.lengths[n : n + got]
                    n += got
                    continue
                recv_into = sock.recv_into
                while n < self.batch:
                    self._plen[n] = recv_into(views[n], SLOT)
                    n += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:  # e.g. ICMP unreachable after a re-request
                log.debug("receive: %s", exc)
        if n:
            self._prts[:n] = now
            self.last_receive_ns = now
            if self.on_packet is not None:
                plen = self._plen[:n].tolist()
                for k in range(n):
                    self.on_packet(views[k][: plen[k]], now)
        if n == 0 and timeout_s > 0:
            select.select(self._socks if self._gap is not None else self._socks[:1], [], [],
                          timeout_s)
            return self._recv(0.0)
        return n

    def apply_packets(self, packets: Sequence[bytes], ts_ns: int) -> int:
        """Apply packets received at ``ts_ns`` as if the socket had delivered them (a
        journal replay: the same framing, gap handling, decoder and book); returns the
        messages applied. Re-requests are only sent when ``rerequest`` is set."""
        applied = 0
        for k0 in range(0, len(packets), self.batch):
            chunk = packets[k0 : k0 + self.batch]
            for k, pkt in enumerate(chunk):
                raw = pkt
                if len(raw) > SLOT:  # cannot be a MoldUDP64 packet: framed as a bad one
                    self.bad["packet larger than a receive slot"] += 1
                    raw = raw[:0]
                self._views[k][: len(raw)] = raw
                self._plen[k] = len(raw)
            self._prts[: len(chunk)] = ts_ns
            self.last_receive_ns = ts_ns
            applied += self._process(0, len(chunk))
            if self._held:
                applied += self._drain_held()
        return applied

    def _process(self, k0: int, npk: int) -> int:
        """Apply packets ``k0..npk-1`` of the batch buffer; packets the compiled framing
        leaves (gap, control, end) are handled here one by one."""
        m0 = self.messages
        while k0 < npk:
            if self.session is None:  # follow the first session that frames
                self._learn_session(k0, npk)
            code, self._tbl, status = frame_decode_apply_nb(
                self._pbuf, SLOT, k0, npk, self._session_arr, self._pk, self._msg,
                self.base_ns, self.price_step, self.qty_step, self._ev, self._tbl,
                self._first_stock, *self.book, self.book_locate, self.levels, self.rows, self._st,
                self._lat, self._clk)
            k0 = self._finish_batch(code, k0, npk, status)
        return self.messages - m0

    def _finish_batch(self, code: int, k0: int, npk: int,
                      status: npt.NDArray[np.int8]) -> int:
        """After a compiled batch over packets ``k0..npk-1``: grow the book and apply the
        rest if it was full, report bad packets and messages, hand the events to
        ``on_events``, take the packet the framing stopped at; returns the next packet."""
        st = self._st
        while code == BATCH_ROOM:
            self.book = l3_made_room(self.book)
            code = apply_rest_nb(*self.book, self._ev, self.book_locate, self._pk, self.levels,
                                 self.rows, st, self._lat, self._clk)
        stop = int(st[S_STOP])
        if self._counters[1] != self._bad_packets_seen:
            self._count_bad_packets(k0, stop)
        if st[S_NA]:
            if st[S_NOK] < st[S_M]:
                self._count_bad_messages(status)
            if self.on_events is not None:
                self.on_events(self._ev[: st[S_NEV]])
        if stop < npk:
            self._control(stop)
            stop += 1
        return stop

    def _learn_session(self, k0: int, npk: int) -> None:
        for k in range(k0, npk):
            raw = self._pbuf[k * SLOT : k * SLOT + int(self._plen[k])].tobytes()
            if len(raw) >= HEADER_LEN and all(32 <= c <= 126 for c in raw[:SESSION_LEN]):
                self._set_session(raw[:SESSION_LEN])
                log.info("following MoldUDP64 session %r", self.session)
                return

    def _count_bad_packets(self, k0: int, stop: int) -> None:
        self._bad_packets_seen = int(self._counters[1])
        st = self._pst[k0:stop]
        for k in np.flatnonzero(st != PKT_OK).tolist():
            reason = BAD_PACKET_REASONS[int(st[k])]
            self.bad[reason] += 1
            log.warning("bad MoldUDP64 packet (%d bytes): %s", int(self._plen[k0 + k]), reason)

    def _count_bad_messages(self, status: npt.NDArray[np.int8]) -> None:
        codes = np.bincount(status[status != MSG_OK].astype(np.int64))
        for code, n in enumerate(codes.tolist()):
            if n:
                self.bad[REASONS[code]] += n
                log.warning("%d ITCH message(s) refused: %s", n, REASONS[code])

    # --- sequence control --------------------------------------------------------------------
    def _control(self, k: int) -> None:
        """A packet the compiled framing left: ahead of the sequence, or a control packet."""
        off = k * SLOT
        raw = self._pbuf[off : off + int(self._plen[k])].tobytes()
        seq = int.from_bytes(raw[10:18], "big")
        count = int.from_bytes(raw[18:20], "big")
        if count == COUNT_END_OF_SESSION:
            if self.end_seq is None:
                log.info("end of session at sequence %d", seq)
            self.end_seq = seq
            self.hi = max(self.hi, seq)
        elif count == COUNT_HEARTBEAT:
            self._counters[0] += 1
            self.hi = max(self.hi, seq)
        else:  # data past a gap: hold it until the gap is filled
            if seq not in self._held:
                self._held[seq] = raw
                heapq.heappush(self._held_seqs, seq)
            self.hi = max(self.hi, seq + count)
        if self.hi > self.expected:
            self._open_gap()

    def _drain_held(self) -> int:
        """Apply the held packets the sequence has reached: those that continue it go into
        the batch slots together, one compiled call per batch (one call per packet made a
        recovery from loss slower than the feed, so it fell further behind)."""
        applied = 0
        while self._held_seqs and self._held_seqs[0] <= self.expected:
            nxt = self.expected
            n = 0
            while n < self.batch and self._held_seqs and self._held_seqs[0] <= nxt:
                seq = heapq.heappop(self._held_seqs)
                raw = self._held.pop(seq)
                self._pbuf[n * SLOT : n * SLOT + len(raw)] = np.frombuffer(raw, np.uint8)
                self._plen[n] = len(raw)
                nxt = max(nxt, seq + int.from_bytes(raw[18:20], "big"))  # held: data packets
                n += 1
            self._prts[:n] = self.last_receive_ns
            applied += self._process(0, n)
        return applied

    def _open_gap(self) -> None:
        now = time.monotonic()
        if self._gap is None:
            self._gap = _Gap(self.expected, now, now, 0.0)
            self.gaps += 1
            log.warning("gap: expected sequence %d, the venue is at %d", self.expected,
                        self.hi)
        self._request(now)

    def _gap_end(self) -> int:
        return min(self.hi, self._held_seqs[0]) if self._held_seqs else self.hi

    def _request(self, now: float, *, force: bool = False) -> None:
        gap = self._gap
        if gap is None or self.rerequest is None or self.session is None:
            return
        if not force and gap.requests and now - gap.last_request < self.retry_s:
            return
        count = min(self._gap_end() - self.expected, REQUEST_CHUNK)
        if count <= 0:
            return
        try:
            self.req_sock.sendto(encode_request(self.session, self.expected, count),
                                 self.rerequest)
        except OSError as exc:
            log.warning("re-request to %s:%d failed: %s", *self.rerequest, exc)
        gap.last_request = now
        gap.req_end = self.expected + count
        gap.requests += 1
        self.requests_sent += 1

    def _check_gap(self) -> None:
        gap = self._gap
        if gap is None:
            return
        now = time.monotonic()
        if self.expected >= self.hi and not self._held:
            log.info("gap from %d filled after %.3f s (%d re-request(s))", gap.lo,
                     now - gap.opened, gap.requests)
            self._gap = None
            return
        if self.expected > gap.lo:  # progress: the resend is arriving
            gap.lo = self.expected
            gap.last_progress = now
            if self.expected >= gap.req_end:  # that range is in: ask for the next one
                self._request(now, force=True)
            else:  # more of it is on its way: asking again now would only duplicate it
                gap.last_request = now
        if now - gap.last_progress >= self.gap_timeout_s:
            self.alarm = GapError(self.session or b"?", self.expected, self._gap_end() - 1,
                                  now - gap.last_progress)
            log.error("%s", self.alarm)
            raise self.alarm
        self._request(now)

    # --- running and results -------------------------------------------------------------------
    def run_until_end(self, timeout_s: float) -> None:
        """Poll until the end of session is applied; a VenueError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not self.ended:
            if time.monotonic() > deadline:
                msg = (f"no end of session within {timeout_s:g} s (applied {self.messages:,} "
                       f"messages up to sequence {self.expected - 1}); is the venue running?")
                raise VenueError(msg)
            self.poll(timeout_s=0.01)

    def latency_summary(self) -> dict[str, float]:
        """ns per message of decode and of book apply over the recorded batches."""
        k = min(self.n_batches, self.lat_msgs.shape[0])
        msgs = self.lat_msgs[:k]
        if not k or not msgs.sum():
            return {}
        per_dec = self.lat_decode_ns[:k] / np.maximum(msgs, 1)
        per_app = self.lat_apply_ns[:k] / np.maximum(msgs, 1)
        cpu = self.lat_decode_cpu_ns[:k]
        w = msgs > 0
        return {
            "batches": float(k),
            "messages": float(msgs.sum()),
            "decode_ns_per_msg": float(self.lat_decode_ns[:k].sum() / msgs.sum()),
            "apply_ns_per_msg": float(self.lat_apply_ns[:k].sum() / msgs.sum()),
            "decode_cpu_ns_per_msg": float(cpu[cpu >= 0].sum() / max(msgs[cpu >= 0].sum(), 1)),
            "decode_ns_per_msg_p50": float(np.percentile(per_dec[w], 50)),
            "decode_ns_per_msg_p99": float(np.percentile(per_dec[w], 99)),
            "apply_ns_per_msg_p50": float(np.percentile(per_app[w], 50)),
            "apply_ns_per_msg_p99": float(np.percentile(per_app[w], 99)),
        }

    def recorded(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Book snapshots at packet boundaries and the next sequence number at each."""
        return self.rows[: self.n_rows, :-1], self.rows[: self.n_rows, -1]

    def close(self) -> None:
        self.sock.close()
        self.req_sock.close()
