"""The one event record for every kind of market data.

An event is a row of :data:`EVENT_DTYPE`, an aligned numpy structured dtype of 48 bytes:

=========== ======= ==========================================================
field       type    meaning
=========== ======= ==========================================================
exch_ts     int64   exchange timestamp, ns since the Unix epoch (UTC)
local_ts    int64   local receive timestamp, ns since the epoch (feed latency
                    is ``local_ts - exch_ts``)
price       int64   price in integer ticks of the instrument
qty         int64   quantity in integer lots (for STATUS: a :class:`Status`)
order_id    uint64  venue order id (L3 kinds); 0 where there is none
instrument  uint16  instrument index within a run or a file
kind        uint8   one of the ``KIND_*`` constants
side        int8    ``BUY`` (+1), ``SELL`` (-1) or ``NO_SIDE`` (0)
flags       uint32  bit set of the ``FLAG_*`` constants
=========== ======= ==========================================================

Kinds, sides and flags are plain module-level integers so numba-compiled code can use
them as compile-time constants.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

# --- kinds -----------------------------------------------------------------------------
KIND_ADD: Final = 1  #: L3: a new resting order (order_id, side, price, qty)
KIND_MODIFY: Final = 2  #: L3: order changes price and/or size (qty = new size)
KIND_CANCEL: Final = 3  #: L3: partial cancel, qty = shares removed
KIND_DELETE: Final = 4  #: L3: order removed entirely
KIND_EXECUTE: Final = 5  #: L3: resting order executed, qty = shares executed
KIND_TRADE: Final = 6  #: a print not tied to a visible resting order (side = aggressor)
KIND_LEVEL: Final = 7  #: L2: price level on ``side`` now holds ``qty`` (0 removes it)
KIND_CLEAR: Final = 8  #: drop the whole book (of ``side`` if non-zero)
KIND_BBO: Final = 9  #: L1: best price on ``side`` is ``price`` with ``qty``
KIND_STATUS: Final = 10  #: trading status; ``qty`` holds a Status code, ``order_id`` raw venue code

KIND_NAMES: Final[dict[int, str]] = {
    KIND_ADD: "add",
    KIND_MODIFY: "modify",
    KIND_CANCEL: "cancel",
    KIND_DELETE: "delete",
    KIND_EXECUTE: "execute",
    KIND_TRADE: "trade",
    KIND_LEVEL: "level",
    KIND_CLEAR: "clear",
    KIND_BBO: "bbo",
    KIND_STATUS: "status",
}

# --- sides -----------------------------------------------------------------------------
BUY: Final = 1
SELL: Final = -1
NO_SIDE: Final = 0
SIDE_NAMES: Final[dict[int, str]] = {BUY: "buy", SELL: "sell", NO_SIDE: ""}

# --- flags -----------------------------------------------------------------------------
FLAG_LAST: Final = 1 << 0  #: last event of a venue message/packet: the book is consistent here
FLAG_SNAPSHOT: Final = 1 << 1  #: part of a book snapshot (not an incremental change)
FLAG_HIDDEN: Final = 1 << 2  #: execution against hidden (non-displayed) liquidity
FLAG_FROM_BOOK: Final = 1 << 3  #: price/size taken from an order-book file, not a message
FLAG_REPLACE: Final = 1 << 4  #: part of an order replace (delete old + add new)
FLAG_AUCTION: Final = 1 << 5  #: cross / auction print
FLAG_TOB: Final = 1 << 6  #: top-of-book only data
FLAG_BAD_TS: Final = 1 << 7  #: the venue or capture marked the timestamp unreliable
FLAG_MAYBE_BAD_BOOK: Final = 1 << 8  #: the source says the book may be inconsistent here
FLAG_SYNTHETIC: Final = 1 << 9  #: produced by the synthetic generator
FLAG_IMPLIED: Final = 1 << 10  #: event inferred by an importer, not present in the source
FLAG_NON_PRINTABLE: Final = 1 << 11  #: execution the venue marks non-printable
#: an L2 event projected from L3 data: ``order_id`` holds the queue-priority time (exch_ts
#: the order took its place in the level's queue) of the order it changed, so the venue can
#: tell orders ahead of ours from orders behind (exact FIFO queue model)
FLAG_QUEUE_TS: Final = 1 << 12

FLAG_NAMES: Final[dict[int, str]] = {
    FLAG_LAST: "last",
    FLAG_SNAPSHOT: "snapshot",
    FLAG_HIDDEN: "hidden",
    FLAG_FROM_BOOK: "from_book",
    FLAG_REPLACE: "replace",
    FLAG_AUCTION: "auction",
    FLAG_TOB: "tob",
    FLAG_BAD_TS: "bad_ts",
    FLAG_MAYBE_BAD_BOOK: "maybe_bad_book",
    FLAG_SYNTHETIC: "synthetic",
    FLAG_IMPLIED: "implied",
    FLAG_NON_PRINTABLE: "non_printable",
    FLAG_QUEUE_TS: "queue_ts",
}

# --- status codes (KIND_STATUS events carry one in ``qty``) -------------------------------
STATUS_UNKNOWN: Final = 0
STATUS_START_OF_MESSAGES: Final = 1
STATUS_PRE_OPEN: Final = 2  #: start of system hours / pre-market
STATUS_OPEN: Final = 3  #: regular trading (start of market hours, or trading resumed)
STATUS_QUOTING: Final = 4  #: quotation only (halt lifting: quotes allowed, no trades yet)
STATUS_HALTED: Final = 5
STATUS_PAUSED: Final = 6
STATUS_CLOSED: Final = 7  #: end of market hours
STATUS_END_OF_SYSTEM: Final = 8  #: end of system hours
STATUS_END_OF_MESSAGES: Final = 9
STATUS_INFO: Final = 10  #: informational venue message kept for the record (e.g. Reg SHO)

STATUS_NAMES: Final[dict[int, str]] = {
    STATUS_UNKNOWN: "unknown",
    STATUS_START_OF_MESSAGES: "start_of_messages",
    STATUS_PRE_OPEN: "pre_open",
    STATUS_OPEN: "open",
    STATUS_QUOTING: "quoting",
    STATUS_HALTED: "halted",
    STATUS_PAUSED: "paused",
    STATUS_CLOSED: "closed",
    STATUS_END_OF_SYSTEM: "end_of_system",
    STATUS_END_OF_MESSAGES: "end_of_messages",
    STATUS_INFO: "info",
}

EVENT_FIELDS: Final = (
    ("exch_ts", np.int64),
    ("local_ts", np.int64),
    ("price", np.int64),
    ("qty", np.int64),
    ("order_id", np.uint64),
    ("instrument", np.uint16),
    ("kind", np.uint8),
    ("side", np.int8),
    ("flags", np.uint32),
)

EVENT_DTYPE: Final = np.dtype(list(EVENT_FIELDS), align=True)
assert EVENT_DTYPE.itemsize == 48, EVENT_DTYPE.itemsize

EventArray = npt.NDArray[np.void]


def empty_events(n: int) -> EventArray:
    """Return a zero-filled event array of length ``n``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def make_events(**columns: npt.ArrayLike) -> EventArray:
    """Build an event array from equal-length columns; missing fields are zero.

    >>> ev = make_events(exch_ts=[1, 2], local_ts=[3, 4], kind=[KIND_TRADE] * 2)
    >>> ev["local_ts"].tolist(), ev.dtype.itemsize
    ([3, 4], 48)
    """
    unknown = set(columns) - set(EVENT_DTYPE.names or ())
    if unknown:
        msg = f"unknown event field(s) {sorted(unknown)}; fields are {EVENT_DTYPE.names}"
        raise ValueError(msg)
    arrays = {k: np.asarray(v) for k, v in columns.items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        msg = f"event columns have different lengths {sorted(lengths)}; pass equal-length columns"
        raise ValueError(msg)
    out = empty_events(lengths.pop() if lengths else 0)
    for k, a in arrays.items():
        out[k] = a
    return out


def kind_name(kind: int) -> str:
    """Name of an event kind, or ``kind<N>`` for an unknown code."""
    return KIND_NAMES.get(int(kind), f"kind{int(kind)}")


def flag_names(flags: int) -> list[str]:
    """Names of the bits set in ``flags``."""
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]
