"""Event records (EVENT_DTYPE rows of one instrument) to NASDAQ ITCH 5.0 messages.

The inverse of the framework's compiled decoder (:mod:`framework.ingest.itch_nb`): decoding
what this writes gives back the same events for every event ITCH can say as is (``A`` add,
``E``/``C`` execute, ``X`` cancel, ``D`` delete, ``P``/``Q`` trade, ``S``/``H`` status), and
the same book for the rest. Mapping (the choices the book's rules make for us):

* ``KIND_EXECUTE`` at the resting price is ``E``; at another price, or non-printable, ``C``.
* ``KIND_MODIFY``: to a smaller size at the same price (the order keeps its place) ``X`` of
  the difference; otherwise (it loses its place) ``D`` then ``A`` with the same order id; to
  size 0, ``D``. ITCH has no in-place modify and ``U`` would renumber the order.
* ``KIND_CLEAR``: ``D`` of every resting order of the side (both for side 0).
* An ``ADD`` of an id that rests already (the book replaces it) is ``D`` then ``A``. A cancel
  or execution of more than rests takes what rests (the book removes the order at 0) and is
  counted as clamped.
* ``KIND_TRADE`` is ``P`` (``Q`` cross when ``FLAG_AUCTION``); ITCH carries no aggressor side.
* ``KIND_STATUS``: the ``S`` event code or ``H`` trading state of its status code, taking the
  raw ITCH bytes from ``order_id`` when an ITCH import put them there. Informational statuses
  (Reg SHO, directory, NOII, ...) have no book meaning and are skipped, counted.
* Events the book would ignore (unknown order id, non-positive size, no side, L2 kinds) are
  skipped and counted by reason: an L2 day goes through :mod:`live.venue.replay` first.

Prices are written as ``price * price_step`` (ITCH's 1/10000 $ units), sizes as
``qty * qty_step`` shares, times as ns since the day's New York midnight (``base_ns``); a
value ITCH cannot hold (negative, over 32 bits, time outside the day) stops the encode with
an error naming the event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit, types
from numba.typed import Dict

from framework.core.errors import ConfigError, DataError
from framework.core.events import (
    FLAG_AUCTION,
    FLAG_LAST,
    FLAG_NON_PRINTABLE,
    KIND_ADD,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_MODIFY,
    KIND_STATUS,
    KIND_TRADE,
    STATUS_CLOSED,
    STATUS_END_OF_MESSAGES,
    STATUS_END_OF_SYSTEM,
    STATUS_HALTED,
    STATUS_OPEN,
    STATUS_PAUSED,
    STATUS_PRE_OPEN,
    STATUS_QUOTING,
    STATUS_START_OF_MESSAGES,
    EventArray,
)
from framework.core.timeutil import midnight_ns

NY: Final = "America/New_York"
ITCH_PRICE_SCALE: Final = 10_000
#: largest message this encoder writes plus its 2-byte length prefix
_MAX_FRAMED = 46

# --- per-event outcome codes -------------------------------------------------------------
ENC_OK: Final = 0
ENC_UNKNOWN_ID: Final = 1
ENC_NON_POSITIVE: Final = 2
ENC_NO_SIDE: Final = 3
ENC_NOT_L3: Final = 4
ENC_INFO_STATUS: Final = 5
ENC_CLAMPED: Final = 6
ENC_PRICE_RANGE: Final = 7
ENC_QTY_RANGE: Final = 8
ENC_TIME_RANGE: Final = 9
ENC_REASONS: Final[dict[int, str]] = {
    ENC_UNKNOWN_ID: "cancel/execute/delete/modify of an order not resting (the book ignores it)",
    ENC_NON_POSITIVE: "add or trade of a non-positive size (the book ignores it)",
    ENC_NO_SIDE: "add with no side (the book ignores it)",
    ENC_NOT_L3: "L2/L1 event (level, bbo): replay L2 days through live.venue.replay",
    ENC_INFO_STATUS: "informational status with no ITCH S/H form (no book effect)",
    ENC_CLAMPED: "cancel/execute of more than rests, sent as the shares that rest",
    ENC_PRICE_RANGE: "price outside ITCH's Price(4) range 0..429496.7295",
    ENC_QTY_RANGE: "size outside ITCH's 32-bit share count",
    ENC_TIME_RANGE: "timestamp outside the day (ITCH times are 0..2^48 ns after midnight)",
}
#: outcomes that stop the encode: the value does not fit the wire
FATAL: Final = frozenset({ENC_PRICE_RANGE, ENC_QTY_RANGE, ENC_TIME_RANGE})

_S_CODE = np.zeros(16, np.uint8)  # status code -> S event code (0: none)
for _c, _b in ((STATUS_START_OF_MESSAGES, "O"), (STATUS_PRE_OPEN, "S"), (STATUS_OPEN, "Q"),
               (STATUS_CLOSED, "M"), (STATUS_END_OF_SYSTEM, "E"), (STATUS_END_OF_MESSAGES, "C")):
    _S_CODE[_c] = ord(_b)
_H_STATE = np.zeros(16, np.uint8)  # status code -> H trading state (0: none)
for _c, _b in ((STATUS_HALTED, "H"), (STATUS_PAUSED, "P"), (STATUS_QUOTING, "Q"),
               (STATUS_OPEN, "T")):
    _H_STATE[_c] = ord(_b)

_ORDER_VALUE = types.UniTuple(types.int64, 3)  # (price raw, shares, side)


@njit(cache=True, inline="always")
def _put(b: npt.NDArray[np.uint8], o: int, v: int, n: int) -> None:
    for k in range(n):
        b[o + n - 1 - k] = (v >> (8 * k)) & 0xFF


@njit(cache=True, inline="always")
def _put_u64(b: npt.NDArray[np.uint8], o: int, v: np.uint64) -> None:
    for k in range(8):
        b[o + 7 - k] = np.uint8((v >> np.uint64(8 * k)) & np.uint64(0xFF))


@njit(cache=True, inline="always")
def _head(b: npt.NDArray[np.uint8], p: int, ln: int, t: int, locate: int, track: int,
          ts: int) -> int:
    """Length prefix and common header at ``p``; returns the message's offset."""
    _put(b, p, ln, 2)
    o = p + 2
    b[o] = t
    _put(b, o + 1, locate, 2)
    _put(b, o + 3, track, 2)
    _put(b, o + 5, ts, 6)
    return o


