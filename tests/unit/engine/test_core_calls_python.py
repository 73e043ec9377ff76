"""The core calling Python callbacks itself (``Engine.core_calls_python``, the live loop's
way to run Python strategies): the same decisions as the Python driver's return per
wake-up, every kind of wake-up, and a callback's exception raised where the driver's is."""

from __future__ import annotations

import pytest

from framework.analysis.results import BacktestResult
from framework.arena.state import H_FN_WAKE
from framework.core.errors import ConfigError
from framework.core.events import SELL
from framework.engine.engine import Engine
from framework.strategy.base import Strategy
from framework.strategy.context import Context
from strategies.avellaneda_stoikov import AvellanedaStoikov
from strategies.queue_aware_mm import QueueAwareMM
from strategies.trade_flow import TradeFlow

from .conftest import T0, Scripted, Tape, buy, cancel, instrument, run, sell
from .test_determinism import TABLES, assert_same, day, mm_run


def _hook(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From here on, every Python-mode engine started has its core call the callbacks;
    returns the hooks' addresses (one per engine started)."""
    addrs: list[int] = []
    start = Engine._start_python

    def start_hooked(self: Engine) -> None:
        start(self)
        addrs.append(self.core_calls_python())
        assert int(self.st.h[H_FN_WAKE]) == addrs[-1] != 0
        assert self.core_calls_python() == addrs[-1]  # once per engine

    monkeypatch.setattr(Engine, "_start_python", start_hooked)
    return addrs


def test_the_market_makers_decisions_equal_the_drivers_and_the_compiled_form(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plain = mm_run("python", n_events=20_000, seed=7)
    hooked = _hook(monkeypatch)
    via_core = mm_run("python", n_events=20_000, seed=7)
    assert hooked, "the Python-mode engine was not hooked"
    assert len(via_core.fills) > 20
    assert len(via_core.orders) > 200
    assert_same(plain, via_core)
    assert_same(via_core, mm_run("compiled", n_events=20_000, seed=7))
    assert plain.config["callbacks"] == via_core.config["callbacks"]


@pytest.mark.parametrize("strategy", [AvellanedaStoikov, QueueAwareMM, TradeFlow])
def test_strategies_with_fills_orders_trades_and_timers_decide_the_same(
        strategy: type[Strategy], monkeypatch: pytest.MonkeyPatch) -> None:
    inst, ev = day(20_000, 3)

    def one() -> BacktestResult:
        return run(ev, strategy(), instruments=[inst], entry_ns=40_000, response_ns=40_000,
                   sample_ns=10_000_000_000)

    plain = one()
    hooked = _hook(monkeypatch)
    via_core = one()
    assert hooked
    assert len(plain.orders) > 10
    for name in TABLES:
        assert getattr(plain, name).equals(getattr(via_core, name)), f"{name} differ"
    assert plain.config["callbacks"] == via_core.config["callbacks"]


def _tape() -> Tape:
    return (Tape().book(T0, [(100, 5)], [(101, 5)])
            .trade(T0 + 1_000, SELL, 100, 2)
            .book(T0 + 5_000, [(100, 3)])
            .trade(T0 + 9_000, SELL, 100, 20)
            .book(T0 + 9_500, [(99, 4)], [(101, 1)])
            .tick(T0 + 50_000))


def _scripted() -> Scripted:
    return Scripted([(T0 + 2_000, "b", buy(100, 2)), (T0 + 3_000, "s", sell(103, 1)),
                     (T0 + 4_000, "x", cancel("s"))])


def test_every_kind_of_wake_up_reaches_the_callbacks_in_the_same_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    a = _scripted()
    run(_tape(), a)
    hooked = _hook(monkeypatch)
    b = _scripted()
    run(_tape(), b)
    assert hooked
    for seen in (a.updates, a.fills, a.trades, a.books, a.timers):
        assert seen
    assert (a.books, a.trades, a.fills, a.updates, a.timers, a.seen) == \
        (b.books, b.trades, b.fills, b.updates, b.timers, b.seen)


class Raises(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.calls = 0

    def on_book(self, ctx: Context, inst: int) -> None:
        self.calls += 1
        if self.calls == 2:
            msg = "the strategy's own bug"
            raise ZeroDivisionError(msg)


def test_a_callbacks_exception_is_raised_by_the_run_and_stops_the_core(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tape = Tape()
    for k in range(6):
        tape.book(T0 + 1_000 * k, [(100, 5 + k)], [(101, 5)])
    hooked = _hook(monkeypatch)
    s = Raises()
    with pytest.raises(ZeroDivisionError, match="the strategy's own bug"):
        run(tape, s)
    assert hooked
    assert s.calls == 2  # nothing ran after it


def test_only_a_started_python_engine_can_be_hooked() -> None:
    eng = Engine(instruments=[instrument()], strategies=[Raises()], mode="python")
    with pytest.raises(ConfigError, match="Python strategies"):
        eng.core_calls_python()
