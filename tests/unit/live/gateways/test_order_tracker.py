"""The gateways' order state machine: every allowed transition, every refused one."""

from __future__ import annotations

import asyncio

import pytest

from live.gateways.base import (
    Ack,
    Canceled,
    CancelRejected,
    Fill,
    LatencyLog,
    Order,
    OrderState,
    OrderStateError,
    OrderTracker,
    Rejected,
    Replaced,
    Side,
    Timeout,
    Violation,
)

S = OrderState


def tracker(timeout_s: float = 5.0) -> tuple[OrderTracker, asyncio.Queue]:
    q: asyncio.Queue = asyncio.Queue()
    return OrderTracker(q, timeout_s=timeout_s), q


def drain(q: asyncio.Queue) -> list:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def at(state: OrderState, *, filled: int = 0) -> tuple[OrderTracker, asyncio.Queue, Order]:
    """An order of 10 driven into ``state`` through allowed transitions."""
    t, q = tracker()
    o = Order("k", Side.BUY, 10, 100)
    t.new(o)
    if state in (S.REJECTED,):
        t.rejected("k", "x")
    elif state != S.PENDING_NEW:
        t.acked("k", "V1")
        if filled:
            t.filled("k", filled, 100, "A")
        if state == S.PENDING_CANCEL:
            t.want_cancel("k")
        elif state == S.PENDING_REPLACE:
            t.want_replace("k", 101, 12)
        elif state == S.CANCELLED:
            t.want_cancel("k")
            t.canceled("k", 10 - filled)
        elif state == S.FILLED:
            t.filled("k", 10 - filled, 100, "A")
    assert o.state == state
    drain(q)
    return t, q, o


def test_happy_paths() -> None:
    t, q = tracker()
    o = Order("k", Side.BUY, 10, 100)
    t.new(o)
    assert o.state == S.PENDING_NEW
    t.acked("k", "V7")
    assert (o.state, o.venue_id) == (S.NEW, "V7")
    t.filled("k", 4, 100, "A")
    assert (o.state, o.leaves) == (S.PARTIALLY_FILLED, 6)
    t.want_replace("k", 99, 8)
    assert o.state == S.PENDING_REPLACE
    t.replaced("k", 99, 8)
    assert (o.state, o.price, o.qty, o.leaves) == (S.PARTIALLY_FILLED, 99, 8, 4)
    t.want_cancel("k")
    t.filled("k", 1, 99, "A")  # the venue filled before it saw the cancel
    assert o.state == S.PENDING_CANCEL
    t.canceled("k", 3)
    assert (o.state, o.leaves) == (S.CANCELLED, 0)
    kinds = [type(e) for e in drain(q)]
    assert kinds == [Ack, Fill, Replaced, Fill, Canceled]


def test_refused_cancel_or_replace_goes_back() -> None:
    t, q, o = at(S.PENDING_CANCEL, filled=3)
    t.cancel_rejected("k", "too late")
    assert o.state == S.PARTIALLY_FILLED
    t.want_replace("k", 1, 20)
    t.filled("k", 2, 100, "A")
    t.cancel_rejected("k", "no")
    assert o.state == S.PARTIALLY_FILLED  # where it was, with the fill taken
    assert o.filled == 5
    evs = drain(q)
    assert [type(e) for e in evs] == [CancelRejected, Fill, CancelRejected]
    assert [e.replace for e in evs if isinstance(e, CancelRejected)] == [False, True]


def test_full_fill_while_pending_cancel_ends_filled() -> None:
    t, q, o = at(S.PENDING_CANCEL)
    t.filled("k", 10, 100, "A")
    assert o.state == S.FILLED
    t.cancel_rejected("k", "filled")  # the venue's answer to the cancel: nothing to undo
    assert o.state == S.FILLED
    assert [type(e) for e in drain(q)] == [Fill, CancelRejected]


@pytest.mark.parametrize("state", [S.PENDING_NEW, S.PENDING_CANCEL, S.PENDING_REPLACE,
                                   S.FILLED, S.CANCELLED, S.REJECTED])
def test_requests_in_a_wrong_state_raise(state: OrderState) -> None:
    t, q, o = at(state)
    with pytest.raises(OrderStateError, match="cannot take a cancel"):
        t.want_cancel("k")
    with pytest.raises(OrderStateError, match="cannot take a replace"):
        t.want_replace("k", 1, 1)
    assert o.state == state
    assert drain(q) == []


