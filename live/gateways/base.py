"""One order-gateway interface over OUCH and FIX, with the order state machine both share.

A gateway hands out one :class:`Order` per order (its ``key`` never changes, whatever ids the
protocol uses underneath: OUCH UserRefNums, FIX ClOrdIDs, replaced ones included) and
reports what the venue says as typed events on :attr:`OrderGateway.events`.

State machine (``OrderState``)::

    submit   -> PENDING_NEW -> NEW (ack) | REJECTED
    NEW / PARTIALLY_FILLED --fill--> PARTIALLY_FILLED | FILLED
    NEW / PARTIALLY_FILLED --cancel()--> PENDING_CANCEL --canceled--> CANCELLED
                                                          --cancel reject--> back
    NEW / PARTIALLY_FILLED --replace()--> PENDING_REPLACE --replaced--> NEW | PARTIALLY_FILLED
                                                            --reject--> back
    fills are taken in PENDING_CANCEL / PENDING_REPLACE too (the venue filled first);
    an unsolicited cancel (IOC rest, cancel on disconnect) ends any live state.

Anything else is impossible: a request in the wrong state raises :class:`OrderStateError`
to the caller; a venue message that would make such a transition changes nothing and is
reported as a :class:`Violation` event. A request unanswered after ``timeout_s`` gives one
:class:`Timeout` event (the order stays pending: the answer may still come).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.core.errors import OrderError, VenueError

log = logging.getLogger("hftlab.gateway")


class OrderState(enum.StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"


TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED})
_WORKING = frozenset({OrderState.NEW, OrderState.PARTIALLY_FILLED})
_LIVE = _WORKING | {OrderState.PENDING_CANCEL, OrderState.PENDING_REPLACE}


class OrderStateError(OrderError):
    """A transition the order state machine does not allow."""


class Side(enum.IntEnum):
    BUY = 1
    SELL = -1


class OrderKind(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.StrEnum):
    DAY = "day"
    IOC = "ioc"
    POST_ONLY = "post_only"


# --- events -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ack:
    key: str
    venue_id: str  #: the venue's order id (OUCH Order Reference Number, FIX OrderID)


@dataclass(frozen=True, slots=True)
class Fill:
    key: str
    qty: int
    price: int  #: ticks
    liquidity: str  #: ``A`` added (maker), ``R`` removed (taker)
    leaves: int
    match: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class Canceled:
    key: str
    qty: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Replaced:
    key: str
    price: int
    qty: int  #: new total size
    leaves: int


@dataclass(frozen=True, slots=True)
class CancelRejected:
    key: str
    reason: str
    replace: bool  #: the refused request was a replace (else a cancel)


@dataclass(frozen=True, slots=True)
class Timeout:
    key: str
    state: OrderState  #: the pending state that timed out


@dataclass(frozen=True, slots=True)
class Violation:
    """A venue message the state machine refused (it changed nothing)."""

    key: str
    what: str


@dataclass(frozen=True, slots=True)
class Connected:
    reconnect: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


Event = (Ack | Fill | Rejected | Canceled | Replaced | CancelRejected | Timeout | Violation
         | Connected | Disconnected)


# --- orders -------------------------------------------------------------------------------
@dataclass(slots=True)
class Order:
    key: str
    side: Side
    qty: int  #: total size
    price: int
    kind: OrderKind = OrderKind.LIMIT
    tif: TimeInForce = TimeInForce.DAY
    state: OrderState = OrderState.PENDING_NEW
    venue_id: str = ""
    filled: int = 0
    pending_since: float = field(default_factory=time.monotonic)
    timed_out: bool = False
    _back: OrderState = OrderState.NEW  #: where a refused cancel/replace returns to

    @property
    def leaves(self) -> int:
        return 0 if self.state in TERMINAL else self.qty - self.filled

    @property
    def live(self) -> bool:
        return self.state not in TERMINAL


class LatencyLog:
    """A gateway's per-message encode and decode times in preallocated rings of
    ``capacity`` (the hot path writes one int64); :meth:`summary` reads them off it."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.encode_ns = np.zeros(capacity, np.int64)
        self.decode_ns = np.zeros(capacity, np.int64)
        self.n_encoded = 0
        self.n_decoded = 0

    def encoded(self, ns: int) -> None:
        self.encode_ns[self.n_encoded % len(self.encode_ns)] = ns
        self.n_encoded += 1

    def decoded(self, ns: int) -> None:
        self.decode_ns[self.n_decoded % len(self.decode_ns)] = ns
        self.n_decoded += 1

    def summary(self) -> dict[str, float]:
        """Counts, p50, p99 and max (ns) of the last ``capacity`` of each."""
        out: dict[str, float] = {}
        for name, arr, n in (("encode", self.encode_ns, self.n_encoded),
                             ("decode", self.decode_ns, self.n_decoded)):
            out[f"{name}_count"] = float(n)
            w = arr[:min(n, len(arr))]
            if len(w):
                p50, p99 = np.percentile(w, [50, 99])
                out[f"{name}_ns_p50"] = float(p50)
                out[f"{name}_ns_p99"] = float(p99)
                out[f"{name}_ns_max"] = float(w.max())
        return out


