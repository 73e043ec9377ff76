"""The venue's order hub: order sessions (OUCH, FIX) in, one :class:`Matcher` in the middle,
reports back to the sessions that own the orders, client activity out to the feed.

Sessions outlive their connections: each registers a ``deliver`` callback once, and the
hub calls it for every report of that owner, connected or not (the session stores what it
cannot send and replays it on re-login or resend). Reports come from order calls and from
market data (:meth:`OrderHub.on_market`), in the order the matcher produced them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from framework.core.events import EventArray, empty_events
from live.venue.matching import Matcher, OrdType, Report, ReportKind, Tif

if TYPE_CHECKING:
    from live.venue.fix_server import FixServer
    from live.venue.ouch_server import OuchServer

log = logging.getLogger("hftlab.live.venue")

Deliver = Callable[[Report], None]


class OrderHub:
    """One symbol's matcher behind every order session of the venue."""

    def __init__(self, matcher: Matcher, *, symbol: str, price_mult: int = 1,
                 publish: Callable[[EventArray], None] | None = None) -> None:
        self.matcher = matcher
        self.symbol = symbol
        self.price_mult = price_mult  #: wire price units per tick
        self.publish = publish  #: where client-activity rows go (the ITCH feed), if anywhere
        self._sessions: dict[str, Deliver] = {}
        #: per owner: [lots bought, lots sold, executions, orders accepted, orders rejected]
        #: as the matcher reported them
        self.executed: dict[str, list[int]] = {}

    def now(self) -> int:
        """Venue time in ns since the epoch: the replay's clock once it runs."""
        return self.matcher.now or time.time_ns()

    def attach(self, owner: str, deliver: Deliver) -> None:
        self._sessions[owner] = deliver

    def submit(self, owner: str, token: str, side: int, qty: int, price: int, *,
               ord_type: OrdType = OrdType.LIMIT, tif: Tif = Tif.DAY) -> None:
        self._done(self.matcher.submit(owner, token, side, qty, price, ord_type=ord_type,
                                       tif=tif))

    def cancel(self, owner: str, order_id: int, leave_qty: int = 0, *, token: str = "") -> None:
        self._done(self.matcher.cancel(owner, order_id, leave_qty, token=token))

    def replace(self, owner: str, order_id: int, new_token: str, price: int, qty: int) -> None:
        self._done(self.matcher.replace(owner, order_id, new_token, price, qty))

    def cancel_all(self, owner: str) -> int:
        """Cancel every resting order of ``owner`` (cancel on disconnect); returns how many."""
        ids = self.matcher.open_orders(owner)
        for oid in ids:
            self.cancel(owner, oid)
        if ids:
            log.info("cancelled %d open order(s) of %s on disconnect", len(ids), owner)
        return len(ids)

    def on_market(self, events: EventArray) -> EventArray:
        """Replayed events in; returns the client-activity rows to publish with them."""
        rows = self.matcher.on_market(events)
        self._route(self.matcher.take_reports())
        return rows

    def _done(self, reports: list[Report]) -> None:
        self._route(reports)
        rows = self.matcher.take_events()
        if len(rows) and self.publish is not None:
            self.publish(rows)

    def _route(self, reports: list[Report]) -> None:
        for r in reports:
            tally = self.executed.setdefault(r.owner, [0, 0, 0, 0, 0])
            if r.kind == ReportKind.EXECUTED:
                tally[0 if r.side > 0 else 1] += r.qty
                tally[2] += 1
            elif r.kind == ReportKind.ACCEPTED:
                tally[3] += 1
            elif r.kind == ReportKind.REJECTED and r.order_id == 0:
                tally[4] += 1
            deliver = self._sessions.get(r.owner)
            if deliver is None:
                log.error("report for unknown session %s dropped: %s", r.owner, r)
                continue
            deliver(r)




class OrderServers:
    """The order ports of a venue process, running in the current event loop."""

    def __init__(self, hub: OrderHub, ouch: OuchServer | None = None,
                 fix: FixServer | None = None) -> None:
        self.hub = hub
        self.ouch = ouch
        self.fix = fix

    async def stop(self) -> None:
        for server in (self.ouch, self.fix):
            if server is not None:
                await server.stop()


