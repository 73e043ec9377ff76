"""The venue's order acceptors over real sockets on 127.0.0.1, spoken to byte by byte: logins
accepted and rejected, replay on re-login, heartbeats both ways, cancel on disconnect, and
malformed input (never a crash: a reject, or the end of that session only)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from framework.core.events import BUY, FLAG_LAST, KIND_ADD, SELL, make_events
from live.gateways.base import Ack, Canceled, Connected, Side
from live.gateways.fix import FixGateway
from live.venue.matching import Matcher
from live.venue.orders import OrderServers, serve_orders
from live.wire import fix, ouch, soupbin
from live.wire.fix_session import FixSession, SeqStore


def book() -> Matcher:
    m = Matcher(capacity=64, n_ticks=256)
    m.on_market(make_events(kind=[KIND_ADD, KIND_ADD], side=[BUY, SELL], price=[100, 101],
                            qty=[5, 5], order_id=[1, 2], flags=[FLAG_LAST] * 2,
                            exch_ts=[10**18] * 2))
    return m


#: every raw client writer a test opened, closed after the test
WRITERS: list[asyncio.StreamWriter] = []


def run(body: Callable[[OrderServers], Awaitable[None]], tmp: Path, **kw: object) -> None:
    async def main() -> None:
        servers = await serve_orders(book(), symbol="TEST", ouch_port=0, fix_port=0,
                                     fix_store=tmp, ouch_users={"u1": "pw", "u2": "pw"},
                                     **kw)  # type: ignore[arg-type]
        servers.ouch.heartbeat_s = 0.1
        servers.ouch.timeout_s = 1.5
        try:
            await body(servers)
        finally:
            await servers.stop()
            for w in WRITERS:
                w.close()
            WRITERS.clear()

    asyncio.run(asyncio.wait_for(main(), 60))


class Soup:
    """A raw SoupBinTCP client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer
        WRITERS.append(writer)
        self.rd = soupbin.SoupReader()
        self.packets: list[soupbin.Packet] = []

    @classmethod
    async def open(cls, port: int) -> Soup:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def next(self, ptype: bytes | None = None, timeout: float = 3.0) -> soupbin.Packet:
        end = time.monotonic() + timeout
        while True:
            while self.packets:
                p = self.packets.pop(0)
                if ptype is None or p.type == ptype:
                    return p
            data = await asyncio.wait_for(self.r.read(65536), max(0.01, end - time.monotonic()))
            if not data:
                raise ConnectionResetError("closed by the venue")
            self.packets += [p for p in self.rd.feed(data) if isinstance(p, soupbin.Packet)]

    async def login(self, user: str = "u1", pw: str = "pw", seq: int = 1,
                    session: str = "") -> soupbin.Packet:
        self.w.write(soupbin.login_request(user, pw, session, seq))
        p = await self.next()
        assert p.type in (soupbin.LOGIN_ACCEPTED, soupbin.LOGIN_REJECTED)
        return p

    def enter(self, urn: int, side: bytes = b"B", qty: int = 1, price: int = 99,
              symbol: str = "TEST") -> None:
        self.w.write(soupbin.unsequenced(ouch.encode_enter(
            urn, side, qty, ouch.pad_symbol(symbol), price, b"0", ouch.pad_clordid(f"c{urn}"))))

    async def message(self) -> ouch.Outbound:
        return ouch.decode_outbound((await self.next(soupbin.SEQUENCED)).payload)

    async def closed(self) -> bool:
        try:
            while True:
                await self.next(timeout=3.0)
        except ConnectionResetError:
            return True


# --- OUCH -------------------------------------------------------------------------------------
def test_ouch_login_rejections(tmp_path: Path) -> None:
    async def body(s: OrderServers) -> None:
        c = await Soup.open(s.ouch.port)
        p = await c.login(pw="wrong")
        assert (p.type, p.payload) == (soupbin.LOGIN_REJECTED, soupbin.REJECT_NOT_AUTHORIZED)
        c = await Soup.open(s.ouch.port)
        p = await c.login(session="OTHER")
        assert (p.type, p.payload) == (soupbin.LOGIN_REJECTED,
                                       soupbin.REJECT_SESSION_NOT_AVAILABLE)
        c = await Soup.open(s.ouch.port)
        c.w.write(soupbin.CLIENT_HEARTBEAT_PACKET)  # not a login: the venue hangs up
        assert await c.closed()

    run(body, tmp_path)