@njit(cache=True)
def _grow(b: npt.NDArray[np.uint8], need: int) -> npt.NDArray[np.uint8]:
    new = np.empty(max(2 * b.shape[0], need), np.uint8)
    new[: b.shape[0]] = b
    return new


@njit(cache=True)
def _grow_i(a: npt.NDArray[np.int64], need: int) -> npt.NDArray[np.int64]:
    new = np.empty(max(2 * a.shape[0], need), np.int64)
    new[: a.shape[0]] = a
    return new


@njit(cache=True)
def encode_events_nb(
    ev: npt.NDArray[np.void],
    base_ns: int,
    price_step: int,
    qty_step: int,
    locate: int,
    stock: npt.NDArray[np.uint8],
    status: npt.NDArray[np.int8],
    book: Any,
    match_no: npt.NDArray[np.uint64],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64], int, int]:
    """Encode ``ev`` as length-prefixed ITCH messages (BinaryFILE framing).

    ``book`` (a typed dict order id -> (price, shares, side), :func:`new_order_table`) and
    ``match_no[0]`` (the next match number) carry the state from one call to the next.

    Returns ``(buf, ends, src, messages, bytes)``: message ``k`` with its prefix is
    ``buf[ends[k - 1]:ends[k]]`` (``ends[-1]`` = 0) and came from event ``src[k]``.
    ``status[i]`` gets each event's outcome (``ENC_*``); a fatal one stops the encode there.
    """
    n = ev.shape[0]
    buf: npt.NDArray[np.uint8] = np.empty(max(64, n * 40), np.uint8)
    ends: npt.NDArray[np.int64] = np.empty(max(16, n + 16), np.int64)
    src: npt.NDArray[np.int64] = np.empty(max(16, n + 16), np.int64)
    p = 0
    m = 0
    match = match_no[0]
    for i in range(n):
        e = ev[i]
        status[i] = ENC_OK
        kind = e.kind
        ts = e.exch_ts - base_ns
        if ts < 0 or ts >= (1 << 48):
            status[i] = ENC_TIME_RANGE
            break
        key = np.int64(e.order_id)
        if kind == KIND_ADD or kind == KIND_MODIFY or kind == KIND_TRADE:
            raw = e.price * price_step
            if raw < 0 or raw > 0xFFFFFFFF:
                status[i] = ENC_PRICE_RANGE
                break
        else:
            raw = 0
        shares = e.qty * qty_step
        if (kind != KIND_STATUS and kind != KIND_CLEAR and kind != KIND_DELETE
                and shares > 0xFFFFFFFF):
            status[i] = ENC_QTY_RANGE
            break
        # room for the most a non-clear event writes (two messages); clears grow below
        if p + 2 * _MAX_FRAMED > buf.shape[0]:
            buf = _grow(buf, p + 2 * _MAX_FRAMED)
        if m + 2 > ends.shape[0]:
            ends = _grow_i(ends, m + 2)
            src = _grow_i(src, m + 2)
        if kind == KIND_ADD or kind == KIND_MODIFY:
            if kind == KIND_ADD and (shares <= 0 or e.side == 0):
                status[i] = ENC_NON_POSITIVE if shares <= 0 else ENC_NO_SIDE
                continue
            side = np.int64(e.side)
            if key in book:
                old = book[key]
                side = old[2] if kind == KIND_MODIFY else side
                if kind == KIND_MODIFY and shares > 0 and raw == old[0] and shares <= old[1]:
                    if shares < old[1]:  # smaller at the same price: keeps its place
                        o = _head(buf, p, 23, 88, locate, 0, ts)
                        _put_u64(buf, o + 11, np.uint64(key))
                        _put(buf, o + 19, old[1] - shares, 4)
                        p += 25
                        ends[m] = p
                        src[m] = i
                        m += 1
                        book[key] = (raw, shares, side)
                    continue
                o = _head(buf, p, 19, 68, locate, 0, ts)  # D: it loses its place
                _put_u64(buf, o + 11, np.uint64(key))
                p += 21
                ends[m] = p
                src[m] = i
                m += 1
                del book[key]
            elif kind == KIND_MODIFY:
                status[i] = ENC_UNKNOWN_ID
                continue
            if shares <= 0:  # modify to nothing: the delete was all
                continue
            o = _head(buf, p, 36, 65, locate, 0, ts)
            _put_u64(buf, o + 11, np.uint64(key))
            buf[o + 19] = 66 if side > 0 else 83
            _put(buf, o + 20, shares, 4)
            for k in range(8):
                buf[o + 24 + k] = stock[k]
            _put(buf, o + 32, raw, 4)
            p += 38
            ends[m] = p
            src[m] = i
            m += 1
            book[key] = (raw, shares, side)
        elif kind == KIND_EXECUTE or kind == KIND_CANCEL:
            if key not in book:
                status[i] = ENC_UNKNOWN_ID
                continue
            old = book[key]
            if shares <= 0:
                status[i] = ENC_NON_POSITIVE
                continue
            if shares > old[1]:
                status[i] = ENC_CLAMPED
                shares = old[1]
            if kind == KIND_CANCEL:
                o = _head(buf, p, 23, 88, locate, 0, ts)
                _put_u64(buf, o + 11, np.uint64(key))
                _put(buf, o + 19, shares, 4)
                p += 25
            else:
                xraw = e.price * price_step
                if xraw < 0 or xraw > 0xFFFFFFFF:
                    status[i] = ENC_PRICE_RANGE
                    break
                if xraw == old[0] and (e.flags & FLAG_NON_PRINTABLE) == 0:
                    o = _head(buf, p, 31, 69, locate, 0, ts)
                    p += 33
                else:
                    o = _head(buf, p, 36, 67, locate, 0, ts)
                    buf[o + 31] = 78 if (e.flags & FLAG_NON_PRINTABLE) else 89
                    _put(buf, o + 32, xraw, 4)
                    p += 38
                _put_u64(buf, o + 11, np.uint64(key))
                _put(buf, o + 19, shares, 4)
                _put_u64(buf, o + 23, match)
                match += np.uint64(1)
            ends[m] = p
            src[m] = i
            m += 1
            if shares == old[1]:
                del book[key]
            else:
                book[key] = (old[0], old[1] - shares, old[2])
        elif kind == KIND_DELETE:
            if key not in book:
                status[i] = ENC_UNKNOWN_ID
                continue
            o = _head(buf, p, 19, 68, locate, 0, ts)
            _put_u64(buf, o + 11, np.uint64(key))
            p += 21
            ends[m] = p
            src[m] = i
            m += 1
            del book[key]
        elif kind == KIND_CLEAR:
            gone = []
            for k, v in book.items():
                if e.side == 0 or v[2] == e.side:
                    gone.append(k)
            if p + len(gone) * 21 > buf.shape[0]:
                buf = _grow(buf, p + len(gone) * 21)
            if m + len(gone) > ends.shape[0]:
                ends = _grow_i(ends, m + len(gone))
                src = _grow_i(src, m + len(gone))
            for k in gone:
                o = _head(buf, p, 19, 68, locate, 0, ts)
                _put_u64(buf, o + 11, np.uint64(k))
                p += 21
                ends[m] = p
                src[m] = i
                m += 1
                del book[k]
        elif kind == KIND_TRADE:
            if shares <= 0:
                status[i] = ENC_NON_POSITIVE
                continue
            if e.flags & FLAG_AUCTION:
                o = _head(buf, p, 40, 81, locate, 0, ts)
                _put_u64(buf, o + 11, np.uint64(shares))
                for k in range(8):
                    buf[o + 19 + k] = stock[k]
                _put(buf, o + 27, raw, 4)
                _put_u64(buf, o + 31, match)
                oid = np.uint64(e.order_id)
                ctype = np.uint8((oid >> np.uint64(48)) & np.uint64(0xFF))
                buf[o + 39] = ctype if (oid >> np.uint64(56)) == np.uint64(81) else 79
                p += 42
            else:
                o = _head(buf, p, 44, 80, locate, 0, ts)
                _put_u64(buf, o + 11, np.uint64(e.order_id))
                buf[o + 19] = 66  # always 'B' since 2014 (spec)
                _put(buf, o + 20, shares, 4)
                for k in range(8):
                    buf[o + 24 + k] = stock[k]
                _put(buf, o + 32, raw, 4)
                _put_u64(buf, o + 36, match)
                p += 46
            match += np.uint64(1)
            ends[m] = p
            src[m] = i
            m += 1
        elif kind == KIND_STATUS:
            code = e.qty
            oid = np.uint64(e.order_id)
            top = np.int64(oid >> np.uint64(56))
            c = 0 if code < 0 or code >= 16 else code
            if top == 83 or (top != 72 and _S_CODE[c] != 0 and (
                    c == STATUS_OPEN or _H_STATE[c] == 0)):
                o = _head(buf, p, 12, 83, 0, 0, ts)  # S: locate 0, a system event
                if top == 83:  # the raw event code of an ITCH import
                    buf[o + 11] = np.uint8((oid >> np.uint64(48)) & np.uint64(0xFF))
                else:
                    buf[o + 11] = _S_CODE[c]
                p += 14
            elif top == 72 or _H_STATE[c] != 0:
                o = _head(buf, p, 25, 72, locate, 0, ts)
                for k in range(8):
                    buf[o + 11 + k] = stock[k]
                if top == 72:  # the raw state, reserved and reason bytes of an ITCH import
                    for k in range(6):
                        buf[o + 19 + k] = np.uint8(
                            (oid >> np.uint64(48 - 8 * k)) & np.uint64(0xFF))
                else:
                    buf[o + 19] = _H_STATE[c]
                    for k in range(5):
                        buf[o + 20 + k] = 32
                p += 27
            else:
                status[i] = ENC_INFO_STATUS
                continue
            ends[m] = p
            src[m] = i
            m += 1
        else:
            status[i] = ENC_NOT_L3
    match_no[0] = match
    return buf, ends, src, m, p


