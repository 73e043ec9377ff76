"""L2 price-level book over dense arrays in integer ticks.

State is two plain numpy arrays, so compiled code can keep one book per instrument (stack
them: ``meta[k, :]``, ``qty[k, :, :]``) and the compiled functions below work on a row:

* ``meta``: int64[:data:`L2_META_SIZE`] -- the window's base tick and width, the best bid /
  ask as window indices, level counts per side and statistics (``M_*`` indices);
* ``qty``: int64[2, n_ticks] -- lots resting at ``base + i`` ticks; row 0 bids, row 1 asks.

The window holds ``n_ticks`` consecutive ticks. An update outside it re-centres the window on
the touch (the middle of best bid and ask, or the updated side's best when the spread is wide);
levels that fall outside are dropped and counted in ``meta[M_DROPPED_LEVELS]``. An update still
outside the re-centred window is dropped and counted in ``meta[M_DROPPED_UPDATES]`` (it is a
level far from the touch; it comes back when the feed next sets it). Removing a level outside
the window is a no-op. Prices may be negative (spreads); everything is integer arithmetic.

Crossed updates: a bid level set at or above the best ask (or an ask at or below the best bid)
means the opposite levels are stale -- a real L2 feed sent their removal later or not at all.
The opposite levels it crosses are removed and counted in ``meta[M_CROSSED_REMOVED]``; the new
level stands. ``KIND_BBO`` applies the same rule.

Kinds: ``KIND_LEVEL`` sets a level (qty 0 removes it); ``KIND_CLEAR`` empties ``side`` (0 = both);
``KIND_BBO`` makes ``price`` the best on its side (better levels are removed, the level gets
``qty``; qty 0 also removes it); ``KIND_TRADE``, ``KIND_STATUS`` and L3 kinds leave the book
alone (counted in ``meta[M_IGNORED]`` when they are L3 kinds: feed them to an L3 book). A
snapshot is a ``KIND_CLEAR`` followed by ``FLAG_SNAPSHOT`` levels: nothing special is needed.
"""

# Compiled kernels take their state arrays and event fields positionally (numba has no
# keyword-only arguments), so the positional-argument limit does not apply here.

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

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

IntArray = npt.NDArray[np.int64]

#: price returned for a missing level (no best bid, empty depth slot)
NO_PRICE: Final = np.iinfo(np.int64).min

# --- results of an apply call -------------------------------------------------------------
APPLIED: Final = 0
IGNORED: Final = 1  #: not a book change for this kind of book (trade, status, wrong kind)
DROPPED: Final = 2  #: a level too far from the touch to fit the window
UNKNOWN_ID: Final = 3  #: L3: the event names an order the book does not hold
POOL_FULL: Final = 4  #: L3: no free order slot; raise the capacity

# --- meta layout (an L3 book's meta starts with the same fields) -------------------------
M_BASE: Final = 0  #: tick of window index 0
M_NT: Final = 1  #: window width in ticks
M_BID: Final = 2  #: window index of the best bid, -1 when there is no bid
M_ASK: Final = 3  #: window index of the best ask, ``n_ticks`` when there is no ask
M_NBID: Final = 4  #: occupied bid levels
M_NASK: Final = 5  #: occupied ask levels
M_RECENTRES: Final = 6  #: window shifts that moved occupied levels
M_DROPPED_LEVELS: Final = 7  #: occupied levels dropped by re-centring
M_DROPPED_UPDATES: Final = 8  #: updates outside even the re-centred window
M_CROSSED_REMOVED: Final = 9  #: opposite levels removed by the crossed-update policy
M_IGNORED: Final = 10  #: events of a kind this book does not apply
L2_META_SIZE: Final = 16

STAT_NAMES: Final[dict[str, int]] = {
    "recentres": M_RECENTRES,
    "dropped_levels": M_DROPPED_LEVELS,
    "dropped_updates": M_DROPPED_UPDATES,
    "crossed_removed": M_CROSSED_REMOVED,
    "ignored": M_IGNORED,
}


