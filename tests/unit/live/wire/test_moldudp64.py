"""MoldUDP64 packets: round trips, control packets, re-requests, packetizing, and decoders
that never crash on garbage and name what is wrong with each bad frame."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.core.errors import ConfigError
from live.wire.moldudp64 import (
    COUNT_END_OF_SESSION,
    HEADER_LEN,
    MAX_PAYLOAD,
    PKT_REASONS,
    BadFrame,
    Packet,
    Request,
    decode_packet,
    decode_request,
    encode_end_of_session,
    encode_heartbeat,
    encode_packet,
    encode_request,
    frame_packet_nb,
    packetize_nb,
)

messages = st.lists(st.binary(min_size=1, max_size=60), min_size=1, max_size=30)
FUZZ = settings(max_examples=300, deadline=None)


@FUZZ
@given(msgs=messages, seq=st.integers(0, 2**63))
def test_data_packet_round_trips(msgs: list[bytes], seq: int) -> None:
    raw = encode_packet("S1", seq, msgs)
    pkt = decode_packet(raw)
    assert isinstance(pkt, Packet)
    assert (pkt.session, pkt.seq, pkt.count, pkt.kind) == (b"S1        ", seq, len(msgs), "data")
    assert list(pkt.messages) == msgs
    assert pkt.next_seq == seq + len(msgs)


def test_heartbeat_and_end_of_session_carry_the_next_sequence_number() -> None:
    hb = decode_packet(encode_heartbeat("SESS", 42))
    end = decode_packet(encode_end_of_session("SESS", 42))
    assert isinstance(hb, Packet)
    assert isinstance(end, Packet)
    assert (hb.kind, hb.seq, hb.next_seq, hb.messages) == ("heartbeat", 42, 42, ())
    assert (end.kind, end.count, end.next_seq) == ("end_of_session", COUNT_END_OF_SESSION, 42)


def test_request_round_trips_and_bad_requests_say_why() -> None:
    assert decode_request(encode_request("ABC", 7, 3)) == Request(b"ABC       ", 7, 3)
    short = decode_request(b"x" * 19)
    assert isinstance(short, BadFrame)
    assert "19 bytes" in short.reason
    zero = decode_request(b"ABC       " + (7).to_bytes(8, "big") + b"\0\0")
    assert isinstance(zero, BadFrame)
    assert "count 0" in zero.reason


@pytest.mark.parametrize(("session", "count"), [("ELEVENCHARS", 1), ("S", 0), ("S", 0xFFFF)])
def test_encoders_refuse_what_the_format_cannot_carry(session: str, count: int) -> None:
    with pytest.raises(ConfigError, match=r"session|1 to"):
        encode_request(session, 1, count)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"S" * 19, "shorter than the 20-byte"),
        (encode_packet("S", 1, [b"abc"])[:-1], "runs past the end"),
        (encode_packet("S", 1, [b"abc"]) + b"z", "bytes after the last message block"),
        (encode_heartbeat("S", 1) + b"\0", "heartbeat or end-of-session"),
        (b"\x01" + encode_packet("S", 1, [b"abc"])[1:], "not printable"),
        (encode_packet("S", 1, [b"abc"])[:20] + b"\0\0", "length 0"),
        (encode_packet("S", 2**64 - 1, [b"a", b"b"]), "overflows"),
    ],
)
def test_each_kind_of_bad_frame_is_reported_with_its_reason(raw: bytes, reason: str) -> None:
    bad = decode_packet(raw)
    assert isinstance(bad, BadFrame)
    assert reason in bad.reason
    assert bad.length == len(raw)


def test_a_bad_packet_writes_no_message_offsets() -> None:
    raw = encode_packet("S", 1, [b"abc", b"de"]) + b"!"
    buf = np.frombuffer(raw, np.uint8)
    offs = np.full(8, -7, np.int64)
    lens = np.full(8, -7, np.int64)
    status, _, _ = frame_packet_nb(buf, 0, len(raw), offs, lens, 0)
    assert status != 0
    assert (offs == -7).all()
    assert (lens == -7).all()


def _check_any(raw: bytes) -> None:
    out = decode_packet(raw)
    if isinstance(out, BadFrame):
        assert out.reason in PKT_REASONS.values()
        return
    # a packet that decodes re-encodes to exactly the bytes it came from
    if out.kind == "data":
        assert encode_packet(out.session, out.seq, list(out.messages)) == raw
    else:
        assert len(raw) == HEADER_LEN


@FUZZ
@given(raw=st.binary(max_size=300))
def test_fuzz_garbage_never_crashes(raw: bytes) -> None:
    _check_any(raw)


@FUZZ
@given(msgs=messages, cut=st.integers(0, 10_000))
def test_fuzz_truncation_is_reported(msgs: list[bytes], cut: int) -> None:
    raw = encode_packet("TRUNC", 5, msgs)
    cut %= len(raw)
    out = decode_packet(raw[:cut])
    assert isinstance(out, BadFrame)  # no prefix of a data packet is itself a data packet
    assert out.reason in PKT_REASONS.values()


@FUZZ
@given(msgs=messages, flips=st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_fuzz_bit_flips_never_crash(msgs: list[bytes], flips: list[int]) -> None:
    raw = bytearray(encode_packet("FLIP", 5, msgs))
    for f in flips:
        raw[(f // 8) % len(raw)] ^= 1 << (f % 8)
    _check_any(bytes(raw))


@FUZZ
@given(raw=st.binary(max_size=40))
def test_fuzz_request_decoder_never_crashes(raw: bytes) -> None:
    out = decode_request(raw)
    assert isinstance(out, Request | BadFrame)


@FUZZ
@given(
    lens=st.lists(st.integers(1, 300), min_size=1, max_size=200),
    ends=st.lists(st.booleans(), min_size=200, max_size=200),
)
def test_packetize_keeps_order_fits_packets_and_ends_at_venue_message_ends(
    lens: list[int], ends: list[bool]
) -> None:
    n = len(lens)
    la = np.array(lens, np.int64)
    may_end = np.array(ends[:n], np.bool_)
    may_end[-1] = True
    firsts = packetize_nb(la, may_end, MAX_PAYLOAD)
    assert firsts[0] == 0
    assert firsts[-1] == n
    assert (np.diff(firsts) > 0).all()
    for a, b in zip(firsts[:-1].tolist(), firsts[1:].tolist(), strict=True):
        size = int((la[a:b] + 2).sum())
        assert size <= MAX_PAYLOAD
        if not may_end[b - 1]:  # split inside a venue message only when it must be
            nxt = la[b] + 2 if b < n else 0
            assert not may_end[a:b].any() or size + nxt > MAX_PAYLOAD