class OrderTracker:
    """Every order of a gateway and the transitions the venue's messages make."""

    def __init__(self, events: asyncio.Queue[Event], *, timeout_s: float = 5.0) -> None:
        self.orders: dict[str, Order] = {}
        self.events = events
        self.timeout_s = timeout_s
        self._pending: set[str] = set()  #: keys of orders with a request in flight

    def _emit(self, ev: Event) -> None:
        self.events.put_nowait(ev)

    def _violation(self, o: Order | None, key: str, what: str) -> None:
        state = "unknown order" if o is None else f"order in state {o.state}"
        self._emit(Violation(key, f"{what} for {state}"))

    # requests (raise on a wrong state) -------------------------------------------------------
    def new(self, o: Order) -> None:
        if o.key in self.orders:
            msg = f"order key {o.key!r} is already in use; give each order its own key"
            raise OrderStateError(msg)
        if o.qty <= 0:
            msg = f"order {o.key!r}: quantity {o.qty} must be positive"
            raise OrderStateError(msg)
        self.orders[o.key] = o
        self._pending.add(o.key)

    def want_cancel(self, key: str) -> Order:
        o = self._working(key, "cancel")
        o._back, o.state = o.state, OrderState.PENDING_CANCEL
        o.pending_since, o.timed_out = time.monotonic(), False
        self._pending.add(key)
        return o

    def want_replace(self, key: str, price: int, qty: int) -> Order:
        o = self._working(key, "replace")
        if qty <= 0:
            msg = f"order {key!r}: a replace to quantity {qty} is not possible; cancel instead"
            raise OrderStateError(msg)
        o._back, o.state = o.state, OrderState.PENDING_REPLACE
        o.pending_since, o.timed_out = time.monotonic(), False
        self._pending.add(key)
        return o

    def _working(self, key: str, what: str) -> Order:
        o = self.orders.get(key)
        if o is None:
            msg = f"no order {key!r} to {what}"
            raise OrderStateError(msg)
        if o.state not in _WORKING:
            msg = f"order {key!r} is {o.state}: it cannot take a {what} now"
            raise OrderStateError(msg)
        return o

    # venue messages (never raise: refuse and report) -----------------------------------------
    def acked(self, key: str, venue_id: str) -> None:
        o = self.orders.get(key)
        if o is None or o.state != OrderState.PENDING_NEW:
            self._violation(o, key, "ack")
            return
        o.state, o.venue_id = OrderState.NEW, venue_id
        self._pending.discard(key)
        self._emit(Ack(key, venue_id))

    def rejected(self, key: str, reason: str) -> None:
        o = self.orders.get(key)
        if o is None or o.state != OrderState.PENDING_NEW:
            self._violation(o, key, "reject")
            return
        o.state = OrderState.REJECTED
        self._pending.discard(key)
        self._emit(Rejected(key, reason))

    def filled(self, key: str, qty: int, price: int, liquidity: str, match: str = "") -> None:
        o = self.orders.get(key)
        if o is None or o.state not in _LIVE or qty <= 0 or o.filled + qty > o.qty:
            self._violation(o, key, f"fill of {qty}")
            return
        o.filled += qty
        if o.filled == o.qty:
            o.state = OrderState.FILLED
            self._pending.discard(key)
        elif o.state in _WORKING:
            o.state = OrderState.PARTIALLY_FILLED
        else:
            o._back = OrderState.PARTIALLY_FILLED
        self._emit(Fill(key, qty, price, liquidity, o.leaves, match))

    def canceled(self, key: str, qty: int, reason: str = "") -> None:
        o = self.orders.get(key)
        if o is None or o.state not in _LIVE:
            self._violation(o, key, "cancel")
            return
        o.state = OrderState.CANCELLED
        self._pending.discard(key)
        self._emit(Canceled(key, qty, reason))

    def replaced(self, key: str, price: int, qty: int) -> None:
        o = self.orders.get(key)
        if o is None or o.state != OrderState.PENDING_REPLACE:
            self._violation(o, key, "replaced")
            return
        o.price, o.qty = price, qty
        o.state = OrderState.PARTIALLY_FILLED if o.filled else OrderState.NEW
        self._pending.discard(key)
        self._emit(Replaced(key, price, qty, o.leaves))

    def cancel_rejected(self, key: str, reason: str) -> None:
        o = self.orders.get(key)
        if o is None or o.state not in (OrderState.PENDING_CANCEL, OrderState.PENDING_REPLACE):
            if o is not None and o.state in TERMINAL:
                # the order finished before the request reached the venue: nothing to undo
                self._emit(CancelRejected(key, reason, replace=False))
                return
            self._violation(o, key, "cancel reject")
            return
        replace = o.state == OrderState.PENDING_REPLACE
        o.state = o._back
        self._pending.discard(key)
        self._emit(CancelRejected(key, reason, replace))

    def check_timeouts(self, now: float | None = None) -> list[str]:
        """Emit a :class:`Timeout` for each request unanswered for ``timeout_s``."""
        now = time.monotonic() if now is None else now
        late = []
        for key in list(self._pending):
            o = self.orders[key]
            if o.state not in (OrderState.PENDING_NEW, OrderState.PENDING_CANCEL,
                               OrderState.PENDING_REPLACE):
                self._pending.discard(key)
                continue
            if not o.timed_out and now - o.pending_since >= self.timeout_s:
                o.timed_out = True
                late.append(o.key)
                self._emit(Timeout(o.key, o.state))
        return late

    def restore(self, o: Order) -> None:
        """A request that could not be sent: the order goes back to where it was."""
        o.state = o._back
        self._pending.discard(o.key)

    def open_keys(self) -> list[str]:
        return [k for k, o in self.orders.items() if o.live]


