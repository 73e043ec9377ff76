"""An OUCH replace in flight when the run that sent it died, adopted by the next run's
gateway over real sockets on 127.0.0.1 (the venue's acceptor around a matcher): whatever
the venue did with it -- took it, refused it, never got it -- the adopted order ends in
the venue's state under the UserRefNum the venue knows it by, with no violation, and new
orders number past every UserRefNum the dead run used."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from live.gateways.base import (
    Ack,
    Canceled,
    CancelRejected,
    Connected,
    Event,
    Order,
    OrderState,
    Replaced,
    Side,
    TimeInForce,
    Violation,
)
from live.gateways.ouch import OuchGateway
from live.venue.orders import OrderServers, serve_orders
from tests.integration.live.live_helpers import dies as _die
from tests.integration.live.live_helpers import events_until as _until
from tests.integration.live.test_order_sessions import book


def _gateway(servers: OrderServers) -> OuchGateway:
    assert servers.ouch is not None
    return OuchGateway("127.0.0.1", servers.ouch.port, username="u1", password="pw",
                       symbol="TEST", price_mult=100, heartbeat_s=0.2, timeout_s=2.0)


@pytest.mark.parametrize("outcome", ["taken", "refused", "never sent"])
def test_an_adopted_replace_in_flight_ends_as_the_venue_says(outcome: str) -> None:
    async def main() -> None:
        servers = await serve_orders(book(), symbol="TEST", ouch_port=0, price_mult=100)
        assert servers.ouch is not None
        first, second = _gateway(servers), _gateway(servers)
        try:
            await first.connect()
            await first.wait_for(Connected)
            # post-only, below the ask (101): a replace to 101 would take, so is refused
            o = first.submit(Side.BUY, 5, 99, tif=TimeInForce.POST_ONLY)
            ack = await first.wait_for(Ack)
            assert isinstance(ack, Ack)
            old, applied = first.reference(o.key), first.applied
            new = first.next_reference(o.key, "replace")  # what the journal keeps first
            sess = servers.ouch.sessions["u1"]
            stored = len(sess.messages)
            if outcome != "never sent":
                first.replace(o.key, 101 if outcome == "refused" else 98, 3)
            await _die(first)  # (no await between the replace and the kill's cancel)
            while outcome != "never sent" and len(sess.messages) == stored:
                await asyncio.sleep(0.01)  # the venue answered, into its session's store
            # the next run: the order as its journal leaves it, the replace in flight
            rebuilt = Order(o.key, Side.BUY, 5, 99, tif=TimeInForce.POST_ONLY,
                            state=OrderState.PENDING_REPLACE, venue_id=ack.venue_id)
            rebuilt._back = OrderState.NEW
            second.adopt(rebuilt, old, replacing=new)
            second.resume_after(applied)
            await second.connect()
            seen: list[Event] = []
            if outcome == "taken":
                seen += await _until(second, Replaced)
                assert (rebuilt.state, rebuilt.price, rebuilt.qty) == (OrderState.NEW, 98, 3)
            elif outcome == "refused":
                seen += await _until(second, CancelRejected)
                assert isinstance(seen[-1], CancelRejected)
                assert seen[-1].replace
                assert (rebuilt.state, rebuilt.price, rebuilt.qty) == (OrderState.NEW, 99, 5)
            else:
                seen += await _until(second, Connected)
                assert second.forget_replace(o.key, new)
                assert (rebuilt.state, rebuilt.price, rebuilt.qty) == (OrderState.NEW, 99, 5)
            assert not second.forget_replace(o.key, new)  # answered (or forgotten): once
            # known by the UserRefNum the venue knows it by now
            venue_ref = sess.by_id[int(ack.venue_id)]
            assert second.reference(o.key) == str(venue_ref)
            assert venue_ref == int(new if outcome == "taken" else old)
            second.cancel(o.key)
            seen += await _until(second, Canceled)
            assert rebuilt.state == OrderState.CANCELLED
            # new orders number past the replace's UserRefNum, sent or not: the venue,
            # which takes increasing ones only, accepts the next
            nxt = second.submit(Side.BUY, 1, 97)
            seen += await _until(second, Ack)
            assert int(second.reference(nxt.key)) > int(new)
            assert not [e for e in seen if isinstance(e, Violation)], seen
        finally:
            await second.close()
            with contextlib.suppress(asyncio.CancelledError):
                await first.close()
            await servers.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
