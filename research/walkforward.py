"""Walk-forward validation over days.

The days of a study are cut into train/test windows: ``TRAIN`` days to choose parameters on,
the ``TEST`` days after them to judge the choice. *Rolling* windows slide by ``TEST`` days and
keep ``TRAIN`` days of history; *expanding* ones keep every day from the first. The parameter
set chosen on each train window trades its test window; those test days, stitched, are the
out-of-sample result — the study's headline — shown beside the in-sample one (the set that is
best over all days, on the same days), which is what an optimisation without validation would
have reported.

Everything here works on the study's table of results, one row per (parameter set, day): the
evaluation is done once, the windows only read it. Columns used: ``key`` (the parameter set's
canonical key), ``day`` (a date), ``pnl`` and the objective's own column(s).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from framework.core.errors import ConfigError

MODES = ("rolling", "expanding")
OBJECTIVES = ("sharpe", "pnl", "pnl_dd", "sortino")


@dataclass(frozen=True)
class WalkForwardSpec:
    """``TRAIN:TEST[:rolling|expanding]`` in days."""

    train: int
    test: int
    mode: str = "rolling"

    @classmethod
    def parse(cls, text: str) -> WalkForwardSpec:
        parts = text.split(":")
        hint = "write TRAIN:TEST[:rolling|expanding] in days, e.g. 5:1 or 10:2:expanding"
        if len(parts) not in (2, 3):
            raise ConfigError(f"--walk-forward {text!r}: {hint}")
        try:
            train, test = int(parts[0]), int(parts[1])
        except ValueError:
            raise ConfigError(
                f"--walk-forward {text!r}: TRAIN and TEST are whole days; {hint}"
            ) from None
        mode = parts[2] if len(parts) == 3 else "rolling"
        if mode not in MODES:
            raise ConfigError(f"--walk-forward {text!r}: unknown mode {mode!r}; {hint}")
        if train < 1 or test < 1:
            raise ConfigError(f"--walk-forward {text!r}: TRAIN and TEST must be at least 1 day")
        return cls(train, test, mode)

    def __str__(self) -> str:
        return f"{self.train}:{self.test}:{self.mode}"


@dataclass(frozen=True)
class Window:
    index: int
    train: tuple[dt.date, ...]
    test: tuple[dt.date, ...]


def windows(days: list[dt.date], spec: WalkForwardSpec) -> list[Window]:
    """The train/test windows over ``days`` (sorted); the last test window may be short."""
    d = sorted(set(days))
    if len(d) < spec.train + 1:
        msg = (
            f"walk-forward {spec.train}:{spec.test} needs at least {spec.train + 1} days "
            f"(a train window and one test day); the study has {len(d)}"
        )
        raise ConfigError(msg)
    out = []
    k = 0
    while True:
        t0 = spec.train + k * spec.test  # first test day
        if t0 >= len(d):
            break
        start = 0 if spec.mode == "expanding" else t0 - spec.train
        out.append(Window(k, tuple(d[start:t0]), tuple(d[t0 : t0 + spec.test])))
        k += 1
    return out


def scores(rows: pl.DataFrame, objective: str) -> pl.DataFrame:
    """Each parameter set's score over the days in ``rows`` (higher is better): ``pnl`` the
    total PnL; ``sharpe`` / ``sortino`` the mean of the daily values (a day without one counts
    as 0: a set that never traded has no edge); ``pnl_dd`` the total PnL over the largest
    daily drawdown (``max_drawdown``, a positive amount; at least one currency unit)."""
    if objective not in OBJECTIVES:
        msg = f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}"
        raise ConfigError(msg)
    g = rows.group_by("key")
    if objective == "pnl":
        s = g.agg(pl.col("pnl").sum().alias("score"))
    elif objective in ("sharpe", "sortino"):
        s = g.agg(pl.col(objective).fill_nan(None).fill_null(0.0).mean().alias("score"))
    else:
        s = g.agg(
            (
                pl.col("pnl").sum() / pl.max_horizontal(pl.col("max_drawdown").abs().max(), 1.0)
            ).alias("score")
        )
    return s.sort(["score", "key"], descending=[True, False], nulls_last=True)


@dataclass
class WalkForward:
    """The outcome of a walk-forward: the windows with their choices, the out-of-sample days
    and the in-sample comparison."""

    spec: WalkForwardSpec
    objective: str
    #: one row per window: window, train_from, train_to, test_from, test_to, key, train_score,
    #: test_score
    windows: pl.DataFrame
    #: one row per test day: day, window, key, pnl, equity (stitched, cumulative)
    oos: pl.DataFrame
    #: the set best over all days, on the same days: day, key, pnl, equity
    insample: pl.DataFrame

    @property
    def oos_pnl(self) -> float:
        return float(self.oos["pnl"].sum()) if len(self.oos) else math.nan

    @property
    def is_pnl(self) -> float:
        return float(self.insample["pnl"].sum()) if len(self.insample) else math.nan

    @property
    def distinct_choices(self) -> int:
        return int(self.windows["key"].n_unique())


def walk_forward(
    results: pl.DataFrame,
    spec: WalkForwardSpec,
    objective: str = "sharpe",
    score: Callable[[pl.DataFrame, str], pl.DataFrame] = scores,
) -> WalkForward:
    """Run the windows of ``spec`` over a study's per (set, day) ``results`` (every set
    evaluated on every day): choose on each train window by ``objective``, judge on its test
    window, stitch the test days."""
    missing = {"key", "day", "pnl"} - set(results.columns)
    if missing:
        msg = f"walk_forward needs result columns {sorted(missing)}"
        raise ConfigError(msg)
    days = sorted(results["day"].unique().to_list())
    wins = windows(days, spec)
    rows, oos = [], []
    for w in wins:
        tr = score(results.filter(pl.col("day").is_in(list(w.train))), objective)
        best = tr.row(0, named=True)
        te_rows = results.filter(pl.col("day").is_in(list(w.test)) & (pl.col("key") == best["key"]))
        te = score(te_rows, objective) if len(te_rows) else None
        rows.append(
            {
                "window": w.index,
                "train_from": w.train[0],
                "train_to": w.train[-1],
                "test_from": w.test[0],
                "test_to": w.test[-1],
                "key": best["key"],
                "train_score": best["score"],
                "test_score": None if te is None or not len(te) else te["score"][0],
            }
        )
        oos.append(te_rows.select("day", pl.lit(w.index).alias("window"), "key", "pnl"))
    test_days = [d for w in wins for d in w.test]
    oos_df = pl.concat(oos).sort("day") if oos else pl.DataFrame()
    if len(oos_df):
        oos_df = oos_df.with_columns(pl.col("pnl").cum_sum().alias("equity"))
    overall = score(results, objective).row(0, named=True)["key"]
    ins = (
        results.filter(pl.col("day").is_in(test_days) & (pl.col("key") == overall))
        .select("day", "key", "pnl")
        .sort("day")
        .with_columns(pl.col("pnl").cum_sum().alias("equity"))
    )
    return WalkForward(spec, objective, pl.DataFrame(rows), oos_df, ins)


__all__ = ["OBJECTIVES", "WalkForward", "WalkForwardSpec", "scores", "walk_forward", "windows"]
