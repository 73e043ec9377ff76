"""The runner's kill switch over real sockets: by HTTP on loopback (a bearer token; a wrong
or missing one is refused and changes nothing), by SIGUSR1, by a strategy's loss limit, on a
stale feed and on a gateway that stays down; SIGTERM stops in order.

After a kill every working order is cancelled and no new order leaves the process until a
reset: the journal shows it (no new order sent between a kill and the next reset, while the
strategy kept trying: its orders are held), and it still replays to the same decisions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from framework.arena.state import REQ_NEW
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.journal import KIND_CONTROL, KIND_ORDER_OUT, read
from live.runner import STREAM_HELD, STREAM_SENT, request_of
from tests.integration.live.feed_helpers import free_udp_port, venue_process
from tests.integration.live.live_helpers import (
    DATE,
    EXEC_RE,
    cli,
    free_tcp_port,
    gateway_url,
    live_process,
    wait_for_line,
)

pytestmark = pytest.mark.slow
TOKEN = "kill-test-token-0123456789"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("kill-store"))
    day = generate_day(date=DATE, n_events=12_000, seed=9, mode="l3")
    TickStore(root).write(day.instrument, DATE, day.events)
    return root


def http(url: str, *, token: str | None, post: bool = False) -> tuple[int, Any]:
    req = urllib.request.Request(url, method="POST" if post else "GET",
                                 data=b"{}" if post else None)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def periods(journal: Path) -> list[tuple[str, list[tuple[int, int]]]]:
    """The journal cut at each kill/reset: (state, [(request kind, stream)...]) per span."""
    out: list[tuple[str, list[tuple[int, int]]]] = [("running", [])]
    for r in read(journal):
        if r.kind == KIND_CONTROL:
            action = json.loads(r.payload)["action"]
            if action in ("kill", "reset"):
                out.append(("killed" if action == "kill" else "running", []))
        elif r.kind == KIND_ORDER_OUT:
            q = request_of(r.payload)
            out[-1][1].append((int(q["kind"]), r.stream))
    return out


def check_kills_held_orders(journal: Path, n_kills: int) -> None:
    spans = periods(journal)
    assert [s for s, _ in spans].count("killed") == n_kills, spans
    for state, reqs in spans:
        news = [stream for kind, stream in reqs if kind == REQ_NEW]
        if state == "killed":
            assert STREAM_SENT not in news  # not one new order left while killed
            assert STREAM_HELD in news  # though the strategy tried
        else:
            assert STREAM_HELD not in news
    assert any(s == "running" and reqs for s, reqs in spans[1:])  # trading resumed


def test_kill_by_http_and_signal_reset_and_orderly_stop(store: str, tmp_path: Path) -> None:
    feed, rereq, port, ctl = free_udp_port(), free_udp_port(), free_tcp_port(), free_tcp_port()
    live_log, journal = tmp_path / "live.log", tmp_path / "journal"
    base = f"http://127.0.0.1:{ctl}"
    os.environ["HFTLAB_CONTROL_TOKEN"] = TOKEN
    try:
        with live_process(
            "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
            "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
            "--gateway", gateway_url("ouch", port, tmp_path), "--duration", "120",
            "--journal", str(journal), "--summary", str(tmp_path / "summary.json"),
            "--control", f"127.0.0.1:{ctl}", log=live_log,
        ) as live:
            wait_for_line(live_log, "ready:", live)
            with venue_process(store, "SIM", "SYN", DATE, "--speed", "300",
                               "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                               "--ouch-port", str(port), "--linger", "60",
                               log=tmp_path / "venue.log"):
                _drive(base, live)
                rc = live.wait(60)  # the orderly stop, while the venue still answers
            assert rc == 0, live_log.read_text()[-3000:]
    finally:
        del os.environ["HFTLAB_CONTROL_TOKEN"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["gateway"]["open"] == 0  # SIGTERM: every working order cancelled
    assert summary["held"] > 0
    execs = {m[1]: int(m[4]) for m in EXEC_RE.finditer((tmp_path / "venue.log").read_text())}
    assert summary["positions"]["OneTickMM"] == execs.get("ouch:u1", 0)
    check_kills_held_orders(journal, 2)
    p = cli("journal", "parity", str(journal))
    assert p.returncode == 0, p.stdout + p.stderr


def _drive(base: str, live: subprocess.Popen[bytes]) -> None:
    _wait(lambda: http(f"{base}/status", token=TOKEN)[1]["orders"], "working orders")
    # what the dashboard page reads, as it reads it
    st = http(f"{base}/status", token=TOKEN)[1]
    assert {"strategy", "pnl", "equity", "positions", "orders", "latency", "risk", "killed",
            "reason"} <= set(st)
    assert st["strategy"] == "OneTickMM"
    assert set(st["orders"][0]) == {"id", "instrument", "side", "price", "qty", "filled",
                                    "status"}
    assert list(st["positions"]) == ["SIM/SYN"]
    assert all({"p50", "p99", "p999", "max", "count"} <= set(v) for v in st["latency"].values())
    # no token, a wrong token: refused, and nothing changes
    assert http(f"{base}/status", token=None)[0] == 401
    assert http(f"{base}/kill", token=None, post=True)[0] == 401
    assert http(f"{base}/kill", token="wrong-token-wrong-token", post=True)[0] == 401
    code, st = http(f"{base}/status", token=TOKEN)
    assert code == 200
    assert st["killed"] is False
    # by HTTP: every working order cancelled, none sent until the reset
    assert http(f"{base}/kill", token=TOKEN, post=True)[0] == 200
    _wait(lambda: not http(f"{base}/status", token=TOKEN)[1]["orders"], "all cancelled")
    # the strategy keeps trying to quote (on its next book change, however late a busy
    # machine makes it): each order is held, none leaves
    _wait(lambda: http(f"{base}/status", token=TOKEN)[1]["risk"]["held"] > 0, "a held order")
    st = http(f"{base}/status", token=TOKEN)[1]
    assert st["killed"] is True
    assert st["orders"] == []
    assert http(f"{base}/reset", token=TOKEN, post=True)[0] == 200
    _wait(lambda: http(f"{base}/status", token=TOKEN)[1]["orders"], "quoting again")
    # by signal
    held = http(f"{base}/status", token=TOKEN)[1]["risk"]["held"]
    os.kill(live.pid, signal.SIGUSR1)
    _wait(lambda: http(f"{base}/status", token=TOKEN)[1]["killed"], "SIGUSR1 kill")
    _wait(lambda: not http(f"{base}/status", token=TOKEN)[1]["orders"], "all cancelled")
    # the journal check below wants a held order in this kill's span too: wait for one
    _wait(lambda: http(f"{base}/status", token=TOKEN)[1]["risk"]["held"] > held,
          "a held order after SIGUSR1")
    assert "SIGUSR1" in http(f"{base}/status", token=TOKEN)[1]["reason"]
    assert http(f"{base}/reset", token=TOKEN, post=True)[0] == 200
    _wait(lambda: http(f"{base}/status", token=TOKEN)[1]["orders"], "quoting again")
    status, metrics = _metrics(base)
    assert status == 200
    assert "hftlab_stage_latency_ns" in metrics
    os.kill(live.pid, signal.SIGTERM)  # orderly stop


def _metrics(base: str) -> tuple[int, str]:
    req = urllib.request.Request(f"{base}/metrics")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    _wait(lambda: b"hftlab_stage_latency_ns" in urllib.request.urlopen(req, timeout=10).read(),
          "metrics")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def _wait(cond: Any, what: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


@pytest.mark.parametrize("trigger", ["loss", "gateway_down"])
def test_automatic_kills(store: str, tmp_path: Path, trigger: str) -> None:
    feed, rereq, port = free_udp_port(), free_udp_port(), free_tcp_port()
    live_log, journal = tmp_path / "live.log", tmp_path / "journal"
    extra = ("--risk", "max_loss=0.05") if trigger == "loss" else ()
    with live_process(
        "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
        "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
        "--gateway", gateway_url("ouch", port, tmp_path), "--duration", "20",
        "--journal", str(journal), "--summary", str(tmp_path / "summary.json"), *extra,
        log=live_log,
    ) as live:
        wait_for_line(live_log, "ready:", live)
        with venue_process(store, "SIM", "SYN", DATE, "--speed", "300",
                           "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                           "--ouch-port", str(port), "--linger", "60",
                           log=tmp_path / "venue.log") as venue:
            if trigger == "gateway_down":
                wait_for_line(live_log, "gateway connected", live)
                time.sleep(3)
                os.killpg(venue.pid, signal.SIGKILL)  # the venue is gone, mid-session
            wait_for_line(live_log, "kill switch tripped", live, timeout=30)
        assert live.wait(60) == 0, live_log.read_text()[-3000:]
    text = live_log.read_text()
    reason = "loss or drawdown limit of OneTickMM" if trigger == "loss" else "gateway down"
    assert f"kill switch tripped: {reason}" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["killed"] is True
    spans = periods(journal)
    assert [s for s, _ in spans] == ["running", "killed"]
    assert REQ_NEW not in [k for k, stream in spans[1][1] if stream == STREAM_SENT]


def test_a_stale_feed_trips_the_switch(store: str, tmp_path: Path) -> None:
    """Paper mode on a feed where nothing ever arrives."""
    r = cli("live", "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
            "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{free_udp_port()}",
            "--paper", "--duration", "3", "--kill-on", "stale_feed_s=1",
            "--summary", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "kill switch tripped: stale feed: no packet for" in r.stderr
    assert json.loads((tmp_path / "s.json").read_text())["killed"] is True
    bad = cli("live", "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
              "--date", DATE.isoformat(), "--feed", "itch://127.0.0.1:1", "--paper",
              "--kill-on", "stale_feed_s=soon")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1].startswith("hftlab: error: --kill-on")