def l2_new(n_ticks: int = 4096, *, meta_size: int = L2_META_SIZE) -> tuple[IntArray, IntArray]:
    """Fresh ``(meta, qty)`` arrays of an empty book with a window of ``n_ticks`` ticks."""
    if not isinstance(n_ticks, int | np.integer) or n_ticks < 8 or n_ticks % 2:
        msg = f"n_ticks={n_ticks!r}: the book window must be an even number of ticks >= 8"
        raise ConfigError(msg)
    meta = np.zeros(meta_size, np.int64)
    qty = np.zeros((2, int(n_ticks)), np.int64)
    l2_reset(meta, qty)
    return meta, qty


@njit(cache=True)
def l2_reset(meta: IntArray, qty: IntArray) -> None:
    """Empty the book and zero its statistics (keeps the window width)."""
    nt = qty.shape[1]
    meta[:] = 0
    meta[M_NT] = nt
    meta[M_BID] = -1
    meta[M_ASK] = nt
    qty[:, :] = 0


@njit(cache=True, inline="always")
def side_index(side: int) -> int:
    """Row of a side in the ``qty`` array: 0 for BUY (+1), 1 for SELL (-1)."""
    return 0 if side > 0 else 1


# Hot-path helpers are inlined at numba IR level (inline="always"): as separate calls each one
# passes and reference-counts its arrays, which made a level update ~4x slower (85 ns vs 21 ns,
# benchmarks/bench_book.py). Rare paths (re-centring) stay calls to keep compile time down.

# --- internals shared with the L3 book ----------------------------------------------------


@njit(cache=True, inline="always")
def _rescan(meta: IntArray, qty: IntArray, s: int, x: int) -> None:
    """Find side ``s``'s best from index ``x`` outward (its old best just emptied)."""
    nt = meta[M_NT]
    if s == 0:
        if meta[M_NBID] == 0:
            meta[M_BID] = -1
            return
        while x >= 0 and qty[0, x] == 0:
            x -= 1
        meta[M_BID] = x
    else:
        if meta[M_NASK] == 0:
            meta[M_ASK] = nt
            return
        while x < nt and qty[1, x] == 0:
            x += 1
        meta[M_ASK] = x


@njit(cache=True, inline="always")
def _level_change(meta: IntArray, qty: IntArray, s: int, x: int, new: int) -> None:
    """Set level ``x`` of side ``s`` to ``new`` lots, keeping counts and best current."""
    old = qty[s, x]
    qty[s, x] = new
    if old == 0 and new != 0:
        meta[M_NBID + s] += 1
        if s == 0:
            meta[M_BID] = max(meta[M_BID], x)
        elif x < meta[M_ASK]:
            meta[M_ASK] = x
    elif old != 0 and new == 0:
        meta[M_NBID + s] -= 1
        if x == meta[M_BID + s]:
            _rescan(meta, qty, s, x)


@njit(cache=True)
def _plan_base(meta: IntArray, s: int, p: int) -> int:
    """Base tick of a window centred on the touch that fits price ``p`` of side ``s``;
    ``NO_PRICE`` when ``p`` is too far from the touch to fit."""
    nt = meta[M_NT]
    half = nt // 2
    base = meta[M_BASE]
    has = (meta[M_NBID] > 0, meta[M_NASK] > 0)
    best = (base + meta[M_BID], base + meta[M_ASK])
    # the touch on the updated side once this update is in
    t = p
    if has[s]:
        t = max(p, best[0]) if s == 0 else min(p, best[1])
    c = t
    o = 1 - s
    if has[o]:
        spread = best[1] - t if s == 0 else t - best[0]
        if spread < half:  # both touches fit comfortably: centre on the mid
            c = (t + best[o]) // 2
    nb = c - half
    if p < nb or p >= nb + nt:
        return NO_PRICE
    return nb


