"""Queue-aware market maker: join the touch, keep the queue place, leave before being picked off.

A resting order at the touch earns the spread when the trades that reach it are noise, and
loses when they are the last ones before the price moves through it. Two things tell which
it will be, and this market maker watches both:

* **its place in the queue.** An order at the back of a long queue is filled only when the
  whole level is being swept -- that is, just before the price moves against it. The
  strategy estimates the lots ahead of each of its orders from what it sees: the level size
  when the order is acknowledged, minus the trades printed at its price, minus a pro-rata
  share of every other size decrease (cancels are spread evenly over the queue; orders that
  join later queue behind it). It does not join a level bigger than ``max_queue_ahead`` and
  cancels an order whose estimate is above it.
* **the book imbalance** at the touch, ``(bid_qty - ask_qty) / (bid_qty + ask_qty)``. A thin
  bid against a heavy ask means sellers are about to take out the bid and the price ticks
  down: a resting bid would be filled right before the drop. So the *bid* is pulled (and not
  re-joined) when the imbalance is at or below ``-imbalance_cancel``, and the *ask* when it
  is at or above ``+imbalance_cancel``.

Otherwise an order is left alone -- size changes elsewhere do not make it cancel and
re-queue; it moves only when the touch moves away from its price. A side is not quoted when
its fill could take the position past ``max_position`` (every open lot counted, including
orders whose cancel is in flight), and each side has at most one order: a replacement is
sent once the venue has confirmed the cancel. ``cancels`` counts cancels by reason.

The logic is written twice, as plain Python (flexible path) and as numba callbacks over an
int64 state array (fast path, ``compiled``); the tests check both give bit-identical orders,
fills, equity and positions. The compiled path keeps the cancel counts in its state words
``S_CANCELS..``, handed back after the run as ``compiled_state``; ``cancel_summary()`` gives
the counts by reason on either path. ``cancels``, ``quotes`` and ``inst`` exist on the
instance only after a run on the Python path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import CompiledCallbacks, Params, Strategy, nb, param
from framework.strategy.context import Context, FillInfo, OrderUpdate

NO_PRICE = nb.NO_PRICE
ST_NONE = nb.ST_NONE
TIF_POST_ONLY = nb.TIF_POST_ONLY
CANCEL_REASONS = ("touch_moved", "imbalance", "queue", "inventory")


class QueueAwareMMParams(Params):
    order_qty: int = param(1, ge=1, note="lots")  #: lots per quote
    #: lots; a side whose fill could pass it is not quoted
    max_position: int = param(5, ge=1, note="lots")
    #: lots; do not join / stay behind more than this (0: no limit)
    max_queue_ahead: int = param(600, ge=0, note="lots; 0: no limit")
    #: |touch imbalance| that pulls the threatened side (0: off)
    imbalance_cancel: float = param(0.6, ge=0, le=1, note="0: off")


@dataclass
class Quote:
    """One side's order and the estimate of its place in the queue (lots, ticks)."""

    oid: int = 0
    price: int = 0
    acked: bool = False
    ahead: int = 0  #: lots estimated ahead of the order at its price
    level: int = 0  #: size of its price level when last seen
    traded: int = 0  #: lots traded at its price not yet seen leaving the level
    canceling: int = 0  #: id of this side's order whose cancel is in flight

    def placed(self, oid: int, price: int, level: int) -> None:
        self.oid, self.price, self.acked = oid, price, False
        self.ahead = self.level = level
        self.traded = 0


# --- fast path: numba callbacks over an int64 state array --------------------------------------
# seven words a side, from S_BID / S_ASK: the fields of Quote, in this order
Q_OID, Q_PRICE, Q_ACKED, Q_AHEAD, Q_LEVEL, Q_TRADED, Q_CANCELING = range(7)
S_BID, S_ASK = 0, 7
S_INST = 14  #: the instrument quoted (-1 before the first book update), as QueueAwareMM.inst
S_CANCELS = 15  #: four words: cancels sent, by reason, in the order of CANCEL_REASONS
STATE_SIZE = S_CANCELS + len(CANCEL_REASONS)
DEPTH_LEVELS = 10  #: an order's level is looked up among this many best levels of its side


def cancel_counts(state: npt.NDArray[np.int64]) -> dict[str, int]:
    """The compiled state's cancel counters as the Python path's ``cancels`` dict."""
    return dict(zip(CANCEL_REASONS, state[S_CANCELS : S_CANCELS + 4].tolist(), strict=True))


