"""The books hold every level at any price: random streams whose touch wanders while quotes
rest anywhere in a huge range (tick 1, 10**9, negative prices, 10**12 away) equal a dict of
price -> lots after every event -- through the Python faces, the compiled batch kernels, the
replayer's rows and the L3 -> L2 projection. Windows are tiny and far lists start at one
level, so every event that leaves the window, every re-centre and every growth is exercised.
A slow test runs it all again with numba's bounds checking on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.book.l2 import (
    NO_PRICE,
    L2Book,
    LevelView,
    l2_best_ask,
    l2_best_bid,
    l2_next_level,
)
from framework.book.l3 import L3Book
from framework.book.project import L3ToL2
from framework.book.replay import BookReplayer
from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    SELL,
    EventArray,
    make_events,
)
from tests.book_reference import RefL2, RefL3

REPO = Path(__file__).resolve().parents[2]
NT = 16  #: window width: tiny, so most prices are outside it
EXTREMES = [1, 10**9, -(10**9), -1, 0, 200_000, 10**12, -(10**12)]

# a price is near the wandering touch (an offset from it) or anywhere
prices = st.one_of(
    st.tuples(st.just("near"), st.integers(-12, 12)),
    st.tuples(st.just("near"), st.integers(-40, 40)),
    st.tuples(st.just("at"), st.sampled_from(EXTREMES)),
    st.tuples(st.just("at"), st.integers(-(10**12), 10**12)),
)
jumps = st.sampled_from([0, 0, 0, 0, 1, -1, 7, -7, 60, -60, 5_000, -5_000])


def _price(spec: tuple[str, int], centre: int) -> int:
    how, v = spec
    return centre + v if how == "near" else v


l2_ops = st.lists(
    st.tuples(
        st.sampled_from([KIND_LEVEL] * 8 + [KIND_BBO, KIND_CLEAR]),
        st.sampled_from([BUY, SELL]),
        prices,
        st.integers(0, 5),
        jumps,
    ),
    min_size=1,
    max_size=120,
)

l3_ops = st.lists(
    st.tuples(
        st.sampled_from([KIND_ADD] * 4 + [KIND_CANCEL, KIND_EXECUTE, KIND_DELETE, KIND_MODIFY,
                                          KIND_MODIFY]),
        st.integers(1, 30),  # order id (some unknown when used)
        st.sampled_from([BUY, SELL]),
        prices,
        st.integers(0, 6),
        jumps,
    ),
    min_size=1,
    max_size=150,
)


def _l2_events(ops: list[tuple[int, int, tuple[str, int], int, int]]) -> EventArray:
    centre = 3_000
    rows = []
    for kind, side, spec, q, jump in ops:
        centre += jump
        rows.append((kind, 0 if kind == KIND_CLEAR and q == 0 else side, _price(spec, centre), q))
    k, s, p, q = zip(*rows, strict=True)
    n = len(rows)
    return make_events(exch_ts=np.arange(n), local_ts=np.arange(n), kind=k, side=s, price=p,
                       qty=q, flags=[FLAG_LAST] * n)


def _l3_events(ops: list[tuple[int, int, int, tuple[str, int], int, int]]) -> EventArray:
    """Orders rest on their side of the wandering touch, as on a real day (an L3 book takes
    crossed orders too; only the projection test needs an uncrossed book)."""
    centre = 3_000
    rows = []
    for kind, oid, side, spec, q, jump in ops:
        centre += jump
        p = _price(spec, centre)
        rows.append((kind, oid, side, min(p, centre - 1) if side == BUY else max(p, centre), q))
    k, o, s, p, q = zip(*rows, strict=True)
    n = len(rows)
    return make_events(exch_ts=np.arange(n), local_ts=np.arange(n), kind=k, order_id=o,
                       side=s, price=p, qty=q, flags=[FLAG_LAST] * n)


def _walk(book: LevelView, side: int) -> list[int]:
    """Prices of a side from the best through l2_next_level, as the venue's taker walks."""
    best = l2_best_bid if side == BUY else l2_best_ask
    out = []
    p = best(book.meta, book.qty)
    while p != NO_PRICE:
        out.append(int(p))
        p = l2_next_level(book.meta, book.qty, side, p)
    return out


