"""Compiled kernels of the ITCH 5.0 decoder (numba, over one ``uint8`` buffer).

Two passes, both compiled:

1. *framing/classification* (:func:`frame_binaryfile` for BinaryFILE, :func:`classify_nb` for
   message blocks found in pcaps): message offsets, lengths and a status code per message. A
   message is only ``MSG_OK`` when ``offset + length <= len(buf)`` and ``length`` equals the
   fixed size of its type, so pass 2 can read every field of an OK message without further
   bounds checks: the bound is established by construction here, once. A BinaryFILE whose
   framing breaks is resynchronised (:func:`walk_binaryfile_nb`), the skipped bytes listed.
2. *decode* (:func:`decode_nb`): OK messages into preallocated event columns, keeping an
   open-addressing order table (linear probing, backward-shift deletion) in one ``int64``
   array so executions, cancels and replaces find the resting order's side, price and size.

Reject codes are the ``MSG_*`` constants; :data:`REASONS` names them for the report.
"""


from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.core.events import (
    BUY,
    FLAG_AUCTION,
    FLAG_HIDDEN,
    FLAG_LAST,
    FLAG_NON_PRINTABLE,
    FLAG_REPLACE,
    KIND_ADD,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_STATUS,
    KIND_TRADE,
    NO_SIDE,
    SELL,
    STATUS_CLOSED,
    STATUS_END_OF_MESSAGES,
    STATUS_END_OF_SYSTEM,
    STATUS_HALTED,
    STATUS_INFO,
    STATUS_OPEN,
    STATUS_PAUSED,
    STATUS_PRE_OPEN,
    STATUS_QUOTING,
    STATUS_START_OF_MESSAGES,
    STATUS_UNKNOWN,
)
from framework.core.prefetch import prefetch

# --- message sizes (PROTOCOLS.md §1; J and h from the Omi .ksy, J checked on real packets) --
MSG_SIZES: dict[str, int] = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
    "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
    "Q": 40, "I": 50, "N": 20, "B": 19,
}
SIZE_OF_TYPE = np.zeros(256, np.int64)
for _t, _n in MSG_SIZES.items():
    SIZE_OF_TYPE[ord(_t)] = _n

#: offset of the 8-byte Stock field per type (0: the type carries none)
STOCK_OFFSET = np.zeros(256, np.int64)
for _t, _o in {"R": 11, "H": 11, "Y": 11, "L": 15, "K": 11, "J": 11, "h": 11, "A": 24,
               "F": 24, "P": 24, "Q": 19, "I": 28, "N": 11}.items():
    STOCK_OFFSET[ord(_t)] = _o

# --- per-message status / reject codes -----------------------------------------------
MSG_OK = 0
MSG_UNKNOWN_TYPE = 1
MSG_BAD_LENGTH = 2
MSG_EMPTY = 3
MSG_OUT_OF_BOUNDS = 4
MSG_UNKNOWN_ID = 5
MSG_DUPLICATE_ID = 6
MSG_OFF_TICK = 7
MSG_OFF_LOT = 8
MSG_OVERFILL = 9
MSG_NON_POSITIVE = 10
MSG_BAD_SIDE = 11
MSG_DUPLICATE_SEQ = 12  # set by the MoldUDP64 framing (Python), never by the kernels
MSG_BAD_SYMBOL = 13

