"""A process a test starts does not outlive the test process, even one killed with SIGKILL
(no teardown runs then)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.procs import dies_with_parent

REPO = Path(__file__).resolve().parents[2]

_PARENT = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from tests.procs import dies_with_parent
child = subprocess.Popen(dies_with_parent(["sleep", "60"]), start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for init to reap it is dead too
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_started_process_dies_when_its_test_process_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(REPO)], stdout=subprocess.PIPE,
                              start_new_session=True)
    child = -1
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        for pid in (parent.pid, child):  # each its own process group
            if pid > 0:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def test_the_launcher_runs_the_command_as_is(tmp_path: Path) -> None:
    out = subprocess.run(dies_with_parent([sys.executable, "-c", "import os; print(os.getpid())"]),
                         capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip().isdigit()
