"""The FIX session layer against an independent implementation, QuickFIX (C++ engine):

* our FIX gateway (initiator) against a QuickFIX acceptor: logon, heartbeats, a
  ResendRequest/SequenceReset-GapFill round each way, order flow;
* the venue's FIX acceptor against a QuickFIX initiator: the same, plus a session-level
  Reject of a bad message.

QuickFIX runs in its own process (``quickfix_peer.py``). QuickFIX 1.16 has no setting for
the acceptor's listen address (it binds the wildcard address), so that process runs with a
small ``LD_PRELOAD`` shim (``loopback_bind.c``, compiled by the test) that turns a wildcard
bind into a bind to 127.0.0.1; the test checks the acceptor listens on loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from live.gateways.base import Ack, Fill, OrderState, Side
from live.gateways.fix import FixGateway
from live.venue.matching import Matcher
from live.venue.orders import serve_orders

pytest.importorskip("quickfix", reason="quickfix (the live-test extra) is not installed")

PEER = Path(__file__).with_name("quickfix_peer.py")
SHIM = Path(__file__).with_name("loopback_bind.c")


@pytest.fixture(scope="module")
def loopback_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled LD_PRELOAD shim that keeps QuickFIX's acceptor on 127.0.0.1."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the loopback shim QuickFIX's acceptor needs")
    out = tmp_path_factory.mktemp("shim") / "loopback_bind.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(SHIM), "-ldl"],
                   check=True, capture_output=True, timeout=60)
    return out


def listening_addresses(port: int) -> set[str]:
    """The local addresses of IPv4/IPv6 sockets listening on ``port`` (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, p = local.rsplit(":", 1)
                if state == "0A" and int(p, 16) == port:  # 0A: LISTEN
                    found.add(addr)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp: Path, role: str, port: int, sender: str, target: str) -> Path:
    where = (f"SocketAcceptPort={port}\nSocketReuseAddress=Y\n" if role == "acceptor" else
             f"SocketConnectHost=127.0.0.1\nSocketConnectPort={port}\nHeartBtInt=1\n"
             "ReconnectInterval=1\n")
    path = tmp / f"{role}.cfg"
    path.write_text(f"""[DEFAULT]
ConnectionType={role}
{where}StartTime=00:00:00
EndTime=00:00:00
FileStorePath={tmp / "qf_store"}
FileLogPath={tmp / "qf_log"}
UseDataDictionary=N

[SESSION]
BeginString=FIX.4.4
SenderCompID={sender}
TargetCompID={target}
""")
    return path