@njit(cache=True, inline="always")
def _word(side: int) -> int:
    return S_BID if side == BUY else S_ASK


@njit(cache=True)
def qa_on_start(ctx, sid, p, s) -> None:
    s[:] = 0
    s[S_INST] = -1


@njit(cache=True)
def qa_on_trade(ctx, sid, inst, p, s) -> None:
    px, qty, aggressor = nb.last_trade(ctx, inst)
    for side in (BUY, SELL):
        w = _word(side)
        if not (s[w + Q_OID] != 0 and s[w + Q_ACKED] != 0) or aggressor == side:
            continue  # our bid is hit by sellers, our ask lifted by buyers
        if px == s[w + Q_PRICE]:
            s[w + Q_AHEAD] = max(0, s[w + Q_AHEAD] - qty)
            s[w + Q_TRADED] += qty
        elif (px - s[w + Q_PRICE]) * side < 0:
            s[w + Q_AHEAD] = 0  # traded through our price: nothing can be left ahead


@njit(cache=True)
def _level_changed_nb(s, w, size) -> None:
    """QueueAwareMM._level_changed on words ``w``: the same integer operations."""
    drop = s[w + Q_LEVEL] - size
    if drop > 0:
        by_trades = min(drop, s[w + Q_TRADED])
        s[w + Q_TRADED] -= by_trades
        others = drop - by_trades
        base = s[w + Q_LEVEL] - by_trades
        if others > 0 and base > 0:
            s[w + Q_AHEAD] -= others * s[w + Q_AHEAD] // base
    s[w + Q_LEVEL] = size
    s[w + Q_AHEAD] = min(s[w + Q_AHEAD], size)


@njit(cache=True)
def qa_on_book(ctx, sid, inst, p, s) -> None:
    s[S_INST] = inst
    for side in (BUY, SELL):
        w = _word(side)
        touch = nb.best_bid(ctx, inst) if side == BUY else nb.best_ask(ctx, inst)
        if s[w + Q_OID] != 0 and s[w + Q_ACKED] != 0 and s[w + Q_PRICE] == touch:
            size = nb.bid_qty(ctx, inst) if side == BUY else nb.ask_qty(ctx, inst)
            _level_changed_nb(s, w, size)
    _quote_nb(ctx, sid, p, s)


@njit(cache=True)
def _level_size_nb(ctx, inst, side, price) -> int:
    """Lots at ``price`` if it is among the DEPTH_LEVELS best levels of ``side``, else 0
    (as ``QueueAwareMM._level_size``)."""
    levels = np.empty((DEPTH_LEVELS, 2), np.int64)
    for j in range(nb.depth(ctx, inst, side, DEPTH_LEVELS, levels)):
        if levels[j, 0] == price:
            return levels[j, 1]
    return 0


@njit(cache=True)
def qa_on_order(ctx, sid, oid, kind, reason, p, s) -> None:
    for side in (BUY, SELL):
        w = _word(side)
        if kind == nb.RESP_ACK and s[w + Q_OID] == oid:
            # we joined the back of the level as it is now
            s[w + Q_ACKED] = 1
            level = _level_size_nb(ctx, s[S_INST], side, s[w + Q_PRICE])
            s[w + Q_AHEAD] = level
            s[w + Q_LEVEL] = level
            s[w + Q_TRADED] = 0
    _quote_nb(ctx, sid, p, s)


@njit(cache=True)
def qa_on_fill(ctx, sid, oid, side, price, qty, p, s) -> None:
    w = _word(side)
    if s[w + Q_OID] == oid:
        s[w + Q_AHEAD] = 0  # a partial fill: we are at the front
    _quote_nb(ctx, sid, p, s)


