"""OUCH 5.0 over SoupBinTCP 4.0: the order gateway (asyncio client).

Sequence recovery: the gateway counts the sequenced messages it has applied and logs in
(again) asking for the next one, so the venue replays what it missed while away; a message
whose sequence number was applied already is skipped, so nothing is applied twice.
Reconnects back off from ``backoff[0]`` doubling to ``backoff[1]`` seconds; a login the
venue rejects is not retried (it would be rejected again). UserRefNums increase for the
gateway's life (``first_ref`` sets where they start, e.g. after a restart).

Opt-in cancel on disconnect: after a reconnect, every order still open is cancelled before
anything else (NASDAQ ports can also do it venue side: ``OuchServer(cancel_on_disconnect)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from framework.core.errors import OrderError, VenueError
from live.aio import read_within
from live.gateways.base import (
    Connected,
    Event,
    LatencyLog,
    Order,
    OrderGateway,
    OrderKind,
    OrderState,
    OrderStateError,
    OrderTracker,
    Side,
    TimeInForce,
)
from live.wire import ouch, soupbin
from live.wire.frames import BadFrame

log = logging.getLogger("hftlab.live.gateway.ouch")


class OuchGateway(OrderGateway):
    """See the module docstring."""

    name = "OUCH"

    def __init__(self, host: str, port: int, *, username: str, password: str, symbol: str,
                 price_mult: int = 1, session: str = "", timeout_s: float = 5.0,
                 heartbeat_s: float = 1.0, backoff: tuple[float, float] = (0.05, 2.0),
                 cancel_on_disconnect: bool = False, first_ref: int = 1) -> None:
        self.host, self.port = host, port
        self.username, self.password, self.session = username, password, session
        self.symbol = ouch.pad_symbol(symbol)
        self.price_mult = price_mult
        self.heartbeat_s, self.backoff = heartbeat_s, backoff
        self.cancel_on_disconnect = cancel_on_disconnect
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.tracker = OrderTracker(self.events, timeout_s=timeout_s)
        self.latency = LatencyLog()  #: OUCH message encode / decode, each alone
        self.applied = 0  #: sequence number of the last sequenced message applied
        self.applying = 0  #: the one being applied (its events carry it)
        self.connects = 0
        self._urn = first_ref - 1
        self._key_of: dict[int, str] = {}  #: UserRefNum -> order key
        self._urn_of: dict[str, int] = {}  #: order key -> its current UserRefNum
        self._replacing: dict[int, str] = {}  #: replacement UserRefNum -> key
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._first: asyncio.Future[None] | None = None

    # --- connection -------------------------------------------------------------------------
    async def close(self) -> None:
        self._closing = True
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(soupbin.LOGOUT_REQUEST_PACKET)
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def drop_connection(self) -> None:
        """Cut the TCP connection without logging out (the gateway reconnects)."""
        if self._writer is not None:
            self._writer.transport.abort()

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()


    async def _session_once(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:  # whatever ends the session -- a refused login included -- closes the socket
            await self._logged_in(reader, writer)
        finally:
            writer.close()

    async def _logged_in(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(soupbin.login_request(self.username, self.password, self.session,
                                           self.applied + 1))
        rd = soupbin.SoupReader()
        items: list[soupbin.Packet | BadFrame] = []
        while not items:
            data = await read_within(reader, 65536, self.tracker.timeout_s)
            if data is None:
                raise TimeoutError("no answer to the login request")
            if not data:
                raise ConnectionResetError("venue closed the connection during login")
            items = rd.feed(data)
        first = items.pop(0)
        if isinstance(first, BadFrame) or first.type not in (soupbin.LOGIN_ACCEPTED,
                                                              soupbin.LOGIN_REJECTED):
            raise ConnectionResetError(f"unexpected answer to login: {first}")
        if first.type == soupbin.LOGIN_REJECTED:
            raise VenueError(f"OUCH login of {self.username!r} rejected "
                             f"(code {first.payload!r})")
        acc = soupbin.decode_login_accepted(first.payload)
        next_seq = acc.sequence
        if next_seq != self.applied + 1:
            # not the session we left (a new one, or the venue lost messages): its numbers
            # are the ones that count, or every message up to our old count would be skipped
            log.warning("OUCH gateway: asked for sequence %d, session %r starts at %d; "
                        "following the venue's numbering", self.applied + 1, acc.session,
                        next_seq)
            self.applied = next_seq - 1
        self._writer = writer
        reconnect = self.connects > 0
        self.connects += 1
        log.info("OUCH gateway logged in to %s, next sequence %d", acc.session, next_seq)
        self.events.put_nowait(Connected(reconnect))
        if self._first is not None and not self._first.done():
            self._first.set_result(None)
        beat = asyncio.get_running_loop().create_task(self._heartbeats(writer))
        try:
            if reconnect and self.cancel_on_disconnect:
                for key in self.tracker.open_keys():
                    o = self.tracker.orders[key]
                    if o.state in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
                        self.cancel(key)
            while True:
                for item in items:
                    next_seq = self._packet(item, next_seq)
                items = []
                data = await read_within(reader, 65536, max(3 * self.heartbeat_s, 1.0))
                if data is None:
                    raise TimeoutError("the venue is silent (no heartbeat)")
                if not data:
                    raise ConnectionResetError("venue closed the connection")
                items = rd.feed(data)
                self.tracker.check_timeouts()
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            writer.close()

    async def _heartbeats(self, writer: asyncio.StreamWriter) -> None:
        while not writer.is_closing():
            await asyncio.sleep(self.heartbeat_s)
            writer.write(soupbin.CLIENT_HEARTBEAT_PACKET)
            self.tracker.check_timeouts()

    def _packet(self, item: soupbin.Packet | BadFrame, seq: int) -> int:
        """Apply one packet; returns the sequence number of the next sequenced one."""
        if isinstance(item, BadFrame):
            log.warning("OUCH gateway: bad frame from the venue: %s", item.reason)
            if item.fatal:
                raise ConnectionResetError(item.reason)
            return seq
        if item.type == soupbin.SEQUENCED:
            if seq > self.applied:
                self.applying = seq
                self._apply(item.payload)
                self.applied = seq
            return seq + 1
        if item.type == soupbin.END_OF_SESSION:
            self._closing = True
            raise ConnectionResetError("venue ended the session")
        return seq

    # --- orders -----------------------------------------------------------------------------
    def _next_urn(self) -> int:
        self._urn += 1
        return self._urn

    def _send(self, msg: bytes) -> None:
        if not self.connected:
            raise VenueError("OUCH gateway is not connected; wait for Connected")
        assert self._writer is not None
        self._writer.write(soupbin.unsequenced(msg))

    def submit(self, side: Side, qty: int, price: int, *, kind: OrderKind = OrderKind.LIMIT,
               tif: TimeInForce = TimeInForce.DAY, key: str | None = None) -> Order:
        if kind != OrderKind.LIMIT:
            raise OrderError("OUCH takes limit orders only (use IOC at a marketable price)")
        if not self.connected:
            raise VenueError("OUCH gateway is not connected; wait for Connected")
        urn = self._urn + 1
        o = Order(key or f"O{urn}", side, qty, price, kind, tif)
        t0 = time.perf_counter_ns()
        app = ouch.encode_appendage({ouch.TAG_POST_ONLY: b"P"}) \
            if tif == TimeInForce.POST_ONLY else b""
        msg = ouch.encode_enter(urn, b"B" if side == Side.BUY else b"S", qty, self.symbol,
                                price * self.price_mult,
                                ouch.TIF_IOC if tif == TimeInForce.IOC else ouch.TIF_DAY,
                                ouch.pad_clordid(o.key[:14]), app)  # raises if it cannot
        self.latency.encoded(time.perf_counter_ns() - t0)
        self.tracker.new(o)
        self._urn = urn
        self._send(msg)
        self._book_new(o, urn)
        return o

    def _book_new(self, o: Order, urn: int) -> None:
        self._key_of[urn] = o.key
        self._urn_of[o.key] = urn

    def cancel(self, key: str) -> None:
        o = self.tracker.want_cancel(key)
        try:
            self._send(ouch.CancelOrder(self._urn_of[key], 0).encode())
        except VenueError:
            self.tracker.restore(o)
            raise

    # --- messages a compiled sender wrote to the session's socket (live.hotpath) -----------
    def socket_fd(self) -> int:
        """The session's socket, for a sender writing to it directly while nothing is
        queued in the transport (:meth:`queued`); -1 when not connected."""
        if not self.connected:
            return -1
        assert self._writer is not None
        sock = self._writer.transport.get_extra_info("socket")
        return -1 if sock is None else int(sock.fileno())

    def queued(self) -> int:
        """Bytes the transport still holds to write (a direct writer must wait for 0)."""
        return 0 if self._writer is None else self._writer.transport.get_write_buffer_size()

    def write_raw(self, data: bytes) -> None:
        """The rest of a framed message a direct writer could only partly write. With the
        session gone the venue never had the message whole: the order is answered by its
        timeout (or by the next session's reconciliation)."""
        if self._writer is not None:
            self._writer.write(data)
        else:
            log.warning("the rest of a message (%d bytes) was not written: the session "
                        "is gone", len(data))

    def booked_new(self, key: str, side: Side, qty: int, price: int, tif: TimeInForce,
                   urn: int) -> Order:
        """Book a limit order sent as UserRefNum ``urn`` (the next one), as :meth:`submit`
        does after writing it."""
        o = Order(key, side, qty, price, OrderKind.LIMIT, tif)
        self.tracker.new(o)
        self._urn = urn
        self._book_new(o, urn)
        return o

    def booked_cancel(self, key: str) -> None:
        """Book a cancel of ``key`` sent under its current UserRefNum, as :meth:`cancel`."""
        self.tracker.want_cancel(key)

    def current_ref(self) -> int:
        """The last UserRefNum used (the next order takes the one after it)."""
        return self._urn

    def replace(self, key: str, price: int, qty: int) -> None:
        o = self.tracker.want_replace(key, price, qty)
        urn = self._next_urn()
        msg = ouch.ReplaceOrder(self._urn_of[key], urn, qty - o.filled,
                                price * self.price_mult,
                                ouch.TIF_IOC if o.tif == TimeInForce.IOC else ouch.TIF_DAY)
        try:
            self._send(msg.encode())
        except VenueError:
            self.tracker.restore(o)
            raise
        self._key_of[urn] = key
        self._replacing[urn] = key

    def reference(self, key: str) -> str:
        """The order's current UserRefNum (what a journal keeps to adopt it again)."""
        return str(self._urn_of[key])

    def next_reference(self, key: str, kind: str = "new") -> str:
        return "" if kind == "cancel" else str(self._urn + 1)  # a cancel names the order's

    def alias(self, key: str, ref: str) -> None:
        """Another UserRefNum an adopted order took (a replace the earlier run sent)."""
        urn = int(ref)
        self._key_of[urn] = key
        self._urn = max(self._urn, urn)

    def resume_after(self, seq: int) -> None:
        """Before :meth:`connect`: the login asks the venue for its messages after ``seq``."""
        self.applied = seq

    def adopt(self, o: Order, ref: str, *, replacing: str = "") -> None:
        """Take over an order an earlier run of this session sent, UserRefNum ``ref`` now
        (rebuilt from a journal, in the state its answers so far left it): the venue's
        messages about it apply to it, and new orders number past it. ``replacing``: the
        UserRefNum of a replace of it that run sent with no answer journaled (the order is
        PENDING_REPLACE): the venue's Order Replaced or Order Rejected names it, or nothing
        does if the crash came before it left (:meth:`forget_replace`)."""
        if o.key in self.tracker.orders:
            msg = f"order key {o.key!r} is already in use"
            raise OrderStateError(msg)
        urn = int(ref)
        self.tracker.orders[o.key] = o
        self._key_of[urn] = o.key
        self._urn_of[o.key] = urn
        self._urn = max(self._urn, urn)
        if replacing:
            new = int(replacing)
            self._key_of[new] = o.key
            self._replacing[new] = o.key
            self._urn = max(self._urn, new)

    def _replace_id(self, ref: str) -> int:
        return int(ref)  # (a UserRefNum)

    def _apply(self, payload: bytes) -> None:
        t0 = time.perf_counter_ns()
        try:
            m = ouch.decode_outbound(payload)
            self.latency.decoded(time.perf_counter_ns() - t0)
        except ouch.OuchError as e:
            log.error("OUCH gateway: undecodable venue message: %s", e)
            return
        t = self.tracker
        if isinstance(m, ouch.SystemEvent):
            return
        key = self._key_of.get(m.user_ref_num, f"?{m.user_ref_num}")
        if isinstance(m, ouch.OrderAccepted):
            t.acked(key, str(m.order_ref))
        elif isinstance(m, ouch.OrderExecuted):
            t.filled(key, m.quantity, m.price // self.price_mult, m.liquidity.decode(),
                     str(m.match_number))
        elif isinstance(m, ouch.OrderCanceled):
            t.canceled(key, m.quantity, m.reason.decode())
        elif isinstance(m, ouch.OrderReplaced):
            o = t.orders.get(key)
            self._replacing.pop(m.user_ref_num, None)
            self._urn_of[key] = m.user_ref_num
            t.replaced(key, m.price // self.price_mult,
                       m.quantity + (o.filled if o is not None else 0))
        elif isinstance(m, ouch.OrderRejected):
            reason = ouch.REJECT_NAMES.get(m.reason, str(m.reason))
            if self._replacing.pop(m.user_ref_num, None) is not None:
                t.cancel_rejected(key, reason)
            else:
                t.rejected(key, reason)
        elif isinstance(m, ouch.CancelReject):
            t.cancel_rejected(key, "cancel refused")


__all__ = ["OuchGateway"]
