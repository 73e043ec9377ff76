"""The live session's journal: every inbound packet and outbound message, append-only.

A journal is a folder of segment files ``journal-NNNNNN.hjl``, each at most ``max_bytes``
long (the writer starts the next one when a record would pass it). A segment starts with a
16-byte header (magic ``HFTLJNL1``, format version, segment number) and holds records:

    offset  size  field
    0       4     length   payload bytes (u32, little-endian, as every field)
    4       4     crc      CRC32C of bytes 8.. of the header and the payload
    8       8     seq      record number: 1, 2, 3 ... across segments, never reused
    16      8     ts       local time of receipt or sending (ns since the epoch, i64)
    24      2     kind     what the payload is (KIND_* below, or an application's own)
    26      2     stream   which feed, gateway session or source it belongs to
    28      4     reserved (0)
    32      ...   payload

CRC32C (Castagnoli) catches torn and corrupted records. Damage is an error naming the
segment and offset, never skipped silently (``on_damage="skip"`` skips to the next good
record and counts what it skipped).

The writer maps its segment (``MAP_SHARED``) and writes each record into the mapping with a
compiled kernel (:mod:`live.journal_nb`, which the live runner's compiled tick path calls
too): no system call per record, and a record is in the operating system's page cache --
safe from a ``kill -9`` of the process -- the moment its append returns. A segment file
grows ahead of the writer (allocated ``GROW_BYTES`` at a time) and the pages ahead are
prefaulted, so an append takes no page fault; rotation and ``close()`` cut the file to its
records. A writer that died leaves its last segment ending in zeros (room never written)
and maybe a torn record (its length, written last, still zero, or the file cut short):
reading stops there (an all-zero remainder of any segment is its end, found by scanning
backwards in blocks), and reopening the journal for writing cuts both off (and says how many
bytes). Nonzero bytes after the last whole record are a torn tail in the last segment and
damage in an earlier one.

Durability is a policy (:class:`FsyncPolicy`): ``always`` (msync after each record: nothing
acknowledged is ever lost), ``interval:MS`` (a thread of the writer's forces the records to
disk every MS ms, so no append waits for a disk: at most MS milliseconds of records at risk,
plus those on the 4 KiB page the writer is filling, which follow once it moves past it or
pauses -- syncing that page under the writer would stall its next append), ``never`` (the
operating system decides).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import re
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import google_crc32c
import numpy as np
import numpy.typing as npt

from framework.arena.fnptr import entry
from framework.core.errors import ConfigError, DataError
from live.journal_nb import (
    APPEND_BYTES_SIG,
    J_ADDR,
    J_FAULTED,
    J_LEN,
    J_LIMIT,
    J_MAPPED,
    J_POS,
    J_SEGEND,
    J_SEGMENT,
    J_SEQ,
    J_SYNC,
    J_SYNCED,
    NOT_SYNCED,
    PAGE,
    append_nb,
)

MAGIC = b"HFTLJNL1"
VERSION = 1
SEGMENT_HEADER = struct.Struct("<8sII")  # magic, version, segment number
RECORD_HEADER = struct.Struct("<IIqqHHI")  # length, crc, seq, ts, kind, stream, reserved
HEADER_SIZE = RECORD_HEADER.size
_HEAD = struct.Struct("<II")  # length, crc: the record header's first 8 bytes
_TAIL = struct.Struct("<qqHHI")  # the rest of it, which the CRC covers with the payload
assert HEADER_SIZE == 32
MAX_PAYLOAD = 16 * 1024 * 1024  #: a bigger length field is damage, not a record

#: record kinds the live runner writes (an application may add its own from 1000 up)
KIND_META = 1  #: session metadata (JSON): strategy, params, feed, gateway, versions
KIND_FEED = 2  #: one inbound market-data packet / websocket message, as received
KIND_ORDER_OUT = 3  #: one outbound order-entry message, as sent
KIND_ORDER_IN = 4  #: one inbound order-entry message (ack, fill, reject...), as received
KIND_CONTROL = 5  #: a control action (kill, reset, stop), JSON
KIND_NAMES = {
    KIND_META: "meta",
    KIND_FEED: "feed",
    KIND_ORDER_OUT: "order_out",
    KIND_ORDER_IN: "order_in",
    KIND_CONTROL: "control",
}

_SEGMENT_RE = re.compile(r"^journal-(\d{6})\.hjl$")
_ZERO_BLOCK = 1 << 16

GROW_BYTES = 8 * 1024 * 1024  #: a segment file is extended this much at a time
PREFAULT_BYTES = 256 * 1024  #: make_room prefaults at least this far past the writer
AHEAD_BYTES = 1024 * 1024  #: the writer's thread keeps this much prefaulted past it
IDLE_MS = 50  #: that thread's period when the fsync policy sets none
_MS_SYNC = 4
#: Linux >= 5.14: fault pages in writable without changing them
_MADV_POPULATE_WRITE = 23 if sys.platform.startswith("linux") else -1


def _load_libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    for fn in (lib.msync, lib.madvise):
        fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        fn.restype = ctypes.c_int
    return lib


_libc = _load_libc()  # ctypes calls release the GIL: the sync thread's msync blocks no one


@dataclass(frozen=True)
class Record:
    seq: int
    ts: int
    kind: int
    stream: int
    payload: bytes


@dataclass(frozen=True)
class FsyncPolicy:
    """When the journal's bytes are forced to disk: ``always``, ``never`` or every
    ``interval_ms`` milliseconds (checked at each append)."""

    mode: str = "always"
    interval_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        if text in ("always", "never"):
            return cls(text)
        m = re.fullmatch(r"interval:(\d+)", text)
        if m and int(m.group(1)) > 0:
            return cls("interval", int(m.group(1)))
        msg = f"fsync policy {text!r} is unknown; write always, never or interval:MS (MS > 0)"
        raise ConfigError(msg)


def _crc(header_tail: bytes, payload: bytes) -> int:
    return google_crc32c.extend(google_crc32c.value(header_tail), payload)


def segments(directory: Path) -> list[Path]:
    """The journal's segment files in order (other files are ignored)."""
    if not directory.is_dir():
        return []
    found = sorted(
        (int(m.group(1)), p)
        for p in directory.iterdir()
        if (m := _SEGMENT_RE.match(p.name)) is not None
    )
    return [p for _, p in found]


