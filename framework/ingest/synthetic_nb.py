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
GP_OSIZE_MU = 4  # log of the median order size (lots)
GP_OSIZE_SIGMA = 5
GP_TSIZE_MU = 6  # log of the median noise-trade size
GP_TSIZE_SIGMA = 7
GP_LAT_BASE = 8  # feed latency floor, ns
GP_LAT_MU = 9  # log of the median latency jitter, ns
GP_LAT_SIGMA = 10
GP_MOVE_BY_TRADE = 11  # probability a touch move is a sweep (trades) rather than a fade
GP_TOUCH_SHARE = 12  # share of liquidity messages that act at the touch
GP_FLOW_BIAS = 13  # extra aggressor probability in the trend's direction
GP_PARTIAL_CANCEL = 14  # L3: probability a cancel is partial
GP_MAX_ORDERS = 15  # L3: cap of orders per level
GP_SIGNAL = 16  # predictive-imbalance strength in [0, 1]
GP_SIGNAL_STEPS = 17  # its look-ahead horizon, in mid-grid steps
GP_GRID_NS = 18  # mid-grid step, ns
N_GP = 19

# --- columns of the per-regime parameter matrix ``rp`` (one row per regime) ----------------
RP_TRADE_PROB = 0  # probability a message is a (noise) trade
N_RP = 1

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
def lognormal_int(s: np.ndarray, mu: float, sigma: float) -> int:
    """Lognormal rounded to a whole number of lots, at least 1."""
    v = int(math.exp(mu + sigma * normal(s)) + 0.5)
    return max(v, 1)


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
def _emit(out, pos, ex, lo, price, qty, oid, kind, side, flags):  # type: ignore[no-untyped-def]
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
def _level_size(s: np.ndarray, gp: np.ndarray, k: int) -> int:
    """Size of a fresh L2 level k ticks from the touch: a sum of resting orders."""
    n = 1 + poisson_small(s, _mean_orders(gp, k) - 1.0)
    tot = 0
    for _ in range(n):
        tot += lognormal_int(s, gp[GP_OSIZE_MU], gp[GP_OSIZE_SIGMA])
    return tot


@njit(cache=True)
def _signal_target(s: np.ndarray, gp: np.ndarray, mid: np.ndarray, gi: int, book_mid: float) -> float:
    """Touch imbalance in [-1, 1] that leads the mid by the signal horizon.

    With strength w it is ``w * clip(future mid - book mid, -1, 1)`` plus ``(1 - w)`` noise.
    """
    w = gp[GP_SIGNAL]
    j = min(gi + int(gp[GP_SIGNAL_STEPS]), mid.shape[0] - 1)
    d = mid[j] - book_mid
    d = max(-1.0, min(1.0, d))
    return w * d + (1.0 - w) * (2.0 * uniform(s) - 1.0)


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
def _latency(s: np.ndarray, gp: np.ndarray) -> int:
    return int(gp[GP_LAT_BASE] + math.exp(gp[GP_LAT_MU] + gp[GP_LAT_SIGMA] * normal(s)))


@njit(cache=True)
def _resize(s: np.ndarray, gp: np.ndarray, cur: int, target: float) -> int:
    """One add or cancel on a level of size ``cur``, mean-reverting toward ``target``."""
    d = lognormal_int(s, gp[GP_OSIZE_MU], gp[GP_OSIZE_SIGMA])
    if cur <= 1 or uniform(s) * (target + cur) < target:
        return cur + d
    return max(1, cur - d)


# --- L2 ------------------------------------------------------------------------------------


@njit(cache=True)
def _l2_level_price(bid: int, spread: int, side: int, k: int) -> int:
    return bid - k if side == 0 else bid + spread + k


@njit(cache=True)
def _l2_resplit(out, pos, ex, lo, q, bid, spread, imb, fl):  # type: ignore[no-untyped-def]
    """Set both touch sizes so the touch imbalance is ``imb`` (total unchanged)."""
    tot = q[0, 0] + q[1, 0]
    b = int(tot * (1.0 + imb) * 0.5 + 0.5)
    b = min(max(b, 1), tot - 1)
    q[0, 0] = b
    q[1, 0] = tot - b
    pos = _emit(out, pos, ex, lo, bid, b, 0, KIND_LEVEL, BUY, fl)
    return _emit(out, pos, ex, lo, bid + spread, tot - b, 0, KIND_LEVEL, SELL, fl)


