"""The live runner's tick path for an ITCH-over-MoldUDP64 feed: few calls per packet batch.

:meth:`MoldFeedHandler.poll <live.feeds.itch_mold.MoldFeedHandler.poll>` and the runner's
event hook took a batch through several compiled calls and a dozen numpy operations on
record arrays (a few microseconds each back to back, several times that on a live session,
where a tick comes every few milliseconds and finds the caches cold): hundreds of
microseconds per packet. Here:

* :class:`FastFeed` runs the feed handler's own compiled batch kernel and the runner's
  projection as one compiled call per batch: :func:`recv_tick_nb` (the handler's receive
  loop :func:`~live.feeds.itch_mold_nb.recv_apply_nb`, one batch: recvmmsg, MoldUDP64
  framing and sequence checks, the ITCH decode, the handler's L3 book) or, when the
  runner journals each packet as it is read (``on_packet``), :func:`tick_nb` (the packets
  read in Python, then :func:`~live.feeds.itch_mold_nb.frame_decode_apply_nb`); the
  instrument's events of a batch applied whole are then made the engine's rows and
  projected to price levels by the runner's :class:`~framework.book.project.L3ToL2`, into
  buffers allocated once. Framing, decoding, the book, gaps, re-requests and bad-packet
  reports are the handler's code alone: a batch its kernel leaves to Python (a gap, a
  control or bad packet, a full book) is finished by the handler and its events reach
  the runner through ``on_events``; the first packet (the session is learned), an open gap
  and held packets are the handler's own :meth:`MoldFeedHandler.poll`;
* :class:`EventLevels` makes the events the handler's own path gives level rows in one
  compiled call (what the runner did with numpy and :class:`L3ToL2`);
* :class:`RequestDrain` drains the engine's requests into records allocated once.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
import weakref
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.arena.fnptr import entry
from framework.arena.state import H_N_REQ
from framework.book.l3 import l3_new
from framework.book.project import L3ToL2, project_events
from framework.core.events import BUY, EVENT_DTYPE, FLAG_LAST, KIND_ADD, KIND_DELETE
from framework.kernel.seam import REQUEST_DTYPE, drain_requests_state
from live.feeds.itch_mold import NY, SLOT, MoldFeedHandler
from live.feeds.itch_mold_nb import (
    BATCH_DONE,
    S_EXPECTED,
    S_NA,
    S_NEV,
    STATE_LEN,
    frame_decode_apply_nb,
    received_nb,
    recv_apply_nb,
)
from live.wire.itch_encode import encode_events
from live.wire.mmsg import BatchReceiver
from live.wire.moldudp64 import SESSION_LEN, encode_packet

log = logging.getLogger("hftlab.fastpath")

#: scratch rows a batch's events of the instrument are copied to before projection (a
#: batch with more takes the projector's own call, and the scratch grows to hold them)
_MINE_ROWS = 1 << 12


@njit(cache=True)
def own_rows_nb(ev: npt.NDArray[np.void], n_ev: int, locate: int,
                mine: npt.NDArray[np.void]) -> int:
    """The events of stock ``locate`` among ``ev[:n_ev]`` as the engine's rows in
    ``mine``: instrument 0, the exchange time replaced by the local receive time (the
    venue's timestamps are of its replayed day; the receive time is the clock the engine
    shares). Returns how many (``-1``: ``mine`` is too small)."""
    k = 0
    for i in range(n_ev):
        if ev[i].instrument != locate:
            continue
        if k >= mine.shape[0]:
            return -1
        mine[k] = ev[i]
        mine[k].instrument = 0
        mine[k].exch_ts = mine[k].local_ts
        k += 1
    return k


@njit(cache=True)
def levels_nb(ev: npt.NDArray[np.void], n_ev: int, locate: int, mine: npt.NDArray[np.void],
              l3: tuple[Any, ...], prio: npt.NDArray[np.int64],
              out: npt.NDArray[np.void]) -> tuple[int, int, int]:
    """:func:`own_rows_nb` then the projection to levels (the runner's
    :class:`~framework.book.project.L3ToL2` state ``l3``, ``prio``) into ``out``: ``(level
    rows, -1 or the event of ``mine`` the projector's book needs room at, own events)``;
    own events ``-1``: ``mine`` is too small."""
    n_mine = own_rows_nb(ev, n_ev, locate, mine)
    if n_mine <= 0:
        return 0, -1, n_mine
    n_out, at = project_events(l3[0], l3[1], l3[2], l3[3], l3[4], prio, mine[:n_mine], out)
    return n_out, at, n_mine


@njit(cache=True, inline="always")
def _batch_levels(code: int, ev: npt.NDArray[np.void], st: npt.NDArray[np.int64], locate: int,
                  mine: npt.NDArray[np.void], l3: tuple[Any, ...], prio: npt.NDArray[np.int64],
                  out: npt.NDArray[np.void]) -> tuple[int, int, int]:
    """:func:`levels_nb` over the events of a batch the handler's kernel applied whole
    (``BATCH_DONE``); a batch it left for Python gives its events to ``on_events``."""
    if code == BATCH_DONE and st[S_NA] > 0:
        return levels_nb(ev, st[S_NEV], locate, mine, l3, prio, out)
    return 0, -1, 0


#: where the handler's state tuple (``FastFeed.tuples()[0]``) holds the packet lengths work
#: matrix, the decoded events and the state vector
FT_PK, FT_EV, FT_ST = 2, 7, 18


@njit(cache=True, inline="always")
def _project(code: int, n: int, total: int, tbl: npt.NDArray[np.int64],
             status: npt.NDArray[np.int8], ft: tuple[Any, ...], lv: tuple[Any, ...]
             ) -> tuple[int, int, int, npt.NDArray[np.int64], npt.NDArray[np.int8], int, int,
                        int]:
    """A batch the handler's kernel took, projected (:func:`_batch_levels`), and the tuple
    the entry points return."""
    l3, prio, mine, out, own = lv
    n_out, at, n_mine = _batch_levels(code, ft[FT_EV], ft[FT_ST], own, mine, l3, prio, out)
    return code, n, total, tbl, status, n_out, at, n_mine


@njit(cache=True, nogil=True)
def recv_tick_nb(
    fd: int, hdrs: int, lengths: npt.NDArray[np.uint32], slots: int, ft: tuple[Any, ...],
    lv: tuple[Any, ...],
) -> tuple[int, int, int, npt.NDArray[np.int64], npt.NDArray[np.int8], int, int, int]:
    """One batch through the handler's compiled receive loop
    (:func:`~live.feeds.itch_mold_nb.recv_apply_nb`: recvmmsg, framing, sequence, decode)
    and projected to the engine's level rows: ``(code, packets, packets, table, status per
    message, level rows, -1 or the event of ``mine`` the projector's book needs room at, own
    events)`` (:func:`levels_nb`). ``ft``, ``lv``: :meth:`FastFeed.tuples`."""
    code, n, total, tbl, status = recv_apply_nb(fd, hdrs, lengths, slots, 1, ft[0], SLOT,
                                                *ft[1:])
    return _project(code, n, total, tbl, status, ft, lv)


@njit(cache=True, nogil=True)
def tick_nb(
    lengths: npt.NDArray[np.uint32], npk: int, now: int, ft: tuple[Any, ...],
    lv: tuple[Any, ...],
) -> tuple[int, int, int, npt.NDArray[np.int64], npt.NDArray[np.int8], int, int, int]:
    """:func:`recv_tick_nb` for packets ``0..npk-1`` received already (at ``now``, byte
    counts ``lengths``; read in Python, where the ``on_packet`` tap sees them): the
    handler's :func:`~live.feeds.itch_mold_nb.frame_decode_apply_nb`, then the projection."""
    received_nb(ft[FT_PK], lengths, npk, now, ft[FT_ST])
    code, tbl, status = frame_decode_apply_nb(ft[0], SLOT, 0, npk, *ft[1:])
    return _project(code, npk, npk, tbl, status, ft, lv)


