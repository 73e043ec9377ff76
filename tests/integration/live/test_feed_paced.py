"""The venue paces packets by exchange time x speed and heartbeats while idle; an order
session hook's client-order activity is published in the same ITCH feed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from framework.book.l2 import l2_snapshot
from framework.book.l3 import O_QTY, l3_apply, l3_find
from framework.book.replay import replay_book_rows
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_LAST,
    KIND_ADD,
    KIND_DELETE,
    KIND_EXECUTE,
    EventArray,
)
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.venue.replay import ReplayDay, load_replay
from live.venue.server import Venue, VenueConfig
from tests.integration.live.feed_helpers import (
    check_rows,
    free_udp_port,
    handler_for,
    reference,
    venue_process,
)

DATE = dt.date(2024, 3, 1)
SPEED = 4000.0


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("tiny"))
    day = generate_day(date=DATE, n_events=1_000, seed=3, mode="l3")
    TickStore(root).write(day.instrument, DATE, day.events)
    return root


def test_packets_are_paced_by_exchange_time_and_idle_time_has_heartbeats(
    tiny_store: str, tmp_path: Path
) -> None:
    rep, ref = reference(tiny_store, "SIM", "SYN", DATE)
    h = handler_for(rep, rerequest_port=None, record_rows=rep.n_messages)
    ts = rep.events["exch_ts"]
    span_s = (int(ts[-1]) - int(ts[0])) / 1e9 / SPEED
    try:
        with venue_process(tiny_store, "SIM", "SYN", DATE, "--speed", str(SPEED), "--itch",
                           f"127.0.0.1:{h.port}", "--heartbeat", "0.05",
                           log=tmp_path / "venue.log"):
            while h.messages == 0:
                h.poll(timeout_s=0.05)
            t0 = time.monotonic()
            h.run_until_end(timeout_s=120)
            elapsed = time.monotonic() - t0
        check_rows(h, rep, ref)
    finally:
        h.close()
    # pacing can only make the replay slower than the schedule, never faster
    assert elapsed >= 0.8 * span_s
    assert h.heartbeats > 0


def test_max_rate_caps_the_messages_a_second_at_speed_max(tiny_store: str, tmp_path: Path) -> None:
    """--speed max --max-rate R: the whole day, in order, never faster than R a second."""
    rep, ref = reference(tiny_store, "SIM", "SYN", DATE)
    h = handler_for(rep, rerequest_port=None, record_rows=rep.n_messages)
    rate = 20_000.0
    try:
        with venue_process(tiny_store, "SIM", "SYN", DATE, "--speed", "max", "--max-rate",
                           str(rate), "--itch", f"127.0.0.1:{h.port}",
                           log=tmp_path / "venue.log"):
            while h.messages == 0:
                h.poll(timeout_s=0.05)
            t0 = time.monotonic()
            first = h.messages
            h.run_until_end(timeout_s=120)
            elapsed = time.monotonic() - t0
        check_rows(h, rep, ref)
    finally:
        h.close()
    # the first packets went out at once; the rest came no faster than the cap
    assert elapsed >= 0.9 * (rep.n_messages - first) / rate


class ClientOrders:
    """An order-session hook with one client: it rests a buy order at the first market
    message and has 3 of its 7 shares executed at the third."""

    OID = 2**62 + 12345

    def __init__(self, rep: ReplayDay) -> None:
        self.calls = 0
        self.price = int(rep.events["price"][rep.events["kind"] == KIND_ADD].min()) - 50
        self.closed = False

    def _row(self, events: EventArray, kind: int, qty: int) -> EventArray:
        ev = np.zeros(1, EVENT_DTYPE)
        ev["exch_ts"] = ev["local_ts"] = events["exch_ts"][-1]
        ev["kind"], ev["side"], ev["price"], ev["qty"] = kind, BUY, self.price, qty
        ev["order_id"], ev["flags"] = self.OID, FLAG_LAST
        return ev

    def on_market(self, events: EventArray) -> EventArray:
        self.calls += 1
        if self.calls == 1:
            return self._row(events, KIND_ADD, 7)
        if self.calls == 3:
            return self._row(events, KIND_EXECUTE, 3)
        return events[:0]

    def poll(self) -> EventArray:
        return np.zeros(0, EVENT_DTYPE)

    def close(self) -> None:
        self.closed = True


def test_an_order_hook_publishes_client_orders_in_the_feed(tiny_store: str) -> None:
    ts = TickStore(tiny_store)
    rep = load_replay(ts, "SIM", "SYN", DATE)
    hook = ClientOrders(rep)
    h = handler_for(rep, rerequest_port=None, record_rows=0)
    stop = threading.Event()
    cfg = VenueConfig(venue="SIM", symbol="SYN", date=DATE, speed=None,
                      itch=(("127.0.0.1", h.port),), rerequest_port=free_udp_port(),
                      linger_s=5.0)
    venue = Venue(cfg, rep, hook=hook, stop=stop)
    th = threading.Thread(target=venue.run)
    th.start()
    try:
        h.run_until_end(timeout_s=60)
    finally:
        stop.set()
        th.join(30)
        h.close()
    assert hook.closed
    assert hook.calls > 3
    meta, qty, ends, orders, table = h.book
    slot = l3_find(meta, orders, table, ClientOrders.OID)
    assert slot >= 0
    assert orders[slot, O_QTY] == 4
    # without the client's order the book is the stored day's
    l3_apply(meta, qty, ends, orders, table, KIND_DELETE, BUY, 0, 0, ClientOrders.OID)
    row = np.empty(40, np.int64)
    l2_snapshot(meta, qty, 10, row)
    ref = replay_book_rows(ts.read("SIM", "SYN", DATE), levels=10, l3=True)[-1]
    np.testing.assert_array_equal(row, ref)
