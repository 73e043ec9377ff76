"""When an order's bytes left: the kernel's software transmit timestamps of a TCP socket.

The ``sent`` stage of tick-to-order ends when the send call returns. With a network card that
is when the driver has the bytes; on loopback it is not: the call also runs the receiving
side's TCP work and wakes the peer (~10 µs of the ~15 µs a 50-byte send costs on the project's
2-vCPU machine, see ``benchmarks/bench_live_runner.py``'s floor row). The kernel can stamp each
send at the moment its last byte is handed to the network device (``SO_TIMESTAMPING`` with
``SOF_TIMESTAMPING_TX_SOFTWARE``: ``skb_tx_timestamp`` in the driver's transmit, loopback's
included), before any of the receiving side's work. :class:`TxStamps` turns that on for a
socket and reads the stamps back from its error queue, off the hot path: the ``wire`` figure
of :class:`~live.monitor.StageClock` (packet received -> order bytes on the wire).

The stamps are ``CLOCK_REALTIME``, the clock the stage marks use. A stamp waiting in the
error queue makes the socket report POLLERR (the hot loop returns to Python, an event loop
calls its reader): :meth:`TxStamps.take` drains it. The runner drains it when its hot loop
comes back quiet (the ticks' stamps matched to them then), not right after a tick: a burst's
next packets would wait in the socket meanwhile.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: <linux/net_tstamp.h>, <asm-generic/socket.h> (SO_TIMESTAMPING_OLD: a 64-bit timespec on
#: the 64-bit ABIs this runs on)
SO_TIMESTAMPING = 37
SCM_TIMESTAMPING = SO_TIMESTAMPING
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
FLAGS = (SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID
         | SOF_TIMESTAMPING_OPT_TSONLY)
MSG_ERRQUEUE = 0x2000
_TAKE_FLAGS = MSG_ERRQUEUE | int(socket.MSG_DONTWAIT)  # (an int: the enum's | costs a call)
_TS = struct.Struct("=qq")  # ts[0] of struct scm_timestamping: tv_sec, tv_nsec
#: stamps read per :meth:`TxStamps.take` at most (a bound: the queue is drained every call)
MAX_TAKE = 64


class TxStamps:
    """Transmit software timestamps of the TCP socket ``fd``, which stays its owner's: the
    caller uses this only while that socket is open under ``fd`` (:attr:`fd`), and drops it
    when the connection goes. (A duplicate descriptor would keep the connection open after
    its owner closed it.) The socket object it reads through wraps ``fd`` and is detached,
    never closed, when this goes: built once, not per drain (~5 µs of each, measured: the
    runner drains after every heartbeat's stamp)."""

    def __init__(self, fd: int) -> None:
        if not sys.platform.startswith("linux"):
            raise OSError("transmit timestamps need Linux (SO_TIMESTAMPING)")
        self.fd = fd
        self._sock = socket.socket(fileno=fd)  # (its family looked up from the descriptor)
        self._release = weakref.finalize(self, self._sock.detach)
        self._call(lambda s: s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, FLAGS))
        self.taken = 0  #: stamps read
        self.matched = 0  #: stamps that dated a tick's first order message

    def _call(self, fn: Callable[[socket.socket], T]) -> T:
        if not self._release.alive:
            raise OSError(f"transmit stamps of descriptor {self.fd} were closed")
        return fn(self._sock)

    def take(self) -> list[int]:
        """The stamps (realtime ns) waiting in the error queue, oldest first; drains it.
        Nothing (and no error) once the socket is gone: the gateway's reader reports that."""
        try:
            return self._call(self._take)
        except OSError:
            return []

    def _take(self, sock: socket.socket) -> list[int]:
        out: list[int] = []
        for _ in range(MAX_TAKE):
            try:
                _, anc, _, _ = sock.recvmsg(0, 256, _TAKE_FLAGS)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # the socket went away (see take)
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPING and len(data) >= 16:
                    sec, nsec = _TS.unpack_from(data)
                    out.append(sec * 1_000_000_000 + nsec)
        self.taken += len(out)
        return out

    def first_between(self, lo: int, hi: int) -> int:
        """Drain the queue; the earliest stamp in ``[lo, hi]`` (a send's bytes left while its
        call ran), 0 when none is (not stamped yet, or stamping is off)."""
        return self.first_in([(lo, hi)])[0]

    def first_in(self, spans: list[tuple[int, int]]) -> list[int]:
        """Drain the queue once; for each span ``(lo, hi)`` the earliest stamp in it (0: none),
        as :meth:`first_between` (stamps in no span -- other sends' -- are dropped: with no
        span the queue is drained all the same, or its error flag stays up)."""
        stamps = self.take()
        out = [min((t for t in stamps if lo <= t <= hi), default=0) for lo, hi in spans]
        self.matched += sum(1 for t in out if t)
        return out

    def close(self) -> None:
        """Stamping off (the socket stays its owner's)."""
        with contextlib.suppress(OSError):
            self._call(lambda s: s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, 0))
        self._release()  # the descriptor stays open: it is the owner's


__all__ = ["TxStamps"]
