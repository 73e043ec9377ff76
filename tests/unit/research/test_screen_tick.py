"""``--to-strategy``: a screened set as the bundled strategy's parameters (bars -> ms, the
thresholds converted as documented), the generated bar strategy for any signal, and the
names a signal does not map to refused."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from framework.core.errors import ConfigError
from framework.strategy.loader import load_strategy_class
from research.screen.signals import BUILTIN, load_signal
from research.screen.tick import GENERATED, BarSignal, strategy_names, to_strategy

from .test_screen_signals import synthetic_bars

SEC = 1_000_000_000


def _check(name: str, params: dict[str, object]) -> None:
    """The parameters are valid for the strategy they are for."""
    cls = load_strategy_class(name)
    cls.Params.create(dict(params))


def test_imbalance_maps_to_the_imbalance_taker() -> None:
    b = synthetic_bars(50).with_columns(pl.lit(2.0).alias("spread"))
    name, p = to_strategy(
        BUILTIN["imbalance"], {"threshold": 0.4, "hold": 30}, "imbalance_taker",
        every_ns=SEC // 2, bars=b, size=2,
    )  # fmt: skip
    assert name == "imbalance_taker"
    # the taker buys when move x imbalance > spread (no fee, no margin): imbalance > 0.4
    assert p["move_per_imbalance"] == pytest.approx(2.0 / 0.4)
    assert (p["margin_ticks"], p["taker_fee_bps"], p["confirm_ms"]) == (0.0, 0.0, 0.0)
    assert p["hold_ms"] == 15_000.0  # 30 bars of 500 ms
    assert (p["order_qty"], p["max_position"]) == (2, 2)
    _check(name, p)


def test_trade_flow_maps_to_the_trade_flow_strategy() -> None:
    values = {"window": 4, "threshold": 0.7, "hold": 10, "min_trades": 3, "mode": "reversion"}
    name, p = to_strategy(
        BUILTIN["trade_flow"], values, "trade_flow", every_ns=SEC, bars=synthetic_bars(5)
    )
    assert name == "trade_flow"
    assert p["halflife_ms"] == pytest.approx(4_000 * math.log(2) / 2)
    assert (p["threshold"], p["mode"], p["min_trades"], p["hold_ms"]) == (
        0.7, "reversion", 3.0, 10_000.0,
    )  # fmt: skip
    _check(name, p)
    # the signal's own name stands for the strategy it maps to
    b = synthetic_bars(5)
    imb = BUILTIN["imbalance"]
    assert to_strategy(imb, {}, "imbalance", every_ns=SEC, bars=b)[0] == "imbalance_taker"


@pytest.mark.parametrize(
    "signal", [*sorted(BUILTIN), "tests.unit.research.test_screen_signals:gap_signal"]
)
def test_any_signal_maps_to_the_generated_bar_strategy(signal: str) -> None:
    sig = load_signal(signal)
    assert strategy_names(sig)[-1] == GENERATED
    values = {n: getattr(sig.Params(), n) for n in sig.Params.names()}
    name, p = to_strategy(sig, values, GENERATED, every_ns=SEC * 10, bars=synthetic_bars(5))
    assert name == "research.screen.tick:BarSignal"
    assert load_strategy_class(name) is BarSignal
    assert p["signal"] == signal
    assert json.loads(str(p["values"])) == values
    assert p["every_ms"] == 10_000.0
    _check(name, p)


@pytest.mark.parametrize(
    ("signal", "name"), [("breakout", "trade_flow"), ("imbalance", "one_tick_mm")]
)
def test_a_strategy_the_signal_does_not_map_to_is_refused(signal: str, name: str) -> None:
    with pytest.raises(ConfigError, match="--to-strategy"):
        to_strategy(BUILTIN[signal], {}, name, every_ns=SEC, bars=synthetic_bars(5))


@pytest.mark.parametrize(
    ("key", "value"), [("signal", "not a name!"), ("values", "[1, 2]"), ("every_ms", 0.0)]
)
def test_the_generated_strategys_parameters_are_checked(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        BarSignal.Params.create({key: value})