@dataclass
class ScanReport:
    """What reading a journal found besides its records."""

    records: int = 0
    torn_tail_bytes: int = 0  #: cut-off bytes at the end of the last segment
    #: the last segment's unwritten (all-zero) room after its records and torn tail
    zero_tail_bytes: int = 0
    skipped: list[tuple[str, int, int]] = field(default_factory=list)  #: (segment, offset, bytes)


def _check_segment_header(path: Path, f: BinaryIO, number: int) -> None:
    raw = f.read(SEGMENT_HEADER.size)
    if len(raw) < SEGMENT_HEADER.size:
        msg = f"{path}: not a journal segment (a {len(raw)}-byte file; the header is 16 bytes)"
        raise DataError(msg)
    magic, version, seg = SEGMENT_HEADER.unpack(raw)
    if magic != MAGIC:
        msg = f"{path}: not an hftlab journal segment (magic {magic!r})"
        raise DataError(msg)
    if version != VERSION:
        msg = f"{path}: journal format version {version}; this hftlab reads version {VERSION}"
        raise DataError(msg)
    if seg != number:
        msg = f"{path}: the header says segment {seg}; the file name says {number}"
        raise DataError(msg)


def _parse(buf: bytes, at: int) -> tuple[Record | None, int]:
    """The record at ``buf[at:]`` and its size, or (None, reason code): -1 too short for a
    record (a torn tail if nothing follows), -2 damaged."""
    if len(buf) - at < HEADER_SIZE:
        return None, -1
    length, crc, seq, ts, kind, stream, _ = RECORD_HEADER.unpack_from(buf, at)
    if length > MAX_PAYLOAD:
        return None, -2
    end = at + HEADER_SIZE + length
    if end > len(buf):
        return None, -1
    payload = bytes(buf[at + HEADER_SIZE : end])
    if _crc(bytes(buf[at + 8 : at + HEADER_SIZE]), payload) != crc:
        return None, -2
    return Record(seq, ts, kind, stream, payload), HEADER_SIZE + length