@njit(cache=True)
def drain_nb(a: npt.NDArray[np.int64], words: npt.NDArray[np.int64],
             out: npt.NDArray[np.void]) -> int:
    """The engine's request queue (:func:`~framework.kernel.seam.drain_requests_state`, into
    ``words``, which holds them all) as REQUEST_DTYPE records in ``out``; how many."""
    n = drain_requests_state(a, words)
    for k in range(n):
        w = words[k]
        r = out[k]
        r.ts = w[0]
        r.arrive_ts = w[1]
        r.kind = w[2]
        r.oid = w[3]
        r.strategy = w[4]
        r.instrument = w[5]
        r.side = w[6]
        r.order_type = w[7]
        r.tif = w[8]
        r.price = w[9]
        r.qty = w[10]
    return n


class RequestDrain:
    """:meth:`Engine.drain_requests <framework.engine.engine.Engine.drain_requests>` into
    buffers allocated once, through one compiled call: the records returned are valid until
    the next call (copy what is kept)."""

    def __init__(self, engine: Any, capacity: int = 64) -> None:
        self.arena = engine.arena
        self.h = engine.st.h
        self._grow(capacity)

    def _grow(self, capacity: int) -> None:
        import numba

        names = REQUEST_DTYPE.names or ()
        self.words = np.zeros((capacity, len(names)), np.int64)
        self.out = np.zeros(capacity, REQUEST_DTYPE)
        self._drain = entry(drain_nb, *(numba.typeof(x) for x in (self.arena, self.words,
                                                                   self.out)))

    def __call__(self) -> npt.NDArray[np.void]:
        n = int(self.h[H_N_REQ])
        if n > len(self.out):
            self._grow(2 * n)
        return self.out[: self._drain(self.arena, self.words, self.out)]


