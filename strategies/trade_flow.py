"""Trade-flow momentum / mean reversion: trade on who has been aggressing, exit on a timer.

Every trade print carries its aggressor side (``ctx.last_trade``). The strategy keeps a
time-decayed trade-flow imbalance of them,

    flow = sum(w x side x qty) / sum(w x qty)   in [-1, 1],

with weights ``w`` halving every ``halflife_ms`` (+1: only buyers lifted the offer lately,
-1: only sellers hit the bid), and a decayed count of trades, so that one print alone is not a
signal. When ``|flow| >= threshold`` over at least ``min_trades`` (decayed) trades it trades in
the direction ``mode`` chooses: ``"momentum"`` follows the aggressors (buy when buyers
dominate), ``"reversion"`` fades them. Entries are marketable limits at the far touch,
immediate-or-cancel, so they never pay more than the touch they saw. The position is closed
with a market order ``hold_ms`` after it was opened (a timer), or earlier when the signal
points the other way.

It trades one instrument (the first it sees a trade on; pass ``instruments=[key]`` in a run
with several) and keeps one order working at a time. The same logic is written twice: plain
Python (flexible path) and numba (fast path, ``compiled``, reading the print with
``nb.last_trade``). Both do the same floating-point operations in the same order, so the
decayed flow is the same to the last bit; the tests check they give identical orders, fills,
equity and positions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.arena.enums import ST_NONE, TIF_IOC
from framework.core.errors import ConfigError
from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import CompiledCallbacks, Params, Strategy, nb, param
from framework.strategy.context import Context, FillInfo

NO_PRICE = nb.NO_PRICE
MODES = ("momentum", "reversion")

# state words of the compiled version: int64, but for S_FLOW .. S_HALF, which hold float64s
# (the state array viewed as float64)
S_INST, S_OID, S_EXITING, S_DIRECTION, S_LAST_TS = range(5)
S_FLOW, S_VOLUME, S_COUNT, S_HALF = range(5, 9)
STATE_SIZE = 9


class TradeFlowParams(Params):
    """Parameters; sizes in lots, times in milliseconds."""

    #: "momentum" follows the aggressors, "reversion" fades them
    mode: str = param("momentum", choices=MODES)
    #: a trade's weight in the flow halves this often
    halflife_ms: float = param(2_000.0, gt=0, note="ms")
    #: |flow imbalance| needed to trade
    threshold: float = param(0.6, gt=0, le=1, note="a flow imbalance")
    #: decayed trade count needed before the flow counts
    min_trades: float = param(5.0, ge=0)
    order_qty: int = param(1, ge=1, note="lots")  #: lots per entry
    max_position: int = param(1, ge=1, note="lots")  #: lots, long or short
    #: close the position this long after it was opened
    hold_ms: float = param(10_000.0, gt=0, note="ms")

    def __post_init__(self) -> None:
        if self.max_position < self.order_qty:
            msg = (
                f"order_qty={self.order_qty}, max_position={self.max_position}: need "
                "1 <= order_qty <= max_position"
            )
            raise ConfigError(msg)


# --- fast path ----------------------------------------------------------------------------
@njit(cache=True)
def _nb_signal(p, s) -> int:
    """+1 (buy), -1 (sell) or 0, as ``TradeFlow.signal``."""
    f = s.view(np.float64)
    if f[S_COUNT] < p.min_trades or f[S_VOLUME] <= 0:
        return 0
    imbalance = f[S_FLOW] / f[S_VOLUME]
    if abs(imbalance) < p.threshold:
        return 0
    side = BUY if imbalance > 0 else SELL
    return side * s[S_DIRECTION]


@njit(cache=True)
def _nb_busy(ctx, sid, s) -> bool:
    """Is our one working order still live? (then we wait for it)"""
    if s[S_OID] != 0 and nb.order_status(ctx, sid, s[S_OID]) != ST_NONE:
        return True
    s[S_OID] = 0
    return False


@njit(cache=True)
def _nb_exit(ctx, sid, s) -> None:
    inst = s[S_INST]
    pos = nb.position(ctx, sid, inst)
    if pos != 0:
        s[S_EXITING] = 1
        oid = nb.submit_market(ctx, sid, inst, SELL if pos > 0 else BUY, abs(pos), TIF_IOC)
        s[S_OID] = oid if oid > 0 else 0


@njit(cache=True)
def flow_on_start(ctx, sid, p, s) -> None:
    s[S_INST] = -1
    s[S_OID] = 0
    s[S_EXITING] = 0
    s[S_DIRECTION] = 1 if p.mode == "momentum" else -1  # the one string comparison
    s[S_LAST_TS] = nb.now(ctx)
    f = s.view(np.float64)
    f[S_FLOW] = 0.0
    f[S_VOLUME] = 0.0
    f[S_COUNT] = 0.0
    f[S_HALF] = 0.5


@njit(cache=True)
def flow_on_trade(ctx, sid, inst, p, s) -> None:
    if s[S_INST] < 0:
        s[S_INST] = inst
    if inst != s[S_INST]:
        return
    _, qty, aggressor = nb.last_trade(ctx, inst)
    if qty > 0 and aggressor != 0:
        now = nb.now(ctx)
        f = s.view(np.float64)
        # 0.5 read from the state, not written as a literal: LLVM rewrites 0.5 ** x as
        # exp2(-x), which differs from the libm pow CPython's ``0.5 ** x`` calls (the Python
        # path) in the last bit for about one x in a thousand; a base it cannot see keeps
        # that same pow call, so both paths decay the flow identically, bit for bit
        w = f[S_HALF] ** ((now - s[S_LAST_TS]) / (p.halflife_ms * 1e6))
        f[S_FLOW] = f[S_FLOW] * w + aggressor * qty
        f[S_VOLUME] = f[S_VOLUME] * w + qty
        f[S_COUNT] = f[S_COUNT] * w + 1.0
        s[S_LAST_TS] = now
    if _nb_busy(ctx, sid, s):
        return
    want = _nb_signal(p, s)
    pos = nb.position(ctx, sid, inst)
    if pos != 0 and (s[S_EXITING] != 0 or want * pos < 0):
        _nb_exit(ctx, sid, s)
        return
    room = p.max_position - abs(pos)
    price = nb.best_ask(ctx, inst) if want == BUY else nb.best_bid(ctx, inst)
    if want != 0 and want * pos >= 0 and room > 0 and price != NO_PRICE:
        oid = nb.submit(ctx, sid, inst, want, price, min(p.order_qty, room), TIF_IOC)
        s[S_OID] = oid if oid > 0 else 0


@njit(cache=True)
def flow_on_fill(ctx, sid, oid, side, price, qty, p, s) -> None:
    pos = nb.position(ctx, sid, s[S_INST])
    if pos == 0:
        s[S_EXITING] = 0
        nb.set_timer(ctx, sid, 0)  # flat: no exit pending
    elif pos - side * qty == 0:  # this fill opened the position
        nb.set_timer(ctx, sid, 0, int(p.hold_ms * 1e6))


@njit(cache=True)
def flow_on_timer(ctx, sid, p, s) -> None:
    s[S_EXITING] = 1
    if not _nb_busy(ctx, sid, s):
        _nb_exit(ctx, sid, s)


# --- the strategy (flexible path) -----------------------------------------------------------
class TradeFlow(Strategy):
    """Follow (momentum) or fade (reversion) the recent aggressor flow; timer exit."""

    Params = TradeFlowParams
    risk = RiskLimits(max_position=5, max_open_orders=2, max_orders_per_s=50)
    compiled = CompiledCallbacks(
        on_start=flow_on_start,
        on_trade=flow_on_trade,
        on_fill=flow_on_fill,
        on_timer=flow_on_timer,
        state_size=STATE_SIZE,
    )

    def on_start(self, ctx: Context) -> None:
        self.inst = -1  #: the instrument traded
        self.oid = 0  #: the working order (0: none)
        self.exiting = False  #: closing the position, whatever the signal says
        self.flow = self.volume = self.count = 0.0  #: decayed signed volume, volume, trades
        self.last_ts = ctx.now

    def signal(self) -> int:
        """+1 (buy), -1 (sell) or 0, from the flow imbalance and the mode."""
        p = self.params
        if self.count < p.min_trades or self.volume <= 0:
            return 0
        imbalance = self.flow / self.volume
        if abs(imbalance) < p.threshold:
            return 0
        side = BUY if imbalance > 0 else SELL
        return side if p.mode == "momentum" else -side

    def on_trade(self, ctx: Context, inst: int) -> None:
        if self.inst < 0:
            self.inst = inst
        if inst != self.inst:
            return
        _, qty, aggressor = ctx.last_trade(inst)
        if qty > 0 and aggressor != 0:
            w = 0.5 ** ((ctx.now - self.last_ts) / (self.params.halflife_ms * 1e6))
            self.flow = self.flow * w + aggressor * qty
            self.volume = self.volume * w + qty
            self.count = self.count * w + 1.0
            self.last_ts = ctx.now
        if self._busy(ctx):
            return
        p = self.params
        want = self.signal()
        pos = ctx.position(inst)
        if pos and (self.exiting or want * pos < 0):
            self._exit(ctx)
            return
        room = p.max_position - abs(pos)
        price = ctx.best_ask(inst) if want == BUY else ctx.best_bid(inst)
        if want and want * pos >= 0 and room > 0 and price != NO_PRICE:
            oid = ctx.submit(inst, want, price, min(p.order_qty, room), tif="ioc")
            self.oid = max(oid, 0)

    def on_fill(self, ctx: Context, fill: FillInfo) -> None:
        pos = ctx.position(self.inst)
        if pos == 0:
            self.exiting = False
            ctx.set_timer(0)  # flat: no exit pending
        elif pos - fill.side * fill.qty == 0:  # this fill opened the position
            ctx.set_timer(0, int(self.params.hold_ms * 1e6))

    def on_timer(self, ctx: Context) -> None:
        self.exiting = True
        if not self._busy(ctx):
            self._exit(ctx)

    def _busy(self, ctx: Context) -> bool:
        """Is our one working order still live? (then we wait for it)"""
        if self.oid and ctx.is_live(self.oid):
            return True
        self.oid = 0
        return False

    def _exit(self, ctx: Context) -> None:
        pos = ctx.position(self.inst)
        if pos:
            self.exiting = True
            oid = ctx.submit_market(self.inst, SELL if pos > 0 else BUY, abs(pos), tif="ioc")
            self.oid = max(oid, 0)


__all__ = ["TradeFlow", "TradeFlowParams"]
