"""Helpers for the engine tests: tiny hand-written L2 tapes and a scripted strategy.

A :class:`Tape` builds an event stream one venue message at a time (the last row of each
message carries ``FLAG_LAST``); exchange and local times are explicit, so a test says exactly
when the venue and the strategy see each event. A :class:`Scripted` strategy performs
order actions at chosen local times (through its timer) and records everything it was told
and everything it saw, so tests can compare it with hand-computed expectations.

Prices are integer ticks of 0.01 (10_000 ticks = 100.00), sizes integer lots, times ns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from framework.analysis.results import BacktestResult
from framework.arena.enums import TRADING_STATE_NAMES
from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_STATUS,
    KIND_TRADE,
    SELL,
    STATUS_INFO,
    EventArray,
    make_events,
)
from framework.core.instrument import Instrument
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig, QueueConfig
from framework.risk.limits import RiskLimits
from framework.strategy import Strategy
from framework.strategy.context import Context, FillInfo, OrderUpdate

__all__ = ["BUY", "SELL", "Scripted", "Tape", "instrument", "run"]

T0 = 1_000_000  #: a convenient start time (ns)


def instrument(symbol: str = "A", **kw: Any) -> Instrument:
    """A test instrument: tick 0.01, lot 1, no fees unless given."""
    kw.setdefault("tick_size", "0.01")
    return Instrument(venue="TEST", symbol=symbol, **kw)


class Tape:
    """An L2 event stream written message by message; ``feed_ns`` = default local - exch."""

    def __init__(self, feed_ns: int = 0) -> None:
        self.feed_ns = feed_ns
        self.rows: list[tuple[int, int, int, int, int, int, int]] = []

    def _msg(self, t: int, rows: Sequence[tuple[int, int, int, int]], local: int | None) -> Tape:
        lt = t + self.feed_ns if local is None else local
        for k, (kind, side, price, qty) in enumerate(rows):
            flags = FLAG_LAST if k == len(rows) - 1 else 0
            self.rows.append((t, lt, kind, side, price, qty, flags))
        return self

    def book(
        self,
        t: int,
        bids: Sequence[tuple[int, int]] = (),
        asks: Sequence[tuple[int, int]] = (),
        *,
        local: int | None = None,
    ) -> Tape:
        """One message setting several levels: ``bids``/``asks`` are (price, qty) pairs."""
        rows = [(KIND_LEVEL, BUY, p, q) for p, q in bids]
        rows += [(KIND_LEVEL, SELL, p, q) for p, q in asks]
        return self._msg(t, rows, local)

    def level(self, t: int, side: int, price: int, qty: int, *, local: int | None = None) -> Tape:
        return self._msg(t, [(KIND_LEVEL, side, price, qty)], local)

    def bbo(self, t: int, side: int, price: int, qty: int, *, local: int | None = None) -> Tape:
        return self._msg(t, [(KIND_BBO, side, price, qty)], local)

    def clear(self, t: int, side: int = 0, *, local: int | None = None) -> Tape:
        return self._msg(t, [(KIND_CLEAR, side, 0, 0)], local)

    def trade(
        self, t: int, aggressor: int, price: int, qty: int, *, local: int | None = None
    ) -> Tape:
        return self._msg(t, [(KIND_TRADE, aggressor, price, qty)], local)

    def status(self, t: int, code: int, *, local: int | None = None) -> Tape:
        return self._msg(t, [(KIND_STATUS, 0, 0, code)], local)

    def tick(self, t: int, *, local: int | None = None) -> Tape:
        """A no-op event (an informational status) that keeps the clock running to ``t``."""
        return self.status(t, STATUS_INFO, local=local)

    def events(self) -> EventArray:
        """The rows sorted by local time (stable: message order is kept at equal times)."""
        rows = sorted(enumerate(self.rows), key=lambda r: (r[1][1], r[0]))
        cols = list(zip(*[r for _, r in rows], strict=True)) if rows else [()] * 7
        return make_events(
            exch_ts=np.array(cols[0], np.int64),
            local_ts=np.array(cols[1], np.int64),
            kind=np.array(cols[2], np.uint8),
            side=np.array(cols[3], np.int8),
            price=np.array(cols[4], np.int64),
            qty=np.array(cols[5], np.int64),
            flags=np.array(cols[6], np.uint32),
        )


Action = Callable[[Context, dict[str, Any]], Any]


@dataclass(frozen=True)
class Step:
    t: int  #: local time to act at
    name: str  #: the result is kept in ``strategy.ids[name]``
    fn: Action


def buy(price: int, qty: int, tif: str = "gtc", inst: int = 0) -> Action:
    return lambda ctx, ids: ctx.submit(inst, "buy", price, qty, tif=tif)


def sell(price: int, qty: int, tif: str = "gtc", inst: int = 0) -> Action:
    return lambda ctx, ids: ctx.submit(inst, "sell", price, qty, tif=tif)


def market(side: str, qty: int, tif: str = "ioc", inst: int = 0) -> Action:
    return lambda ctx, ids: ctx.submit_market(inst, side, qty, tif=tif)


def cancel(name: str) -> Action:
    return lambda ctx, ids: ctx.cancel(ids[name])


def modify(name: str, price: int, qty: int) -> Action:
    return lambda ctx, ids: ctx.modify(ids[name], price, qty)


def set_trading_state(state: int) -> Action:
    """Set the strategy's risk trading state (TS_*) through the public Context call."""

    def act(ctx: Context, ids: dict[str, Any]) -> int:
        ctx.set_trading_state(TRADING_STATE_NAMES[state])
        return state

    return act


