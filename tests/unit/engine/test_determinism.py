"""Determinism and look-ahead: same inputs, same bits; stepping equals batch replay;
compiled equals Python; a strategy never sees an event before its local time."""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import polars as pl
import pytest

from framework.analysis.results import BacktestResult
from framework.book.l2 import NO_PRICE
from framework.core.events import SELL, EventArray
from framework.core.instrument import Instrument
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig, QueueConfig
from framework.ingest.synthetic import generate_day
from strategies.one_tick_mm import OneTickMM

from .conftest import T0, Scripted, Tape, buy, run

DATE = dt.date(2024, 3, 5)
TABLES = ("orders", "fills", "equity", "positions", "denials", "market")


@cache
def day(n_events: int, seed: int, symbol: str = "SYN") -> tuple[Instrument, EventArray]:
    d = generate_day(date=DATE, n_events=n_events, seed=seed, symbol=symbol)
    return d.instrument, d.events


def mm_run(
    mode: str,
    *,
    n_events: int = 50_000,
    seed: int = 11,
    chunk: int | None = None,
    batch: int | None = None,
) -> BacktestResult:
    inst, ev = day(n_events, seed)
    stream = [ev] if batch is None else [ev[i : i + batch] for i in range(0, len(ev), batch)]
    bt = Backtest(
        instruments=[inst],
        streams=[stream],
        strategies=[OneTickMM({"improve": True})],
        mode=mode,  # type: ignore[arg-type]
        latency=LatencyConfig(entry_ns=50_000, response_ns=50_000),
        queue=QueueConfig(model="power", n=2.0),
        sample_ns=60_000_000_000,
        chunk=chunk,
    )
    return bt.run()


def assert_same(a: BacktestResult, b: BacktestResult) -> None:
    for name in TABLES:
        x, y = getattr(a, name), getattr(b, name)
        assert x.equals(y), f"{name} differ"
    for col in ("equity", "cash", "fees", "position_value"):
        xa = a.equity[col].to_numpy().view(np.int64)
        xb = b.equity[col].to_numpy().view(np.int64)
        assert np.array_equal(xa, xb), f"equity.{col} differs in its bits"
    fa = a.fills["fee"].to_numpy().view(np.int64)
    assert np.array_equal(fa, b.fills["fee"].to_numpy().view(np.int64))


@pytest.fixture(scope="module")
def compiled_mm() -> BacktestResult:
    return mm_run("compiled")


def test_the_market_maker_trades_on_the_synthetic_day(compiled_mm: BacktestResult) -> None:
    # the comparisons below are only worth something if there is plenty to compare
    assert len(compiled_mm.fills) > 100
    assert len(compiled_mm.orders) > 1_000
    assert set(compiled_mm.fills["liquidity"]) == {"maker"}


def test_the_same_run_twice_is_bit_identical(compiled_mm: BacktestResult) -> None:
    assert_same(compiled_mm, mm_run("compiled"))


def test_compiled_and_python_paths_give_identical_orders_fills_and_equity(
    compiled_mm: BacktestResult,
) -> None:
    python = mm_run("python")
    assert_same(compiled_mm, python)
    # both paths count the callbacks they make (one per change of the touch here)
    assert compiled_mm.config["callbacks"] == python.config["callbacks"] > 1_000


@pytest.mark.parametrize("mode", ["python", "compiled"])
def test_feeding_events_one_at_a_time_equals_batch_replay(mode: str) -> None:
    batch = mm_run(mode, n_events=6_000, seed=5)
    assert len(batch.fills) > 5
    assert_same(batch, mm_run(mode, n_events=6_000, seed=5, chunk=1))


def test_stream_batch_boundaries_do_not_change_the_result(compiled_mm: BacktestResult) -> None:
    # the store streams row groups: odd-sized batches must replay like one array
    assert_same(compiled_mm, mm_run("compiled", batch=777))


