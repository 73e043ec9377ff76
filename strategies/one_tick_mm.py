"""One-tick market maker with inventory limits.

Quotes one lot (``order_qty``) at the best bid and the best ask — joining the touch, one
tick inside it when ``improve`` is set — and re-quotes when the touch moves. When the
position reaches ``max_position`` lots on one side it stops quoting that side, so inventory
stays within limits. The same logic is written twice: plain Python (flexible path) and
numba (fast path); the engine's tests check both give identical orders, fills and PnL.
"""

from __future__ import annotations

from numba import njit

from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import CompiledCallbacks, Params, Strategy, nb, param
from framework.strategy.context import Context

NO_PRICE = nb.NO_PRICE

# state words of the compiled version
S_BID_ID, S_ASK_ID, S_BID_PX, S_ASK_PX, S_SEEN_DONE = 0, 1, 2, 3, 4


class OneTickMMParams(Params):
    order_qty: int = param(1, ge=1, note="lots")  #: lots per quote
    #: lots; a side is not quoted once the position reaches it
    max_position: int = param(5, ge=1, note="lots")
    improve: bool = False  #: quote one tick inside the spread when it is wider than one tick


@njit(cache=True, inline="always")
def _target(bb: int, ba: int, improve: bool) -> tuple[int, int]:
    if improve and ba - bb > 2:
        return bb + 1, ba - 1
    return bb, ba


@njit(cache=True, inline="always")
def _requote_side(ctx, sid, inst, side, want, allowed, qty, s, id_word, px_word) -> None:
    oid = s[id_word]
    if oid != 0 and nb.order_status(ctx, sid, oid) == 0:
        oid = 0  # finished (filled or cancelled)
        s[id_word] = 0
    if oid != 0:
        if not allowed or s[px_word] != want:
            nb.cancel(ctx, sid, oid)
            s[id_word] = 0
        else:
            return
    if allowed and want != NO_PRICE:
        new = nb.submit(ctx, sid, inst, side, want, qty)
        if new > 0:
            s[id_word] = new
            s[px_word] = want


@njit(cache=True)
def mm_on_book(ctx, sid, inst, p, s) -> None:
    bb = nb.best_bid(ctx, inst)
    ba = nb.best_ask(ctx, inst)
    if bb == NO_PRICE or ba == NO_PRICE:
        return
    bid, ask = _target(bb, ba, p.improve)
    pos = nb.position(ctx, sid, inst)
    buy_ok = pos < p.max_position
    sell_ok = pos > -p.max_position
    # as the Python version: while none of our orders has finished, quotes we had still rest
    done = nb.finished_count(ctx, sid, inst)
    same = done == s[S_SEEN_DONE]
    s[S_SEEN_DONE] = done
    # the side whose quote the other's new price would cross goes first: its cancel reaches
    # the venue before the new order (self-trade prevention counts it gone)
    ask_first = s[S_ASK_ID] != 0 and bid >= s[S_ASK_PX]
    if ask_first and not (same and sell_ok and ask == s[S_ASK_PX]):
        _requote_side(ctx, sid, inst, SELL, ask, sell_ok, p.order_qty, s, S_ASK_ID, S_ASK_PX)
    if not (same and buy_ok and bid == s[S_BID_PX] and s[S_BID_ID] != 0):
        _requote_side(ctx, sid, inst, BUY, bid, buy_ok, p.order_qty, s, S_BID_ID, S_BID_PX)
    if not ask_first and not (same and sell_ok and ask == s[S_ASK_PX] and s[S_ASK_ID] != 0):
        _requote_side(ctx, sid, inst, SELL, ask, sell_ok, p.order_qty, s, S_ASK_ID, S_ASK_PX)


class OneTickMM(Strategy):
    """Join the touch on both sides with one lot; stop adding to a full inventory."""

    Params = OneTickMMParams
    risk = RiskLimits(max_position=10, max_open_orders=10)
    compiled = CompiledCallbacks(on_book=mm_on_book, state_size=5)

    def on_start(self, ctx: Context) -> None:
        self.bid_id = self.ask_id = 0
        self.bid_px = self.ask_px = NO_PRICE
        self.seen_done = 0  #: ctx.finished_count when we last checked our quotes

    def _requote(self, ctx: Context, inst: int, side: int, want: int, allowed: bool) -> None:
        oid, px = (self.bid_id, self.bid_px) if side == BUY else (self.ask_id, self.ask_px)
        if oid and ctx.is_live(oid):
            if allowed and px == want:
                return  # our quote is where we want it: keep its place in the queue
            ctx.cancel(oid)
        oid = 0
        if allowed and want != NO_PRICE:
            new = ctx.submit(inst, side, want, self.params.order_qty)
            if new > 0:
                oid, px = new, want
        if side == BUY:
            self.bid_id, self.bid_px = oid, px
        else:
            self.ask_id, self.ask_px = oid, px

    def on_book(self, ctx: Context, inst: int) -> None:
        # the Context's read-only views (ctx.best_bids[inst] == ctx.best_bid(inst)): this
        # runs on every change of the touch, and a subscript costs half a method call
        bb, ba = ctx.best_bids[inst], ctx.best_asks[inst]
        if bb == NO_PRICE or ba == NO_PRICE:
            return
        p = self.params
        if p.improve and ba - bb > 2:
            bb, ba = bb + 1, ba - 1
        pos = ctx.positions[inst]
        buy_ok, sell_ok = pos < p.max_position, pos > -p.max_position
        # Most book changes are size changes that leave our quotes where we want them. While
        # none of our orders has finished since we last looked, quotes we had still rest:
        # one read instead of an is_live per side (_requote checks each when it may differ).
        done = ctx.finished_counts[inst]
        same = done == self.seen_done
        if not same:
            self.seen_done = done
        # the side whose quote the other's new price would cross goes first: its cancel
        # reaches the venue before the new order (self-trade prevention counts it gone)
        ask_first = self.ask_id and bb >= self.ask_px
        if ask_first and not (same and sell_ok and ba == self.ask_px):
            self._requote(ctx, inst, SELL, ba, sell_ok)
        if not (same and buy_ok and bb == self.bid_px and self.bid_id):
            self._requote(ctx, inst, BUY, bb, buy_ok)
        if not ask_first and not (same and sell_ok and ba == self.ask_px and self.ask_id):
            self._requote(ctx, inst, SELL, ba, sell_ok)
