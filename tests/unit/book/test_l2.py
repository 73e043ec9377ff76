"""L2 price-level book: every operation with hand-computed expectations."""

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
    M_FASK,
    M_FBID,
    M_FCAP,
    NO_PRICE,
    L2Book,
    l2_apply,
    l2_best_ask,
    l2_best_bid,
    l2_depth,
    l2_made_room,
    l2_new,
    l2_qty_at,
    l2_set_level,
    l2_snapshot,
)
from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_ADD,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_STATUS,
    KIND_TRADE,
    SELL,
    make_events,
)


def book_with(levels: list[tuple[int, int, int]], n_ticks: int = 64) -> L2Book:
    b = L2Book(n_ticks=n_ticks)
    for side, price, qty in levels:
        assert b.apply(KIND_LEVEL, side, price, qty) == APPLIED
    return b


def test_levels_set_best_depth_and_quantity_at_price() -> None:
    b = book_with([(BUY, 100, 5), (BUY, 98, 2), (BUY, 99, 4), (SELL, 103, 7), (SELL, 101, 1)])
    assert (b.best_bid, b.best_bid_qty, b.best_ask, b.best_ask_qty) == (100, 5, 101, 1)
    assert b.qty_at(BUY, 99) == 4
    assert b.qty_at(SELL, 102) == 0
    assert b.depth(BUY, 5).tolist() == [[100, 5], [99, 4], [98, 2]]
    assert b.depth(SELL, 1).tolist() == [[101, 1]]
    assert b.n_levels == (3, 2)


def test_level_set_to_zero_removes_it_and_best_moves_to_next_level() -> None:
    b = book_with([(BUY, 100, 5), (BUY, 97, 2), (SELL, 101, 1), (SELL, 104, 3)])
    b.apply(KIND_LEVEL, BUY, 100, 0)
    b.apply(KIND_LEVEL, SELL, 101, 0)
    assert (b.best_bid, b.best_ask) == (97, 104)
    b.apply(KIND_LEVEL, BUY, 97, 0)
    assert b.best_bid is None
    assert b.best_bid_qty == 0
    assert b.n_levels == (0, 1)


def test_level_update_replaces_quantity_not_adds() -> None:
    b = book_with([(BUY, 100, 5), (BUY, 100, 9)])
    assert b.qty_at(BUY, 100) == 9


def test_snapshot_is_in_lobster_column_order_with_empty_levels_marked() -> None:
    b = book_with([(BUY, 100, 5), (SELL, 101, 1), (SELL, 102, 2)])
    assert b.snapshot(3).tolist() == [
        [101, 1, 100, 5],
        [102, 2, NO_PRICE, 0],
        [NO_PRICE, 0, NO_PRICE, 0],
    ]


def test_clear_of_one_side_keeps_the_other_and_side_zero_clears_both() -> None:
    b = book_with([(BUY, 100, 5), (SELL, 101, 1)])
    b.apply(KIND_CLEAR, BUY, 0, 0)
    assert (b.best_bid, b.best_ask) == (None, 101)
    b.apply(KIND_CLEAR, SELL, 0, 0)
    assert (b.best_bid, b.best_ask) == (None, None)
    b = book_with([(BUY, 100, 5), (SELL, 101, 1)])
    b.apply(KIND_CLEAR, 0, 0, 0)
    assert b.n_levels == (0, 0)
    assert b.qty_at(BUY, 100) == 0


def test_snapshot_after_clear_rebuilds_the_book() -> None:
    b = book_with([(BUY, 100, 5), (SELL, 101, 1)])
    ev = make_events(
        kind=[KIND_CLEAR, KIND_LEVEL, KIND_LEVEL, KIND_LEVEL],
        side=[0, BUY, BUY, SELL],
        price=[0, 95, 94, 97],
        qty=[0, 3, 8, 6],
        flags=[FLAG_SNAPSHOT, FLAG_SNAPSHOT, FLAG_SNAPSHOT, FLAG_SNAPSHOT | FLAG_LAST],
    )
    b.apply_events(ev)
    assert b.snapshot(2).tolist() == [[97, 6, 95, 3], [NO_PRICE, 0, 94, 8]]
    assert b.qty_at(BUY, 100) == 0