@njit(cache=True)
def _l2_move(out, pos, ex, lo, q, bid, spread, depth, d, j, by_trade, s, gp, fl):  # type: ignore[no-untyped-def]
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
        q[f, k] = _level_size(s, gp, k)
        p = _l2_level_price(new_bid, spread, f, k)
        pos = _emit(out, pos, ex, lo, p, q[f, k], 0, KIND_LEVEL, fs, fl)
    # the hit side: shift toward the touch, fresh levels at the far end
    for k in range(depth - j):
        q[h, k] = q[h, k + j]
    for k in range(depth - j, depth):
        q[h, k] = _level_size(s, gp, k)
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
    mean_size = math.exp(gp[GP_OSIZE_MU] + 0.5 * gp[GP_OSIZE_SIGMA] ** 2)
    fl = np.uint32(FLAG_SYNTHETIC)
    q = np.zeros((2, depth), np.int64)
    bid = bid0

    # opening snapshot: one message
    ex = t_open
    lo = ex + _latency(state, gp)
    snap = np.uint32(FLAG_SYNTHETIC | FLAG_SNAPSHOT)
    pos = _emit(out, 0, ex, lo, 0, 0, 0, KIND_CLEAR, 0, snap)
    for side in range(2):
        for k in range(depth):
            q[side, k] = _level_size(state, gp, k)
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
        lo = max(last_lo, ex + _latency(state, gp))
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
            pos = _l2_move(out, pos, ex, lo, q, bid, spread, depth, d, j, by_trade, state, gp, fl)
            bid += d * j
            if signal:
                imb = _signal_target(state, gp, mid, gi, bid + 0.5 * spread)
                pos = _l2_resplit(out, pos, ex, lo, q, bid, spread, imb, fl)
        else:
            u = uniform(state)
            ptrade = rp[reg, RP_TRADE_PROB]
            if u < ptrade:
                # noise trade at the touch; aggressors lean with a trend
                pbuy = 0.5 + gp[GP_FLOW_BIAS] * seg_sign[seg]
                aggr = BUY if uniform(state) < pbuy else SELL
                h = 1 if aggr == BUY else 0
                p = _l2_level_price(bid, spread, h, 0)
                x = min(lognormal_int(state, gp[GP_TSIZE_MU], gp[GP_TSIZE_SIGMA]), q[h, 0])
                pos = _emit(out, pos, ex, lo, p, x, 0, KIND_TRADE, aggr, fl)
                q[h, 0] -= x
                if q[h, 0] == 0:  # the level refills (hidden / new orders), price holds
                    q[h, 0] = _level_size(state, gp, 0)
                pos = _emit(out, pos, ex, lo, p, q[h, 0], 0, KIND_LEVEL,
                            SELL if h == 1 else BUY, fl)
            elif u < ptrade + (1.0 - ptrade) * gp[GP_TOUCH_SHARE]:
                if signal:
                    imb = _signal_target(state, gp, mid, gi, book_mid)
                    side = 0 if uniform(state) < 0.5 else 1
                    q[side, 0] = _resize(state, gp, q[side, 0],
                                         _mean_orders(gp, 0) * mean_size)
                    pos = _l2_resplit(out, pos, ex, lo, q, bid, spread, imb, fl)
                else:
                    side = 0 if uniform(state) < 0.5 else 1
                    q[side, 0] = _resize(state, gp, q[side, 0], _mean_orders(gp, 0) * mean_size)
                    pos = _emit(out, pos, ex, lo, _l2_level_price(bid, spread, side, 0),
                                q[side, 0], 0, KIND_LEVEL, BUY if side == 0 else SELL, fl)
            else:
                side = 0 if uniform(state) < 0.5 else 1
                k = 1 + int(uniform(state) * (depth - 1))
                q[side, k] = _resize(state, gp, q[side, k], _mean_orders(gp, k) * mean_size)
                pos = _emit(out, pos, ex, lo, _l2_level_price(bid, spread, side, k),
                            q[side, k], 0, KIND_LEVEL, BUY if side == 0 else SELL, fl)
        if pos > target:
            pos = start
            break
        out[pos - 1]["flags"] |= FLAG_LAST
        msgs += 1
    return pos
