"""The journal's compiled append: a record written straight into the segment's mapping.

:class:`live.journal.JournalWriter` maps its current segment file (``MAP_SHARED``) and keeps
its writing state in an int64 array (``J_*`` below). :func:`append_nb` writes one record
into the mapping (the format of :mod:`live.journal`: 32-byte header, CRC32C over bytes 8..
and the payload) with no system call: once it returns, the record is in the page cache and
survives a ``kill -9`` of the process. Python's ``JournalWriter.append`` and the live
runner's compiled tick path call the same kernel.

The contract with a compiled caller (``buf, st = writer.hot()``):

* ``append_nb(buf, st, kind, stream, ts, payload, n)`` appends ``payload[:n]`` and returns
  the record's sequence number (> 0);
  ``append2_nb(buf, st, kind, stream, ts, a, na, b, nb)`` appends ``a[:na] + b[:nb]`` as one
  payload without a temporary. ``payload``/``a``/``b``: uint8 arrays (or ``bytes``);
  ``kind`` and ``stream`` must fit 16 bits (unchecked here).
* ``-1`` (:data:`NO_ROOM`): nothing was written: the record does not fit the prefaulted
  room, the segment is full, or ``buf`` is not the writer's current mapping. Call
  ``writer.make_room(n)`` (Python: rotates, grows and prefaults), fetch ``buf, st =
  writer.hot()`` again (the old mapping may be gone) and retry.
* ``-2`` (:data:`NOT_SYNCED`, policy ``always`` only): the record was appended (its number
  is ``st[J_SEQ]``) but forcing it to disk failed: call ``writer.sync()``, which raises the
  operating system's error if the disk still refuses.

CRC32C uses the SSE4.2 ``crc32`` instruction when the host has it, else a slice-by-8
table (chosen at import: :data:`HW_CRC`). numba's cache keys compiled code by the host's
CPU name and features (``codegen.magic_tuple()``), so code built with the instruction is
never loaded on a CPU without it. Multi-byte fields are stored little-endian, the host's
order on every platform numba supports.
"""

from __future__ import annotations

from typing import Any

import llvmlite.binding as llvm
import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# -- writer state: st[J_*] -------------------------------------------------------------------
J_POS = 0  #: offset in the mapping where the next record goes (= bytes of the segment used)
J_SEQ = 1  #: the last record's sequence number (the next one is J_SEQ + 1)
J_LIMIT = 2  #: a record must end at or before this offset: min(J_FAULTED, J_SEGEND)
J_ADDR = 3  #: address of the current mapping: another ``buf`` is stale (append says -1)
J_SYNC = 4  #: 1: msync each record (policy ``always``)
J_SYNCED = 5  #: bytes of the current segment known to be on disk
J_FAULTED = 6  #: bytes of the mapping whose pages are prefaulted (writable, no fault)
J_SEGEND = 7  #: where the segment ends for records (rotation point)
J_MAPPED = 8  #: bytes mapped (the file's preallocated size)
J_SEGMENT = 9  #: the current segment's number
J_LEN = 10

NO_ROOM = -1
NOT_SYNCED = -2
HEADER = 32
PAGE = 4096
_MS_SYNC = 4

_features = llvm.get_host_cpu_features()
#: the host has the SSE4.2 crc32 instruction (x86 only)
HW_CRC = bool(_features.get("sse4.2", False) or _features.get("crc32", False)) and \
    llvm.get_process_triple().startswith(("x86_64", "i686", "i386"))

_msync = types.ExternalFunction("msync", types.intc(types.uintp, types.uintp, types.intc))


# -- unaligned little-endian loads and stores into a uint8 array ----------------------------
def _byte_ptr(context: Any, builder: Any, aryty: Any, ary: Any, at: Any) -> Any:
    a = context.make_array(aryty)(context, builder, value=ary)
    return builder.gep(builder.bitcast(a.data, ir.IntType(8).as_pointer()), [at])


