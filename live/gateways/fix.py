"""FIX 4.4 order gateway (asyncio initiator) over :class:`~live.wire.fix_session.FixSession`.

Sequence numbers and sent messages persist in ``store_dir`` (one directory per session),
so a reconnect, or a restarted process, logs on where it left off: a venue that sent
reports while the gateway was away answers with a higher sequence number, the session asks
for a resend, and the reports come again exactly once (the session drops duplicates).
Reconnects back off from ``backoff[0]`` doubling to ``backoff[1]`` seconds; a refused
Logon is not retried. Opt-in cancel on disconnect asks the venue (Logon tag 8013=Y) to
cancel this session's resting orders when the connection ends.

Prices are decimal text on the wire: ticks × ``price_mult`` ÷ 10^``price_decimals``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from framework.core.errors import VenueError
from live.aio import read_within
from live.gateways.base import (
    Connected,
    Event,
    LatencyLog,
    Order,
    OrderGateway,
    OrderKind,
    OrderStateError,
    OrderTracker,
    Side,
    TimeInForce,
)
from live.wire import fix
from live.wire.fix import FixMessage
from live.wire.fix_session import FixSession, SeqStore

log = logging.getLogger("hftlab.live.gateway.fix")

T_CANCEL_ON_DISCONNECT = 8013


class FixGateway(OrderGateway):
    """See the module docstring."""

    name = "FIX"

    def __init__(self, host: str, port: int, *, sender: str, target: str, symbol: str,
                 store_dir: Path | None = None, heartbeat_s: int = 30,
                 price_mult: int = 1, price_decimals: int = 0, timeout_s: float = 5.0,
                 backoff: tuple[float, float] = (0.05, 2.0), reset_on_logon: bool = False,
                 cancel_on_disconnect: bool = False, tick_s: float = 0.1,
                 cl_prefix: str | None = None) -> None:
        self.host, self.port = host, port
        self.symbol = symbol
        self.price_mult, self.price_decimals = price_mult, price_decimals
        self.backoff, self.tick_s = backoff, tick_s
        self.reset_on_logon = reset_on_logon
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.tracker = OrderTracker(self.events, timeout_s=timeout_s)
        #: encode: a request's encode and its append to the sequence store; decode: a read's
        #: framing, checksum and parse, per message of that read
        self.latency = LatencyLog()
        path = None if store_dir is None else store_dir / f"{sender}-{target}"
        self.session = FixSession(sender, target, SeqStore(path), heartbeat_s=heartbeat_s,
                                  clock=time.time_ns)
        if cancel_on_disconnect:
            self.session.logon_fields.append((T_CANCEL_ON_DISCONNECT, "Y"))
        self.connects = 0
        self._last_id = 0  #: the last number a ClOrdID (or a default order key) took
        #: sequence number of the venue message being applied (its events carry it)
        self.applying = 0
        self._prefix = cl_prefix if cl_prefix is not None else f"{time.time_ns():x}-"
        self._key_of: dict[str, str] = {}  #: ClOrdID -> order key
        self._cl_of: dict[str, str] = {}  #: order key -> its current ClOrdID
        #: ClOrdID of an adopted replace no venue message has named yet -> order key
        self._replacing: dict[str, str] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._first: asyncio.Future[None] | None = None

    # --- connection -------------------------------------------------------------------------
    async def close(self) -> None:
        self._closing = True
        if self.connected and self.session.logged_on:
            self.session.logout()
            self._flush()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._logged_out(), 2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.session.store.close()

    async def _logged_out(self) -> None:
        while self.connected and not self.session.closed:
            await asyncio.sleep(0.01)

    def drop_connection(self) -> None:
        """Cut the TCP connection without logging out (the gateway reconnects)."""
        if self._writer is not None:
            self._writer.transport.abort()

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    def catching_up(self) -> bool:
        """The venue's resend of what this session missed is still coming in (after a
        logon whose sequence number showed a gap): its reports are not all applied yet."""
        return self.session.logged_on and self.session.filling_gap


    async def _session_once(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        sess = self.session
        try:  # whatever ends the connection closes the socket
            sess.new_connection()
            sess.logon(reset=self.reset_on_logon and self.connects == 0)
            self._flush()
            deadline = time.monotonic() + self.tracker.timeout_s
            announced = False
            while True:
                data = await read_within(reader, 65536, self.tick_s)
                if data == b"":
                    if not sess.logged_on and not announced:
                        raise VenueError(f"FIX Logon to {self.host}:{self.port} refused "
                                         f"({sess.closed or 'connection closed'})")
                    raise ConnectionResetError(sess.closed or "venue closed the connection")
                if data:
                    n0 = sess.received.total()
                    t0 = time.perf_counter_ns()
                    msgs = sess.receive(data)
                    n = sess.received.total() - n0
                    if n:
                        self.latency.decoded((time.perf_counter_ns() - t0) // n)
                    for m in msgs:
                        self._apply(m)
                if sess.logged_on and not announced:
                    announced = True
                    reconnect = self.connects > 0
                    self.connects += 1
                    self.events.put_nowait(Connected(reconnect))
                    if self._first is not None and not self._first.done():
                        self._first.set_result(None)
                if not sess.logged_on and time.monotonic() > deadline:
                    raise TimeoutError("no Logon answer from the FIX venue")
                sess.tick()
                self.tracker.check_timeouts()
                self._flush()
                if sess.closed:
                    if not announced:
                        raise VenueError(f"FIX Logon refused: {sess.closed}")
                    raise ConnectionResetError(sess.closed)
        finally:
            writer.close()

    def _flush(self) -> None:
        out = self.session.take_output()
        if out and self._writer is not None and not self._writer.is_closing():
            self._writer.write(out)

    # --- orders -----------------------------------------------------------------------------
    def _price(self, ticks: int) -> str:
        return format(Decimal(ticks * self.price_mult).scaleb(-self.price_decimals), "f")

    def _ticks(self, raw: bytes | None) -> int:
        if raw is None:
            return 0
        try:
            units = Decimal(raw.decode("ascii")).scaleb(self.price_decimals)
        except (InvalidOperation, UnicodeDecodeError):
            log.error("FIX gateway: price %r from the venue is not a number", raw)
            return 0
        return int(units) // self.price_mult

    def _take_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _new_cl(self, key: str, n: int | None = None) -> str:
        cl = f"{self._prefix}{self._take_id() if n is None else n}"
        self._key_of[cl] = key
        self._cl_of[key] = cl
        return cl

    def _send(self, msg_type: bytes, fields: list[tuple[int, bytes | str | int | float]]) -> None:
        if not self.connected or not self.session.logged_on:
            raise VenueError("FIX gateway is not logged on; wait for Connected")
        t0 = time.perf_counter_ns()
        self.session.send(msg_type, fields)
        self.latency.encoded(time.perf_counter_ns() - t0)
        self._flush()

    def reference(self, key: str) -> str:
        """The order's current ClOrdID."""
        return self._cl_of[key]

    def next_reference(self, key: str, kind: str = "new") -> str:
        return f"{self._prefix}{self._last_id + 1}"  # cancels and replaces take one too

    def alias(self, key: str, ref: str) -> None:
        """Another ClOrdID an adopted order's requests carried (a cancel or replace the
        earlier run sent): the venue's reports name it."""
        self._key_of[ref] = key

    def adopt(self, o: Order, ref: str, *, replacing: str = "") -> None:
        """Take over an order an earlier run of this session sent, ClOrdID ``ref`` now
        (rebuilt from a journal, in the state its answers so far left it); ``replacing``:
        the ClOrdID of a replace of it with no answer journaled (the order is
        PENDING_REPLACE), which the venue's answer names."""
        if o.key in self.tracker.orders:
            msg = f"order key {o.key!r} is already in use"
            raise OrderStateError(msg)
        self.tracker.orders[o.key] = o
        self._key_of[ref] = o.key
        self._cl_of[o.key] = ref
        if replacing:
            self._key_of[replacing] = o.key
            self._replacing[replacing] = o.key

    def resume_after(self, seq: int) -> None:
        """Before :meth:`connect`: the venue's messages after ``seq`` are wanted again (the
        Logon's sequence gap makes the session ask for their resend)."""
        self.session.store.next_in = seq + 1
        self.session.store.save()

    def submit(self, side: Side, qty: int, price: int, *, kind: OrderKind = OrderKind.LIMIT,
               tif: TimeInForce = TimeInForce.DAY, key: str | None = None) -> Order:
        if not self.connected or not self.session.logged_on:
            raise VenueError("FIX gateway is not logged on; wait for Connected")
        n = self._last_id + 1
        o = Order(key or f"F{n}", side, qty, price, kind, tif)
        self.tracker.new(o)
        cl = self._new_cl(o.key, self._take_id())
        now = fix.utc_timestamp(time.time_ns())
        fields: list[tuple[int, bytes | str | int | float]] = [
            (fix.T_CL_ORD_ID, cl), (21, 1), (fix.T_SYMBOL, self.symbol),
            (fix.T_SIDE, 1 if side == Side.BUY else 2), (fix.T_TRANSACT_TIME, now),
            (fix.T_ORDER_QTY, qty), (fix.T_ORD_TYPE, 1 if kind == OrderKind.MARKET else 2)]
        if kind == OrderKind.LIMIT:
            fields.append((fix.T_PRICE, self._price(price)))
        fields.append((fix.T_TIME_IN_FORCE, 3 if tif == TimeInForce.IOC else 0))
        if tif == TimeInForce.POST_ONLY:
            fields.append((fix.T_EXEC_INST, "6"))
        self._send(fix.NEW_ORDER_SINGLE, fields)
        return o

    def cancel(self, key: str) -> None:
        o = self.tracker.want_cancel(key)
        orig = self._cl_of[key]
        cl = self._new_cl(key)
        self._cl_of[key] = orig  # it becomes the order's id only once the venue agrees
        try:
            self._send(fix.ORDER_CANCEL_REQUEST, [
                (fix.T_ORIG_CL_ORD_ID, orig), (fix.T_CL_ORD_ID, cl),
                (fix.T_SYMBOL, self.symbol), (fix.T_SIDE, 1 if o.side == Side.BUY else 2),
                (fix.T_TRANSACT_TIME, fix.utc_timestamp(time.time_ns()))])
        except VenueError:
            self.tracker.restore(o)
            raise

    def replace(self, key: str, price: int, qty: int) -> None:
        o = self.tracker.want_replace(key, price, qty)
        orig = self._cl_of[key]
        cl = self._new_cl(key)
        self._cl_of[key] = orig
        try:
            self._send(fix.ORDER_CANCEL_REPLACE_REQUEST, [
                (fix.T_ORIG_CL_ORD_ID, orig), (fix.T_CL_ORD_ID, cl), (21, 1),
                (fix.T_SYMBOL, self.symbol), (fix.T_SIDE, 1 if o.side == Side.BUY else 2),
                (fix.T_TRANSACT_TIME, fix.utc_timestamp(time.time_ns())),
                (fix.T_ORDER_QTY, qty), (fix.T_ORD_TYPE, 2), (fix.T_PRICE, self._price(price))])
        except VenueError:
            self.tracker.restore(o)
            raise

    def _apply(self, m: FixMessage) -> None:
        self.applying = m.seq
        t = self.tracker
        cl = m.get_str(fix.T_CL_ORD_ID)
        key = self._key_of.get(cl, f"?{cl}")
        self._replacing.pop(cl, None)  # the venue got it: an answer to it, or a report after
        try:
            if m.msg_type == fix.EXECUTION_REPORT:
                et = m.req(fix.T_EXEC_TYPE)
                if et == b"0":
                    t.acked(key, m.get_str(fix.T_ORDER_ID))
                elif et == b"8":
                    t.rejected(key, m.get_str(fix.T_TEXT, "rejected"))
                elif et in (b"F", b"1", b"2"):
                    liq = {b"1": "A", b"2": "R"}.get(m.get(fix.T_LAST_LIQUIDITY_IND) or b"", "")
                    t.filled(key, m.get_int(fix.T_LAST_QTY), self._ticks(m.get(fix.T_LAST_PX)),
                             liq, m.get_str(fix.T_EXEC_ID))
                elif et in (b"4", b"C"):
                    self._cl_of[key] = cl
                    o = t.orders.get(key)
                    left = o.leaves if o is not None else 0
                    t.canceled(key, left, m.get_str(fix.T_TEXT))
                elif et == b"5":
                    self._cl_of[key] = cl
                    t.replaced(key, self._ticks(m.get(fix.T_PRICE)), m.get_int(fix.T_ORDER_QTY))
                else:
                    log.info("FIX gateway: ExecutionReport ExecType %r ignored", et)
            elif m.msg_type == fix.ORDER_CANCEL_REJECT:
                t.cancel_rejected(key, m.get_str(fix.T_TEXT, "cancel rejected"))
            else:
                self.session.reject(m, 11, f"MsgType {m.msg_type!r} is not handled here")
                self._flush()
        except fix.FixError as e:
            self.session.reject(m, 1, str(e))
            self._flush()


__all__ = ["FixGateway"]