def test_request_errors() -> None:
    t, _, _ = at(S.NEW)
    with pytest.raises(OrderStateError, match="no order"):
        t.want_cancel("nope")
    with pytest.raises(OrderStateError, match="already in use"):
        t.new(Order("k", Side.SELL, 1, 1))
    with pytest.raises(OrderStateError, match="positive"):
        t.new(Order("z", Side.SELL, 0, 1))
    with pytest.raises(OrderStateError, match="cancel instead"):
        t.want_replace("k", 1, 0)


#: venue messages that are impossible in a state, as (state, call)
IMPOSSIBLE = [
    (S.NEW, lambda t: t.acked("k", "V2")),
    (S.NEW, lambda t: t.rejected("k", "x")),
    (S.NEW, lambda t: t.replaced("k", 1, 1)),
    (S.NEW, lambda t: t.cancel_rejected("k", "x")),
    (S.PENDING_NEW, lambda t: t.filled("k", 1, 1, "A")),
    (S.PENDING_NEW, lambda t: t.canceled("k", 1)),
    (S.PENDING_NEW, lambda t: t.replaced("k", 1, 1)),
    (S.FILLED, lambda t: t.filled("k", 1, 1, "A")),
    (S.FILLED, lambda t: t.canceled("k", 1)),
    (S.CANCELLED, lambda t: t.filled("k", 1, 1, "A")),
    (S.CANCELLED, lambda t: t.acked("k", "V")),
    (S.REJECTED, lambda t: t.acked("k", "V")),
    (S.PENDING_CANCEL, lambda t: t.replaced("k", 1, 1)),
    (S.PARTIALLY_FILLED, lambda t: t.filled("k", 99, 1, "A")),  # over the order's size
    (S.NEW, lambda t: t.filled("k", 0, 1, "A")),
    (S.NEW, lambda t: t.filled("other", 1, 1, "A")),  # an order we never sent
]


@pytest.mark.parametrize(("state", "call"), IMPOSSIBLE)
def test_impossible_venue_messages_change_nothing_and_are_reported(state: OrderState,
                                                                   call: object) -> None:
    t, q, o = at(state, filled=2 if state == S.PARTIALLY_FILLED else 0)
    before = (o.state, o.filled, o.qty, o.price, o.venue_id)
    call(t)  # type: ignore[operator]
    assert (o.state, o.filled, o.qty, o.price, o.venue_id) == before
    (ev,) = drain(q)
    assert isinstance(ev, Violation)
    assert ev.what


def test_timeouts_once_per_request() -> None:
    t, q = tracker(timeout_s=1.0)
    o = Order("k", Side.BUY, 1, 1)
    t.new(o)
    start = o.pending_since
    assert t.check_timeouts(start + 0.5) == []
    assert t.check_timeouts(start + 1.5) == ["k"]
    assert t.check_timeouts(start + 2.5) == []  # once
    t.acked("k", "V")
    t.want_cancel("k")
    assert t.check_timeouts(o.pending_since + 1.5) == ["k"]  # a new request, a new clock
    t.canceled("k", 1)
    assert t.check_timeouts(o.pending_since + 10) == []
    evs = drain(q)
    assert [type(e) for e in evs] == [Timeout, Ack, Timeout, Canceled]
    assert [e.state for e in evs if isinstance(e, Timeout)] == [S.PENDING_NEW,
                                                                  S.PENDING_CANCEL]


def test_rejected_is_terminal() -> None:
    t, q, o = at(S.PENDING_NEW)
    t.rejected("k", "halted")
    assert o.state == S.REJECTED
    assert not o.live
    assert o.leaves == 0
    assert isinstance(drain(q)[0], Rejected)


def test_latency_log_is_a_ring_summarised_off_the_hot_path() -> None:
    log = LatencyLog(capacity=4)
    assert log.summary() == {"encode_count": 0.0, "decode_count": 0.0}
    for ns in (10, 20, 30, 40, 1000):  # the fifth overwrites the first
        log.encoded(ns)
    log.decoded(7)
    s = log.summary()
    assert s["encode_count"] == 5
    assert s["encode_ns_max"] == 1000
    assert s["encode_ns_p50"] == 35  # of 20, 30, 40, 1000
    assert (s["decode_count"], s["decode_ns_p50"]) == (1, 7)