def _store_typer(typingctx: Any, buf: Any, at: Any, val: Any) -> Any:
    """``buf[at:at+size(val)] = val`` (little-endian, any alignment)."""
    if not (isinstance(buf, types.Array) and isinstance(val, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ary, at_v, v = args
        p = _byte_ptr(context, builder, sig.args[0], ary, at_v)
        ity = ir.IntType(sig.args[2].bitwidth)
        st = builder.store(v, builder.bitcast(p, ity.as_pointer()))
        st.align = 1
        return context.get_dummy_value()

    return types.none(buf, at, val), codegen


_store: Any = intrinsic(_store_typer)


def _ptr_typer(typingctx: Any, buf: Any, at: Any) -> Any:
    """The address of ``buf[at]`` (an array or a bytes object)."""
    if not isinstance(buf, (types.Array, types.Bytes)):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ary, at_v = args
        return builder.ptrtoint(_byte_ptr(context, builder, sig.args[0], ary, at_v),
                                ir.IntType(64))

    return types.uint64(buf, at), codegen


_ptr: Any = intrinsic(_ptr_typer)
#: ``memcpy(dst, src, n)``
_memcpy = types.ExternalFunction("memcpy", types.voidptr(types.uint64, types.uint64,
                                                         types.uint64))


def _load_u64_typer(typingctx: Any, buf: Any, at: Any) -> Any:
    """The 8 bytes at ``buf[at]`` as a little-endian uint64 (any alignment)."""
    if not isinstance(buf, (types.Array, types.Bytes)):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ary, at_v = args
        p = _byte_ptr(context, builder, sig.args[0], ary, at_v)
        ld = builder.load(builder.bitcast(p, ir.IntType(64).as_pointer()))
        ld.align = 1
        return ld

    return types.uint64(buf, at), codegen


_load_u64: Any = intrinsic(_load_u64_typer)


# -- CRC32C ---------------------------------------------------------------------------------
def _crc_u64_typer(typingctx: Any, crc: Any, v: Any) -> Any:
    """SSE4.2 ``crc32`` of 8 bytes."""
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i64, [i64, i64]), "llvm.x86.sse42.crc32.64.64")
        return builder.call(fn, list(args))

    return types.uint64(types.uint64, types.uint64), codegen


_crc_u64: Any = intrinsic(_crc_u64_typer)


def _crc_u8_typer(typingctx: Any, crc: Any, v: Any) -> Any:
    """SSE4.2 ``crc32`` of one byte."""
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        i32, i8 = ir.IntType(32), ir.IntType(8)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i32, [i32, i8]), "llvm.x86.sse42.crc32.32.8")
        return builder.call(fn, list(args))

    return types.uint32(types.uint32, types.uint8), codegen


_crc_u8: Any = intrinsic(_crc_u8_typer)


def _tables() -> npt.NDArray[np.uint32]:
    """Slice-by-8 tables of the reflected Castagnoli polynomial: ``t[k][b]`` is the CRC
    of byte ``b`` followed by ``k`` zero bytes."""
    t = np.zeros((8, 256), np.uint32)
    c: npt.NDArray[np.uint32] = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        c = np.where(c & 1, (c >> 1) ^ np.uint32(0x82F63B78), c >> 1).astype(np.uint32)
    t[0] = c
    for k in range(1, 8):
        t[k] = (t[k - 1] >> 8) ^ t[0][t[k - 1] & 0xFF]
    return t


_T = _tables()


@njit(cache=True, inline="always")
def crc32c_hw_nb(crc: int, data: Any, start: int, n: int) -> int:
    """CRC32C of ``data[start:start+n]`` continuing ``crc`` (0 to start), by SSE4.2."""
    c = np.uint64(~np.uint32(crc))
    i = start
    end = start + n
    while i + 8 <= end:
        c = _crc_u64(c, _load_u64(data, i))
        i += 8
    c32 = np.uint32(c)
    while i < end:
        c32 = _crc_u8(c32, np.uint8(data[i]))
        i += 1
    return int(~c32 & np.uint32(0xFFFFFFFF))


@njit(cache=True, inline="always")
def crc32c_sw_nb(crc: int, data: Any, start: int, n: int) -> int:
    """CRC32C of ``data[start:start+n]`` continuing ``crc``, by slice-by-8 tables."""
    t = _T
    c = np.uint64(~np.uint32(crc))
    i = start
    end = start + n
    m = np.uint64(0xFF)
    while i + 8 <= end:
        v = _load_u64(data, i) ^ c
        c = np.uint64(t[7, v & m] ^ t[6, (v >> np.uint64(8)) & m]
                      ^ t[5, (v >> np.uint64(16)) & m] ^ t[4, (v >> np.uint64(24)) & m]
                      ^ t[3, (v >> np.uint64(32)) & m] ^ t[2, (v >> np.uint64(40)) & m]
                      ^ t[1, (v >> np.uint64(48)) & m] ^ t[0, v >> np.uint64(56)])
        i += 8
    c32 = np.uint32(c)
    while i < end:
        c32 = t[0, (c32 ^ np.uint32(data[i])) & np.uint32(0xFF)] ^ (c32 >> np.uint32(8))
        i += 1
    return int(~c32 & np.uint32(0xFFFFFFFF))


