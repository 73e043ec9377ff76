"""`hftlab live --feed binance-ws://...` over a real websocket on 127.0.0.1: the repo's replay
server (live/feeds/binance_replay.py) serves the bundled spot BTCUSDT capture, the bundled
one-tick market maker runs on it in --paper mode (and the USD-M futures capture, whose diffs
chain by ``pu``).

What must hold: every message of the capture reaches the runner and is journaled; the
events the runner's feed made (decoded again from its journal) equal the importer's events
of the same capture field for field, and the engine's book at the end equals the book the
framework's L2 book code builds from the importer's events; the strategy decided orders and
the simulated venue filled some; the journal replays to the same decisions one for one.

Faults: the server cuts the connection mid-stream: the feed reconnects, resyncs from a new
snapshot, ends on the same book, and the journal replays across the reconnect; the server
goes down for good: the stale-feed trigger trips, no order is decided after the loss, and the
outage is given up at ``reconnect_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framework.book.replay import BookReplayer
from framework.cli import main
from framework.core.events import EVENT_DTYPE
from framework.store import TickStore
from live.feeds.binance_live import LOST
from live.feeds.binance_replay import CaptureReplay, read_capture, serve_capture
from live.journal import KIND_CONTROL, KIND_FEED, read
from live.replay import decoded_events
from live.runner import KIND_PAPER_ORDER
from tests.integration.live.live_helpers import cli, live_process, wait_for_line

SPOT = "crypto_hftbacktest_binance_raw_feed/binance_spot_btcusdt_20240808.gz"
USDM = "crypto_hftbacktest_binance_raw_feed/binance_usdm_btcusdt_20240808.gz"
FIELDS = [f for f in EVENT_DTYPE.names or () if f not in ("local_ts", "exch_ts", "instrument")]

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


@contextlib.contextmanager
def capture_server(lines: list[str], **faults: Any) -> Iterator[tuple[int, CaptureReplay]]:
    """The replay server on 127.0.0.1 (a free port) in a thread with its own event loop;
    always stopped. ``faults``: CaptureReplay's (drops, down_after...)."""
    replay = CaptureReplay(lines, **faults)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["server"] = loop.run_until_complete(serve_capture(replay))
        started.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert started.wait(30)
    server = holder["server"]
    try:
        yield server.sockets[0].getsockname()[1], replay  # type: ignore[attr-defined]
    finally:
        async def stop() -> None:
            server.close()  # type: ignore[attr-defined]
            await server.wait_closed()  # type: ignore[attr-defined]

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        t.join(30)
        loop.close()


@pytest.mark.parametrize(("sample", "query"), [(SPOT, ""), (USDM, "?futures=1")])
def test_a_bundled_strategy_trades_paper_on_a_binance_websocket_feed(
    shared_data: Path, tmp_path: Path, sample: str, query: str
) -> None:
    store = str(tmp_path / "store")
    capture = shared_data / sample
    assert main(["data", "import", "binance", str(capture), "--store", store]) == 0
    ts = TickStore(store)
    (key,) = ts.keys()
    ref = ts.read(key.venue, key.symbol, key.date)
    lines = read_capture(capture)
    journal, summary = tmp_path / "journal", tmp_path / "summary.json"
    with capture_server(lines) as (port, replay):
        _paper_session(store, key, f"binance-ws://127.0.0.1:{port}/stream{query}", tmp_path)
    s = json.loads(summary.read_text())
    assert replay.requests_answered == 1
    assert s["messages"] == len(lines)  # every line, the snapshot as its answer
    assert s["gaps"] == 0
    assert s["orders"] > 10
    assert s["fills"] > 0
    assert s["sent"] == 0  # paper: nothing left the process
    # the runner's feed made the importer's events (times are the runner's own receive times)
    _, got = decoded_events(journal)
    assert len(got) == len(ref)
    for f in FIELDS:
        np.testing.assert_array_equal(got[f], ref[f], err_msg=f)
    # and its engine ends on the book the framework's L2 book builds from those events
    last = BookReplayer(levels=1, l3=False).feed(ref)[-1]
    assert (s["book"]["ask"], s["book"]["bid"]) == (int(last[0]), int(last[2]))
    p = cli("journal", "parity", str(journal))
    assert p.returncode == 0, p.stdout + p.stderr
    # paper: the simulated venue's orders, each equal to the replay's
    assert f"parity: {s['orders']} decisions equal one for one" in p.stdout


