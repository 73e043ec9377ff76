"""`hftlab live` over real sockets: the venue process replays a generated L3 day and takes
the runner's orders over OUCH or FIX; the bundled one-tick market maker trades it.

What must hold: the runner's positions and fills agree with the venue's own account of the
session's executions; the journal replays to the same decisions one for one, with the
callbacks the session used and with the other form of the strategy (compiled <-> Python);
the journal replays to a store day and a backtest with the session's latencies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from framework.arena.state import REQ_NEW
from framework.ingest.synthetic import generate_day
from framework.kernel.seam import REQUEST_DTYPE
from framework.store import TickStore
from live.journal import KIND_ORDER_OUT, JournalWriter, read
from live.runner import request_of
from tests.integration.live.feed_helpers import free_udp_port, venue_process
from tests.integration.live.live_helpers import (
    DATE,
    EXEC_RE,
    cli,
    free_tcp_port,
    gateway_url,
    live_process,
    run_session,
    wait_for_line,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("live-store"))
    day = generate_day(date=DATE, n_events=12_000, seed=7, mode="l3")
    TickStore(root).write(day.instrument, DATE, day.events)
    return root


def tamper(src: Path, dst: Path, *, which: int) -> Path:
    """A copy of journal ``src`` whose ``which``-th new order has price 999999."""
    seen = 0
    with JournalWriter(dst, fsync="never") as w:
        for r in read(src):
            payload = r.payload
            if r.kind == KIND_ORDER_OUT:
                q = request_of(payload).copy()
                if q["kind"] == REQ_NEW:
                    seen += 1
                    if seen == which:
                        q["price"] = 999_999
                        payload = q.tobytes() + payload[REQUEST_DTYPE.itemsize :]
            w.append(r.kind, payload, stream=r.stream, ts=r.ts)
    assert seen >= which
    return dst


# the OUCH sessions spin (--busy-poll, the low-latency loop); the FIX one sleeps
@pytest.mark.parametrize(("proto", "mode"),
                         [("ouch", "compiled"), ("ouch", "python"), ("fix", "python")])
def test_the_runner_trades_the_venue_and_the_journal_replays_to_the_same_decisions(
    store: str, tmp_path: Path, proto: str, mode: str
) -> None:
    extra = ("--busy-poll", "--wire-stamps") if proto == "ouch" else ()
    if mode == "python":  # (the quiet loop's page reads: on by default, off here)
        extra += ("--warm-pages", "0")
    s = run_session(store, tmp_path, proto, mode=mode, duration=15, speed="600", extra=extra)
    owner = "ouch:u1" if proto == "ouch" else "fix:CLI"
    assert owner in s.venue_exec, s.venue_log[-2000:]
    bought, sold, position, n_exec = s.venue_exec[owner]
    summ = s.summary
    # it traded, both sides of the book, and the session ended flat of working orders
    assert n_exec > 20
    assert bought > 0
    assert sold > 0
    assert summ["gateway"]["open"] == 0
    # the runner's books (engine and gateway) and the venue's agree, fill for fill
    assert summ["fills"] == n_exec
    assert summ["positions"] == {"OneTickMM": position}
    assert (summ["gateway"]["bought"], summ["gateway"]["sold"]) == (bought, sold)
    assert summ["violations"] == 0
    assert "tick_to_order" in s.live_log  # --stats printed the stage table
    if proto == "ouch":  # with the kernel's transmit stamps of the ticks' first orders
        assert "tick_to_wire" in s.live_log, s.live_log[-3000:]
        # ... and from the kernel's receive stamp of their first packets
        assert "rx_to_wire" in s.live_log, s.live_log[-3000:]
    # the compiled loop took the packets; on OUCH it wrote most order messages itself (the
    # rest: cancels of orders not yet accepted, which wait in Python)
    assert summ["hot"]["ticks"] > 0
    # the quiet loop read the tick's pages (thousands: its code and tables), unless told not
    pages, per_pass = summ["hot"]["pages_kept"], summ["hot"]["pages_per_pass"]
    assert (pages > 1000 and per_pass == 8) if mode == "compiled" else pages == per_pass == 0
    # the loop ran the engine's core itself, which called the callbacks (compiled ones, or
    # the Python ones through Engine.core_calls_python): no tick returned to Python for them
    assert summ["hot"]["returns"].get("tick", 0) == 0, summ["hot"]
    if proto == "ouch":
        assert summ["hot"]["sent"] > summ["sent"] // 2, summ["hot"]
        assert summ["hot"]["heartbeats"] > 0  # the quiet loop kept the order path warm
        # each heartbeat's transmit stamp (--wire-stamps) waits in the socket's error queue
        # (POLLERR) for Python's next turn: it does not stop the loop as the venue's data does
        assert summ["hot"]["returns"].get("gateway", 0) < summ["hot"]["heartbeats"] // 2
    else:
        assert summ["hot"]["sent"] == 0
    journal = str(tmp_path / "journal")
    other = "python" if mode == "compiled" else "compiled"
    for replay_mode in (mode, other):  # the same decisions from either form of the strategy
        p = cli("journal", "parity", journal, "--mode", replay_mode)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "decisions equal one for one" in p.stdout
        assert int(p.stdout.split()[1]) >= summ["orders"]
    # a journal whose live session decided one thing differently: parity names it
    bad = tamper(Path(journal), tmp_path / "tampered", which=summ["orders"] // 2)
    p = cli("journal", "parity", str(bad))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "parity FAILED" in p.stdout
    assert "price=999999" in p.stdout.split("replay:")[0]  # the live side, as journaled
    assert "replay:" in p.stdout
    r = cli("journal", "replay", journal, "--store", str(tmp_path / "replayed"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "latency series of" in r.stdout
    assert TickStore(str(tmp_path / "replayed")).keys(venue="JOURNAL")


def test_dropped_packets_are_recovered_and_trading_agrees(store: str, tmp_path: Path) -> None:
    """The venue drops 2% of its packets on the wire: the runner's feed re-requests them,
    its book stays whole, and it trades on as if nothing happened."""
    s = run_session(store, tmp_path, "ouch", mode="compiled", duration=12, speed="600",
                    venue_extra=("--drop", "0.02", "--seed", "5"))
    assert s.summary["gaps"] > 0
    assert s.summary["rerequests"] >= s.summary["gaps"]  # each gap asked for at least once
    assert "reconnects" not in s.summary  # UDP: nothing to connect again
    assert not s.summary["killed"]
    bought, sold, position, n_exec = s.venue_exec["ouch:u1"]
    assert n_exec > 0
    assert s.summary["fills"] == n_exec
    assert s.summary["positions"] == {"OneTickMM": position}
    assert (s.summary["gateway"]["bought"], s.summary["gateway"]["sold"]) == (bought, sold)
    p = cli("journal", "parity", str(tmp_path / "journal"))
    assert p.returncode == 0, p.stdout + p.stderr


def test_a_gap_that_cannot_be_filled_trips_the_switch(store: str, tmp_path: Path) -> None:
    """Packets lost and no re-request port: the feed's alarm trips the kill switch, every
    working order is cancelled, and the session ends in order with nothing left working."""
    s = run_session(store, tmp_path, "ouch", mode="compiled", duration=10, speed="600",
                    venue_extra=("--drop", "0.05", "--seed", "2"), rerequest=False)
    assert "kill switch tripped: feed: MoldUDP64 session" in s.live_log
    assert s.summary["killed"] is True
    assert s.summary["gateway"]["open"] == 0
    _, _, position, n_exec = s.venue_exec.get("ouch:u1", (0, 0, 0, 0))
    assert s.summary["fills"] == n_exec
    assert s.summary["positions"] == {"OneTickMM": position}


def _cut_tcp(port: int) -> bool:
    """Abort the client side of every TCP connection to 127.0.0.1:``port`` (``ss -K``, the
    kernel's sock_destroy); False where the tool or the kernel cannot."""
    ss = shutil.which("ss")
    if ss is None:
        return False
    r = subprocess.run([ss, "-K", "dst", "127.0.0.1", "dport", "=", f":{port}"],
                       capture_output=True, text=True, check=False)
    return r.returncode == 0 and "ESTAB" in r.stdout


def test_a_gateway_disconnect_mid_session_loses_nothing(store: str, tmp_path: Path) -> None:
    """The order session's TCP connection is cut twice while orders are working: the gateway
    reconnects and the venue replays what was missed; new orders are refused locally while
    it is down (never queued), cancels wait for the session. At the end the runner's fills
    and position are the venue's and the journal replays to the same decisions."""
    if shutil.which("ss") is None:
        pytest.skip("needs `ss -K` (iproute2) to cut a TCP connection")
    feed, rereq, port = free_udp_port(), free_udp_port(), free_tcp_port()
    live_log, venue_log = tmp_path / "live.log", tmp_path / "venue.log"
    summary = tmp_path / "summary.json"
    with live_process(
        "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
        "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
        "--gateway", gateway_url("ouch", port, tmp_path), "--duration", "14",
        "--journal", str(tmp_path / "journal"), "--summary", str(summary),
        "--kill-on", "gateway_down_s=30", log=live_log,
    ) as live:
        wait_for_line(live_log, "ready:", live)
        with venue_process(store, "SIM", "SYN", DATE, "--speed", "400",
                           "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                           "--ouch-port", str(port), "--linger", "60", log=venue_log):
            wait_for_line(live_log, "gateway connected", live)
            for _ in range(2):
                time.sleep(3)
                if not _cut_tcp(port):
                    pytest.skip("this kernel cannot destroy sockets (ss -K)")
            rc = live.wait(60)
        assert rc == 0, live_log.read_text()[-3000:]
    text = live_log.read_text()
    assert text.count("gateway disconnected: ConnectionAbortedError") >= 2
    assert text.count("OUCH gateway logged in") >= 3
    s = json.loads(summary.read_text())
    m = EXEC_RE.search(venue_log.read_text())
    assert m is not None
    bought, sold, position, n_exec = (int(m[k]) for k in range(2, 6))
    assert s["violations"] == 0
    assert s["gateway"]["open"] == 0
    assert s["fills"] == n_exec > 0
    assert s["positions"] == {"OneTickMM": position}
    assert (s["gateway"]["bought"], s["gateway"]["sold"]) == (bought, sold)
    p = cli("journal", "parity", str(tmp_path / "journal"))
    assert p.returncode == 0, p.stdout + p.stderr


def test_paper_mode_fills_with_the_backtest_venue_on_the_live_feed(
    store: str, tmp_path: Path
) -> None:
    """--paper: the live feed, no gateway; the simulated venue (latency, queue model) fills."""
    feed, rereq = free_udp_port(), free_udp_port()
    live_log, summary = tmp_path / "live.log", tmp_path / "summary.json"
    with live_process(
        "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
        "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
        "--paper", "--latency", "constant:200us", "--duration", "8", "--summary", str(summary),
        log=live_log,
    ) as live:
        wait_for_line(live_log, "ready:", live)
        with venue_process(store, "SIM", "SYN", DATE, "--speed", "600",
                           "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                           "--linger", "60", log=tmp_path / "venue.log"):
            rc = live.wait(60)
        assert rc == 0, live_log.read_text()[-3000:]
    s = json.loads(summary.read_text())
    assert s["messages"] > 1_000
    assert s["orders"] > 10
    assert s["fills"] > 0
    assert s["sent"] == 0  # nothing left the process
    assert "gateway" not in s
