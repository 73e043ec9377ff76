"""The trade-flow strategy on synthetic trending days, where who aggresses is known.

In the generator's trending regime each segment has a drift whose sign is drawn per segment
(stored in the day's labels). Noise trades are buyer-initiated with probability
``0.5 + trend_flow_bias x sign(drift)``: with a bias of 0.3, 80 % of them lean with the trend,
so their expected flow imbalance is 0.6 in the trend's direction. The touch also moves mostly
with the drift, and a sweep prints trades whose aggressor is the direction of the move. So
the flow the strategy measures points with the trend: momentum entries go with the drift
sign of the segment they are made in, reversion entries against it.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import pytest

from framework.analysis.results import BacktestResult
from framework.analysis.stats import summarize
from framework.core.errors import ConfigError
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig
from framework.ingest.base import DayData
from framework.ingest.synthetic import SyntheticParams, generate_day
from framework.strategy.loader import load_strategy_class
from strategies.trade_flow import S_COUNT, S_FLOW, S_LAST_TS, S_VOLUME, TradeFlow

LATENCY_NS = 1_000_000  # entry and response, each
HOLD_NS = 10_000_000_000  # the default hold_ms
TRENDING_ONLY = ((0.0, 0.0, 1.0),) * 3  # every segment is trending, with a fresh drift sign


@cache
def trending_day(bias: float) -> DayData:
    params = SyntheticParams(
        transition=TRENDING_ONLY, initial_regime="trending", trend_flow_bias=bias
    )
    return generate_day(date=dt.date(2024, 3, 5), n_events=200_000, seed=5, params=params)


@cache
def backtest(bias: float, mode: str, engine: str) -> tuple[BacktestResult, tuple[list[int], int]]:
    """The run on the trending day (``engine``: the Backtest mode), and the strategy's state
    at the end: its decayed (flow, volume, count) as float64 bit patterns, and the time of
    the last trade it counted (the compiled path's is in its state array)."""
    day = trending_day(bias)
    strategy = TradeFlow({"mode": mode})
    bt = Backtest(
        instruments=[day.instrument],
        streams=[[day.events]],
        strategies=[strategy],
        mode=engine,  # type: ignore[arg-type]
        latency=LatencyConfig(entry_ns=LATENCY_NS, response_ns=LATENCY_NS),
        sample_ns=1_000_000_000,
    )
    result = bt.run()
    if engine == "compiled":
        s = strategy.compiled_state
        f = s.view(np.float64)
        floats = [f[S_FLOW], f[S_VOLUME], f[S_COUNT]]
        last_ts = int(s[S_LAST_TS])
    else:
        floats = [strategy.flow, strategy.volume, strategy.count]
        last_ts = strategy.last_ts
    return result, (np.array(floats, np.float64).view(np.int64).tolist(), last_ts)


def run(bias: float, mode: str, engine: str = "python") -> BacktestResult:
    return backtest(bias, mode, engine)[0]


def entries_with_the_trend(bias: float, mode: str) -> tuple[float, int]:
    """Share of position-opening fills on the side of their segment's drift, and how many."""
    fills = run(bias, mode).fills
    side = fills["side"].to_numpy()
    opening = fills["position"].to_numpy() == side  # from flat to one lot
    labels = trending_day(bias).labels
    seg = np.searchsorted(labels["start_ts"].to_numpy(), fills["exch_ts"].to_numpy(), "right") - 1
    drift_sign = np.sign(labels["drift"].to_numpy())[seg]
    return float((side == drift_sign)[opening].mean()), int(opening.sum())


def test_momentum_enters_with_the_trend_and_reversion_against_it() -> None:
    share, n = entries_with_the_trend(0.3, "momentum")
    assert n > 300
    assert share > 0.9
    share, n = entries_with_the_trend(0.3, "reversion")
    assert n > 300
    assert share < 0.1


def test_aggressors_leaning_with_the_trend_strengthen_the_momentum_signal() -> None:
    # without the bias only the sweeps lean with the trend: fewer entries, less often right
    biased, n_biased = entries_with_the_trend(0.3, "momentum")
    unbiased, n_unbiased = entries_with_the_trend(0.0, "momentum")
    assert 0.5 < unbiased < biased
    assert n_unbiased < n_biased


def test_following_the_trend_pays_better_than_fading_it() -> None:
    momentum = summarize(run(0.3, "momentum"))["pnl"]
    reversion = summarize(run(0.3, "reversion"))["pnl"]
    assert momentum > reversion + 5.0  # currency; hundreds of trips each way


def test_every_position_is_closed_within_the_holding_time_plus_latency() -> None:
    fills = run(0.3, "momentum").fills
    ts = fills["ts"].to_numpy()
    pos = fills["position"].to_numpy()
    assert np.abs(pos).max() == 1  # max_position = 1 lot
    opened, closed = ts[0::2], ts[1::2]
    assert (pos[1::2] == 0).all()
    held = closed - opened[: len(closed)]
    # the timer starts at the opening fill; the exit takes the entry latency to reach the
    # venue and its fill the response latency to come back. Some end sooner, on a reversal.
    assert held.max() <= HOLD_NS + 2 * LATENCY_NS
    assert (held == HOLD_NS + 2 * LATENCY_NS).sum() > 100
    assert (held < HOLD_NS).sum() > 0


def test_it_is_bundled_under_its_name() -> None:
    assert load_strategy_class("trade_flow") is TradeFlow


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"mode": "trend"}, "mode='trend' is out of range: allowed one of 'momentum', 'reversion'"),
        ({"treshold": 0.5}, "did you mean 'threshold'"),
        ({"threshold": 1.5}, "threshold=1.5 is out of range: allowed > 0 and <= 1"),
        ({"order_qty": 2}, "1 <= order_qty <= max_position"),
        ({"halflife_ms": -1}, r"halflife_ms=-1.0 is out of range: allowed > 0"),
    ],
)
def test_bad_parameters_are_clear_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TradeFlow(params)


@pytest.mark.parametrize("mode", ["momentum", "reversion"])
def test_compiled_and_python_paths_give_identical_orders_fills_and_pnl(mode: str) -> None:
    (py, py_state), (nb, nb_state) = backtest(0.3, mode, "python"), backtest(0.3, mode, "compiled")
    assert (py.config["mode"], nb.config["mode"]) == ("python", "compiled")
    assert py.fills.height > 100
    for table in ("orders", "fills", "equity", "positions", "denials"):
        assert getattr(py, table).equals(getattr(nb, table)), f"{table} differ"
    # and the decayed flow, volume and count end equal to the last bit. A coarse check: a
    # last-bit difference in one decay weight is mostly rounded away a few trades later
    # (see the comment on the decay in flow_on_trade, strategies/trade_flow.py)
    assert py_state == nb_state
