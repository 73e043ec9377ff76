"""The HTML report of a backtest: one self-contained page, figures embedded as base64 PNG.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot), so nothing ever opens a
window and no global figure state leaks between reports. Long series are reduced before
plotting (min/max per bucket, so spikes and drawdowns survive) to keep a 100k-point run fast.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from framework.analysis.results import TOTAL, BacktestResult, tick_sizes
from framework.analysis.stats import drawdown, equity_frame, summarize_all
from framework.core.timeutil import NS_PER_S

#: Most points drawn per line; longer series are reduced with :func:`downsample_minmax`.
MAX_LINE_POINTS = 5_000
#: Most fill markers drawn per side and instrument (an even subsample beyond that).
MAX_MARKERS = 2_000
#: Instruments drawn in the per-instrument figures (the rest are named, not drawn).
MAX_INSTRUMENTS = 6
_DPI = 80
_LATENCY_KINDS = ("entry", "response", "round_trip")

# (section title, stat key, format kind) of the summary table, in order.
_ROWS: tuple[tuple[str, str, str], ...] = (
    ("P&L (net)", "pnl", "money"),
    ("P&L (gross, before fees)", "gross_pnl", "money"),
    ("Fees", "fees", "money"),
    ("Orders", "n_orders", "int"),
    ("Fills", "n_fills", "int"),
    ("Filled quantity", "filled_qty", "qty"),
    ("Turnover (notional)", "turnover", "money"),
    ("Maker share (qty)", "maker_share_qty", "pct"),
    ("Taker share (qty)", "taker_share_qty", "pct"),
    ("Maker share (count)", "maker_share_count", "pct"),
    ("Taker share (count)", "taker_share_count", "pct"),
    ("Max drawdown", "max_drawdown", "money"),
    ("Max drawdown (of peak)", "max_drawdown_rel", "pct"),
    ("Sharpe (annualised)", "sharpe", "ratio"),
    ("Sortino (annualised)", "sortino", "ratio"),
    ("Intervals in Sharpe", "n_intervals", "int"),
    ("Round trips", "n_round_trips", "int"),
    ("Hit ratio (round trips)", "hit_ratio", "pct"),
    ("Denials", "n_denials", "int"),
    ("Events replayed", "events", "int"),
    ("Wall time (s)", "wall_seconds", "ratio"),
    ("Events / s", "events_per_s", "int"),
)
_DICT_ROWS: tuple[tuple[str, str, str], ...] = (
    ("avg |position|", "avg_abs_position", "qty"),
    ("max |position|", "max_abs_position", "qty"),
    ("orders", "orders_by_status", "int"),
    ("denied", "denials_by_reason", "int"),
)


# --- formatting ---------------------------------------------------------------------------------
def fmt(value: Any, kind: str = "ratio") -> str:
    """Format a statistic for the table: NaN/None as an em dash, money with 2 decimals.

    >>> fmt(1234.5, "money"), fmt(0.25, "pct"), fmt(math.nan), fmt(12345, "int")
    ('1,234.50', '25.0%', '—', '12,345')
    """
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "—"
    if kind == "int":
        return f"{round(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "pct":
        return f"{100.0 * value:.1f}%"
    if kind == "qty":
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) >= 1e4 else f"{value:.2f}"


def downsample_minmax(
    x: npt.ArrayLike, y: npt.ArrayLike, max_points: int = MAX_LINE_POINTS
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """At most ``max_points`` points of a line, keeping each bucket's minimum and maximum.

    Plain striding would drop the spikes a reader looks for (a drawdown's bottom, a position
    limit hit); min/max per bucket keeps the drawn envelope identical at screen resolution.
    """
    xa = np.asarray(x)
    ya = np.asarray(y, dtype=np.float64)
    n = ya.size
    if n <= max_points:
        return xa, ya
    buckets = max(1, (max_points - 1) // 2)
    k = -(-n // buckets)
    rows = -(-n // k)
    pad = rows * k - n
    lo = np.concatenate([ya, np.full(pad, np.inf)]).reshape(rows, k)
    hi = np.concatenate([ya, np.full(pad, -np.inf)]).reshape(rows, k)
    lo = np.where(np.isnan(lo), np.inf, lo)
    hi = np.where(np.isnan(hi), -np.inf, hi)
    base = np.arange(rows) * k
    idx = np.unique(np.concatenate([base + lo.argmin(axis=1), base + hi.argmax(axis=1), [n - 1]]))
    idx = idx[idx < n]
    return xa[idx], ya[idx]


def _time_axis(t0: int, ts: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], str, float]:
    """Times relative to ``t0`` in a readable unit, with the axis label and the divisor."""
    span = 0.0
    arr = np.asarray(ts, dtype=np.int64)
    if arr.size:
        span = float(arr.max() - t0) / NS_PER_S
    unit, div = ("s", 1.0)
    if span > 3 * 3600:
        unit, div = ("h", 3600.0)
    elif span > 300:
        unit, div = ("min", 60.0)
    return (arr - t0) / (NS_PER_S * div), f"time since start ({unit})", div


# --- figures ------------------------------------------------------------------------------------
def new_figure(
    width: float = 10.0, height: float = 3.2, nrows: int = 1, ncols: int = 1
) -> tuple[Figure, Any]:
    # Fixed margins in inches instead of constrained layout: the layout engine measures every
    # tick label twice and was about half the report's time on 100k-point runs.
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=1.05 / width,
        right=1.0 - 0.25 / width,
        bottom=0.55 / height,
        top=1.0 - 0.35 / height,
        hspace=0.75 * nrows / max(height - 0.9, 0.5),
        wspace=0.9 * ncols / max(width - 1.1, 0.5),
    )
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.grid(visible=True, alpha=0.3)
    return fig, axes


def png(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


class _Ctx:
    """What every figure needs: the result, the time origin, instrument list.

    Tables are queried through ``result.scan`` for what each figure draws: the fills and
    latency tables of a long run are large and need not be loaded whole.
    """

    def __init__(self, result: BacktestResult) -> None:
        self.result = result
        starts = [int(result.start_ts)] if result.start_ts else []
        starts += [
            int(result.scan(name).select(pl.col("ts").min()).collect().item())
            for name in ("equity", "fills", "positions", "market")
            if result.rows(name)
        ]
        self.t0 = min(starts) if starts else 0
        self.instruments = result.instruments


def _fig_equity(ctx: _Ctx) -> str | None:
    res = ctx.result
    if res.rows("equity") == 0:
        return None
    fig, axes = new_figure()
    ax = axes[0, 0]
    names = res.strategies
    cols = ["ts", "equity"]
    series = [(TOTAL, equity_frame(res, columns=cols))]
    if len(names) > 1:
        series += [(s, equity_frame(res, s, columns=cols)) for s in names]
    label = "time"
    for name, eq in series:
        if eq.height == 0:
            continue
        x, label, _ = _time_axis(ctx.t0, eq["ts"].to_numpy())
        xs, ys = downsample_minmax(x, eq["equity"].to_numpy())
        ax.plot(xs, ys, lw=1.6 if name == TOTAL else 0.9, label=name)
    ax.set_xlabel(label)
    ax.set_ylabel("equity (currency)")
    ax.set_title("Equity (net of fees)")
    if len(series) > 1:
        ax.legend(loc="best", fontsize="small")
    return png(fig, "equity curve")


def _fig_drawdown(ctx: _Ctx) -> str | None:
    eq = equity_frame(ctx.result, columns=["ts", "equity"])
    if eq.height == 0:
        return None
    fig, axes = new_figure(height=2.6)
    ax = axes[0, 0]
    x, label, _ = _time_axis(ctx.t0, eq["ts"].to_numpy())
    xs, dd = downsample_minmax(x, -drawdown(eq["equity"].to_numpy()))
    ax.fill_between(xs, dd, 0.0, color="tab:red", alpha=0.4, step="post")
    ax.plot(xs, dd, color="tab:red", lw=0.8, drawstyle="steps-post")
    ax.set_xlabel(label)
    ax.set_ylabel("below peak (currency)")
    ax.set_title("Drawdown (total)")
    return png(fig, "drawdown")


def _fig_positions(ctx: _Ctx) -> str | None:
    pos = ctx.result.scan("positions")
    if ctx.result.rows("positions") == 0:
        return None
    insts = _unique(pos, "instrument")[:MAX_INSTRUMENTS]
    fig, axes = new_figure(height=2.2 * len(insts) + 0.6, nrows=len(insts))
    label = "time"
    for ax, inst in zip(axes[:, 0], insts, strict=True):
        sub = (
            pos.filter(pl.col("instrument") == inst)
            .select("strategy", "ts", "position")
            .sort("strategy", "ts")
            .collect()
        )
        for (strat,), g in sub.group_by(["strategy"], maintain_order=True):
            x, label, _ = _time_axis(ctx.t0, g["ts"].to_numpy())
            xs, ys = downsample_minmax(x, g["position"].to_numpy())
            ax.plot(xs, ys, lw=0.9, drawstyle="steps-post", label=str(strat))
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set_ylabel("position")
        ax.set_title(f"Position: {inst}", fontsize="medium")
        ax.legend(loc="upper left", fontsize="small")
    axes[-1, 0].set_xlabel(label)
    return png(fig, "position over time")


def _unique(lf: pl.LazyFrame, column: str) -> list[Any]:
    """Sorted distinct values of ``column``."""
    return sorted(lf.select(pl.col(column).unique()).collect()[column].to_list())


def _even(n: int, limit: int) -> npt.NDArray[np.int64]:
    if n <= limit:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, limit).astype(np.int64))


def _fig_fills(ctx: _Ctx, inst: str) -> tuple[str, str] | None:
    res = ctx.result
    fills = res.scan("fills").filter(pl.col("instrument") == inst)
    n_side = dict(fills.group_by("side").len().collect().iter_rows())
    mkt = res.scan("market").filter(pl.col("instrument") == inst).sort("ts").collect()
    if not n_side and mkt.height == 0:
        return None
    fig, axes = new_figure(height=3.6)
    ax = axes[0, 0]
    label = "time"
    if mkt.height:
        x, label, _ = _time_axis(ctx.t0, mkt["ts"].to_numpy())
        bid = mkt["bid"].to_numpy()
        ask = mkt["ask"].to_numpy()
        for y, name, style in (
            (bid, "bid", {"color": "tab:green", "lw": 0.5, "alpha": 0.6}),
            (ask, "ask", {"color": "tab:red", "lw": 0.5, "alpha": 0.6}),
            ((bid + ask) / 2.0, "mid", {"color": "0.3", "lw": 0.8}),
        ):
            xs, ys = downsample_minmax(x, y)
            ax.plot(xs, ys, label=name, drawstyle="steps-post", **style)
    note = ""
    for side, marker, color, name in ((1, "^", "tab:blue", "buy"), (-1, "v", "tab:orange", "sell")):
        n = n_side.get(side, 0)
        if n == 0:
            continue
        keep = _even(n, MAX_MARKERS)
        if keep.size < n:
            note += f" {name}: {keep.size:,} of {n:,} shown."
        # only the markers drawn are read out (a long run has millions of fills)
        f = (
            fills.filter(pl.col("side") == side)
            .select("ts", "price")
            .sort("ts", maintain_order=True)
            .with_row_index()
            .filter(pl.col("index").is_in(keep))
            .collect()
        )
        x, label, _ = _time_axis(ctx.t0, f["ts"].to_numpy())
        ax.scatter(
            x,
            f["price"].to_numpy(),
            marker=marker,
            s=22,
            color=color,
            edgecolors="black",
            linewidths=0.3,
            label=f"{name} fill",
            zorder=3,
        )
    ax.set_xlabel(label)
    ax.set_ylabel("price")
    ax.set_title(f"Fills on price: {inst}")
    ax.legend(loc="best", fontsize="small", ncols=5)
    return png(fig, f"fills on price {inst}"), note.strip()


def _fig_spread(ctx: _Ctx) -> tuple[str, str] | None:
    mkt = ctx.result.scan("market")
    if ctx.result.rows("market") == 0:
        return None
    ticks = tick_sizes(ctx.result.config)
    insts = _unique(mkt, "instrument")[:MAX_INSTRUMENTS]
    in_ticks = all(i in ticks for i in insts)
    spreads: list[tuple[str, npt.NDArray[np.float64]]] = []
    for inst in insts:
        sub = mkt.filter(pl.col("instrument") == inst).select(pl.col("ask") - pl.col("bid"))
        raw = sub.collect().to_series().to_numpy().astype(np.float64)
        s: npt.NDArray[np.float64] = raw[np.isfinite(raw)]
        if in_ticks:
            # round away float noise so a 1-tick spread lands in the 1-tick bin
            s = np.round(s / ticks[inst], 6)
        if s.size:
            spreads.append((inst, s))
    if not spreads:
        return None
    fig, axes = new_figure(height=3.0)
    ax = axes[0, 0]
    allv = np.concatenate([s for _, s in spreads])
    lo, hi = float(allv.min()), float(allv.max())
    edges: npt.NDArray[np.floating[Any]]
    if in_ticks and hi - lo <= 200:
        edges = np.arange(math.floor(lo) - 0.5, math.ceil(hi) + 1.5, 1.0)
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 51)
    for inst, s in spreads:
        counts, _ = np.histogram(s, bins=edges)
        ax.stairs(counts, edges, fill=len(spreads) == 1, alpha=0.7, label=inst)
    unit = "ticks" if in_ticks else "price units"
    ax.set_xlabel(f"spread ({unit})")
    ax.set_ylabel("samples")
    ax.set_title("Spread")
    if len(spreads) > 1:
        ax.legend(loc="best", fontsize="small")
    return png(fig, "spread histogram"), unit


def weighted_quantiles(
    values: npt.NDArray[np.int64], weights: npt.NDArray[np.int64], qs: list[float]
) -> npt.NDArray[np.float64]:
    """Quantiles ``qs`` of sorted ``values`` each counted ``weights`` times (the lower value
    at each rank, as for the rows the weights stand for)."""
    cum = np.cumsum(weights)
    ranks = np.ceil(np.asarray(qs) * cum[-1]).astype(np.int64)
    idx = np.searchsorted(cum, np.maximum(ranks, 1))
    return values[idx].astype(np.float64)


def _fig_latency(ctx: _Ctx) -> str | None:
    lat = ctx.result.scan("latency")
    present = _unique(lat, "kind")
    kinds = [k for k in _LATENCY_KINDS if k in present]
    kinds += sorted(set(present) - set(_LATENCY_KINDS))
    if not kinds:
        return None
    fig, axes = new_figure(width=4.0 * len(kinds), height=3.0, ncols=len(kinds))
    for ax, kind in zip(axes[0], kinds, strict=True):
        # the table is a histogram: each bucket's mean value and its count
        rows = lat.filter(pl.col("kind") == kind).select("ns", "count").sort("ns").collect()
        ns = rows["ns"].to_numpy()
        weight = rows["count"].to_numpy()
        lo, hi = float(ns.min()) / 1e3, float(ns.max()) / 1e3
        if lo > 0 and hi / lo > 100:
            edges = np.geomspace(lo, hi, 51)
            ax.set_xscale("log")
            # log minor ticks cost ~0.1 s a panel to lay out and add little to a histogram
            ax.xaxis.set_minor_locator(NullLocator())
        else:
            edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 51)
        counts, _ = np.histogram(ns, bins=edges * 1e3, weights=weight)
        ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set_xlabel("µs")
        ax.set_ylabel("messages")
        p50, p99 = weighted_quantiles(ns, weight, [0.5, 0.99]) / 1e3
        ax.set_title(f"{kind} (p50 {p50:,.1f} µs, p99 {p99:,.1f} µs)", fontsize="medium")
    return png(fig, "latency histograms")


def _fig_denials(ctx: _Ctx) -> str | None:
    if ctx.result.rows("denials") == 0:
        return None
    vc = ctx.result.scan("denials").select(pl.col("reason").value_counts(sort=True)).collect()
    vc = vc.unnest("reason")
    reasons = [str(r) or "(none)" for r in vc["reason"].to_list()]
    fig, axes = new_figure(height=0.4 * len(reasons) + 1.2)
    # reason names sit left of the axis: make room for the longest (~0.075 in a character)
    width = fig.get_figwidth()
    fig.subplots_adjust(left=min(0.5, (0.35 + 0.075 * max(map(len, reasons))) / width))
    ax = axes[0, 0]
    ax.barh(reasons[::-1], vc["count"].to_list()[::-1], color="tab:purple")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("denials")
    ax.set_title("Denials by reason")
    return png(fig, "denials by reason")


# --- tables -------------------------------------------------------------------------------------
def _summary_table(stats: dict[str, dict[str, Any]]) -> str:
    cols = list(stats)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = [f"<tr><th>statistic</th>{head}</tr>"]
    for title, key, kind in _ROWS:
        cells = "".join(f"<td>{fmt(stats[c][key], kind)}</td>" for c in cols)
        rows.append(f"<tr><td>{html.escape(title)}</td>{cells}</tr>")
    for prefix, key, kind in _DICT_ROWS:
        names = sorted({n for c in cols for n in stats[c][key]})
        for n in names:
            cells = "".join(
                f"<td>{fmt(stats[c][key][n], kind) if n in stats[c][key] else '—'}</td>"
                for c in cols
            )
            rows.append(f"<tr><td>{html.escape(f'{prefix} {n}')}</td>{cells}</tr>")
    return '<table class="num">\n' + "\n".join(rows) + "\n</table>"


def _flatten(cfg: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key in sorted(cfg, key=str):
        value = cfg[key]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out += _flatten(value, f"{name}.")
        elif isinstance(value, str):
            out.append((name, value))
        else:
            out.append((name, json.dumps(value, default=str)))
    return out


def _config_table(result: BacktestResult) -> str:
    rows = _flatten(result.config)
    if not rows:
        return "<p class=note>No configuration was recorded.</p>"
    body = "\n".join(
        f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(v)}</code></td></tr>" for k, v in rows
    )
    return f"<table>\n<tr><th>setting</th><th>value</th></tr>\n{body}\n</table>"


def _utc(ts: int) -> str:
    if not ts:
        return "—"
    t = dt.datetime.fromtimestamp(ts / NS_PER_S, tz=dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


PAGE_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;
color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px}
th{background:#f4f4f4;text-align:left}table.num td:not(:first-child){text-align:right;
font-variant-numeric:tabular-nums}.note{color:#666;font-style:italic}img{max-width:100%}
"""


