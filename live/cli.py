"""The ``hftlab`` verbs of ``live``, registered through the ``hftlab.commands`` entry point."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np


def _port(text: str) -> int:
    """A TCP/UDP port number: 0 (any free port) to 65535."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        msg = f"{text!r} is not a port number (0-65535; 0 = any free port)"
        raise argparse.ArgumentTypeError(msg)
    return n


def _stall(text: str) -> tuple[int, float]:
    """``N:S``: packets read, then seconds of reading nothing."""
    n, _, s = text.partition(":")
    try:
        packets, seconds = int(n), float(s)
    except ValueError:
        packets, seconds = 0, 0.0
    if packets < 1 or not 0 < seconds < float("inf"):
        msg = f"{text!r}: give N:S, the packets (>= 1) read before each pause of S seconds (> 0)"
        raise argparse.ArgumentTypeError(msg)
    return packets, seconds


def register(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    """Add this package's sub-commands to the ``hftlab`` parser ``sub``."""
    _add_venue(sub, store_parent)
    _add_live(sub, store_parent)
    _add_journal(sub, store_parent)
    _add_promote(sub)


def _add_venue(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "venue",
        parents=[store_parent],
        help="replay a stored day as ITCH 5.0 over MoldUDP64 (UDP), answering re-requests, "
        "and take orders over OUCH / FIX",
    )
    p.add_argument("--venue", required=True, help="the stored day's venue (as in `data ls`)")
    p.add_argument("--symbol", required=True, help="the stored day's symbol")
    p.add_argument("--date", required=True, help="YYYY-MM-DD")
    p.add_argument("--speed", default="1", help="exchange time x SPEED, or 'max' (default 1)")
    p.add_argument("--max-rate", type=float, default=None, metavar="MSGS_PER_S",
                   help="send at most this many ITCH messages a second (a steady offered "
                   "load: UDP has no flow control, so a sender faster than its receiver "
                   "overruns the receiver's socket buffer)")
    p.add_argument(
        "--itch",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="where to send the feed: unicast or a 239.x multicast group on the "
        "loopback interface (repeat for several)",
    )
    p.add_argument(
        "--rerequest-port",
        type=_port,
        default=None,
        metavar="P",
        help="UDP port (127.0.0.1) answering MoldUDP64 re-requests",
    )
    p.add_argument(
        "--drop",
        type=float,
        default=0.0,
        metavar="P",
        help="discard this fraction of data packets on the wire (kept for re-requests)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --drop")
    p.add_argument("--session", default="HFTLAB", help="MoldUDP64 session name (10 chars)")
    p.add_argument(
        "--heartbeat",
        type=float,
        default=1.0,
        metavar="S",
        help="heartbeat after S seconds without a packet (default 1)",
    )
    p.add_argument(
        "--buffer",
        type=int,
        default=None,
        metavar="N",
        help="retransmission buffer in messages (default: the whole day)",
    )
    p.add_argument(
        "--linger",
        type=float,
        default=None,
        metavar="S",
        help="after the end, serve re-requests S seconds then exit (default: until SIGTERM)",
    )
    p.add_argument(
        "--ouch-port",
        type=_port,
        default=None,
        metavar="P",
        help="accept OUCH 5.0 orders over SoupBinTCP 4.0 on 127.0.0.1:P (0: any free)",
    )
    p.add_argument(
        "--fix-port",
        type=_port,
        default=None,
        metavar="P",
        help="accept FIX 4.4 orders on 127.0.0.1:P (0: any free port)",
    )
    p.add_argument(
        "--fix-store",
        default="venue-state/fix",
        metavar="DIR",
        help="where the FIX acceptor keeps each session's sequence numbers "
        "(default venue-state/fix)",
    )
    p.add_argument("--comp-id", default="HFTLAB", help="the venue's FIX SenderCompID")
    p.add_argument(
        "--cancel-on-disconnect",
        action="store_true",
        help="cancel a session's working orders when its connection drops",
    )
    p.add_argument(
        "--ouch-stall",
        type=_stall,
        default=None,
        metavar="N:S",
        help="a slow OUCH reader (to test clients whose socket fills): after every N packets "
        "read from a connection, read nothing of it for S seconds (small receive buffer)",
    )
    p.set_defaults(func=_cmd_venue)


def _cmd_venue(args: argparse.Namespace) -> int:
    import logging
    import threading

    from framework.core.timeutil import parse_date
    from live.venue.server import (
        VenueConfig,
        install_stop_signals,
        parse_speed,
        run_venue,
        targets,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = VenueConfig(
        venue=args.venue,
        symbol=args.symbol,
        date=parse_date(args.date),
        store=args.store,
        speed=parse_speed(args.speed),
        max_rate=args.max_rate,
        itch=targets(args.itch),
        rerequest_port=args.rerequest_port,
        drop=args.drop,
        seed=args.seed,
        session=args.session,
        heartbeat_s=args.heartbeat,
        buffer_messages=args.buffer,
        linger_s=args.linger,
    )
    stop = threading.Event()
    install_stop_signals(stop)
    run_venue(cfg, stop=stop, hook_factory=_order_ports(args))
    return 0


def _order_ports(args: argparse.Namespace) -> Any:
    """The venue's order sessions (OUCH and/or FIX) around a matcher of the replayed day, as
    the venue loop's order hook; None without ``--ouch-port``/``--fix-port``."""
    if args.ouch_port is None and args.fix_port is None:
        return None
    import logging
    from pathlib import Path

    from live.venue.matching import Matcher
    from live.venue.orders import OrderPorts
    from live.venue.replay import ReplayDay

    def factory(rep: ReplayDay) -> OrderPorts:
        ports = OrderPorts(
            symbol=args.symbol,
            ouch_port=args.ouch_port,
            fix_port=args.fix_port,
            matcher=Matcher(),
            price_mult=rep.price_step,  # wire prices in 1/10,000 (ITCH, OUCH)
            price_decimals=4,
            fix_store=Path(args.fix_store),
            comp_id=args.comp_id,
            cancel_on_disconnect=args.cancel_on_disconnect,
            ouch_stall=args.ouch_stall,
        )
        srv = ports.servers
        where = [
            f"{name} 127.0.0.1:{s.port}"
            for name, s in (("OUCH", srv.ouch), ("FIX", srv.fix))
            if s is not None
        ]
        logging.getLogger("hftlab.venue").info("order ports: %s", ", ".join(where))
        return ports

    return factory


def _add_live(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    from framework.cli import add_run_options

    p = sub.add_parser(
        "live",
        parents=[store_parent],
        help="run backtested strategies on a live feed, through an order gateway (or --paper)",
        description=(
            "The same Strategy classes as `hftlab backtest` (compiled or Python callbacks, "
            "the same risk checks) on a live ITCH/MoldUDP64 or Binance websocket feed, orders "
            "through an OUCH or FIX gateway; with --paper, filled by the backtest's simulated "
            "venue. Without --paper, each strategy needs a promotion record with every gate "
            "passed (`hftlab promote`), or --force --reason. The "
            "instrument (tick and lot size) is read from the store: --venue/--symbol/--date."
        ),
    )
    p.add_argument("strategy", nargs="+", metavar="[NAME=]STRATEGY",
                   help="bundled name or module:Class, as for `hftlab backtest`")
    p.add_argument("--venue", required=True, help="venue of the instrument in the store")
    p.add_argument("--symbol", required=True, help="symbol of the instrument")
    p.add_argument("--date", required=True, help="YYYY-MM-DD: the day the feed carries")
    p.add_argument("--feed", required=True, metavar="itch://HOST:PORT[?rerequest=PORT]",
                   help="where the MoldUDP64 feed arrives and the venue's re-request port; "
                   "or binance-ws://HOST:PORT/PATH[?futures=1]: a Binance combined stream "
                   "(depth, bookTicker, trade) over a websocket")
    p.add_argument("--gateway", metavar="URL",
                   help="ouch://HOST:PORT?user=U&password=P or "
                   "fix://HOST:PORT?sender=S&target=T[&store=DIR]")
    p.add_argument("--paper", action="store_true",
                   help="no gateway: the backtest's simulated venue fills the orders")
    add_run_options(p)
    p.add_argument("--journal", metavar="DIR", help="journal every message in DIR")
    p.add_argument("--fsync", default="interval:100",
                   help="journal durability: always, never or interval:MS (default interval:100)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: until SIGTERM)")
    p.add_argument("--summary", metavar="FILE.json",
                   help="write the session's positions, fills and counts as JSON here")
    p.add_argument("--stats", nargs="?", type=float, const=0.0, default=None, metavar="N",
                   help="print latency per stage (p50/p99/p99.9/max) at the end, and every "
                   "N seconds if N is given")
    p.add_argument("--feature-model", metavar="FILE.npz",
                   help="fills the regime features strategies read, as in a backtest's "
                   "--feature-model (the journal carries the model for replay and parity)")
    p.add_argument("--bandit", metavar="SETS.json",
                   help="run one isolated instance of the strategy per parameter set of this "
                   "JSON list ([{...}, ...], over its --param values); a Thompson-sampling "
                   "bandit lets one trade per epoch, chosen by regime (needs "
                   "--feature-model); every choice is journaled, a replay takes it from there")
    p.add_argument("--bandit-epoch", default="60s", metavar="DURATION",
                   help="how long a chosen set trades before the bandit chooses again "
                   "(default 60s)")
    p.add_argument("--bandit-state", metavar="FILE.json",
                   help="the bandit's posterior: start from it if it exists (e.g. saved from "
                   "a walk-forward with research.ml.bandit.save_state), write what the "
                   "session learned there at its end")
    p.add_argument("--bandit-seed", type=int, default=None, metavar="N",
                   help="seed of the bandit's draws (default: a new one, in the journal)")
    p.add_argument("--busy-poll", action="store_true",
                   help="spin on the feed and the order session instead of sleeping between "
                   "packets: lowest tick-to-order latency, one core kept busy")
    p.add_argument("--warm-send-us", type=int, default=None, metavar="US",
                   help="with --busy-poll on OUCH: while the feed is quiet, send a client "
                   "heartbeat at most every US µs to keep the kernel's transmit path warm for "
                   "the next order (default 1000; 0: never)")
    p.add_argument("--warm-tick-us", type=int, default=None, metavar="US",
                   help="with --busy-poll: while the feed is quiet, run the packet path on a "
                   "scratch packet at most every US µs to keep its code warm for the next "
                   "packet (default 500; 0: never)")
    p.add_argument("--warm-pages", type=int, default=None, metavar="N",
                   help="with --busy-poll: while the feed is quiet, read a byte of N of the "
                   "tick's pages per pass of the loop, round and round over its code and "
                   "tables, so that their address translations are current when the next "
                   "packet comes (default 8; 0: none)")
    p.add_argument("--wire-stamps", action="store_true",
                   help="with --stats: also time each tick to the kernel's transmit stamp of "
                   "its first order message (bytes handed to the network device; the send "
                   "call's return on loopback also includes the peer's receive), and from the "
                   "kernel's receive stamp of its first packet (rx_wait, rx_to_wire), OUCH only")
    p.add_argument("--control", metavar="127.0.0.1:PORT",
                   help="serve /kill /reset /status /metrics and the dashboard here "
                   "(bearer token from $HFTLAB_CONTROL_TOKEN or --token-file)")
    p.add_argument("--token-file", metavar="FILE",
                   help="without $HFTLAB_CONTROL_TOKEN: write a new control token here (0600)")
    p.add_argument("--kill-on", action="append", default=[], metavar="TRIGGER=VALUE",
                   help="automatic kill triggers: stale_feed_s (default 5), gateway_down_s "
                   "(2), rejects (20) within rejects_window_s (1)")
    p.add_argument("--records", metavar="DIR",
                   help="the promotion records (default: beside --journal DIR, in its parent)")
    p.add_argument("--force", action="store_true",
                   help="start live although the promotion record lacks a passed gate "
                   "(recorded in it, with --reason)")
    p.add_argument("--reason", metavar="TEXT", help="why --force (recorded)")
    p.set_defaults(func=_cmd_live)


def _cmd_live(args: argparse.Namespace) -> int:
    from live.session import run_session

    return run_session(args)


def _add_promote(sub: Any) -> None:
    p = sub.add_parser(
        "promote",
        help="record a strategy's promotion gates: backtest out of sample -> paper -> live",
        description=(
            "Check and record the promotion gates of STRATEGY with the parameter set of "
            "--params: --study DIR (an optimisation study's walk-forward out-of-sample "
            "result), --journal DIR (a --paper session whose journal parity passes, checked "
            "now), --max-position/--max-notional (the capital limits of live trading). "
            "Without a gate option: print the record. The record is "
            "promotion-<Class>-<key>.json in --records DIR (default: beside --journal DIR)."
        ),
    )
    p.add_argument("strategy", metavar="STRATEGY", help="bundled name or module:Class")
    p.add_argument("--params", required=True, metavar="FILE",
                   help='the parameter set: a JSON object {"name": value, ...}')
    p.add_argument("--study", metavar="DIR", help="gate backtest: the study's --out folder")
    p.add_argument("--min-oos-sharpe", type=float, default=0.0, metavar="S",
                   help="gate backtest: out-of-sample Sharpe must be above S (default 0)")
    p.add_argument("--journal", metavar="DIR", help="gate paper: the paper session's journal")
    p.add_argument("--max-position", type=float, metavar="N",
                   help="gate live: most lots held per instrument (with --max-notional)")
    p.add_argument("--max-notional", type=float, metavar="X",
                   help="gate live: most notional per order, in currency")
    p.add_argument("--records", metavar="DIR",
                   help="folder of the promotion records (default: beside --journal DIR)")
    p.add_argument("--force", action="store_true",
                   help="record a gate whose check fails as passed (with --reason)")
    p.add_argument("--reason", metavar="TEXT", help="why --force (recorded)")
    p.set_defaults(func=_cmd_promote)


def _cmd_promote(args: argparse.Namespace) -> int:
    import json

    from framework.core.errors import ConfigError
    from live.promote import Candidate, load_record, records_folder, run_gates

    folder = records_folder(args.records, args.journal)
    if folder is None:
        msg = "give --records DIR (or --journal DIR: the record is kept beside it)"
        raise ConfigError(msg)
    cand = Candidate.from_file(args.strategy, args.params)
    checks = run_gates(folder, cand, study=args.study, journal=args.journal,
                       max_position=args.max_position, max_notional=args.max_notional,
                       force=args.force, reason=args.reason,
                       min_oos_sharpe=args.min_oos_sharpe)
    rec = load_record(folder, cand)
    where = cand.record_path(folder)
    for c in checks:
        word = "passed" if c.passed else ("FORCED" if args.force else "FAILED")
        print(f"gate {c.gate}: {word}: {c.why}")
    if rec is None:
        print(f"no promotion record of {cand.class_name} key {cand.key} in {folder}")
        return 0
    status = {g: rec.passed(g) for g in ("backtest", "paper", "live")}
    print(f"record {where}: " + json.dumps(status) + (f"; limits {rec.limits}" if rec.limits
                                                       else ""))
    return 0 if all(c.passed or args.force for c in checks) else 1


def _add_journal(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    j = sub.add_parser("journal", help="a live session's journal: decision parity, replay")
    jsub = j.add_subparsers(dest="journal_command", required=True, metavar="SUBCOMMAND")
    par = jsub.add_parser(
        "parity",
        help="replay the journal through a fresh engine; compare its decisions one for one",
        description=(
            "Drive the session's strategies (from the journal's metadata) through the "
            "journaled packets and venue answers, as the runner did, and compare every "
            "order, cancel and modify with the live session's. Exit 1 at the first "
            "difference, with both sides shown."
        ),
    )
    par.add_argument("dir", metavar="DIR", help="the journal folder")
    par.add_argument("--mode", choices=["auto", "compiled", "python"], default=None,
                     help="callbacks of the replay (default: the session's)")
    par.set_defaults(func=_cmd_parity)
    rep = jsub.add_parser(
        "replay",
        parents=[store_parent],
        help="the journaled packets as a store day, backtested with the session's latencies",
    )
    rep.add_argument("dir", metavar="DIR", help="the journal folder")
    rep.add_argument("--venue", default="JOURNAL",
                     help="store the day under this venue (default JOURNAL)")
    rep.add_argument("--out", metavar="DIR", help="the backtest's result tables go here")
    rep.set_defaults(func=_cmd_replay)


def _cmd_parity(args: argparse.Namespace) -> int:
    from live.replay import parity

    p = parity(args.dir, mode=args.mode)
    if p.ok:
        print(f"parity: {p.compared} decisions equal one for one ({p.live} in the journal)")
        return 0
    print(f"parity FAILED after {p.compared} equal decisions: {p.first_difference}")
    return 1


def _cmd_replay(args: argparse.Namespace) -> int:
    import datetime as dt
    from pathlib import Path

    from framework.engine.backtest import Backtest
    from framework.engine.config import LatencyConfig, QueueConfig
    from framework.engine.runner import print_summary
    from framework.store import TickStore
    from live.bandit import session_strategies
    from live.journal import read
    from live.replay import decoded_events, latency_series

    s, events = decoded_events(args.dir)
    inst = s.instrument.replace(venue=args.venue)
    day = dt.datetime.fromtimestamp(int(events["local_ts"][0]) / 1e9, dt.UTC).date()
    TickStore(args.store).write(inst, day, events)
    series = latency_series(args.dir)
    m = s.meta
    model = s.feature_model()  # the regimes the session's strategies read
    strategies, bandit = session_strategies(m, model)
    if bandit is not None:  # the gate takes the session's journaled arms, in order
        bandit.replay_from(list(read(Path(args.dir))))
    result = Backtest(instruments=[inst], streams=[[events]], strategies=strategies,
                      latency=LatencyConfig(model="empirical", series=series),
                      queue=QueueConfig.parse(m["queue"]), mode=m["mode"],
                      feature_model=model, isolated=bandit is not None,
                      out_dir=Path(args.out) if args.out else None).run()
    print(f"stored {len(events):,} events as {inst.key} {day}; latency series of "
          f"{len(series)} orders (round trip p50 "
          f"{float(np.median(series[:, 1] + series[:, 2])) / 1e3:.1f} us)")
    print_summary(result, Path(args.out) if args.out else None)
    if bandit is not None:
        # the backtest's epochs start at its own book changes: a decision whose start or
        # regime differs from the session's is said, the arm is the session's all the same
        diff = bandit.check()
        print(f"bandit: {bandit.decisions} epoch(s) with the session's arms"
              + (f"; first difference: {diff}" if diff else ", each at the same start and "
                 "regime"))
    return 0
