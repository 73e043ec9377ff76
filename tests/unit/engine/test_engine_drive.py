"""Driving the Engine by hand: events pushed one at a time, requests drained, a gateway's
answers injected, the wall clock, live feeds that do not wait on a quiet one.

The reference for "same decisions" is a backtest of the same events with the same latencies
(the simulated venue inside the compiled loop). The fake gateway here answers as a venue
would for the orders these strategies send: takers (IOC / market) fill against the book as
it stands when the order arrives, level by level, the rest expires; passive orders far from
the touch rest until cancelled or modified. It keeps its own book from the events, the way a
real venue has its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pytest

from framework.analysis.results import BacktestResult
from framework.arena.enums import (
    LIQ_TAKER,
    ORD_MARKET,
    REJ_NO_LIQUIDITY,
    REJ_UNKNOWN_ORDER,
    TIF_FOK,
    TIF_IOC,
)
from framework.arena.state import (
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_NEW,
    RESP_ACK,
    RESP_CANCEL_REJECT,
    RESP_CANCELED,
    RESP_EXPIRED,
    RESP_FILL,
    RESP_MODIFIED,
    RESP_REJECT,
)
from framework.core.errors import ConfigError
from framework.core.events import BUY, KIND_BBO, KIND_CLEAR, KIND_LEVEL, SELL, EventArray
from framework.core.instrument import Instrument
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig
from framework.engine.engine import Engine, Wake
from framework.engine.feed import MergedFeed
from framework.ingest.synthetic import generate_day
from framework.kernel.seam import REQUEST_DTYPE, RESPONSE_DTYPE
from framework.strategy import Strategy, nb
from framework.strategy.context import Context, FillInfo, OrderUpdate
from strategies.imbalance_taker import ImbalanceTaker

LAT = LatencyConfig(entry_ns=40_000, response_ns=90_000)
NO_PRICE = nb.NO_PRICE
DEPTH = 60  #: ticks from the touch where the Pinger's passive orders rest (never reached)


@cache
def day() -> tuple[Instrument, EventArray]:
    d = generate_day(date=dt.date(2024, 1, 2), n_events=6_000, seed=11)
    return d.instrument, d.events


class Pinger(Strategy):
    """Sends every kind of request: a passive buy far below the bid that it moves down a tick
    or cancels, and now and then a taker (IOC sell at the bid, a market buy, a FOK)."""

    def on_start(self, ctx: Context) -> None:
        self.n = 0
        self.oid = 0
        self.seen: list[tuple[Any, ...]] = []

    def on_book(self, ctx: Context, inst: int) -> None:
        self.n += 1
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        if NO_PRICE in (bb, ba):
            return
        k = self.n % 40
        if k == 5:
            if not self.oid:
                self.oid = ctx.submit(inst, "buy", bb - DEPTH, 2)
            else:
                o = ctx.order(self.oid)
                if o is not None:
                    ctx.modify(self.oid, o["price"] - 1, o["qty"] + 1)
        elif k == 17 and self.oid:
            ctx.cancel(self.oid)
            self.oid = 0
        elif k == 23:
            ctx.submit(inst, "sell", bb, 3, tif="ioc")
        elif k == 31:
            ctx.submit_market(inst, "buy", 1)
        elif k == 37:
            ctx.submit(inst, "buy", ba, 500, tif="fok")

    def on_fill(self, ctx: Context, fill: FillInfo) -> None:
        self.seen.append(("fill", ctx.now, fill.order_id, fill.side, fill.price, fill.qty))

    def on_order(self, ctx: Context, update: OrderUpdate) -> None:
        self.seen.append(("order", ctx.now, update.order_id, update.kind, update.reason))


class FakeGateway:
    """A venue as a gateway test double: its own L2 book from the events (applied in their
    order at their exchange time), takers walk it, passive orders rest."""

    def __init__(self, events: EventArray, response_ns: int) -> None:
        self.ev = events
        self.eff = np.maximum.accumulate(events["exch_ts"])  # when the venue applies each
        self.j = 0
        self.book: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}
        self.resp_ns = response_ns
        self.orders: dict[tuple[int, int], dict[str, int]] = {}  # (strategy, oid) -> fields
        self.out: list[tuple[int, ...]] = []
        self.sid = 0  #: the strategy of the request being answered

    def _book_to(self, t: int) -> None:
        while self.j < len(self.ev) and self.eff[self.j] <= t:
            e = self.ev[self.j]
            self.j += 1
            side, price, qty = int(e["side"]), int(e["price"]), int(e["qty"])
            if e["kind"] == KIND_CLEAR:
                for s in (BUY, SELL) if side == 0 else (side,):
                    self.book[s].clear()
            elif e["kind"] in (KIND_LEVEL, KIND_BBO):
                if e["kind"] == KIND_BBO:  # the touch: better levels are gone
                    lvl = self.book[side]
                    for p in [p for p in lvl if (p > price if side == BUY else p < price)]:
                        del lvl[p]
                if qty:
                    self.book[side][price] = qty
                else:
                    self.book[side].pop(price, None)

    def _say(self, t: int, kind: int, oid: int, price: int, qty: int, liq: int = 0,
             reason: int = 0) -> None:
        self.out.append((t + self.resp_ns, t, kind, oid, self.sid, price, qty, liq, reason))

    def _levels(self, side: int, limit: int | None) -> list[tuple[int, int]]:
        """The opposite side's levels a ``side`` taker may take, best first."""
        other = self.book[-side]
        ps = sorted(other, reverse=side == SELL)
        if limit is not None:
            ps = [p for p in ps if (p <= limit if side == BUY else p >= limit)]
        return [(p, other[p]) for p in ps]

    def answer(self, reqs: np.ndarray) -> np.ndarray:
        for r in reqs:
            t, oid, side = int(r["arrive_ts"]), int(r["oid"]), int(r["side"])
            self.sid = int(r["strategy"])
            self._book_to(t)
            price, qty = int(r["price"]), int(r["qty"])
            if r["kind"] == REQ_NEW:
                market = r["order_type"] == ORD_MARKET
                levels = self._levels(side, None if market else price)
                if market and not levels:
                    self._say(t, RESP_REJECT, oid, price, qty, reason=REJ_NO_LIQUIDITY)
                    continue
                self._say(t, RESP_ACK, oid, price, qty)
                if r["tif"] == TIF_FOK and sum(q for _, q in levels) < qty:
                    self._say(t, RESP_EXPIRED, oid, price, qty)
                    continue
                left = qty
                for p, q in levels:
                    if left == 0:
                        break
                    take = min(q, left)
                    self._say(t, RESP_FILL, oid, p, take, LIQ_TAKER)
                    left -= take
                if left and (market or r["tif"] in (TIF_IOC, TIF_FOK)):
                    self._say(t, RESP_EXPIRED, oid, price, left)
                elif left:
                    assert left == qty, "the Pinger's passive orders never cross"
                    self.orders[self.sid, oid] = {"price": price, "qty": qty, "leaves": qty}
            elif r["kind"] == REQ_CANCEL:
                o = self.orders.pop((self.sid, oid), None)
                if o is None:
                    self._say(t, RESP_CANCEL_REJECT, oid, price, 0, reason=REJ_UNKNOWN_ORDER)
                else:
                    self._say(t, RESP_CANCELED, oid, o["price"], o["leaves"])
            elif r["kind"] == REQ_MODIFY:
                o = self.orders.get((self.sid, oid))
                if o is None:
                    self._say(t, RESP_CANCEL_REJECT, oid, price, 0, reason=REJ_UNKNOWN_ORDER)
                    continue
                o.update(price=price, qty=qty, leaves=qty)
                self._say(t, RESP_MODIFIED, oid, price, qty)
        out = np.zeros(len(self.out), RESPONSE_DTYPE)
        for k, name in enumerate(("ts", "exch_ts", "kind", "oid", "strategy", "price", "qty",
                                  "liquidity", "reason")):
            out[name] = [row[k] for row in self.out]
        out["fee"] = np.nan  # priced by the engine from the instrument's schedule
        self.out = []
        return out


