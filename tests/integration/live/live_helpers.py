"""Run ``hftlab live`` against an ``hftlab venue`` process, both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.live.feed_helpers import REPO, free_udp_port, venue_process
from tests.procs import dies_with_parent

DATE = dt.date(2024, 3, 1)
#: where the crash hooks of ``modify_mm`` kill the runner's process (``before:N``, ``after:N``,
#: ``waiting:N``); the test sets it, the runner's process reads it. (The test process never
#: imports ``modify_mm``: its hooks patch ``LiveRunner`` for the whole process.)
CRASH_ENV = "HFTLAB_TEST_CRASH"
EXEC_RE = re.compile(r"executions of (\S+): bought (\d+) sold (\d+) position (-?\d+) "
                     r"\((\d+) executions\)")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO, check=False)


@contextlib.contextmanager
def live_process(*args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``hftlab live ARGS`` in its own process group; always stopped (SIGKILL at the end).

    The runner's tests trade a strategy nobody promoted: with a gateway and no promotion
    records named (``--records``), the start is forced with a reason (recorded beside the
    journal, as any forced start is)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if "--gateway" in args and "--force" not in args and "--records" not in args:
        args = (*args, "--force", "--reason", "runner integration test: not a promotion")
    with log.open("wb") as out:
        proc = subprocess.Popen(dies_with_parent([sys.executable, "-m", "framework.cli", "live",
                                                  *args]),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env, cwd=REPO)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(15)


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes],
                  timeout: float = 240.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {log}:\n{log.read_text(errors='replace')[-3000:]}")


def bound_outside_loopback(proc: subprocess.Popen[bytes]) -> list[str]:
    """Sockets of the process bound (UDP) or listening (TCP) anywhere but 127.0.0.1."""
    import psutil

    return [
        f"{c.laddr.ip}:{c.laddr.port} ({c.status})"
        for c in psutil.Process(proc.pid).net_connections(kind="inet")
        if c.status in (psutil.CONN_LISTEN, psutil.CONN_NONE) and c.laddr
        and c.laddr.ip != "127.0.0.1"
    ]


@dataclass
class Session:
    summary: dict[str, Any]
    venue_exec: dict[str, tuple[int, int, int, int]]  #: owner -> bought, sold, position, n
    live_log: str
    venue_log: str


def gateway_url(proto: str, port: int, tmp: Path) -> str:
    if proto == "ouch":
        return f"ouch://127.0.0.1:{port}?user=u1&password=pw"
    return f"fix://127.0.0.1:{port}?sender=CLI&target=HFTLAB&store={tmp / 'fix-client'}"


def run_session(store: str, tmp: Path, proto: str, *, mode: str, duration: float,
                speed: str, extra: tuple[str, ...] = (), venue_extra: tuple[str, ...] = (),
                rerequest: bool = True) -> Session:
    """A runner for ``duration`` seconds of a venue replaying the stored day at ``speed``,
    the runner started (strategies compiled or loaded) before the venue sends."""
    feed, rereq, port = free_udp_port(), free_udp_port(), free_tcp_port()
    summary = tmp / "summary.json"
    live_log, venue_log = tmp / "live.log", tmp / "venue.log"
    opt = "--ouch-port" if proto == "ouch" else "--fix-port"
    with live_process(
        "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
        "--date", DATE.isoformat(),
        "--feed", f"itch://127.0.0.1:{feed}" + (f"?rerequest={rereq}" if rerequest else ""),
        "--gateway", gateway_url(proto, port, tmp), "--mode", mode, "--duration", str(duration),
        "--journal", str(tmp / "journal"), "--summary", str(summary), "--stats", *extra,
        log=live_log,
    ) as live:
        wait_for_line(live_log, "ready:", live)
        assert bound_outside_loopback(live) == []
        with venue_process(store, "SIM", "SYN", DATE, "--speed", speed,
                           "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                           opt, str(port), "--fix-store", str(tmp / "fix-venue"),
                           "--linger", "60", *venue_extra, log=venue_log):
            rc = live.wait(duration + 120)
        assert rc == 0, live_log.read_text()[-3000:]
    vlog = venue_log.read_text()
    execs = {m[1]: (int(m[2]), int(m[3]), int(m[4]), int(m[5])) for m in EXEC_RE.finditer(vlog)}
    return Session(json.loads(summary.read_text()), execs, live_log.read_text(), vlog)


async def events_until(g: Any, kind: type) -> list[Any]:
    """Gateway ``g``'s events up to and including the first ``kind``."""
    got: list[Any] = []
    while not got or not isinstance(got[-1], kind):
        got.append(await g.next_event())
    return got


async def dies(g: Any) -> None:
    """Gateway ``g``'s run ends as at a kill: nothing more is read, no logout."""
    g._closing = True
    assert g._task is not None
    g._task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await g._task


#: the venue's closing tally for one session owner, with its order counts
VENUE_RE = r"executions of {}: bought (\d+) sold (\d+) position (-?\d+) " \
    r"\((\d+) executions\); orders accepted (\d+) rejected (\d+)"


def venue_account(vlog: str, proto: str) -> tuple[int, ...]:
    """(bought, sold, position, executions, accepted, rejected) the venue logged for the
    session's owner (``ouch:u1`` or ``fix:CLI``)."""
    owner = "ouch:u1" if proto == "ouch" else "fix:CLI"
    m = re.search(VENUE_RE.format(owner), vlog)
    assert m is not None, vlog[-2000:]
    return tuple(map(int, m.groups()))


def assert_account_is_venues(summary: Path, journal: Path, strategy: str,
                             account: tuple[int, ...]) -> None:
    """The runner's summary agrees with the venue's ``account`` (:func:`venue_account`) fill
    for fill, nothing open or refused, and the journal's parity passes."""
    bought, sold, position, n_exec = account[:4]
    s = json.loads(summary.read_text())
    assert s["violations"] == 0
    assert s["gateway"]["open"] == 0
    assert s["fills"] == n_exec > 0
    assert s["positions"] == {strategy: position}
    assert (s["gateway"]["bought"], s["gateway"]["sold"]) == (bought, sold)
    p = cli("journal", "parity", str(journal))
    assert p.returncode == 0, p.stdout + p.stderr