def test_ouch_replay_from_the_requested_sequence_number(tmp_path: Path) -> None:
    async def body(s: OrderServers) -> None:
        c = await Soup.open(s.ouch.port)
        acc = soupbin.decode_login_accepted((await c.login(seq=1)).payload)
        assert acc.sequence == 1
        c.enter(1)
        c.enter(2)
        first = [await c.message(), await c.message()]
        assert [type(m).__name__ for m in first] == ["OrderAccepted", "OrderAccepted"]
        c.w.write(soupbin.LOGOUT_REQUEST_PACKET)
        assert await c.closed()
        c = await Soup.open(s.ouch.port)
        acc = soupbin.decode_login_accepted((await c.login(seq=2)).payload)
        assert acc.sequence == 2
        m = await c.message()
        assert isinstance(m, ouch.OrderAccepted)
        assert m.user_ref_num == 2  # replayed from 2, not 1
        c.w.close()
        c = await Soup.open(s.ouch.port)
        acc = soupbin.decode_login_accepted((await c.login(seq=0)).payload)
        assert acc.sequence == 3  # 0: new messages only
        c.enter(3)
        m = await c.message()
        assert isinstance(m, ouch.OrderAccepted)
        assert m.user_ref_num == 3

    run(body, tmp_path)


def test_ouch_heartbeats_both_ways_and_a_silent_client_is_logged_out(tmp_path: Path) -> None:
    async def body(s: OrderServers) -> None:
        c = await Soup.open(s.ouch.port)
        await c.login()
        for _ in range(3):  # stay alive with client heartbeats, get the venue's
            await c.next(soupbin.SERVER_HEARTBEAT)
            c.w.write(soupbin.CLIENT_HEARTBEAT_PACKET)
        assert await c.closed()  # then silence: the venue ends the session

    run(body, tmp_path)


def test_ouch_malformed_input_never_crashes_the_venue(tmp_path: Path) -> None:
    async def body(s: OrderServers) -> None:
        c = await Soup.open(s.ouch.port)
        await c.login()
        c.w.write(b"\x00\x02Qx")  # unknown packet type: skipped
        c.w.write(soupbin.unsequenced(b"O\x00\x00\x00\x07garbage"))  # undecodable Enter
        m = await c.message()
        assert isinstance(m, ouch.OrderRejected)
        assert (m.user_ref_num, m.reason) == (7, ouch.REJECT_CODES["bad_message"])
        c.enter(8, symbol="NOPE")
        m = await c.message()
        assert isinstance(m, ouch.OrderRejected)
        assert m.reason == ouch.REJECT_CODES["unknown_symbol"]
        c.enter(8)  # UserRefNum 8 was used: not increasing
        m = await c.message()
        assert isinstance(m, ouch.OrderRejected)
        assert m.reason == ouch.REJECT_CODES["duplicate_ref"]
        c.enter(9)
        assert isinstance(await c.message(), ouch.OrderAccepted)  # the session goes on
        c.w.write(b"\x00\x00")  # zero length: unrecoverable, this session ends
        assert await c.closed()
        rng = random.Random(7)
        for _ in range(20):  # random garbage from other connections
            g = await Soup.open(s.ouch.port)
            g.w.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
            g.w.close()
        c = await Soup.open(s.ouch.port)
        assert (await c.login(user="u2")).type == soupbin.LOGIN_ACCEPTED
        c.enter(1)
        assert isinstance(await c.message(), ouch.OrderAccepted)

    run(body, tmp_path)


def test_ouch_cancel_on_disconnect(tmp_path: Path) -> None:
    async def body(s: OrderServers) -> None:
        c = await Soup.open(s.ouch.port)
        await c.login()
        c.enter(1)
        m = await c.message()
        assert isinstance(m, ouch.OrderAccepted)
        assert s.hub.matcher.open_order(m.order_ref) is not None
        c.w.transport.abort()
        for _ in range(100):
            if s.hub.matcher.open_order(m.order_ref) is None:
                break
            await asyncio.sleep(0.02)
        assert s.hub.matcher.open_order(m.order_ref) is None
        c = await Soup.open(s.ouch.port)
        await c.login(seq=2)
        m2 = await c.message()
        assert isinstance(m2, ouch.OrderCanceled)
        assert m2.quantity == 1

    run(body, tmp_path, cancel_on_disconnect=True)


