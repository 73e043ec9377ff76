"""`hftlab data generate --set KNOB=VALUE`: the synthetic market's knobs from the command line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from framework.cli import main
from framework.ingest.synthetic import SyntheticParams, generate_day
from framework.store import TickStore

DAY = dt.date(2024, 1, 2)


def test_set_knobs_generate_the_same_day_as_the_python_api(store_root: Path) -> None:
    args = [
        "data", "generate", "--symbol", "TREND", "--events", "20000", "--seed", "4",
        "--set", "signal_strength=0.8", "--set", "initial_regime=trending",
        "--set", "transition=((0,0,1),(0,0,1),(0,0,1))", "--store", str(store_root),
    ]  # fmt: skip
    assert main(args) == 0
    stored = TickStore(store_root).read("SIM", "TREND", DAY)
    params = SyntheticParams(
        signal_strength=0.8, initial_regime="trending", transition=((0.0, 0.0, 1.0),) * 3
    )
    day = generate_day(symbol="TREND", date=DAY, n_events=20_000, seed=4, params=params)
    assert np.array_equal(stored, day.events)
    assert not np.array_equal(stored, generate_day(symbol="TREND", date=DAY, n_events=20_000,
                                                   seed=4).events)  # fmt: skip


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("signal_strenght=1", "unknown SyntheticParams knob(s) ['signal_strenght']"),
        ("signal_strength", "write KNOB=VALUE"),
        ("signal_strength=strong", "a value has the wrong type"),
        ("signal_strength=2", "must lie in [0, 1]"),
    ],
)
def test_a_bad_knob_is_one_clear_line_and_a_failure(
    store_root: Path, capsys: pytest.CaptureFixture[str], item: str, message: str
) -> None:
    assert main(["data", "generate", "--set", item, "--store", str(store_root)]) != 0
    assert message in capsys.readouterr().err
    assert not list(store_root.rglob("*.parquet"))
