"""The learning layer's HTML report: regime-coloured price, anomaly marks, the bandit's
choices. One self-contained page, figures embedded as PNG, drawn as the backtest and study
reports are (matplotlib's Agg canvas, no pyplot, no network)."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from framework.analysis.report import PAGE_CSS, fmt, new_figure, note, png, section
from framework.core.events import EventArray
from research.ml.anomaly import touch

#: regime colours by code (calm, volatile, trending); the last is "not yet defined"
COLOURS = ("#2b83ba", "#d7191c", "#1a9641", "#999999")
MAX_POINTS = 20_000

FloatArray = npt.NDArray[np.float64]


def _hours(ts: npt.NDArray[np.int64], t0: int) -> FloatArray:
    return np.asarray((ts - t0) / 3.6e12, np.float64)


def _mid(events: EventArray, tick: float) -> FloatArray:
    t = touch(events)
    return np.asarray(0.5 * (t[:, 0] + t[:, 1]) * tick, np.float64)


@dataclass(frozen=True)
class RegimeView:
    """A day's events, the regime after each (NaN: not yet defined) and the names."""

    events: EventArray
    regimes: FloatArray
    names: Sequence[str]
    tick: float = 1.0
    truth: pl.DataFrame | pa.Table | None = None  #: start_ts, end_ts, regime (generated)
    title: str = "Regimes"


