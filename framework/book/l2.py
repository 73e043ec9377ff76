"""L2 price-level book in integer ticks: a dense window near the touch, and every other
level in a sorted list per side, so the book holds a level at any price.

State is two plain numpy arrays, so compiled code can keep one book per instrument (stack
them: ``meta[k, :]``, ``qty[k, :, :]``) and the compiled functions below work on a row:

* ``meta``: int64[:data:`L2_META_SIZE`] -- the window's base tick and width, the best bid /
  ask as window indices, level counts per side, the far lists' sizes and capacity, and
  statistics (``M_*`` indices);
* ``qty``: int64[2, :func:`l2_width`] -- row 0 bids, row 1 asks. Columns ``0 .. n_ticks-1``
  are the window: lots resting at ``base + i`` ticks. The columns after it are the side's
  *far list*: the levels outside the window as ``F_COLS``-column entries (price, lots, and
  the head / tail of the level's order queue for an L3 book), sorted worst first (bids by
  rising price, asks by falling price), so the levels nearest the touch sit at its end
  where changes are cheap.

An update inside the window is a couple of array writes. An update outside it re-centres
the window on the touch (the middle of best bid and ask, or the updated side's best when
the spread is wide) when the price fits there: window levels that leave move to the far
list and far levels that come into range move into the window. A price that does not fit
even then (a quote far from the touch) goes to the far list. Prices may be negative
(spreads); everything is integer arithmetic. Best, depth, snapshot and quantity questions
see both parts.

The far list holds ``far_levels`` levels a side (``meta[M_FCAP]``), plus room for what one
more event can move there. An event that leaves more than ``far_levels`` far levels on a
side is applied and returns ``BOOK_FULL``: the caller grows the book (:func:`l2_grown`;
the Python faces and the replayers do it themselves) or stops with an error (the engine,
whose books live in one fixed arena). Nothing is ever dropped silently; a book whose
caller ignores ``BOOK_FULL`` refuses, with ``BOOK_FULL`` again, any later change it has no
room for rather than write outside its arrays.

Crossed updates: a bid level set at or above the best ask (or an ask at or below the best
bid) means the opposite levels are stale -- a real L2 feed sent their removal later or not
at all. The opposite levels it crosses are removed and counted in
``meta[M_CROSSED_REMOVED]``; the new level stands. ``KIND_BBO`` applies the same rule.

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
from framework.core.jit import inline, outline

IntArray = npt.NDArray[np.int64]

#: price returned for a missing level (no best bid, empty depth slot)
NO_PRICE: Final = np.iinfo(np.int64).min

# --- results of an apply call -------------------------------------------------------------
APPLIED: Final = 0
IGNORED: Final = 1  #: not a book change for this kind of book (trade, status, wrong kind)
UNKNOWN_ID: Final = 3  #: L3: the event names an order the book does not hold
POOL_FULL: Final = 4  #: L3: no free order slot (nothing was applied); grow the pool
#: the event was applied, but a side now holds more far levels than ``far_levels``: grow
#: the book before the next event (or stop). Also returned, with nothing applied, by a
#: change the book has no room left for.
BOOK_FULL: Final = 5

# --- meta layout (an L3 book's meta starts with the same fields) -------------------------
M_BASE: Final = 0  #: tick of window index 0
M_NT: Final = 1  #: window width in ticks
M_BID: Final = 2  #: window index of the best bid in the window, -1 when it holds none
M_ASK: Final = 3  #: window index of the best ask in the window, ``n_ticks`` when none
M_NBID: Final = 4  #: occupied bid levels in the window
M_NASK: Final = 5  #: occupied ask levels in the window
M_FBID: Final = 6  #: bid levels in the far list
M_FASK: Final = 7  #: ask levels in the far list
M_FBID_UP: Final = 8  #: far bid levels better than the whole window (at the list's end)
M_FASK_UP: Final = 9  #: far ask levels better than the whole window
M_FCAP: Final = 10  #: far levels a side the book holds before it reports BOOK_FULL
M_RECENTRES: Final = 11  #: window moves that moved occupied levels
M_CROSSED_REMOVED: Final = 12  #: opposite levels removed by the crossed-update policy
M_IGNORED: Final = 13  #: events of a kind this book does not apply
M_FAR_PEAK: Final = 14  #: most far levels one side held at once
L2_META_SIZE: Final = 16

# --- far-list entry columns ----------------------------------------------------------------
F_PRICE: Final = 0
F_QTY: Final = 1
F_HEAD: Final = 2  #: L3: first order slot queued at the level (-1 in an L2 book)
F_TAIL: Final = 3
F_COLS: Final = 4

#: far levels a side a book made from Python starts with (it grows when it needs more)
FAR_LEVELS: Final = 1024

STAT_NAMES: Final[dict[str, int]] = {
    "recentres": M_RECENTRES,
    "crossed_removed": M_CROSSED_REMOVED,
    "ignored": M_IGNORED,
    "far_levels_peak": M_FAR_PEAK,
}


def l2_width(n_ticks: int, far_levels: int) -> int:
    """Columns of a ``qty`` row: the window, then ``far_levels`` far entries plus room for
    what one event can move out of the window (all of it) and one more level."""
    return int(n_ticks) + F_COLS * (int(far_levels) + int(n_ticks) + 1)


def _check_sizes(n_ticks: object, far_levels: object) -> None:
    if not isinstance(n_ticks, int | np.integer) or n_ticks < 8 or n_ticks % 2:
        msg = f"n_ticks={n_ticks!r}: the book window must be an even number of ticks >= 8"
        raise ConfigError(msg)
    if not isinstance(far_levels, int | np.integer) or far_levels < 1:
        msg = f"far_levels={far_levels!r}: give the far levels a side the book holds, 1 or more"
        raise ConfigError(msg)


def l2_init(meta: IntArray, qty: IntArray, n_ticks: int, far_levels: int) -> None:
    """Make ``(meta, qty)`` (``qty`` of :func:`l2_width` columns) an empty book."""
    _check_sizes(n_ticks, far_levels)
    if qty.shape[-1] != l2_width(n_ticks, far_levels):
        msg = (
            f"qty has {qty.shape[-1]} columns; a book of {n_ticks} ticks and {far_levels} "
            f"far levels needs {l2_width(n_ticks, far_levels)}"
        )
        raise ConfigError(msg)
    meta[M_NT] = n_ticks
    meta[M_FCAP] = far_levels
    l2_reset(meta, qty)


def l2_new(n_ticks: int = 4096, *, far_levels: int = FAR_LEVELS,
           meta_size: int = L2_META_SIZE) -> tuple[IntArray, IntArray]:
    """Fresh ``(meta, qty)`` arrays of an empty book with a window of ``n_ticks`` ticks."""
    _check_sizes(n_ticks, far_levels)
    meta = np.zeros(meta_size, np.int64)
    qty = np.zeros((2, l2_width(n_ticks, far_levels)), np.int64)
    l2_init(meta, qty, int(n_ticks), int(far_levels))
    return meta, qty


def l2_grown(meta: IntArray, qty: IntArray, far_levels: int) -> tuple[IntArray, IntArray]:
    """A copy of the book whose far lists hold ``far_levels`` levels a side (>= now)."""
    nt = int(meta[M_NT])
    if far_levels < meta[M_FCAP]:
        msg = f"far_levels={far_levels} is below the book's {int(meta[M_FCAP])}; it only grows"
        raise ConfigError(msg)
    new_qty = np.zeros((2, l2_width(nt, far_levels)), np.int64)
    for s in range(2):
        used = nt + F_COLS * int(meta[M_FBID + s])
        new_qty[s, :used] = qty[s, :used]
    new_meta = meta.copy()
    new_meta[M_FCAP] = far_levels
    return new_meta, new_qty


def l2_far_full(meta: IntArray) -> bool:
    """Whether a side holds more far levels than the book's ``far_levels`` (grow it)."""
    return bool(max(meta[M_FBID], meta[M_FASK]) > meta[M_FCAP])