def strategies(python: bool) -> list[Strategy]:
    taker = ImbalanceTaker({"confirm_ms": 0.0, "margin_ticks": 0.0, "hold_ms": 300.0})
    return [Pinger(name="pinger"), taker] if python else [taker]


def backtest(python: bool) -> tuple[BacktestResult, list[Strategy]]:
    inst, ev = day()
    strats = strategies(python)
    r = Backtest(instruments=[inst], streams=[[ev]], strategies=strats, latency=LAT).run()
    return r, strats


def by_hand(python: bool) -> tuple[BacktestResult, list[Strategy], int]:
    """Push one event at a time; after each advance, hand the requests to the gateway."""
    inst, ev = day()
    strats = strategies(python)
    eng = Engine(instruments=[inst], strategies=strats, latency=LAT, venue="external")
    gw = FakeGateway(ev, LAT.response_ns)
    sent = 0

    def run_out() -> Wake:
        nonlocal sent
        for _ in range(100_000):  # bounded: each round trip sends at least one request
            w = eng.advance()
            if w != Wake.REQUESTS:
                return w
            reqs = eng.drain_requests()
            assert reqs.dtype == REQUEST_DTYPE
            assert len(reqs)
            sent += len(reqs)
            eng.inject(gw.answer(reqs))
        raise AssertionError("the engine kept sending requests")

    for k in range(len(ev)):
        eng.push(ev[k : k + 1])
        assert run_out() == Wake.NEED_INPUT
    eng.end_input()
    assert run_out() == Wake.DONE
    assert len(eng.unmatched) == 0
    return eng.finish(), strats, sent