def new_order_table() -> Any:
    """The encoder's table of resting orders (empty)."""
    return Dict.empty(key_type=types.int64, value_type=_ORDER_VALUE)


def price_qty_steps(tick_size: Decimal, lot_size: Decimal) -> tuple[int, int]:
    """ITCH price units (1/10000 $) per tick and shares per lot, or a ConfigError."""
    step = Decimal(tick_size) * ITCH_PRICE_SCALE
    if step <= 0 or step != step.to_integral_value():
        msg = (f"tick size {tick_size} is not a whole number of ITCH's price unit 0.0001; "
               "ITCH cannot carry this instrument's prices")
        raise ConfigError(msg)
    lot = Decimal(lot_size)
    if lot <= 0 or lot != lot.to_integral_value():
        msg = f"lot size {lot_size} is not a whole number of shares; ITCH cannot carry it"
        raise ConfigError(msg)
    return int(step), int(lot)


def stock_field(symbol: str) -> bytes:
    """The 8-byte Stock field: ASCII, left-justified, space padded."""
    raw = symbol.encode("ascii", "replace")[:8]
    if not raw or any(c < 33 or c > 126 for c in raw):
        msg = f"symbol {symbol!r} has no printable ASCII form for ITCH's Stock field"
        raise ConfigError(msg)
    return raw.ljust(8, b" ")


