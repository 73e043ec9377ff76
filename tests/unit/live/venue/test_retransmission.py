"""The venue's retransmission buffer keeps packets in chunks of arrays (one per publish call):
whatever the chunking, what it keeps is the last ``buffer_messages`` messages' packets (a
packet goes while the packets after it still hold ``buffer_messages``), and a re-request is
answered with exactly the kept packets that hold the asked messages, across chunk edges."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest

from live.venue.feed import MoldPublisher
from live.wire.moldudp64 import HEADER_LEN, encode_request, header, session_bytes

SESSION = session_bytes("RETX")


@pytest.fixture
def sink() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.05)
    yield s
    s.close()


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            out.append(sock.recv(4096))
        except TimeoutError:
            break
    return out


def _kept(counts: list[int], keep: int | None) -> int:
    """Index of the oldest packet the reference rule keeps."""
    if keep is None:
        return 0
    total, k = sum(counts), 0
    while k < len(counts) and total - counts[k] >= keep:
        total -= counts[k]
        k += 1
    return k


@pytest.mark.parametrize("keep", [None, 1, 37, 400, 10_000])
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_buffer_keeps_the_reference_packets_and_resends_them(
    sink: socket.socket, keep: int | None, chunk: int
) -> None:
    rng = np.random.default_rng(chunk * 31 + (keep or 0))
    n = 150
    counts = rng.integers(1, 20, n).astype(np.int64)
    lens = 3 * counts  # one 1-byte message block per message
    buf = rng.integers(0, 256, int(lens.sum()), dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    ends = starts + lens
    pub = MoldPublisher(session=SESSION, targets=[sink.getsockname()], buffer_messages=keep)
    try:
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            if chunk == 1:
                pub.publish(buf.data[starts[a] : ends[a]], int(counts[a]))
            else:
                pub.publish_many(buf, starts[a:b], ends[a:b], counts[a:b])
        assert len(_drain(sink)) == n
        firsts = (1 + np.cumsum(counts) - counts).tolist()
        k0 = _kept(counts.tolist(), keep)
        assert pub.buffered_range == (firsts[k0], 1 + int(counts.sum()))
        # every re-request within the buffer: the packets overlapping it, in order, as sent
        for lo, size in ((firsts[k0], 1), (firsts[-1] - 30, 45), (firsts[k0] + 3, 60)):
            first = max(lo, firsts[k0])
            count = min(size, pub.next_seq - first)
            pub.answer(encode_request(SESSION, first, count), sink.getsockname())
            want = [k for k in range(k0, n)
                    if firsts[k] < first + count and firsts[k] + counts[k] > first]
            got = _drain(sink)
            assert [p[:HEADER_LEN] for p in got] == [
                header(SESSION, firsts[k], int(counts[k])) for k in want]
            assert [p[HEADER_LEN:] for p in got] == [
                buf[starts[k] : ends[k]].tobytes() for k in want]
        # messages no longer (or never) buffered are refused, not invented
        refused = pub.stats.requests_refused
        if k0 > 0:
            pub.answer(encode_request(SESSION, 1, 1), sink.getsockname())
            assert _drain(sink) == []
            assert pub.stats.requests_refused == refused + 1
        pub.answer(encode_request(SESSION, pub.next_seq, 5), sink.getsockname())
        assert _drain(sink) == []
    finally:
        pub.close()