def l2_far_target(meta: IntArray) -> int:
    """The far capacity to grow to: twice the current one, or the most levels a side holds
    when that is more; as now when no side is over it."""
    if not l2_far_full(meta):
        return int(meta[M_FCAP])
    return 2 * int(max(meta[M_FBID], meta[M_FASK], meta[M_FCAP]))


def l2_made_room(meta: IntArray, qty: IntArray) -> tuple[IntArray, IntArray]:
    """The book, grown to :func:`l2_far_target` when a side is over its far capacity."""
    if not l2_far_full(meta):
        return meta, qty
    return l2_grown(meta, qty, l2_far_target(meta))


@outline(python=True)
def l2_reset(meta: IntArray, qty: IntArray) -> None:
    """Empty the book and zero its statistics (keeps the window width and far capacity)."""
    nt = meta[M_NT]
    fcap = meta[M_FCAP]
    meta[:] = 0
    meta[M_NT] = nt
    meta[M_FCAP] = fcap
    meta[M_BID] = -1
    meta[M_ASK] = nt
    qty[:, :nt] = 0


@inline
def side_index(side: int) -> int:
    """Row of a side in the ``qty`` array: 0 for BUY (+1), 1 for SELL (-1)."""
    return 0 if side > 0 else 1


# Hot-path helpers are inlined by LLVM (framework.core.jit.inline): as separate calls each one
# passes and reference-counts its arrays, which made a level update ~4x slower (85 ns vs 21 ns,
# benchmarks/bench_book.py). Rare paths (far levels, re-centring) stay calls (outline) to keep
# compile time down.

