"""The book-imbalance taker on synthetic days whose answer is known, and on a hand-made tape.

The generator's predictive signal (``SyntheticParams.signal_strength = w``) sets the touch
imbalance after every touch update to ``w * tanh((latent mid 5 s ahead - book mid) / 1.5)``
plus ``(1 - w)`` uniform noise. The taker's default threshold is an imbalance of 0.9 (2 ticks
x 0.9 = 1 tick of spread + 0.8 margin), held for 100 ms. With ``w = 1`` such an imbalance
announces a latent move of more than 1.5 x atanh(0.9) = 2.2 ticks within the 5 s the taker
holds, and the book follows the latent mid to within a tick: the expected gain beats the one
tick a round trip pays. With ``w = 0`` the imbalance is noise, independent of the future, so
a round trip is expected to lose exactly the spread (1 tick).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache

import numpy as np
import polars as pl
import pytest

from framework.analysis.results import BacktestResult
from framework.analysis.stats import summarize
from framework.core.errors import ConfigError
from framework.core.events import BUY, FLAG_LAST, KIND_LEVEL, SELL, make_events
from framework.core.instrument import Instrument
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig
from framework.ingest.synthetic import SyntheticParams, generate_day
from framework.strategy.loader import load_strategy_class
from strategies.imbalance_taker import ImbalanceTaker

LATENCY_NS = 1_000_000  # entry and response, each
HOLD_NS = 5_000_000_000  # the default hold_ms
TICK = 0.01


@cache
def synthetic_run(signal: float, mode: str = "python", n_events: int = 200_000) -> BacktestResult:
    day = generate_day(
        date=dt.date(2024, 3, 5),
        n_events=n_events,
        seed=3,
        params=SyntheticParams(signal_strength=signal),
    )
    return Backtest(
        instruments=[day.instrument],
        streams=[[day.events]],
        strategies=[ImbalanceTaker()],
        mode=mode,  # type: ignore[arg-type]
        latency=LatencyConfig(entry_ns=LATENCY_NS, response_ns=LATENCY_NS),
        sample_ns=1_000_000_000,
    ).run()


def round_trips(fills: pl.DataFrame) -> np.ndarray:
    """PnL in ticks of each round trip (one lot in, one lot out: fills alternate)."""
    px = np.rint(fills["price"].to_numpy() / TICK)
    side = fills["side"].to_numpy()
    n = len(px) // 2
    return (px[1 : 2 * n : 2] - px[0 : 2 * n : 2]) * side[0 : 2 * n : 2]


def test_taker_makes_money_with_the_predictive_signal_and_loses_the_spread_without() -> None:
    """Same seed, same day but for the signal: see the module docstring for why."""
    with_signal = synthetic_run(1.0)
    without = synthetic_run(0.0)
    trips_with, trips_without = round_trips(with_signal.fills), round_trips(without.fills)
    assert len(trips_with) > 200
    assert len(trips_without) > 200
    assert summarize(with_signal)["pnl"] > 0
    assert summarize(without)["pnl"] < 0
    # no signal: every round trip crosses a one-tick spread once in total, and the move
    # after an entry is independent of it, so a trip loses one tick on average
    assert trips_without.mean() == pytest.approx(-1.0, abs=0.25)
    assert trips_with.mean() > 0.5  # ticks
    assert set(with_signal.fills["liquidity"]) == {"taker"}


def test_every_position_is_closed_within_the_holding_time_plus_latency() -> None:
    fills = synthetic_run(1.0).fills
    ts = fills["ts"].to_numpy()
    pos = fills["position"].to_numpy()
    assert pos.max() == 1
    assert pos.min() == -1
    opened = ts[0::2]
    closed = ts[1::2]
    assert len(closed) >= len(opened) - 1  # the last may still be open at the close
    held = closed - opened[: len(closed)]
    # the timer starts when the opening fill arrives; the exit order then takes the entry
    # latency to reach the venue and the fill the response latency to come back
    assert held.max() <= HOLD_NS + 2 * LATENCY_NS
    assert (held == HOLD_NS + 2 * LATENCY_NS).mean() > 0.9  # most end on the timer
    assert (pos[1::2] == 0).all()


def test_compiled_and_python_paths_give_identical_orders_fills_and_pnl() -> None:
    py = synthetic_run(1.0, "python", 100_000)
    nb = synthetic_run(1.0, "compiled", 100_000)
    assert py.config["mode"] == "python"
    assert nb.config["mode"] == "compiled"
    assert py.fills.height > 100
    for table in ("orders", "fills", "equity", "positions", "denials"):
        assert getattr(py, table).equals(getattr(nb, table)), f"{table} differ"


# --- a hand-made tape: the stop ------------------------------------------------------------
def _tape(messages: list[tuple[int, list[tuple[int, int, int]]]]) -> np.ndarray:
    """L2 messages (time ns, [(side, price, qty), ...]); local time = exchange time."""
    rows = [
        (t, side, price, qty, FLAG_LAST if k == len(levels) - 1 else 0)
        for t, levels in messages
        for k, (side, price, qty) in enumerate(levels)
    ]
    t, side, price, qty, flags = (np.array(c) for c in zip(*rows, strict=True))
    return make_events(
        exch_ts=t, local_ts=t, kind=np.full(len(t), KIND_LEVEL), side=side, price=price,
        qty=qty, flags=flags,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["python", "compiled"])
def test_the_stop_closes_a_losing_position_before_the_timer(mode: str) -> None:
    ms = 1_000_000
    t0 = 1_700_000_000_000_000_000
    events = _tape([
        # bid 1000 lots against 10 on the ask: imbalance 0.98, predicted move 1.96 ticks
        # beats 1 tick of spread + 0.8 margin -> buy 1 lot at the ask, 100.01
        # ... which must hold for confirm_ms = 100 ms: the update at 50 ms is too early
        (t0, [(BUY, 10_000, 1_000), (SELL, 10_001, 10)]),
        (t0 + 50 * ms, [(BUY, 10_000, 1_001)]),
        (t0 + 100 * ms, [(BUY, 10_000, 1_002)]),
        # the market drops 3 ticks with a balanced touch: marked at the bid the long has
        # lost 3 ticks = stop_ticks -> sell at the bid, 99.98
        (t0 + 110 * ms, [(BUY, 10_000, 0), (SELL, 10_001, 0), (BUY, 9_998, 100),
                         (SELL, 9_999, 100)]),
        (t0 + 120 * ms, [(BUY, 9_998, 101)]),
        (t0 + 130 * ms, [(BUY, 9_998, 102)]),
    ])  # fmt: skip
    result = Backtest(
        instruments=[Instrument(venue="TEST", symbol="A", tick_size="0.01")],
        streams=[[events]],
        strategies=[ImbalanceTaker()],
        mode=mode,  # type: ignore[arg-type]
        latency=LatencyConfig(entry_ns=100_000, response_ns=100_000),
        sample_ns=0,
    ).run()
    fills = result.fills
    assert fills["side"].to_list() == [BUY, SELL]
    assert fills["price"].to_list() == pytest.approx([100.01, 99.98])
    assert fills["position"].to_list() == [1.0, 0.0]
    # the stop fired on the drop, long before the 5 s holding time
    assert fills["ts"][0] == t0 + 100 * ms + 200_000
    assert fills["ts"][1] == t0 + 110 * ms + 200_000
    orders = result.orders
    assert orders["order_type"].to_list() == ["limit", "market"]
    assert orders["tif"].to_list() == ["ioc", "ioc"]


# --- parameters ---------------------------------------------------------------------------
def test_it_is_bundled_under_its_name() -> None:
    assert load_strategy_class("imbalance_taker") is ImbalanceTaker


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"margin": 1}, "did you mean 'margin_ticks'"),
        ({"order_qty": 3, "max_position": 2}, "1 <= order_qty <= max_position"),
        ({"move_per_imbalance": 0}, "move_per_imbalance=0.0 is out of range: allowed > 0"),
        ({"hold_ms": 0}, "hold_ms=0.0 is out of range: allowed > 0"),
        ({"stop_ticks": "x"}, "not a valid int"),
    ],
)
def test_bad_parameters_are_clear_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ImbalanceTaker(params)


@pytest.mark.parametrize("mode", ["python", "compiled"])
def test_the_cost_counts_the_instruments_taker_fee_unless_the_parameter_overrides_it(
    mode: str,
) -> None:
    # a 5 bps taker fee on a ~100.00 price is ~5 ticks per crossing: no signal beats it
    day = generate_day(
        date=dt.date(2024, 3, 5),
        n_events=100_000,
        seed=3,
        params=SyntheticParams(signal_strength=1.0),
    )
    costly = dataclasses.replace(day.instrument, taker_fee=0.0005)

    def fills(params: dict[str, float]) -> int:
        return len(
            Backtest(
                instruments=[costly],
                streams=[[day.events]],
                strategies=[ImbalanceTaker(params)],
                mode=mode,  # type: ignore[arg-type]
                latency=LatencyConfig(entry_ns=LATENCY_NS, response_ns=LATENCY_NS),
                sample_ns=1_000_000_000,
            ).run().fills
        )

    assert fills({}) == 0  # the instrument's fee: nothing is worth crossing for
    assert fills({"taker_fee_bps": 0.0}) > 20  # told to ignore it: the signal trades
    assert fills({"taker_fee_bps": 5.0}) == 0
