"""K isolated instances of a strategy in one pass: each copy's rows of the result tables
are bit for bit those of a run of that copy alone, copies never meet each other in
self-trade prevention (strategies sharing an account still do), order ids and slots belong
to each strategy, and the generated runner's code does not grow with K.

Data: one seeded synthetic day (fees on, so cash and fees mean something), 1 ms latency
each way and the power-2 queue model, as the benchmarks run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache
from typing import Any

import numpy as np
import polars as pl
import pytest

from framework.analysis.results import BacktestResult
from framework.arena.state import Capacity
from framework.core.errors import ConfigError, HftlabError
from framework.core.events import EventArray
from framework.core.instrument import Instrument
from framework.engine.backtest import Backtest
from framework.engine.codegen import build_runner, groups
from framework.engine.config import LatencyConfig, QueueConfig
from framework.engine.instances import copies
from framework.ingest.synthetic import generate_day
from framework.strategy import Strategy
from strategies.avellaneda_stoikov import AvellanedaStoikov, AvellanedaStoikovParams
from strategies.one_tick_mm import OneTickMM, OneTickMMParams
from strategies.queue_aware_mm import QueueAwareMM

from .conftest import T0, Scripted, Tape, buy, run, sell

TABLES = ("orders", "fills", "denials", "equity", "positions")

#: three parameter sets per strategy: each copy trades differently from the others
SWEEPS: dict[str, tuple[type[Strategy], list[dict[str, Any]]]] = {
    "one_tick_mm": (
        OneTickMM,
        [{"max_position": 1}, {"max_position": 3, "improve": True}, {"order_qty": 2}],
    ),
    "queue_aware_mm": (
        QueueAwareMM,
        [
            {"max_queue_ahead": 0},
            {"imbalance_cancel": 0.3, "max_position": 2},
            {"max_queue_ahead": 40, "order_qty": 2},
        ],
    ),
}


@cache
def day() -> tuple[Instrument, EventArray]:
    d = generate_day(date=dt.date(2024, 3, 5), n_events=60_000, seed=21)
    return dataclasses.replace(d.instrument, fee_per_lot=0.001), d.events


def backtest(strategies: list[Strategy], mode: str, *, isolated: bool) -> BacktestResult:
    inst, events = day()
    return Backtest(
        instruments=[inst],
        streams=[[events]],
        strategies=strategies,
        mode=mode,  # type: ignore[arg-type]
        latency=LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        queue=QueueConfig(model="power", n=2.0),
        sample_ns=100_000_000,
        isolated=isolated,
    ).run()


def rows(result: BacktestResult, table: str, name: str) -> pl.DataFrame:
    """One strategy's rows with every float column as its bit pattern (so -0.0 != 0.0 and
    a NaN equals only the same NaN): the comparison is bit for bit."""
    df = getattr(result, table).filter(pl.col("strategy") == name)
    floats = [c for c, t in df.schema.items() if t == pl.Float64]
    return df.with_columns(pl.Series(c, df[c].to_numpy().view(np.int64)) for c in floats)


@pytest.mark.parametrize("mode", ["compiled", "python"])
@pytest.mark.parametrize("sweep", list(SWEEPS))
def test_each_of_k_instances_in_one_pass_equals_its_run_alone(sweep: str, mode: str) -> None:
    cls, params = SWEEPS[sweep]
    together = copies(cls, params)
    both = backtest(together, mode, isolated=True)
    fills = []
    for i, solo in enumerate(copies(cls, params)):
        alone = backtest([solo], mode, isolated=False)
        name = solo.name
        assert rows(alone, "fills", name).height > 0  # the comparison is not vacuous
        for table in TABLES:
            got, want = rows(both, table, name), rows(alone, table, name)
            assert got.equals(want), (name, table)
        if mode == "compiled":  # the callbacks' own state ends the same too
            assert np.array_equal(together[i].compiled_state, solo.compiled_state)
        fills.append(rows(alone, "fills", name).drop("strategy"))
    # different parameters made different trades: the copies are not one run three times
    assert not fills[0].equals(fills[1])
    assert not fills[1].equals(fills[2])
    assert both.config["isolated"] is True


def test_strategies_of_different_classes_run_isolated_as_alone() -> None:
    strategies = [
        *copies(OneTickMM, [{"max_position": 2}, {"max_position": 4}], name="mm"),
        AvellanedaStoikov(name="as"),
        OneTickMM({"improve": True}, name="mm_last"),
    ]
    both = backtest(strategies, "compiled", isolated=True)
    for s in [
        *copies(OneTickMM, [{"max_position": 2}, {"max_position": 4}], name="mm"),
        AvellanedaStoikov(name="as"),
        OneTickMM({"improve": True}, name="mm_last"),
    ]:
        alone = backtest([s], "compiled", isolated=False)
        assert rows(alone, "fills", s.name).height > 0
        for table in TABLES:
            assert rows(both, table, s.name).equals(rows(alone, table, s.name)), (s.name, table)


# --- self-trade prevention: per account ---------------------------------------------------
T = T0 + 1_000


def _tape() -> Tape:
    return Tape().book(T0, bids=[(9990, 10)], asks=[(10010, 10)]).tick(T + 100_000)


@pytest.mark.parametrize("isolated", [False, True])
def test_isolated_strategies_never_deny_each_other_for_self_trades(isolated: bool) -> None:
    # a rests a buy at 10000 inside the spread; b then sells at 10000, which would trade
    # with it: the same account's orders may not meet, separate accounts' may
    a = Scripted([(T, "bid", buy(10000, 1))], name="a")
    b = Scripted([(T + 1_000, "ask", sell(10000, 1))], name="b")
    res = run(_tape(), [a, b], isolated=isolated)
    assert a.kinds("bid") == ["ack"]
    if isolated:
        assert b.ids["ask"] > 0
        assert b.kinds("ask") == ["ack"]
        assert res.denials.height == 0
    else:
        assert b.ids["ask"] < 0
        assert res.denials["reason"].to_list() == ["self_trade"]
        assert res.denials["strategy"].to_list() == ["b"]


@pytest.mark.parametrize("isolated", [False, True])
def test_a_strategy_is_still_denied_a_trade_with_itself_when_isolated(isolated: bool) -> None:
    a = Scripted([(T, "bid", buy(10000, 1)), (T + 1_000, "ask", sell(10000, 1))], name="a")
    other = Scripted([(T, "bid", buy(10000, 1))], name="other")
    res = run(_tape(), [other, a], isolated=isolated)
    assert a.ids["ask"] < 0
    assert res.denials["strategy"].to_list() == ["a"]
    assert res.denials["reason"].to_list() == ["self_trade"]


# --- order ids and slots are per strategy ------------------------------------------------
def test_each_strategy_numbers_its_orders_as_it_would_alone() -> None:
    a = Scripted([(T, "x", buy(9980, 1)), (T + 500, "y", buy(9981, 1))], name="a")
    b = Scripted([(T + 200, "x", buy(9970, 1))], name="b")
    run(_tape(), [a, b])
    alone = Scripted([(T + 200, "x", buy(9970, 1))], name="b")
    run(_tape(), alone)
    assert b.ids["x"] == alone.ids["x"]  # a's two earlier orders change nothing
    assert a.ids["x"] == b.ids["x"]  # ids are unique per strategy, not per run


def test_capacity_max_orders_counts_the_live_orders_of_each_strategy() -> None:
    # two slots each: both strategies may hold two live orders ...
    a = Scripted([(T, "x", buy(9980, 1)), (T, "y", buy(9981, 1))], name="a")
    b = Scripted([(T, "x", buy(9970, 1)), (T, "y", buy(9971, 1))], name="b")
    run(_tape(), [a, b], capacity=Capacity(n_inst=1, n_strat=2, max_orders=2))
    assert [a.kinds("x"), a.kinds("y"), b.kinds("x"), b.kinds("y")] == [["ack"]] * 4
    # ... and a third live order of one of them is one too many
    c = Scripted([(T, "x", buy(9980, 1)), (T, "y", buy(9981, 1)), (T, "z", buy(9982, 1))])
    with pytest.raises(HftlabError, match=r"too many live orders: raise Capacity.max_orders"):
        run(_tape(), [c], capacity=Capacity(n_inst=1, n_strat=1, max_orders=2))


class CompiledOnlyMM(Strategy):
    """OneTickMM's compiled callbacks without its Python ones: in a run with a Python-only
    strategy, the Python path calls it through the generated dispatcher."""

    Params = OneTickMMParams
    risk = OneTickMM.risk
    compiled = OneTickMM.compiled


def test_a_compiled_only_strategy_in_a_python_run_acts_as_its_own_index() -> None:
    idle = Scripted(name="idle")  # index 0, Python only: the run takes the Python path
    mixed = backtest([idle, CompiledOnlyMM(name="mm")], "auto", isolated=False)
    assert mixed.config["mode"] == "python"
    alone = backtest([OneTickMM(name="mm")], "compiled", isolated=False)
    assert rows(alone, "fills", "mm").height > 0
    for table in TABLES:
        assert rows(mixed, table, "mm").equals(rows(alone, table, "mm")), table
    assert mixed.orders.filter(pl.col("strategy") == "idle").height == 0


# --- the runner -------------------------------------------------------------------------
def test_k_copies_of_a_strategy_share_one_runner_text_and_group() -> None:
    two = copies(OneTickMM, [{}, {}])
    many = copies(OneTickMM, [{"max_position": 1 + i} for i in range(16)])
    assert groups(many, []) == [range(16)]
    assert build_runner(two) is build_runner(many)  # same text: one module, one compile
    # a single strategy has its own text: its params and state row taken once, not per call
    assert build_runner(copies(OneTickMM, [{}])) is not build_runner(two)
    # another class starts a group, and so does a parameter of another numba type (an int
    # where the class says float: numba would compile the callbacks for it apart)
    mixed = [
        *many[:2],
        AvellanedaStoikov(),
        AvellanedaStoikov(),
        AvellanedaStoikov(AvellanedaStoikovParams(gamma=1)),
        *copies(OneTickMM, [{}, {}], name="b"),
    ]
    assert groups(mixed, []) == [range(2), range(2, 4), range(4, 5), range(5, 7)]


def test_copies_names_each_instance_and_checks_its_parameters() -> None:
    made = copies(OneTickMM, [{"max_position": 2}, {"max_position": 4}], name="mm")
    assert [s.name for s in made] == ["mm_0", "mm_1"]
    assert [s.params.max_position for s in made] == [2, 4]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"parameter set 1 of mm: unknown parameter"):
        copies(OneTickMM, [{}, {"max_postion": 3}], name="mm")
    with pytest.raises(ConfigError, match="no parameter sets"):
        copies(OneTickMM, [])