async def serve_orders(matcher: Matcher, *, symbol: str, ouch_port: int | None = None,
                       fix_port: int | None = None, host: str = "127.0.0.1",
                       price_mult: int = 1, price_decimals: int = 0,
                       publish: Callable[[EventArray], None] | None = None,
                       fix_store: Path | None = None, ouch_users: dict[str, str] | None = None,
                       fix_clients: set[str] | None = None, comp_id: str = "HFTLAB",
                       cancel_on_disconnect: bool = False,
                       ouch_stall: tuple[int, float] | None = None) -> OrderServers:
    """Open the OUCH and/or FIX ports (0 = any free port) around ``matcher``; the venue
    process feeds market data through ``servers.hub.on_market`` and publishes what it
    returns (plus what ``publish`` receives from order calls). FIX sequence numbers and
    sent messages persist under ``fix_store`` (in memory only when it is None).
    ``ouch_stall``: the OUCH port reads slowly (:class:`OuchServer`'s ``stall``)."""
    from live.venue.fix_server import FixServer
    from live.venue.ouch_server import OuchServer

    hub = OrderHub(matcher, symbol=symbol, price_mult=price_mult, publish=publish)
    servers = OrderServers(hub)
    if ouch_port is not None:
        servers.ouch = OuchServer(hub, host=host, port=ouch_port, users=ouch_users,
                                  cancel_on_disconnect=cancel_on_disconnect, stall=ouch_stall)
        await servers.ouch.start()
    if fix_port is not None:
        servers.fix = FixServer(hub, host=host, port=fix_port, comp_id=comp_id,
                                store_dir=fix_store, clients=fix_clients,
                                price_decimals=price_decimals)
        await servers.fix.start()
    return servers


class OrderPorts:
    """The order ports as the venue loop's order hook (``live.venue.server.OrderHook``):
    ``on_market(events)`` matches a replayed message's events and returns the client
    activity they caused, ``poll()`` serves the sockets without blocking and returns the
    client activity of the orders that came in, ``close()`` ends every session.

    The venue loop is synchronous, so the servers get an asyncio loop of their own that
    only runs inside these calls: each ``poll()`` turns it a few times with a zero
    timeout (socket reads and writes ready by then are done; heartbeat timers fire late by
    at most the venue's poll interval). For the feed's wire prices, pass the replay's
    ``price_step`` as ``price_mult`` (ITCH/OUCH prices have 4 implied decimals:
    ``price_decimals=4`` for FIX).
    """

    #: event-loop turns per poll: a request read, matched and answered takes two or three
    TURNS = 4

    def __init__(self, *, symbol: str, ouch_port: int | None = None,
                 fix_port: int | None = None, matcher: Matcher | None = None,
                 instrument: int = 0, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._rows: list[EventArray] = []
        m = matcher if matcher is not None else Matcher(instrument=instrument)
        self.servers = self._loop.run_until_complete(serve_orders(
            m, symbol=symbol, ouch_port=ouch_port, fix_port=fix_port,
            publish=self._rows.append, **options))
        self.hub = self.servers.hub

    def on_market(self, events: EventArray) -> EventArray:
        return self.hub.on_market(events)

    def poll(self) -> EventArray:
        for _ in range(self.TURNS):
            self._loop.run_until_complete(asyncio.sleep(0))
        if not self._rows:
            return empty_events(0)
        rows, self._rows = self._rows, []
        return rows[0] if len(rows) == 1 else np.concatenate(rows)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        for owner, (bought, sold, n, acc, rej) in sorted(self.hub.executed.items()):
            # one line per session: what a client's own books must agree with
            log.info("executions of %s: bought %d sold %d position %d (%d executions); "
                     "orders accepted %d rejected %d", owner, bought, sold, bought - sold, n,
                     acc, rej)
        self._loop.run_until_complete(self.servers.stop())
        self._loop.close()


__all__ = ["OrderHub", "OrderPorts", "OrderServers", "serve_orders"]