@dataclass
class ItchStream:
    """ITCH messages in BinaryFILE framing (2-byte length + message), one buffer."""

    buf: npt.NDArray[np.uint8]
    ends: npt.NDArray[np.int64]  #: end offset of each framed message
    src: npt.NDArray[np.int64]  #: index of the event each message came from (-1: preamble)
    skipped: dict[str, int] = field(default_factory=dict)  #: events not sent, by reason
    clamped: int = 0

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    @property
    def starts(self) -> npt.NDArray[np.int64]:
        return np.concatenate([[0], self.ends[:-1]]).astype(np.int64)

    def message(self, k: int) -> bytes:
        """Message ``k`` without its length prefix."""
        a = 0 if k == 0 else int(self.ends[k - 1])
        return self.buf[a + 2 : int(self.ends[k])].tobytes()

    def messages(self) -> list[bytes]:
        return [self.message(k) for k in range(len(self))]


class ItchEncoder:
    """Encodes one instrument's events call after call, keeping the resting orders (so a
    later execution finds the order an earlier call added) and the match numbers."""

    def __init__(self, *, date: dt.date, symbol: str, price_step: int = 1, qty_step: int = 1,
                 locate: int = 1) -> None:
        self.base = midnight_ns(date, NY)
        self.stock = np.frombuffer(stock_field(symbol), np.uint8).copy()
        self.price_step, self.qty_step, self.locate = int(price_step), int(qty_step), int(locate)
        self.book = new_order_table()
        self.match_no = np.ones(1, np.uint64)

    def encode(self, events: EventArray, *, preamble: bool = False) -> ItchStream:
        """The messages of ``events`` (a DataError names the first event ITCH cannot hold)."""
        return _encode(self, events, preamble)