@njit(cache=True)
def _shift_row(a: IntArray, d: int, fill: int) -> None:
    """Move a window row so index ``i`` holds what index ``i + d`` held."""
    n = a.shape[0]
    if d > 0:
        for i in range(n):
            a[i] = a[i + d] if i + d < n else fill
    elif d < 0:
        for i in range(n - 1, -1, -1):
            a[i] = a[i + d] if i + d >= 0 else fill


@njit(cache=True)
def _shift_l2(meta: IntArray, qty: IntArray, nb: int) -> None:
    """Move the window to base ``nb``; occupied levels that leave it are dropped, counted."""
    nt = meta[M_NT]
    d = nb - meta[M_BASE]
    if d == 0:
        return
    if meta[M_NBID] + meta[M_NASK] > 0:
        meta[M_RECENTRES] += 1
        lo, hi = (0, min(d, nt)) if d > 0 else (max(nt + d, 0), nt)
        for s in range(2):
            gone = 0
            for i in range(lo, hi):
                if qty[s, i] != 0:
                    gone += 1
            meta[M_NBID + s] -= gone
            meta[M_DROPPED_LEVELS] += gone
            _shift_row(qty[s], d, 0)
    meta[M_BASE] = nb
    _rescan(meta, qty, 0, nt - 1)
    _rescan(meta, qty, 1, 0)


@njit(cache=True, inline="always")
def _remove_crossed(meta: IntArray, qty: IntArray, s: int, x: int) -> None:
    """A level of side ``s`` at index ``x`` makes opposite levels at or through it stale."""
    if s == 0:
        while meta[M_NASK] > 0 and meta[M_ASK] <= x:
            _level_change(meta, qty, 1, meta[M_ASK], 0)
            meta[M_CROSSED_REMOVED] += 1
    else:
        while meta[M_NBID] > 0 and meta[M_BID] >= x:
            _level_change(meta, qty, 0, meta[M_BID], 0)
            meta[M_CROSSED_REMOVED] += 1


@njit(cache=True, inline="always")
def _clear_side(meta: IntArray, qty: IntArray, s: int) -> None:
    qty[s, :] = 0
    meta[M_NBID + s] = 0
    meta[M_BID + s] = -1 if s == 0 else meta[M_NT]


# --- the compiled API ------------------------------------------------------------------------


@njit(cache=True, inline="always")
def l2_set_level(meta: IntArray, qty: IntArray, side: int, price: int, q: int) -> int:
    """Level ``price`` on ``side`` now holds ``q`` lots (0 removes it). Returns a result code."""
    s = side_index(side)
    x = price - meta[M_BASE]
    if x < 0 or x >= meta[M_NT]:
        if q == 0:
            return APPLIED  # nothing rests outside the window
        nb = _plan_base(meta, s, price)
        if nb == NO_PRICE:
            meta[M_DROPPED_UPDATES] += 1
            return DROPPED
        _shift_l2(meta, qty, nb)
        x = price - nb
    if q != 0:
        _remove_crossed(meta, qty, s, x)
    _level_change(meta, qty, s, x, q)
    return APPLIED


@njit(cache=True, inline="always")
def l2_set_bbo(meta: IntArray, qty: IntArray, side: int, price: int, q: int) -> int:
    """``price`` is now the best on ``side`` with ``q`` lots: better levels are removed."""
    s = side_index(side)
    nt = meta[M_NT]
    x = price - meta[M_BASE]
    if q != 0 and (x < 0 or x >= nt):
        nb = _plan_base(meta, s, price)
        if nb == NO_PRICE:  # cannot happen for a new best, kept for safety
            meta[M_DROPPED_UPDATES] += 1
            return DROPPED
        _shift_l2(meta, qty, nb)
        x = price - nb
    if s == 0:
        while meta[M_NBID] > 0 and meta[M_BID] > x:
            _level_change(meta, qty, 0, meta[M_BID], 0)
    else:
        while meta[M_NASK] > 0 and meta[M_ASK] < x:
            _level_change(meta, qty, 1, meta[M_ASK], 0)
    if 0 <= x < nt:
        if q != 0:
            _remove_crossed(meta, qty, s, x)
        _level_change(meta, qty, s, x, q)
    return APPLIED