def read(
    directory: str | os.PathLike[str],
    *,
    on_damage: str = "raise",
    report: ScanReport | None = None,
) -> Iterator[Record]:
    """The journal's records in order. A torn tail of the last segment ends the journal
    (counted in ``report``); damage elsewhere raises :class:`DataError` naming the segment
    and offset, or with ``on_damage="skip"`` is skipped to the next record whose CRC holds
    (counted in ``report.skipped``)."""
    if on_damage not in ("raise", "skip"):
        msg = f"on_damage must be 'raise' or 'skip', not {on_damage!r}"
        raise ConfigError(msg)
    d = Path(directory)
    segs = segments(d)
    if not segs:
        msg = f"{d}: no journal segments (journal-NNNNNN.hjl) found"
        raise DataError(msg)
    rep = report if report is not None else ScanReport()
    last_seq = 0
    for k, path in enumerate(segs):
        last = k == len(segs) - 1
        number = int(_SEGMENT_RE.match(path.name).group(1))  # type: ignore[union-attr]
        with path.open("rb") as f:
            _check_segment_header(path, f, number)
            buf = f.read()
        at = 0
        data_end = -1  # where the segment's nonzero bytes end: found once, when needed
        while at < len(buf):
            rec, size = _parse(buf, at)
            if rec is not None and rec.seq <= last_seq:
                rec, size = None, -2  # a sequence number going back is damage too
            if rec is not None:
                yield rec
                rep.records += 1
                last_seq = rec.seq
                at += size
                continue
            if data_end < 0:
                data_end = _data_end(buf)
            if data_end <= at:  # zeros to the end: room the writer had not used yet
                if last:
                    rep.zero_tail_bytes = len(buf) - at
                break
            # torn: cut short (the file) or its length not yet written (the mapping: the
            # writer stores it last), with nothing whole after it
            torn = size == -1 or _HEAD.unpack_from(buf, at)[0] == 0
            if last and torn and _resync(buf, at + 1, -1, data_end) >= data_end:
                rep.torn_tail_bytes = data_end - at
                rep.zero_tail_bytes = len(buf) - data_end
                return
            where = f"{path} at byte {SEGMENT_HEADER.size + at}"
            if on_damage == "raise":
                msg = (
                    f"{where}: a damaged journal record (bad length or CRC32C); "
                    "read with on_damage='skip' to go on past it"
                )
                raise DataError(msg)
            nxt = _resync(buf, at + 1, last_seq, data_end)
            rep.skipped.append((path.name, SEGMENT_HEADER.size + at, nxt - at))
            at = nxt


def _data_end(buf: bytes) -> int:
    """The length of ``buf`` without its trailing zero bytes: a segment's preallocated
    room that no record reached reads as zeros. Scanned backwards a block at a time by
    numpy: a crashed writer leaves megabytes of it."""
    a = np.frombuffer(buf, np.uint8)
    end = len(a)
    while end > 0:
        lo = max(0, end - _ZERO_BLOCK)
        nz = np.flatnonzero(a[lo:end])
        if len(nz):
            return lo + int(nz[-1]) + 1
        end = lo
    return 0


def _resync(buf: bytes, start: int, last_seq: int, data_end: int) -> int:
    """The offset of the next record at or after ``start`` whose CRC holds (and whose
    number follows ``last_seq``), or ``data_end``. A record cannot start at or past
    ``data_end``: its sequence number is not zero."""
    for at in range(start, data_end):
        rec, _ = _parse(buf, at)
        if rec is not None and rec.seq > last_seq:
            return at
    return data_end


