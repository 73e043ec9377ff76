"""The venue matcher: price-time priority over replayed and client orders, every rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from framework.book import L3Book
from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_LAST,
    FLAG_REPLACE,
    KIND_ADD,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_STATUS,
    KIND_TRADE,
    NO_SIDE,
    SELL,
    STATUS_HALTED,
    STATUS_OPEN,
    make_events,
)
from live.venue.matching import (
    CLIENT_REF_BASE,
    LIQ_ADDED,
    LIQ_REMOVED,
    Matcher,
    OrdType,
    Reason,
    ReportKind,
    Tif,
)


def ev(*rows: tuple[int, int, int, int, int]) -> np.ndarray:
    """Events from (kind, side, price, qty, order_id) rows, one ns apart."""
    k, s, p, q, o = (list(c) for c in zip(*rows, strict=True))
    n = len(rows)
    return make_events(exch_ts=np.arange(1, n + 1), local_ts=np.arange(1, n + 1), kind=k,
                       side=s, price=p, qty=q, order_id=o, flags=[FLAG_LAST] * n)


def kinds(reps: list) -> list[str]:
    return [str(r.kind) for r in reps]


def fills(reps: list, owner: str | None = None) -> list[tuple[int, int, str]]:
    return [(r.price, r.qty, r.liquidity) for r in reps
            if r.kind == ReportKind.EXECUTED and (owner is None or r.owner == owner)]


@pytest.fixture
def m() -> Matcher:
    """Replayed book: bids 100 x (5 id1, 4 id2), 99 x 7 id3; asks 101 x 6 id4, 102 x 8 id5."""
    m = Matcher(capacity=64, n_ticks=256)
    rows = m.on_market(ev((KIND_ADD, BUY, 100, 5, 1), (KIND_ADD, BUY, 100, 4, 2),
                          (KIND_ADD, BUY, 99, 7, 3), (KIND_ADD, SELL, 101, 6, 4),
                          (KIND_ADD, SELL, 102, 8, 5)))
    assert len(rows) == 0
    return m


# --- resting and queue position -------------------------------------------------------------
def test_limit_joins_behind_replayed_orders(m: Matcher) -> None:
    reps = m.submit("a", "t1", BUY, 3, 100)
    assert kinds(reps) == ["accepted"]
    oid = reps[0].order_id
    assert m.open_order(oid) == (BUY, 100, 3, 3)
    assert m.queue_ahead(oid) == 9
    rows = m.take_events()
    assert rows.dtype == EVENT_DTYPE
    assert rows["kind"].tolist() == [KIND_ADD]
    assert int(rows["order_id"][0]) >= CLIENT_REF_BASE
    assert rows["flags"][0] & FLAG_LAST
    # a second client order queues behind the first
    oid2 = m.submit("b", "t2", BUY, 2, 100)[0].order_id
    assert m.queue_ahead(oid2) == 12


def test_replayed_cancel_ahead_moves_client_up(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 3, 100)[0].order_id
    m.on_market(ev((KIND_DELETE, BUY, 100, 5, 1)))
    assert m.queue_ahead(oid) == 4
    assert m.take_reports() == []


# --- taking -------------------------------------------------------------------------------
def test_crossing_order_takes_best_price_first_at_resting_price(m: Matcher) -> None:
    reps = m.submit("a", "t1", BUY, 10, 102)
    assert fills(reps) == [(101, 6, LIQ_REMOVED), (102, 4, LIQ_REMOVED)]
    assert reps[-1].leaves == 0
    rows = m.take_events()
    assert rows["kind"].tolist() == [KIND_TRADE, KIND_TRADE]
    assert rows["side"].tolist() == [BUY, BUY]
    assert rows["order_id"].tolist() == [0, 0]
    # the replayed book is the day's record: unchanged
    assert m.book.qty_at(SELL, 101) == 6
    assert m.open_order(reps[0].order_id) is None


def test_consumed_replayed_lots_cannot_be_taken_twice(m: Matcher) -> None:
    m.submit("a", "t1", BUY, 4, 101)
    assert m.available(SELL, 101) == 2
    reps = m.submit("b", "t2", BUY, 5, 101)
    assert fills(reps) == [(101, 2, LIQ_REMOVED)]
    assert m.open_order(reps[0].order_id) == (BUY, 101, 5, 3)


def test_consumption_is_absorbed_by_the_days_later_reductions(m: Matcher) -> None:
    m.submit("a", "t1", BUY, 3, 101)  # 3 of id4's 6 consumed
    assert m.available(SELL, 101) == 3
    m.on_market(ev((KIND_CANCEL, SELL, 101, 2, 4)))  # 6 -> 4, consumed 3 -> 1
    assert m.available(SELL, 101) == 3
    m.on_market(ev((KIND_EXECUTE, SELL, 101, 3, 4)))  # 4 -> 1, consumed -> 0
    assert m.available(SELL, 101) == 1


def test_client_taker_fills_resting_client_as_maker(m: Matcher) -> None:
    maker = m.submit("a", "t1", SELL, 5, 100)  # crosses the replayed bids: takes 5 at 100
    assert fills(maker) == [(100, 5, LIQ_REMOVED)]
    mk = m.submit("a", "t2", SELL, 5, 101)[0].order_id  # rests behind id4 at 101
    m.take_events()
    reps = m.submit("b", "t3", BUY, 8, 101)
    assert fills(reps, "b") == [(101, 6, LIQ_REMOVED), (101, 2, LIQ_REMOVED)]
    assert fills(reps, "a") == [(101, 2, LIQ_ADDED)]
    assert m.open_order(mk) == (SELL, 101, 5, 3)
    rows = m.take_events()
    assert rows["kind"].tolist() == [KIND_TRADE, KIND_EXECUTE]
    assert rows["flags"].tolist() == [0, FLAG_LAST]


def test_level_queue_interleaves_replayed_and_client_orders_by_arrival(m: Matcher) -> None:
    c = m.submit("a", "t1", SELL, 2, 101)[0].order_id  # behind id4 (6)
    m.on_market(ev((KIND_ADD, SELL, 101, 3, 9)))  # behind the client order
    reps = m.submit("b", "t2", BUY, 9, 101)
    seq = [(r.owner, r.qty) for r in reps if r.kind == ReportKind.EXECUTED]
    assert seq == [("b", 6), ("a", 2), ("b", 2), ("b", 1)]
    assert m.open_order(c) is None


# --- replayed flow reaching client orders ---------------------------------------------------
def test_execution_of_an_order_behind_fills_client(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 3, 100)[0].order_id
    m.on_market(ev((KIND_ADD, BUY, 100, 6, 7)))  # behind the client
    rows = m.on_market(ev((KIND_EXECUTE, BUY, 100, 2, 1)))  # ahead: only moves us up
    assert len(rows) == 0
    assert m.take_reports() == []
    assert m.queue_ahead(oid) == 7
    rows = m.on_market(ev((KIND_EXECUTE, BUY, 100, 2, 7)))  # behind: it reached us first
    reps = m.take_reports()
    assert fills(reps) == [(100, 2, LIQ_ADDED)]
    assert rows["kind"].tolist() == [KIND_EXECUTE]
    assert m.open_order(oid) == (BUY, 100, 3, 1)


def test_execution_below_a_better_client_bid_fills_it(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 4, 100)[0].order_id
    m.on_market(ev((KIND_EXECUTE, BUY, 99, 3, 3)))  # the aggressor went through 100
    assert fills(m.take_reports()) == [(100, 3, LIQ_ADDED)]
    assert m.open_order(oid) == (BUY, 100, 4, 1)


def test_replayed_add_crossing_a_client_order_trades_with_it(m: Matcher) -> None:
    oid = m.submit("a", "t1", SELL, 5, 101)[0].order_id
    m.on_market(ev((KIND_DELETE, SELL, 101, 6, 4)))  # client now alone at 101
    m.take_events()
    rows = m.on_market(ev((KIND_ADD, BUY, 101, 3, 11)))
    assert fills(m.take_reports()) == [(101, 3, LIQ_ADDED)]
    assert rows["kind"].tolist() == [KIND_EXECUTE]
    assert m.open_order(oid) == (SELL, 101, 5, 2)
    # its lots went to the client: none left for another taker
    assert m.available(BUY, 101) == 0
    reps = m.submit("b", "t2", SELL, 1, 101)
    assert fills(reps) == []


def test_replayed_modify_moving_through_client_order_trades(m: Matcher) -> None:
    oid = m.submit("a", "t1", SELL, 5, 101)[0].order_id
    m.on_market(ev((KIND_DELETE, SELL, 101, 6, 4)))
    m.on_market(ev((KIND_MODIFY, BUY, 101, 2, 2)))  # id2 re-prices 100 -> 101
    assert fills(m.take_reports()) == [(101, 2, LIQ_ADDED)]
    assert m.open_order(oid) == (SELL, 101, 5, 3)


def test_trade_print_rules(m: Matcher) -> None:
    a = m.submit("a", "t1", BUY, 4, 100)[0].order_id  # behind 9 replayed lots
    m.on_market(ev((KIND_TRADE, SELL, 100, 3, 0)))  # at our price, replayed ahead: nothing
    assert m.take_reports() == []
    m.on_market(ev((KIND_TRADE, NO_SIDE, 99, 3, 0)))  # through our price: fills up to 3
    assert fills(m.take_reports()) == [(100, 3, LIQ_ADDED)]
    m.on_market(ev((KIND_DELETE, BUY, 100, 5, 1), (KIND_DELETE, BUY, 100, 4, 2)))
    m.on_market(ev((KIND_TRADE, SELL, 100, 5, 0)))  # nothing ahead now
    assert fills(m.take_reports()) == [(100, 1, LIQ_ADDED)]
    assert m.open_order(a) is None
    m.submit("a", "t2", SELL, 2, 103)
    m.on_market(ev((KIND_TRADE, SELL, 104, 5, 0)))  # a sell aggressor never fills a sell
    assert m.take_reports() == []


# --- order types ------------------------------------------------------------------------------
def test_market_order_walks_levels_and_cancels_the_rest(m: Matcher) -> None:
    reps = m.submit("a", "t1", BUY, 20, 0, ord_type=OrdType.MARKET)
    assert fills(reps) == [(101, 6, LIQ_REMOVED), (102, 8, LIQ_REMOVED)]
    assert reps[-1].kind == ReportKind.CANCELED
    assert reps[-1].reason == Reason.IOC
    assert reps[-1].qty == 6


def test_market_order_with_empty_side_is_rejected() -> None:
    m = Matcher(capacity=16, n_ticks=64)
    reps = m.submit("a", "t1", SELL, 1, 0, ord_type=OrdType.MARKET)
    assert kinds(reps) == ["rejected"]
    assert reps[0].reason == Reason.NO_LIQUIDITY


def test_ioc_takes_then_cancels(m: Matcher) -> None:
    reps = m.submit("a", "t1", BUY, 9, 101, tif=Tif.IOC)
    assert kinds(reps) == ["accepted", "executed", "canceled"]
    assert reps[-1].qty == 3
    assert reps[-1].leaves == 0
    assert len(m.take_events()) == 1  # the trade; nothing rests


def test_post_only(m: Matcher) -> None:
    reps = m.submit("a", "t1", BUY, 1, 101, tif=Tif.POST_ONLY)
    assert kinds(reps) == ["rejected"]
    assert reps[0].reason == Reason.POST_ONLY_WOULD_TAKE
    reps = m.submit("a", "t2", BUY, 1, 100, tif=Tif.POST_ONLY)
    assert kinds(reps) == ["accepted"]
    assert m.open_order(reps[0].order_id) is not None


@pytest.mark.parametrize(
    ("side", "qty", "price", "ord_type", "tif", "why"),
    [
        (0, 1, 100, OrdType.LIMIT, Tif.DAY, Reason.BAD_SIDE),
        (BUY, 0, 100, OrdType.LIMIT, Tif.DAY, Reason.BAD_QTY),
        (BUY, -3, 100, OrdType.LIMIT, Tif.DAY, Reason.BAD_QTY),
        (BUY, 1, 0, OrdType.LIMIT, Tif.DAY, Reason.BAD_PRICE),
        (BUY, 1, 0, OrdType.MARKET, Tif.POST_ONLY, Reason.BAD_TYPE),
    ],
)
def test_bad_orders_are_rejected_with_reason(m: Matcher, side: int, qty: int, price: int,
                                             ord_type: OrdType, tif: Tif, why: Reason) -> None:
    reps = m.submit("a", "t", side, qty, price, ord_type=ord_type, tif=tif)
    assert kinds(reps) == ["rejected"]
    assert reps[0].reason == why
    assert len(m.take_events()) == 0


def test_halt_rejects_new_orders_and_replaces_until_open(m: Matcher) -> None:
    oid = m.submit("a", "t0", BUY, 1, 98)[0].order_id
    m.on_market(make_events(kind=[KIND_STATUS], qty=[STATUS_HALTED], exch_ts=[10]))
    assert m.submit("a", "t1", BUY, 1, 100)[0].reason == Reason.HALTED
    assert m.replace("a", oid, "t2", 97, 1)[0].reason == Reason.HALTED
    assert kinds(m.cancel("a", oid)) == ["canceled"]  # cancels always go through
    m.on_market(make_events(kind=[KIND_STATUS], qty=[STATUS_OPEN], exch_ts=[11]))
    assert kinds(m.submit("a", "t3", BUY, 1, 100)) == ["accepted"]


# --- cancel and replace -----------------------------------------------------------------------
def test_cancel_full_and_partial(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 5, 100)[0].order_id
    m.take_events()
    reps = m.cancel("a", oid, leave_qty=2)
    assert kinds(reps) == ["canceled"]
    assert reps[0].qty == 3
    assert reps[0].leaves == 2
    assert m.queue_ahead(oid) == 9  # a size decrease keeps priority
    reps = m.cancel("a", oid)
    assert reps[0].qty == 2
    assert reps[0].leaves == 0
    rows = m.take_events()
    assert rows["kind"].tolist() == [KIND_CANCEL, KIND_DELETE]
    assert rows["qty"].tolist() == [3, 2]
    assert m.open_order(oid) is None


def test_cancel_refusals(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 5, 100)[0].order_id
    assert m.cancel("b", oid)[0].reason == Reason.UNKNOWN_ORDER  # not the owner's
    assert m.cancel("a", 999)[0].reason == Reason.UNKNOWN_ORDER
    assert m.cancel("a", oid, leave_qty=5)[0].reason == Reason.BAD_QTY
    assert m.cancel("a", oid, leave_qty=-1)[0].reason == Reason.BAD_QTY
    assert all(r.kind == ReportKind.CANCEL_REJECTED for r in m.cancel("a", 999))
    assert m.open_order(oid) == (BUY, 100, 5, 5)


def test_live_token_is_the_name_a_resting_order_goes_by_now(m: Matcher) -> None:
    """What the order sessions check before a cancel or replace acts: the replacement's
    token once replaced, None once the order rests no more, None for another owner."""
    oid = m.submit("a", "t1", BUY, 5, 100)[0].order_id
    assert m.live_token("a", oid) == "t1"
    assert m.live_token("b", oid) is None
    m.replace("a", oid, "t2", 100, 4)
    assert m.live_token("a", oid) == "t2"
    m.cancel("a", oid, leave_qty=2, token="t2")  # a reduction keeps the order and its name
    assert m.live_token("a", oid) == "t2"
    m.cancel("a", oid)
    assert m.live_token("a", oid) is None
    taker = m.submit("a", "t3", BUY, 6, 101)[0].order_id  # fills at once: never rests
    assert m.live_token("a", taker) is None
    assert m.live_token("a", 999) is None


def test_replace_size_decrease_keeps_priority(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 5, 100)[0].order_id
    m.on_market(ev((KIND_ADD, BUY, 100, 3, 8)))  # behind us
    m.take_events()
    reps = m.replace("a", oid, "t2", 100, 3)
    assert kinds(reps) == ["replaced"]
    assert reps[0].token == "t2"
    assert reps[0].orig_token == "t1"
    assert m.queue_ahead(oid) == 9
    assert m.take_events()["kind"].tolist() == [KIND_CANCEL]
    m.on_market(ev((KIND_EXECUTE, BUY, 100, 1, 8)))  # still ahead of id8
    assert fills(m.take_reports()) == [(100, 1, LIQ_ADDED)]


def test_replace_size_increase_loses_priority(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 5, 100)[0].order_id
    m.on_market(ev((KIND_ADD, BUY, 100, 3, 8)))
    m.take_events()
    m.replace("a", oid, "t2", 100, 6)
    assert m.queue_ahead(oid) == 12  # now behind id8 too
    rows = m.take_events()
    assert rows["kind"].tolist() == [KIND_DELETE, KIND_ADD]
    assert (rows["flags"] & FLAG_REPLACE).all()
    assert rows["order_id"][0] != rows["order_id"][1]
    m.on_market(ev((KIND_EXECUTE, BUY, 100, 1, 8)))
    assert m.take_reports() == []


def test_replace_price_change_loses_priority_and_can_take(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 5, 100)[0].order_id
    reps = m.replace("a", oid, "t2", 101, 8)
    assert kinds(reps) == ["replaced", "executed"]
    assert fills(reps) == [(101, 6, LIQ_REMOVED)]
    assert m.open_order(oid) == (BUY, 101, 8, 2)
    assert m.queue_ahead(oid) == 0


def test_replace_to_filled_size_cancels(m: Matcher) -> None:
    oid = m.submit("a", "t1", SELL, 5, 101)[0].order_id
    m.on_market(ev((KIND_DELETE, SELL, 101, 6, 4), (KIND_ADD, BUY, 101, 2, 12)))
    assert m.open_order(oid) == (SELL, 101, 5, 3)
    reps = m.replace("a", oid, "t2", 101, 2)
    assert kinds(reps) == ["canceled"]
    assert reps[0].qty == 3
    assert m.open_order(oid) is None


def test_replace_refusals(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 5, 100, tif=Tif.POST_ONLY)[0].order_id
    assert m.replace("a", oid, "t2", 101, 5)[0].reason == Reason.POST_ONLY_WOULD_TAKE
    assert m.replace("b", oid, "t2", 99, 5)[0].reason == Reason.UNKNOWN_ORDER
    assert m.replace("a", oid, "t2", 99, 0)[0].reason == Reason.BAD_QTY
    assert m.replace("a", oid, "t2", 0, 5)[0].reason == Reason.BAD_PRICE
    assert m.open_order(oid) == (BUY, 100, 5, 5)


# --- batches and invariants -------------------------------------------------------------------
class _EveryEvent(Matcher):
    """Reference: looks at every event one by one (no relevance filter)."""

    def _relevant(self, events: np.ndarray) -> np.ndarray:
        return np.ones(len(events), dtype=bool)


def _day(seed: int, n: int) -> np.ndarray:
    """A small random L3 stream around 100 (adds, cancels, executes, modifies, prints)."""
    rng = np.random.default_rng(seed)
    live: dict[int, tuple[int, int, int]] = {}
    rows = []
    nid = 1
    for _ in range(n):
        r = rng.random()
        if r < 0.45 or not live:
            side = BUY if rng.random() < 0.5 else SELL
            price = int(100 - rng.integers(0, 4)) if side == BUY else int(101 + rng.integers(0, 4))
            q = int(rng.integers(1, 6))
            live[nid] = (side, price, q)
            rows.append((KIND_ADD, side, price, q, nid))
            nid += 1
            continue
        oid = int(rng.choice(list(live)))
        side, price, q = live[oid]
        if r < 0.6:
            rows.append((KIND_DELETE, side, price, q, oid))
            del live[oid]
        elif r < 0.8:
            d = int(rng.integers(1, q + 1))
            rows.append((KIND_EXECUTE if r < 0.7 else KIND_CANCEL, side, price, d, oid))
            if d == q:
                del live[oid]
            else:
                live[oid] = (side, price, q - d)
        elif r < 0.9:
            np_ = price + (1 if side == SELL else -1) * int(rng.integers(0, 2))
            nq = int(rng.integers(1, 6))
            rows.append((KIND_MODIFY, side, np_, nq, oid))
            live[oid] = (side, np_, nq)
        else:
            rows.append((KIND_TRADE, NO_SIDE, int(rng.integers(99, 103)), 2, 0))
    return ev(*rows)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 60))
# a replayed order a client takes part of becomes watched in the middle of a batch: its later
# events in the same batch (an execution) must be looked at too, or its remaining lots are
# counted twice (these days failed so before the filter was chosen again)
@example(seed=3050, cut=18)
@example(seed=427, cut=5)
@example(seed=5201, cut=33)
def test_batched_market_data_equals_event_by_event(seed: int, cut: int) -> None:
    """The relevance filter never skips an event that matters, and the replayed book is
    exactly the day's book whatever the clients do."""
    day = _day(seed, 200)
    rng = np.random.default_rng(seed + 1)
    a, b = Matcher(capacity=8, n_ticks=64), _EveryEvent(capacity=8, n_ticks=64)
    ref = L3Book(capacity=512, n_ticks=64)
    out: list[list] = [[], []]
    for start in range(0, len(day), cut):
        chunk = day[start:start + cut]
        ref.apply_events(chunk)
        side = BUY if rng.random() < 0.5 else SELL
        price = int(rng.integers(98, 104))
        qty = int(rng.integers(1, 8))
        tif = Tif(int(rng.integers(0, 3)))
        for i, mm in enumerate((a, b)):
            out[i].append(mm.on_market(chunk).tolist())
            out[i].append(mm.take_reports())
            out[i].append(mm.submit("x", f"t{start}", side, qty, price, tif=tif))
            out[i].append(mm.take_events().tolist())
    assert out[0] == out[1]
    for mm in (a, b):
        assert mm.book.snapshot(8).tolist() == ref.snapshot(8).tolist()
    for r in (x for group in out[0] if group and hasattr(group[0], "kind") for x in group):
        assert r.leaves >= 0


def test_level_rows_are_refused_not_ignored(m: Matcher) -> None:
    """An L2 day reaches the matcher as the replay's synthetic orders: raw level rows would
    be dropped by the L3 book, so they are refused with a message saying so."""
    rows = make_events(kind=[KIND_LEVEL], side=[BUY], price=[100], qty=[3], exch_ts=[5])
    with pytest.raises(ConfigError, match="synthetic per-level orders"):
        m.on_market(rows)
    assert m.book.qty_at(BUY, 100) == 9


def test_an_add_of_a_live_id_replaces_it_behind_the_client(m: Matcher) -> None:
    oid = m.submit("a", "t1", BUY, 3, 100)[0].order_id
    m.on_market(ev((KIND_ADD, BUY, 100, 5, 1)))  # id1 again: the old one is gone
    assert m.queue_ahead(oid) == 4
    m.on_market(ev((KIND_EXECUTE, BUY, 100, 2, 1)))  # now behind us: we fill first
    assert fills(m.take_reports()) == [(100, 2, LIQ_ADDED)]