REASONS: dict[int, str] = {
    MSG_UNKNOWN_TYPE: "unknown ITCH message type",
    MSG_BAD_LENGTH: "message length disagrees with its type's fixed size",
    MSG_EMPTY: "empty message (length 0)",
    MSG_OUT_OF_BOUNDS: "message runs past the end of its packet",
    MSG_UNKNOWN_ID: "unknown order id",
    MSG_DUPLICATE_ID: "duplicate order id",
    MSG_OFF_TICK: "price off tick grid",
    MSG_OFF_LOT: "quantity not a whole number of lots",
    MSG_OVERFILL: "execute/cancel larger than the order's remaining shares",
    MSG_NON_POSITIVE: "non-positive size",
    MSG_BAD_SIDE: "buy/sell indicator is neither B nor S",
    MSG_DUPLICATE_SEQ: "duplicate MoldUDP64 message (same session, sequence and bytes)",
    MSG_BAD_SYMBOL: "Stock field with unprintable bytes",
}
#: codes that mean the bytes are not what ITCH sends (damage), not a well-formed message
#: the book cannot take (a rejection)
DAMAGE_CODES = frozenset({MSG_UNKNOWN_TYPE, MSG_BAD_LENGTH, MSG_EMPTY, MSG_OUT_OF_BOUNDS,
                          MSG_BAD_SIDE, MSG_BAD_SYMBOL})

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_EMPTY_META = 0


# --- byte readers (callers guarantee the bounds) ------------------------------------------
@njit(cache=True, inline="always")
def _u16(b: npt.NDArray[np.uint8], o: int) -> int:
    return (np.int64(b[o]) << 8) | np.int64(b[o + 1])  # type: ignore[return-value]


@njit(cache=True, inline="always")
def _u32(b: npt.NDArray[np.uint8], o: int) -> int:
    v = (
        (np.int64(b[o]) << 24) | (np.int64(b[o + 1]) << 16)
        | (np.int64(b[o + 2]) << 8) | np.int64(b[o + 3])
    )
    return v  # type: ignore[no-any-return,return-value,unused-ignore]


@njit(cache=True, inline="always")
def _u48(b: npt.NDArray[np.uint8], o: int) -> int:
    return (_u16(b, o) << 32) | _u32(b, o + 2)


@njit(cache=True, inline="always")
def _u64(b: npt.NDArray[np.uint8], o: int) -> np.uint64:
    return (np.uint64(_u32(b, o)) << np.uint64(32)) | np.uint64(_u32(b, o + 4))


@njit(cache=True, inline="always")
def _pack(b: npt.NDArray[np.uint8], o: int, fields: npt.NDArray[np.int64]) -> np.uint64:
    """The type byte then the bytes at ``o + fields[k]``, big-endian into a uint64."""
    v = np.uint64(b[o])
    for k in range(fields.shape[0]):
        v = (v << np.uint64(8)) | np.uint64(b[o + fields[k]])
    return v << np.uint64(8 * (7 - fields.shape[0]))


_ONES = np.uint64(0x0101010101010101)
_HIGH = np.uint64(0x8080808080808080)


@njit(cache=True, inline="always")
def _printable(b: npt.NDArray[np.uint8], o: int) -> bool:
    """The 8-byte Stock field at ``o`` is printable ASCII (space-padded), as ITCH sends it.

    All 8 bytes at once: no byte below 0x20 ("has less") and none above 0x7E ("has more"),
    the word-at-a-time tests of Bit Twiddling Hacks (exact for these bounds)."""
    x = _u64(b, o)
    less = (x - _ONES * np.uint64(0x20)) & ~x & _HIGH
    more = ((x + _ONES) | x) & _HIGH
    return (less | more) == 0


@njit(cache=True, inline="always")
def _div(x: int, step: int) -> int:
    # integer division costs ~25 cycles; the default steps are 1 (tick 0.0001, lot 1 share)
    return x if step == 1 else x // step


# --- pass 1 ---------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _classify_one(buf: npt.NDArray[np.uint8], off: int, ln: int) -> int:
    if ln <= 0:
        return MSG_EMPTY
    if off < 0 or off + ln > buf.shape[0]:
        return MSG_OUT_OF_BOUNDS
    want = SIZE_OF_TYPE[buf[off]]
    if want == 0:
        return MSG_UNKNOWN_TYPE
    if want != ln:
        return MSG_BAD_LENGTH
    return MSG_OK


@njit(cache=True, inline="always")
def _frame_at(buf: npt.NDArray[np.uint8], o: int) -> int:
    """``2 + length`` of a whole message of a known type and its fixed length at ``o``; 0 when
    one starts there but the buffer ends inside it (a cut); -1 when ``o`` frames none."""
    n = buf.shape[0]
    if o + 3 > n:
        return 0
    ln = _u16(buf, o)
    if ln == 0 or SIZE_OF_TYPE[buf[o + 2]] != ln:
        return -1
    if o + 2 + ln > n:
        return 0
    return 2 + ln


