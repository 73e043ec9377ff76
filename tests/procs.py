"""Processes the tests start die with the test process: each is its own process group (the
test stops it as a whole), and the kernel kills it if the pytest process that started it
dies first (a timeout's SIGKILL, a crash), which no teardown can then do.

The death signal is set by a small launcher that then execs the command (it survives the
exec), not by ``preexec_fn``, which is unsafe in a process with threads."""

from __future__ import annotations

import os
import sys

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
