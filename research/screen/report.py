"""The HTML report of a screen: one self-contained page, figures embedded as PNG.

The ranking first, then where in the space the metric is good (heat map over the two
parameters that explain most of it, or its slice when one was searched -- drawn by the
study report's own figures), the best sets' equity, and, when the screen went on to a tick
backtest, the vectorised and the tick-level result side by side: the cost of realism.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from framework.analysis.report import PAGE_CSS, fmt, new_figure, note, png, section
from research.report import StudyData, _fig_heatmap, _fig_slices, importance
from research.screen.core import ScreenResult

#: sets listed in the ranking, and drawn in the equity figure
TOP_N = 10
EQUITY_N = 5

#: the comparison's rows: (label, key, format); a key a side lacks shows "—"
COMPARE_ROWS: Sequence[tuple[str, str, str]] = (
    ("Round trips (trades)", "n_trades", "int"),
    ("Fills", "n_fills", "int"),
    ("Orders", "n_orders", "int"),
    (
        "Orders not wholly filled (IOC expired at the touch, rejected, denied)",
        "unfilled_orders",
        "int",
    ),
    ("Gross P&L", "gross", "money"),
    ("Fees", "fees", "money"),
    ("Net P&L", "pnl", "money"),
    ("Sharpe (1-min intervals, annualised)", "sharpe", "ratio"),
    ("Max drawdown", "max_drawdown", "money"),
    ("Win rate", "win_rate", "pct"),
    ("Maker share of filled qty", "maker_share", "pct"),
    ("Risk denials", "n_denials", "int"),
    ("Median entry latency (ms)", "entry_ms", "ratio"),
    ("Median round-trip latency (ms)", "round_trip_ms", "ratio"),
    ("Latency model", "latency", "text"),
    ("Queue model", "queue", "text"),
)


def _cell(v: Any, kind: str) -> str:
    if v is None:
        return "—"
    if kind == "text":
        return html.escape(str(v))
    return fmt(v, kind)


def _ranking(res: ScreenResult) -> str:
    cols = [
        "rank", *res.names, "pnl", "gross", "fees", "n_trades", "win_rate", "sharpe",
        "max_drawdown",
    ]  # fmt: skip
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in res.table.head(TOP_N).iter_rows(named=True):
        cells = []
        for c in cols:
            v = r[c]
            cells.append(fmt(v) if isinstance(v, float) else html.escape(str(v)))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table class=num><tr>{head}</tr>{''.join(body)}</table>"


def _space_figures(res: ScreenResult) -> str:
    """Heat map (two parameters or more) or slice (one) of the metric, via the study report."""
    sets = res.table.with_columns(pl.col(res.metric).fill_nan(None).alias("score"))
    data = StudyData(
        title="",
        strategy=res.signal,
        objective=res.metric,
        params=res.names,
        sets=sets.with_columns(pl.col("rank").cast(pl.String).alias("key")),
    )
    imp = importance(data.sets, res.names)
    order = sorted(res.names, key=lambda p: -imp.get(p, 0.0))
    fig = _fig_heatmap(data, order) or _fig_slices(data, order)
    share = ", ".join(f"{p} {100 * imp.get(p, 0.0):.0f}%" for p in order)
    return (fig or note("No parameter varies.")) + note(
        f"Share of the {res.metric} variance each parameter explains alone: {share}."
    )


def _fig_equity(res: ScreenResult) -> str | None:
    eq = res.equity.filter(pl.col("rank") <= EQUITY_N)
    if not eq.height:
        return None
    fig, axes = new_figure(width=10.0, height=3.6)
    ax = axes[0, 0]
    t0 = int(eq["ts"].min())  # type: ignore[arg-type]
    for rank in range(1, min(EQUITY_N, res.table.height) + 1):
        e = eq.filter(pl.col("rank") == rank)
        hours = (e["ts"].to_numpy() - t0) / 3.6e12
        values = ", ".join(f"{n}={res.sets[rank - 1][n]}" for n in res.names)
        ax.plot(hours, e["equity"].to_numpy(), label=f"#{rank}: {values}", linewidth=1.0)
    ax.set_xlabel("hours from the first bar")
    ax.set_ylabel("P&L")
    ax.legend(fontsize="small")
    return png(fig, "equity of the best sets")


def _compare(vec: Mapping[str, Any], tick: Mapping[str, Any]) -> str:
    rows = []
    for label, key, kind in COMPARE_ROWS:
        a, b = vec.get(key), tick.get(key)
        if a is None and b is None:
            continue
        rows.append(
            f"<tr><th>{html.escape(label)}</th><td>{_cell(a, kind)}</td>"
            f"<td>{_cell(b, kind)}</td></tr>"
        )
    head = "<tr><th></th><th>vectorised (screen)</th><th>tick-level backtest</th></tr>"
    return f"<table class=num>{head}{''.join(rows)}</table>"


def _fig_compare(res: ScreenResult, rank: int, tick_equity: pl.DataFrame | None) -> str | None:
    if tick_equity is None or not tick_equity.height:
        return None
    fig, axes = new_figure(width=10.0, height=3.4)
    ax = axes[0, 0]
    e = res.equity.filter(pl.col("rank") == rank)
    t0 = int(min(int(e["ts"].min()), int(tick_equity["ts"].min())))  # type: ignore[arg-type]
    ax.plot((e["ts"].to_numpy() - t0) / 3.6e12, e["equity"].to_numpy(), label="vectorised")
    ax.plot(
        (tick_equity["ts"].to_numpy() - t0) / 3.6e12,
        tick_equity["equity"].to_numpy(),
        label="tick-level",
    )
    ax.set_xlabel("hours from the first bar")
    ax.set_ylabel("P&L")
    ax.legend(fontsize="small")
    return png(fig, "vectorised and tick-level equity of the chosen set")


def render_html(
    res: ScreenResult,
    *,
    title: str,
    summary: Sequence[str],
    tick: Mapping[str, Any] | None = None,
    rank: int = 1,
    tick_equity: pl.DataFrame | None = None,
    tick_report: str | None = None,
) -> str:
    """The report page as a string."""
    parts = [
        section(
            "Summary",
            "".join(f"<p>{html.escape(s)}</p>" for s in summary) + _ranking(res),
        ),
        section("Parameter space", _space_figures(res)),
        section("Equity of the best sets", _fig_equity(res) or note("No sets.")),
    ]
    if tick is not None:
        vec = {**res.row(rank), "n_fills": int(res.row(rank)["n_orders"]), "unfilled_orders": 0}
        chosen = ", ".join(f"{n}={res.sets[rank - 1][n]}" for n in res.names)
        body = (
            f"<p>Set #{rank} ({html.escape(chosen)}) as <b>{html.escape(str(tick['strategy']))}"
            f"</b> with {html.escape(_params_text(tick.get('params', {})))}.</p>"
            + _compare(vec, tick)
            + (_fig_compare(res, rank, tick_equity) or "")
            + note(
                "The screen fills every order at the bar's close plus the slippage, at once "
                "and whole; the tick backtest sends it through the latency model to the "
                "simulated venue, where the touch may have moved and a limit order may "
                "not fill."
            )
            + (
                f'<p>The tick run\'s own report: <a href="{html.escape(tick_report)}">'
                f"{html.escape(tick_report)}</a></p>"
                if tick_report
                else ""
            )
        )
        parts.append(section("Vectorised against tick-level", body))
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def _params_text(params: Mapping[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def equity_of(result: Any, strategy: str) -> pl.DataFrame:
    """The tick run's equity (ts, equity) of ``strategy``."""
    from framework.analysis.stats import equity_frame

    eq = equity_frame(result, strategy, columns=["ts", "equity"])
    return eq.with_columns(pl.col("equity").cast(pl.Float64)) if eq.height else eq


__all__ = ["equity_of", "render_html"]
