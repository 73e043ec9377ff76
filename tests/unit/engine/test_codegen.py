"""Generated runners: a strategy's compiled callbacks are compiled once for every run they
join (their params type is the Params class's own), not once per combination."""

from __future__ import annotations

import pickle

from framework.engine.codegen import build_runner
from framework.strategy import Params
from framework.strategy.params import NB_TUPLE
from strategies.avellaneda_stoikov import AvellanedaStoikov, AvellanedaStoikovParams
from strategies.one_tick_mm import OneTickMM, OneTickMMParams


def test_every_runner_gives_a_strategy_the_same_params_type() -> None:
    # numba specialises a callback on its argument types: one params type for all runners
    # means one compiled (and disk-cached) callback, whatever the combination of strategies
    one = build_runner([OneTickMM()])
    two = build_runner([AvellanedaStoikov(), OneTickMM(name="b", params={"max_position": 2})])
    nt = getattr(OneTickMMParams, NB_TUPLE)
    assert one.P0 is nt
    assert two.P0 is getattr(AvellanedaStoikovParams, NB_TUPLE)
    assert two.P1 is nt  # the group of OneTickMMs in a run of two classes
    assert one.__name__ != two.__name__


def test_each_params_class_has_a_namedtuple_that_pickles_by_name() -> None:
    nt = getattr(OneTickMMParams, NB_TUPLE)
    assert nt._fields == ("order_qty", "max_position", "improve")
    assert pickle.loads(pickle.dumps(nt)) is nt  # how numba's cache refers to the type

    class Local(Params):  # not reachable by name: its runner defines the type itself
        x: int = 1

    assert getattr(Local, NB_TUPLE)._fields == ("x",)


# --- the core calls the callbacks itself (the runner's ``wake``) ----------------------------
import datetime as dt  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from numba import njit  # noqa: E402

from framework.core.errors import HftlabError  # noqa: E402
from framework.engine import codegen  # noqa: E402
from framework.engine.codegen import param_words, word_kinds  # noqa: E402
from framework.ingest.synthetic import generate_day  # noqa: E402
from framework.strategy import CompiledCallbacks, Strategy  # noqa: E402
from tests.unit.engine.conftest import run  # noqa: E402


class MixedParams(Params):
    n: int = -7
    x: float = -0.0
    flag: bool = True


@njit(cache=True)
def mixed_on_book(ctx, sid, inst, p, s):  # type: ignore[no-untyped-def]
    s[0] += 1
    s[1] = p.n
    s[2] = np.int64(p.x * 1e6)
    s[3] = 1 if p.flag else 2
    s[4] = 1 if np.signbit(p.x) else 0


class Mixed(Strategy):
    Params = MixedParams
    compiled = CompiledCallbacks(on_book=mixed_on_book, state_size=5)


class WordParams(Params):
    label: str = "a"


@njit(cache=True)
def word_on_book(ctx, sid, inst, p, s):  # type: ignore[no-untyped-def]
    s[0] += 1
    if p.label == "boom" and s[0] == 3:
        raise ValueError("boom")


class Worded(Strategy):
    Params = WordParams
    compiled = CompiledCallbacks(on_book=word_on_book, state_size=1)


class RaisingParams(Params):
    at: int = 3


@njit(cache=True)
def raising_on_book(ctx, sid, inst, p, s):  # type: ignore[no-untyped-def]
    s[0] += 1
    if 0 < p.at <= s[0]:  # from the at-th book change on (p.at < 0: only at the -at-th)
        raise ValueError("boom")
    if s[0] == -p.at:
        raise ValueError("once")


class Raising(Strategy):
    Params = RaisingParams
    compiled = CompiledCallbacks(on_book=raising_on_book, state_size=1)


def _day(n: int = 3000) -> tuple[np.ndarray, object]:
    day = generate_day(date=dt.date(2024, 1, 2), n_events=n, seed=5)
    return day.events, day.instrument


def test_params_go_into_words_bit_for_bit() -> None:
    values = [3, -0.0, float("nan"), 1e-300, True, False]
    kinds = word_kinds(values)
    assert kinds == "iffbbb"[:2] + "ff" + "bb"
    words = param_words(values, kinds)
    as_f = np.array(words, np.int64).view(np.float64)
    assert [words[0], words[4], words[5]] == [3, 1, 0]
    assert np.signbit(as_f[1])
    assert np.isnan(as_f[2])
    assert as_f[3] == 1e-300
    assert word_kinds(["a", 1]) is None  # a string does not fit a word
    assert word_kinds([(1, 2)]) is None


def test_the_core_calls_the_callbacks_and_decides_as_when_it_returns(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ev, inst = _day()
    fast = run(ev, [OneTickMM(), OneTickMM(name="b", params={"max_position": 2})],
               instruments=[inst], mode="compiled", queue="power:2")
    monkeypatch.setattr(codegen.CompiledStrategies, "wake", lambda self: None)
    slow = run(ev, [OneTickMM(), OneTickMM(name="b", params={"max_position": 2})],
               instruments=[inst], mode="compiled", queue="power:2")
    assert len(fast.orders) > 20
    for t in ("orders", "fills"):
        assert getattr(fast, t).equals(getattr(slow, t)), t
    assert fast.equity.equals(slow.equity)


def test_wake_rebuilds_int_float_and_bool_params_exactly() -> None:
    ev, inst = _day(500)
    s = Mixed(params={"n": -7, "x": -0.0, "flag": True})
    t = Mixed(name="t", params={"n": 2**40, "x": 1.25, "flag": False})
    cs = codegen.CompiledStrategies([s, t], [inst.key])  # type: ignore[attr-defined]
    assert cs.wake() is not None  # numbers only: the core calls them itself
    run(ev, [s, t], instruments=[inst], mode="compiled")
    assert list(s.compiled_state[1:]) == [-7, 0, 1, 1]
    assert list(t.compiled_state[1:]) == [2**40, 1_250_000, 2, 0]
    assert s.compiled_state[0] > 10
    assert s.compiled_state[0] == t.compiled_state[0]


def test_params_a_word_cannot_hold_keep_the_returning_runner() -> None:
    ev, inst = _day(500)
    s = Worded(params={"label": "x"})
    cs = codegen.CompiledStrategies([s], [inst.key])  # type: ignore[attr-defined]
    assert cs.wake() is None
    assert not hasattr(cs.module, "wake")
    run(ev, s, instruments=[inst], mode="compiled")
    assert s.compiled_state[0] > 10
    with pytest.raises(ValueError, match="boom"):  # raised through the runner as it was
        run(ev, Worded(params={"label": "boom"}), instruments=[inst], mode="compiled")


def test_a_callback_that_raises_in_the_core_stops_the_run_with_its_exception() -> None:
    ev, inst = _day(500)
    s = Raising(name="quoter")
    with pytest.raises(ValueError, match="boom") as info:
        run(ev, s, instruments=[inst], mode="compiled")
    assert "strategy 'quoter'" in " ".join(getattr(info.value, "__notes__", []))
    # one that does not raise again when called once more: the run stops all the same
    with pytest.raises(HftlabError, match=r"quoter: .*compiled callback raised an exception"):
        run(ev, Raising(name="quoter", params={"at": -3}), instruments=[inst], mode="compiled")
