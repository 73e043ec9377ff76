"""The FIX session layer without sockets: two FixSessions wired back to back (and hand-made
messages) on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.wire import fix
from live.wire.fix import FixMessage
from live.wire.fix_session import FixSession, SeqStore

SEC = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000 * SEC

    def __call__(self) -> int:
        return self.t


def pair(tmp: Path | None = None, hb: int = 30) -> tuple[FixSession, FixSession, Clock]:
    clock = Clock()
    ini = FixSession("CLI", "VEN", SeqStore(None if tmp is None else tmp / "c"),
                     heartbeat_s=hb, clock=clock)
    acc = FixSession("VEN", "CLI", SeqStore(None if tmp is None else tmp / "v"), clock=clock)
    acc.accept_logon = lambda m: None
    return ini, acc, clock


def pump(a: FixSession, b: FixSession) -> tuple[list[FixMessage], list[FixMessage]]:
    """Deliver each side's output to the other until both are quiet; returns the
    application messages each received."""
    got_a: list[FixMessage] = []
    got_b: list[FixMessage] = []
    for _ in range(20):
        out_a, out_b = a.take_output(), b.take_output()
        if not out_a and not out_b:
            break
        got_b += b.receive(out_a)
        got_a += a.receive(out_b)
    return got_a, got_b


def logged_on(tmp: Path | None = None, hb: int = 30) -> tuple[FixSession, FixSession, Clock]:
    ini, acc, clock = pair(tmp, hb)
    ini.logon()
    pump(ini, acc)
    assert ini.logged_on
    assert acc.logged_on
    assert acc.heartbeat_s == hb
    return ini, acc, clock


def order(s: FixSession, cl: str) -> int:
    return s.send(fix.NEW_ORDER_SINGLE, [(11, cl), (55, "X"), (54, 1), (38, 1), (40, 2),
                                         (44, 1), (60, "20240101-00:00:00")])


def test_logon_and_application_flow_in_sequence() -> None:
    ini, acc, _ = logged_on()
    order(ini, "a")
    order(ini, "b")
    _, got = pump(ini, acc)
    assert [m.get(11) for m in got] == [b"a", b"b"]
    assert acc.store.next_in == ini.store.next_out == 4


def test_gap_is_filled_by_resend_and_applied_once() -> None:
    ini, acc, _ = logged_on()
    order(ini, "a")
    lost = ini.take_output()  # never delivered
    assert lost
    order(ini, "b")
    order(ini, "c")
    got = acc.receive(ini.take_output())
    assert got == []  # nothing above the gap is applied
    assert acc.received[b"D"] == 2
    _, got = pump(ini, acc)  # acc's ResendRequest, ini's resend (PossDup), acc applies
    assert [m.get(11) for m in got] == [b"a", b"b", b"c"]
    assert all(m.poss_dup for m in got)
    assert ini.received[fix.RESEND_REQUEST] == 1
    # the same messages again (a second resend) are dropped as duplicates
    ini._resend(FixMessage(fix.RESEND_REQUEST, ((7, b"2"), (16, b"0")), b""))
    _, again = pump(ini, acc)
    assert again == []
    assert acc.store.next_in == ini.store.next_out


def test_resend_gap_fills_admin_messages_and_unknown_ones() -> None:
    ini, acc, clock = logged_on()
    clock.t += 31 * SEC
    ini.tick()  # a Heartbeat (admin)
    order(ini, "a")
    ini.store.next_out += 2  # two we never stored
    order(ini, "b")
    ini.take_output()  # all lost
    acc.receive(ini.take_output())
    acc.send(fix.RESEND_REQUEST, [(7, 2), (16, 0)])
    raw = acc.take_output()
    ini.receive(raw)
    resent = fix.FixReader().feed(ini.take_output())
    types = [(m.msg_type, m.seq, m.get(36)) for m in resent if isinstance(m, FixMessage)]
    assert types == [(b"4", 2, b"3"), (b"D", 3, None), (b"4", 4, b"6"), (b"D", 6, None)]


def test_sequence_too_low_without_possdup_ends_the_session() -> None:
    _ini, acc, _ = logged_on()
    raw = fix.encode(fix.HEARTBEAT, [], seq=1, sender="CLI", target="VEN",
                     sending_time=b"20240101-00:00:00.000")
    acc.receive(raw)
    assert acc.closed is not None
    assert "too low" in acc.take_output().decode()


def test_logon_without_heartbeat_interval_is_refused() -> None:
    _, acc, _ = pair()
    raw = fix.encode(fix.LOGON, [(98, 0)], seq=1, sender="CLI", target="VEN",
                     sending_time=b"20240101-00:00:00.000")
    acc.receive(raw)
    assert not acc.logged_on
    assert "HeartBtInt" in (acc.closed or "")
    assert b"35=5" in acc.take_output()


def test_first_message_must_be_logon_and_compids_must_match() -> None:
    _, acc, _ = pair()
    acc.receive(fix.encode(fix.HEARTBEAT, [], seq=1, sender="CLI", target="VEN",
                           sending_time=b"20240101-00:00:00.000"))
    assert "not Logon" in (acc.closed or "")
    _, acc, _ = pair()
    acc.receive(fix.encode(fix.LOGON, [(108, 30)], seq=1, sender="EVE", target="VEN",
                           sending_time=b"20240101-00:00:00.000"))
    assert "CompID" in (acc.closed or "")


def test_garbled_frames_are_counted_and_ignored() -> None:
    ini, acc, _ = logged_on()
    order(ini, "a")
    raw = bytearray(ini.take_output())
    raw[30] ^= 0x20  # checksum no longer holds
    assert acc.receive(bytes(raw)) == []
    assert acc.bad_frames == 1
    assert acc.closed is None


def test_heartbeats_test_request_and_silence() -> None:
    ini, acc, clock = logged_on(hb=10)
    clock.t += 10 * SEC
    acc.tick()
    beat = acc.take_output()
    assert b"35=0" in beat  # our heartbeat after an idle interval
    ini.receive(beat)
    clock.t += 3 * SEC  # 13 s without hearing from the initiator
    acc.tick()
    out = acc.take_output()
    assert b"35=1" in out  # a TestRequest
    ini.receive(out)
    assert b"35=0" in ini.take_output()  # answered with a Heartbeat (112 echoed)
    clock.t += 30 * SEC
    acc.tick()
    assert acc.closed == "peer silent"


def test_sequence_reset_moves_the_expected_number() -> None:
    _, acc, _ = logged_on()
    acc.receive(fix.encode(fix.SEQUENCE_RESET, [(36, 50)], seq=999, sender="CLI",
                           target="VEN", sending_time=b"20240101-00:00:00.000"))
    assert acc.store.next_in == 50


def test_store_persists_and_survives_a_torn_tail(tmp_path: Path) -> None:
    ini, acc, _ = logged_on(tmp_path)
    order(ini, "a")
    pump(ini, acc)
    ini.store.close()
    acc.store.close()
    again = SeqStore(tmp_path / "c")
    assert (again.next_out, again.next_in) == (3, 2)
    assert again.sent(2) is not None
    assert b"11=a" in (again.sent(2) or b"")
    again.close()
    with (tmp_path / "c" / "sent.log").open("ab") as f:
        f.write(b"3 500\n8=FIX.4.4")  # a write cut short by a crash
    torn = SeqStore(tmp_path / "c")
    assert torn.sent(2) is not None
    assert torn.sent(3) is None
    torn.close()


def test_reset_seq_num_flag_restarts_both_sides(tmp_path: Path) -> None:
    ini, acc, _ = logged_on(tmp_path)
    order(ini, "a")
    pump(ini, acc)
    ini2 = FixSession("CLI", "VEN", SeqStore(tmp_path / "c2"), clock=ini.clock)
    acc.new_connection()
    ini2.logon(reset=True)
    pump(ini2, acc)
    assert acc.logged_on
    assert acc.store.next_in == 2
    assert acc.store.next_out == 2
    for st in (ini.store, ini2.store, acc.store):
        st.close()


@pytest.mark.parametrize("bad", [b"", b"x" * 10])
def test_unusable_seqs_file_starts_at_one(tmp_path: Path, bad: bytes) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "seqs").write_bytes(bad)
    st = SeqStore(tmp_path / "s")
    assert (st.next_out, st.next_in) == (1, 1)
    st.close()
