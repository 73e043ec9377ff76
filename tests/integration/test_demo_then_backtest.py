"""A new user's first two steps: `make demo`, then the README's first `hftlab backtest`.

Both in new processes on an empty numba cache of their own, as on a fresh machine (without
the shared samples: the demo then runs on generated data, the path every user has). The demo
compiles the engine and the market maker; the backtest after it must compile nothing: numba
reports every function it saves to its cache (``NUMBA_DEBUG_CACHE``), and it saves only what
it compiled.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: the README's first backtest (section "The command line"), its options left out
README_BACKTEST = [
    "backtest", "one_tick_mm", "--venue", "SIM", "--symbol", "SYN", "--from", "2024-01-02",
]


@pytest.mark.slow
def test_the_readme_backtest_after_make_demo_compiles_nothing(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert "hftlab " + " ".join(README_BACKTEST) in readme  # the command users are sent to
    env = dict(
        os.environ,
        HFTLAB_NUMBA_CACHE=str(tmp_path / "numba"),
        HFTLAB_STORE=str(tmp_path / "store"),
        HFTLAB_SHARED_DATA=str(tmp_path / "no-samples"),
        NUMBA_DEBUG_CACHE="1",
    )
    env.pop("NUMBA_CACHE_DIR", None)
    demo = subprocess.run(
        [sys.executable, "-m", "framework.demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200, check=False,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "data saved to" in demo.stdout + demo.stderr  # it did compile (an empty cache)
    run = subprocess.run(
        [sys.executable, "-m", "framework.cli", *README_BACKTEST, "--out", str(tmp_path / "r")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "backtest:" in run.stdout
    saved = [
        line for line in (run.stdout + run.stderr).splitlines() if "data saved to" in line
    ]
    assert saved == []
