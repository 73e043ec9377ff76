"""The Context's read-only views agree with its methods, and finished_count counts every way
an order ends (fill, cancel, reject) as the strategy learns of it."""

from __future__ import annotations

import pytest

from framework.core.events import SELL

from .conftest import T0, Scripted, Tape, buy, cancel, run

T = T0 + 1_000


def views(ctx, ids):  # what the views and the methods say, side by side
    return (
        (ctx.best_bids[0], ctx.best_asks[0], ctx.bid_qtys[0], ctx.ask_qtys[0]),
        (ctx.best_bid(0), ctx.best_ask(0), ctx.bid_qty(0), ctx.ask_qty(0)),
        (ctx.positions[0], ctx.position(0)),
        (ctx.finished_counts[0], ctx.finished_count(0)),
    )


def test_views_equal_methods_and_finished_count_counts_fills_cancels_and_rejects() -> None:
    # a resting buy at 100.00 is filled by a sell trade; a second one is cancelled; a
    # post-only buy that would cross is rejected. Latency 100 ns each way.
    t = (
        Tape()
        .book(T0, bids=[(9999, 10)], asks=[(10001, 10)])
        .trade(T + 5_000, SELL, 9990, 1)  # through 100.00: fills the first bid
        .tick(T + 50_000)
    )
    s = Scripted(
        [
            (T, "a", buy(10000, 1)),
            (T + 50, "sent", views),  # working, nothing finished
            (T + 6_000, "filled", views),  # the fill reached us: position 1, one finished
            (T + 7_000, "b", buy(10000, 1)),
            (T + 8_000, "cxl", cancel("b")),
            (T + 8_050, "cancel_sent", views),  # the cancel is in flight: b still works
            (T + 9_000, "canceled", views),
            (T + 10_000, "c", buy(10001, 1, tif="post_only")),
            (T + 11_000, "rejected", views),
        ]
    )
    run(t, s)
    for name in ("sent", "filled", "cancel_sent", "canceled", "rejected"):
        touch_v, touch_m, (pos_v, pos_m), (done_v, done_m) = s.ids[name]
        assert touch_v == touch_m, name
        assert pos_v == pos_m, name
        assert done_v == done_m, name
    assert s.ids["sent"][0] == (9999, 10001, 10, 10)
    names = ("sent", "filled", "cancel_sent", "canceled", "rejected")
    assert [s.ids[n][3][0] for n in names] == [0, 1, 1, 2, 3]
    assert s.ids["filled"][2] == (1, 1)
    assert s.kinds("c")[-1] == "rejected"


def test_views_are_read_only() -> None:
    def write(ctx, ids):
        with pytest.raises(TypeError):
            ctx.best_bids[0] = 1
        with pytest.raises(TypeError):
            ctx.positions[0] = 5
        return ctx.positions[0]

    s = Scripted([(T, "w", write)])
    run(Tape().book(T0, bids=[(9999, 10)], asks=[(10001, 10)]).tick(T + 1_000), s)
    assert s.ids["w"] == 0
