"""`hftlab data generate` / `data import` killed with SIGKILL at every stage of a write (and
at arbitrary moments) leave a store that every reader can use: no temporary file where
readers look, each day the old complete file or the new complete one, and the next write
removes what the killed one left."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from framework.cli import main
from framework.store import TickStore
from framework.store.staging import PAUSE_ENV, STAGING_DIR

REPO = Path(__file__).resolve().parents[2]
#: every point at which framework.store.tickstore.write_many can stop (in order)
STAGES = ("staging", "events_staged", "staged", "events_replaced", "day_replaced")
GEN = ["data", "generate", "--events", "3000", "--days", "2", "--date", "2024-01-02"]
#: a write long enough that kills after a delay land inside it
BIG = ["--seed", "2", "--events", "300000"]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra}
    env.pop(PAUSE_ENV, None)
    env.update(extra)
    return env


def _cli(argv: list[str], **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "framework.cli", *argv],
        cwd=REPO,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(argv: list[str]) -> str:
    proc = _cli(argv)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out


def _kill_when_paused(proc: subprocess.Popen[str], stage: str, timeout: float = 600) -> None:
    """SIGKILL ``proc`` once it reports it paused at ``stage``."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    seen = []
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the writer never paused at {stage}: {seen}")
            seen.append(line)
            if line.strip() == f"hftlab-store: paused at {stage}":
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        reader.join(timeout=60)  # the pipe ends with the process
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == -signal.SIGKILL


def _contents(root: Path) -> dict[str, bytes]:
    """Events of every stored day, as bytes, by VENUE/SYMBOL/DATE."""
    store = TickStore(root)
    return {str(k): store.read(k.venue, k.symbol, k.date).tobytes() for k in store.keys()}  # noqa: SIM118


def _labels(root: Path) -> dict[str, object]:
    store = TickStore(root)
    out = {}
    for k in store.keys():  # noqa: SIM118 (a method, not a dict)
        t = store.read_labels(k.venue, k.symbol, k.date)
        out[str(k)] = None if t is None else t.to_pylist()
    return out