class EventLevels:
    """The handler's events of one stock as the engine's level rows (what the runner did
    with numpy: select, copy, retime, then :class:`~framework.book.project.L3ToL2`) through
    one compiled call (:func:`levels_nb`), into rows allocated once: the handler's own
    path (the first packet, a gap, a batch :class:`FastFeed` leaves to it) costs as little."""

    def __init__(self, levels: L3ToL2, scratch_rows: int = _MINE_ROWS) -> None:
        self.levels = levels
        self.mine = np.zeros(scratch_rows, EVENT_DTYPE)  #: the scratch of own events
        self.rows = np.zeros(3 * scratch_rows + 1, EVENT_DTYPE)  #: the last call's rows
        self._call: Any = None

    def __call__(self, ev: npt.NDArray[np.void], locate: int) -> tuple[int, int]:
        """``(level rows in rows[:n], own events)``; rows valid until the next call."""
        if not ev.flags.c_contiguous:
            ev = np.ascontiguousarray(ev)
        args = (ev, len(ev), locate, self.mine, self.levels.state, self.levels.prio,
                self.rows)
        if self._call is None:
            import numba

            self._call = entry(levels_nb, *(numba.typeof(x) for x in args))
        n_out, at, n_mine = self._call(*args)
        return self.finish(ev, locate, n_out, at, n_mine)

    def finish(self, ev: npt.NDArray[np.void], locate: int, n_out: int, at: int,
               n_mine: int) -> tuple[int, int]:
        """After :func:`levels_nb` over ``ev`` into these buffers (``(n_out, at, n_mine)``):
        the rare ends, the projector's book full at an event (it grows as it projects the
        rest) or more own events than the scratch holds, with the projector's own call and
        the buffers grown; ``(level rows, own events)`` as :meth:`__call__`."""
        if n_mine >= 0 and at < 0:
            return n_out, n_mine
        rest: npt.NDArray[np.void] = np.zeros(len(ev), EVENT_DTYPE)
        k = own_rows_nb(ev, len(ev), locate, rest)
        rest = rest[max(at, 0) if n_mine >= 0 else 0 : k]
        n_out = n_out if n_mine >= 0 else 0
        done = self.levels(rest)  # grows its book as it goes
        total = n_out + len(done)
        if total > len(self.rows) or k > len(self.mine):
            grown = np.zeros(max(total, 3 * k + 1), EVENT_DTYPE)
            grown[:n_out] = self.rows[:n_out]
            self.rows = grown
            self.mine = np.zeros(max(k, len(self.mine)), EVENT_DTYPE)
        self.rows[n_out:total] = done
        return total, k


