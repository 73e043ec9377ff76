"""The FIX counterpart of test_ouch_adopt_replace: an OrderCancelReplaceRequest in flight
when the run that sent it died, adopted by the next run's gateway (same session store) over
real sockets on 127.0.0.1. Whatever the venue did with it -- took it, refused it, never got
it (and maybe filled the order meanwhile) -- the venue's resend after the next Logon settles
it: the order ends in the venue's state under the ClOrdID the venue knows it by (a cancel
under any other the venue refuses), a replace that never left is known as such, no
violation, and the next ClOrdIDs are new to the venue."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from framework.core.events import KIND_ADD, SELL
from live.gateways.base import (
    Ack,
    Canceled,
    CancelRejected,
    Connected,
    Event,
    Fill,
    Order,
    OrderState,
    Replaced,
    Side,
    TimeInForce,
    Violation,
)
from live.gateways.fix import FixGateway
from live.venue.orders import OrderServers, serve_orders
from tests.integration.live.live_helpers import dies as _die
from tests.integration.live.live_helpers import events_until as _until
from tests.integration.live.test_order_sessions import book, ev


def _gateway(servers: OrderServers, store: Path, prefix: str) -> FixGateway:
    assert servers.fix is not None
    return FixGateway("127.0.0.1", servers.fix.port, sender="CLI", target="HFTLAB",
                      symbol="TEST", store_dir=store, price_mult=100, heartbeat_s=1,
                      timeout_s=2.0, backoff=(0.05, 0.1), cl_prefix=prefix)


@pytest.mark.parametrize("outcome", ["taken", "refused", "never sent", "never sent, filled"])
def test_an_adopted_fix_replace_in_flight_ends_as_the_venue_says(outcome: str,
                                                                tmp_path: Path) -> None:
    async def main() -> None:
        servers = await serve_orders(book(), symbol="TEST", fix_port=0, price_mult=100,
                                     fix_store=tmp_path / "venue")
        assert servers.fix is not None
        store = tmp_path / "client"
        first = _gateway(servers, store, "r1-")
        second: FixGateway | None = None
        try:
            await first.connect()
            # post-only, below the ask (101): a replace to 101 would take, so is refused
            o = first.submit(Side.BUY, 5, 99, tif=TimeInForce.POST_ONLY)
            ack = await first.wait_for(Ack)
            assert isinstance(ack, Ack)
            old, applied = first.reference(o.key), first.applying
            new = first.next_reference(o.key, "replace")  # what the journal keeps first
            st = servers.fix.sessions["CLI"]
            answered = st.session.store.next_out
            sent = not outcome.startswith("never sent")
            if sent:
                first.replace(o.key, 101 if outcome == "refused" else 98, 3)
            await _die(first)  # (no await between the replace and the kill's cancel)
            if outcome == "never sent, filled":  # the day trades through it meanwhile
                servers.hub.on_market(ev((KIND_ADD, SELL, 99, 5, 50)))
            while (sent or outcome.endswith("filled")) and \
                    st.session.store.next_out == answered:
                await asyncio.sleep(0.01)  # the venue answered, into its session's store
            first.session.store.close()
            # the next run: its own ClOrdID prefix, the order as its journal leaves it, the
            # replace in flight
            second = _gateway(servers, store, "r2-")
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
            elif outcome == "never sent":
                seen += await _until(second, Connected)
                for _ in range(200):  # the resend (nothing about the order) is applied
                    if not second.catching_up():
                        break
                    await asyncio.sleep(0.01)
                assert second.forget_replace(o.key, new)
                assert (rebuilt.state, rebuilt.price, rebuilt.qty) == (OrderState.NEW, 99, 5)
            else:  # the resend fills the order; nothing names the replace: it never left
                seen += await _until(second, Fill)
                assert rebuilt.state == OrderState.FILLED
                assert second.forget_replace(o.key, new)
                assert rebuilt.state == OrderState.FILLED
            assert not second.forget_replace(o.key, new)  # answered (or forgotten): once
            if rebuilt.state == OrderState.FILLED:
                assert servers.hub.matcher.open_orders("fix:CLI") == []
                assert not [e for e in seen if isinstance(e, Violation)], seen
                return
            # known by the ClOrdID the venue knows it by now
            venue_cl = st.by_id[int(ack.venue_id)].clordid
            assert second.reference(o.key) == venue_cl
            assert venue_cl == (new if outcome == "taken" else old)
            second.cancel(o.key)  # the venue refuses a cancel naming any other ClOrdID
            seen += await _until(second, Canceled)
            assert rebuilt.state == OrderState.CANCELLED
            assert servers.hub.matcher.open_orders("fix:CLI") == []
            nxt = second.submit(Side.BUY, 1, 97)
            seen += await _until(second, Ack)
            assert second.reference(nxt.key) not in (old, new)
            assert not [e for e in seen if isinstance(e, Violation)], seen
        finally:
            if second is not None:
                await second.close()
            with contextlib.suppress(asyncio.CancelledError):
                await first.close()
            await servers.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
