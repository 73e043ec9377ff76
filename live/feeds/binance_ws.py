"""Binance websocket depth + trade handler: diff-depth sync by update id, resync on a gap.

:class:`DepthSync` is the protocol logic, no I/O: combined-stream messages and REST-style
depth snapshots in, EVENT_DTYPE rows out — the same rows the framework's importer
(:mod:`framework.ingest.binance_raw`) makes from a capture of the same messages, so the same
book code builds the same book. Binance's documented order-book rules (spot "How to manage a
local order book correctly"; USD-M futures the same with ``pu``):

1. buffer the diffs of ``<symbol>@depth`` from the moment the stream opens, and ask for a
   snapshot (``lastUpdateId``);
2. drop buffered diffs with ``u <= lastUpdateId``;
3. the first diff applied has ``U <= lastUpdateId + 1 <= u`` (futures: ``U <= lastUpdateId
   <= u``, or ``pu == lastUpdateId``);
4. each next diff has ``U == previous u + 1`` (futures: ``pu == previous u``); a diff that
   does not is a gap: the book is out of sync, diffs are buffered again and a new snapshot
   is asked for (:attr:`DepthSync.needs_snapshot`).

Events: a snapshot is ``KIND_CLEAR`` + one ``KIND_LEVEL`` per level (``FLAG_SNAPSHOT``); a
diff one ``KIND_LEVEL`` per level (bids first, qty 0 removes); ``bookTicker`` two
``KIND_BBO``; ``trade`` one ``KIND_TRADE`` (side = aggressor); ``order_id`` = the update
id (depth, bookTicker) or trade id; ``exch_ts`` = event time ``E`` (the latest seen for
messages without one); ``FLAG_LAST`` ends each message's events. Prices and sizes must be on
the instrument's tick and lot grid: a message that is not is refused whole and counted.

:func:`run_binance_ws` is the transport: a ``websockets`` client that requests snapshots
over the same connection (``{"method": "depth", "id": n}`` → ``{"id": n, "result":
{...}}``, the shape of Binance's WebSocket API), so the snapshot's place among the diffs is
the place it was taken. A connection lost (dropped, or closed by the server other than at the
end of its data, :data:`END_OF_DATA`) is reconnected with a :class:`Backoff` and the book
synced again from a new snapshot (:meth:`DepthSync.reset`), never built across the hole; the
outage lasts until a connection proves healthy (:class:`Reconnects`), so a server that
accepts and closes at once is retried with growing waits and given up at the bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from framework.core.errors import ConfigError, VenueError
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
    EventArray,
)

log = logging.getLogger("hftlab.feeds.binance_ws")

#: the close reason (with code 1000) of a server that has sent everything it has (the replay
#: server at the end of its capture): the stream ended. Any other close, or a connection that
#: drops, is a lost connection: reconnected (an exchange closes every connection now and then:
#: Binance after 24 h, and for maintenance)
END_OF_DATA = "end of capture"

_DEPTH = ("depth", "depth@0ms", "depth@100ms", "depth@250ms", "depth@500ms")
Row = tuple[int, int, int, int, int, int, int, int, int]


class OffGridError(ValueError):
    """A price or size that is not a whole number of ticks or lots."""


@dataclass
class _Diff:
    recv_ns: int
    exch_ns: int
    first: int  # U
    last: int  # u
    prev: int  # pu, -1 on spot
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


@dataclass
class DepthSync:
    """Snapshot + diff synchronisation of one symbol's Binance streams into events."""

    tick_size: Decimal
    lot_size: Decimal
    futures: bool = False
    out: list[Row] = field(default_factory=list)
    needs_snapshot: bool = True  #: the transport should ask for a snapshot
    synced: bool = False
    rejected: Counter[str] = field(default_factory=Counter)
    gaps: int = 0
    losses: int = 0  #: interruptions of the stream (:meth:`reset`)
    snapshots: int = 0
    _buffer: list[_Diff] = field(default_factory=list)
    _lid: int | None = None
    _awaiting: bool = False
    _last_u: int = 0
    _last_e: int = 0

    def __post_init__(self) -> None:
        self.tick_size, self.lot_size = Decimal(self.tick_size), Decimal(self.lot_size)
        if self.tick_size <= 0 or self.lot_size <= 0:
            msg = f"tick size {self.tick_size} and lot size {self.lot_size} must be positive"
            raise ConfigError(msg)

    # --- parsing ---------------------------------------------------------------------------
    def _steps(self, text: Any, step: Decimal) -> int:
        try:
            v = Decimal(text) / step
        except (InvalidOperation, TypeError) as exc:
            raise OffGridError(f"{text!r} is not a decimal number") from exc
        if v != v.to_integral_value():
            raise OffGridError(f"{text} is not on the grid {step}")
        return int(v)

    def _levels(self, raw: Any) -> list[tuple[int, int]]:
        return [(self._steps(p, self.tick_size), self._steps(q, self.lot_size)) for p, q in raw]

    def _exch(self, d: dict[str, Any], recv_ns: int) -> int:
        if "E" in d:
            e = int(d["E"]) * 1_000_000
            self._last_e = max(self._last_e, e)
            return e
        return self._last_e or recv_ns

    # --- input -----------------------------------------------------------------------------
    def on_stream(self, recv_ns: int, msg: dict[str, Any]) -> None:
        """One combined-stream message ``{"stream": "<sym>@<kind>", "data": {...}}``."""
        try:
            kind = str(msg["stream"]).partition("@")[2]
            d = msg["data"]
            if kind in _DEPTH:
                e = self._exch(d, recv_ns)
                pu = d.get("pu")
                diff = _Diff(recv_ns, e, int(d["U"]), int(d["u"]), -1 if pu is None else int(pu),
                             self._levels(d["b"]), self._levels(d["a"]))
                self._on_diff(diff)
            elif kind == "bookTicker":
                e = self._exch(d, recv_ns)
                u = int(d["u"])
                b, bq = self._steps(d["b"], self.tick_size), self._steps(d["B"], self.lot_size)
                a, aq = self._steps(d["a"], self.tick_size), self._steps(d["A"], self.lot_size)
                self.out.append((e, recv_ns, b, bq, u, 0, KIND_BBO, BUY, 0))
                self.out.append((e, recv_ns, a, aq, u, 0, KIND_BBO, SELL, FLAG_LAST))
            elif kind == "trade":
                e = self._exch(d, recv_ns)
                p, q = self._steps(d["p"], self.tick_size), self._steps(d["q"], self.lot_size)
                side = SELL if bool(d["m"]) else BUY
                self.out.append((e, recv_ns, p, q, int(d["t"]), 0, KIND_TRADE, side, FLAG_LAST))
            else:
                self.rejected[f"unsupported stream @{kind}"] += 1
        except OffGridError as exc:
            self.rejected[f"price/size off the instrument's grid ({exc})"] += 1
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.rejected[f"malformed message ({type(exc).__name__}: {exc})"] += 1

    def on_snapshot(self, recv_ns: int, snap: dict[str, Any]) -> None:
        """A depth snapshot ``{"lastUpdateId": ..., "bids": [...], "asks": [...]}``."""
        try:
            lid = int(snap["lastUpdateId"])
            bids, asks = self._levels(snap["bids"]), self._levels(snap["asks"])
            e = self._exch(snap, recv_ns) if "E" in snap else (self._last_e or recv_ns)
        except OffGridError as exc:
            self.rejected[f"snapshot off the instrument's grid ({exc})"] += 1
            return
        except (KeyError, TypeError, ValueError) as exc:
            self.rejected[f"malformed snapshot ({type(exc).__name__}: {exc})"] += 1
            return
        self.needs_snapshot = False
        if self.synced and self._last_u >= lid:
            self.rejected["REST snapshot older than the already synced book"] += 1
            return
        self.snapshots += 1
        self._lid = lid
        self.out.append((e, recv_ns, 0, 0, lid, 0, KIND_CLEAR, 0, FLAG_SNAPSHOT))
        self._emit_levels(e, recv_ns, lid, bids, asks, FLAG_SNAPSHOT)
        self._awaiting, self.synced = True, False
        pending, self._buffer = self._buffer, []
        for d in pending:
            if self._awaiting or self.synced:
                self._step(d, recv_ns)
            else:
                self._buffer.append(d)

    def reset(self, recv_ns: int) -> None:
        """The stream was interrupted (its connection lost): the book is not maintained from
        here, so it is emptied (a ``KIND_CLEAR`` of both sides, when a snapshot had built
        one), and synced again as at the start: diffs buffered from now on, a new snapshot
        asked for. Diffs buffered before are of the old connection: dropped."""
        self.losses += 1
        if self.snapshots:
            e = self._last_e or recv_ns
            self.out.append((e, recv_ns, 0, 0, self._last_u, 0, KIND_CLEAR, 0, FLAG_LAST))
        self._buffer.clear()
        self._lid = None
        self._awaiting = self.synced = False
        self._last_u = 0
        self.needs_snapshot = True

    def _on_diff(self, d: _Diff) -> None:
        if self._lid is None or not (self._awaiting or self.synced):
            self._buffer.append(d)
        else:
            self._step(d, d.recv_ns)

    def _step(self, d: _Diff, local_ns: int) -> None:
        lid = self._lid
        assert lid is not None
        if self._awaiting:
            if d.last <= lid:
                self.rejected["depth diff before snapshot sync"] += 1
                return
            ok = (d.first <= lid <= d.last or d.prev == lid) if self.futures else (
                d.first <= lid + 1 <= d.last)
        elif d.last <= self._last_u:
            self.rejected["depth diff already applied (a repeated or older update id)"] += 1
            return
        else:
            ok = d.prev == self._last_u if self.futures else d.first == self._last_u + 1
        if not ok:
            self.gaps += 1
            log.warning("depth gap: after update id %d came U=%d u=%d pu=%d; resyncing from a "
                        "new snapshot", self._last_u if not self._awaiting else lid, d.first,
                        d.last, d.prev)
            self._awaiting = self.synced = False
            self.needs_snapshot = True
            self._buffer.append(d)
            return
        self._awaiting, self.synced, self._last_u = False, True, d.last
        self._emit_levels(d.exch_ns, local_ns, d.last, d.bids, d.asks, 0)

    def _emit_levels(self, e: int, local: int, uid: int, bids: list[tuple[int, int]],
                     asks: list[tuple[int, int]], flags: int) -> None:
        n0 = len(self.out)
        for side, levels in ((BUY, bids), (SELL, asks)):
            for p, q in levels:
                self.out.append((e, local, p, q, uid, 0, KIND_LEVEL, side, flags))
        if len(self.out) > n0 or flags & FLAG_SNAPSHOT:
            last = self.out[-1]
            self.out[-1] = (*last[:8], last[8] | FLAG_LAST)

    def take(self) -> EventArray:
        """The events made since the last call."""
        rows, self.out = self.out, []
        return np.array(rows, dtype=EVENT_DTYPE) if rows else np.zeros(0, EVENT_DTYPE)


