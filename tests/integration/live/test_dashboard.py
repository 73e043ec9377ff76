"""The dashboard in a real headless Chromium (Debian's `chromium`, driven over the DevTools
protocol): it shows what /status says, refuses to work with a wrong token, and its kill button
trips the kill switch. Skipped, with the reason, where no Chromium is installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from live.control import ControlServer, KillSwitch
from tests.procs import dies_with_parent

TOKEN = "dashboard-token-0123456789"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str | None:
    return next((p for b in BROWSERS if (p := shutil.which(b))), None)


pytestmark = pytest.mark.skipif(
    _browser() is None, reason="no Chromium installed (apt-get install chromium; .ci/run does)"
)


class Page:
    """One browser tab over the DevTools protocol (enough of it for these tests)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.n = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=10))
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg.get("result", {})
        raise TimeoutError(method)

    def eval(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")

    def wait_for(self, expr: str, want: Any, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            got = self.eval(expr)
            if got == want:
                return got
            time.sleep(0.1)
        raise AssertionError(f"{expr} is {got!r}, not {want!r}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[str]:
    """A headless Chromium with DevTools on a free loopback port; yields its HTTP address."""
    profile = tmp_path / "profile"
    p = subprocess.Popen(
        dies_with_parent([
            _browser() or "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--disable-extensions", "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank",
        ]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert port_file.exists(), "Chromium did not open its DevTools port within 30 s"
        port = int(port_file.read_text().split()[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)


def _tab(browser: str) -> str:
    """The DevTools websocket address of the browser's first page."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with urllib.request.urlopen(browser + "/json/list", timeout=5) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        time.sleep(0.1)
    raise AssertionError("no page target in Chromium")


def test_dashboard_shows_status_and_kills(browser: str) -> None:
    switch = KillSwitch()
    ticks = [0]

    def status() -> dict[str, Any]:
        ticks[0] += 1
        return {
            "strategy": "OneTickMM",
            "pnl": 12.5,
            "equity": 1012.5,
            "positions": {"SIM.SYN": 3},
            "orders": [
                {"id": 7, "instrument": "SIM.SYN", "side": "buy", "price": 100.01, "qty": 1,
                 "filled": 0, "status": "new"},
                {"id": 8, "instrument": "SIM.SYN", "side": "sell", "price": 100.03, "qty": 1,
                 "filled": 0, "status": "new"},
            ],
            "latency": {"tick_to_order": {"p50": 12_000, "p99": 40_000, "p999": 60_000,
                                          "max": 90_000, "count": 1234}},
            "risk": {"max_position": 10, "state": "active"},
        }  # fmt: skip

    with (
        ControlServer(switch, token=TOKEN, status=status) as srv,
        connect(_tab(browser), max_size=None, open_timeout=10) as ws,
    ):
        page = Page(ws)

        page.call("Page.enable")
        page.call("Page.navigate", url=f"{srv.url}/dashboard#token=wrong-token-000000")
        page.wait_for("document.getElementById('error').textContent", "token refused")
        assert page.eval("document.getElementById('kill').disabled") is True
        assert switch.allows()

        page.call("Page.navigate", url=f"{srv.url}/dashboard#token={TOKEN}")
        page.wait_for("document.getElementById('pnl').textContent", "12.50")
        assert page.eval("document.getElementById('strategy').textContent") == "OneTickMM"
        assert page.eval("document.getElementById('state').textContent") == "live"
        rows = page.eval(
            "[...document.querySelectorAll('#orders tr')].slice(1)"
            ".map(r => [...r.cells].map(c => c.textContent))"
        )
        assert rows == [
            ["7", "SIM.SYN", "buy", "100.01", "1", "0", "new"],
            ["8", "SIM.SYN", "sell", "100.03", "1", "0", "new"],
        ]
        assert (
            page.eval("document.querySelector('#positions tr:nth-child(2)').textContent")
            == "SIM.SYN3"
        )
        lat = page.eval(
            "[...document.querySelector('#latency tr:nth-child(2)').cells].map(c => c.textContent)"
        )
        assert lat == ["tick_to_order", "12.0", "40.0", "60.0", "90.0", "1234"]
        seen = ticks[0]
        time.sleep(1.2)
        assert ticks[0] > seen  # it keeps polling

        page.eval("document.getElementById('kill').click()")
        deadline = time.monotonic() + 10
        while switch.allows() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not switch.allows()
        assert switch.reason == "dashboard kill"
        page.wait_for("document.getElementById('state').textContent", "KILLED")
