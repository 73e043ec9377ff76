"""A strategy that keeps an order session's socket busy, for the test of a socket that fills
(``tests/integration/live/test_live_partial_send.py``): on every book update it sends one,
then two, then one... IOC buy orders ``below`` ticks under the best bid -- they never fill
(the venue cancels each at once) -- as fast as its open-order limit lets it (orders the venue
has not answered count: a venue that stops reading soon holds the limit's worth)."""

from __future__ import annotations

from numba import njit

from framework.core.events import BUY
from framework.risk.limits import RiskLimits
from framework.strategy import CompiledCallbacks, Params, Strategy, nb, param
from framework.strategy.context import Context

NO_PRICE = nb.NO_PRICE


class FloodIOCParams(Params):
    below: int = param(1000, ge=1, note="ticks")  #: how far under the best bid the orders go
    burst: int = param(2, ge=1)  #: orders per book update cycle through 1..burst


@njit(cache=True)
def flood_on_book(ctx, sid, inst, p, s) -> None:  # type: ignore[no-untyped-def]
    bb = nb.best_bid(ctx, inst)
    if bb == NO_PRICE or bb <= p.below:
        return
    s[0] += 1
    for _ in range(1 + s[0] % p.burst):
        if nb.submit(ctx, sid, inst, BUY, bb - p.below, 1, nb.TIF_IOC) <= 0:
            return  # the open-order limit: the next book update tries again


class FloodIOC(Strategy):
    """IOC orders that never fill, one or more per book update (see the module docstring)."""

    Params = FloodIOCParams
    risk = RiskLimits(max_open_orders=1500)
    compiled = CompiledCallbacks(on_book=flood_on_book, state_size=1)

    def on_start(self, ctx: Context) -> None:
        self.updates = 0

    def on_book(self, ctx: Context, inst: int) -> None:
        bb = ctx.best_bids[inst]
        p = self.params
        if bb == NO_PRICE or bb <= p.below:
            return
        self.updates += 1
        for _ in range(1 + self.updates % p.burst):
            if ctx.submit(inst, BUY, bb - p.below, 1, tif="ioc") <= 0:
                return
