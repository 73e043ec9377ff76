"""The venue's MoldUDP64 side: publisher, retransmission buffer and re-request server.

:class:`MoldPublisher` sends each packet once to every target (unicast, or a multicast group
on the loopback interface), numbering messages from 1, and keeps what it sent in a
retransmission buffer of the last ``buffer_messages`` messages. ``drop`` discards a seeded
fraction of data packets *on the wire only* (they stay in the buffer), so a client's gap
recovery can be tested. :meth:`MoldPublisher.serve_requests` answers re-request packets
arriving on its UDP port by resending the buffered packets that hold the asked messages
(whole packets, as first sent; a client drops what it has). Messages no longer (or not yet)
in the buffer are not answered — a real server cannot invent them — and the refusal is
logged: the client's gap timeout then raises its alarm.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from framework.core.errors import ConfigError
from live.wire import mmsg
from live.wire.mmsg import BatchSender
from live.wire.moldudp64 import (
    COUNT_END_OF_SESSION,
    COUNT_HEARTBEAT,
    HEADER_LEN,
    SESSION_LEN,
    BadFrame,
    decode_request,
    header,
    session_bytes,
)

log = logging.getLogger("hftlab.venue.feed")

#: re-requests read per :meth:`MoldPublisher.serve_requests` call (keeps the loop bounded)
MAX_REQUESTS_PER_POLL = 64
SEND_BUFFER = 8 << 20


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` into a pair, or a ConfigError saying what is wrong."""
    host, sep, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host)
        num = int(port)
    except ValueError:
        num = -1
    if not sep or not 0 < num < 65536:
        msg = f"address {text!r} is not IPV4:PORT (e.g. 127.0.0.1:5000 or 239.1.1.1:5000)"
        raise ConfigError(msg)
    return host, num


def is_multicast(host: str) -> bool:
    return ipaddress.ip_address(host).is_multicast


@dataclass
class _Chunk:
    """Packets sent in one call, as arrays (no Python object per packet): packet ``k`` is
    ``buf[starts[k]:ends[k]]``, ``counts[k]`` messages from sequence number ``firsts[k]``."""

    buf: npt.NDArray[np.uint8]
    firsts: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]


@dataclass
class FeedStats:
    """What the publisher did, for the log and tests."""

    packets_sent: int = 0
    packets_dropped: int = 0  #: discarded on purpose (``drop``)
    messages_published: int = 0
    heartbeats: int = 0
    requests: int = 0
    packets_resent: int = 0
    requests_refused: int = 0  #: asked for messages outside the buffer
    bad_requests: dict[str, int] = field(default_factory=dict)
    dropped_seqs: list[int] = field(default_factory=list)  #: first seq of each dropped packet