#: the host's CRC32C kernel: ``crc32c_nb(crc, data, start, n)``
crc32c_nb = crc32c_hw_nb if HW_CRC else crc32c_sw_nb


# -- the append -----------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _append(buf: Any, st: Any, kind: int, stream: int, ts: int,
            a: Any, na: int, b: Any, nb: int) -> int:
    pos = st[J_POS]
    end = pos + HEADER + na + nb
    if end > st[J_LIMIT] or buf.ctypes.data != st[J_ADDR]:
        return NO_ROOM
    seq = st[J_SEQ] + 1
    _store(buf, pos + 8, np.int64(seq))
    _store(buf, pos + 16, np.int64(ts))
    _store(buf, pos + 24, np.uint16(kind))
    _store(buf, pos + 26, np.uint16(stream))
    _store(buf, pos + 28, np.uint32(0))
    # the CRC from the header just stored (whole words: they forward) and from the payload's
    # source, not read back from its copy: loads over bytes stored one at a time wait for
    # the stores to retire (~1 us for a 1.2 kB packet, against ~0.15)
    crc = crc32c_nb(0, buf, pos + 8, HEADER - 8)
    crc = crc32c_nb(crc, a, 0, na)
    crc = crc32c_nb(crc, b, 0, nb)
    p = _ptr(buf, pos + HEADER)
    if na:
        _memcpy(p, _ptr(a, 0), na)  # type: ignore[call-overload]  # a byte loop: ~0.75 ns/byte
    if nb:
        _memcpy(p + na, _ptr(b, 0), nb)  # type: ignore[call-overload]
    # length and CRC last: a record cut short by a kill is never mistaken for a whole one
    _store(buf, pos + 4, np.uint32(crc))
    _store(buf, pos, np.uint32(na + nb))
    st[J_POS] = end
    st[J_SEQ] = seq
    if st[J_SYNC] != 0:
        page = pos & ~(PAGE - 1)
        if _msync(st[J_ADDR] + page, end - page, _MS_SYNC) != 0:  # type: ignore[call-overload]
            return NOT_SYNCED
        st[J_SYNCED] = end
    return seq


@njit(cache=True)
def append_nb(buf: Any, st: Any, kind: int, stream: int, ts: int, payload: Any, n: int) -> int:
    """Append ``payload[:n]`` as one record: its sequence number, or :data:`NO_ROOM` /
    :data:`NOT_SYNCED` (see the module docstring)."""
    return _append(buf, st, kind, stream, ts, payload, n, payload, 0)


@njit(cache=True)
def append2_nb(buf: Any, st: Any, kind: int, stream: int, ts: int,
               a: Any, na: int, b: Any, nb: int) -> int:
    """Append ``a[:na]`` followed by ``b[:nb]`` as one record's payload."""
    return _append(buf, st, kind, stream, ts, a, na, b, nb)


#: numba types of :func:`append_nb`'s Python entry point (payload as ``bytes``)
BUF_T = types.Array(types.uint8, 1, "C")
STATE_T = types.Array(types.int64, 1, "C")
BYTES_T = types.Bytes(types.uint8, 1, "C", readonly=True)
APPEND_BYTES_SIG = (BUF_T, STATE_T, types.int64, types.int64, types.int64, BYTES_T,
                    types.int64)

__all__ = [
    "APPEND_BYTES_SIG",
    "HW_CRC",
    "J_ADDR",
    "J_FAULTED",
    "J_LEN",
    "J_LIMIT",
    "J_MAPPED",
    "J_POS",
    "J_SEGEND",
    "J_SEGMENT",
    "J_SEQ",
    "J_SYNC",
    "J_SYNCED",
    "NOT_SYNCED",
    "NO_ROOM",
    "PAGE",
    "append2_nb",
    "append_nb",
    "crc32c_hw_nb",
    "crc32c_nb",
    "crc32c_sw_nb",
]
