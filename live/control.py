"""Kill switch and control of a live process: over HTTP on loopback, by signal, and latched.

:class:`KillSwitch` is the one gate every outbound order passes (:meth:`KillSwitch.allows`):
once tripped -- by an operator, a signal or a risk trigger -- nothing is sent until an
explicit :meth:`KillSwitch.reset`; the reason and time of each trip and reset are kept.

:class:`ControlServer` serves, on 127.0.0.1 only and to requests bearing the token:

- ``POST /kill`` (optional JSON ``{"reason": ...}``): trips the switch;
- ``POST /reset``: resets it;
- ``GET /status``: JSON from the owner's ``status()`` plus the switch's state;
- ``GET /metrics``: Prometheus text exposition of the process's registry;
- ``GET /`` (or ``/dashboard``): the dashboard page (:mod:`live.dashboard`; static, no token
  needed to load it, every value it shows is fetched with the token).

A missing or wrong token is answered 401 without detail (compared in constant time).
:func:`install_signals` maps SIGUSR1 to a kill and SIGTERM to the owner's orderly stop.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from framework.core.errors import ConfigError
from live.dashboard import PAGE

TOKEN_ENV = "HFTLAB_CONTROL_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class KillSwitch:
    """A latched kill switch: tripped by any caller, reset only explicitly."""

    tripped: bool = False
    reason: str = ""
    since_ns: int = 0
    history: list[tuple[int, str, str]] = field(default_factory=list)  #: (ns, action, reason)
    on_trip: list[Callable[[str], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def trip(self, reason: str) -> bool:
        """Trip the switch (a no-op when already tripped); returns whether it was armed.
        The ``on_trip`` callbacks (cancel everything, say) run once, on the first trip."""
        with self._lock:
            if self.tripped:
                return False
            self.tripped = True
            self.reason = reason
            self.since_ns = time.time_ns()
            self.history.append((self.since_ns, "kill", reason))
        for cb in self.on_trip:
            cb(reason)
        return True

    def reset(self, who: str = "operator") -> bool:
        """Let orders out again; returns whether it was tripped."""
        with self._lock:
            if not self.tripped:
                return False
            self.tripped = False
            self.history.append((time.time_ns(), "reset", who))
            self.reason = ""
            return True

    def allows(self) -> bool:
        """Whether an order may leave the process now."""
        return not self.tripped

    def state(self) -> dict[str, Any]:
        return {"killed": self.tripped, "reason": self.reason, "since_ns": self.since_ns}


def resolve_token(token: str | None = None) -> str:
    """The bearer token: the one given, else ``$HFTLAB_CONTROL_TOKEN``, else a new random
    one (the caller prints where to find it; it is never logged here)."""
    tok = token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    if len(tok) < 16:
        msg = f"the control token must be at least 16 characters (set {TOKEN_ENV})"
        raise ConfigError(msg)
    return tok


class ControlServer:
    """The control endpoint of a live process, on a thread of its own."""

    def __init__(
        self,
        switch: KillSwitch,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if host not in LOOPBACK:
            msg = f"the control endpoint listens on loopback only (127.0.0.1), not {host!r}"
            raise ConfigError(msg)
        self.switch = switch
        self.token = resolve_token(token)
        self._status = status or dict
        self.registry = registry or CollectorRegistry()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are not logged (the token travels in them)

            def _authorised(self) -> bool:
                got = self.headers.get("Authorization", "")
                want = f"Bearer {server.token}"
                return hmac.compare_digest(got.encode(), want.encode())

            def _reply(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, obj: Any) -> None:
                self._reply(code, json.dumps(obj, default=str).encode())

            def _body(self) -> dict[str, Any]:
                n = int(self.headers.get("Content-Length") or 0)
                if n <= 0 or n > 65536:
                    return {}
                try:
                    obj = json.loads(self.rfile.read(n))
                except ValueError:
                    return {}
                return obj if isinstance(obj, dict) else {}

            def do_GET(self) -> None:
                if self.path in ("/", "/dashboard"):  # the page is static: no data, no secret
                    self._reply(200, PAGE.encode(), "text/html; charset=utf-8")
                elif not self._authorised():
                    self._json(401, {"error": "unauthorised"})
                elif self.path == "/status":
                    self._json(200, {**server._status(), **server.switch.state()})
                elif self.path == "/metrics":
                    self._reply(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                else:
                    self._json(404, {"error": f"no such endpoint {self.path}"})

            def do_POST(self) -> None:
                if not self._authorised():
                    self._json(401, {"error": "unauthorised"})
                    return
                body = self._body()
                if self.path == "/kill":
                    reason = str(body.get("reason") or "operator kill (HTTP)")
                    fresh = server.switch.trip(reason)
                    self._json(200, {"killed": True, "already": not fresh})
                elif self.path == "/reset":
                    was = server.switch.reset("operator (HTTP)")
                    self._json(200, {"killed": False, "was_killed": was})
                else:
                    self._json(404, {"error": f"no such endpoint {self.path}"})

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host = str(self._httpd.server_address[0])
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hftlab-control", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def install_signals(switch: KillSwitch, stop: Callable[[], None]) -> None:
    """SIGUSR1 trips the kill switch; SIGTERM asks for an orderly stop (cancel all, flatten
    if configured, close sessions). Call from the main thread."""
    signal.signal(signal.SIGUSR1, lambda *_: switch.trip("SIGUSR1"))
    signal.signal(signal.SIGTERM, lambda *_: stop())


__all__ = ["TOKEN_ENV", "ControlServer", "KillSwitch", "install_signals", "resolve_token"]
