"""The study report: every section drawn from a small study written in the test; the Pareto
front and parameter importance against values worked out by hand."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from research.objectives import pareto_front
from research.overfit import deflated_sharpe, pbo_cscv
from research.report import StudyData, importance, write_report
from research.walkforward import WalkForwardSpec, walk_forward


def test_pareto_front_by_hand() -> None:
    sets = pl.DataFrame(
        {
            "key": ["a", "b", "c", "d", "e"],
            "sharpe": [3.0, 2.0, 2.5, 1.0, float("nan")],
            "max_drawdown": [10.0, 4.0, 12.0, 1.0, 0.5],
        }
    )
    # c: a has a higher Sharpe and a smaller drawdown; e: no Sharpe
    assert pareto_front(sets, ["sharpe", "max_drawdown"])["key"].to_list() == ["a", "b", "d"]


def test_importance_by_hand() -> None:
    # score = 2 x (x in {0, 1}) + 0 y: x explains everything, y nothing
    sets = pl.DataFrame({"x": [0, 0, 1, 1], "y": [0, 1, 0, 1], "score": [0.0, 0.0, 2.0, 2.0]})
    assert importance(sets, ["x", "y"]) == {"x": pytest.approx(1.0), "y": pytest.approx(0.0)}
    flat = sets.with_columns(pl.lit(1.0).alias("score"))
    assert importance(flat, ["x", "y"]) == {"x": 0.0, "y": 0.0}


def test_report_has_every_section(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(8)]
    keys, rows, per_day = [], [], []
    for a in (1, 2, 3):
        for b in (0.5, 1.0):
            key = f"a={a},b={b}"
            keys.append(key)
            pnl = rng.normal(a * b, 1.0, len(days))
            per_day += [
                {"key": key, "day": d, "pnl": float(v)} for d, v in zip(days, pnl, strict=True)
            ]
            rows.append(
                {
                    "key": key,
                    "a": a,
                    "b": b,
                    "score": float(pnl.mean()),
                    "pnl": float(pnl.sum()),
                    "sharpe": float(pnl.mean() / pnl.std()),
                    "max_drawdown": float(rng.uniform(1, 5)),
                    "n_fills": 10,
                }
            )
    sets = pl.DataFrame(rows)
    pd = pl.DataFrame(per_day).with_columns(max_drawdown=pl.lit(0.0))
    curves = pd.select("key", "day", pl.lit(0).alias("ts"), pl.lit(0.0).alias("equity"))
    returns = rng.normal(0, 1, size=(64, len(keys)))
    data = StudyData(
        title="Study: test",
        strategy="OneTickMM",
        objective="pnl",
        params=["a", "b"],
        sets=sets,
        per_day=pd,
        walk=walk_forward(pd, curves, WalkForwardSpec(3, 1), "pnl"),
        pbo=pbo_cscv(returns, n_groups=8),
        dsr=deflated_sharpe(returns[:, 0], returns.mean(0) / returns.std(0)),
        commands={k: f"hftlab backtest one_tick_mm --param {k}" for k in keys},
    )
    page = write_report(data, tmp_path).read_text()
    for title in (
        "Summary",
        "Overfitting",
        "Walk-forward",
        "In sample against out of sample",
        "Heat map",
        "Slices",
        "Parameter importance",
        "Pareto front",
    ):
        assert f"<h2>{title}</h2>" in page
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 6
    assert "Deflated Sharpe ratio" in page
    assert "Probability of backtest overfitting" in page
    assert "hftlab backtest one_tick_mm --param a=3,b=1.0" in page  # the best set re-runs


@pytest.mark.parametrize("n_params", [1, 2, 7])
def test_a_study_of_any_number_of_parameters_is_drawn(tmp_path: Path, n_params: int) -> None:
    rng = np.random.default_rng(n_params)
    names = [f"p{i}" for i in range(n_params)]
    rows = [
        {"key": f"k{j}", **{p: int(rng.integers(0, 3)) for p in names}, "score": float(v),
         "pnl": float(v), "sharpe": float(v), "max_drawdown": 1.0, "n_fills": 1}
        for j, v in enumerate(rng.normal(size=12))
    ]  # fmt: skip
    data = StudyData("Study", "S", "pnl", names, pl.DataFrame(rows))
    page = write_report(data, tmp_path).read_text()
    assert "<h2>Parameter importance</h2>" in page
    # importance and slices always; the heat map from two parameters on; the Pareto front
    want = 3 + (n_params >= 2)
    assert len(re.findall(r'src="data:image/png;base64,', page)) == want
