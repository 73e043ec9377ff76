"""The ``hftlab`` verbs of ``live``, registered through the ``hftlab.commands`` entry point."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    """Add this package's sub-commands to the ``hftlab`` parser ``sub``."""
    _add_venue(sub, store_parent)
    _add_live(sub, store_parent)


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
        type=int,
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
        type=int,
        default=None,
        metavar="P",
        help="accept OUCH 5.0 orders over SoupBinTCP 4.0 on 127.0.0.1:P (0: any free)",
    )
    p.add_argument(
        "--fix-port",
        type=int,
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
            "the same risk checks) on a live ITCH/MoldUDP64 feed, orders through an OUCH or "
            "FIX gateway; with --paper, filled by the backtest's simulated venue. The "
            "instrument (tick and lot size) is read from the store: --venue/--symbol/--date."
        ),
    )
    p.add_argument("strategy", nargs="+", metavar="[NAME=]STRATEGY",
                   help="bundled name or module:Class, as for `hftlab backtest`")
    p.add_argument("--venue", required=True, help="venue of the instrument in the store")
    p.add_argument("--symbol", required=True, help="symbol of the instrument")
    p.add_argument("--date", required=True, help="YYYY-MM-DD: the day the feed carries")
    p.add_argument("--feed", required=True, metavar="itch://HOST:PORT[?rerequest=PORT]",
                   help="where the MoldUDP64 feed arrives and the venue's re-request port")
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
    p.add_argument("--stats", action="store_true",
                   help="print latency per stage (p50/p99/p99.9/max) at the end")
    p.set_defaults(func=_cmd_live)


def _cmd_live(args: argparse.Namespace) -> int:
    from live.session import run_session

    return run_session(args)