# --- the far lists -----------------------------------------------------------------------------


@inline
def _fc(meta: IntArray, j: int, c: int) -> int:
    """Column of field ``c`` of far entry ``j``."""
    return meta[M_NT] + F_COLS * j + c


@inline
def _worse(s: int, a: int, b: int) -> bool:
    """Price ``a`` is worse than ``b`` for side ``s``."""
    return a < b if s == 0 else a > b


@inline
def _beyond(meta: IntArray, s: int, p: int) -> bool:
    """A price outside the window lies beyond it on the better side for side ``s``."""
    return p >= meta[M_BASE] + meta[M_NT] if s == 0 else p < meta[M_BASE]


@outline
def far_search(meta: IntArray, qty: IntArray, s: int, p: int) -> int:
    """Index of the first far level of side ``s`` not worse than ``p`` (the count if none)."""
    lo = 0
    hi = meta[M_FBID + s]
    nt = meta[M_NT]
    while lo < hi:
        mid = (lo + hi) >> 1
        if _worse(s, qty[s, nt + F_COLS * mid], p):
            lo = mid + 1
        else:
            hi = mid
    return lo


@outline
def far_find(meta: IntArray, qty: IntArray, s: int, p: int) -> int:
    """Index of the far level of side ``s`` at price ``p``, or -1."""
    j = far_search(meta, qty, s, p)
    if j < meta[M_FBID + s] and qty[s, _fc(meta, j, F_PRICE)] == p:
        return j
    return -1


@outline
def _far_best(meta: IntArray, qty: IntArray, s: int, c: int) -> int:
    """Field ``c`` of the best far level of side ``s`` (NO_PRICE / 0 when there is none)."""
    n = meta[M_FBID + s]
    if n == 0:
        return NO_PRICE if c == F_PRICE else 0
    return qty[s, _fc(meta, n - 1, c)]


@outline
def far_insert(meta: IntArray, qty: IntArray, s: int, j: int, p: int, q: int) -> None:
    """Insert level ``p`` with ``q`` lots (and an empty queue) at far index ``j``; the caller
    checked there is room."""
    n = meta[M_FBID + s]
    row = qty[s]
    lo = _fc(meta, j, 0)
    for c in range(_fc(meta, n, 0) - 1, lo - 1, -1):
        row[c + F_COLS] = row[c]
    row[lo + F_PRICE] = p
    row[lo + F_QTY] = q
    row[lo + F_HEAD] = -1
    row[lo + F_TAIL] = -1
    meta[M_FBID + s] = n + 1
    if _beyond(meta, s, p):
        meta[M_FBID_UP + s] += 1
    meta[M_FAR_PEAK] = max(meta[M_FAR_PEAK], n + 1)


