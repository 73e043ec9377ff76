"""Kill switch and control endpoint over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from framework.core.errors import ConfigError
from live.control import ControlServer, KillSwitch

TOKEN = "t" * 24
ROOT = Path(__file__).resolve().parents[3]


def _call(url: str, method: str = "GET", token: str | None = TOKEN, body: object = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


@pytest.fixture
def server():
    reg = CollectorRegistry()
    sent = Counter("hftlab_orders_sent", "orders sent", registry=reg)
    sent.inc(3)
    switch = KillSwitch()
    cancelled: list[str] = []
    switch.on_trip.append(cancelled.append)
    srv = ControlServer(switch, token=TOKEN, status=lambda: {"orders": 3}, registry=reg)
    with srv:
        yield srv, switch, cancelled


def test_kill_latches_until_reset(server) -> None:
    srv, switch, cancelled = server
    assert switch.allows()
    code, body = _call(srv.url + "/kill", "POST", body={"reason": "fat finger"})
    assert code == 200
    assert json.loads(body) == {"killed": True, "already": False}
    assert not switch.allows()
    assert cancelled == ["fat finger"]  # the trip actions ran once
    code, body = _call(srv.url + "/kill", "POST")
    assert json.loads(body)["already"] is True
    assert cancelled == ["fat finger"]
    code, body = _call(srv.url + "/status")
    st = json.loads(body)
    assert (st["killed"], st["reason"], st["orders"]) == (True, "fat finger", 3)
    code, body = _call(srv.url + "/reset", "POST")
    assert json.loads(body) == {"killed": False, "was_killed": True}
    assert switch.allows()
    assert [a for _, a, _ in switch.history] == ["kill", "reset"]


def test_metrics_and_auth(server) -> None:
    srv, switch, _ = server
    code, body = _call(srv.url + "/metrics")
    assert code == 200
    assert b"hftlab_orders_sent_total 3.0" in body
    for tok in (None, "wrong-token-wrong-token"):
        assert _call(srv.url + "/kill", "POST", token=tok)[0] == 401
        assert _call(srv.url + "/status", token=tok)[0] == 401
    assert switch.allows()  # refused requests changed nothing
    assert _call(srv.url + "/nope")[0] == 404


def test_loopback_only_and_token_length() -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        ControlServer(KillSwitch(), host="0.0.0.0", token=TOKEN)
    with pytest.raises(ConfigError, match="at least 16"):
        ControlServer(KillSwitch(), token="short")


_CHILD = """
import sys, time
from live.control import KillSwitch, install_signals
sw = KillSwitch()
stopped = []
install_signals(sw, lambda: stopped.append(1))
print("ready", flush=True)
deadline = time.monotonic() + 20
while time.monotonic() < deadline and not stopped:
    time.sleep(0.01)
print("killed" if not sw.allows() else "alive", sw.reason, "stopped" if stopped else "", flush=True)
"""


def test_sigusr1_kills_and_sigterm_stops() -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        out = p.stdout.readline().split()
        assert out == ["killed", "SIGUSR1", "stopped"]
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        if p.stdout is not None:
            p.stdout.close()
