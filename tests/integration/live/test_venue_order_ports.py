"""`hftlab venue --ouch-port/--fix-port`: the venue process takes orders over OUCH and FIX while it
replays a stored day, and matches them against the replayed book (gateways over real sockets)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from pathlib import Path

import pytest

from framework.core.errors import VenueError
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.gateways.base import Ack, Fill, OrderGateway, Side
from live.gateways.fix import FixGateway
from live.gateways.ouch import OuchGateway
from live.venue.replay import load_replay
from tests.integration.live.feed_helpers import free_udp_port, venue_process

DATE = dt.date(2024, 3, 1)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("ports"))
    day = generate_day(date=DATE, n_events=3_000, seed=5, mode="l3")
    TickStore(root).write(day.instrument, DATE, day.events)
    return root


async def _connect(g: OrderGateway, timeout: float = 20.0) -> None:
    """Connect once the venue's port is open (the process loads the day first)."""
    end = time.monotonic() + timeout
    while True:
        try:
            await g.connect()
            return
        except (OSError, VenueError):  # not listening yet
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("proto", ["ouch", "fix"])
def test_a_marketable_order_fills_against_the_replayed_book(
    store: str, tmp_path: Path, proto: str
) -> None:
    rep = load_replay(TickStore(store), "SIM", "SYN", DATE)
    top = int(rep.events["price"].max()) + 50  # above every ask of the day: marketable
    port = free_tcp_port()
    opt = "--ouch-port" if proto == "ouch" else "--fix-port"
    with venue_process(
        store,
        "SIM",
        "SYN",
        DATE,
        "--speed",
        "20",
        "--itch",
        f"127.0.0.1:{free_udp_port()}",
        opt,
        str(port),
        "--fix-store",
        str(tmp_path / "fix"),
        "--linger",
        "30",
        log=tmp_path / "venue.log",
    ):

        async def main() -> None:
            g: OrderGateway
            if proto == "ouch":
                g = OuchGateway(
                    "127.0.0.1",
                    port,
                    username="u1",
                    password="pw",
                    symbol="SYN",
                    price_mult=rep.price_step,
                    timeout_s=5.0,
                )
            else:
                g = FixGateway(
                    "127.0.0.1",
                    port,
                    sender="CLI",
                    target="HFTLAB",
                    symbol="SYN",
                    store_dir=tmp_path / "client",
                    heartbeat_s=1,
                    price_mult=rep.price_step,
                    price_decimals=4,
                    timeout_s=5.0,
                )
            await _connect(g)
            try:
                await asyncio.sleep(0.5)  # some of the day is replayed: a book to trade with
                o = g.submit(Side.BUY, 1, top)
                assert isinstance(await g.wait_for(Ack, 10), Ack)
                f = await g.wait_for(Fill, 10)
                assert isinstance(f, Fill)
                assert f.qty == 1
                assert f.price < top  # at the resting ask's price, not our limit
                assert f.liquidity == "R"
                assert o.filled == 1
            finally:
                await g.close()

        asyncio.run(asyncio.wait_for(main(), 60))
    assert "order ports:" in (tmp_path / "venue.log").read_text()