class JournalWriter:
    """Appends records to the journal in ``directory`` (created if missing). Reopening a
    journal continues it: the last segment's torn tail, if any, is cut off first
    (:attr:`recovered_tail_bytes`), so is its unwritten room (:attr:`recovered_zero_bytes`),
    and numbering goes on from the last record.

    The current segment is mapped (``MAP_SHARED``) and records are written into the mapping
    by the compiled :func:`live.journal_nb.append_nb`: an append makes no system call and
    its record survives a ``kill -9`` when it returns. Compiled callers append themselves:
    see :meth:`hot` and :meth:`make_room`."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: FsyncPolicy | str = "always",
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.dir = Path(directory)
        self.fsync = FsyncPolicy.parse(fsync) if isinstance(fsync, str) else fsync
        if max_bytes < SEGMENT_HEADER.size + HEADER_SIZE:
            msg = f"max_bytes {max_bytes} is too small for one record"
            raise ConfigError(msg)
        self.max_bytes = max_bytes
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recovered_tail_bytes = 0
        self.recovered_zero_bytes = 0
        self._st = np.zeros(J_LEN, np.int64)
        self._st[J_SYNC] = self.fsync.mode == "always"
        self._mm: mmap.mmap | None = None
        self._buf: npt.NDArray[np.uint8] = np.zeros(0, np.uint8)
        self._fd = -1
        self._closed = False
        self._error: OSError | None = None  #: the sync thread's failure, raised to the writer
        self._retired: list[int] = []  #: cut segments the sync thread still forces to disk
        self._seen_pos = -1  #: the write position at the sync thread's last round
        self._dir_dirty = False  #: a new segment's directory entry is not on disk yet
        #: held while the mapping is swapped (rotation, growth, close) and by the sync thread
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        self._kernel = entry(append_nb, *APPEND_BYTES_SIG)
        segs = segments(self.dir)
        if segs:
            rep = ScanReport()
            for rec in read(self.dir, report=rep):
                self._st[J_SEQ] = rec.seq
            path = segs[-1]
            self._number = int(_SEGMENT_RE.match(path.name).group(1))  # type: ignore[union-attr]
            size = path.stat().st_size - rep.torn_tail_bytes - rep.zero_tail_bytes
            self._fd = os.open(path, os.O_RDWR)
            if rep.torn_tail_bytes or rep.zero_tail_bytes:
                os.ftruncate(self._fd, size)
                os.fsync(self._fd)
            self.recovered_tail_bytes = rep.torn_tail_bytes
            self.recovered_zero_bytes = rep.zero_tail_bytes
            self._start_segment(size)
        else:
            self._number = 0
            self._open_next()
        self._syncer = threading.Thread(target=self._background, daemon=True,
                                        name=f"journal-sync {self.dir.name}")
        self._syncer.start()

    @property
    def seq(self) -> int:
        """The last record's sequence number (0 before the first)."""
        return int(self._st[J_SEQ])

    # -- appending ------------------------------------------------------------------------
    def append(self, kind: int, payload: bytes, *, stream: int = 0, ts: int | None = None) -> int:
        """Write one record; returns its sequence number. With ``fsync=always`` it is on
        disk when this returns."""
        n = len(payload)
        if (kind | stream) >> 16 or n > MAX_PAYLOAD:
            self._bad_record(kind, stream, n)
        if type(payload) is not bytes:
            payload = bytes(payload)
        t = time.time_ns() if ts is None else ts
        seq: int = self._kernel(self._buf, self._st, kind, stream, t, payload, n)
        if seq < 0:
            return self._append_slow(seq, kind, payload, stream, t)
        return seq

    def _append_slow(self, code: int, kind: int, payload: bytes, stream: int, ts: int) -> int:
        if code == NOT_SYNCED:
            self.sync()  # the disk's own error if it still refuses
            return self.seq
        self.make_room(len(payload))
        seq: int = self._kernel(self._buf, self._st, kind, stream, ts, payload, len(payload))
        if seq == NOT_SYNCED:
            self.sync()
            return self.seq
        assert seq > 0, "make_room made room"
        return seq

    @staticmethod
    def _bad_record(kind: int, stream: int, n: int) -> None:
        if n > MAX_PAYLOAD:
            msg = f"a journal record holds at most {MAX_PAYLOAD} bytes, got {n}"
        else:
            msg = f"a record's kind and stream are 0..65535, got kind {kind} stream {stream}"
        raise ConfigError(msg)

    def hot(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """``(buf, st)`` for :func:`~live.journal_nb.append_nb` from compiled code: the
        current segment's mapping and the writer's state (``J_*``). Fetch both again after
        every :meth:`make_room`: it may have mapped a new segment (an append into the old
        ``buf`` only ever answers -1, never writes). Appends from compiled code and from
        :meth:`append` may be mixed, on one thread."""
        return self._buf, self._st

    def make_room(self, n: int) -> None:
        """Make the room for a record of ``n`` payload bytes that ``append_nb`` found
        missing (it returned -1): the next segment when this one is full, a longer file
        and mapping, the pages ahead prefaulted. Then fetch :meth:`hot` again."""
        if n > MAX_PAYLOAD:
            self._bad_record(0, 0, n)
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._closed:
                msg = f"{self.dir}: the journal is closed; open a new JournalWriter"
                raise ConfigError(msg)
            st = self._st
            need = HEADER_SIZE + n
            if st[J_POS] + need > st[J_SEGEND]:
                if st[J_POS] > SEGMENT_HEADER.size:
                    self._rotate()
                # a record bigger than a segment gets one of its own
                st[J_SEGEND] = max(st[J_SEGEND], st[J_POS] + need)
            if st[J_POS] + need > st[J_MAPPED]:
                self._map(int(st[J_POS]) + need)
            self._prefault(int(st[J_POS]) + need + PREFAULT_BYTES)

    # -- segments and the mapping ---------------------------------------------------------
    def _open_next(self) -> None:
        self._number += 1
        path = self.dir / f"journal-{self._number:06d}.hjl"
        # made under another name and linked whole: a kill can leave no headerless segment
        new = self.dir / f".{path.name}.new"
        self._fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        os.write(self._fd, SEGMENT_HEADER.pack(MAGIC, VERSION, self._number))
        os.link(new, path)  # FileExistsError rather than overwrite a segment
        os.unlink(new)
        if self.fsync.mode == "always":
            os.fsync(self._fd)
            _fsync_dir(self.dir)
        elif self.fsync.mode == "interval":
            self._dir_dirty = True  # the sync thread makes the new entry durable
        self._start_segment(SEGMENT_HEADER.size)

    def _start_segment(self, size: int) -> None:
        """Map the segment open in ``self._fd`` whose records end at ``size``."""
        st = self._st
        st[J_POS] = size
        st[J_SYNCED] = size
        st[J_SEGEND] = max(self.max_bytes, size)
        st[J_SEGMENT] = self._number
        self._map(size + HEADER_SIZE)
        self._prefault(size + PREFAULT_BYTES)

    def _map(self, at_least: int) -> None:
        """Extend the file (by ``GROW_BYTES`` at a time, not past the segment's end) to
        hold ``at_least`` bytes, and map all of it. The room is allocated, not left sparse:
        a full disk is an error here, not a SIGBUS at the write into the mapping."""
        st = self._st
        end = _pages(max(int(st[J_SEGEND]), at_least))
        size = min(end, _pages(max(at_least, int(st[J_MAPPED]) + GROW_BYTES)))
        have = os.fstat(self._fd).st_size
        if have < size:
            os.posix_fallocate(self._fd, have, size - have)
        self._unmap()
        self._mm = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._buf = np.frombuffer(self._mm, np.uint8)
        st[J_ADDR] = self._buf.ctypes.data
        st[J_MAPPED] = size
        st[J_FAULTED] = int(st[J_POS]) & ~(PAGE - 1)  # a new mapping has no pages yet
        st[J_LIMIT] = min(st[J_FAULTED], st[J_SEGEND])

    def _unmap(self) -> None:
        st = self._st
        st[J_ADDR] = st[J_LIMIT] = st[J_FAULTED] = st[J_MAPPED] = 0
        self._buf = np.zeros(0, np.uint8)
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # a caller's stale buf keeps it mapped
                self._mm.close()
            self._mm = None

    def _prefault(self, upto: int) -> None:
        """Make the pages from the writer's to ``upto`` present and writable, so that no
        append takes a page fault (a first write into a page costs 1-3 us; so does the
        first after the page was written back): ``MADV_POPULATE_WRITE``, or where the
        kernel lacks it (< 5.14) a write of the zero already there, from this thread."""
        st = self._st
        lo = int(st[J_POS]) & ~(PAGE - 1)
        hi = min(_pages(upto), int(st[J_MAPPED]))
        if hi > lo and not _populate(int(st[J_ADDR]) + lo, hi - lo):
            if threading.current_thread() is self._syncer:
                return  # the writer may be writing there: only it touches pages then
            self._buf[max(lo, int(st[J_POS])):hi:PAGE] = 0
        st[J_FAULTED] = max(int(st[J_FAULTED]), hi)
        st[J_LIMIT] = min(st[J_FAULTED], st[J_SEGEND])

    def _rotate(self) -> None:
        """Cut the full segment to its records and start the next."""
        size = int(self._st[J_POS])
        self._unmap()
        os.ftruncate(self._fd, size)
        if self.fsync.mode == "interval":
            self._retired.append(self._fd)  # its last records: the sync thread's
        else:
            if self.fsync.mode == "always":
                os.fsync(self._fd)  # the cut
            os.close(self._fd)
        self._open_next()

    # -- durability -----------------------------------------------------------------------
    def _background(self) -> None:
        """The writer's thread: with ``interval:MS`` forces the records to disk every MS
        ms, off the appending thread (that takes milliseconds; an append well under a
        microsecond); under every policy keeps the pages ahead of the writer prefaulted,
        again after the kernel wrote them back."""
        wait = (self.fsync.interval_ms if self.fsync.mode == "interval" else IDLE_MS) / 1000
        while not self._stop.wait(wait):
            with self._lock:
                if self._closed or self._error is not None:
                    return
                try:
                    if self.fsync.mode == "interval":
                        self._sync_locked()
                    self._prefault(int(self._st[J_POS]) + AHEAD_BYTES)
                except OSError as e:  # the writer raises it at its next make_room / sync
                    self._error = e
                    self._st[J_LIMIT] = 0
                    return

    def _sync_locked(self, whole: bool = False) -> None:
        """Force the records to disk. The interval thread leaves the page the writer is
        filling (unless the writer has paused since the last round, or ``whole``): written
        back, that page turns read-only for the kernel's dirty tracking, and the writer's
        next append into it would fault -- or wait for the write to the disk to end (tens
        of microseconds to milliseconds on a tick). Its records follow once the writer has
        moved past it or paused."""
        st = self._st
        pos = int(st[J_POS])
        idle = pos == self._seen_pos
        self._seen_pos = pos
        hi = pos if whole or idle else pos & ~(PAGE - 1)
        lo = int(st[J_SYNCED]) & ~(PAGE - 1)
        if hi > lo and st[J_ADDR]:
            if _libc.msync(int(st[J_ADDR]) + lo, hi - lo, _MS_SYNC) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"msync of journal segment {self._number}: "
                              f"{os.strerror(err)}")
            st[J_SYNCED] = hi
            _populate(int(st[J_ADDR]) + (hi & ~(PAGE - 1)), PAGE)  # written back: writable again
        for fd in self._retired:
            os.fsync(fd)
            os.close(fd)
        self._retired.clear()
        if self._dir_dirty:
            _fsync_dir(self.dir)
            self._dir_dirty = False

    def flush(self) -> None:
        """Nothing to do: an appended record is in the operating system's page cache
        already (a ``kill -9`` does not lose it). Kept for callers written for a buffered
        journal."""

    def sync(self) -> None:
        """Force everything appended so far to disk."""
        with self._lock:
            if self._error is not None:
                raise self._error
            if not self._closed:
                self._sync_locked(whole=True)

    def close(self) -> None:
        """Stop the sync thread, cut the segment's unwritten room and force it to disk."""
        self._stop.set()
        if self._syncer is not None and self._syncer is not threading.current_thread():
            self._syncer.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            size = int(self._st[J_POS])
            self._unmap()
            try:
                os.ftruncate(self._fd, size)
                os.fsync(self._fd)
                for fd in self._retired:
                    os.fsync(fd)
                if self._dir_dirty:
                    _fsync_dir(self.dir)
            finally:
                for fd in (*self._retired, self._fd):
                    os.close(fd)
                self._retired.clear()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pages(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


def _populate(addr: int, n: int) -> bool:
    """``MADV_POPULATE_WRITE`` on ``n`` bytes at ``addr`` (page aligned): False where the
    kernel does not know it; an error where the pages cannot be had (a write there would
    be a SIGBUS)."""
    if _MADV_POPULATE_WRITE < 0:
        return False
    if _libc.madvise(addr, n, _MADV_POPULATE_WRITE) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EINVAL:
        return False
    raise OSError(err, f"prefaulting the journal's next pages: {os.strerror(err)}")


def _fsync_dir(path: Path) -> None:
    """Make a new file's directory entry durable (POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "KIND_CONTROL",
    "KIND_FEED",
    "KIND_META",
    "KIND_NAMES",
    "KIND_ORDER_IN",
    "KIND_ORDER_OUT",
    "FsyncPolicy",
    "JournalWriter",
    "Record",
    "ScanReport",
    "read",
    "segments",
]
