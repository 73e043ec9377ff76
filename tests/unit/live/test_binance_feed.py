"""The runner's Binance websocket feed: its address, the snapshot requests decided by the
messages alone (so a journal replay recognises the same answers), and lost connections: the
backoff, the resync rule after a loss (without a socket), and a local replay server on
127.0.0.1 that cuts the connection or goes down (real sockets, a free port, bounded loops)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framework.core.errors import ConfigError, VenueError
from framework.core.events import BUY, FLAG_LAST, FLAG_SNAPSHOT, KIND_CLEAR, KIND_LEVEL
from live.feeds.binance_live import LOST, BinanceFeed, lost_record
from live.feeds.binance_replay import CaptureReplay, serve_capture
from live.feeds.binance_ws import Backoff, Reconnects, connect_retrying
from live.runner import FeedSpec
from tests.integration.live.live_helpers import free_tcp_port


def test_binance_feed_address() -> None:
    f = FeedSpec.parse("binance-ws://127.0.0.1:9443/stream?futures=1")
    assert (f.scheme, f.host, f.port, f.path, f.futures) == ("binance-ws", "127.0.0.1", 9443,
                                                             "/stream", True)
    assert FeedSpec.parse("binance-ws://127.0.0.1:9443").path == "/"
    assert FeedSpec.parse("binance-ws://127.0.0.1:9443").reconnect_s == 60.0
    assert FeedSpec.parse("binance-ws://127.0.0.1:9443/s?reconnect_s=2.5").reconnect_s == 2.5
    for text, why in (("binance-ws://127.0.0.1:9443/s?futures=yes", "futures=1"),
                      ("binance-ws://127.0.0.1:9443/s?reconnect_s=-1", "reconnect_s"),
                      ("binance-ws://127.0.0.1:9443/s?reconnect_s=soon", "reconnect_s"),
                      ("binance-ws://127.0.0.1:9443/s?reconnect_s=inf", "reconnect_s"),
                      ("binance-ws://127.0.0.1:9443/s?rerequest=3", "unknown option"),
                      ("binance-ws://127.0.0.1/s", "names no port"),
                      ("ws://127.0.0.1:9443/s", "binance-ws://")):
        with pytest.raises(ConfigError, match=why):
            FeedSpec.parse(text)


def _diff(first: int, last: int, bid: str, qty: str) -> bytes:
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1_700_000_000_000 + last, "U": first, "u": last,
        "b": [[bid, qty]], "a": []}}).encode()


def _answer(rid: int, lid: int) -> bytes:
    return json.dumps({"id": rid, "status": 200, "result": {
        "lastUpdateId": lid, "bids": [["100.00", "1.0"]], "asks": [["100.10", "2.0"]]}}).encode()


def test_snapshot_requests_follow_the_messages_and_a_gap_asks_again() -> None:
    f = BinanceFeed("ws://127.0.0.1:1/stream", tick_size="0.01", lot_size="0.001", locate=3)
    got: list[np.ndarray] = []
    f.on_events = lambda ev: got.append(ev.copy())
    assert f._in_flight == 1  # asked for at the start
    f.apply_packets([_diff(5, 6, "99.99", "1")], 10)  # buffered: no snapshot yet
    f.apply_packets([_answer(7, 6)], 11)  # not our request's id: refused
    assert f.sync.rejected["message neither a stream message nor our snapshot"] == 1
    f.apply_packets([_answer(1, 6), _diff(7, 8, "99.98", "2")], 12)
    assert f.sync.synced
    assert f._in_flight is None
    ev = np.concatenate(got)
    assert (ev["instrument"] == 3).all()
    assert ev["kind"][0] == KIND_CLEAR
    assert (ev["kind"][1:] == KIND_LEVEL).all()
    f.apply_packets([_diff(10, 11, "99.97", "1")], 13)  # 9 is missing: a gap
    assert f.gaps == 1
    assert f._in_flight == 2  # the next request, decided by the message
    f.apply_packets([_answer(2, 11)], 14)
    assert f.sync.snapshots == 2
    assert f.messages == 6
    assert f._to_send == []  # a replay never sends


def test_a_binance_feed_without_paper_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from framework.cli import main
    from framework.ingest.synthetic import generate_day
    from framework.store import TickStore

    day = generate_day(date=dt.date(2024, 3, 1), n_events=500, seed=1)
    TickStore(tmp_path / "s").write(day.instrument, day.date, day.events)
    assert main(["live", "one_tick_mm", "--store", str(tmp_path / "s"), "--venue", "SIM",
                 "--symbol", "SYN", "--date", "2024-03-01", "--feed",
                 "binance-ws://127.0.0.1:9/stream", "--gateway",
                 "ouch://127.0.0.1:9?user=u&password=p"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "runs with --paper only" in err[0]


# --- lost connections ------------------------------------------------------------------------
def test_backoff_waits_double_up_to_the_cap_and_a_bad_one_is_refused() -> None:
    waits = list(itertools.islice(Backoff().delays(), 8))
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert list(itertools.islice(Backoff(0.3, 0.5).delays(), 3)) == [0.3, 0.5, 0.5]
    for first, cap, bound, healthy in ((0, 1, 1, 1), (2, 1, 1, 1), (0.1, 1, -1, 1),
                                       (0.1, 1, 1, 0)):
        with pytest.raises(ConfigError, match="reconnect backoff"):
            Backoff(first, cap, bound, healthy)


def test_connecting_where_nothing_listens_is_given_up_at_its_bound() -> None:
    port = free_tcp_port()
    t0 = time.monotonic()
    with pytest.raises(VenueError, match=r"no connection within 0.3 s \(\d+ attempt\(s\); the "
                                         r"last: ConnectionRefusedError"):
        asyncio.run(connect_retrying(f"ws://127.0.0.1:{port}/s", Backoff(0.02, 0.1, 0.3)))
    assert time.monotonic() - t0 < 5  # bounded (generous: a shared machine)


def test_after_a_lost_connection_the_book_is_emptied_and_resynced_by_the_rule() -> None:
    f = BinanceFeed("ws://127.0.0.1:1/stream", tick_size="0.01", lot_size="0.001")
    got: list[np.ndarray] = []
    f.on_events = lambda ev: got.append(ev.copy())
    f.apply_packets([_answer(1, 6), _diff(7, 8, "99.98", "2")], 10)
    assert f.sync.synced
    f.apply_packets([_diff(9, 9, "99.97", "1")], 11)  # request 2 is decided here
    f.apply_packets([_diff(10, 11, "99.96", "1")], 12)
    assert f.gaps == 0
    got.clear()
    f.apply_packets([lost_record("close code 1006")], 13)
    assert f.gaps == 1
    assert f.sync.losses == 1
    assert not f.sync.synced
    assert f.messages == 4  # the feed's own record is not a server's message
    (clear,) = np.concatenate(got)  # the book is emptied: nothing prices off it
    assert clear["kind"] == KIND_CLEAR
    assert clear["side"] == 0
    assert clear["flags"] == FLAG_LAST
    assert f._in_flight == 2  # a new snapshot, asked for on the new connection
    got.clear()
    # the new connection: diffs buffered until the snapshot; u <= lastUpdateId dropped; the
    # first applied one straddles lastUpdateId + 1; no book event before the snapshot
    f.apply_packets([_diff(12, 14, "99.95", "1"), _diff(15, 16, "99.94", "1"),
                     _diff(17, 18, "99.93", "1")], 14)
    assert got == []
    f.apply_packets([_answer(2, 16)], 15)
    ev = np.concatenate(got)
    assert ev["kind"][0] == KIND_CLEAR
    assert ev["flags"][0] & FLAG_SNAPSHOT
    applied = ev[(ev["kind"] == KIND_LEVEL) & ~(ev["flags"] & FLAG_SNAPSHOT).astype(bool)]
    assert applied["order_id"].tolist() == [18]  # 14 and 16 dropped, 17..18 straddles 17
    assert f.sync.synced
    assert f.gaps == 1
    assert f.sync.rejected["depth diff before snapshot sync"] == 2
    # a loss before a snapshot came: the next first diff that does not straddle is a gap
    f.apply_packets([lost_record("close code 1001 'going away'")], 16)
    assert f._in_flight == 3
    assert f.gaps == 2
    f.apply_packets([_answer(3, 30), _diff(35, 36, "99.92", "1")], 17)
    assert f.sync.gaps == 1
    assert f._in_flight == 4
    assert not f.sync.synced
    assert LOST.startswith('{"hftlab"')


def _capture(n: int, seed: int) -> list[str]:
    """A consistent spot capture (``<recv_ns> <json>`` lines): diffs chained by update id
    (two-decimal prices, a level's quantity 0 removes it), bookTicker and trade lines, and
    the REST snapshot after the 8th line (two diffs sent before it are applied after it)."""
    rng = random.Random(seed)
    book: dict[str, dict[str, str]] = {"b": {}, "a": {}}
    u = 1000
    lines: list[str] = []
    snap: str | None = None
    t = 1_700_000_000_000
    for k in range(n):
        t += rng.randint(1, 20)
        r = rng.random()
        if r < 0.7:
            first, u = u + 1, u + rng.randint(1, 3)
            levels: dict[str, list[list[str]]] = {"b": [], "a": []}
            for _ in range(rng.randint(1, 4)):
                side = rng.choice("ba")
                px = 100 - rng.randint(1, 15) if side == "b" else 100 + rng.randint(0, 14)
                p = f"{px * 0.01 + 99:.2f}"
                q = "0.000" if rng.random() < 0.25 else f"{rng.randint(1, 900) / 1000:.3f}"
                levels[side].append([p, q])
                if q == "0.000":
                    book[side].pop(p, None)
                else:
                    book[side][p] = q
            msg = {"stream": "btcusdt@depth@100ms", "data": {
                "e": "depthUpdate", "E": t, "s": "BTCUSDT", "U": first, "u": u,
                "b": levels["b"], "a": levels["a"]}}
        elif r < 0.85:
            msg = {"stream": "btcusdt@bookTicker", "data": {
                "u": u, "s": "BTCUSDT", "b": "99.99", "B": "1.000", "a": "100.00", "A": "2.000"}}
        else:
            msg = {"stream": "btcusdt@trade", "data": {
                "e": "trade", "E": t, "s": "BTCUSDT", "t": k, "p": "100.00", "q": "0.010",
                "T": t, "m": rng.random() < 0.5}}
        lines.append(f"{t * 1_000_000} {json.dumps(msg)}")
        if k == 5:  # the book now: the snapshot, taken here, arrives two lines later
            snap = json.dumps({"lastUpdateId": u, "bids": [[p, q] for p, q in book["b"].items()],
                               "asks": [[p, q] for p, q in book["a"].items()]})
        if k == 7:
            lines.append(f"{t * 1_000_000} {snap}")
    return lines


def _ticks(snap: dict[str, Any]) -> dict[tuple[int, int], int]:
    tick, lot = Decimal("0.01"), Decimal("0.001")
    return {(side, int(Decimal(p) / tick)): int(Decimal(q) / lot)
            for side, levels in ((1, snap["bids"]), (-1, snap["asks"])) for p, q in levels}


def _book(ev: np.ndarray) -> dict[tuple[int, int], int]:
    """The full-depth book the events build (a clear empties it, qty 0 removes a level)."""
    book: dict[tuple[int, int], int] = {}
    for e in ev:
        if e["kind"] == KIND_CLEAR:
            book.clear()
        elif e["kind"] == KIND_LEVEL:
            key = (1 if e["side"] == BUY else -1, int(e["price"]))
            if e["qty"]:
                book[key] = int(e["qty"])
            else:
                book.pop(key, None)
    return book


async def _follow(feed: BinanceFeed, limit_s: float = 60.0) -> None:
    """The runner's use of the feed: poll while woken, until the stream ends or the feed
    gives up (bounded); the connection is closed whatever happens."""
    wake = asyncio.Event()
    await feed.open(wake, timeout_s=5)
    end = time.monotonic() + limit_s
    try:
        while not feed.ended and feed.alarm is None:
            assert time.monotonic() < end, "the feed neither ended nor gave up"
            if not feed.poll():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 0.05)
                wake.clear()
    finally:
        await feed.aclose()


def _run(replay: CaptureReplay, feed: BinanceFeed) -> None:
    async def go() -> None:
        server = await serve_capture(replay)
        feed.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"
        try:
            await _follow(feed)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(go(), 120))


def _recording(feed: BinanceFeed) -> tuple[list[np.ndarray], list[tuple[bytes, int]]]:
    events: list[np.ndarray] = []
    journal: list[tuple[bytes, int]] = []
    feed.on_events = lambda ev: events.append(ev.copy())
    feed.on_packet = lambda raw, ts: journal.append((bytes(raw), ts))
    return events, journal


@pytest.mark.parametrize(("code", "drops"), [
    (None, (150, 400)), (1001, (150, 400)), (1011, (150, 400)), (1000, (150, 400)),
    (None, (3, 160))])
def test_a_cut_connection_is_made_again_and_the_book_ends_as_the_exchanges(
    code: int | None, drops: tuple[int, int]
) -> None:
    """Cut twice (no close frame, or closed with "going away", "internal error", or a normal
    close that is not the end of data; once before the first snapshot came), 7 lines lost
    while away each time: the feed reconnects, resyncs from a new snapshot each time, and
    ends on the exchange's book; its journal replays to the same events."""
    lines = _capture(700, seed=3)
    replay = CaptureReplay(lines, drops=drops, drop_code=code, lost=7, grace_s=0.3)
    feed = BinanceFeed("", tick_size="0.01", lot_size="0.001",
                       reconnect=Backoff(0.01, 0.1, 10))
    events, journal = _recording(feed)
    _run(replay, feed)
    assert feed.ended
    assert feed.alarm is None
    assert replay.connections == 3
    assert replay.dropped == 2
    assert feed.reconnects == 2
    assert feed.gaps == 2
    assert feed.sync.gaps == 0
    assert feed.sync.losses == 2
    # one snapshot per connection (the first cut before the capture's snapshot: one fewer)
    assert feed.sync.snapshots == replay.requests_answered == (3 if drops[0] > 8 else 2)
    assert replay.stream is not None
    # all lines sent but the lost ones and the capture's snapshot (sent as an answer unless lost)
    assert replay.stream.sent == len(lines) - 2 * 7 - (drops[0] > 8)
    assert feed.messages == replay.stream.sent + replay.requests_answered  # all applied
    ev = np.concatenate(events)
    assert _book(ev) == _ticks(replay.book)
    # every loss is journaled at its place; nothing of the stream before it is built after it
    marks = [k for k, (raw, _) in enumerate(journal) if raw.startswith(LOST.encode())]
    assert len(marks) == 2
    # the journal, replayed as the runner's replay does (a poll's messages share a time),
    # makes the same events and the same requests
    again = BinanceFeed("", tick_size="0.01", lot_size="0.001")
    ev2: list[np.ndarray] = []
    again.on_events = lambda e: ev2.append(e.copy())
    for ts, group in itertools.groupby(journal, key=lambda r: r[1]):
        again.apply_packets([raw for raw, _ in group], ts)
    np.testing.assert_array_equal(np.concatenate(ev2), ev)
    assert (again._req_id, again.gaps, again.messages) == (feed._req_id, 2, feed.messages)


def test_the_end_of_data_ends_the_stream_without_a_reconnect() -> None:
    lines = _capture(200, seed=4)
    replay = CaptureReplay(lines, grace_s=0.3)
    feed = BinanceFeed("", tick_size="0.01", lot_size="0.001")
    events, _ = _recording(feed)
    _run(replay, feed)
    assert feed.ended
    assert feed.reconnects == 0
    assert feed.gaps == 0
    assert replay.connections == 1
    assert _book(np.concatenate(events)) == _ticks(replay.book)


def test_a_server_that_stays_down_is_given_up_and_the_book_left_empty() -> None:
    lines = _capture(400, seed=5)
    replay = CaptureReplay(lines, down_after=120, grace_s=0.3)
    feed = BinanceFeed("", tick_size="0.01", lot_size="0.001",
                       reconnect=Backoff(0.02, 0.1, 0.5))
    events, journal = _recording(feed)
    _run(replay, feed)
    assert isinstance(feed.alarm, VenueError)
    assert "connection lost (close code 1001" in str(feed.alarm)
    assert "no connection within 0.5 s" in str(feed.alarm)
    assert not feed.ended  # not an end: the runner's stale-feed trigger sees the silence
    assert feed.reconnects == 0
    assert feed.gaps == 1
    assert feed.messages == 121  # every line sent, and the snapshot's answer
    assert journal[-1][0].startswith(LOST.encode())
    assert _book(np.concatenate(events)) == {}  # the book is not left standing


def test_the_standalone_handler_reconnects_and_ends_on_the_exchanges_book() -> None:
    """run_binance_ws (the transport without the runner) follows the same rule."""
    from live.feeds.binance_ws import DepthSync, run_binance_ws

    lines = _capture(500, seed=6)
    replay = CaptureReplay(lines, drops=(100, 300), lost=5, grace_s=0.3)
    sync = DepthSync(tick_size=Decimal("0.01"), lot_size=Decimal("0.001"))
    got: list[np.ndarray] = []

    async def go() -> int:
        server = await serve_capture(replay)
        port = server.sockets[0].getsockname()[1]
        try:
            return await run_binance_ws(f"ws://127.0.0.1:{port}/s", sync, on_events=got.append,
                                        idle_timeout_s=10, backoff=Backoff(0.01, 0.1, 10))
        finally:
            server.close()
            await server.wait_closed()

    n = asyncio.run(asyncio.wait_for(go(), 120))
    assert replay.stream is not None
    assert n == replay.stream.sent + replay.requests_answered
    assert (sync.losses, sync.gaps, sync.snapshots) == (2, 0, 3)
    assert _book(np.concatenate(got)) == _ticks(replay.book)


# --- a server that accepts and closes at once ---------------------------------------------------
def test_a_server_that_accepts_and_closes_at_once_is_retried_with_growing_waits_then_given_up(
) -> None:
    """After a healthy connection is cut, every new one is accepted and closed at once: the
    outage goes on across them (no new outage, reconnected at once, per connection), so the
    attempts are spaced by the growing waits (0.05 s doubling to 0.4 s: 8 attempts fit in
    the 2 s bound, not hundreds) and the outage is given up at the bound; each loss is
    journaled, and the feed is not heard from after the last server message (the runner's
    stale-feed trigger reads ``heard_ns``)."""
    lines = _capture(300, seed=7)
    replay = CaptureReplay(lines, drops=(150,), close_at_once=range(2, 100_000), grace_s=0.3)
    feed = BinanceFeed("", tick_size="0.01", lot_size="0.001",
                       reconnect=Backoff(0.05, 0.4, 2.0))
    _, journal = _recording(feed)
    t0 = time.monotonic()
    _run(replay, feed)
    assert time.monotonic() - t0 < 30  # bounded (generous: a shared machine)
    assert isinstance(feed.alarm, VenueError)
    assert "no connection within 2 s" in str(feed.alarm)
    assert "unproven (close code 1013" in str(feed.alarm)
    # the first retry goes at once, then 0.05 + 0.1 + 0.2 + 0.4 + ... s: at most 8 attempts
    # fit in 2 s (a few more allowed for a slow machine's timer slack: never a tight loop)
    assert 4 <= replay.connections - 1 <= 10
    assert feed.reconnects == replay.connections - 1
    lost = [ts for raw, ts in journal if raw.startswith(LOST.encode())]
    assert len(lost) == replay.connections  # every connection lost, the first one included
    heard = [ts for raw, ts in journal if not raw.startswith(LOST.encode())]
    assert feed.heard_ns == heard[-1] < lost[-1]  # the feed's own records are not heard


def test_a_connection_that_proves_healthy_ends_the_outage() -> None:
    """Three connections accepted and closed at once, then one that syncs the book (its
    snapshot answered) and is cut later: that loss begins a new outage (its first attempt
    at once), and the stream ends on the exchange's book."""
    lines = _capture(500, seed=8)
    replay = CaptureReplay(lines, drops=(100, 250), close_at_once=(2, 3, 4), lost=3,
                           grace_s=0.3)
    feed = BinanceFeed("", tick_size="0.01", lot_size="0.001",
                       reconnect=Backoff(0.05, 1.0, 10.0))
    events, _ = _recording(feed)
    _run(replay, feed)
    assert feed.ended
    assert feed.alarm is None
    assert replay.connections == 6
    assert feed.reconnects == 5
    assert feed._retry.attempts == 1  # the last outage: one attempt, at once
    assert _book(np.concatenate(events)) == _ticks(replay.book)


def test_an_outage_ends_with_a_connection_up_long_enough() -> None:
    """A connection lost before ``healthy_s`` up leaves the outage open; one lost after it
    (it proved healthy by staying up) closes it: the next loss is a new outage."""
    replay = CaptureReplay(_capture(50, seed=9), grace_s=0.3)

    async def go() -> tuple[bool, bool, bool]:
        server = await serve_capture(replay)
        r = Reconnects(Backoff(0.01, 0.1, 5.0, healthy_s=1.0))
        try:
            ws = await r.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/s")
            await ws.close()
            opened = r.outage
            r.lost("cut", 0.5)
            short = r.outage
            r.lost("cut", 1.0)
            return opened, short, r.outage
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(asyncio.wait_for(go(), 60)) == (True, True, False)


def test_the_standalone_handler_gives_up_on_a_server_that_accepts_and_closes() -> None:
    """run_binance_ws follows the same rule: growing waits across the connections accepted
    and closed at once, given up at the bound."""
    from live.feeds.binance_ws import DepthSync, run_binance_ws

    replay = CaptureReplay(_capture(300, seed=10), drops=(120,),
                           close_at_once=range(2, 100_000), grace_s=0.3)
    sync = DepthSync(tick_size=Decimal("0.01"), lot_size=Decimal("0.001"))

    async def go() -> int:
        server = await serve_capture(replay)
        port = server.sockets[0].getsockname()[1]
        try:
            return await run_binance_ws(f"ws://127.0.0.1:{port}/s", sync,
                                        on_events=lambda _: None, idle_timeout_s=10,
                                        backoff=Backoff(0.05, 0.4, 2.0))
        finally:
            server.close()
            await server.wait_closed()

    with pytest.raises(VenueError, match=r"connection lost and no connection within 2 s"):
        asyncio.run(asyncio.wait_for(go(), 60))
    assert 4 <= replay.connections - 1 <= 10
    assert sync.losses == replay.connections


def test_lost_connections_do_not_keep_the_runners_stale_feed_trigger_quiet() -> None:
    """The feed's records of lost connections (one per connection a server accepts and
    closes) are journaled and applied like the server's messages, but they are not heard
    from the venue: the runner's stale-feed trigger trips on the silence all the same."""
    import datetime as dt

    from framework.ingest.synthetic import generate_day
    from framework.strategy.spec import strategies_from_words
    from live.feeds.binance_live import _Lost
    from live.runner import LiveRunner, Triggers

    day = generate_day(date=dt.date(2024, 3, 1), n_events=200, seed=1)
    feed = BinanceFeed("ws://127.0.0.1:1/s", tick_size="0.01", lot_size="0.001")
    r = LiveRunner(instrument=day.instrument, strategies=strategies_from_words(["one_tick_mm"]),
                   feed=feed, gateway=None, mode="python", triggers=Triggers(stale_feed_s=0.2))
    try:
        r.prepare()
        feed._queue.append('{"heartbeat": 1}')  # a server message (no book events)
        assert r.poll_feed() == 1
        r.check_triggers()
        assert not r.switch.tripped
        end = time.monotonic() + 0.5
        while time.monotonic() < end:  # a loss every 50 ms, each applied at once
            feed._queue.append(_Lost("close code 1013"))
            assert r.poll_feed() == 1
            time.sleep(0.05)
        assert feed.gaps >= 5
        r.check_triggers()
        assert r.switch.tripped
        assert "stale feed" in (r.switch.reason or "")
    finally:
        r.engine.abort()


def test_the_sessions_summary_and_status_count_the_feeds_reconnects() -> None:
    """A runner (paper) on the replay server, which cuts the connection once: the feed's
    reconnect is in the session's summary and the control endpoint's /status."""
    import datetime as dt

    from framework.ingest.synthetic import generate_day
    from framework.strategy.spec import strategies_from_words
    from live.runner import LiveRunner
    from live.session import summarise

    day = generate_day(date=dt.date(2024, 3, 1), n_events=200, seed=1)
    replay = CaptureReplay(_capture(400, seed=11), drops=(150,), lost=3, grace_s=0.3)
    feed = BinanceFeed("", tick_size="0.01", lot_size="0.001",
                       reconnect=Backoff(0.01, 0.1, 10))
    r = LiveRunner(instrument=day.instrument, strategies=strategies_from_words(["one_tick_mm"]),
                   feed=feed, gateway=None, mode="python")

    async def go() -> None:
        server = await serve_capture(replay)
        feed.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"
        try:
            await r.run(duration_s=60)  # until the stream ends
        finally:
            server.close()
            await server.wait_closed()

    try:
        asyncio.run(asyncio.wait_for(go(), 120))
        result = r.finish()
    except BaseException:
        r.engine.abort()
        raise
    assert feed.ended
    assert replay.dropped == 1
    assert r.status()["risk"]["feed_reconnects"] == 1
    s = summarise(r, result)
    assert (s["reconnects"], s["gaps"]) == (1, 1)
    assert "rerequests" not in s  # a websocket feed has none
