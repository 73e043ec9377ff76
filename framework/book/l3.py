"""L3 order book: every order by id, a FIFO queue per price level, and an L2 view.

State is five plain numpy arrays (stack them per instrument for the engine):

* ``meta``: int64[:data:`L3_META_SIZE`] -- the L2 book's fields (``l2.M_*``) then the order
  pool's (``M_CAP``, ``M_NORDERS``, ``M_FREE`` ...) and statistics;
* ``qty``: the L2 book's array (window and far lists), aggregated lots per level kept on
  every change, so every L2 question (best, depth, level quantity, snapshot) is answered by
  the ``l2_*`` functions on ``(meta, qty)`` exactly as for an
  :class:`~framework.book.l2.L2Book`. A far level's entry also holds the first and last
  order slot of its queue;
* ``ends``: int64[2, 2, n_ticks] -- slot of the first (``[s, 0, x]``) and last (``[s, 1, x]``)
  order queued at each window level, -1 when empty;
* ``orders``: int64[capacity, 6] -- the order pool: id (uint64 bits as int64), side row,
  price (ticks), qty (lots), previous and next slot in its level's queue (free slots are
  chained through ``next``);
* ``table``: int64[power of two >= 2 * capacity] -- open-addressing hash (linear probing,
  backward-shift deletion) from order id to ``slot + 1`` (0 = empty bucket).

Kinds: ``KIND_ADD`` queues an order at the back of its level (an id that is already live is
replaced, counted in ``M_DUP_ADDS``); ``KIND_CANCEL`` and ``KIND_EXECUTE`` reduce it by ``qty``
(removed at 0); ``KIND_DELETE`` removes it; ``KIND_MODIFY`` sets qty = the event's qty and price
= the event's price: a price change or a size increase sends it to the back of the queue, a
decrease keeps its place (qty 0 removes it); ``KIND_CLEAR`` removes every order of ``side``
(0 = both). Events naming an id the book does not hold change nothing and are counted in
``M_UNKNOWN_IDS``; other kinds are ignored. An L3 feed is never crossed by construction, so
the L2 crossed-update policy does not apply here: adds are never dropped for crossing.

Orders rest at any price: the window re-centres as in the L2 book, levels outside it (with
their queues) live in the far lists. A full pool is not a crash: the add returns
``POOL_FULL`` with nothing applied and the Python face raises a :class:`ConfigError` naming
the ``capacity`` setting (the replayers grow the pool instead). Far lists over their
capacity return ``BOOK_FULL`` as in the L2 book (the event is applied; grow the book).
"""

# Compiled kernels take their state arrays and event fields positionally (numba has no
# keyword-only arguments), so the positional-argument limit does not apply here.

from __future__ import annotations

from typing import Final

import numpy as np
from numba import njit

from framework.book.l2 import (
    APPLIED,
    BOOK_FULL,
    F_HEAD,
    F_PRICE,
    F_QTY,
    F_TAIL,
    FAR_LEVELS,
    IGNORED,
    M_ASK,
    M_BASE,
    M_BID,
    M_FBID,
    M_FCAP,
    M_IGNORED,
    M_NBID,
    M_NT,
    NO_PRICE,
    POOL_FULL,
    STAT_NAMES,
    UNKNOWN_ID,
    IntArray,
    LevelView,
    _clear_side,
    _fc,
    _level_change,
    far_find,
    far_insert,
    far_remove,
    far_room,
    far_search,
    full_or_applied,
    l2_far_full,
    l2_far_target,
    l2_grown,
    l2_new,
    plan_base,
    recentre,
    side_index,
)
from framework.core.errors import ConfigError
from framework.core.events import (
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    EventArray,
)

# --- meta layout after the L2 fields -------------------------------------------------------
M_CAP: Final = 16  #: order pool capacity
M_NORDERS: Final = 17  #: live orders
M_FREE: Final = 18  #: first free slot, -1 when the pool is full
M_UNKNOWN_IDS: Final = 19  #: events naming an order the book does not hold
M_DUP_ADDS: Final = 20  #: adds of an id that was live (the old order is replaced)
M_MAX_ORDERS: Final = 22  #: most live orders seen at once
M_HASH_MASK: Final = 23  #: hash table size - 1
L3_META_SIZE: Final = 32

