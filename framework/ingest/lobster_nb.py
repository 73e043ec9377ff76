"""Compiled L3 book of the LOBSTER importer (numba, over plain int64 arrays).

The book. The message file lacks orders resting before it starts, and a level-L file omits
messages that only touch levels deeper than L. The importer keeps its own L3 book (compiled,
over arrays: an order table plus per-price aggregates on the day's distinct prices) and

* seeds it, before the first message, with one synthetic order per visible level of
  orderbook row 0, adjusted by the effect of message 0 (``FLAG_SNAPSHOT | FLAG_FROM_BOOK |
  FLAG_IMPLIED``, ids ``SYNTH_ORDER_ID_BASE | n``);
* keeps at most one synthetic order per (side, price): the quantity there that no message
  explains. A message on an order id that is not live acts on it: e.g. an execution of
  unknown id X for q at p becomes ``KIND_EXECUTE`` of p's synthetic order for q. When the
  synthetic order is too small the difference is moved onto it first (implied cancels of real
  orders at p, newest first, then an implied ``KIND_MODIFY``/``KIND_ADD`` of the synthetic);
  a delete of q from a larger synthetic order splits it (implied cancel q, implied add q) so
  that the message stays a ``KIND_DELETE``. These prep events carry ``FLAG_IMPLIED``;
* after each message compares its top L levels with the orderbook row and emits corrective
  events (``FLAG_FROM_BOOK | FLAG_IMPLIED``): synthetic quantity added where the file shows
  more, synthetic (then real, newest first) quantity removed where it shows less, so that the
  book after the message's last event -- the one with ``FLAG_LAST`` -- equals the row at all
  L levels.

Without an orderbook row (no orderbook file, or a row that is damaged or missing) a message
is not corrected: quantity an order lacks is added, never taken from other orders; an order
the file never adds enters the book at its first message with its real id (``hidden_q``);
and orders that a message proves gone are removed (:func:`_uncross`, :func:`_trim_better`).

Levels beyond L may drift from the truth (deeper cancels are invisible to a level-L file).
They are kept rather than guessed away: they are real orders seen in the file, memory is
bounded by the file's own order count plus one synthetic order per price, and every level
that comes back into view is corrected against the orderbook row. A side with fewer than L
levels in the row is proof that nothing else rests there, and everything else is pruned.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.core.events import (
    FLAG_AUCTION,
    FLAG_FROM_BOOK,
    FLAG_HIDDEN,
    FLAG_IMPLIED,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_ADD,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_MODIFY,
    KIND_STATUS,
    KIND_TRADE,
)

# --- kernel state layout (columns of small int64 arrays, so kernels take few arguments) ----
# order table o[slot, :]
_OQ, _OS, _OX, _OID, _OLIVE, _ONEXT, _OPREV = range(7)
# per (side, price index) lv[s, x, :]
_LQ, _LHEAD, _LTAIL, _LSYN = range(4)
# scalars and statistics sc[:]
_BEST0, _BEST1, _NLEV0, _NLEV1, _FREE, _SYNID, _NLIVE = range(7)
ST_ROWS_CORR, ST_CORR_EV, ST_REWRITE, ST_PREP_EV, ST_KNOWN_SHORT = 7, 8, 9, 10, 11
ST_DEL_MISMATCH, ST_DUP_ADD, ST_MISMATCH, ST_SEED, ST_PRE_MSGS = 12, 13, 14, 15, 16
ST_UNCROSS = 17
_NSC = 18
# output columns ev[m, :]
_EROW, _EKIND, _ESIDE, _EPRICE, _EQTY, _EOID, _EFLAGS = range(7)

_SYN_BASE = np.int64(-(2**63))  # bit 63 as an int64; viewed as uint64 it is SYNTH_ORDER_ID_BASE
_F_SEED = FLAG_SNAPSHOT | FLAG_FROM_BOOK | FLAG_IMPLIED
_F_CORR = FLAG_FROM_BOOK | FLAG_IMPLIED



# --- compiled book -----------------------------------------------------------------------


@njit(cache=True)
def _put(ev, m, row, kind, side, price, qty, oid, flags):
    ev[m, _EROW] = row
    ev[m, _EKIND] = kind
    ev[m, _ESIDE] = side
    ev[m, _EPRICE] = price
    ev[m, _EQTY] = qty
    ev[m, _EOID] = oid
    ev[m, _EFLAGS] = flags
    return m + 1


@njit(cache=True)
def _level_add(lv, sc, s, x, delta):
    """Change the aggregate at (s, x) by ``delta``, keeping best prices and level counts."""
    old = lv[s, x, _LQ]
    new = old + delta
    lv[s, x, _LQ] = new
    npx = lv.shape[1]
    if old == 0 and new > 0:
        sc[_NLEV0 + s] += 1
        if s == 0 and x > sc[_BEST0]:
            sc[_BEST0] = x
        elif s == 1 and x < sc[_BEST1]:
            sc[_BEST1] = x
    elif old > 0 and new == 0:
        sc[_NLEV0 + s] -= 1
        if s == 0 and x == sc[_BEST0]:
            y = x - 1
            while sc[_NLEV0] > 0 and y >= 0 and lv[0, y, _LQ] == 0:
                y -= 1
            sc[_BEST0] = y if sc[_NLEV0] > 0 else -1
        elif s == 1 and x == sc[_BEST1]:
            y = x + 1
            while sc[_NLEV1] > 0 and y < npx and lv[1, y, _LQ] == 0:
                y += 1
            sc[_BEST1] = y if sc[_NLEV1] > 0 else npx


@njit(cache=True)
def _open(o, lv, sc, slot, s, x, q, oid, real):
    o[slot, _OQ] = q
    o[slot, _OS] = s
    o[slot, _OX] = x
    o[slot, _OID] = oid
    o[slot, _OLIVE] = 1
    o[slot, _ONEXT] = -1
    o[slot, _OPREV] = -1
    if real:  # only real orders queue: the queue picks which real order an unseen cancel hit
        tail = lv[s, x, _LTAIL]
        o[slot, _OPREV] = tail
        if tail >= 0:
            o[tail, _ONEXT] = slot
        else:
            lv[s, x, _LHEAD] = slot
        lv[s, x, _LTAIL] = slot
    _level_add(lv, sc, s, x, q)
    sc[_NLIVE] += 1


@njit(cache=True)
def _unlink(o, lv, slot):
    s = o[slot, _OS]
    x = o[slot, _OX]
    p = o[slot, _OPREV]
    n = o[slot, _ONEXT]
    if p >= 0:
        o[p, _ONEXT] = n
    else:
        lv[s, x, _LHEAD] = n
    if n >= 0:
        o[n, _OPREV] = p
    else:
        lv[s, x, _LTAIL] = p
    o[slot, _ONEXT] = -1
    o[slot, _OPREV] = -1


@njit(cache=True)
def _reduce(o, lv, sc, free, slot, amt, n_real):
    """Take ``amt`` lots off an order; an order that reaches zero leaves the book."""
    s = o[slot, _OS]
    x = o[slot, _OX]
    o[slot, _OQ] -= amt
    _level_add(lv, sc, s, x, -amt)
    if o[slot, _OQ] == 0:
        o[slot, _OLIVE] = 0
        sc[_NLIVE] -= 1
        if slot < n_real:
            _unlink(o, lv, slot)
        else:
            if lv[s, x, _LSYN] == slot:
                lv[s, x, _LSYN] = -1
            free[sc[_FREE]] = slot
            sc[_FREE] += 1


@njit(cache=True)
def _new_synth(ev, m, o, lv, sc, free, px, row, s, x, q, flags, register):
    sc[_FREE] -= 1
    slot = free[sc[_FREE]]
    oid = _SYN_BASE + sc[_SYNID]
    sc[_SYNID] += 1
    _open(o, lv, sc, slot, s, x, q, oid, False)
    if register:
        lv[s, x, _LSYN] = slot
    m = _put(ev, m, row, KIND_ADD, 1 - 2 * s, px[x], q, oid, flags)
    return m, slot


@njit(cache=True)
def _remove(ev, m, o, lv, sc, free, px, n_real, row, slot, amt, flags):
    """Implied removal of ``amt`` lots from one order: a delete if it empties it."""
    q = o[slot, _OQ]
    s = o[slot, _OS]
    x = o[slot, _OX]
    kind = KIND_DELETE if amt >= q else KIND_CANCEL
    amt = min(amt, q)
    m = _put(ev, m, row, kind, 1 - 2 * s, px[x], amt, o[slot, _OID], flags)
    _reduce(o, lv, sc, free, slot, amt, n_real)
    return m


@njit(cache=True)
def _take(ev, m, o, lv, sc, free, px, n_real, row, s, x, amt, use_syn, exclude, flags):
    """Remove up to ``amt`` lots at (s, x): the synthetic order first, then real orders newest
    first. Returns ``(m, removed)``."""
    got = 0
    syn = lv[s, x, _LSYN]
    if use_syn and syn >= 0 and syn != exclude:
        take = min(amt, o[syn, _OQ])
        m = _remove(ev, m, o, lv, sc, free, px, n_real, row, syn, take, flags)
        got += take
    slot = lv[s, x, _LTAIL]
    while got < amt and slot >= 0:
        prev = o[slot, _OPREV]
        if slot != exclude:
            take = min(amt - got, o[slot, _OQ])
            m = _remove(ev, m, o, lv, sc, free, px, n_real, row, slot, take, flags)
            got += take
        slot = prev
    return m, got


@njit(cache=True)
def _grow_synth(ev, m, o, lv, sc, free, px, row, s, x, amt, flags):
    """Add ``amt`` lots of unexplained quantity at (s, x); returns ``(m, synthetic slot)``."""
    syn = lv[s, x, _LSYN]
    if syn < 0:
        return _new_synth(ev, m, o, lv, sc, free, px, row, s, x, amt, flags, True)
    o[syn, _OQ] += amt
    _level_add(lv, sc, s, x, amt)
    m = _put(ev, m, row, KIND_MODIFY, 1 - 2 * s, px[x], o[syn, _OQ], o[syn, _OID], flags)
    return m, syn


@njit(cache=True)
def _correct_side(ev, m, o, lv, sc, free, px, n_real, row, s, bx, bq):
    """Make side ``s`` agree with the file's levels ``bx`` (price indices, -1 = empty) and
    sizes ``bq``. Quantity deeper than the file's last level is left alone unless the file
    shows fewer than L levels (then nothing else rests on that side)."""
    L = bx.shape[0]
    k = 0
    while k < L and bx[k] >= 0:
        k += 1
    npx = lv.shape[1]
    step = -1 if s == 0 else 1
    if s == 0:
        x = sc[_BEST0]
        if k > 0 and bx[0] > x:
            x = bx[0]
        end = bx[L - 1] if k == L else 0
    else:
        x = sc[_BEST1]
        if k > 0 and bx[0] < x:
            x = bx[0]
        end = bx[L - 1] if k == L else npx - 1
    j = 0
    while 0 <= x < npx and (x >= end if s == 0 else x <= end):
        if j == k and k < L and sc[_NLEV0 + s] == k:
            break  # every file level is in place and nothing else rests on this side
        have = lv[s, x, _LQ]
        want = 0
        if j < k and x == bx[j]:
            want = bq[j]
            j += 1
        if want > have:
            m, _ = _grow_synth(ev, m, o, lv, sc, free, px, row, s, x, want - have, _F_CORR)
        elif want < have:
            m, _ = _take(
                ev, m, o, lv, sc, free, px, n_real, row, s, x, have - want, True, -1, _F_CORR
            )
        x += step
    return m


@njit(cache=True)
def _uncross(ev, m, o, lv, sc, free, px, n_real, row, s, x):
    """Without an orderbook row: a message at (side ``s``, price index ``x``) proves the other
    side holds nothing at or through ``x``; orders still there were cancelled where the file
    does not show it (below level L) and are removed (``FLAG_IMPLIED``)."""
    m0 = m
    if s == 0:
        while sc[_BEST1] < lv.shape[1] and sc[_BEST1] <= x:
            y = sc[_BEST1]
            m, _ = _take(ev, m, o, lv, sc, free, px, n_real, row, 1, y, lv[1, y, _LQ], True, -1,
                         FLAG_IMPLIED)
    else:
        while sc[_BEST0] >= 0 and sc[_BEST0] >= x:
            y = sc[_BEST0]
            m, _ = _take(ev, m, o, lv, sc, free, px, n_real, row, 0, y, lv[0, y, _LQ], True, -1,
                         FLAG_IMPLIED)
    sc[ST_UNCROSS] += m - m0
    return m


@njit(cache=True)
def _trim_better(ev, m, o, lv, sc, free, px, n_real, row, s, x, keep):
    """Without an orderbook row: a message of a level-L file at (side ``s``, index ``x``)
    proves at most ``keep = L - 1`` levels are better than ``x``; the ones beyond the
    ``keep`` nearest were cancelled below level L, unseen, and are removed (``FLAG_IMPLIED``)."""
    if sc[_NLEV0 + s] == 0:
        return m
    best = sc[_BEST0 + s]
    step = 1 if s == 0 else -1  # toward better prices
    bound = x  # the keep-th occupied level better than x, walking away from x
    found = 0
    y = x + step
    while found < keep:
        if (s == 0 and y > best) or (s == 1 and y < best):
            return m  # keep or fewer levels are better than x: all may be real
        if lv[s, y, _LQ] > 0:
            found += 1
            bound = y
        y += step
    m0 = m
    while sc[_NLEV0 + s] > 0 and (
        (s == 0 and sc[_BEST0] > bound) or (s == 1 and sc[_BEST1] < bound)
    ):
        y = sc[_BEST0 + s]
        m, _ = _take(ev, m, o, lv, sc, free, px, n_real, row, s, y, lv[s, y, _LQ], True, -1,
                     FLAG_IMPLIED)
    sc[ST_UNCROSS] += m - m0
    return m


@njit(cache=True)
def _seed(ev, m, o, lv, sc, free, px, typ, side, pidx, qty, ob_x, ob_q):
    """Synthetic orders for the book *before* message 0: row 0 minus message 0's effect."""
    L = ob_x.shape[2]
    t = typ[0]
    for s in range(2):
        hit = False
        for j in range(L):
            x = ob_x[0, s, j]
            if x < 0:
                break
            q = ob_q[0, s, j]
            if side[0] == s and pidx[0] == x:
                hit = True
                if t == 1:
                    q -= qty[0]
                elif 2 <= t <= 4:
                    q += qty[0]
            if q > 0:
                m, _ = _new_synth(ev, m, o, lv, sc, free, px, 0, s, x, q, _F_SEED, True)
        if (2 <= t <= 4) and side[0] == s and not hit:
            # message 0 emptied a level: it rested before the file starts
            m, _ = _new_synth(ev, m, o, lv, sc, free, px, 0, s, pidx[0], qty[0], _F_SEED, True)
    sc[ST_SEED] = m
    return m