@outline
def far_remove(meta: IntArray, qty: IntArray, s: int, j: int) -> None:
    """Remove far entry ``j`` of side ``s``."""
    n = meta[M_FBID + s]
    row = qty[s]
    if _beyond(meta, s, row[_fc(meta, j, F_PRICE)]):
        meta[M_FBID_UP + s] -= 1
    for c in range(_fc(meta, j, 0), _fc(meta, n - 1, 0)):
        row[c] = row[c + F_COLS]
    meta[M_FBID + s] = n - 1


@inline
def far_room(meta: IntArray, qty: IntArray) -> int:
    """Far entries a side has physically room for."""
    return (qty.shape[-1] - meta[M_NT]) // F_COLS


@inline
def full_or_applied(meta: IntArray) -> int:
    """``BOOK_FULL`` when a side holds more far levels than the book's capacity."""
    cap = meta[M_FCAP]
    return BOOK_FULL if meta[M_FBID] > cap or meta[M_FASK] > cap else APPLIED


# --- window internals shared with the L3 book -------------------------------------------------


@inline
def _rescan(meta: IntArray, qty: IntArray, s: int, x: int) -> None:
    """Find side ``s``'s best in the window from index ``x`` outward (its old best emptied)."""
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


@inline
def _level_change(meta: IntArray, qty: IntArray, s: int, x: int, new: int) -> None:
    """Set window level ``x`` of side ``s`` to ``new`` lots, keeping counts and best current."""
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


@inline
def _best(meta: IntArray, qty: IntArray, s: int) -> int:
    """Best price of side ``s`` over the window and the far list, or ``NO_PRICE``."""
    if meta[M_FBID_UP + s] == 0 and meta[M_NBID + s] > 0:
        return meta[M_BASE] + meta[M_BID + s]
    return _far_best(meta, qty, s, F_PRICE)


@outline
def plan_base(meta: IntArray, qty: IntArray, s: int, p: int) -> int:
    """Base tick of a window centred on the touch that fits price ``p`` of side ``s``;
    ``NO_PRICE`` when ``p`` is too far from the touch to fit."""
    nt = meta[M_NT]
    half = nt // 2
    b0 = _best(meta, qty, 0)
    b1 = _best(meta, qty, 1)
    # the touch on the updated side once this update is in
    t = p
    if s == 0 and b0 != NO_PRICE:
        t = max(p, b0)
    elif s == 1 and b1 != NO_PRICE:
        t = min(p, b1)
    c = t
    o = b1 if s == 0 else b0
    if o != NO_PRICE:
        spread = o - t if s == 0 else t - o
        if spread < half:  # both touches fit comfortably: centre on the mid
            c = (t + o) // 2
    nb = c - half
    if p < nb or p >= nb + nt:
        return NO_PRICE
    return nb