class Scripted(Strategy):
    """Acts at given local times and records every callback with what it saw then."""

    def __init__(
        self,
        steps: Sequence[tuple[int, str, Action]] = (),
        *,
        risk: RiskLimits | dict[str, Any] | None = None,
        name: str | None = None,
        instruments: list[str] | None = None,
        watch: Sequence[int] = (0,),
    ) -> None:
        super().__init__(risk=risk, name=name, instruments=instruments)
        self.steps = sorted((Step(*s) for s in steps), key=lambda s: s.t)
        self.watch = tuple(watch)

    # what a callback saw: (now, best bid, best ask) of each watched instrument
    def _snap(self, ctx: Context) -> tuple[int, ...]:
        out = [ctx.now]
        for i in self.watch:
            out += [ctx.best_bid(i), ctx.best_ask(i)]
        return tuple(out)

    def on_start(self, ctx: Context) -> None:
        self.ids: dict[str, Any] = {}
        self.acted: dict[str, int] = {}  #: step name -> local time it ran
        self.seen: list[tuple[int, ...]] = []  #: every callback's (now, bid, ask, ...)
        self.books: list[tuple[int, int, int, int, int, int]] = []
        self.trades: list[tuple[int, int, int, int, int]] = []
        self.fills: list[tuple[int, int, int, int, int, int]] = []  # now,oid,side,px,qty,pos
        self.updates: list[tuple[int, int, str, str]] = []  # now, oid, kind, reason
        self.timers: list[int] = []
        self._next = 0
        self._arm(ctx)

    def _arm(self, ctx: Context) -> None:
        if self._next < len(self.steps):
            ctx.set_timer(0, max(0, self.steps[self._next].t - ctx.now))

    def on_timer(self, ctx: Context) -> None:
        self.timers.append(ctx.now)
        self.seen.append(self._snap(ctx))
        while self._next < len(self.steps) and self.steps[self._next].t <= ctx.now:
            s = self.steps[self._next]
            self._next += 1
            self.ids[s.name] = s.fn(ctx, self.ids)
            self.acted[s.name] = ctx.now
        self._arm(ctx)

    def on_book(self, ctx: Context, inst: int) -> None:
        self.seen.append(self._snap(ctx))
        self.books.append(
            (
                ctx.now,
                inst,
                ctx.best_bid(inst),
                ctx.bid_qty(inst),
                ctx.best_ask(inst),
                ctx.ask_qty(inst),
            )
        )

    def on_trade(self, ctx: Context, inst: int) -> None:
        self.seen.append(self._snap(ctx))
        self.trades.append((ctx.now, inst, *ctx.last_trade(inst)))

    def on_fill(self, ctx: Context, fill: FillInfo) -> None:
        self.seen.append(self._snap(ctx))
        self.fills.append(
            (ctx.now, fill.order_id, fill.side, fill.price, fill.qty, ctx.position(0))
        )

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        self.seen.append(self._snap(ctx))
        self.updates.append((ctx.now, update.order_id, update.kind, update.reason))

    # --- conveniences for assertions -----------------------------------------------------
    def kinds(self, name: str) -> list[str]:
        """The order updates (ack, canceled, ...) of the order submitted by step ``name``."""
        oid = self.ids[name]
        return [k for _, o, k, _ in self.updates if o == oid]

    def fills_of(self, name: str) -> list[tuple[int, int]]:
        """(price, qty) of each fill of the order submitted by step ``name``."""
        oid = self.ids[name]
        return [(p, q) for _, o, _, p, q, _ in self.fills if o == oid]


def run(
    tape: Tape | EventArray,
    strategies: Strategy | Sequence[Strategy],
    *,
    entry_ns: int = 100,
    response_ns: int = 100,
    latency: LatencyConfig | None = None,
    queue: str | QueueConfig = "risk_averse",
    instruments: Sequence[Instrument] | None = None,
    streams: Sequence[Sequence[EventArray]] | None = None,
    sample_ns: int = 0,
    mode: str = "python",
    **kw: Any,
) -> BacktestResult:
    """Run strategies over one tape (or several ``streams``) and return the result tables."""
    strats = [strategies] if isinstance(strategies, Strategy) else list(strategies)
    if streams is None:
        ev = tape.events() if isinstance(tape, Tape) else tape
        streams = [[ev]]
    insts = list(instruments) if instruments is not None else [instrument()]
    q = QueueConfig.parse(queue) if isinstance(queue, str) else queue
    lat = latency or LatencyConfig(entry_ns=entry_ns, response_ns=response_ns)
    bt = Backtest(
        instruments=insts,
        streams=streams,
        strategies=strats,
        mode=mode,  # type: ignore[arg-type]
        latency=lat,
        queue=q,
        sample_ns=sample_ns,
        **kw,
    )
    return bt.run()
