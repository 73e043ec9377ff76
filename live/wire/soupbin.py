"""SoupBinTCP 4.0 framing (../shared/PROTOCOLS.md §3): the TCP transport of OUCH.

A packet is Packet Length (2, big-endian, counts the type byte and the payload) + Packet
Type (1) + payload. :class:`SoupReader` cuts a byte stream into packets and reports every
frame it cannot accept as a :class:`BadFrame` instead of raising: an unknown type or a
payload of the wrong size for its type is skipped (the length still delimits it), a zero
length cannot be skipped and is ``fatal`` (the session must end).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from live.wire.frames import BadFrame

# --- packet types ---------------------------------------------------------------------------
DEBUG: Final = b"+"
LOGIN_ACCEPTED: Final = b"A"
LOGIN_REJECTED: Final = b"J"
SEQUENCED: Final = b"S"
SERVER_HEARTBEAT: Final = b"H"
END_OF_SESSION: Final = b"Z"
LOGIN_REQUEST: Final = b"L"
UNSEQUENCED: Final = b"U"
CLIENT_HEARTBEAT: Final = b"R"
LOGOUT_REQUEST: Final = b"O"

REJECT_NOT_AUTHORIZED: Final = b"A"
REJECT_SESSION_NOT_AVAILABLE: Final = b"S"

#: payload size of the fixed-size packets (None: any size)
_SIZES: Final[dict[bytes, int | None]] = {
    DEBUG: None,
    LOGIN_ACCEPTED: 30,
    LOGIN_REJECTED: 1,
    SEQUENCED: None,
    SERVER_HEARTBEAT: 0,
    END_OF_SESSION: 0,
    LOGIN_REQUEST: 46,
    UNSEQUENCED: None,
    CLIENT_HEARTBEAT: 0,
    LOGOUT_REQUEST: 0,
}
MAX_PAYLOAD: Final = 65534  #: Packet Length is 16 bits and counts the type byte
_LEN = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Packet:
    type: bytes  #: one byte
    payload: bytes


@dataclass(frozen=True, slots=True)
class LoginRequest:
    username: str
    password: str
    session: str  #: blank = the current session
    sequence: int  #: next sequence number wanted; 0 = only new messages


@dataclass(frozen=True, slots=True)
class LoginAccepted:
    session: str
    sequence: int  #: sequence number of the next sequenced packet the server will send


class SoupError(ValueError):
    """A SoupBinTCP payload does not decode."""


def frame(ptype: bytes, payload: bytes = b"") -> bytes:
    """One packet on the wire."""
    if len(payload) > MAX_PAYLOAD:
        msg = f"SoupBinTCP payload of {len(payload)} bytes is over the {MAX_PAYLOAD}-byte limit"
        raise SoupError(msg)
    return _LEN.pack(len(payload) + 1) + ptype + payload


def _alpha(value: str, width: int, *, left: bool = False) -> bytes:
    raw = value.encode("ascii")
    if len(raw) > width:
        msg = f"{value!r} is longer than its {width}-byte field"
        raise SoupError(msg)
    return raw.rjust(width) if left else raw.ljust(width)


def login_request(username: str, password: str, session: str = "", sequence: int = 0) -> bytes:
    payload = (_alpha(username, 6) + _alpha(password, 10) + _alpha(session, 10, left=True)
               + _alpha(str(sequence), 20, left=True))
    return frame(LOGIN_REQUEST, payload)


def login_accepted(session: str, sequence: int) -> bytes:
    return frame(LOGIN_ACCEPTED, _alpha(session, 10, left=True) + _alpha(str(sequence), 20,
                                                                          left=True))


def login_rejected(code: bytes) -> bytes:
    return frame(LOGIN_REJECTED, code)


def sequenced(message: bytes) -> bytes:
    return frame(SEQUENCED, message)


def unsequenced(message: bytes) -> bytes:
    return frame(UNSEQUENCED, message)


SERVER_HEARTBEAT_PACKET: Final = frame(SERVER_HEARTBEAT)
CLIENT_HEARTBEAT_PACKET: Final = frame(CLIENT_HEARTBEAT)
END_OF_SESSION_PACKET: Final = frame(END_OF_SESSION)
LOGOUT_REQUEST_PACKET: Final = frame(LOGOUT_REQUEST)


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        msg = f"{what} {raw!r} is not ASCII"
        raise SoupError(msg) from None


def _number(raw: bytes, what: str) -> int:
    s = _text(raw, what)
    if not s:
        return 0
    if not s.isdigit():
        msg = f"{what} {raw!r} is not an ASCII number"
        raise SoupError(msg)
    return int(s)


def decode_login_request(payload: bytes) -> LoginRequest:
    if len(payload) != 46:
        msg = f"login request payload is {len(payload)} bytes, expected 46"
        raise SoupError(msg)
    return LoginRequest(_text(payload[:6], "username"), _text(payload[6:16], "password"),
                        _text(payload[16:26], "session"), _number(payload[26:46], "sequence"))


def decode_login_accepted(payload: bytes) -> LoginAccepted:
    if len(payload) != 30:
        msg = f"login accepted payload is {len(payload)} bytes, expected 30"
        raise SoupError(msg)
    return LoginAccepted(_text(payload[:10], "session"), _number(payload[10:30], "sequence"))


class SoupReader:
    """Cuts a byte stream into packets (see the module docstring)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dead = False  #: a fatal frame was seen: nothing more is read

    def feed(self, data: bytes) -> list[Packet | BadFrame]:
        out: list[Packet | BadFrame] = []
        if self.dead:
            return out
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            length = (buf[pos] << 8) | buf[pos + 1]
            if length == 0:
                out.append(BadFrame("zero packet length: the stream cannot be resynced",
                                    bytes(buf[pos:pos + 16]), fatal=True))
                self.dead = True
                pos = n
                break
            if n - pos < 2 + length:
                break
            ptype = bytes(buf[pos + 2:pos + 3])
            payload = bytes(buf[pos + 3:pos + 2 + length])
            pos += 2 + length
            if ptype not in _SIZES:
                out.append(BadFrame(f"unknown packet type {ptype!r}", ptype + payload))
                continue
            size = _SIZES[ptype]
            if size is not None and len(payload) != size:
                out.append(BadFrame(f"packet {ptype!r} has a {len(payload)}-byte payload, "
                                    f"expected {size}", ptype + payload))
                continue
            out.append(Packet(ptype, payload))
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete packet held back."""
        return len(self._buf)


__all__ = [
    "CLIENT_HEARTBEAT",
    "CLIENT_HEARTBEAT_PACKET",
    "DEBUG",
    "END_OF_SESSION",
    "END_OF_SESSION_PACKET",
    "LOGIN_ACCEPTED",
    "LOGIN_REJECTED",
    "LOGIN_REQUEST",
    "LOGOUT_REQUEST",
    "LOGOUT_REQUEST_PACKET",
    "REJECT_NOT_AUTHORIZED",
    "REJECT_SESSION_NOT_AVAILABLE",
    "SEQUENCED",
    "SERVER_HEARTBEAT",
    "SERVER_HEARTBEAT_PACKET",
    "UNSEQUENCED",
    "BadFrame",
    "LoginAccepted",
    "LoginRequest",
    "Packet",
    "SoupError",
    "SoupReader",
    "decode_login_accepted",
    "decode_login_request",
    "frame",
    "login_accepted",
    "login_rejected",
    "login_request",
    "sequenced",
    "unsequenced",
]
