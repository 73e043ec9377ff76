"""SoupBinTCP, OUCH 5.0 and FIX 4.4 codecs: round trips, known layouts, and fuzzing
(garbage, truncation, bit flips): no crash, each bad frame reported."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from live.wire import fix, ouch, soupbin
from live.wire.frames import BadFrame

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# --- SoupBinTCP -------------------------------------------------------------------------------
def test_soup_login_round_trip_and_layout() -> None:
    raw = soupbin.login_request("usr", "pw", "", 17)
    assert raw[:3] == b"\x00\x2fL"  # 46-byte payload + type
    (pkt,) = soupbin.SoupReader().feed(raw)
    assert isinstance(pkt, soupbin.Packet)
    req = soupbin.decode_login_request(pkt.payload)
    assert req == soupbin.LoginRequest("usr", "pw", "", 17)
    acc = soupbin.decode_login_accepted(soupbin.login_accepted("SESS1", 42)[3:])
    assert acc == soupbin.LoginAccepted("SESS1", 42)
    # the checked heartbeats of PROTOCOLS.md §3
    assert soupbin.CLIENT_HEARTBEAT_PACKET == b"\x00\x01R"
    assert soupbin.SERVER_HEARTBEAT_PACKET == b"\x00\x01H"


def test_soup_reader_splits_and_joins_packets_across_reads() -> None:
    stream = b"".join(soupbin.sequenced(b"m%d" % i) for i in range(5))
    r = soupbin.SoupReader()
    got = []
    for i in range(0, len(stream), 3):
        got += r.feed(stream[i:i + 3])
    assert [p.payload for p in got] == [b"m%d" % i for i in range(5)]
    assert r.pending == 0


def test_soup_reader_reports_bad_frames_and_goes_on() -> None:
    r = soupbin.SoupReader()
    out = r.feed(b"\x00\x02Qx" + b"\x00\x02Hx" + soupbin.sequenced(b"ok"))
    assert [type(o).__name__ for o in out] == ["BadFrame", "BadFrame", "Packet"]
    assert "unknown packet type" in out[0].reason
    assert "expected 0" in out[1].reason
    out = r.feed(b"\x00\x00rest")
    assert len(out) == 1
    assert out[0].fatal
    assert r.feed(soupbin.sequenced(b"late")) == []  # a dead stream reads nothing more


@pytest.mark.parametrize("payload", [b"x" * 45, b"u" * 26 + b"12ab".rjust(20)])
def test_soup_login_decode_errors(payload: bytes) -> None:
    with pytest.raises(soupbin.SoupError):
        soupbin.decode_login_request(payload)


def _soup_stream() -> bytes:
    return (soupbin.login_request("u", "p", "S", 3) + soupbin.sequenced(b"abc")
            + soupbin.CLIENT_HEARTBEAT_PACKET + soupbin.unsequenced(b"O" * 47))


@FUZZ
@given(data=st.data())
def test_soup_reader_fuzz(data: st.DataObject) -> None:
    stream = bytearray(_soup_stream())
    op = data.draw(st.sampled_from(["garbage", "truncate", "flip"]))
    if op == "garbage":
        stream = bytearray(data.draw(st.binary(max_size=300)))
    elif op == "truncate":
        stream = stream[:data.draw(st.integers(0, len(stream)))]
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(stream) - 1))
            stream[i] ^= 1 << data.draw(st.integers(0, 7))
    r = soupbin.SoupReader()
    chunk = data.draw(st.integers(1, 64))
    out = []
    for i in range(0, len(stream), chunk):
        out += r.feed(bytes(stream[i:i + chunk]))
    consumed = sum(3 + len(o.payload) if isinstance(o, soupbin.Packet) else 0 for o in out)
    for o in out:
        assert isinstance(o, soupbin.Packet | BadFrame)
        if isinstance(o, BadFrame):
            assert o.reason
    # nothing dropped silently: every byte is in a packet, a bad frame, or still pending
    if not r.dead:
        bad = sum(2 + len(o.data) for o in out if isinstance(o, BadFrame))
        assert consumed + bad + r.pending == len(stream)


# --- OUCH 5.0 ---------------------------------------------------------------------------------
def test_ouch_enter_order_matches_the_checked_example() -> None:
    """PROTOCOLS.md §5: UserRefNum 113, side T, 225 CVLT @ 630200, TIF 0, display Y,
    capacity A, ClOrdID H8FUB8IV, one appendage TLV (len 5, tag 2, LIME)."""
    msg = ouch.EnterOrder(113, b"T", 225, b"CVLT", 630200, b"0", b"Y", b"A", b"N", b"N",
                          b"H8FUB8IV", {ouch.TAG_FIRM: b"LIME"})
    raw = msg.encode()
    assert len(raw) == 47 + 6
    assert raw[45:47] == b"\x00\x06"
    assert raw[47:] == b"\x05\x02LIME"
    assert raw[10:18] == b"CVLT    "
    assert raw[31:45] == b"H8FUB8IV      "
    assert ouch.decode_inbound(raw) == msg
    # the hot-path encoder gives the same bytes
    fast = ouch.encode_enter(113, b"T", 225, ouch.pad_symbol("CVLT"), 630200, b"0",
                             ouch.pad_clordid("H8FUB8IV"), b"\x05\x02LIME")
    assert fast == raw


@pytest.mark.parametrize(
    ("msg", "size", "inbound"),
    [
        (ouch.ReplaceOrder(1, 2, 300, 1000, clordid=b"X1",
                           appendage={ouch.TAG_POST_ONLY: b"P"}), 40 + 3, True),
        (ouch.CancelOrder(7, 0), 9, True),
        (ouch.OrderAccepted(5, 1, b"B", 40, b"ADBE", 4777800, b"0", 257340661), 64, False),
        (ouch.OrderReplaced(5, 1, 2, b"S", 40, b"ADBE", 4777800, b"3", 9), 68, False),
        (ouch.OrderCanceled(5, 1, 40, ouch.CANCEL_IOC), 18, False),
        (ouch.OrderExecuted(5, 1, 10, 4777800, b"A", 77), 36, False),
        (ouch.OrderRejected(5, 1, ouch.REJECT_CODES["halted"], b"C1"), 29, False),
        (ouch.SystemEvent(5, b"S"), 10, False),
        (ouch.CancelReject(5, 9), 13, False),
    ],
)
def test_ouch_messages_round_trip(msg: ouch.Inbound | ouch.Outbound, size: int,
                                  inbound: bool) -> None:
    raw = msg.encode()
    assert len(raw) == size
    back = ouch.decode_inbound(raw) if inbound else ouch.decode_outbound(raw)
    assert back == msg


def test_ouch_decode_errors_say_what_is_wrong() -> None:
    raw = ouch.CancelOrder(7, 0).encode()
    with pytest.raises(ouch.OuchError, match="expected 9"):
        ouch.decode_inbound(raw + b"x")
    enter = ouch.EnterOrder(1, b"B", 1, b"A", 1).encode()
    with pytest.raises(ouch.OuchError, match="appendage"):
        ouch.decode_inbound(enter[:-2] + b"\x00\x05")
    with pytest.raises(ouch.OuchError, match="side"):
        ouch.decode_inbound(enter[:5] + b"Q" + enter[6:])
    with pytest.raises(ouch.OuchError, match="unknown"):
        ouch.decode_inbound(b"Z123")
    with pytest.raises(ouch.OuchError, match="empty"):
        ouch.decode_outbound(b"")
    with pytest.raises(ouch.OuchError):
        ouch.EnterOrder(-1, b"B", 1, b"A", 1).encode()


_OUCH_SAMPLES = [
    ouch.EnterOrder(113, b"T", 225, b"CVLT", 630200, appendage={2: b"LIME"}).encode(),
    ouch.ReplaceOrder(1, 2, 3, 4).encode(),
    ouch.CancelOrder(7, 0).encode(),
    ouch.OrderAccepted(5, 1, b"B", 40, b"ADBE", 4777800, b"0", 257340661).encode(),
    ouch.OrderExecuted(5, 1, 10, 4777800, b"A", 77, {19: b"\x00" * 8}).encode(),
    ouch.OrderRejected(5, 1, 3).encode(),
]


@FUZZ
@given(data=st.data())
def test_ouch_decoders_fuzz(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(_OUCH_SAMPLES)))
    op = data.draw(st.sampled_from(["garbage", "truncate", "flip"]))
    if op == "garbage":
        raw = bytearray(data.draw(st.binary(max_size=120)))
    elif op == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
    for decode in (ouch.decode_inbound, ouch.decode_outbound):
        msg, err = _try(decode, bytes(raw))
        assert (msg is None) != (err is None)
        if err is not None:
            assert err  # one line saying what is wrong
        elif op == "truncate":
            assert isinstance(msg, ouch.Inbound | ouch.Outbound)
            assert msg.encode() == bytes(raw)


def _try(decode: Callable[[bytes], object], raw: bytes) -> tuple[object, str | None]:
    try:
        return decode(raw), None
    except ouch.OuchError as e:
        return None, str(e)


# --- FIX 4.4 ----------------------------------------------------------------------------------
TS = fix.utc_timestamp(1_700_000_000_123_000_000)


def _nos(seq: int = 1) -> bytes:
    return fix.new_order_single(seq, b"CLIENT", b"VENUE", TS, b"ord1", b"1", 100, b"AAPL",
                                b"101.25")


def test_fix_known_message_body_length_and_checksum() -> None:
    """A Heartbeat from the FIX spec's own example layout, computed by hand."""
    raw = fix.encode(fix.HEARTBEAT, [], seq=1, sender="A", target="B",
                     sending_time=b"20231114-22:13:20.123")
    body = b"35=0\x0149=A\x0156=B\x0134=1\x0152=20231114-22:13:20.123\x01"
    assert raw.startswith(b"8=FIX.4.4\x019=%d\x01" % len(body))
    assert raw.endswith(b"10=%03d\x01" % (sum(raw[:-7]) % 256))
    assert TS == b"20231114-22:13:20.123"


