"""Walk-forward windows, choices and stitching on result tables written in the test."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from framework.core.errors import ConfigError
from research.walkforward import WalkForwardSpec, scores, walk_forward, windows

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(10)]


def _table(pnl: dict[str, list[float]]) -> pl.DataFrame:
    rows = [
        {"key": k, "day": d, "pnl": v[i], "sharpe": v[i] / 10, "max_drawdown": 1.0}
        for k, v in pnl.items()
        for i, d in enumerate(DAYS)
    ]
    return pl.DataFrame(rows)


def test_spec_parse_and_errors() -> None:
    assert WalkForwardSpec.parse("5:1") == WalkForwardSpec(5, 1, "rolling")
    assert WalkForwardSpec.parse("4:2:expanding") == WalkForwardSpec(4, 2, "expanding")
    for bad, what in (
        ("5", "TRAIN:TEST"),
        ("a:1", "whole days"),
        ("3:1:sideways", "unknown mode"),
        ("0:1", "at least 1"),
    ):
        with pytest.raises(ConfigError, match=what):
            WalkForwardSpec.parse(bad)


def test_rolling_and_expanding_windows() -> None:
    roll = windows(DAYS, WalkForwardSpec(4, 2))
    assert [(w.train[0].day, w.train[-1].day, w.test[0].day, w.test[-1].day) for w in roll] == [
        (1, 4, 5, 6),
        (3, 6, 7, 8),
        (5, 8, 9, 10),
    ]
    exp = windows(DAYS, WalkForwardSpec(4, 4, "expanding"))
    assert [(len(w.train), len(w.test)) for w in exp] == [(4, 4), (8, 2)]  # the last one short
    with pytest.raises(ConfigError, match="needs at least 11 days"):
        windows(DAYS, WalkForwardSpec(10, 1))


def test_regime_change_changes_the_choice() -> None:
    # A earns in the first half, B in the second: rolling 3:1 picks A, then B
    t = _table({"A": [5] * 5 + [-5] * 5, "B": [-1] * 5 + [4] * 5, "C": [0] * 10})
    wf = walk_forward(t, WalkForwardSpec(3, 1), "pnl")
    keys = wf.windows["key"].to_list()
    assert keys[:2] == ["A", "A"]
    assert keys[-1] == "B"
    assert wf.distinct_choices >= 2
    assert wf.oos["day"].to_list() == DAYS[3:]  # every test day once, in order
    assert wf.oos["equity"].to_list() == np.cumsum(wf.oos["pnl"].to_list()).tolist()


def test_noise_is_worse_out_of_sample() -> None:
    rng = np.random.default_rng(3)
    t = _table({f"s{i:02d}": rng.normal(0, 1, 10).tolist() for i in range(40)})
    wf = walk_forward(t, WalkForwardSpec(3, 1), "pnl")
    assert wf.oos_pnl < wf.is_pnl  # the in-sample winner was chosen on these very days


def test_scores_objectives() -> None:
    t = _table({"A": [1.0] * 10, "B": [2.0] * 10})
    assert scores(t, "pnl")["key"].to_list() == ["B", "A"]
    assert scores(t, "sharpe")["score"].to_list() == pytest.approx([0.2, 0.1])
    assert scores(t, "pnl_dd")["score"].to_list() == pytest.approx([20.0, 10.0])
    with pytest.raises(ConfigError, match="unknown objective"):
        scores(t, "alpha")
