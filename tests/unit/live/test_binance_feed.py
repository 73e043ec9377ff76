"""The runner's Binance websocket feed without a socket: its address, and the snapshot
requests decided by the messages alone (so a journal replay recognises the same answers)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from framework.core.errors import ConfigError
from framework.core.events import KIND_CLEAR, KIND_LEVEL
from live.feeds.binance_live import BinanceFeed
from live.runner import FeedSpec


def test_binance_feed_address() -> None:
    f = FeedSpec.parse("binance-ws://127.0.0.1:9443/stream?futures=1")
    assert (f.scheme, f.host, f.port, f.path, f.futures) == ("binance-ws", "127.0.0.1", 9443,
                                                             "/stream", True)
    assert FeedSpec.parse("binance-ws://127.0.0.1:9443").path == "/"
    for text, why in (("binance-ws://127.0.0.1:9443/s?futures=yes", "futures=1"),
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