@dataclass(frozen=True)
class Backoff:
    """The waits between connection attempts: ``first_s``, doubling up to ``max_s``; an
    outage is given up once ``give_up_s`` passed (0: one attempt). A connection ends the
    outage only once it proved healthy: it synced the book from a snapshot, or stayed up
    ``healthy_s`` (:class:`Reconnects`)."""

    first_s: float = 0.05
    max_s: float = 2.0
    give_up_s: float = 60.0
    healthy_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s or self.give_up_s < 0 or not self.healthy_s > 0:
            msg = (f"reconnect backoff {self.first_s:g} s doubling to {self.max_s:g} s, given "
                   f"up after {self.give_up_s:g} s, healthy after {self.healthy_s:g} s up: "
                   "give 0 < first <= max, a bound >= 0 and a healthy time > 0")
            raise ConfigError(msg)

    def delays(self) -> Iterator[float]:
        """The wait after each failed attempt, without end (the caller bounds the time)."""
        d = self.first_s
        while True:
            yield d
            d = min(d * 2, self.max_s)


class Reconnects:
    """Connection attempts paced by a :class:`Backoff` across connections. An outage runs
    from a lost connection until a connection proves healthy (:meth:`healthy`, or up
    ``healthy_s`` when lost: :meth:`lost`): its first attempt goes at once, every later one
    -- after a failed attempt, or after a connection that was lost before it proved healthy
    -- waits the next of the outage's growing waits, and the outage is given up once its
    one bound would pass. A server that accepts and closes at once is so one outage that
    goes on, never a new one (reconnected at once) per connection."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.attempts = 0  #: attempts of the current (or last) outage
        self._delays: Iterator[float] | None = None  #: the open outage's waits (None: none)
        self._end = 0.0
        self._last = ""  #: the outage's last failure, for the give-up message

    @property
    def outage(self) -> bool:
        """An outage is open: no connection proved healthy since it began."""
        return self._delays is not None

    def healthy(self) -> None:
        """The connection proved healthy: the next loss begins a new outage."""
        self._delays = None

    def lost(self, reason: str, up_s: float) -> None:
        """The connection was lost after ``up_s`` seconds up (``reason``: how)."""
        if up_s >= self.backoff.healthy_s:
            self.healthy()
        self._last = f"a connection lost after {up_s:.2f} s up, unproven ({reason})"

    async def connect(self, url: str) -> Any:
        """A websocket connection to ``url``: retried (refused, reset, timed out, or a
        handshake the server refused, as during maintenance) with the outage's waits;
        VenueError naming the last failure once the outage's ``give_up_s`` would pass."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake

        b = self.backoff
        if self._delays is None:  # a new outage: its first attempt goes now
            self._delays = b.delays()
            self._end = time.monotonic() + b.give_up_s
            self.attempts = 0
            delay = 0.0
        else:  # the last connection was lost before it proved healthy
            delay = next(self._delays)
        while True:
            if delay:
                if time.monotonic() + delay > self._end:
                    msg = (f"no connection within {b.give_up_s:g} s ({self.attempts} "
                           f"attempt(s); the last: {self._last})")
                    raise VenueError(msg)
                await asyncio.sleep(delay)
            self.attempts += 1
            left = self._end - time.monotonic()
            try:
                return await connect(url, max_size=1 << 24,
                                     open_timeout=min(10.0, max(left, 1.0)))
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self._last = f"{type(exc).__name__}: {exc}"
            delay = next(self._delays)


