"""OUCH 5.0 over SoupBinTCP 4.0: the venue's acceptor (asyncio).

* Login: a Login Request must come first (within ``timeout_s``); a wrong password is
  rejected ``A`` (not authorized), a requested session other than the venue's ``S``.
  Accepted logins name the sequence number of the next sequenced message; a requested
  sequence number ``n > 0`` replays the session's sequenced messages from ``n`` first
  (``0`` = new messages only). A second login of a user takes over from the first.
* Heartbeats both ways: the venue sends one after ``heartbeat_s`` without output; a client
  silent for ``timeout_s`` is logged out.
* Sessions outlive their connections: reports that arrive while a user is disconnected
  are stored as sequenced messages and replayed on re-login (nothing is lost or sent twice
  as long as the client asks for the sequence number it expects next).
* Orders: UserRefNum must increase within a session (OUCH 5.0); the symbol must be the
  venue's; the price must be a whole number of ticks (``price_mult`` wire units each).
  Replace Order's quantity is the new *open* size (the matcher takes a total, filled lots
  included: the server adds them). Tag 12 ``P`` asks for post-only; TIF ``3`` is IOC.
* A Cancel or Replace Order acts only on an order *live under the UserRefNum it names*:
  accepted, still resting, and not retired by a replace (after Order Replaced the order goes
  by the new UserRefNum only). Any other -- never used, rejected, retired, or its order
  cancelled, filled or expired -- gets Cancel Reject (a cancel) or Order Rejected
  ``unknown_order`` for the replacement's UserRefNum (a replace), and changes nothing.
  (PROTOCOLS.md §5's source names these messages but not the venue's rule or codes: the
  codes are this venue's, :data:`live.wire.ouch.REJECT_CODES`.)
* Bad input never crashes the venue: an undecodable OUCH message gets an Order Rejected
  (``bad_message``) for the UserRefNum it carries, if any; a bad SoupBinTCP frame is logged
  and skipped, a fatal one (zero length) ends the connection.
* ``cancel_on_disconnect`` (the port's setting, as at NASDAQ) cancels a user's resting
  orders whenever its connection ends.
* ``stall=(N, S)``: a slow reader, for the tests of a client whose sends fill its socket:
  after every ``N`` packets read from a connection the port stops reading it for ``S``
  seconds (the socket's receive buffer kept small: :data:`STALL_RCVBUF`), then reads on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from dataclasses import dataclass, field

from framework.core.errors import ConfigError
from framework.core.events import BUY, SELL
from live.aio import ConnectionSet, read_within
from live.venue.matching import Reason, Report, ReportKind, Tif
from live.venue.orders import OrderHub
from live.wire import ouch, soupbin
from live.wire.frames import BadFrame

log = logging.getLogger("hftlab.live.venue.ouch")

#: ``stall``: the receive buffer (bytes asked; the kernel doubles it) of the port's
#: connections, so a stalled reader's client fills its socket after a few kB, not megabytes
STALL_RCVBUF = 4096


@dataclass(slots=True)
class _Order:
    side: bytes
    tif: bytes
    clordid: bytes
    post_only: bool
    order_id: int = 0


@dataclass(slots=True)
class OuchSession:
    """One user's session: its sequenced messages and its orders, across connections."""

    username: str
    messages: list[bytes] = field(default_factory=list)  #: sequenced payloads, seq 1 first
    orders: dict[int, _Order] = field(default_factory=dict)  #: by UserRefNum
    by_id: dict[int, int] = field(default_factory=dict)  #: venue order id -> UserRefNum
    replacing: dict[int, int] = field(default_factory=dict)  #: new UserRefNum -> original
    last_urn: int = 0
    writer: asyncio.StreamWriter | None = None


