"""The journal: records back as written, across segments; a torn tail cut off on reopen; damage
named, never skipped silently; nothing acknowledged lost when the writer is killed -9."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.core.errors import ConfigError, DataError
from live.journal import (
    KIND_FEED,
    KIND_ORDER_IN,
    KIND_ORDER_OUT,
    FsyncPolicy,
    JournalWriter,
    ScanReport,
    read,
    segments,
)
from tests.procs import acks_then_kill

ROOT = Path(__file__).resolve().parents[3]


def _write(d: Path, n: int, **kw: object) -> list[tuple[int, int, int, bytes]]:
    out = []
    with JournalWriter(d, fsync="never", **kw) as w:  # type: ignore[arg-type]
        for i in range(n):
            kind = (KIND_FEED, KIND_ORDER_OUT, KIND_ORDER_IN)[i % 3]
            payload = bytes([i % 251]) * (i % 40)
            seq = w.append(kind, payload, stream=i % 4, ts=1_000 + i)
            out.append((seq, kind, i % 4, payload))
    return out


def test_records_come_back_as_written_across_segments(tmp_path: Path) -> None:
    want = _write(tmp_path, 500, max_bytes=4096)
    assert len(segments(tmp_path)) > 5
    got = [(r.seq, r.kind, r.stream, r.payload) for r in read(tmp_path)]
    assert got == want
    assert [r.ts for r in read(tmp_path)] == [1_000 + i for i in range(500)]


def test_torn_tail_is_cut_off_on_reopen_and_numbering_goes_on(tmp_path: Path) -> None:
    _write(tmp_path, 50)
    seg = segments(tmp_path)[-1]
    size = seg.stat().st_size
    with seg.open("r+b") as f:
        f.truncate(size - 5)  # the last record lost its last 5 bytes
    rep = ScanReport()
    assert [r.seq for r in read(tmp_path, report=rep)] == list(range(1, 50))
    assert rep.torn_tail_bytes > 0
    w = JournalWriter(tmp_path)
    assert w.recovered_tail_bytes == rep.torn_tail_bytes
    assert w.append(KIND_FEED, b"after") == 50  # the torn record was never whole: 50 again
    w.close()
    recs = list(read(tmp_path))
    assert [r.seq for r in recs] == list(range(1, 51))
    assert recs[-1].payload == b"after"


def test_damage_in_the_middle_is_named_or_skipped_and_counted(tmp_path: Path) -> None:
    _write(tmp_path, 30)
    seg = segments(tmp_path)[0]
    data = bytearray(seg.read_bytes())
    data[16 + 32 + 10] ^= 0xFF  # inside the first record's payload... or the second's header
    seg.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"journal-000001.hjl at byte \d+: a damaged journal"):
        list(read(tmp_path))
    rep = ScanReport()
    got = [r.seq for r in read(tmp_path, on_damage="skip", report=rep)]
    assert len(rep.skipped) == 1
    assert got == sorted(set(got))
    assert set(got) <= set(range(1, 31))
    assert got[-1] == 30
    assert 28 <= len(got) < 30  # the record(s) the damage hit are lost, the rest read


def test_not_a_journal_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no journal segments"):
        list(read(tmp_path))
    (tmp_path / "journal-000001.hjl").write_bytes(b"PK\x03\x04 not a journal at all")
    with pytest.raises(DataError, match="not an hftlab journal segment"):
        list(read(tmp_path))
    for bad in ("sometimes", "interval:0", "interval:x"):
        with pytest.raises(ConfigError, match="fsync policy"):
            FsyncPolicy.parse(bad)
    assert FsyncPolicy.parse("interval:5") == FsyncPolicy("interval", 5)


_CHILD = """
import sys
from live.journal import JournalWriter, KIND_ORDER_OUT
w = JournalWriter(sys.argv[1], fsync="always", max_bytes=2048)
i = 0
while True:
    i += 1
    seq = w.append(KIND_ORDER_OUT, b"order %d" % i)
    print(seq, flush=True)  # acknowledged: on disk
"""


def test_nothing_acknowledged_is_lost_when_the_writer_is_killed(tmp_path: Path) -> None:
    d = tmp_path / "j"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    acked = acks_then_kill([sys.executable, "-c", _CHILD, str(d)], env, 300, 60)
    assert acked >= 300
    w = JournalWriter(d)  # recovery: torn tail (if any) cut off
    last = w.seq
    assert last >= acked
    assert w.append(KIND_ORDER_OUT, b"resumed") == last + 1
    w.close()
    recs = list(read(d))
    assert [r.seq for r in recs] == list(range(1, last + 2))
    assert recs[acked - 1].payload == b"order %d" % acked


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=6),
    cut=st.integers(0, 200),
    garbage=st.binary(max_size=64),
)
def test_fuzzed_journals_never_crash_the_reader(
    tmp_path_factory: pytest.TempPathFactory,
    flips: list[tuple[int, int]],
    cut: int,
    garbage: bytes,
) -> None:
    d = tmp_path_factory.mktemp("fz")
    _write(d, 40)
    seg = segments(d)[0]
    data = bytearray(seg.read_bytes())
    for at, x in flips:
        if 16 <= at < len(data):
            data[at] ^= x
    data = data[: max(16, len(data) - cut)] + garbage
    seg.write_bytes(bytes(data))
    rep = ScanReport()
    try:
        recs = list(read(d, on_damage="skip", report=rep))
    except DataError:
        return  # a damaged segment header is named, not read
    seqs = [r.seq for r in recs]
    assert seqs == sorted(set(seqs))  # in order, none twice
    if not flips and not garbage:
        assert rep.skipped == []


def test_the_interval_policy_syncs_from_its_own_thread(tmp_path: Path) -> None:
    """``interval:MS``: no append waits for the disk; the writer's thread hands the records
    to the file (and fsyncs) on its own, across segment rotations, and ends with close()."""
    import threading

    d = tmp_path / "j"
    w = JournalWriter(d, fsync="interval:5", max_bytes=4096)
    for i in range(300):  # a dozen segments while the thread syncs
        w.append(KIND_FEED, bytes([i % 251]) * 40, ts=i)
    deadline = time.monotonic() + 20
    while sum(1 for _ in read(d)) < 300:  # no flush here: the thread's
        assert time.monotonic() < deadline, "the sync thread did not write the records out"
        time.sleep(0.01)
    w.close()
    assert [(r.seq, r.ts) for r in read(d)] == [(i + 1, i) for i in range(300)]
    assert len(segments(d)) > 3
    assert not [t for t in threading.enumerate() if t.name.startswith("journal-sync")]