def test_bbo_removes_better_levels_and_sets_the_best() -> None:
    b = book_with([(BUY, 100, 5), (BUY, 99, 4), (BUY, 98, 2), (SELL, 101, 1)])
    b.apply(KIND_BBO, BUY, 99, 7)
    assert b.depth(BUY, 5).tolist() == [[99, 7], [98, 2]]
    b.apply(KIND_BBO, SELL, 102, 3)  # the ask at 101 is gone, 102 is the best
    assert b.depth(SELL, 5).tolist() == [[102, 3]]
    b.apply(KIND_BBO, BUY, 100, 1)  # a better best bid: deeper levels stay
    assert b.depth(BUY, 5).tolist() == [[100, 1], [99, 7], [98, 2]]


def test_bbo_with_zero_quantity_empties_the_top_through_that_price() -> None:
    b = book_with([(SELL, 101, 1), (SELL, 103, 2)])
    b.apply(KIND_BBO, SELL, 101, 0)
    assert b.depth(SELL, 5).tolist() == [[103, 2]]


def test_trade_and_status_leave_the_book_unchanged() -> None:
    b = book_with([(BUY, 100, 5), (SELL, 101, 1)])
    assert b.apply(KIND_TRADE, BUY, 101, 1) == IGNORED
    assert b.apply(KIND_STATUS, 0, 0, 3) == IGNORED
    assert b.snapshot(1).tolist() == [[101, 1, 100, 5]]
    assert b.stats["ignored"] == 0  # trades are not book events: nothing to count


def test_l3_kinds_are_ignored_and_counted() -> None:
    b = L2Book(n_ticks=64)
    assert b.apply(KIND_ADD, BUY, 100, 5) == IGNORED
    assert b.best_bid is None
    assert b.stats["ignored"] == 1


def test_crossed_bid_removes_the_stale_asks_it_crosses() -> None:
    b = book_with([(BUY, 100, 5), (SELL, 101, 1), (SELL, 102, 2), (SELL, 104, 3)])
    b.apply(KIND_LEVEL, BUY, 102, 9)  # asks at 101 and 102 are stale
    assert (b.best_bid, b.best_ask) == (102, 104)
    assert b.qty_at(SELL, 102) == 0
    assert b.depth(BUY, 3).tolist() == [[102, 9], [100, 5]]
    assert b.stats["crossed_removed"] == 2


def test_crossed_ask_removes_the_stale_bids_it_crosses() -> None:
    b = book_with([(BUY, 100, 5), (BUY, 99, 4), (BUY, 97, 1), (SELL, 101, 1)])
    b.apply(KIND_LEVEL, SELL, 99, 6)
    assert b.depth(BUY, 3).tolist() == [[97, 1]]
    assert b.depth(SELL, 3).tolist() == [[99, 6], [101, 1]]
    assert b.stats["crossed_removed"] == 2


def test_removing_a_level_never_crosses() -> None:
    b = book_with([(BUY, 100, 5), (SELL, 101, 1)])
    b.apply(KIND_LEVEL, BUY, 101, 0)  # nothing there: a no-op, the ask stays
    assert (b.best_bid, b.best_ask) == (100, 101)
    assert b.stats["crossed_removed"] == 0


def test_first_update_centres_the_window_on_it() -> None:
    b = book_with([(BUY, 5000, 1)], n_ticks=16)
    assert b.base == 5000 - 8


