"""Microprice, book imbalance, short-horizon volatility and trade-flow imbalance.

Each feature is an online update: :func:`feature_update` folds one event (and the touch
after it) into a small state array and writes the current values. The backtest runs it
over a whole event array in one compiled pass (:func:`compute_features`, which keeps its
own L2 book); live code calls the same kernel per event with its book's touch, so both
produce identical values by construction.

Definitions (prices in ticks, sizes in lots, time in ns):

* microprice = (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty);
* imbalance = (bid_qty - ask_qty) / (bid_qty + ask_qty), in [-1, 1];
* volatility = sqrt of an exponentially time-weighted mean of squared mid changes per
  second (ticks / sqrt(s)), half-life ``vol_halflife_ns``;
* trade-flow imbalance = time-decayed signed traded volume over time-decayed traded
  volume (+1 all buyer-initiated, -1 all seller-initiated), half-life ``tfi_halflife_ns``.

Values are NaN until defined (an empty side, no trade yet).

``regime`` and ``regime_prob`` are filled by a fitted feature model when the pass is given
one (:mod:`framework.features.model`), NaN otherwise.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.book.l2 import (
    BOOK_FULL,
    M_FCAP,
    M_NT,
    NO_PRICE,
    l2_apply,
    l2_best_ask,
    l2_best_ask_qty,
    l2_best_bid,
    l2_best_bid_qty,
    l2_made_room,
    l2_new,
)
from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    EventArray,
)
from framework.features.model import (
    MODEL_STATE_SIZE,
    MODEL_X,
    N_MODEL_INPUTS,
    NO_MODEL,
    OUT_REGIME,
    OUT_REGIME_PROB,
    FeatureModel,
    model_state,
    model_update,
)

F_MICROPRICE: Final = 0
F_IMBALANCE: Final = 1
F_VOLATILITY: Final = 2
F_TFI: Final = 3
F_REGIME: Final = OUT_REGIME  #: label of a fitted feature model (NaN without one)
F_REGIME_PROB: Final = OUT_REGIME_PROB  #: its posterior probability
N_FEATURES: Final = 6
FEATURE_NAMES: Final = (
    "microprice",
    "imbalance",
    "volatility",
    "trade_flow_imbalance",
    "regime",
    "regime_prob",
)

# state words
_S_LAST_MID, _S_LAST_MID_TS, _S_VAR, _S_FLOW, _S_VOL, _S_LAST_TRADE_TS, _S_VOL_HL, _S_TFI_HL = (
    range(8)
)
_S_ROWS: Final = 8  #: rows written so far (a pass over several batches counts on)
_S_PREV: Final = 9  #: the last row written (N_FEATURES words): what a message carries on
STATE_SIZE: Final = _S_PREV + N_FEATURES

FloatArray = npt.NDArray[np.float64]


def feature_state(
    *, vol_halflife_ns: int = 1_000_000_000, tfi_halflife_ns: int = 1_000_000_000
) -> FloatArray:
    """A fresh state array with the given half-lives."""
    s = np.full(STATE_SIZE, np.nan)
    s[_S_VAR] = 0.0
    s[_S_FLOW] = 0.0
    s[_S_VOL] = 0.0
    s[_S_ROWS] = 0.0
    s[_S_VOL_HL] = float(vol_halflife_ns)
    s[_S_TFI_HL] = float(tfi_halflife_ns)
    return s


@njit(cache=True)
def _decay(dt: float, halflife: float) -> float:
    return 0.5 ** (dt / halflife) if halflife > 0.0 else 0.0


@njit(cache=True)
def feature_update(
    state: FloatArray,
    out: FloatArray,
    ts: int,
    kind: int,
    side: int,
    qty: int,
    bb: int,
    ba: int,
    bq: int,
    aq: int,
) -> None:
    """Fold one event into ``state`` and write the market features into ``out[:F_REGIME]``.

    ``bb, ba, bq, aq`` are the touch after the event (``NO_PRICE`` for an empty side).
    """
    if kind == KIND_TRADE and qty > 0:
        last = state[_S_LAST_TRADE_TS]
        d = 0.0 if math.isnan(last) else _decay(float(ts - last), state[_S_TFI_HL])
        sign = 1.0 if side == BUY else (-1.0 if side != 0 else 0.0)
        state[_S_FLOW] = state[_S_FLOW] * d + sign * qty
        state[_S_VOL] = state[_S_VOL] * d + qty
        state[_S_LAST_TRADE_TS] = float(ts)
    if bb != NO_PRICE and ba != NO_PRICE and bq + aq > 0:
        out[F_MICROPRICE] = (bb * aq + ba * bq) / (bq + aq)
        out[F_IMBALANCE] = (bq - aq) / (bq + aq)
        mid = 0.5 * (bb + ba)
        last_mid = state[_S_LAST_MID]
        if math.isnan(last_mid):
            state[_S_LAST_MID] = mid
            state[_S_LAST_MID_TS] = float(ts)
        elif mid != last_mid:
            dt_ns = max(float(ts) - state[_S_LAST_MID_TS], 1.0)
            d = _decay(dt_ns, state[_S_VOL_HL])
            # squared change per second of elapsed time, exponentially weighted
            state[_S_VAR] = state[_S_VAR] * d + (1.0 - d) * (mid - last_mid) ** 2 / (dt_ns * 1e-9)
            state[_S_LAST_MID] = mid
            state[_S_LAST_MID_TS] = float(ts)
    else:
        out[F_MICROPRICE] = np.nan
        out[F_IMBALANCE] = np.nan
    out[F_VOLATILITY] = math.sqrt(state[_S_VAR]) if not math.isnan(state[_S_LAST_MID]) else np.nan
    out[F_TFI] = state[_S_FLOW] / state[_S_VOL] if state[_S_VOL] > 0.0 else np.nan


@njit(cache=True)
def _compute(
    events: EventArray,
    meta: npt.NDArray[np.int64],
    book: npt.NDArray[np.int64],
    state: FloatArray,
    out: FloatArray,
    start: int,
    mp: FloatArray,
    ms: FloatArray,
    xout: FloatArray,
) -> int:
    """Rows ``start:`` of ``out``; returns -1, or the index to go on from once the book is
    grown (its far lists filled up at the event before). ``mp``/``ms``: a feature model's
    parameters and state (``mp`` empty: none); ``xout`` (rows or none) receives its inputs."""
    model = mp.shape[0] > 0
    keep_x = model and xout.shape[0] == events.shape[0]
    for i in range(start, events.shape[0]):
        e = events[i]
        kind = e["kind"]
        full = False
        if kind == KIND_LEVEL or kind == KIND_BBO or kind == KIND_CLEAR:
            full = l2_apply(meta, book, kind, e["side"], e["price"], e["qty"]) == BOOK_FULL
        row = out[i]
        prev = state[_S_PREV : _S_PREV + N_FEATURES]
        if kind != KIND_TRADE and not e["flags"] & FLAG_LAST and state[_S_ROWS] > 0:
            # inside a message the book is not consistent: carry the last values forward
            # (kept in the state, so a batch that starts inside a message carries them too)
            for j in range(N_FEATURES):
                row[j] = prev[j]
            if keep_x:
                for j in range(N_MODEL_INPUTS):
                    xout[i, j] = ms[MODEL_X + j]
            if full:
                return i + 1
            continue
        state[_S_ROWS] += 1.0
        ts = e["local_ts"]
        bb = l2_best_bid(meta, book)
        ba = l2_best_ask(meta, book)
        bq = l2_best_bid_qty(meta, book)
        aq = l2_best_ask_qty(meta, book)
        feature_update(state, row, ts, kind, e["side"], e["qty"], bb, ba, bq, aq)
        if model:
            model_update(mp, ms, row, ts, kind, e["side"], e["qty"], bb, ba, bq, aq)
            if keep_x:
                for j in range(N_MODEL_INPUTS):
                    xout[i, j] = ms[MODEL_X + j]
        for j in range(N_FEATURES):
            prev[j] = row[j]
        if full:
            return i + 1
    return -1


def compute_features(
    events: EventArray,
    *,
    state: FloatArray | None = None,
    book: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None,
    model: FeatureModel | None = None,
    model_state_: FloatArray | None = None,
    inputs_out: FloatArray | None = None,
) -> FloatArray:
    """Features after every event of an L2 event array (one compiled pass), as
    float64[n, N_FEATURES]. Pass ``state`` and ``book`` to continue across batches; a book
    of its own grows as needed, a given one raises a :class:`ConfigError` when it holds
    more levels outside its window than its far capacity.

    ``model`` fills ``regime``/``regime_prob`` (its state in ``model_state_``, to continue
    across batches); ``inputs_out`` (float64[n, N_MODEL_INPUTS]) receives the model's
    inputs after every event, which is what a fit needs."""
    meta, qty = book if book is not None else l2_new(1 << 15)
    st = state if state is not None else feature_state()
    out = np.full((len(events), N_FEATURES), np.nan)
    mp = model.params if model is not None else NO_MODEL
    ms = model_state_ if model_state_ is not None else model_state()
    if ms.shape != (MODEL_STATE_SIZE,):
        msg = f"a feature model state has {MODEL_STATE_SIZE} words; make it with model_state()"
        raise ConfigError(msg)
    xo: FloatArray = np.empty((0, N_MODEL_INPUTS))
    if inputs_out is not None:
        if model is None or inputs_out.shape != (len(events), N_MODEL_INPUTS):
            msg = (f"inputs_out needs a model and the shape {(len(events), N_MODEL_INPUTS)}, "
                   f"got {inputs_out.shape}")
            raise ConfigError(msg)
        xo = inputs_out
    i = 0
    while True:
        i = _compute(events, meta, qty, st, out, i, mp, ms, xo)
        if i < 0:
            return out
        if book is not None:
            msg = (
                f"an L2 book holds more than {int(meta[M_FCAP]):,} price levels a side outside "
                f"its {int(meta[M_NT]):,}-tick window; give it more far levels "
                "(Capacity.book_far_levels in a backtest, l2_new(far_levels=...) otherwise)"
            )
            raise ConfigError(msg)
        meta, qty = l2_made_room(meta, qty)
