"""L3 order book: FIFO queues, modify priority, unknown ids, capacity, and its L2 view."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.book.l2 import (
    APPLIED,
    BOOK_FULL,
    IGNORED,
    M_BASE,
    M_FBID,
    NO_PRICE,
    UNKNOWN_ID,
    l2_best_bid,
)
from framework.book.l3 import (
    M_NORDERS,
    L3Book,
    l3_add,
    l3_apply,
    l3_apply_events,
    l3_find,
    l3_modify,
    l3_new,
    l3_queue_ahead,
    l3_reduce,
)
from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    KIND_ADD,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_TRADE,
    SELL,
    make_events,
)


def add(b: L3Book, oid: int, side: int, price: int, qty: int) -> int:
    return b.apply(KIND_ADD, side, price, qty, order_id=oid)


def small_book() -> L3Book:
    b = L3Book(capacity=64, n_ticks=64)
    add(b, 1, BUY, 100, 5)
    add(b, 2, BUY, 100, 3)
    add(b, 3, BUY, 99, 4)
    add(b, 4, SELL, 101, 2)
    add(b, 5, SELL, 101, 6)
    add(b, 6, SELL, 103, 1)
    return b


def test_adds_queue_fifo_and_aggregate_into_levels() -> None:
    b = small_book()
    assert b.queue(BUY, 100) == [1, 2]
    assert b.queue(SELL, 101) == [4, 5]
    assert (b.best_bid, b.best_bid_qty, b.best_ask, b.best_ask_qty) == (100, 8, 101, 8)
    assert b.depth(BUY, 3).tolist() == [[100, 8], [99, 4]]
    assert b.snapshot(2).tolist() == [[101, 8, 100, 8], [103, 1, 99, 4]]
    assert b.n_orders == 6
    assert b.order(3) == (BUY, 99, 4)


def test_cancel_reduces_and_keeps_queue_place() -> None:
    b = small_book()
    assert b.apply(KIND_CANCEL, 0, 0, 2, order_id=1) == APPLIED
    assert b.order(1) == (BUY, 100, 3)
    assert b.queue(BUY, 100) == [1, 2]
    assert b.qty_at(BUY, 100) == 6


def test_execution_reduces_and_removes_the_order_at_zero() -> None:
    b = small_book()
    b.apply(KIND_EXECUTE, SELL, 101, 2, order_id=4)
    assert b.order(4) is None
    assert b.queue(SELL, 101) == [5]
    assert b.best_ask_qty == 6
    b.apply(KIND_EXECUTE, SELL, 101, 6, order_id=5)
    assert (b.best_ask, b.best_ask_qty) == (103, 1)
    assert b.n_orders == 4


def test_delete_removes_the_whole_order_whatever_qty_says() -> None:
    b = small_book()
    b.apply(KIND_DELETE, BUY, 99, 1, order_id=3)
    assert b.order(3) is None
    assert b.depth(BUY, 3).tolist() == [[100, 8]]


def test_modify_size_down_keeps_queue_priority() -> None:
    b = small_book()
    b.apply(KIND_MODIFY, BUY, 100, 2, order_id=1)
    assert b.queue(BUY, 100) == [1, 2]
    assert b.order(1) == (BUY, 100, 2)
    assert b.qty_at(BUY, 100) == 5


def test_modify_size_up_loses_queue_priority() -> None:
    b = small_book()
    b.apply(KIND_MODIFY, BUY, 100, 9, order_id=1)
    assert b.queue(BUY, 100) == [2, 1]
    assert b.qty_at(BUY, 100) == 12
    assert b.queue_ahead(1) == 3


def test_modify_price_change_moves_to_the_back_of_the_new_level() -> None:
    b = small_book()
    b.apply(KIND_MODIFY, BUY, 99, 1, order_id=1)  # smaller, but at a new price
    assert b.queue(BUY, 100) == [2]
    assert b.queue(BUY, 99) == [3, 1]
    assert b.depth(BUY, 3).tolist() == [[100, 3], [99, 5]]
    b.apply(KIND_MODIFY, BUY, 102, 1, order_id=2)  # new best bid
    assert b.best_bid == 102
    assert b.queue(BUY, 100) == []


def test_modify_to_zero_removes_the_order() -> None:
    b = small_book()
    b.apply(KIND_MODIFY, SELL, 103, 0, order_id=6)
    assert b.order(6) is None
    assert b.depth(SELL, 3).tolist() == [[101, 8]]


def test_modify_keeps_the_orders_side_whatever_the_event_says() -> None:
    b = small_book()
    b.apply(KIND_MODIFY, SELL, 98, 4, order_id=3)
    assert b.order(3) == (BUY, 98, 4)


def test_queue_ahead_and_position_follow_fifo() -> None:
    b = small_book()
    add(b, 7, BUY, 100, 10)
    assert [b.queue_ahead(i) for i in (1, 2, 7)] == [0, 5, 8]
    assert [b.queue_position(i) for i in (1, 2, 7)] == [0, 1, 2]
    b.apply(KIND_EXECUTE, BUY, 100, 5, order_id=1)
    assert (b.queue_ahead(7), b.queue_position(7)) == (3, 1)
    assert b.queue_ahead(1) is None
    assert b.queue_position(999) is None


def test_events_naming_unknown_ids_change_nothing_and_are_counted() -> None:
    b = small_book()
    before = b.snapshot(3).tolist()
    assert b.apply(KIND_CANCEL, BUY, 100, 1, order_id=77) == UNKNOWN_ID
    assert b.apply(KIND_EXECUTE, BUY, 100, 1, order_id=77) == UNKNOWN_ID
    assert b.apply(KIND_DELETE, BUY, 100, 1, order_id=77) == UNKNOWN_ID
    assert b.apply(KIND_MODIFY, BUY, 100, 1, order_id=77) == UNKNOWN_ID
    assert b.snapshot(3).tolist() == before
    assert b.stats["unknown_ids"] == 4


def test_add_of_a_live_id_replaces_the_old_order() -> None:
    b = small_book()
    add(b, 1, SELL, 102, 7)
    assert b.order(1) == (SELL, 102, 7)
    assert b.queue(BUY, 100) == [2]
    assert b.qty_at(BUY, 100) == 3
    assert b.stats["duplicate_adds"] == 1
    assert b.n_orders == 6


def test_clear_of_one_side_forgets_its_orders() -> None:
    b = small_book()
    b.apply(KIND_CLEAR, SELL, 0, 0)
    assert b.best_ask is None
    assert b.n_orders == 3
    assert b.apply(KIND_DELETE, SELL, 101, 2, order_id=4) == UNKNOWN_ID
    assert b.depth(BUY, 3).tolist() == [[100, 8], [99, 4]]
    b.apply(KIND_CLEAR, 0, 0, 0)
    assert b.n_orders == 0
    assert (b.best_bid, b.best_ask) == (None, None)
    add(b, 1, BUY, 100, 1)  # the pool and ids are reusable after a clear
    assert b.queue(BUY, 100) == [1]


def test_l2_kinds_are_ignored_and_trades_leave_the_book_alone() -> None:
    b = small_book()
    assert b.apply(KIND_LEVEL, BUY, 100, 1) == IGNORED
    assert b.apply(KIND_TRADE, BUY, 101, 1) == IGNORED
    assert b.qty_at(BUY, 100) == 8
    assert b.stats["ignored"] == 1


def test_full_pool_raises_an_error_naming_the_capacity_setting() -> None:
    b = L3Book(capacity=2, n_ticks=64)
    add(b, 1, BUY, 100, 1)
    add(b, 2, BUY, 100, 1)
    with pytest.raises(ConfigError, match=r"capacity"):
        add(b, 3, BUY, 100, 1)
    assert b.n_orders == 2
    b.apply(KIND_DELETE, BUY, 100, 1, order_id=1)
    add(b, 3, BUY, 100, 1)  # a freed slot is reused
    assert b.queue(BUY, 100) == [2, 3]


def test_full_pool_in_a_batch_names_the_event_and_capacity() -> None:
    b = L3Book(capacity=2, n_ticks=64)
    ev = make_events(kind=[KIND_ADD] * 3, side=[BUY] * 3, price=[100] * 3, qty=[1] * 3,
                     order_id=[1, 2, 3])
    with pytest.raises(ConfigError, match=r"event 2 .*capacity"):
        b.apply_events(ev)
    assert b.n_orders == 2


def test_grow_keeps_orders_queues_and_ids() -> None:
    b = small_book()
    b.grow(1000)
    assert b.queue(BUY, 100) == [1, 2]
    assert b.order(6) == (SELL, 103, 1)
    for i in range(100, 1000):
        add(b, i, SELL, 104, 1)
    assert b.qty_at(SELL, 104) == 900
    assert b.queue_ahead(999) == 899


def test_order_ids_with_bit_63_set_work() -> None:
    b = L3Book(capacity=8, n_ticks=64)
    synth = (1 << 63) | 5
    add(b, synth, BUY, 100, 3)
    add(b, 5, BUY, 100, 2)
    assert b.queue(BUY, 100) == [synth, 5]
    b.apply(KIND_DELETE, BUY, 100, 3, order_id=synth)
    assert b.queue(BUY, 100) == [5]


def test_recentring_keeps_orders_that_leave_the_window_with_their_queues() -> None:
    b = L3Book(capacity=16, n_ticks=16)  # first add centres: base 92, window [92, 108)
    add(b, 1, BUY, 100, 5)
    add(b, 2, BUY, 92, 1)
    add(b, 7, BUY, 92, 2)
    add(b, 3, SELL, 102, 2)
    add(b, 4, SELL, 108, 4)  # re-centre on mid 101: base 93, the level at 92 leaves
    assert b.base == 93
    assert b.n_far_levels == (1, 0)
    assert b.order(2) == (BUY, 92, 1)
    assert b.queue(BUY, 92) == [2, 7]
    assert b.queue_ahead(7) == 1
    assert b.queue(SELL, 108) == [4]
    assert add(b, 5, BUY, 60, 1) == APPLIED  # far from the touch: a far level
    assert b.order(5) == (BUY, 60, 1)
    assert b.n_orders == 6
    assert b.depth(BUY, 5).tolist() == [[100, 5], [92, 3], [60, 1]]
    # far orders change like any others: size down keeps the place, size up loses it
    assert b.apply(KIND_MODIFY, BUY, 92, 2, order_id=7) == APPLIED
    assert b.queue(BUY, 92) == [2, 7]
    assert b.apply(KIND_MODIFY, BUY, 92, 3, order_id=2) == APPLIED
    assert b.queue(BUY, 92) == [7, 2]
    assert b.apply(KIND_CANCEL, BUY, 92, 1, order_id=2) == APPLIED
    assert b.apply(KIND_DELETE, BUY, 60, 1, order_id=5) == APPLIED
    assert b.depth(BUY, 5).tolist() == [[100, 5], [92, 4]]
    # a move far from the touch keeps the order, at the back of its new level
    assert b.apply(KIND_MODIFY, SELL, 140, 4, order_id=4) == APPLIED
    assert b.order(4) == (SELL, 140, 4)
    assert b.depth(SELL, 3).tolist() == [[102, 2], [140, 4]]
    assert b.apply(KIND_EXECUTE, SELL, 140, 4, order_id=4) == APPLIED
    assert b.n_far_levels == (1, 0)
    b.apply(KIND_CLEAR, BUY, 0, 0)
    assert b.order(7) is None
    assert b.n_orders == 1
    assert b.n_far_levels == (0, 0)


def test_far_lists_grow_in_the_python_face_and_batch_kernels_report_book_full() -> None:
    b = L3Book(capacity=64, n_ticks=8, far_levels=1)
    add(b, 1, BUY, 100, 1)
    add(b, 2, SELL, 101, 1)
    for k in range(3, 40):
        assert add(b, k, SELL, 101 + 10 * k, k) == APPLIED
    assert b.n_far_levels == (0, 37)
    assert b.queue(SELL, 101 + 10 * 39) == [39]
    # the batch kernel stops after the event that filled a far list: it is applied
    state = l3_new(8, 8, far_levels=1)
    ev = make_events(kind=[KIND_ADD] * 4, side=[BUY, SELL, SELL, SELL],
                     price=[100, 101, 1000, 2000], qty=[1] * 4, order_id=[1, 2, 3, 4])
    assert l3_apply_events(*state, ev) == (4, BOOK_FULL)
    assert state[0][M_NORDERS] == 4


def test_an_l3_book_whose_full_signal_is_ignored_refuses_what_it_has_no_room_for() -> None:
    # an 8-tick window and far_levels=1: room for 10 far levels a side
    state = l3_new(64, 8, far_levels=1)
    meta = state[0]
    for k, p in enumerate(range(96, 101)):
        l3_apply(*state, KIND_ADD, BUY, p, 1, k + 1)
    assert meta[M_BASE] == 96
    codes = [l3_apply(*state, KIND_ADD, BUY, p, 2, 100 + p) for p in range(11)]
    assert codes == [APPLIED] + [BOOK_FULL] * 10
    assert meta[M_FBID] == 10
    assert meta[M_NORDERS] == 15  # the 11th add was refused: no order, no level
    assert l3_find(meta, state[3], state[4], 110) == -1
    # a re-centre that would push more levels out than there is room for is refused too
    assert l3_apply(*state, KIND_ADD, SELL, 200, 1, 500) == BOOK_FULL
    assert meta[M_BASE] == 96
    assert meta[M_NORDERS] == 15
    assert l3_find(meta, state[3], state[4], 500) == -1


def test_negative_prices() -> None:
    b = L3Book(capacity=8, n_ticks=16)
    add(b, 1, BUY, -7, 2)
    add(b, 2, BUY, -5, 3)
    add(b, 3, SELL, -3, 4)
    add(b, 4, SELL, -3, 1)
    assert b.snapshot(2).tolist() == [[-3, 5, -5, 3], [NO_PRICE, 0, -7, 2]]
    b.apply(KIND_MODIFY, BUY, -4, 3, order_id=1)
    assert b.depth(BUY, 3).tolist() == [[-4, 3], [-5, 3]]
    assert b.queue_ahead(4) == 4


def test_plain_python_kernels_agree_with_compiled_ones() -> None:
    outcomes = []
    for f_add, f_reduce, f_modify, f_find, f_ahead in (
        (l3_add, l3_reduce, l3_modify, l3_find, l3_queue_ahead),
        (l3_add.py_func, l3_reduce.py_func, l3_modify.py_func, l3_find.py_func,
         l3_queue_ahead.py_func),
    ):
        meta, qty, ends, orders, table = l3_new(8, 32)
        f_add(meta, qty, ends, orders, table, 1, BUY, 100, 5)
        f_add(meta, qty, ends, orders, table, 2, BUY, 100, 3)
        f_add(meta, qty, ends, orders, table, 3, BUY, 99, 3)
        f_reduce(meta, qty, ends, orders, table, 2, 1)
        f_modify(meta, qty, ends, orders, table, 1, 100, 6)  # size up: behind order 2
        outcomes.append((
            int(l2_best_bid(meta, qty)), qty[0, 100 - meta[0]], f_ahead(meta, orders, table, 1),
            f_find(meta, orders, table, 3) >= 0, f_find(meta, orders, table, 9),
        ))
    assert outcomes[0] == outcomes[1] == (100, 8, 2, True, -1)


# --- property: the L3 book against a naive dict-of-lists book ------------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from([KIND_ADD, KIND_ADD, KIND_CANCEL, KIND_EXECUTE, KIND_DELETE,
                         KIND_MODIFY]),
        st.integers(1, 25),  # order id (some unknown when used)
        st.sampled_from([BUY, SELL]),
        st.integers(995, 1005),  # price
        st.integers(0, 6),  # qty
    ),
    min_size=1,
    max_size=120,
)


class NaiveBook:
    """Orders in a dict and FIFO lists per level: obviously right, slow."""

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}  # id -> [side, price, qty]
        self.queues: dict[tuple[int, int], list[int]] = {}

    def _out(self, oid: int) -> None:
        side, price, _ = self.orders.pop(oid)
        self.queues[side, price].remove(oid)

    def _in(self, oid: int, side: int, price: int, qty: int) -> None:
        self.orders[oid] = [side, price, qty]
        self.queues.setdefault((side, price), []).append(oid)

    def apply(self, kind: int, oid: int, side: int, price: int, qty: int) -> None:
        if kind == KIND_ADD:
            if qty <= 0:
                return
            if oid in self.orders:
                self._out(oid)
            self._in(oid, side, price, qty)
            return
        if oid not in self.orders:
            return
        o = self.orders[oid]
        if kind in (KIND_CANCEL, KIND_EXECUTE):
            o[2] -= qty
            if o[2] <= 0:
                self._out(oid)
        elif kind == KIND_DELETE or qty <= 0:
            self._out(oid)
        elif price == o[1] and qty <= o[2]:
            o[2] = qty
        else:
            s = o[0]
            self._out(oid)
            self._in(oid, s, price, qty)

    def depth(self, side: int) -> list[list[int]]:
        levels: dict[int, int] = {}
        for s, p, q in self.orders.values():
            if s == side:
                levels[p] = levels.get(p, 0) + q
        return [[p, levels[p]] for p in sorted(levels, reverse=side == BUY)]


@settings(max_examples=120, deadline=None)
@given(ops)
def test_random_l3_streams_match_a_naive_book_after_every_event(
    stream: list[tuple[int, int, int, int, int]],
) -> None:
    b = L3Book(capacity=32, n_ticks=64)
    ref = NaiveBook()
    for kind, oid, side, price, qty in stream:
        b.apply(kind, side, price, qty, order_id=oid)
        ref.apply(kind, oid, side, price, qty)
        for s in (BUY, SELL):
            want = ref.depth(s)
            assert b.depth(s, 64).tolist() == want
            for p, q in want:
                assert b.qty_at(s, p) == q
                assert b.queue(s, p) == ref.queues[s, p]
        assert b.n_orders == len(ref.orders)
    for oid, (s, p, q) in ref.orders.items():
        assert b.order(oid) == (s, p, q)
        q_ids = ref.queues[s, p]
        ahead = q_ids[: q_ids.index(oid)]
        assert b.queue_ahead(oid) == sum(ref.orders[i][2] for i in ahead)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=300, unique=True))
def test_hash_finds_every_id_after_mixed_adds_and_deletes(ids: list[int]) -> None:
    b = L3Book(capacity=len(ids), n_ticks=64)
    for i, oid in enumerate(ids):
        add(b, oid, BUY, 100 + i % 7, 1)
    for oid in ids[::3]:
        b.apply(KIND_DELETE, BUY, 0, 0, order_id=oid)
    gone = set(ids[::3])
    for oid in ids:
        assert (b.order(oid) is None) == (oid in gone)
    assert b.n_orders == len(ids) - len(gone)
    assert int(np.sum(b.qty[0])) == b.n_orders
