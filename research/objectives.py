"""What a study optimises: per-set statistics over several days, from the (set, day) rows and
the sampled equity the evaluations wrote.

Over days, a set's statistics are those of its stitched run (each day's equity starts at 0,
so day ``i`` is shifted by the PnL of the days before it):

* ``pnl`` -- the sum of the daily PnL;
* ``sharpe`` / ``sortino`` -- of the intraday returns of every day together (the diffs of
  each day's equity grid, never across a night), annualised as ``summarize`` does; with one
  day they are the day's own figures;
* ``max_drawdown`` (``drawdown`` in ``--objective``) -- the larger of the stitched grid's
  maximum drawdown and the worst intraday one (a day's own, from its finer equity samples);
* ``pnl_dd`` -- ``pnl / max_drawdown`` (``inf`` for a gain without a drawdown, NaN for none).

``--objective`` names one (maximised: ``sharpe``, ``sortino``, ``pnl``, ``pnl_dd``) or two or
more separated by commas for a multi-objective study (``sharpe,drawdown``: Sharpe up,
drawdown down), whose answer is the Pareto front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from framework.analysis.stats import (
    MIN_INTERVALS,
    TRADING_SECONDS_PER_YEAR,
    max_drawdown,
    sharpe,
    sortino,
)
from framework.core.errors import ConfigError
from framework.core.timeutil import NS_PER_S

#: objective -> direction (+1 maximise, -1 minimise)
OBJECTIVES: dict[str, int] = {
    "sharpe": 1,
    "sortino": 1,
    "pnl": 1,
    "pnl_dd": 1,
    "max_drawdown": -1,
}
#: short names ``--objective`` also takes
ALIASES = {"drawdown": "max_drawdown"}
#: those a single-objective study may take (a study minimising drawdown alone trades nothing)
SINGLE = ("sharpe", "pnl", "pnl_dd", "sortino")
#: per-set columns of :func:`aggregate`, beside the objectives
SUMS = ("gross_pnl", "fees", "n_fills", "n_orders", "turnover", "n_denials")


def parse_objective(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"sharpe"`` -> ``("sharpe",)``; ``"sharpe,drawdown"`` -> ``("sharpe",
    "max_drawdown")``, a multi-objective pair (names as the trials table's columns)."""
    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text)]
    names = [ALIASES.get(n, n) for n in names]
    if len(names) == 1:
        if names[0] not in SINGLE:
            msg = (
                f"--objective {names[0]!r} is unknown; choose {', '.join(SINGLE)}, or several "
                f"comma-separated for a Pareto front (e.g. sharpe,drawdown)"
            )
            raise ConfigError(msg)
        return (names[0],)
    bad = [n for n in names if n not in OBJECTIVES]
    if bad or len(set(names)) != len(names):
        msg = (
            f"--objective {','.join(names)!r}: give distinct names of "
            f"{', '.join([*OBJECTIVES, *ALIASES])} "
            "(e.g. sharpe,drawdown)"
        )
        raise ConfigError(msg)
    return tuple(names)


def set_stats(days: pl.DataFrame, curves: pl.DataFrame, interval_ns: int) -> dict[str, Any]:
    """Statistics of one set over its days: ``days`` its (set, day) rows, ``curves`` its
    sampled equity (key, day, ts, equity), both sorted by day."""
    ppy = TRADING_SECONDS_PER_YEAR * NS_PER_S / interval_ns
    returns: list[np.ndarray] = []
    stitched: list[np.ndarray] = []
    offset = 0.0
    pnl = days["pnl"].to_numpy()
    by_day = curves.partition_by("day", as_dict=True, maintain_order=True)
    for day, day_pnl in zip(days["day"].to_list(), pnl, strict=True):
        part = by_day.get((day,))
        eq = part["equity"].to_numpy() if part is not None else np.zeros(0)
        returns.append(np.diff(eq))
        stitched.append(eq + offset)
        offset += float(day_pnl)
    r = np.concatenate(returns) if returns else np.zeros(0)
    enough = len(r) >= MIN_INTERVALS
    total = float(pnl.sum())
    dd = max(
        max_drawdown(np.concatenate([[0.0], *stitched])),
        float(days["max_drawdown"].fill_null(0.0).max() or 0.0),  # type: ignore[arg-type]
    )
    if dd > 0:
        pnl_dd = total / dd
    else:
        pnl_dd = math.inf if total > 0 else (-math.inf if total < 0 else math.nan)
    out: dict[str, Any] = {
        "n_days": days.height,
        "pnl": total,
        "sharpe": sharpe(r, ppy) if enough else math.nan,
        "sortino": sortino(r, ppy) if enough else math.nan,
        "max_drawdown": dd,
        "pnl_dd": pnl_dd,
    }
    for c in SUMS:
        if c in days.columns:  # a table of the objectives' own columns has none
            out[c] = days[c].sum()
    return out


