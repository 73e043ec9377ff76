"""The live tick path (live.fastpath, Engine.push_rows) against the paths it stands in for:
the same packets over 127.0.0.1 give the same book, events, counters and engine window
through the compiled batch path as through the feed handler's own path, whatever the
batch holds (heartbeats, duplicates, a gap, garbage, books that must grow), and with the
path warmed on scratch state between packets; the events the handler's own path gives
are made level rows by one compiled call (EventLevels) as by numpy and L3ToL2."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Callable

import numpy as np
import pytest

from framework.arena.state import H_CB_DATA, H_EV_PTR
from framework.book.project import L3ToL2
from framework.core.events import EVENT_DTYPE
from framework.core.instrument import Instrument
from framework.engine.engine import Engine
from framework.ingest.synthetic import generate_day
from framework.kernel.seam import REQUEST_DTYPE
from framework.strategy.spec import strategies_from_words
from live.fastpath import EventLevels, FastFeed, RequestDrain
from live.feeds.itch_mold import BAD_PACKET_REASONS, MoldFeedHandler
from live.feeds.itch_mold_nb import PKT_SEQ_RANGE
from live.wire.itch_encode import ItchEncoder, price_qty_steps
from live.wire.moldudp64 import encode_heartbeat, encode_packet

DATE = dt.date(2024, 3, 1)
SESSION = "FASTPATH01"


def _day_packets(n_events: int = 1500, per: int = 20) -> tuple[list[bytes], int, int]:
    day = generate_day(date=DATE, n_events=n_events, seed=11, mode="l3")
    step, lot = price_qty_steps(day.instrument.tick_size, day.instrument.lot_size)
    enc = ItchEncoder(date=DATE, symbol="SYN", price_step=step, qty_step=lot)
    msgs = enc.encode(day.events, preamble=True).messages()
    pkts, seq = [], 1
    for k in range(0, len(msgs), per):
        chunk = msgs[k : k + per]
        pkts.append(encode_packet(SESSION, seq, chunk))
        seq += len(chunk)
    return pkts, step, lot


def _own(ev: np.ndarray, locate: int) -> np.ndarray:
    """What the runner makes of the handler's events (LiveRunner._on_events)."""
    rows = ev[ev["instrument"] == locate].astype(EVENT_DTYPE, copy=True)
    rows["instrument"] = 0
    rows["exch_ts"] = rows["local_ts"]
    return rows


def _script(pkts: list[bytes]) -> list[bytes]:
    """The packets as a venue might deliver them: a duplicate, heartbeats, garbage, a
    sequence number past int64 (a damaged header), a packet held back past the next (a
    gap, filled by its late arrival)."""
    beat = encode_heartbeat(SESSION, int.from_bytes(pkts[5][10:18], "big"))
    wild = pkts[8][:10] + (1 << 63).to_bytes(8, "big") + pkts[8][18:]
    return [*pkts[:5], pkts[3], beat, b"garbage" * 3, *pkts[5:8], wild, *pkts[8:20], pkts[21],
            pkts[20], *pkts[22:]]


def _run(pkts: list[bytes], handler: MoldFeedHandler,
         poll: Callable[[], int]) -> None:
    end = int.from_bytes(pkts[-1][10:18], "big") + int.from_bytes(pkts[-1][18:20], "big")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for k, p in enumerate(_script(pkts)):
            tx.sendto(p, ("127.0.0.1", handler.port))
            if k % 7 == 0:  # batches of varying size
                poll()
    deadline = time.monotonic() + 20
    while handler.expected < end:
        assert time.monotonic() < deadline, "the packets did not all arrive"
        poll()


def _handler(step: int, lot: int, book_capacity: int) -> MoldFeedHandler:
    h = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE, price_step=step, qty_step=lot,
                        record_rows=4096, book_capacity=book_capacity, gap_timeout_s=30.0)
    h.warm_up()
    return h


@pytest.mark.parametrize(("book_capacity", "levels_capacity", "scratch", "tap"), [
    (1 << 16, 1 << 16, 4096, False),  # the common case: the handler's receive loop
    (8, 1 << 16, 4096, False),  # the handler's book grows mid-batch
    (1 << 16, 8, 4096, False),  # the projector's book grows mid-batch
    (1 << 16, 1 << 16, 4, False),  # more events in a batch than the scratch rows
    (1 << 16, 1 << 16, 4096, True),  # packets journaled as read: read in Python
    (8, 8, 4, True),  # and every rare end at once
])
def test_the_compiled_batch_path_matches_the_handlers_own(
        book_capacity: int, levels_capacity: int, scratch: int, tap: bool) -> None:
    pkts, step, lot = _day_packets()
    slow = _handler(step, lot, book_capacity)
    fast = _handler(step, lot, book_capacity)
    try:
        slow_rows: list[np.ndarray] = []
        slow_levels = L3ToL2(capacity=levels_capacity)
        slow.on_events = lambda ev: slow_rows.append(slow_levels(_own(ev, slow.locate)))
        _run(pkts, slow, lambda: slow.poll(0.0))

        fast_rows: list[np.ndarray] = []
        ff = FastFeed(fast, L3ToL2(capacity=levels_capacity), scratch_rows=scratch)
        ff.warm_up()
        # the handler's own path (first packet, the gap) hands its events over as before,
        # and the runner makes them level rows in one compiled call (the same projector)
        el = EventLevels(ff.levels, scratch_rows=scratch)

        def on_events(ev: np.ndarray) -> None:
            n, _ = el(ev, fast.locate)
            fast_rows.append(el.rows[:n].copy())

        fast.on_events = on_events
        tapped: list[bytes] = []
        if tap:  # as the runner's journal: every packet, as read
            fast.on_packet = lambda pkt, _ts: tapped.append(bytes(pkt))

        warmed: list[bool] = []

        def poll() -> int:
            warmed.append(ff.warm())  # scratch state only: nothing of the handler's changes
            n = ff.poll()
            fast_rows.append(ff.rows[: ff.n_rows].copy())
            return n

        _run(pkts, fast, poll)
        assert ff.fast_batches > 0
        # through the receive loop, a warm whose scratch datagram the loopback had not
        # delivered yet does not run: it runs at the next
        assert all(warmed) if tap else any(warmed)
        for name in ("expected", "messages", "packets", "heartbeats", "gaps", "n_rows"):
            assert getattr(fast, name) == getattr(slow, name), name
        assert +fast.bad == +slow.bad
        assert +fast.bad == {  # the garbage, the damaged header
            "a message block runs past the end of the packet": 1,
            BAD_PACKET_REASONS[PKT_SEQ_RANGE]: 1}
        assert tapped == (_script(pkts) if tap else [])
        np.testing.assert_array_equal(fast.recorded()[0], slow.recorded()[0])
        np.testing.assert_array_equal(fast.recorded()[1], slow.recorded()[1])
        got, want = np.concatenate(fast_rows), np.concatenate(slow_rows)
        assert len(got) > len(pkts)
        assert len(got) == len(want)
        # the receive times (and the queue times taken from them) are each handler's own
        for name in ("instrument", "kind", "side", "price", "qty", "flags"):
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        assert (got["exch_ts"] == got["local_ts"]).all()
    finally:
        slow.close()
        fast.close()


