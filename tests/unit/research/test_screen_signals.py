"""Signals: positions held for their bars and flat at each day's end, nothing from later
bars in a row, user functions found and checked, their spaces parsed as optimize's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pytest

from framework.core.errors import ConfigError
from framework.strategy import Params, param
from research.screen.bars import BAR_SCHEMA
from research.screen.core import space_of
from research.screen.signals import BUILTIN, hold_for, load_signal, signal_matrix

SEC = 1_000_000_000
T0 = int(dt.datetime(2024, 3, 4, 15, tzinfo=dt.UTC).timestamp()) * SEC


def synthetic_bars(n: int, seed: int = 0, days: int = 1) -> pl.DataFrame:
    """Random bars on a 1-s grid (``days`` days of ``n`` bars)."""
    rng = np.random.default_rng(seed)
    ts = np.concatenate([T0 + d * 86_400 * SEC + np.arange(1, n + 1) * SEC for d in range(days)])
    m = len(ts)
    close = 10_000 + np.cumsum(rng.choice([-0.5, 0, 0.5], m))
    imb = rng.uniform(-1, 1, m)
    spread = np.ones(m)
    return pl.DataFrame(
        {
            "ts": ts,
            "open": close,
            "high": close + rng.uniform(0, 1, m),
            "low": close - rng.uniform(0, 1, m),
            "close": close,
            "microprice": close + imb * spread / 2,
            "imbalance": imb,
            "spread": spread,
            "buy_volume": rng.integers(0, 300, m),
            "sell_volume": rng.integers(0, 300, m),
            "n_trades": rng.integers(0, 4, m),
            "vwap": close,
        },
        schema=BAR_SCHEMA,
    )


def test_a_position_is_held_its_bars_and_closed_at_the_days_end() -> None:
    b = synthetic_bars(10, days=2)
    d = np.zeros(20, np.int8)
    d[[1, 2, 3]] = 1  # long at 1: out at 4, whatever the signal says meanwhile
    d[5] = -1  # short at 5: out at 8
    d[8] = 1  # the exit bar is no entry bar
    d[9] = 1  # the day's last bar: no entry
    d[7] = -1  # short at 7: closed at the first day's last bar, 9
    d[17] = -1  # short at 17 of the second day: no bar follows, nothing says it ends
    le, lx, se, sx = hold_for(b, d, 3)
    assert np.flatnonzero(le).tolist() == [1]
    assert np.flatnonzero(lx).tolist() == [4]
    assert np.flatnonzero(se).tolist() == [5, 17]
    assert np.flatnonzero(sx).tolist() == [8]
    d[5] = 0
    le, lx, se, sx = hold_for(b, d, 3)
    assert np.flatnonzero(se).tolist() == [7, 17]
    assert np.flatnonzero(sx).tolist() == [9]
    le, lx, se, sx = hold_for(b, np.where(np.arange(20) == 3, -1, d), 5, reverse_exit=True)
    assert np.flatnonzero(lx).tolist()[:1] == [3]  # turned against the position: out early


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_no_signal_row_depends_on_a_later_bar(name: str) -> None:
    sig = BUILTIN[name]
    b = synthetic_bars(400, seed=3)
    values: dict[str, Any] = {"hold": 4}
    if "window" in sig.Params.names():
        values["window"] = 5
    if "threshold" in sig.Params.names():
        values["threshold"] = 0.3
    if "z" in sig.Params.names():
        values["z"] = 0.5
    if "lookback" in sig.Params.names():
        values["lookback"] = 5
    base = sig(b, values)
    assert sum(int(a.sum()) for a in base) > 10  # it trades on these bars
    rng = np.random.default_rng(9)
    for cut in (50, 200, 399):
        later = b.with_columns(
            [
                pl.when(pl.int_range(pl.len()) > cut)
                .then(pl.col(c) * pl.lit(rng.uniform(0.5, 1.5)) + 1)
                .otherwise(pl.col(c))
                .cast(b.schema[c])
                .alias(c)
                for c in b.columns
                if c != "ts"
            ]
        )
        for x, y in zip(base, sig(later, values), strict=True):
            assert np.array_equal(x[: cut + 1], y[: cut + 1]), (name, cut)


def test_each_set_is_a_column_of_the_signal_matrix() -> None:
    sig = BUILTIN["trade_flow"]
    b = synthetic_bars(300, seed=4)
    sets = space_of(sig, ["window=2,8", "threshold=0.1,0.4"]).grid()
    mats = signal_matrix(sig, b, sets)
    for j, values in enumerate(sets):
        for m, one in zip(mats, sig(b, values), strict=True):
            assert np.array_equal(m[:, j], one)


def test_a_space_of_a_signal_is_checked_by_optimizes_parser() -> None:
    sig = BUILTIN["imbalance"]
    assert space_of(sig, ["threshold=0.1:0.5:0.1", "hold=1,5"]).size == 10
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        space_of(sig, ["treshold=0.1,0.2"])
    with pytest.raises(ConfigError, match="threshold"):
        space_of(sig, ["threshold=0:2:0.5"])  # imbalance lies in (0, 1)
    with pytest.raises(ConfigError, match="give a step"):
        space_of(sig, ["threshold=0.1:0.5"]).grid()


# a user signal with its parameters declared by its keyword defaults
def gap_signal(bars: pl.DataFrame, *, size: int = 1, hold: int = 3) -> tuple[Any, Any, Any, Any]:
    move = bars["close"].diff().fill_null(0).to_numpy()
    return hold_for(bars, np.sign(move) * (np.abs(move) >= size * 0.5), hold)


class GapParams(Params):
    size: int = param(1, ge=1, le=3)


def declared_signal(bars: pl.DataFrame, *, size: int = 1) -> tuple[Any, Any, Any, Any]:
    return gap_signal(bars, size=size)


declared_signal.Params = GapParams  # type: ignore[attr-defined]


def wrong_shape(bars: pl.DataFrame, *, k: int = 1) -> tuple[Any, ...]:
    return (np.zeros(3, bool),) * 4


def wrong_type(bars: pl.DataFrame, *, k: int = 1) -> tuple[Any, ...]:
    return (np.zeros(bars.height),) * 4


def test_a_user_function_is_loaded_with_its_parameters() -> None:
    sig = load_signal(f"{__name__}:gap_signal")
    assert sig.Params.names() == ["size", "hold"]
    sets = space_of(sig, ["size=1:2", "hold=2,4"]).grid()
    assert len(sets) == 4
    b = synthetic_bars(100)
    le, _, se, _ = sig(b, sets[0])
    assert le.any() or se.any()
    with pytest.raises(ConfigError, match="is not an int"):
        space_of(sig, ["size=a,b"])
    declared = load_signal(f"{__name__}:declared_signal")
    with pytest.raises(ConfigError, match="size"):
        space_of(declared, ["size=1:5"])  # GapParams allows 1..3


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("imbalanse", "did you mean 'imbalance'"),
        ("nope", "unknown signal 'nope'"),
        ("no_such_module_xyz:f", "cannot import module"),
        (f"{__name__}:missing", "has no function 'missing'"),
    ],
)
def test_an_unknown_signal_is_one_clear_error(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_signal(spec)


@pytest.mark.parametrize(
    ("fn", "match"), [("wrong_shape", r"shape \(3,\)"), ("wrong_type", "not boolean")]
)
def test_a_user_function_returning_the_wrong_thing_is_refused(fn: str, match: str) -> None:
    sig = load_signal(f"{__name__}:{fn}")
    with pytest.raises(ConfigError, match=match):
        sig(synthetic_bars(10), {})
