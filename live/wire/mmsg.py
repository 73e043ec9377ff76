"""Many datagrams per system call: Linux ``sendmmsg`` / ``recvmmsg`` through ctypes.

A MoldUDP64 feed is a stream of small packets (~1.2 kB, ~40 messages each). Sent or read one
``sendmsg`` / ``recv_into`` at a time from Python, each packet costs a system call plus a few
microseconds of interpreter work, as much as decoding all its messages. These classes keep
the message headers and I/O vectors as preallocated numpy arrays laid out as the C structs
(filled with array operations, never a Python loop per packet) and move up to
:data:`MAX_BATCH` datagrams per call.

:data:`AVAILABLE` is False where the C library lacks the calls or lays the structs out
otherwise than checked here (not Linux x86-64 / aarch64): callers then keep their
one-packet-per-call path.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit, types

#: datagrams per call at most (the kernel's UIO_MAXIOV caps ``vlen``)
MAX_BATCH: Final = 1024
MSG_DONTWAIT: Final = 0x40
MSG_TRUNC: Final = 0x20
#: the socket option (and control message type) of the kernel's receive stamps, ns
SO_TIMESTAMPNS: Final = getattr(socket, "SO_TIMESTAMPNS", 35)
#: a receive stamp's control message, as int64 words: its length (CMSG_LEN of a struct
#: timespec), its level and type, the stamp's seconds and nanoseconds
STAMP_WORDS: Final = 4
STAMP_LEN: Final = 32
STAMP_KIND: Final = socket.SOL_SOCKET | (SO_TIMESTAMPNS << 32)


@njit(cache=True, inline="always")
def stamp_ns(stamps: npt.NDArray[np.int64], k: int) -> int:
    """The receive stamp (realtime ns) the kernel wrote into control buffer ``k`` of
    :attr:`BatchReceiver.stamps`; 0 when it wrote none there."""
    w = stamps[k]
    if w[0] != STAMP_LEN or w[1] != STAMP_KIND:
        return 0
    return w[2] * 1_000_000_000 + w[3]

#: struct iovec
IOVEC: Final = np.dtype([("base", "<u8"), ("len", "<u8")])
#: struct mmsghdr: struct msghdr, then the call's byte count for the datagram
MMSGHDR: Final = np.dtype([
    ("name", "<u8"), ("namelen", "<u4"), ("_pad0", "<u4"), ("iov", "<u8"), ("iovlen", "<u8"),
    ("control", "<u8"), ("controllen", "<u8"), ("flags", "<i4"), ("_pad1", "<u4"),
    ("len", "<u4"), ("_pad2", "<u4"),
])
_SOCKADDR_IN: Final = 16


class _Msghdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int),
    )


class _Mmsghdr(ctypes.Structure):
    _fields_ = (("hdr", _Msghdr), ("len", ctypes.c_uint))


def _layout_matches() -> bool:
    """The numpy layouts above are this platform's C structs (checked, not assumed)."""
    names = ("name", "namelen", "iov", "iovlen", "control", "controllen", "flags")
    fields = MMSGHDR.fields
    assert fields is not None
    return (
        ctypes.sizeof(ctypes.c_void_p) == 8
        and ctypes.sizeof(_Mmsghdr) == MMSGHDR.itemsize
        and all(getattr(_Msghdr, n).offset == fields[n][1] for n in names)
        and _Mmsghdr.len.offset == fields["len"][1]
        and struct.calcsize("@PN") == IOVEC.itemsize
        and np.little_endian
    )


def _libc() -> Any:
    try:
        lib = ctypes.CDLL(None, use_errno=True)
        send, recv = lib.sendmmsg, lib.recvmmsg
    except (OSError, AttributeError):
        return None
    send.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    send.restype = ctypes.c_int
    recv.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    recv.restype = ctypes.c_int
    return lib


