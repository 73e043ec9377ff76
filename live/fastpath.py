"""The live runner's tick path for an ITCH-over-MoldUDP64 feed: few calls per packet batch.

:meth:`MoldFeedHandler.poll <live.feeds.itch_mold.MoldFeedHandler.poll>` and the runner's
event hook took a batch through several compiled calls and a dozen numpy operations on
record arrays (a few microseconds each back to back, several times that on a live session,
where a tick comes every few milliseconds and finds the caches cold): hundreds of
microseconds per packet. Here:

* :class:`FastFeed` does the handler's work and the runner's projection as one compiled
  call through its entry point (:func:`tick_nb`: MoldUDP64 framing, the ITCH decode, the
  handler's L3 book, the instrument's events made the engine's rows and projected to price
  levels by the runner's :class:`~framework.book.project.L3ToL2`), into buffers allocated
  once. It works on the handler's own buffers and state (this module and the handler go
  together), and only takes the common case: a batch of packets that all continue the
  followed session's sequence. Anything else -- the first packet (the session is learned),
  a gap or a packet past one, a control packet, a packet that does not frame, a gap being
  filled -- is the handler's own path (:meth:`MoldFeedHandler.poll`), taken before any
  state changed, so both paths give the same book, the same events and the same counters;
* :class:`EventLevels` makes the events the handler's own path gives level rows in one
  compiled call (what the runner did with numpy and :class:`L3ToL2`);
* :class:`RequestDrain` drains the engine's requests into records allocated once.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.arena.fnptr import entry
from framework.arena.state import H_N_REQ
from framework.book.l3 import l3_made_room, l3_new
from framework.book.project import L3ToL2, project_events
from framework.core.events import BUY, EVENT_DTYPE, FLAG_LAST, KIND_ADD, KIND_DELETE
from framework.kernel.seam import REQUEST_DTYPE, drain_requests_state
from live.feeds.itch_mold import NY, SLOT, MoldFeedHandler
from live.feeds.itch_mold_nb import (
    DONE,
    M_LENS,
    M_LTS,
    M_OFFS,
    P_ACC_END,
    P_ACC_NEXT,
    P_CTR,
    P_LEN,
    P_OK_CUM,
    P_RTS,
    P_ST,
    apply_nb,
    decode_batch_nb,
    frame_batch_nb,
)
from live.wire.itch_encode import encode_events
from live.wire.moldudp64 import PKT_OK, SESSION_LEN, encode_packet

#: :func:`tick_nb` codes
FAST_DONE = 0  #: the batch is applied and projected
FAST_BAIL = 1  #: the handler's own path must take the batch (nothing was changed)
FAST_BOOK_ROOM = 2  #: the handler's book is full: grow it, then :meth:`FastFeed._finish`
FAST_LEVELS_ROOM = 3  #: the projector's book is full at an event: grow it, project the rest
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


@njit(cache=True)
def tick_nb(
    pbuf: npt.NDArray[np.uint8],
    npk: int,
    lengths: npt.NDArray[np.uint32],
    now: int,
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
    book: tuple[Any, ...],
    levels: int,
    rows: npt.NDArray[np.int64],
    r0: int,
    locate: int,
    l3: tuple[Any, ...],
    prio: npt.NDArray[np.int64],
    mine: npt.NDArray[np.void],
    out: npt.NDArray[np.void],
) -> tuple[int, int, int, int, npt.NDArray[np.int64], int, int, npt.NDArray[np.int8], int,
           int, int, int, int]:
    """Packets ``0..npk-1`` of ``pbuf`` (``lengths``, received at ``now``) framed, decoded,
    applied to the handler's book (``book``, snapshots into ``rows`` from ``r0`` as
    :func:`~live.feeds.itch_mold_nb.apply_nb` takes them) and projected to the engine's
    level rows in ``out``: ``(code, accepted packets, messages, events, table, live
    orders, decoded messages, status per message, rows written, next event, next packet,
    messages seen, level rows)``. ``FAST_BAIL`` leaves every state as it found it."""
    plen, prts, st, counters = pk[P_LEN], pk[P_RTS], pk[P_ST], pk[P_CTR]
    for k in range(npk):
        plen[k] = lengths[k]
        prts[k] = now
    beats = counters[0]
    no_status = np.zeros(0, np.int8)
    offs, lens, lts = msg[M_OFFS], msg[M_LENS], msg[M_LTS]
    stop, na, m, _ = frame_batch_nb(pbuf, SLOT, plen, 0, npk, session, expected, offs, lens,
                                    lts, prts, st, pk[P_ACC_END], pk[P_ACC_NEXT], counters)
    bail = stop < npk
    for k in range(stop):
        bail = bail or st[k] != PKT_OK
    if bail:
        counters[0] = beats  # the handler counts them again
        return FAST_BAIL, 0, 0, 0, tbl, live, 0, no_status, r0, 0, 0, 0, 0
    if na == 0:  # heartbeats, packets seen already
        return FAST_DONE, 0, 0, 0, tbl, live, 0, no_status, r0, 0, 0, 0, 0
    n_ev, tbl, live, n_ok, status = decode_batch_nb(pbuf, offs, lens, lts, base_ns,
                                                    price_step, qty_step, ev, tbl,
                                                    first_stock, live, pk[P_ACC_END], na,
                                                    pk[P_OK_CUM])
    i, p, seen, r, code = apply_nb(book[0], book[1], book[2], book[3], book[4], ev, 0, n_ev,
                                   locate, pk, na, 0, 0, levels, rows, r0)
    if code != DONE:
        return FAST_BOOK_ROOM, na, m, n_ev, tbl, live, n_ok, status, r, i, p, seen, 0
    n_out, at, n_mine = levels_nb(ev, n_ev, locate, mine, l3, prio, out)
    if n_mine < 0:
        return FAST_LEVELS_ROOM, na, m, n_ev, tbl, live, n_ok, status, r, -1, 0, 0, 0
    if at >= 0:
        return FAST_LEVELS_ROOM, na, m, n_ev, tbl, live, n_ok, status, r, at, n_mine, 0, n_out
    return FAST_DONE, na, m, n_ev, tbl, live, n_ok, status, r, 0, 0, 0, n_out


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
        self._mine = np.zeros(scratch_rows, EVENT_DTYPE)
        self.rows = np.zeros(3 * scratch_rows + 1, EVENT_DTYPE)  #: the last call's rows
        self._call: Any = None

    def __call__(self, ev: npt.NDArray[np.void], locate: int) -> tuple[int, int]:
        """``(level rows in rows[:n], own events)``; rows valid until the next call."""
        if not ev.flags.c_contiguous:
            ev = np.ascontiguousarray(ev)
        args = (ev, len(ev), locate, self._mine, self.levels.state, self.levels.prio,
                self.rows)
        if self._call is None:
            import numba

            self._call = entry(levels_nb, *(numba.typeof(x) for x in args))
        n_out, at, n_mine = self._call(*args)
        if n_mine >= 0 and at < 0:
            return n_out, n_mine
        # rare: the projector's book needs room, or more own events than the scratch holds
        rest: npt.NDArray[np.void] = np.zeros(len(ev), EVENT_DTYPE)
        k = own_rows_nb(ev, len(ev), locate, rest)
        rest = rest[max(at, 0) if n_mine >= 0 else 0 : k]
        n_out = n_out if n_mine >= 0 else 0
        done = self.levels(rest)  # grows its book as it goes
        total = n_out + len(done)
        if total > len(self.rows) or k > len(self._mine):
            grown = np.zeros(max(total, 3 * k + 1), EVENT_DTYPE)
            grown[:n_out] = self.rows[:n_out]
            self.rows = grown
            self._mine = np.zeros(max(k, len(self._mine)), EVENT_DTYPE)
        self.rows[n_out:total] = done
        return total, k


class FastFeed:
    """A MoldUDP64 handler's batches straight to engine rows (see the module docstring).

    :meth:`poll` reads one batch and returns the messages applied; the level rows for the
    engine are then ``rows[:n_rows]`` (valid until the next poll). Batches the handler's
    own path takes give their events to its ``on_events`` hook as before."""

    def __init__(self, feed: MoldFeedHandler, levels: L3ToL2,
                 scratch_rows: int = _MINE_ROWS) -> None:
        if feed._rx is None:
            msg = "the fast feed path needs recvmmsg (Linux)"
            raise OSError(msg)
        self.feed = feed
        self.levels = levels
        self._rx = feed._rx[0]
        self._mine = np.zeros(scratch_rows, EVENT_DTYPE)
        #: the level rows of the last batch (projecting an event makes at most three)
        self.rows = np.zeros(3 * scratch_rows + 1, EVENT_DTYPE)
        self.n_rows = 0
        self.fast_batches = 0  #: batches taken by the compiled path
        self._tick: Any = None
        self._warm: tuple[Any, ...] | None = None
        self._sig: tuple[Any, ...] = ()

    def _args(self, npk: int, now: int) -> tuple[Any, ...]:
        f = self.feed
        return (f._pbuf, npk, self._rx.lengths, now, f._session_arr, f.expected, f._pk,
                f._msg, f.base_ns, f.price_step, f.qty_step, f._ev, f._tbl,
                f._first_stock, f._live, f.book, f.levels, f.rows, f.n_rows, f.locate,
                self.levels.state, self.levels.prio, self._mine, self.rows)

    def warm_up(self) -> None:
        """Resolve (compile or load) the compiled entry point before the first packet."""
        import numba

        sig = self._sig = tuple(numba.typeof(x) for x in self._args(0, 0))
        self._tick = entry(tick_nb, *sig)

    def warm(self) -> None:
        """Run the compiled batch path on a scratch packet and scratch state (an order of
        the instrument added and deleted: nothing of the real book, tables or counters is
        touched) to keep its machine code in the caches while the feed is quiet. Measured
        here: the call takes ~80 us after 50 ms of other work and ~43 us when this ran
        every millisecond meanwhile (~9 us back to back); the rest is the real state's
        memory, which only real packets bring in."""
        if self._tick is None:
            return
        w = self._warm
        if w is None:
            import numba

            w = self._warm_state()
            if tuple(numba.typeof(x) for x in w) != self._sig:  # the entry point's types
                msg = "the scratch state of FastFeed.warm does not match the handler's"
                raise TypeError(msg)
            self._warm = w
        out = self._tick(*w)
        if out[0] != FAST_DONE:  # cannot happen with the scratch packet; start afresh
            self._warm = None

    def _warm_state(self) -> tuple[Any, ...]:
        f = self.feed
        ev = np.zeros(2, EVENT_DTYPE)
        ev["exch_ts"] = f.base_ns + 10 * 3600 * 10**9
        ev["kind"] = [KIND_ADD, KIND_DELETE]
        ev["side"], ev["price"], ev["qty"], ev["order_id"] = BUY, 100, 1, 1
        ev["flags"] = FLAG_LAST
        date = dt.datetime.fromtimestamp(f.base_ns / 1e9, ZoneInfo(NY)).date()
        msgs = encode_events(ev, date=date, symbol="WARMUP", price_step=f.price_step,
                             qty_step=f.qty_step, locate=f.locate, preamble=False).messages()
        pkt = encode_packet("WARMUP", 1, msgs)
        pbuf = np.zeros(SLOT, np.uint8)
        pbuf[: len(pkt)] = np.frombuffer(pkt, np.uint8)
        lengths = np.zeros(4, np.uint32)[::2]  # strided, as the receiver's lengths
        lengths[0] = len(pkt)
        session = np.frombuffer(pkt[:SESSION_LEN], np.uint8).copy()
        n = len(msgs)
        return (pbuf, 1, lengths, 0, session, 1, np.zeros((7, 2), np.int64),
                np.zeros((3, n), np.int64), f.base_ns, f.price_step, f.qty_step,
                np.zeros(2 * n, EVENT_DTYPE), np.zeros(64, np.int64),
                np.full(len(f._first_stock), -1, np.int64), 0, l3_new(16, 64), f.levels,
                np.zeros((0, f.rows.shape[1]), np.int64), 0, f.locate, l3_new(16, 64),
                np.zeros(16, np.int64), np.zeros(2 * n, EVENT_DTYPE),
                np.zeros(6 * n + 1, EVENT_DTYPE))

    def poll(self) -> int:
        """Read and apply one batch; the messages applied (rows in ``rows[:n_rows]``)."""
        f = self.feed
        self.n_rows = 0
        if f._gap is not None or f._held or f.session is None or self._tick is None:
            return f.poll(0.0)
        now = time.time_ns()
        try:
            n = self._rx.recv(0, f.batch)
        except OSError:  # the handler's path reports it
            n = 0
        if not n:
            return 0
        f.last_receive_ns = now
        if f.on_packet is not None:
            views, lengths = f._views, self._rx.lengths
            for k in range(n):
                f.on_packet(views[k][: int(lengths[k])], now)
        t0 = time.perf_counter_ns()
        (code, na, m, n_ev, f._tbl, f._live, n_ok, status, r, i, p, seen,
         n_out) = self._tick(*self._args(n, now))
        t1 = time.perf_counter_ns()
        if code == FAST_BAIL:  # as MoldFeedHandler.poll, the packets read already
            applied = f._process(0, n)
            if f._held:
                applied += f._drain_held()
            f._check_gap()
            return applied
        if na == 0:
            return 0
        if code != FAST_DONE:
            n_out = self._finish(code, na, n_ev, r, i, p, seen, n_out)
            r = f.n_rows if code == FAST_BOOK_ROOM else r
        self.fast_batches += 1
        self.n_rows = n_out
        if n_ok < m:
            f._count_bad_messages(status)
        f.n_rows = r
        f.expected = int(f._acc_next[na - 1])
        f.hi = max(f.hi, f.expected)
        f.messages += m
        f.packets += na
        b = f.n_batches % f.lat_msgs.shape[0]
        # decode, book and projection: one call (the thread's CPU time is not read here: a
        # system call in a virtual machine, ~1.5 us)
        f.lat_decode_ns[b] = f.lat_decode_cpu_ns[b] = t1 - t0
        f.lat_apply_ns[b] = 0
        f.lat_msgs[b] = m
        f.n_batches += 1
        return m

    def _finish(self, code: int, na: int, n_ev: int, r: int, i: int, p: int, seen: int,
                n_out: int) -> int:
        """The rare ends of a batch, with the handler's and the projector's own calls: the
        handler's book full (grown, the batch applied on), the projector's book full at
        an event (it grows as it projects the rest), more of the instrument's events than
        the scratch rows hold. Returns the level rows."""
        f = self.feed
        if code == FAST_BOOK_ROOM:
            while True:
                f.book = l3_made_room(f.book)
                i, p, seen, r, c = apply_nb(*f.book, f._ev, i, n_ev, f.locate, f._pk, na, p,
                                            seen, f.levels, f.rows, r)
                if c == DONE:
                    break
            f.n_rows = r
        rest: npt.NDArray[np.void]
        if code == FAST_BOOK_ROOM or i < 0:  # none of the batch projected yet
            rest = np.zeros(n_ev, EVENT_DTYPE)
            rest = rest[: own_rows_nb(f._ev, n_ev, f.locate, rest)]
            n_out = 0
        else:
            rest = self._mine[i:p].copy()
        done = self.levels(rest)
        total = n_out + len(done)
        if total > len(self.rows) or len(rest) > len(self._mine):
            grown = np.zeros(max(total, 3 * len(rest) + 1, len(self.rows)), EVENT_DTYPE)
            grown[:n_out] = self.rows[:n_out]
            self.rows = grown
            self._mine = np.zeros(max(len(rest), len(self._mine)), EVENT_DTYPE)
            self.warm_up()
        self.rows[n_out:total] = done
        return total


__all__ = ["FAST_BAIL", "FAST_DONE", "EventLevels", "FastFeed", "RequestDrain", "drain_nb",
           "levels_nb", "own_rows_nb", "tick_nb"]