@njit(cache=True, inline="always")
def l2_clear(meta: IntArray, qty: IntArray, side: int) -> None:
    """Empty ``side`` (0 = both sides)."""
    if side >= 0:
        _clear_side(meta, qty, 0)
    if side <= 0:
        _clear_side(meta, qty, 1)


@njit(cache=True, inline="always")
def l2_apply(meta: IntArray, qty: IntArray, kind: int, side: int, price: int, q: int) -> int:
    """Apply one event's fields; returns ``APPLIED``, ``IGNORED`` or ``DROPPED``."""
    if kind == KIND_LEVEL:
        if side == 0:
            meta[M_IGNORED] += 1
            return IGNORED
        return l2_set_level(meta, qty, side, price, q)
    if kind == KIND_BBO:
        if side == 0:
            meta[M_IGNORED] += 1
            return IGNORED
        return l2_set_bbo(meta, qty, side, price, q)
    if kind == KIND_CLEAR:
        l2_clear(meta, qty, side)
        return APPLIED
    if kind in (KIND_ADD, KIND_MODIFY, KIND_CANCEL, KIND_DELETE, KIND_EXECUTE):
        meta[M_IGNORED] += 1
    return IGNORED


@njit(cache=True)
def l2_apply_events(meta: IntArray, qty: IntArray, events: EventArray) -> None:
    """Apply a whole event array in order (one compiled call per batch)."""
    for i in range(events.shape[0]):
        e = events[i]
        l2_apply(meta, qty, e["kind"], e["side"], e["price"], e["qty"])


@njit(cache=True, inline="always")
def l2_best_bid(meta: IntArray, qty: IntArray) -> int:
    """Best bid in ticks, or ``NO_PRICE``."""
    return meta[M_BASE] + meta[M_BID] if meta[M_NBID] > 0 else NO_PRICE


@njit(cache=True, inline="always")
def l2_best_ask(meta: IntArray, qty: IntArray) -> int:
    """Best ask in ticks, or ``NO_PRICE``."""
    return meta[M_BASE] + meta[M_ASK] if meta[M_NASK] > 0 else NO_PRICE


@njit(cache=True, inline="always")
def l2_best_bid_qty(meta: IntArray, qty: IntArray) -> int:
    """Lots at the best bid (0 when there is none)."""
    return qty[0, meta[M_BID]] if meta[M_NBID] > 0 else 0


@njit(cache=True, inline="always")
def l2_best_ask_qty(meta: IntArray, qty: IntArray) -> int:
    """Lots at the best ask (0 when there is none)."""
    return qty[1, meta[M_ASK]] if meta[M_NASK] > 0 else 0


@njit(cache=True, inline="always")
def l2_qty_at(meta: IntArray, qty: IntArray, side: int, price: int) -> int:
    """Lots resting at ``price`` on ``side`` (0 outside the window)."""
    x = price - meta[M_BASE]
    if x < 0 or x >= meta[M_NT]:
        return 0
    return qty[side_index(side), x]


@njit(cache=True)
def l2_depth(meta: IntArray, qty: IntArray, side: int, n: int, out: IntArray) -> int:
    """Write up to ``n`` occupied levels of ``side``, best first, as ``out[k] = (price, qty)``
    (``out`` is int64[>= n, 2]); returns how many were written."""
    s = side_index(side)
    nt = meta[M_NT]
    base = meta[M_BASE]
    left = meta[M_NBID + s]
    k = 0
    x = meta[M_BID + s]
    step = -1 if s == 0 else 1
    while k < n and left > 0 and 0 <= x < nt:
        v = qty[s, x]
        if v != 0:
            out[k, 0] = base + x
            out[k, 1] = v
            k += 1
            left -= 1
        x += step
    return k