class FastFeed:
    """A MoldUDP64 handler's batches straight to engine rows (see the module docstring).

    :meth:`poll` reads one batch and returns the messages applied; the level rows for the
    engine are then ``rows[:n_rows]`` (valid until the next poll). Batches the handler's
    kernels leave to its Python (a gap, a control or bad packet, a full book) and the
    handler's own path give their events to its ``on_events`` hook as before."""

    def __init__(self, feed: MoldFeedHandler, levels: L3ToL2,
                 scratch_rows: int = _MINE_ROWS) -> None:
        if feed._rx is None:
            msg = "the fast feed path needs recvmmsg (Linux)"
            raise OSError(msg)
        self.feed = feed
        self.levels = levels
        self._rx = feed._rx[0]
        self._el = EventLevels(levels, scratch_rows)
        self.n_rows = 0
        self.fast_batches = 0  #: batches projected in the handler's compiled call
        self._recv_tick: Any = None
        self._tick: Any = None
        #: scratch arguments of warm() and their state vector, by "receive loop"
        self._warm: dict[bool, tuple[tuple[Any, ...], npt.NDArray[np.int64]]] = {}
        self._warm_pkt = b""
        self._warm_rx: BatchReceiver | None = None
        self._scratch: socket.socket | None = None
        self._scratch_addr: tuple[str, int] = ("127.0.0.1", 0)
        self._warm_sent = False

    @property
    def rows(self) -> npt.NDArray[np.void]:
        """The level rows of the last batch (``rows[:n_rows]``)."""
        return self._el.rows

    def tuples(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The kernels' arguments after the receive's: the handler's state and buffers as
        :func:`~live.feeds.itch_mold_nb.frame_decode_apply_nb` takes them after its packet
        arguments (``book_locate``: the stock its own book follows, none here: the
        projector's book is the one), then the projector's state, the scratch of own
        events, the level rows and the stock locate of the instrument."""
        f = self.feed
        return ((f._pbuf, f._session_arr, f._pk, f._msg, f.base_ns, f.price_step,
                 f.qty_step, f._ev, f._tbl, f._first_stock, *f.book, f.book_locate, f.levels,
                 f.rows, f._st, f._lat, f._clk),
                (self.levels.state, self.levels.prio, self._el.mine, self._el.rows, f.locate))

    def warm_up(self) -> None:
        """Resolve (compile or load) both entry points before the first packet: the
        receive loop's (no ``on_packet`` tap) and the one packets read in Python take."""
        import numba

        rx, state = self._rx, self.tuples()
        self._recv_tick = entry(recv_tick_nb, *(numba.typeof(x) for x in (
            self.feed._fd, rx.headers_address, rx.lengths, self.feed.batch, *state)))
        self._tick = entry(tick_nb, *(numba.typeof(x) for x in (rx.lengths, 0, 0, *state)))

    def warm(self) -> bool:
        """Run the entry point the next packet takes (with the ``on_packet`` tap or not)
        on a scratch packet and scratch state (an order of the instrument added and
        deleted, received through a scratch socket when the receive loop is the one:
        nothing of the real book, tables or counters is touched) to keep its machine code
        in the caches while the feed is quiet. Measured with the previous path: the call
        took ~80 us after 50 ms of other work and ~43 us when this ran every millisecond
        meanwhile (~9 us back to back); the rest is the real state's memory, which only
        real packets bring in. Returns whether the scratch batch ran whole (not when its
        datagram was not delivered yet)."""
        if self._tick is None:
            return False
        recv = self.feed.on_packet is None
        w = self._warm.get(recv)
        if w is None:
            w = self._warm[recv] = self._warm_state(recv)
        args, st = w
        st[S_EXPECTED] = 1  # the scratch packet is new each time
        if recv:
            assert self._scratch is not None
            if not self._warm_sent:  # the first; then each is sent a warm ahead
                self._scratch.sendto(self._warm_pkt, self._scratch_addr)
                self._warm_sent = True
            out = self._recv_tick(*args)
            if not out[2]:  # not delivered yet (a busy machine defers loopback): next time
                return False
            self._scratch.sendto(self._warm_pkt, self._scratch_addr)
        else:
            out = self._tick(*args)
        if out[0] != BATCH_DONE or out[5] <= 0:  # cannot happen with the scratch packet
            self._warm.pop(recv)  # (start afresh)
            return False
        return True

    def scratch(self) -> tuple[Any, ...]:
        """``(lengths, ft, lv)``: a scratch packet (an order of the instrument added and
        deleted, in ``ft``'s packet buffer, its byte count in ``lengths``) and scratch state
        of the same types as :meth:`tuples`, for the compiled loop's runs of the packet path
        while the feed is quiet (:meth:`HotPath.warm_ticks <live.hotpath.HotPath>`); the
        same scratch as :meth:`warm`'s when it runs in Python."""
        w = self._warm.get(False)
        if w is None:
            w = self._warm[False] = self._warm_state(False)
        args = w[0]
        return args[0], args[3], args[4]

    def _warm_state(self, recv: bool) -> tuple[tuple[Any, ...], npt.NDArray[np.int64]]:
        """Scratch arguments of the same types as the real ones (checked: an entry point
        called with others would misread them)."""
        import numba

        f = self.feed
        ev = np.zeros(2, EVENT_DTYPE)
        ev["exch_ts"] = f.base_ns + 10 * 3600 * 10**9
        ev["kind"] = [KIND_ADD, KIND_DELETE]
        ev["side"], ev["price"], ev["qty"], ev["order_id"] = BUY, 100, 1, 1
        ev["flags"] = FLAG_LAST
        date = dt.datetime.fromtimestamp(f.base_ns / 1e9, ZoneInfo(NY)).date()
        msgs = encode_events(ev, date=date, symbol="WARMUP", price_step=f.price_step,
                             qty_step=f.qty_step, locate=f.locate, preamble=False).messages()
        pkt = self._warm_pkt = encode_packet("WARMUP", 1, msgs)
        pbuf = np.zeros(2 * SLOT, np.uint8)  # two slots: the lengths strided, as the real
        pbuf[: len(pkt)] = np.frombuffer(pkt, np.uint8)
        session = np.frombuffer(pkt[:SESSION_LEN], np.uint8).copy()
        n = len(msgs)
        st = np.zeros(STATE_LEN, np.int64)
        state = ((pbuf, session, np.zeros((7, 2), np.int64), np.zeros((3, n), np.int64),
                  f.base_ns, f.price_step, f.qty_step, np.zeros(2 * n, EVENT_DTYPE),
                  np.zeros(64, np.int64), np.full(len(f._first_stock), -1, np.int64),
                  *l3_new(16, 64), f.locate, f.levels,
                  np.zeros((0, f.rows.shape[1]), np.int64), st, np.zeros((4, 1), np.int64),
                  np.zeros(2, np.int64)),
                 (l3_new(16, 64), np.zeros(16, np.int64), np.zeros(2 * n, EVENT_DTYPE),
                  np.zeros(6 * n + 1, EVENT_DTYPE), f.locate))
        real: tuple[Any, ...] = self.tuples()
        if recv:
            if self._scratch is None:
                self._scratch = sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                weakref.finalize(self, sock.close)
                sock.bind(("127.0.0.1", 0))
                sock.setblocking(False)
                self._scratch_addr = sock.getsockname()
            rx = BatchReceiver(self._scratch, pbuf, SLOT, 2)
            args: tuple[Any, ...] = (self._scratch.fileno(), rx.headers_address, rx.lengths, 1,
                                     *state)
            real = (self.feed._fd, self._rx.headers_address, self._rx.lengths, 1, *real)
            self._warm_rx = rx  # its headers point at pbuf: kept with it
        else:
            lengths = np.zeros(4, np.uint32)[::2]  # strided, as the receiver's lengths
            lengths[0] = len(pkt)
            args = (lengths, 1, 0, *state)
            real = (self._rx.lengths, 1, 0, *real)
        if tuple(map(numba.typeof, args)) != tuple(map(numba.typeof, real)):
            msg = "the scratch state of FastFeed.warm does not match the handler's"
            raise TypeError(msg)
        return args, st

    def poll(self) -> int:
        """Read and apply one batch; the messages applied (rows in ``rows[:n_rows]``)."""
        f = self.feed
        self.n_rows = 0
        if (self._tick is None or f.alarm is not None or f._gap is not None or f._held
                or f.session is None):
            return f.poll(0.0)  # the handler's own path (it raises the alarm)
        m0 = f.messages
        if f.on_packet is None:
            out = self._recv_tick(f._fd, self._rx.headers_address, self._rx.lengths,
                                  f.batch, *self.tuples())
            if out[2]:
                f.compiled_polls += 1
        else:  # read here: the tap sees each packet before any framing
            now = time.time_ns()
            try:
                n = self._rx.recv(0, f.batch)
            except OSError as exc:  # as the handler's receive: e.g. ICMP unreachable
                log.debug("receive: %s", exc)
                n = 0
            if not n:
                return 0
            views, lengths = f._views, self._rx.lengths
            for k in range(n):
                f.on_packet(views[k][: int(lengths[k])], now)
            out = self._tick(lengths, n, now, *self.tuples())
        code, n, total, f._tbl, status, n_out, at, n_mine = out
        if not total:
            return 0
        self.finish(code, n, status, n_out, at, n_mine)
        return f.messages - m0 + f._settle()

    def finish(self, code: int, n: int, status: npt.NDArray[np.int8], n_out: int, at: int,
               n_mine: int) -> None:
        """After a compiled call took a batch of ``n`` packets (``code``, ``status``) and
        projected it (``n_out, at, n_mine``: :func:`levels_nb`'s): the projection's rare
        ends (the projector's book or the scratch full), ``n_rows``, and what the handler
        finishes (a batch stopped for Python)."""
        f = self.feed
        self.n_rows = 0
        if code == BATCH_DONE and f._st[S_NA]:
            if at >= 0 or n_mine < 0:  # rare: the projector's book or the scratch is full
                n_out, _ = self._el.finish(f._ev[: f._st[S_NEV]], f.locate, n_out, at,
                                           n_mine)
            self.n_rows = n_out
            self.fast_batches += 1
        f._received(code, n, status, events=False)


__all__ = ["EventLevels", "FastFeed", "RequestDrain", "drain_nb", "levels_nb", "own_rows_nb",
           "recv_tick_nb", "tick_nb"]
