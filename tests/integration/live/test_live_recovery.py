"""kill -9 of the runner mid-session, at seeded moments, again and again: each restart on the
same journal rebuilds the session, catches up with the venue and trades on. At the end
nothing is lost or doubled: every order sent once under one UserRefNum, the venue accepted
exactly the ones that reached it, and the runner's fills and position are the venue's; the
whole journal, crashes included, still replays to the same decisions."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path

import pytest

from framework.arena.state import REQ_NEW
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.journal import KIND_ORDER_OUT, read
from live.runner import STREAM_SENT, order_key, reference_of, request_of
from tests.integration.live.feed_helpers import free_udp_port, venue_process
from tests.integration.live.live_helpers import (
    DATE,
    assert_account_is_venues,
    free_tcp_port,
    gateway_url,
    live_process,
    venue_account,
    wait_for_line,
)

pytestmark = pytest.mark.slow
LOST_RE = re.compile(r"recovered: \d+ order\(s\) adopted, (\d+) never reached the venue")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("recovery-store"))
    day = generate_day(date=DATE, n_events=12_000, seed=13, mode="l3")
    TickStore(root).write(day.instrument, DATE, day.events)
    return root


@pytest.mark.parametrize(("proto", "seed"), [("ouch", 3), ("ouch", 8), ("fix", 21),
                                             ("fix", 5)])
def test_kill_9_at_seeded_points_loses_and_doubles_nothing(
    store: str, tmp_path: Path, proto: str, seed: int
) -> None:
    rng = random.Random(seed)
    feed, rereq, port = free_udp_port(), free_udp_port(), free_tcp_port()
    journal, summary = tmp_path / "journal", tmp_path / "summary.json"
    args = ("one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
            "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
            "--gateway", gateway_url(proto, port, tmp_path), "--journal", str(journal),
            "--summary", str(summary))
    logs: list[Path] = []
    venue_log = tmp_path / "venue.log"
    kills = 3
    with venue_process(store, "SIM", "SYN", DATE, "--speed", "200",
                       "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                       f"--{proto}-port", str(port), "--fix-store", str(tmp_path / "fix-venue"),
                       "--linger", "120", log=venue_log):
        for k in range(kills + 1):
            log = tmp_path / f"live-{k}.log"
            logs.append(log)
            with live_process(*args, log=log) as live:
                wait_for_line(log, "gateway connected", live)
                if k:
                    wait_for_line(log, "recovered:", live)
                time.sleep(rng.uniform(1.0, 4.0))
                assert live.poll() is None, log.read_text()[-3000:]
                if k < kills:
                    os.kill(live.pid, signal.SIGKILL)  # mid-session, no warning
                    live.wait(15)
                else:
                    os.kill(live.pid, signal.SIGTERM)  # the orderly end
                    assert live.wait(60) == 0, log.read_text()[-3000:]
    texts = [p.read_text() for p in logs]
    assert all("rebuilt from the journal" in t for t in texts[1:])
    lost = sum(int(m[1]) for t in texts for m in LOST_RE.finditer(t))
    account = venue_account(venue_log.read_text(), proto)
    accepted, rejected = account[4:]
    # sent once: one UserRefNum / ClOrdID per order, one order per (strategy, order id)
    keys, refs = [], []
    for r in read(journal):
        if r.kind == KIND_ORDER_OUT and r.stream == STREAM_SENT:
            q = request_of(r.payload)
            if q["kind"] == REQ_NEW and reference_of(r.payload):
                keys.append(order_key(int(q["strategy"]), int(q["oid"])))
                refs.append(reference_of(r.payload))
    assert len(set(keys)) == len(keys)
    assert len(set(refs)) == len(refs)
    # the venue accepted every order that reached it, once, and refused none
    assert rejected == 0
    assert accepted == len(refs) - lost
    # and the runner's account is the venue's
    assert_account_is_venues(summary, journal, "OneTickMM", account)
