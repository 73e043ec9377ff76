"""The feed handler's compiled receive loop (a poll in sequence without an ``on_packet`` tap:
recvmmsg, framing, decode and book in one call) and its Python path (with a tap) give the
same book, book rows, counters and reports for the same datagrams on 127.0.0.1: clean
packets, duplicates, heartbeats, garbage, another session's packets, a refused ITCH
message, packets out of order (a gap held, then filled), a book that must grow in the
middle of a batch, and the end of session; and the book is the stored day's."""

from __future__ import annotations

import datetime as dt
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from framework.book.l2 import l2_snapshot
from framework.book.replay import replay_book_rows
from framework.ingest.synthetic import generate_day
from live.feeds.itch_mold import BAD_PACKET_REASONS, RECV_BUFFER, MoldFeedHandler
from live.feeds.itch_mold_nb import PKT_SEQ_RANGE
from live.venue.replay import build_replay
from live.wire import mmsg
from live.wire.moldudp64 import encode_end_of_session, encode_heartbeat, encode_packet

pytestmark = pytest.mark.skipif(not mmsg.AVAILABLE, reason="no recvmmsg here")

DATE = dt.date(2024, 3, 1)
SESSION = b"FAST      "


def _datagrams(msgs: list[bytes], rng: np.random.Generator) -> tuple[list[bytes], int]:
    """The day's messages in packets of 1..40, with the kinds of trouble a feed meets mixed
    in; returns the datagrams and the sequence number after the last message."""
    bad_itch = b"Z" + bytes(10)  # an unknown ITCH type, in sequence: refused and counted
    msgs = [*msgs[:50], bad_itch, *msgs[50:]]
    pkts: list[bytes] = []
    seq, a = 1, 0
    while a < len(msgs):
        b = min(len(msgs), a + int(rng.integers(1, 41)))
        pkts.append(encode_packet(SESSION, seq, msgs[a:b]))
        seq += b - a
        a = b
    h = len(pkts) // 2  # the middle two out of order: a gap opens, its fill arrives next
    pkts[h], pkts[h + 1] = pkts[h + 1], pkts[h]
    out: list[bytes] = []
    for k, p in enumerate(pkts):
        out.append(p)
        if k % 11 == 5:
            out.append(p)  # a duplicate
        if k % 13 == 7:
            out.append(encode_heartbeat(SESSION, int.from_bytes(p[10:18], "big")))
        if k % 17 == 3:
            out.append(rng.integers(0, 256, int(rng.integers(0, 60)), np.uint8).tobytes())
        if k % 19 == 9:
            out.append(encode_packet("OTHER", 1, msgs[:2]))
    out.append(encode_end_of_session(SESSION, seq))
    return out, seq


@pytest.mark.parametrize(("batch", "capacity"), [(4, 8), (64, 1 << 16)])
def test_compiled_and_python_paths_agree(batch: int, capacity: int) -> None:
    day = generate_day(date=DATE, n_events=4000, seed=11, mode="l3")
    rep = build_replay(day.events, day.instrument, DATE)
    datagrams, end = _datagrams(rep.stream.messages(), np.random.default_rng(batch))
    handlers = [
        MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE, price_step=rep.price_step,
                        qty_step=rep.qty_step, session=SESSION, batch=batch,
                        book_capacity=capacity, record_rows=len(datagrams), gap_timeout_s=60)
        for _ in range(2)
    ]
    fast, slow = handlers
    taps: list[int] = []
    slow.on_packet = lambda pkt, _ts: taps.append(len(pkt))  # a tap: the Python path
    try:
        for h in handlers:
            h.warm_up()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in datagrams:
                for h in handlers:
                    s.sendto(d, ("127.0.0.1", h.port))
        deadline = time.monotonic() + 30
        for h in handlers:
            while not h.ended:
                assert time.monotonic() < deadline, f"stuck at {h.expected} of {end}"
                h.poll(timeout_s=0.05)
        assert fast.compiled_polls > 0
        assert slow.compiled_polls == 0
        assert len(taps) == len(datagrams)
        for h in handlers:
            assert h.expected == h.end_seq == end
            assert h.gaps == 1
            assert h.bad["unknown ITCH message type"] == 1
            assert h.bad["packet of another MoldUDP64 session"] == sum(
                d[:10] == b"OTHER     " for d in datagrams)
        assert fast.messages == slow.messages == end - 1
        assert fast.packets == slow.packets
        assert fast.heartbeats == slow.heartbeats > 0
        assert +fast.bad == +slow.bad
        rows_f, seqs_f = fast.recorded()
        rows_s, seqs_s = slow.recorded()
        assert np.array_equal(seqs_f, seqs_s)
        assert np.array_equal(rows_f, rows_s)
        ref = replay_book_rows(day.events, levels=10, l3=True)[-1]
        for h in handlers:
            row = np.empty(40, np.int64)
            l2_snapshot(h.book[0], h.book[1], 10, row)
            assert np.array_equal(row, ref)
        if capacity < 100:  # the pool grew (in the compiled loop for the fast handler)
            assert fast.book[3].shape[0] > capacity
        lat = fast.latency_summary()
        assert lat["messages"] == fast.messages
    finally:
        for h in handlers:
            h.close()


