"""OUCH and FIX order sessions over real sockets on 127.0.0.1: the gateways against the
venue's acceptors around a matcher (enter, partial and full fill, cancel, replace with
priority kept or lost, reject; disconnect mid-order, reconnect, replayed messages applied
once: no duplicate fill, no lost ack)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framework.core.errors import OrderError, VenueError
from framework.core.events import BUY, FLAG_LAST, KIND_ADD, KIND_EXECUTE, SELL, make_events
from live.gateways.base import (
    Ack,
    Canceled,
    CancelRejected,
    Connected,
    Disconnected,
    Fill,
    OrderGateway,
    OrderKind,
    OrderState,
    Rejected,
    Replaced,
    Side,
    TimeInForce,
    Timeout,
)
from live.gateways.fix import FixGateway
from live.gateways.ouch import OuchGateway
from live.venue.matching import Matcher
from live.venue.orders import OrderServers, serve_orders

PROTOCOLS = ["ouch", "fix"]


def ev(*rows: tuple[int, int, int, int, int]) -> np.ndarray:
    k, s, p, q, o = (list(c) for c in zip(*rows, strict=True))
    return make_events(exch_ts=[10**18] * len(rows), kind=k, side=s, price=p, qty=q,
                       order_id=o, flags=[FLAG_LAST] * len(rows))


def book() -> Matcher:
    """Bids 100 x (5 id1, 4 id2); asks 101 x 6 id4, 102 x 8 id5."""
    m = Matcher(capacity=64, n_ticks=256)
    m.on_market(ev((KIND_ADD, BUY, 100, 5, 1), (KIND_ADD, BUY, 100, 4, 2),
                   (KIND_ADD, SELL, 101, 6, 4), (KIND_ADD, SELL, 102, 8, 5)))
    return m


@asynccontextmanager
async def venue_and_gateway(proto: str, tmp: Path, **gw: Any) -> AsyncIterator[
        tuple[OrderServers, OrderGateway]]:
    published: list[np.ndarray] = []
    servers = await serve_orders(book(), symbol="TEST", ouch_port=0, fix_port=0,
                                 fix_store=tmp / "venue", price_mult=100, price_decimals=4,
                                 publish=published.append)
    g: OrderGateway
    if proto == "ouch":
        g = OuchGateway("127.0.0.1", servers.ouch.port, username="u1", password="pw",
                        symbol="TEST", price_mult=100, heartbeat_s=0.2, timeout_s=2.0, **gw)
    else:
        g = FixGateway("127.0.0.1", servers.fix.port, sender="CLI", target="HFTLAB",
                       symbol="TEST", store_dir=tmp / "client", heartbeat_s=1, price_mult=100,
                       price_decimals=4, timeout_s=2.0, **gw)
    try:
        await g.connect()
        assert isinstance(await g.wait_for(Connected), Connected)
        yield servers, g
    finally:
        await g.close()
        await servers.stop()


def run(proto: str, tmp: Path, body: Callable[[OrderServers, OrderGateway], Awaitable[None]],
        **gw: Any) -> None:
    async def main() -> None:
        async with venue_and_gateway(proto, tmp, **gw) as (servers, g):
            await body(servers, g)

    asyncio.run(asyncio.wait_for(main(), 60))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_enter_partial_fill_then_full_fill(proto: str, tmp_path: Path) -> None:
    async def body(servers: OrderServers, g: OrderGateway) -> None:
        o = g.submit(Side.BUY, 10, 101)
        ack = await g.wait_for(Ack)
        assert isinstance(ack, Ack)
        assert ack.key == o.key
        assert int(ack.venue_id) > 0
        f = await g.wait_for(Fill)
        assert isinstance(f, Fill)
        assert (f.qty, f.price, f.liquidity, f.leaves) == (6, 101, "R", 4)
        assert o.state == OrderState.PARTIALLY_FILLED
        assert servers.hub.matcher.open_order(int(ack.venue_id)) == (BUY, 101, 10, 4)
        # the day brings a seller at our price: it trades with our resting rest
        servers.hub.on_market(ev((KIND_ADD, SELL, 101, 9, 77)))
        f = await g.wait_for(Fill)
        assert isinstance(f, Fill)
        assert (f.qty, f.price, f.liquidity, f.leaves) == (4, 101, "A", 0)
        assert o.state == OrderState.FILLED
        assert o.filled == 10
        lat = g.latency.summary()  # measured per message in the gateway
        assert lat["encode_count"] == 1
        assert lat["decode_count"] >= 3
        assert 0 < lat["decode_ns_p50"] <= lat["decode_ns_max"]

    run(proto, tmp_path, body)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_cancel(proto: str, tmp_path: Path) -> None:
    async def body(servers: OrderServers, g: OrderGateway) -> None:
        o = g.submit(Side.SELL, 3, 105)
        ack = await g.wait_for(Ack)
        assert isinstance(ack, Ack)
        g.cancel(o.key)
        assert o.state == OrderState.PENDING_CANCEL
        c = await g.wait_for(Canceled)
        assert isinstance(c, Canceled)
        assert c.qty == 3
        assert o.state == OrderState.CANCELLED
        assert servers.hub.matcher.open_order(int(ack.venue_id)) is None

    run(proto, tmp_path, body)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_replace_keeps_priority_on_decrease_and_loses_it_on_increase(proto: str,
                                                                     tmp_path: Path) -> None:
    async def body(servers: OrderServers, g: OrderGateway) -> None:
        m = servers.hub.matcher
        o = g.submit(Side.BUY, 5, 100)
        ack = await g.wait_for(Ack)
        assert isinstance(ack, Ack)
        servers.hub.on_market(ev((KIND_ADD, BUY, 100, 3, 8)))  # joins behind us
        assert m.queue_ahead(int(ack.venue_id)) == 9
        g.replace(o.key, 100, 3)
        assert o.state == OrderState.PENDING_REPLACE
        r = await g.wait_for(Replaced)
        assert isinstance(r, Replaced)
        assert (r.price, r.qty, r.leaves) == (100, 3, 3)
        assert m.queue_ahead(int(ack.venue_id)) == 9  # kept
        g.replace(o.key, 100, 6)
        await g.wait_for(Replaced)
        assert m.queue_ahead(int(ack.venue_id)) == 12  # lost: now behind id8
        g.replace(o.key, 99, 6)
        r = await g.wait_for(Replaced)
        assert isinstance(r, Replaced)
        assert r.price == 99
        assert m.open_order(int(ack.venue_id)) == (BUY, 99, 6, 6)
        assert o.state == OrderState.NEW

    run(proto, tmp_path, body)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_reject_of_a_bad_order_and_of_a_cancel_of_a_dead_one(proto: str,
                                                           tmp_path: Path) -> None:
    async def body(servers: OrderServers, g: OrderGateway) -> None:
        o = g.submit(Side.BUY, 2, 101, tif=TimeInForce.POST_ONLY)  # would take: refused
        rej = await g.wait_for(Rejected)
        assert isinstance(rej, Rejected)
        assert "post_only" in rej.reason
        assert o.state == OrderState.REJECTED
        # a cancel that crosses a full fill on the wire: the venue refuses it
        o2 = g.submit(Side.SELL, 2, 103)
        await g.wait_for(Ack)
        servers.hub.on_market(ev((KIND_ADD, BUY, 103, 2, 40)))  # fills o2 at the venue
        assert o2.state == OrderState.NEW  # the fill is on its way, not read yet
        g.cancel(o2.key)
        f = await g.wait_for(Fill)
        assert isinstance(f, Fill)
        assert f.leaves == 0
        cr = await g.wait_for(CancelRejected)
        assert isinstance(cr, CancelRejected)
        assert cr.key == o2.key
        assert o2.state == OrderState.FILLED

    run(proto, tmp_path, body)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_disconnect_mid_order_no_lost_ack_no_duplicate_fill(proto: str,
                                                           tmp_path: Path) -> None:
    async def body(servers: OrderServers, g: OrderGateway) -> None:
        m = servers.hub.matcher
        writer = g._writer  # type: ignore[attr-defined]
        writer.transport.pause_reading()  # the ack will be sent but never read here
        o = g.submit(Side.BUY, 5, 99)
        for _ in range(200):
            if m.open_orders(f"{proto}:{'u1' if proto == 'ouch' else 'CLI'}"):
                break
            await asyncio.sleep(0.01)
        (vid,) = m.open_orders(f"{proto}:{'u1' if proto == 'ouch' else 'CLI'}")
        g.drop_connection()  # type: ignore[attr-defined]
        # while we are away the day executes an order behind us at 99: we fill
        servers.hub.on_market(ev((KIND_ADD, BUY, 99, 4, 30), (KIND_EXECUTE, BUY, 99, 3, 30)))
        assert m.open_order(vid) == (BUY, 99, 5, 2)
        assert isinstance(await g.wait_for(Connected, 10), Connected)
        ack = await g.wait_for(Ack)
        assert isinstance(ack, Ack)
        assert int(ack.venue_id) == vid
        f = await g.wait_for(Fill)
        assert isinstance(f, Fill)
        assert (f.qty, f.leaves) == (3, 2)
        # nothing is applied twice: a second drop and reconnect replays nothing new
        g.drop_connection()  # type: ignore[attr-defined]
        assert isinstance(await g.wait_for(Connected, 10), Connected)
        servers.hub.on_market(ev((KIND_ADD, BUY, 99, 1, 31), (KIND_EXECUTE, BUY, 99, 1, 31)))
        f2 = await g.wait_for(Fill)
        assert isinstance(f2, Fill)
        assert (f2.qty, f2.leaves) == (1, 1)
        await asyncio.sleep(0.3)
        late = []
        while not g.events.empty():
            late.append(g.events.get_nowait())
        assert not [e for e in late if isinstance(e, Fill | Ack)]
        assert o.filled == 4
        assert o.state == OrderState.PARTIALLY_FILLED

    run(proto, tmp_path, body, backoff=(0.02, 0.2))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_unanswered_request_times_out(proto: str, tmp_path: Path) -> None:
    async def body(servers: OrderServers, g: OrderGateway) -> None:
        g.tracker.timeout_s = 0.3
        writer = g._writer  # type: ignore[attr-defined]
        writer.transport.pause_reading()
        o = g.submit(Side.BUY, 1, 98)
        t = await g.wait_for(Timeout, 5)
        assert isinstance(t, Timeout)
        assert t.key == o.key
        assert t.state == OrderState.PENDING_NEW
        writer.transport.resume_reading()
        assert isinstance(await g.wait_for(Ack), Ack)

    run(proto, tmp_path, body)


def test_fix_sequence_numbers_survive_a_gateway_restart(tmp_path: Path) -> None:
    """A new gateway process with the same store logs on at the stored sequence numbers."""

    async def main() -> None:
        servers = await serve_orders(book(), symbol="TEST", fix_port=0,
                                     fix_store=tmp_path / "venue")
        try:
            for round_ in range(2):
                g = FixGateway("127.0.0.1", servers.fix.port, sender="CLI", target="HFTLAB",
                               symbol="TEST", store_dir=tmp_path / "client", heartbeat_s=1)
                await g.connect()
                g.submit(Side.BUY, 1, 90 + round_)
                assert isinstance(await g.wait_for(Ack), Ack)
                await g.close()
                seqs = (g.session.store.next_out, g.session.store.next_in)
            assert seqs[0] == 7  # 2 × (logon, order, logout): the second did not restart at 1
            st = servers.fix.sessions["CLI"].session.store
            assert st.next_in == seqs[0]
        finally:
            await servers.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_requests_while_disconnected_raise_and_leave_no_order(proto: str,
                                                              tmp_path: Path) -> None:
    g: OrderGateway = (
        OuchGateway("127.0.0.1", 9, username="u", password="p", symbol="TEST")
        if proto == "ouch" else
        FixGateway("127.0.0.1", 9, sender="A", target="B", symbol="TEST"))
    with pytest.raises(VenueError, match="not"):
        g.submit(Side.BUY, 1, 100)
    assert g.orders == {}


def test_ouch_takes_limit_orders_only() -> None:
    g = OuchGateway("127.0.0.1", 9, username="u", password="p", symbol="TEST")
    with pytest.raises(OrderError, match="limit orders only"):
        g.submit(Side.BUY, 1, 100, kind=OrderKind.MARKET)


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_reconnect_with_backoff_to_a_restarted_venue(proto: str, tmp_path: Path) -> None:
    """The venue goes away: the gateway retries (backing off) until one listens on the port
    again, logs on, and trades there (a new OUCH session numbers its messages from 1)."""

    async def main() -> None:
        servers = await serve_orders(book(), symbol="TEST", ouch_port=0, fix_port=0,
                                     fix_store=tmp_path / "venue")
        port = servers.ouch.port if proto == "ouch" else servers.fix.port
        g: OrderGateway = (
            OuchGateway("127.0.0.1", port, username="u1", password="pw", symbol="TEST",
                        heartbeat_s=0.2, backoff=(0.02, 0.2))
            if proto == "ouch" else
            FixGateway("127.0.0.1", port, sender="CLI", target="HFTLAB", symbol="TEST",
                       store_dir=tmp_path / "client", heartbeat_s=1, backoff=(0.02, 0.2)))
        await g.connect()
        g.submit(Side.BUY, 1, 95)
        await g.wait_for(Ack)
        if servers.ouch is not None:  # gone without an End of Session: a crash
            await servers.ouch.stop(end_session=False)
        if servers.fix is not None:
            await servers.fix.stop()
        await g.wait_for(Disconnected)
        await asyncio.sleep(0.5)  # several refused attempts
        kw = {"ouch_port": port} if proto == "ouch" else {"fix_port": port}
        servers = await serve_orders(book(), symbol="TEST", fix_store=tmp_path / "venue",
                                     **kw)  # type: ignore[arg-type]
        try:
            assert isinstance(await g.wait_for(Connected, 10), Connected)
            o = g.submit(Side.BUY, 2, 96)
            ack = await g.wait_for(Ack)
            assert isinstance(ack, Ack)
            assert ack.key == o.key
        finally:
            await g.close()
            await servers.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_ouch_end_of_session_stops_the_gateway(tmp_path: Path) -> None:
    async def main() -> None:
        servers = await serve_orders(book(), symbol="TEST", ouch_port=0)
        g = OuchGateway("127.0.0.1", servers.ouch.port, username="u1", password="pw",
                        symbol="TEST", backoff=(0.02, 0.05))
        await g.connect()
        await servers.stop()  # End of Session: the day is over for this session
        d = await g.wait_for(Disconnected)
        assert isinstance(d, Disconnected)
        assert "ended the session" in d.reason
        await asyncio.sleep(0.3)  # a retrying gateway would report refused connections here
        assert g.events.empty()
        assert not g.connected
        await g.close()

    asyncio.run(asyncio.wait_for(main(), 30))