@outline
def recentre(meta: IntArray, qty: IntArray, ends: IntArray, nb: int, l3: bool) -> int:
    """Move the window to base ``nb``: window levels that leave it join the far lists, far
    levels inside it move in (with their queues' ends when ``l3``: ``ends`` is the L3
    book's int64[2, 2, n_ticks] of queue heads and tails). ``BOOK_FULL`` with nothing
    changed when a far list has no room for the levels that would leave."""
    nt = meta[M_NT]
    base = meta[M_BASE]
    if nb == base:
        return APPLIED
    total = meta[M_NBID] + meta[M_NASK] + meta[M_FBID] + meta[M_FASK]
    if total == 0:
        meta[M_BASE] = nb
        return APPLIED
    room = far_room(meta, qty)
    for s in range(2):  # count first: a far list without room refuses before any change
        out = 0
        for j in range(meta[M_FBID + s]):
            x = qty[s, _fc(meta, j, F_PRICE)] - nb
            if x < 0 or x >= nt:
                out += 1
        for x in range(nt):
            if qty[s, x] != 0 and (x + base - nb < 0 or x + base - nb >= nt):
                out += 1
        if out > room:
            return BOOK_FULL
    meta[M_RECENTRES] += 1
    for s in range(2):
        n = meta[M_FBID + s]
        up = meta[M_FBID_UP + s]
        levels = np.empty((n + meta[M_NBID + s], F_COLS), np.int64)
        k = 0
        for j in range(n - up):  # far levels worse than the window, worst first
            for c in range(F_COLS):
                levels[k, c] = qty[s, _fc(meta, j, c)]
            k += 1
        for i in range(nt):  # the window, worst first
            x = i if s == 0 else nt - 1 - i
            if qty[s, x] != 0:
                levels[k, F_PRICE] = base + x
                levels[k, F_QTY] = qty[s, x]
                levels[k, F_HEAD] = ends[s, 0, x] if l3 else -1
                levels[k, F_TAIL] = ends[s, 1, x] if l3 else -1
                k += 1
        for j in range(n - up, n):  # far levels better than the window
            for c in range(F_COLS):
                levels[k, c] = qty[s, _fc(meta, j, c)]
            k += 1
        qty[s, :nt] = 0
        if l3:
            ends[s, :, :] = -1
        nf = 0
        up = 0
        nw = 0
        for k in range(levels.shape[0]):
            x = levels[k, F_PRICE] - nb
            if 0 <= x < nt:
                qty[s, x] = levels[k, F_QTY]
                if l3:
                    ends[s, 0, x] = levels[k, F_HEAD]
                    ends[s, 1, x] = levels[k, F_TAIL]
                nw += 1
            else:
                for c in range(F_COLS):
                    qty[s, _fc(meta, nf, c)] = levels[k, c]
                nf += 1
                if (x >= nt) if s == 0 else (x < 0):
                    up += 1
        meta[M_NBID + s] = nw
        meta[M_FBID + s] = nf
        meta[M_FBID_UP + s] = up
        meta[M_FAR_PEAK] = max(meta[M_FAR_PEAK], nf)
    meta[M_BASE] = nb
    _rescan(meta, qty, 0, nt - 1)
    _rescan(meta, qty, 1, 0)
    return APPLIED


@outline
def _drop_far_up(meta: IntArray, qty: IntArray, s: int) -> None:
    """Remove side ``s``'s far levels beyond the window (a level inside it crossed them)."""
    up = meta[M_FBID_UP + s]
    meta[M_FBID + s] -= up
    meta[M_FBID_UP + s] = 0
    meta[M_CROSSED_REMOVED] += up


@inline
def _remove_crossed(meta: IntArray, qty: IntArray, s: int, x: int) -> None:
    """A level of side ``s`` at window index ``x`` makes opposite levels at or through it
    stale: those in the window and the far ones beyond the window on their better side."""
    if meta[M_FBID_UP + 1 - s] > 0:
        _drop_far_up(meta, qty, 1 - s)
    if s == 0:
        while meta[M_NASK] > 0 and meta[M_ASK] <= x:
            _level_change(meta, qty, 1, meta[M_ASK], 0)
            meta[M_CROSSED_REMOVED] += 1
    else:
        while meta[M_NBID] > 0 and meta[M_BID] >= x:
            _level_change(meta, qty, 0, meta[M_BID], 0)
            meta[M_CROSSED_REMOVED] += 1


@outline
def _remove_crossed_at(meta: IntArray, qty: IntArray, s: int, p: int) -> None:
    """:func:`_remove_crossed` for a price anywhere: opposite levels at or through ``p``."""
    o = 1 - s
    while True:
        b = _best(meta, qty, o)
        if b == NO_PRICE or _worse(s, p, b):  # p is worse than the opposite best: no cross
            return
        x = b - meta[M_BASE]
        if 0 <= x < meta[M_NT]:
            _level_change(meta, qty, o, x, 0)
        else:
            far_remove(meta, qty, o, meta[M_FBID + o] - 1)
        meta[M_CROSSED_REMOVED] += 1


