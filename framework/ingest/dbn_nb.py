"""Compiled kernels of the Databento DBN importer (numba, over one instrument's records).

:func:`mbo_to_events_nb` turns MBO records into L3 event columns that build Databento's book
(deletes told from partial cancels, message boundaries kept); :func:`mbp_to_events_nb` turns
MBP-1/MBP-10 records into the ``KIND_LEVEL`` diffs that keep an L2 book equal to each record's
top levels.
Both return plain columns (exch_ts, local_ts, price, qty, order_id, kind, side, flags) that
:mod:`framework.ingest.dbn` packs into events.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

from framework.core.events import (
    BUY,
    FLAG_IMPLIED,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    FLAG_TOB,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_TRADE,
    SELL,
)

UNDEF_PRICE = np.iinfo(np.int64).max

_A = ord("A")
_B = ord("B")
_C = ord("C")
_F = ord("F")
_M = ord("M")
_N = ord("N")
_R = ord("R")
_T = ord("T")


@njit(cache=True)
def side_code_nb(c: int) -> int:
    """DBN side byte to BUY/SELL/NO_SIDE ('B' bid = buy, 'A' ask = sell)."""
    if c == _B:
        return BUY
    if c == _A:
        return SELL
    return 0


@njit(cache=True)
def _alloc(n: int):
    return (
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.zeros(n, np.uint64),
        np.empty(n, np.uint8),
        np.zeros(n, np.int8),
        np.empty(n, np.uint32),
    )


#: counters :func:`mbo_to_events_nb` returns, by index
MBO_FILLS = 0  #: F records: change no book and print nothing (the execution's T prints)
MBO_NONE = 1  #: N records
MBO_MODIFY_ADDS = 2  #: M records of orders not in the book, taken as adds
MBO_CANCEL_UNKNOWN = 3  #: C records of orders not in the book (kept as KIND_CANCEL)
MBO_ZERO_SIZE = 4  #: A/C/T records of size 0 (no book change, no print)
MBO_NO_SIDE = 5  #: A/M records without a side (no book they could join)
MBO_UNKNOWN_ACTION = 6  #: records whose action is none of A M C R T F N
MBO_IMPLIED_CLEARS = 7  #: snapshots that began without an R: the book is cleared first
MBO_TOB = 8  #: F_TOB adds (top-of-book venues)
MBO_COUNTERS = 9


@njit(cache=True, inline="always")
def _put(ex, lo, px, qt, oid, kd, sd, fl, k, t_ex, t_lo, p, q, o, kind, s, f):
    ex[k] = t_ex
    lo[k] = t_lo
    px[k] = p
    qt[k] = q
    oid[k] = o
    kd[k] = kind
    sd[k] = s
    fl[k] = f
    return k + 1


@njit(cache=True)
def mbo_to_events_nb(ts_event, ts_recv, action, side, price, size, order_id, flags):
    """MBO records (one instrument of one publisher) to event columns plus counters.

    Databento's MBO semantics (docs: "order tracking", "limit order book"): A, M, C and R
    change the book, T and F do not. A adds an order (with F_TOB: the side's only level, which
    replaces the side; no level when the price is undefined); M sets an order's price and
    size, and adds it when the book does not hold it; C removes ``size`` lots; R clears the
    book. So A -> KIND_ADD, M -> KIND_MODIFY (KIND_ADD for an order not in the book, KIND_DELETE
    at size 0), C -> KIND_CANCEL of the lots removed (KIND_DELETE when that empties the order),
    R -> KIND_CLEAR, T -> KIND_TRADE (the print; side = aggressor, order_id as given, 0 for
    most venues). F (a resting order's share of a T) changes no book -- the C or M the venue
    sends with it does -- and is no print of its own, so it gives no event; neither does N.
    An F_TOB add gives KIND_CLEAR of its side and, when priced, KIND_BBO (both FLAG_TOB).
    A snapshot (F_SNAPSHOT run) that does not begin with R clears the book first (an implied
    KIND_CLEAR), as the snapshot is the whole book.

    ``flags`` are hftlab flags. FLAG_LAST goes on the last event of each venue event (the
    records up to one with DBN's F_LAST), the only place the book is consistent; an event
    that gives no events gives no FLAG_LAST, and records after the last F_LAST give none.

    Returns ``(columns..., counters)`` (counter indices ``MBO_*``).
    """
    n = ts_event.shape[0]
    extra = 0  # events beyond one per record: F_TOB adds, snapshot starts (implied clears)
    for i in range(n):
        if (action[i] == _A and (flags[i] & FLAG_TOB)) or (
            (flags[i] & FLAG_SNAPSHOT) and (i == 0 or not flags[i - 1] & FLAG_SNAPSHOT)
        ):
            extra += 1
    ex, lo, px, qt, oid, kd, sd, fl = _alloc(n + extra)
    live = Dict.empty(key_type=types.uint64, value_type=types.int64)  # order id -> lots
    live_side = Dict.empty(key_type=types.uint64, value_type=types.int64)
    counts = np.zeros(MBO_COUNTERS, np.int64)
    k = 0
    msg_start = 0
    in_snapshot = False
    for i in range(n):
        a = action[i]
        o = order_id[i]
        q = np.int64(size[i])
        s = side_code_nb(side[i])
        p = price[i]
        te = ts_event[i]
        tr = ts_recv[i]
        f = flags[i] & ~np.uint32(FLAG_LAST)
        snap = (flags[i] & FLAG_SNAPSHOT) != 0
        if snap and not in_snapshot and a != _R and len(live) > 0:
            k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, 0, 0, 0, KIND_CLEAR, 0,
                     f | FLAG_IMPLIED)
            live.clear()
            live_side.clear()
            counts[MBO_IMPLIED_CLEARS] += 1
        in_snapshot = snap
        if a == _A or a == _M:
            if s == 0:
                counts[MBO_NO_SIDE] += 1
            elif a == _A and (flags[i] & FLAG_TOB):
                counts[MBO_TOB] += 1
                k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, 0, 0, 0, KIND_CLEAR, s, f)
                if p != UNDEF_PRICE and q > 0:
                    k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, p, q, o, KIND_BBO, s,
                             f)
            elif a == _M and o in live:
                if q > 0:
                    live[o] = q
                    k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, p, q, o, KIND_MODIFY,
                             s, f)
                else:
                    k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, p, live[o], o,
                             KIND_DELETE, s, f)
                    del live[o]
                    del live_side[o]
            elif q > 0:
                if a == _M:
                    counts[MBO_MODIFY_ADDS] += 1
                live[o] = q
                live_side[o] = s
                k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, p, q, o, KIND_ADD, s, f)
            else:
                counts[MBO_ZERO_SIZE] += 1
        elif a == _C:
            if q <= 0:
                counts[MBO_ZERO_SIZE] += 1
            elif o in live:
                rem = live[o]
                if q >= rem:
                    k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, p, q, o, KIND_DELETE,
                             s, f)
                    del live[o]
                    del live_side[o]
                else:
                    live[o] = rem - q
                    k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, p, q, o, KIND_CANCEL,
                             s, f)
            else:
                counts[MBO_CANCEL_UNKNOWN] += 1
                k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, p, q, o, KIND_CANCEL, s, f)
        elif a == _R:
            if s == 0:
                live.clear()
                live_side.clear()
            else:
                gone = [x for x in live_side if live_side[x] == s]
                for x in gone:
                    del live[x]
                    del live_side[x]
            k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, 0, 0, 0, KIND_CLEAR, s, f)
        elif a == _T:
            if q > 0:
                k = _put(ex, lo, px, qt, oid, kd, sd, fl, k, te, tr, p, q, o, KIND_TRADE, s, f)
            else:
                counts[MBO_ZERO_SIZE] += 1
        elif a == _F:
            counts[MBO_FILLS] += 1
        elif a == _N:
            counts[MBO_NONE] += 1
        else:
            counts[MBO_UNKNOWN_ACTION] += 1
        if flags[i] & FLAG_LAST:
            if k > msg_start:
                fl[k - 1] |= FLAG_LAST
            msg_start = k
    return ex[:k], lo[:k], px[:k], qt[:k], oid[:k], kd[:k], sd[:k], fl[:k], counts


@njit(cache=True)
def _diff_side(
    old_px, old_sz, new_px, new_sz, s, t_ex, t_lo, f, ex, lo, px, qt, kd, sd, fl, k
):
    depth = new_px.shape[0]
    for j in range(depth):  # levels that left the visible book
        p = old_px[j]
        if p == UNDEF_PRICE:
            continue
        found = False
        for m in range(depth):
            if new_px[m] == p:
                found = True
                break
        if not found:
            ex[k] = t_ex
            lo[k] = t_lo
            px[k] = p
            qt[k] = 0
            kd[k] = KIND_LEVEL
            sd[k] = s
            fl[k] = f
            k += 1
    for j in range(depth):  # levels that are new or changed size
        p = new_px[j]
        if p == UNDEF_PRICE:
            continue
        same = False
        for m in range(depth):
            if old_px[m] == p:
                same = old_sz[m] == new_sz[j]
                break
        if not same:
            ex[k] = t_ex
            lo[k] = t_lo
            px[k] = p
            qt[k] = new_sz[j]
            kd[k] = KIND_LEVEL
            sd[k] = s
            fl[k] = f
            k += 1
    return k


@njit(cache=True)
def mbp_to_events_nb(
    ts_event, ts_recv, action, side, price, size, flags, bid_px, bid_sz, ask_px, ask_sz
):
    """MBP-1/MBP-10 records (one instrument) to KIND_LEVEL diffs (+ trades, clears).

    Each record carries the top ``depth`` levels after its action. The events make an L2
    book equal to exactly those levels: a level that left the visible range gets qty 0, a
    new or resized level gets its size; unchanged levels emit nothing. An action T also
    emits KIND_TRADE (side = aggressor), an action R a KIND_CLEAR. ``flags`` must not hold
    FLAG_LAST: the last event of each record gets it here.
    """
    n = ts_event.shape[0]
    depth = bid_px.shape[1]
    ex, lo, px, qt, oid, kd, sd, fl = _alloc(n * (2 + 4 * depth))
    ob_px = np.full(depth, UNDEF_PRICE, np.int64)
    ob_sz = np.zeros(depth, np.int64)
    oa_px = np.full(depth, UNDEF_PRICE, np.int64)
    oa_sz = np.zeros(depth, np.int64)
    k = 0
    for i in range(n):
        start = k
        f = flags[i]
        a = action[i]
        if a == _R:
            ex[k] = ts_event[i]
            lo[k] = ts_recv[i]
            px[k] = 0
            qt[k] = 0
            kd[k] = KIND_CLEAR
            sd[k] = 0
            fl[k] = f
            k += 1
            ob_px[:] = UNDEF_PRICE
            oa_px[:] = UNDEF_PRICE
        elif a == _T:
            ex[k] = ts_event[i]
            lo[k] = ts_recv[i]
            px[k] = price[i]
            qt[k] = size[i]
            kd[k] = KIND_TRADE
            sd[k] = side_code_nb(side[i])
            fl[k] = f
            k += 1
        k = _diff_side(ob_px, ob_sz, bid_px[i], bid_sz[i], BUY, ts_event[i], ts_recv[i], f,
                       ex, lo, px, qt, kd, sd, fl, k)
        k = _diff_side(oa_px, oa_sz, ask_px[i], ask_sz[i], SELL, ts_event[i], ts_recv[i], f,
                       ex, lo, px, qt, kd, sd, fl, k)
        ob_px[:] = bid_px[i]
        ob_sz[:] = bid_sz[i]
        oa_px[:] = ask_px[i]
        oa_sz[:] = ask_sz[i]
        if k > start:
            fl[k - 1] |= FLAG_LAST
    return ex[:k], lo[:k], px[:k], qt[:k], oid[:k], kd[:k], sd[:k], fl[:k]