def test_fix_round_trip_and_fast_encoder_agrees() -> None:
    raw = _nos(7)
    slow = fix.encode(fix.NEW_ORDER_SINGLE,
                      [(11, "ord1"), (21, 1), (55, "AAPL"), (54, 1), (60, TS), (38, 100),
                       (40, 2), (44, "101.25"), (59, 0)],
                      seq=7, sender="CLIENT", target="VENUE", sending_time=TS)
    assert raw == slow
    (msg,) = fix.FixReader().feed(raw)
    assert isinstance(msg, fix.FixMessage)
    assert msg.msg_type == fix.NEW_ORDER_SINGLE
    assert msg.seq == 7
    assert msg.get(44) == b"101.25"
    assert msg.get_int(38) == 100
    assert msg.get_str(55) == "AAPL"
    assert msg.get(9999) is None
    with pytest.raises(fix.FixError, match="9999"):
        msg.req(9999)
    with pytest.raises(fix.FixError, match="not an integer"):
        msg.get_int(55)


def test_fix_reader_streams_and_reports_each_bad_frame() -> None:
    good = _nos(1)
    n = good.split(b"\x01")[1]  # b"9=<len>"
    bad_sum = good[:-4] + (b"%03d" % ((int(good[-4:-1]) + 1) % 256)) + b"\x01"
    too_long = good.replace(n, b"9=1" + n[2:], 1)
    too_short = good.replace(n, b"9=%d" % (int(n[2:]) - 1), 1)
    garbled = fix.finish(b"35=0\x01garbage\x01")
    stream = b"junk" + good + bad_sum + too_long + too_short + good + garbled + _nos(2)
    r = fix.FixReader()
    out = []
    for i in range(0, len(stream), 7):
        out += r.feed(stream[i:i + 7])
    kinds = [type(o).__name__ for o in out]
    assert kinds == ["BadFrame", "FixMessage", "BadFrame", "BadFrame", "BadFrame",
                     "FixMessage", "BadFrame", "FixMessage"]
    reasons = [o.reason for o in out if isinstance(o, BadFrame)]
    assert "BeginString" in reasons[0]
    assert "CheckSum" in reasons[1]
    assert "runs into the next message" in reasons[2]
    assert "does not end at the CheckSum" in reasons[3]
    assert "tag=value" in reasons[4]
    assert out[-1].seq == 2
    assert r.pending == 0


