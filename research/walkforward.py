"""Walk-forward validation over days.

The days of a study are cut into train/test windows: ``TRAIN`` days to choose parameters on,
the ``TEST`` days after them to judge the choice. *Rolling* windows slide by ``TEST`` days and
keep ``TRAIN`` days of history; *expanding* ones keep every day from the first. The parameter
set chosen on each train window trades its test window; those test days, stitched, are the
out-of-sample result — the study's headline — shown beside the in-sample one (the set that is
best over all days, on the same days), which is what an optimisation without validation would
have reported.

Everything here works on the study's table of results, one row per (parameter set, day), and
the sets' equity sampled on the return grid: the evaluation is done once, the windows only
read it. A window chooses by :func:`research.objectives.rank_sets` -- the very ranking the
study reports over all its days -- so a set best on a train window is the set an
optimisation of those days alone would have named.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from framework.analysis.stats import DEFAULT_INTERVAL_NS
from framework.core.errors import ConfigError
from research.objectives import parse_objective, rank_sets, set_stats

MODES = ("rolling", "expanding")


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


def window_rows(
    results: pl.DataFrame, curves: pl.DataFrame, days: Sequence[dt.date]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The (set, day) rows and equity of ``days``, of the sets evaluated on every one of
    them (a set missing a day -- a pruned trial -- has no score to compare there)."""
    m = results.filter(pl.col("day").is_in(list(days)))
    whole = (
        m.group_by("key")
        .agg(pl.col("day").n_unique().alias("n"))
        .filter(pl.col("n") == len(set(days)))
    )
    m = m.join(whole.select("key"), on="key", how="semi")
    c = curves.filter(pl.col("day").is_in(list(days))).join(m.select("key"), on="key", how="semi")
    return m, c


def choose(
    results: pl.DataFrame,
    curves: pl.DataFrame,
    days: Sequence[dt.date],
    objectives: Sequence[str],
    interval_ns: int,
    keys: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """The best set over ``days`` (among ``keys`` when given), ranked as the study ranks
    (:func:`research.objectives.rank_sets`): its aggregate row with ``score``; None when no
    set was evaluated on every one of the days."""
    m, c = window_rows(results, curves, days)
    if keys is not None:
        m = m.filter(pl.col("key").is_in(list(keys)))
    if not len(m):
        return None
    return rank_sets(m, c, interval_ns, objectives).row(0, named=True)


@dataclass
class WalkForward:
    """The outcome of a walk-forward: the windows with their choices, the out-of-sample days
    and the in-sample comparison."""

    spec: WalkForwardSpec
    objective: str
    #: one row per window: window, train_from, train_to, test_from, test_to, key,
    #: train_score, test_score (the objective signed so higher is better)
    windows: pl.DataFrame
    #: one row per test day: day, window, key, pnl, equity (stitched, cumulative)
    oos: pl.DataFrame
    #: the set best over all days, on the same days: day, key, pnl, equity
    insample: pl.DataFrame
    #: statistics of the stitched out-of-sample run (``set_stats``: pnl, sharpe, ...)
    oos_stats: dict[str, Any] = field(default_factory=dict)
    #: the same of the in-sample set on the same test days
    is_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def oos_pnl(self) -> float:
        return float(self.oos["pnl"].sum()) if len(self.oos) else math.nan

    @property
    def is_pnl(self) -> float:
        return float(self.insample["pnl"].sum()) if len(self.insample) else math.nan

    @property
    def distinct_choices(self) -> int:
        return int(self.windows["key"].n_unique())

    def summary(self) -> dict[str, Any]:
        """Plain values of the headline figures (for ``overfit.json`` and the CLI)."""
        return {
            "spec": str(self.spec),
            "objective": self.objective,
            "windows": len(self.windows),
            "distinct_choices": self.distinct_choices,
            "out_of_sample": _plain(self.oos_stats),
            "in_sample": _plain(self.is_stats),
        }


def _plain(stats: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in stats.items()}  # fmt: skip


def _stitched(
    results: pl.DataFrame, curves: pl.DataFrame, picks: pl.DataFrame, interval_ns: int
) -> dict[str, Any]:
    """Statistics of the run that trades set ``picks[key]`` on each day ``picks[day]``: the
    day rows and equity of those (set, day) pairs, stitched as one set's days are."""
    m = results.join(picks.select("key", "day"), on=["key", "day"], how="semi").sort("day")
    c = curves.join(picks.select("key", "day"), on=["key", "day"], how="semi")
    return set_stats(m, c.sort("day", "ts"), interval_ns) if len(m) else {}


def walk_forward(
    results: pl.DataFrame,
    curves: pl.DataFrame,
    spec: WalkForwardSpec,
    objectives: str | Sequence[str] = ("sharpe",),
    interval_ns: int = DEFAULT_INTERVAL_NS,
    choices: Mapping[int, str] | None = None,
) -> WalkForward:
    """Run the windows of ``spec`` over a study's per (set, day) ``results`` and their
    sampled equity ``curves`` (key, day, ts, equity): choose on each train window by the
    first of ``objectives`` (:func:`choose`, as the study ranks its sets), judge on its test
    window, stitch the test days. ``choices`` (window index -> key) gives windows whose set
    was chosen elsewhere (a TPE study of the window's train days); those sets need rows on
    the train and test days of their window only."""
    objs = parse_objective(objectives)
    missing = {"key", "day", "pnl"} - set(results.columns)
    if missing:
        msg = f"walk_forward needs result columns {sorted(missing)}"
        raise ConfigError(msg)
    days = sorted(results["day"].unique().to_list())
    wins = windows(days, spec)
    rows, oos = [], []
    for w in wins:
        keys = None if choices is None or w.index not in choices else [choices[w.index]]
        best = choose(results, curves, w.train, objs, interval_ns, keys)
        if best is None:
            msg = f"walk-forward window {w.index}: no set was evaluated on every train day"
            raise ConfigError(msg)
        te_rows = results.filter(pl.col("day").is_in(list(w.test)) & (pl.col("key") == best["key"]))
        te = choose(results, curves, w.test, objs, interval_ns, [best["key"]])
        rows.append(
            {
                "window": w.index,
                "train_from": w.train[0],
                "train_to": w.train[-1],
                "test_from": w.test[0],
                "test_to": w.test[-1],
                "key": best["key"],
                "train_score": best["score"],
                "test_score": None if te is None else te["score"],
            }
        )
        oos.append(te_rows.select("day", pl.lit(w.index).alias("window"), "key", "pnl"))
    test_days = [d for w in wins for d in w.test]
    oos_df = pl.concat(oos).sort("day")
    oos_df = oos_df.with_columns(pl.col("pnl").cum_sum().alias("equity"))
    overall = choose(results, curves, days, objs, interval_ns)
    ins = results.filter(pl.col("day").is_in(test_days))
    ins = ins.filter(pl.col("key") == (overall["key"] if overall is not None else None))
    ins = ins.select("day", "key", "pnl").sort("day")
    ins = ins.with_columns(pl.col("pnl").cum_sum().alias("equity"))
    return WalkForward(
        spec,
        objs[0],
        pl.DataFrame(rows),
        oos_df,
        ins,
        oos_stats=_stitched(results, curves, oos_df, interval_ns),
        is_stats=_stitched(results, curves, ins, interval_ns),
    )


__all__ = ["WalkForward", "WalkForwardSpec", "choose", "walk_forward", "window_rows", "windows"]
