"""The ``hftlab`` verbs of ``research``, registered through the ``hftlab.commands`` entry point."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from typing import Any

_OPTIMIZE_EPILOG = """\
examples:
  a grid of 16 sets over a week, on a local Dask cluster of this machine's cores:
    hftlab optimize one_tick_mm --venue SIM --symbol SYN --from 2024-01-02 --to 2024-01-08 \\
        --space max_position=1:8 improve=true,false --objective sharpe
  60 Optuna TPE trials (a median pruner stops bad ones after each day), on a running cluster:
    hftlab optimize avellaneda_stoikov --venue SIM --symbol SYN --from 2024-01-02 \\
        --to 2024-01-31 --space gamma=0.05:2 k=0.5:3 max_position=2:10 --method tpe \\
        --trials 60 --scheduler tcp://10.0.0.5:8786 --study as-jan
  Sharpe against drawdown (the answer is the Pareto front):
    hftlab optimize one_tick_mm ... --objective sharpe,drawdown
  walk-forward: choose on 5 days, trade the next one, roll on (out of sample printed first):
    hftlab optimize one_tick_mm ... --walk-forward 5:1

  Every study writes trials.parquet, results/, equity/, overfit.json (deflated Sharpe ratio
  of the best set, probability of backtest overfitting) and report.html (--no-report: not).

  --space NAME=LO:HI[:STEP] searches a range (ints step by 1 unless told; a float without a
  step is continuous: random and tpe only), NAME=A,B,C a list. The names, types and ranges
  are the strategy's own (see its Params). Running the same --study (and --out) again
  evaluates only what it does not hold yet: an interrupted study resumes.
"""


def register(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    """Add this package's sub-commands to the ``hftlab`` parser ``sub``."""
    from framework.cli import add_day_range, add_run_options
    from framework.strategy.loader import BUNDLED
    from research.news.cli import register as register_news

    register_news(sub, store_parent)

    opt = sub.add_parser(
        "optimize",
        parents=[store_parent],
        help="search a strategy's parameters over stored days (grid, random, Optuna TPE)",
        description=(
            "Search a strategy's parameters over stored days. Each parameter set x day is "
            "evaluated once (batches of sets replay a day together) on a Dask cluster, its "
            "metrics written to the study's folder as they arrive; the best sets are printed."
        ),
        epilog=_OPTIMIZE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    opt.add_argument(
        "strategy",
        metavar="STRATEGY",
        help=f"bundled name ({', '.join(sorted(BUNDLED))}) or module:Class",
    )
    opt.add_argument("--venue", required=True, help="venue of the data")
    opt.add_argument("--symbol", required=True, help="symbol of the data")
    add_day_range(opt)
    opt.add_argument(
        "--space",
        nargs="+",
        required=True,
        metavar="NAME=LO:HI[:STEP]|NAME=A,B,C",
        help="the searched parameters: a range or a list of values each",
    )
    opt.add_argument(
        "--method", choices=["grid", "random", "tpe"], default="grid", help="default grid"
    )
    opt.add_argument("--trials", type=int, help="sets (random) or trials (tpe) to evaluate")
    opt.add_argument(
        "--objective",
        default="sharpe",
        help=(
            "sharpe, sortino, pnl or pnl_dd (maximised), or several comma-separated for a "
            "Pareto front, e.g. sharpe,drawdown (default sharpe)"
        ),
    )
    where = opt.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        help="local Dask cluster of N worker processes (default: the machine's cores; 0: "
        "in this process)",
    )
    where.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="a running Dask scheduler's address"
    )
    opt.add_argument("--study", metavar="NAME", help="the study's name (resume it by name)")
    opt.add_argument(
        "--out", metavar="DIR", help="the study's folder (default reports/optimize/STUDY)"
    )
    opt.add_argument(
        "--storage", metavar="URL", help="Optuna RDB storage URL (default: a journal file in DIR)"
    )
    opt.add_argument("--seed", type=int, default=0, help="random and TPE seed (default 0)")
    opt.add_argument(
        "--batch-size", type=int, metavar="N", help="most sets replayed together in one task"
    )
    opt.add_argument(
        "--walk-forward",
        metavar="TRAIN:TEST[:rolling|expanding]",
        help="validate out of sample: choose on TRAIN days, trade the TEST days after them "
        "(e.g. 5:1 or 10:2:expanding); the stitched out-of-sample result is printed first",
    )
    opt.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="do not write report.html into the study's folder",
    )
    opt.add_argument("--top", type=int, default=5, help="best sets to print (default 5)")
    add_run_options(opt)
    opt.set_defaults(func=cmd_optimize)
    _register_screen(sub, store_parent)

    from research.ml.cli import register as register_ml  # hftlab regimes, hftlab anomalies

    register_ml(sub, store_parent)


