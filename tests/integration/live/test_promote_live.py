"""Promotion over real sockets on 127.0.0.1: study -> paper session -> live with limits.

The bundled one-tick market maker, its parameter set chosen by a walk-forward study, goes
through the gates with ``hftlab promote``: the backtest gate (failed by the default rule on
these losing days, then forced with a reason), the paper gate on a real ``hftlab live
--paper`` session's journal (its parity run by promote), then ``hftlab live`` over OUCH
is refused (exit 2) until the live gate records capital limits; the live session then
trades the venue process and every order beyond the limit is denied by the compiled risk
checks with its reason code, the venue never sees a position beyond it, and the live
session's journal still passes parity (the limits are in its session record).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import research
from framework.engine.config import LatencyConfig, QueueConfig
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from tests.integration.live.feed_helpers import free_udp_port, venue_process
from tests.integration.live.live_helpers import (
    DATE,
    cli,
    live_process,
    run_session,
    wait_for_line,
)
from tests.unit.research.study_days import write_days

pytestmark = pytest.mark.slow

LIMIT = 2  #: lots: the live gate's max position (the strategy itself would go to 4 or 5)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("promote-store")
    day = generate_day(date=DATE, n_events=12_000, seed=7, mode="l3")
    TickStore(root).write(day.instrument, DATE, day.events)
    days = [DATE.replace(day=d) for d in (4, 5, 6)]
    write_days(root, days, seed=0, symbol="SYN2")  # the study's days
    return str(root)


def test_a_strategy_goes_from_study_to_paper_to_live_with_enforced_limits(
    store: str, tmp_path: Path
) -> None:
    days = [DATE.replace(day=d) for d in (4, 5, 6)]
    st = research.optimize(
        "one_tick_mm", venue="SIM", symbol="SYN2", days=days, space=["max_position=4:5"],
        store=store, out=tmp_path / "study", workers=0, mode="compiled", walk_forward="1:1",
        latency=LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        queue=QueueConfig(model="power", n=2.0), report=False)
    chosen = int(st.best["max_position"][0])
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"max_position": chosen}))
    sessions = tmp_path / "sessions"
    promote = ("promote", "one_tick_mm", "--params", str(params), "--records", str(sessions))

    # gate 1: the default rule (OOS Sharpe > 0) on a losing strategy fails; then forced
    p = cli(*promote, "--study", str(tmp_path / "study"))
    oos = st.walk.oos_stats["sharpe"]  # type: ignore[union-attr]
    assert p.returncode == (0 if oos > 0 else 1), p.stdout + p.stderr
    p = cli(*promote, "--study", str(tmp_path / "study"), "--force", "--reason",
            "synthetic days: the gate is exercised, not the edge")
    assert p.returncode == 0, p.stdout + p.stderr
    assert '"backtest": true' in p.stdout

    # gate 2: a real paper session of this set, its journal beside the record
    feed, rereq = free_udp_port(), free_udp_port()
    paper = sessions / "paper-1"
    live_log = tmp_path / "paper.log"
    with live_process(
        "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
        "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
        "--paper", "--param", f"max_position={chosen}", "--latency", "constant:200us",
        "--duration", "15", "--kill-on", "stale_feed_s=60", "--journal", str(paper),
        log=live_log,
    ) as live:
        wait_for_line(live_log, "ready:", live)
        with venue_process(store, "SIM", "SYN", DATE, "--speed", "600",
                           "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                           "--linger", "60", log=tmp_path / "venue-paper.log"):
            assert live.wait(60) == 0, live_log.read_text()[-3000:]
    p = cli(*promote[:4], "--journal", str(paper))  # records beside the journal by default
    assert p.returncode == 0, p.stdout + p.stderr
    assert "gate paper: passed: parity:" in p.stdout
    # another set's paper session is no evidence for this one
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"max_position": chosen, "improve": True}))
    p = cli("promote", "one_tick_mm", "--params", str(other), "--journal", str(paper),
            "--records", str(tmp_path / "other-records"))
    assert p.returncode == 1
    assert "did not run OneTickMM with this set" in p.stdout

    # live is refused until the live gate: one line, exit 2, nothing started
    refused = run_live_cli(store, tmp_path, sessions, chosen)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert [ln for ln in refused.stderr.splitlines() if "error" in ln] == [
        refused.stderr.strip().splitlines()[-1]]
    assert "gate(s) live not passed" in refused.stderr
    p = cli(*promote, "--max-position", str(LIMIT), "--max-notional", "1000000")
    assert p.returncode == 0, p.stdout + p.stderr
    assert '"live": true' in p.stdout

    # gate 3: live over OUCH; the record's limit is enforced by the compiled risk checks
    (tmp_path / "live").mkdir()
    s = run_session(store, tmp_path / "live", "ouch", mode="compiled", duration=15,
                    speed="600", extra=("--param", f"max_position={chosen}",
                                        "--records", str(sessions),
                                        "--kill-on", "stale_feed_s=60"))
    summ = s.summary
    assert summ["risk"]["OneTickMM"]["max_position"] == LIMIT
    assert summ["denials"].get("max_position_instrument", 0) > 0, summ
    _, _, position, n_exec = s.venue_exec["ouch:u1"]
    assert n_exec > 0
    assert abs(position) <= LIMIT
    assert summ["positions"] == {"OneTickMM": position}
    p = cli("journal", "parity", str(tmp_path / "live" / "journal"))
    assert p.returncode == 0, p.stdout + p.stderr
    record = json.loads(next(sessions.glob("promotion-OneTickMM-*.json")).read_text())
    assert [e["gate"] for e in record["history"]] == ["backtest", "backtest", "paper", "live"]
    assert record["history"][1]["forced"] is True
    assert record["history"][2]["evidence"]["parity"]["ok"] is True


def run_live_cli(store: str, tmp: Path, sessions: Path,
                 chosen: int) -> subprocess.CompletedProcess[str]:
    """``hftlab live`` over OUCH (no venue needed: it must refuse before connecting)."""
    return cli("live", "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
               "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{free_udp_port()}",
               "--gateway", "ouch://127.0.0.1:9?user=u1&password=pw", "--param",
               f"max_position={chosen}", "--journal", str(sessions / "live-0"), timeout=120)