def frames(r: BacktestResult) -> dict[str, pl.DataFrame]:
    return {
        "orders": r.orders.sort("strategy", "order_id"),
        "fills": r.fills.sort("strategy", "ts", "order_id"),
        "equity": r.equity.sort("strategy", "ts"),
        "positions": r.positions.sort("strategy", "instrument", "ts"),
        "denials": r.denials,
    }


@pytest.mark.parametrize("python", [False, True], ids=["compiled", "python"])
def test_a_hand_driven_engine_with_a_gateway_decides_as_the_backtest(python: bool) -> None:
    ref, ref_strats = backtest(python)
    got, strats, sent = by_hand(python)
    # the reference trades: takers fill, passive orders are placed, moved and cancelled,
    # and no passive order is ever reached (the fake gateway never fills one)
    f = ref.fills
    assert f.height > 5
    assert set(f["liquidity"].unique()) == {"taker"}
    kinds = ref.orders["status"].value_counts()
    assert sent >= ref.orders.height
    if python:
        assert {"canceled", "expired", "filled"} <= set(kinds["status"])
        assert ref_strats[0].seen == strats[0].seen  # every callback, at the same time
    a, b = frames(ref), frames(got)
    for name in a:
        assert a[name].equals(b[name]), name
    assert ref.events == got.events


