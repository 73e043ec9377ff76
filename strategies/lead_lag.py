"""Lead-lag: trade the lagging instrument when the leader has moved and it has not yet.

Two instruments price the same thing -- one symbol on two venues, a future and its
underlying -- but one of them, the *leader*, reprices first (Binance USD-M BTCUSDT
futures lead spot BTCUSDT). The strategy watches the gap between the two mids,
``1e4 * log(leader mid / lagger mid)`` in basis points, against its slow running mean, the
*basis* (an exponential average with half-life ``basis_half_life_s``; it absorbs any fixed
price ratio, tick sizes included). When a leader update leaves the gap more than
``entry_bps`` from the basis, the lagger's quotes are stale: buy it (the leader moved up)
or sell it (down) with an IOC order at its touch. The position is closed with a market
order once the gap is back within ``exit_bps`` (the lagger caught up) or after
``max_hold_ms``. One trade per move: the strategy re-arms only when the gap has come back.

Why lead-lag rather than pairs: two venues of one symbol share one price, so the spread
between them has no mean-reversion to bet on beyond the moments one venue is late -- which
is exactly what lead-lag trades, and what the multi-instrument replay (both books merged by
time, each seen at its own local time) makes testable.

The same logic is written twice: plain Python (flexible path) and numba (fast path,
``compiled``; :meth:`LeadLag.compiled_params` turns ``leader``/``lagger`` into the run's
instrument indices, so ``p.leader``/``p.lagger`` are ints there). Both paths get the gap and
the basis update from the same compiled functions (:func:`gap_bps`, :func:`basis_step`), so
the basis is the same to the last bit; the tests check they give identical orders, fills,
equity and positions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from numba import njit

from framework.core.errors import ConfigError
from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import CompiledCallbacks, Params, Strategy, nb, param
from framework.strategy.context import Context

NO_PRICE = nb.NO_PRICE  # what best_bid/best_ask return for an empty side
#: the basis weight's base, passed to :func:`basis_step` rather than written there as a
#: literal: LLVM rewrites ``0.5 ** x`` as ``exp2(-x)``, which differs from the libm ``pow``
#: CPython calls in the last bit for about one x in a thousand
HALF = 0.5

# state words of the compiled version: int64, but for S_BASIS and S_HALF, which hold float64s
# (the state array viewed as float64)
S_BASIS_TS, S_ARMED, S_ENTRY_TS, S_BASIS, S_HALF = range(5)
STATE_SIZE = 5


#: an instrument key: VENUE/SYMBOL
_KEY = {"pattern": r"[^/\s]+/[^/\s]+", "example": "VENUE/SYMBOL (e.g. BINANCE/BTCUSDT)"}


class LeadLagParams(Params):
    #: VENUE/SYMBOL of the instrument that moves first
    leader: str = param("BINANCE_USDM/BTCUSDT", **_KEY)
    lagger: str = param("BINANCE/BTCUSDT", **_KEY)  #: VENUE/SYMBOL of the one we trade
    #: enter when the gap leaves the basis by more than this
    entry_bps: float = param(1.0, gt=0, note="bps")
    #: exit (and re-arm) when it is back within this (less than entry_bps)
    exit_bps: float = param(0.2, ge=0, note="bps, below entry_bps")
    #: half-life of the gap's running mean
    basis_half_life_s: float = param(60.0, gt=0, note="seconds")
    #: close the position after this long in any case
    max_hold_ms: float = param(2_000.0, gt=0, note="ms")
    #: lots of the lagger per trade (the position never exceeds it)
    order_qty: int = param(1, ge=1, note="lots")


# --- the float arithmetic, shared by both paths ----------------------------------------------
@njit(cache=True)
def gap_bps(lead_bid: int, lead_ask: int, lag_bid: int, lag_ask: int) -> float:
    """1e4 * log(leader mid / lagger mid) from the two touches, NaN while a side is empty."""
    if lead_bid == NO_PRICE or lead_ask == NO_PRICE or lag_bid == NO_PRICE or lag_ask == NO_PRICE:
        return math.nan
    return 1e4 * math.log((lead_bid + lead_ask) / (lag_bid + lag_ask))


@njit(cache=True)
def basis_step(basis: float, gap: float, elapsed_ns: int, half_life_s: float, half: float) -> float:
    """The basis after ``gap`` was seen ``elapsed_ns`` after the last update: it moves
    towards the gap by a weight ``1 - half ** (elapsed / half-life)`` (``half`` is 0.5)."""
    w = 1.0 - half ** (elapsed_ns / (half_life_s * 1e9))
    return basis + w * (gap - basis)


# --- fast path ------------------------------------------------------------------------------
@njit(cache=True)
def lead_lag_on_start(ctx, sid, p, s) -> None:
    f = s.view(np.float64)
    f[S_BASIS] = math.nan  # running mean of the gap, bps
    s[S_BASIS_TS] = 0
    s[S_ARMED] = 1
    s[S_ENTRY_TS] = 0
    f[S_HALF] = HALF  # read back at run time, so LLVM keeps the pow call (see HALF)


@njit(cache=True)
def lead_lag_on_book(ctx, sid, inst, p, s) -> None:
    lead, lag = p.leader, p.lagger  # instrument indices (LeadLag.compiled_params)
    f = s.view(np.float64)
    gap = gap_bps(
        nb.best_bid(ctx, lead), nb.best_ask(ctx, lead),
        nb.best_bid(ctx, lag), nb.best_ask(ctx, lag),
    )  # fmt: skip
    now = nb.now(ctx)
    if math.isnan(gap):
        return
    if math.isnan(f[S_BASIS]):
        f[S_BASIS] = gap
        s[S_BASIS_TS] = now
        return
    dev = gap - f[S_BASIS]  # judged against the basis *before* this update
    f[S_BASIS] = basis_step(f[S_BASIS], gap, now - s[S_BASIS_TS], p.basis_half_life_s, f[S_HALF])
    s[S_BASIS_TS] = now
    if nb.open_orders(ctx, sid, lag):
        return  # an order is on its way: wait for its fill or cancel
    pos = nb.position(ctx, sid, lag)
    if pos == 0:
        if abs(dev) <= p.exit_bps:
            s[S_ARMED] = 1
        elif s[S_ARMED] != 0 and inst == lead and abs(dev) > p.entry_bps:
            side = BUY if dev > 0 else SELL
            price = nb.best_ask(ctx, lag) if side == BUY else nb.best_bid(ctx, lag)
            if nb.submit(ctx, sid, lag, side, price, p.order_qty, nb.TIF_IOC) > 0:
                s[S_ARMED] = 0
                s[S_ENTRY_TS] = now
    else:
        caught_up = (dev if pos > 0 else -dev) <= p.exit_bps
        if caught_up or now - s[S_ENTRY_TS] >= p.max_hold_ms * 1e6:
            nb.submit_market(ctx, sid, lag, SELL if pos > 0 else BUY, abs(pos), nb.TIF_IOC)


# --- the strategy (flexible path) -------------------------------------------------------------
class LeadLag(Strategy):
    """Buy (sell) the lagger when a leader update pushes the gap above (below) the basis."""

    Params = LeadLagParams
    params: LeadLagParams
    #: one clip at a time: max_position is set to order_qty when the strategy is built
    risk = RiskLimits(max_open_orders=2, max_orders_per_s=20, order_burst=5)
    compiled = CompiledCallbacks(
        on_start=lead_lag_on_start, on_book=lead_lag_on_book, state_size=STATE_SIZE
    )

    def __init__(
        self,
        params: LeadLagParams | dict[str, Any] | None = None,
        *,
        risk: RiskLimits | dict[str, Any] | None = None,
        instruments: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(params, risk=risk, name=name)
        p = self.params
        if p.leader == p.lagger:
            msg = f"leader and lagger are both {p.leader!r}; name two instruments"
            raise ConfigError(msg)
        if not p.exit_bps < p.entry_bps:
            msg = f"lead_lag needs 0 <= exit_bps < entry_bps, got {p.exit_bps} and {p.entry_bps}"
            raise ConfigError(msg)
        self.instruments = instruments or [p.leader, p.lagger]
        if risk is None:
            self.risk_limits = dataclasses.replace(self.risk_limits, max_position=p.order_qty)

    def compiled_params(self, instrument_keys: list[str]) -> dict[str, Any]:
        """``leader`` and ``lagger`` as indices among the run's instruments (for numba)."""
        p = self.params
        missing = [k for k in (p.leader, p.lagger) if k not in instrument_keys]
        if missing:
            msg = f"strategy {self.name} names instrument(s) {missing} not in this run"
            raise ConfigError(msg)
        return {
            "leader": instrument_keys.index(p.leader),
            "lagger": instrument_keys.index(p.lagger),
        }

    def on_start(self, ctx: Context) -> None:
        keys = [i.key for i in ctx.instruments]
        self.lead, self.lag = keys.index(self.params.leader), keys.index(self.params.lagger)
        self.basis = math.nan  # running mean of the gap, bps
        self.basis_ts = 0
        self.armed = True
        self.entry_ts = 0

    def _gap(self, ctx: Context) -> float:
        """1e4 * log(leader mid / lagger mid), NaN while a book is one-sided."""
        return gap_bps(ctx.best_bid(self.lead), ctx.best_ask(self.lead),
                       ctx.best_bid(self.lag), ctx.best_ask(self.lag))  # fmt: skip

    def on_book(self, ctx: Context, inst: int) -> None:
        p = self.params
        gap, now = self._gap(ctx), ctx.now
        if math.isnan(gap):
            return
        if math.isnan(self.basis):
            self.basis, self.basis_ts = gap, now
            return
        dev = gap - self.basis  # judged against the basis *before* this update
        self.basis = basis_step(self.basis, gap, now - self.basis_ts, p.basis_half_life_s, HALF)
        self.basis_ts = now
        if ctx.open_order_count(self.lag):
            return  # an order is on its way: wait for its fill or cancel
        pos = ctx.position(self.lag)
        if pos == 0:
            if abs(dev) <= p.exit_bps:
                self.armed = True
            elif self.armed and inst == self.lead and abs(dev) > p.entry_bps:
                side = BUY if dev > 0 else SELL
                price = ctx.best_ask(self.lag) if side == BUY else ctx.best_bid(self.lag)
                if ctx.submit(self.lag, side, price, p.order_qty, tif="ioc") > 0:
                    self.armed = False
                    self.entry_ts = now
        else:
            caught_up = (dev if pos > 0 else -dev) <= p.exit_bps
            if caught_up or now - self.entry_ts >= p.max_hold_ms * 1e6:
                ctx.submit_market(self.lag, SELL if pos > 0 else BUY, abs(pos))


__all__ = ["LeadLag", "LeadLagParams", "basis_step", "gap_bps"]
