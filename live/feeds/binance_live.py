"""The Binance websocket feed as the live runner drives a feed: poll, journal, replay.

:class:`BinanceFeed` offers the runner what :class:`live.feeds.itch_mold.MoldFeedHandler`
does (``poll``, ``apply_packets``, ``on_packet``, ``on_events``, ``last_receive_ns``), on
a ``websockets`` connection the runner's event loop reads: a reader task queues each
message as it arrives and wakes the loop; each poll takes the queued messages, stamps them
with one receive time (as the MoldUDP64 handler stamps a poll's packets), hands each to the
journal as received, and applies it through :func:`live.feeds.binance_ws.on_message` and
its :class:`~live.feeds.binance_ws.DepthSync` (snapshot + diff sync, resync on a gap).

Snapshot requests are decided by the messages alone: after every message (and at the
start), if the sync needs a snapshot and none is asked for, the next request id is taken.
A journal replay (``apply_packets``) makes the same decisions on the same messages, so the
answer to request ``n`` is recognised in the replay exactly as it was live.

A lost connection (dropped, or closed by the server other than at the end of its data) is
reconnected with a :class:`~live.feeds.binance_ws.Backoff` (0.05 s doubling to 2 s, given up
after ``reconnect.give_up_s``), one outage until a connection proves healthy: its snapshot
answered, or up ``reconnect.healthy_s`` (:class:`~live.feeds.binance_ws.Reconnects`; a server
that accepts and closes at once is retried with the growing waits, not at once each time).
The loss is a message of the feed's own in the queue, at its place among the server's
(:data:`LOST`): journaled and applied like them, it empties the book
(:meth:`DepthSync.reset`: nothing is priced off a book nobody maintains, and no packet comes,
so a long outage trips the runner's stale-feed trigger, which reads
:attr:`BinanceFeed.heard_ns`: the server's messages only) and asks for a new snapshot, which
goes out on the new connection; a replay of the journal resyncs at the same place. An outage
given up is the feed's :attr:`BinanceFeed.alarm`: the book stops there.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from framework.core.errors import VenueError
from live.feeds.binance_ws import (
    Backoff,
    DepthSync,
    Reconnects,
    connect_retrying,
    ended_orderly,
    on_message,
)

log = logging.getLogger("hftlab.feeds.binance_live")

#: how the feed's own record of a lost connection starts (journaled as a feed message; never
#: a server's: those are combined-stream messages or answers ``{"id": ...}``)
LOST = '{"hftlab":"connection lost"'
_LOST_B = LOST.encode()


def lost_record(reason: str) -> bytes:
    """The feed's record of a lost connection (a JSON object starting with :data:`LOST`)."""
    return (LOST + "," + json.dumps({"reason": reason}, separators=(",", ":"))[1:]).encode()