def assert_usable(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing temporary where readers look, and every reading verb works."""
    visible = [
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and STAGING_DIR not in p.relative_to(root).parts
    ]
    assert all(p.name.endswith(".parquet") and not p.name.startswith(".") for p in visible)
    store = ["--store", str(root)]
    for argv in (
        ["data", "ls"],
        ["data", "info"],
        ["data", "sql", "SELECT venue, symbol, date, count(*) FROM events GROUP BY ALL"],
        ["data", "sql", "SELECT kind, count(*) FROM events_named GROUP BY kind"],
    ):
        assert main([*argv, *store]) == 0, capsys.readouterr().err
    for key in TickStore(root).keys():  # noqa: SIM118 (a method, not a dict)
        assert main(["data", "info", str(key), *store]) == 0, capsys.readouterr().err
    capsys.readouterr()


def assert_cleaned_by_next_write(root: Path) -> None:
    _run(["data", "generate", "--events", "500", "--symbol", "OTHER", "--store", str(root)])
    assert [p.name for p in (root / STAGING_DIR).iterdir()] == [".lock"]


def assert_old_or_new(got: dict[str, bytes], old: dict[str, bytes], new: dict[str, bytes]):
    assert set(got) <= set(old) | set(new)
    for key, data in got.items():
        assert data in (old.get(key), new.get(key)), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """What the generate command writes when it runs to the end: old (seed 1), new (seed 2)
    and big (seed 2, more events) contents and labels."""
    out = {}
    for name, extra in (("1", ["--seed", "1"]), ("2", ["--seed", "2"]), ("big", BIG)):
        root = tmp_path_factory.mktemp(f"ref{name}")
        _run([*GEN, *extra, "--store", str(root)])
        out[name] = {"events": _contents(root), "labels": _labels(root)}
    assert out["1"]["events"].keys() == out["2"]["events"].keys()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_generate_killed_at_each_stage_of_a_rewrite(
    tmp_path: Path, reference: dict[str, dict], stage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    _run([*GEN, "--seed", "1", "--store", str(root)])
    old, new = reference["1"], reference["2"]
    proc = _cli([*GEN, "--seed", "2", "--store", str(root)], **{PAUSE_ENV: stage})
    _kill_when_paused(proc, stage)
    # what the killed write left: its staging folder (with its files not yet moved in)
    (left,) = [d for d in (root / STAGING_DIR).iterdir() if d.is_dir()]
    assert bool(list(left.glob("*.tmp"))) == (stage in STAGES[1:4])
    assert_usable(root, capsys)
    got = _contents(root)
    assert set(got) == set(old["events"])
    assert_old_or_new(got, old["events"], new["events"])
    first = "SIM/SYN/2024-01-02"
    # the first day's events are replaced from "events_replaced" on, never before
    expect_new = stage in ("events_replaced", "day_replaced")
    assert got[first] == (new if expect_new else old)["events"][first]
    # labels: the new day's own, none (killed between its two files), or the old day's
    labels = _labels(root)
    if stage == "events_replaced":
        assert labels[first] is None
    else:
        assert labels[first] == (new if expect_new else old)["labels"][first]
    # the second day is written after the first: still the old one, with its labels
    second = "SIM/SYN/2024-01-03"
    assert (got[second], labels[second]) == (old["events"][second], old["labels"][second])
    assert_cleaned_by_next_write(root)
    assert_usable(root, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_generate_killed_at_each_stage_of_a_first_write(
    tmp_path: Path, reference: dict[str, dict], stage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    proc = _cli([*GEN, "--seed", "2", "--store", str(root)], **{PAUSE_ENV: stage})
    _kill_when_paused(proc, stage)
    assert_usable(root, capsys)
    got = _contents(root)
    # a day is there complete once its events were replaced in, else not at all
    assert list(got) == (["SIM/SYN/2024-01-02"] if stage in STAGES[3:] else [])
    assert_old_or_new(got, {}, reference["2"]["events"])
    assert_cleaned_by_next_write(root)


def _tardis_trades(path: Path, n: int, price: float) -> Path:
    """A Tardis trades CSV of ``n`` rows, one a second, half of them on each of two days."""
    t0 = 1_704_196_800_000_000  # 2024-01-02 12:00 UTC, µs
    rows = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    for i in range(n):
        ts = t0 + (i % (n // 2)) * 1_000_000 + (i >= n // 2) * 86_400_000_000
        rows.append(f"binance,BTCUSDT,{ts},{ts + 100},{i + 1},buy,{price + i % 7},0.5")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["staged", "events_replaced", "day_replaced"])
def test_import_killed_between_its_days_leaves_each_day_old_or_new(
    tmp_path: Path, stage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    old_csv = _tardis_trades(tmp_path / "old_trades.csv", 4000, 100.0)
    new_csv = _tardis_trades(tmp_path / "new_trades.csv", 4000, 200.0)
    _run(["data", "import", "tardis", str(old_csv), "--store", str(root)])
    old = _contents(root)
    assert len(old) == 2
    ref = tmp_path / "ref"
    _run(["data", "import", "tardis", str(new_csv), "--store", str(ref)])
    new = _contents(ref)
    argv = ["data", "import", "tardis", str(new_csv), "--store", str(root)]
    proc = _cli(argv, **{PAUSE_ENV: stage})
    _kill_when_paused(proc, stage)
    assert_usable(root, capsys)
    got = _contents(root)
    assert set(got) == set(old)
    assert_old_or_new(got, old, new)
    n_new = sum(got[k] == new[k] for k in got)
    assert n_new == {"staged": 0, "events_replaced": 1, "day_replaced": 1}[stage]
    assert_cleaned_by_next_write(root)


@pytest.mark.slow
def test_generate_killed_at_arbitrary_moments(
    tmp_path: Path, reference: dict[str, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    # no pause: SIGKILL after growing delays lands before, inside and after the writes
    root = tmp_path / "store"
    _run([*GEN, "--seed", "1", "--store", str(root)])
    old, new = reference["1"]["events"], reference["big"]["events"]
    rng = np.random.default_rng(7)
    for delay in sorted(rng.uniform(0.5, 8.0, 6)):
        proc = _cli([*GEN, *BIG, "--store", str(root)])
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=60)
        assert_usable(root, capsys)
        got = _contents(root)
        assert set(got) == set(old)
        assert_old_or_new(got, old, new)
    assert_cleaned_by_next_write(root)