def test_update_outside_window_recentres_on_the_touch_and_keeps_levels_that_leave() -> None:
    # window 16 ticks; the first update centres it on 100: base 92, window [92, 108)
    b = book_with([(BUY, 100, 5), (BUY, 92, 1), (SELL, 102, 2)], n_ticks=16)
    assert b.base == 92
    # an ask at 108 is outside: re-centre on the mid (100 + 102) // 2 = 101, base 93, so the
    # bid at 92 leaves the window for the far list
    assert b.apply(KIND_LEVEL, SELL, 108, 4) == APPLIED
    assert b.base == 93
    assert b.n_far_levels == (1, 0)
    assert b.qty_at(BUY, 92) == 1
    assert b.depth(BUY, 5).tolist() == [[100, 5], [92, 1]]
    assert b.depth(SELL, 5).tolist() == [[102, 2], [108, 4]]
    assert b.stats["recentres"] == 1
    # a bid at 85 is too far below the touch for any window on it: the window stays
    b.apply(KIND_LEVEL, BUY, 85, 3)
    assert b.base == 93
    assert b.n_far_levels == (2, 0)
    # the near levels go: the far bid at 92 is the touch; the next update outside the
    # window centres it on 92 (base 84), which brings both far bids back in
    for side, price in ((BUY, 100), (SELL, 102), (SELL, 108)):
        b.apply(KIND_LEVEL, side, price, 0)
    assert (b.best_bid, b.best_bid_qty, b.best_ask) == (92, 1, None)
    b.apply(KIND_LEVEL, BUY, 88, 2)
    assert b.base == 84
    assert b.n_far_levels == (0, 0)
    assert b.depth(BUY, 5).tolist() == [[92, 1], [88, 2], [85, 3]]


def test_new_best_outside_window_recentres_on_the_new_touch() -> None:
    b = book_with([(BUY, 100, 5), (SELL, 102, 2)], n_ticks=16)
    b.apply(KIND_LEVEL, BUY, 102, 0)
    b.apply(KIND_LEVEL, SELL, 102, 0)
    # an ask at 108 is outside [92, 108) and the spread (8) is half the window: centre on
    # the new ask, base 100 (the bid at 100 just stays in)
    b.apply(KIND_LEVEL, SELL, 108, 1)
    assert b.base == 100
    assert b.n_far_levels == (0, 0)
    # a bid at 117 crosses the ask at 108, which goes as stale; centred on the new bid
    # (no ask left), base 109: the bid at 100 moves to the far list
    b.apply(KIND_LEVEL, BUY, 117, 3)
    assert b.base == 109
    assert (b.best_bid, b.best_ask) == (117, None)
    assert b.stats["crossed_removed"] == 1
    assert b.n_far_levels == (1, 0)
    assert b.depth(BUY, 5).tolist() == [[117, 3], [100, 5]]


def test_update_far_from_the_touch_is_kept_without_moving_the_window() -> None:
    b = book_with([(BUY, 100, 5), (SELL, 101, 2)], n_ticks=16)
    base = b.base
    assert b.apply(KIND_LEVEL, BUY, 60, 3) == APPLIED
    assert b.base == base  # the window did not move
    assert b.qty_at(BUY, 60) == 3
    assert b.snapshot(2).tolist() == [[101, 2, 100, 5], [NO_PRICE, 0, 60, 3]]
    assert b.apply(KIND_LEVEL, BUY, 60, 7) == APPLIED  # a far level changes in place
    assert b.depth(BUY, 5).tolist() == [[100, 5], [60, 7]]
    assert b.apply(KIND_LEVEL, BUY, 60, 0) == APPLIED
    assert b.depth(BUY, 5).tolist() == [[100, 5]]
    assert b.n_far_levels == (0, 0)


def test_removal_of_a_level_the_book_does_not_hold_is_a_no_op() -> None:
    b = book_with([(BUY, 100, 5)], n_ticks=16)
    assert b.apply(KIND_LEVEL, SELL, 500, 0) == APPLIED
    assert b.base == 92
    assert b.stats == {"recentres": 0, "crossed_removed": 0, "ignored": 0,
                       "far_levels_peak": 0}