@njit(cache=True)
def l2_snapshot(meta: IntArray, qty: IntArray, levels: int, out: IntArray) -> None:
    """Top ``levels`` levels in LOBSTER's column order into ``out`` (int64[4 * levels]):
    ask price, ask qty, bid price, bid qty for level 1..levels; empty levels are
    ``(NO_PRICE, 0)``."""
    nt = meta[M_NT]
    base = meta[M_BASE]
    for s in range(2):
        col = 2 if s == 0 else 0
        left = meta[M_NBID + s]
        x = meta[M_BID + s]
        step = -1 if s == 0 else 1
        k = 0
        while k < levels and left > 0 and 0 <= x < nt:
            v = qty[s, x]
            if v != 0:
                out[4 * k + col] = base + x
                out[4 * k + col + 1] = v
                k += 1
                left -= 1
            x += step
        while k < levels:
            out[4 * k + col] = NO_PRICE
            out[4 * k + col + 1] = 0
            k += 1


# --- Python face -----------------------------------------------------------------------------


def _price_or_none(p: int) -> int | None:
    return None if p == NO_PRICE else int(p)


class LevelView:
    """The L2 questions every book answers from its ``meta`` and ``qty`` arrays
    (shared by :class:`L2Book` and :class:`~framework.book.l3.L3Book`)."""

    meta: IntArray
    qty: IntArray

    @property
    def best_bid(self) -> int | None:
        return _price_or_none(l2_best_bid(self.meta, self.qty))

    @property
    def best_ask(self) -> int | None:
        return _price_or_none(l2_best_ask(self.meta, self.qty))

    @property
    def best_bid_qty(self) -> int:
        return int(l2_best_bid_qty(self.meta, self.qty))

    @property
    def best_ask_qty(self) -> int:
        return int(l2_best_ask_qty(self.meta, self.qty))

    def qty_at(self, side: int, price: int) -> int:
        """Lots resting at ``price`` on ``side``."""
        return int(l2_qty_at(self.meta, self.qty, side, price))

    def depth(self, side: int, n: int) -> IntArray:
        """Up to ``n`` levels of ``side``, best first, as int64[k, 2] rows of (price, qty)."""
        out = np.empty((n, 2), np.int64)
        k = l2_depth(self.meta, self.qty, side, n, out)
        return out[:k]

    def snapshot(self, levels: int) -> IntArray:
        """int64[levels, 4] rows of (ask price, ask qty, bid price, bid qty); empty levels
        are ``(NO_PRICE, 0)``."""
        out = np.empty(4 * levels, np.int64)
        l2_snapshot(self.meta, self.qty, levels, out)
        return out.reshape(levels, 4)


class L2Book(LevelView):
    """A price-level book for use from Python; the arrays are ``meta`` and ``qty``.

    >>> from framework.core.events import BUY, SELL, KIND_LEVEL
    >>> b = L2Book(n_ticks=64)
    >>> _ = b.apply(KIND_LEVEL, BUY, 100, 5); _ = b.apply(KIND_LEVEL, SELL, 102, 7)
    >>> b.best_bid, b.best_ask, b.qty_at(SELL, 102)
    (100, 102, 7)
    """

    def __init__(self, *, n_ticks: int = 4096) -> None:
        self.meta, self.qty = l2_new(n_ticks)

    def apply(self, kind: int, side: int, price: int, qty: int) -> int:
        """Apply one event's fields; returns ``APPLIED``, ``IGNORED`` or ``DROPPED``."""
        return int(l2_apply(self.meta, self.qty, kind, side, price, qty))

    def apply_events(self, events: EventArray) -> None:
        """Apply an event array in order."""
        l2_apply_events(self.meta, self.qty, events)


    @property
    def base(self) -> int:
        """Tick of the window's first index."""
        return int(self.meta[M_BASE])

    @property
    def n_levels(self) -> tuple[int, int]:
        """Occupied (bid, ask) levels."""
        return int(self.meta[M_NBID]), int(self.meta[M_NASK])

    @property
    def stats(self) -> dict[str, int]:
        """Counters: re-centres, dropped levels and updates, crossed removals, ignored."""
        return {k: int(self.meta[i]) for k, i in STAT_NAMES.items()}

    def reset(self) -> None:
        l2_reset(self.meta, self.qty)