async def connect_retrying(url: str, backoff: Backoff) -> tuple[Any, int]:
    """A websocket connection to ``url`` and the attempts it took, as one outage of
    :class:`Reconnects` (VenueError once ``backoff.give_up_s`` would pass)."""
    r = Reconnects(backoff)
    ws = await r.connect(url)
    return ws, r.attempts


def ended_orderly(ws: Any) -> bool:
    """The server closed ``ws`` because its data ended (:data:`END_OF_DATA`)."""
    return bool(ws.close_code == 1000 and ws.close_reason == END_OF_DATA)


def on_message(sync: DepthSync, raw: str | bytes, recv_ns: int, in_flight: int | None) -> bool:
    """Apply one websocket message to ``sync``: a combined-stream message, or the answer to
    our snapshot request ``in_flight`` (True when it was); anything else is counted in
    ``sync.rejected``. Shared by :func:`run_binance_ws` and the live runner's feed, so a
    journal of the messages replays through exactly this."""
    try:
        msg_obj = json.loads(raw)
    except ValueError:
        sync.rejected["malformed JSON message"] += 1
        return False
    if not isinstance(msg_obj, dict):
        sync.rejected["message is not a JSON object"] += 1
        return False
    if "result" in msg_obj and msg_obj.get("id") == in_flight:
        sync.on_snapshot(recv_ns, msg_obj["result"])
        return True
    if "stream" in msg_obj:
        sync.on_stream(recv_ns, msg_obj)
    else:
        sync.rejected["message neither a stream message nor our snapshot"] += 1
    return False


