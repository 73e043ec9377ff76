"""Avellaneda–Stoikov market maker: quotes around an inventory-skewed reservation price.

Avellaneda & Stoikov (2008) quote not around the mid ``m`` but around a *reservation price*
that leans against the inventory ``q`` (lots), with a half-spread that widens with volatility
and risk aversion::

    r = m - q * gamma * sigma2 * tau
    delta = gamma * sigma2 * tau / 2 + ln(1 + gamma / k) / gamma
    bid = r - delta,   ask = r + delta

Everything is in ticks: ``sigma2`` is the variance rate of the mid (ticks^2 per second),
``gamma`` the risk aversion (per tick per lot), ``k`` how fast fill intensity decays with the
distance from the mid (per tick), ``tau`` a rolling horizon in seconds (the model's
``T - t`` held constant, as for a market maker without an end of day). ``m`` is the mid, or
the microprice with ``use_microprice``. ``sigma2`` is estimated online: an EWMA of squared
mid moves divided by an EWMA of the time between moves (realised variance per second over
the last ~1/``vol_alpha`` moves); nothing is quoted before ``warmup_moves`` moves.

Quotes are rounded to the nearest tick, never cross the touch, and are sent post-only. A
resting quote is left alone -- it keeps its place in the queue -- until the wanted price
moves by ``requote_ticks`` or more. A side is not quoted when its fill could take the
position past ``max_position`` (counting every lot still open, including orders whose cancel
is in flight); once equity falls below ``-stop_loss`` only the side that reduces the
position is quoted. The RiskLimits ``max_loss`` kill switch is the hard backstop.

The logic is written twice, as plain Python (flexible path) and as numba callbacks (fast
path); the formula itself is one compiled function both call. The tests check both paths
give identical orders, fills and PnL.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from framework.arena.enums import ST_NONE, TIF_POST_ONLY
from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import CompiledCallbacks, Params, Strategy, nb, param
from framework.strategy.context import Context, FillInfo, OrderUpdate

NO_PRICE = nb.NO_PRICE


class AvellanedaStoikovParams(Params):
    order_qty: int = param(1, ge=1, note="lots")  #: lots per quote
    #: lots; a side whose fill could pass it is not quoted
    max_position: int = param(5, ge=1, note="lots")
    gamma: float = param(0.5, gt=0, note="risk aversion per tick per lot")
    #: decay of fill intensity with distance from the mid, per tick
    k: float = param(1.5, gt=0, note="fill-intensity decay per tick")
    #: tau, seconds: how long inventory is expected to be held
    horizon_s: float = param(10.0, gt=0, note="seconds")
    #: EWMA weight of each new mid move in the variance estimate
    vol_alpha: float = param(0.05, gt=0, le=1)
    warmup_moves: int = param(10, ge=1)  #: mid moves seen before the first quote
    use_microprice: bool = False  #: centre on the microprice instead of the mid
    #: move a resting quote only when its price is this far off
    requote_ticks: int = param(1, ge=1, note="ticks")
    #: currency; below -stop_loss equity only reduce (0: off)
    stop_loss: float = param(250.0, ge=0, note="currency; 0 switches it off")


# --- the model: compiled, called by both paths ------------------------------------------------
@njit(cache=True)
def variance_step(
    ewm_dm2: float, ewm_dt: float, dmid: float, dt_s: float, alpha: float
) -> tuple[float, float]:
    """Fold one mid move (``dmid`` ticks, ``dt_s`` s after the last) into the two EWMAs;
    their ratio ``ewm_dm2 / ewm_dt`` is the variance rate in ticks^2 per second."""
    return ewm_dm2 + alpha * (dmid * dmid - ewm_dm2), ewm_dt + alpha * (dt_s - ewm_dt)


@njit(cache=True)
def variance_rate(ewm_dm2: float, ewm_dt: float) -> float:
    """sigma^2 in ticks^2 per second (0 while no time has passed between moves)."""
    return ewm_dm2 / ewm_dt if ewm_dt > 0.0 else 0.0


@njit(cache=True)
def microprice(bb: int, ba: int, bq: int, aq: int) -> float:
    """Touch prices weighted by the opposite side's size (leans towards the thinner side)."""
    return (bb * float(aq) + ba * float(bq)) / float(aq + bq)


