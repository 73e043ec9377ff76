"""A crash between a decision and its journal record: the run recovered from the journal
makes that decision again in its replay (never sending it) and journals it where it was
made, so the whole journal -- crash included -- still replays to the same decisions. Built
in process: a session whose OUCH gateway never connects (every order is answered locally,
so no venue is needed), its journal cut after a packet whose decisions were lost."""

from __future__ import annotations

from pathlib import Path

from framework.engine.config import LatencyConfig, QueueConfig
from framework.strategy.spec import strategies_from_words
from live.feeds.itch_mold import MoldFeedHandler
from live.journal import KIND_FEED, KIND_ORDER_OUT, JournalWriter, read
from live.replay import parity, recover
from live.runner import STREAM_SENT, STREAM_UNSENT, GatewaySpec, LiveRunner
from tests.unit.live.test_runner import DATE, T0, _packets


def _meta(rep: object) -> dict[str, object]:
    return {"strategy": ["one_tick_mm"], "param": [], "risk": [], "mode": "compiled",
            "venue": "SIM", "symbol": "SYN", "date": DATE.isoformat(),
            "feed": "itch://127.0.0.1:1", "gateway": "ouch", "paper": False,
            "latency": "constant:200us", "queue": "power:2",
            "instrument": rep.instrument.to_dict(),  # type: ignore[attr-defined]
            "price_step": rep.price_step, "qty_step": rep.qty_step,  # type: ignore[attr-defined]
            "locate": 1}


def _runner(rep: object, feed: MoldFeedHandler, journal: JournalWriter | None,
            gateway: object = None) -> LiveRunner:
    return LiveRunner(instrument=rep.instrument,  # type: ignore[attr-defined]
                      strategies=strategies_from_words(["one_tick_mm"]), feed=feed,
                      gateway=gateway, mode="compiled", paper=False,  # type: ignore[arg-type]
                      latency=LatencyConfig.parse("constant:200us"),
                      queue=QueueConfig.parse("power:2"), journal=journal, meta=_meta(rep))


def _feed(rep: object) -> MoldFeedHandler:
    return MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE,
                           price_step=rep.price_step,  # type: ignore[attr-defined]
                           qty_step=rep.qty_step)  # type: ignore[attr-defined]


def test_decisions_lost_in_a_crash_are_journaled_by_the_recovered_run(tmp_path: Path) -> None:
    rep, packets = _packets()
    full = tmp_path / "full"
    feed = _feed(rep)
    with JournalWriter(full, fsync="never") as j:
        gw = GatewaySpec.parse("ouch://127.0.0.1:1?user=u&password=p").build(
            symbol="SYN", price_mult=rep.price_step)  # type: ignore[attr-defined]
        r = _runner(rep, feed, j, gw)  # never connected: nothing leaves
        try:
            r.start(T0)
            t = T0
            for p in packets:
                t += 1_000_000
                j.append(KIND_FEED, p, ts=t)
                if feed.apply_packets([p], t):
                    r._run(t)
        finally:
            r.engine.abort()
            feed.close()
    recs = list(read(full))
    outs = [k for k, x in enumerate(recs) if x.kind == KIND_ORDER_OUT]
    assert len(outs) > 3
    assert {recs[k].stream for k in outs} == {STREAM_SENT}
    # the crash: the records of the third decision and everything after it are lost, the
    # packet that led to it is not
    cut = tmp_path / "cut"
    with JournalWriter(cut, fsync="never") as w:
        for x in recs[: outs[2]]:
            w.append(x.kind, x.payload, stream=x.stream, ts=x.ts)
    feed = _feed(rep)
    try:
        r = _runner(rep, feed, None)
        rec = recover(r, cut)
        assert len(rec.unsent) >= 1  # the replay made it; it never left
        with JournalWriter(cut, fsync="never") as w:
            r.attach_journal(w)
        r.engine.abort()
    finally:
        feed.close()
    after = [x for x in read(cut) if x.kind == KIND_ORDER_OUT]
    assert [x.stream for x in after[2:]] == [STREAM_UNSENT] * len(rec.unsent)
    p = parity(cut)
    assert p.ok, p.first_difference
    assert p.compared == p.live == 2 + len(rec.unsent)
