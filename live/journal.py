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

CRC32C (Castagnoli; the ``google-crc32c`` package, hardware accelerated) catches torn and
corrupted records. A writer killed mid-record leaves a torn tail: reopening the journal for
writing cuts it off (and says how many bytes), reading stops before it. Damage anywhere else
is an error naming the segment and offset, never skipped silently (``on_damage="skip"``
skips to the next good record and counts what it skipped).

Durability is a policy (:class:`FsyncPolicy`): ``always`` (fsync after each record: nothing
acknowledged is ever lost), ``interval:MS`` (at most MS milliseconds of records at risk: a
thread of the writer's hands the records to the operating system and forces them to disk
every MS ms, so no append waits for a disk), ``never`` (the operating system decides).
"""

from __future__ import annotations

import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import google_crc32c

from framework.core.errors import ConfigError, DataError

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
            rest = len(buf) - at
            if size == -1 and last and _nothing_valid_after(buf, at):
                rep.torn_tail_bytes = rest
                return
            where = f"{path} at byte {SEGMENT_HEADER.size + at}"
            if on_damage == "raise":
                msg = (
                    f"{where}: a damaged journal record (bad length or CRC32C); "
                    "read with on_damage='skip' to go on past it"
                )
                raise DataError(msg)
            nxt = _resync(buf, at + 1, last_seq)
            rep.skipped.append((path.name, SEGMENT_HEADER.size + at, nxt - at))
            at = nxt


def _nothing_valid_after(buf: bytes, at: int) -> bool:
    return _resync(buf, at + 1, -1) >= len(buf)


def _resync(buf: bytes, start: int, last_seq: int) -> int:
    """The offset of the next record at or after ``start`` whose CRC holds (and whose
    number follows ``last_seq``), or ``len(buf)``."""
    for at in range(start, len(buf) - HEADER_SIZE + 1):
        rec, _ = _parse(buf, at)
        if rec is not None and rec.seq > last_seq:
            return at
    return len(buf)


class JournalWriter:
    """Appends records to the journal in ``directory`` (created if missing). Reopening a
    journal continues it: the last segment's torn tail, if any, is cut off first
    (:attr:`recovered_tail_bytes`), and numbering goes on from the last record."""

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
        self.seq = 0
        #: held while the file is swapped (rotation, close) and while the sync thread uses it
        self._lock = threading.Lock()
        self._stop = threading.Event()
        segs = segments(self.dir)
        if segs:
            rep = ScanReport()
            for rec in read(self.dir, report=rep):
                self.seq = rec.seq
            path = segs[-1]
            self._number = int(_SEGMENT_RE.match(path.name).group(1))  # type: ignore[union-attr]
            if rep.torn_tail_bytes:
                size = path.stat().st_size
                with path.open("r+b") as f:
                    f.truncate(size - rep.torn_tail_bytes)
                    os.fsync(f.fileno())
                self.recovered_tail_bytes = rep.torn_tail_bytes
            self._f = path.open("ab")
            self._size = path.stat().st_size
        else:
            self._number = 0
            self._open_next()
        self._syncer: threading.Thread | None = None
        if self.fsync.mode == "interval":
            self._syncer = threading.Thread(target=self._sync_every, daemon=True,
                                            name=f"journal-sync {self.dir.name}")
            self._syncer.start()

    def _sync_every(self) -> None:
        """The ``interval`` policy's thread: flush and fsync every interval, off the
        appending thread (an fsync takes milliseconds; an append takes a microsecond)."""
        wait = self.fsync.interval_ms / 1000
        while not self._stop.wait(wait):
            with self._lock:
                if self._f.closed:
                    return
                self._f.flush()  # the buffered writer's own lock orders it with appends
                os.fsync(self._f.fileno())

    def _open_next(self) -> None:
        self._number += 1
        path = self.dir / f"journal-{self._number:06d}.hjl"
        self._f = path.open("xb")
        self._f.write(SEGMENT_HEADER.pack(MAGIC, VERSION, self._number))
        self._size = SEGMENT_HEADER.size
        if self.fsync.mode != "never":
            self._f.flush()
            os.fsync(self._f.fileno())
            _fsync_dir(self.dir)

    def append(self, kind: int, payload: bytes, *, stream: int = 0, ts: int | None = None) -> int:
        """Write one record; returns its sequence number. With ``fsync=always`` it is on
        disk when this returns."""
        n = len(payload)
        if n > MAX_PAYLOAD:
            msg = f"a journal record holds at most {MAX_PAYLOAD} bytes, got {n}"
            raise ConfigError(msg)
        if self._size + HEADER_SIZE + n > self.max_bytes and self._size > SEGMENT_HEADER.size:
            with self._lock:
                self._f.close()
                self._open_next()
        self.seq += 1
        tail = _TAIL.pack(self.seq, time.time_ns() if ts is None else ts, kind, stream, 0)
        body = tail + payload
        self._f.write(_HEAD.pack(n, google_crc32c.value(body)) + body)  # one buffered write
        self._size += HEADER_SIZE + n
        if self.fsync.mode == "always":
            self._f.flush()
            os.fsync(self._f.fileno())
        return self.seq

    def flush(self) -> None:
        """Hand the buffered records to the operating system: a crash of this process
        (kill -9) no longer loses them (what survives the machine's is the fsync policy's
        business). Call it before acting on what was just journaled: sending an order."""
        self._f.flush()

    def sync(self) -> None:
        """Force everything appended so far to disk."""
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        with self._lock:
            if not self._f.closed:
                self.sync()
                self._f.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
