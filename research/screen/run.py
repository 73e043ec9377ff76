"""One screen from the store to its folder: check every input, build the bars, screen the
grid, optionally backtest the chosen set tick by tick, write the results.

Everything a command line can get wrong (the signal, the space, the metric, the bar, the
``--to-strategy`` name, the latency and queue models, the days) is checked before a day is
read. The results are written into a staging folder beside ``out`` and moved into ``out``
only when all of them are complete: a screen that fails leaves nothing half-written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from framework.core.errors import ConfigError, StoreError
from research.screen.bars import bars as make_bars
from research.screen.bars import parse_every, stored_days
from research.screen.core import METRICS, Costs, ScreenResult, run_screen, space_of
from research.screen.signals import Signal, load_signal
from research.screen.tick import strategy_for, to_strategy

#: the files a screen writes into its folder
FILES = ("screen.parquet", "equity.parquet", "report.html")


@dataclasses.dataclass
class ScreenRun:
    """What :func:`screen` did: the ranking, and the tick side when asked for."""

    result: ScreenResult
    out: Path
    days: list[dt.date]
    every_ns: int
    tick: dict[str, Any] | None = None
    rank: int = 1
    bars_seconds: float = 0.0

    @property
    def report(self) -> Path:
        return self.out / "report.html"


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        msg = f"--to {end} is before --from {start}; give --to on or after --from"
        raise ConfigError(msg)
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def screen(
    *,
    store: Any,
    signal: str | Signal,
    venue: str,
    symbol: str,
    date_from: dt.date,
    date_to: dt.date | None = None,
    space: Sequence[str],
    every: str = "1s",
    metric: str = "sharpe",
    slippage_ticks: float = 0.5,
    size: int = 1,
    to_strategy_name: str | None = None,
    pick: int = 1,
    latency: str = "constant:1ms",
    queue: str = "power:2",
    mode: str = "auto",
    out: str | os.PathLike[str] | None = None,
) -> ScreenRun:
    """Screen ``signal`` over the stored days; see the module's docstring."""
    from framework.engine.config import LatencyConfig, QueueConfig

    sig = signal if isinstance(signal, Signal) else load_signal(signal)
    sets = space_of(sig, space).grid()
    every_ns = parse_every(every)
    if metric not in METRICS:
        msg = f"--metric {metric!r} is unknown; choose one of {', '.join(METRICS)}"
        raise ConfigError(msg)
    if to_strategy_name is not None:
        strategy_for(sig, to_strategy_name)
        if pick < 1 or pick > len(sets):
            msg = f"--pick {pick}: the space holds {len(sets)} set(s); pick 1..{len(sets)}"
            raise ConfigError(msg)
        LatencyConfig.parse(latency)
        QueueConfig.parse(queue)
    days = stored_days(store, venue, symbol, _days(date_from, date_to or date_from))
    inst = store.instrument(venue, symbol, days[0])
    costs = Costs.of(inst, slippage_ticks=slippage_ticks, size=size)
    target = Path(out) if out is not None else _default_out(sig, venue, symbol, days)

    t0 = time.perf_counter()
    bars = make_bars(store, venue, symbol, days, every_ns)
    bars_s = time.perf_counter() - t0
    res = run_screen(
        bars, sig, sets, instrument=inst, costs=costs, metric=metric, every_ns=every_ns
    )
    run = ScreenRun(result=res, out=target, days=days, every_ns=every_ns, bars_seconds=bars_s)
    stage = _stage(target)
    try:
        res.table.write_parquet(stage / "screen.parquet")
        res.equity.write_parquet(stage / "equity.parquet")
        tick_eq = None
        tick_report = None
        if to_strategy_name is not None:
            tick_eq, tick_report = _tick(run, store, venue, symbol, sig, to_strategy_name,
                                         pick, bars, latency, queue, mode, stage)  # fmt: skip
        _report(run, stage, venue, symbol, tick_eq, tick_report)
        _publish(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return run


def _default_out(sig: Signal, venue: str, symbol: str, days: list[dt.date]) -> Path:
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]}_{days[-1]}"
    name = sig.name.replace(":", "-").replace(".", "-")
    return Path("reports") / "screen" / f"{name}_{venue}-{symbol}_{span}"


def _stage(target: Path) -> Path:
    stage = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        stage.mkdir(parents=True)
    except OSError as exc:
        msg = f"cannot create the screen's folder beside {target}: {exc.strerror or exc}"
        raise StoreError(msg) from exc
    return stage


def _publish(stage: Path, target: Path) -> None:
    """Move the staged results into ``target`` (what an earlier screen left there of the
    same names is replaced; other files stay)."""
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(stage.iterdir(), key=lambda p: p.name == "report.html"):
        dest = target / item.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(item, dest)  # the report last: it is what says the screen is done


def _tick(
    run: ScreenRun,
    store: Any,
    venue: str,
    symbol: str,
    sig: Signal,
    name: str,
    pick: int,
    bars: pl.DataFrame,
    latency: str,
    queue: str,
    mode: str,
    stage: Path,
) -> tuple[pl.DataFrame, str]:
    from research.screen.report import equity_of
    from research.screen.tick import run_tick

    res = run.result
    values = res.best(pick)
    strategy, params = to_strategy(
        sig, values, name, every_ns=run.every_ns, bars=bars, size=res.costs.size
    )
    result, figures = run_tick(
        store=store, venue=venue, symbol=symbol, days=run.days, strategy=strategy,
        params=params, latency=latency, queue=queue, out_dir=stage / "tick", mode=mode,
    )  # fmt: skip
    run.tick = figures
    run.rank = pick
    return equity_of(result, result.strategies[0]), "tick/report.html"


def _report(
    run: ScreenRun,
    stage: Path,
    venue: str,
    symbol: str,
    tick_eq: pl.DataFrame | None,
    tick_report: str | None,
) -> None:
    from research.screen.report import render_html

    res = run.result
    c = res.costs
    span = str(run.days[0]) if len(run.days) == 1 else f"{run.days[0]} to {run.days[-1]}"
    summary = [
        f"Signal {res.signal} on {venue}/{symbol}, {span} ({len(run.days)} day(s)), "
        f"{res.n_bars:,} bars of {run.every_ns / 1e9:g} s; {res.table.height:,} parameter "
        f"sets ranked by {res.metric} (best first).",
        f"Costs per order of {c.size} lot(s): taker fee {c.taker_fee:g} of the notional, "
        f"{c.fee_per_lot:g} per lot, slippage {c.slippage_ticks:g} tick(s). Bars built in "
        f"{run.bars_seconds:.2f} s, the screen in {res.seconds:.2f} s.",
    ]
    text = render_html(
        res,
        title=f"Screen: {res.signal} on {venue}/{symbol}",
        summary=summary,
        tick=run.tick,
        rank=run.rank,
        tick_equity=tick_eq,
        tick_report=tick_report,
    )
    (stage / "report.html").write_text(text, encoding="utf-8")


__all__ = ["FILES", "ScreenRun", "screen"]
