"""Result tables go to Parquet as the recorder flushes: how often it flushes changes nothing,
the files land in the run's output folder, and a failed run leaves none behind."""

from __future__ import annotations

import datetime as dt
import functools
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from framework.analysis import BacktestResult, summarize_all
from framework.analysis.results import TABLES
from framework.analysis.sink import ResultSink
from framework.arena.enums import STATUS_NAMES, TERMINAL_STATUSES
from framework.arena.state import Capacity
from framework.core.events import EventArray
from framework.core.instrument import Instrument
from framework.engine import engine as engine_mod
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig
from framework.ingest.synthetic import generate_day
from strategies.one_tick_mm import OneTickMM
from tests.unit.analysis.fixtures import assert_stats_equal

from .conftest import T0, Scripted, Tape, buy, instrument, run

SMALL = 512  #: recorder rows: a flush every 256 rows of any table (FLUSH_MARGIN is 256)


@cache
def days() -> list[tuple[Instrument, EventArray]]:
    out = []
    for seed, symbol in ((1, "SYN"), (2, "SYN2")):
        d = generate_day(date=dt.date(2024, 3, 5), n_events=8_000, seed=seed, symbol=symbol)
        out.append((d.instrument, d.events))
    return out


def mm_run(record_rows: int, mode: str = "python", **kw: Any) -> tuple[BacktestResult, int]:
    """Three market makers on two instruments (two scoped to one each), equity sampled every
    second: every table has rows, TOTAL equity rows and denials included."""
    (ia, ea), (ib, eb) = days()
    bt = Backtest(
        instruments=[ia, ib],
        streams=[[ea], [eb]],
        strategies=[
            OneTickMM(instruments=[ia.key], name="a"),
            OneTickMM(instruments=[ib.key], name="b"),
            # quoting both sides of two books with room for three orders: denials
            OneTickMM({"improve": True}, name="both", risk={"max_open_orders": 3}),
        ],
        mode=mode,  # type: ignore[arg-type]
        latency=LatencyConfig(entry_ns=30_000, response_ns=70_000),
        sample_ns=1_000_000_000,
        capacity=Capacity(n_inst=2, n_strat=3, record_rows=record_rows),
        **kw,
    )
    return bt.run(), bt.engine.flushes


def stats(r: BacktestResult) -> dict[str, Any]:
    out = summarize_all(r)
    for s in out.values():  # the clock, not the run's content
        del s["wall_seconds"], s["events_per_s"]
    return out


@pytest.mark.parametrize("mode", ["python", "compiled"])
def test_many_small_flushes_give_the_tables_of_one_large_buffer(mode: str) -> None:
    big, n_big = mm_run(1 << 16, mode)
    small, n_small = mm_run(SMALL, mode)
    assert n_small > 10 * n_big  # the point: many more flushes
    for name in TABLES:
        a, b = big.table(name), small.table(name)
        assert a.height > 0, name
        assert a.equals(b), f"{name} differs"
    assert_stats_equal(stats(small), stats(big))
    assert small.tally is not None
    assert small.tally.fills_in_order
    # scoped strategies are sampled on their own instrument only; the third on both
    pairs = set(small.positions.select("strategy", "instrument").unique().iter_rows())
    (ia, _), (ib, _) = days()
    assert pairs == {("a", ia.key), ("b", ib.key), ("both", ia.key), ("both", ib.key)}
    assert "TOTAL" in set(small.equity["strategy"])


def test_the_order_log_says_when_each_order_finished_and_null_for_those_still_working() -> None:
    r, _ = mm_run(SMALL)
    o = r.orders
    done = o["status"].is_in([STATUS_NAMES[s] for s in TERMINAL_STATUSES])
    finished, working = o.filter(done), o.filter(~done)
    assert finished.height > 100
    assert working.height > 0  # the quotes resting when the data ended
    assert finished["end_ts"].null_count() == 0
    assert (finished["end_ts"] >= finished["submit_ts"]).all()
    assert working["end_ts"].null_count() == working.height


def test_an_instrument_traded_but_not_listened_to_keeps_all_its_position_rows() -> None:
    a, b = instrument("A"), instrument("B")
    ta = Tape().book(T0, bids=[(9999, 10)], asks=[(10001, 10)]).tick(T0 + 2_000_000)
    tb = Tape().book(T0, bids=[(19_999, 10)], asks=[(20_001, 10)]).tick(T0 + 2_000_000)

    def go(rows: int) -> BacktestResult:
        # "s" listens to A only but buys B half-way through; "idle" never trades B
        only_a = [a.key]
        strategies = [
            Scripted(
                [(T0 + 1_000_000, "b", buy(20_001, 2, "ioc", inst=1))], name="s", instruments=only_a
            ),
            Scripted(name="idle", instruments=only_a),
        ]
        return run(
            ta,
            strategies,
            instruments=[a, b],
            streams=[[ta.events()], [tb.events()]],
            sample_ns=1_000,
            capacity=Capacity(n_inst=2, n_strat=2, record_rows=rows),
        )

    small, big = go(SMALL), go(1 << 14)
    assert small.positions.equals(big.positions)
    pos = small.positions
    pairs = set(pos.select("strategy", "instrument").unique().iter_rows())
    assert pairs == {("s", a.key), ("s", b.key), ("idle", a.key)}
    held = pos.filter(pl.col("strategy") == "s", pl.col("instrument") == b.key)
    # every sample of the pair is kept, the flat ones before the buy as well
    assert held["position"].min() == 0.0
    assert held["position"].max() == 2.0
    assert held.height == pos.filter(pl.col("strategy") == "idle").height > 1_000


def test_the_tables_are_written_into_the_output_folder_as_the_run_goes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r, _ = mm_run(SMALL, out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.parquet" for n in TABLES)
    assert r.file("fills") == out / "fills.parquet"
    r.write(out)  # adds the summary; the tables are in place already
    back = BacktestResult.read(out)
    for name in TABLES:
        assert back.table(name).equals(r.table(name)), name
    assert back.config == r.config


class FailsLate(OneTickMM):
    """Quotes like its parent, then raises on the 1000th book update."""

    def on_start(self, ctx: Any) -> None:
        super().on_start(ctx)
        self.books = 0

    def on_book(self, ctx: Any, inst: int) -> None:
        self.books += 1
        if self.books == 1_000:
            msg = "strategy bug"
            raise RuntimeError(msg)
        super().on_book(ctx, inst)


def test_a_run_that_fails_leaves_no_result_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # row groups of 64 rows: the files are well under way when the strategy fails
    monkeypatch.setattr(engine_mod, "ResultSink", functools.partial(ResultSink, row_group_rows=64))
    (ia, ea), _ = days()
    out = tmp_path / "run"
    bt = Backtest(
        instruments=[ia],
        streams=[[ea]],
        strategies=[FailsLate()],
        mode="python",
        sample_ns=1_000_000_000,
        capacity=Capacity(n_inst=1, n_strat=1, record_rows=SMALL),
        out_dir=out,
    )
    with pytest.raises(RuntimeError, match="strategy bug"):
        bt.run()
    assert bt.engine.flushes > 3
    assert out.is_dir()  # made for the files, which are gone
    assert list(out.iterdir()) == []
