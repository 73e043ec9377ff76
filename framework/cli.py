"""The ``hftlab`` command line.

Every failure the user can cause (a missing file, a wrong format, a bad date) ends in one
line on stderr that names the file and the problem, and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.core.errors import ConfigError, HftlabError, StoreError
from framework.core.timeutil import parse_date

if TYPE_CHECKING:
    from framework.ingest.base import DayData

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def date_arg(text: str) -> dt.date:
    """An argparse ``type`` for a day (YYYY-MM-DD): a bad one is a usage error."""
    try:
        return parse_date(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_day_range(p: argparse.ArgumentParser) -> None:
    """``--from DATE`` (required) and ``--to DATE`` (default ``--from``): the stored days a
    verb reads (``args.date_from``, ``args.date_to``)."""
    p.add_argument(
        "--from", dest="date_from", type=date_arg, required=True, metavar="DATE", help="first day"
    )
    p.add_argument(
        "--to", dest="date_to", type=date_arg, metavar="DATE", help="last day (default --from)"
    )


def _store(args: argparse.Namespace) -> Any:
    from framework.store import TickStore

    return TickStore(args.store)


# --- data import ------------------------------------------------------------------------
def cmd_import(args: argparse.Namespace) -> int:
    from framework.ingest.base import ImportOptions, run_import

    opts = ImportOptions(
        symbol=args.symbol,
        venue=args.venue,
        date=args.date,
        extra={
            "orderbook": Path(args.orderbook) if args.orderbook else None,
            "pcap": bool(args.pcap),
            "tick_size": args.tick_size,
            "lot_size": args.lot_size,
            "market": args.market,
            "allow_partial": bool(args.allow_partial),
        },
    )
    t0 = time.perf_counter()
    # run_import refuses damaged or empty input before anything reaches the store
    result = run_import(args.format, [Path(p) for p in args.paths], opts)
    store = _store(args)
    days = result.days
    written = store.write_many(
        [(d.instrument, d.date, d.events, d.labels) for d in days], overwrite=not args.no_overwrite
    )
    for line in result.report.summary_lines():
        print(line)
    for d, path in zip(days, written, strict=True):
        print(
            f"  wrote {d.instrument.key}/{d.date.isoformat()}: {len(d.events):,} events -> {path}"
        )
    if result.instruments:
        print(f"  instruments defined: {len(result.instruments)}")
    if not days:
        print("  nothing to write (the input holds instrument definitions, no market events)")
    print(f"  took {time.perf_counter() - t0:.2f} s")
    return EXIT_OK


# --- data generate ----------------------------------------------------------------------
def _push_arg(text: str) -> tuple[float, float]:
    at, sep, ticks = text.partition(":")
    try:
        if not sep:
            raise ValueError(text)
        return float(at), float(ticks)
    except ValueError as exc:
        msg = f"--push {text!r}: write SECONDS:TICKS, e.g. 600:8 (8 ticks up 600 s after the open)"
        raise argparse.ArgumentTypeError(msg) from exc


def _pair_params(args: argparse.Namespace) -> Any:
    from framework.ingest.synthetic_pair import PairParams

    return PairParams(
        lag_ms=200.0 if args.lag_ms is None else args.lag_ms,
        basis_ticks=args.basis_ticks,
        tracking_ticks=args.tracking_ticks,
        pushes=tuple(args.push),
    )


def _synthetic_params(items: Sequence[str]) -> Any:
    """``--set KNOB=VALUE`` items as SyntheticParams (None when there are none)."""
    if not items:
        return None
    import ast

    from framework.ingest.synthetic import SyntheticParams

    def tuples(v: Any) -> Any:
        return tuple(tuples(x) for x in v) if isinstance(v, list | tuple) else v

    changes: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            msg = f"--set {item!r}: write KNOB=VALUE, e.g. --set signal_strength=0.8"
            raise ConfigError(msg)
        try:
            changes[key.strip()] = tuples(ast.literal_eval(raw))
        except (ValueError, SyntaxError):
            changes[key.strip()] = raw  # a plain word, such as a regime name
    try:
        return SyntheticParams().replace(**changes)
    except TypeError as exc:
        msg = f"--set {' '.join(items)}: a value has the wrong type ({exc})"
        raise ConfigError(msg) from exc


def cmd_generate(args: argparse.Namespace) -> int:
    from framework.ingest.synthetic import generate_day

    pairwise = args.pair or args.follow
    if not pairwise and (args.push or args.lag_ms is not None or args.follower):
        msg = "--push, --lag-ms and --follower describe a pair: add --pair (or --follow)"
        raise ConfigError(msg)
    if args.days < 1:
        msg = f"--days {args.days} is out of range: allowed >= 1 (weekdays to generate)"
        raise ConfigError(msg)
    params = _synthetic_params(args.set)
    store = _store(args)
    t0 = time.perf_counter()
    total = 0
    if args.follow:
        from framework.ingest.synthetic_pair import follow_stored

        venue, symbol, date = _parse_target(args.follow)
        if date is None:
            msg = f"--follow needs a day: VENUE/SYMBOL/YYYY-MM-DD, got {args.follow!r}"
            raise ConfigError(msg)
        day = follow_stored(
            store,
            (venue, symbol, date),
            follower=(args.venue, args.follower or f"{symbol}_LAG"),
            n_events=args.events,
            seed=args.seed,
            mode=args.mode,
            pair=_pair_params(args),
            params=params,
        )
        path = store.write(day.instrument, day.date, day.events, labels=day.labels)
        print(
            f"generated {day.instrument.key}/{date.isoformat()}: {len(day.events):,} "
            f"{args.mode.upper()} events following {venue}/{symbol} "
            f"{day.instrument.extra['lag_ms']} ms late -> {path}"
        )
        print(f"  took {time.perf_counter() - t0:.2f} s")
        return EXIT_OK
    d = args.date
    made = 0
    days: tuple[DayData, ...]
    while made < args.days:
        if d.weekday() < 5:
            if args.pair:
                from framework.ingest.synthetic_pair import generate_pair

                days = generate_pair(
                    date=d,
                    n_events=args.events,
                    seed=args.seed + made,
                    leader=(args.venue, args.symbol),
                    follower=(args.venue, args.follower or f"{args.symbol}_LAG"),
                    mode=args.mode,
                    tick_size=args.tick_size,
                    pair=_pair_params(args),
                    params=params,
                )
            else:
                days = (
                    generate_day(
                        symbol=args.symbol,
                        venue=args.venue,
                        date=d,
                        mode=args.mode,
                        n_events=args.events,
                        seed=args.seed + made,
                        tick_size=args.tick_size,
                        params=params,
                    ),
                )
            for day in days:
                path = store.write(day.instrument, day.date, day.events, labels=day.labels)
                total += len(day.events)
                print(
                    f"generated {day.instrument.key}/{d.isoformat()}: {len(day.events):,} "
                    f"{args.mode.upper()} events -> {path}"
                )
            made += 1
        d += dt.timedelta(days=1)
    el = time.perf_counter() - t0
    print(f"  {total:,} events in {el:.2f} s")
    return EXIT_OK


# --- data ls / info / dump / sql / rm -----------------------------------------------------
def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _empty_store(store: Any) -> str:
    return (
        f"the store at {store.root} is empty; import data with `hftlab data import` "
        "or make some with `hftlab data generate`"
    )


def _day_infos(store: Any, keys: Sequence[Any]) -> tuple[list[Any], list[HftlabError]]:
    """The DayInfo of each key, and the errors of the days that cannot be read (a corrupt
    file is one bad day, not a reason to hide the others)."""
    infos, bad = [], []
    for k in keys:
        try:
            infos.append(store.info(k.venue, k.symbol, k.date))
        except HftlabError as exc:
            bad.append(exc)
    return infos, bad


def _unreadable(bad: Sequence[HftlabError]) -> StoreError:
    more = f" (and {len(bad) - 1} more listed above)" if len(bad) > 1 else ""
    return StoreError(f"{bad[0]}{more}")


def cmd_ls(args: argparse.Namespace) -> int:
    store = _store(args)
    keys = store.keys(venue=args.venue, symbol=args.symbol)
    if not keys:
        print(_empty_store(store))
        return EXIT_OK
    print(f"{'day':40s} {'events':>12s} {'on disk':>10s}  span (UTC)")
    infos, bad = _day_infos(store, keys)
    for info in infos:
        print(
            f"{info.key!s:40s} {info.rows:12,d} {_fmt_bytes(info.bytes_on_disk):>10s}  "
            f"{_span(info)}"
        )
    for exc in bad:
        print(f"unreadable: {exc}")
    if bad:
        raise _unreadable(bad)
    return EXIT_OK


def _span(info: Any) -> str:
    from framework.core.timeutil import format_ns

    if info.first_ts is None:
        return "-"
    return f"{format_ns(info.first_ts)[:23]} -> {format_ns(info.last_ts)[11:23]}"


def _parse_target(text: str) -> tuple[str, str, dt.date | None]:
    parts = text.strip("/").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        msg = f"{text!r} is not VENUE/SYMBOL or VENUE/SYMBOL/YYYY-MM-DD (e.g. XNAS/AMZN/2012-06-21)"
        raise ConfigError(msg)
    date = parse_date(parts[2]) if len(parts) == 3 else None
    return parts[0], parts[1], date


def _store_summary(store: Any, venue: str | None) -> int:
    """``data info`` without a day: venues, symbols, days, events, time span and bytes."""
    from framework.core.timeutil import format_ns

    keys = store.keys(venue=venue)
    if not keys:
        if venue is None:
            print(_empty_store(store))
            return EXIT_OK
        venues = sorted({k.venue for k in store.keys()})  # noqa: SIM118 (a method)
        msg = (
            f"nothing stored for venue {venue} in {store.root} (stored venues: "
            f"{', '.join(venues) or 'none'}); give VENUE, VENUE/SYMBOL or VENUE/SYMBOL/DATE"
        )
        raise ConfigError(msg)
    infos, bad = _day_infos(store, keys)
    groups: dict[str, list[Any]] = {}
    for info in infos:
        groups.setdefault(f"{info.key.venue}/{info.key.symbol}", []).append(info)
    firsts = [i.first_ts for i in infos if i.first_ts is not None]
    lasts = [i.last_ts for i in infos if i.last_ts is not None]
    print(
        f"store {store.root}{f' (venue {venue})' if venue else ''}: "
        f"{len({i.key.venue for i in infos})} venue(s), {len(groups)} symbol(s), "
        f"{len(infos)} day(s), {sum(i.rows for i in infos):,} events, "
        f"{_fmt_bytes(sum(i.bytes_on_disk for i in infos))} on disk"
    )
    if firsts:
        print(f"span (UTC): {format_ns(min(firsts))[:23]} -> {format_ns(max(lasts))[:23]}")
    print(f"{'instrument':30s} {'days':>5s}  {'first day':10s}  {'last day':10s} {'events':>14s} "
          f"{'on disk':>10s}")  # fmt: skip
    for name, days in groups.items():
        print(
            f"{name:30s} {len(days):5d}  {days[0].key.date}  {days[-1].key.date} "
            f"{sum(d.rows for d in days):14,d} "
            f"{_fmt_bytes(sum(d.bytes_on_disk for d in days)):>10s}"
        )
    for exc in bad:
        print(f"unreadable: {exc}")
    if bad:
        raise _unreadable(bad)
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from framework.core.events import KIND_NAMES

    store = _store(args)
    if args.target is None or "/" not in args.target.strip("/"):
        venue = args.target.strip("/") if args.target else None
        return _store_summary(store, venue or None)
    venue, symbol, date = _parse_target(args.target)
    dates = [date] if date else [k.date for k in store.keys(venue=venue, symbol=symbol)]
    if not dates:
        msg = f"nothing stored for {venue}/{symbol} in {store.root}; see `hftlab data ls`"
        raise ConfigError(msg)
    total_rows = total_bytes = 0
    kinds: dict[int, int] = {}
    inst = None
    for d in dates:
        info = store.info(venue, symbol, d)
        inst = info.instrument
        total_rows += info.rows
        total_bytes += info.bytes_on_disk
        for k, c in store.kind_counts(venue, symbol, d).items():
            kinds[k] = kinds.get(k, 0) + c
        print(
            f"{info.key}: {info.rows:,} events, {_fmt_bytes(info.bytes_on_disk)} on disk "
            f"({info.bytes_per_event:.2f} bytes/event), {info.row_groups} row group(s), "
            f"span {_span(info)}"
        )
    assert inst is not None
    print(
        f"instrument: {inst.key} {inst.asset_class}, tick {inst.tick_size} {inst.currency}, "
        f"lot {inst.lot_size}, multiplier {inst.multiplier}, "
        f"fees maker {inst.maker_fee} taker {inst.taker_fee}"
    )
    if len(dates) > 1:
        print(f"total: {len(dates)} days, {total_rows:,} events, {_fmt_bytes(total_bytes)}")
    mix = ", ".join(
        f"{KIND_NAMES.get(k, k)} {c:,} ({100 * c / max(total_rows, 1):.1f}%)"
        for k, c in sorted(kinds.items(), key=lambda kv: -kv[1])
    )
    print(f"kinds: {mix}")
    return EXIT_OK


def cmd_dump(args: argparse.Namespace) -> int:
    from framework.store.dump import dump_frame

    store = _store(args)
    venue, symbol, date = _parse_target(args.target)
    if date is None:
        msg = f"dump needs a day: VENUE/SYMBOL/YYYY-MM-DD, got {args.target!r}"
        raise ConfigError(msg)
    df = dump_frame(store, venue, symbol, date, limit=args.limit)
    if args.format == "csv":
        sys.stdout.write(df.write_csv())
    else:
        sys.stdout.write(df.write_ndjson())
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    import polars as pl

    df = _store(args).sql(args.query)
    with pl.Config(tbl_rows=args.max_rows, tbl_cols=-1, tbl_width_chars=200):
        print(df)
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    store = _store(args)
    venue, symbol, date = _parse_target(args.target)
    for p in store.delete(venue, symbol, date):
        print(f"deleted {p}")
    return EXIT_OK


# --- backtest ---------------------------------------------------------------------------
def _date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        msg = f"--to {end} is before --from {start}; give --to on or after --from"
        raise ConfigError(msg)
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _instrument_key(text: str) -> tuple[str, str]:
    venue, sep, symbol = text.strip().partition("/")
    if not sep or not venue or not symbol or "/" in symbol:
        msg = f"instrument {text!r} is not VENUE/SYMBOL (e.g. XNAS/AMZN)"
        raise ConfigError(msg)
    return venue, symbol


def cmd_backtest(args: argparse.Namespace) -> int:
    from framework.engine.config import LatencyConfig, QueueConfig
    from framework.engine.runner import print_summary, run_from_store
    from framework.strategy.spec import run_instruments, strategies_from_words

    strategies = strategies_from_words(
        args.strategy, params=args.param, risk=args.risk, on=args.on
    )
    start = args.date_from
    end = args.date_to or start
    if args.instrument:
        keys = [_instrument_key(k) for k in args.instrument]
    elif args.venue or args.symbol:
        if not args.venue or not args.symbol:
            msg = "name the data: --venue V --symbol S (or --instrument V/S, repeatable)"
            raise ConfigError(msg)
        keys = [(args.venue, s) for s in args.symbol]
    else:
        keys = [_instrument_key(k) for k in run_instruments(strategies)]
    extra: dict[str, Any] = {}
    if args.feature_model:
        from framework.features.model import FeatureModel

        extra["feature_model"] = FeatureModel.load(args.feature_model)
    result, out = run_from_store(
        store=_store(args),
        keys=keys,
        dates=_date_range(start, end),
        strategies=strategies,
        latency=LatencyConfig.parse(args.latency),
        queue=QueueConfig.parse(args.queue),
        mode=args.mode,
        out_dir=Path(args.out) if args.out else None,
        report=not args.no_report,
        **extra,
    )
    print_summary(result, out)
    return EXIT_OK


def _replay_layout(levels: int, *, header: bool) -> str:
    from framework.book.replay import lobster_columns

    cols = lobster_columns(1, times=header)
    more = f", ... up to level {levels}" if levels > 1 else ""
    if header:
        return (
            f"a header line, then per message: {', '.join(cols)}{more} "
            "(times: ISO-8601 UTC and ns since the epoch; prices in currency units, sizes "
            "in real units, empty levels blank)"
        )
    return (
        f"LOBSTER orderbook layout, no header, one row per message: {', '.join(cols)}{more} "
        "(prices in currency units, sizes in real units, empty levels blank; "
        "--header adds a header line and time columns)"
    )


def cmd_book_replay(args: argparse.Namespace) -> int:
    from framework.book.replay import book_replay_to_csv

    t0 = time.perf_counter()
    rows = book_replay_to_csv(
        _store(args),
        args.venue,
        args.symbol,
        args.date,
        args.levels,
        Path(args.out),
        header=args.header,
    )
    print(
        f"wrote {rows:,} rows of {args.levels} level(s) to {args.out} "
        f"in {time.perf_counter() - t0:.2f} s"
    )
    print(f"  layout: {_replay_layout(args.levels, header=args.header)}")
    return EXIT_OK


# --- parser -----------------------------------------------------------------------------
def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a run besides its data: --param, --risk, --latency, --queue, --mode
    (``hftlab backtest``, and the verbs that run backtests, e.g. ``hftlab optimize``)."""
    from framework.engine.config import LATENCY_FORMS, QUEUE_FORMS

    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[NAME.]KEY=VALUE",
        help=(
            "a strategy parameter (each has an allowed range; a value outside it is refused); "
            "NAME. picks the strategy when there are several"
        ),
    )
    p.add_argument(
        "--risk",
        action="append",
        default=[],
        metavar="[NAME.]LIMIT=VALUE",
        help=(
            "replace one of a strategy's risk limits (max_order_qty, max_notional, "
            "price_collar_ticks, max_position, max_strategy_position, max_open_orders, "
            "max_orders_per_s, order_burst, max_loss, max_drawdown, self_trade_prevention); "
            "each must be > 0 (sizes and counts >= 1); none lifts it"
        ),
    )
    p.add_argument(
        "--latency",
        default="constant:1ms",
        help=(
            f"{LATENCY_FORMS}; durations 0 to one day in ns, us, ms or s; feed multipliers "
            "0 to 1000 (default constant:1ms)"
        ),
    )
    p.add_argument("--queue", default="power:2", help=f"{QUEUE_FORMS} (default power:2)")
    p.add_argument(
        "--mode",
        choices=["auto", "compiled", "python"],
        default="auto",
        help=(
            "which callbacks run: compiled, python, or auto (compiled when every strategy "
            "has them; default)"
        ),
    )


