"""Batched evaluation: N parameter sets of one_tick_mm on one day in ONE replay give, set for
set, the orders, fills, equity and PnL of N separate single runs (bit for bit), on an L2 day
and an L3 day (exact FIFO queues); the results folder keeps each (set, day) once."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from framework.analysis.results import BacktestResult
from framework.analysis.stats import summarize
from framework.engine.backtest import Backtest, store_streams
from framework.store.tickstore import TickStore
from research.evaluate import EvalSpec, ResultsDir, evaluate_batch, run_batch
from research.space import Space, params_key
from strategies.one_tick_mm import OneTickMM

from .study_days import L2_DAYS, L3_DAY, spec_of

#: 8 sets: every copy trades differently from the others
SPACE = ["max_position=1,2,4,6", "improve=false,true"]


def alone(spec: EvalSpec, day: dt.date, values: dict[str, object]) -> BacktestResult:
    """A plain single run of one set, as ``hftlab backtest`` makes it (no isolation)."""
    instruments, streams = store_streams(TickStore(spec.store), [(spec.venue, spec.symbol)], [day])
    return Backtest(
        instruments=instruments,
        streams=streams,
        strategies=[OneTickMM(dict(values), name="solo")],
        latency=spec.latency,
        queue=spec.queue,
        mode=spec.mode,
        sample_ns=spec.sample_ns,
    ).run()


def bits(result: BacktestResult, table: str, name: str) -> pl.DataFrame:
    """One strategy's rows, its name dropped, floats as bit patterns (exact comparison)."""
    df = getattr(result, table).filter(pl.col("strategy") == name).drop("strategy")
    floats = [c for c, t in df.schema.items() if t == pl.Float64]
    return df.with_columns(pl.Series(c, df[c].to_numpy().view(np.int64)) for c in floats)


@pytest.mark.parametrize(("symbol", "day"), [("SYN", L2_DAYS[0]), ("SYN3", L3_DAY)])
def test_a_batch_of_eight_sets_equals_eight_single_runs(
    research_store: Path, symbol: str, day: dt.date
) -> None:
    spec = spec_of(research_store, symbol=symbol)
    sets = Space.parse(OneTickMM, SPACE).grid()
    assert len(sets) == 8
    batch = run_batch(spec, day, sets)
    metrics, equity = evaluate_batch(spec, day, sets)
    assert metrics.height == 8
    assert metrics["batch_size"].to_list() == [8] * 8
    fills = []
    for i, values in enumerate(sets):
        solo = alone(spec, day, values)
        assert bits(solo, "fills", "solo").height > 0  # the comparison is not vacuous
        for table in ("orders", "fills", "equity", "positions", "denials"):
            assert bits(batch, table, f"set_{i}").equals(bits(solo, table, "solo")), (i, table)
        want = summarize(solo, strategy="solo")
        row = metrics.row(i, named=True)
        assert row["key"] == params_key(OneTickMM.Params.create(values))
        for name, stat in [("pnl", "pnl"), ("fees", "fees"), ("n_fills", "n_fills"),
                           ("n_orders", "n_orders"), ("max_drawdown", "max_drawdown"),
                           ("sharpe", "sharpe")]:  # fmt: skip
            assert row[name] == pytest.approx(want[stat], nan_ok=True, rel=0, abs=0), name
        # a sum over fills the tally adds up per strategy in another order: to rounding
        assert row["turnover"] == pytest.approx(want["turnover"], rel=1e-12)
        # the sampled equity's returns are those of the run's Sharpe
        curve = equity.filter(pl.col("key") == row["key"])["equity"].to_numpy()
        assert len(curve) - 1 == want["n_intervals"]
        fills.append(bits(solo, "fills", "solo"))
    assert metrics["fees"].max() > 0  # fees are on: cash and fees mean something
    assert len({f.height for f in fills}) > 1  # the sets trade differently


def test_the_results_folder_keeps_each_set_and_day_once(
    research_store: Path, tmp_path: Path
) -> None:
    spec = spec_of(research_store)
    sets = [{"max_position": 1}, {"max_position": 2}]
    metrics, equity = evaluate_batch(spec, L2_DAYS[0], sets)
    res = ResultsDir(tmp_path / "study")
    assert res.write(metrics, equity).height == 2
    # the same batch again (a task Dask re-ran), and one overlapping it: only what is new
    assert res.write(metrics, equity).height == 0
    more, more_eq = evaluate_batch(spec, L2_DAYS[0], [{"max_position": 2}, {"max_position": 3}])
    assert res.write(more, more_eq).height == 1
    got = ResultsDir(tmp_path / "study")  # read back from disk, as a resumed study does
    assert len(got.done()) == 3
    assert got.metrics().height == 3
    curves = got.equity_curves()
    assert curves.group_by("key").len().height == 3
    assert curves.height == equity.height + more_eq.height // 2
    assert not list((tmp_path / "study").rglob(".*.tmp"))  # nothing half-written


def test_a_batch_refuses_a_day_without_data_in_one_line(research_store: Path) -> None:
    from framework.core.errors import ConfigError

    spec = dataclasses.replace(spec_of(research_store), symbol="NOPE")
    with pytest.raises(ConfigError, match=r"no stored days of SIM/NOPE"):
        evaluate_batch(spec, L2_DAYS[0], [{}])
