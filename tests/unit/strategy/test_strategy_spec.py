"""Strategies of a run from command-line words: names, scoped parameters, risk, instruments."""

from __future__ import annotations

import pytest

from framework.core.errors import ConfigError
from framework.strategy.spec import run_instruments, strategies_from_words
from strategies.lead_lag import LeadLag
from strategies.one_tick_mm import OneTickMM


def test_one_strategy_takes_unscoped_options_and_is_named_by_its_class():
    (s,) = strategies_from_words(
        ["one_tick_mm"], params=["max_position=3"], risk=["max_open_orders=4"]
    )
    assert isinstance(s, OneTickMM)
    assert s.name == "OneTickMM"
    assert s.params.max_position == 3
    assert s.risk_limits.max_open_orders == 4
    assert s.risk_limits.max_position == OneTickMM.risk.max_position  # the rest is kept
    assert s.instruments is None


def test_named_strategies_get_their_own_parameters_risk_and_instruments():
    a, b, c = strategies_from_words(
        ["a=one_tick_mm", "b=one_tick_mm", "ll=strategies.lead_lag:LeadLag"],
        params=["a.max_position=2", "b.order_qty=3", "ll.leader=X/F", "ll.lagger=X/S"],
        risk=["b.max_position=none", "a.self_trade_prevention=false"],
        on=["a=SIM/A", "b=SIM/A,SIM/B"],
    )
    assert [s.name for s in (a, b, c)] == ["a", "b", "ll"]
    assert (a.params.max_position, a.params.order_qty) == (2, 1)
    assert (b.params.max_position, b.params.order_qty) == (5, 3)
    assert a.risk_limits.self_trade_prevention is False
    assert b.risk_limits.max_position is None
    assert (a.instruments, b.instruments) == (["SIM/A"], ["SIM/A", "SIM/B"])
    assert isinstance(c, LeadLag)
    assert c.instruments == ["X/F", "X/S"]
    assert run_instruments([b, c]) == ["SIM/A", "SIM/B", "X/F", "X/S"]


def test_a_spec_typed_once_scopes_options_by_its_bundled_name():
    mm, ll = strategies_from_words(
        ["one_tick_mm", "lead_lag"], params=["one_tick_mm.improve=true", "lead_lag.order_qty=2"]
    )
    assert mm.params.improve is True
    assert ll.params.order_qty == 2
    assert ll.risk_limits.max_position == 2  # lead_lag's own default follows its clip


@pytest.mark.parametrize(
    ("words", "kwargs", "match"),
    [
        ([], {}, "at least one strategy"),
        (["one_tikc_mm"], {}, "did you mean 'one_tick_mm'"),
        (["one_tick_mm", "one_tick_mm"], {}, "both be named 'OneTickMM'"),
        (["a.b=one_tick_mm"], {}, "NAME=STRATEGY"),
        (["a=one_tick_mm", "b=lead_lag"], {"params": ["order_qty=2"]}, "as STRATEGY.order_qty"),
        (["a=one_tick_mm", "b=lead_lag"], {"params": ["c.order_qty=2"]}, "no strategy named 'c'"),
        (["one_tick_mm"], {"params": ["max_positon=2"]}, "did you mean 'max_position'"),
        (["one_tick_mm"], {"params": ["max_position"]}, "name=value"),
        (["one_tick_mm"], {"risk": ["max_lose=3"]}, "did you mean 'max_loss'"),
        (["one_tick_mm"], {"risk": ["max_loss=-3"]}, r"max_loss=-3.0 is out of range: allowed > 0"),
        (["one_tick_mm"], {"risk": ["self_trade_prevention=maybe"]}, "true or false"),
        (["one_tick_mm"], {"on": ["SIM"]}, "VENUE/SYMBOL"),
    ],
)
def test_bad_words_fail_with_a_message_that_says_what_to_write(words, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        strategies_from_words(words, **kwargs)


def test_run_instruments_needs_every_strategy_to_name_its_own():
    with pytest.raises(ConfigError, match="--instrument"):
        run_instruments(strategies_from_words(["one_tick_mm"]))
