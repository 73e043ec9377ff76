"""Backtests from the store, with results and report written to a folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.analysis.results import BacktestResult
from framework.engine.backtest import Backtest, Mode, store_streams
from framework.engine.config import LatencyConfig, QueueConfig
from framework.store.tickstore import TickStore
from framework.strategy.base import Strategy


def default_out_dir(
    strategies: Sequence[Strategy], keys: Sequence[tuple[str, str]], dates: Sequence[dt.date]
) -> Path:
    name = "+".join(s.name for s in strategies)
    inst = "+".join(f"{v}-{s}" for v, s in keys)
    span = dates[0].isoformat() if len(dates) == 1 else f"{dates[0]}_{dates[-1]}"
    return Path("reports") / f"{name}_{inst}_{span}"


def run_from_store(
    *,
    store: TickStore,
    keys: Sequence[tuple[str, str]],
    dates: Sequence[dt.date],
    strategies: Sequence[Strategy],
    latency: LatencyConfig | None = None,
    queue: QueueConfig | None = None,
    mode: Mode = "auto",
    out_dir: Path | None = None,
    report: bool = True,
    **kwargs: Any,
) -> tuple[BacktestResult, Path | None]:
    """Backtest ``strategies`` on stored days; write tables (+ report) to ``out_dir``."""
    instruments, streams = store_streams(store, keys, dates)
    # what each strategy was allowed and given, beside its parameters in the result config
    config = {
        "risk_limits": {s.name: dataclasses.asdict(s.risk_limits) for s in strategies},
        "strategy_instruments": {
            s.name: s.instruments or [f"{v}/{y}" for v, y in keys] for s in strategies
        },
        **kwargs.pop("config", {}),
    }
    out = out_dir if out_dir is not None else default_out_dir(strategies, keys, dates)
    bt = Backtest(
        instruments=instruments,
        streams=streams,
        strategies=strategies,
        latency=latency,
        queue=queue,
        mode=mode,
        config=config,
        out_dir=out,  # the tables are written there as the run goes
        **kwargs,
    )
    result = bt.run()
    result.write(out)  # adds summary.json (with statistics) beside the tables
    if report:
        from framework.analysis.report import write_report

        write_report(result, out)
    return result, out


def _fmt(x: Any, spec: str = ",.2f") -> str:
    if isinstance(x, dict):
        x = max(x.values(), default=0.0)
    if isinstance(x, float) and math.isnan(x):
        return "n/a"
    return format(x, spec)


def replayed_words(result: BacktestResult) -> str:
    """What a run replayed, in words: the stored events and, when projecting order-by-order
    data to price levels made more (an execution is a trade print and a level update),
    the book updates the engine processed."""
    cfg = result.config
    stored = int(cfg.get("stored_events", result.events))
    updates = int(cfg.get("book_updates", result.events))
    words = f"{stored:,} stored events"
    if updates != stored:
        how = " after the L3->L2 projection" if cfg.get("l3_projected") else ""
        words += f" ({updates:,} book updates{how})"
    return words


def print_summary(result: BacktestResult, out: Path | None) -> None:
    """What was replayed and how fast (stored events/s), then PnL, Sharpe, drawdown, fills,
    maker/taker share, denials with their reasons: one line per strategy, then the total
    when the run has several."""
    from framework.analysis.results import TOTAL
    from framework.analysis.stats import summarize_all

    stats = summarize_all(result)
    cfg = result.config
    replay = float(cfg.get("replay_seconds", result.wall_seconds))
    print(
        f"backtest: {replayed_words(result)} replayed in {replay:.2f} s "
        f"({_fmt(int(cfg.get('stored_events', result.events)) / max(replay, 1e-9), ',.0f')} "
        f"stored events/s; {result.wall_seconds:.2f} s with set-up), mode {cfg.get('mode')}, "
        f"latency {cfg.get('latency')}, queue {cfg.get('queue')}"
    )
    # the run's order of strategies (stats come sorted by name), the total last
    first = [n for n in cfg.get("strategies", {}) if n in stats]
    names = first + [n for n in stats if n not in first and n != TOTAL]
    if len(names) != 1:
        names.append(TOTAL)
    width = max(len(n) for n in names)
    for name in names:
        s = stats[name]
        reasons = ", ".join(f"{r} {n:,}" for r, n in s["denials_by_reason"].items())
        shares = (
            f" (maker {_fmt(100 * s['maker_share_qty'], '.0f')}% / taker "
            f"{_fmt(100 * s['taker_share_qty'], '.0f')}% of qty)"
            if s["n_fills"]
            else ""
        )
        print(
            f"  {name + ':':{width + 1}} pnl {_fmt(s['pnl'])} (gross {_fmt(s['gross_pnl'])}, "
            f"fees {_fmt(s['fees'])}), sharpe {_fmt(s['sharpe'])}, max drawdown "
            f"{_fmt(s['max_drawdown'])}, fills {s['n_fills']:,}{shares}, orders "
            f"{s['n_orders']:,}, max |position| {_fmt(s['max_abs_position'], ',.4g')}, "
            f"denials {s['n_denials']:,}" + (f" ({reasons})" if reasons else "")
        )
    if out is not None:
        rep = out / "report.html"
        print(f"  results: {out}" + (f"\n  report: {rep}" if rep.exists() else ""))