class _Lost:
    """A lost connection's place in the queue of received messages."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class BinanceFeed:
    """One symbol's Binance combined stream (depth, bookTicker, trade) at ``url``."""

    sock = req_sock = None  #: no socket for the runner to watch: the reader task wakes it

    def __init__(self, url: str, *, tick_size: Decimal | float | str,
                 lot_size: Decimal | float | str, futures: bool = False, locate: int = 1,
                 batch: int = 256, reconnect: Backoff | None = None) -> None:
        self.url = url
        self.port = urllib.parse.urlsplit(url).port or 0
        self.sync = DepthSync(tick_size=Decimal(str(tick_size)),
                              lot_size=Decimal(str(lot_size)), futures=futures)
        self.locate, self.batch = int(locate), int(batch)
        self.on_packet: Callable[[Any, int], None] | None = None
        self.on_events: Callable[[npt.NDArray[np.void]], None] | None = None
        self.last_receive_ns = 0
        #: receive time of the server's last message (the feed's own records of a lost
        #: connection are not: the runner's stale-feed trigger reads this)
        self.heard_ns = 0
        self.messages = 0  #: websocket messages applied
        self.closed = False  #: the server ended the stream (its data ended)
        self.reconnect = reconnect or Backoff()
        self.reconnects = 0  #: lost connections made again
        self._retry = Reconnects(self.reconnect)
        self._up = 0.0  #: when the connection open now was made (monotonic)
        #: losses queued by the reader and applied by polls: a snapshot answered while they
        #: are equal came on the connection open now, which so proved healthy
        self._losses_queued = self._losses_applied = 0
        self._failed: Exception | None = None  #: an outage given up
        self._stopping = False  #: aclose: a closed connection is ours, not lost
        self._queue: collections.deque[str | bytes | _Lost] = collections.deque()
        self._req_id = 0
        self._in_flight: int | None = None
        self._to_send: list[int] = []
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._want_snapshot()

    @property
    def gaps(self) -> int:
        """Holes in the stream: depth gaps and lost connections (each resynced from a new
        snapshot)."""
        return self.sync.gaps + self.sync.losses

    @property
    def recoveries(self) -> dict[str, int]:
        """How the feed kept itself whole, for the session's summary and /status: lost
        connections made again (each resynced from a new snapshot)."""
        return {"reconnects": self.reconnects}

    @property
    def ended(self) -> bool:
        """The server ended the stream and every message it sent is applied."""
        return self.closed and not self._queue

    @property
    def alarm(self) -> Exception | None:
        """Set once an outage is given up and every message received before it is applied:
        the book stops there (the runner polls no more; its stale-feed trigger trips)."""
        return self._failed if not self._queue else None

    def warm_up(self) -> None:
        """Nothing to compile: the sync is plain Python."""

    # --- the connection ---------------------------------------------------------------------
    async def open(self, wake: asyncio.Event, timeout_s: float = 30.0) -> None:
        """Connect (retrying while the server is not up) and start reading."""
        first = Backoff(self.reconnect.first_s, self.reconnect.max_s, timeout_s)
        try:
            self._ws, _ = await connect_retrying(self.url, first)
        except VenueError as exc:
            raise VenueError(f"--feed {self.url}: {exc}") from exc
        self._up = time.monotonic()
        self._reader = asyncio.create_task(self._read(wake))
        self._flush()
        log.info("binance feed connected: %s", self.url)

    async def _read(self, wake: asyncio.Event) -> None:
        """Queue what arrives; a lost connection is queued as such and made again."""
        from websockets.exceptions import ConnectionClosed

        while True:
            ws = self._ws
            try:
                async for raw in ws:
                    self._queue.append(raw)
                    wake.set()
            except ConnectionClosed:
                pass
            if self._stopping:
                return
            if ended_orderly(ws):
                log.info("binance feed: the server ended the stream (%s)", ws.close_reason)
                self.closed = True
                wake.set()
                return
            reason = (f"close code {ws.close_code}"
                      + (f" {ws.close_reason!r}" if ws.close_reason else ""))
            self._ws = None
            self._to_send.clear()  # requests of the old connection: a new one is decided
            self._queue.append(_Lost(reason))
            self._losses_queued += 1
            wake.set()
            r = self.reconnect
            up = time.monotonic() - self._up
            self._retry.lost(reason, up)
            log.warning("binance feed: connection lost (%s) after %.2f s up; reconnecting "
                        "(%s: waits %g s doubling to %g s, for up to %g s)", reason, up,
                        "the outage goes on" if self._retry.outage else "a new outage",
                        r.first_s, r.max_s, r.give_up_s)
            t0 = time.monotonic()
            try:
                self._ws = await self._retry.connect(self.url)
            except VenueError as exc:
                self._failed = VenueError(f"--feed {self.url}: connection lost ({reason}) and "
                                          f"{exc}: the book stops here")
                log.error("%s", self._failed)
                wake.set()
                return
            self._up = time.monotonic()
            self.reconnects += 1
            log.warning("binance feed reconnected after %.2f s (%d attempt(s) in this outage), "
                        "reconnect %d; the book resyncs from a new snapshot",
                        time.monotonic() - t0, self._retry.attempts, self.reconnects)
            self._flush()
            wake.set()

    def _flush(self) -> None:
        ws = self._ws
        if ws is None:
            return
        for rid in self._to_send:
            t = asyncio.get_running_loop().create_task(
                ws.send(json.dumps({"method": "depth", "id": rid})))
            self._sends.add(t)
            t.add_done_callback(self._sent)
        self._to_send.clear()

    def _sent(self, t: asyncio.Task[None]) -> None:
        """A request sent, or lost with its connection (the loss resyncs anyway)."""
        self._sends.discard(t)
        if not t.cancelled():
            t.exception()

    async def aclose(self) -> None:
        self._stopping = True
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()

    def close(self) -> None:
        """Nothing held outside the event loop (``aclose`` ends the connection)."""

    # --- messages ---------------------------------------------------------------------------
    def _want_snapshot(self) -> None:
        if self.sync.needs_snapshot and self._in_flight is None:
            self._req_id += 1
            self._in_flight = self._req_id
            self._to_send.append(self._req_id)

    def _apply(self, raw: str | bytes, ts: int) -> None:
        if raw.startswith(_LOST_B) if isinstance(raw, bytes) else raw.startswith(LOST):
            self._lost(raw, ts)
        else:
            if on_message(self.sync, raw, ts, self._in_flight):
                self._in_flight = None
                if self._losses_applied == self._losses_queued:
                    self._retry.healthy()  # the connection open now answered
            self.messages += 1
        ev = self.sync.take()
        if len(ev) and self.on_events is not None:
            ev["instrument"] = self.locate
            self.on_events(ev)
        self._want_snapshot()

    def _lost(self, raw: str | bytes, ts: int) -> None:
        """The connection was lost here: no answer to a request of it will come; the book is
        emptied and synced again from a new snapshot."""
        try:
            reason = str(json.loads(raw).get("reason", "?"))
        except (ValueError, AttributeError):
            reason = "?"
        self._in_flight = None
        self._to_send.clear()
        self._losses_applied += 1
        self.sync.reset(ts)
        log.warning("binance feed: connection lost (%s): the book is emptied until a new "
                    "snapshot syncs it (%d lost so far)", reason, self.sync.losses)

    def poll(self, timeout_s: float = 0.0) -> int:
        """Apply the messages received so far (up to a batch); returns how many."""
        q = self._queue
        if not q:
            return 0
        now = time.time_ns()
        n = 0
        while q and n < self.batch:
            raw = q.popleft()
            if isinstance(raw, _Lost):
                raw = lost_record(raw.reason)
            else:
                self.heard_ns = now
            if self.on_packet is not None:
                self.on_packet(raw.encode() if isinstance(raw, str) else raw, now)
            self.last_receive_ns = now
            self._apply(raw, now)
            n += 1
        if self._to_send:
            self._flush()
        return n

    def apply_packets(self, packets: Sequence[bytes], ts_ns: int) -> int:
        """Apply journaled messages received at ``ts_ns`` (a replay: requests are only
        counted, never sent)."""
        for raw in packets:
            self.last_receive_ns = ts_ns
            self._apply(raw, ts_ns)
        self._to_send.clear()
        return len(packets)


__all__ = ["LOST", "BinanceFeed", "lost_record"]