def test_the_receive_buffer_is_what_the_kernel_grants_at_least_rmem_max() -> None:
    """SO_RCVBUFFORCE where the process may, else SO_RCVBUF up to net.core.rmem_max; the
    handler reports what the kernel granted (twice the figure set, by its bookkeeping)."""
    try:
        rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    except OSError:
        pytest.skip("no /proc/sys/net/core/rmem_max")
    h = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            plain = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert plain == 2 * min(RECV_BUFFER, rmem_max)
        assert h.recv_buffer >= plain
        assert h.recv_buffer in (plain, 2 * RECV_BUFFER)
        assert h.recv_buffer == h.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        h.close()


def _wild(msgs: list[bytes]) -> list[bytes]:
    """Packets whose sequence numbers pass 2^63 - 1 (MoldUDP64's u64 allows them; no real
    session gets there): where the first is, where the one after the last would be, and
    control packets announcing such a number."""
    return [
        encode_packet(SESSION, 1 << 63, msgs[:1]),
        encode_packet(SESSION, (1 << 64) - 2, msgs[:1]),  # (one more: the u64 overflows)
        encode_packet(SESSION, (1 << 63) - 2, msgs[:4]),  # its last message passes
        encode_heartbeat(SESSION, 1 << 63),
        encode_end_of_session(SESSION, (1 << 64) - 1),
    ]


def test_sequence_numbers_past_int64_are_bad_packets_on_every_path() -> None:
    """Refused and reported with their reason by the compiled receive loop, the Python
    receive path (a tap) and the journal replay (apply_packets): never taken for packets
    seen already (dropped without a word) nor for a gap; the clean packets around them all
    apply."""
    day = generate_day(date=DATE, n_events=300, seed=3, mode="l3")
    rep = build_replay(day.events, day.instrument, DATE)
    msgs = rep.stream.messages()
    clean, seq = [], 1
    for a in range(0, len(msgs), 10):
        clean.append(encode_packet(SESSION, seq, msgs[a : a + 10]))
        seq += len(msgs[a : a + 10])
    wild = _wild(msgs)
    datagrams = [*clean[:3], *wild, *clean[3:], encode_end_of_session(SESSION, seq)]
    handlers = [
        MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE, price_step=rep.price_step,
                        qty_step=rep.qty_step, session=SESSION, record_rows=len(datagrams),
                        gap_timeout_s=60)
        for _ in range(3)
    ]
    compiled, tapped, replayed = handlers
    tapped.on_packet = lambda _pkt, _ts: None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in datagrams:
                for h in (compiled, tapped):
                    s.sendto(d, ("127.0.0.1", h.port))
        deadline = time.monotonic() + 30
        for h in (compiled, tapped):
            while not h.ended:
                assert time.monotonic() < deadline, f"stuck at {h.expected} of {seq}"
                h.poll(timeout_s=0.05)
        replayed.apply_packets(datagrams, 1)
        assert compiled.compiled_polls > 0
        assert tapped.compiled_polls == 0
        ref = replay_book_rows(day.events, levels=10, l3=True)[-1]
        for h in handlers:
            assert h.ended
            assert +h.bad == {BAD_PACKET_REASONS[PKT_SEQ_RANGE]: len(wild)}
            assert h.messages == len(msgs)
            assert h.gaps == h.heartbeats == 0
            assert h.end_seq == seq
            row = np.empty(40, np.int64)
            l2_snapshot(h.book[0], h.book[1], 10, row)
            assert np.array_equal(row, ref)
    finally:
        for h in handlers:
            h.close()


def test_the_last_int64_sequence_number_still_frames() -> None:
    """The bound is exact: a packet ending at 2^63 - 1 is a packet far ahead (held, a gap),
    not a bad one."""
    h = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE, session=SESSION, gap_timeout_s=60)
    msgs = [b"S\0\0\0\0\0\0\0\0\0\0O"] * 2
    try:
        h.apply_packets([encode_packet(SESSION, (1 << 63) - 3, msgs)], 1)
        assert not +h.bad
        assert h.gaps == 1
        assert h.hi == (1 << 63) - 1
        assert h.messages == 0
    finally:
        h.close()
