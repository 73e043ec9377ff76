"""Parameter spaces: ``--space`` words checked against the strategy's declared Params (names,
types, ranges, empty ranges, each in one line), grids, seeded random draws, and one key per
parameter set however it is spelled, so a set is never evaluated twice."""

from __future__ import annotations

import pytest

from framework.core.errors import ConfigError
from research.space import Space, params_key
from strategies.avellaneda_stoikov import AvellanedaStoikov
from strategies.imbalance_taker import ImbalanceTaker
from strategies.one_tick_mm import OneTickMM


def test_an_int_range_steps_by_one_and_a_choice_list_keeps_its_order() -> None:
    s = Space.parse(OneTickMM, ["max_position=2:4", "improve=false,true"])
    assert s.size == 6
    assert [(p["max_position"], p["improve"]) for p in s.grid()] == [
        (2, False), (2, True), (3, False), (3, True), (4, False), (4, True),
    ]  # fmt: skip


def test_a_float_range_with_a_step_is_exact_and_stops_at_hi() -> None:
    s = Space.parse(AvellanedaStoikov, ["gamma=0.1:0.5:0.1", "order_qty=1:5:2"])
    assert sorted({p["gamma"] for p in s.grid()}) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert sorted({p["order_qty"] for p in s.grid()}) == [1, 3, 5]
    # a step that does not divide the range ends on the last point inside it
    assert Space.parse(AvellanedaStoikov, ["gamma=0.1:0.45:0.1"]).dims[0].points()[-1] == 0.4


def test_a_continuous_float_range_is_sampled_but_refuses_a_grid() -> None:
    s = Space.parse(AvellanedaStoikov, ["gamma=0.1:2"])
    assert s.size is None
    draws = s.sample(20, seed=3)
    assert len(draws) == 20
    assert all(0.1 <= p["gamma"] <= 2 for p in draws)
    with pytest.raises(ConfigError, match=r"gamma=0.1:2 is continuous; give a step"):
        s.grid()


@pytest.mark.parametrize(
    ("word", "pattern"),
    [
        ("max_postion=1:3", r"unknown parameter 'max_postion' .*did you mean 'max_position'\?"),
        ("max_position=5:1", r"empty range \(5 > 1\)"),
        ("max_position=1.5:3", r"max_position='1.5' is not an int"),
        ("max_position=0:3", r"max_position=0 is out of range: allowed >= 1"),
        ("max_position=1:3:0", r"the step must be > 0"),
        ("max_position=1:3:x", r"the step 'x' is not an int"),
        ("max_position", r"write NAME=LO:HI\[:STEP\]"),
        ("max_position=1,,2", r"an empty value in the list"),
        ("improve=maybe", r"improve='maybe' is not a bool"),
        ("max_position=1:2:3:4", r"write NAME=LO:HI or NAME=LO:HI:STEP"),
    ],
)
def test_a_bad_space_word_is_one_clear_line(word: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern) as info:
        Space.parse(OneTickMM, [word])
    assert "\n" not in str(info.value)
    assert repr(word) in str(info.value)  # it names the word that was wrong


def test_a_parameter_searched_twice_or_also_fixed_is_refused() -> None:
    with pytest.raises(ConfigError, match="searched twice"):
        Space.parse(OneTickMM, ["max_position=1:2", "max_position=3,4"])
    with pytest.raises(ConfigError, match="also fixed by --param max_position=3"):
        Space.parse(OneTickMM, ["max_position=1:2"], fixed={"max_position": 3})
    with pytest.raises(ConfigError, match=r"--param: unknown parameter 'ordr_qty'"):
        Space.parse(OneTickMM, ["max_position=1:2"], fixed={"ordr_qty": 3})


def test_one_key_per_parameter_set_however_it_is_spelled() -> None:
    s = Space.parse(OneTickMM, ["max_position=5,5,1"], fixed={"order_qty": "1"})
    assert [p["max_position"] for p in s.grid()] == [5, 1]  # the repeat is dropped
    # a default written out, left out, as text or as a number: the same set, the same key
    keys = {
        params_key(s.make({"max_position": 5})),
        params_key(OneTickMM.Params.create({})),
        params_key(OneTickMM.Params.create({"max_position": "5", "improve": "false"})),
    }
    assert len(keys) == 1
    assert params_key(s.make({"max_position": 1})) not in keys


def test_random_sets_are_seeded_distinct_and_a_small_space_is_all_of_it() -> None:
    s = Space.parse(OneTickMM, ["max_position=1:50", "order_qty=1:4"])
    a, b = s.sample(30, seed=7), s.sample(30, seed=7)
    assert a == b
    assert a != s.sample(30, seed=8)
    assert len({params_key(s.make(p)) for p in a}) == 30
    small = Space.parse(OneTickMM, ["max_position=1:3"])
    assert small.sample(10, seed=1) == small.grid()  # 3 sets, none drawn twice


def test_sets_the_strategy_refuses_together_are_left_out() -> None:
    # imbalance_taker wants order_qty <= max_position: each value is valid alone (order_qty=3
    # with the default max_position=1 is not), the grid keeps the combinations that hold
    s = Space.parse(ImbalanceTaker, ["order_qty=1:3", "max_position=1,2"])
    assert [(p["order_qty"], p["max_position"]) for p in s.grid()] == [(1, 1), (1, 2), (2, 2)]
    assert len(s.sample(10, seed=0)) == 3
    with pytest.raises(ConfigError, match=r"no parameter set of the space is valid: order_qty=3"):
        Space.parse(ImbalanceTaker, ["order_qty=3"], fixed={"max_position": 2}).grid()


def test_a_long_range_is_counted_not_listed() -> None:
    s = Space.parse(OneTickMM, ["max_position=1:1000000000", "order_qty=1:1000000:7"])
    assert s.size == 1_000_000_000 * 142_858
    assert s.dims[1].top == 1 + 142_857 * 7
    draws = s.sample(5, seed=0)
    assert len(draws) == 5
    assert all((p["order_qty"] - 1) % 7 == 0 for p in draws)
