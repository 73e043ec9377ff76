"""The memory-mapped journal: the compiled append writes the same bytes as the Python one
(across rotations through make_room), a stale mapping is refused, the prefaulted room takes
no page fault, a segment's all-zero remainder is its end (fast, in any segment), and the
fsync policies still hold."""

from __future__ import annotations

import os
import resource
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numba import njit

from framework.core.errors import ConfigError, DataError
from live.journal import (
    KIND_FEED,
    KIND_ORDER_OUT,
    SEGMENT_HEADER,
    JournalWriter,
    ScanReport,
    read,
    segments,
)
from live.journal_nb import (
    J_LIMIT,
    J_POS,
    J_SEQ,
    J_SYNCED,
    NO_ROOM,
    append2_nb,
    append_nb,
)


def _records(n: int, seed: int) -> list[tuple[int, int, int, bytes, bytes]]:
    """(kind, stream, ts, first part, second part): sizes 0..300, now and then one larger
    than a whole segment."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        size = 5000 if i % 97 == 50 else int(rng.integers(0, 300))
        a = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        b = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes() \
            if i % 3 == 0 else b""
        out.append((int(rng.integers(0, 65536)), int(rng.integers(0, 65536)), 10 * i, a, b))
    return out


@njit(cache=True)
def _append_from(buf: Any, st: Any, i: int, kinds: Any, streams: Any, tss: Any,
                 data: Any, offs: Any, split: Any) -> int:
    """Append records i.. from compiled code until one finds no room: its index."""
    n = len(kinds)
    while i < n:
        lo, mid, hi = offs[i], split[i], offs[i + 1]
        if mid == hi:
            seq = append_nb(buf, st, kinds[i], streams[i], tss[i], data[lo:hi], hi - lo)
        else:
            seq = append2_nb(buf, st, kinds[i], streams[i], tss[i],
                             data[lo:mid], mid - lo, data[mid:hi], hi - mid)
        if seq == NO_ROOM:
            return i
        i += 1
    return n


def _compiled_journal(d: Path, recs: list[tuple[int, int, int, bytes, bytes]],
                      max_bytes: int) -> None:
    kinds = np.array([r[0] for r in recs], np.int64)
    streams = np.array([r[1] for r in recs], np.int64)
    tss = np.array([r[2] for r in recs], np.int64)
    data = np.frombuffer(b"".join(r[3] + r[4] for r in recs) or b"\0", np.uint8)
    sizes = np.array([len(r[3]) + len(r[4]) for r in recs], np.int64)
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    split = offs[:-1] + np.array([len(r[3]) for r in recs], np.int64)
    with JournalWriter(d, fsync="never", max_bytes=max_bytes) as w:
        i = 0
        while True:
            buf, st = w.hot()
            i = _append_from(buf, st, i, kinds, streams, tss, data, offs, split)
            if i == len(recs):
                break
            w.make_room(int(sizes[i]))  # then hot() again: the mapping may be new


def test_the_compiled_append_writes_the_python_appends_bytes(tmp_path: Path) -> None:
    recs = _records(400, seed=7)
    _compiled_journal(tmp_path / "nb", recs, max_bytes=4096)
    with JournalWriter(tmp_path / "py", fsync="never", max_bytes=4096) as w:
        for kind, stream, ts, a, b in recs:
            w.append(kind, a + b, stream=stream, ts=ts)
    nb, py = segments(tmp_path / "nb"), segments(tmp_path / "py")
    assert len(nb) > 20
    assert [p.name for p in nb] == [p.name for p in py]
    for p, q in zip(nb, py, strict=True):
        assert p.read_bytes() == q.read_bytes(), p.name
    got = [(r.seq, r.kind, r.stream, r.ts, r.payload) for r in read(tmp_path / "nb")]
    assert got == [(i + 1, k, s, t, a + b) for i, (k, s, t, a, b) in enumerate(recs)]


def test_a_stale_mapping_is_refused_and_appends_mix(tmp_path: Path) -> None:
    """After make_room rotated, the old ``buf`` answers -1 and writes nothing; Python and
    compiled appends share the numbering."""
    payload = np.frombuffer(b"y" * 100, np.uint8)
    with JournalWriter(tmp_path, fsync="never", max_bytes=1024) as w:
        old, st = w.hot()
        while append_nb(old, st, KIND_FEED, 0, 1, payload, 100) != NO_ROOM:
            pass
        full = int(st[J_SEQ])
        w.make_room(100)
        pos = int(st[J_POS])
        assert append_nb(old, st, KIND_FEED, 0, 1, payload, 100) == NO_ROOM
        assert int(st[J_POS]) == pos
        assert int(st[J_SEQ]) == full
        buf, st = w.hot()
        assert append_nb(buf, st, KIND_FEED, 0, 2, payload, 100) == full + 1
        assert w.append(KIND_ORDER_OUT, b"py", ts=3) == full + 2
        assert append_nb(buf, st, KIND_FEED, 0, 4, payload, 7) == full + 3
    recs = list(read(tmp_path))
    assert [r.seq for r in recs] == list(range(1, full + 4))
    assert [(r.ts, r.payload) for r in recs[-3:]] == [(2, b"y" * 100), (3, b"py"), (4, b"y" * 7)]
    assert len(segments(tmp_path)) == 2


@njit(cache=True)
def _fill(buf: Any, st: Any, payload: Any) -> int:
    n = 0
    while append_nb(buf, st, KIND_FEED, 0, n, payload, len(payload)) > 0:
        n += 1
    return n


def test_the_prefaulted_room_takes_no_page_fault(tmp_path: Path) -> None:
    payload = np.frombuffer(b"z" * 64, np.uint8)
    with JournalWriter(tmp_path, fsync="never") as w:
        buf, st = w.hot()
        _fill(buf, st, payload)  # compiled now, and the first room used up
        w.make_room(64)
        buf, st = w.hot()
        room = int(st[J_LIMIT] - st[J_POS])
        assert room >= 200_000
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        n = _fill(buf, st, payload)
        faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    assert n >= room // 96  # the writer's thread may have added room meanwhile
    assert faults <= 1, f"{faults} page faults appending {n} records into prefaulted room"


def _crashed(d: Path, n: int, *, zeros: int, max_bytes: int = 1 << 20) -> list[int]:
    """A journal of ``n`` records whose last segment then gains ``zeros`` bytes of
    never-written room, as a writer killed -9 leaves it."""
    with JournalWriter(d, fsync="never", max_bytes=max_bytes) as w:
        seqs = [w.append(KIND_FEED, bytes([i % 200 + 1]) * (i % 50), ts=i) for i in range(n)]
    last = segments(d)[-1]
    os.truncate(last, last.stat().st_size + zeros)
    return seqs


def test_a_large_zero_tail_is_the_end_of_the_last_segment(tmp_path: Path) -> None:
    seqs = _crashed(tmp_path, 300, zeros=256 * 1024 * 1024)  # sparse: a scan by byte never ends
    size = segments(tmp_path)[-1].stat().st_size
    rep = ScanReport()
    assert [r.seq for r in read(tmp_path, report=rep)] == seqs
    assert (rep.torn_tail_bytes, rep.zero_tail_bytes) == (0, 256 * 1024 * 1024)
    w = JournalWriter(tmp_path, fsync="never")
    assert (w.recovered_tail_bytes, w.recovered_zero_bytes) == (0, 256 * 1024 * 1024)
    assert w.append(KIND_FEED, b"next") == 301
    w.close()
    assert segments(tmp_path)[-1].stat().st_size == size - 256 * 1024 * 1024 + 32 + 4
    assert [r.seq for r in read(tmp_path)] == [*seqs, 301]


def test_a_zero_tail_ends_an_earlier_segment_too(tmp_path: Path) -> None:
    """A crash between starting the next segment and cutting the full one: the full one
    ends in zeros, which are not damage."""
    seqs = _crashed(tmp_path, 200, zeros=0, max_bytes=2048)
    first = segments(tmp_path)[0]
    os.truncate(first, first.stat().st_size + 64 * 1024 * 1024)
    rep = ScanReport()
    assert [r.seq for r in read(tmp_path, report=rep)] == seqs
    assert rep.skipped == []
    assert rep.zero_tail_bytes == 0


def test_garbage_before_the_zeros_is_a_torn_tail_or_damage(tmp_path: Path) -> None:
    seqs = _crashed(tmp_path / "a", 200, zeros=0, max_bytes=2048)
    assert len(segments(tmp_path / "a")) > 2
    for which in (-1, 0):
        d = tmp_path / f"seg{which}"
        shutil.copytree(tmp_path / "a", d)
        seg = segments(d)[which]
        with seg.open("r+b") as f:  # a record begun, its length not written yet
            f.seek(0, os.SEEK_END)
            f.write(bytes(8) + (999).to_bytes(8, "little") + b"\x07" * 30 + bytes(4096))
        if which == -1:
            rep = ScanReport()
            assert [r.seq for r in read(d, report=rep)] == seqs
            assert (rep.torn_tail_bytes, rep.zero_tail_bytes) == (46, 4096)
            w = JournalWriter(d, fsync="never")
            assert (w.recovered_tail_bytes, w.recovered_zero_bytes) == (46, 4096)
            assert w.append(KIND_FEED, b"more") == 201
            w.close()
        else:
            with pytest.raises(DataError, match=r"journal-000001.hjl at byte \d+: a damaged"):
                list(read(d))
            rep = ScanReport()
            got = [r.seq for r in read(d, on_damage="skip", report=rep)]
            assert got == seqs
            assert len(rep.skipped) == 1


def test_a_short_record_at_the_end_of_an_earlier_segment_is_damage(tmp_path: Path) -> None:
    _crashed(tmp_path, 100, zeros=0, max_bytes=2048)
    seg = segments(tmp_path)[0]
    with seg.open("ab") as f:
        f.write(b"\x09" * 12)
    with pytest.raises(DataError, match=r"journal-000001\.hjl at byte"):
        list(read(tmp_path))


def test_always_forces_each_record_to_disk(tmp_path: Path) -> None:
    with JournalWriter(tmp_path, fsync="always", max_bytes=1024) as w:
        _, st = w.hot()
        for i in range(40):  # across rotations
            w.append(KIND_FEED, b"a" * 50, ts=i)
            assert st[J_SYNCED] == st[J_POS]
        buf, st = w.hot()
        seq = append_nb(buf, st, KIND_FEED, 0, 99, np.frombuffer(b"nb", np.uint8), 2)
        assert seq == 41
        assert st[J_SYNCED] == st[J_POS]
    assert len(list(read(tmp_path))) == 41


def test_never_leaves_it_to_the_system_and_sync_forces_it(tmp_path: Path) -> None:
    with JournalWriter(tmp_path, fsync="never") as w:
        _, st = w.hot()
        for i in range(10):
            w.append(KIND_FEED, b"n" * 50, ts=i)
        assert st[J_SYNCED] == SEGMENT_HEADER.size < st[J_POS]
        w.sync()
        assert st[J_SYNCED] == st[J_POS]


def test_the_interval_thread_syncs_and_stops_on_close(tmp_path: Path) -> None:
    w = JournalWriter(tmp_path, fsync="interval:5")
    _, st = w.hot()
    w.append(KIND_FEED, b"i" * 50)
    deadline = time.monotonic() + 20
    while st[J_SYNCED] < st[J_POS]:
        assert time.monotonic() < deadline, "the interval thread did not sync"
        time.sleep(0.005)
    w.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("journal-sync")]
    with pytest.raises(ConfigError, match="closed"):
        w.make_room(10)


def _payload(seq: int) -> bytes:
    return b"rec %d " % seq * (seq % 9)


_CHILD = """
import sys
from live.journal import JournalWriter, KIND_ORDER_OUT
w = JournalWriter(sys.argv[1], fsync="never", max_bytes=8192)
while True:
    seq = w.seq + 1
    assert w.append(KIND_ORDER_OUT, b"rec %d " % seq * (seq % 9), ts=seq) == seq
    sys.stdout.write("%d\\n" % seq)
    sys.stdout.flush()  # acknowledged: the record is in the page cache
"""


def _numbered(prev: int, seq: int) -> None:
    assert seq == prev + 1  # the numbering went on from the last record


@pytest.mark.slow
def test_killed_writers_lose_nothing_acknowledged(tmp_path: Path) -> None:
    """A writer killed -9 at seeded random points, eight times, each run reopening the
    journal: every acknowledged record reads back intact, in order, with no damage, and
    the numbering goes on."""
    import sys

    from tests.procs import acks_then_kill

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    rng = np.random.default_rng(13)
    d = tmp_path / "j"
    acked = 0
    for _ in range(8):
        want = acked + int(rng.integers(1, 2000))
        acked = acks_then_kill([sys.executable, "-c", _CHILD, str(d)], env, want, 120,
                               _numbered, start=acked)
        assert acked == want, "the writer stopped acknowledging"
        rep = ScanReport()
        recs = list(read(d, report=rep))  # on_damage="raise": any damage fails here
        assert [r.seq for r in recs] == list(range(1, len(recs) + 1))
        assert len(recs) >= acked
        assert all(r.payload == _payload(r.seq) and r.ts == r.seq for r in recs)
        assert rep.skipped == []
        acked = len(recs)  # a record written but not yet acknowledged is kept too
    assert len(segments(d)) > 3