@inline
def _clear_side(meta: IntArray, qty: IntArray, s: int) -> None:
    qty[s, : meta[M_NT]] = 0
    meta[M_NBID + s] = 0
    meta[M_BID + s] = -1 if s == 0 else meta[M_NT]
    meta[M_FBID + s] = 0
    meta[M_FBID_UP + s] = 0


@outline
def _set_far(meta: IntArray, qty: IntArray, s: int, p: int, q: int) -> int:
    """:func:`l2_set_level` for a price outside the window."""
    if q == 0:
        j = far_find(meta, qty, s, p)
        if j >= 0:
            far_remove(meta, qty, s, j)
        return APPLIED
    _remove_crossed_at(meta, qty, s, p)
    nb = plan_base(meta, qty, s, p)
    if nb != NO_PRICE:
        if recentre(meta, qty, np.empty((2, 2, 0), np.int64), nb, False) != APPLIED:
            return BOOK_FULL
        _level_change(meta, qty, s, p - nb, q)
        return full_or_applied(meta)
    j = far_search(meta, qty, s, p)
    if j < meta[M_FBID + s] and qty[s, _fc(meta, j, F_PRICE)] == p:
        qty[s, _fc(meta, j, F_QTY)] = q
        return APPLIED
    if meta[M_FBID + s] >= far_room(meta, qty):
        return BOOK_FULL
    far_insert(meta, qty, s, j, p, q)
    return full_or_applied(meta)


@outline
def _drop_far_better(meta: IntArray, qty: IntArray, s: int, p: int) -> None:
    """Remove side ``s``'s far levels strictly better than ``p`` (the end of its list)."""
    n = meta[M_FBID + s]
    j = far_search(meta, qty, s, p)
    if j < n and qty[s, _fc(meta, j, F_PRICE)] == p:
        j += 1
    meta[M_FBID + s] = j
    meta[M_FBID_UP + s] = max(0, meta[M_FBID_UP + s] - (n - j))


# --- the compiled API ------------------------------------------------------------------------


@inline(python=True)
def l2_set_level(meta: IntArray, qty: IntArray, side: int, price: int, q: int) -> int:
    """Level ``price`` on ``side`` now holds ``q`` lots (0 removes it). Returns a result code
    (``APPLIED``, or ``BOOK_FULL``: grow the book)."""
    s = side_index(side)
    x = price - meta[M_BASE]
    if x < 0 or x >= meta[M_NT]:
        return _set_far(meta, qty, s, price, q)
    if q != 0:
        _remove_crossed(meta, qty, s, x)
    _level_change(meta, qty, s, x, q)
    return APPLIED


@inline(python=True)
def l2_set_bbo(meta: IntArray, qty: IntArray, side: int, price: int, q: int) -> int:
    """``price`` is now the best on ``side`` with ``q`` lots: better levels are removed."""
    s = side_index(side)
    if meta[M_FBID + s] > 0:
        _drop_far_better(meta, qty, s, price)
    x = price - meta[M_BASE]
    if s == 0:
        while meta[M_NBID] > 0 and meta[M_BID] > x:
            _level_change(meta, qty, 0, meta[M_BID], 0)
    else:
        while meta[M_NASK] > 0 and meta[M_ASK] < x:
            _level_change(meta, qty, 1, meta[M_ASK], 0)
    return l2_set_level(meta, qty, side, price, q)


@inline(python=True)
def l2_clear(meta: IntArray, qty: IntArray, side: int) -> None:
    """Empty ``side`` (0 = both sides)."""
    if side >= 0:
        _clear_side(meta, qty, 0)
    if side <= 0:
        _clear_side(meta, qty, 1)


@inline(python=True)
def l2_apply(meta: IntArray, qty: IntArray, kind: int, side: int, price: int, q: int) -> int:
    """Apply one event's fields; returns ``APPLIED``, ``IGNORED`` or ``BOOK_FULL``."""
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


