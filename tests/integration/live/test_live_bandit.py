"""``hftlab live --bandit`` against an ``hftlab venue`` process, both on 127.0.0.1: a paper
session whose journal replays to the same gate decisions and orders, and an OUCH session
killed with -9 mid-epoch that comes back with the arm it had chosen and trades on; the whole
journal, crash included, still replays to the same decisions."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.journal import read
from live.runner import KIND_GATE
from research.ml.bandit import load_state
from research.ml.regime import as_l2, fit_regimes
from tests.integration.live.feed_helpers import free_udp_port, venue_process
from tests.integration.live.live_helpers import (
    DATE,
    cli,
    free_tcp_port,
    gateway_url,
    live_process,
    wait_for_line,
)

pytestmark = pytest.mark.slow
SETS = [{"max_position": 1}, {"max_position": 4}]
SPEED = 400  #: the venue replays the day this much faster than it happened
RESUMED_RE = re.compile(r"bandit: resumed after (\d+) decision\(s\) with arm (-?\d+)")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """The stored day, a regime model on the session's clock (receive times: the day's
    times divided by SPEED) and the parameter sets."""
    root = tmp_path_factory.mktemp("bandit-live")
    day = generate_day(date=DATE, n_events=12_000, seed=13, mode="l3")
    TickStore(str(root / "store")).write(day.instrument, DATE, day.events)
    ev = as_l2(day.events).copy()
    t0 = int(ev["local_ts"][0])
    ev["local_ts"] = t0 + (ev["local_ts"] - t0) // SPEED
    ev["exch_ts"] = ev["local_ts"]
    model = fit_regimes([ev], halflife_ns=100_000_000, baseline_halflife_ns=3_000_000_000)
    path = model.feature_model().save(root / "model.npz")
    sets = root / "sets.json"
    sets.write_text(json.dumps(SETS))
    return str(root / "store"), path, sets


def _gates(journal: Path) -> list[dict]:
    return [json.loads(r.payload) for r in read(journal) if r.kind == KIND_GATE]


def test_a_paper_bandit_session_replays_to_its_gate_decisions(
    setup: tuple[str, Path, Path], tmp_path: Path
) -> None:
    store, model, sets = setup
    feed, rereq = free_udp_port(), free_udp_port()
    journal, summary, state = tmp_path / "journal", tmp_path / "summary.json", \
        tmp_path / "state.json"
    live_log, venue_log = tmp_path / "live.log", tmp_path / "venue.log"
    with live_process(
        "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
        "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
        "--paper", "--latency", "constant:200us", "--duration", "25",
        "--journal", str(journal), "--summary", str(summary),
        "--feature-model", str(model), "--bandit", str(sets), "--bandit-epoch", "250ms",
        "--bandit-state", str(state), "--bandit-seed", "7", log=live_log,
    ) as live:
        wait_for_line(live_log, "ready:", live)
        with venue_process(store, "SIM", "SYN", DATE, "--speed", str(SPEED),
                           "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                           "--linger", "60", log=venue_log):
            rc = live.wait(160)
        assert rc == 0, live_log.read_text()[-3000:]
    s = json.loads(summary.read_text())
    gates = _gates(journal)
    decisions = [g for g in gates if not g.get("close")]
    assert s["bandit"]["decisions"] == len(decisions) > 20
    assert gates[-1]["close"]
    assert len({g["arm"] for g in decisions}) >= 2
    assert len({g["context"] for g in decisions}) >= 2  # the regime moved
    assert s["orders"] > 0
    # the instances are isolated: each has its own position
    assert set(s["positions"]) == {"OneTickMM_0", "OneTickMM_1"}
    # what the session learned went to the state file: one reward per epoch
    learned = load_state(state, SETS, n_contexts=4)
    assert np.sum(learned["n"]) == len(decisions)
    p = cli("journal", "parity", str(journal))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "parity:" in p.stdout


def test_kill_9_resumes_with_the_chosen_arm_and_replays(
    setup: tuple[str, Path, Path], tmp_path: Path
) -> None:
    store, model, sets = setup
    feed, rereq, port = free_udp_port(), free_udp_port(), free_tcp_port()
    journal, summary = tmp_path / "journal", tmp_path / "summary.json"
    args = ("one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
            "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
            "--gateway", gateway_url("ouch", port, tmp_path), "--journal", str(journal),
            "--summary", str(summary), "--feature-model", str(model), "--bandit", str(sets),
            "--bandit-epoch", "250ms")
    logs = [tmp_path / "live-0.log", tmp_path / "live-1.log"]
    with venue_process(store, "SIM", "SYN", DATE, "--speed", str(SPEED),
                       "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                       "--ouch-port", str(port), "--linger", "120",
                       log=tmp_path / "venue.log"):
        with live_process(*args, log=logs[0]) as live:
            wait_for_line(logs[0], "gateway connected", live)
            end = time.monotonic() + 60
            while logs[0].read_text().count("bandit: epoch from") < 6:
                assert time.monotonic() < end, logs[0].read_text()[-3000:]
                assert live.poll() is None, logs[0].read_text()[-3000:]
                time.sleep(0.05)
            os.kill(live.pid, signal.SIGKILL)  # mid-epoch, no warning
            live.wait(15)
        before = [g for g in _gates(journal) if not g.get("close")]
        assert len(before) >= 3
        with live_process(*args, log=logs[1]) as live:
            wait_for_line(logs[1], "recovered:", live)
            time.sleep(2.0)
            assert live.poll() is None, logs[1].read_text()[-3000:]
            os.kill(live.pid, signal.SIGTERM)  # the orderly end
            assert live.wait(60) == 0, logs[1].read_text()[-3000:]
    m = RESUMED_RE.search(logs[1].read_text())
    assert m is not None, logs[1].read_text()[-3000:]
    n, arm = int(m[1]), int(m[2])
    after = [g for g in _gates(journal) if not g.get("close")]
    # it came back with the arm of the last decision made before the crash: the last one
    # journaled, or (when the crash came between a decision and its record) the one drawn
    # anew in its place and journaled as the resumed session began
    assert n in (len(before), len(before) + 1)
    assert after[:len(before)] == before
    assert after[n - 1]["arm"] == arm
    assert len(after) > n  # and it went on choosing
    s = json.loads(summary.read_text())
    assert s["bandit"]["decisions"] == len(after)
    p = cli("journal", "parity", str(journal))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "parity:" in p.stdout
    # the journal replayed as a backtest (the venue's answers give its latencies): the gate
    # takes the session's arms, as many as it made
    r = cli("journal", "replay", str(journal), "--store", str(tmp_path / "replayed"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"bandit: {len(after)} epoch(s) with the session's arms" in r.stdout