def test_requests_name_the_order_and_responses_to_no_order_are_kept() -> None:
    inst, ev = day()
    eng = Engine(instruments=[inst], strategies=[Pinger(name="p")], venue="external",
                 latency=LAT)
    eng.push(ev[:400])
    assert eng.advance() == Wake.REQUESTS
    reqs = eng.drain_requests()
    r = reqs[0]
    assert r["kind"] == REQ_NEW
    assert r["strategy"] == 0
    assert r["instrument"] == 0
    assert r["arrive_ts"] == r["ts"] + LAT.entry_ns
    assert len(eng.drain_requests()) == 0  # drained once
    stray = np.zeros(2, RESPONSE_DTYPE)
    stray["kind"] = RESP_ACK
    stray["oid"] = [r["oid"], 987_654_321]
    stray["ts"] = eng.now
    assert eng.inject(stray) == 1
    assert eng.unmatched["oid"].tolist() == [987_654_321]
    bad = stray[:1].copy()
    bad["kind"] = 42
    with pytest.raises(ConfigError, match="kind 42"):
        eng.inject(bad)
    bad["kind"] = RESP_FILL
    bad["qty"] = 0
    with pytest.raises(ConfigError, match="quantity"):
        eng.inject(bad)
    with pytest.raises(ConfigError, match="EVENT_DTYPE"):
        eng.push(np.zeros(3, np.int64))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="go back in local time"):
        eng.push(ev[:1])
    r2 = eng.finish()
    assert r2.config["unmatched_responses"] == 1
    assert r2.orders.height >= 1


class Ticker(Strategy):
    """A timer every 5 ms and a record of the book updates it sees."""

    def on_start(self, ctx: Context) -> None:
        self.timers: list[int] = []
        self.books: list[tuple[int, Any]] = []
        ctx.set_timer(5_000_000)

    def on_timer(self, ctx: Context) -> None:
        self.timers.append(ctx.now)

    def on_book(self, ctx: Context, inst: int) -> None:
        self.books.append((ctx.now, ctx.best_bid(inst)))


def test_the_wall_clock_runs_timers_while_no_data_comes() -> None:
    inst, ev = day()
    s = Ticker(name="t")
    eng = Engine(instruments=[inst], strategies=[s], venue="external", clock="wall",
                 sample_ns=0)
    t0 = time.time_ns()
    first = ev[:50].copy()
    first["local_ts"] = t0
    first["exch_ts"] = t0
    eng.push(first)
    eng.start()
    deadline = time.monotonic() + 5.0
    while len(s.timers) < 6 and time.monotonic() < deadline:  # bounded in time
        assert eng.advance() == Wake.NEED_INPUT
        time.sleep(0.002)
    t1 = time.time_ns()
    assert len(s.timers) >= 6, s.timers
    # a stall of 60 ms: the timer fires once on waking and goes on from then, not 12 times
    n = len(s.timers)
    time.sleep(0.06)
    eng.advance()
    assert len(s.timers) == n + 1
    assert s.timers[-1] < time.time_ns()
    assert all(t0 <= t <= t1 for t in s.timers[:n])
    assert s.timers == sorted(s.timers)
    assert s.books
    assert s.books[0][0] == t0
    # a late event (stamped before one pushed already) is taken at the latest time
    late = ev[50:51].copy()
    late["local_ts"] = t0 - 1
    eng.push(late)
    assert eng.late_events == 1
    eng.finish()


def test_a_live_merge_does_not_wait_on_a_quiet_feed() -> None:
    inst, ev = day()
    quiet_calls = 0

    def quiet() -> Iterator[EventArray]:
        nonlocal quiet_calls
        for _ in range(1_000):
            quiet_calls += 1
            yield ev[:0]  # nothing has arrived
        raise AssertionError("polled too often")

    def busy() -> Iterator[EventArray]:
        for k in range(0, 300, 100):
            b = ev[k : k + 100].copy()
            b["local_ts"] = b["exch_ts"] = time.time_ns()  # stamped on receipt
            yield b

    other = dataclasses.replace(inst, symbol="QUIET")
    feed = MergedFeed([quiet(), busy()], live=True)
    eng = Engine(instruments=[other, inst], strategies=[Ticker(name="t")], clock="wall",
                 venue="external")
    for _ in range(5):
        assert not eng.push_from(feed)
        assert eng.advance() == Wake.NEED_INPUT
    assert eng.events == 300  # every busy row, though the quiet feed sent nothing
    assert quiet_calls >= 5
    eng.finish()