@outline(python=True)
def l2_apply_events(meta: IntArray, qty: IntArray, events: EventArray) -> int:
    """Apply an event array in order (one compiled call per batch); returns how many were
    applied: all of them, or fewer when the last one applied returned ``BOOK_FULL``."""
    for i in range(events.shape[0]):
        e = events[i]
        if l2_apply(meta, qty, e["kind"], e["side"], e["price"], e["qty"]) == BOOK_FULL:
            return i + 1
    return events.shape[0]


@inline(python=True)
def l2_best_bid(meta: IntArray, qty: IntArray) -> int:
    """Best bid in ticks, or ``NO_PRICE``."""
    return _best(meta, qty, 0)


@inline(python=True)
def l2_best_ask(meta: IntArray, qty: IntArray) -> int:
    """Best ask in ticks, or ``NO_PRICE``."""
    return _best(meta, qty, 1)


@inline(python=True)
def l2_best_bid_qty(meta: IntArray, qty: IntArray) -> int:
    """Lots at the best bid (0 when there is none)."""
    if meta[M_FBID_UP] == 0 and meta[M_NBID] > 0:
        return qty[0, meta[M_BID]]
    return _far_best(meta, qty, 0, F_QTY)


@inline(python=True)
def l2_best_ask_qty(meta: IntArray, qty: IntArray) -> int:
    """Lots at the best ask (0 when there is none)."""
    if meta[M_FASK_UP] == 0 and meta[M_NASK] > 0:
        return qty[1, meta[M_ASK]]
    return _far_best(meta, qty, 1, F_QTY)


@outline
def _far_qty(meta: IntArray, qty: IntArray, s: int, p: int) -> int:
    j = far_find(meta, qty, s, p)
    return 0 if j < 0 else qty[s, _fc(meta, j, F_QTY)]


@inline(python=True)
def l2_qty_at(meta: IntArray, qty: IntArray, side: int, price: int) -> int:
    """Lots resting at ``price`` on ``side``."""
    s = side_index(side)
    x = price - meta[M_BASE]
    if x < 0 or x >= meta[M_NT]:
        return _far_qty(meta, qty, s, price)
    return qty[s, x]


@outline(python=True)
def l2_next_level(meta: IntArray, qty: IntArray, side: int, price: int) -> int:
    """The best occupied level of ``side`` strictly worse than ``price``, or ``NO_PRICE``
    (walk a side with ``p = l2_best_bid(...)``, then ``p = l2_next_level(..., p)``)."""
    s = side_index(side)
    nt = meta[M_NT]
    base = meta[M_BASE]
    found = NO_PRICE
    if meta[M_NBID + s] > 0:
        if s == 0:
            x = min(price - base - 1, meta[M_BID])
            while x >= 0 and qty[0, x] == 0:
                x -= 1
            if x >= 0:
                found = base + x
        else:
            x = max(price - base + 1, meta[M_ASK])
            while x < nt and qty[1, x] == 0:
                x += 1
            if x < nt:
                found = base + x
    j = far_search(meta, qty, s, price) - 1  # the far level just worse than price
    if j >= 0:
        p = qty[s, _fc(meta, j, F_PRICE)]
        if found == NO_PRICE or _worse(s, found, p):
            found = p
    return found


@outline
def _collect(meta: IntArray, qty: IntArray, s: int, n: int, px: IntArray,
             lots: IntArray) -> int:
    """Up to ``n`` levels of side ``s``, best first, into ``px[k]`` and ``lots[k]``: the far
    levels beyond the window, the window, then the far levels behind it."""
    nt = meta[M_NT]
    base = meta[M_BASE]
    nf = meta[M_FBID + s]
    split = nf - meta[M_FBID_UP + s]
    k = 0
    j = nf - 1
    while k < n and j >= split:
        px[k] = qty[s, _fc(meta, j, F_PRICE)]
        lots[k] = qty[s, _fc(meta, j, F_QTY)]
        k += 1
        j -= 1
    left = meta[M_NBID + s]
    x = meta[M_BID + s]
    step = -1 if s == 0 else 1
    while k < n and left > 0 and 0 <= x < nt:
        v = qty[s, x]
        if v != 0:
            px[k] = base + x
            lots[k] = v
            k += 1
            left -= 1
        x += step
    j = split - 1
    while k < n and j >= 0:
        px[k] = qty[s, _fc(meta, j, F_PRICE)]
        lots[k] = qty[s, _fc(meta, j, F_QTY)]
        k += 1
        j -= 1
    return k


