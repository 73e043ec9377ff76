"""MoldUDP64 1.00: the downstream packet and the re-request packet (PROTOCOLS.md §2).

Downstream packet: Session (10 ASCII) + Sequence Number (u64, of the first message) +
Message Count (u16; 0 = heartbeat, 0xFFFF = end of session) + that many message blocks
(Message Length u16, not counting itself, + the message). Re-request packet (client to the
re-request server): Session + Sequence Number + Requested Message Count. All big-endian.

The per-packet path is compiled: :func:`frame_packet_nb` checks a packet's whole framing
before it appends one message, so a packet is taken whole or refused whole with one reason
(:data:`PKT_REASONS`). A damaged packet never yields half its messages, and the sequence
numbers of the messages it would have carried stay missing: the feed handler re-requests them.
:func:`decode_packet` and :func:`decode_request` are the Python faces (tools, tests, the
re-request server); they return a :class:`BadFrame` (never raise) on bytes that do not frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.core.errors import ConfigError

HEADER_LEN: Final = 20
SESSION_LEN: Final = 10
REQUEST_LEN: Final = 20
COUNT_HEARTBEAT: Final = 0
COUNT_END_OF_SESSION: Final = 0xFFFF
#: largest payload (message blocks) of one packet: nassau's ``MAX_PAYLOAD_LENGTH``, which keeps
#: a packet inside one Ethernet frame
MAX_PAYLOAD: Final = 1400
#: most messages one packet or re-request may name (0xFFFF means end of session)
MAX_COUNT: Final = 0xFFFE

# --- per-packet status codes ------------------------------------------------------------
PKT_OK: Final = 0
PKT_SHORT: Final = 1
PKT_TRUNCATED: Final = 2
PKT_TRAILING: Final = 3
PKT_EMPTY_MESSAGE: Final = 4
PKT_CONTROL_WITH_DATA: Final = 5
PKT_BAD_SESSION: Final = 6
PKT_SEQ_OVERFLOW: Final = 7

PKT_REASONS: Final[dict[int, str]] = {
    PKT_SHORT: "shorter than the 20-byte MoldUDP64 header",
    PKT_TRUNCATED: "a message block runs past the end of the packet",
    PKT_TRAILING: "bytes after the last message block the count announces",
    PKT_EMPTY_MESSAGE: "a message block of length 0",
    PKT_CONTROL_WITH_DATA: "heartbeat or end-of-session packet carrying bytes after the header",
    PKT_BAD_SESSION: "session field is not printable ASCII",
    PKT_SEQ_OVERFLOW: "sequence number + message count overflows 64 bits",
}

KIND_DATA: Final = "data"
KIND_HEARTBEAT: Final = "heartbeat"
KIND_END: Final = "end_of_session"


# --- compiled framing --------------------------------------------------------------------
@njit(cache=True, inline="always")
def _u16(b: npt.NDArray[np.uint8], o: int) -> int:
    return (np.int64(b[o]) << 8) | np.int64(b[o + 1])  # type: ignore[return-value]


@njit(cache=True, inline="always")
def _u64(b: npt.NDArray[np.uint8], o: int) -> np.uint64:
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(b[o + k])
    return v


@njit(cache=True)
def frame_packet_nb(
    buf: npt.NDArray[np.uint8],
    off: int,
    n: int,
    offs: npt.NDArray[np.int64],
    lens: npt.NDArray[np.int64],
    k: int,
) -> tuple[int, np.uint64, int]:
    """Frame the packet ``buf[off:off + n]``: ``(status, sequence number, message count)``.

    With ``PKT_OK`` its message bodies' offsets (into ``buf``) and lengths are written at
    ``offs[k:k + count]`` / ``lens[k:...]`` (the caller sizes them: a packet of ``n`` bytes
    holds at most ``(n - 20) // 3`` messages); with any other status nothing is written.
    The count of a heartbeat (0) or end-of-session (0xFFFF) is returned as is.
    """
    if n < HEADER_LEN or off < 0 or off + n > buf.shape[0]:
        return PKT_SHORT, np.uint64(0), 0
    for i in range(SESSION_LEN):
        c = buf[off + i]
        if c < 32 or c > 126:
            return PKT_BAD_SESSION, np.uint64(0), 0
    seq = _u64(buf, off + 10)
    count = _u16(buf, off + 18)
    if count == COUNT_HEARTBEAT or count == COUNT_END_OF_SESSION:
        if n != HEADER_LEN:
            return PKT_CONTROL_WITH_DATA, seq, count
        return PKT_OK, seq, count
    if seq + np.uint64(count) < seq:
        return PKT_SEQ_OVERFLOW, seq, count
    end = off + n
    p = off + HEADER_LEN
    for _ in range(count):  # check every block before writing any
        if p + 2 > end:
            return PKT_TRUNCATED, seq, count
        ln = _u16(buf, p)
        if ln == 0:
            return PKT_EMPTY_MESSAGE, seq, count
        p += 2 + ln
        if p > end:
            return PKT_TRUNCATED, seq, count
    if p != end:
        return PKT_TRAILING, seq, count
    if k + count > offs.shape[0]:  # cannot happen when sized as documented: refuse, not overrun
        return PKT_TRUNCATED, seq, count
    p = off + HEADER_LEN
    for i in range(count):
        ln = _u16(buf, p)
        offs[k + i] = p + 2
        lens[k + i] = ln
        p += 2 + ln
    return PKT_OK, seq, count


@njit(cache=True)
def packetize_nb(
    lens: npt.NDArray[np.int64], may_end: npt.NDArray[np.bool_], max_payload: int
) -> npt.NDArray[np.int64]:
    """Split a message stream into packets: the index of each packet's first message, plus
    ``len(lens)`` at the end.

    A packet holds whole messages up to ``max_payload`` bytes of blocks and ends only after a
    message with ``may_end`` set (the end of a venue message, where the book is consistent),
    unless that one venue message alone overflows a packet: then it is split where it must.
    """
    n = lens.shape[0]
    out = np.empty(n + 1, np.int64)
    k = 0
    i = 0
    while i < n:
        out[k] = i
        k += 1
        size = 0
        last_end = -1  # last message of this packet after which it may end
        j = i
        while j < n and size + 2 + lens[j] <= max_payload and j - i < MAX_COUNT:
            size += 2 + lens[j]
            if may_end[j]:
                last_end = j
            j += 1
        if j == i:  # one message larger than a packet: it goes alone (the caller checks)
            j = i + 1
        elif j < n and last_end >= 0:
            j = last_end + 1
        i = j
    out[k] = n
    return out[: k + 1]


# --- Python faces --------------------------------------------------------------------------
@dataclass(frozen=True)
class Packet:
    """A decoded downstream packet."""

    session: bytes
    seq: int  #: sequence number of the first message (of the next one, for control packets)
    count: int  #: messages carried (0 heartbeat, 0xFFFF end of session)
    messages: tuple[bytes, ...]

    @property
    def kind(self) -> str:
        if self.count == COUNT_HEARTBEAT:
            return KIND_HEARTBEAT
        if self.count == COUNT_END_OF_SESSION:
            return KIND_END
        return KIND_DATA

    @property
    def next_seq(self) -> int:
        """Sequence number the message after this packet will carry."""
        return self.seq + (self.count if self.kind == KIND_DATA else 0)


@dataclass(frozen=True)
class Request:
    """A re-request: ``count`` messages from ``seq`` of ``session``."""

    session: bytes
    seq: int
    count: int


@dataclass(frozen=True)
class BadFrame:
    """Bytes that are not a valid packet, and why."""

    reason: str
    length: int


def session_bytes(session: str | bytes) -> bytes:
    """The 10-byte Session field (space padded), or a ConfigError naming what is wrong."""
    raw = session.encode("ascii", "replace") if isinstance(session, str) else bytes(session)
    if len(raw) > SESSION_LEN or any(c < 32 or c > 126 for c in raw):
        msg = (f"MoldUDP64 session {session!r} must be at most {SESSION_LEN} printable ASCII "
               "characters")
        raise ConfigError(msg)
    return raw.ljust(SESSION_LEN, b" ")


def header(session: bytes, seq: int, count: int) -> bytes:
    """The 20-byte packet header (``session`` already 10 bytes)."""
    return session + seq.to_bytes(8, "big") + count.to_bytes(2, "big")


def encode_packet(session: str | bytes, seq: int, messages: Sequence[bytes]) -> bytes:
    """A downstream data packet carrying ``messages`` from sequence number ``seq``."""
    if not 0 < len(messages) <= MAX_COUNT:
        msg = f"a MoldUDP64 data packet carries 1 to {MAX_COUNT} messages, not {len(messages)}"
        raise ConfigError(msg)
    blocks = []
    for m in messages:
        if not 0 < len(m) <= 0xFFFF:
            msg = f"a MoldUDP64 message is 1 to 65535 bytes, not {len(m)}"
            raise ConfigError(msg)
        blocks.append(len(m).to_bytes(2, "big") + m)
    return header(session_bytes(session), seq, len(messages)) + b"".join(blocks)


def encode_heartbeat(session: str | bytes, next_seq: int) -> bytes:
    """A heartbeat: no messages; ``next_seq`` is the sequence number of the next message."""
    return header(session_bytes(session), next_seq, COUNT_HEARTBEAT)


def encode_end_of_session(session: str | bytes, next_seq: int) -> bytes:
    """The end-of-session packet; ``next_seq`` as for a heartbeat."""
    return header(session_bytes(session), next_seq, COUNT_END_OF_SESSION)


def encode_request(session: str | bytes, seq: int, count: int) -> bytes:
    """A re-request for ``count`` messages from ``seq``."""
    if not 0 < count <= MAX_COUNT or seq < 0:
        msg = f"a re-request asks for 1 to {MAX_COUNT} messages from seq >= 0, not {count}"
        raise ConfigError(msg)
    return header(session_bytes(session), seq, count)




def decode_packet(data: bytes | bytearray | memoryview) -> Packet | BadFrame:
    """Decode one downstream packet (the compiled framer does the checking)."""
    buf = np.frombuffer(bytes(data), np.uint8)
    cap = max(0, (buf.shape[0] - HEADER_LEN) // 3)
    offs = np.empty(cap, np.int64)
    lens = np.empty(cap, np.int64)
    status, seq, count = frame_packet_nb(buf, 0, buf.shape[0], offs, lens, 0)
    if status != PKT_OK:
        return BadFrame(PKT_REASONS[int(status)], buf.shape[0])
    n = 0 if count in (COUNT_HEARTBEAT, COUNT_END_OF_SESSION) else int(count)
    raw = buf.tobytes()
    msgs = tuple(raw[o : o + ln] for o, ln in zip(offs[:n].tolist(), lens[:n].tolist(),
                                                     strict=True))
    return Packet(raw[:SESSION_LEN], int(seq), int(count), msgs)


def decode_request(data: bytes | bytearray | memoryview) -> Request | BadFrame:
    """Decode a re-request packet: exactly 20 bytes, a printable session, a count in 1..65534."""
    raw = bytes(data)
    if len(raw) != REQUEST_LEN:
        return BadFrame(f"re-request is {len(raw)} bytes, not {REQUEST_LEN}", len(raw))
    if any(c < 32 or c > 126 for c in raw[:SESSION_LEN]):
        return BadFrame(PKT_REASONS[PKT_BAD_SESSION], len(raw))
    seq = int.from_bytes(raw[10:18], "big")
    count = int.from_bytes(raw[18:20], "big")
    if not 0 < count <= MAX_COUNT:
        return BadFrame(f"re-request message count {count} is outside 1..{MAX_COUNT}", len(raw))
    return Request(raw[:SESSION_LEN], seq, count)


__all__ = [
    "COUNT_END_OF_SESSION",
    "COUNT_HEARTBEAT",
    "HEADER_LEN",
    "MAX_PAYLOAD",
    "PKT_OK",
    "PKT_REASONS",
    "REQUEST_LEN",
    "SESSION_LEN",
    "BadFrame",
    "Packet",
    "Request",
    "decode_packet",
    "decode_request",
    "encode_end_of_session",
    "encode_heartbeat",
    "encode_packet",
    "encode_request",
    "frame_packet_nb",
    "header",
    "packetize_nb",
    "session_bytes",
]