@njit(cache=True)
def target_quotes(
    mid: float, q: int, sigma2: float, gamma: float, k: float, tau: float, bb: int, ba: int
) -> tuple[int, int]:
    """The Avellaneda–Stoikov bid and ask in ticks: rounded, never crossing the touch."""
    risk = gamma * sigma2 * tau
    r = mid - q * risk
    half = 0.5 * risk + math.log(1.0 + gamma / k) / gamma
    bid = min(math.floor(r - half + 0.5), ba - 1)
    ask = max(math.floor(r + half + 0.5), bb + 1, bid + 1)
    return bid, ask


# --- fast path: numba callbacks over an int64 state array --------------------------------------
# int64 words; S_DM2 and S_DT hold float64s (the state array viewed as float64)
S_BID, S_ASK = 0, 3  #: three words each: order id, price, id of a cancel in flight
S_INST, S_LAST_MID2, S_LAST_TS, S_MOVES, S_STOPPED, S_DM2, S_DT = 6, 7, 8, 9, 10, 11, 12
STATE_SIZE = 13


@njit(cache=True)
def _side_nb(ctx, sid, inst, side, want, exposure, limit, p, s, w) -> None:
    """Keep, move or place one side's quote (``exposure``: worst-case |position| on it);
    words ``w``, ``w + 1``, ``w + 2`` hold the quote's id, its price, a cancel in flight."""
    if s[w] != 0 and nb.order_status(ctx, sid, s[w]) == ST_NONE:
        s[w] = 0  # filled, cancelled or rejected
    if s[w + 2] != 0 and nb.order_status(ctx, sid, s[w + 2]) == ST_NONE:
        s[w + 2] = 0
    if s[w] != 0:
        if exposure <= limit and abs(want - s[w + 1]) < p.requote_ticks:
            return  # close enough: keep the queue place
        nb.cancel(ctx, sid, s[w])
        s[w + 2] = s[w]
        s[w] = 0
    qty = min(p.order_qty, limit - exposure)
    if qty > 0 and s[w + 2] == 0:  # one order per side: replace once the cancel is done
        new = nb.submit(ctx, sid, inst, side, want, qty, TIF_POST_ONLY)
        if new > 0:
            s[w] = new
            s[w + 1] = want


@njit(cache=True)
def _quote_nb(ctx, sid, p, s) -> None:
    if s[S_INST] == 0 or s[S_MOVES] < p.warmup_moves:
        return
    inst = s[S_INST] - 1
    bb = nb.best_bid(ctx, inst)
    ba = nb.best_ask(ctx, inst)
    if bb == NO_PRICE or ba == NO_PRICE or bb >= ba:
        return
    if s[S_STOPPED] == 0 and p.stop_loss > 0 and nb.equity(ctx, sid) < -p.stop_loss:
        s[S_STOPPED] = 1
    limit = 0 if s[S_STOPPED] else p.max_position
    pos = nb.position(ctx, sid, inst)
    if p.use_microprice:
        mid = microprice(bb, ba, nb.bid_qty(ctx, inst), nb.ask_qty(ctx, inst))
    else:
        mid = 0.5 * (bb + ba)
    f = s.view(np.float64)
    sigma2 = variance_rate(f[S_DM2], f[S_DT])
    bid, ask = target_quotes(mid, pos, sigma2, p.gamma, p.k, p.horizon_s, bb, ba)
    exp_buy = pos + nb.open_buy_qty(ctx, sid, inst)
    exp_sell = nb.open_sell_qty(ctx, sid, inst) - pos
    _side_nb(ctx, sid, inst, BUY, bid, exp_buy, limit, p, s, S_BID)
    _side_nb(ctx, sid, inst, SELL, ask, exp_sell, limit, p, s, S_ASK)


@njit(cache=True)
def as_on_book(ctx, sid, inst, p, s) -> None:
    s[S_INST] = inst + 1
    bb = nb.best_bid(ctx, inst)
    ba = nb.best_ask(ctx, inst)
    if bb == NO_PRICE or ba == NO_PRICE or bb >= ba:
        return
    mid2 = bb + ba
    if mid2 != s[S_LAST_MID2]:
        now = nb.now(ctx)
        if s[S_LAST_MID2] != 0:
            f = s.view(np.float64)
            alpha = 1.0 if s[S_MOVES] == 0 else p.vol_alpha
            dm2, dt = variance_step(
                f[S_DM2], f[S_DT], 0.5 * (mid2 - s[S_LAST_MID2]), (now - s[S_LAST_TS]) * 1e-9,
                alpha,
            )
            f[S_DM2] = dm2
            f[S_DT] = dt
            s[S_MOVES] += 1
        s[S_LAST_MID2] = mid2
        s[S_LAST_TS] = now
    _quote_nb(ctx, sid, p, s)