def test_two_instruments_one_at_a_time_equal_batch_replay() -> None:
    ia, ea = day(4_000, 1)
    ib, eb = day(4_000, 2, "SYN2")

    def go(chunk: int | None) -> BacktestResult:
        return Backtest(
            instruments=[ia, ib],
            streams=[[ea], [eb]],
            strategies=[
                OneTickMM(instruments=[ia.key], name="a"),
                OneTickMM(instruments=[ib.key], name="b"),
            ],
            mode="python",
            latency=LatencyConfig(entry_ns=30_000, response_ns=70_000),
            sample_ns=60_000_000_000,
            chunk=chunk,
        ).run()

    batch = go(None)
    assert set(batch.fills["instrument"]) == {ia.key, ib.key}
    assert_same(batch, go(1))
    # each strategy's positions are sampled on the instrument it listens to only
    pairs = set(batch.positions.select("strategy", "instrument").unique().iter_rows())
    assert pairs == {("a", ia.key), ("b", ib.key)}


# --- look-ahead -------------------------------------------------------------------------------
T = T0 + 10_000  #: local time the jump is seen (the venue applied it at T - 700)


def jump_tape() -> Tape:
    """Ask 10001 -> 10050 and a trade at 10001, stamped exch T - 700, received at T."""
    t = Tape(feed_ns=700)
    t.book(T0, bids=[(9999, 10)], asks=[(10001, 10)])
    t.trade(T - 700, 1, 10001, 10)
    t.book(T - 700, asks=[(10001, 0), (10050, 10)])
    return t.tick(T + 10_000)


class Peeker(Scripted):
    """Looks at everything it can, every 100 ns, and logs it."""

    def on_start(self, ctx) -> None:
        super().on_start(ctx)
        self.looks: list[tuple[int, int, int, tuple[int, int, int], float]] = []
        ctx.set_timer(100)

    def on_timer(self, ctx) -> None:
        super().on_timer(ctx)
        depth = ctx.depth(0, SELL, 3)
        self.looks.append(
            (
                ctx.now,
                ctx.best_ask(0),
                int(depth[0, 0]) if len(depth) else 0,
                ctx.last_trade(0),
                ctx.equity(),
            )
        )
        ctx.set_timer(100)


@pytest.mark.parametrize("chunk", [None, 1])
def test_a_strategy_cannot_see_an_event_before_its_local_time(chunk: int | None) -> None:
    p = Peeker([(T0 + 1_000, "long", buy(10001, 1, tif="ioc"))])
    run(jump_tape(), p, chunk=chunk)
    # the book itself reaches the strategy at T0 + 700
    assert all(x[1] == NO_PRICE for x in p.looks if x[0] < T0 + 700)
    before = [x for x in p.looks if T0 + 1_200 <= x[0] < T]
    after = [x for x in p.looks if x[0] >= T]
    assert len(before) > 50
    assert after
    # until T it sees the old ask, no trade, and equity marked at the old mid (10000)
    for now, ask, depth_ask, last, eq in before:
        assert (ask, depth_ask, last[0]) == (10001, 10001, 0), now
        assert eq == pytest.approx(100.00 - 100.01, abs=1e-9)
    assert after[0][:3] == (T, 10050, 10050)
    assert after[0][3] == (10001, 10, 1)
    # and no callback of any kind, at any time before T, saw the new ask
    assert all(v[2] != 10050 for v in p.seen if v[0] < T)
    assert any(v[2] == 10050 for v in p.seen if v[0] >= T)


def test_an_order_sent_before_the_jump_is_seen_can_still_lose_the_race() -> None:
    # the venue moved at T - 700; an IOC sent at T - 500 (before the strategy could know)
    # reaches the venue at T - 400 and finds no 10001 offer: expired, nothing filled
    s = Scripted([(T - 500, "o", buy(10001, 1, tif="ioc"))])
    run(jump_tape(), s)
    assert s.kinds("o") == ["ack", "expired"]
    assert s.fills == []
    assert all(v[2] == 10001 for v in s.seen if v[0] < T)


def test_results_tables_have_no_rows_stamped_after_the_data(compiled_mm: BacktestResult) -> None:
    end = int(day(50_000, 11)[1]["local_ts"].max())
    assert compiled_mm.fills["ts"].max() <= end + 100_000  # a response may still be in flight
    assert compiled_mm.fills.select(pl.col("ts") >= pl.col("exch_ts")).to_series().all()
