"""``hftlab live``: a runner built from the command line, run to its end, summarised."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Any

from framework.core.errors import ConfigError
from framework.core.timeutil import parse_date
from framework.engine.config import LatencyConfig, QueueConfig
from framework.store import TickStore
from framework.strategy.spec import strategies_from_words
from live.feeds.itch_mold import MoldFeedHandler
from live.gateways.base import Side
from live.journal import JournalWriter
from live.runner import FeedSpec, GatewaySpec, LiveRunner
from live.wire.itch_encode import price_qty_steps

log = logging.getLogger("hftlab.live")


def run_session(args: argparse.Namespace) -> int:
    """Build the runner ``args`` describe, run it until ``--duration`` or SIGTERM/SIGINT
    (an orderly stop: working orders cancelled, sessions closed), print the summary."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.paper == bool(args.gateway):
        msg = "give an order gateway (--gateway ouch://... or fix://...) or --paper, not both"
        raise ConfigError(msg)
    date = parse_date(args.date)
    store = TickStore(args.store)
    inst = store.instrument(args.venue, args.symbol, date)
    price_step, qty_step = price_qty_steps(inst.tick_size, inst.lot_size)
    feed_spec = FeedSpec.parse(args.feed)
    gw_spec = GatewaySpec.parse(args.gateway) if args.gateway else None
    strategies = strategies_from_words(args.strategy, params=args.param, risk=args.risk)
    journal = JournalWriter(args.journal, fsync=args.fsync) if args.journal else None
    feed = MoldFeedHandler(
        listen=(feed_spec.host, feed_spec.port), date=date, price_step=price_step,
        qty_step=qty_step, locate=feed_spec.locate, session=feed_spec.session,
        rerequest=None if feed_spec.rerequest is None else ("127.0.0.1", feed_spec.rerequest))
    symbol = str(inst.extra.get("itch_symbol") or inst.symbol)
    gateway = None if gw_spec is None else gw_spec.build(symbol=symbol, price_mult=price_step)
    meta = {
        "strategy": list(args.strategy), "param": list(args.param), "risk": list(args.risk),
        "mode": args.mode, "venue": args.venue, "symbol": args.symbol, "date": args.date,
        "feed": args.feed, "gateway": None if gw_spec is None else gw_spec.proto,
        "paper": bool(args.paper), "latency": args.latency, "queue": args.queue,
        "instrument": inst.to_dict(), "price_step": price_step, "qty_step": qty_step,
        "locate": feed_spec.locate,
    }
    runner = LiveRunner(
        instrument=inst, strategies=strategies, feed=feed, gateway=gateway,
        locate=feed_spec.locate, mode=args.mode, latency=LatencyConfig.parse(args.latency),
        queue=QueueConfig.parse(args.queue), journal=journal, meta=meta)
    try:
        asyncio.run(_main(runner, args.duration))
        result = runner.finish()
    finally:
        feed.close()
        if journal is not None:
            journal.close()
    summary = summarise(runner, result)
    print(json.dumps(summary, indent=1, sort_keys=True))
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, sort_keys=True))
    if args.stats:
        print(runner.clock.table())
    return 0


async def _main(runner: LiveRunner, duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.run(duration_s=duration, stop=stop)


def summarise(runner: LiveRunner, result: Any) -> dict[str, Any]:
    """What the session did, as the engine saw it and as the gateway's venue reported it."""
    out: dict[str, Any] = {
        "positions": runner.positions(),
        "fills": int(result.fills.height),
        "orders": int(result.orders.height),
        "sent": runner.sent,
        "held": runner.held,
        "responses": runner.responses,
        "unmatched": len(runner.engine.unmatched),
        "violations": runner.violations,
        "messages": runner.feed.messages,
        "gaps": runner.feed.gaps,
        "killed": runner.switch.tripped,
    }
    gw = runner.gateway
    if gw is not None:
        bought = sum(o.filled for o in gw.orders.values() if o.side == Side.BUY)
        sold = sum(o.filled for o in gw.orders.values() if o.side == Side.SELL)
        out["gateway"] = {"bought": bought, "sold": sold, "position": bought - sold,
                          "orders": len(gw.orders),
                          "open": sum(1 for o in gw.orders.values() if o.live)}
    return out