class MoldPublisher:
    """Publishes MoldUDP64 packets of one session and answers re-requests."""

    def __init__(
        self,
        *,
        session: str | bytes,
        targets: Sequence[tuple[str, int]],
        rerequest_port: int | None = None,
        rerequest_host: str = "127.0.0.1",
        drop: float = 0.0,
        seed: int = 0,
        buffer_messages: int | None = None,
        interface: str = "127.0.0.1",
    ) -> None:
        if not 0.0 <= drop < 1.0:
            msg = f"--drop {drop} must be a fraction in [0, 1)"
            raise ConfigError(msg)
        if buffer_messages is not None and buffer_messages < 1:
            msg = f"--buffer {buffer_messages} must be at least 1 message"
            raise ConfigError(msg)
        self.session = session_bytes(session)
        self.targets = list(targets)
        self.drop = float(drop)
        self._rng = np.random.default_rng(seed)
        self._draws: npt.NDArray[np.float64] = np.empty(0)
        self._di = 0
        self.buffer_messages = buffer_messages
        self.next_seq = 1
        self.stats = FeedStats()
        # retransmission buffer: chunks of packets as sent, oldest first; the oldest
        # buffered packet is packet _pi0 of chunk _ci0 (those before it were forgotten)
        self._chunks: list[_Chunk | None] = []
        self._chunk_firsts: list[int] = []
        self._ci0 = 0
        self._pi0 = 0
        self._buffered = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        if any(is_multicast(h) for h, _ in self.targets):
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                 socket.inet_aton(interface))
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        #: many packets per system call (None: one sendmsg each)
        self._batch = BatchSender(self.sock, self.targets) if mmsg.AVAILABLE else None
        self._resenders: dict[tuple[str, int], BatchSender] = {}  #: by requester address
        self.req_sock: socket.socket | None = None
        if rerequest_port is not None:
            self.req_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.req_sock.bind((rerequest_host, rerequest_port))
            except OSError as exc:
                self.req_sock.close()
                self.sock.close()
                msg = f"cannot bind the re-request port {rerequest_host}:{rerequest_port}: {exc}"
                raise ConfigError(msg) from exc
            self.req_sock.setblocking(False)

    # --- sending ---------------------------------------------------------------------------
    def _drop_now(self) -> bool:
        if self.drop == 0.0:
            return False
        if self._di >= self._draws.shape[0]:
            self._draws = self._rng.random(4096)
            self._di = 0
        self._di += 1
        return bool(self._draws[self._di - 1] < self.drop)

    def _send(self, hdr: bytes, blocks: bytes | memoryview) -> None:
        # a blocking socket: a full send buffer waits for room instead of losing the packet
        for addr in self.targets:
            self.sock.sendmsg([hdr, blocks], [], 0, addr)

    def publish(self, blocks: bytes | memoryview, count: int) -> int:
        """Send one data packet of ``count`` message blocks (length-prefixed messages);
        returns its first sequence number. The packet is buffered even when dropped."""
        seq = self.next_seq
        buf = np.frombuffer(blocks, np.uint8)
        self._keep(_Chunk(buf, np.array([seq], np.int64), np.array([count], np.int64),
                          np.zeros(1, np.int64), np.array([buf.shape[0]], np.int64)))
        self.stats.messages_published += count
        self._send_data(seq, count, blocks)
        return seq

    def _send_data(self, seq: int, count: int, blocks: bytes | memoryview) -> None:
        if self._drop_now():
            self.stats.packets_dropped += 1
            self.stats.dropped_seqs.append(seq)
            return
        self._send(header(self.session, seq, count), blocks)
        self.stats.packets_sent += 1

    def publish_many(self, buf: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
                     ends: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> None:
        """Send data packets ``k`` = the blocks ``buf[starts[k]:ends[k]]``, ``counts[k]``
        messages each, in order: as :meth:`publish` per packet, with one ``sendmmsg`` per
        up to :data:`live.wire.mmsg.MAX_BATCH` datagrams where the platform has it (and no
        packets are to be dropped). The packets are buffered as one chunk of arrays: no
        Python object per packet."""
        n = len(starts)
        if n == 0:
            return
        counts = counts.astype(np.int64)
        seqs = self.next_seq + np.cumsum(counts) - counts
        # the retransmission buffer first: a re-request may come as soon as one is out
        self._keep(_Chunk(buf, seqs, counts, starts.astype(np.int64), ends.astype(np.int64)))
        self.stats.messages_published += int(counts.sum())
        if self.drop > 0.0 or self._batch is None:
            mv = buf.data
            for seq, c, a, b in zip(seqs.tolist(), counts.tolist(), starts.tolist(),
                                    ends.tolist(), strict=True):
                self._send_data(seq, c, mv[a:b])
            return
        self._batch.send(self._headers(seqs, counts), buf, starts, ends)
        self.stats.packets_sent += n

    def _headers(self, seqs: npt.NDArray[np.int64],
                 counts: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """The packets' 20-byte headers, one row each (C-contiguous, for sendmmsg)."""
        n = seqs.shape[0]
        headers = np.empty((n, HEADER_LEN), np.uint8)
        headers[:, :SESSION_LEN] = np.frombuffer(self.session, np.uint8)
        headers[:, SESSION_LEN : SESSION_LEN + 8] = seqs.astype(">u8").view(np.uint8).reshape(n, 8)
        headers[:, SESSION_LEN + 8 :] = counts.astype(">u2").view(np.uint8).reshape(n, 2)
        return headers

    def _keep(self, chunk: _Chunk) -> None:
        """Buffer a chunk of packets (numbered from ``next_seq``) and advance ``next_seq``."""
        total = int(chunk.counts.sum())
        self._chunks.append(chunk)
        self._chunk_firsts.append(self.next_seq)
        self._buffered += total
        self.next_seq += total
        self._trim()

    def _trim(self) -> None:
        """Forget the oldest packets beyond ``buffer_messages``: a packet goes while the
        packets after it still hold ``buffer_messages``."""
        if self.buffer_messages is None:
            return
        while self._ci0 < len(self._chunks):
            c = self._chunks[self._ci0]
            assert c is not None
            cum = np.cumsum(c.counts[self._pi0 :])
            drop = int(np.searchsorted(cum, self._buffered - self.buffer_messages, "right"))
            if drop:
                self._buffered -= int(cum[drop - 1])
                self._pi0 += drop
            if self._pi0 < c.counts.shape[0]:
                break
            self._chunks[self._ci0] = None  # the whole chunk went: its bytes may go too
            self._ci0 += 1
            self._pi0 = 0
        if self._ci0 > 4096 and self._ci0 * 2 > len(self._chunks):
            del self._chunks[: self._ci0], self._chunk_firsts[: self._ci0]
            self._ci0 = 0

    def heartbeat(self) -> None:
        """A heartbeat carrying the next sequence number."""
        self._send(header(self.session, self.next_seq, COUNT_HEARTBEAT), b"")
        self.stats.heartbeats += 1

    def end_of_session(self) -> None:
        self._send(header(self.session, self.next_seq, COUNT_END_OF_SESSION), b"")

    # --- re-requests -----------------------------------------------------------------------
    @property
    def buffered_range(self) -> tuple[int, int]:
        """``[first, next)`` sequence numbers the buffer can resend."""
        if self._ci0 >= len(self._chunks):
            return self.next_seq, self.next_seq
        c = self._chunks[self._ci0]
        assert c is not None
        return int(c.firsts[self._pi0]), self.next_seq

    def serve_requests(self) -> int:
        """Answer the re-requests waiting on the port (at most :data:`MAX_REQUESTS_PER_POLL`);
        returns how many were read."""
        if self.req_sock is None:
            return 0
        n = 0
        while n < MAX_REQUESTS_PER_POLL:
            try:
                data, addr = self.req_sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable reported on a UDP socket
                log.debug("re-request socket: %s", exc)
                break
            n += 1
            self.answer(data, addr)
        return n

    def answer(self, data: bytes, addr: tuple[str, int]) -> None:
        """Resend the buffered packets holding the messages ``data`` asks for."""
        req = decode_request(data)
        if isinstance(req, BadFrame):
            self.stats.bad_requests[req.reason] = self.stats.bad_requests.get(req.reason, 0) + 1
            log.warning("bad re-request from %s:%d: %s", addr[0], addr[1], req.reason)
            return
        self.stats.requests += 1
        if req.session != self.session:
            log.warning("re-request from %s:%d for session %r, this is %r", addr[0], addr[1],
                        req.session, self.session)
            self.stats.requests_refused += 1
            return
        lo, hi = self.buffered_range
        first, last = req.seq, req.seq + req.count  # [first, last)
        if first < lo or last > hi:
            self.stats.requests_refused += 1
            log.warning("re-request from %s:%d for messages %d..%d: the buffer holds %d..%d",
                        addr[0], addr[1], first, last - 1, lo, hi - 1)
            first, last = max(first, lo), min(last, hi)
            if first >= last:
                return
        ci = max(self._ci0, bisect.bisect_right(self._chunk_firsts, first) - 1)
        while ci < len(self._chunks) and self._chunk_firsts[ci] < last:
            c = self._chunks[ci]
            assert c is not None
            k0 = max(int(np.searchsorted(c.firsts, first, "right")) - 1,
                     self._pi0 if ci == self._ci0 else 0)
            k1 = int(np.searchsorted(c.firsts, last, "left"))
            try:
                self._resend(c, k0, k1, addr)
            except OSError as exc:
                log.warning("resend to %s:%d failed: %s", addr[0], addr[1], exc)
                return
            self.stats.packets_resent += max(k1 - k0, 0)
            ci += 1

    def _resend(self, c: _Chunk, k0: int, k1: int, addr: tuple[str, int]) -> None:
        """Packets ``k0..k1-1`` of a chunk to ``addr``: one sendmmsg per up to
        :data:`live.wire.mmsg.MAX_BATCH` where the platform has it (a gap of thousands of
        messages is ~100 packets), else one sendmsg each."""
        if k1 <= k0:
            return
        if mmsg.AVAILABLE:
            sender = self._resenders.get(addr)
            if sender is None:
                if len(self._resenders) >= 64:  # requesters come and go: keep a few
                    self._resenders.clear()
                sender = self._resenders[addr] = BatchSender(self.sock, [addr])
            sender.send(self._headers(c.firsts[k0:k1], c.counts[k0:k1]), c.buf,
                        c.starts[k0:k1], c.ends[k0:k1])
            return
        mv = c.buf.data
        for k in range(k0, k1):
            hdr = header(self.session, int(c.firsts[k]), int(c.counts[k]))
            self.sock.sendmsg([hdr, mv[c.starts[k] : c.ends[k]]], [], 0, addr)

    def close(self) -> None:
        self.sock.close()
        if self.req_sock is not None:
            self.req_sock.close()
