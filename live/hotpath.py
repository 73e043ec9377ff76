"""The live runner's hot path: from the feed socket to the order socket in one compiled loop.

On a busy-polling live session the tick path used to cross into Python several times per
packet (receive, journal, decode, engine, drain, route, encode, send): each crossing is a few
microseconds warm and many times that on a live session, where a tick comes every few
milliseconds and finds the interpreter's memory cold. :func:`spin_nb` instead polls the feed
socket itself, and per batch of packets, with no Python in between:

1. receives the batch (``recvmmsg``) and journals each packet as received (``KIND_FEED``,
   the receive time), through the journal's compiled append;
2. frames and decodes it (the feed handler's kernel, :mod:`live.feeds.itch_mold_nb`) and
   projects the instrument's events to the engine's level rows on the instrument's L3 book
   (the runner's projection keeps the only one: :mod:`live.fastpath`);
3. appends the rows to the engine's window (``Engine.push_rows``'s kernel) and, compiled
   strategies, runs the engine's core to the receive time through its C entry point; the
   core calls the strategies' compiled callbacks and the risk checks itself;
4. drains the requests the engine then has and sends what it can: a limit order (journaled
   with its UserRefNum first, then encoded as an OUCH Enter Order from a template and
   written to the order session's socket) and a cancel of an order the venue has accepted
   and nothing else is pending on (a table the runner keeps as the gateway's states
   change: :meth:`HotPath.working`). A cancel of an order the venue has not accepted yet
   (its own new order of the same tick, say) cannot leave yet on any path: the loop
   journals it in its place among the decisions and goes on with the next request; the
   runner then puts it with the order to wait for the acceptance, as its own path does.

It returns to Python when a tick sent something (the gateway's and runner's books of the
orders are kept there, after the bytes left: ``LiveRunner._after_spin``), when the order socket
has something to read, when the kill switch trips (a word the switch's trip sets, read
before every send), at a deadline, and whenever anything is not the common case -- a batch
the handler must finish (gap, control or bad packet, a full book), a window that must grow,
a request that is not a plain new limit order or a cancel of a known order, a socket that
took part of a message, a journal segment that is full: Python then takes that step by the
runner's own path, from exactly where the loop stopped, and hands the requests after it
back to the loop's sender (:func:`route_nb`). After a kill the loop still takes the feed
and sends nothing: the runner holds the requests. Python strategies: the loop stops after
step 3's push, the engine runs the callbacks in Python, and the requests go through step 4
(:meth:`HotPath.out`).

Journal records are byte for byte what the runner's Python path writes (the replay and
parity tools read one format), in the same order.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit, types

from framework.arena.enums import ORD_LIMIT, TIF_FOK, TIF_GTC, TIF_IOC
from framework.arena.fnptr import call_i64, entry, machine_code
from framework.arena.state import (
    H_FN_ADVANCE,
    H_FN_CANCEL,
    H_FN_MODIFY,
    H_FN_SUBMIT,
    H_FN_WAKE,
    H_HORIZON,
    H_N_REQ,
    REQ_CANCEL,
    REQ_NEW,
    WAKE_NEED_DATA,
    WAKE_REQUESTS,
    unpack_raw,
    write_heads,
)
from framework.book.l2 import M_ASK, M_BID, M_NT
from framework.core.nrt import borrowed as _b
from framework.core.prefetch import prefetch, prefetch_write, touch
from framework.engine.engine import _append_window_nb
from framework.kernel.seam import REQUEST_DTYPE, drain_requests_state
from live.fastpath import _batch_levels
from live.feeds.itch_mold import SLOT
from live.feeds.itch_mold_nb import (
    BATCH_DONE,
    S_EXPECTED,
    _clock_ns,
    frame_decode_apply_nb,
    received_nb,
)
from live.journal import HEADER_SIZE, KIND_FEED, KIND_ORDER_OUT
from live.journal_nb import J_ADDR, J_LEN, J_LIMIT, J_POS, NOT_SYNCED, _append
from live.monitor import RX
from live.wire import ouch, soupbin
from live.wire.mmsg import MSG_DONTWAIT, stamp_ns
from live.wire.mmsg import recvmmsg_nb as recvmmsg

#: ``poll(struct pollfd *, nfds, timeout_ms)``
poll_nb = types.ExternalFunction("poll", types.intc(types.uintp, types.uint64, types.intc))
#: ``send(fd, buf, len, flags)``
send_nb = types.ExternalFunction("send", types.intp(types.intc, types.uintp, types.uintp,
                                                     types.intc))
MSG_NOSIGNAL: Final = 0x4000
POLLIN: Final = 0x1
#: poll's events of the order session that need Python: data (POLLIN, POLLPRI), the peer
#: gone (POLLHUP, POLLRDHUP), a bad descriptor (POLLNVAL); not POLLERR alone
GATEWAY_READY: Final = 0x1 | 0x2 | 0x10 | 0x20 | 0x2000
POLLFD: Final = np.dtype([("fd", "<i4"), ("events", "<i2"), ("revents", "<i2")])
CLOCK_REALTIME: Final = 0

# --- the state vector Python and the loop share (int64) ----------------------------------
HS_URN = 0  #: the order session's last UserRefNum used
HS_ORDERS = 1  #: 1: requests may be sent from the loop (an OUCH session, nothing held)
HS_FD = 2  #: the order session's socket
HS_LAST_LOCAL = 3  #: the engine's latest local time pushed (Engine._last_local)
HS_GOT = 4  #: rows in the engine's window after the loop's last push (-1: none pushed)
HS_LATE = 5  #: late rows the loop's pushes clamped
HS_NSENT = 6  #: entries in the sent log
HS_K = 7  #: RET_ORDERS: the first drained request the loop did not take ...
HS_NREQ = 8  #: ... of this many
HS_LEFT = 9  #: RET_PARTIAL: bytes of the last message the socket did not take ...
HS_LEFT_AT = 10  #: ... from this offset of the send buffer
HS_TICK = 11  #: 1: a tick is open (its marks are being taken)
HS_T = 12  #: the receive time the engine was run to (the runner's ``_t``)
HS_PACKETS = 13  #: packets received by this call
HS_CODE = 14  #: RET_FEED: the batch's code, its packets (HS_NPK) for the handler
HS_NPK = 15
HS_COMPILED = 16  #: 1: the engine's core runs here (compiled strategies, callbacks wired)
HS_JOURNAL = 17  #: 1: packets and requests are journaled
HS_WAKE = 18  #: RET_ADVANCE: the core's wake-up code
HS_TICKS = 19  #: ticks (batches pushed) in this call
HS_TBL_GROWN = 20  #: 1: the decoder grew its order table (the new array is returned)
HS_ROWS = 21  #: level rows the last batch made (RET_FEED: with HS_AT, HS_NMINE: levels_nb's)
HS_DECIDED = 22  #: requests the loop took (journaled and sent) in this call
HS_PRICE_MULT = 23  #: the gateway's price multiplier (ticks to the wire's price units)
HS_PRICE_MAX = 24  #: the largest |price| in ticks whose wire price fits an int64
HS_AT = 25
HS_NMINE = 26
HS_EXTERNAL = 27  #: 1: the engine's venue is external (a gateway), 0: simulated (paper)
HS_NOT_SYNCED = 28  #: 1: a record the disk refused (policy ``always``): Python raises it
#: ns the tick spent appending its journal records (packets as received, orders before
#: they leave; up to its first order, with the clock reads around the appends)
HS_J_NS = 29
#: the ranges kept warm while the feed is quiet (:func:`_warm_step`): the next row and
#: offset, and the lines prefetched per pass of the loop
HS_WARM_ROW = 30
HS_WARM_OFF = 31
HS_WARM_STEP = 32
#: the order session's path kept warm too (:meth:`HotPath.warm_sends`): a SoupBinTCP client
#: heartbeat at most every HS_HB_NS ns while the loop is quiet (0: never), the last one's
#: time, and how many this call sent
HS_HB_NS = 33
HS_HB_AT = 34
HS_HBS = 35
#: 1: the order socket reported POLLERR alone (its error queue: transmit stamps to take)
HS_GW_ERR = 36
#: the packet path's code kept warm by running it (:meth:`HotPath.warm_ticks`): a scratch
#: packet decoded, applied and projected on scratch state at most every HS_DRY_NS ns while
#: the loop is quiet (0: never), and the last one's time
HS_DRY_NS = 37
HS_DRY_AT = 38
#: the loop's stalls (:meth:`HotPath.watch_stalls`): a quiet pass of the loop that took
#: longer than HS_STALL_NS ns (0: not watched) is logged, its start and length, in the stall
#: ring, and HS_STALLS counts them (the ring's next row: HS_STALLS modulo its rows)
HS_STALL_NS = 39
HS_STALLS = 40
#: the tick's pages kept mapped while the loop is quiet (:meth:`HotPath.keep_pages`): the
#: next page of the list, the pages read per pass (0: none), and what the reads fold into
#: (stored: the reads must not be dropped)
HS_PAGE_AT = 41
HS_PAGE_STEP = 42
HS_PAGE_SUM = 43
HS_LEN = 44

# --- what the loop returns -----------------------------------------------------------------
RET_IDLE = 0  #: the deadline passed with nothing for Python
RET_SENT = 1  #: a tick sent order messages (Python books them now)
RET_GATEWAY = 2  #: the order session's socket has something to read
RET_KILL = 3  #: the kill word was set
RET_FEED = 4  #: a batch for the handler's Python (HS_CODE / HS_NPK), or its table grew
RET_PUSH = 5  #: the window cannot take the rows: the engine's push must grow it
RET_ADVANCE = 6  #: the core stopped for the driver (HS_WAKE: a flush, the end, an error)
RET_ORDERS = 7  #: requests HS_K.. of the drained HS_NREQ go by the runner's Python path
RET_PARTIAL = 8  #: the socket took part of a message: Python writes the rest first
RET_JOURNAL = 9  #: the journal needs room before the next batch or record
RET_TICK = 10  #: Python mode: a batch's rows were pushed; the engine runs in Python
RET_NAMES: Final = ("idle", "sent", "gateway", "kill", "feed", "push", "advance", "orders",
                    "partial", "journal", "tick")

# --- the sent log: one row per message the loop sent, for Python's books ------------------
SL_KIND, SL_SID, SL_OID, SL_URN, SL_SIDE, SL_QTY, SL_PRICE, SL_TIF, SL_TS = range(9)
SL_REQ = 9  #: the request's words (SL_WAIT rows: Python takes the request as drained)
SL_COLS = SL_REQ + 11
#: SL_KIND of a cancel the loop journaled but did not send: its order was not accepted yet
#: (or something else is pending on it), so the cancel waits in the runner's books for it,
#: as the runner's own path would have it (``LiveRunner._book_hot``)
SL_WAIT = -1

# --- the working-order table (open addressing on (strategy, order id)) ----------------------
T_SID, T_OID, T_URN, T_STATE = range(4)
T_FREE = 0
T_WORKING = 1  #: accepted by the venue, nothing pending on it: a cancel may leave now
#: live but not accepted yet, or something is pending or waiting on it: a cancel waits
T_WAIT = 2
#: done (filled, cancelled, refused): a cancel of it is journaled in its place and left to
#: Python's books after the tick (SL_WAIT), which answer it themselves, as they would have;
#: the first rows a new order takes when its neighbourhood has no free one
T_DONE = 3
TABLE_SIZE = 1 << 12
PROBES = 8

#: the kill word: KILL_NONE, or KILL_NEW (the switch tripped: the loop returns at once) or
#: KILL_HELD (the runner knows: the loop still takes the feed but sends nothing)
KILL_NONE, KILL_NEW, KILL_HELD = 0, 1, 2

#: bytes of the journal ahead of its write position kept in the caches while the feed is quiet
JOURNAL_AHEAD = 4096

#: lines prefetched per pass of the quiet loop (:meth:`HotPath.keep_warm`), and the most
#: bytes of a code mapping and of an array kept warm
WARM_LINES = 64
#: rows of the stall ring (:meth:`HotPath.watch_stalls`); the runner empties it when the loop
#: comes back quiet (a call of ~0.5 ms holds ten 50 µs stalls at most: ~50 ms of busy calls)
STALL_RING = 1024
#: the shortest quiet pass logged as a stall by default (µs): a pass is a poll and a few
#: prefetches (~1-3 µs); the kernel's timer interrupt costs a spinning CPU ~17 µs here
STALL_US = 50
#: the default of :meth:`HotPath.warm_sends` (µs)
WARM_SEND_US = 1000
#: the default of :meth:`HotPath.warm_ticks` (µs)
WARM_TICK_US = 500
WARM_CODE_MAX = 1 << 20
WARM_DATA_MAX = 16 << 10
WARM_ROWS = 8  #: an array of at most this many rows is kept warm at each row's head
#: pages read per pass of the quiet loop (:meth:`HotPath.keep_pages`; ~8 page walks next to
#: the poll's system call), and the largest array whose every page is kept (a larger one, an
#: append-only recorder: its head and where it is written next)
PAGES_PER_PASS = 8
PAGE_ARRAY_MAX = 4 << 20
PAGE = 4096
#: levels each way of each side's best kept warm (:meth:`HotPath.follow_touch`)
TOUCH_LEVELS = 64

#: stage marks (:data:`live.monitor.STAGES`)
PACKET_IN, DECODED, BOOK, STRATEGY, RISK, ENCODED, SENT = range(7)
REQ_SIZE: Final = REQUEST_DTYPE.itemsize
#: offsets of the REQUEST_DTYPE fields (a packed record: what ``tobytes`` gives)
_REQ_FIELDS = [REQUEST_DTYPE.fields[n] for n in REQUEST_DTYPE.names or ()]  # type: ignore[index]
_REQ_OFF = tuple(int(f[1]) for f in _REQ_FIELDS)
_REQ_SIZES = tuple(int(f[0].itemsize) for f in _REQ_FIELDS)
#: room a batch's journal records need at most (asked before each receive)
_FRAME = 3  #: SoupBinTCP: length (2) and packet type
_ENTER_AT = {name: _FRAME + off for name, off in (
    ("urn", 1), ("side", 5), ("qty", 6), ("price", 18), ("tif", 26), ("clordid", 31))}
ENTER_LEN: Final = _FRAME + ouch._ENTER.size
CANCEL_LEN: Final = _FRAME + ouch._CANCEL.size


def enter_template(symbol: bytes) -> npt.NDArray[np.uint8]:
    """An OUCH Enter Order in its SoupBinTCP frame, with the session's constant fields (the
    symbol, display, capacity, no appendage): :func:`enter_nb` fills in the rest."""
    msg = soupbin.unsequenced(ouch.encode_enter(0, b"B", 0, symbol, 0, ouch.TIF_DAY,
                                                ouch.pad_clordid("")))
    assert len(msg) == ENTER_LEN
    return np.frombuffer(msg, np.uint8).copy()


@njit(cache=True, inline="always")
def _be(b: npt.NDArray[np.uint8], at: int, v: int, width: int) -> None:
    for i in range(width):
        b[at + width - 1 - i] = (v >> (8 * i)) & 0xFF


@njit(cache=True, inline="always")
def _digits(b: npt.NDArray[np.uint8], at: int, v: int) -> int:
    """``str(v)`` (v >= 0) as ASCII at ``b[at:]``; the end."""
    n = 1
    x = v
    while x >= 10:
        x //= 10
        n += 1
    for i in range(n):
        b[at + n - 1 - i] = 48 + v % 10
        v //= 10
    return at + n


@njit(cache=True)
def enter_nb(out: npt.NDArray[np.uint8], tpl: npt.NDArray[np.uint8], urn: int, side: int,
             qty: int, price: int, ioc: bool, sid: int, oid: int) -> int:
    """The Enter Order :meth:`OuchGateway.submit <live.gateways.ouch.OuchGateway.submit>`
    writes (ClOrdID = the first 14 characters of the key ``"sid:oid"``), framed, in
    ``out``; its length. The caller checked the values fit their fields."""
    for i in range(ENTER_LEN):
        out[i] = tpl[i]
    _be(out, 4, urn, 4)
    out[8] = 66 if side > 0 else 83  # B / S
    _be(out, 9, qty, 4)
    _be(out, 21, price, 8)
    out[29] = 51 if ioc else 48  # TIF_IOC "3" / TIF_DAY "0"
    key = np.empty(44, np.uint8)
    e = _digits(key, 0, sid)
    key[e] = 58  # ":"
    e = _digits(key, e + 1, oid)
    for i in range(min(e, 14)):
        out[34 + i] = key[i]
    return ENTER_LEN


@njit(cache=True)
def cancel_nb(out: npt.NDArray[np.uint8], urn: int) -> int:
    """OUCH Cancel Order (quantity 0: cancel it all) of UserRefNum ``urn``, framed."""
    _be(out, 0, CANCEL_LEN - 2, 2)
    out[2] = 85  # "U": unsequenced data
    out[3] = 88  # "X"
    _be(out, 4, urn, 4)
    _be(out, 8, 0, 4)
    return CANCEL_LEN


@njit(cache=True)
def request_bytes_nb(w: npt.NDArray[np.int64], out: npt.NDArray[np.uint8]) -> None:
    """A drained request's int64 words as its REQUEST_DTYPE record's bytes (what the
    journal keeps: ``record.tobytes()``)."""
    for f in range(len(_REQ_OFF)):
        v = w[f]
        at = _REQ_OFF[f]
        for i in range(_REQ_SIZES[f]):
            out[at + i] = (v >> (8 * i)) & 0xFF


@njit(cache=True, inline="always")
def _slot(tab: npt.NDArray[np.int64], sid: int, oid: int) -> int:
    """The table row of ``(sid, oid)`` (in any state but free), or -1."""
    mask = tab.shape[0] - 1
    h = (oid * 0x9E3779B1 + sid * 0x85EBCA77) & mask
    for k in range(PROBES):
        i = (h + k) & mask
        if tab[i, T_STATE] != T_FREE and tab[i, T_OID] == oid and tab[i, T_SID] == sid:
            return i
    return -1


@njit(cache=True)
def table_set_nb(tab: npt.NDArray[np.int64], sid: int, oid: int, urn: int,
                 state: int = T_WORKING) -> bool:
    """``(sid, oid)`` is in ``state`` (working under ``urn``, waiting or done); False: no
    free or done row near its hash (the loop then leaves its cancel to Python)."""
    i = _slot(tab, sid, oid)
    if i < 0:
        mask = tab.shape[0] - 1
        h = (oid * 0x9E3779B1 + sid * 0x85EBCA77) & mask
        for k in range(PROBES):
            j = (h + k) & mask
            if tab[j, T_STATE] == T_FREE:
                i = j
                break
        if i < 0:  # a done order's row, forgotten (a cancel of it takes Python's path)
            for k in range(PROBES):
                j = (h + k) & mask
                if tab[j, T_STATE] == T_DONE:
                    i = j
                    break
        if i < 0:
            return False
    tab[i, T_SID], tab[i, T_OID], tab[i, T_URN] = sid, oid, urn
    tab[i, T_STATE] = state
    return True


@njit(cache=True)
def table_clear_nb(tab: npt.NDArray[np.int64], sid: int, oid: int) -> None:
    i = _slot(tab, sid, oid)
    if i >= 0:
        tab[i, T_STATE] = T_FREE


@njit(cache=True, inline="always")
def room_nb(jb: npt.NDArray[np.uint8], js: npt.NDArray[np.int64]) -> int:
    """Bytes the journal's current mapping takes without :meth:`JournalWriter.make_room
    <live.journal.JournalWriter.make_room>` (0 when ``jb`` is not the current mapping)."""
    if js[J_ADDR] != jb.ctypes.data:
        return 0
    return js[J_LIMIT] - js[J_POS]


@njit(cache=True, inline="always")
def _journal_ahead(jb: npt.NDArray[np.uint8], js: npt.NDArray[np.int64]) -> None:
    """While the feed is quiet: the journal's next lines fetched for writing (after a quiet
    spell a tick's records otherwise wait on a memory round trip per line they fill)."""
    if js[J_ADDR] != jb.ctypes.data:
        return
    base = jb.ctypes.data
    for off in range(js[J_POS], min(js[J_POS] + JOURNAL_AHEAD, js[J_LIMIT]), 64):
        prefetch_write(base + off)


@njit(cache=True, inline="always")
def _journal(jb: npt.NDArray[np.uint8], js: npt.NDArray[np.int64], kind: int, stream: int,
             ts: int, payload: npt.NDArray[np.uint8], n: int, hs: npt.NDArray[np.int64]) -> None:
    """Append a record (room was made for it); a record the disk did not take under the
    ``always`` policy is flagged for Python (:meth:`JournalWriter.sync` raises the error)."""
    # the append inlined: a call passing arrays counts references to each (atomic updates
    # of lines a quiet spell left cold)
    if _append(jb, js, kind, stream, ts, payload, n, payload, 0) == NOT_SYNCED:
        hs[HS_NOT_SYNCED] = 1


@njit(cache=True)
def journal_packets_nb(jb: npt.NDArray[np.uint8], js: npt.NDArray[np.int64], now: int,
                       pbuf: npt.NDArray[np.uint8], lengths: npt.NDArray[np.uint32], n: int,
                       hs: npt.NDArray[np.int64]) -> None:
    """Packets ``0..n-1`` of the receive buffer journaled as received (``KIND_FEED``, at
    ``now``; room was made for them). One function, not inlined, called with borrowed
    arrays (no reference counts): the quiet loop's scratch runs (:func:`_dry_tick`) go
    through the very instructions a tick's packets do."""
    for k in range(n):
        _journal(jb, js, KIND_FEED, 0, now, pbuf[k * SLOT : k * SLOT + lengths[k]], lengths[k],
                 hs)


@njit(cache=True, inline="always")
def _warm_step(warm: npt.NDArray[np.int64], hs: npt.NDArray[np.int64]) -> None:
    """While the feed is quiet: the next ``hs[HS_WARM_STEP]`` lines of the ranges ``warm``
    (rows: address, bytes) prefetched, round and round (see :meth:`HotPath.warm_ranges`)."""
    n = warm.shape[0]
    if n == 0:
        return
    r, off = hs[HS_WARM_ROW], hs[HS_WARM_OFF]
    for _ in range(hs[HS_WARM_STEP]):
        if r >= n:
            r = 0
        prefetch(warm[r, 0] + off)
        off += 64
        if off >= warm[r, 1]:
            r += 1
            off = 0
    hs[HS_WARM_ROW], hs[HS_WARM_OFF] = r, off


@njit(cache=True, inline="always")
def _touch_step(pages: npt.NDArray[np.int64], hs: npt.NDArray[np.int64]) -> None:
    """While the feed is quiet: one byte read from each of the next ``hs[HS_PAGE_STEP]``
    pages of ``pages`` (their addresses), round and round (see :meth:`HotPath.keep_pages`)."""
    n = pages.shape[0]
    if n == 0:
        return
    i, acc = hs[HS_PAGE_AT], 0
    for _ in range(hs[HS_PAGE_STEP]):
        if i >= n:
            i = 0
        acc += touch(pages[i])
        i += 1
    hs[HS_PAGE_AT] = i
    hs[HS_PAGE_SUM] += acc


@njit(cache=True, inline="always")
def _dry_tick(dry: tuple[Any, ...], now: int) -> None:
    """While the feed is quiet: the scratch packet of :meth:`FastFeed.scratch
    <live.fastpath.FastFeed.scratch>` (an order added and deleted) through the same compiled
    functions a real packet goes through (framing, decoding, the L3 book, the projection to
    levels), on scratch state: their machine code, branch history and translations are the
    tick's own, which prefetching lines (:func:`_warm_step`) does not bring back."""
    lengths, ft, lv, jb, js, hs = dry
    (pbuf, session, pk, msg, base_ns, price_step, qty_step, ev, tbl, first_stock, meta, qty,
     ends, orders, table, locate, levels, rows, st, lat, clk) = ft
    l3, prio, mine, out, own = lv
    # one packet, typed as the tick's count (recvmmsg's C int): a count of another type (a
    # literal 1, an int64) would compile the callees a second time, as other machine code
    one: Any = np.intc(lengths.shape[0] > 0)
    js[J_POS] = 0  # a scratch journal: the record goes where the last one did
    journal_packets_nb(_b(jb), _b(js), now, _b(pbuf), _b(lengths), one, _b(hs))
    st[S_EXPECTED] = 1  # the scratch packet is new each time
    received_nb(_b(pk), _b(lengths), one, now, _b(st))
    code, _, _ = frame_decode_apply_nb(
        _b(pbuf), SLOT, 0, one, _b(session), _b(pk), _b(msg), base_ns, price_step, qty_step,
        _b(ev), _b(tbl), _b(first_stock), _b(meta), _b(qty), _b(ends), _b(orders), _b(table),
        locate, levels, _b(rows), _b(st), _b(lat), _b(clk))
    _batch_levels(code, _b(ev), _b(st), own, _b(mine),
                  (_b(l3[0]), _b(l3[1]), _b(l3[2]), _b(l3[3]), _b(l3[4])), _b(prio), _b(out))


@njit(cache=True, inline="always")
def _heartbeat_nb(hs: npt.NDArray[np.int64], sbuf: npt.NDArray[np.uint8]) -> bool:
    """A SoupBinTCP client heartbeat on the order session (see :meth:`HotPath.warm_sends`);
    False: the socket took part of it or none (the rest is left for Python, as a partial
    order message is: ``RET_PARTIAL`` with no request in progress)."""
    sbuf[0], sbuf[1], sbuf[2] = 0, 1, 0x52  # length 1, packet type 'R'
    got = send_nb(hs[HS_FD], sbuf.ctypes.data, 3, MSG_DONTWAIT | MSG_NOSIGNAL)  # type: ignore[call-overload]
    hs[HS_HBS] += 1
    if got >= 3:
        return True
    hs[HS_LEFT_AT] = max(got, 0)
    hs[HS_LEFT] = 3 - hs[HS_LEFT_AT]
    hs[HS_K] = hs[HS_NREQ] = 0
    return False


@njit(cache=True)
def out_nb(
    a: npt.NDArray[np.int64], words: npt.NDArray[np.int64], hs: npt.NDArray[np.int64],
    tab: npt.NDArray[np.int64], tpl: npt.NDArray[np.uint8], sbuf: npt.NDArray[np.uint8],
    rbuf: npt.NDArray[np.uint8], sent: npt.NDArray[np.int64], marks: npt.NDArray[np.int64],
    kill: npt.NDArray[np.int64], jb: npt.NDArray[np.uint8], js: npt.NDArray[np.int64],
    clk: npt.NDArray[np.int64],
) -> int:
    """Drain the engine's requests (into ``words``, which holds ``H_N_REQ`` of them: the
    caller checked) and send them (:func:`route_nb`)."""
    mark = hs[HS_TICK] != 0 and marks[SENT] == 0  # (up to the tick's first order)
    if mark:
        marks[STRATEGY] = _clock_ns(CLOCK_REALTIME, clk)  # the callbacks and risk checks ran
    n = drain_requests_state(a, words)
    if mark:
        marks[RISK] = _clock_ns(CLOCK_REALTIME, clk)
    return route_nb(words, 0, n, hs, tab, tpl, sbuf, rbuf, sent, marks, kill, jb, js, clk)


@njit(cache=True)
def route_nb(
    words: npt.NDArray[np.int64], k0: int, n: int, hs: npt.NDArray[np.int64],
    tab: npt.NDArray[np.int64], tpl: npt.NDArray[np.uint8], sbuf: npt.NDArray[np.uint8],
    rbuf: npt.NDArray[np.uint8], sent: npt.NDArray[np.int64], marks: npt.NDArray[np.int64],
    kill: npt.NDArray[np.int64], jb: npt.NDArray[np.uint8], js: npt.NDArray[np.int64],
    clk: npt.NDArray[np.int64],
) -> int:
    """Send drained requests ``words[k0:n]`` the loop can take, in order; stop at the first
    it cannot: ``RET_ORDERS`` with ``HS_K`` (that request) and ``HS_NREQ`` (``n``) set
    (Python takes it, then the rest come back here), ``RET_PARTIAL`` / ``RET_JOURNAL`` /
    ``RET_KILL``; else ``RET_SENT`` (or ``RET_IDLE``: nothing to send)."""
    hs[HS_NREQ] = n
    hs[HS_K] = k0
    journal = hs[HS_JOURNAL] != 0
    for k in range(k0, n):
        hs[HS_K] = k
        if kill[0] != 0:
            return RET_KILL
        w = words[k]
        kind, oid, sid, side, otype, tif, price, qty = w[2], w[3], w[4], w[6], w[7], w[8], \
            w[9], w[10]
        if hs[HS_ORDERS] == 0 or hs[HS_NSENT] >= sent.shape[0]:
            return RET_ORDERS
        first = hs[HS_TICK] != 0 and marks[ENCODED] == 0
        if kind == REQ_NEW:
            urn = hs[HS_URN] + 1
            if (otype != ORD_LIMIT or (tif != TIF_GTC and tif != TIF_IOC and tif != TIF_FOK)
                    or qty <= 0 or qty > 0xFFFFFFFF or urn > 0xFFFFFFFF or sid < 0 or oid < 0
                    or abs(price) > hs[HS_PRICE_MAX]):
                return RET_ORDERS  # Python's path encodes it, or says why it cannot
            if first:
                marks[ENCODED] = _clock_ns(CLOCK_REALTIME, clk)
            if journal:
                if room_nb(jb, js) < HEADER_SIZE + REQ_SIZE + 20:
                    return RET_JOURNAL
                request_bytes_nb(w, rbuf)
                e = _digits(rbuf, REQ_SIZE, urn)
                tj = _clock_ns(CLOCK_REALTIME, clk)
                _journal(jb, js, KIND_ORDER_OUT, 0, tj, rbuf, e, hs)
                if marks[SENT] == 0:  # (after the tick's first order left: not its latency)
                    hs[HS_J_NS] += _clock_ns(CLOCK_REALTIME, clk) - tj
            m = enter_nb(sbuf, tpl, urn, side, qty, price * hs[HS_PRICE_MULT],
                         tif == TIF_IOC or tif == TIF_FOK, sid, oid)
            hs[HS_URN] = urn
            ref = urn
            table_set_nb(tab, sid, oid, urn, T_WAIT)  # a cancel of it waits for the ack
        elif kind == REQ_CANCEL:
            i = _slot(tab, sid, oid)
            if i < 0:
                return RET_ORDERS  # an order the loop does not know: Python's path answers
            working = tab[i, T_STATE] == T_WORKING
            if first and working:
                marks[ENCODED] = _clock_ns(CLOCK_REALTIME, clk)
            if journal:
                if room_nb(jb, js) < HEADER_SIZE + REQ_SIZE:
                    return RET_JOURNAL
                request_bytes_nb(w, rbuf)
                tj = _clock_ns(CLOCK_REALTIME, clk)
                _journal(jb, js, KIND_ORDER_OUT, 0, tj, rbuf, REQ_SIZE, hs)
                if marks[SENT] == 0:
                    hs[HS_J_NS] += _clock_ns(CLOCK_REALTIME, clk) - tj
            if not working:
                # the order cannot take a cancel yet (or is done): journaled, in its place
                # among the decisions, the cancel waits in Python's books (SL_WAIT), sent on
                # the ack (or answered by them: a done order's, after the batch, as their
                # own path does)
                s = hs[HS_NSENT]
                row = sent[s]
                row[SL_KIND], row[SL_SID], row[SL_OID], row[SL_TS] = SL_WAIT, sid, oid, hs[HS_T]
                row[SL_REQ : SL_REQ + w.shape[0]] = w
                hs[HS_NSENT] = s + 1
                hs[HS_DECIDED] += 1
                continue
            ref = tab[i, T_URN]
            m = cancel_nb(sbuf, ref)
            tab[i, T_STATE] = T_WAIT  # a cancel is pending on it: another one waits
        else:
            return RET_ORDERS
        s = hs[HS_NSENT]
        row = sent[s]
        row[SL_KIND], row[SL_SID], row[SL_OID], row[SL_URN] = kind, sid, oid, ref
        row[SL_SIDE], row[SL_QTY], row[SL_PRICE], row[SL_TIF] = side, qty, price, tif
        row[SL_TS] = hs[HS_T]
        hs[HS_NSENT] = s + 1
        hs[HS_DECIDED] += 1
        got = send_nb(hs[HS_FD], sbuf.ctypes.data, m, MSG_DONTWAIT | MSG_NOSIGNAL)  # type: ignore[call-overload]
        if first:
            marks[SENT] = _clock_ns(CLOCK_REALTIME, clk)
        if got < m:  # full socket buffer (or an error, which the session's reader sees)
            hs[HS_LEFT_AT] = max(got, 0)
            hs[HS_LEFT] = m - hs[HS_LEFT_AT]
            hs[HS_K] = k + 1
            return RET_PARTIAL
    hs[HS_K] = n
    return RET_SENT if n > k0 else RET_IDLE


@njit(cache=True, nogil=True)
def spin_nb(
    deadline: int, fds: npt.NDArray[np.void], hdrs: int, lengths: npt.NDArray[np.uint32],
    slots: int, ft: tuple[Any, ...], lv: tuple[Any, ...], a: npt.NDArray[np.int64],
    wbuf: npt.NDArray[np.void], words: npt.NDArray[np.int64], hs: npt.NDArray[np.int64],
    tab: npt.NDArray[np.int64], tpl: npt.NDArray[np.uint8], sbuf: npt.NDArray[np.uint8],
    rbuf: npt.NDArray[np.uint8], sent: npt.NDArray[np.int64], marks: npt.NDArray[np.int64],
    kill: npt.NDArray[np.int64], warm: npt.NDArray[np.int64], dry: tuple[Any, ...],
    jb: npt.NDArray[np.uint8], js: npt.NDArray[np.int64], rxs: npt.NDArray[np.int64],
    stalls: npt.NDArray[np.int64], pages: npt.NDArray[np.int64],
) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """Poll the feed socket (``fds[0]``) and the order session's (``fds[1]``, -1: none)
    until ``deadline`` (realtime ns) and take each batch through the tick (see the module
    docstring). ``ft``: the feed handler's kernel state as
    :func:`~live.feeds.itch_mold_nb.frame_decode_apply_nb` takes it after its packet
    arguments; ``lv``: the projector's state, scratch and rows and the instrument's stock
    locate (:func:`live.fastpath.levels_nb`); ``rxs``: the receiver's control buffers
    (:attr:`live.wire.mmsg.BatchReceiver.stamps`: the first packet's receive stamp, where
    the kernel stamps them, marks :data:`~live.monitor.RX`); ``stalls``: the stall ring
    (:data:`HS_STALL_NS`).
    Returns ``(RET_* code, the decoder's order table, the last batch's status)``."""
    (pbuf, session, pk, msg, base_ns, price_step, qty_step, ev, tbl, first_stock, meta, qty,
     ends, orders, table, locate, levels, rows, st, lat, clk) = ft
    l3, prio, mine, out, own = lv
    # every array the tick passes on, borrowed (no reference counts: see framework.core.nrt);
    # the decoder's table is returned, so the owned one is kept for that
    pbuf, session, pk, msg, ev, first_stock = _b(pbuf), _b(session), _b(pk), _b(msg), \
        _b(ev), _b(first_stock)
    meta, qty, ends, orders, table, rows = _b(meta), _b(qty), _b(ends), _b(orders), \
        _b(table), _b(rows)
    st, lat, clk, lengths = _b(st), _b(lat), _b(clk), _b(lengths)
    l3 = (_b(l3[0]), _b(l3[1]), _b(l3[2]), _b(l3[3]), _b(l3[4]))
    prio, mine, out, wbuf, words = _b(prio), _b(mine), _b(out), _b(wbuf), _b(words)
    hs, tab, tpl, sbuf, rbuf, sent = _b(hs), _b(tab), _b(tpl), _b(sbuf), _b(rbuf), _b(sent)
    marks, kill, jb, js, fds, warm = _b(marks), _b(kill), _b(jb), _b(js), _b(fds), _b(warm)
    rxs, stalls, pages = _b(rxs), _b(stalls), _b(pages)
    h = _b(unpack_raw(a).h)
    p = np.int64(a.ctypes.data)
    status: npt.NDArray[np.int8] = np.zeros(0, np.int8)
    journal = hs[HS_JOURNAL] != 0
    need = slots * (SLOT + HEADER_SIZE)
    hs[HS_PACKETS] = hs[HS_TICKS] = hs[HS_NSENT] = hs[HS_DECIDED] = hs[HS_HBS] = 0
    hs[HS_GOT] = -1
    fdp = fds.ctypes.data
    nfds = 2 if fds[1].fd >= 0 else 1
    last = 0  # the last quiet pass's clock read (0: none to compare with)
    while True:
        if kill[0] == KILL_NEW:
            return RET_KILL, tbl, status  # the runner acts on the trip now (cancels all)
        fds[0].revents = 0
        fds[1].revents = 0
        poll_nb(fdp, nfds, 0)  # type: ignore[call-overload]
        # the order session: something to read, or gone (POLLERR alone: its error queue has
        # transmit stamps for Python to take at the next return, or an error its reader sees)
        if nfds == 2 and fds[1].revents != 0:
            if (fds[1].revents & GATEWAY_READY) != 0:
                return RET_GATEWAY, tbl, status
            hs[HS_GW_ERR] = 1
        if fds[0].revents == 0:
            t_idle = _clock_ns(CLOCK_REALTIME, clk)
            if t_idle >= deadline:  # (one poll at least)
                return RET_IDLE, tbl, status
            if last > 0 and hs[HS_STALL_NS] > 0 and t_idle - last > hs[HS_STALL_NS]:
                k = hs[HS_STALLS] % stalls.shape[0]
                stalls[k, 0] = last
                stalls[k, 1] = t_idle - last
                hs[HS_STALLS] += 1
            last = t_idle
            if journal:
                _journal_ahead(jb, js)
            _warm_step(warm, hs)
            _touch_step(pages, hs)
            if hs[HS_DRY_NS] > 0 and t_idle - hs[HS_DRY_AT] >= hs[HS_DRY_NS]:
                hs[HS_DRY_AT] = t_idle
                _dry_tick(dry, t_idle)
                last = 0  # (the loop's own work: not a stall)
            if (hs[HS_HB_NS] > 0 and hs[HS_ORDERS] != 0
                    and t_idle - hs[HS_HB_AT] >= hs[HS_HB_NS]):
                hs[HS_HB_AT] = t_idle
                last = 0
                if not _heartbeat_nb(hs, sbuf):
                    return RET_PARTIAL, tbl, status
            continue
        last = 0  # (a batch follows: the tick is not a quiet pass)
        if journal and room_nb(jb, js) < need:
            return RET_JOURNAL, tbl, status
        rxs[0, 0] = 0  # (a stamp the kernel did not write is none)
        n = recvmmsg(fds[0].fd, hdrs, slots, MSG_DONTWAIT, 0)  # type: ignore[call-overload]
        if n <= 0:
            continue
        now = _clock_ns(CLOCK_REALTIME, clk)
        for i in range(7):
            marks[i] = 0
        marks[PACKET_IN] = now
        marks[RX] = stamp_ns(rxs, 0)
        hs[HS_TICK] = 1
        hs[HS_T] = now
        hs[HS_PACKETS] += n
        hs[HS_J_NS] = 0
        if journal:
            tj = _clock_ns(CLOCK_REALTIME, clk)  # (the stores above are the clock's marks)
            journal_packets_nb(jb, js, now, pbuf, lengths, n, hs)
            hs[HS_J_NS] = _clock_ns(CLOCK_REALTIME, clk) - tj
        received_nb(pk, lengths, n, now, st)
        code, grown, status = frame_decode_apply_nb(
            pbuf, SLOT, 0, n, session, pk, msg, base_ns, price_step, qty_step, ev, _b(tbl),
            first_stock, meta, qty, ends, orders, table, locate, levels, rows, st, lat, clk)
        n_out, at, n_mine = _batch_levels(code, ev, st, own, mine, l3, prio, out)
        hs[HS_CODE], hs[HS_NPK], hs[HS_ROWS], hs[HS_AT], hs[HS_NMINE] = code, n, n_out, at, n_mine
        if grown.ctypes.data != tbl.ctypes.data:
            tbl = grown
            hs[HS_TBL_GROWN] = 1
        if code != BATCH_DONE or at >= 0 or n_mine < 0 or hs[HS_TBL_GROWN]:
            return RET_FEED, tbl, status  # the handler (and EventLevels.finish) finish it
        marks[DECODED] = _clock_ns(CLOCK_REALTIME, clk)
        if n_out:
            got, last, late = _append_window_nb(h, wbuf, out, n_out, hs[HS_LAST_LOCAL],
                                                hs[HS_EXTERNAL] != 0)
            if got < 0:
                return RET_PUSH, tbl, status
            hs[HS_GOT], hs[HS_LAST_LOCAL] = got, last
            hs[HS_LATE] += late
        marks[BOOK] = _clock_ns(CLOCK_REALTIME, clk)
        hs[HS_TICKS] += 1
        if hs[HS_COMPILED] == 0:
            return RET_TICK, tbl, status  # the engine's callbacks are Python's
        h[H_HORIZON] = now
        for _ in range(1000):
            w = call_i64(h[H_FN_ADVANCE], (p,))
            if w == WAKE_NEED_DATA:
                break
            if w != WAKE_REQUESTS or h[H_N_REQ] > words.shape[0]:
                hs[HS_WAKE] = w
                return RET_ADVANCE, tbl, status
            r = out_nb(_b(a), words, hs, tab, tpl, sbuf, rbuf, sent, marks, kill, jb, js, clk)
            if r != RET_SENT and r != RET_IDLE:
                return r, tbl, status
        else:
            hs[HS_WAKE] = WAKE_REQUESTS
            return RET_ADVANCE, tbl, status
        if hs[HS_NSENT]:
            return RET_SENT, tbl, status
        hs[HS_TICK] = 0


def _code_range(addr: int) -> tuple[int, int] | None:
    """The executable mapping of this process holding ``addr`` (``/proc/self/maps``), cut
    to :data:`WARM_CODE_MAX` bytes around it; None where there is none (or no procfs)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                span, perms = line.split(maxsplit=2)[:2]
                lo_s, hi_s = span.split("-")
                lo, hi = int(lo_s, 16), int(hi_s, 16)
                if lo <= addr < hi and "x" in perms:
                    lo = max(lo, addr - WARM_CODE_MAX // 2)
                    hi = min(hi, lo + WARM_CODE_MAX)
                    return lo, hi - lo
    except OSError:
        return None
    return None


def _heads(arr: npt.NDArray[Any]) -> list[tuple[int, int]]:
    """The first :data:`WARM_DATA_MAX` bytes of ``arr`` as (address, bytes); of each of its
    rows where it is a few rows of columns (a kernel's work matrix: offsets, lengths, times
    of the messages, each from its start)."""
    if not arr.nbytes:
        return []
    if arr.ndim >= 2 and arr.flags.c_contiguous:
        flat = arr.reshape(-1, arr.shape[-1])
        if flat.shape[0] <= WARM_ROWS:
            return [(int(r.ctypes.data), min(int(r.nbytes), WARM_DATA_MAX)) for r in flat]
    return [(int(arr.ctypes.data), min(int(arr.nbytes), WARM_DATA_MAX))]


def _touch_rows(meta: npt.NDArray[np.int64], qty: npt.NDArray[np.int64],
                ends: npt.NDArray[np.int64] | None) -> list[tuple[int, int]]:
    """(address, bytes) of an L2 window's columns within :data:`TOUCH_LEVELS` of each side's
    best (``qty[side]``, and ``ends[side, head/tail]`` of an L3 book): 2 or 6 rows."""
    nt = int(meta[M_NT])
    out = []
    for side, best in ((0, int(meta[M_BID])), (1, int(meta[M_ASK]))):
        lo = min(max(best - TOUCH_LEVELS, 0), max(nt - 2 * TOUCH_LEVELS, 0))
        n = 8 * min(2 * TOUCH_LEVELS, nt)
        out.append((int(qty[side].ctypes.data) + 8 * lo, n))
        if ends is not None:
            out += [(int(ends[side, k].ctypes.data) + 8 * lo, n) for k in (0, 1)]
    return out


def _lines(rows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges (address, bytes) widened to start on a cache line."""
    return [(a & ~63, n + (a & 63)) for a, n in rows]


def _merged(rows: list[tuple[int, int]]) -> npt.NDArray[np.int64]:
    """Ranges (address, bytes) sorted, overlaps merged, aligned to cache lines."""
    out: list[list[int]] = []
    for a, n in sorted(_lines(rows)):
        if out and a <= out[-1][0] + out[-1][1]:
            out[-1][1] = max(out[-1][1], a + n - out[-1][0])
        else:
            out.append([a, n])
    return np.array(out, np.int64).reshape(-1, 2)


def _pages(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The distinct pages (their addresses, sorted) that ranges (address, bytes) span."""
    rows = np.asarray(rows, np.int64).reshape(-1, 2)
    rows = rows[rows[:, 1] > 0]
    if not len(rows):
        return np.zeros(0, np.int64)
    first = rows[:, 0] // PAGE
    count = (rows[:, 0] + rows[:, 1] - 1) // PAGE - first + 1
    at = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    return np.unique(at) * PAGE


class HotPath:
    """:func:`spin_nb` for a :class:`~live.runner.LiveRunner` on an ITCH feed (its
    :class:`~live.fastpath.FastFeed`): the buffers, the entry points and the state shared
    with the loop. The runner calls :meth:`spin` where it polled the feed and books what
    the loop did (:meth:`LiveRunner._after_spin <live.runner.LiveRunner>`)."""

    def __init__(self, fast: Any, engine: Any, *, compiled: bool, journal: Any,
                 words: int = 256, log_rows: int = 256) -> None:
        self.fast, self.engine, self.journal = fast, engine, journal
        self.hs = np.zeros(HS_LEN, np.int64)
        self.hs[HS_COMPILED] = int(compiled)
        self.hs[HS_EXTERNAL] = int(engine.venue == "external")
        self.status = np.zeros(0, np.int8)  #: the last batch's status per message
        self.hs[HS_JOURNAL] = int(journal is not None)
        self.kill = np.zeros(1, np.int64)  #: set by the kill switch's trip, from any thread
        self.stalls = np.zeros((STALL_RING, 2), np.int64)  #: (start ns, length ns) rows
        self._stalls_read = 0  #: HS_STALLS when the ring was last emptied
        self.stalls_lost = 0  #: stalls the ring overwrote before they were read
        self.words = np.zeros((words, len(REQUEST_DTYPE.names or ())), np.int64)
        assert self.words.shape[1] <= SL_COLS - SL_REQ
        self.sent = np.zeros((log_rows, SL_COLS), np.int64)  #: the sent log
        self.tab = np.zeros((TABLE_SIZE, 4), np.int64)  #: the working orders
        self.tpl = np.zeros(ENTER_LEN, np.uint8)
        self.sbuf = np.zeros(64, np.uint8)  #: the message being sent
        self.rbuf = np.zeros(REQ_SIZE + 32, np.uint8)  #: a journal payload being made
        self.fds = np.zeros(2, POLLFD)
        self.fds["events"] = POLLIN
        self.fds["fd"] = fast.feed._fd, -1
        self._none_j = (np.zeros(1, np.uint8), np.zeros(8, np.int64))
        #: the scratch runs' journal (:func:`_dry_tick`): a mapping of one record, its
        #: writer state (J_*) and a flags vector standing for ``hs``
        djb = np.zeros(SLOT + HEADER_SIZE + 64, np.uint8)
        djs = np.zeros(J_LEN, np.int64)
        djs[J_ADDR], djs[J_LIMIT] = djb.ctypes.data, len(djb)
        self._dry_journal = (djb, djs, np.zeros(HS_LEN, np.int64))
        self._spin: Any = None
        self._out: Any = None
        self._route: Any = None
        self.gateway: Any = None
        #: returns to Python by code: the loop's, and its sender's that stopped it
        self.calls = np.zeros(len(RET_NAMES), np.int64)
        self.n_sent = 0  #: order messages the loop wrote (new orders and cancels)
        self.n_ticks_all = 0  #: batches the loop took through the engine (or to Python's)
        self.n_heartbeats = 0  #: heartbeats the loop sent to keep the order path warm
        #: ranges (address, bytes) the loop keeps in the caches while the feed is quiet
        self.warm: npt.NDArray[np.int64] = np.zeros((0, 2), np.int64)
        self._fixed = self.warm  #: its fixed rows (the rest: follow_touch)
        #: pages (addresses) the loop reads one byte of while the feed is quiet
        self.pages: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        #: the fixed ones (the rest: follow_touch)
        self._fixed_pages: npt.NDArray[np.int64] = self.pages
        #: the arrays the pages are of, held while the loop may read them: a read of memory
        #: an array gave back would fault (a prefetch would not), so none is freed meanwhile
        self._page_owners: list[Any] = []
        self._touch_owners: tuple[Any, ...] = ()
        self._warm_ids: list[int] = []  #: the arrays the fixed rows and pages were made of
        self._code_rows: list[tuple[int, int]] | None = None
        #: the journal's share (ns) of each tick that sent an order (a ring)
        self.journal_ns = np.zeros(1 << 14, np.int64)
        self.n_ticks = 0

    # --- setting up ------------------------------------------------------------------------
    def bind(self, gateway: Any) -> None:
        """Send orders on ``gateway`` (an OUCH session) from the loop."""
        self.gateway = gateway
        self.tpl[:] = enter_template(gateway.symbol)
        mult = max(int(gateway.price_mult), 1)
        self.hs[HS_PRICE_MULT] = mult
        self.hs[HS_PRICE_MAX] = (2**63 - 1) // mult

    def _journal(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        j = self.journal
        return self._none_j if j is None else j.hot()

    def _args(self, deadline: int, marks: npt.NDArray[np.int64]) -> tuple[Any, ...]:
        fast = self.fast
        rx = fast._rx
        ft, lv = fast.tuples()
        return (deadline, self.fds, rx.headers_address, rx.lengths, fast.feed.batch,
                ft, lv, self.engine.arena, self.engine._wbuf, self.words,
                self.hs, self.tab, self.tpl, self.sbuf, self.rbuf, self.sent, marks,
                self.kill, self.warm, (*fast.scratch(), *self._dry_journal),
                *self._journal(), rx.stamps, self.stalls, self.pages)

    def _out_args(self, marks: npt.NDArray[np.int64]) -> tuple[Any, ...]:
        return (self.engine.arena, self.words, self.hs, self.tab, self.tpl, self.sbuf,
                self.rbuf, self.sent, marks, self.kill, *self._journal(), self.fast.feed._clk)

    def warm_up(self, marks: npt.NDArray[np.int64]) -> None:
        """Compile (or load) both entry points before the first packet."""
        import numba

        self._spin = entry(spin_nb, *map(numba.typeof, self._args(0, marks)))
        out = self._out_args(marks)
        self._out = entry(out_nb, *map(numba.typeof, out))
        self._route = entry(route_nb, *map(numba.typeof, (out[1], 0, 0, *out[2:])))

    def keep_warm(self, lines: int = WARM_LINES) -> None:
        """While the feed is quiet, prefetch ``lines`` cache lines per pass of the loop
        (0: off), round and round over the tick's code and its small state
        (:meth:`warm_ranges`). Called again where arrays may have been replaced (a grown
        table or window).

        After a quiet spell of tens of milliseconds the tick finds its code and state gone
        from the caches (other processes, other tenants of a shared host). Measured here
        (``benchmarks/bench_live_runner.py``, a tick every ~60 ms), the first 4 messages of
        a packet took ~17 µs to decode and project against ~6 µs with ticks a few ms apart,
        and every stage behind them was slow the same way. A pass costs a few dozen
        nanoseconds next to the poll's system call."""
        arrays = self._tick_arrays() if lines > 0 else []
        ids = [id(x) for x in arrays]  # (the same objects: held, so the same memory)
        paged = lines > 0 and self.hs[HS_PAGE_STEP] > 0
        if not lines or ids != self._warm_ids or paged != (len(self._fixed_pages) > 0):
            self._fixed = (self.warm_ranges(arrays) if lines > 0
                           else np.zeros((0, 2), np.int64))
            self._fixed_pages = (_pages(self.page_ranges(arrays)) if paged
                                 else np.zeros(0, np.int64))
            self._page_owners, self._warm_ids = arrays, ids
        self.warm, self.pages = self._fixed, self._fixed_pages
        if lines > 0:
            self.follow_touch()
        self.hs[HS_WARM_STEP] = max(int(lines), 0)
        self.hs[HS_WARM_ROW] = self.hs[HS_WARM_OFF] = self.hs[HS_PAGE_AT] = 0

    def keep_pages(self, per_pass: int = PAGES_PER_PASS) -> None:
        """While the feed is quiet, read one byte of ``per_pass`` pages per pass of the loop
        (0: none), round and round over every page the tick may touch
        (:meth:`page_ranges`), with the ranges :meth:`keep_warm` keeps (it makes the list;
        the runner calls this before it).

        On a virtual machine the hypervisor keeps its own translation of each guest page, and
        may drop it or slow it down, page by page (a nested, shadow-paging host does, in
        episodes of seconds: see docs/live.md): the next access then pays for the rebuild,
        ~0.3-1 µs a page. A tick reads a few random pages of its large tables (the decoder's
        and the book's order tables) that no cache line prefetch brings back, since a
        prefetch that misses the translation is dropped. A read of every page every few
        milliseconds keeps the translations current (measured here: pages read every
        millisecond stayed fast through episodes that slowed pages read every 100 ms of
        the same mapping, interleaved with them)."""
        self.hs[HS_PAGE_STEP] = max(int(per_pass), 0)

    def follow_touch(self) -> None:
        """The ranges kept warm after the fixed ones (:meth:`warm_ranges`): what moves with
        the market and the orders (the runner calls it after a tick). The levels around
        the touch, :data:`TOUCH_LEVELS` each way of each best, of the projection's book
        (each side's lots and queue ends) and of the engine's view of the instrument's book:
        most of a tick's events land there. And where the engine writes next: each
        strategy's next order slot, the request queue's and the recorders' next rows
        (:func:`~framework.arena.state.write_heads`)."""
        if len(self._fixed) == 0:
            return
        meta, qty, ends = self.fast.levels.state[:3]
        st = self.engine.st
        rows = _lines([*_touch_rows(meta, qty, ends),
                       *_touch_rows(st.lmeta[0], st.lqty[0], None), *write_heads(st)])
        self.warm = np.concatenate([self._fixed, np.array(rows, np.int64).reshape(-1, 2)])
        if len(self._fixed_pages):  # (of arrays the engine and the projection hold: kept)
            self.pages = np.concatenate([self._fixed_pages, _pages(np.array(rows, np.int64))])
            self._touch_owners = (meta, qty, ends, st)

    def watch_stalls(self, over_us: int = STALL_US) -> None:
        """Log every quiet pass of the loop longer than ``over_us`` µs (0: none): time the
        CPU spent elsewhere while the loop spun (an interrupt, another task on its CPU, the
        hypervisor), measured by the loop itself during the session -- an operator's sign
        that the trading CPU is not the loop's alone. The loop's own work between two
        passes (a scratch tick, a heartbeat) is not counted, nor a tick (its stages are)."""
        self.hs[HS_STALL_NS] = max(int(over_us), 0) * 1000

    @property
    def stalls_waiting(self) -> bool:
        """Whether the loop logged stalls :meth:`take_stalls` has not taken yet."""
        return int(self.hs[HS_STALLS]) != self._stalls_read

    def take_stalls(self) -> npt.NDArray[np.int64]:
        """The stalls logged since the last call, oldest first: rows (start ns on the
        realtime clock, length ns); those the ring overwrote meanwhile are counted in
        :attr:`stalls_lost`."""
        total = int(self.hs[HS_STALLS])
        n = total - self._stalls_read
        if n <= 0:
            return self.stalls[:0].copy()
        cap = self.stalls.shape[0]
        if n > cap:
            self.stalls_lost += n - cap
            n = cap
        self._stalls_read = total
        idx = np.arange(total - n, total) % cap
        return self.stalls[idx].copy()

    def warm_sends(self, every_us: int) -> None:
        """While the feed is quiet, send a SoupBinTCP client heartbeat on the order session
        at most every ``every_us`` µs (0: never; only while orders may leave from the loop:
        nothing queued in the transport, no kill).

        A send after a quiet spell runs the kernel's TCP transmit path cold: measured here
        (``benchmarks/bench_live_runner.py``'s floor, 60 ms apart), the bytes reached the
        device ~16 µs into the call, against ~2.7 µs with a 1-byte send every millisecond
        between. A heartbeat is what the protocol has clients send when they have nothing
        to say (at least every second); the venue reads and drops it."""
        self.hs[HS_HB_NS] = max(int(every_us), 0) * 1000

    def warm_ticks(self, every_us: int) -> None:
        """While the feed is quiet, run the packet path's compiled functions on a scratch
        packet and scratch state at most every ``every_us`` µs (0: never): nothing of the
        real book, tables or counters is touched (:func:`_dry_tick`).

        Prefetching (:meth:`keep_warm`) brings lines back into the data caches; a tick after
        a quiet spell still finds its instructions, branch history and address translations
        cold. Measured in isolation, a journal append of a packet took ~0.75 µs after 30 ms
        of polling with its source and destination lines warm, against ~0.17 µs back to
        back. A scratch run costs a few µs of the spinning loop's time."""
        self.hs[HS_DRY_NS] = max(int(every_us), 0) * 1000

    def warm_ranges(self, arrays: list[npt.NDArray[Any]] | None = None
                    ) -> npt.NDArray[np.int64]:
        """(address, bytes) rows: the machine code the tick runs (the loop's, the engine
        core's and the strategies' compiled callbacks': the executable mappings around
        their entry points, at most :data:`WARM_CODE_MAX` bytes each; looked up once) and
        the arrays it reads and writes (each's first :data:`WARM_DATA_MAX` bytes, or each
        row's: :func:`_heads`): the loop's, the handler's and the projection's, the engine
        arena's segments and the compiled callbacks' params and states."""
        rows = self._code()
        for arr in self._tick_arrays() if arrays is None else arrays:
            rows += _heads(arr)
        return _merged(rows)

    def page_ranges(self, arrays: list[npt.NDArray[Any]] | None = None
                    ) -> npt.NDArray[np.int64]:
        """(address, bytes) rows of every page the tick may touch (:meth:`keep_pages`): the
        code ranges of :meth:`warm_ranges` and the same arrays, each whole up to
        :data:`PAGE_ARRAY_MAX` bytes (the rest's heads: where they are written next moves,
        :meth:`follow_touch`)."""
        rows = self._code()
        for arr in self._tick_arrays() if arrays is None else arrays:
            rows += ([(int(arr.ctypes.data), int(arr.nbytes))]
                     if 0 < arr.nbytes <= PAGE_ARRAY_MAX else _heads(arr))
        return _merged(rows)

    def _code(self) -> list[tuple[int, int]]:
        """(address, bytes) of the machine code the tick runs (looked up once): the
        executable mappings around the loop's entry points, the engine core's loop and the
        order calls the callbacks make through their addresses (each compiled apart)."""
        if self._code_rows is None:
            h = self.engine.st.h
            # the core's entry points the tick runs: its loop, and the order calls the
            # callbacks make through their addresses (each compiled apart: other mappings)
            code = [int(h[k]) for k in (H_FN_ADVANCE, H_FN_WAKE, H_FN_SUBMIT, H_FN_CANCEL,
                                        H_FN_MODIFY)]
            code += [*machine_code(spin_nb), *machine_code(out_nb)]
            self._code_rows = [r for a in code if a for r in [_code_range(a)] if r is not None]
        return list(self._code_rows)

    def _tick_arrays(self) -> list[npt.NDArray[Any]]:
        """The arrays a tick reads and writes: the loop's, the handler's, the projection's,
        the engine's arena segments and window, the compiled callbacks' params and states."""
        ft, lv = self.fast.tuples()
        arrays: list[Any] = [self.engine._wbuf, self.words, self.hs, self.tab, self.tpl,
                             self.sbuf, self.rbuf, self.sent, self.kill, self.fds,
                             self._journal()[1], *self.engine.st]
        # (the journal's mapping: its next lines, _journal_ahead)
        cs = getattr(self.engine, "_cs", None)  # the compiled callbacks' data and states
        if cs is not None:
            arrays += [cs.cb_data, *cs.states, *cs.words]

        def walk(x: Any) -> None:
            if isinstance(x, tuple):
                for y in x:
                    walk(y)
            elif isinstance(x, np.ndarray):
                arrays.append(x)

        walk(ft)
        walk(lv)
        f = self.fast.feed
        if f.book_locate < 0:  # the handler's own book follows no stock: never touched
            idle = {id(x) for x in f.book}
            arrays = [x for x in arrays if id(x) not in idle]
        return arrays

    # --- each call -------------------------------------------------------------------------
    def arm(self, orders: bool) -> None:
        """Before a call: may requests leave from the loop (an OUCH session up with nothing
        queued, no kill, no stop), on which socket, from which UserRefNum."""
        hs, gw = self.hs, self.gateway
        self.fast._rx.offer_stamps(0, self.fast.feed.batch)
        fd = -1 if gw is None else gw.socket_fd()
        ok = orders and fd >= 0 and gw.queued() == 0
        hs[HS_ORDERS] = int(ok)
        hs[HS_FD] = fd
        self.fds[1]["fd"] = fd
        if gw is not None:
            hs[HS_URN] = gw.current_ref()
        hs[HS_NSENT] = hs[HS_DECIDED] = hs[HS_LATE] = hs[HS_TBL_GROWN] = 0
        hs[HS_K] = hs[HS_NREQ] = hs[HS_LEFT] = 0
        hs[HS_LAST_LOCAL] = self.engine._last_local

    def spin(self, deadline: int, marks: npt.NDArray[np.int64]) -> int:
        """Run the loop until ``deadline`` (realtime ns) or it needs Python; its code.
        ``marks``: a :class:`~live.monitor.StageClock` row (the stages, the transmit and the
        receive stamps' columns)."""
        if marks.shape[0] <= RX:
            msg = f"the marks row has {marks.shape[0]} columns; the loop writes {RX + 1}"
            raise ValueError(msg)
        code, tbl, status = self._spin(*self._args(deadline, marks))
        self.fast.feed._tbl = tbl
        self.status = status
        self.calls[code] += 1
        return int(code)

    def out(self, marks: npt.NDArray[np.int64]) -> int:
        """Drain the engine's requests and send those the loop can (:func:`out_nb`)."""
        return self._count(int(self._out(*self._out_args(marks))))

    def route(self, k: int, n: int, marks: npt.NDArray[np.int64]) -> int:
        """Send drained requests ``k..n-1`` the loop can (:func:`route_nb`)."""
        args = self._out_args(marks)
        return self._count(int(self._route(args[1], k, n, *args[2:])))

    def _count(self, code: int) -> int:
        """A sender's return that stopped it (a partial send, ...) counts with the loop's."""
        if code not in (RET_SENT, RET_IDLE):
            self.calls[code] += 1
        return code

    # --- the working-order table -------------------------------------------------------------
    def working(self, sid: int, oid: int, urn: int | None, wait: bool = False) -> None:
        """Order ``(sid, oid)`` may be cancelled from the loop (``urn``: its UserRefNum), or
        a cancel of it waits (``wait``: the loop journals it for Python's books), or the
        loop does not know it (None: Python's path takes a cancel of it)."""
        if urn is None:
            table_clear_nb(self.tab, sid, oid)
        else:
            table_set_nb(self.tab, sid, oid, urn, T_WAIT if wait else T_WORKING)

    def done(self, sid: int, oid: int) -> None:
        """Order ``(sid, oid)`` is done: a cancel of it waits for Python's books after the
        tick, which answer it (as a cancel of an order the loop does not know would, by
        stopping the loop in the middle of the tick's requests: ~100 µs before the next
        one left, the worst ticks of a busy session)."""
        if not table_set_nb(self.tab, sid, oid, 0, T_DONE):
            table_clear_nb(self.tab, sid, oid)

    def tick_sent(self) -> None:
        """A tick that sent an order ended: keep its journal time (:attr:`journal_ns`)."""
        if self.hs[HS_JOURNAL]:
            self.journal_ns[self.n_ticks % len(self.journal_ns)] = self.hs[HS_J_NS]
            self.n_ticks += 1

    def journal_summary(self) -> dict[str, float]:
        """p50 / p99 (ns) of the journal's share of the ticks that sent an order."""
        k = min(self.n_ticks, len(self.journal_ns))
        if not k:
            return {}
        v = self.journal_ns[:k]
        return {"count": float(k), "p50": float(np.percentile(v, 50)),
                "p99": float(np.percentile(v, 99))}

    def journal_room(self) -> int:
        """The payload bytes to ask :meth:`JournalWriter.make_room
        <live.journal.JournalWriter.make_room>` for when the loop stopped for room: a whole
        batch of packets' records (the most it asks before a receive)."""
        return int(self.fast.feed.batch) * (SLOT + HEADER_SIZE) - HEADER_SIZE

    def forget_all(self) -> None:
        self.tab[:, T_STATE] = T_FREE

    def requests(self, k: int, n: int) -> npt.NDArray[np.void]:
        """Drained requests ``k..n-1`` as REQUEST_DTYPE records (for the Python path)."""
        from framework.kernel.seam import request_records

        return request_records(self.words[k:n].copy())

    def waiting_request(self, j: int) -> npt.NDArray[np.void]:
        """The request of sent-log row ``j`` (an ``SL_WAIT`` row) as a REQUEST_DTYPE record."""
        from framework.kernel.seam import request_records

        return request_records(self.sent[j : j + 1, SL_REQ : SL_REQ + self.words.shape[1]]
                               .copy())[0]

    def left(self) -> bytes:
        """The part of the last message the socket did not take."""
        at, n = int(self.hs[HS_LEFT_AT]), int(self.hs[HS_LEFT])
        return bytes(self.sbuf[at : at + n])


__all__ = [
    "HotPath",
    "cancel_nb",
    "enter_nb",
    "out_nb",
    "request_bytes_nb",
    "spin_nb",
    "table_clear_nb",
    "table_set_nb",
]