_BACKTEST_EPILOG = """\
examples:
  one strategy:
    hftlab backtest one_tick_mm --venue SIM --symbol SYN --from 2024-01-02 \\
        --param max_position=3 --risk max_open_orders=4
  lead-lag (it names its two instruments, so the data need not be given):
    hftlab backtest lead_lag --from 2024-08-08 \\
        --param leader=BINANCE_USDM/BTCUSDT --param lagger=BINANCE/BTCUSDT
  three strategies in one run, each on its own instruments and limits:
    hftlab backtest mm=one_tick_mm ll=lead_lag wild=one_tick_mm --from 2024-01-02 \\
        --instrument SIM/SYN --instrument SIM/LEAD --instrument SIM/LAG \\
        --on mm=SIM/SYN --on wild=SIM/SYN \\
        --param ll.leader=SIM/LEAD --param ll.lagger=SIM/LAG \\
        --param wild.order_qty=500 --risk wild.max_order_qty=100

  A strategy word is [NAME=]STRATEGY; --param NAME.KEY=VALUE, --risk NAME.LIMIT=VALUE and
  --on NAME=VENUE/SYMBOL[,...] apply to the strategy NAME (or to the only one, unscoped).
  Strategies share the run's data and venue but not positions, orders or limits. Orders
  that breach a strategy's limits are denied with a reason (denials table, summary) and
  never reach the venue, so the other strategies run as they would alone.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help), exit status 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"hftlab: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from framework import __version__

    p = _Parser(prog="hftlab", description="hftlab: backtest-first research framework for HFT.")
    p.add_argument("--version", action="version", version=f"hftlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    store_parent = _Parser(add_help=False)
    store_parent.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="store root (default: $HFTLAB_STORE or data/store)",
    )

    data = sub.add_parser("data", help="import, generate, list and query stored ticks")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    from framework.ingest.base import IMPORTERS
    from framework.strategy.loader import BUNDLED

    imp = dsub.add_parser("import", parents=[store_parent], help="import files into the store")
    imp.add_argument("format", choices=sorted(IMPORTERS), help="source format")
    imp.add_argument("paths", nargs="+", metavar="PATH", help="input file(s)")
    imp.add_argument("--symbol", help="symbol (default: from the source)")
    imp.add_argument("--venue", help="venue (default: from the source or the format)")
    imp.add_argument(
        "--date", type=date_arg, help="trading day YYYY-MM-DD (default: from the source)"
    )
    imp.add_argument("--orderbook", metavar="FILE", help="LOBSTER orderbook file")
    imp.add_argument("--pcap", action="store_true", help="ITCH: input is a pcap of MoldUDP64")
    imp.add_argument("--tick-size", help="override the instrument's tick size")
    imp.add_argument("--lot-size", help="override the instrument's lot size")
    imp.add_argument("--market", choices=["spot", "usdm"], help="Binance market (default: detect)")
    imp.add_argument("--no-overwrite", action="store_true", help="fail if a day is already stored")
    imp.add_argument(
        "--allow-partial",
        action="store_true",
        help=(
            "import what is readable from damaged input (cut or corrupt files, unparseable "
            "lines, broken framing) instead of failing; the report counts everything skipped"
        ),
    )
    imp.set_defaults(func=cmd_import)

    gen = dsub.add_parser("generate", parents=[store_parent], help="generate synthetic days")
    gen.add_argument("--symbol", default="SYN", help="symbol to store it under (default SYN)")
    gen.add_argument("--venue", default="SIM", help="venue to store it under (default SIM)")
    gen.add_argument(
        "--date",
        type=date_arg,
        default=dt.date(2024, 1, 2),
        help="first day (weekends are skipped)",
    )
    gen.add_argument("--days", type=int, default=1, help="weekdays to generate (default 1)")
    gen.add_argument(
        "--events", type=int, default=1_000_000, help="events per day (default 1000000)"
    )
    gen.add_argument(
        "--mode",
        choices=["l2", "l3"],
        default="l2",
        help="l2: price levels; l3: individual orders (default l2)",
    )
    gen.add_argument("--seed", type=int, default=0, help="day N uses seed SEED+N (default 0)")
    gen.add_argument("--tick-size", default="0.01", help="price tick (default 0.01)")
    gen.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help=(
            "a knob of the synthetic market (framework.ingest.synthetic.SyntheticParams), "
            "repeatable: --set signal_strength=1 --set initial_regime=trending "
            "--set 'transition=((0,0,1),(0,0,1),(0,0,1))'"
        ),
    )
    pair = gen.add_argument_group(
        "related instruments",
        "--pair makes a leader (--symbol) and a follower whose latent mid is the leader's "
        "--lag-ms later; --follow makes a follower of a stored day instead",
    )
    pair.add_argument("--pair", action="store_true", help="generate a leader and a follower")
    pair.add_argument(
        "--follow", metavar="VENUE/SYMBOL/DATE", help="generate a follower of this stored day"
    )
    pair.add_argument("--follower", metavar="SYMBOL", help="follower symbol (default SYMBOL_LAG)")
    pair.add_argument("--lag-ms", type=float, help="follower delay (default 200)")
    pair.add_argument("--basis-ticks", type=float, default=0.0, help="follower mid offset")
    pair.add_argument(
        "--tracking-ticks", type=float, default=0.0, help="std of a mean-reverting tracking error"
    )
    pair.add_argument(
        "--push",
        type=_push_arg,
        action="append",
        default=[],
        metavar="SECONDS:TICKS",
        help="step the leader's mid by TICKS at SECONDS after the open (repeatable)",
    )
    gen.set_defaults(func=cmd_generate)

    ls = dsub.add_parser(
        "ls", parents=[store_parent], help="list stored days: events, bytes, time span"
    )
    ls.add_argument("--venue", help="only this venue")
    ls.add_argument("--symbol", help="only this symbol")
    ls.set_defaults(func=cmd_ls)

    info = dsub.add_parser(
        "info",
        parents=[store_parent],
        help="rows, span, kind mix, bytes (no argument: a summary of the whole store)",
    )
    info.add_argument(
        "target",
        nargs="?",
        metavar="VENUE[/SYMBOL[/DATE]]",
        help=(
            "a day or an instrument: rows, span, kind mix, bytes and instrument; a venue, or "
            "nothing for the whole store: venues, symbols, days, events, span and bytes"
        ),
    )
    info.set_defaults(func=cmd_info)

    dump = dsub.add_parser(
        "dump",
        parents=[store_parent],
        help="print a day's events: kind, side and flags as names, prices and sizes in real units",
    )
    dump.add_argument("target", metavar="VENUE/SYMBOL/DATE", help="the stored day")
    dump.add_argument("--limit", type=int, default=None, help="only the first N events")
    dump.add_argument("--format", choices=["csv", "jsonl"], default="csv", help="default csv")
    dump.set_defaults(func=cmd_dump)

    from framework.store.sql import RELATIONS

    sql = dsub.add_parser(
        "sql",
        parents=[store_parent],
        help="DuckDB SQL over the views events, events_named and days",
        description=f"Run DuckDB SQL over the store. Views: {RELATIONS}.",
        epilog=(
            "example: hftlab data sql \"SELECT kind, count(*) FROM events_named "
            "WHERE symbol = 'AMZN' GROUP BY kind\""
        ),
    )
    sql.add_argument("query", help="the SQL; its tables are the views above")
    sql.add_argument("--max-rows", type=int, default=50, help="rows to print (default 50)")
    sql.set_defaults(func=cmd_sql)

    rm = dsub.add_parser(
        "rm", parents=[store_parent], help="delete stored days (events and their labels)"
    )
    rm.add_argument(
        "target", metavar="VENUE/SYMBOL[/DATE]", help="one day, or every day of an instrument"
    )
    rm.set_defaults(func=cmd_rm)

    bt = sub.add_parser(
        "backtest",
        parents=[store_parent],
        help="backtest one or several strategies on stored days",
        description=(
            "Backtest one or several strategies together on stored days. Each strategy has "
            "its own parameters, risk limits and instruments; results (orders, fills, "
            "equity, denials) are attributed per strategy and the summary prints one line "
            "per strategy and the total."
        ),
        epilog=_BACKTEST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bt.add_argument(
        "strategy",
        nargs="+",
        metavar="[NAME=]STRATEGY",
        help=(
            "bundled name (" + ", ".join(sorted(BUNDLED)) + ") or module:Class; repeat for "
            "several. NAME names it in the results and scopes its options (default: the "
            "class name)"
        ),
    )
    bt.add_argument("--venue", help="venue of the --symbol instruments")
    bt.add_argument(
        "--symbol",
        action="append",
        default=[],
        help="an instrument of --venue; repeat for several",
    )
    bt.add_argument(
        "--instrument",
        action="append",
        default=[],
        metavar="VENUE/SYMBOL",
        help="an instrument of the run, repeatable (default: the ones the strategies name)",
    )
    add_day_range(bt)
    add_run_options(bt)
    bt.add_argument(
        "--on",
        action="append",
        default=[],
        metavar="[NAME=]VENUE/SYMBOL[,...]",
        help="the instruments a strategy trades (default: those it names, else all)",
    )
    bt.add_argument("--out", metavar="DIR", help="result tables and report.html go here")
    bt.add_argument("--no-report", action="store_true", help="skip the HTML report")
    bt.add_argument(
        "--feature-model",
        metavar="FILE.npz",
        help="fills the regime features strategies read (ctx.feature(inst, 'regime')): a "
        "model `hftlab regimes` wrote (regime_model.npz)",
    )
    bt.set_defaults(func=cmd_backtest)

    book = sub.add_parser("book", help="order-book tools")
    bsub = book.add_subparsers(dest="book_command", required=True, metavar="SUBCOMMAND")
    rep = bsub.add_parser(
        "replay",
        parents=[store_parent],
        help="the book after every message, as LOBSTER orderbook CSV",
        description=(
            "Replay a stored day through the order book and write the book after every venue "
            "message as CSV. Layout (LOBSTER's orderbook file): one row per message, no "
            "header, columns ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ask_px_2, ... up to "
            "--levels; prices in currency units, sizes in real units, empty levels blank. "
            "--header writes a header line and puts local_time (ISO-8601 UTC), local_ts and "
            "exch_ts (ns since the epoch) of each row's message first."
        ),
    )
    rep.add_argument("--venue", required=True, help="venue of the stored day")
    rep.add_argument("--symbol", required=True, help="symbol of the stored day")
    rep.add_argument("--date", type=date_arg, required=True, help="the day, YYYY-MM-DD")
    rep.add_argument("--levels", type=int, default=10, help="book levels per row (default 10)")
    rep.add_argument("--out", required=True, metavar="FILE.csv", help="the CSV to write")
    rep.add_argument(
        "--header",
        action="store_true",
        help="a header line, and local_time, local_ts, exch_ts as the first columns",
    )
    rep.set_defaults(func=cmd_book_replay)
    _add_plugin_commands(sub, store_parent)
    return p


#: entry-point group through which the packages above ``framework`` (``live``, ``research``)
#: add their verbs: ``framework`` never imports them, they register themselves
COMMAND_GROUP = "hftlab.commands"


def _add_plugin_commands(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    """Let each installed ``hftlab.commands`` entry point add its sub-commands.

    An entry point names a function ``register(sub, store_parent)``. One that fails to load
    (a missing optional dependency, say) costs its own verbs only, with one line saying why.
    """
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:
            print(f"hftlab: warning: the {ep.name!r} commands are unavailable: {exc}",
                  file=sys.stderr)
            continue
        register(sub, store_parent)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hftlab`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except HftlabError as exc:
        print(f"hftlab: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except (OSError, ValueError) as exc:
        # Anything the checks above missed still ends in one clear line, not a traceback.
        print(f"hftlab: error: {type(exc).__name__}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    return rc


def _one_line(text: str) -> str:
    """An error message on one line: the text of a library's exception may hold newlines."""
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
