"""The live runner's parts that need no venue: addresses and options (bad input is one clear
line), the journal's record layouts, the kill switch's hold on requests, the same decisions
from the compiled and the Python callbacks when driven packet by packet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from framework.arena.state import REQ_CANCEL, REQ_NEW, RESP_FILL
from framework.cli import main
from framework.core.errors import ConfigError
from framework.ingest.synthetic import generate_day
from framework.kernel.seam import REQUEST_DTYPE, RESPONSE_DTYPE
from framework.store import TickStore
from framework.strategy.spec import strategies_from_words
from live.feeds.itch_mold import MoldFeedHandler
from live.journal import KIND_META, JournalWriter
from live.runner import (
    STREAM_HELD,
    STREAM_SENT,
    FeedSpec,
    GatewaySpec,
    LiveRunner,
    Triggers,
    order_key,
    reference_of,
    request_of,
    response_of,
)
from live.venue.replay import build_replay
from live.wire.moldudp64 import encode_packet

DATE = dt.date(2024, 3, 1)
T0 = 1_800_000_000_000_000_000  #: the replays' clock starts here (ns)


def test_feed_and_gateway_addresses() -> None:
    f = FeedSpec.parse("itch://127.0.0.1:4000?rerequest=4001&session=ABC&locate=3")
    assert (f.host, f.port, f.rerequest, f.session, f.locate) == ("127.0.0.1", 4000, 4001,
                                                                  "ABC", 3)
    assert FeedSpec.parse("itch://239.1.1.1:5000").rerequest is None
    g = GatewaySpec.parse("ouch://127.0.0.1:7000?user=u&password=p")
    assert (g.proto, g.port, g.options) == ("ouch", 7000, {"user": "u", "password": "p"})
    g = GatewaySpec.parse("fix://127.0.0.1:7001?sender=A&target=B&store=/tmp/x")
    assert g.options["store"] == "/tmp/x"
    bad = [
        (FeedSpec.parse, "udp://127.0.0.1:4000", "use itch://"),
        (FeedSpec.parse, "itch://127.0.0.1", "names no port"),
        (FeedSpec.parse, "itch://127.0.0.1:99999", "names no port"),
        (FeedSpec.parse, "itch://127.0.0.1:4000?rerequest=x", "not a whole number"),
        (FeedSpec.parse, "itch://127.0.0.1:4000?speed=2", "unknown option"),
        (GatewaySpec.parse, "ouch://127.0.0.1:7000?user=u", "needs password="),
        (GatewaySpec.parse, "fix://127.0.0.1:7000?sender=A", "needs target="),
        (GatewaySpec.parse, "http://127.0.0.1:7000", "use ouch://"),
    ]
    for parse, text, why in bad:
        with pytest.raises(ConfigError, match=why):
            parse(text)


def test_kill_triggers() -> None:
    t = Triggers.parse(["stale_feed_s=1.5", "rejects=3"])
    assert (t.stale_feed_s, t.rejects, t.gateway_down_s) == (1.5, 3, 2.0)
    for item, why in (("stale=1", "the triggers are"), ("rejects=0", "> 0"),
                      ("gateway_down_s=soon", "> 0")):
        with pytest.raises(ConfigError, match=why):
            Triggers.parse([item])


def test_journal_payloads_round_trip() -> None:
    q = np.zeros(1, REQUEST_DTYPE)
    q["kind"], q["oid"], q["price"] = REQ_NEW, 41, 10_001
    payload = q.tobytes() + b"17"
    assert int(request_of(payload)["oid"]) == 41
    assert reference_of(payload) == "17"
    assert reference_of(q.tobytes()) == ""
    a = np.zeros(1, RESPONSE_DTYPE)
    a["kind"], a["qty"] = RESP_FILL, 3
    row, seq = response_of(a.tobytes() + (1234).to_bytes(8, "little"))
    assert (int(row["qty"]), seq) == (3, 1234)
    assert response_of(a.tobytes())[1] == -1
    assert order_key(2, 7) == "2:7"


def _packets(n_events: int = 3_000) -> tuple[object, list[bytes]]:
    day = generate_day(date=DATE, n_events=n_events, seed=4, mode="l3")
    rep = build_replay(day.events, day.instrument, DATE)
    msgs = [rep.stream.message(i) for i in range(len(rep.stream.starts))]
    out, seq = [], 1
    for k in range(0, len(msgs), 8):
        out.append(encode_packet("HFTLAB", seq, msgs[k : k + 8]))
        seq += len(msgs[k : k + 8])
    return rep, out


def _replayed(mode: str, *, kill_at: int | None = None,
              stop_at: int | None = None) -> list[tuple[np.void, int]]:
    """A replay runner (requests recorded, not sent) fed the packets one at a time."""
    rep, packets = _packets()
    feed = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE, price_step=rep.price_step,
                           qty_step=rep.qty_step)
    r = LiveRunner(instrument=rep.instrument, strategies=strategies_from_words(["one_tick_mm"]),
                   feed=feed, gateway=None, mode=mode, replay=True)  # type: ignore[arg-type]
    try:
        t = T0
        r.start(t)
        for k, p in enumerate(packets):
            if k == kill_at:
                r.switch.trip("test")
                r.check_switch()
            if k == stop_at:
                r.begin_stop()
            t += 1_000_000
            if feed.apply_packets([p], t):
                r._run(t)
        return list(r.decisions)
    finally:
        r.engine.abort()
        feed.close()


def test_compiled_and_python_callbacks_decide_the_same_packet_by_packet() -> None:
    a, b = _replayed("compiled"), _replayed("python")
    assert len(a) >= 2  # it quotes both sides (nothing answers, so it then waits)
    assert [(x.tobytes(), s) for x, s in a] == [(x.tobytes(), s) for x, s in b]


def test_a_tripped_switch_holds_new_orders_and_lets_cancels_through() -> None:
    free = _replayed("compiled")
    held = _replayed("compiled", kill_at=0)
    assert {s for _, s in free} == {STREAM_SENT}
    news = [s for q, s in held if q["kind"] == REQ_NEW]
    assert news
    assert set(news) == {STREAM_HELD}
    assert all(s == STREAM_SENT for q, s in held if q["kind"] == REQ_CANCEL)


def test_the_orderly_stop_holds_new_orders_as_a_kill_does() -> None:
    """From the stop on, the orders still working are being cancelled: a new order the
    strategy decides meanwhile (its quote cancelled, it quotes again) must not leave."""
    free = _replayed("compiled")
    stopped = _replayed("compiled", stop_at=0)
    assert [q.tobytes() for q, _ in stopped] == [q.tobytes() for q, _ in free]
    news = [s for q, s in stopped if q["kind"] == REQ_NEW]
    assert news
    assert set(news) == {STREAM_HELD}
    assert all(s == STREAM_SENT for q, s in stopped if q["kind"] == REQ_CANCEL)


def test_bad_command_lines_fail_with_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    day = generate_day(date=DATE, n_events=500, seed=1, mode="l3")
    TickStore(store).write(day.instrument, DATE, day.events)
    base = ["live", "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
            "--date", DATE.isoformat()]
    cases = [
        ([*base, "--feed", "itch://127.0.0.1:1", "--paper", "--gateway",
                 "ouch://127.0.0.1:2?user=u&password=p"], "or --paper, not both"),
        ([*base, "--feed", "itch://127.0.0.1:1"], "or --paper, not both"),
        ([*base, "--feed", "tcp://127.0.0.1:1", "--paper"], "--feed"),
        ([*base, "--feed", "itch://127.0.0.1:1", "--paper", "--control", "127.0.0.1:x"],
         "--control"),
        (["journal", "parity", str(tmp_path / "nothing")], "no journal segments"),
    ]
    for argv, why in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert why in err[0]
    with JournalWriter(tmp_path / "j", fsync="never") as w:
        w.append(KIND_META + 100, b"not a session")
    assert main(["journal", "parity", str(tmp_path / "j")]) == 1
    assert "no session record" in capsys.readouterr().err
