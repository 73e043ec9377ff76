"""FIX 4.4 tag=value codec: framing with BodyLength and CheckSum, both verified on read.

The project's own codec (not simplefix): the session layer needs every malformed frame
reported rather than parsed loosely, and the order path needs an encoder that meets the
5 µs budget, which a generic field-list builder does not.

A message on the wire is ``8=FIX.4.4|9=<len>|35=<type>|...|10=<sum>|`` (``|`` = SOH).
BodyLength counts the bytes from after its own SOH up to and including the SOH before
``10=``; CheckSum is the sum of every byte before ``10=`` modulo 256, three digits.

:class:`FixReader` cuts a byte stream into :class:`FixMessage` s and reports each frame it
cannot accept as a :class:`~live.wire.frames.BadFrame`: bytes before a BeginString, a
BodyLength that is not a number, does not end at ``10=`` or runs into the next message, a
wrong CheckSum, a field that is not ``tag=value``. After a bad frame it resynchronises at
the next ``8=FIX`` (the rest of that frame is not reported twice).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from live.wire.frames import BadFrame

SOH: Final = b"\x01"
BEGIN: Final = b"FIX.4.4"
MAX_BODY: Final = 1 << 16  #: a BodyLength above this is treated as garbage

# --- message types ----------------------------------------------------------------------------
HEARTBEAT: Final = b"0"
TEST_REQUEST: Final = b"1"
RESEND_REQUEST: Final = b"2"
REJECT: Final = b"3"
SEQUENCE_RESET: Final = b"4"
LOGOUT: Final = b"5"
LOGON: Final = b"A"
NEW_ORDER_SINGLE: Final = b"D"
ORDER_CANCEL_REQUEST: Final = b"F"
ORDER_CANCEL_REPLACE_REQUEST: Final = b"G"
EXECUTION_REPORT: Final = b"8"
ORDER_CANCEL_REJECT: Final = b"9"
ADMIN_TYPES: Final = frozenset({HEARTBEAT, TEST_REQUEST, RESEND_REQUEST, REJECT,
                                SEQUENCE_RESET, LOGOUT, LOGON})

# --- tags -----------------------------------------------------------------------------------
T_AVG_PX: Final = 6
T_BEGIN_SEQ_NO: Final = 7
T_BEGIN_STRING: Final = 8
T_BODY_LENGTH: Final = 9
T_CHECKSUM: Final = 10
T_CL_ORD_ID: Final = 11
T_CUM_QTY: Final = 14
T_END_SEQ_NO: Final = 16
T_EXEC_ID: Final = 17
T_EXEC_INST: Final = 18
T_LAST_PX: Final = 31
T_LAST_QTY: Final = 32
T_MSG_SEQ_NUM: Final = 34
T_MSG_TYPE: Final = 35
T_NEW_SEQ_NO: Final = 36
T_ORDER_ID: Final = 37
T_ORDER_QTY: Final = 38
T_ORD_STATUS: Final = 39
T_ORD_TYPE: Final = 40
T_ORIG_CL_ORD_ID: Final = 41
T_POSS_DUP: Final = 43
T_PRICE: Final = 44
T_REF_SEQ_NUM: Final = 45
T_SENDER: Final = 49
T_SENDING_TIME: Final = 52
T_SIDE: Final = 54
T_SYMBOL: Final = 55
T_TARGET: Final = 56
T_TEXT: Final = 58
T_TIME_IN_FORCE: Final = 59
T_TRANSACT_TIME: Final = 60
T_ENCRYPT_METHOD: Final = 98
T_CXL_REJ_REASON: Final = 102
T_ORD_REJ_REASON: Final = 103
T_HEART_BT_INT: Final = 108
T_TEST_REQ_ID: Final = 112
T_ORIG_SENDING_TIME: Final = 122
T_GAP_FILL: Final = 123
T_RESET_SEQ_NUM: Final = 141
T_EXEC_TYPE: Final = 150
T_LEAVES_QTY: Final = 151
T_REF_TAG_ID: Final = 371
T_REF_MSG_TYPE: Final = 372
T_SESSION_REJECT_REASON: Final = 373
T_CXL_REJ_RESPONSE_TO: Final = 434
T_LAST_LIQUIDITY_IND: Final = 851

_HEADER_TAGS: Final = frozenset({T_BEGIN_STRING, T_BODY_LENGTH, T_MSG_TYPE, T_SENDER,
                                 T_TARGET, T_MSG_SEQ_NUM, T_SENDING_TIME, T_POSS_DUP,
                                 T_ORIG_SENDING_TIME})


class FixError(ValueError):
    """A FIX field is missing or does not hold what it should (``tag``: which, 0 if none)."""

    def __init__(self, msg: str, tag: int = 0, *, missing: bool = False) -> None:
        super().__init__(msg)
        self.tag = tag
        self.missing = missing


@dataclass(frozen=True, slots=True)
class FixMessage:
    """A framed, checksum-verified message; values are raw bytes."""

    msg_type: bytes
    fields: tuple[tuple[int, bytes], ...]  #: every field after BodyLength, CheckSum excluded
    raw: bytes

    def get(self, tag: int) -> bytes | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return None

    def req(self, tag: int) -> bytes:
        v = self.get(tag)
        if v is None:
            msg = f"FIX {self.msg_type.decode(errors='replace')} lacks required tag {tag}"
            raise FixError(msg, tag, missing=True)
        return v

    def get_int(self, tag: int, default: int | None = None) -> int:
        v = self.get(tag)
        if v is None:
            if default is not None:
                return default
            v = self.req(tag)
        try:
            return int(v)
        except ValueError:
            msg = f"FIX tag {tag} holds {v!r}, not an integer"
            raise FixError(msg, tag) from None

    def get_str(self, tag: int, default: str = "") -> str:
        v = self.get(tag)
        return default if v is None else v.decode("latin-1")

    @property
    def seq(self) -> int:
        return self.get_int(T_MSG_SEQ_NUM)

    @property
    def poss_dup(self) -> bool:
        return self.get(T_POSS_DUP) == b"Y"

    def body(self) -> list[tuple[int, bytes]]:
        """The fields that are not part of the standard header."""
        return [(t, v) for t, v in self.fields if t not in _HEADER_TAGS]


def _b(v: bytes | str | int | float) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("latin-1")
    return str(v).encode()


def checksum(data: bytes) -> bytes:
    return b"%03d" % (sum(data) & 0xFF)


def finish(body: bytes, begin: bytes = BEGIN) -> bytes:
    """Wrap ``body`` (``35=...|`` up to the last SOH before CheckSum) into a message."""
    head = b"8=" + begin + b"\x019=" + str(len(body)).encode() + SOH
    msg = head + body
    return msg + b"10=" + checksum(msg) + SOH


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=4)
def _second(sec: int) -> bytes:
    return (_EPOCH + dt.timedelta(seconds=sec)).strftime("%Y%m%d-%H:%M:%S").encode()


def utc_timestamp(ns: int) -> bytes:
    """``YYYYMMDD-HH:MM:SS.sss`` (UTCTimestamp with milliseconds) of ``ns`` since the epoch."""
    sec, rem = divmod(ns, 1_000_000_000)
    return _second(sec) + b".%03d" % (rem // 1_000_000)


def encode(msg_type: bytes, fields: Iterable[tuple[int, bytes | str | int | float]], *,
           seq: int, sender: str | bytes, target: str | bytes, sending_time: bytes,
           poss_dup: bool = False, orig_sending_time: bytes | None = None,
           begin: bytes = BEGIN) -> bytes:
    """A whole message: standard header (35, 49, 56, 34, 52 [, 43, 122]), ``fields``,
    trailer."""
    parts = [b"35=", msg_type, b"\x0149=", _b(sender), b"\x0156=", _b(target), b"\x0134=",
             str(seq).encode(), b"\x0152=", sending_time, SOH]
    if poss_dup:
        parts += [b"43=Y\x01"]
        if orig_sending_time is not None:
            parts += [b"122=", orig_sending_time, SOH]
    for tag, value in fields:
        v = _b(value)
        if SOH in v:
            msg = f"FIX tag {tag} value {v!r} holds the SOH delimiter"
            raise FixError(msg, tag)
        parts += [str(tag).encode(), b"=", v, SOH]
    return finish(b"".join(parts), begin)


def new_order_single(seq: int, sender: bytes, target: bytes, sending_time: bytes,
                     clordid: bytes, side: bytes, qty: int, symbol: bytes, price: bytes,
                     ord_type: bytes = b"2", tif: bytes = b"0",
                     exec_inst: bytes = b"") -> bytes:
    """NewOrderSingle, the hot path (no per-field loop); ``price`` is already text."""
    body = b"".join((
        b"35=D\x0149=", sender, b"\x0156=", target, b"\x0134=", str(seq).encode(),
        b"\x0152=", sending_time, b"\x0111=", clordid, b"\x0121=1\x0155=", symbol,
        b"\x0154=", side, b"\x0160=", sending_time, b"\x0138=", str(qty).encode(),
        b"\x0140=", ord_type, (b"\x0144=" + price) if ord_type != b"1" else b"",
        b"\x0159=", tif, (b"\x0118=" + exec_inst) if exec_inst else b"", SOH,
    ))
    return finish(body)


def _prefix_start(buf: bytearray, pos: int) -> int:
    """Where a trailing partial ``8=FIX`` starts (``len(buf)`` when there is none)."""
    for k in range(min(4, len(buf) - pos), 0, -1):
        if buf[len(buf) - k:] == b"8=FIX"[:k]:
            return len(buf) - k
    return len(buf)


def _digits(b: bytes | bytearray) -> bool:
    return 0 < len(b) <= 9 and all(48 <= c <= 57 for c in b)


class FixReader:
    """Cuts a byte stream into FIX messages (see the module docstring)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skipping = False  #: the rest of a reported bad frame is being skipped

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[FixMessage | BadFrame]:
        out: list[FixMessage | BadFrame] = []
        buf = self._buf
        buf += data
        pos = 0
        while pos < len(buf):
            start = buf.find(b"8=FIX", pos)
            if start < 0:
                keep = _prefix_start(buf, pos)  # a BeginString may be arriving
                if keep > pos and not self._skipping:
                    out.append(BadFrame("bytes outside any FIX message (no BeginString 8=FIX)",
                                        bytes(buf[pos:keep][:64])))
                self._skipping = True
                pos = keep
                break
            if start > pos and not self._skipping:
                out.append(BadFrame("bytes before a BeginString", bytes(buf[pos:start][:64])))
            pos = start
            self._skipping = False
            soh1 = buf.find(SOH, start)
            if soh1 < 0:
                if len(buf) - start > 32:
                    out.append(BadFrame("BeginString without a delimiter",
                                        bytes(buf[start:start + 64])))
                    pos = start + 1
                    self._skipping = True
                    continue
                break
            if buf[soh1 + 1:soh1 + 3] != b"9=":
                if len(buf) < soh1 + 3:
                    break
                out.append(BadFrame("BodyLength (9) does not follow BeginString",
                                    bytes(buf[start:start + 64])))
                pos = start + 1
                self._skipping = True
                continue
            soh2 = buf.find(SOH, soh1 + 3, soh1 + 3 + 12)
            if soh2 < 0:
                if len(buf) - soh1 > 14:
                    out.append(BadFrame("BodyLength is not a number",
                                        bytes(buf[start:start + 64])))
                    pos = start + 1
                    self._skipping = True
                    continue
                break
            raw_len = buf[soh1 + 3:soh2]
            if not _digits(raw_len) or int(raw_len) > MAX_BODY:
                out.append(BadFrame(f"BodyLength {bytes(raw_len)!r} is not a usable length",
                                    bytes(buf[start:start + 64])))
                pos = start + 1
                self._skipping = True
                continue
            end = soh2 + 1 + int(raw_len)
            nxt = buf.find(b"\x0110=", soh2)
            nxt = buf.find(b"\x018=FIX", nxt) if nxt >= 0 else -1
            if 0 <= nxt < end:
                # the next message starts inside the claimed body: the length is wrong (a
                # stream would otherwise stall here waiting for bytes that never come)
                out.append(BadFrame(f"BodyLength {int(raw_len)} runs into the next message",
                                    bytes(buf[start:start + 64])))
                pos = nxt + 1
                self._skipping = True
                continue
            if len(buf) < end + 7:
                break
            trailer = buf[end:end + 7]
            if trailer[:3] != b"10=" or trailer[6] != 1 or buf[end - 1] != 1:
                out.append(BadFrame(f"BodyLength {int(raw_len)} does not end at the CheckSum "
                                    "field", bytes(buf[start:start + 64])))
                pos = start + 1
                self._skipping = True
                continue
            frame_bytes = bytes(buf[start:end + 7])
            pos = end + 7
            want = checksum(frame_bytes[:end - start])
            if bytes(trailer[3:6]) != want:
                out.append(BadFrame(f"CheckSum {bytes(trailer[3:6])!r} is wrong (computed "
                                    f"{want!r})", frame_bytes[:64]))
                continue
            out.append(_parse(frame_bytes, soh2 - start + 1, end - start))
        del buf[:pos]
        return out


