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
