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
from live.feeds.binance_ws import DepthSync, on_message

log = logging.getLogger("hftlab.feeds.binance_live")


class BinanceFeed:
    """One symbol's Binance combined stream (depth, bookTicker, trade) at ``url``."""

    alarm: Exception | None = None  #: never set: a depth gap resyncs, it does not stop
    sock = req_sock = None  #: no socket for the runner to watch: the reader task wakes it

    def __init__(self, url: str, *, tick_size: Decimal | float | str,
                 lot_size: Decimal | float | str, futures: bool = False, locate: int = 1,
                 batch: int = 256) -> None:
        self.url = url
        self.port = urllib.parse.urlsplit(url).port or 0
        self.sync = DepthSync(tick_size=Decimal(str(tick_size)),
                              lot_size=Decimal(str(lot_size)), futures=futures)
        self.locate, self.batch = int(locate), int(batch)
        self.on_packet: Callable[[Any, int], None] | None = None
        self.on_events: Callable[[npt.NDArray[np.void]], None] | None = None
        self.last_receive_ns = 0
        self.messages = 0  #: websocket messages applied
        self.closed = False  #: the server closed the stream
        self._queue: collections.deque[str | bytes] = collections.deque()
        self._req_id = 0
        self._in_flight: int | None = None
        self._to_send: list[int] = []
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._want_snapshot()

    @property
    def gaps(self) -> int:
        """Depth gaps seen (each resynced from a new snapshot)."""
        return self.sync.gaps

    @property
    def ended(self) -> bool:
        """The server closed the stream and every message it sent is applied."""
        return self.closed and not self._queue

    def warm_up(self) -> None:
        """Nothing to compile: the sync is plain Python."""

    # --- the connection ---------------------------------------------------------------------
    async def open(self, wake: asyncio.Event, timeout_s: float = 30.0) -> None:
        """Connect (retrying while the server is not up) and start reading."""
        from websockets.asyncio.client import connect

        end = time.monotonic() + timeout_s
        while True:
            try:
                self._ws = await connect(self.url, max_size=1 << 24)
                break
            except OSError as exc:
                if time.monotonic() > end:
                    msg = f"--feed {self.url}: no connection within {timeout_s:g} s ({exc})"
                    raise VenueError(msg) from exc
                await asyncio.sleep(0.1)
        self._reader = asyncio.create_task(self._read(wake))
        self._flush()
        log.info("binance feed connected: %s", self.url)

    async def _read(self, wake: asyncio.Event) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self._ws:
                self._queue.append(raw)
                wake.set()
        except ConnectionClosed as exc:
            log.warning("binance feed: connection closed (%s)", exc)
        self.closed = True
        wake.set()

    def _flush(self) -> None:
        ws = self._ws
        if ws is None:
            return
        for rid in self._to_send:
            t = asyncio.get_running_loop().create_task(
                ws.send(json.dumps({"method": "depth", "id": rid})))
            self._sends.add(t)
            t.add_done_callback(self._sends.discard)
        self._to_send.clear()

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
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
        if on_message(self.sync, raw, ts, self._in_flight):
            self._in_flight = None
        ev = self.sync.take()
        self.messages += 1
        if len(ev) and self.on_events is not None:
            ev["instrument"] = self.locate
            self.on_events(ev)
        self._want_snapshot()

    def poll(self, timeout_s: float = 0.0) -> int:
        """Apply the messages received so far (up to a batch); returns how many."""
        q = self._queue
        if not q:
            return 0
        now = time.time_ns()
        n = 0
        while q and n < self.batch:
            raw = q.popleft()
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


__all__ = ["BinanceFeed"]
