
"""Compiled kernels of the synthetic market-data generator (see :mod:`.synthetic`).

Everything here works on plain arrays. Randomness comes from a private xoshiro256**
stream (``state``: four uint64 words) rather than numba's global ``np.random``, so a seed
gives bit-identical output on every machine and never disturbs other kernels' streams.

The L2 book is held as sizes per level *relative to the touch* (``q[0, k]``: k-th bid level,
``q[1, k]``: k-th ask level; levels are contiguous ticks). The L3 book keeps FIFO queues of
orders in a ring indexed by absolute price (``price & (W - 1)``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from framework.core.events import (
    BUY,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    FLAG_SYNTHETIC,
    KIND_ADD,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
)

# --- indices into the global parameter vector ``gp`` --------------------------------------
GP_SPREAD = 0  # ticks between best bid and best ask
GP_DEPTH = 1  # levels per side
GP_ORDERS_TOUCH = 2  # mean resting orders at the touch
GP_ORDERS_SLOPE = 3  # extra mean orders per level away from the touch
GP_MEAN_ORDER = 4  # mean order size, lots (the target of mean-reverting level sizes)
GP_MOVE_BY_TRADE = 5  # probability a touch move is a sweep (trades) rather than a fade
GP_TOUCH_SHARE = 6  # share of liquidity messages that act at the touch
GP_FLOW_BIAS = 7  # extra aggressor probability in the trend's direction
GP_PARTIAL_CANCEL = 8  # L3: probability a cancel is partial
GP_MAX_ORDERS = 9  # L3: cap of orders per level
GP_SIGNAL = 10  # predictive-imbalance strength in [0, 1]
GP_SIGNAL_STEPS = 11  # its look-ahead horizon, in mid-grid steps
GP_GRID_NS = 12  # mid-grid step, ns
GP_SIGNAL_SCALE = 13  # ticks of look-ahead move that saturate the imbalance
GP_INFORMED = 14  # extra aggressor probability toward the latent mid (informed flow)
N_GP = 15

# --- columns of the per-regime parameter matrix ``rp`` (one row per regime) ----------------
RP_TRADE_PROB = 0  # probability a message is a (noise) trade
N_RP = 1

# --- rows of the quantile tables ``tabs`` ---------------------------------------------------
TAB_ORDER_SIZE = 0  # lots, integral, >= 1
TAB_TRADE_SIZE = 1  # lots, integral, >= 1
TAB_LATENCY = 2  # ns, floor included
N_TAB = 3
TABLE_BITS = 12

L3_RING = 4096  # price ring of the L3 book; must exceed the book's span in ticks (power of 2)

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_TWO53 = 1.0 / 9007199254740992.0


# --- random numbers ------------------------------------------------------------------------


@njit(cache=True)
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def next_u64(s: np.ndarray) -> np.uint64:
    """xoshiro256** step; ``s`` is the uint64[4] state."""
    s0 = s[0]
    s1 = s[1]
    s2 = s[2]
    s3 = s[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return result


@njit(cache=True)
def uniform(s: np.ndarray) -> float:
    """Uniform in [0, 1)."""
    return float(next_u64(s) >> np.uint64(11)) * _TWO53


@njit(cache=True)
def normal(s: np.ndarray) -> float:
    """Standard normal (Box-Muller; one value per call keeps the stream simple)."""
    u1 = 1.0 - uniform(s)
    u2 = uniform(s)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


@njit(cache=True)
def exponential(s: np.ndarray) -> float:
    """Exponential with mean 1."""
    return -math.log(1.0 - uniform(s))


@njit(cache=True)
def poisson_small(s: np.ndarray, lam: float) -> int:
    """Poisson for a small mean (Knuth); the depth profile keeps ``lam`` below ~20."""
    limit = math.exp(-lam)
    k = 0
    p = uniform(s)
    while p > limit:
        k += 1
        p *= uniform(s)
    return k


@njit(cache=True)
def table_draw(s: np.ndarray, tabs: np.ndarray, row: int) -> float:
    """A draw from the distribution tabulated in ``tabs[row]`` (equiprobable quantiles).

    Sizes and latencies come from 4096-point quantile tables built once per day: one random
    word and a load instead of a log, a square root, a cosine and an exponential.
    """
    return tabs[row, next_u64(s) >> np.uint64(64 - TABLE_BITS)]


@njit(cache=True)
def size_draw(s: np.ndarray, tabs: np.ndarray, row: int) -> int:
    return int(table_draw(s, tabs, row))


# --- latent mid ----------------------------------------------------------------------------


@njit(cache=True)
def latent_mid_nb(
    state: np.ndarray,
    n_grid: int,
    dt_s: float,
    seg_first: np.ndarray,
    seg_vol: np.ndarray,
    seg_drift: np.ndarray,
    seg_jump_rate: np.ndarray,
    jump_mean: float,
    m0: float,
    floor: float,
) -> np.ndarray:
    """The latent mid (in ticks) on a time grid: drift + diffusion + jumps per segment.

    ``seg_first[k]`` is the first grid index of segment k. Paths that would fall below
    ``floor`` are reflected, so the book always stays at positive prices.
    """
    mid = np.empty(n_grid + 1)
    m = m0
    k = 0
    nseg = seg_first.shape[0]
    sq = math.sqrt(dt_s)
    for i in range(n_grid + 1):
        while k + 1 < nseg and i >= seg_first[k + 1]:
            k += 1
        mid[i] = m
        m += seg_drift[k] * dt_s + seg_vol[k] * sq * normal(state)
        if seg_jump_rate[k] > 0.0 and uniform(state) < seg_jump_rate[k] * dt_s:
            size = 1.0 + exponential(state) * jump_mean
            m += size if uniform(state) < 0.5 else -size
        if m < floor:
            m = 2.0 * floor - m
    return mid


# --- shared pieces of the event kernels -----------------------------------------------------


@njit(cache=True)
def _emit(out, pos, ex, lo, price, qty, oid, kind, side, flags):
    r = out[pos]
    r["exch_ts"] = ex
    r["local_ts"] = lo
    r["price"] = price
    r["qty"] = qty
    r["order_id"] = oid
    r["instrument"] = 0
    r["kind"] = kind
    r["side"] = side
    r["flags"] = flags
    return pos + 1


@njit(cache=True)
def _mean_orders(gp: np.ndarray, k: int) -> float:
    return gp[GP_ORDERS_TOUCH] + gp[GP_ORDERS_SLOPE] * k


@njit(cache=True)
def _level_size(s: np.ndarray, gp: np.ndarray, tabs: np.ndarray, k: int) -> int:
    """Size of a fresh L2 level k ticks from the touch: a sum of resting orders."""
    n = 1 + poisson_small(s, _mean_orders(gp, k) - 1.0)
    tot = 0
    for _ in range(n):
        tot += size_draw(s, tabs, TAB_ORDER_SIZE)
    return tot


@njit(cache=True)
def _signal_target(
    s: np.ndarray, gp: np.ndarray, mid: np.ndarray, gi: int, book_mid: float
) -> float:
    """Touch imbalance in [-1, 1] that leads the mid by the signal horizon.

    With strength w it is ``w * tanh((future mid - book mid) / scale)`` plus ``(1 - w)``
    uniform noise: a strongly lopsided touch announces a move of more than ``scale`` ticks.
    """
    w = gp[GP_SIGNAL]
    j = min(gi + int(gp[GP_SIGNAL_STEPS]), mid.shape[0] - 1)
    d = math.tanh((mid[j] - book_mid) / gp[GP_SIGNAL_SCALE])
    return w * d + (1.0 - w) * (2.0 * uniform(s) - 1.0)


@njit(cache=True, inline="always")
def _buy_prob(gp: np.ndarray, trend_sign: float, dev: float) -> float:
    """Probability that a trade at the touch is a buy: one half, leaning with the trend and,
    with informed flow, toward the latent mid (``dev``: latent minus book mid, within a
    tick here), so trades precede the touch moves they point to."""
    p = 0.5 + gp[GP_FLOW_BIAS] * trend_sign
    if gp[GP_INFORMED] > 0.0:
        p = min(1.0, max(0.0, p + gp[GP_INFORMED] * dev))
    return p


@njit(cache=True)
def next_message_time(
    s: np.ndarray,
    tau: float,
    tau_total: float,
    remaining_msgs: float,
) -> float:
    """Next arrival in operational time (Poisson; rate spreads the remaining budget).

    Operational time runs faster in busier regimes (``seg_mult``); spreading the messages
    still allowed by the event budget over the operational time left makes the generator
    fill about ``n_events`` and end near the close whatever the mix of message sizes.
    """
    left = tau_total - tau
    if remaining_msgs <= 0.0 or left <= 0.0:
        return tau_total
    return tau + exponential(s) * left / remaining_msgs


@njit(cache=True)
def _op_to_time(tau: float, k: int, seg_start_s: np.ndarray, seg_tau0: np.ndarray,
                seg_mult: np.ndarray) -> tuple[int, float]:
    """Segment index and seconds after the open of operational time ``tau``."""
    nseg = seg_start_s.shape[0]
    while k + 1 < nseg and tau >= seg_tau0[k + 1]:
        k += 1
    return k, seg_start_s[k] + (tau - seg_tau0[k]) / seg_mult[k]




@njit(cache=True)
def _resize(s: np.ndarray, gp: np.ndarray, tabs: np.ndarray, cur: int, target: float) -> int:
    """One add or cancel on a level of size ``cur``, mean-reverting toward ``target``."""
    d = size_draw(s, tabs, TAB_ORDER_SIZE)
    if cur <= 1 or uniform(s) * (target + cur) < target:
        return cur + d
    return max(1, cur - d)


# --- L2 ------------------------------------------------------------------------------------


@njit(cache=True)
def _l2_level_price(bid: int, spread: int, side: int, k: int) -> int:
    return bid - k if side == 0 else bid + spread + k


@njit(cache=True)
def _l2_resplit(out, pos, ex, lo, q, bid, spread, imb, fl):
    """Set both touch sizes so the touch imbalance is ``imb`` (total unchanged)."""
    tot = q[0, 0] + q[1, 0]
    b = int(tot * (1.0 + imb) * 0.5 + 0.5)
    b = min(max(b, 1), tot - 1)
    q[0, 0] = b
    q[1, 0] = tot - b
    pos = _emit(out, pos, ex, lo, bid, b, 0, KIND_LEVEL, BUY, fl)
    return _emit(out, pos, ex, lo, bid + spread, tot - b, 0, KIND_LEVEL, SELL, fl)


@njit(cache=True)
def _l2_move(out, pos, ex, lo, q, bid, spread, depth, d, j, by_trade, s, gp, tabs, fl):
    """Shift the book ``j`` ticks in direction ``d`` (+1 up); return the new position.

    The side in the move's way (``h``: the ask when moving up) loses its first ``j`` levels,
    swept by trades of aggressor side ``d`` or faded by cancels; the other side (``f``)
    gains ``j`` new levels inside the old spread and drops the ones that fall out of view;
    ``h`` gains new levels at the far end.
    """
    h = 1 if d > 0 else 0
    f = 1 - h
    hs = SELL if h == 1 else BUY
    fs = SELL if f == 1 else BUY
    for k in range(j):
        p = _l2_level_price(bid, spread, h, k)
        if by_trade:
            pos = _emit(out, pos, ex, lo, p, q[h, k], 0, KIND_TRADE, d, fl)
        pos = _emit(out, pos, ex, lo, p, 0, 0, KIND_LEVEL, hs, fl)
    new_bid = bid + d * j
    # the follow side: j new levels nearest the new touch; deepest j fall out of view
    for k in range(depth - j, depth):
        p = _l2_level_price(bid, spread, f, k)
        pos = _emit(out, pos, ex, lo, p, 0, 0, KIND_LEVEL, fs, fl)
    for k in range(depth - 1, j - 1, -1):
        q[f, k] = q[f, k - j]
    for k in range(j):
        q[f, k] = _level_size(s, gp, tabs, k)
        p = _l2_level_price(new_bid, spread, f, k)
        pos = _emit(out, pos, ex, lo, p, q[f, k], 0, KIND_LEVEL, fs, fl)
    # the hit side: shift toward the touch, fresh levels at the far end
    for k in range(depth - j):
        q[h, k] = q[h, k + j]
    for k in range(depth - j, depth):
        q[h, k] = _level_size(s, gp, tabs, k)
        p = _l2_level_price(new_bid, spread, h, k)
        pos = _emit(out, pos, ex, lo, p, q[h, k], 0, KIND_LEVEL, hs, fl)
    return pos


@njit(cache=True)
def gen_l2_nb(
    out: np.ndarray,
    target: int,
    state: np.ndarray,
    t_open: int,
    mid: np.ndarray,
    seg_start_s: np.ndarray,
    seg_tau0: np.ndarray,
    seg_mult: np.ndarray,
    seg_regime: np.ndarray,
    seg_sign: np.ndarray,
    tau_total: float,
    gp: np.ndarray,
    rp: np.ndarray,
    tabs: np.ndarray,
    bid0: int,
) -> int:
    """Write an L2 day into ``out`` (capacity >= ``target`` + one message); return its length.

    One message per loop turn: a touch move when the latent mid has left the book's mid by a
    tick or more, otherwise a noise trade, a touch-size change or a deeper-level change.
    Messages never straddle ``target``: a message that would is dropped and the day ends.
    """
    spread = int(gp[GP_SPREAD])
    depth = int(gp[GP_DEPTH])
    grid_ns = gp[GP_GRID_NS]
    signal = gp[GP_SIGNAL] > 0.0
    mean_size = gp[GP_MEAN_ORDER]
    fl = np.uint32(FLAG_SYNTHETIC)
    q = np.zeros((2, depth), np.int64)
    bid = bid0

    # opening snapshot: one message
    ex = t_open
    lo = ex + int(table_draw(state, tabs, TAB_LATENCY))
    snap = np.uint32(FLAG_SYNTHETIC | FLAG_SNAPSHOT)
    pos = _emit(out, 0, ex, lo, 0, 0, 0, KIND_CLEAR, 0, snap)
    for side in range(2):
        for k in range(depth):
            q[side, k] = _level_size(state, gp, tabs, k)
            p = _l2_level_price(bid, spread, side, k)
            pos = _emit(out, pos, ex, lo, p, q[side, k], 0, KIND_LEVEL,
                        BUY if side == 0 else SELL, snap)
    out[pos - 1]["flags"] |= FLAG_LAST
    last_lo = lo
    msgs = 1
    tau = 0.0
    seg = 0
    while True:
        per_msg = pos / msgs if msgs >= 64 else 2.0
        tau = next_message_time(state, tau, tau_total, (target - pos) / per_msg)
        if tau >= tau_total:
            break
        seg, t_s = _op_to_time(tau, seg, seg_start_s, seg_tau0, seg_mult)
        ex = max(ex, t_open + int(t_s * 1e9))
        lo = max(last_lo, ex + int(table_draw(state, tabs, TAB_LATENCY)))
        last_lo = lo
        start = pos
        reg = seg_regime[seg]
        gi = min(int((ex - t_open) / grid_ns), mid.shape[0] - 1)
        book_mid = bid + 0.5 * spread
        dev = mid[gi] - book_mid
        if dev >= 1.0 or dev <= -1.0:
            d = 1 if dev > 0 else -1
            j = min(int(abs(dev)), depth)
            by_trade = uniform(state) < gp[GP_MOVE_BY_TRADE]
            pos = _l2_move(out, pos, ex, lo, q, bid, spread, depth, d, j, by_trade, state, gp,
                           tabs, fl)
            bid += d * j
            if signal:
                imb = _signal_target(state, gp, mid, gi, bid + 0.5 * spread)
                pos = _l2_resplit(out, pos, ex, lo, q, bid, spread, imb, fl)
        else:
            u = uniform(state)
            ptrade = rp[reg, RP_TRADE_PROB]
            if u < ptrade:
                # noise trade at the touch; aggressors lean with a trend
                pbuy = _buy_prob(gp, seg_sign[seg], dev)
                aggr = BUY if uniform(state) < pbuy else SELL
                h = 1 if aggr == BUY else 0
                p = _l2_level_price(bid, spread, h, 0)
                x = min(size_draw(state, tabs, TAB_TRADE_SIZE), q[h, 0])
                pos = _emit(out, pos, ex, lo, p, x, 0, KIND_TRADE, aggr, fl)
                q[h, 0] -= x
                if q[h, 0] == 0:  # the level refills (hidden / new orders), price holds
                    q[h, 0] = _level_size(state, gp, tabs, 0)
                pos = _emit(out, pos, ex, lo, p, q[h, 0], 0, KIND_LEVEL,
                            SELL if h == 1 else BUY, fl)
            elif u < ptrade + (1.0 - ptrade) * gp[GP_TOUCH_SHARE]:
                if signal:
                    imb = _signal_target(state, gp, mid, gi, book_mid)
                    side = 0 if uniform(state) < 0.5 else 1
                    target0 = _mean_orders(gp, 0) * mean_size
                    q[side, 0] = _resize(state, gp, tabs, q[side, 0], target0)
                    pos = _l2_resplit(out, pos, ex, lo, q, bid, spread, imb, fl)
                else:
                    side = 0 if uniform(state) < 0.5 else 1
                    target0 = _mean_orders(gp, 0) * mean_size
                    q[side, 0] = _resize(state, gp, tabs, q[side, 0], target0)
                    pos = _emit(out, pos, ex, lo, _l2_level_price(bid, spread, side, 0),
                                q[side, 0], 0, KIND_LEVEL, BUY if side == 0 else SELL, fl)
            else:
                side = 0 if uniform(state) < 0.5 else 1
                k = 1 + int(uniform(state) * (depth - 1))
                q[side, k] = _resize(state, gp, tabs, q[side, k], _mean_orders(gp, k) * mean_size)
                pos = _emit(out, pos, ex, lo, _l2_level_price(bid, spread, side, k),
                            q[side, k], 0, KIND_LEVEL, BUY if side == 0 else SELL, fl)
        if pos > target:
            pos = start
            break
        out[pos - 1]["flags"] |= FLAG_LAST
        msgs += 1
    return pos


# --- L3 ------------------------------------------------------------------------------------
# ``cur`` holds the scalars the L3 helpers share: write position, next order id, free-list
# top, and the current message's exchange time, local time and flags.
C_POS = 0
C_NEXT_ID = 1
C_FREE = 2
C_EX = 3
C_LO = 4
C_FLAGS = 5


@njit(cache=True)
def _l3_emit(out, cur, price, qty, oid, kind, side):
    cur[C_POS] = _emit(out, cur[C_POS], cur[C_EX], cur[C_LO], price, qty, oid, kind, side,
                       np.uint32(cur[C_FLAGS]))


@njit(cache=True)
def _l3_push(out, cur, bk, side, price, qty):
    """A new order at the back of the queue at ``price``."""
    head, tail, cnt, lqty, o_id, o_qty, o_next, free = bk
    slot = free[cur[C_FREE] - 1]
    cur[C_FREE] -= 1
    oid = np.uint64(cur[C_NEXT_ID])
    cur[C_NEXT_ID] += 1
    o_id[slot] = oid
    o_qty[slot] = qty
    o_next[slot] = -1
    i = price & (L3_RING - 1)
    if tail[side, i] < 0:
        head[side, i] = slot
    else:
        o_next[tail[side, i]] = slot
    tail[side, i] = slot
    cnt[side, i] += 1
    lqty[side, i] += qty
    _l3_emit(out, cur, price, qty, oid, KIND_ADD, BUY if side == 0 else SELL)


@njit(cache=True)
def _l3_fill_level(out, cur, bk, s, gp, tabs, side, price, k):
    """Seed an empty level ``k`` ticks from the touch with orders from the depth profile."""
    n = min(1 + poisson_small(s, _mean_orders(gp, k) - 1.0), int(gp[GP_MAX_ORDERS]))
    for _ in range(n):
        _l3_push(out, cur, bk, side, price, size_draw(s, tabs, TAB_ORDER_SIZE))


@njit(cache=True)
def _l3_unlink(bk, side, i, slot, prev):
    head, tail, cnt, _lqty, _o_id, _o_qty, o_next, _free = bk
    nxt = o_next[slot]
    if prev < 0:
        head[side, i] = nxt
    else:
        o_next[prev] = nxt
    if tail[side, i] == slot:
        tail[side, i] = prev
    cnt[side, i] -= 1


@njit(cache=True)
def _l3_free(cur, bk, slot):
    free = bk[7]
    free[cur[C_FREE]] = slot
    cur[C_FREE] += 1


@njit(cache=True)
def _l3_execute(out, cur, bk, side, price, qty):
    """Execute ``qty`` against the level, oldest order first (FIFO); return what was filled."""
    head, _tail, _cnt, lqty, o_id, o_qty, _o_next, _free = bk
    i = price & (L3_RING - 1)
    done = 0
    sd = BUY if side == 0 else SELL
    while done < qty and head[side, i] >= 0:
        slot = head[side, i]
        x = min(o_qty[slot], qty - done)
        _l3_emit(out, cur, price, x, o_id[slot], KIND_EXECUTE, sd)
        o_qty[slot] -= x
        lqty[side, i] -= x
        done += x
        if o_qty[slot] == 0:  # fully executed orders leave the book (ITCH semantics)
            _l3_unlink(bk, side, i, slot, -1)
            _l3_free(cur, bk, slot)
    return done


@njit(cache=True)
def _l3_delete_level(out, cur, bk, side, price):
    """Delete every order of a level (a fade, or a level falling out of view)."""
    head, _tail, _cnt, lqty, o_id, o_qty, _o_next, _free = bk
    i = price & (L3_RING - 1)
    sd = BUY if side == 0 else SELL
    while head[side, i] >= 0:
        slot = head[side, i]
        _l3_emit(out, cur, price, o_qty[slot], o_id[slot], KIND_DELETE, sd)
        lqty[side, i] -= o_qty[slot]
        _l3_unlink(bk, side, i, slot, -1)
        _l3_free(cur, bk, slot)


@njit(cache=True)
def _l3_cancel(out, cur, bk, s, gp, tabs, side, price):
    """Cancel part of, or delete, a random order of the level; never empty the level."""
    head, _tail, cnt, lqty, o_id, o_qty, o_next, _free = bk
    i = price & (L3_RING - 1)
    n = cnt[side, i]
    r = int(uniform(s) * n)
    prev = -1
    slot = head[side, i]
    for _ in range(r):
        prev = slot
        slot = o_next[slot]
    q = o_qty[slot]
    sd = BUY if side == 0 else SELL
    if q > 1 and (n == 1 or uniform(s) < gp[GP_PARTIAL_CANCEL]):
        x = 1 + int(uniform(s) * (q - 1))
        o_qty[slot] -= x
        lqty[side, i] -= x
        _l3_emit(out, cur, price, x, o_id[slot], KIND_CANCEL, sd)
    elif n > 1:
        _l3_emit(out, cur, price, q, o_id[slot], KIND_DELETE, sd)
        lqty[side, i] -= q
        _l3_unlink(bk, side, i, slot, prev)
        _l3_free(cur, bk, slot)
    else:  # a lone one-lot order: keep the level, add instead
        _l3_push(out, cur, bk, side, price, size_draw(s, tabs, TAB_ORDER_SIZE))


@njit(cache=True)
def _l3_liquidity(out, cur, bk, s, gp, tabs, side, price, k, add_bias):
    """An add or a cancel at a level, mean-reverting its order count to the depth profile.

    ``add_bias`` in [-1, 1] overrides the choice (+1 add, -1 cancel) when non-zero.
    """
    cnt = bk[2]
    n = cnt[side, price & (L3_RING - 1)]
    mean = _mean_orders(gp, k)
    add = add_bias > 0.0 if add_bias != 0.0 else uniform(s) * (mean + n) < mean
    if add and n < int(gp[GP_MAX_ORDERS]):
        _l3_push(out, cur, bk, side, price, size_draw(s, tabs, TAB_ORDER_SIZE))
    else:
        _l3_cancel(out, cur, bk, s, gp, tabs, side, price)


@njit(cache=True)
def gen_l3_nb(
    out: np.ndarray,
    target: int,
    state: np.ndarray,
    t_open: int,
    mid: np.ndarray,
    seg_start_s: np.ndarray,
    seg_tau0: np.ndarray,
    seg_mult: np.ndarray,
    seg_regime: np.ndarray,
    seg_sign: np.ndarray,
    tau_total: float,
    gp: np.ndarray,
    rp: np.ndarray,
    tabs: np.ndarray,
    bid0: int,
) -> int:
    """Write an L3 day into ``out``; same message model as :func:`gen_l2_nb`, order by order.

    Trades are ``KIND_EXECUTE`` rows of resting orders (side = the resting order's side),
    oldest order at the touch first; an order executed in full leaves the book.
    """
    spread = int(gp[GP_SPREAD])
    depth = int(gp[GP_DEPTH])
    grid_ns = gp[GP_GRID_NS]
    signal = gp[GP_SIGNAL] > 0.0
    pool = 2 * (depth + 2) * (int(gp[GP_MAX_ORDERS]) + 1) * 2 + 64
    head = np.full((2, L3_RING), -1, np.int64)
    tail = np.full((2, L3_RING), -1, np.int64)
    cnt = np.zeros((2, L3_RING), np.int64)
    lqty = np.zeros((2, L3_RING), np.int64)
    o_id = np.zeros(pool, np.uint64)
    o_qty = np.zeros(pool, np.int64)
    o_next = np.full(pool, -1, np.int64)
    free = np.arange(pool - 1, -1, -1).astype(np.int64)
    bk = (head, tail, cnt, lqty, o_id, o_qty, o_next, free)
    cur = np.zeros(6, np.int64)
    cur[C_NEXT_ID] = 1
    cur[C_FREE] = pool
    bid = bid0

    ex = t_open
    lo = ex + int(table_draw(state, tabs, TAB_LATENCY))
    cur[C_EX] = ex
    cur[C_LO] = lo
    cur[C_FLAGS] = FLAG_SYNTHETIC | FLAG_SNAPSHOT
    _l3_emit(out, cur, 0, 0, 0, KIND_CLEAR, 0)
    for side in range(2):
        for k in range(depth):
            _l3_fill_level(out, cur, bk, state, gp, tabs, side,
                           _l2_level_price(bid, spread, side, k), k)
    out[cur[C_POS] - 1]["flags"] |= FLAG_LAST
    cur[C_FLAGS] = FLAG_SYNTHETIC
    last_lo = lo
    msgs = 1
    tau = 0.0
    seg = 0
    while True:
        pos = cur[C_POS]
        per_msg = pos / msgs if msgs >= 64 else 2.0
        tau = next_message_time(state, tau, tau_total, (target - pos) / per_msg)
        if tau >= tau_total:
            break
        seg, t_s = _op_to_time(tau, seg, seg_start_s, seg_tau0, seg_mult)
        ex = max(ex, t_open + int(t_s * 1e9))
        lo = max(last_lo, ex + int(table_draw(state, tabs, TAB_LATENCY)))
        last_lo = lo
        cur[C_EX] = ex
        cur[C_LO] = lo
        reg = seg_regime[seg]
        gi = min(int((ex - t_open) / grid_ns), mid.shape[0] - 1)
        book_mid = bid + 0.5 * spread
        dev = mid[gi] - book_mid
        if dev >= 1.0 or dev <= -1.0:
            d = 1 if dev > 0 else -1
            j = min(int(abs(dev)), depth)
            h = 1 if d > 0 else 0
            f = 1 - h
            by_trade = uniform(state) < gp[GP_MOVE_BY_TRADE]
            for k in range(j):
                p = _l2_level_price(bid, spread, h, k)
                if by_trade:
                    _l3_execute(out, cur, bk, h, p, lqty[h, p & (L3_RING - 1)])
                else:
                    _l3_delete_level(out, cur, bk, h, p)
            for k in range(depth - j, depth):
                _l3_delete_level(out, cur, bk, f, _l2_level_price(bid, spread, f, k))
            bid += d * j
            for k in range(j):
                _l3_fill_level(out, cur, bk, state, gp, tabs, f,
                               _l2_level_price(bid, spread, f, k), k)
            for k in range(depth - j, depth):
                _l3_fill_level(out, cur, bk, state, gp, tabs, h,
                               _l2_level_price(bid, spread, h, k), k)
        else:
            u = uniform(state)
            ptrade = rp[reg, RP_TRADE_PROB]
            if u < ptrade:
                pbuy = _buy_prob(gp, seg_sign[seg], dev)
                h = 1 if uniform(state) < pbuy else 0  # a buy aggressor hits the ask
                p = _l2_level_price(bid, spread, h, 0)
                i = p & (L3_RING - 1)
                x = min(size_draw(state, tabs, TAB_TRADE_SIZE), lqty[h, i])
                _l3_execute(out, cur, bk, h, p, x)
                if cnt[h, i] == 0:  # the level refills, price holds
                    _l3_fill_level(out, cur, bk, state, gp, tabs, h, p, 0)
            elif u < ptrade + (1.0 - ptrade) * gp[GP_TOUCH_SHARE]:
                side = 0 if uniform(state) < 0.5 else 1
                bias = 0.0
                if signal:
                    imb = _signal_target(state, gp, mid, gi, book_mid)
                    bq = lqty[0, bid & (L3_RING - 1)]
                    aq = lqty[1, (bid + spread) & (L3_RING - 1)]
                    now = (bq - aq) / (bq + aq)
                    # raise the bid side or thin the ask to lift the imbalance, and back
                    up = imb > now
                    bias = 1.0 if (side == 0) == up else -1.0
                _l3_liquidity(out, cur, bk, state, gp, tabs, side,
                              _l2_level_price(bid, spread, side, 0), 0, bias)
            else:
                side = 0 if uniform(state) < 0.5 else 1
                k = 1 + int(uniform(state) * (depth - 1))
                _l3_liquidity(out, cur, bk, state, gp, tabs, side,
                              _l2_level_price(bid, spread, side, k), k, 0.0)
        if cur[C_POS] > target:
            cur[C_POS] = pos
            break
        out[cur[C_POS] - 1]["flags"] |= FLAG_LAST
        msgs += 1
    return cur[C_POS]