async def run_binance_ws(
    url: str,
    sync: DepthSync,
    *,
    on_events: Callable[[EventArray], None],
    idle_timeout_s: float = 10.0,
    max_messages: int | None = None,
    backoff: Backoff | None = None,
) -> int:
    """Follow the websocket at ``url`` until the server ends the stream (:data:`END_OF_DATA`)
    or ``max_messages``; events go to ``on_events`` after each message. Returns the messages
    read. A lost connection is reconnected with ``backoff`` (default :class:`Backoff`) and the
    book synced again (:meth:`DepthSync.reset`); a connection proves healthy by answering
    the snapshot request (or by ``healthy_s`` up). An outage past its bound, or a silence of
    ``idle_timeout_s`` on an open connection, raises VenueError."""
    from websockets.exceptions import ConnectionClosed

    retry = Reconnects(backoff or Backoff())
    n = 0
    req_id = 0
    in_flight: int | None = None
    ws = await retry.connect(url)
    up = time.monotonic()
    try:
        while max_messages is None or n < max_messages:
            try:
                if sync.needs_snapshot and in_flight is None:
                    req_id += 1
                    in_flight = req_id
                    await ws.send(json.dumps({"method": "depth", "id": req_id}))
                raw = await asyncio.wait_for(ws.recv(), idle_timeout_s)
            except ConnectionClosed:
                if ended_orderly(ws):
                    break
                log.warning("%s: connection lost after %d messages (close code %s); "
                            "reconnecting, then resyncing from a new snapshot", url, n,
                            ws.close_code)
                sync.reset(time.time_ns())
                in_flight = None
                ev = sync.take()
                if len(ev):
                    on_events(ev)
                retry.lost(f"close code {ws.close_code}", time.monotonic() - up)
                try:
                    ws = await retry.connect(url)
                except VenueError as exc:
                    raise VenueError(f"{url}: connection lost and {exc}") from exc
                up = time.monotonic()
                continue
            except TimeoutError as exc:
                msg = f"{url}: no message for {idle_timeout_s:g} s after {n:,} messages"
                raise VenueError(msg) from exc
            recv_ns = time.time_ns()
            n += 1
            if on_message(sync, raw, recv_ns, in_flight):
                in_flight = None
                retry.healthy()  # this connection answered: the next loss is a new outage
            ev = sync.take()
            if len(ev):
                on_events(ev)
    finally:
        await ws.close()
    return n