def assert_same_levels(book: LevelView, want: dict[int, list[list[int]]],
                       probes: list[int]) -> None:
    """Every question the book answers agrees with the reference's levels."""
    for side in (BUY, SELL):
        w = want[side]
        assert book.depth(side, len(w) + 3).tolist() == w
        assert _walk(book, side) == [p for p, _ in w]
        held = dict(w)
        for p in [*held, *probes]:
            assert book.qty_at(side, p) == held.get(p, 0)
    assert book.best_bid == (want[BUY][0][0] if want[BUY] else None)
    assert book.best_ask == (want[SELL][0][0] if want[SELL] else None)
    assert book.best_bid_qty == (want[BUY][0][1] if want[BUY] else 0)
    assert book.best_ask_qty == (want[SELL][0][1] if want[SELL] else 0)
    assert book.n_levels == (len(want[BUY]), len(want[SELL]))


@settings(max_examples=150, deadline=None)
@given(l2_ops)
def test_l2_book_equals_a_dict_of_levels_at_any_price(ops: list) -> None:
    ev = _l2_events(ops)
    book = L2Book(n_ticks=NT, far_levels=1)
    ref = RefL2()
    snaps = []
    for e in ev:
        args = (int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"]))
        book.apply(*args)
        ref.apply(*args)
        want = {s: ref.depth(s) for s in (BUY, SELL)}
        assert_same_levels(book, want, [int(e["price"]), *EXTREMES])
        snaps.append(ref.snapshot(3))
    # the compiled batch kernel, and the replayer's rows after every event
    batch = L2Book(n_ticks=NT, far_levels=1)
    batch.apply_events(ev)
    assert_same_levels(batch, {s: ref.depth(s) for s in (BUY, SELL)}, EXTREMES)
    rep = BookReplayer(levels=3, l3=False, n_ticks=NT)
    assert rep.feed(ev[: len(ev) // 2]).tolist() + rep.feed(ev[len(ev) // 2 :]).tolist() == snaps


@settings(max_examples=150, deadline=None)
@given(l3_ops)
def test_l3_book_equals_a_dict_of_orders_at_any_price(ops: list) -> None:
    ev = _l3_events(ops)
    book = L3Book(capacity=64, n_ticks=NT, far_levels=1)
    ref = RefL3()
    snaps = []
    crossed = False
    for e in ev:
        kind, oid, side = int(e["kind"]), int(e["order_id"]), int(e["side"])
        price, q = int(e["price"]), int(e["qty"])
        book.apply(kind, side, price, q, order_id=oid)
        ref.apply(kind, oid, side, price, q)
        want = {s: ref.depth(s) for s in (BUY, SELL)}
        assert_same_levels(book, want, [price, *EXTREMES])
        for s in (BUY, SELL):
            for p, _ in want[s]:
                assert book.queue(s, p) == ref.queue(s, p)
        assert book.n_orders == len(ref.orders)
        for k, (s, p, q_left, _) in ref.orders.items():
            assert book.order(k) == (s, p, q_left)
            ahead = ref.queue(s, p)
            ahead = ahead[: ahead.index(k)]
            assert book.queue_ahead(k) == sum(ref.orders[i][2] for i in ahead)
        snaps.append(ref.snapshot(3))
        crossed |= bool(want[BUY] and want[SELL] and want[BUY][0][0] >= want[SELL][0][0])
    final = {s: ref.depth(s) for s in (BUY, SELL)}
    batch = L3Book(capacity=64, n_ticks=NT, far_levels=1)
    batch.apply_events(ev)
    assert_same_levels(batch, final, EXTREMES)
    # the replayer starts with a tiny pool too: both grow as the stream needs
    rep = BookReplayer(levels=3, l3=True, n_ticks=NT, capacity=2)
    assert rep.feed(ev[: len(ev) // 3]).tolist() + rep.feed(ev[len(ev) // 3 :]).tolist() == snaps
    if crossed:  # an L2 book removes crossed levels as stale: no like-for-like comparison
        return
    # the projection's level updates rebuild the same levels in an L2 book
    proj = L3ToL2(capacity=2, n_ticks=NT)
    l2 = L2Book(n_ticks=NT, far_levels=1)
    l2.apply_events(proj(ev[: len(ev) // 2]))
    l2.apply_events(proj(ev[len(ev) // 2 :]))
    assert_same_levels(l2, final, EXTREMES)


@pytest.mark.slow
def test_property_tests_under_numba_bounds_checking_write_nothing_out_of_bounds(
    tmp_path: Path,
) -> None:
    """The far lists and re-centring index raw arrays: with bounds checking on, any stray
    index raises instead of corrupting memory."""
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "nbcache"),
               HFTLAB_NUMBA_CACHE=str(tmp_path / "nbcache"))
    tests = [
        "tests/property/test_book_any_price.py",
        "tests/unit/book/test_l2.py",
        "tests/unit/book/test_l3.py",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider",
         *tests],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
