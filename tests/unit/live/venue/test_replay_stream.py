"""A stored day as the venue's ITCH stream: decoding it and applying it to an L3 book gives
the stored day's own book (L3 or L2) after every venue message."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from framework.book.replay import replay_book_rows
from framework.core.events import EVENT_DTYPE, FLAG_LAST, KIND_ADD, KIND_LEVEL
from framework.core.instrument import Instrument
from framework.core.timeutil import midnight_ns
from framework.ingest.itch import decode_binaryfile
from framework.ingest.itch_nb import MSG_OK
from framework.ingest.synthetic import generate_day
from live.venue.replay import SYNTHETIC_ID_BASE, build_replay
from live.wire.itch_encode import NY

DATE = dt.date(2024, 3, 1)


@pytest.mark.parametrize("mode", ["l3", "l2"])
def test_replayed_stream_rebuilds_the_stored_book_after_every_venue_message(mode: str) -> None:
    day = generate_day(date=DATE, n_events=6_000, seed=7, mode=mode)
    rep = build_replay(day.events, day.instrument, DATE)
    assert rep.l3 == (mode == "l3")
    dec, _ = decode_binaryfile(rep.stream.buf, base_ns=midnight_ns(DATE, NY),
                               price_step=rep.price_step, qty_step=rep.qty_step)
    assert (dec.status == MSG_OK).all()
    got = replay_book_rows(dec.events, levels=10, l3=True)  # one row per message
    ref = replay_book_rows(day.events, levels=10, l3=mode == "l3")
    rows = rep.book_row_after()
    checked = np.flatnonzero(rows >= 0)
    assert len(checked) > 0.9 * len(ref)
    np.testing.assert_array_equal(got[checked], ref[rows[checked]])
    if mode == "l2":
        adds = dec.events[dec.events["kind"] == KIND_ADD]
        assert (adds["order_id"] >= SYNTHETIC_ID_BASE).all()


def test_an_l2_level_change_is_cancel_when_smaller_and_delete_add_when_larger() -> None:
    ev = np.zeros(4, EVENT_DTYPE)
    ev["exch_ts"] = midnight_ns(DATE, NY) + 10**12
    ev["kind"] = KIND_LEVEL
    ev["side"] = 1
    ev["price"] = 100
    ev["qty"] = [5, 3, 8, 0]
    ev["flags"] = FLAG_LAST
    inst = Instrument(venue="SIM", symbol="LVL", tick_size=Decimal("0.01"), lot_size=Decimal(1))
    rep = build_replay(ev, inst, DATE)
    letters = [m[:1].decode() for m in rep.stream.messages()]
    assert letters == ["R", "A", "X", "D", "A", "D"]
    assert rep.book_row_after().tolist() == [-1, 0, 1, -1, 2, 3]
