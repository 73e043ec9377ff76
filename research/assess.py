"""What every study gets after its search: the overfitting statistics of its answer and its
report (:func:`assess`, called by :func:`research.optimize.optimize`).

* **Deflated Sharpe ratio** of the best set: its intraday returns (``returns(key)``, the
  one-minute grid, no return across a night), deflated by the per-period Sharpe ratios of
  every set the study evaluated on the same grid, with ``n_trials`` the number of sets or
  trials it tried -- pruned and failed ones included: each was a look at the data.
* **PBO by CSCV** over the (periods x sets) matrix of intraday returns of the sets evaluated
  on every day, on the grid points they all share, in time order; the number of groups is
  :func:`research.overfit.groups_for` of the periods.

Both go to ``overfit.json`` in the study's folder (with the walk-forward's headline figures
when there is one) and onto the result (``.dsr``, ``.pbo``); when one cannot be computed the
result says why (``overfit_notes``). The report is ``report.html`` beside them
(:mod:`research.report`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from research.evaluate import write_whole
from research.overfit import (
    PBO,
    DeflatedSharpe,
    deflated_sharpe,
    groups_for,
    pbo_cscv,
    period_sharpe,
)
from research.report import StudyData, write_report

if TYPE_CHECKING:
    from research.optimize import OptimizeResult

OVERFIT_FILE = "overfit.json"
WALK_FILE = "walk_forward.parquet"


def intraday_returns(curves: pl.DataFrame) -> pl.DataFrame:
    """Returns of each (key, day)'s equity grid: key, day, ts, ret (none across a night)."""
    return (
        curves.sort("key", "day", "ts")
        .with_columns(pl.col("equity").diff().over("key", "day").alias("ret"))
        .drop_nulls("ret")
        .select("key", "day", "ts", "ret")
    )


def period_sharpes(returns: pl.DataFrame) -> np.ndarray:
    """Per-period Sharpe ratio of each key's returns (those defined)."""
    parts = returns.partition_by("key", as_dict=False)
    srs = np.array([period_sharpe(p["ret"].to_numpy()) for p in parts], dtype=np.float64)
    return srs[np.isfinite(srs)]


def returns_matrix(returns: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """The (periods, sets) matrix of ``keys``' returns on the grid points every one of them
    has, in time order; columns in the order of ``keys``."""
    wide = (
        returns.filter(pl.col("key").is_in(keys))
        .pivot(on="key", index=["day", "ts"], values="ret")
        .drop_nulls()
        .sort("day", "ts")
    )
    cols = [k for k in keys if k in wide.columns]
    if len(cols) < len(keys):
        return np.zeros((0, len(keys)))
    return wide.select(cols).to_numpy().astype(np.float64)


def overfit_stats(
    result: OptimizeResult,
) -> tuple[DeflatedSharpe | None, PBO | None, tuple[str, ...]]:
    """The deflated Sharpe ratio of the study's best set and its PBO, with the reason for
    each one that cannot be computed."""
    notes: list[str] = []
    trials = result.trials
    keys = trials["key"].unique(maintain_order=True).to_list()
    days = result.results["day"].unique().to_list()
    curves = result.equity().filter(pl.col("key").is_in(keys), pl.col("day").is_in(days))
    rets = intraday_returns(curves)
    dsr = None
    if result.best.height == 0:
        notes.append("deflated Sharpe: no set completed, so none was selected")
    else:
        best = result.best["key"][0]
        selected = rets.filter(pl.col("key") == best)["ret"].to_numpy()
        srs = period_sharpes(rets)
        if selected.size < 2 or srs.size == 0:
            notes.append(
                "deflated Sharpe: the selected set has no returns to judge (it never traded)"
            )
        else:
            dsr = deflated_sharpe(selected, srs, n_trials=trials.height)
    pbo = None
    complete = trials.filter(pl.col("state") == "complete")["key"].unique(maintain_order=True)
    n_days = result.results.group_by("key").agg(pl.col("day").n_unique().alias("n"))
    whole = set(n_days.filter(pl.col("n") == len(days))["key"].to_list())
    cols = [k for k in complete.to_list() if k in whole]
    if len(cols) < 2:
        notes.append(f"PBO: needs 2 sets or more evaluated on every day, the study has {len(cols)}")
    else:
        m = returns_matrix(rets, cols)
        n_groups = groups_for(m.shape[0])
        if n_groups < 2:
            notes.append(
                f"PBO: {m.shape[0]} return periods shared by every set are too few for CSCV "
                "(at least 4)"
            )
        else:
            pbo = pbo_cscv(m, n_groups)
    return dsr, pbo, tuple(notes)


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, np.floating | np.integer):
        return _plain(v.item())
    return v


def overfit_record(result: OptimizeResult) -> dict[str, Any]:
    """What ``overfit.json`` holds: plain JSON values (NaN and infinity as null)."""
    out: dict[str, Any] = {
        "study": result.study,
        "n_trials": result.trials.height,
        "selected": result.best["key"][0] if result.best.height else None,
        "deflated_sharpe": None,
        "pbo": None,
        "walk_forward": result.walk.summary() if result.walk is not None else None,
        "notes": list(result.overfit_notes),
    }
    if result.dsr is not None:
        out["deflated_sharpe"] = {k: _plain(v) for k, v in dataclasses.asdict(result.dsr).items()}
    if result.pbo is not None:
        p = result.pbo
        out["pbo"] = {
            "pbo": _plain(p.pbo),
            "n_groups": p.n_groups,
            "n_splits": p.n_splits,
            "degradation": _plain(p.degradation),
            "prob_oos_loss": _plain(p.prob_oos_loss),
        }
    return out


def study_data(result: OptimizeResult) -> StudyData:
    """The report's view of a study: its complete sets (one row per key), the walk-forward,
    the overfitting statistics and a re-run command per set."""
    sets = result.trials.filter(pl.col("state") == "complete").unique("key", maintain_order=True)
    commands = {r["key"]: result.command(r) for r in sets.iter_rows(named=True)}
    notes = [*result.overfit_notes]
    if result.method == "tpe":
        pruned = result.trials.filter(pl.col("state") != "complete").height
        notes.append(f"{pruned} TPE trial(s) pruned or failed are counted in the DSR's trials.")
    return StudyData(
        title=f"Study {result.study}",
        strategy=result.strategy,
        objective=",".join(result.objectives),
        params=list(result.params),
        sets=sets,
        per_day=result.results,
        walk=result.walk,
        pbo=result.pbo,
        dsr=result.dsr,
        commands=commands,
        pareto=result.pareto["key"].to_list() if len(result.objectives) > 1 else (),
        notes=notes,
    )


def assess(result: OptimizeResult, *, report: bool = True) -> OptimizeResult:
    """Fill ``result``'s overfitting statistics, write ``overfit.json`` (and the
    walk-forward's windows) and, when ``report``, ``report.html`` into the study's folder."""
    result.dsr, result.pbo, result.overfit_notes = overfit_stats(result)
    if result.walk is not None:
        write_whole(result.out / WALK_FILE, result.walk.windows.write_parquet)
    text = json.dumps(overfit_record(result), indent=2, default=str) + "\n"
    write_whole(result.out / OVERFIT_FILE, lambda p: p.write_text(text, encoding="utf-8"))
    if report:
        result.report = write_report(study_data(result), result.out)
    return result


__all__ = [
    "OVERFIT_FILE",
    "assess",
    "intraday_returns",
    "overfit_record",
    "overfit_stats",
    "period_sharpes",
    "returns_matrix",
    "study_data",
]