@njit(cache=True)
def _resync(buf: npt.NDArray[np.uint8], o: int) -> int:
    """The first offset after ``o`` where a message frames and so does the next (or the
    buffer ends, or is cut, right after it); ``len(buf)`` if there is none."""
    n = buf.shape[0]
    for p in range(o + 1, n):
        f = _frame_at(buf, p)
        if f > 0 and (p + f == n or _frame_at(buf, p + f) >= 0):
            return p
    return n


@njit(cache=True)
def walk_binaryfile_nb(
    buf: npt.NDArray[np.uint8],
    offs: npt.NDArray[np.int64],
    lens: npt.NDArray[np.int64],
    breaks: npt.NDArray[np.int64],
    fill: bool,
) -> tuple[int, int, int]:
    """Walk the 2-byte length prefixes: ``(messages, framing breaks, end)``.

    A message frames only with a known type and that type's fixed length. Where the framing
    breaks (a flipped, inserted or lost byte) the walk resynchronises at the next offset
    where two messages in a row frame; ``breaks[k] = (offset, bytes skipped)``. ``end`` is
    where the last whole message (or skipped run) ends: ``len(buf) - end`` bytes belong to a
    message cut by the end of the buffer. With ``fill`` the arrays (sized by a first call
    without) get the offsets and lengths of the message bodies and the breaks.
    """
    n = buf.shape[0]
    o = 0
    count = 0
    nb = 0
    while o < n:
        f = _frame_at(buf, o)
        if f > 0:
            if fill:
                offs[count] = o + 2
                lens[count] = f - 2
            count += 1
            o += f
        elif f == 0:
            break
        else:
            p = _resync(buf, o)
            if fill:
                breaks[nb, 0] = o
                breaks[nb, 1] = p - o
            nb += 1
            o = p
    return count, nb, o


@njit(cache=True)
def count_binaryfile_nb(buf: npt.NDArray[np.uint8]) -> tuple[int, int]:
    """Walk the 2-byte length prefixes trusting them: ``(messages, end)`` (the fast path of
    an undamaged file; :func:`fill_binaryfile_nb` then checks every message)."""
    n = buf.shape[0]
    count = 0
    o = 0
    while o + 2 <= n:
        ln = _u16(buf, o)
        if o + 2 + ln > n:
            break
        count += 1
        o += 2 + ln
    return count, o


@njit(cache=True)
def fill_binaryfile_nb(
    buf: npt.NDArray[np.uint8],
    offs: npt.NDArray[np.int64],
    lens: npt.NDArray[np.int64],
    status: npt.NDArray[np.int8],
    count: int,
) -> int:
    """Offsets, lengths and status of the first ``count`` messages of the trusting walk;
    returns how many do not frame (any: the framing broke, use :func:`walk_binaryfile_nb`)."""
    o = 0
    bad = 0
    for i in range(count):
        ln = _u16(buf, o)
        offs[i] = o + 2
        lens[i] = ln
        status[i] = _classify_one(buf, o + 2, ln)
        bad += status[i] != MSG_OK
        o += 2 + ln
    return bad


_Framing = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int8]]


