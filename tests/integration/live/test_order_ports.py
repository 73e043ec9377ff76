"""OrderPorts as the venue loop's order hook: a synchronous loop that only calls poll() and
on_market() serves a gateway (in another thread, over 127.0.0.1) and gets the client
activity to publish."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from framework.core.events import BUY, FLAG_LAST, KIND_ADD, KIND_EXECUTE, make_events
from live.gateways.base import Ack, Fill, Side
from live.gateways.ouch import OuchGateway
from live.venue.matching import CLIENT_REF_BASE, Matcher
from live.venue.orders import OrderPorts


def ev(*rows: tuple[int, int, int, int, int]) -> np.ndarray:
    k, s, p, q, o = (list(c) for c in zip(*rows, strict=True))
    return make_events(exch_ts=[10**18] * len(rows), kind=k, side=s, price=p, qty=q,
                       order_id=o, flags=[FLAG_LAST] * len(rows))


def test_order_ports_serve_a_gateway_from_a_synchronous_venue_loop(tmp_path: Path) -> None:
    m = Matcher(capacity=64, n_ticks=256)
    m.on_market(ev((KIND_ADD, BUY, 100, 5, 1)))
    ports = OrderPorts(symbol="TEST", ouch_port=0, fix_port=0, matcher=m,
                       fix_store=tmp_path)
    assert ports.servers.ouch is not None
    port = ports.servers.ouch.port
    seen: dict[str, Any] = {}

    def client() -> None:
        async def main() -> None:
            g = OuchGateway("127.0.0.1", port, username="u", password="", symbol="TEST")
            await g.connect()
            g.submit(Side.BUY, 3, 100)
            seen["ack"] = await g.wait_for(Ack, 10)
            seen["fill"] = await g.wait_for(Fill, 10)
            await g.close()

        try:
            asyncio.run(asyncio.wait_for(main(), 20))
        except BaseException as e:  # reported by the main thread
            seen["error"] = e

    t = threading.Thread(target=client)
    t.start()
    published: list[np.ndarray] = []
    sent = False
    deadline = time.monotonic() + 20
    try:
        while t.is_alive() and time.monotonic() < deadline:  # the venue loop's idle turns
            published.append(ports.poll())
            if "ack" in seen and not sent:
                # the day: an order joins behind ours and is executed: ours fills first
                published.append(ports.on_market(ev((KIND_ADD, BUY, 100, 4, 70),
                                                    (KIND_EXECUTE, BUY, 100, 2, 70))))
                sent = True
            time.sleep(0.002)
    finally:
        t.join(10)
        ports.close()
    assert "error" not in seen, seen.get("error")
    assert isinstance(seen["fill"], Fill)
    assert (seen["fill"].qty, seen["fill"].leaves) == (2, 1)
    rows = np.concatenate(published)
    assert rows["kind"].tolist() == [KIND_ADD, KIND_EXECUTE]  # the client order, its fill
    assert (rows["order_id"] >= CLIENT_REF_BASE).all()
    assert rows["qty"].tolist() == [3, 2]
    ports.close()  # twice is harmless
