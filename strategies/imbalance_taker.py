"""Book-imbalance taker: cross the spread when the touch predicts a move bigger than the cost.

The idea: a lopsided touch (much more size on the bid than on the ask, or the reverse) tends
to precede a move toward the thin side. The touch imbalance ``(bid_qty - ask_qty) /
(bid_qty + ask_qty)`` is in [-1, 1]; the microprice leans from the mid by ``imbalance x
half-spread``. This strategy predicts the move of the mid over the holding time as

    predicted move (ticks) = move_per_imbalance x imbalance

and trades only when that beats what the round trip costs: crossing the spread on the way in
and again on the way out (half a spread plus the taker fee each way, i.e. the spread plus two
taker fees, in ticks), plus ``margin_ticks``, and only once the signal has held for
``confirm_ms`` over every touch update: a touch that one trade has just thinned is usually
refilled sooner than that, while an imbalance that carries information persists. An entry is
a marketable limit at the far touch, immediate-or-cancel, so it never pays more than the
price it saw. The position is closed with
a market order ``hold_ms`` after it was opened (a timer), or earlier when it has lost
``stop_ticks`` per lot against the touch it would exit at (a stop).

The strategy trades one instrument (the first whose book it sees; pass ``instruments=[key]``
in a run with several) and keeps one order working at a time. The same logic is written twice:
plain Python (flexible path) and numba (fast path, ``compiled``); the tests check both give
identical orders, fills and PnL.
"""

from __future__ import annotations

from numba import njit

from framework.arena.enums import TIF_IOC
from framework.core.errors import ConfigError
from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import CompiledCallbacks, Params, Strategy, nb, param
from framework.strategy.context import Context, FillInfo

NO_PRICE = nb.NO_PRICE

# state words of the compiled version
S_INST, S_OID, S_COST, S_EXITING, S_SIGNAL, S_SINCE = range(6)


class ImbalanceTakerParams(Params):
    """Parameters; prices and costs in ticks, sizes in lots."""

    #: predicted mid move (ticks) at a fully one-sided touch
    move_per_imbalance: float = param(2.0, gt=0, note="ticks")
    margin_ticks: float = param(0.8, ge=0)  #: edge required beyond the round-trip cost
    #: the signal must hold this long before the taker acts
    confirm_ms: float = param(100.0, ge=0, note="ms")
    #: the taker fee counted in the cost, bps of the price; -1: the instrument's own rate
    taker_fee_bps: float = param(-1.0, ge=0, also=(-1,), note="bps; -1: the instrument's")
    order_qty: int = param(1, ge=1, note="lots")  #: lots per entry
    max_position: int = param(1, ge=1, note="lots")  #: lots, long or short
    #: close the position this long after it was opened
    hold_ms: float = param(5_000.0, gt=0, note="ms")
    #: close when the loss per lot reaches this many ticks
    stop_ticks: int = param(3, ge=1, note="ticks")

    def __post_init__(self) -> None:
        if self.max_position < self.order_qty:
            msg = (
                f"order_qty={self.order_qty}, max_position={self.max_position}: need "
                "1 <= order_qty <= max_position"
            )
            raise ConfigError(msg)


@njit(cache=True)
def fee_rate(p, instrument_rate: float) -> float:
    """The taker fee rate the cost counts: the parameter's, or the instrument's at -1."""
    return instrument_rate if p.taker_fee_bps == -1 else p.taker_fee_bps * 1e-4


@njit(cache=True)
def entry_side(bb: int, ba: int, bq: int, aq: int, p, rate: float) -> int:
    """+1 (buy), -1 (sell) or 0: does the predicted move beat the round-trip cost?
    ``rate`` is the taker fee as a fraction of the price (see :func:`fee_rate`)."""
    if bq + aq <= 0:
        return 0
    predicted = p.move_per_imbalance * (bq - aq) / (bq + aq)
    fee = rate * 0.5 * (bb + ba)  # one taker fee, in ticks
    need = (ba - bb) + 2.0 * fee + p.margin_ticks
    if predicted > need:
        return BUY
    if -predicted > need:
        return SELL
    return 0


@njit(cache=True)
def stopped(pos: int, cost: int, bb: int, ba: int, stop_ticks: int) -> bool:
    """Has the open position lost ``stop_ticks`` per lot, marked at the touch it exits at?
    ``cost`` is the signed sum of price x qty of the fills that built the position."""
    mark = bb if pos > 0 else ba
    return pos * mark - cost <= -stop_ticks * abs(pos)


# --- fast path ----------------------------------------------------------------------------
@njit(cache=True)
def _nb_exit(ctx, sid, inst, s) -> None:
    pos = nb.position(ctx, sid, inst)
    if pos != 0:
        oid = nb.submit_market(ctx, sid, inst, SELL if pos > 0 else BUY, abs(pos), TIF_IOC)
        s[S_OID] = oid if oid > 0 else 0