def test_ouch_stall_stops_reading_until_the_clients_socket_fills_then_reads_on(
    tmp_path: Path
) -> None:
    """``stall=(2, 1.0)``: after two packets the port reads nothing for a second, so a
    client sending on fills its socket (a few kB: the receive buffer is kept small), where a
    reading port never lets it fill; then every message is read, whole and in order."""
    async def body(s: OrderServers) -> None:
        c = await Soup.open(s.ouch.port)
        await c.login()
        c.enter(1)
        c.enter(2)
        for urn in (1, 2):
            m = await c.message()
            assert isinstance(m, ouch.OrderAccepted)
            assert m.user_ref_num == urn
        raw = socket.socket(fileno=os.dup(c.w.get_extra_info("socket").fileno()))
        try:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            raw.setblocking(False)
            urn, written, rest = 2, 0, b""
            while written < 2 << 20:  # the loop runs between sends: a reading port reads
                urn += 1
                msg = soupbin.unsequenced(ouch.encode_enter(
                    urn, b"B", 1, ouch.pad_symbol("TEST"), 99, b"0", ouch.pad_clordid("c")))
                try:
                    n = raw.send(msg)
                except BlockingIOError:
                    n = 0
                written += n
                if n < len(msg):
                    rest = msg[n:]
                    break
                await asyncio.sleep(0)
        finally:
            raw.close()
        assert rest, f"the socket took {written} bytes and never filled"
        assert s.ouch.stalls >= 1
        c.w.write(rest)  # the rest of the message the socket took part of
        for want in range(3, urn + 1):
            m = await c.message()
            assert isinstance(m, ouch.OrderAccepted)
            assert m.user_ref_num == want

    run(body, tmp_path, ouch_stall=(2, 1.0))