def _paper_session(store: str, key: Any, feed: str, tmp_path: Path, *, duration: int = 90,
                   stale_s: float = 60) -> None:
    """``hftlab live one_tick_mm --paper`` on ``feed`` until it ends (journal, summary and
    log in ``tmp_path``)."""
    log = tmp_path / "live.log"
    with live_process(
        "one_tick_mm", "--store", store, "--venue", key.venue, "--symbol", key.symbol,
        "--date", key.date.isoformat(), "--feed", feed, "--paper", "--latency",
        "constant:200us", "--journal", str(tmp_path / "journal"), "--duration", str(duration),
        "--kill-on", f"stale_feed_s={stale_s:g}", "--summary", str(tmp_path / "summary.json"),
        log=log,
    ) as live:
        wait_for_line(log, "binance feed connected", live)
        assert live.wait(300) == 0, log.read_text()[-3000:]


def _import(shared_data: Path, tmp_path: Path) -> tuple[str, Any, np.ndarray, list[str]]:
    store = str(tmp_path / "store")
    assert main(["data", "import", "binance", str(shared_data / SPOT), "--store", store]) == 0
    ts = TickStore(store)
    (key,) = ts.keys()
    return store, key, ts.read(key.venue, key.symbol, key.date), read_capture(shared_data / SPOT)


def test_a_cut_connection_is_reconnected_resynced_and_replays_across(
    shared_data: Path, tmp_path: Path
) -> None:
    store, key, ref, lines = _import(shared_data, tmp_path)
    journal, summary, log = tmp_path / "journal", tmp_path / "summary.json", tmp_path / "live.log"
    with capture_server(lines, drops=(len(lines) // 2,)) as (port, replay):
        _paper_session(store, key, f"binance-ws://127.0.0.1:{port}/stream", tmp_path)
    text = log.read_text()
    s = json.loads(summary.read_text())
    assert (replay.connections, replay.dropped, replay.requests_answered) == (2, 1, 2)
    assert "binance feed reconnected after" in text
    assert s["gaps"] == 1  # the loss, reported
    assert s["reconnects"] == 1  # and the connection made again
    assert not s["killed"]
    # every line reached the runner (none lost: the stream went on on the new connection),
    # and both snapshots as answers
    assert s["messages"] == len(lines) + 1
    lost = [r for r in read(journal) if r.kind == KIND_FEED and r.payload.startswith(
        LOST.encode())]
    assert len(lost) == 1
    # the book was rebuilt from the new snapshot, not across the hole: it ends as the
    # importer's (the exchange's) book
    last = BookReplayer(levels=1, l3=False).feed(ref)[-1]
    assert (s["book"]["ask"], s["book"]["bid"]) == (int(last[0]), int(last[2]))
    assert s["orders"] > 10
    p = cli("journal", "parity", str(journal))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"parity: {s['orders']} decisions equal one for one" in p.stdout


def test_a_feed_server_that_stays_down_trips_the_stale_feed_trigger(
    shared_data: Path, tmp_path: Path
) -> None:
    store, key, _, lines = _import(shared_data, tmp_path)
    journal, summary, log = tmp_path / "journal", tmp_path / "summary.json", tmp_path / "live.log"
    with capture_server(lines, down_after=len(lines) // 4) as (port, replay):
        _paper_session(store, key, f"binance-ws://127.0.0.1:{port}/stream?reconnect_s=3",
                       tmp_path, duration=25, stale_s=1)
    text = log.read_text()
    s = json.loads(summary.read_text())
    assert replay.connections == 1
    assert s["reconnects"] == 0  # the outage was given up
    assert "stale feed: no packet for" in text
    assert "no connection within 3 s" in text  # the outage given up, said once
    assert text.count("the book stops here") == 1
    assert s["killed"]
    assert s["gaps"] == 1
    records = list(read(journal))
    (loss,) = [r for r in records if r.kind == KIND_FEED and r.payload.startswith(
        LOST.encode())]
    kills = [json.loads(r.payload) for r in records if r.kind == KIND_CONTROL]
    assert any(k.get("action") == "kill" and "stale feed" in k.get("reason", "")
               for k in kills)
    # nothing was decided on the stale book: every order of the session was submitted
    # before the connection was lost
    orders = [json.loads(r.payload) for r in records if r.kind == KIND_PAPER_ORDER]
    assert orders
    assert max(o["submit_ts"] for o in orders) <= loss.ts
    p = cli("journal", "parity", str(journal))
    assert p.returncode == 0, p.stdout + p.stderr