class Peer:
    """The QuickFIX process: what it reported so far, and commands to it."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.admin_in: Counter[str] = Counter()
        self.admin_out: Counter[str] = Counter()
        self.app_in: list[dict[str, str]] = []
        self.logons = self.logouts = 0
        self.started = False
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            ev: dict[str, Any] = json.loads(line)
            kind = ev["ev"]
            if kind == "admin_in":
                self.admin_in[ev["type"]] += 1
            elif kind == "admin_out":
                self.admin_out[ev["type"]] += 1
            elif kind == "app_in":
                self.app_in.append(ev["fields"])
            elif kind == "logon":
                self.logons += 1
            elif kind == "logout":
                self.logouts += 1
            elif kind == "started":
                self.started = True

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")

    def reports(self, cl: str) -> list[str]:
        return [f["150"] for f in self.app_in if f.get("11") == cl and "150" in f]

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError):
            self.send("quit")
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def quickfix(cfg: Path, preload: Path | None = None) -> Any:
    env = {**os.environ, "LD_PRELOAD": str(preload)} if preload is not None else None
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PEER), str(cfg), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, env=env)
    peer = Peer(proc)
    try:
        await until(lambda: peer.started, "QuickFIX to start")
        yield peer
    finally:
        await peer.close()


async def until(cond: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_gateway_against_quickfix_acceptor(tmp_path: Path, loopback_shim: Path) -> None:
    port = free_port()

    async def main() -> None:
        cfg = config(tmp_path, "acceptor", port, "QFVENUE", "GW")
        async with quickfix(cfg, preload=loopback_shim) as qf:
            # 0100007F: 127.0.0.1 in /proc/net/tcp's byte order; nothing on 0.0.0.0 or ::
            assert listening_addresses(port) == {"0100007F"}
            g = FixGateway("127.0.0.1", port, sender="GW", target="QFVENUE", symbol="TEST",
                           store_dir=tmp_path / "gw", heartbeat_s=1, cl_prefix="c")
            try:
                await g.connect()
                await until(lambda: qf.logons == 1, "QuickFIX's logon")
                # heartbeats both ways while idle
                await until(lambda: qf.admin_in["0"] >= 2 and g.session.received[b"0"] >= 2,
                            "heartbeats both ways")
                # order flow
                o = g.submit(Side.BUY, 7, 42)
                assert isinstance(await g.wait_for(Ack), Ack)
                f = await g.wait_for(Fill)
                assert isinstance(f, Fill)
                assert (f.qty, f.price, f.leaves) == (7, 42, 0)
                assert o.state == OrderState.FILLED
                # our messages skip three sequence numbers: QuickFIX asks for a resend, we
                # answer with a gap fill and the order again (PossDup); it is taken once
                g.session.store.next_out += 3
                o2 = g.submit(Side.SELL, 2, 43)
                await until(lambda: qf.admin_out["2"] >= 1, "QuickFIX's ResendRequest")
                assert isinstance(await g.wait_for(Ack), Ack)
                await g.wait_for(Fill)
                assert o2.state == OrderState.FILLED
                assert sum(1 for m in qf.app_in if m["35"] == "D") == 2
                assert qf.admin_in["4"] >= 1  # our gap fill reached it
                # QuickFIX's messages skip five: we ask, it gap-fills, the reports come once
                qf.send("bump 5")
                o3 = g.submit(Side.BUY, 1, 44)
                await until(lambda: g.session.received[b"4"] >= 1, "QuickFIX's gap fill")
                assert isinstance(await g.wait_for(Ack), Ack)
                await g.wait_for(Fill)
                assert o3.state == OrderState.FILLED
                assert o3.filled == 1
                assert qf.admin_in["2"] == 1  # we asked once
                assert g.session.bad_frames == 0
            finally:
                await g.close()
            await until(lambda: qf.logouts == 1, "the logout handshake")

    asyncio.run(asyncio.wait_for(main(), 90))


def test_venue_acceptor_against_quickfix_initiator(tmp_path: Path) -> None:
    async def main() -> None:
        m = Matcher(capacity=64, n_ticks=256)
        servers = await serve_orders(m, symbol="TEST", fix_port=0, fix_store=tmp_path / "v",
                                     comp_id="HFTLAB")
        try:
            cfg = config(tmp_path, "initiator", servers.fix.port, "QFCLIENT", "HFTLAB")
            async with quickfix(cfg) as qf:
                await until(lambda: qf.logons == 1, "QuickFIX's logon to the venue")
                await until(lambda: qf.admin_in["0"] >= 2, "venue heartbeats")
                venue = servers.fix.sessions["QFCLIENT"].session
                assert venue.received[b"0"] >= 1  # and QuickFIX's
                qf.send("order q1 100")
                await until(lambda: qf.reports("q1") == ["0"], "the ack of q1")
                # QuickFIX skips four sequence numbers: the venue asks for a resend and
                # takes the resent order once
                qf.send("bump 4")
                qf.send("order q2 99")
                await until(lambda: qf.reports("q2") == ["0"], "the ack of q2")
                assert qf.admin_in["2"] == 1  # the venue's ResendRequest
                assert venue.received[b"4"] >= 1  # QuickFIX's gap fill
                assert len(m.open_orders("fix:QFCLIENT")) == 2
                # the venue skips three: QuickFIX asks, the venue gap-fills
                venue.store.next_out += 3
                qf.send("order q3 98")
                await until(lambda: qf.reports("q3") == ["0"], "the ack of q3")
                assert qf.admin_out["2"] >= 1
                assert qf.admin_in["4"] >= 1
                assert len(m.open_orders("fix:QFCLIENT")) == 3
                # a message with a bad value gets a session-level Reject, not a crash
                qf.send("bad q4")
                await until(lambda: qf.admin_in["3"] >= 1, "the venue's Reject")
                qf.send("order q5 96")
                await until(lambda: qf.reports("q5") == ["0"], "the ack of q5")
                assert len(m.open_orders("fix:QFCLIENT")) == 4
        finally:
            await servers.stop()

    asyncio.run(asyncio.wait_for(main(), 90))
