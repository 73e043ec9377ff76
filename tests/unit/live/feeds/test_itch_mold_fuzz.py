"""The feed handler's compiled path over damaged packets sent to its socket on 127.0.0.1:
garbage, truncation and bit flips never crash it, a packet that does not frame is counted
with its reason, and ITCH messages the decoder refuses are counted with theirs."""

from __future__ import annotations

import datetime as dt
import socket
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.core.events import BUY, EVENT_DTYPE, FLAG_LAST, KIND_ADD, KIND_DELETE
from framework.core.timeutil import midnight_ns
from live.feeds.itch_mold import MoldFeedHandler
from live.wire.itch_encode import NY, encode_events
from live.wire.moldudp64 import BadFrame, Packet, decode_packet, encode_packet

DATE = dt.date(2024, 3, 1)
SESSION = b"FUZZ      "


def _messages() -> list[bytes]:
    ev = np.zeros(4, EVENT_DTYPE)
    ev["exch_ts"] = midnight_ns(DATE, NY) + 10**13
    ev["kind"] = [KIND_ADD, KIND_ADD, KIND_DELETE, KIND_ADD]
    ev["side"] = BUY
    ev["price"] = [100, 101, 100, 99]
    ev["qty"] = 5
    ev["order_id"] = [1, 2, 1, 3]
    ev["flags"] = FLAG_LAST
    return encode_events(ev, date=DATE, symbol="FZ").messages()


MSGS = _messages()


def _deliver(raw: bytes) -> MoldFeedHandler:
    h = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE, session=SESSION, record_rows=8,
                        gap_timeout_s=60.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(raw, ("127.0.0.1", h.port))
        # a marker after it: once the marker is in, so is the packet (loopback keeps order)
        s.sendto(b"MARKER", ("127.0.0.1", h.port))
    deadline = time.monotonic() + 5
    while h.bad.get("shorter than the 20-byte MoldUDP64 header", 0) < 1 + (len(raw) < 20):
        assert time.monotonic() < deadline, "packets did not arrive"
        h.poll(timeout_s=0.05)
    h.bad["shorter than the 20-byte MoldUDP64 header"] -= 1  # the marker
    return h


def _check(raw: bytes) -> None:
    h = _deliver(raw)
    try:
        out = decode_packet(raw)
        if isinstance(out, BadFrame):
            assert +h.bad == {out.reason: 1}
            assert h.messages == 0
        elif out.session != SESSION:
            assert +h.bad == {"packet of another MoldUDP64 session": 1}
        elif out.kind == "data" and out.seq <= 1 < out.seq + out.count:
            # the messages from the expected sequence number 1 on (a flipped sequence number
            # can make the packet start before it: those messages count as seen already),
            # each decoded or refused with a reason
            new = out.seq + out.count - 1
            assert h.messages == new
            refused = sum((+h.bad).values())
            assert refused <= new
            assert h.n_rows == 1  # the book after the packet
        else:  # ahead of the sequence (held, gap opened), all seen already, or control
            assert isinstance(out, Packet)
            assert h.messages == 0
    finally:
        h.close()


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(raw=st.binary(max_size=200))
def test_garbage(raw: bytes) -> None:
    _check(raw)


@FUZZ
@given(k=st.integers(1, 4), cut=st.integers(0, 10_000))
def test_truncation(k: int, cut: int) -> None:
    raw = encode_packet(SESSION, 1, MSGS[:k])
    _check(raw[: cut % len(raw)])


@FUZZ
@given(k=st.integers(1, 4), flips=st.lists(st.integers(0, 10**6), min_size=1, max_size=3))
def test_bit_flips(k: int, flips: list[int]) -> None:
    raw = bytearray(encode_packet(SESSION, 1, MSGS[:k]))
    for f in flips:
        raw[(f // 8) % len(raw)] ^= 1 << (f % 8)
    _check(bytes(raw))


def test_a_clean_packet_applies_every_message() -> None:
    h = _deliver(encode_packet(SESSION, 1, MSGS))
    try:
        assert h.messages == len(MSGS)
        assert not +h.bad
        rows, seqs = h.recorded()
        assert seqs.tolist() == [len(MSGS) + 1]
        assert rows[0][2:4].tolist() == [101, 5]  # best bid 101 x 5 after the delete of 100
    finally:
        h.close()