@njit(cache=True)
def build_nb(
    typ, slot_of, qty, pidx, side, tprice, raw_id, uid, px, ob_x, ob_q, ob_ok, hidden_q, levels
):
    """Run the book over every message; returns ``(events as int64[m, 7], stats)``.

    ``ob_ok[i]`` says whether message ``i`` has a usable orderbook row in ``ob_x``/``ob_q``
    (``L = ob_x.shape[2]`` is 0 without an orderbook file). A message without one is not
    corrected, and quantity its order lacks is added rather than taken from other orders
    (nothing says the level holds less). ``hidden_q[slot]`` > 0 marks an order the file
    never adds (it rested before the file, or joined below level L): at its first message
    it is opened with its real id and that many lots (an implied add), then the message
    applies to it as to any known order. ``levels`` is the file's level L (0: unknown),
    which bounds the levels better than a message's price when no orderbook row checks it.
    """
    n = typ.shape[0]
    n_real = uid.shape[0]
    npx = px.shape[0]
    L = ob_x.shape[2]
    n_syn = 2 * npx + 4  # at most one synthetic per (side, price), plus one transient
    o = np.zeros((n_real + n_syn, 7), np.int64)
    lv = np.zeros((2, npx, 4), np.int64)
    lv[:, :, _LHEAD] = -1
    lv[:, :, _LTAIL] = -1
    lv[:, :, _LSYN] = -1
    free = np.empty(n_syn, np.int64)
    for i in range(n_syn):
        free[i] = n_real + n_syn - 1 - i
    sc = np.zeros(_NSC, np.int64)
    sc[_BEST0] = -1
    sc[_BEST1] = npx
    sc[_FREE] = n_syn
    ev = np.empty((3 * n + 8 * L + 64, 7), np.int64)
    m = 0
    if n > 0 and L > 0 and ob_ok[0]:
        m = _seed(ev, m, o, lv, sc, free, px, typ, side, pidx, qty, ob_x, ob_q)
    opened = np.zeros(n_real, np.bool_)  # orders of hidden_q already brought into the book
    for i in range(n):
        need = 2 * sc[_NLIVE] + 8 * L + 17  # worst case for one message and its corrections
        if ev.shape[0] - m < need:
            bigger = np.empty((2 * ev.shape[0] + need, 7), np.int64)
            bigger[:m] = ev[:m]
            ev = bigger
        checked = L > 0 and ob_ok[i]
        t = typ[i]
        s = side[i]
        x = pidx[i]
        q = qty[i]
        sd = 1 - 2 * s
        if t == 1:
            X = slot_of[i]
            if o[X, _OLIVE] == 1:  # a live id added again: drop the old one first
                sc[ST_DUP_ADD] += 1
                m = _remove(ev, m, o, lv, sc, free, px, n_real, i, X, o[X, _OQ], FLAG_IMPLIED)
            _open(o, lv, sc, X, s, x, q, uid[X], True)
            m = _put(ev, m, i, KIND_ADD, sd, px[x], q, uid[X], 0)
        elif 2 <= t <= 4:
            kind = KIND_CANCEL if t == 2 else (KIND_DELETE if t == 3 else KIND_EXECUTE)
            X = slot_of[i]
            if hidden_q[X] > 0:
                sc[ST_PRE_MSGS] += 1
                if not opened[X] and o[X, _OLIVE] == 0:  # first sight of an unseen order
                    opened[X] = True
                    _open(o, lv, sc, X, s, x, hidden_q[X], uid[X], True)
                    m = _put(ev, m, i, KIND_ADD, sd, px[x], hidden_q[X], uid[X], FLAG_IMPLIED)
            known = o[X, _OLIVE] == 1
            if known and (o[X, _OS] != s or o[X, _OX] != x):
                sc[ST_MISMATCH] += 1
                m = _remove(ev, m, o, lv, sc, free, px, n_real, i, X, o[X, _OQ], FLAG_IMPLIED)
                known = False
            m_prep = m
            if known:
                r = o[X, _OQ]
                if t == 3:
                    if r != q:
                        sc[ST_DEL_MISMATCH] += 1
                    m = _put(ev, m, i, kind, sd, px[x], q, uid[X], 0)
                    _reduce(o, lv, sc, free, X, r, n_real)
                else:
                    if q > r:  # the order is bigger than tracked: an unseen change hit p
                        sc[ST_KNOWN_SHORT] += 1
                        if checked:  # the level's size is known: the extra was elsewhere
                            m, _ = _take(
                                ev,
                                m,
                                o,
                                lv,
                                sc,
                                free,
                                px,
                                n_real,
                                i,
                                s,
                                x,
                                q - r,
                                True,
                                X,
                                FLAG_IMPLIED,
                            )
                        _unlink(o, lv, X)  # a size increase loses priority
                        o[X, _OQ] = 0
                        _level_add(lv, sc, s, x, -r)
                        sc[_NLIVE] -= 1
                        _open(o, lv, sc, X, s, x, q, uid[X], True)
                        m = _put(ev, m, i, KIND_MODIFY, sd, px[x], q, uid[X], FLAG_IMPLIED)
                    m = _put(ev, m, i, kind, sd, px[x], q, uid[X], 0)
                    _reduce(o, lv, sc, free, X, q, n_real)
            else:
                sc[ST_REWRITE] += 1
                syn = lv[s, x, _LSYN]
                sq = o[syn, _OQ] if syn >= 0 else 0
                if t == 3 and sq > q:
                    # split the synthetic order so the message stays a delete of q lots
                    m = _put(ev, m, i, KIND_CANCEL, sd, px[x], q, o[syn, _OID], FLAG_IMPLIED)
                    _reduce(o, lv, sc, free, syn, q, n_real)
                    m, syn = _new_synth(ev, m, o, lv, sc, free, px, i, s, x, q, FLAG_IMPLIED, False)
                elif sq < q:
                    if checked:  # the level's size is known: the order hid among real ones
                        m, _ = _take(
                            ev,
                            m,
                            o,
                            lv,
                            sc,
                            free,
                            px,
                            n_real,
                            i,
                            s,
                            x,
                            q - sq,
                            False,
                            -1,
                            FLAG_IMPLIED,
                        )
                    m, syn = _grow_synth(ev, m, o, lv, sc, free, px, i, s, x, q - sq, FLAG_IMPLIED)
                sc[ST_PREP_EV] += m - m_prep
                m = _put(ev, m, i, kind, sd, px[x], q, o[syn, _OID], 0)
                _reduce(o, lv, sc, free, syn, q if t != 3 else o[syn, _OQ], n_real)
        elif t == 5:
            # KIND_TRADE's side is the aggressor: the opposite of the hidden resting order
            m = _put(ev, m, i, KIND_TRADE, -sd, tprice[i], q, max(raw_id[i], 0), FLAG_HIDDEN)
        elif t == 6:
            m = _put(ev, m, i, KIND_TRADE, 0, tprice[i], q, 0, FLAG_AUCTION)
        else:  # 7: the caller put the status code in qty
            m = _put(ev, m, i, KIND_STATUS, 0, 0, q, 0, 0)
        if not checked and t <= 4:
            m = _uncross(ev, m, o, lv, sc, free, px, n_real, i, s, x)
            if levels > 0:
                m = _trim_better(ev, m, o, lv, sc, free, px, n_real, i, s, x, levels - 1)
        if checked:
            m_corr = m
            m = _correct_side(ev, m, o, lv, sc, free, px, n_real, i, 0, ob_x[i, 0], ob_q[i, 0])
            m = _correct_side(ev, m, o, lv, sc, free, px, n_real, i, 1, ob_x[i, 1], ob_q[i, 1])
            if m > m_corr:
                sc[ST_ROWS_CORR] += 1
                sc[ST_CORR_EV] += m - m_corr
        ev[m - 1, _EFLAGS] |= FLAG_LAST
    return ev[:m], sc