@outline(python=True)
def l2_depth(meta: IntArray, qty: IntArray, side: int, n: int, out: IntArray) -> int:
    """Write up to ``n`` occupied levels of ``side``, best first, as ``out[k] = (price, qty)``
    (``out`` is int64[>= n, 2]); returns how many were written."""
    return _collect(meta, qty, side_index(side), n, out[:, 0], out[:, 1])


@outline(python=True)
def l2_snapshot(meta: IntArray, qty: IntArray, levels: int, out: IntArray) -> None:
    """Top ``levels`` levels in LOBSTER's column order into ``out`` (int64[4 * levels]):
    ask price, ask qty, bid price, bid qty for level 1..levels; empty levels are
    ``(NO_PRICE, 0)``."""
    for s in range(2):
        col = 2 if s == 0 else 0
        px = out[col : 4 * levels : 4]
        lots = out[col + 1 : 4 * levels : 4]
        k = _collect(meta, qty, s, levels, px, lots)
        px[k:] = NO_PRICE
        lots[k:] = 0


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

    @property
    def base(self) -> int:
        """Tick of the window's first index."""
        return int(self.meta[M_BASE])

    @property
    def n_levels(self) -> tuple[int, int]:
        """Occupied (bid, ask) levels, window and far list together."""
        m = self.meta
        return int(m[M_NBID] + m[M_FBID]), int(m[M_NASK] + m[M_FASK])

    @property
    def n_far_levels(self) -> tuple[int, int]:
        """(bid, ask) levels held outside the window, in the far lists."""
        return int(self.meta[M_FBID]), int(self.meta[M_FASK])


class L2Book(LevelView):
    """A price-level book for use from Python; the arrays are ``meta`` and ``qty``. Its far
    lists grow whenever they fill up.

    >>> from framework.core.events import BUY, SELL, KIND_LEVEL
    >>> b = L2Book(n_ticks=64)
    >>> _ = b.apply(KIND_LEVEL, BUY, 100, 5); _ = b.apply(KIND_LEVEL, SELL, 102, 7)
    >>> _ = b.apply(KIND_LEVEL, SELL, 200_000, 3)  # far from the touch: in the far list
    >>> b.best_bid, b.best_ask, b.depth(SELL, 5).tolist(), b.n_far_levels
    (100, 102, [[102, 7], [200000, 3]], (0, 1))
    """

    def __init__(self, *, n_ticks: int = 4096, far_levels: int = FAR_LEVELS) -> None:
        self.meta, self.qty = l2_new(n_ticks, far_levels=far_levels)

    def apply(self, kind: int, side: int, price: int, qty: int) -> int:
        """Apply one event's fields; returns ``APPLIED`` or ``IGNORED``."""
        r = int(l2_apply(self.meta, self.qty, kind, side, price, qty))
        if r == BOOK_FULL:
            self.meta, self.qty = l2_made_room(self.meta, self.qty)
            r = APPLIED
        return r

    def apply_events(self, events: EventArray) -> None:
        """Apply an event array in order."""
        i = 0
        while i < len(events):
            i += int(l2_apply_events(self.meta, self.qty, events[i:]))
            self.meta, self.qty = l2_made_room(self.meta, self.qty)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: re-centres, crossed removals, ignored events, most far levels a side."""
        return {k: int(self.meta[i]) for k, i in STAT_NAMES.items()}

    def reset(self) -> None:
        l2_reset(self.meta, self.qty)
