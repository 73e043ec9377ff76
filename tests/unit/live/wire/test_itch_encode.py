"""ITCH 5.0 encoder: decoding its output with the framework's decoder gives back the events
(for everything ITCH says as is) and the same book (for everything else)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.book.replay import replay_book_rows
from framework.core.errors import ConfigError, DataError
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_AUCTION,
    FLAG_HIDDEN,
    FLAG_LAST,
    FLAG_NON_PRINTABLE,
    KIND_ADD,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_STATUS,
    KIND_TRADE,
    NO_SIDE,
    SELL,
    STATUS_CLOSED,
    STATUS_HALTED,
    STATUS_OPEN,
    STATUS_START_OF_MESSAGES,
)
from framework.core.timeutil import midnight_ns
from framework.ingest.itch import decode_binaryfile
from framework.ingest.itch_nb import MSG_OK
from live.wire.itch_encode import NY, encode_events, price_qty_steps

DATE = dt.date(2024, 3, 1)
BASE = midnight_ns(DATE, NY)
T0 = BASE + 9 * 3600 * 10**9


def decode(stream_buf: np.ndarray, price_step: int = 1, qty_step: int = 1) -> np.ndarray:
    dec, end = decode_binaryfile(stream_buf, base_ns=BASE, price_step=price_step,
                                 qty_step=qty_step)
    assert end == stream_buf.shape[0]
    assert (dec.status == MSG_OK).all()
    return dec.events.copy()


@st.composite
def itch_image(draw: st.DrawFn) -> list[tuple]:
    """Consistent event rows as the ITCH decoder would produce them:
    (ts, price, qty, order_id, instrument, kind, side, flags)."""
    live: dict[int, list[int]] = {}
    rows: list[tuple] = []
    next_id = draw(st.integers(1, 2**63))
    ts = T0
    for _ in range(draw(st.integers(1, 60))):
        ts += draw(st.integers(0, 10**9))
        op = draw(st.sampled_from(["add", "add", "exec", "cancel", "delete", "trade", "status"]))
        if op in ("exec", "cancel", "delete") and not live:
            op = "add"
        if op == "add":
            oid, next_id = next_id, (next_id + draw(st.integers(1, 1000))) % 2**64
            side = draw(st.sampled_from([BUY, SELL]))
            px, q = draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, 2**32 - 1))
            if oid in live:
                continue
            live[oid] = [px, q, side]
            rows.append((ts, px, q, oid, 1, KIND_ADD, side, 0))
        elif op in ("exec", "cancel"):
            oid = draw(st.sampled_from(sorted(live)))
            px, rem, side = live[oid]
            q = draw(st.integers(1, rem))
            flags, xpx = 0, px
            if op == "exec" and draw(st.booleans()):  # C: executed with price
                xpx = draw(st.integers(0, 2**32 - 1))
                flags = draw(st.sampled_from([0, FLAG_NON_PRINTABLE]))
            kind = KIND_EXECUTE if op == "exec" else KIND_CANCEL
            rows.append((ts, xpx, q, oid, 1, kind, side, flags))
            live[oid][1] -= q
            if live[oid][1] == 0:
                del live[oid]
        elif op == "delete":
            oid = draw(st.sampled_from(sorted(live)))
            px, rem, side = live.pop(oid)
            rows.append((ts, px, rem, oid, 1, KIND_DELETE, side, 0))
        elif op == "trade":
            q, px = draw(st.integers(1, 2**32 - 1)), draw(st.integers(0, 2**32 - 1))
            if draw(st.booleans()):
                rows.append((ts, px, q, draw(st.integers(0, 2**64 - 1)), 1, KIND_TRADE,
                             NO_SIDE, FLAG_HIDDEN))
            else:
                ctype = draw(st.sampled_from("OCHI"))
                raw = (ord("Q") << 56) | (ord(ctype) << 48)
                rows.append((ts, px, q, raw, 1, KIND_TRADE, NO_SIDE, FLAG_AUCTION))
        else:
            code, letter = draw(st.sampled_from([(STATUS_START_OF_MESSAGES, "O"),
                                                 (STATUS_OPEN, "Q"), (STATUS_CLOSED, "M")]))
            rows.append((ts, 0, code, (ord("S") << 56) | (ord(letter) << 48), 0, KIND_STATUS,
                         NO_SIDE, 0))
    return rows


def as_events(rows: list[tuple]) -> np.ndarray:
    ev = np.zeros(len(rows), EVENT_DTYPE)
    for i, (ts, px, q, oid, inst, kind, side, flags) in enumerate(rows):
        ev[i] = (ts, ts, px, q, oid, inst, kind, side, flags | FLAG_LAST)
    return ev


@settings(max_examples=200, deadline=None)
@given(rows=itch_image())
def test_decoding_the_encoding_gives_back_the_same_events(rows: list[tuple]) -> None:
    ev = as_events(rows)
    stream = encode_events(ev, date=DATE, symbol="ABCD")
    assert stream.skipped == {}
    back = decode(stream.buf)
    assert back[0]["kind"] == KIND_STATUS  # the preamble's stock directory
    np.testing.assert_array_equal(back[1:], ev)


@st.composite
def any_l3(draw: st.DrawFn) -> np.ndarray:
    """L3 events of any kind the book takes, including ones ITCH cannot say as is."""
    n = draw(st.integers(1, 80))
    ids = draw(st.lists(st.integers(1, 12), min_size=n, max_size=n))
    kinds = draw(st.lists(st.sampled_from([KIND_ADD, KIND_ADD, KIND_ADD, KIND_MODIFY,
                                           KIND_CANCEL, KIND_EXECUTE, KIND_DELETE,
                                           KIND_CLEAR, KIND_TRADE, KIND_LEVEL, KIND_STATUS]),
                          min_size=n, max_size=n))
    ev = np.zeros(n, EVENT_DTYPE)
    ev["exch_ts"] = T0 + np.arange(n)
    ev["local_ts"] = ev["exch_ts"]
    ev["order_id"] = ids
    ev["kind"] = kinds
    ev["side"] = draw(st.lists(st.sampled_from([BUY, SELL, NO_SIDE, BUY, SELL]),
                               min_size=n, max_size=n))
    ev["price"] = draw(st.lists(st.integers(95, 105), min_size=n, max_size=n))
    # sizes from 0: a negative reduce is no event (ingest refuses it); the book would grow
    ev["qty"] = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    ev["flags"] = FLAG_LAST
    return ev


@settings(max_examples=300, deadline=None)
@given(ev=any_l3())
def test_the_decoded_stream_builds_the_same_book_after_every_event(ev: np.ndarray) -> None:
    ref = replay_book_rows(ev, levels=5, l3=True)
    stream = encode_events(ev, date=DATE, symbol="X", price_step=100, qty_step=10)
    back = decode(stream.buf, price_step=100, qty_step=10)
    got = replay_book_rows(back, levels=5, l3=True)
    for i in range(len(ev)):
        # the book after event i is the one after the last message of events up to i
        msgs = np.flatnonzero(stream.src <= i)
        np.testing.assert_array_equal(got[msgs[-1]], ref[i], err_msg=f"after event {i}")


def test_skipped_events_are_counted_by_reason() -> None:
    ev = np.zeros(3, EVENT_DTYPE)
    ev["exch_ts"] = T0
    ev["kind"] = [KIND_DELETE, KIND_LEVEL, KIND_STATUS]
    ev["qty"] = [0, 5, 10]  # STATUS_INFO
    stream = encode_events(ev, date=DATE, symbol="X", preamble=False)
    assert len(stream) == 0
    assert sorted(stream.skipped.values()) == [1, 1, 1]
    assert any("not resting" in r for r in stream.skipped)


def test_a_halt_becomes_a_trading_action_and_decodes_to_halted() -> None:
    ev = np.zeros(1, EVENT_DTYPE)
    ev["exch_ts"] = T0
    ev["kind"] = KIND_STATUS
    ev["qty"] = STATUS_HALTED
    back = decode(encode_events(ev, date=DATE, symbol="X", preamble=False).buf)
    assert back["qty"].tolist() == [STATUS_HALTED]
    assert chr(int(back["order_id"][0]) >> 56) == "H"


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("price", 2**40, "Price\\(4\\)"),
    ("qty", 2**40, "32-bit"),
    ("exch_ts", BASE - 1, "outside the day"),
])
def test_values_itch_cannot_hold_stop_the_encode_naming_the_event(
    field: str, value: int, reason: str
) -> None:
    ev = np.zeros(2, EVENT_DTYPE)
    ev["exch_ts"] = T0
    ev["kind"] = KIND_ADD
    ev["side"] = BUY
    ev["qty"] = 1
    ev["order_id"] = [1, 2]
    ev[1][field] = value
    with pytest.raises(DataError, match=f"event 1 .*{reason}"):
        encode_events(ev, date=DATE, symbol="X")


def test_steps_refuse_ticks_finer_than_itch() -> None:
    from decimal import Decimal

    assert price_qty_steps(Decimal("0.01"), Decimal("1")) == (100, 1)
    with pytest.raises(ConfigError, match=r"0\.0001"):
        price_qty_steps(Decimal("0.00001"), Decimal("1"))