def _parse(raw: bytes, body_start: int, body_end: int) -> FixMessage | BadFrame:
    begin = raw[2:raw.index(SOH)]
    if begin != BEGIN:
        return BadFrame(f"BeginString {begin!r} is not {BEGIN!r}", raw[:64])
    fields: list[tuple[int, bytes]] = []
    for item in raw[body_start:body_end - 1].split(SOH):
        tag, eq, value = item.partition(b"=")
        if not eq or not _digits(tag) or not value:
            return BadFrame(f"field {item[:32]!r} is not tag=value", raw[:64])
        fields.append((int(tag), value))
    if not fields or fields[0][0] != T_MSG_TYPE:
        return BadFrame("MsgType (35) is not the first body field", raw[:64])
    return FixMessage(fields[0][1], tuple(fields), raw)


__all__ = [
    "ADMIN_TYPES",
    "BEGIN",
    "EXECUTION_REPORT",
    "HEARTBEAT",
    "LOGON",
    "LOGOUT",
    "NEW_ORDER_SINGLE",
    "ORDER_CANCEL_REJECT",
    "ORDER_CANCEL_REPLACE_REQUEST",
    "ORDER_CANCEL_REQUEST",
    "REJECT",
    "RESEND_REQUEST",
    "SEQUENCE_RESET",
    "SOH",
    "TEST_REQUEST",
    "FixError",
    "FixMessage",
    "FixReader",
    "checksum",
    "encode",
    "finish",
    "new_order_single",
    "utc_timestamp",
]
