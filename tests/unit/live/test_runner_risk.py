"""Property: a strategy sending random orders through the live runner (paper mode, packet by
packet through the feed decoder) never holds more than its position limit nor sends an
order above its notional or size limit: the runner's orders all pass the engine's compiled
risk checks, whatever the strategy does."""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.risk.limits import RiskLimits
from framework.strategy import Strategy, nb
from framework.strategy.context import Context
from live.feeds.itch_mold import MoldFeedHandler
from live.runner import LiveRunner
from tests.unit.live.test_runner import DATE, T0, _packets


class RandomOrders(Strategy):
    """Every book change, maybe: a limit order of a random side and size at a random
    distance from the touch (often marketable), or a cancel of a random working order."""

    def on_start(self, ctx: Context) -> None:
        self.rng = random.Random(self.params_seed)
        self.ids: list[int] = []

    def on_book(self, ctx: Context, inst: int) -> None:
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        if nb.NO_PRICE in (bb, ba) or self.rng.random() < 0.5:
            return
        if self.ids and self.rng.random() < 0.2:
            ctx.cancel(self.ids.pop(self.rng.randrange(len(self.ids))))
            return
        side = self.rng.choice(("buy", "sell"))
        off = self.rng.randint(-3, 3)
        px = (ba + off) if side == "buy" else (bb - off)
        oid = ctx.submit(inst, side, px, self.rng.randint(1, 12),
                         tif=self.rng.choice(("gtc", "ioc")))
        if oid > 0:
            self.ids.append(oid)


@cache
def packets() -> tuple[Any, list[bytes]]:
    return _packets(2_500)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), max_pos=st.integers(1, 6), max_qty=st.integers(1, 8),
       notional=st.floats(150.0, 3_000.0))
def test_random_orders_never_breach_the_limits(seed: int, max_pos: int, max_qty: int,
                                               notional: float) -> None:
    rep, pk = packets()
    s = RandomOrders(name="rnd", risk=RiskLimits(max_position=max_pos, max_order_qty=max_qty,
                                                 max_notional=notional))
    s.params_seed = seed  # type: ignore[attr-defined]
    feed = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE, price_step=rep.price_step,
                           qty_step=rep.qty_step)
    r = LiveRunner(instrument=rep.instrument, strategies=[s], feed=feed, gateway=None,
                   mode="python")
    try:
        r.start(T0)
        t = T0
        for p in pk:
            t += 2_000_000
            if feed.apply_packets([p], t):
                r._run(t)
        res = r.finish()
    finally:
        feed.close()
    inst = rep.instrument
    lot, mult = float(inst.lot_size), float(inst.multiplier)
    assert res.orders.height + res.denials.height > 0  # it tried
    if res.fills.height:
        assert res.fills["position"].abs().max() <= max_pos * lot + 1e-9
    sent = res.orders.filter(pl.col("status") != "denied") if "status" in res.orders.columns \
        else res.orders
    assert (sent["qty"] <= max_qty * lot + 1e-9).all()
    assert ((sent["qty"] / lot) * sent["price"] * mult * lot <= notional + 1e-6).all()
