"""Compiled kernels of the Databento DBN importer (numba, over one instrument's records).

:func:`mbo_to_events_nb` turns MBO records into L3 event columns (fills and their companion
cancels merged, deletes told from partial cancels); :func:`mbp_to_events_nb` turns MBP-1/MBP-10
records into the ``KIND_LEVEL`` diffs that keep an L2 book equal to each record's top levels.
Both return plain columns (exch_ts, local_ts, price, qty, order_id, kind, side, flags) that
:mod:`framework.ingest.dbn` packs into events.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_ADD,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
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


@njit(cache=True)
def mbo_to_events_nb(
    ts_event, ts_recv, action, side, price, size, order_id, flags
):
    """MBO records (one instrument) to event columns plus counters.

    DBN semantics (databento docs, "order tracking"): C removes ``size`` from an order (full
    or partial cancel); F (resting order filled) and T (aggressor trade) do not change the
    book because every fill is followed by a C that does. Here an F becomes KIND_EXECUTE
    (which reduces the order) and the C that follows it for the same order id is absorbed,
    so the fill is not taken off the book twice. A C that takes an order we saw added to
    zero becomes KIND_DELETE; otherwise KIND_CANCEL. N records are skipped. When a skipped or
    absorbed record carried FLAG_LAST, the flag moves to the previous event.

    Returns ``(columns..., n_events, n_none, n_absorbed, n_cancel_unknown)``.
    """
    n = ts_event.shape[0]
    ex, lo, px, qt, oid, kd, sd, fl = _alloc(n)
    remaining = Dict.empty(key_type=types.uint64, value_type=types.int64)
    pending = Dict.empty(key_type=types.uint64, value_type=types.int64)
    k = 0
    n_none = 0
    n_absorbed = 0
    n_unknown = 0
    for i in range(n):
        a = action[i]
        o = order_id[i]
        q = np.int64(size[i])
        kind = 0
        if a == _A:
            kind = KIND_ADD
            remaining[o] = q
        elif a == _M:
            kind = KIND_MODIFY
            remaining[o] = q
        elif a == _F:
            kind = KIND_EXECUTE
            pending[o] = pending.get(o, 0) + q
            if o in remaining:
                left = remaining[o] - q
                if left > 0:
                    remaining[o] = left
                else:
                    del remaining[o]
        elif a == _C:
            p = pending.get(o, 0)
            if p > 0:
                absorbed = min(p, q)
                if p - absorbed > 0:
                    pending[o] = p - absorbed
                else:
                    del pending[o]
                q -= absorbed
                n_absorbed += 1
            if q > 0 or p == 0:
                if o in remaining:
                    rem = remaining[o]
                    if q >= rem:
                        kind = KIND_DELETE
                        del remaining[o]
                    else:
                        kind = KIND_CANCEL
                        remaining[o] = rem - q
                else:
                    kind = KIND_CANCEL
                    n_unknown += 1
        elif a == _T:
            kind = KIND_TRADE
        elif a == _R:
            kind = KIND_CLEAR
            remaining.clear()
            pending.clear()
        else:
            n_none += 1
        if kind == 0:
            if (flags[i] & FLAG_LAST) and k > 0:
                fl[k - 1] |= FLAG_LAST
            continue
        ex[k] = ts_event[i]
        lo[k] = ts_recv[i]
        px[k] = price[i] if kind != KIND_CLEAR else 0
        qt[k] = q if kind != KIND_CLEAR else 0
        oid[k] = o
        kd[k] = kind
        sd[k] = side_code_nb(side[i])
        fl[k] = flags[i]
        k += 1
    cols = (ex[:k], lo[:k], px[:k], qt[:k], oid[:k], kd[:k], sd[:k], fl[:k])
    return (*cols, n_none, n_absorbed, n_unknown)


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