@njit(cache=True)
def as_on_fill(ctx, sid, oid, side, price, qty, p, s) -> None:
    _quote_nb(ctx, sid, p, s)  # the inventory changed: so do the reservation price and limits


@njit(cache=True)
def as_on_order(ctx, sid, oid, kind, reason, p, s) -> None:
    _quote_nb(ctx, sid, p, s)  # a cancel or reject freed room for a quote


# --- the strategy class and its flexible path -----------------------------------------------------
class AvellanedaStoikov(Strategy):
    """Quote around an inventory-skewed reservation price with a volatility-scaled spread."""

    Params = AvellanedaStoikovParams
    risk = RiskLimits(max_position=10, max_open_orders=4, max_orders_per_s=200, max_loss=500.0)
    compiled = CompiledCallbacks(
        on_book=as_on_book, on_fill=as_on_fill, on_order=as_on_order, state_size=STATE_SIZE
    )
    params: AvellanedaStoikovParams

    def on_start(self, ctx: Context) -> None:
        self.inst = -1
        #: side -> (order id, its price, id of the order whose cancel is in flight)
        self.quotes = {BUY: (0, 0, 0), SELL: (0, 0, 0)}
        self.last_mid2 = 0  #: bid + ask at the last mid move (half-ticks)
        self.last_move_ts = 0
        self.moves = 0
        self.ewm_dm2 = self.ewm_dt = 0.0
        self.stopped = False

    def on_book(self, ctx: Context, inst: int) -> None:
        self.inst = inst
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        if bb == NO_PRICE or ba == NO_PRICE or bb >= ba:
            return
        mid2 = bb + ba
        if mid2 != self.last_mid2:
            if self.last_mid2 != 0:
                alpha = 1.0 if self.moves == 0 else self.params.vol_alpha
                self.ewm_dm2, self.ewm_dt = variance_step(
                    self.ewm_dm2,
                    self.ewm_dt,
                    0.5 * (mid2 - self.last_mid2),
                    (ctx.now - self.last_move_ts) * 1e-9,
                    alpha,
                )
                self.moves += 1
            self.last_mid2, self.last_move_ts = mid2, ctx.now
        self._quote(ctx)

    def on_fill(self, ctx: Context, fill: FillInfo) -> None:
        self._quote(ctx)

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        self._quote(ctx)

    def _quote(self, ctx: Context) -> None:
        p, inst = self.params, self.inst
        if inst < 0 or self.moves < p.warmup_moves:
            return
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        if bb == NO_PRICE or ba == NO_PRICE or bb >= ba:
            return
        if not self.stopped and p.stop_loss > 0 and ctx.equity() < -p.stop_loss:
            self.stopped = True
        limit = 0 if self.stopped else p.max_position
        pos = ctx.position(inst)
        if p.use_microprice:
            mid = microprice(bb, ba, ctx.bid_qty(inst), ctx.ask_qty(inst))
        else:
            mid = 0.5 * (bb + ba)
        sigma2 = variance_rate(self.ewm_dm2, self.ewm_dt)
        bid, ask = target_quotes(mid, pos, sigma2, p.gamma, p.k, p.horizon_s, bb, ba)
        open_buy, open_sell = ctx.open_qty(inst)
        self._side(ctx, BUY, bid, pos + open_buy, limit)
        self._side(ctx, SELL, ask, open_sell - pos, limit)

    def _side(self, ctx: Context, side: int, want: int, exposure: int, limit: int) -> None:
        """Keep, move or place one side's quote (``exposure``: worst-case |position| on it)."""
        p = self.params
        oid, px, canceling = self.quotes[side]
        if oid and not ctx.is_live(oid):
            oid = 0  # filled, cancelled or rejected
        if canceling and not ctx.is_live(canceling):
            canceling = 0
        if oid:
            if exposure <= limit and abs(want - px) < p.requote_ticks:
                self.quotes[side] = (oid, px, canceling)
                return  # close enough: keep the queue place
            ctx.cancel(oid)
            oid, canceling = 0, oid
        qty = min(p.order_qty, limit - exposure)
        if qty > 0 and not canceling:  # one order per side: replace once the cancel is done
            new = ctx.submit(self.inst, side, want, qty, tif="post_only")
            if new > 0:
                oid, px = new, want
        self.quotes[side] = (oid, px, canceling)
