"""Backtest statistics against hand-computed values on a tiny hand-made result.

The result: strategy "mm" on XNAS/AAPL, three fills

    t+10 s  buy  2 @ 100  maker  fee -0.02  -> position  2
    t+70 s  sell 3 @ 101  taker  fee  0.09  -> position -1   (closes trip 1, opens trip 2)
    t+130 s buy  1 @ 102  maker  fee -0.01  -> position  0   (closes trip 2)

and equity sampled every minute: 0, 2, 1, 3, 0.94 (fees 0.06 in total).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from framework.analysis import (
    BacktestResult,
    drawdown,
    max_drawdown,
    max_drawdown_relative,
    resample_last,
    round_trips,
    sharpe,
    sortino,
    summarize,
    summarize_all,
)
from framework.analysis.stats import DEFAULT_PERIODS_PER_YEAR, round_trip_pnl_nb
from framework.core.errors import ConfigError
from tests.unit.analysis.fixtures import INST, T0, S, three_fills

PPY = 252 * 6.5 * 60  # one-minute periods in an equity trading year


def tiny_result(*, with_total_rows: bool = True) -> BacktestResult:
    fills = three_fills()
    orders = pl.DataFrame(
        {
            "order_id": [1, 2, 3, 4],
            "strategy": ["mm"] * 4,
            "instrument": [INST] * 4,
            "side": [1, -1, 1, -1],
            "order_type": ["limit", "market", "limit", "limit"],
            "tif": ["gtc", "ioc", "gtc", "post_only"],
            "price": [100.0, math.nan, 102.0, 105.0],
            "qty": [2.0, 3.0, 1.0, 1.0],
            "submit_ts": [T0 + 1 * S, T0 + 69 * S, T0 + 100 * S, T0 + 200 * S],
            "status": ["filled", "filled", "filled", "canceled"],
            "filled_qty": [2.0, 3.0, 1.0, 0.0],
            "avg_price": [100.0, 101.0, 102.0, math.nan],
            "reason": ["", "", "", ""],
        }
    )
    eq = [0.0, 2.0, 1.0, 3.0, 0.94]
    ts = [T0 + k * 60 * S for k in range(5)]
    fees = [0.0, -0.02, 0.06, 0.06, 0.06]
    names = ["mm", "TOTAL"] if with_total_rows else ["mm"]
    equity = pl.DataFrame(
        {
            "ts": ts * len(names),
            "strategy": [n for n in names for _ in range(5)],
            "equity": eq * len(names),
            "cash": eq * len(names),
            "fees": fees * len(names),
            "position_value": [0.0] * 5 * len(names),
        }
    )
    positions = pl.DataFrame(
        {
            "ts": ts,
            "strategy": ["mm"] * 5,
            "instrument": [INST] * 5,
            "position": [0.0, 2.0, -1.0, 0.0, 0.0],
            "mid": [100.0, 100.5, 101.5, 102.0, 102.0],
        }
    )
    denials = pl.DataFrame(
        {
            "ts": [T0 + 20 * S, T0 + 30 * S, T0 + 40 * S],
            "strategy": ["mm"] * 3,
            "instrument": [INST] * 3,
            "side": [1, 1, -1],
            "price": [100.0, 100.0, 90.0],
            "qty": [5.0, 5.0, 1.0],
            "reason": ["max_position", "max_position", "price_collar"],
        }
    )
    return BacktestResult(
        orders=orders,
        fills=fills,
        equity=equity,
        positions=positions,
        denials=denials,
        events=1000,
        wall_seconds=0.5,
        start_ts=T0,
        end_ts=T0 + 240 * S,
        config={"strategy": {"half_spread_ticks": 1}},
    )


@pytest.fixture(scope="module")
def stats() -> dict:
    return summarize(tiny_result(), min_intervals=2)


# --- array functions ------------------------------------------------------------------------
def test_drawdown_is_depth_below_running_peak() -> None:
    assert drawdown([0.0, 2.0, 1.0, 3.0, 0.94]).tolist() == pytest.approx([0, 0, 1, 0, 2.06])
    assert drawdown([]).size == 0
    assert max_drawdown([]) == 0.0


def test_relative_drawdown_is_nan_until_the_peak_is_positive() -> None:
    assert math.isnan(max_drawdown_relative([0.0, -1.0, -3.0]))
    assert max_drawdown_relative([0.0, -1.0, 4.0, 1.0]) == pytest.approx(0.75)


def test_resample_last_takes_last_value_at_or_before_each_grid_point_and_drops_partial() -> None:
    out = resample_last([0, 10, 60, 61, 130, 170], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 60)
    # grid 0, 60, 120 (values at ts 0, 60, 61); 130 and 170 fall in a partial interval
    assert out.tolist() == [0.0, 2.0, 3.0]
    with pytest.raises(ConfigError, match="interval_ns"):
        resample_last([0, 1], [0.0, 1.0], 0)


def test_sharpe_is_mean_over_sample_std_times_root_periods() -> None:
    r = [2.0, -1.0, 2.0, -2.06]
    expected = 0.235 / math.sqrt(13.0227 / 3) * math.sqrt(PPY)
    assert sharpe(r, PPY) == pytest.approx(expected, rel=1e-12)
    assert DEFAULT_PERIODS_PER_YEAR == PPY


def test_sharpe_is_nan_for_fewer_than_two_returns_or_zero_variance() -> None:
    assert math.isnan(sharpe([], PPY))
    assert math.isnan(sharpe([1.0], PPY))
    assert math.isnan(sharpe([0.5, 0.5, 0.5], PPY))


@pytest.mark.parametrize("value", [0.1, 1e-3, 123.456, -0.7])
@pytest.mark.parametrize("n", [2, 3, 1000, 10_007])
def test_a_constant_series_has_no_sharpe_or_sortino(value: float, n: int) -> None:
    """The mean of n equal floats is not always that float: the rounding left a standard
    deviation of ~1e-17 and a Sharpe of ~1e15 that ranked a flat set first."""
    r = np.full(n, value)
    assert math.isnan(sharpe(r))
    if value > 0:
        assert math.isnan(sortino(r))  # no losing period
    else:  # every period loses the same: the downside deviation is the loss itself
        assert sortino(r, periods_per_year=1) == pytest.approx(-1.0)


def test_sortino_uses_downside_deviation_over_all_periods() -> None:
    r = [2.0, -1.0, 2.0, -2.06]
    expected = 0.235 / math.sqrt((1.0 + 2.06**2) / 4) * math.sqrt(PPY)
    assert sortino(r, PPY) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(sortino([1.0, 2.0, 3.0], PPY))  # no losing period
    assert math.isnan(sortino([-1.0], PPY))


@pytest.mark.parametrize("compiled", [True, False])
def test_round_trip_split_on_position_flip(compiled: bool) -> None:
    fn = round_trip_pnl_nb if compiled else round_trip_pnl_nb.py_func
    out = np.empty(3)
    n = fn(
        np.array([1, -1, 1], dtype=np.int8),
        np.array([100.0, 101.0, 102.0]),
        np.array([2.0, 3.0, 1.0]),
        np.array([-0.02, 0.09, -0.01]),
        np.array([2.0, -1.0, 0.0]),
        out,
    )
    # trip 1: -200 + 0.02 + 2/3 * (303 - 0.09); trip 2: 1/3 * (303 - 0.09) - 102 + 0.01
    assert n == 2
    assert out[:2].tolist() == pytest.approx([1.96, -1.02])


def test_round_trip_open_before_first_fill_is_not_counted() -> None:
    out = np.empty(2)
    n = round_trip_pnl_nb(
        np.array([-1, 1], dtype=np.int8),
        np.array([10.0, 11.0]),
        np.array([1.0, 1.0]),
        np.zeros(2),
        np.array([4.0, 5.0]),
        out,
    )
    assert n == 0


def test_round_trips_are_per_strategy_and_instrument() -> None:
    fills = tiny_result().fills
    other = fills.with_columns(
        pl.lit("b").alias("strategy"),
        (-pl.col("side")).alias("side"),
        (-pl.col("position")).alias("position"),
    )
    # the mirror strategy loses what mm wins before fees: -2 - 0.04 + ... computed by hand
    trips = round_trips(pl.concat([fills, other]))
    assert sorted(trips.tolist()) == pytest.approx(sorted([1.96, -1.02, -2.04, 0.98]))


# --- summarize ------------------------------------------------------------------------------
def test_pnl_is_final_equity_and_gross_adds_back_fees(stats: dict) -> None:
    assert stats["pnl"] == pytest.approx(0.94)
    assert stats["fees"] == pytest.approx(0.06)
    assert stats["gross_pnl"] == pytest.approx(1.0)


def test_order_and_fill_counts(stats: dict) -> None:
    assert stats["n_orders"] == 4
    assert stats["orders_by_status"] == {"filled": 3, "canceled": 1}
    assert stats["n_fills"] == 3
    assert stats["filled_qty"] == 6.0


def test_maker_and_taker_shares_by_quantity_and_count(stats: dict) -> None:
    assert stats["maker_share_qty"] == pytest.approx(0.5)
    assert stats["taker_share_qty"] == pytest.approx(0.5)
    assert stats["maker_share_count"] == pytest.approx(2 / 3)
    assert stats["taker_share_count"] == pytest.approx(1 / 3)


def test_turnover_is_notional_traded(stats: dict) -> None:
    assert stats["turnover"] == pytest.approx(200.0 + 303.0 + 102.0)


def test_max_drawdown_absolute_and_relative_to_peak(stats: dict) -> None:
    assert stats["max_drawdown"] == pytest.approx(2.06)
    assert stats["max_drawdown_rel"] == pytest.approx(2.06 / 3)


def test_sharpe_and_sortino_from_one_minute_equity_changes(stats: dict) -> None:
    assert stats["n_intervals"] == 4
    assert stats["sharpe"] == pytest.approx(0.235 / math.sqrt(13.0227 / 3) * math.sqrt(PPY))
    assert stats["sortino"] == pytest.approx(0.235 / math.sqrt(5.2436 / 4) * math.sqrt(PPY))


def test_sharpe_interval_and_periods_per_year_are_arguments() -> None:
    r = tiny_result()
    # two-minute grid: equity 0, 1, 0.94 -> changes 1, -0.06
    st = summarize(r, interval_ns=120 * S, periods_per_year=100.0, min_intervals=2)
    assert st["n_intervals"] == 2
    assert st["sharpe"] == pytest.approx(0.47 / math.sqrt(2 * 0.53**2) * 10.0)
    # three-minute grid has one interval only: NaN, not an error
    assert math.isnan(summarize(r, interval_ns=180 * S, min_intervals=1)["sharpe"])
    # by default a few intervals give n/a rather than a meaningless annualised figure
    assert math.isnan(summarize(r, interval_ns=120 * S)["sharpe"])


def test_hit_ratio_of_round_trips(stats: dict) -> None:
    assert stats["n_round_trips"] == 2
    assert stats["hit_ratio"] == pytest.approx(0.5)


def test_average_and_max_absolute_position(stats: dict) -> None:
    assert stats["avg_abs_position"] == {INST: pytest.approx(3 / 5)}
    assert stats["max_abs_position"] == {INST: pytest.approx(2.0)}


def test_denials_by_reason(stats: dict) -> None:
    assert stats["n_denials"] == 3
    assert stats["denials_by_reason"] == {"max_position": 2, "price_collar": 1}


def test_events_per_second(stats: dict) -> None:
    assert stats["events_per_s"] == pytest.approx(2000.0)
    assert math.isnan(summarize(BacktestResult(events=5))["events_per_s"])


def test_total_sums_strategies_when_total_rows_are_absent() -> None:
    r = tiny_result(with_total_rows=False)
    other = r.equity.with_columns(
        pl.lit("b").alias("strategy"), pl.lit(1.0).alias("equity"), pl.lit(0.5).alias("fees")
    )
    r2 = BacktestResult(
        fills=r.fills, equity=pl.concat([r.equity, other]), events=1, wall_seconds=1.0
    )
    total = summarize(r2)
    assert total["pnl"] == pytest.approx(1.94)
    assert total["fees"] == pytest.approx(0.56)
    assert summarize(r2, strategy="b")["pnl"] == pytest.approx(1.0)


def test_total_max_position_nets_strategies_on_one_instrument() -> None:
    f = tiny_result().fills
    # a second strategy buys 5 at t+60 s (between mm's fills): net peaks at 2 + 5 = 7
    b = f.head(1).with_columns(
        pl.lit("b").alias("strategy"),
        pl.lit(T0 + 60 * S).alias("ts"),
        pl.lit(5.0).alias("qty"),
        pl.lit(5.0).alias("position"),
    )
    r = BacktestResult(fills=pl.concat([f, b]))
    assert summarize(r)["max_abs_position"] == {INST: pytest.approx(7.0)}
    assert summarize(r, strategy="b")["max_abs_position"] == {INST: pytest.approx(5.0)}


def test_summarize_all_has_each_strategy_and_total() -> None:
    out = summarize_all(tiny_result())
    assert list(out) == ["mm", "TOTAL"]
    assert out["mm"]["pnl"] == out["TOTAL"]["pnl"] == pytest.approx(0.94)


def test_strategy_that_never_traded_gives_zeros_and_nans_not_errors() -> None:
    st = summarize(BacktestResult(), strategy="idle")
    assert st["pnl"] == 0.0
    assert st["n_fills"] == 0
    assert st["turnover"] == 0.0
    assert st["max_drawdown"] == 0.0
    for key in ("maker_share_qty", "sharpe", "sortino", "hit_ratio", "max_drawdown_rel"):
        assert math.isnan(st[key]), key
    assert st["denials_by_reason"] == {}
    assert st["avg_abs_position"] == {}


def test_statistics_are_computed_once_per_result_and_each_caller_gets_its_own_copy() -> None:
    r = tiny_result()
    first = summarize(r, min_intervals=2)
    first["orders_by_status"]["filled"] = -1  # a caller's change stays its own
    first["pnl"] = 123.0
    again = summarize(r, min_intervals=2)
    assert again["orders_by_status"] == {"filled": 3, "canceled": 1}
    assert again["pnl"] == pytest.approx(0.94)
    # other arguments, other statistics
    assert summarize(r, interval_ns=120 * S, min_intervals=2)["n_intervals"] == 2
    assert summarize(r, min_intervals=2)["n_intervals"] == 4
