"""The engine's books hold every level at any price. A strategy reading depth at many levels
sees the far quotes (tick 1, $2000.00, tick 10**9, a negative bid) after every message while
the touch walks across many window widths, on L2 data and on L3 data projected to levels;
a taker sweeps the venue's book into the far levels; a book over its far capacity stops
the run with one clear error instead of dropping levels."""

from __future__ import annotations

from typing import Any

import pytest

from framework.arena.state import Capacity
from framework.core.errors import ConfigError, HftlabError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_ADD,
    KIND_DELETE,
    KIND_LEVEL,
    SELL,
    EventArray,
    make_events,
)
from framework.strategy import Strategy
from framework.strategy.context import Context, FillInfo
from tests.book_reference import RefL2, RefL3

from .conftest import T0, run

STEP = 1_000  #: ns between messages
N_MSG = 80  #: messages after the opening one; the touch moves 23 ticks each
SWEEP_AT = 60  #: the strategy sweeps the asks after this message
DEPTH = 400  #: levels a side the strategy reads
#: quotes resting all day far from the touch: (side, price in ticks of 0.01, lots)
FAR = [(BUY, 1, 7), (BUY, -5_000, 4), (SELL, 200_000, 3), (SELL, 10**9, 2)]


def _centre(k: int) -> int:
    return 3_000 + 23 * k


def l2_day() -> EventArray:
    """Level updates: the far quotes, then a touch moving up message by message (the old
    asks it crosses go as stale, old bids stay behind as levels further and further away)."""
    rows: list[tuple[int, int, int, int, int]] = []  # (time, side, price, lots, last)
    msgs = [[(s, p, q) for s, p, q in FAR]]
    for k in range(N_MSG + 1):
        c = _centre(k)
        msgs.append([(BUY, c - 3, 2), (BUY, c - 1, k % 5 + 1), (SELL, c + 1, 3),
                     (SELL, c + 4, 1)])
    for m, msg in enumerate(msgs):
        for j, (s, p, q) in enumerate(msg):
            rows.append((T0 + m * STEP, s, p, q, j == len(msg) - 1))
    t, s, p, q, last = zip(*rows, strict=True)
    return make_events(exch_ts=t, local_ts=t, kind=[KIND_LEVEL] * len(t), side=s, price=p,
                       qty=q, flags=[FLAG_LAST if x else 0 for x in last])


def l3_day() -> EventArray:
    """The same day as orders: far orders added first, each message deletes the previous
    near orders and adds new ones around the moved touch."""
    rows: list[tuple[int, int, int, int, int, int, int]] = []  # time, kind, id, side, px, q, last
    oid = 0
    msgs: list[list[tuple[int, int, int, int, int]]] = [[]]
    for s, p, q in FAR:
        oid += 1
        msgs[0].append((KIND_ADD, oid, s, p, q))
    live: list[tuple[int, int, int, int]] = []
    for k in range(N_MSG + 1):
        c = _centre(k)
        # every fourth message leaves the old bids resting for the rest of the day
        msg = [(KIND_DELETE, i, s, p, q) for i, s, p, q in live if k % 4 or s == SELL]
        live = []
        for s, p, q in ((BUY, c - 3, 2), (BUY, c - 1, k % 5 + 1), (SELL, c + 1, 3),
                        (SELL, c + 4, 1)):
            oid += 1
            msg.append((KIND_ADD, oid, s, p, q))
            live.append((oid, s, p, q))
        msgs.append(msg)
    for m, msg in enumerate(msgs):
        for j, (kind, i, s, p, q) in enumerate(msg):
            rows.append((T0 + m * STEP, kind, i, s, p, q, j == len(msg) - 1))
    t, kind, i, s, p, q, last = zip(*rows, strict=True)
    return make_events(exch_ts=t, local_ts=t, kind=kind, order_id=i, side=s, price=p, qty=q,
                       flags=[FLAG_LAST if x else 0 for x in last])


def reference_depths(ev: EventArray, l3: bool) -> dict[int, tuple[list, list]]:
    """Both sides' levels after each message, by the message's time."""
    ref: Any = RefL3() if l3 else RefL2()
    out = {}
    for e in ev:
        kind, side, price, q = int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"])
        if l3:
            ref.apply(kind, int(e["order_id"]), side, price, q)
        else:
            ref.apply(kind, side, price, q)
        if e["flags"] & FLAG_LAST:
            out[int(e["local_ts"])] = (ref.depth(BUY), ref.depth(SELL))
    return out


class DepthReader(Strategy):
    """Reads DEPTH levels a side at every book change; sweeps the asks once."""

    def __init__(self, sweep_qty: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.sweep_qty = sweep_qty

    def on_start(self, ctx: Context) -> None:
        self.seen: list[tuple[int, list, list]] = []
        self.fills: list[tuple[int, int]] = []

    def on_book(self, ctx: Context, inst: int) -> None:
        self.seen.append(
            (ctx.now, ctx.depth(inst, "buy", DEPTH).tolist(),
             ctx.depth(inst, "sell", DEPTH).tolist())
        )
        if ctx.now == T0 + SWEEP_AT * STEP:
            ctx.submit_market(inst, "buy", self.sweep_qty)

    def on_fill(self, ctx: Context, fill: FillInfo) -> None:
        self.fills.append((fill.price, fill.qty))


@pytest.mark.parametrize("l3", [False, True], ids=["l2", "l3"])
def test_depth_holds_far_levels_at_every_message_and_a_taker_reaches_them(l3: bool) -> None:
    ev = l3_day() if l3 else l2_day()
    want = reference_depths(ev, l3)
    asks_at_sweep = want[T0 + SWEEP_AT * STEP][1]
    assert [200_000, 3] in asks_at_sweep
    assert [10**9, 2] in asks_at_sweep
    s = DepthReader(sweep_qty=sum(q for _, q in asks_at_sweep))
    # a 16-tick window: the touch leaves it at every message, the far quotes never enter it
    cap = Capacity(n_inst=1, n_strat=1, book_ticks=16, book_far_levels=512)
    run(ev, s, capacity=cap)
    assert len(s.seen) == N_MSG + 2  # every message moved the touch
    for now, bids, asks in s.seen:
        assert (bids, asks) == want[now], now
    assert [1, 7] in s.seen[-1][1]
    assert [-5_000, 4] in s.seen[-1][1]
    assert len(s.seen[-1][1]) > 40  # old bids left behind, all still there
    # the market buy walked every ask level of the venue's book, the far ones included
    assert [list(f) for f in s.fills] == asks_at_sweep


@pytest.mark.parametrize("features", [False, True], ids=["book", "features_book"])
def test_a_book_over_its_far_capacity_stops_the_run_with_a_clear_error(features: bool) -> None:
    class Reader(DepthReader):
        pass

    Reader.features = features
    cap = Capacity(n_inst=1, n_strat=1, book_ticks=16, book_far_levels=8)
    err = ConfigError if features else HftlabError
    with pytest.raises(err, match=r"book_far_levels") as info:
        run(l2_day(), Reader(sweep_qty=1), capacity=cap)
    assert "\n" not in str(info.value)