L3_STAT_NAMES: Final[dict[str, int]] = {
    **STAT_NAMES,
    "unknown_ids": M_UNKNOWN_IDS,
    "duplicate_adds": M_DUP_ADDS,
    "max_orders": M_MAX_ORDERS,
}

# --- order pool columns --------------------------------------------------------------------
O_ID, O_SIDE, O_PRICE, O_QTY, O_PREV, O_NEXT = range(6)
O_COLS: Final = 6
HEAD: Final = 0
TAIL: Final = 1

L3State = tuple[IntArray, IntArray, IntArray, IntArray, IntArray]


def _table_size(capacity: int) -> int:
    size = 16
    while size < 2 * capacity:
        size *= 2
    return size


def l3_new(capacity: int = 1 << 20, n_ticks: int = 4096,
           far_levels: int = FAR_LEVELS) -> L3State:
    """Fresh ``(meta, qty, ends, orders, table)`` arrays of an empty L3 book."""
    if not isinstance(capacity, int | np.integer) or capacity < 1:
        msg = f"capacity={capacity!r}: the L3 order pool needs a positive number of orders"
        raise ConfigError(msg)
    meta, qty = l2_new(n_ticks, far_levels=far_levels, meta_size=L3_META_SIZE)
    ends = np.empty((2, 2, int(n_ticks)), np.int64)
    orders = np.empty((int(capacity), O_COLS), np.int64)
    table = np.empty(_table_size(int(capacity)), np.int64)
    l3_reset(meta, qty, ends, orders, table)
    return meta, qty, ends, orders, table


@njit(cache=True)
def l3_reset(
    meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray, table: IntArray
) -> None:
    """Empty the book and zero its statistics (keeps window width, far and pool capacity)."""
    nt = meta[M_NT]
    fcap = meta[M_FCAP]
    cap = orders.shape[0]
    meta[:] = 0
    meta[M_NT] = nt
    meta[M_FCAP] = fcap
    meta[M_BID] = -1
    meta[M_ASK] = nt
    qty[:, :nt] = 0
    ends[:, :, :] = -1
    for i in range(cap):
        orders[i, O_NEXT] = i + 1 if i + 1 < cap else -1
        orders[i, O_QTY] = 0
    table[:] = 0
    meta[M_CAP] = cap
    meta[M_FREE] = 0
    meta[M_HASH_MASK] = table.shape[0] - 1


# As in l2.py, small hot helpers and the per-kind functions are inlined (inline="always")
# into their callers; inlining the mid-sized internals too bought little for a long compile.
# Window levels are the hot path; far levels take calls.

# --- id hash ---------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _hash(oid: int, mask: int) -> int:
    # fold to 32 bits, then a multiplicative hash kept below 2**63 so it never overflows
    # (also as plain Python via .py_func, where numpy would warn on a wrapped product)
    x = (oid & 0xFFFFFFFF) ^ ((oid >> 32) & 0xFFFFFFFF)
    return ((x * 0x5BD1E995) >> 13) & mask


@njit(cache=True, inline="always")
def l3_find(meta: IntArray, orders: IntArray, table: IntArray, oid: int) -> int:
    """Pool slot of live order ``oid`` (uint64 bits as int64), or -1."""
    mask = meta[M_HASH_MASK]
    h = _hash(oid, mask)
    while True:
        v = table[h]
        if v == 0:
            return -1
        if orders[v - 1, O_ID] == oid:
            return v - 1
        h = (h + 1) & mask


@njit(cache=True, inline="always")
def _h_insert(meta: IntArray, table: IntArray, oid: int, slot: int) -> None:
    mask = meta[M_HASH_MASK]
    h = _hash(oid, mask)
    while table[h] != 0:
        h = (h + 1) & mask
    table[h] = slot + 1


