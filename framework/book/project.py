"""Order-by-order (L3) data seen as price levels (L2), for consumers that work on levels.

The backtest engine's venue and strategy books are L2 books. Given L3 events (LOBSTER,
ITCH, DBN MBO, synthetic L3), :class:`L3ToL2` keeps an L3 book and turns every order event
into the ``KIND_LEVEL`` update of the level it changed; an execution also emits the trade
print (``KIND_TRADE`` with the aggressor's side) before the level update, so queue models
see trades as trades. Non-L3 events pass through. The last event a source event produces
keeps its flags (``FLAG_LAST`` stays on the message boundary); the ones before it drop
``FLAG_LAST``. State persists across batches, so a day can be streamed.

Every event projected from an order event carries ``FLAG_QUEUE_TS`` and, in ``order_id``, the
queue-priority time of the order it changed: the exchange time the order joined its level's
queue (an add; a modify that moves the price or raises the size starts a new one, a size
decrease keeps it). The venue's exact FIFO queue model compares it with the time our order
joined the same queue: earlier orders are ahead of ours, later ones behind. A modify that
keeps the price but loses priority is emitted as two level updates, the order leaving its
old place and joining at the back, so the venue sees both; an add of an id that is still
live (which replaces that order) likewise first emits the level the old order leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from numba import njit

from framework.book.l2 import BOOK_FULL, IGNORED, POOL_FULL, l2_qty_at
from framework.book.l3 import (
    M_HASH_MASK,
    O_NEXT,
    O_PREV,
    O_PRICE,
    O_QTY,
    O_SIDE,
    _hash,
    l3_apply,
    l3_find,
    l3_made_room,
    l3_new,
)
from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_LAST,
    FLAG_QUEUE_TS,
    KIND_ADD,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_STATUS,
    KIND_TRADE,
    SELL,
    STATUS_INFO,
    EventArray,
)
from framework.core.prefetch import prefetch

L3_KINDS = (KIND_ADD, KIND_CANCEL, KIND_DELETE, KIND_EXECUTE, KIND_MODIFY)


@njit(cache=True)
def _emit(out, k, src, kind, side, price, qty, flags):
    r = out[k]
    r["exch_ts"] = src["exch_ts"]
    r["local_ts"] = src["local_ts"]
    r["instrument"] = src["instrument"]
    r["order_id"] = src["order_id"]
    r["kind"] = kind
    r["side"] = side
    r["price"] = price
    r["qty"] = qty
    r["flags"] = flags
    return k + 1


@njit(cache=True)
def _emit_q(out, k, src, kind, side, price, qty, flags, prio):
    """:func:`_emit` for an order's change: ``order_id`` = its queue-priority time."""
    k = _emit(out, k, src, kind, side, price, qty, flags | FLAG_QUEUE_TS)
    out[k - 1]["order_id"] = np.uint64(prio)
    return k


#: batches up to this many events prefetch their orders' lines first (a live tick after a
#: quiet spell); a longer one streams through a book whose lines the previous events brought
#: in, where the extra passes only cost (~10% of a backtest's projection)
PREFETCH_MAX = 256


@njit(cache=True)
def prefetch_orders(meta, orders, table, prio, events) -> None:
    """Prefetch what projecting ``events`` will read of the book, a level of indirection at
    a time: the hash slots of their order ids, then the pool rows (and queue times) those
    slots name, then the rows' neighbours in their level's queue (a removal relinks them).
    On a live feed these lines are cold after a quiet spell; issued together for a batch,
    their misses overlap (:mod:`framework.core.prefetch`). The first probe of each id
    stands for its slot: a collision only costs the prefetch."""
    mask = meta[M_HASH_MASK]
    n = events.shape[0]
    tb = table.ctypes.data
    for i in range(n):
        prefetch(tb + 8 * _hash(np.int64(events[i]["order_id"]), mask))
    ob = orders.ctypes.data
    rs = orders.strides[0]
    pb = prio.ctypes.data
    for i in range(n):
        v = table[_hash(np.int64(events[i]["order_id"]), mask)]
        if v > 0:
            prefetch(ob + (v - 1) * rs)
            prefetch(pb + (v - 1) * 8)
    for i in range(n):
        v = table[_hash(np.int64(events[i]["order_id"]), mask)]
        if v > 0:
            a = orders[v - 1, O_PREV]
            b = orders[v - 1, O_NEXT]
            if a >= 0:
                prefetch(ob + a * rs)
            if b >= 0:
                prefetch(ob + b * rs)


