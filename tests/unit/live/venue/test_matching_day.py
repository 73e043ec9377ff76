"""The matcher over a whole seeded synthetic L3 day with a client trading through it: the
replayed book stays the day's book, every client order's lots are accounted for, and the
client-activity rows published for the feed rebuild exactly the client orders still open."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from framework.book import L3Book
from framework.core.events import BUY, FLAG_LAST, SELL
from framework.ingest.synthetic import generate_day
from live.venue.matching import CLIENT_REF_BASE, Matcher, Report, ReportKind, Tif


@pytest.fixture(scope="module")
def day() -> np.ndarray:
    return generate_day(date=dt.date(2024, 1, 2), mode="l3", n_events=20_000, seed=5).events


def test_a_client_trading_through_a_synthetic_l3_day(day: np.ndarray) -> None:
    rng = np.random.default_rng(11)
    m = Matcher(capacity=1 << 12, n_ticks=1024)
    ref = L3Book(capacity=1 << 14, n_ticks=1024)
    ends = np.flatnonzero(day["flags"] & FLAG_LAST) + 1
    reports: list[Report] = []
    rows: list[np.ndarray] = []
    open_ids: list[int] = []
    a = 0
    for k, b in enumerate(ends.tolist()):
        group = day[a:b]
        a = b
        ref.apply_events(group)
        rows.append(m.on_market(group))
        reports += m.take_reports()
        if k % 3 or m.book.best_bid is None or m.book.best_ask is None:
            continue
        # the client: quotes near the touch, sometimes crosses, cancels and replaces
        bid, ask = m.book.best_bid, m.book.best_ask
        r = rng.random()
        if k % 30 == 0:  # a post-only order at the other side's touch: rejected
            reports += m.submit("c", f"p{k}", BUY, 1, ask, tif=Tif.POST_ONLY)
        elif r < 0.5:
            side = BUY if rng.random() < 0.5 else SELL
            px = (bid - int(rng.integers(0, 3))) if side == BUY else (ask + int(rng.integers(0, 3)))
            if rng.random() < 0.3:  # marketable
                px = ask if side == BUY else bid
            tif = Tif(int(rng.choice([0, 1, 2], p=[0.7, 0.15, 0.15])))  # day, IOC, post-only
            reps = m.submit("c", f"t{k}", side, int(rng.integers(1, 400)), px, tif=tif)
            reports += reps
            if reps[0].kind == ReportKind.ACCEPTED:
                open_ids.append(reps[0].order_id)
        elif open_ids and r < 0.7:  # sometimes one already filled: a cancel reject
            reports += m.cancel("c", open_ids.pop(int(rng.integers(0, len(open_ids)))))
        elif m.open_orders("c"):
            live = m.open_orders("c")
            oid = live[int(rng.integers(0, len(live)))]
            st = m.open_order(oid)
            if st is not None:
                side, px, qty, _ = st
                reports += m.replace("c", oid, f"r{k}", px + int(rng.integers(-1, 2)),
                                     max(1, qty + int(rng.integers(-50, 50))))
        rows.append(m.take_events())
    # the replayed book is exactly the day's book
    assert m.book.snapshot(20).tolist() == ref.snapshot(20).tolist()
    assert m.book.n_orders == ref.n_orders
    # every accepted order's lots: filled + cancelled + still open = its size
    by_id: dict[int, dict[str, int]] = {}
    for r in reports:
        if r.order_id == 0:
            continue
        d = by_id.setdefault(r.order_id, {"size": 0, "filled": 0, "cancelled": 0})
        if r.kind == ReportKind.ACCEPTED:
            d["size"] = r.qty
        elif r.kind == ReportKind.EXECUTED:
            d["filled"] += r.qty
        elif r.kind == ReportKind.CANCELED:
            d["cancelled"] += r.qty
        elif r.kind == ReportKind.REPLACED:
            d["size"] = r.qty + d["cancelled"]  # a new total: earlier cancels were size cuts
    kinds = [r.kind for r in reports]
    assert min(kinds.count(k) for k in ReportKind) >= 3  # every kind of report happened
    assert sum(d["filled"] for d in by_id.values()) > 0  # the client did trade
    for oid, d in by_id.items():
        st = m.open_order(oid)
        leaves = 0 if st is None else st[3]
        assert d["filled"] + d["cancelled"] + leaves == d["size"], (oid, d, st)
    # the published client rows rebuild exactly the client orders still resting
    pub = np.concatenate([r for r in rows if len(r)])
    assert (pub["order_id"][pub["kind"] != 6] >= CLIENT_REF_BASE).all()  # 6 = trade prints
    client_book = L3Book(capacity=1 << 12, n_ticks=1024)
    client_book.apply_events(pub)
    resting = {(st[0], st[1], st[3]) for oid in by_id if (st := m.open_order(oid))}
    assert client_book.n_orders == len(resting)
    assert client_book.stats["unknown_ids"] == 0