@njit(cache=True)
def _h_remove(meta: IntArray, orders: IntArray, table: IntArray, oid: int) -> None:
    mask = meta[M_HASH_MASK]
    i = _hash(oid, mask)
    while orders[table[i] - 1, O_ID] != oid:
        i = (i + 1) & mask
    # backward-shift deletion keeps probe chains intact without tombstones
    j = i
    while True:
        j = (j + 1) & mask
        v = table[j]
        if v == 0:
            break
        k = _hash(orders[v - 1, O_ID], mask)
        if (i <= j and i < k <= j) or (i > j and (k > i or k <= j)):
            continue  # its home lies between the hole and here: it must stay
        table[i] = v
        i = j
    table[i] = 0


# --- queues ----------------------------------------------------------------------------------
# A queue's ends are two cells: ends[s, HEAD, x] / ends[s, TAIL, x] for a window level, the
# F_HEAD / F_TAIL columns of its entry for a far level. Both are rows of int64 arrays, so
# one pair of helpers takes the array and the two cells' indices.


@njit(cache=True, inline="always")
def _link_back(hd: IntArray, hi: int, tl: IntArray, ti: int, orders: IntArray,
               slot: int) -> None:
    tail = tl[ti]
    orders[slot, O_PREV] = tail
    orders[slot, O_NEXT] = -1
    if tail >= 0:
        orders[tail, O_NEXT] = slot
    else:
        hd[hi] = slot
    tl[ti] = slot


@njit(cache=True, inline="always")
def _unlink(hd: IntArray, hi: int, tl: IntArray, ti: int, orders: IntArray,
            slot: int) -> None:
    p = orders[slot, O_PREV]
    n = orders[slot, O_NEXT]
    if p >= 0:
        orders[p, O_NEXT] = n
    else:
        hd[hi] = n
    if n >= 0:
        orders[n, O_PREV] = p
    else:
        tl[ti] = p


@njit(cache=True)
def _free(meta: IntArray, orders: IntArray, table: IntArray, slot: int) -> None:
    """Forget an order that is no longer queued: hash entry and slot go back."""
    _h_remove(meta, orders, table, orders[slot, O_ID])
    orders[slot, O_QTY] = 0
    orders[slot, O_NEXT] = meta[M_FREE]
    meta[M_FREE] = slot
    meta[M_NORDERS] -= 1


@njit(cache=True)
def _detach_far(meta: IntArray, qty: IntArray, orders: IntArray, slot: int) -> None:
    """:func:`_detach` for an order on a far level (the level goes when it empties)."""
    s = orders[slot, O_SIDE]
    j = far_find(meta, qty, s, orders[slot, O_PRICE])
    row = qty[s]
    _unlink(row, _fc(meta, j, F_HEAD), row, _fc(meta, j, F_TAIL), orders, slot)
    left = row[_fc(meta, j, F_QTY)] - orders[slot, O_QTY]
    row[_fc(meta, j, F_QTY)] = left
    if left == 0:
        far_remove(meta, qty, s, j)


@njit(cache=True, inline="always")
def _detach(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
            slot: int) -> None:
    """Take an order out of its level's queue and its lots off the level (kept in the pool)."""
    s = orders[slot, O_SIDE]
    x = orders[slot, O_PRICE] - meta[M_BASE]
    if x < 0 or x >= meta[M_NT]:
        _detach_far(meta, qty, orders, slot)
        return
    _unlink(ends[s, HEAD], x, ends[s, TAIL], x, orders, slot)
    _level_change(meta, qty, s, x, qty[s, x] - orders[slot, O_QTY])


@njit(cache=True, inline="always")
def _remove(
    meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray, table: IntArray, slot: int
) -> None:
    _detach(meta, qty, ends, orders, slot)
    _free(meta, orders, table, slot)


@njit(cache=True)
def _free_queue(meta: IntArray, orders: IntArray, table: IntArray, slot: int) -> None:
    """Free every order of a queue from ``slot`` (its head) on; its level is the caller's."""
    while slot >= 0:
        nxt = orders[slot, O_NEXT]
        _free(meta, orders, table, slot)
        slot = nxt


