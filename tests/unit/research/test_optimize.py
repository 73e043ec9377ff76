"""Studies run in this process (``workers=0``; the Dask paths are tested in
tests/integration/research): grid and random studies evaluate each (set, day) once and
resume with only what is missing (counted), TPE reports per day and prunes, a
multi-objective study returns its Pareto front, objectives over days are those of the
stitched run, and bad input is one line."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import research
from framework.analysis.stats import DEFAULT_PERIODS_PER_YEAR, sharpe
from framework.core.errors import ConfigError
from framework.engine.config import LatencyConfig, QueueConfig
from research.objectives import pareto_front, parse_objective
from research.optimize import OptimizeResult
from research.overfit import deflated_sharpe, groups_for, pbo_cscv, period_sharpe

from .study_days import L2_DAYS

DAYS = list(L2_DAYS)


def study(root: Path, out: Path, **kw: Any) -> OptimizeResult:
    args: dict[str, Any] = {
        "venue": "SIM",
        "symbol": "SYN",
        "days": DAYS,
        "space": ["max_position=1:4", "order_qty=1,2"],
        "store": root,
        "out": out,
        "workers": 0,
        "mode": "compiled",
        "latency": LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        "queue": QueueConfig(model="power", n=2.0),
    }
    return research.optimize("one_tick_mm", **(args | kw))


def metrics(r: OptimizeResult) -> pl.DataFrame:
    return r.results.drop("batch_size", "batch_seconds").sort("key", "day")


class StopError(Exception):
    """Stands for an interruption (Ctrl-C, a killed client) after some batches."""


def test_a_grid_study_evaluates_every_set_and_day_once(
    research_store: Path, tmp_path: Path
) -> None:
    r = study(research_store, tmp_path / "s")
    assert r.evaluated == 8 * 3
    assert r.reused == 0
    assert r.results.height == 24
    assert r.results.select("key", "day").is_duplicated().sum() == 0
    assert r.trials.height == 8
    assert set(r.trials["state"]) == {"complete"}
    assert r.trials["n_days"].to_list() == [3] * 8
    # ranked best first by the objective, and the best are the first complete ones
    s = r.trials["sharpe"].to_numpy()
    assert np.all(np.diff(s[~np.isnan(s)]) <= 0)
    assert r.best["key"][0] == r.trials["key"][0]
    assert r.trials["score"].equals(r.trials["sharpe"])  # sharpe: higher is better
    # the parameter columns name each set as the results do
    assert sorted(zip(r.trials["max_position"], r.trials["order_qty"], strict=True)) == [
        (m, q) for m in range(1, 5) for q in (1, 2)
    ]
    assert r.daily_pnl().shape == (3, 1 + 8)
    assert (tmp_path / "s" / "trials.parquet").is_file()
    # the same study again: nothing is evaluated
    again = study(research_store, tmp_path / "s")
    assert (again.evaluated, again.reused) == (0, 24)
    assert metrics(again).equals(metrics(r))


def test_a_study_stopped_half_way_resumes_with_only_the_missing_units(
    research_store: Path, tmp_path: Path
) -> None:
    whole = study(research_store, tmp_path / "whole", batch_size=2)
    seen: list[int] = []

    def stop_after_three_batches(evaluated: int) -> None:
        seen.append(evaluated)
        if len(seen) == 3:
            raise StopError

    with pytest.raises(StopError):
        study(research_store, tmp_path / "cut", batch_size=2, on_batch=stop_after_three_batches)
    assert seen == [2, 4, 6]  # three batches of two sets were written before the stop
    resumed = study(research_store, tmp_path / "cut", batch_size=2)
    assert (resumed.evaluated, resumed.reused) == (24 - 6, 6)
    assert metrics(resumed).equals(metrics(whole))


def test_a_random_study_draws_distinct_sets_and_a_longer_one_adds_only_new_ones(
    research_store: Path, tmp_path: Path
) -> None:
    space = ["max_position=1:20", "order_qty=1:3"]
    r = study(research_store, tmp_path / "r", method="random", trials=4, seed=5, space=space)
    assert r.trials.height == 4
    assert r.trials["key"].n_unique() == 4
    assert r.evaluated == 12
    more = study(research_store, tmp_path / "r", method="random", trials=6, seed=5, space=space)
    # the first four draws of a seed are the same sets: only two new ones are run
    assert (more.evaluated, more.reused) == (6, 12)


def test_tpe_reports_each_day_prunes_and_never_evaluates_a_set_twice(
    research_store: Path, tmp_path: Path
) -> None:
    import optuna

    r = study(
        research_store, tmp_path / "t", method="tpe", trials=10, objective="pnl",
        space=["max_position=1:3", "order_qty=1,2"],
    )  # fmt: skip
    assert r.trials.height == 10
    # seeded: the same trials every time, and the median pruner stops some of them
    assert set(r.trials["state"]) == {"complete", "pruned"}
    # 6 distinct sets at most, each day of each evaluated once: repeats asked by TPE are free
    assert r.results.select("key", "day").is_duplicated().sum() == 0
    assert r.evaluated == r.results.height
    assert r.evaluated < 10 * len(DAYS)
    # the deflated Sharpe counts every trial: pruned ones looked at the data too
    assert r.dsr is not None
    assert r.dsr.n_trials == 10
    st = optuna.load_study(study_name=r.study, storage=r.storage and _journal(r.storage))
    complete = [t for t in st.trials if t.state.name == "COMPLETE"]
    assert complete
    for t in complete:  # one report per day, the last one the trial's value
        assert sorted(t.intermediate_values) == list(range(len(DAYS)))
        assert t.intermediate_values[len(DAYS) - 1] == pytest.approx(t.value)
    pruned = [t for t in st.trials if t.state.name == "PRUNED"]
    for t in pruned:
        assert len(t.intermediate_values) < len(DAYS)
    # the trial's value is the pnl over its days, as the results say
    row = r.trials.filter(pl.col("state") == "complete").row(0, named=True)
    assert row["pnl"] == pytest.approx(r.results.filter(pl.col("key") == row["key"])["pnl"].sum())
    # the study resumes: more trials add to it, the old ones stay
    more = study(
        research_store, tmp_path / "t", method="tpe", trials=12, objective="pnl",
        space=["max_position=1:3", "order_qty=1,2"],
    )  # fmt: skip
    assert more.trials.height == 12


def _journal(path: str) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(path))


def test_a_multi_objective_study_returns_the_pareto_front(
    research_store: Path, tmp_path: Path
) -> None:
    r = study(research_store, tmp_path / "m", objective="sharpe,drawdown", days=DAYS[:2])
    assert r.objectives == ("sharpe", "max_drawdown")
    front = r.pareto
    assert front.height >= 1
    assert front.height == r.best.height
    vals = r.trials.select("sharpe", "max_drawdown").to_numpy()

    def beaten(s: float, d: float) -> bool:
        """Some set is at least as good on both objectives and better on one."""
        ge = (vals[:, 0] >= s) & (vals[:, 1] <= d)
        return bool(np.any(ge & ((vals[:, 0] > s) | (vals[:, 1] < d))))

    assert not any(beaten(s, d) for s, d in front.select("sharpe", "max_drawdown").iter_rows())
    off = r.trials.join(front.select("key"), on="key", how="anti")
    assert all(beaten(s, d) for s, d in off.select("sharpe", "max_drawdown").iter_rows())


def test_a_multi_objective_tpe_study_is_told_both_objectives(
    research_store: Path, tmp_path: Path
) -> None:
    r = study(
        research_store, tmp_path / "m", method="tpe", trials=5, objective="sharpe,drawdown",
        days=DAYS[:2],
    )  # fmt: skip
    assert r.trials.height == 5
    assert set(r.trials["state"]) == {"complete"}  # no pruning with several objectives
    assert r.pareto.height >= 1
    assert set(r.pareto["key"]) <= set(r.trials["key"])


def test_pareto_front_of_a_small_table_by_hand() -> None:
    t = pl.DataFrame(
        {
            "key": list("abcdef"),
            "sharpe": [1.0, 2.0, 2.0, 0.5, 3.0, math.nan],
            "max_drawdown": [1.0, 2.0, 3.0, 0.5, 5.0, 0.0],
        }
    )
    # c is beaten by b (same Sharpe, smaller drawdown); f has no Sharpe
    assert sorted(pareto_front(t, ["sharpe", "max_drawdown"])["key"]) == ["a", "b", "d", "e"]


def test_sharpe_over_days_is_of_the_intraday_returns_of_every_day(
    research_store: Path, tmp_path: Path
) -> None:
    r = study(research_store, tmp_path / "s", space=["max_position=2"])
    key = r.trials["key"][0]
    ret = r.returns(key)
    assert ret["day"].n_unique() == 3
    want = sharpe(ret["ret"].to_numpy(), DEFAULT_PERIODS_PER_YEAR)
    assert r.trials["sharpe"][0] == pytest.approx(want)
    # one day: the day's own Sharpe, as summarize gives it
    one = study(research_store, tmp_path / "one", space=["max_position=2"], days=DAYS[:1])
    assert one.trials["sharpe"][0] == one.results["sharpe"][0]
    # drawdown over days is at least each day's own
    assert r.trials["max_drawdown"][0] >= r.results["max_drawdown"].max()


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"days": [dt.date(2024, 3, 9)]}, r"no stored data of SIM/SYN on 2024-03-09"),
        ({"space": ["max_postion=1:3"]}, r"did you mean 'max_position'"),
        ({"space": ["max_position=4:1"]}, r"empty range \(4 > 1\)"),
        ({"method": "random"}, r"--method random needs --trials N"),
        ({"trials": 5}, r"--trials 5 does not apply to --method grid"),
        ({"walk_forward": "3:1"}, r"walk-forward 3:1 needs at least 4 days"),
        ({"walk_forward": "3"}, r"--walk-forward '3': write TRAIN:TEST"),
        ({"method": "anneal"}, r"--method 'anneal' is unknown"),
        ({"objective": "sharp"}, r"--objective 'sharp' is unknown"),
        ({"space": ["max_position=1:3", "improve=true"], "params": {"improve": "x"}}, r"bool"),
        ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, r"not both"),
        ({"scheduler": "127.0.0.1:8786", "workers": None}, r"give the scheduler's address as tcp://HOST:PORT"),
    ],
)
def test_bad_input_is_one_line(
    research_store: Path, tmp_path: Path, kw: dict[str, Any], pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern) as info:
        study(research_store, tmp_path / "bad", **kw)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad").exists()  # refused before anything was made


def test_a_study_resumed_with_other_settings_is_refused(
    research_store: Path, tmp_path: Path
) -> None:
    study(research_store, tmp_path / "s", space=["max_position=1"], days=DAYS[:1])
    with pytest.raises(ConfigError, match=r"was run with latency="):
        study(
            research_store, tmp_path / "s", space=["max_position=1"], days=DAYS[:1],
            latency=LatencyConfig(entry_ns=5_000_000, response_ns=5_000_000),
        )  # fmt: skip


def test_objectives_parse() -> None:
    assert parse_objective("pnl_dd") == ("pnl_dd",)
    assert parse_objective("sharpe, drawdown") == ("sharpe", "max_drawdown")
    with pytest.raises(ConfigError, match="distinct names"):
        parse_objective("sharpe,sharpe")
    with pytest.raises(ConfigError, match="unknown"):
        parse_objective("drawdown")  # minimising drawdown alone: trade nothing


def test_tpe_takes_an_rdb_storage_url(research_store: Path, tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    r = study(research_store, tmp_path / "t", method="tpe", trials=3, storage=url, days=DAYS[:1])
    assert r.storage == url
    assert not (tmp_path / "t" / "optuna.journal").exists()
    assert len(optuna.load_study(study_name=r.study, storage=url).trials) == 3
    with pytest.raises(ConfigError, match="--storage 'nosuch://x' cannot be opened"):
        study(research_store, tmp_path / "u", method="tpe", trials=3, storage="nosuch://x")
    assert not (tmp_path / "u").exists()


def test_every_study_has_its_overfitting_statistics_and_report(
    research_store: Path, tmp_path: Path
) -> None:
    """DSR of the best set's intraday returns against every set's per-period Sharpe (n_trials
    = sets tried), PBO by CSCV of the (periods x sets) return matrix: the same values from
    the study's own returns, in overfit.json, and the report beside them."""
    import json

    r = study(research_store, tmp_path / "s")
    keys = r.trials["key"].to_list()
    best = r.best["key"][0]
    srs = [period_sharpe(r.returns(k)["ret"].to_numpy()) for k in keys]
    want = deflated_sharpe(r.returns(best)["ret"].to_numpy(), srs, n_trials=len(keys))
    assert r.dsr == want
    assert r.dsr.n_trials == 8
    cols = {k: r.returns(k)["ret"].to_numpy() for k in keys}
    assert len({len(c) for c in cols.values()}) == 1  # one grid: every set, every day
    m = np.column_stack([cols[k] for k in r.trials["key"].unique(maintain_order=True)])
    assert r.pbo is not None
    want_pbo = pbo_cscv(m, groups_for(m.shape[0]))
    assert r.pbo.pbo == want_pbo.pbo
    assert np.array_equal(r.pbo.logits, want_pbo.logits)
    saved = json.loads((tmp_path / "s" / "overfit.json").read_text())
    assert saved["n_trials"] == 8
    assert saved["selected"] == best
    assert saved["deflated_sharpe"]["dsr"] == pytest.approx(want.dsr)
    assert saved["pbo"]["pbo"] == pytest.approx(want_pbo.pbo)
    assert saved["walk_forward"] is None
    assert r.report == tmp_path / "s" / "report.html"
    page = r.report.read_text()
    assert "Deflated Sharpe ratio" in page
    assert r.command(r.best.row(0, named=True)) in page.replace("&#x27;", "'")
    # --no-report: the statistics, no page
    again = study(research_store, tmp_path / "n", report=False, space=["max_position=1:2"])
    assert again.report is None
    assert not (tmp_path / "n" / "report.html").exists()
    assert (tmp_path / "n" / "overfit.json").is_file()


def test_a_set_that_never_trades_has_no_deflated_sharpe_and_one_set_no_pbo(
    research_store: Path, tmp_path: Path
) -> None:
    r = study(research_store, tmp_path / "one", space=["max_position=2"], days=DAYS[:1])
    assert r.pbo is None
    assert any("PBO: needs 2 sets or more" in n for n in r.overfit_notes)
    assert r.dsr is not None  # the one set is judged against itself: no deflation
    assert r.dsr.sr0 == 0.0