def _engine(inst: Instrument) -> Engine:
    return Engine(instruments=[inst], strategies=strategies_from_words(
        ["one_tick_mm"]), mode="compiled", venue="external", clock="wall")


def test_push_rows_is_push() -> None:
    """The compiled window append leaves the engine as push() does: the window, the
    header words the loop reads, late rows lifted to the latest time and counted."""
    day = generate_day(date=DATE, n_events=400, seed=5, mode="l2")
    ev = day.events.copy()
    lt = ev["local_ts"]
    lt[7::7] = lt[6:-1:7][: len(lt[7::7])] - 5  # late rows: earlier than the row before
    a, b = _engine(day.instrument), _engine(day.instrument)
    for eng in (a, b):
        eng.start(at=int(ev["local_ts"][0]))
    buf = np.zeros(len(ev), EVENT_DTYPE)
    # the first push grows the window's buffer (push's own path); the rest fit in it
    for k0, k1 in [(0, 200), *((k, k + 25) for k in range(200, len(ev), 25))]:
        chunk = ev[k0:k1]
        a.push(chunk)
        buf[: len(chunk)] = chunk
        b.push_rows(buf, len(chunk))
        assert a.window.tobytes() == b.window.tobytes()
        ha, hb = a.st.h.copy(), b.st.h.copy()
        # each engine's own buffers: its window, its compiled callbacks' data
        ha[H_EV_PTR] = hb[H_EV_PTR] = ha[H_CB_DATA] = hb[H_CB_DATA] = 0
        np.testing.assert_array_equal(ha, hb)
        assert a.late_events == b.late_events > 0
        t = int(chunk["local_ts"].max())
        assert a.advance(until=t) == b.advance(until=t)
        assert a.drain_requests().tobytes() == b.drain_requests().tobytes()
    for eng in (a, b):
        eng.abort()


def test_a_reserved_window_takes_larger_batches_in_place() -> None:
    """Engine.reserve_window (the live loop's, before its first packet): rows not yet run
    move to the new buffer, and batches up to its size -- each larger than any before --
    are appended in place, never grown by push's path; the engine decides as push's."""
    day = generate_day(date=DATE, n_events=1200, seed=4, mode="l2")
    ev = day.events
    a, b = _engine(day.instrument), _engine(day.instrument)
    for eng in (a, b):
        eng.start(at=int(ev["local_ts"][0]))
    a.push(ev[:30])
    b.push(ev[:30])  # rows not run yet: the reserve keeps them
    b.reserve_window(1500)
    wbuf = b._wbuf
    assert len(wbuf) == 1500
    assert b.window.tobytes() == a.window.tobytes()
    buf = np.zeros(len(ev), EVENT_DTYPE)
    k0 = 30
    for size in (20, 60, 150, 300, 600):
        chunk = ev[k0 : k0 + size]
        k0 += size
        a.push(chunk)
        buf[:size] = chunk
        b.push_rows(buf, size)
        assert b._wbuf is wbuf, size
        assert a.window.tobytes() == b.window.tobytes()
        t = int(chunk["local_ts"].max())
        assert a.advance(until=t) == b.advance(until=t)
        assert a.drain_requests().tobytes() == b.drain_requests().tobytes()
    b.reserve_window(100)  # (smaller: nothing to do)
    assert b._wbuf is wbuf
    for eng in (a, b):
        eng.abort()


def test_the_request_drain_gives_the_engines_records() -> None:
    day = generate_day(date=DATE, n_events=3000, seed=2, mode="l2")
    a, b = _engine(day.instrument), _engine(day.instrument)
    drain = RequestDrain(b, capacity=1)  # grows as it needs
    seen = 0
    for k in range(0, len(day.events), 100):
        chunk = day.events[k : k + 100]
        t = int(chunk["local_ts"].max())
        for eng in (a, b):
            eng.push(chunk)
            eng.advance(until=t)
        want = a.drain_requests()
        got = drain()
        assert got.dtype == REQUEST_DTYPE
        assert got.tobytes() == want.tobytes()
        seen += len(got)
    assert seen > 0
    for eng in (a, b):
        eng.abort()