@njit(cache=True, inline="always")
def _reduce_level(meta: IntArray, qty: IntArray, s: int, price: int, q: int) -> None:
    """Take ``q`` lots off level ``price`` of side ``s``, which keeps other lots."""
    x = price - meta[M_BASE]
    if x < 0 or x >= meta[M_NT]:
        j = far_find(meta, qty, s, price)
        qty[s, _fc(meta, j, F_QTY)] -= q
    else:
        _level_change(meta, qty, s, x, qty[s, x] - q)


@njit(cache=True)
def _place_far(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
               table: IntArray, slot: int, s: int, price: int, q: int) -> int:
    """:func:`_place` outside the window: re-centre when the price fits near the touch,
    else queue it on a far level."""
    nb = plan_base(meta, qty, s, price)
    if nb != NO_PRICE:
        if recentre(meta, qty, ends, nb, True) != APPLIED:
            _free(meta, orders, table, slot)  # only when an earlier BOOK_FULL was ignored
            return BOOK_FULL
        x = price - nb
        _link_back(ends[s, HEAD], x, ends[s, TAIL], x, orders, slot)
        _level_change(meta, qty, s, x, qty[s, x] + q)
        return full_or_applied(meta)
    j = far_search(meta, qty, s, price)
    if j >= meta[M_FBID + s] or qty[s, _fc(meta, j, F_PRICE)] != price:
        if meta[M_FBID + s] >= far_room(meta, qty):
            _free(meta, orders, table, slot)  # only when an earlier BOOK_FULL was ignored
            return BOOK_FULL
        far_insert(meta, qty, s, j, price, 0)
    row = qty[s]
    _link_back(row, _fc(meta, j, F_HEAD), row, _fc(meta, j, F_TAIL), orders, slot)
    row[_fc(meta, j, F_QTY)] += q
    return full_or_applied(meta)


@njit(cache=True, inline="always")
def _place(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray, table: IntArray,
           slot: int, s: int, price: int, q: int) -> int:
    """Queue a slot that holds an id but sits on no level at the back of ``price``."""
    orders[slot, O_SIDE] = s
    orders[slot, O_PRICE] = price
    orders[slot, O_QTY] = q
    x = price - meta[M_BASE]
    if x < 0 or x >= meta[M_NT]:
        return _place_far(meta, qty, ends, orders, table, slot, s, price, q)
    _link_back(ends[s, HEAD], x, ends[s, TAIL], x, orders, slot)
    _level_change(meta, qty, s, x, qty[s, x] + q)
    return APPLIED


# --- the compiled API ------------------------------------------------------------------------


@njit(cache=True, inline="always")
def l3_add(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray, table: IntArray,
           oid: int, side: int, price: int, q: int) -> int:
    """Queue a new order at the back of its level."""
    if q <= 0 or side == 0:
        meta[M_IGNORED] += 1
        return IGNORED
    old = l3_find(meta, orders, table, oid)
    if old >= 0:
        meta[M_DUP_ADDS] += 1
        _remove(meta, qty, ends, orders, table, old)
    slot = meta[M_FREE]
    if slot < 0:
        return POOL_FULL
    meta[M_FREE] = orders[slot, O_NEXT]
    orders[slot, O_ID] = oid
    _h_insert(meta, table, oid, slot)
    meta[M_NORDERS] += 1
    meta[M_MAX_ORDERS] = max(meta[M_MAX_ORDERS], meta[M_NORDERS])
    return _place(meta, qty, ends, orders, table, slot, side_index(side), price, q)


@njit(cache=True, inline="always")
def l3_reduce(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
              table: IntArray, oid: int, q: int) -> int:
    """Take ``q`` lots off an order (cancel, execution); it leaves the book at 0."""
    slot = l3_find(meta, orders, table, oid)
    if slot < 0:
        meta[M_UNKNOWN_IDS] += 1
        return UNKNOWN_ID
    left = orders[slot, O_QTY] - q
    if left <= 0:
        _remove(meta, qty, ends, orders, table, slot)
        return APPLIED
    orders[slot, O_QTY] = left
    _reduce_level(meta, qty, orders[slot, O_SIDE], orders[slot, O_PRICE], q)
    return APPLIED