def fig_regimes(v: RegimeView) -> str:
    """Mid price coloured by the causal regime; the generator's labels as a band below."""
    ts = v.events["local_ts"]
    t0 = int(ts[0])
    step = max(1, len(ts) // MAX_POINTS)
    x = _hours(ts[::step], t0)
    y = _mid(v.events, v.tick)[::step]
    r = v.regimes[::step]
    code = np.where(np.isnan(r), len(COLOURS) - 1, np.nan_to_num(r)).astype(np.int64)
    rows = 2 if v.truth is not None else 1
    fig, grid = new_figure(height=3.4 + 0.9 * (rows - 1), nrows=rows)
    axes = grid[:, 0]
    ax = axes[0]
    for c in np.unique(code):
        yy = np.where(code == c, y, np.nan)
        label = v.names[c] if c < len(v.names) else "warm-up"
        ax.plot(x, yy, color=COLOURS[min(c, len(COLOURS) - 1)], lw=0.8, label=label)
    ax.set_ylabel("mid")
    ax.set_xlabel("hours since the first event")
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    ax.set_title("mid price, coloured by the regime a strategy read at that moment")
    if v.truth is not None:
        band = axes[1]
        truth = v.truth if isinstance(v.truth, pl.DataFrame) else pl.from_arrow(v.truth)
        assert isinstance(truth, pl.DataFrame)
        for s, e, name in truth.select("start_ts", "end_ts", "regime").iter_rows():
            c = list(v.names).index(name) if name in v.names else len(COLOURS) - 1
            band.axvspan((s - t0) / 3.6e12, (e - t0) / 3.6e12, color=COLOURS[c], lw=0)
        band.set_xlim(ax.get_xlim())
        band.set_yticks([])
        band.set_title("the generator's regimes (labels)")
    return png(fig, "regime-coloured price")


@dataclass(frozen=True)
class AnomalyView:
    """A day's events, the detector's score per bucket, its threshold, labels if known."""

    events: EventArray
    edges: npt.NDArray[np.int64]
    score: FloatArray
    threshold: float
    labels: pl.DataFrame | None = None
    tick: float = 1.0


def fig_anomalies(v: AnomalyView) -> str:
    """Price with detections marked (and planted anomalies shaded), the score below."""
    ts = v.events["local_ts"]
    t0 = int(ts[0])
    step = max(1, len(ts) // MAX_POINTS)
    fig, grid = new_figure(height=5.2, nrows=2)
    ax, sx = grid[:, 0]
    ax.plot(_hours(ts[::step], t0), _mid(v.events, v.tick)[::step], color="#444", lw=0.7)
    hit = v.score > v.threshold
    xe = _hours(v.edges + 1_000_000_000, t0)
    ymin, ymax = ax.get_ylim()
    ax.vlines(xe[hit], ymin, ymax, color="#d7191c", lw=0.6, alpha=0.7, label="detected")
    for a in (ax, sx):
        if v.labels is not None:
            for i, (s, e) in enumerate(v.labels.select("start_ts", "end_ts").iter_rows()):
                a.axvspan((s - t0) / 3.6e12, (e - t0) / 3.6e12 + 0.002, color="#fdae61",
                          alpha=0.5, lw=0, label="planted" if (i == 0 and a is ax) else None)
    if v.labels is not None:  # seconds in a day: a span alone would not show
        starts = _hours(v.labels["start_ts"].to_numpy(), t0)
        ax.scatter(starts, np.full(len(starts), ymax), marker="v", s=40, color="#fdae61",
                   edgecolors="#a6611a", zorder=3, clip_on=False)
    ax.set_ylim(ymin, ymax)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("mid price with anomalies detected (red) and planted (orange)")
    sx.plot(xe, np.maximum(v.score, 1e-3), color="#2b83ba", lw=0.6)
    sx.axhline(v.threshold, color="#d7191c", lw=0.8, ls="--")
    sx.set_yscale("log")
    sx.set_ylabel("score")
    sx.set_xlabel("hours since the first event")
    return png(fig, "anomaly marks")


def fig_bandit(per_day: pl.DataFrame) -> str:
    """Out-of-sample equity of each policy, day by day (random: its seeds' mean)."""
    d = per_day.with_columns(
        pl.when(pl.col("policy").str.starts_with("random_")).then(pl.lit("random"))
        .otherwise(pl.col("policy")).alias("policy")
    ).group_by("policy", "day").agg(pl.col("pnl").mean()).sort("day")
    fig, grid = new_figure()
    ax = grid[0, 0]
    for name, part in d.partition_by("policy", as_dict=True, maintain_order=True).items():
        p = str(name[0])
        ax.plot(range(1, part.height + 1), np.cumsum(part["pnl"].to_numpy()), marker="o",
                lw=2.0 if p == "bandit" else 1.0, label=p)
    ax.set_xlabel("test day")
    ax.set_ylabel("cumulative PnL")
    ax.legend(fontsize=8)
    ax.set_title("walk-forward, out of sample")
    return png(fig, "bandit against fixed sets and random choice")


def _table(rows: dict[str, float]) -> str:
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{fmt(v, 'money')}</td></tr>"
                   for k, v in rows.items())
    return f"<table><tr><th>policy</th><th>PnL</th></tr>{body}</table>"


def render_html(
    *,
    regimes: RegimeView | None = None,
    anomalies: AnomalyView | None = None,
    bandit: pl.DataFrame | None = None,
    bandit_summary: dict[str, float] | None = None,
    notes: Sequence[str] = (),
    title: str = "hftlab: regimes, anomalies, online adaptation",
) -> str:
    """The page: a section for each view given."""
    parts = [section("Notes", "".join(note(n) for n in notes))] if notes else []
    if regimes is not None:
        shares = np.bincount(regimes.regimes[~np.isnan(regimes.regimes)].astype(np.int64),
                             minlength=len(regimes.names))
        share = ", ".join(f"{n} {s / max(shares.sum(), 1):.0%}"
                          for n, s in zip(regimes.names, shares, strict=False))
        parts.append(section(regimes.title, fig_regimes(regimes) + note(f"Time in each: {share}.")))
    if anomalies is not None:
        n = int((anomalies.score > anomalies.threshold).sum())
        parts.append(section("Anomalies", fig_anomalies(anomalies)
                             + note(f"{n} of {len(anomalies.score):,} one-second buckets "
                                    "flagged.")))
    if bandit is not None:
        body = fig_bandit(bandit) + (_table(bandit_summary) if bandit_summary else "")
        parts.append(section("Online adaptation", body))
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def write_report(out_dir: str | os.PathLike[str], **views: object) -> Path:
    """Write ``out_dir/ml_report.html`` (self-contained; ``views`` as :func:`render_html`
    takes them) whole or not at all, and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ml_report.html"
    tmp = out / ".tmp-ml_report.html"
    tmp.write_text(render_html(**views), encoding="utf-8")  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


__all__ = ["AnomalyView", "RegimeView", "fig_anomalies", "fig_bandit", "fig_regimes",
           "render_html", "write_report"]
