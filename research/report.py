"""The HTML report of a parameter study: one self-contained page, figures embedded as PNG.

What a researcher needs to judge a study, in the order they ask for it: the best sets and
how to re-run each as a plain backtest; how much the result is worth once the search itself
is accounted for (deflated Sharpe ratio, probability of backtest overfitting); whether the
choice holds out of sample (walk-forward equity, in-sample vs out-of-sample scatter); and
where in the space the good sets lie (heat map, slices, parameter importance, the Pareto
front of Sharpe against drawdown).

Drawn like the backtest report (framework.analysis.report): matplotlib's Agg canvas, no
pyplot, no global state.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from framework.analysis.report import PAGE_CSS, fmt, new_figure, note, png, section
from research.objectives import pareto_front
from research.overfit import PBO, DeflatedSharpe
from research.walkforward import WalkForward

#: most sets listed in the top table
TOP_N = 10


@dataclass
class StudyData:
    """What the report draws. ``sets`` has one row per evaluated parameter set: ``key``, one
    column per searched parameter (named as in ``params``), ``score`` (the objective over
    the study's days, higher is better) and the aggregate metrics ``pnl``, ``sharpe``,
    ``max_drawdown`` (positive amount), ``n_fills``; ``per_day`` one row per (set, day) with
    ``key``, ``day``, ``pnl``."""

    title: str
    strategy: str
    objective: str
    params: Sequence[str]
    sets: pl.DataFrame
    per_day: pl.DataFrame | None = None
    walk: WalkForward | None = None
    pbo: PBO | None = None
    dsr: DeflatedSharpe | None = None
    #: the re-run command line of each set, by key
    commands: Mapping[str, str] = field(default_factory=dict)
    #: keys of the Pareto front (Sharpe up, drawdown down); computed when empty
    pareto: Sequence[str] = ()
    notes: Sequence[str] = ()


def importance(sets: pl.DataFrame, params: Sequence[str], score: str = "score") -> dict[str, float]:
    """Share of the score's variance each parameter explains on its own (its main effect:
    the variance of the score's mean per value of the parameter, weighted by how many sets
    took each value, over the score's total variance). 0 when the score does not vary."""
    s = sets.filter(pl.col(score).is_not_nan() & pl.col(score).is_not_null())
    y = s[score].to_numpy().astype(np.float64)
    total = float(y.var()) if y.size > 1 else 0.0
    out: dict[str, float] = {}
    for p in params:
        if not total > 0:
            out[p] = 0.0
            continue
        g = s.group_by(p).agg(pl.col(score).mean().alias("m"), pl.len().alias("n"))
        mu = float(y.mean())
        between = float(((g["m"] - mu) ** 2 * g["n"]).sum()) / len(s)
        out[p] = between / total
    return out


def _fig_heatmap(data: StudyData, order: list[str]) -> str | None:
    """Mean score over the two most important parameters (the others averaged out)."""
    if len(order) < 2:
        return None
    px, py = order[0], order[1]
    g = data.sets.group_by([px, py]).agg(pl.col("score").mean()).sort([px, py])
    xs = sorted(g[px].unique().to_list())
    ys = sorted(g[py].unique().to_list())
    if len(xs) * len(ys) > 10_000:
        return None
    grid = np.full((len(ys), len(xs)), np.nan)
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    for x, y, v in g.iter_rows():
        grid[yi[y], xi[x]] = np.nan if v is None else v
    fig, axes = new_figure(width=7.0, height=5.0)
    ax = axes[0, 0]
    ax.grid(visible=False)
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(im, ax=ax, label=f"mean {data.objective}")
    for axis, vals, name in ((ax.xaxis, xs, px), (ax.yaxis, ys, py)):
        step = max(1, len(vals) // 12)
        ticks = list(range(0, len(vals), step))
        axis.set_ticks(
            ticks, [f"{vals[i]:g}" if isinstance(vals[i], float) else str(vals[i]) for i in ticks]
        )
        axis.set_label_text(name)
    ax.set_title(f"{data.objective} by {px} and {py}")
    return png(fig, f"heat map of {data.objective} over {px} and {py}")


def _fig_slices(data: StudyData, order: list[str]) -> str | None:
    """Mean score (and the best) against each parameter's values."""
    ps = order[:6]
    if not ps:
        return None
    fig, axes = new_figure(
        width=10.0, height=2.6 * math.ceil(len(ps) / 2), nrows=math.ceil(len(ps) / 2), ncols=2
    )
    for ax, p in zip(axes.flat, ps, strict=False):
        g = (
            data.sets.group_by(p)
            .agg(pl.col("score").mean().alias("mean"), pl.col("score").max().alias("best"))
            .sort(p)
        )
        x = g[p].to_list()
        if x and not isinstance(x[0], int | float):
            x = [str(v) for v in x]
        ax.plot(x, g["mean"].to_list(), marker="o", label="mean")
        ax.plot(x, g["best"].to_list(), marker=".", linestyle="--", label="best")
        ax.set_xlabel(p)
        ax.set_ylabel(data.objective)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(ps) :]:
        ax.set_visible(False)
    return png(fig, "objective against each parameter")


def _fig_importance(imp: dict[str, float]) -> str | None:
    if not imp:
        return None
    names = sorted(imp, key=lambda k: imp[k])
    # the figure's fixed margins take 0.9 in: one bar still needs room
    fig, axes = new_figure(width=7.0, height=1.4 + 0.4 * len(names))
    ax = axes[0, 0]
    ax.barh(names, [imp[n] for n in names])
    ax.set_xlabel("share of the objective's variance (main effect)")
    return png(fig, "parameter importance")


def _fig_walk(walk: WalkForward) -> str | None:
    if not len(walk.oos):
        return None
    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.plot(
        walk.oos["day"].to_list(),
        walk.oos["equity"].to_list(),
        marker="o",
        label="out of sample (walk-forward)",
    )
    if len(walk.insample):
        ax.plot(
            walk.insample["day"].to_list(),
            walk.insample["equity"].to_list(),
            marker=".",
            linestyle="--",
            label="in sample (best over all days)",
        )
    ax.set_ylabel("cumulative P&L")
    ax.legend(fontsize="small")
    ax.set_title(f"walk-forward {walk.spec}")
    return png(fig, "walk-forward equity, out of sample and in sample")


def _fig_is_oos(data: StudyData) -> str | None:
    pts: list[tuple[list[float], list[float], str]] = []
    if data.pbo is not None and data.pbo.n_splits:
        pts.append(
            (
                data.pbo.is_perf.tolist(),
                data.pbo.oos_perf.tolist(),
                "CSCV splits (Sharpe per period)",
            )
        )
    if data.walk is not None and len(data.walk.windows):
        w = data.walk.windows.filter(pl.col("test_score").is_not_null())
        pts.append(
            (
                w["train_score"].to_list(),
                w["test_score"].to_list(),
                f"walk-forward windows ({data.objective})",
            )
        )
    if not pts:
        return None
    fig, axes = new_figure(width=5.0 * len(pts), height=4.0, ncols=len(pts))
    for ax, (x, y, label) in zip(axes.flat, pts, strict=True):
        ax.scatter(x, y, s=12)
        ax.axhline(0.0, color="#999", linewidth=0.8)
        ax.set_xlabel("in sample")
        ax.set_ylabel("out of sample")
        ax.set_title(label, fontsize="medium")
    return png(fig, "in-sample against out-of-sample performance")


def _fig_pareto(data: StudyData, front: Sequence[str]) -> str | None:
    s = data.sets.filter(pl.col("sharpe").is_not_nan() & pl.col("max_drawdown").is_not_nan())
    if not len(s):
        return None
    fig, axes = new_figure(width=7.0, height=4.5)
    ax = axes[0, 0]
    ax.scatter(
        s["max_drawdown"].to_list(), s["sharpe"].to_list(), s=10, alpha=0.5, label="parameter sets"
    )
    f = s.filter(pl.col("key").is_in(list(front))).sort("max_drawdown")
    ax.plot(
        f["max_drawdown"].to_list(),
        f["sharpe"].to_list(),
        color="C3",
        marker="o",
        label="Pareto front",
    )
    ax.set_xlabel("max drawdown")
    ax.set_ylabel("Sharpe")
    ax.legend(fontsize="small")
    return png(fig, "Pareto front of Sharpe against drawdown")


def _overfit_table(data: StudyData) -> str:
    rows: list[tuple[str, str]] = [("Parameter sets evaluated", f"{len(data.sets):,}")]
    if data.dsr is not None:
        d = data.dsr
        rows += [
            ("Deflated Sharpe ratio (probability of skill)", fmt(d.dsr, "pct")),
            ("Selected set's Sharpe (per period)", fmt(d.sharpe)),
            ("Expected best Sharpe of unskilled trials (SR0)", fmt(d.sr0)),
            ("Trials counted", f"{d.n_trials:,}"),
            ("Returns in the series", f"{d.n_obs:,}"),
            ("Skewness / kurtosis", f"{fmt(d.skew)} / {fmt(d.kurtosis)}"),
        ]
    if data.pbo is not None:
        p = data.pbo
        rows += [
            ("Probability of backtest overfitting (CSCV)", fmt(p.pbo, "pct")),
            ("CSCV groups / splits", f"{p.n_groups} / {p.n_splits:,}"),
            ("Performance degradation (OOS on IS slope)", fmt(p.degradation)),
            ("Probability of an out-of-sample loss", fmt(p.prob_oos_loss, "pct")),
        ]
    if data.walk is not None:
        w = data.walk
        rows += [
            ("Walk-forward windows", f"{len(w.windows)} ({w.spec})"),
            ("Distinct sets chosen", str(w.distinct_choices)),
            ("Out-of-sample P&L (stitched)", fmt(w.oos_pnl, "money")),
            ("In-sample P&L (best over all days, same days)", fmt(w.is_pnl, "money")),
        ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class=num>{body}</table>"


def _top_table(data: StudyData) -> str:
    top = data.sets.sort(["score", "key"], descending=[True, False], nulls_last=True).head(TOP_N)
    cols = [*data.params, "score", "pnl", "sharpe", "max_drawdown", "n_fills"]
    cols = [c for c in cols if c in top.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["#", *cols, "re-run"])
    rows = []
    for i, r in enumerate(top.iter_rows(named=True), 1):
        cells = [str(i)]
        for c in cols:
            v = r[c]
            cells.append(fmt(v) if isinstance(v, float) else html.escape(str(v)))
        cmd = data.commands.get(r["key"], "")
        rows.append(
            "<tr>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + f"<td><code>{html.escape(cmd)}</code></td></tr>"
        )
    return f"<table class=num><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(data: StudyData) -> str:
    """The report page as a string (see :func:`write_report`)."""
    imp = importance(data.sets, data.params)
    order = sorted(data.params, key=lambda p: -imp.get(p, 0.0))
    front: list[str] = []
    if data.pareto:
        front = list(data.pareto)
    elif {"sharpe", "max_drawdown"} <= set(data.sets.columns):
        front = pareto_front(data.sets, ("sharpe", "max_drawdown"))["key"].to_list()
    parts = [
        section(
            "Summary",
            f"<p>{html.escape(data.strategy)}: {len(data.sets):,} parameter sets, objective "
            f"<b>{html.escape(data.objective)}</b>.</p>"
            + "".join(note(n) for n in data.notes)
            + _top_table(data),
        ),
        section("Overfitting", _overfit_table(data)),
    ]
    if data.walk is not None:
        parts.append(
            section("Walk-forward", _fig_walk(data.walk) or note("No out-of-sample days."))
        )
    parts.append(
        section(
            "In sample against out of sample",
            _fig_is_oos(data) or note("Neither CSCV splits nor walk-forward windows to draw."),
        )
    )
    parts.append(
        section(
            "Heat map",
            _fig_heatmap(data, order) or note("Fewer than two parameters were searched."),
        )
    )
    parts.append(section("Slices", _fig_slices(data, order) or note("No parameters.")))
    parts.append(section("Parameter importance", _fig_importance(imp) or note("No parameters.")))
    if front:
        parts.append(
            section(
                "Pareto front",
                (_fig_pareto(data, front) or "") + note(f"{len(front)} set(s) on the front."),
            )
        )
    title = data.title
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def write_report(data: StudyData, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir/report.html`` (self-contained) and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    tmp = out / ".tmp-report.html"
    tmp.write_text(render_html(data), encoding="utf-8")
    os.replace(tmp, path)
    return path


__all__ = ["StudyData", "importance", "render_html", "write_report"]