@njit(cache=True, inline="always")
def l3_delete(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
              table: IntArray, oid: int) -> int:
    """Remove an order entirely."""
    slot = l3_find(meta, orders, table, oid)
    if slot < 0:
        meta[M_UNKNOWN_IDS] += 1
        return UNKNOWN_ID
    _remove(meta, qty, ends, orders, table, slot)
    return APPLIED


@njit(cache=True, inline="always")
def l3_modify(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
              table: IntArray, oid: int, price: int, q: int) -> int:
    """Order now rests at ``price`` with ``q`` lots; loses its place unless only smaller."""
    slot = l3_find(meta, orders, table, oid)
    if slot < 0:
        meta[M_UNKNOWN_IDS] += 1
        return UNKNOWN_ID
    if q <= 0:
        _remove(meta, qty, ends, orders, table, slot)
        return APPLIED
    s = orders[slot, O_SIDE]
    old_q = orders[slot, O_QTY]
    if price == orders[slot, O_PRICE] and q <= old_q:
        orders[slot, O_QTY] = q
        _reduce_level(meta, qty, s, price, old_q - q)
        return APPLIED
    _detach(meta, qty, ends, orders, slot)
    return _place(meta, qty, ends, orders, table, slot, s, price, q)


@njit(cache=True)
def l3_clear(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
             table: IntArray, side: int) -> None:
    """Remove every order of ``side`` (0 = both sides)."""
    nt = meta[M_NT]
    for s in range(2):
        if (s == 0 and side < 0) or (s == 1 and side > 0):
            continue
        for x in range(nt):
            if meta[M_NBID + s] == 0:
                break
            if ends[s, HEAD, x] >= 0:
                _free_queue(meta, orders, table, ends[s, HEAD, x])
                ends[s, HEAD, x] = -1
                ends[s, TAIL, x] = -1
                _level_change(meta, qty, s, x, 0)
        for j in range(meta[M_FBID + s]):
            _free_queue(meta, orders, table, qty[s, _fc(meta, j, F_HEAD)])
        _clear_side(meta, qty, s)


@njit(cache=True)
def l3_apply(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
             table: IntArray, kind: int, side: int, price: int, q: int, oid: int) -> int:
    """Apply one event's fields (``oid`` = the uint64 order id's bits as int64); returns
    ``APPLIED``, ``IGNORED``, ``UNKNOWN_ID``, ``POOL_FULL`` (nothing applied: grow the pool)
    or ``BOOK_FULL`` (applied: grow the far lists)."""
    if kind == KIND_ADD:
        return l3_add(meta, qty, ends, orders, table, oid, side, price, q)
    if kind in (KIND_CANCEL, KIND_EXECUTE):
        return l3_reduce(meta, qty, ends, orders, table, oid, q)
    if kind == KIND_DELETE:
        return l3_delete(meta, qty, ends, orders, table, oid)
    if kind == KIND_MODIFY:
        return l3_modify(meta, qty, ends, orders, table, oid, price, q)
    if kind == KIND_CLEAR:
        l3_clear(meta, qty, ends, orders, table, side)
        return APPLIED
    if kind in (KIND_LEVEL, KIND_BBO):
        meta[M_IGNORED] += 1
    return IGNORED


@njit(cache=True)
def l3_apply_events(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
                    table: IntArray, events: EventArray) -> tuple[int, int]:
    """Apply an event array in order; returns ``(applied, code)``: ``(len(events),
    APPLIED)``, ``(i, POOL_FULL)`` when event ``i`` found the pool full (it and the rest
    were not applied), or ``(i, BOOK_FULL)`` when the far lists are over capacity after
    event ``i - 1`` (the first ``i`` are applied)."""
    for i in range(events.shape[0]):
        e = events[i]
        r = l3_apply(meta, qty, ends, orders, table, e["kind"], e["side"], e["price"],
                     e["qty"], np.int64(e["order_id"]))
        if r == POOL_FULL:
            return i, POOL_FULL
        if r == BOOK_FULL:
            return i + 1, BOOK_FULL
    return events.shape[0], APPLIED