def test_prices_far_apart_recentre_with_wide_spread_on_the_updated_side() -> None:
    # the spread (1000) is wider than half the window: centre on the new best bid
    b = book_with([(SELL, 2000, 1)], n_ticks=16)
    b.apply(KIND_LEVEL, BUY, 1000, 5)
    assert b.base == 992
    assert (b.best_bid, b.best_ask) == (1000, 2000)
    assert b.n_far_levels == (0, 1)
    # the ask changes: the window jumps to it, the bid moves to the far list
    b.apply(KIND_LEVEL, SELL, 2000, 2)
    assert b.base == 1992
    assert (b.best_bid, b.best_bid_qty, b.best_ask, b.best_ask_qty) == (1000, 5, 2000, 2)
    assert b.n_far_levels == (1, 0)


def test_negative_prices_work_like_any_others() -> None:
    b = book_with([(BUY, -7, 2), (BUY, -5, 3), (SELL, -3, 4)], n_ticks=16)
    assert (b.best_bid, b.best_ask) == (-5, -3)
    assert b.base == -15
    b.apply(KIND_LEVEL, SELL, 1, 1)  # outside [-15, 1): mid (-5 - 3) // 2 = -4, base -12
    assert b.base == -12
    assert b.snapshot(2).tolist() == [[-3, 4, -5, 3], [1, 1, -7, 2]]
    assert b.apply(KIND_LEVEL, BUY, -13, 1) == APPLIED  # far below the touch: kept
    assert b.depth(BUY, 5).tolist() == [[-5, 3], [-7, 2], [-13, 1]]
    b.apply(KIND_LEVEL, BUY, -5, 0)
    assert b.best_bid == -7
    b.apply(KIND_LEVEL, SELL, -7, 9)  # crosses the bid at -7; the far bid at -13 stays
    assert (b.best_bid, b.best_ask) == (-13, -7)
    assert b.qty_at(SELL, -7) == 9


def _depth(meta: np.ndarray, qty: np.ndarray, side: int) -> list[list[int]]:
    out = np.zeros((64, 2), np.int64)
    return out[: l2_depth(meta, qty, side, 64, out)].tolist()


def test_far_list_over_capacity_reports_book_full_after_applying_the_event() -> None:
    meta, qty = l2_new(8, far_levels=2)
    l2_apply(meta, qty, KIND_LEVEL, BUY, 100, 1)
    l2_apply(meta, qty, KIND_LEVEL, SELL, 101, 1)
    codes = [l2_apply(meta, qty, KIND_LEVEL, SELL, 1000 * k, k) for k in (1, 2, 3)]
    assert codes == [APPLIED, APPLIED, BOOK_FULL]
    assert _depth(meta, qty, SELL) == [[101, 1], [1000, 1], [2000, 2], [3000, 3]]  # applied
    meta, qty = l2_made_room(meta, qty)
    assert meta[M_FCAP] == 6
    assert l2_apply(meta, qty, KIND_LEVEL, SELL, 4000, 4) == APPLIED
    assert _depth(meta, qty, SELL)[-2:] == [[3000, 3], [4000, 4]]
    assert _depth(meta, qty, BUY) == [[100, 1]]


def test_python_face_grows_its_far_lists_without_limit() -> None:
    b = L2Book(n_ticks=8, far_levels=1)
    b.apply(KIND_LEVEL, BUY, 100, 1)
    b.apply(KIND_LEVEL, SELL, 101, 1)
    for k in range(1, 500):
        assert b.apply(KIND_LEVEL, SELL, 101 + 10 * k, k) == APPLIED
        assert b.apply(KIND_LEVEL, BUY, 100 - 10 * k, k) == APPLIED
    assert b.n_levels == (500, 500)
    assert b.depth(SELL, 500)[-1].tolist() == [101 + 4990, 499]
    assert b.depth(BUY, 500)[-1].tolist() == [100 - 4990, 499]