@njit(cache=True)
def _quote_nb(ctx, sid, p, s) -> None:
    inst = s[S_INST]
    if inst < 0:
        return
    bb = nb.best_bid(ctx, inst)
    ba = nb.best_ask(ctx, inst)
    if bb == NO_PRICE or ba == NO_PRICE or bb >= ba:
        return
    bq = nb.bid_qty(ctx, inst)
    aq = nb.ask_qty(ctx, inst)
    imbalance = (bq - aq) / (bq + aq)
    theta = p.imbalance_cancel
    pos = nb.position(ctx, sid, inst)
    exp_buy = pos + nb.open_buy_qty(ctx, sid, inst)
    exp_sell = nb.open_sell_qty(ctx, sid, inst) - pos
    buy_adverse = theta > 0 and imbalance <= -theta
    sell_adverse = theta > 0 and imbalance >= theta
    aw = _word(SELL)
    if s[aw + Q_OID] != 0 and bb >= s[aw + Q_PRICE]:  # pull our crossed ask before bidding
        _side_nb(ctx, sid, inst, SELL, ba, aq, sell_adverse, exp_sell, p, s)
        _side_nb(ctx, sid, inst, BUY, bb, bq, buy_adverse, exp_buy, p, s)
    else:
        _side_nb(ctx, sid, inst, BUY, bb, bq, buy_adverse, exp_buy, p, s)
        _side_nb(ctx, sid, inst, SELL, ba, aq, sell_adverse, exp_sell, p, s)


@njit(cache=True)
def _side_nb(ctx, sid, inst, side, touch, size, adverse, exposure, p, s) -> None:
    """QueueAwareMM._side on the state words of ``side``."""
    w = _word(side)
    if s[w + Q_CANCELING] != 0 and nb.order_status(ctx, sid, s[w + Q_CANCELING]) == ST_NONE:
        s[w + Q_CANCELING] = 0
    if s[w + Q_OID] != 0 and nb.order_status(ctx, sid, s[w + Q_OID]) == ST_NONE:
        s[w + Q_OID] = 0  # filled, cancelled or rejected
    too_long = p.max_queue_ahead > 0 and s[w + Q_AHEAD] > p.max_queue_ahead
    if s[w + Q_OID] != 0:
        if s[w + Q_PRICE] != touch:
            reason = 0  # touch_moved (indices into CANCEL_REASONS)
        elif adverse:
            reason = 1  # imbalance
        elif s[w + Q_ACKED] != 0 and too_long:
            reason = 2  # queue
        elif exposure > p.max_position:
            reason = 3  # inventory
        else:
            return  # nothing relevant changed: keep the queue place
        nb.cancel(ctx, sid, s[w + Q_OID])
        s[S_CANCELS + reason] += 1
        s[w + Q_CANCELING] = s[w + Q_OID]
        s[w + Q_OID] = 0
    qty = min(p.order_qty, p.max_position - exposure)
    crowded = p.max_queue_ahead > 0 and size > p.max_queue_ahead
    if qty > 0 and s[w + Q_CANCELING] == 0 and not adverse and not crowded:
        new = nb.submit(ctx, sid, inst, side, touch, qty, TIF_POST_ONLY)
        if new > 0:  # Quote.placed
            s[w + Q_OID] = new
            s[w + Q_PRICE] = touch
            s[w + Q_ACKED] = 0
            s[w + Q_AHEAD] = size
            s[w + Q_LEVEL] = size
            s[w + Q_TRADED] = 0