@njit(cache=True)
def l3_queue_ahead(meta: IntArray, orders: IntArray, table: IntArray, oid: int) -> int:
    """Lots queued ahead of order ``oid`` at its level, or -1 if it is not in the book."""
    slot = l3_find(meta, orders, table, oid)
    if slot < 0:
        return -1
    ahead = 0
    p = orders[slot, O_PREV]
    while p >= 0:
        ahead += orders[p, O_QTY]
        p = orders[p, O_PREV]
    return ahead


@njit(cache=True)
def l3_queue_position(meta: IntArray, orders: IntArray, table: IntArray, oid: int) -> int:
    """Orders queued ahead of ``oid`` (0 = front of the queue), or -1 if not in the book."""
    slot = l3_find(meta, orders, table, oid)
    if slot < 0:
        return -1
    n = 0
    p = orders[slot, O_PREV]
    while p >= 0:
        n += 1
        p = orders[p, O_PREV]
    return n


@njit(cache=True)
def l3_level_orders(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
                    side: int, price: int, out: IntArray) -> int:
    """Slots queued at ``price`` on ``side``, front first, into ``out``; returns the count
    (which may exceed ``len(out)``: only the first ``len(out)`` are written)."""
    s = side_index(side)
    x = price - meta[M_BASE]
    if 0 <= x < meta[M_NT]:
        slot = ends[s, HEAD, x]
    else:
        j = far_find(meta, qty, s, price)
        slot = -1 if j < 0 else qty[s, _fc(meta, j, F_HEAD)]
    n = 0
    while slot >= 0:
        if n < out.shape[0]:
            out[n] = slot
        n += 1
        slot = orders[slot, O_NEXT]
    return n


@njit(cache=True)
def _rehash(meta: IntArray, orders: IntArray, table: IntArray) -> None:
    table[:] = 0
    meta[M_HASH_MASK] = table.shape[0] - 1
    for slot in range(orders.shape[0]):
        if orders[slot, O_QTY] > 0:  # live orders always hold lots; freed slots hold 0
            _h_insert(meta, table, orders[slot, O_ID], slot)


def l3_grown(state: L3State, capacity: int, far_levels: int | None = None) -> L3State:
    """A copy of ``state`` whose order pool holds ``capacity`` orders (>= the current one)
    and whose far lists hold ``far_levels`` levels a side (default: as now); slots, queues
    and ids are kept, the hash table is rebuilt."""
    meta, qty, ends, orders, _ = state
    old = orders.shape[0]
    if capacity < old:
        msg = f"capacity={capacity} is smaller than the book's current {old}; it can only grow"
        raise ConfigError(msg)
    new_meta, new_qty = l2_grown(meta, qty, int(meta[M_FCAP]) if far_levels is None
                                 else far_levels)
    new_orders = np.empty((int(capacity), O_COLS), np.int64)
    new_orders[:old] = orders
    if capacity > old:
        new_orders[old:, O_QTY] = 0
        new_orders[old:, O_NEXT] = np.arange(old + 1, capacity + 1)
        new_orders[capacity - 1, O_NEXT] = meta[M_FREE]  # chain the old free slots behind
        new_meta[M_FREE] = old
    new_meta[M_CAP] = capacity
    table = np.empty(_table_size(int(capacity)), np.int64)
    _rehash(new_meta, new_orders, table)
    return new_meta, new_qty, ends.copy(), new_orders, table


def l3_made_room(state: L3State) -> L3State:
    """``state``, grown to twice its pool when the pool is full and to twice its far
    capacity when a side is over it (as it is when there is room)."""
    meta, orders = state[0], state[3]
    pool_full = meta[M_FREE] < 0
    if not pool_full and not l2_far_full(meta):
        return state
    cap = 2 * orders.shape[0] if pool_full else orders.shape[0]
    return l3_grown(state, cap, l2_far_target(meta))


# --- Python face -----------------------------------------------------------------------------


def oid_bits(order_id: int) -> int:
    """A uint64 order id as the int64 the kernels take (same 64 bits)."""
    return int(np.array(order_id, dtype=np.uint64).view(np.int64))