_SCREEN_EPILOG = """\
examples:
  trade flow over a day of 1-s bars, 100 sets, the best backtested tick by tick:
    hftlab screen trade_flow --venue SIM --symbol SYN --from 2024-01-02 \\
        --space window=1,2,5,10,30 threshold=0.2:1:0.2 hold=5,10,30,60 \\
        --to-strategy trade_flow
  a breakout screen over a week of 10-s bars ranked by P&L, the third best as a generated
  bar strategy:
    hftlab screen breakout --venue SIM --symbol SYN --from 2024-01-02 --to 2024-01-08 \\
        --every 10s --space lookback=10:120:10 hold=5,20 --metric pnl \\
        --to-strategy bars --pick 3
  a signal of your own (a function of the bars and keyword parameters):
    hftlab screen mypkg.signals:gap --venue SIM --symbol SYN --from 2024-01-02 \\
        --space size=1:5

  Signals: imbalance (threshold, hold), trade_flow (window, threshold, min_trades, hold,
  mode), micro_reversion (window, z, hold), breakout (lookback, hold); windows and holds
  in bars. --space is written as for hftlab optimize. Each order is --size lots at the
  bar's close (the mid at the bar's end) plus --slippage ticks, with the instrument's
  taker fee. --to-strategy: imbalance -> imbalance_taker, trade_flow -> trade_flow, any
  signal -> bars (a generated strategy that rebuilds the bars as it runs); the tick run
  uses --latency and --queue, and the report puts both results side by side. The folder
  (--out, default reports/screen/...) gets screen.parquet (the ranking), equity.parquet
  (each set's P&L by minute), report.html and, with --to-strategy, tick/ (the backtest).
"""


