"""Kernel transmit stamps of a TCP socket (live.txstamp): the ``wire`` figure's source."""

from __future__ import annotations

import gc
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from live.txstamp import TxStamps

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="SO_TIMESTAMPING is Linux's")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        c = socket.create_connection(ls.getsockname(), timeout=5)
        s, _ = ls.accept()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield s, c
    finally:
        s.close()
        c.close()


def _wait(tx: TxStamps, n: int) -> list[int]:
    got: list[int] = []
    for _ in range(200):  # bounded: the stamps of a loopback send are there at once
        got += tx.take()
        if len(got) >= n:
            break
        time.sleep(0.005)
    return got


def test_each_send_is_stamped_between_its_call_and_its_return(
        pair: tuple[socket.socket, socket.socket]) -> None:
    s, c = pair
    tx = TxStamps(s.fileno())
    spans = []
    for i in range(5):
        t0 = time.time_ns()
        s.send(b"x" * (10 + i))
        spans.append((t0, time.time_ns()))
        assert tx.first_between(*spans[-1]) > 0  # the call's own stamp, realtime ns
    assert tx.matched == 5
    assert c.recv(1000, socket.MSG_WAITALL)  # the bytes went as usual
    # stamps not asked for in time are drained by take, oldest first, one per send
    t0 = time.time_ns()
    for _ in range(3):
        s.send(b"y")
    stamps = _wait(tx, 3)
    assert len(stamps) == 3
    assert stamps == sorted(stamps)
    assert all(t0 <= t <= time.time_ns() for t in stamps)
    assert tx.first_between(0, 1) == 0  # nothing waiting: nothing matched


def test_after_close_the_socket_is_its_owners_and_unstamped(
        pair: tuple[socket.socket, socket.socket]) -> None:
    s, c = pair
    tx = TxStamps(s.fileno())
    tx.close()
    s.send(b"z")
    time.sleep(0.05)
    assert tx.take() == []
    assert c.recv(1) == b"z"  # the descriptor was never closed or duplicated
    s.close()
    assert c.recv(1) == b""  # the peer sees the owner's close: no duplicate kept it open


def test_a_closed_descriptor_gives_no_stamps_and_no_error(
        pair: tuple[socket.socket, socket.socket]) -> None:
    s, _ = pair
    tx = TxStamps(s.fileno())
    s.send(b"a")
    s.close()
    assert tx.take() == []  # (EBADF: the gateway's reader reports a lost session)


def test_a_reader_dropped_without_close_leaves_the_descriptor_open(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """The reader keeps one socket object over the owner's descriptor (not one per drain):
    collected, it is detached, never closed."""
    s, c = pair
    for _ in range(3):
        tx = TxStamps(s.fileno())
        s.send(b"q")
        assert len(_wait(tx, 1)) == 1
        del tx
        gc.collect()
    s.send(b"r")
    assert c.recv(4, socket.MSG_WAITALL) == b"qqqr"  # the owner's socket sends on
    s.close()
    assert c.recv(1) == b""  # and its close is the one the peer sees
