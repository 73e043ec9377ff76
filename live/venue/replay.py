"""A stored day as the venue's ITCH 5.0 message stream.

L3 days replay order by order: their events go to :func:`live.wire.itch_encode.encode_events`
as they are. L2 days have no orders, so the venue shows **one synthetic order per price
level** (ids from :data:`SYNTHETIC_ID_BASE` up, never reused) and turns each level change into
order messages with the L2 book's own rules:

* a level set to a size it did not have: ``A`` of a new order;
* a smaller size: ``X`` (cancel of the difference; the order keeps its place);
* a larger size: ``D`` of the level's order then ``A`` of a new one (ITCH cannot grow an
  order, and a grown level loses nothing by it: there is one order per level);
* size 0: ``D``; a level set on one side first deletes the opposite levels it crosses, a BBO
  first deletes its side's better levels, a clear deletes the side (what the L2 book does).

Trades and statuses pass through. Every event carries the index of the stored event it came
from (:attr:`ReplayDay.origin`), so a packet boundary can be mapped to the stored day's book
after a whole venue message (``FLAG_LAST``), which is where ``hftlab book replay`` writes rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from framework.core.errors import DataError
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_LAST,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_LEVEL,
    KIND_STATUS,
    KIND_TRADE,
    SELL,
    EventArray,
)
from framework.core.instrument import Instrument
from live.wire.itch_encode import ItchStream, encode_events, price_qty_steps

#: first id of the venue's synthetic per-level orders (far from any real venue's ids)
SYNTHETIC_ID_BASE: Final = 1 << 62
#: stock locate of the replayed instrument (the feed carries one)
LOCATE: Final = 1


@dataclass
class ReplayDay:
    """What the venue publishes for one stored day."""

    instrument: Instrument
    date: dt.date
    l3: bool  #: the stored day had orders (else: synthetic per-level orders)
    events: EventArray  #: the L3-form events published (stored L3 events as they are)
    origin: npt.NDArray[np.int64]  #: stored event index of each published event
    stream: ItchStream  #: the ITCH messages; ``stream.src`` indexes ``events``
    price_step: int
    qty_step: int
    stored_flags: npt.NDArray[np.uint32]  #: flags of the stored events

    @property
    def n_messages(self) -> int:
        return len(self.stream)

    def message_event(self) -> npt.NDArray[np.int64]:
        """Stored event index of each message (-1 for the preamble)."""
        src = self.stream.src
        out = np.full(src.shape[0], -1, np.int64)
        ok = src >= 0
        out[ok] = self.origin[src[ok]]
        return out

    def book_row_after(self) -> npt.NDArray[np.int64]:
        """Per message: the index of the stored day's book row (one per ``FLAG_LAST`` event)
        that the book equals once this message is applied, or -1 where it is inside a venue
        message. Stored events that made no message count as applied with the one before."""
        me = self.message_event()
        n_ev = self.stored_flags.shape[0]
        last = (self.stored_flags & FLAG_LAST) != 0
        rows_upto = np.cumsum(last) - 1  # row index complete after stored event i
        nxt = np.concatenate([me[1:], [n_ev]])
        out = np.full(me.shape[0], -1, np.int64)
        for k in range(me.shape[0]):
            if me[k] < 0 or nxt[k] == me[k]:
                continue
            e_end = int(nxt[k]) - 1
            if last[e_end]:
                out[k] = rows_upto[e_end]
        return out

    def may_end_packet(self) -> npt.NDArray[np.bool_]:
        """Per message: a packet may end after it (the book is at a stored row there)."""
        return (self.book_row_after() >= 0) | (self.stream.src < 0)


def l2_to_orders(events: EventArray) -> tuple[EventArray, npt.NDArray[np.int64]]:
    """L2 events as per-level synthetic order events: ``(events, origin)``."""
    out: list[tuple[Any, ...]] = []
    origin: list[int] = []
    levels: dict[int, dict[int, list[int]]] = {BUY: {}, SELL: {}}  # side -> price -> [id, qty]
    next_id = SYNTHETIC_ID_BASE

    def emit(i: int, e: Any, kind: int, side: int, price: int, qty: int, oid: int) -> None:
        out.append((e["exch_ts"], e["local_ts"], price, qty, oid, 0, kind, side, 0))
        origin.append(i)

    def delete(i: int, e: Any, side: int, price: int) -> None:
        oid, q = levels[side].pop(price)
        emit(i, e, KIND_DELETE, side, price, q, oid)

    for i, e in enumerate(events):
        kind, side, price, qty = int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"])
        start = len(out)
        if kind in (KIND_LEVEL, KIND_BBO) and side != 0:
            if kind == KIND_BBO:  # its side's better levels go
                for p in [p for p in levels[side] if (p > price if side == BUY else p < price)]:
                    delete(i, e, side, p)
            if qty != 0:  # the opposite levels it crosses go
                opp = -side
                for p in [p for p in levels[opp] if (p <= price if side == BUY else p >= price)]:
                    delete(i, e, opp, p)
            have = levels[side].get(price)
            if qty <= 0:
                if have is not None:
                    delete(i, e, side, price)
            elif have is None or qty > have[1]:
                if have is not None:
                    delete(i, e, side, price)
                levels[side][price] = [next_id, qty]
                emit(i, e, KIND_ADD, side, price, qty, next_id)
                next_id += 1
            elif qty < have[1]:
                emit(i, e, KIND_CANCEL, side, price, have[1] - qty, have[0])
                have[1] = qty
        elif kind == KIND_CLEAR:
            for s in (BUY, SELL):
                if side in (0, s):
                    for p in list(levels[s]):
                        delete(i, e, s, p)
        elif kind in (KIND_TRADE, KIND_STATUS):
            out.append(tuple(e.item()))
            origin.append(i)
        if len(out) > start and e["flags"] & FLAG_LAST:
            last = out[-1]
            out[-1] = (*last[:8], int(last[8]) | FLAG_LAST)
    ev = np.array(out, dtype=EVENT_DTYPE) if out else np.zeros(0, EVENT_DTYPE)
    return ev, np.array(origin, np.int64)


def build_replay(events: EventArray, instrument: Instrument, date: dt.date) -> ReplayDay:
    """The ITCH stream of one day's events (L3 when the day has order adds)."""
    price_step, qty_step = price_qty_steps(instrument.tick_size, instrument.lot_size)
    l3 = bool(np.any(events["kind"] == KIND_ADD))
    origin: npt.NDArray[np.int64]
    if l3:
        pub, origin = events, np.arange(len(events), dtype=np.int64)
    else:
        pub, origin = l2_to_orders(events)
    stream = encode_events(pub, date=date, symbol=instrument.extra.get("itch_symbol")
                           or instrument.symbol, price_step=price_step, qty_step=qty_step,
                           locate=LOCATE)
    if len(stream) <= 1:
        msg = (f"{instrument.key} {date}: no event of the day has an ITCH form "
               f"(skipped: {stream.skipped}); nothing to replay")
        raise DataError(msg)
    return ReplayDay(instrument, date, l3, pub, origin, stream, price_step, qty_step,
                     events["flags"].copy())


def load_replay(store: Any, venue: str, symbol: str, date: dt.date) -> ReplayDay:
    """Read a stored day and build its ITCH stream."""
    events = store.read(venue, symbol, date)
    return build_replay(events, store.instrument(venue, symbol, date), date)
