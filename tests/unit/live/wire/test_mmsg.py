"""Many datagrams per system call: what goes out with sendmmsg comes back with recvmmsg byte
for byte, in order, to every target; the publisher's batch path puts on the wire (and in
its retransmission buffer) exactly what packet-by-packet publishing does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from live.venue.feed import MoldPublisher
from live.wire import mmsg
from live.wire.moldudp64 import HEADER_LEN, encode_request, header, session_bytes

pytestmark = pytest.mark.skipif(not mmsg.AVAILABLE, reason="no sendmmsg/recvmmsg here")

SLOT = 2048


@pytest.fixture
def receivers() -> Iterator[list[socket.socket]]:
    socks = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    yield socks
    for s in socks:
        s.close()


def drain(sock: socket.socket, want: int, timeout_s: float = 20.0) -> list[bytes]:
    """Datagrams read with a BatchReceiver until ``want`` came (bounded in time)."""
    buf = np.zeros(64 * SLOT, np.uint8)
    rx = mmsg.BatchReceiver(sock, buf, SLOT, 64)
    out: list[bytes] = []
    end = time.monotonic() + timeout_s
    while len(out) < want and time.monotonic() < end:
        n = rx.recv(0, 64)
        out += [buf[k * SLOT : k * SLOT + int(rx.lengths[k])].tobytes() for k in range(n)]
        if n == 0:
            time.sleep(0.001)
    return out


def packets(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A byte buffer and ``n`` packet ranges in it, of random lengths (some empty)."""
    lens = rng.integers(0, 1400, n)
    lens[rng.random(n) < 0.05] = 0
    buf = rng.integers(0, 256, int(lens.sum()) + 7, dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64) + 7
    return buf, starts, starts + lens


def test_every_packet_reaches_every_target_in_order_across_batches(
    receivers: list[socket.socket],
) -> None:
    rng = np.random.default_rng(3)
    n = mmsg.MAX_BATCH + 700  # more than one call's worth per target
    buf, starts, ends = packets(rng, n)
    headers = rng.integers(0, 256, (n, HEADER_LEN), dtype=np.uint8)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    targets = [s.getsockname() for s in receivers]
    got: dict[int, list[bytes]] = {}
    readers = [
        threading.Thread(target=lambda k=k: got.__setitem__(k, drain(receivers[k], n)))
        for k in range(2)
    ]
    for t in readers:
        t.start()
    try:
        sender = mmsg.BatchSender(tx, targets)
        for k in range(0, n, 300):  # several sends, the arrays grown on the way
            sender.send(headers[k : k + 300], buf, starts[k : k + 300], ends[k : k + 300])
    finally:
        for t in readers:
            t.join(30)
        tx.close()
    want = [headers[k].tobytes() + buf[starts[k] : ends[k]].tobytes() for k in range(n)]
    assert got[0] == want
    assert got[1] == want


def test_a_datagram_larger_than_its_slot_is_cut_and_flagged(
    receivers: list[socket.socket],
) -> None:
    rx_sock = receivers[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"a" * 100, rx_sock.getsockname())
        tx.sendto(b"b" * (SLOT + 500), rx_sock.getsockname())
    buf = np.zeros(4 * SLOT, np.uint8)
    rx = mmsg.BatchReceiver(rx_sock, buf, SLOT, 4)
    n = 0
    end = time.monotonic() + 10
    while n < 2 and time.monotonic() < end:
        n += rx.recv(n, 4)
    assert n == 2
    assert list(rx.lengths[:2]) == [100, SLOT]
    assert not rx.flags[0] & mmsg.MSG_TRUNC
    assert rx.flags[1] & mmsg.MSG_TRUNC
    assert rx.recv(2, 4) == 0  # nothing waiting: no wait, no error


def test_publish_many_sends_and_buffers_what_publish_does(
    receivers: list[socket.socket],
) -> None:
    rng = np.random.default_rng(5)
    n = 500
    counts = rng.integers(1, 40, n)
    buf, starts, ends = packets(rng, n)
    wires: list[list[bytes]] = []
    resent: list[list[bytes]] = []
    for batched in (False, True):
        target = receivers[int(batched)]
        pub = MoldPublisher(session="SESS", targets=[target.getsockname()], buffer_messages=3000)
        try:
            if batched:
                for k in range(0, n, 128):
                    pub.publish_many(buf, starts[k : k + 128], ends[k : k + 128],
                                     counts[k : k + 128])
            else:
                mv = buf.data
                for a, b, c in zip(starts.tolist(), ends.tolist(), counts.tolist(), strict=True):
                    pub.publish(mv[a:b], c)
            wires.append(drain(target, n))
            # a re-request for messages still buffered: the same packets come back
            first = int(counts.sum()) - 2000
            pub.answer(encode_request(session_bytes("SESS"), first, 50), target.getsockname())
            resent.append(drain(target, 1_000, timeout_s=1.0))
            assert pub.next_seq == 1 + int(counts.sum())
            assert pub.stats.packets_sent == n
            assert pub.stats.messages_published == int(counts.sum())
            assert pub.buffered_range[1] - pub.buffered_range[0] <= 3000 + 40
        finally:
            pub.close()
    assert wires[0] == wires[1]
    assert resent[0] == resent[1]
    assert resent[1]  # something was resent
    seq = 1
    for k, pkt in enumerate(wires[1]):  # headers numbered as the messages go
        assert pkt[:HEADER_LEN] == header(session_bytes("SESS"), seq, int(counts[k]))
        seq += int(counts[k])


def test_receive_stamps_are_the_kernels_and_each_slot_has_its_own(
    receivers: list[socket.socket],
) -> None:
    """``BatchReceiver.stamp``: each datagram read carries the kernel's receive time
    (realtime ns), between its send and the receive call, in arrival order; slots of
    the call that read nothing, and a receiver not stamping, give none (0)."""
    rx_sock = receivers[0]
    buf = np.zeros(8 * SLOT, np.uint8)
    plain = mmsg.BatchReceiver(rx_sock, buf, SLOT, 8)
    assert plain.received_ns(0) == 0
    rx = mmsg.BatchReceiver(rx_sock, buf, SLOT, 8)
    assert rx.stamp()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        # the kernel turns receive stamping on a moment later (deferred work); until then a
        # datagram is stamped when it is read: probe until one is stamped on arrival
        end = time.monotonic() + 5
        while time.monotonic() < end:
            tx.sendto(b"probe", rx_sock.getsockname())
            time.sleep(0.002)
            before_read = time.time_ns()
            if rx.recv(0, 8) == 1 and 0 < rx.received_ns(0) < before_read:
                break
        else:
            pytest.fail("the kernel never stamped a datagram on arrival")
    sent: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for k in range(3):
            sent.append(time.time_ns())
            tx.sendto(bytes([k]) * 50, rx_sock.getsockname())
            time.sleep(0.002)
    n = 0
    end = time.monotonic() + 10
    while n < 3 and time.monotonic() < end:
        n += rx.recv(n, 8)
    after = time.time_ns()
    assert n == 3
    stamps = [rx.received_ns(k) for k in range(3)]
    assert all(s0 <= st <= after for s0, st in zip(sent, stamps, strict=True)), (sent, stamps)
    assert stamps == sorted(stamps)
    assert stamps[2] - stamps[0] >= 2_000_000
    assert [bytes(buf[k * SLOT : k * SLOT + 1]) for k in range(3)] == [b"\0", b"\1", b"\2"]
    assert rx.received_ns(3) == 0  # a slot the call did not fill
    assert rx.recv(0, 8) == 0
    assert rx.received_ns(0) == 0  # the call that read nothing cleared the stamps it offered
