"""kill -9 of the runner while a replace is in flight (OUCH Replace Order, FIX
OrderCancelReplaceRequest), over real sockets: the crash comes right after a replace was
journaled and before it was written (it never leaves), right after it was written (the
venue takes or refuses it while the runner is away), or while a modify waits for its
order's answer (journaled, never sent). Each restart on the same journal adopts the order
under the id the venue's answer names (UserRefNum, ClOrdID), takes the venue's answers to
what it missed (OUCH's replay, FIX's resend), refuses locally what never left, and trades
on. The venue acts only on an order live under the id a request names, so a request under
a retired id would show as a refusal.

At the end: no replace sent twice (every UserRefNum or ClOrdID used once), nothing lost or
doubled (the venue's executions are the runner's fills, its position the runner's), the
engine's orders equal the gateway's after every recovery and at the stop, and the whole
journal still replays to the same decisions."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from framework.arena.state import REQ_NEW
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.journal import KIND_ORDER_OUT, read
from live.runner import KIND_REF, REF_UNSENT, STREAM_SENT, parse_ref, reference_of, request_of
from tests.integration.live.feed_helpers import free_udp_port, venue_process
from tests.integration.live.live_helpers import (
    CRASH_ENV,
    DATE,
    assert_account_is_venues,
    free_tcp_port,
    gateway_url,
    live_process,
    venue_account,
    wait_for_line,
)

pytestmark = pytest.mark.slow
STRATEGY = "tests.integration.live.modify_mm:ModifyMM"
RECOVERED_RE = re.compile(
    r"recovered: \d+ order\(s\) adopted, (\d+) never reached the venue .*; (\d+) replace\(s\) "
    r"in flight, (\d+) of them never reached the venue; (\d+) modify\(s\) refused locally")
VIEWS_RE = re.compile(r"order views (after recovery|at the stop): (\d+) compared, \d+ in "
                      r"flight, differences: (.*)")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("replace-store"))
    day = generate_day(date=DATE, n_events=12_000, seed=29, mode="l3")
    TickStore(root).write(day.instrument, DATE, day.events)
    return root


def _run(args: tuple[str, ...], log: Path, crash: str | None, *, recovering: bool,
         rng: random.Random, monkeypatch: pytest.MonkeyPatch) -> str:
    """One runner: killed by its own crash hook (``crash``), by the test if the hook's
    moment never came within a bound, or (no ``crash``) stopped in order after a while.
    Returns its log."""
    with monkeypatch.context() as mp:
        if crash:
            mp.setenv(CRASH_ENV, crash)  # live_process passes the environment on
        with live_process(*args, log=log) as live:
            wait_for_line(log, "gateway connected", live)
            if recovering:
                wait_for_line(log, "order views after recovery", live)
            if crash:
                try:
                    live.wait(30)  # the hook kills it at its moment
                except subprocess.TimeoutExpired:
                    os.kill(live.pid, signal.SIGKILL)  # that moment never came: any moment
                    live.wait(15)
                assert live.returncode == -signal.SIGKILL, log.read_text()[-3000:]
            else:
                time.sleep(rng.uniform(2.0, 4.0))
                assert live.poll() is None, log.read_text()[-3000:]
                os.kill(live.pid, signal.SIGTERM)  # the orderly end
                assert live.wait(60) == 0, log.read_text()[-3000:]
    return log.read_text()


@pytest.mark.parametrize(("proto", "seed"), [("ouch", 4), ("ouch", 17), ("fix", 6),
                                             ("fix", 11)])
def test_kill_9_with_a_replace_in_flight_loses_and_doubles_nothing(
    store: str, tmp_path: Path, proto: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    crashes = ["before", "after", "waiting", "before", "after"]
    rng.shuffle(crashes)
    feed, rereq, port = free_udp_port(), free_udp_port(), free_tcp_port()
    journal, summary = tmp_path / "journal", tmp_path / "summary.json"
    args = (STRATEGY, "--store", store, "--venue", "SIM", "--symbol", "SYN",
            "--date", DATE.isoformat(), "--feed", f"itch://127.0.0.1:{feed}?rerequest={rereq}",
            "--gateway", gateway_url(proto, port, tmp_path), "--journal", str(journal),
            "--summary", str(summary))
    venue_log = tmp_path / "venue.log"
    texts: list[str] = []
    with venue_process(store, "SIM", "SYN", DATE, "--speed", "100",
                       "--itch", f"127.0.0.1:{feed}", "--rerequest-port", str(rereq),
                       f"--{proto}-port", str(port), "--fix-store", str(tmp_path / "fix-venue"),
                       "--linger", "120", log=venue_log):
        for k, where in enumerate([*crashes, None]):
            crash = None if where is None else f"{where}:{rng.randint(1, 4)}"
            texts.append(_run(args, tmp_path / f"live-{k}.log", crash, recovering=k > 0,
                              rng=rng, monkeypatch=monkeypatch))
    vlog = venue_log.read_text()
    # the hook's moments came: a replace journaled and never sent, one sent and unanswered
    fired = [t for t in texts if "test crash hook:" in t]
    assert any("test crash hook: before" in t for t in fired), texts[0][-2000:]
    assert any("test crash hook: after" in t for t in fired)
    # each recovery: its own accounting of what was in flight, then the engine's orders
    # equal the gateway's (the venue's answers): no modify left waiting for an answer
    # that cannot come, every replaced price and size the venue's
    for k, t in enumerate(texts[1:], 1):
        m = RECOVERED_RE.search(t)
        assert m is not None, t[-3000:]
        in_flight, never = int(m[2]), int(m[3])
        before = texts[k - 1]
        if "test crash hook: before" in before:
            assert in_flight >= 1, m[0]
            assert never >= 1, m[0]
        if "test crash hook: after" in before:
            assert in_flight >= 1, m[0]
    views = [v for t in texts for v in VIEWS_RE.finditer(t)]
    assert [v[1] for v in views] == ["after recovery"] * (len(texts) - 1) + ["at the stop"]
    assert [v[3] for v in views] == ["[]"] * len(views), [v[0] for v in views]
    assert sum(int(v[2]) for v in views) > 0
    # every id once: new orders, replaces (and FIX cancels) alike (no replace went twice)
    keys, refs, replaces, unsent = [], [], [], []
    for r in read(journal):
        if r.kind == KIND_ORDER_OUT and r.stream == STREAM_SENT:
            q = request_of(r.payload)
            if q["kind"] == REQ_NEW and reference_of(r.payload):
                keys.append((int(q["strategy"]), int(q["oid"])))
                refs.append(reference_of(r.payload))
        elif r.kind == KIND_REF:
            _, ref, what = parse_ref(r.payload)
            (unsent if what == REF_UNSENT else replaces).append(ref)
    assert "replace" in {parse_ref(r.payload)[2] for r in read(journal) if r.kind == KIND_REF}
    # what a recovery found never left is one of them, found once (later ones knew it)
    assert 0 < len(unsent) == len(set(unsent))
    assert set(unsent) <= set(replaces)
    assert len(set(keys)) == len(keys)
    assert len(set(refs + replaces)) == len(refs) + len(replaces)
    # the venue refused nothing it got: no unknown, retired or repeated id, no order lost
    # (a cancel or replace may cross its order's fill: the venue refuses it, "is done")
    refused = [line for line in vlog.splitlines() if " rejected: " in line]
    assert [line for line in refused if " is done" not in line] == [], vlog[-3000:]
    account = venue_account(vlog, proto)
    accepted, rejected = account[4:]
    lost = sum(int(m[1]) for t in texts for m in RECOVERED_RE.finditer(t))
    assert rejected == 0
    assert accepted == len(refs) - lost
    assert_account_is_venues(summary, journal, "ModifyMM", account)