def encode_events(
    events: EventArray, *, date: dt.date, symbol: str, price_step: int = 1,
    qty_step: int = 1, locate: int = 1, preamble: bool = True,
) -> ItchStream:
    """Encode one instrument's events as ITCH 5.0; with ``preamble`` the stream starts with a
    Stock Directory (``R``) message naming ``symbol`` for ``locate``, so a handler joining
    the feed can name the book."""
    enc = ItchEncoder(date=date, symbol=symbol, price_step=price_step, qty_step=qty_step,
                      locate=locate)
    return enc.encode(events, preamble=preamble)


def _encode(enc: ItchEncoder, events: EventArray, preamble: bool) -> ItchStream:
    base, stock, locate = enc.base, enc.stock, enc.locate
    status = np.zeros(len(events), np.int8)
    buf, ends, src, m, p = encode_events_nb(np.ascontiguousarray(events), base, enc.price_step,
                                            enc.qty_step, locate, stock, status, enc.book,
                                            enc.match_no)
    bad = np.flatnonzero(np.isin(status, list(FATAL)))
    if bad.shape[0]:
        i = int(bad[0])
        e = events[i]
        msg = (f"event {i:,} (kind {int(e['kind'])}, price {int(e['price'])}, qty "
               f"{int(e['qty'])}, exch_ts {int(e['exch_ts'])}): {ENC_REASONS[int(status[i])]}; "
               "ITCH cannot carry it (check the instrument's tick/lot size and the date)")
        raise DataError(msg)
    codes = np.bincount(status.astype(np.int64), minlength=len(ENC_REASONS) + 1)
    skipped = {ENC_REASONS[c]: int(n) for c, n in enumerate(codes.tolist())
               if c not in (ENC_OK, ENC_CLAMPED) and n}
    out_buf, out_ends, out_src = buf[:p], ends[:m], src[:m]
    if preamble:
        ts = int(events["exch_ts"][0]) - base if len(events) else 0
        pre = _directory(stock.tobytes(), locate, max(0, ts))
        out_buf = np.concatenate([np.frombuffer(pre, np.uint8), out_buf])
        out_ends = np.concatenate([[len(pre)], out_ends + len(pre)]).astype(np.int64)
        out_src = np.concatenate([[-1], out_src]).astype(np.int64)
    return ItchStream(out_buf, out_ends, out_src, skipped, int(codes[ENC_CLAMPED]))


def _directory(stock: bytes, locate: int, ts: int) -> bytes:
    """A Stock Directory message: Nasdaq Global Select, normal, round lot 100, common stock."""
    body = (b"R" + locate.to_bytes(2, "big") + b"\0\0" + ts.to_bytes(6, "big") + stock
            + b"QN" + (100).to_bytes(4, "big") + b"NCZ PNN N" + b"\0\0\0\0" + b"N")
    assert len(body) == 39
    return len(body).to_bytes(2, "big") + body


def last_message_of_event(stream: ItchStream, events: EventArray) -> npt.NDArray[np.bool_]:
    """Per message: it is the last message of an event carrying ``FLAG_LAST`` (after it the
    source's book is consistent, so a packet may end there)."""
    src = stream.src
    out = np.zeros(len(stream), np.bool_)
    if not len(stream):
        return out
    nxt = np.concatenate([src[1:], [-2]])
    last_of_event = nxt != src
    valid = src >= 0
    flags = np.zeros(len(stream), np.uint32)
    flags[valid] = events["flags"][src[valid]]
    out[:] = last_of_event & valid & ((flags & FLAG_LAST) != 0)
    out[~valid] = True  # preamble messages stand alone
    return out