def aggregate(metrics: pl.DataFrame, curves: pl.DataFrame, interval_ns: int) -> pl.DataFrame:
    """:func:`set_stats` of every ``key`` in ``metrics`` (one row per key)."""
    rows = []
    m = metrics.sort("key", "day")
    c = curves.sort("key", "day", "ts")
    by_key = c.partition_by("key", as_dict=True, maintain_order=True)
    empty = c.clear()
    for (key,), days in m.partition_by("key", as_dict=True, maintain_order=True).items():
        rows.append({"key": key, **set_stats(days, by_key.get((key,), empty), interval_ns)})
    schema = {"key": pl.String(), "n_days": pl.Int64()}
    schema |= {k: pl.Float64() for k in ("pnl", "sharpe", "sortino", "max_drawdown", "pnl_dd")}
    schema |= {k: metrics.schema[k] for k in SUMS if k in metrics.columns}
    return pl.DataFrame(rows, schema=schema)


def with_score(table: pl.DataFrame, objectives: Sequence[str]) -> pl.DataFrame:
    """``table`` with ``score``: the first objective, signed so that higher is better."""
    first = objectives[0]
    return table.with_columns((OBJECTIVES[first] * pl.col(first)).alias("score"))


def ranked(table: pl.DataFrame, objectives: Sequence[str]) -> pl.DataFrame:
    """``table`` best first by the first objective (NaN and null last; equal ones by key, so
    every ranking of the same sets picks the same one)."""
    name = objectives[0]
    by = [pl.col(name).fill_nan(None)]
    desc = [OBJECTIVES[name] > 0]
    if "key" in table.columns:
        by.append(pl.col("key"))
        desc.append(False)
    return table.sort(by, descending=desc, nulls_last=True, maintain_order=True)


def rank_sets(
    metrics: pl.DataFrame, curves: pl.DataFrame, interval_ns: int, objectives: Sequence[str]
) -> pl.DataFrame:
    """Every set of ``metrics`` (its (set, day) rows) scored over its days and ranked best
    first: what a study reports, and what a walk-forward window chooses by."""
    return ranked(with_score(aggregate(metrics, curves, interval_ns), objectives), objectives)


def pareto_front(table: pl.DataFrame, objectives: Sequence[str]) -> pl.DataFrame:
    """The rows no other row beats on every objective (rows with a NaN objective are out)."""
    if table.height == 0:
        return table
    signs = np.array([OBJECTIVES[o] for o in objectives], dtype=np.float64)
    vals = table.select(objectives).to_numpy().astype(np.float64) * signs  # larger is better
    ok = ~np.isnan(vals).any(axis=1)
    keep = np.zeros(len(vals), dtype=bool)
    for i in np.flatnonzero(ok):
        ge = (vals[ok] >= vals[i]).all(axis=1)
        gt = (vals[ok] > vals[i]).any(axis=1)
        keep[i] = not (ge & gt).any()
    return ranked(table.filter(pl.Series(keep)), objectives)


__all__ = [
    "ALIASES",
    "OBJECTIVES",
    "SINGLE",
    "aggregate",
    "pareto_front",
    "parse_objective",
    "rank_sets",
    "ranked",
    "set_stats",
    "with_score",
]