def test_a_book_whose_full_signal_is_ignored_refuses_what_it_has_no_room_for() -> None:
    # far_levels=1 and an 8-tick window: room for 1 + 8 + 1 = 10 far levels a side
    meta, qty = l2_new(8, far_levels=1)
    for p in range(96, 101):
        l2_apply(meta, qty, KIND_LEVEL, BUY, p, 1)
    assert meta[M_BASE] == 96
    codes = [l2_apply(meta, qty, KIND_LEVEL, BUY, p, 2) for p in range(11)]
    assert codes == [APPLIED] + [BOOK_FULL] * 10
    assert meta[M_FBID] == 10  # the 11th was refused, not written past the array
    assert l2_qty_at(meta, qty, BUY, 9) == 2
    assert l2_qty_at(meta, qty, BUY, 10) == 0
    # a re-centre that would move more levels to the far list than it has room for is
    # refused before anything changes
    before = _depth(meta, qty, BUY)
    assert l2_apply(meta, qty, KIND_LEVEL, SELL, 200, 1) == BOOK_FULL
    assert meta[M_BASE] == 96
    assert _depth(meta, qty, BUY) == before
    assert meta[M_FASK] == 0
    assert l2_best_ask(meta, qty) == NO_PRICE


def test_window_width_must_be_even_and_not_tiny() -> None:
    with pytest.raises(ConfigError, match="n_ticks"):
        L2Book(n_ticks=7)
    with pytest.raises(ConfigError, match="n_ticks"):
        L2Book(n_ticks=4)


def test_compiled_functions_work_on_rows_of_stacked_books() -> None:
    # the engine keeps one book per instrument in stacked arrays
    m0, q0 = l2_new(32)
    metas = np.stack([m0, m0.copy()])
    qtys = np.stack([q0, q0.copy()])
    l2_apply(metas[0], qtys[0], KIND_LEVEL, BUY, 100, 5)
    l2_apply(metas[1], qtys[1], KIND_LEVEL, SELL, -40, 2)
    assert l2_best_bid(metas[0], qtys[0]) == 100
    assert l2_best_ask(metas[0], qtys[0]) == NO_PRICE
    assert l2_best_ask(metas[1], qtys[1]) == -40
    assert l2_qty_at(metas[1], qtys[1], SELL, -40) == 2


def test_plain_python_kernels_agree_with_compiled_ones() -> None:
    results = []
    for fn_set, fn_depth, fn_snap in (
        (l2_set_level, l2_depth, l2_snapshot),
        (l2_set_level.py_func, l2_depth.py_func, l2_snapshot.py_func),
    ):
        meta, qty = l2_new(16)
        for side, price, q in [(BUY, 100, 5), (BUY, 98, 1), (SELL, 103, 2), (SELL, 120, 7),
                               (BUY, 104, 3)]:
            fn_set(meta, qty, side, price, q)
        out = np.zeros((4, 2), np.int64)
        n = fn_depth(meta, qty, SELL, 4, out)
        snap = np.zeros(8, np.int64)
        fn_snap(meta, qty, 2, snap)
        results.append((int(meta[M_BASE]), out[:n].tolist(), snap.tolist()))
    assert results[0] == results[1]
    # the ask at 120 is far from the touch (kept in the far list); bid 104 crossed the ask
    # at 103
    assert results[0] == (92, [[120, 7]], [120, 7, 104, 3, NO_PRICE, 0, 100, 5])


# --- property: the book equals a dict of levels with the crossed-update policy ------------

level_events = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.integers(990, 1010), st.integers(0, 4)),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(level_events)
def test_random_level_updates_match_a_dict_of_levels(updates: list[tuple[int, int, int]]) -> None:
    b = L2Book(n_ticks=64)
    model: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}
    for side, price, q in updates:
        b.apply(KIND_LEVEL, side, price, q)
        if q == 0:
            model[side].pop(price, None)
        else:
            model[side][price] = q
            other = model[-side]
            for p in [p for p in other if (p <= price if side == BUY else p >= price)]:
                del other[p]
        bids = sorted(model[BUY].items(), reverse=True)
        asks = sorted(model[SELL].items())
        assert b.depth(BUY, 64).tolist() == [list(x) for x in bids]
        assert b.depth(SELL, 64).tolist() == [list(x) for x in asks]
        assert b.best_bid == (bids[0][0] if bids else None)
        assert b.best_ask == (asks[0][0] if asks else None)