# --- FIX --------------------------------------------------------------------------------------
class Fix:
    """A raw FIX client over a FixSession."""

    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter,
                 sender: str = "RAW") -> None:
        self.r, self.w = r, w
        WRITERS.append(w)
        self.s = FixSession(sender, "HFTLAB", SeqStore(), heartbeat_s=30,
                            clock=time.time_ns)
        self.app: list[fix.FixMessage] = []

    @classmethod
    async def open(cls, port: int, sender: str = "RAW") -> Fix:
        return cls(*await asyncio.open_connection("127.0.0.1", port), sender)

    def flush(self) -> None:
        self.w.write(self.s.take_output())

    async def until(self, cond: Callable[[], bool], timeout: float = 3.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            data = await asyncio.wait_for(self.r.read(65536), max(0.01, end - time.monotonic()))
            if not data:
                raise ConnectionResetError("closed by the venue")
            self.app += self.s.receive(data)
            self.flush()

    def order(self, cl: str, **over: object) -> None:
        fields = {11: cl, 55: "TEST", 54: 1, 60: "20240101-00:00:00", 38: 1, 40: 2, 44: 99}
        fields.update({int(k[1:]): v for k, v in over.items()})
        self.s.send(fix.NEW_ORDER_SINGLE, [(k, v) for k, v in fields.items() if v is not None])
        self.flush()

    def amend(self, msg_type: bytes, cl: str, orig: str, *, qty: int = 0,
              price: int = 0) -> None:
        """OrderCancelRequest, or OrderCancelReplaceRequest to ``qty`` @ ``price``."""
        fields: list[tuple[int, bytes | str | int | float]] = [
            (11, cl), (41, orig), (55, "TEST"), (54, 1), (60, "20240101-00:00:00")]
        if msg_type == fix.ORDER_CANCEL_REPLACE_REQUEST:
            fields += [(38, qty), (40, 2), (44, price)]
        self.s.send(msg_type, fields)
        self.flush()


def test_fix_logon_rules(tmp_path: Path) -> None:
    async def body(s: OrderServers) -> None:
        c = await Fix.open(s.fix.port)
        c.w.write(fix.encode(fix.HEARTBEAT, [], seq=1, sender="RAW", target="HFTLAB",
                             sending_time=fix.utc_timestamp(time.time_ns())))
        assert await c.r.read() == b""  # not a Logon: hung up
        for bad in ("../../etc", ".hidden", "a/b"):  # it would name a store directory
            c = await Fix.open(s.fix.port, sender=bad)
            c.s.logon()
            c.flush()
            assert await c.r.read() == b""
        # nothing made where the names point (beside this test's folder, or in it); the
        # folder's neighbours are other tests' (one's name holds "etc")
        assert not (tmp_path.parent / "etc").exists()
        assert not any(p.name == "etc" for p in tmp_path.rglob("*"))
        c = await Fix.open(s.fix.port, sender="STRANGER")
        c.s.logon()
        c.flush()
        with pytest.raises(ConnectionResetError):
            await c.until(lambda: False)
        assert c.s.received[fix.LOGOUT] == 1  # refused with a Logout that says why

    run(body, tmp_path / "v", fix_clients={"RAW"})


def test_fix_malformed_messages_get_rejects_not_crashes(tmp_path: Path) -> None:
    async def body(s: OrderServers) -> None:
        c = await Fix.open(s.fix.port)
        c.s.logon()
        c.flush()
        await c.until(lambda: c.s.logged_on)
        c.w.write(b"8=FIX.4.4\x019=5\x01garbage" + bytes(range(40)))  # garbled: ignored
        c.order("a", _11=None)  # no ClOrdID
        await c.until(lambda: c.s.received[fix.REJECT] == 1)
        c.s.send(b"Z", [(1, "x")])  # a MsgType the venue does not take
        c.flush()
        await c.until(lambda: c.s.received[fix.REJECT] == 2)
        c.order("b", _44="abc")  # a price that is not a number
        await c.until(lambda: c.s.received[fix.REJECT] == 3)
        c.order("c", _55="NOPE")  # unknown symbol: an ExecutionReport reject
        await c.until(lambda: len(c.app) == 1)
        assert c.app[0].get(150) == b"8"
        c.order("d")
        await c.until(lambda: len(c.app) == 2)
        assert c.app[1].get(150) == b"0"  # the session goes on
        sent = s.fix.sessions["RAW"].session
        assert sent.bad_frames >= 1
        assert len(s.hub.matcher.open_orders("fix:RAW")) == 1

    run(body, tmp_path / "v")


def test_fix_cancel_on_disconnect(tmp_path: Path) -> None:
    async def body(s: OrderServers) -> None:
        g = FixGateway("127.0.0.1", s.fix.port, sender="COD", target="HFTLAB", symbol="TEST",
                       store_dir=tmp_path / "g", heartbeat_s=1, cancel_on_disconnect=True,
                       backoff=(0.05, 0.1))
        await g.connect()
        o = g.submit(Side.BUY, 2, 99)
        assert isinstance(await g.wait_for(Ack), Ack)
        g.drop_connection()
        assert isinstance(await g.wait_for(Connected), Connected)
        c = await g.wait_for(Canceled)  # the venue's cancel, resent after the re-logon
        assert isinstance(c, Canceled)
        assert c.key == o.key
        assert s.hub.matcher.open_orders("fix:COD") == []
        await g.close()

    run(body, tmp_path / "v")


def test_ouch_gateway_cancel_on_disconnect_on_reconnect(tmp_path: Path) -> None:
    """The gateway's own opt-in: after a reconnect it cancels what is still open."""
    from live.gateways.ouch import OuchGateway

    async def body(s: OrderServers) -> None:
        g = OuchGateway("127.0.0.1", s.ouch.port, username="u1", password="pw", symbol="TEST",
                        heartbeat_s=0.1, cancel_on_disconnect=True, backoff=(0.05, 0.1))
        await g.connect()
        o = g.submit(Side.SELL, 3, 105)
        assert isinstance(await g.wait_for(Ack), Ack)
        g.drop_connection()
        c = await g.wait_for(Canceled)
        assert isinstance(c, Canceled)
        assert c.key == o.key
        assert s.hub.matcher.open_orders("ouch:u1") == []
        await g.close()

    run(body, tmp_path)


def test_published_rows_are_event_records(tmp_path: Path) -> None:
    """Client activity from order calls reaches the feed hook as EVENT_DTYPE rows."""
    rows: list[np.ndarray] = []

    async def body(s: OrderServers) -> None:
        c = await Soup.open(s.ouch.port)
        await c.login()
        c.enter(1, qty=2, price=99)
        await c.message()
        assert len(rows) == 1
        assert rows[0]["kind"].tolist() == [KIND_ADD]
        assert rows[0]["price"].tolist() == [99]

    run(body, tmp_path, publish=rows.append)


# --- requests naming an order that is not live under that name -------------------------------
#: every way a name stops naming a live order (or never did), as the client's steps
DEAD = ["replaced", "replaced_twice", "cancelled", "filled", "expired", "rejected", "never"]


async def _ouch_dead(c: Soup, how: str) -> tuple[int, int]:
    """Make UserRefNum 1.. stop being live as ``how`` says; returns (the dead one, the last
    UserRefNum used)."""
    def send(msg: ouch.Inbound) -> None:
        c.w.write(soupbin.unsequenced(msg.encode()))

    if how == "never":
        return 7, 0
    if how == "rejected":
        c.enter(1, symbol="NOPE")
        assert isinstance(await c.message(), ouch.OrderRejected)
        return 1, 1
    if how == "expired":  # an IOC that does not cross: its rest is cancelled at once
        send(ouch.EnterOrder(1, b"B", 1, b"TEST", 99, ouch.TIF_IOC))
    else:
        c.enter(1, qty=1, price=101 if how == "filled" else 99)  # 101 takes the ask
    assert isinstance(await c.message(), ouch.OrderAccepted)
    if how in ("filled", "expired"):
        assert isinstance(await c.message(), ouch.OrderExecuted if how == "filled"
                          else ouch.OrderCanceled)
        return 1, 1
    if how == "cancelled":
        send(ouch.CancelOrder(1))
        assert isinstance(await c.message(), ouch.OrderCanceled)
        return 1, 1
    send(ouch.ReplaceOrder(1, 2, 2, 98))
    assert isinstance(await c.message(), ouch.OrderReplaced)
    if how == "replaced":
        return 1, 2
    send(ouch.ReplaceOrder(2, 3, 3, 97))
    assert isinstance(await c.message(), ouch.OrderReplaced)
    return 2, 3  # the middle one: retired too


@pytest.mark.parametrize("how", DEAD)
def test_ouch_cancel_and_replace_naming_a_dead_user_ref_num_change_nothing(
        tmp_path: Path, how: str) -> None:
    """A Cancel or Replace Order naming a UserRefNum no order is live under -- retired by a
    replace (the order lives on under the new one), its order cancelled, filled or expired,
    rejected, never used -- is refused and acts on nothing."""
    async def body(s: OrderServers) -> None:
        c = await Soup.open(s.ouch.port)
        await c.login()
        dead, last = await _ouch_dead(c, how)
        m = s.hub.matcher
        before = [(oid, m.live_token("ouch:u1", oid), m.open_order(oid))
                  for oid in m.open_orders("ouch:u1")]
        c.w.write(soupbin.unsequenced(ouch.CancelOrder(dead).encode()))
        cr = await c.message()
        assert isinstance(cr, ouch.CancelReject), cr
        assert cr.user_ref_num == dead
        c.w.write(soupbin.unsequenced(ouch.CancelOrder(dead, 1).encode()))  # a reduction too
        assert isinstance(await c.message(), ouch.CancelReject)
        c.w.write(soupbin.unsequenced(ouch.ReplaceOrder(dead, last + 1, 1, 96).encode()))
        rj = await c.message()
        assert isinstance(rj, ouch.OrderRejected), rj
        assert (rj.user_ref_num, rj.reason) == (last + 1, ouch.REJECT_CODES["unknown_order"])
        after = [(oid, m.live_token("ouch:u1", oid), m.open_order(oid))
                 for oid in m.open_orders("ouch:u1")]
        assert after == before  # nothing changed: no cancel, no rename, no new price
        if how.startswith("replaced"):  # the order goes on under its live UserRefNum
            [(_, token, state)] = after
            assert token == str(last)
            c.w.write(soupbin.unsequenced(ouch.CancelOrder(last).encode()))
            done = await c.message()
            assert isinstance(done, ouch.OrderCanceled)
            assert (done.user_ref_num, done.quantity) == (last, state[3])
            assert m.open_orders("ouch:u1") == []

    run(body, tmp_path)


async def _fix_dead(c: Fix, how: str) -> str:
    """Make ClOrdID ``a`` (or a later one of its chain) stop naming a live order as ``how``
    says; returns the dead ClOrdID."""
    if how == "never":
        return "zz"
    n = len(c.app)
    if how == "rejected":
        c.order("a", _55="NOPE")
    elif how == "expired":
        c.order("a", _59=3)
    else:
        c.order("a", _44=101 if how == "filled" else 99)
    want = {"rejected": 1, "expired": 2, "filled": 2}.get(how, 1)
    await c.until(lambda: len(c.app) >= n + want)
    assert c.app[-1].get(150) == {"rejected": b"8", "expired": b"4", "filled": b"F"}.get(
        how, b"0")
    if how in ("rejected", "expired", "filled"):
        return "a"
    if how == "cancelled":
        c.amend(fix.ORDER_CANCEL_REQUEST, "b", "a")
        await c.until(lambda: len(c.app) >= n + 2)
        assert c.app[-1].get(150) == b"4"
        return "a"
    c.amend(fix.ORDER_CANCEL_REPLACE_REQUEST, "b", "a", qty=2, price=98)
    await c.until(lambda: len(c.app) >= n + 2)
    assert c.app[-1].get(150) == b"5"
    if how == "replaced":
        return "a"
    c.amend(fix.ORDER_CANCEL_REPLACE_REQUEST, "c", "b", qty=3, price=97)
    await c.until(lambda: len(c.app) >= n + 3)
    assert c.app[-1].get(150) == b"5"
    return "b"


@pytest.mark.parametrize("how", DEAD)
def test_fix_cancel_and_replace_naming_a_dead_cl_ord_id_change_nothing(
        tmp_path: Path, how: str) -> None:
    """The FIX port's rule is the same: OrigClOrdID must be the order's ClOrdID now (FIX:
    the previous request's); a retired one, or an order that is done, gets an
    OrderCancelReject and nothing changes."""
    async def body(s: OrderServers) -> None:
        c = await Fix.open(s.fix.port)
        c.s.logon()
        c.flush()
        await c.until(lambda: c.s.logged_on)
        dead = await _fix_dead(c, how)
        m = s.hub.matcher
        before = [(oid, m.live_token("fix:RAW", oid), m.open_order(oid))
                  for oid in m.open_orders("fix:RAW")]
        n = len(c.app)
        c.amend(fix.ORDER_CANCEL_REQUEST, "x1", dead)
        c.amend(fix.ORDER_CANCEL_REPLACE_REQUEST, "x2", dead, qty=1, price=96)
        await c.until(lambda: len(c.app) >= n + 2)
        done = how in ("cancelled", "filled", "expired")
        for got, cl, to in zip(c.app[n:], ("x1", "x2"), (b"1", b"2"), strict=True):
            assert got.msg_type == fix.ORDER_CANCEL_REJECT, got
            assert (got.get(11), got.get(41), got.get(434)) == (cl.encode(), dead.encode(), to)
            assert got.get(102) == (b"0" if done else b"1")
        after = [(oid, m.live_token("fix:RAW", oid), m.open_order(oid))
                 for oid in m.open_orders("fix:RAW")]
        assert after == before
        if how.startswith("replaced"):  # the order goes on under its ClOrdID now
            [(_, token, _)] = after
            assert token == {"replaced": "b", "replaced_twice": "c"}[how]
            c.amend(fix.ORDER_CANCEL_REQUEST, "x3", token)
            await c.until(lambda: len(c.app) >= n + 3)
            assert (c.app[-1].get(150), c.app[-1].get(41)) == (b"4", token.encode())
            assert m.open_orders("fix:RAW") == []

    run(body, tmp_path / "v")