def test_fix_wrong_begin_string_is_a_bad_frame() -> None:
    raw = fix.encode(fix.HEARTBEAT, [], seq=1, sender="A", target="B", sending_time=TS,
                     begin=b"FIX.4.2")
    (o,) = fix.FixReader().feed(raw)
    assert isinstance(o, BadFrame)
    assert "FIX.4.2" in o.reason


def test_fix_encode_refuses_soh_in_a_value() -> None:
    with pytest.raises(fix.FixError, match="SOH"):
        fix.encode(fix.HEARTBEAT, [(112, b"a\x01b")], seq=1, sender="A", target="B",
                   sending_time=TS)


@FUZZ
@given(data=st.data())
def test_fix_reader_fuzz(data: st.DataObject) -> None:
    clean = _nos(1) + fix.encode(fix.TEST_REQUEST, [(112, "x")], seq=2, sender="A",
                                 target="B", sending_time=TS)
    raw = bytearray(clean)
    op = data.draw(st.sampled_from(["garbage", "truncate", "flip"]))
    if op == "garbage":
        raw = bytearray(data.draw(st.binary(max_size=300)))
    elif op == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
    assume(bytes(raw) != clean)
    r = fix.FixReader()
    chunk = data.draw(st.integers(1, 80))
    out = []
    for i in range(0, len(raw), chunk):
        out += r.feed(bytes(raw[i:i + chunk]))
    for o in out:
        assert isinstance(o, fix.FixMessage | BadFrame)
        if isinstance(o, fix.FixMessage):
            # only frames whose BodyLength and CheckSum hold come out as messages
            assert o.raw.endswith(b"10=" + fix.checksum(o.raw[:-7]) + b"\x01")
            assert o.raw in bytes(raw)
    if op == "truncate":
        assert sum(isinstance(o, fix.FixMessage) for o in out) < 2