@njit(cache=True)
def project_events(meta, qty, ends, orders, table, prio, events, out) -> tuple[int, int]:
    """Project ``events`` into ``out`` (at least 3x as long); returns (rows written, -1) or,
    when the book's order pool or far lists fill, (rows written, index of the next event to
    project once they are grown). ``prio[slot]`` keeps each live order's queue-priority
    time."""
    if events.shape[0] <= PREFETCH_MAX:
        prefetch_orders(meta, orders, table, prio, events)
    k = 0
    full = False  # the last event left the far lists over capacity (it was projected)
    for i in range(events.shape[0]):
        if full:
            return k, i
        e = events[i]
        kind = e["kind"]
        flags = e["flags"]
        mid_flags = flags & ~np.uint32(FLAG_LAST)
        if (
            kind != KIND_ADD
            and kind != KIND_CANCEL
            and kind != KIND_DELETE
            and (kind != KIND_EXECUTE and kind != KIND_MODIFY)
        ):
            if kind == KIND_CLEAR:
                l3_apply(
                    meta,
                    qty,
                    ends,
                    orders,
                    table,
                    kind,
                    int(e["side"]),
                    int(e["price"]),
                    int(e["qty"]),
                    0,
                )
            out[k] = e
            k += 1
            continue
        oid = np.int64(e["order_id"])
        side = e["side"]
        price = e["price"]
        ts = e["exch_ts"]
        old_side = 0
        old_price = 0
        old_qty = 0
        old_prio = 0
        known = False
        slot = l3_find(meta, orders, table, int(oid))  # (an add of a live id replaces it)
        if slot >= 0:
            known = True
            old_side = BUY if orders[slot, O_SIDE] == 0 else SELL
            old_price = orders[slot, O_PRICE]
            old_qty = orders[slot, O_QTY]
            old_prio = prio[slot]
        r = l3_apply(meta, qty, ends, orders, table, kind, side, price, int(e["qty"]), int(oid))
        if r == POOL_FULL:  # nothing applied: project the event again after growing
            return k, i
        full = r == BOOK_FULL
        if kind == KIND_ADD:
            slot = l3_find(meta, orders, table, int(oid))
            if slot >= 0:
                prio[slot] = ts
            if known and r != IGNORED:
                # the live order it replaced leaves its level first (as a modify's move)
                left = l2_qty_at(meta, qty, old_side, old_price)
                if old_side == side and old_price == price:
                    left -= e["qty"]
                k = _emit_q(out, k, e, KIND_LEVEL, old_side, old_price, left, mid_flags, old_prio)
            k = _emit_q(
                out, k, e, KIND_LEVEL, side, price, l2_qty_at(meta, qty, side, price), flags, ts
            )
            continue
        if not known:
            # an order the book never saw: no level changes, but keep the message boundary
            # (an informational status event changes no book)
            if flags & FLAG_LAST:
                k = _emit(out, k, e, KIND_STATUS, 0, 0, STATUS_INFO, flags)
            continue
        now_at = l2_qty_at(meta, qty, old_side, old_price)
        if kind == KIND_EXECUTE:
            k = _emit_q(out, k, e, KIND_TRADE, -old_side, old_price, e["qty"], mid_flags, old_prio)
        if kind == KIND_MODIFY and (price != old_price or e["qty"] > old_qty):
            # the order loses its place: it leaves its old queue and joins a queue at the back
            slot = l3_find(meta, orders, table, int(oid))
            if slot >= 0:
                prio[slot] = ts
            new_q = e["qty"] if slot >= 0 else 0
            left = now_at if price != old_price else now_at - new_q
            k = _emit_q(out, k, e, KIND_LEVEL, old_side, old_price, left, mid_flags, old_prio)
            k = _emit_q(
                out,
                k,
                e,
                KIND_LEVEL,
                old_side,
                price,
                l2_qty_at(meta, qty, old_side, price),
                flags,
                ts,
            )
        else:
            k = _emit_q(out, k, e, KIND_LEVEL, old_side, old_price, now_at, flags, old_prio)
    return k, events.shape[0] if full else -1


class L3ToL2:
    """Stateful projector: feed batches in order, get L2 batches back."""

    def __init__(self, *, capacity: int = 1 << 16, n_ticks: int = 1 << 15) -> None:
        self.state = l3_new(capacity, n_ticks)
        self.prio = np.zeros(capacity, np.int64)  #: queue-priority time per order slot

    def __call__(self, events: EventArray) -> EventArray:
        out = np.empty(3 * len(events) + 1, dtype=EVENT_DTYPE)
        pos = 0
        rest = events
        while True:
            meta, qty, ends, orders, table = self.state
            n, stop = project_events(meta, qty, ends, orders, table, self.prio, rest, out[pos:])
            pos += n
            if stop < 0:
                return out[:pos]
            self.state = l3_made_room(self.state)
            grown = np.zeros(self.state[3].shape[0], np.int64)
            grown[: len(self.prio)] = self.prio  # slots keep their numbers when the pool grows
            self.prio = grown
            rest = rest[stop:]


def has_l3(events: EventArray) -> bool:
    return bool(np.isin(events["kind"], L3_KINDS).any())


def l2_stream(
    batches: Iterable[EventArray], *, require_l3: bool = False, name: str = "the data"
) -> Iterator[EventArray]:
    """Pass L2 batches through; once L3 events appear, project everything from there on.

    ``require_l3`` (the exact FIFO queue model) refuses data whose first batch holds no
    order events: queue priority cannot be known from price levels."""
    proj: L3ToL2 | None = None
    for b in batches:
        if proj is None and has_l3(b):
            proj = L3ToL2()
        if proj is None and require_l3 and len(b):
            msg = (
                f"queue model 'fifo' needs order-by-order (L3) data, but {name} holds price "
                "levels (L2); use --queue power:2, log or risk_averse for it"
            )
            raise ConfigError(msg)
        yield b if proj is None else proj(b)
