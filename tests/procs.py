"""Processes the tests start die with the test process: each is its own process group (the
test stops it as a whole), and the kernel kills it if the pytest process that started it
dies first (a timeout's SIGKILL, a crash), which no teardown can then do.

The death signal is set by a small launcher that then execs the command (it survives the
exec), not by ``preexec_fn``, which is unsafe in a process with threads."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

_LAUNCH = (
    "import ctypes, os, signal, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    # the parent may have died before the signal was asked for: then nothing sends it
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def dies_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run through the launcher: SIGKILL when the process that started it dies."""
    return [sys.executable, "-c", _LAUNCH, str(os.getpid()), *argv]


__all__ = ["dies_with_parent"]


def acks_then_kill(argv: list[str], env: dict[str, str], want: int, timeout_s: float,
                   on_ack: Callable[[int, int], None] | None = None, start: int = 0) -> int:
    """Start ``argv`` (dying with this process), read the numbers it prints one per line
    (what it acknowledged) until the number ``want`` came, its output ended or
    ``timeout_s`` passed, then ``kill -9`` its process group; the last number read
    (``start`` if none). ``on_ack(previous, number)`` checks each as it comes."""
    import signal
    import subprocess
    import time

    p = subprocess.Popen(dies_with_parent(argv), stdout=subprocess.PIPE, env=env,
                         start_new_session=True)
    acked = start
    deadline = time.monotonic() + timeout_s
    try:
        assert p.stdout is not None
        while acked < want and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            if on_ack is not None:
                on_ack(acked, int(line))
            acked = int(line)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        if p.stdout is not None:
            p.stdout.close()
    return acked