class OuchServer:
    """SoupBinTCP acceptor speaking OUCH 5.0 to an :class:`OrderHub` (see module doc)."""

    def __init__(self, hub: OrderHub, *, host: str = "127.0.0.1", port: int = 0,
                 session: str = "HFTLAB", users: dict[str, str] | None = None,
                 heartbeat_s: float = 1.0, timeout_s: float = 15.0,
                 cancel_on_disconnect: bool = False,
                 stall: tuple[int, float] | None = None) -> None:
        self.hub = hub
        self.host, self.port = host, port
        self.session = session
        self.users = users  #: username -> password; None accepts anyone
        self.heartbeat_s, self.timeout_s = heartbeat_s, timeout_s
        self.cancel_on_disconnect = cancel_on_disconnect
        if stall is not None and not (stall[0] >= 1 and stall[1] > 0):
            msg = f"OUCH stall {stall}: give (packets >= 1, seconds > 0)"
            raise ConfigError(msg)
        self.stall = stall
        self.stalls = 0  #: times a connection's reading was paused (``stall``)
        self.sessions: dict[str, OuchSession] = {}
        self._server: asyncio.Server | None = None
        self._conns = ConnectionSet()
        self._symbol = ouch.pad_symbol(hub.symbol)

    async def start(self) -> int:
        """Listen; returns the bound port."""
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        if self.stall is not None:  # accepted connections take the listener's buffer size
            for s in self._server.sockets:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALL_RCVBUF)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("OUCH/SoupBinTCP listening on %s:%d", self.host, self.port)
        return self.port

    async def stop(self, *, end_session: bool = True) -> None:
        """Close the port. ``end_session`` tells connected clients the session is over
        (End of Session: they do not come back); without it they see the connection drop
        and reconnect to whatever listens next (a venue restarting mid-day)."""
        if self._server is not None:
            self._server.close()
        for s in self.sessions.values():
            if s.writer is not None:
                if end_session:
                    s.writer.write(soupbin.END_OF_SESSION_PACKET)
                s.writer.close()
        await self._conns.close()
        if self._server is not None:
            await self._server.wait_closed()

    # --- connections ------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        peer = writer.get_extra_info("peername")
        sess: OuchSession | None = None
        try:
            sess = await self._login(reader, writer, peer)
            if sess is not None:
                await self._serve(sess, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.info("OUCH connection %s lost: %s", peer, e)
        except TimeoutError:
            log.warning("OUCH connection %s sent no login request within %.1f s; closing",
                        peer, self.timeout_s)
        except Exception:  # a defect here ends this session, never the venue
            log.exception("OUCH connection %s: internal error; ending the session", peer)
        finally:
            if sess is not None and sess.writer is writer:
                sess.writer = None
                if self.cancel_on_disconnect:
                    self.hub.cancel_all(self._owner(sess))
            writer.close()
            self._conns.discard()

    async def _login(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     peer: object) -> OuchSession | None:
        rd = soupbin.SoupReader()
        while True:
            data = await read_within(reader, 4096, self.timeout_s)
            if data is None:
                raise TimeoutError
            if not data:
                return None
            items = rd.feed(data)
            if items:
                break
        first = items[0]
        if isinstance(first, BadFrame) or first.type != soupbin.LOGIN_REQUEST:
            log.warning("OUCH %s: first packet is not a login request (%s); closing", peer,
                        first.reason if isinstance(first, BadFrame) else first.type)
            return None
        try:
            req = soupbin.decode_login_request(first.payload)
        except soupbin.SoupError as e:
            log.warning("OUCH %s: bad login request: %s", peer, e)
            writer.write(soupbin.login_rejected(soupbin.REJECT_NOT_AUTHORIZED))
            return None
        if self.users is not None and self.users.get(req.username) != req.password:
            log.warning("OUCH %s: login of %r rejected: not authorized", peer, req.username)
            writer.write(soupbin.login_rejected(soupbin.REJECT_NOT_AUTHORIZED))
            return None
        if req.session and req.session != self.session:
            log.warning("OUCH %s: login of %r rejected: session %r is not %r", peer,
                        req.username, req.session, self.session)
            writer.write(soupbin.login_rejected(soupbin.REJECT_SESSION_NOT_AVAILABLE))
            return None
        sess = self.sessions.get(req.username)
        if sess is None:
            sess = OuchSession(req.username)
            self.sessions[req.username] = sess
            self.hub.attach(self._owner(sess), functools.partial(self._deliver, sess))
        if sess.writer is not None:  # take over from an earlier connection
            log.info("OUCH %s: %r logs in again; ending its earlier connection", peer,
                     req.username)
            sess.writer.close()
        n = len(sess.messages)
        start = n + 1 if req.sequence == 0 else min(max(req.sequence, 1), n + 1)
        writer.write(soupbin.login_accepted(self.session, start))
        for msg in sess.messages[start - 1:]:
            writer.write(soupbin.sequenced(msg))
        sess.writer = writer
        log.info("OUCH %s: %r logged in, next sequence %d (%d replayed)", peer, req.username,
                 start, n + 1 - start)
        for item in items[1:]:
            if not self._packet(sess, item):
                return None
        await writer.drain()
        return sess

    async def _serve(self, sess: OuchSession, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        rd = soupbin.SoupReader()
        beat = asyncio.get_running_loop().create_task(self._heartbeats(writer))
        read, pause_at = 0, self.stall[0] if self.stall is not None else None
        try:
            while sess.writer is writer:
                data = await read_within(reader, 65536, self.timeout_s)
                if data is None:
                    log.warning("OUCH %r: no client heartbeat for %.1f s; ending the session",
                                sess.username, self.timeout_s)
                    return
                if not data:
                    return
                for item in rd.feed(data):
                    read += 1
                    if not self._packet(sess, item):
                        return
                await writer.drain()
                if pause_at is not None and read >= pause_at and self.stall is not None:
                    pause_at = read + self.stall[0]
                    await self._stall(sess, writer, self.stall[1])
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _stall(self, sess: OuchSession, writer: asyncio.StreamWriter,
                     seconds: float) -> None:
        """Read nothing of this connection for ``seconds``: the socket is not read either
        (a paused transport), so what the client sends piles up in the kernel's buffers."""
        self.stalls += 1
        log.info("OUCH %r: reading paused for %g s (stall %d)", sess.username, seconds,
                 self.stalls)
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)  # a stream's: it reads, too
        transport.pause_reading()
        try:
            await asyncio.sleep(seconds)
        finally:
            if not transport.is_closing():
                transport.resume_reading()

    async def _heartbeats(self, writer: asyncio.StreamWriter) -> None:
        while not writer.is_closing():
            await asyncio.sleep(self.heartbeat_s)
            writer.write(soupbin.SERVER_HEARTBEAT_PACKET)

    def _packet(self, sess: OuchSession, item: soupbin.Packet | BadFrame) -> bool:
        """Handle one inbound packet; False ends the connection."""
        if isinstance(item, BadFrame):
            log.warning("OUCH %r: bad frame: %s", sess.username, item.reason)
            return not item.fatal
        t = item.type
        if t == soupbin.UNSEQUENCED:
            self._message(sess, item.payload)
        elif t == soupbin.LOGOUT_REQUEST:
            log.info("OUCH %r logged out", sess.username)
            return False
        elif t == soupbin.LOGIN_REQUEST:
            log.warning("OUCH %r: login request on a logged-in connection ignored",
                        sess.username)
        elif t != soupbin.CLIENT_HEARTBEAT:
            log.warning("OUCH %r: unexpected packet type %r from a client ignored",
                        sess.username, t)
        return True

    # --- orders -----------------------------------------------------------------------------
    @staticmethod
    def _owner(sess: OuchSession) -> str:
        return "ouch:" + sess.username

    def _reject(self, sess: OuchSession, urn: int, why: str, clordid: bytes = b"",
                detail: str = "") -> None:
        log.info("OUCH %r: order %d rejected: %s%s", sess.username, urn, why,
                 f" ({detail})" if detail else "")
        self._send(sess, ouch.OrderRejected(self.hub.now(), urn, ouch.REJECT_CODES[why],
                                            clordid[:14]).encode())

    def _live(self, sess: OuchSession, urn: int) -> tuple[_Order | None, str]:
        """The order UserRefNum ``urn`` names if it is live under it (see the module doc),
        else None and why not: a message naming a retired UserRefNum must not reach the
        order by its new one."""
        o = sess.orders.get(urn)
        if o is None or not o.order_id:
            return None, f"no order was accepted as {urn}"
        now = self.hub.matcher.live_token(self._owner(sess), o.order_id)
        if now is None:
            return None, f"order {urn} is done"
        if now != str(urn):
            return None, f"a replace retired {urn}: the order is {now} now"
        return o, ""

    def _message(self, sess: OuchSession, payload: bytes) -> None:
        try:
            msg = ouch.decode_inbound(payload)
        except ouch.OuchError as e:
            urn = int.from_bytes(payload[1:5]) if len(payload) >= 5 else 0
            log.warning("OUCH %r: undecodable message: %s", sess.username, e)
            self._reject(sess, urn, "bad_message")
            return
        owner = self._owner(sess)
        mult = self.hub.price_mult
        if isinstance(msg, ouch.EnterOrder):
            if msg.user_ref_num <= sess.last_urn:
                self._reject(sess, msg.user_ref_num, "duplicate_ref", msg.clordid)
                return
            sess.last_urn = msg.user_ref_num
            if msg.symbol != self._symbol.rstrip():
                self._reject(sess, msg.user_ref_num, "unknown_symbol", msg.clordid)
                return
            if msg.price % mult:
                self._reject(sess, msg.user_ref_num, "bad_price", msg.clordid)
                return
            if msg.tif not in (ouch.TIF_DAY, ouch.TIF_IOC):
                self._reject(sess, msg.user_ref_num, "bad_type", msg.clordid)
                return
            tif = Tif.IOC if msg.tif == ouch.TIF_IOC else (
                Tif.POST_ONLY if msg.post_only else Tif.DAY)
            sess.orders[msg.user_ref_num] = _Order(msg.side, msg.tif, msg.clordid,
                                                   msg.post_only)
            side = BUY if msg.side == b"B" else SELL
            self.hub.submit(owner, str(msg.user_ref_num), side, msg.quantity,
                            msg.price // mult, tif=tif)
        elif isinstance(msg, ouch.CancelOrder):
            o, why = self._live(sess, msg.user_ref_num)
            if o is None:
                log.info("OUCH %r: cancel of %d rejected: %s", sess.username,
                         msg.user_ref_num, why)
                self._send(sess, ouch.CancelReject(self.hub.now(), msg.user_ref_num).encode())
                return
            self.hub.cancel(owner, o.order_id, msg.quantity, token=str(msg.user_ref_num))
        else:
            if msg.user_ref_num <= sess.last_urn:
                self._reject(sess, msg.user_ref_num, "duplicate_ref", msg.clordid)
                return
            sess.last_urn = msg.user_ref_num
            orig, why = self._live(sess, msg.orig_user_ref_num)
            if orig is None:
                self._reject(sess, msg.user_ref_num, "unknown_order", msg.clordid, why)
                return
            if msg.price % mult:
                self._reject(sess, msg.user_ref_num, "bad_price", msg.clordid)
                return
            state = self.hub.matcher.open_order(orig.order_id)
            filled = 0 if state is None else state[2] - state[3]
            sess.orders[msg.user_ref_num] = _Order(orig.side, msg.tif, msg.clordid or
                                                   orig.clordid, orig.post_only, orig.order_id)
            sess.replacing[msg.user_ref_num] = msg.orig_user_ref_num
            self.hub.replace(owner, orig.order_id, str(msg.user_ref_num), msg.price // mult,
                             msg.quantity + filled)

    def _deliver(self, sess: OuchSession, r: Report) -> None:
        """A matcher report for this session, as the OUCH message it becomes."""
        urn = int(r.token) if r.token.isdigit() else 0
        o = sess.orders.get(urn)
        ts = r.ts or self.hub.now()
        mult = self.hub.price_mult
        k = r.kind
        if k == ReportKind.ACCEPTED and o is not None:
            o.order_id = r.order_id
            sess.by_id[r.order_id] = urn
            app = {ouch.TAG_POST_ONLY: b"P"} if o.post_only else {}
            out: ouch.Outbound = ouch.OrderAccepted(
                ts, urn, o.side, r.qty, self._symbol, r.price * mult, o.tif, r.order_id,
                b"L", o.clordid, appendage=app)
        elif k == ReportKind.REJECTED:
            out = ouch.OrderRejected(ts, urn, ouch.REJECT_CODES.get(str(r.reason), 0),
                                     b"" if o is None else o.clordid)
        elif k == ReportKind.EXECUTED:
            out = ouch.OrderExecuted(ts, sess.by_id.get(r.order_id, urn), r.qty,
                                     r.price * mult, r.liquidity.encode(), r.match_number)
        elif k == ReportKind.CANCELED:
            reason = ouch.CANCEL_IOC if r.reason == Reason.IOC else ouch.CANCEL_USER
            out = ouch.OrderCanceled(ts, sess.by_id.get(r.order_id, urn), r.qty, reason)
        elif k == ReportKind.REPLACED and o is not None:
            orig = sess.replacing.pop(urn, 0)
            sess.by_id[r.order_id] = urn
            out = ouch.OrderReplaced(ts, orig, urn, o.side, r.leaves, self._symbol,
                                     r.price * mult, o.tif, r.order_id, b"L", o.clordid)
        elif k == ReportKind.CANCEL_REJECTED and urn in sess.replacing:
            sess.replacing.pop(urn)
            out = ouch.OrderRejected(ts, urn, ouch.REJECT_CODES.get(str(r.reason), 0),
                                     b"" if o is None else o.clordid)
        elif k == ReportKind.CANCEL_REJECTED:
            out = ouch.CancelReject(ts, urn)
        else:
            log.error("OUCH %r: report %s has no order of this session", sess.username, r)
            return
        self._send(sess, out.encode())

    def _send(self, sess: OuchSession, msg: bytes) -> None:
        sess.messages.append(msg)
        if sess.writer is not None and not sess.writer.is_closing():
            sess.writer.write(soupbin.sequenced(msg))


__all__ = ["OuchServer", "OuchSession"]