def frame_binaryfile(
    buf: npt.NDArray[np.uint8], *, framing: Callable[[int], _Framing] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int8], int,
           npt.NDArray[np.int64]]:
    """Pass 1 over a BinaryFILE buffer: ``(offsets, lengths, status, end, breaks)``.

    The length prefixes are trusted first (as fast as framing gets); only if a message does
    not frame (or a cut message ends the buffer) is the buffer walked again, resynchronising
    at each break. ``framing`` maps a count to reusable (offsets, lengths, status) arrays.
    """
    def arrays(k: int) -> _Framing:
        if framing is not None:
            return framing(k)
        return np.empty(k, np.int64), np.empty(k, np.int64), np.empty(k, np.int8)

    count, end = count_binaryfile_nb(buf)
    offs, lens, status = arrays(count)
    if fill_binaryfile_nb(buf, offs, lens, status, count) == 0 and (
        end == buf.shape[0] or _frame_at(buf, end) == 0
    ):
        return offs, lens, status, int(end), np.empty((0, 2), np.int64)
    none = np.empty(0, np.int64)
    count, nb, _ = walk_binaryfile_nb(buf, none, none, np.empty((0, 2), np.int64), False)
    offs, lens, status = arrays(count)
    breaks = np.empty((nb, 2), np.int64)
    _, _, end = walk_binaryfile_nb(buf, offs, lens, breaks, True)
    status[:] = MSG_OK
    return offs, lens, status, int(end), breaks


@njit(cache=True)
def classify_nb(
    buf: npt.NDArray[np.uint8], offs: npt.NDArray[np.int64], lens: npt.NDArray[np.int64]
) -> npt.NDArray[np.int8]:
    """Status of messages framed elsewhere (pcap): bounds, type and length checks."""
    status = np.empty(offs.shape[0], np.int8)
    for i in range(offs.shape[0]):
        status[i] = _classify_one(buf, offs[i], lens[i])
    return status


@njit(cache=True)
def count_events_nb(
    buf: npt.NDArray[np.uint8], offs: npt.NDArray[np.int64], status: npt.NDArray[np.int8]
) -> int:
    """Upper bound of the events OK messages make (``U`` makes two)."""
    n = 0
    for i in range(offs.shape[0]):
        if status[i] == MSG_OK:
            n += 2 if buf[offs[i]] == 85 else 1
    return n


# --- the order table: int64[cap * 4] = key, price (raw 1/10000 $), shares, meta ---------------
@njit(cache=True, inline="always")
def _home(key: np.uint64, mask: int) -> int:
    """Slot of ``key``: runs of 4096 consecutive ids stay contiguous (ITCH numbers orders
    sequentially, so recent orders share cache lines) and the runs are scattered by a
    multiplicative hash of the high bits (so strided or random ids do not cluster)."""
    return np.int64((key + (key >> np.uint64(12)) * _GOLDEN) & np.uint64(mask))  # type: ignore[return-value]


@njit(cache=True)
def prefetch_refs_nb(buf: npt.NDArray[np.uint8], offs: npt.NDArray[np.int64],
                     status: npt.NDArray[np.int8], tbl: npt.NDArray[np.int64]) -> None:
    """Prefetch the order-table entries the classified messages ``offs`` will look up (the
    order reference of E, C, X, D and U messages): on a live feed the table's lines are
    cold after a quiet spell, and issued together their misses overlap
    (:mod:`framework.core.prefetch`)."""
    mask = (tbl.shape[0] >> 2) - 1
    base = tbl.ctypes.data
    for m in range(offs.shape[0]):
        if status[m] != MSG_OK:
            continue
        o = offs[m]
        t = buf[o]
        if t == 69 or t == 67 or t == 88 or t == 68 or t == 85:
            prefetch(base + 32 * _home(_u64(buf, o + 11), mask))


@njit(cache=True)
def _tbl_find(tbl: npt.NDArray[np.int64], key: np.uint64) -> int:
    mask = (tbl.shape[0] >> 2) - 1
    i = _home(key, mask)
    k = np.int64(key)
    while tbl[4 * i + 3] != _EMPTY_META:
        if tbl[4 * i] == k:
            return i
        i = (i + 1) & mask
    return -1


@njit(cache=True)
def _tbl_put(
    tbl: npt.NDArray[np.int64], key: np.uint64, price: int, shares: int, meta: int
) -> None:
    mask = (tbl.shape[0] >> 2) - 1
    i = _home(key, mask)
    while tbl[4 * i + 3] != _EMPTY_META:
        i = (i + 1) & mask
    tbl[4 * i] = np.int64(key)
    tbl[4 * i + 1] = price
    tbl[4 * i + 2] = shares
    tbl[4 * i + 3] = meta


