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
with several) and keeps one order working at a time. Python path only: the compiled API has
no access to the last trade yet.
"""

from __future__ import annotations

from framework.core.errors import ConfigError
from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import Params, Strategy, nb
from framework.strategy.context import Context, FillInfo

NO_PRICE = nb.NO_PRICE
MODES = ("momentum", "reversion")


class TradeFlowParams(Params):
    """Parameters; sizes in lots, times in milliseconds."""

    mode: str = "momentum"  #: "momentum" follows the aggressors, "reversion" fades them
    halflife_ms: float = 2_000.0  #: a trade's weight in the flow halves this often
    threshold: float = 0.6  #: |flow imbalance| needed to trade, in (0, 1]
    min_trades: float = 5.0  #: decayed trade count needed before the flow counts
    order_qty: int = 1  #: lots per entry
    max_position: int = 1  #: lots, long or short
    hold_ms: float = 10_000.0  #: close the position this long after it was opened

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            msg = f"mode={self.mode!r} is unknown; choose one of {MODES}"
            raise ConfigError(msg)
        if not 0 < self.threshold <= 1:
            msg = f"threshold={self.threshold} must lie in (0, 1] (a flow imbalance)"
            raise ConfigError(msg)
        if self.halflife_ms <= 0 or self.hold_ms <= 0 or self.min_trades < 0:
            msg = (
                f"halflife_ms={self.halflife_ms} and hold_ms={self.hold_ms} must be > 0, "
                f"min_trades={self.min_trades} >= 0"
            )
            raise ConfigError(msg)
        if self.order_qty < 1 or self.max_position < self.order_qty:
            msg = (
                f"order_qty={self.order_qty}, max_position={self.max_position}: need "
                "1 <= order_qty <= max_position"
            )
            raise ConfigError(msg)


class TradeFlow(Strategy):
    """Follow (momentum) or fade (reversion) the recent aggressor flow; timer exit."""

    Params = TradeFlowParams
    risk = RiskLimits(max_position=5, max_open_orders=2, max_orders_per_s=50)

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