@njit(cache=True)
def taker_on_book(ctx, sid, inst, p, s) -> None:
    if s[S_INST] < 0:
        s[S_INST] = inst
    if inst != s[S_INST]:
        return
    bb = nb.best_bid(ctx, inst)
    ba = nb.best_ask(ctx, inst)
    if bb == NO_PRICE or ba == NO_PRICE:
        return
    rate = fee_rate(p, nb.taker_fee(ctx, inst))
    want = entry_side(bb, ba, nb.bid_qty(ctx, inst), nb.ask_qty(ctx, inst), p, rate)
    if want != s[S_SIGNAL]:  # the signal changed: its confirmation clock restarts
        s[S_SIGNAL] = want
        s[S_SINCE] = nb.now(ctx)
    if s[S_OID] != 0 and nb.order_status(ctx, sid, s[S_OID]) != 0:
        return  # one order at a time: wait for the working one to finish
    s[S_OID] = 0
    pos = nb.position(ctx, sid, inst)
    if pos != 0 and (s[S_EXITING] or stopped(pos, s[S_COST], bb, ba, p.stop_ticks)):
        s[S_EXITING] = 1
        _nb_exit(ctx, sid, inst, s)
        return
    held = nb.now(ctx) - s[S_SINCE] >= int(p.confirm_ms * 1e6)
    room = p.max_position - abs(pos)
    if want != 0 and held and want * pos >= 0 and room > 0:
        price = ba if want == BUY else bb
        oid = nb.submit(ctx, sid, inst, want, price, min(p.order_qty, room), TIF_IOC)
        s[S_OID] = oid if oid > 0 else 0


@njit(cache=True)
def taker_on_fill(ctx, sid, oid, side, price, qty, p, s) -> None:
    pos = nb.position(ctx, sid, s[S_INST])
    if pos == 0:
        s[S_COST] = 0
        s[S_EXITING] = 0
        nb.set_timer(ctx, sid, 0)  # flat: no exit pending
        return
    if pos - side * qty == 0:  # this fill opened the position: start the holding clock
        nb.set_timer(ctx, sid, 0, int(p.hold_ms * 1e6))
    s[S_COST] += side * price * qty


@njit(cache=True)
def taker_on_timer(ctx, sid, p, s) -> None:
    s[S_EXITING] = 1
    if s[S_OID] != 0 and nb.order_status(ctx, sid, s[S_OID]) != 0:
        return  # the exit goes out on the next book update
    s[S_OID] = 0
    _nb_exit(ctx, sid, s[S_INST], s)


@njit(cache=True)
def taker_on_start(ctx, sid, p, s) -> None:
    s[S_INST] = -1


# --- the strategy (flexible path) -----------------------------------------------------------
class ImbalanceTaker(Strategy):
    """Take liquidity when the touch imbalance predicts a move beyond the round-trip cost."""

    Params = ImbalanceTakerParams
    risk = RiskLimits(max_position=5, max_open_orders=2, max_orders_per_s=50)
    compiled = CompiledCallbacks(
        on_start=taker_on_start,
        on_book=taker_on_book,
        on_fill=taker_on_fill,
        on_timer=taker_on_timer,
        state_size=6,
    )

    def on_start(self, ctx: Context) -> None:
        self.inst = -1  #: the instrument traded
        self.oid = 0  #: the working order (0: none)
        self.cost = 0  #: signed sum of price x qty of the open position's fills (ticks x lots)
        self.exiting = False  #: closing the position, whatever the signal says
        self.signal = 0  #: the last signal (+1 buy, -1 sell, 0 none) ...
        self.since = 0  #: ... and since when it has held (ns)

    def _busy(self, ctx: Context) -> bool:
        if self.oid and ctx.is_live(self.oid):
            return True
        self.oid = 0
        return False

    def _exit(self, ctx: Context) -> None:
        pos = ctx.position(self.inst)
        if pos:
            oid = ctx.submit_market(self.inst, SELL if pos > 0 else BUY, abs(pos), tif="ioc")
            self.oid = max(oid, 0)

    def on_book(self, ctx: Context, inst: int) -> None:
        if self.inst < 0:
            self.inst = inst
        if inst != self.inst:
            return
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        if bb == NO_PRICE or ba == NO_PRICE:
            return
        p = self.params
        rate = fee_rate.py_func(p, ctx.instruments[inst].taker_fee)
        want = entry_side.py_func(bb, ba, ctx.bid_qty(inst), ctx.ask_qty(inst), p, rate)
        if want != self.signal:
            self.signal, self.since = want, ctx.now
        if self._busy(ctx):
            return
        pos = ctx.position(inst)
        if pos and (self.exiting or stopped.py_func(pos, self.cost, bb, ba, p.stop_ticks)):
            self.exiting = True
            self._exit(ctx)
            return
        held = ctx.now - self.since >= int(p.confirm_ms * 1e6)
        room = p.max_position - abs(pos)
        if want and held and want * pos >= 0 and room > 0:
            price = ba if want == BUY else bb
            oid = ctx.submit(inst, want, price, min(p.order_qty, room), tif="ioc")
            self.oid = max(oid, 0)

    def on_fill(self, ctx: Context, fill: FillInfo) -> None:
        pos = ctx.position(self.inst)
        if pos == 0:
            self.cost = 0
            self.exiting = False
            ctx.set_timer(0)
            return
        if pos - fill.side * fill.qty == 0:
            ctx.set_timer(0, int(self.params.hold_ms * 1e6))
        self.cost += fill.side * fill.price * fill.qty

    def on_timer(self, ctx: Context) -> None:
        self.exiting = True
        if not self._busy(ctx):
            self._exit(ctx)


__all__ = ["ImbalanceTaker", "ImbalanceTakerParams"]