class L3Book(LevelView):
    """An order-by-order book for use from Python; ``state`` is the tuple of arrays. Its
    far lists grow whenever they fill up; its order pool does not (see ``grow``).

    >>> from framework.core.events import BUY, KIND_ADD
    >>> b = L3Book(capacity=8, n_ticks=64)
    >>> _ = b.apply(KIND_ADD, BUY, 100, 5, order_id=1)
    >>> _ = b.apply(KIND_ADD, BUY, 100, 3, order_id=2)
    >>> b.best_bid, b.qty_at(BUY, 100), b.queue_ahead(2)
    (100, 8, 5)
    """

    def __init__(self, *, capacity: int = 1 << 20, n_ticks: int = 4096,
                 far_levels: int = FAR_LEVELS) -> None:
        self._set(l3_new(capacity, n_ticks, far_levels))

    def _set(self, state: L3State) -> None:
        self.state = state
        self.meta, self.qty, self.ends, self.orders, self.table = state

    def _full(self, where: str) -> ConfigError:
        msg = (
            f"L3 book order pool is full ({len(self.orders):,} live orders) at {where}; "
            "raise the book's capacity setting (L3Book(capacity=...))"
        )
        return ConfigError(msg)

    def _far_room(self) -> None:
        if l2_far_full(self.meta):
            self._set(l3_grown(self.state, len(self.orders), l2_far_target(self.meta)))

    def apply(self, kind: int, side: int, price: int, qty: int, *, order_id: int = 0) -> int:
        """Apply one event's fields; returns a result code (``APPLIED``, ``UNKNOWN_ID`` ...)."""
        r = int(l3_apply(*self.state, kind, side, price, qty, oid_bits(order_id)))
        if r == POOL_FULL:
            raise self._full(f"the add of order {order_id}")
        if r == BOOK_FULL:
            self._far_room()
            r = APPLIED
        return r

    def apply_events(self, events: EventArray) -> None:
        """Apply an event array in order."""
        i = 0
        while i < len(events):
            n, code = l3_apply_events(*self.state, events[i:])
            if code == POOL_FULL:
                at = i + int(n)
                raise self._full(f"event {at} (an add of order {int(events['order_id'][at])})")
            i += int(n)
            self._far_room()

    def order(self, order_id: int) -> tuple[int, int, int] | None:
        """``(side, price, qty)`` of a live order, or None."""
        slot = int(l3_find(self.meta, self.orders, self.table, oid_bits(order_id)))
        if slot < 0:
            return None
        row = self.orders[slot]
        return (1 if row[O_SIDE] == 0 else -1), int(row[O_PRICE]), int(row[O_QTY])

    def queue(self, side: int, price: int) -> list[int]:
        """Order ids queued at a level, front first."""
        out = np.empty(max(int(self.meta[M_NORDERS]), 1), np.int64)
        n = int(l3_level_orders(self.meta, self.qty, self.ends, self.orders, side, price, out))
        ids = self.orders[out[:n], O_ID]
        return [int(v) for v in ids.view(np.uint64)]

    def queue_ahead(self, order_id: int) -> int | None:
        """Lots ahead of an order at its level, or None if it is not in the book."""
        v = int(l3_queue_ahead(self.meta, self.orders, self.table, oid_bits(order_id)))
        return None if v < 0 else v

    def queue_position(self, order_id: int) -> int | None:
        """Orders ahead of an order at its level (0 = front), or None."""
        v = int(l3_queue_position(self.meta, self.orders, self.table, oid_bits(order_id)))
        return None if v < 0 else v

    @property
    def n_orders(self) -> int:
        return int(self.meta[M_NORDERS])

    @property
    def stats(self) -> dict[str, int]:
        """Counters: unknown ids, duplicate adds, re-centres, most far levels a side ..."""
        return {k: int(self.meta[i]) for k, i in L3_STAT_NAMES.items()}

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` orders, keeping the book as it is."""
        self._set(l3_grown(self.state, capacity))

    def reset(self) -> None:
        l3_reset(*self.state)