def section(title: str, body: str) -> str:
    anchor = title.lower().replace(" ", "-")
    head = f'<section id="{html.escape(anchor)}">\n<h2>{html.escape(title)}</h2>'
    return f"{head}\n{body}\n</section>"


def note(text: str) -> str:
    return f"<p class=note>{html.escape(text)}</p>"


def render_html(result: BacktestResult, *, title: str | None = None) -> str:
    """The report page as a string (see :func:`write_report`)."""
    ctx = _Ctx(result)
    stats = summarize_all(result)
    title = title or "Backtest report"
    never = [s for s, st in stats.items() if s != TOTAL and st["n_fills"] == 0]
    parts: list[str] = []

    head = [
        f"<p>Run from {_utc(result.start_ts)} to {_utc(result.end_ts)} (UTC); "
        f"{result.events:,} events in {result.wall_seconds:.2f} s wall time. "
        f"Strategies: {html.escape(', '.join(result.strategies) or '(none)')}. "
        f"Instruments: {html.escape(', '.join(ctx.instruments) or '(none)')}.</p>"
    ]
    if result.rows("fills") == 0:
        head.append(note("No fills: the strategy never traded in this run."))
    elif never:
        head.append(note(f"Never traded (no fills): {', '.join(never)}."))
    parts.append(section("Summary", "\n".join(head) + "\n" + _summary_table(stats)))
    parts.append(section("Configuration", _config_table(result)))

    eq = _fig_equity(ctx)
    parts.append(section("Equity", eq or note("No equity samples were recorded.")))
    dd = _fig_drawdown(ctx)
    parts.append(section("Drawdown", dd or note("No equity samples were recorded.")))
    pos = _fig_positions(ctx)
    parts.append(section("Position", pos or note("No position samples were recorded.")))

    fills_body: list[str] = []
    for inst in ctx.instruments[:MAX_INSTRUMENTS]:
        got = _fig_fills(ctx, inst)
        if got is not None:
            fills_body.append(got[0] + (note(got[1]) if got[1] else ""))
    if len(ctx.instruments) > MAX_INSTRUMENTS:
        rest = ", ".join(ctx.instruments[MAX_INSTRUMENTS:])
        fills_body.append(note(f"Not drawn (more than {MAX_INSTRUMENTS} instruments): {rest}."))
    if result.rows("fills") == 0:
        fills_body.insert(0, note("No fills to draw."))
    parts.append(section("Fills on price", "\n".join(fills_body) or note("No market data.")))

    sp = _fig_spread(ctx)
    parts.append(
        section(
            "Spread", sp[0] + note(f"Spread in {sp[1]}.") if sp else note("No market samples.")
        )
    )
    lat = _fig_latency(ctx)
    parts.append(section("Latency", lat or note("No order latencies were recorded.")))
    den = _fig_denials(ctx)
    parts.append(section("Denials", den or note("No orders were denied by risk checks.")))

    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def write_report(
    result: BacktestResult, out_dir: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write ``out_dir/report.html`` (self-contained: no external files) and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    tmp = out / ".tmp-report.html"
    tmp.write_text(render_html(result, title=title), encoding="utf-8")
    os.replace(tmp, path)
    return path