class QueueAwareMM(Strategy):
    """Join the touch with one order a side; pull it when it is too far back in the queue
    or the imbalance says the price is about to move through it."""

    Params = QueueAwareMMParams
    risk = RiskLimits(max_position=10, max_open_orders=4, max_orders_per_s=200, max_loss=500.0)
    compiled = CompiledCallbacks(
        on_start=qa_on_start,
        on_book=qa_on_book,
        on_trade=qa_on_trade,
        on_fill=qa_on_fill,
        on_order=qa_on_order,
        state_size=STATE_SIZE,
    )
    params: QueueAwareMMParams

    def on_start(self, ctx: Context) -> None:
        self.inst = -1
        self.quotes = {BUY: Quote(), SELL: Quote()}
        self.cancels = dict.fromkeys(CANCEL_REASONS, 0)  #: cancels sent, by reason

    def cancel_summary(self) -> dict[str, int]:
        """Cancels sent in the last run by reason, on either path (the fast path counts them
        in its state words, which the engine hands back as ``compiled_state``)."""
        if self.compiled_state is not None:
            return cancel_counts(self.compiled_state)
        return dict(self.cancels)

    # --- the queue estimate ------------------------------------------------------------------
    def on_trade(self, ctx: Context, inst: int) -> None:
        px, qty, aggressor = ctx.last_trade(inst)
        for side, q in self.quotes.items():
            if not (q.oid and q.acked) or aggressor == side:
                continue  # our bid is hit by sellers, our ask lifted by buyers
            if px == q.price:
                q.ahead = max(0, q.ahead - qty)
                q.traded += qty
            elif (px - q.price) * side < 0:
                q.ahead = 0  # traded through our price: nothing can be left ahead

    def on_book(self, ctx: Context, inst: int) -> None:
        self.inst = inst
        for side, q in self.quotes.items():
            touch = ctx.best_bid(inst) if side == BUY else ctx.best_ask(inst)
            if q.oid and q.acked and q.price == touch:
                self._level_changed(q, ctx.bid_qty(inst) if side == BUY else ctx.ask_qty(inst))
        self._quote(ctx)

    @staticmethod
    def _level_changed(q: Quote, size: int) -> None:
        """Our level is now ``size`` lots: trades explain part of a drop, the rest are
        cancels spread pro rata over the queue; growth joins behind us."""
        drop = q.level - size
        if drop > 0:
            by_trades = min(drop, q.traded)
            q.traded -= by_trades
            others, base = drop - by_trades, q.level - by_trades
            if others > 0 and base > 0:
                q.ahead -= others * q.ahead // base
        q.level = size
        q.ahead = min(q.ahead, size)

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        for side, q in self.quotes.items():
            if update.kind == "ack" and q.oid == update.order_id:
                # we joined the back of the level as it is now
                q.acked = True
                q.ahead = q.level = self._level_size(ctx, side, q.price)
                q.traded = 0
        self._quote(ctx)

    def on_fill(self, ctx: Context, fill: FillInfo) -> None:
        q = self.quotes[fill.side]
        if q.oid == fill.order_id:
            q.ahead = 0  # a partial fill: we are at the front
        self._quote(ctx)

    def _level_size(self, ctx: Context, side: int, price: int) -> int:
        for px, qty in ctx.depth(self.inst, side, DEPTH_LEVELS).tolist():
            if px == price:
                return int(qty)
        return 0

    # --- quoting -----------------------------------------------------------------------------
    def _quote(self, ctx: Context) -> None:
        inst = self.inst
        if inst < 0:
            return
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        if bb == NO_PRICE or ba == NO_PRICE or bb >= ba:
            return
        bq, aq = ctx.bid_qty(inst), ctx.ask_qty(inst)
        imbalance = (bq - aq) / (bq + aq)
        theta = self.params.imbalance_cancel
        pos = ctx.position(inst)
        open_buy, open_sell = ctx.open_qty(inst)
        buy = (BUY, bb, bq, theta > 0 and imbalance <= -theta, pos + open_buy)
        sell = (SELL, ba, aq, theta > 0 and imbalance >= theta, open_sell - pos)
        ask = self.quotes[SELL]
        # the side whose quote the other's new price would cross goes first: its cancel
        # reaches the venue before the new order (self-trade prevention counts it gone)
        for args in (sell, buy) if ask.oid and bb >= ask.price else (buy, sell):
            self._side(ctx, *args)

    def _side(
        self, ctx: Context, side: int, touch: int, size: int, adverse: bool, exposure: int
    ) -> None:
        """Keep, pull or place one side's order (``exposure``: worst-case |position| on it)."""
        p, q = self.params, self.quotes[side]
        if q.canceling and not ctx.is_live(q.canceling):
            q.canceling = 0
        if q.oid and not ctx.is_live(q.oid):
            q.oid = 0  # filled, cancelled or rejected
        too_long = p.max_queue_ahead > 0 and q.ahead > p.max_queue_ahead
        if q.oid:
            if q.price != touch:
                reason = "touch_moved"
            elif adverse:
                reason = "imbalance"
            elif q.acked and too_long:
                reason = "queue"
            elif exposure > p.max_position:
                reason = "inventory"
            else:
                return  # nothing relevant changed: keep the queue place
            ctx.cancel(q.oid)
            self.cancels[reason] += 1
            q.canceling, q.oid = q.oid, 0
        qty = min(p.order_qty, p.max_position - exposure)
        crowded = p.max_queue_ahead > 0 and size > p.max_queue_ahead
        if qty > 0 and not q.canceling and not adverse and not crowded:
            new = ctx.submit(self.inst, side, touch, qty, tif="post_only")
            if new > 0:
                q.placed(new, touch, size)
