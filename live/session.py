"""``hftlab live``: a runner built from the command line, run to its end, summarised."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from framework.core.errors import ConfigError
from framework.core.timeutil import parse_date
from framework.engine.config import LatencyConfig, QueueConfig
from framework.store import TickStore
from framework.strategy.spec import strategies_from_words
from live.control import TOKEN_ENV, ControlServer
from live.gateways.base import Side
from live.hotpath import PAGES_PER_PASS, WARM_SEND_US, WARM_TICK_US
from live.journal import JournalWriter, segments
from live.monitor import Metrics
from live.runner import FeedSpec, GatewaySpec, LiveRunner, Triggers
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
    feed_spec = FeedSpec.parse(args.feed)
    if feed_spec.scheme != "itch" and not args.paper:
        msg = (f"--feed {args.feed}: a Binance feed runs with --paper only (no order gateway "
               "trades Binance instruments; the OUCH/FIX venues carry ITCH days)")
        raise ConfigError(msg)
    price_step, qty_step = (price_qty_steps(inst.tick_size, inst.lot_size)
                            if feed_spec.scheme == "itch" else (1, 1))
    gw_spec = GatewaySpec.parse(args.gateway) if args.gateway else None
    strategies = strategies_from_words(args.strategy, params=args.param, risk=args.risk)
    triggers = Triggers.parse(args.kill_on)
    control_at = _control_address(args)
    resume = bool(args.journal) and bool(segments(Path(args.journal)))
    if resume and gw_spec is not None and gw_spec.proto == "fix" and "store" not in \
            gw_spec.options:
        msg = ("resuming a FIX session needs its sequence store: give the --gateway "
               "fix://...&store=DIR of the run that wrote the journal")
        raise ConfigError(msg)
    model = None
    if args.feature_model:
        from framework.features.model import FeatureModel

        model = FeatureModel.load(args.feature_model)
    bandit = None
    if getattr(args, "bandit", None):
        bandit = _bandit(args, strategies, model, resume)
    elif getattr(args, "bandit_state", None) or getattr(args, "bandit_seed", None) is not None:
        msg = "--bandit-state and --bandit-seed belong to a --bandit SETS.json session"
        raise ConfigError(msg)
    if bandit is not None:
        strategies = list(bandit.strategies)
    # the last check (a forced start is recorded): a live start needs every promotion gate
    if not args.paper:
        from live.promote import PromotionError, records_folder, require_live

        # a bandit's instances each need their parameter set promoted
        subjects = strategies if bandit is None else bandit.plain()
        try:
            promoted = require_live(records_folder(args.records, args.journal), subjects,
                                    force=args.force, reason=args.reason)
        except PromotionError as exc:
            print(f"hftlab: error: {exc}", file=sys.stderr)
            return 2
        if bandit is None:
            args.risk = [*args.risk, *promoted]  # the journal's session record holds them
        else:
            bandit.take_limits(subjects)  # the session record's bandit holds them
    meta = {
        "strategy": list(args.strategy), "param": list(args.param), "risk": list(args.risk),
        "mode": args.mode, "venue": args.venue, "symbol": args.symbol, "date": args.date,
        "feed": args.feed, "gateway": None if gw_spec is None else gw_spec.proto,
        "paper": bool(args.paper), "latency": args.latency, "queue": args.queue,
        "instrument": inst.to_dict(), "price_step": price_step, "qty_step": qty_step,
        "locate": feed_spec.locate,
        # the regime model itself (a few kB): the replay needs no file that may have changed
        **({} if model is None else {"feature_model": {
            "path": str(args.feature_model),
            "npz_base64": base64.b64encode(model.to_bytes()).decode("ascii")}}),
        # the sets, epoch, seed and starting posterior: a replay takes the journaled arms
        **({} if bandit is None else {"bandit": bandit.spec.to_meta()}),
    }
    symbol = str(inst.extra.get("itch_symbol") or inst.symbol)
    # everything checked: now the sockets and files, each closed whatever happens next
    feed = feed_spec.build(inst, date, price_step=price_step, qty_step=qty_step)
    journal = control = runner = result = None
    try:
        # opening the journal cuts a torn tail (a crash mid-record) before it is read
        journal = JournalWriter(args.journal, fsync=args.fsync) if args.journal else None
        gateway = None if gw_spec is None else gw_spec.build(symbol=symbol,
                                                             price_mult=price_step)
        runner = LiveRunner(
            instrument=inst, strategies=strategies, feed=feed, gateway=gateway,
            locate=feed_spec.locate, mode=args.mode, latency=LatencyConfig.parse(args.latency),
            queue=QueueConfig.parse(args.queue), journal=None if resume else journal,
            meta=meta, triggers=triggers, feature_model=model, bandit=bandit,
            wire_stamps=bool(getattr(args, "wire_stamps", False)),
            warm_send_us=_us(args, "warm_send_us", WARM_SEND_US),
            warm_tick_us=_us(args, "warm_tick_us", WARM_TICK_US),
            warm_pages=_us(args, "warm_pages", PAGES_PER_PASS))
        recovered = None
        if resume:
            from live.replay import recover

            recovered = recover(runner, args.journal)
            runner.attach_journal(journal)
            log.warning("rebuilt from the journal in %s: %d order(s) of the earlier run, "
                        "positions %s", args.journal, len(recovered.orders),
                        runner.positions())
        control = _control(args, control_at, runner)
        asyncio.run(_main(runner, args.duration, args.stats or 0.0, recovered,
                          busy_poll=bool(getattr(args, "busy_poll", False))))
        result = runner.finish()  # (on failure it drops what it wrote itself)
    except BaseException:
        if runner is not None and result is None:
            with contextlib.suppress(Exception):
                runner.engine.abort()  # no half-written result files
        raise
    finally:
        if control is not None:
            control.stop()
        feed.close()
        if journal is not None:
            journal.close()
    summary = summarise(runner, result)
    if bandit is not None and args.bandit_state:
        summary["bandit"]["state"] = str(bandit.save(args.bandit_state))
    print(json.dumps(summary, indent=1, sort_keys=True))
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, sort_keys=True))
    if args.stats is not None:
        print(runner.clock.table())
    return 0


def _us(args: argparse.Namespace, name: str, default: int) -> int:
    """A µs option of the command line (None: not given, its default)."""
    v = getattr(args, name, None)
    return default if v is None else max(int(v), 0)


def _bandit(args: argparse.Namespace, strategies: list[Any], model: Any,
            resume: bool) -> Any:
    """``--bandit``: the gated instances of the one strategy given. A session resumed from
    its journal keeps the journal's seed, starting posterior and limits (the replay rebuilds
    from them; recovery refuses other sets or epochs)."""
    from live.bandit import BanditSpec, LiveBandit

    if model is None:
        msg = ("--bandit chooses a parameter set per regime: give the regime model with "
               "--feature-model FILE.npz")
        raise ConfigError(msg)
    if len(strategies) != 1:
        msg = (f"--bandit runs instances of one strategy, got {len(strategies)} "
               f"({', '.join(s.name for s in strategies)})")
        raise ConfigError(msg)
    n_regimes = len(model.label_names)
    spec = BanditSpec.from_args(args.bandit, epoch=args.bandit_epoch,
                                state_file=args.bandit_state, seed=args.bandit_seed,
                                n_contexts=n_regimes + 1)
    if resume:
        from live.journal import KIND_META, read

        first = next((r for r in read(Path(args.journal)) if r.kind == KIND_META), None)
        was = None if first is None else json.loads(first.payload).get("bandit")
        if was is not None and BanditSpec.from_meta(was).same_session(spec):
            spec = BanditSpec.from_meta(was)
    return LiveBandit(spec, strategies[0], n_regimes=n_regimes)


def _control_address(args: argparse.Namespace) -> tuple[str, int] | None:
    """``--control HOST:PORT`` checked (with its token's source) before anything opens."""
    if not args.control:
        return None
    host, _, port = args.control.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        msg = f"--control {args.control!r}: give 127.0.0.1:PORT"
        raise ConfigError(msg)
    if not os.environ.get(TOKEN_ENV) and not args.token_file:
        msg = f"--control needs a token: set ${TOKEN_ENV} or give --token-file FILE"
        raise ConfigError(msg)
    return host or "127.0.0.1", int(port)


def _control(args: argparse.Namespace, at: tuple[str, int] | None,
             runner: LiveRunner) -> ControlServer | None:
    """The control endpoint, started; the token comes from $HFTLAB_CONTROL_TOKEN, or a new
    one is written to ``--token-file`` (mode 0600)."""
    if at is None:
        return None
    host, port = at
    token = os.environ.get(TOKEN_ENV)
    metrics = Metrics()
    srv = ControlServer(runner.switch, host=host, port=port, token=token,
                        status=runner.status, registry=metrics.registry)
    runner.metrics = metrics
    if not token:
        path = Path(args.token_file)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(srv.token)
    srv.start()
    log.info("control on %s (token in %s)", srv.url,
             f"${TOKEN_ENV}" if token else args.token_file)
    return srv


async def _main(runner: LiveRunner, duration: float | None, stats_s: float,
                recovered: Any, *, busy_poll: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # an orderly stop
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, runner.switch.trip, "signal SIGUSR1")
    await runner.run(duration_s=duration, stop=stop, stats_every_s=stats_s, recovered=recovered,
                     busy_poll=busy_poll)


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
        **runner.feed.recoveries,  # reconnects (websocket), rerequests (MoldUDP64)
        "killed": runner.switch.tripped,
        "book": _top(runner),
        "denials": {str(k): int(v) for k, v in result.denials["reason"].value_counts()
                    .iter_rows()} if result.denials.height else {},
        "risk": {s.name: {k: v for k, v in dataclasses.asdict(s.risk_limits).items()
                          if v is not None} for s in runner.engine.strategies},
    }
    if runner.bandit is not None:
        out["bandit"] = runner.bandit.summary()
    hot = runner.hot_summary()
    if hot is not None:
        out["hot"] = hot
    gw = runner.gateway
    if gw is not None:
        bought = sum(o.filled for o in gw.orders.values() if o.side == Side.BUY)
        sold = sum(o.filled for o in gw.orders.values() if o.side == Side.SELL)
        out["gateway"] = {"bought": bought, "sold": sold, "position": bought - sold,
                          "orders": len(gw.orders),
                          "open": sum(1 for o in gw.orders.values() if o.live)}
    return out


def _top(runner: LiveRunner) -> dict[str, int | None]:
    """The engine's best bid and ask (ticks) at the end, as the strategies saw them."""
    from framework.strategy.context import Context
    from framework.strategy.nb import NO_PRICE

    eng = runner.engine
    ctx = Context(eng.arena, 0, eng.instruments)
    bid, ask = int(ctx.best_bid(0)), int(ctx.best_ask(0))
    return {"bid": None if bid == NO_PRICE else bid, "ask": None if ask == NO_PRICE else ask}