def _register_screen(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    from framework.cli import add_day_range
    from framework.engine.config import LATENCY_FORMS, QUEUE_FORMS

    scr = sub.add_parser(
        "screen",
        parents=[store_parent],
        help="screen a signal over parameter grids on stored days (vectorbt), then tick-test it",
        description=(
            "Screen a signal over stored days: bars built from the events, every parameter "
            "set in one vectorbt portfolio, ranked by a metric; --to-strategy backtests the "
            "chosen set tick by tick and compares the two."
        ),
        epilog=_SCREEN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scr.add_argument(
        "signal",
        metavar="SIGNAL",
        help="imbalance, trade_flow, micro_reversion, breakout, or module:function",
    )
    scr.add_argument("--venue", required=True, help="venue of the data")
    scr.add_argument("--symbol", required=True, help="symbol of the data")
    add_day_range(scr)
    scr.add_argument(
        "--space",
        nargs="+",
        required=True,
        metavar="NAME=LO:HI[:STEP]|NAME=A,B,C",
        help="the screened parameters (every combination is screened)",
    )
    scr.add_argument("--every", default="1s", help="bar length, e.g. 1s, 250ms (default 1s)")
    scr.add_argument(
        "--metric",
        default="sharpe",
        help="rank by sharpe, sortino, pnl, total_return, win_rate, n_trades (higher is "
        "better) or max_drawdown (lower is better); default sharpe",
    )
    scr.add_argument("--top", type=int, default=5, help="best sets to print (default 5)")
    scr.add_argument(
        "--slippage", type=float, default=0.5, metavar="TICKS",
        help="ticks lost per order against the bar's mid (default 0.5)",
    )  # fmt: skip
    scr.add_argument("--size", type=int, default=1, metavar="LOTS", help="lots per order")
    scr.add_argument(
        "--to-strategy",
        metavar="NAME",
        help="backtest the chosen set tick by tick: imbalance_taker, trade_flow or bars",
    )
    scr.add_argument(
        "--pick", type=int, default=1, metavar="RANK", help="the set --to-strategy takes"
    )
    scr.add_argument(
        "--latency", default="constant:1ms", help=f"{LATENCY_FORMS} (default constant:1ms)"
    )
    scr.add_argument("--queue", default="power:2", help=f"{QUEUE_FORMS} (default power:2)")
    scr.add_argument(
        "--mode", choices=["auto", "compiled", "python"], default="auto",
        help="the tick run's callbacks (default auto)",
    )  # fmt: skip
    scr.add_argument("--out", metavar="DIR", help="the screen's folder")
    scr.set_defaults(func=cmd_screen)


def cmd_screen(args: argparse.Namespace) -> int:
    """``hftlab screen``: bad input is one line and exit status 2, nothing written."""
    from framework.core.errors import ConfigError
    from framework.store.tickstore import TickStore
    from research.screen.run import screen

    try:
        if args.top < 1:
            msg = f"--top {args.top}: print at least 1 set"
            raise ConfigError(msg)
        run = screen(
            store=TickStore(args.store),
            signal=args.signal,
            venue=args.venue,
            symbol=args.symbol,
            date_from=args.date_from,
            date_to=args.date_to,
            space=args.space,
            every=args.every,
            metric=args.metric,
            slippage_ticks=args.slippage,
            size=args.size,
            to_strategy_name=args.to_strategy,
            pick=args.pick,
            latency=args.latency,
            queue=args.queue,
            mode=args.mode,
            out=args.out,
        )
    except ConfigError as exc:
        print(f"hftlab: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    _print_screen(run, args.top)
    return 0


def _print_screen(run: Any, top: int) -> None:
    r = run.result
    print(
        f"screen {r.signal}: {r.table.height} sets x {r.n_bars:,} bars ({len(run.days)} "
        f"day(s)); bars in {run.bars_seconds:.2f} s, vectorbt in {r.seconds:.2f} s"
    )
    print(f"  best by {r.metric}:")
    for row in r.table.head(top).iter_rows(named=True):
        params = " ".join(f"{p}={_fmt(row[p])}" for p in r.names)
        print(
            f"    #{row['rank']} {params}: sharpe {_fmt(row['sharpe'])}, pnl "
            f"{_fmt(row['pnl'])} (fees {_fmt(row['fees'])}), trades {row['n_trades']:,}, "
            f"win rate {_fmt(row['win_rate'])}"
        )
    t = run.tick
    if t is not None:
        params = " ".join(f"{k}={_fmt(v)}" for k, v in t["params"].items())
        print(f"  tick backtest of #{run.rank} as {t['strategy']} ({params}):")
        print(
            f"    pnl {_fmt(t['pnl'])} (gross {_fmt(t['gross'])}, fees {_fmt(t['fees'])}), "
            f"sharpe {_fmt(t['sharpe'])}, fills {t['n_fills']:,}, round trips "
            f"{t['n_trades']:,}, latency {t['latency']}, queue {t['queue']}"
        )
    print(f"  results: {run.out} (screen.parquet, equity.parquet)")
    print(f"  report: {run.report}")


def _fixed(strategy: Any, items: list[str]) -> dict[str, Any]:
    """The ``--param`` values, as the strategy's Params read them."""
    names = [item.partition("=")[0].strip().rpartition(".")[2] for item in items]
    return {n: getattr(strategy.params, n) for n in names}


def cmd_optimize(args: argparse.Namespace) -> int:
    from framework.core.errors import ConfigError
    from framework.engine.config import LatencyConfig, QueueConfig
    from framework.store.tickstore import TickStore
    from framework.strategy.spec import strategies_from_words
    from research.optimize import optimize

    (strategy,) = strategies_from_words([args.strategy], params=args.param, risk=args.risk)
    start, end = args.date_from, args.date_to or args.date_from
    if end < start:
        msg = f"--to {end} is before --from {start}; give --to on or after --from"
        raise ConfigError(msg)
    store = TickStore(args.store)
    days = []
    for i in range((end - start).days + 1):
        d = start + dt.timedelta(days=i)
        # a weekend without data is no trading day; any other day without data is an error
        if d.weekday() < 5 or store.path_for(args.venue, args.symbol, d).is_file():
            days.append(d)
    if not days:
        msg = f"--from {start} --to {end} holds no weekday; give a range with trading days"
        raise ConfigError(msg)
    base = _rerun_base(args)
    try:
        result = optimize(
            type(strategy),
            venue=args.venue,
            symbol=args.symbol,
            days=days,
            space=args.space,
            method=args.method,
            trials=args.trials,
            objective=args.objective,
            latency=LatencyConfig.parse(args.latency),
            queue=QueueConfig.parse(args.queue),
            risk=strategy.risk_limits if args.risk else None,
            params=_fixed(strategy, args.param),
            study=args.study,
            out=args.out,
            storage=args.storage,
            workers=args.workers,
            scheduler=args.scheduler,
            store=store,
            mode=args.mode,
            seed=args.seed,
            batch_size=args.batch_size,
            walk_forward=args.walk_forward,
            report=args.report,
            rerun=base,
        )
    except KeyboardInterrupt:
        print(
            "hftlab: interrupted; the set-days written so far are kept: the same command "
            "(same --study and --out) resumes the study",
            file=sys.stderr,
        )
        return 130
    _print_result(result, args)
    return 0


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:,.4g}"
    return str(v)


def _rerun_base(args: argparse.Namespace) -> str:
    """The ``hftlab backtest`` words of the study's data and fixed settings, as given."""
    return (
        f"hftlab backtest {args.strategy} --venue {args.venue} --symbol {args.symbol} "
        f"--from {args.date_from}" + (f" --to {args.date_to}" if args.date_to else "")
        + (f" --store {args.store}" if args.store else "")
        + "".join(f" --param {p}" for p in args.param)
        + "".join(f" --risk {p}" for p in args.risk)
        + f" --latency {args.latency} --queue {args.queue}"
    )  # fmt: skip


def _stats_line(stats: dict[str, Any]) -> str:
    return (
        f"pnl {_fmt(stats.get('pnl', math.nan))}, sharpe {_fmt(stats.get('sharpe', math.nan))}, "
        f"drawdown {_fmt(stats.get('max_drawdown', math.nan))}, "
        f"pnl/dd {_fmt(stats.get('pnl_dd', math.nan))}"
    )


def _print_walk(w: Any) -> None:
    """The headline of a walk-forward study: out of sample first, in sample beside it."""
    print(
        f"walk-forward {w.spec}: {len(w.windows)} window(s), {w.distinct_choices} distinct "
        f"set(s) chosen by {w.objective}"
    )
    print(f"  OUT OF SAMPLE (stitched test days): {_stats_line(w.oos_stats)}")
    print(f"  in sample (best over all days, same test days): {_stats_line(w.is_stats)}")


def _print_overfit(r: Any) -> None:
    if r.dsr is not None:
        d = r.dsr
        print(
            f"  deflated Sharpe ratio {_fmt(d.dsr)} (probability the best set's Sharpe beats "
            f"the best of {d.n_trials} unskilled trials: {_fmt(d.sharpe)} per period against "
            f"{_fmt(d.sr0)})"
        )
    if r.pbo is not None:
        print(
            f"  probability of backtest overfitting {_fmt(r.pbo.pbo)} (CSCV, "
            f"{r.pbo.n_groups} groups, {r.pbo.n_splits:,} splits)"
        )
    for n in r.overfit_notes:
        print(f"  {n}")


def _print_result(r: Any, args: argparse.Namespace) -> None:
    if r.walk is not None:
        _print_walk(r.walk)
    t = r.trials
    states = dict(t.group_by("state").len().iter_rows()) if t.height else {}
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    print(
        f"optimize {r.study}: {t.height} {'trials' if r.method == 'tpe' else 'sets'} "
        f"({counts}) x {r.results['day'].n_unique()} day(s); {r.evaluated:,} set-days "
        f"evaluated, {r.reused:,} found done"
    )
    what = "Pareto front" if len(r.objectives) > 1 else f"best by {r.objectives[0]}"
    print(f"  {what}:")
    for row in r.best.head(args.top).iter_rows(named=True):
        params = " ".join(f"{p}={_fmt(row[p])}" for p in r.params)
        print(
            f"    {params}: sharpe {_fmt(row['sharpe'])}, pnl {_fmt(row['pnl'])}, drawdown "
            f"{_fmt(row['max_drawdown'])}, pnl/dd {_fmt(row['pnl_dd'])}, fills {row['n_fills']:,}"
        )
    if r.best.height:
        print(f"  re-run the best: {r.command(r.best.row(0, named=True))}")
    _print_overfit(r)
    print(f"  results: {r.out} (trials.parquet, results/, equity/, overfit.json)")
    if r.report is not None:
        print(f"  report: {r.report}")
    if r.storage:
        print(f"  optuna storage: {r.storage}")