@njit(cache=True)
def _tbl_add(
    tbl: npt.NDArray[np.int64], key: np.uint64, price: int, shares: int, meta: int
) -> bool:
    """Insert a new key in one probe sequence; False (and no change) if it is live already."""
    mask = (tbl.shape[0] >> 2) - 1
    i = _home(key, mask)
    k = np.int64(key)
    while tbl[4 * i + 3] != _EMPTY_META:
        if tbl[4 * i] == k:
            return False
        i = (i + 1) & mask
    tbl[4 * i] = k
    tbl[4 * i + 1] = price
    tbl[4 * i + 2] = shares
    tbl[4 * i + 3] = meta
    return True


@njit(cache=True)
def _tbl_del(tbl: npt.NDArray[np.int64], slot: int) -> None:
    """Remove ``slot`` by backward shift, so no tombstones ever slow later probes."""
    mask = (tbl.shape[0] >> 2) - 1
    i = slot
    j = slot
    while True:
        j = (j + 1) & mask
        if tbl[4 * j + 3] == _EMPTY_META:
            break
        h = _home(np.uint64(tbl[4 * j]), mask)
        # entry j may move to the hole at i only if its home is not in (i, j] (cyclically)
        if (i <= j and (h <= i or h > j)) or (i > j and h <= i and h > j):
            tbl[4 * i] = tbl[4 * j]
            tbl[4 * i + 1] = tbl[4 * j + 1]
            tbl[4 * i + 2] = tbl[4 * j + 2]
            tbl[4 * i + 3] = tbl[4 * j + 3]
            i = j
    tbl[4 * i + 3] = _EMPTY_META


