"""Order-by-order (L3) data seen as price levels (L2), for consumers that work on levels.

The backtest engine's venue and strategy books are L2 books. Given L3 events (LOBSTER,
ITCH, DBN MBO, synthetic L3), :class:`L3ToL2` keeps an L3 book and turns every order event
into the ``KIND_LEVEL`` update of the level it changed; an execution also emits the trade
print (``KIND_TRADE`` with the aggressor's side) before the level update, so queue models
see trades as trades. Non-L3 events pass through. The last event a source event produces
keeps its flags (``FLAG_LAST`` stays on the message boundary); the ones before it drop
``FLAG_LAST``. State persists across batches, so a day can be streamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from numba import njit

from framework.book.l2 import POOL_FULL, l2_qty_at
from framework.book.l3 import O_PRICE, O_SIDE, l3_apply, l3_find, l3_grown, l3_new
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_LAST,
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
def project_events(meta, qty, ends, orders, table, events, out) -> tuple[int, int]:
    """Project ``events`` into ``out`` (at least 3x as long); returns (rows written, index of
    the event that found the pool full or -1)."""
    k = 0
    for i in range(events.shape[0]):
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
        old_side = 0
        old_price = 0
        known = False
        if kind != KIND_ADD:
            slot = l3_find(meta, orders, table, int(oid))
            if slot >= 0:
                known = True
                old_side = BUY if orders[slot, O_SIDE] == 0 else SELL
                old_price = orders[slot, O_PRICE]
        r = l3_apply(meta, qty, ends, orders, table, kind, side, price, int(e["qty"]), int(oid))
        if r == POOL_FULL:
            return k, i
        if kind == KIND_ADD:
            k = _emit(out, k, e, KIND_LEVEL, side, price, l2_qty_at(meta, qty, side, price), flags)
            continue
        if not known:
            # an order the book never saw: no level changes, but keep the message boundary
            # (an informational status event changes no book)
            if flags & FLAG_LAST:
                k = _emit(out, k, e, KIND_STATUS, 0, 0, STATUS_INFO, flags)
            continue
        if kind == KIND_EXECUTE:
            k = _emit(out, k, e, KIND_TRADE, -old_side, old_price, e["qty"], mid_flags)
        if kind == KIND_MODIFY and price != old_price:
            k = _emit(
                out,
                k,
                e,
                KIND_LEVEL,
                old_side,
                old_price,
                l2_qty_at(meta, qty, old_side, old_price),
                mid_flags,
            )
            k = _emit(
                out, k, e, KIND_LEVEL, old_side, price, l2_qty_at(meta, qty, old_side, price), flags
            )
        else:
            k = _emit(
                out,
                k,
                e,
                KIND_LEVEL,
                old_side,
                old_price,
                l2_qty_at(meta, qty, old_side, old_price),
                flags,
            )
    return k, -1


class L3ToL2:
    """Stateful projector: feed batches in order, get L2 batches back."""

    def __init__(self, *, capacity: int = 1 << 16, n_ticks: int = 1 << 15) -> None:
        self.state = l3_new(capacity, n_ticks)

    def __call__(self, events: EventArray) -> EventArray:
        out = np.empty(3 * len(events) + 1, dtype=EVENT_DTYPE)
        pos = 0
        rest = events
        while True:
            meta, qty, ends, orders, table = self.state
            n, stop = project_events(meta, qty, ends, orders, table, rest, out[pos:])
            pos += n
            if stop < 0:
                return out[:pos]
            self.state = l3_grown(self.state, 2 * orders.shape[0])
            rest = rest[stop:]


def has_l3(events: EventArray) -> bool:
    return bool(np.isin(events["kind"], L3_KINDS).any())


def l2_stream(batches: Iterable[EventArray]) -> Iterator[EventArray]:
    """Pass L2 batches through; once L3 events appear, project everything from there on."""
    proj: L3ToL2 | None = None
    for b in batches:
        if proj is None and has_l3(b):
            proj = L3ToL2()
        yield b if proj is None else proj(b)
