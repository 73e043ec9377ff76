"""Start-up: wall time of the real CLI's first backtest in a new process, cold and warm.

Three rows, each a new ``python -m framework.cli backtest ... --no-report`` process on the
same stored synthetic day (20 k events, written by ``python -m framework.cli data
generate``):

1. one_tick_mm with an EMPTY numba cache: a fresh temporary folder as ``HFTLAB_NUMBA_CACHE``
   and ``NUMBA_CACHE_DIR`` (framework/__init__.py keys its cache under the first), so the
   engine and the strategy compile from scratch: what a new user's first backtest costs;
2. a second strategy (avellaneda_stoikov) on the cache the first run filled, which already
   holds the engine and one_tick_mm: what trying a new strategy costs;
3. one_tick_mm again on the now warm cache (best of two): the everyday start-up.

The data is generated with the caller's own cache, so the first backtest's cache is empty.
The inputs are the same with ``--quick``: the time measured is compilation and start-up,
which do not shrink with the input.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.targets import target

N_EVENTS = 20_000
DATE = "2024-01-02"
#: a run that takes longer is reported as failed (MISSED) rather than waited for
TIMEOUT_S = 1800.0
_REPLAYED = re.compile(r"backtest: ([\d,]+) stored events")


def _cli(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run ``python -m framework.cli ARGS`` in a new process: (wall seconds, stdout)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "framework.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        msg = f"`hftlab {' '.join(args[:2])}` did not finish in {TIMEOUT_S:g} s"
        raise RuntimeError(msg) from None
    el = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        msg = f"`hftlab {' '.join(args[:2])}` exited {proc.returncode}: {tail}"
        raise RuntimeError(msg)
    return el, proc.stdout


def _backtest(strategy: str, store: Path, out: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of one CLI backtest and the events it replayed."""
    args = ["backtest", strategy, "--venue", "SIM", "--symbol", "SYN", "--from", DATE]
    args += ["--store", str(store), "--out", str(out), "--no-report"]
    secs, stdout = _cli(args, env)
    m = _REPLAYED.search(stdout)
    if m is None:
        msg = f"`hftlab backtest` printed no 'backtest: N stored events' line: {stdout[:200]!r}"
        raise RuntimeError(msg)
    return secs, int(m.group(1).replace(",", ""))


def _files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def run(quick: bool = False) -> list[dict[str, Any]]:
    del quick  # compilation does not shrink with the input: the same rows either way
    rows: list[dict[str, Any]] = [
        {
            "name": "startup.one_tick_mm, empty numba cache",
            # issue 10: a new user's first backtest
            **target("max seconds", 30.0),
        },
        {
            "name": "startup.avellaneda_stoikov, cache holds one_tick_mm",
            # issue 10: a second strategy when the engine is cached
            **target("max seconds", 10.0),
        },
        {
            "name": "startup.one_tick_mm, warm numba cache",
            # issue 10: < 2 s
            **target("max seconds", 2.0),
        },
    ]
    with tempfile.TemporaryDirectory(prefix="hftlab-bench-") as t:
        tmp = Path(t)
        store = tmp / "store"
        cache = tmp / "numba"
        try:
            gen = ["data", "generate", "--store", str(store), "--date", DATE, "--seed", "3"]
            _cli([*gen, "--events", str(N_EVENTS)], dict(os.environ))
        except RuntimeError as exc:
            return [{**r, "error": f"no data to run on: {exc}"} for r in rows]
        env = dict(os.environ, HFTLAB_NUMBA_CACHE=str(cache), NUMBA_CACHE_DIR=str(cache))
        plan = [("one_tick_mm", 1), ("avellaneda_stoikov", 1), ("one_tick_mm", 2)]
        for k, (row, (strategy, repeats)) in enumerate(zip(rows, plan, strict=True)):
            files_before = _files(cache)
            try:
                runs = [
                    _backtest(strategy, store, tmp / f"out{k}_{i}", env) for i in range(repeats)
                ]
            except RuntimeError as exc:
                row["error"] = str(exc)
                for later in rows[k + 1 :]:  # they would time a different cache state
                    later["error"] = f"not run: {row['name']} failed"
                break
            row["seconds"] = min(s for s, _ in runs)
            row["events"] = runs[0][1]
            row["cache_files_before"] = files_before
            row["cache_files_after"] = _files(cache)
    return rows
