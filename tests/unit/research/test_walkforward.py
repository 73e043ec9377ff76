"""Walk-forward windows, choices and stitching on result tables written in the test."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from framework.core.errors import ConfigError
from research.objectives import rank_sets
from research.walkforward import WalkForward, WalkForwardSpec, choose, walk_forward, windows

DAYS = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(10)]
MINUTE = 60 * 1_000_000_000


def _study(
    pnl: dict[str, list[float]], intraday: dict[str, list[float]] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Result rows and equity curves: each day of set ``k`` makes ``pnl[k][i]`` in one
    return, or in the returns ``intraday[k]`` (the same every day) when given."""
    rows, curves = [], []
    for k, v in pnl.items():
        for i, d in enumerate(DAYS):
            steps = (intraday or {}).get(k, [v[i]])
            eq = np.concatenate([[0.0], np.cumsum(steps)])
            rows.append({"key": k, "day": d, "pnl": float(eq[-1]), "max_drawdown": 1.0})
            curves += [
                {"key": k, "day": d, "ts": j * MINUTE, "equity": float(e)} for j, e in enumerate(eq)
            ]
    return pl.DataFrame(rows), pl.DataFrame(curves)


def _wf(pnl: dict[str, list[float]], spec: str, objective: str) -> WalkForward:
    results, curves = _study(pnl)
    return walk_forward(results, curves, WalkForwardSpec.parse(spec), objective, MINUTE)


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
    wf = _wf({"A": [5] * 5 + [-5] * 5, "B": [-1] * 5 + [4] * 5, "C": [0] * 10}, "3:1", "pnl")
    keys = wf.windows["key"].to_list()
    assert keys[:2] == ["A", "A"]
    assert keys[-1] == "B"
    assert wf.distinct_choices >= 2
    assert wf.oos["day"].to_list() == DAYS[3:]  # every test day once, in order
    assert wf.oos["equity"].to_list() == np.cumsum(wf.oos["pnl"].to_list()).tolist()
    # the stitched statistics are of the days the choices traded
    assert wf.oos_stats["pnl"] == pytest.approx(wf.oos_pnl)
    assert wf.oos_stats["n_days"] == len(DAYS) - 3
    assert wf.is_stats["pnl"] == pytest.approx(wf.is_pnl)


def test_noise_is_worse_out_of_sample() -> None:
    rng = np.random.default_rng(3)
    wf = _wf({f"s{i:02d}": rng.normal(0, 1, 10).tolist() for i in range(40)}, "3:1", "pnl")
    assert wf.oos_pnl < wf.is_pnl  # the in-sample winner was chosen on these very days


def test_a_window_ranks_sets_as_the_study_does() -> None:
    """Sharpe and Sortino over days are of the intraday returns of every day (not a mean of
    daily figures), pnl_dd is over the stitched drawdown: the values by hand, and the
    window's choice is the first of the study's own ranking."""
    steps = {"A": [0.5, -0.25, 0.75], "B": [1.0, 0.5, 0.5], "C": [5.0, -3.0, 1.0]}
    results, curves = _study({k: [sum(v)] * 10 for k, v in steps.items()}, steps)

    def by_hand(r: list[float]) -> float:
        r = r * 10  # every day the same intraday returns
        mu = sum(r) / len(r)
        sd = math.sqrt(sum((x - mu) ** 2 for x in r) / (len(r) - 1))
        return mu / sd * math.sqrt(252 * 6.5 * 60)  # one-minute returns, annualised

    def top(objective: str, days: list[dt.date] = DAYS) -> dict[str, object]:
        best = choose(results, curves, days, [objective], MINUTE)
        assert best is not None
        return best

    table = rank_sets(results, curves, MINUTE, ["sharpe"])
    want = sorted(steps, key=lambda k: -by_hand(steps[k]))
    assert table["key"].to_list() == want
    assert table["sharpe"].to_list() == pytest.approx([by_hand(steps[k]) for k in want])
    assert top("sharpe")["key"] == want[0]
    assert rank_sets(results, curves, MINUTE, ["pnl"])["key"].to_list() == ["C", "B", "A"]
    # C's days lose 3 from a peak of 5 inside each day; A's 0.25 is below the days' own 1.0
    dd = rank_sets(results, curves, MINUTE, ["pnl_dd"])
    assert dd["key"].to_list() == ["B", "A", "C"]  # A and C tie at 10: by key
    assert dd["pnl_dd"].to_list() == pytest.approx([20.0, 10.0, 10.0])
    # a window of two days: the same ranking over those days only
    assert top("pnl", DAYS[:2])["score"] == pytest.approx(6.0)
    with pytest.raises(ConfigError, match="'alpha' is unknown"):
        walk_forward(results, curves, WalkForwardSpec(3, 1), "alpha", MINUTE)


def test_a_set_missing_a_train_day_is_not_chosen() -> None:
    results, curves = _study({"A": [1.0] * 10, "B": [2.0] * 10})
    cut = results.filter(~((pl.col("key") == "B") & (pl.col("day") == DAYS[1])))
    wf = walk_forward(cut, curves, WalkForwardSpec(3, 1), "pnl", MINUTE)
    assert wf.windows["key"].to_list()[:2] == ["A", "A"]  # B lacks day 2 of these windows
    assert set(wf.windows["key"].to_list()[2:]) == {"B"}
    chosen = walk_forward(results, curves, WalkForwardSpec(3, 1), "pnl", MINUTE, choices={0: "A"})
    assert chosen.windows["key"].to_list()[:2] == ["A", "B"]  # window 0 was chosen elsewhere