class OrderGateway(ABC):
    """What a strategy runner talks to, whatever the protocol."""

    events: asyncio.Queue[Event]
    tracker: OrderTracker
    latency: LatencyLog  #: encode/decode time per message (see each gateway for what counts)
    #: set by the protocol gateways: where they connect, their backoff, their state
    name: str
    host: str
    port: int
    backoff: tuple[float, float]
    connects: int
    _closing: bool
    _first: asyncio.Future[None] | None
    _writer: asyncio.StreamWriter | None
    _task: asyncio.Task[None] | None
    #: adopted replaces no venue message has named yet: the protocol's id for the
    #: replacement (:meth:`_replace_id`) -> the order's key
    _replacing: dict[Any, str]

    def _replace_id(self, ref: str) -> Any:
        """The key of :attr:`_replacing` for a replacement's journaled reference."""
        return ref

    def forget_replace(self, key: str, ref: str) -> bool:
        """An adopted replace (``adopt(replacing=ref)``) no venue message named once the
        venue replayed every message: it never left. The order, if still pending, goes back
        to where a reject would take it (under its id before); False if the venue answered
        it (its answer applied). Whether the order is still pending does not tell: the
        venue may have filled or cancelled it while the replace never left."""
        rid = self._replace_id(ref)
        if self._replacing.get(rid) != key:
            return False
        del self._replacing[rid]
        o = self.tracker.orders.get(key)
        if o is not None and o.state == OrderState.PENDING_REPLACE:
            self.tracker.restore(o)
        return True

    def catching_up(self) -> bool:
        """The venue's replay of what this session missed is known to be still coming in
        (a protocol that says where it ends: FIX's logon sequence number); False when the
        protocol does not say (OUCH)."""
        return False

    @abstractmethod
    async def _session_once(self) -> None:
        """One connection: log on, serve it until it ends (the protocol's part)."""

    async def _run(self) -> None:
        """Connect, serve, reconnect with exponential backoff until :meth:`close`. A refused
        logon ends the loop (retrying would not help); so does a refused first connection
        (nothing listens there), which :meth:`connect` raises."""
        delay = self.backoff[0]
        while not self._closing:
            try:
                await self._session_once()
                delay = self.backoff[0]
            except VenueError as e:
                log.error("%s gateway: %s", self.name, e)
                self.events.put_nowait(Disconnected(str(e)))
                if self._first is not None and not self._first.done():
                    self._first.set_exception(e)
                return
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as e:
                self.events.put_nowait(Disconnected(f"{type(e).__name__}: {e}"))
                if self._first is not None and not self._first.done() and self.connects == 0 \
                        and isinstance(e, ConnectionRefusedError):
                    self._first.set_exception(VenueError(
                        f"{self.name} venue {self.host}:{self.port} refused the connection"))
                    return
            finally:
                self._writer = None
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff[1])

    async def connect(self) -> None:
        """Connect and log on; reconnects on its own afterwards until :meth:`close`."""
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._first

    @abstractmethod
    async def close(self) -> None:
        """Log out and stop reconnecting."""

    @abstractmethod
    def submit(self, side: Side, qty: int, price: int, *, kind: OrderKind = OrderKind.LIMIT,
               tif: TimeInForce = TimeInForce.DAY, key: str | None = None) -> Order:
        """Send a new order; its ack (with the venue's order id) comes as an event."""

    @abstractmethod
    def cancel(self, key: str) -> None: ...

    @abstractmethod
    def reference(self, key: str) -> str:
        """The protocol's current id of the order (OUCH UserRefNum, FIX ClOrdID)."""

    def next_reference(self, key: str, kind: str = "new") -> str:
        """The new protocol id the next request of ``kind`` (new, cancel, replace) for
        ``key`` will carry, where the protocol can say it in advance ('' if it carries none
        or cannot): a journal written before the bytes go keeps it."""
        return ""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """Logged on now (orders can be sent)."""

    @abstractmethod
    def replace(self, key: str, price: int, qty: int) -> None:
        """Change price and total size (filled lots included)."""

    @property
    def orders(self) -> dict[str, Order]:
        return self.tracker.orders

    async def next_event(self, timeout: float = 5.0) -> Event:
        async with asyncio.timeout(timeout):
            return await self.events.get()

    async def wait_for(self, kind: type, timeout: float = 5.0) -> Event:
        """The next event of type ``kind``; events before it are dropped."""
        end = time.monotonic() + timeout
        while True:
            ev = await self.next_event(max(0.0, end - time.monotonic()))
            if isinstance(ev, kind):
                return ev


__all__ = [
    "TERMINAL",
    "Ack",
    "CancelRejected",
    "Canceled",
    "Connected",
    "Disconnected",
    "Event",
    "Fill",
    "LatencyLog",
    "Order",
    "OrderGateway",
    "OrderKind",
    "OrderState",
    "OrderStateError",
    "OrderTracker",
    "Rejected",
    "Replaced",
    "Side",
    "TimeInForce",
    "Timeout",
    "Violation",
]
