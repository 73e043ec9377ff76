"""Parity of a --paper session: its simulated venue's orders (journaled at the end) against
a replay of the journal through the same simulated venue, one for one. Built in process,
packet by packet, as the runner drives it; a changed order, a missing one, and a journal
without them all fail with the order shown."""

from __future__ import annotations

import json
from pathlib import Path

from framework.engine.config import LatencyConfig, QueueConfig
from framework.strategy.spec import strategies_from_words
from live.feeds.itch_mold import MoldFeedHandler
from live.journal import KIND_FEED, JournalWriter, read
from live.replay import parity
from live.runner import KIND_ADVANCE, KIND_PAPER_ORDER, LiveRunner
from tests.unit.live.test_runner import DATE, T0, _packets


def paper_journal(where: Path, mode: str = "compiled") -> int:
    """A paper session of one_tick_mm over the generated day's packets; its order count."""
    rep, packets = _packets()
    meta = {"strategy": ["one_tick_mm"], "param": [], "risk": [], "mode": mode,
            "venue": "SIM", "symbol": "SYN", "date": DATE.isoformat(),
            "feed": "itch://127.0.0.1:1", "gateway": None, "paper": True,
            "latency": "constant:200us", "queue": "power:2",
            "instrument": rep.instrument.to_dict(),  # type: ignore[attr-defined]
            "price_step": rep.price_step, "qty_step": rep.qty_step,  # type: ignore[attr-defined]
            "locate": 1}
    feed = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE,
                           price_step=rep.price_step,  # type: ignore[attr-defined]
                           qty_step=rep.qty_step)  # type: ignore[attr-defined]
    with JournalWriter(where, fsync="never") as j:
        r = LiveRunner(instrument=rep.instrument,  # type: ignore[attr-defined]
                       strategies=strategies_from_words(["one_tick_mm"]), feed=feed,
                       gateway=None, mode=mode,  # type: ignore[arg-type]
                       latency=LatencyConfig.parse("constant:200us"),
                       queue=QueueConfig.parse("power:2"), journal=j, meta=meta)
        try:
            r.start(T0)
            t = T0
            for k, p in enumerate(packets):
                t += 1_000_000
                j.append(KIND_FEED, p, ts=t)  # as the handler's on_packet does
                if feed.apply_packets([p], t):
                    r._run(t)
                if k % 7 == 0:  # an idle run between packets, as the loop makes them
                    t += 300_000
                    j.append(KIND_ADVANCE, b"", ts=t)
                    r._run(t)
            res = r.finish()
        finally:
            feed.close()
    return int(res.orders.height)


def _rewrite(src: Path, dst: Path, change: object) -> None:
    with JournalWriter(dst, fsync="never") as w:
        for r in read(src):
            payload = r.payload
            if r.kind == KIND_PAPER_ORDER:
                payload = change(payload)  # type: ignore[operator]
                if payload is None:
                    continue
            w.append(r.kind, payload, stream=r.stream, ts=r.ts)


def test_a_paper_session_replays_to_the_same_orders(tmp_path: Path) -> None:
    n = paper_journal(tmp_path / "j")
    assert n > 10
    p = parity(tmp_path / "j")
    assert p.ok, p.first_difference
    assert p.compared == p.live == n
    # the other form of the strategy decides the same
    assert parity(tmp_path / "j", mode="python").ok

    seen = {"n": 0}

    def bump(payload: bytes) -> bytes:
        seen["n"] += 1
        row = json.loads(payload)
        if seen["n"] == 5:
            row["price"] += 1.0
        return json.dumps(row, sort_keys=True).encode()

    _rewrite(tmp_path / "j", tmp_path / "changed", bump)
    p = parity(tmp_path / "changed")
    assert not p.ok
    assert p.compared == 4
    assert p.first_difference is not None
    assert p.first_difference.startswith("paper order 5: live: ")

    _rewrite(tmp_path / "j", tmp_path / "none", lambda _: None)
    p = parity(tmp_path / "none")
    assert not p.ok
    assert "paper order 1: live: nothing; replay: {" in (p.first_difference or "")


def test_paper_orders_are_journaled_once_at_the_end(tmp_path: Path) -> None:
    n = paper_journal(tmp_path / "j")
    recs = list(read(tmp_path / "j"))
    mine = [k for k, r in enumerate(recs) if r.kind == KIND_PAPER_ORDER]
    assert len(mine) == n
    assert mine == list(range(len(recs) - n, len(recs)))  # the last records, together
