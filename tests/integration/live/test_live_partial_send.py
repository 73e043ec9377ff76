"""The runner's side of a partial send from the compiled hot path, over real loopback
sockets: the venue process's OUCH port stops reading now and then (``--ouch-stall``: a small
receive buffer, reading paused), the runner's order socket has a small send buffer, and a
compiled strategy keeps sending (``flood_ioc``) while the runner busy-polls. The compiled
sender's ``send(MSG_DONTWAIT)`` then takes part of a message (``RET_PARTIAL``): the runner
writes the rest first, then sends on by its Python path until the transport is empty.

What must hold: the partial path ran (the loop's returns say so), and the venue read every
order the runner journaled and booked, whole (nothing undecodable, no bad frame), in order
(UserRefNums must increase: no duplicate_ref reject) and once (accepted = sent), and each
got its answer (no order left pending in the runner's books).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path

import pytest

from framework.arena.state import REQ_NEW
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.feeds.itch_mold import MoldFeedHandler
from live.gateways.base import TERMINAL, OrderState
from live.gateways.ouch import OuchGateway
from live.journal import KIND_ORDER_OUT, JournalWriter, read
from live.runner import STREAM_SENT, LiveRunner, reference_of, request_of
from live.wire.itch_encode import price_qty_steps
from tests.integration.live.feed_helpers import free_udp_port, venue_process
from tests.integration.live.flood_ioc import FloodIOC
from tests.integration.live.live_helpers import DATE, free_tcp_port

pytestmark = pytest.mark.slow

TALLY_RE = re.compile(r"executions of ouch:u1: .*orders accepted (\d+) rejected (\d+)")


async def _session(runner: LiveRunner, gw: OuchGateway, duration_s: float) -> None:
    """The runner busy-polling for ``duration_s``; its order socket's send buffer made
    small as soon as the session is up (before the feed brings the first orders)."""
    async def small_send_buffer() -> None:
        while gw.socket_fd() < 0:
            await asyncio.sleep(0.001)
        with socket.socket(fileno=os.dup(gw.socket_fd())) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    task = asyncio.create_task(small_send_buffer())
    try:
        await runner.run(duration_s=duration_s, busy_poll=True, connect_timeout_s=60)
    finally:
        await asyncio.wait_for(task, 5)


def test_an_order_socket_that_fills_loses_doubles_and_garbles_nothing(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    day = generate_day(date=DATE, n_events=48_000, seed=7, mode="l3")
    TickStore(store).write(day.instrument, DATE, day.events)
    inst = TickStore(store).instrument("SIM", "SYN", DATE)
    price_step, qty_step = price_qty_steps(inst.tick_size, inst.lot_size)
    feed_port, rereq, port = free_udp_port(), free_udp_port(), free_tcp_port()
    feed = MoldFeedHandler(listen=("127.0.0.1", feed_port), date=DATE, price_step=price_step,
                           qty_step=qty_step, rerequest=("127.0.0.1", rereq))
    gw = OuchGateway("127.0.0.1", port, username="u1", password="pw", symbol="SYN",
                     price_mult=price_step)
    journal = JournalWriter(tmp_path / "journal", fsync="never")
    runner = LiveRunner(instrument=inst, strategies=[FloodIOC()], feed=feed, gateway=gw,
                        mode="compiled", journal=journal)
    venue_log = tmp_path / "venue.log"
    try:
        runner.prepare()  # compiled (or loaded) before the venue sends
        assert runner._hot is not None
        assert runner._hot.gateway is gw  # the loop sends the orders itself
        with venue_process(store, "SIM", "SYN", DATE, "--speed", "1200",
                           "--itch", f"127.0.0.1:{feed_port}", "--rerequest-port", str(rereq),
                           "--ouch-port", str(port), "--ouch-stall", "1500:1.5",
                           "--linger", "60", log=venue_log):
            asyncio.run(_session(runner, gw, 12.0))
        runner.finish()
    except BaseException:
        runner.engine.abort()
        raise
    finally:
        feed.close()
        journal.close()
    vlog = venue_log.read_text()
    hot = runner.hot_summary()
    assert hot is not None
    # the partial path ran: the socket took part of a message the loop wrote
    assert hot["returns"].get("partial", 0) >= 1, (hot, vlog[-2000:])
    # the venue read each one whole, in order, once: nothing undecodable or out of order
    for bad in ("bad frame", "undecodable", "unexpected packet"):
        assert bad not in vlog, vlog[vlog.find(bad) - 500 : vlog.find(bad) + 500]
    # no order refused; a cancel may cross its IOC order's end on the wire (the stop's
    # cancel-all): the venue refuses that one as done
    refused = [line for line in vlog.splitlines() if "rejected:" in line
               and not re.search(r"cancel of (\d+) rejected: order \1 is done", line)]
    assert not refused, refused[:5]
    assert "reading paused" in vlog
    # every new order the runner journaled (its UserRefNum with it) is booked, numbered
    # 1, 2, 3... in the order it was journaled
    urns = [int(reference_of(r.payload)) for r in read(tmp_path / "journal")
            if r.kind == KIND_ORDER_OUT and r.stream == STREAM_SENT
            and request_of(r.payload)["kind"] == REQ_NEW and reference_of(r.payload)]
    assert urns == list(range(1, len(urns) + 1))
    assert len(gw.orders) == len(urns) > 1000
    assert hot["sent"] > 0  # the loop wrote some of them itself, the Python path the others
    m = TALLY_RE.search(vlog)
    assert m is not None, vlog[-2000:]
    assert (int(m[1]), int(m[2])) == (len(urns), 0)
    # and answered each: nothing left pending in the runner's books, no message refused
    assert runner.violations == 0
    assert runner.unsent == 0
    states = {o.state for o in gw.orders.values()}
    assert states <= set(TERMINAL), states
    assert OrderState.CANCELLED in states
