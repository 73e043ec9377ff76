"""FIX 4.4 acceptor of the venue (asyncio) over :class:`~live.wire.fix_session.FixSession`.

Session layer: Logon (HeartBtInt required; ResetSeqNumFlag honoured), Heartbeat and
TestRequest, sequence numbers persisted per session under ``store_dir/<peer>-<us>/``,
ResendRequest answered with resent messages or SequenceReset-GapFill, session-level Reject
of messages that frame well but lack a required tag or hold a bad value, Logout. Garbled
frames are ignored (the sequence gap they leave is recovered by resend), so a malformed
inbound message never crashes the venue: it is rejected, or its session ends.

Application: NewOrderSingle (OrdType 1 market / 2 limit; TimeInForce 0 day / 3 IOC;
ExecInst 6 = participate don't initiate, i.e. post-only), OrderCancelRequest,
OrderCancelReplaceRequest (OrderQty = the new total size, as FIX defines it) in;
ExecutionReport and OrderCancelReject out. A cancel or replace acts only on an order live
under the OrigClOrdID it names (FIX: the ClOrdID of the *previous* request, not of any
earlier one): one that names a ClOrdID a replace retired, or an order no longer resting,
gets OrderCancelReject (CxlRejReason 1 unknown order, 0 too late) and changes nothing; a
reused ClOrdID gets 6 (duplicate). Reports that arrive while the client is away
take their sequence numbers and are stored: the client's ResendRequest after its next
Logon brings them. Logon tag 8013=Y asks the venue to cancel the session's resting orders
when its connection ends (cancel on disconnect).

Prices are decimal text: ticks × ``price_mult`` ÷ 10^``price_decimals``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from framework.core.events import BUY, SELL
from live.aio import ConnectionSet, read_within
from live.venue.matching import OrdType, Reason, Report, ReportKind, Tif
from live.venue.orders import OrderHub
from live.wire import fix
from live.wire.fix import FixMessage
from live.wire.fix_session import (
    REJ_INCORRECT_FORMAT,
    REJ_INVALID_MSG_TYPE,
    REJ_REQUIRED_TAG_MISSING,
    REJ_VALUE_INCORRECT,
    FixSession,
    SeqStore,
)

log = logging.getLogger("hftlab.live.venue.fix")

T_CANCEL_ON_DISCONNECT = 8013  #: venue-specific Logon tag: Y = cancel orders on disconnect
_COMP_ID = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,63}")

#: OrdRejReason (103) of each matcher reason
_ORD_REJ = {
    Reason.BAD_SIDE: 99, Reason.BAD_QTY: 13, Reason.BAD_PRICE: 99, Reason.BAD_TYPE: 11,
    Reason.HALTED: 2, Reason.POST_ONLY_WOULD_TAKE: 99, Reason.NO_LIQUIDITY: 99,
    Reason.UNKNOWN_ORDER: 5,
}


@dataclass(slots=True)
class _Order:
    clordid: str
    side: bytes
    qty: int
    price: int = 0
    order_id: int = 0
    cum: int = 0
    notional: int = 0  #: sum of fill price × qty in ticks, for AvgPx
    orig: str = ""  #: the ClOrdID a pending cancel/replace refers to
    status: bytes = b"A"  #: OrdStatus: A pending new, 0 new, 1 partial, 2 filled, 4 cancelled


class _Conn:
    """One logged-on (or logging-on) connection of a FIX session."""

    def __init__(self, server: FixServer, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.writer = writer
        self.session: FixSession | None = None


@dataclass(slots=True)
class _SessionState:
    session: FixSession
    orders: dict[str, _Order]  #: by ClOrdID
    by_id: dict[int, _Order]
    conn: _Conn | None = None
    cancel_on_disconnect: bool = False
    #: ClOrdID of a cancel or replace request in flight -> its MsgType
    pending: dict[str, bytes] = field(default_factory=dict)


class FixServer:
    """The venue's FIX acceptor; ``comp_id`` is the venue's SenderCompID."""

    def __init__(self, hub: OrderHub, *, host: str = "127.0.0.1", port: int = 0,
                 comp_id: str = "HFTLAB", store_dir: Path | None = None,
                 clients: set[str] | None = None, price_decimals: int = 0,
                 tick_s: float = 0.2, logon_timeout_s: float = 10.0) -> None:
        self.hub = hub
        self.host, self.port = host, port
        self.comp_id = comp_id
        self.store_dir = store_dir
        self.clients = clients  #: accepted SenderCompIDs; None accepts any
        self.price_decimals = price_decimals
        self.tick_s, self.logon_timeout_s = tick_s, logon_timeout_s
        self.sessions: dict[str, _SessionState] = {}
        self._server: asyncio.Server | None = None
        self._conns = ConnectionSet()
        self._exec_ids = itertools.count(1)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("FIX 4.4 acceptor %s listening on %s:%d", self.comp_id, self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for st in self.sessions.values():
            if st.conn is not None:
                st.session.logout("venue shutting down")
                st.conn.writer.write(st.session.take_output())
                st.conn.writer.close()
        await self._conns.close()
        for st in self.sessions.values():
            st.session.store.close()
        if self._server is not None:
            await self._server.wait_closed()

    # --- sessions ---------------------------------------------------------------------------
    def _state(self, client: str) -> _SessionState:
        st = self.sessions.get(client)
        if st is None:
            path = None if self.store_dir is None else self.store_dir / f"{client}-{self.comp_id}"
            sess = FixSession(self.comp_id, client, SeqStore(path), clock=time.time_ns)
            st = _SessionState(sess, {}, {})
            self.sessions[client] = st
            self.hub.attach("fix:" + client, functools.partial(self._deliver, st))
        return st

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        peer = writer.get_extra_info("peername")
        st: _SessionState | None = None
        conn = _Conn(self, writer)
        try:
            st = await self._logon(reader, writer, conn, peer)
            if st is not None:
                await self._serve(st, reader, conn)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.info("FIX connection %s lost: %s", peer, e)
        except TimeoutError:
            log.warning("FIX connection %s: no Logon within %.1f s; closing", peer,
                        self.logon_timeout_s)
        except Exception:  # a defect here ends this session, never the venue
            log.exception("FIX connection %s: internal error; ending the session", peer)
        finally:
            if st is not None and st.conn is conn:
                st.conn = None
                st.session.logged_on = False
                if st.cancel_on_disconnect:
                    self.hub.cancel_all("fix:" + st.session.target)
            writer.close()
            self._conns.discard()

    async def _logon(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     conn: _Conn, peer: object) -> _SessionState | None:
        """Read up to the first whole message, which must be a Logon naming a client."""
        probe = fix.FixReader()
        data = b""
        deadline = time.monotonic() + self.logon_timeout_s
        while True:
            chunk = await read_within(reader, 4096, max(0.0, deadline - time.monotonic()))
            if chunk is None:
                raise TimeoutError
            if not chunk:
                return None
            data += chunk
            items = probe.feed(chunk)
            if items:
                break
        first = items[0]
        if not isinstance(first, FixMessage) or first.msg_type != fix.LOGON:
            log.warning("FIX %s: first message is not a Logon; closing", peer)
            return None
        client = first.get_str(fix.T_SENDER)
        if not _COMP_ID.fullmatch(client):  # it names a directory of the store
            log.warning("FIX %s: SenderCompID %r is not 1-64 of A-Z a-z 0-9 _ - . (not "
                        "starting with a dot); closing", peer, client[:80])
            return None
        if first.get(fix.T_TARGET) != self.comp_id.encode():
            log.warning("FIX %s: Logon from %r to %r is not for %s; closing", peer, client,
                        first.get_str(fix.T_TARGET), self.comp_id)
            return None
        st = self._state(client)
        if st.conn is not None:
            log.info("FIX %s: %s logs on again; ending its earlier connection", peer, client)
            st.conn.writer.close()
            st.conn = None
        sess = st.session
        sess.new_connection()
        sess.accept_logon = self._accept
        st.conn = conn
        conn.session = sess
        apps = sess.receive(data)
        writer.write(sess.take_output())
        if sess.closed or not sess.logged_on:
            log.warning("FIX %s: %s not logged on: %s", peer, client, sess.closed)
            st.conn = None
            return None
        st.cancel_on_disconnect = first.get(T_CANCEL_ON_DISCONNECT) == b"Y"
        for m in apps:
            self._app(st, m)
        writer.write(sess.take_output())
        await writer.drain()
        return st

    def _accept(self, m: FixMessage) -> str | None:
        client = m.get_str(fix.T_SENDER)
        if self.clients is not None and client not in self.clients:
            return f"unknown SenderCompID {client!r}"
        return None

    async def _serve(self, st: _SessionState, reader: asyncio.StreamReader,
                     conn: _Conn) -> None:
        sess = st.session
        while st.conn is conn and not sess.closed:
            data = await read_within(reader, 65536, self.tick_s)
            if data == b"":
                return
            if data:
                for m in sess.receive(data):
                    self._app(st, m)
            sess.tick()
            out = sess.take_output()
            if out:
                conn.writer.write(out)
                await conn.writer.drain()
        if sess.closed:
            log.info("FIX %s: session ends: %s", sess.target, sess.closed)

    # --- application ------------------------------------------------------------------------
    def _price(self, st: _SessionState, m: FixMessage) -> int | None:
        """The order price in ticks; None (and a Reject sent) when it is not usable."""
        raw = m.get(fix.T_PRICE)
        if raw is None:
            st.session.reject(m, REJ_REQUIRED_TAG_MISSING, "Price (44) is required for a "
                              "limit order", fix.T_PRICE)
            return None
        try:
            units = Decimal(raw.decode("ascii")) * (10 ** self.price_decimals)
        except (InvalidOperation, UnicodeDecodeError):
            st.session.reject(m, REJ_INCORRECT_FORMAT, f"Price {raw!r} is not a number",
                              fix.T_PRICE)
            return None
        mult = self.hub.price_mult
        if units != units.to_integral_value() or int(units) % mult:
            st.session.reject(m, REJ_VALUE_INCORRECT, f"Price {raw!r} is not a whole tick",
                              fix.T_PRICE)
            return None
        return int(units) // mult

    def _text_price(self, ticks: int) -> str:
        v = Decimal(ticks * self.hub.price_mult).scaleb(-self.price_decimals)
        return format(v, "f")

    def _app(self, st: _SessionState, m: FixMessage) -> None:
        sess = st.session
        owner = "fix:" + sess.target
        t = m.msg_type
        try:
            if t == fix.NEW_ORDER_SINGLE:
                clordid = m.req(fix.T_CL_ORD_ID).decode("latin-1")
                side_b = m.req(fix.T_SIDE)
                qty = m.get_int(fix.T_ORDER_QTY)
                symbol = m.req(fix.T_SYMBOL).decode("latin-1")
                ord_type = m.req(fix.T_ORD_TYPE)
                m.req(fix.T_TRANSACT_TIME)
                tif_b = m.get(fix.T_TIME_IN_FORCE) or b"0"
            elif t in (fix.ORDER_CANCEL_REQUEST, fix.ORDER_CANCEL_REPLACE_REQUEST):
                clordid = m.req(fix.T_CL_ORD_ID).decode("latin-1")
                orig = m.req(fix.T_ORIG_CL_ORD_ID).decode("latin-1")
                side_b = m.req(fix.T_SIDE)
                m.req(fix.T_SYMBOL)
                m.req(fix.T_TRANSACT_TIME)
            else:
                sess.reject(m, REJ_INVALID_MSG_TYPE, f"MsgType {t!r} is not supported here")
                return
        except fix.FixError as e:
            sess.reject(m, REJ_REQUIRED_TAG_MISSING if e.missing else REJ_INCORRECT_FORMAT,
                        str(e), e.tag)
            return
        if side_b not in (b"1", b"2", b"5"):
            sess.reject(m, REJ_VALUE_INCORRECT, f"Side {side_b!r} is not 1, 2 or 5",
                        fix.T_SIDE)
            return
        side = BUY if side_b == b"1" else SELL
        if t == fix.NEW_ORDER_SINGLE:
            if clordid in st.orders:
                self._exec_reject(st, clordid, side_b, "duplicate ClOrdID", 6)
                return
            if symbol != self.hub.symbol:
                self._exec_reject(st, clordid, side_b, f"unknown symbol {symbol!r}", 1)
                return
            if ord_type not in (b"1", b"2") or tif_b not in (b"0", b"3"):
                self._exec_reject(st, clordid, side_b, "unsupported OrdType or TimeInForce",
                                  11)
                return
            market = ord_type == b"1"
            price = 0 if market else self._price(st, m)
            if price is None:
                return
            post_only = b"6" in (m.get(fix.T_EXEC_INST) or b"").split(b" ")
            tif = Tif.IOC if tif_b == b"3" else (Tif.POST_ONLY if post_only else Tif.DAY)
            st.orders[clordid] = _Order(clordid, side_b, qty, price)
            self.hub.submit(owner, clordid, side, qty, price,
                            ord_type=OrdType.MARKET if market else OrdType.LIMIT, tif=tif)
            return
        o = st.orders.get(orig)
        if clordid in st.orders:
            self._cancel_reject(st, clordid, orig, o, t, "duplicate ClOrdID", 6)
            return
        if o is None or not o.order_id:
            self._cancel_reject(st, clordid, orig, o, t, f"unknown order {orig!r}", 1)
            return
        now = self.hub.matcher.live_token(owner, o.order_id)
        if now != orig:  # never act on an order under a name it no longer goes by
            why, code = ((f"order {orig!r} is done", 0) if now is None else
                         (f"{orig!r} is not the order's ClOrdID now ({o.clordid!r} is)", 1))
            self._cancel_reject(st, clordid, orig, o, t, why, code)
            return
        st.pending[clordid] = t
        if t == fix.ORDER_CANCEL_REQUEST:
            st.orders[clordid] = o
            o.orig = orig
            self.hub.cancel(owner, o.order_id, token=clordid)
            return
        try:
            qty = m.get_int(fix.T_ORDER_QTY)
        except fix.FixError as e:
            st.pending.pop(clordid)
            sess.reject(m, REJ_REQUIRED_TAG_MISSING if e.missing else REJ_INCORRECT_FORMAT,
                        str(e), e.tag)
            return
        price = self._price(st, m)
        if price is None:
            st.pending.pop(clordid)
            return
        st.orders[clordid] = o
        o.orig = orig
        self.hub.replace(owner, o.order_id, clordid, price, qty)

    def _exec_reject(self, st: _SessionState, clordid: str, side: bytes, text: str,
                     code: int) -> None:
        log.info("FIX %s: order %s rejected: %s", st.session.target, clordid, text)
        st.session.send(fix.EXECUTION_REPORT, [
            (fix.T_ORDER_ID, "NONE"), (fix.T_EXEC_ID, next(self._exec_ids)),
            (fix.T_EXEC_TYPE, "8"), (fix.T_ORD_STATUS, "8"), (fix.T_CL_ORD_ID, clordid),
            (fix.T_SYMBOL, self.hub.symbol), (fix.T_SIDE, side), (fix.T_LEAVES_QTY, 0),
            (fix.T_CUM_QTY, 0), (fix.T_AVG_PX, 0), (fix.T_ORD_REJ_REASON, code),
            (fix.T_TEXT, text)])
        self._flush(st)

    def _cancel_reject(self, st: _SessionState, clordid: str, orig: str, o: _Order | None,
                       t: bytes, text: str, code: int) -> None:
        """OrderCancelReject with CxlRejReason ``code`` (0 too late, 1 unknown order, 6
        duplicate ClOrdID, 99 other)."""
        log.info("FIX %s: cancel/replace %s of %s rejected: %s", st.session.target, clordid,
                 orig, text)
        st.session.send(fix.ORDER_CANCEL_REJECT, [
            (fix.T_ORDER_ID, o.order_id if o is not None and o.order_id else "NONE"),
            (fix.T_CL_ORD_ID, clordid), (fix.T_ORIG_CL_ORD_ID, orig),
            (fix.T_ORD_STATUS, o.status if o is not None and o.order_id else b"8"),
            (fix.T_CXL_REJ_RESPONSE_TO, "1" if t == fix.ORDER_CANCEL_REQUEST else "2"),
            (fix.T_CXL_REJ_REASON, code),
            (fix.T_TEXT, text)])
        self._flush(st)

    def _deliver(self, st: _SessionState, r: Report) -> None:
        o = st.orders.get(r.token)
        if o is None:
            log.error("FIX %s: report %s names no order of this session", st.session.target, r)
            return
        k = r.kind
        if k == ReportKind.CANCEL_REJECTED:
            t = st.pending.pop(r.token, fix.ORDER_CANCEL_REQUEST)
            orig, o.orig = o.orig, ""
            del st.orders[r.token]
            self._cancel_reject(st, r.token, orig, o, t, str(r.reason) or "refused",
                                1 if r.reason == Reason.UNKNOWN_ORDER else 99)
            return
        st.pending.pop(r.token, None)
        if k == ReportKind.REJECTED:
            del st.orders[r.token]
            self._exec_reject(st, r.token, o.side, str(r.reason), _ORD_REJ.get(r.reason, 99))
            return
        fields: list[tuple[int, bytes | str | int | float]] = []
        if k == ReportKind.ACCEPTED:
            o.order_id = r.order_id
            st.by_id[r.order_id] = o
            o.status = b"0"
            exec_type = b"0"
        elif k == ReportKind.EXECUTED:
            o.cum += r.qty
            o.notional += r.qty * r.price
            o.status = b"2" if r.leaves == 0 else b"1"
            exec_type = b"F"
            fields += [(fix.T_LAST_PX, self._text_price(r.price)), (fix.T_LAST_QTY, r.qty),
                       (fix.T_LAST_LIQUIDITY_IND, 1 if r.liquidity == "A" else 2)]
        elif k == ReportKind.CANCELED:
            o.status = b"4" if r.leaves == 0 else o.status
            exec_type = b"4"
            if r.orig_token:
                fields.append((fix.T_ORIG_CL_ORD_ID, r.orig_token))
                o.clordid, o.orig = r.token, ""
            if r.reason == Reason.IOC:
                fields.append((fix.T_TEXT, "unfilled rest of an IOC or market order"))
        else:  # REPLACED
            fields.append((fix.T_ORIG_CL_ORD_ID, r.orig_token))
            o.clordid, o.orig = r.token, ""
            o.qty, o.price = r.qty, r.price
            o.status = b"1" if o.cum else b"0"
            exec_type = b"5"
        avg = "0"
        if o.cum:
            ticks = Decimal(o.notional) / o.cum
            avg = format((ticks * self.hub.price_mult).scaleb(-self.price_decimals), "f")
        st.session.send(fix.EXECUTION_REPORT, [
            (fix.T_ORDER_ID, r.order_id), (fix.T_EXEC_ID, next(self._exec_ids)),
            (fix.T_EXEC_TYPE, exec_type), (fix.T_ORD_STATUS, o.status),
            (fix.T_CL_ORD_ID, r.token), (fix.T_SYMBOL, self.hub.symbol),
            (fix.T_SIDE, o.side), (fix.T_ORDER_QTY, o.qty),
            (fix.T_PRICE, self._text_price(o.price)),
            *fields,
            (fix.T_LEAVES_QTY, r.leaves), (fix.T_CUM_QTY, o.cum), (fix.T_AVG_PX, avg)])
        self._flush(st)

    def _flush(self, st: _SessionState) -> None:
        out = st.session.take_output()
        if st.conn is not None and out and not st.conn.writer.is_closing():
            st.conn.writer.write(out)


__all__ = ["T_CANCEL_ON_DISCONNECT", "FixServer"]