_LIB: Any = _libc() if _layout_matches() else None
#: batched calls can be used here
AVAILABLE: Final = _LIB is not None and hasattr(socket, "AF_INET")

# The same C calls for compiled kernels (numba resolves the symbols in the process when a
# kernel is compiled or loaded from its cache; pointers are passed as integers): a feed
# handler's receive loop then runs without returning to Python between batches. Only call
# them where :data:`AVAILABLE`.
#: ``recvmmsg(fd, struct mmsghdr *, vlen, flags, struct timespec *)``
recvmmsg_nb = types.ExternalFunction(
    "recvmmsg", types.intc(types.intc, types.uintp, types.uintc, types.intc, types.uintp))
#: ``clock_gettime(clockid, struct timespec *)``
clock_gettime_nb = types.ExternalFunction("clock_gettime", types.intc(types.intc, types.uintp))


def _sockaddr_in(host: str, port: int) -> bytes:
    """struct sockaddr_in of an IPv4 address (family in host order, port big-endian)."""
    return struct.pack("=H", socket.AF_INET) + struct.pack(">H", port) + \
        socket.inet_aton(host) + bytes(8)


def _addr(a: np.ndarray) -> int:
    return int(a.ctypes.data)


class BatchSender:
    """Sends packets ``header[k] + buf[starts[k]:ends[k]]`` to every target, in order, with
    as few ``sendmmsg`` calls as the batch allows. The socket's blocking mode decides what a
    full send buffer does (a blocking socket waits for room: nothing is lost)."""

    def __init__(self, sock: socket.socket, targets: Sequence[tuple[str, int]]) -> None:
        if not AVAILABLE:
            msg = "sendmmsg is not available on this platform"
            raise OSError(msg)
        self.sock = sock
        self.n_targets = len(targets)
        self._names = np.frombuffer(b"".join(_sockaddr_in(h, p) for h, p in targets),
                                    np.uint8).copy()
        self._cap = 0
        self._grow(64)

    def _grow(self, packets: int) -> None:
        cap = max(packets, 2 * self._cap)
        n = cap * self.n_targets
        self._msgs = np.zeros(n, MMSGHDR)
        self._iov = np.zeros(2 * n, IOVEC)
        self._msgs["iov"] = _addr(self._iov) + 2 * IOVEC.itemsize * np.arange(n, dtype=np.uint64)
        self._msgs["iovlen"] = 2
        self._msgs["namelen"] = _SOCKADDR_IN
        self._msgs["name"] = _addr(self._names) + _SOCKADDR_IN * np.tile(
            np.arange(self.n_targets, dtype=np.uint64), cap)
        self._cap = cap

    def send(self, headers: npt.NDArray[np.uint8], buf: npt.NDArray[np.uint8],
             starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> None:
        """``headers``: (n, h) bytes, C-contiguous; ``buf`` the contiguous bytes the packets'
        bodies are ranges of. Both must stay alive for the call (they do: it returns when
        the kernel has copied every datagram)."""
        n = len(starts)
        if n == 0:
            return
        if n > self._cap:
            self._grow(n)
        t = self.n_targets
        m = n * t
        iov = self._iov[: 2 * m].reshape(n, t, 2)
        hlen = headers.shape[1]
        iov["base"][:, :, 0] = (_addr(headers) + hlen * np.arange(n, dtype=np.uint64))[:, None]
        iov["len"][:, :, 0] = hlen
        iov["base"][:, :, 1] = (_addr(buf) + starts.astype(np.uint64))[:, None]
        iov["len"][:, :, 1] = (ends - starts).astype(np.uint64)[:, None]
        fd = self.sock.fileno()
        base = _addr(self._msgs)
        done = 0
        while done < m:
            k = min(m - done, MAX_BATCH)
            r = _LIB.sendmmsg(fd, base + done * MMSGHDR.itemsize, k, 0)
            if r < 0:
                err = ctypes.get_errno()
                if err == errno.EINTR:
                    continue
                raise OSError(err, f"sendmmsg: {os.strerror(err)}")
            done += r


class BatchReceiver:
    """Reads up to ``slots`` datagrams per ``recvmmsg`` call into slot ``k`` of ``buf``
    (``slot`` bytes each); never waits (MSG_DONTWAIT)."""

    def __init__(self, sock: socket.socket, buf: npt.NDArray[np.uint8], slot: int,
                 slots: int) -> None:
        if not AVAILABLE:
            msg = "recvmmsg is not available on this platform"
            raise OSError(msg)
        if buf.nbytes < slot * slots or not buf.flags.c_contiguous:
            msg = "the receive buffer must be contiguous and hold every slot"
            raise ValueError(msg)
        self.sock = sock
        self.buf = buf  # kept alive: the kernel writes through its address
        self._iov = np.zeros(slots, IOVEC)
        self._iov["base"] = _addr(buf) + slot * np.arange(slots, dtype=np.uint64)
        self._iov["len"] = slot
        self._msgs = np.zeros(slots, MMSGHDR)
        self._msgs["iov"] = _addr(self._iov) + IOVEC.itemsize * np.arange(slots, dtype=np.uint64)
        self._msgs["iovlen"] = 1
        self._base = _addr(self._msgs)  # (reading .ctypes makes an object each time)
        #: address of the ``struct mmsghdr`` array, for compiled callers of ``recvmmsg_nb``
        self.headers_address = self._base
        self.lengths = self._msgs["len"]  #: bytes of each datagram read (a view)
        self.flags = self._msgs["flags"]  #: MSG_TRUNC set: larger than its slot, cut
        #: each slot's control buffer: the kernel's receive stamp once :meth:`stamp` is on
        #: (``STAMP_WORDS`` int64 words: length, level and type, seconds, nanoseconds)
        self.stamps = np.zeros((slots, STAMP_WORDS), np.int64)
        self.stamping = False

    def stamp(self) -> bool:
        """Have the kernel stamp each datagram as it receives it (``SO_TIMESTAMPNS``:
        realtime ns, taken on the kernel's receive path, before the socket's queue) into
        :attr:`stamps`; False where the socket refuses. The kernel turns stamping on a
        moment later (deferred work, the first socket of the system to ask): a datagram
        that arrives before is stamped when it is read (a runner asks at startup)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            return False
        self._msgs["control"] = _addr(self.stamps) + 8 * STAMP_WORDS * np.arange(
            len(self._msgs), dtype=np.uint64)
        self.stamping = True
        self.offer_stamps(0, len(self._msgs))
        return True

    def offer_stamps(self, k0: int, k1: int) -> None:
        """Slots ``k0..k1-1`` offer their whole control buffer again, emptied (the kernel
        leaves each slot's length at what it wrote there: nothing, for a datagram it gave no
        stamp), where stamping is on."""
        if self.stamping:
            self._msgs["controllen"][k0:k1] = 8 * STAMP_WORDS
            self.stamps[k0:k1, 0] = 0

    def received_ns(self, k: int) -> int:
        """The kernel's receive stamp of the datagram in slot ``k`` of the last call (0:
        none: stamps off, or the kernel gave none)."""
        return int(stamp_ns(self.stamps, k)) if self.stamping else 0

    def recv(self, k0: int, k1: int) -> int:
        """Read into slots ``k0..k1-1``; the number read (0 when none is waiting). Errors
        other than "nothing waiting" raise OSError."""
        if k1 <= k0:
            return 0
        self.offer_stamps(k0, k1)
        r = _LIB.recvmmsg(self.sock.fileno(), self._base + k0 * MMSGHDR.itemsize,
                          min(k1 - k0, MAX_BATCH), MSG_DONTWAIT, None)
        if r >= 0:
            return int(r)
        err = ctypes.get_errno()
        if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
            return 0
        raise OSError(err, f"recvmmsg: {os.strerror(err)}")