@njit(cache=True)
def _tbl_grow(tbl: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    cap = tbl.shape[0] >> 2
    new = np.zeros(cap * 8, np.int64)
    for i in range(cap):
        if tbl[4 * i + 3] != _EMPTY_META:
            _tbl_put(new, np.uint64(tbl[4 * i]), tbl[4 * i + 1], tbl[4 * i + 2], tbl[4 * i + 3])
    return new


# --- pass 2 -------------------------------------------------------------------------------
_F_S = np.array([11], np.int64)
_F_R = np.array([19, 20, 25, 26, 27, 28, 29], np.int64)
_F_H = np.array([19, 20, 21, 22, 23, 24], np.int64)
_F_1 = np.array([19], np.int64)  # Y action, N interest flag, h market code
_F_L = np.array([11, 12, 13, 14, 23, 24, 25], np.int64)
_F_K = np.array([23], np.int64)
_F_h = np.array([19, 20], np.int64)
_F_I = np.array([27, 48, 49], np.int64)
_F_Q = np.array([39], np.int64)
_F_NONE = np.zeros(0, np.int64)


@njit(cache=True)
def decode_nb(
    buf: npt.NDArray[np.uint8],
    offs: npt.NDArray[np.int64],
    status: npt.NDArray[np.int8],
    msg_local_ts: npt.NDArray[np.int64],
    base_ns: int,
    price_step: int,
    qty_step: int,
    ev: npt.NDArray[np.void],
    tbl: npt.NDArray[np.int64],
    first_stock: npt.NDArray[np.int64],
) -> tuple[int, npt.NDArray[np.int64]]:
    """Decode the ``MSG_OK`` messages into ``ev`` (EVENT_DTYPE); reject codes go into ``status``.

    ``msg_local_ts`` is empty for files (local = exchange time) or one capture time per
    message. ``price_step``/``qty_step`` are the tick and lot in source units (1/10000 $,
    shares). ``ev`` must hold the OK messages plus the OK ``U`` messages (which make two
    events). Events carry the stock locate in ``instrument``; the caller splits by it.
    ``tbl`` is the order table (zeroed here; a power-of-two multiple of 4 slots, grown when
    half full) and ``first_stock[locate]`` gets the index of the locate's first message with
    a Stock field (-1 if none), for naming instruments. Returns (events written, table).
    """
    tbl[:] = 0
    first_stock[:] = -1
    j, tbl, _ = decode_more_nb(buf, offs, status, msg_local_ts, base_ns, price_step, qty_step,
                               ev, tbl, first_stock, 0)
    return j, tbl


@njit(cache=True)
def decode_more_nb(
    buf: npt.NDArray[np.uint8],
    offs: npt.NDArray[np.int64],
    status: npt.NDArray[np.int8],
    msg_local_ts: npt.NDArray[np.int64],
    base_ns: int,
    price_step: int,
    qty_step: int,
    ev: npt.NDArray[np.void],
    tbl: npt.NDArray[np.int64],
    first_stock: npt.NDArray[np.int64],
    live: int,
) -> tuple[int, npt.NDArray[np.int64], int]:
    """:func:`decode_nb` continuing a stream: ``tbl`` and ``first_stock`` keep the state of
    the messages decoded before (a feed handler decodes packet after packet) and ``live`` is
    the number of orders ``tbl`` holds. Returns (events written, table, live orders)."""
    has_local = msg_local_ts.shape[0] > 0
    j = 0
    for m in range(offs.shape[0]):
        if status[m] != MSG_OK:
            continue
        o = offs[m]
        t = buf[o]
        locate = _u16(buf, o + 1)
        ts = base_ns + _u48(buf, o + 5)
        lts = msg_local_ts[m] if has_local else ts
        if STOCK_OFFSET[t] != 0:
            if not _printable(buf, o + STOCK_OFFSET[t]):
                status[m] = MSG_BAD_SYMBOL
                continue
            if first_stock[locate] < 0:
                first_stock[locate] = m
        j0 = j
        if t == 65 or t == 70:  # A, F: add order
            key = _u64(buf, o + 11)
            sb = buf[o + 19]
            shares = _u32(buf, o + 20)
            raw = _u32(buf, o + 32)
            if sb != 66 and sb != 83:
                status[m] = MSG_BAD_SIDE
                continue
            if shares <= 0:
                status[m] = MSG_NON_POSITIVE
                continue
            if (price_step != 1 and raw % price_step != 0):
                status[m] = MSG_OFF_TICK
                continue
            if (qty_step != 1 and shares % qty_step != 0):
                status[m] = MSG_OFF_LOT
                continue
            s = BUY if sb == 66 else SELL
            if 2 * (live + 1) > (tbl.shape[0] >> 2):
                tbl = _tbl_grow(tbl)
            if not _tbl_add(tbl, key, raw, shares, 1 | ((s + 1) << 1) | (locate << 8)):
                status[m] = MSG_DUPLICATE_ID
                continue
            live += 1
            ev[j].kind = KIND_ADD
            ev[j].side = s
            ev[j].price = _div(raw, price_step)
            ev[j].qty = _div(shares, qty_step)
            ev[j].order_id = key
            ev[j].flags = 0
            ev[j].instrument = locate
            j += 1
        elif t == 69 or t == 67 or t == 88:  # E, C, X: decrements of a resting order
            key = _u64(buf, o + 11)
            shares = _u32(buf, o + 19)
            slot = _tbl_find(tbl, key)
            if slot < 0:
                status[m] = MSG_UNKNOWN_ID
                continue
            if shares <= 0:
                status[m] = MSG_NON_POSITIVE
                continue
            if (qty_step != 1 and shares % qty_step != 0):
                status[m] = MSG_OFF_LOT
                continue
            rem = tbl[4 * slot + 2]
            if shares > rem:
                status[m] = MSG_OVERFILL
                continue
            meta = tbl[4 * slot + 3]
            fl = 0
            if t == 67:
                raw = _u32(buf, o + 32)
                if (price_step != 1 and raw % price_step != 0):
                    status[m] = MSG_OFF_TICK
                    continue
                if buf[o + 31] == 78:  # Printable 'N'
                    fl = FLAG_NON_PRINTABLE
                ev[j].kind = KIND_EXECUTE
            else:
                raw = tbl[4 * slot + 1]
                ev[j].kind = KIND_EXECUTE if t == 69 else KIND_CANCEL
            ev[j].side = ((meta >> 1) & 3) - 1
            ev[j].price = _div(raw, price_step)
            ev[j].qty = _div(shares, qty_step)
            ev[j].order_id = key
            ev[j].flags = fl
            ev[j].instrument = (meta >> 8) & 0xFFFF
            j += 1
            if shares == rem:  # the order is dead once its shares reach zero (spec §4.4)
                _tbl_del(tbl, slot)
                live -= 1
            else:
                tbl[4 * slot + 2] = rem - shares
        elif t == 68:  # D
            key = _u64(buf, o + 11)
            slot = _tbl_find(tbl, key)
            if slot < 0:
                status[m] = MSG_UNKNOWN_ID
                continue
            meta = tbl[4 * slot + 3]
            ev[j].kind = KIND_DELETE
            ev[j].side = ((meta >> 1) & 3) - 1
            ev[j].price = _div(tbl[4 * slot + 1], price_step)
            ev[j].qty = _div(tbl[4 * slot + 2], qty_step)
            ev[j].order_id = key
            ev[j].flags = 0
            ev[j].instrument = (meta >> 8) & 0xFFFF
            j += 1
            _tbl_del(tbl, slot)
            live -= 1
        elif t == 85:  # U: delete old + add new, side and stock carried over
            key = _u64(buf, o + 11)
            nkey = _u64(buf, o + 19)
            shares = _u32(buf, o + 27)
            raw = _u32(buf, o + 31)
            slot = _tbl_find(tbl, key)
            if slot < 0:
                status[m] = MSG_UNKNOWN_ID
                continue
            if shares <= 0:
                status[m] = MSG_NON_POSITIVE
                continue
            if (price_step != 1 and raw % price_step != 0):
                status[m] = MSG_OFF_TICK
                continue
            if (qty_step != 1 and shares % qty_step != 0):
                status[m] = MSG_OFF_LOT
                continue
            if nkey != key and _tbl_find(tbl, nkey) >= 0:
                status[m] = MSG_DUPLICATE_ID
                continue
            meta = tbl[4 * slot + 3]
            s = ((meta >> 1) & 3) - 1
            sloc = (meta >> 8) & 0xFFFF
            ev[j].kind = KIND_DELETE
            ev[j].side = s
            ev[j].price = _div(tbl[4 * slot + 1], price_step)
            ev[j].qty = _div(tbl[4 * slot + 2], qty_step)
            ev[j].order_id = key
            ev[j].flags = FLAG_REPLACE
            ev[j].instrument = sloc
            j += 1
            _tbl_del(tbl, slot)
            _tbl_put(tbl, nkey, raw, shares, meta)
            ev[j].kind = KIND_ADD
            ev[j].side = s
            ev[j].price = _div(raw, price_step)
            ev[j].qty = _div(shares, qty_step)
            ev[j].order_id = nkey
            ev[j].flags = FLAG_REPLACE
            ev[j].instrument = sloc
            j += 1
        elif t == 80:  # P: trade against a non-displayed order
            shares = _u32(buf, o + 20)
            raw = _u32(buf, o + 32)
            if shares <= 0:
                status[m] = MSG_NON_POSITIVE
                continue
            if (price_step != 1 and raw % price_step != 0):
                status[m] = MSG_OFF_TICK
                continue
            if (qty_step != 1 and shares % qty_step != 0):
                status[m] = MSG_OFF_LOT
                continue
            ev[j].kind = KIND_TRADE
            ev[j].side = NO_SIDE  # the indicator is always 'B' since 2014 (spec): no information
            ev[j].price = _div(raw, price_step)
            ev[j].qty = _div(shares, qty_step)
            ev[j].order_id = _u64(buf, o + 11)
            ev[j].flags = FLAG_HIDDEN
            ev[j].instrument = locate
            j += 1
        elif t == 81:  # Q: cross trade (qshares are 8 bytes)
            qshares: int = np.int64(_u64(buf, o + 11))  # type: ignore[assignment]
            raw = _u32(buf, o + 27)
            if qshares < 0:
                status[m] = MSG_NON_POSITIVE
                continue
            if (price_step != 1 and raw % price_step != 0):
                status[m] = MSG_OFF_TICK
                continue
            if (qty_step != 1 and qshares % qty_step != 0):
                status[m] = MSG_OFF_LOT
                continue
            if qshares == 0:  # a cross with no volume: keep the cross price as information
                ev[j].kind = KIND_STATUS
                ev[j].qty = STATUS_INFO
            else:
                ev[j].kind = KIND_TRADE
                ev[j].qty = _div(qshares, qty_step)
            ev[j].side = NO_SIDE
            ev[j].price = _div(raw, price_step)
            ev[j].order_id = _pack(buf, o, _F_Q)
            ev[j].flags = FLAG_AUCTION
            ev[j].instrument = locate
            j += 1
        else:  # administrative messages -> KIND_STATUS
            code = STATUS_INFO
            p = 0
            if t == 83:  # S
                c = buf[o + 11]
                if c == 79:
                    code = STATUS_START_OF_MESSAGES
                elif c == 83:
                    code = STATUS_PRE_OPEN
                elif c == 81:
                    code = STATUS_OPEN
                elif c == 77:
                    code = STATUS_CLOSED
                elif c == 69:
                    code = STATUS_END_OF_SYSTEM
                elif c == 67:
                    code = STATUS_END_OF_MESSAGES
                else:
                    code = STATUS_UNKNOWN
                raw_code = _pack(buf, o, _F_S)
            elif t == 72:  # H
                c = buf[o + 19]
                if c == 72:
                    code = STATUS_HALTED
                elif c == 80:
                    code = STATUS_PAUSED
                elif c == 81:
                    code = STATUS_QUOTING
                elif c == 84:
                    code = STATUS_OPEN
                else:
                    code = STATUS_UNKNOWN
                raw_code = _pack(buf, o, _F_H)
            elif t == 104:  # h: operational halt; only market code 'Q' (Nasdaq) is our book
                if buf[o + 19] == 81 and buf[o + 20] == 72:
                    code = STATUS_HALTED
                elif buf[o + 19] == 81 and buf[o + 20] == 84:
                    code = STATUS_OPEN
                raw_code = _pack(buf, o, _F_h)
            elif t == 82:  # R
                raw_code = _pack(buf, o, _F_R)
            elif t == 89 or t == 78:  # Y, N
                raw_code = _pack(buf, o, _F_1)
            elif t == 76:  # L
                raw_code = _pack(buf, o, _F_L)
            elif t == 87:  # W
                raw_code = _pack(buf, o, _F_S)
            elif t == 75:  # K: IPO price
                raw_code = _pack(buf, o, _F_K)
                p = _u32(buf, o + 24)
            elif t == 74:  # J: auction collar reference price
                raw_code = _pack(buf, o, _F_NONE)
                p = _u32(buf, o + 19)
            elif t == 73:  # I: NOII current reference price
                raw_code = _pack(buf, o, _F_I)
                p = _u32(buf, o + 44)
            elif t == 66:  # B: broken trade, match number in the low 7 bytes
                raw_code = (np.uint64(66) << np.uint64(56)) | (
                    _u64(buf, o + 11) & np.uint64(0x00FFFFFFFFFFFFFF)
                )
            else:  # V
                raw_code = _pack(buf, o, _F_NONE)
            ev[j].kind = KIND_STATUS
            ev[j].side = NO_SIDE
            ev[j].price = _div(p, price_step)  # informational prices are floored onto the tick grid
            ev[j].qty = code
            ev[j].order_id = raw_code
            ev[j].flags = 0
            ev[j].instrument = locate
            j += 1
        for q in range(j0, j):
            ev[q].exch_ts = ts
            ev[q].local_ts = lts
        ev[j - 1].flags = ev[j - 1].flags | FLAG_LAST
    return j, tbl, live
