"""OUCH 5.0 order-entry messages (../shared/PROTOCOLS.md §5), carried in SoupBinTCP packets.

Layouts (big-endian; offsets from the message type byte). Enter Order, Order Accepted,
Order Executed and Cancel Order are the table in PROTOCOLS.md §5; the others come from the
same source, Open-Markets-Initiative/wireshark-lua
``Nasdaq/Nasdaq_NsmEquities_Orders_Ouch_v5_0_Dissector.lua`` (field order and sizes):

======================= ======================================================= =====
message                 fields (offset/length)                                  fixed
======================= ======================================================= =====
``U`` Replace Order     Type 0/1; OrigUserRefNum 1/4; UserRefNum 5/4;           40
                        Quantity 9/4; Price 13/8; Time In Force 21/1; Display
                        22/1; ISE 23/1; ClOrdID 24/14; Appendage Length 38/2
``U`` Order Replaced    Type 0/1; Timestamp 1/8; OrigUserRefNum 9/4;            68
                        UserRefNum 13/4; Side 17/1; Quantity 18/4; Symbol 22/8;
                        Price 30/8; TIF 38/1; Display 39/1; Order Reference
                        Number 40/8; Capacity 48/1; ISE 49/1; Cross Type 50/1;
                        Order State 51/1; ClOrdID 52/14; Appendage Length 66/2
``J`` Order Rejected    Type 0/1; Timestamp 1/8; UserRefNum 9/4; Reason 13/2;   29
                        ClOrdID 15/14
``S`` System Event      Type 0/1; Timestamp 1/8; Event Code 9/1                 10
``I`` Cancel Reject     Type 0/1; Timestamp 1/8; UserRefNum 9/4                 13
======================= ======================================================= =====

Appendages are TLVs: length (1 byte, counts tag + value), tag (1), value. Tag 12 is Post
Only (``P``), as in the dissector's Replace/Accepted/Replaced lists; the venue also takes it
on Enter Order. Time in force ``0`` = day, ``3`` = IOC. Prices are integers on the wire
(the venue's ``price_mult`` wire units per tick). The Rejected reason codes are this
venue's own (:data:`REJECT_CODES`), not NASDAQ's list. Decoders raise :class:`OuchError`
with one line saying what is wrong, never anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

TIF_DAY: Final = b"0"
TIF_IOC: Final = b"3"
TAG_FIRM: Final = 2
TAG_MIN_QTY: Final = 3
TAG_POST_ONLY: Final = 12
SIDES: Final = (b"B", b"S", b"T", b"E")  #: buy, sell, sell short, sell short exempt

#: rejected-order reason codes of this venue
REJECT_CODES: Final[dict[str, int]] = {
    "bad_side": 1,
    "bad_qty": 2,
    "bad_price": 3,
    "bad_type": 4,
    "halted": 5,
    "post_only_would_take": 6,
    "no_liquidity": 7,
    "unknown_order": 8,
    "unknown_symbol": 9,
    "duplicate_ref": 10,
    "bad_message": 11,
}
REJECT_NAMES: Final[dict[int, str]] = {v: k for k, v in REJECT_CODES.items()}
#: cancel reasons: user request, the rest of an IOC, the session ended
CANCEL_USER: Final = b"U"
CANCEL_IOC: Final = b"I"
CANCEL_DISCONNECT: Final = b"Z"

_ENTER = struct.Struct(">cIcI8sqccccc14sH")
_REPLACE = struct.Struct(">cIIIqccc14sH")
_CANCEL = struct.Struct(">cII")
_ACCEPTED = struct.Struct(">cQIcI8sqccQcccc14sH")
_REPLACED = struct.Struct(">cQIIcI8sqccQcccc14sH")
_CANCELED = struct.Struct(">cQIIc")
_EXECUTED = struct.Struct(">cQIIqcQH")
_REJECTED = struct.Struct(">cQIH14s")
_SYSTEM = struct.Struct(">cQc")
_CANCEL_REJECT = struct.Struct(">cQI")


class OuchError(ValueError):
    """An OUCH message does not decode."""


def encode_appendage(tags: dict[int, bytes]) -> bytes:
    out = bytearray()
    for tag, value in tags.items():
        if not 0 <= tag < 256 or len(value) > 254:
            msg = f"appendage tag {tag} with a {len(value)}-byte value does not fit a TLV"
            raise OuchError(msg)
        out += bytes((len(value) + 1, tag)) + value
    return bytes(out)


def decode_appendage(raw: bytes) -> dict[int, bytes]:
    tags: dict[int, bytes] = {}
    i = 0
    while i < len(raw):
        n = raw[i]
        if n == 0 or i + 1 + n > len(raw):
            msg = f"appendage TLV at byte {i} has length {n}, {len(raw) - i - 1} bytes left"
            raise OuchError(msg)
        tags[raw[i + 1]] = bytes(raw[i + 2:i + 1 + n])
        i += 1 + n
    return tags


def _pad(value: bytes, width: int) -> bytes:
    if len(value) > width:
        msg = f"{value!r} is longer than its {width}-byte field"
        raise OuchError(msg)
    return value.ljust(width)


# --- inbound (client to venue) --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EnterOrder:
    user_ref_num: int
    side: bytes
    quantity: int
    symbol: bytes
    price: int
    tif: bytes = TIF_DAY
    display: bytes = b"Y"
    capacity: bytes = b"A"
    ise: bytes = b"N"
    cross_type: bytes = b"N"
    clordid: bytes = b""
    appendage: dict[int, bytes] = field(default_factory=dict)

    @property
    def post_only(self) -> bool:
        return self.appendage.get(TAG_POST_ONLY) == b"P"

    def encode(self) -> bytes:
        app = encode_appendage(self.appendage) if self.appendage else b""
        return encode_enter(self.user_ref_num, self.side, self.quantity, _pad(self.symbol, 8),
                            self.price, self.tif, _pad(self.clordid, 14), app, self.display,
                            self.capacity, self.ise, self.cross_type)


def encode_enter(user_ref_num: int, side: bytes, quantity: int, symbol: bytes, price: int,
                 tif: bytes = TIF_DAY, clordid: bytes = b"", appendage: bytes = b"",
                 display: bytes = b"Y", capacity: bytes = b"A", ise: bytes = b"N",
                 cross_type: bytes = b"N") -> bytes:
    """Enter Order, the hot path: ``symbol`` and ``clordid`` come padded to their widths
    (:func:`pad_symbol`, :func:`pad_clordid`; ``struct`` would pad them with NULs)."""
    try:
        return _ENTER.pack(b"O", user_ref_num, side, quantity, symbol, price, tif, display,
                           capacity, ise, cross_type, clordid, len(appendage)) + appendage
    except struct.error as e:
        msg = f"Enter Order does not encode: {e}"
        raise OuchError(msg) from None


def pad_symbol(symbol: str) -> bytes:
    return _pad(symbol.encode("ascii"), 8)


def pad_clordid(clordid: str) -> bytes:
    return _pad(clordid.encode("ascii"), 14)


@dataclass(frozen=True, slots=True)
class ReplaceOrder:
    orig_user_ref_num: int
    user_ref_num: int
    quantity: int
    price: int
    tif: bytes = TIF_DAY
    display: bytes = b"Y"
    ise: bytes = b"N"
    clordid: bytes = b""
    appendage: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        app = encode_appendage(self.appendage) if self.appendage else b""
        return _pack(_REPLACE, b"U", self.orig_user_ref_num, self.user_ref_num, self.quantity,
                     self.price, self.tif, self.display, self.ise, _pad(self.clordid, 14),
                     len(app)) + app


@dataclass(frozen=True, slots=True)
class CancelOrder:
    user_ref_num: int
    quantity: int = 0  #: the new intended open size; 0 cancels the order

    def encode(self) -> bytes:
        return _pack(_CANCEL, b"X", self.user_ref_num, self.quantity)


# --- outbound (venue to client) -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderAccepted:
    timestamp: int
    user_ref_num: int
    side: bytes
    quantity: int
    symbol: bytes
    price: int
    tif: bytes
    order_ref: int
    order_state: bytes = b"L"  #: ``L`` live, ``D`` dead
    clordid: bytes = b""
    display: bytes = b"Y"
    capacity: bytes = b"A"
    ise: bytes = b"N"
    cross_type: bytes = b"N"
    appendage: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        app = encode_appendage(self.appendage) if self.appendage else b""
        return _pack(_ACCEPTED, b"A", self.timestamp, self.user_ref_num, self.side,
                     self.quantity, _pad(self.symbol, 8), self.price, self.tif, self.display,
                     self.order_ref, self.capacity, self.ise, self.cross_type,
                     self.order_state, _pad(self.clordid, 14), len(app)) + app


@dataclass(frozen=True, slots=True)
class OrderReplaced:
    timestamp: int
    orig_user_ref_num: int
    user_ref_num: int
    side: bytes
    quantity: int
    symbol: bytes
    price: int
    tif: bytes
    order_ref: int
    order_state: bytes = b"L"
    clordid: bytes = b""
    display: bytes = b"Y"
    capacity: bytes = b"A"
    ise: bytes = b"N"
    cross_type: bytes = b"N"
    appendage: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        app = encode_appendage(self.appendage) if self.appendage else b""
        return _pack(_REPLACED, b"U", self.timestamp, self.orig_user_ref_num,
                     self.user_ref_num, self.side, self.quantity, _pad(self.symbol, 8),
                     self.price, self.tif, self.display, self.order_ref, self.capacity,
                     self.ise, self.cross_type, self.order_state, _pad(self.clordid, 14),
                     len(app)) + app


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    timestamp: int
    user_ref_num: int
    quantity: int  #: lots cancelled
    reason: bytes = CANCEL_USER

    def encode(self) -> bytes:
        return _pack(_CANCELED, b"C", self.timestamp, self.user_ref_num, self.quantity,
                     self.reason)


@dataclass(frozen=True, slots=True)
class OrderExecuted:
    timestamp: int
    user_ref_num: int
    quantity: int
    price: int
    liquidity: bytes
    match_number: int
    appendage: dict[int, bytes] = field(default_factory=dict)

    def encode(self) -> bytes:
        app = encode_appendage(self.appendage) if self.appendage else b""
        return _pack(_EXECUTED, b"E", self.timestamp, self.user_ref_num, self.quantity,
                     self.price, self.liquidity, self.match_number, len(app)) + app


@dataclass(frozen=True, slots=True)
class OrderRejected:
    timestamp: int
    user_ref_num: int
    reason: int
    clordid: bytes = b""

    def encode(self) -> bytes:
        return _pack(_REJECTED, b"J", self.timestamp, self.user_ref_num, self.reason,
                     _pad(self.clordid, 14))


@dataclass(frozen=True, slots=True)
class SystemEvent:
    timestamp: int
    event: bytes  #: ``S`` start of day, ``E`` end of day

    def encode(self) -> bytes:
        return _pack(_SYSTEM, b"S", self.timestamp, self.event)


@dataclass(frozen=True, slots=True)
class CancelReject:
    """A cancel the venue could not act on (the order is not open)."""

    timestamp: int
    user_ref_num: int

    def encode(self) -> bytes:
        return _pack(_CANCEL_REJECT, b"I", self.timestamp, self.user_ref_num)


Inbound = EnterOrder | ReplaceOrder | CancelOrder
Outbound = OrderAccepted | OrderReplaced | OrderCanceled | OrderExecuted | OrderRejected | \
    SystemEvent | CancelReject


def _pack(s: struct.Struct, *values: object) -> bytes:
    try:
        return s.pack(*values)
    except struct.error as e:
        msg = f"OUCH message {values[0]!r} does not encode: {e}"
        raise OuchError(msg) from None


def _fixed(msg: bytes, s: struct.Struct, name: str, *, appendage: bool) -> tuple:
    if len(msg) < s.size:
        err = f"{name} is {len(msg)} bytes, shorter than its fixed {s.size}"
        raise OuchError(err)
    if not appendage and len(msg) != s.size:
        err = f"{name} is {len(msg)} bytes, expected {s.size}"
        raise OuchError(err)
    vals = s.unpack_from(msg)
    if appendage:
        n = vals[-1]
        if len(msg) != s.size + n:
            err = f"{name} declares a {n}-byte appendage but carries {len(msg) - s.size}"
            raise OuchError(err)
    return vals


def _side(b: bytes) -> bytes:
    if b not in SIDES:
        msg = f"side {b!r} is not one of B, S, T, E"
        raise OuchError(msg)
    return b


def decode_inbound(msg: bytes) -> Inbound:
    """A client message (the payload of a SoupBinTCP ``U`` packet)."""
    if not msg:
        raise OuchError("empty OUCH message")
    t = msg[:1]
    if t == b"O":
        v = _fixed(msg, _ENTER, "Enter Order", appendage=True)
        return EnterOrder(v[1], _side(v[2]), v[3], v[4].rstrip(b" \x00"), v[5], v[6], v[7],
                          v[8], v[9], v[10], v[11].rstrip(b" \x00"),
                          decode_appendage(msg[_ENTER.size:]))
    if t == b"U":
        v = _fixed(msg, _REPLACE, "Replace Order", appendage=True)
        return ReplaceOrder(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8].rstrip(b" \x00"),
                            decode_appendage(msg[_REPLACE.size:]))
    if t == b"X":
        v = _fixed(msg, _CANCEL, "Cancel Order", appendage=False)
        return CancelOrder(v[1], v[2])
    err = f"unknown inbound OUCH message type {t!r}"
    raise OuchError(err)


def decode_outbound(msg: bytes) -> Outbound:
    """A venue message (the payload of a SoupBinTCP ``S`` packet)."""
    if not msg:
        raise OuchError("empty OUCH message")
    t = msg[:1]
    if t == b"A":
        v = _fixed(msg, _ACCEPTED, "Order Accepted", appendage=True)
        return OrderAccepted(v[1], v[2], _side(v[3]), v[4], v[5].rstrip(b" \x00"), v[6], v[7],
                             v[9], v[13], v[14].rstrip(b" \x00"), v[8], v[10], v[11], v[12],
                             decode_appendage(msg[_ACCEPTED.size:]))
    if t == b"U":
        v = _fixed(msg, _REPLACED, "Order Replaced", appendage=True)
        return OrderReplaced(v[1], v[2], v[3], _side(v[4]), v[5], v[6].rstrip(b" \x00"), v[7],
                             v[8], v[10], v[14], v[15].rstrip(b" \x00"), v[9], v[11], v[12],
                             v[13], decode_appendage(msg[_REPLACED.size:]))
    if t == b"C":
        v = _fixed(msg, _CANCELED, "Order Canceled", appendage=False)
        return OrderCanceled(v[1], v[2], v[3], v[4])
    if t == b"E":
        v = _fixed(msg, _EXECUTED, "Order Executed", appendage=True)
        return OrderExecuted(v[1], v[2], v[3], v[4], v[5], v[6],
                             decode_appendage(msg[_EXECUTED.size:]))
    if t == b"J":
        v = _fixed(msg, _REJECTED, "Order Rejected", appendage=False)
        return OrderRejected(v[1], v[2], v[3], v[4].rstrip(b" \x00"))
    if t == b"S":
        v = _fixed(msg, _SYSTEM, "System Event", appendage=False)
        return SystemEvent(v[1], v[2])
    if t == b"I":
        v = _fixed(msg, _CANCEL_REJECT, "Cancel Reject", appendage=False)
        return CancelReject(v[1], v[2])
    err = f"unknown outbound OUCH message type {t!r}"
    raise OuchError(err)


__all__ = [
    "CANCEL_DISCONNECT",
    "CANCEL_IOC",
    "CANCEL_USER",
    "REJECT_CODES",
    "REJECT_NAMES",
    "SIDES",
    "TAG_FIRM",
    "TAG_MIN_QTY",
    "TAG_POST_ONLY",
    "TIF_DAY",
    "TIF_IOC",
    "CancelOrder",
    "CancelReject",
    "EnterOrder",
    "Inbound",
    "OrderAccepted",
    "OrderCanceled",
    "OrderExecuted",
    "OrderRejected",
    "OrderReplaced",
    "OuchError",
    "Outbound",
    "ReplaceOrder",
    "SystemEvent",
    "decode_appendage",
    "decode_inbound",
    "decode_outbound",
    "encode_appendage",
    "encode_enter",
    "pad_clordid",
    "pad_symbol",
]
