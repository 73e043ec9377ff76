"""Round trips: the P&L of each flat-to-flat run of fills of one strategy on one instrument.

The compiled scan carries its state between calls, so the fills can come a part at a time
(:class:`framework.analysis.tally.Tally`) as well as whole (:func:`round_trips`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

FloatArray = npt.NDArray[np.float64]


@njit(cache=True)
def round_trip_scan_nb(
    side: npt.NDArray[np.int8],
    price: FloatArray,
    qty: FloatArray,
    fee: FloatArray,
    position: FloatArray,
    out: FloatArray,
    carry: FloatArray,
) -> int:
    """:func:`round_trip_pnl_nb` over the fills in parts: ``carry`` (float64[2], zeros at the
    start) holds whether a trip is open and its P&L so far, and is updated in place, so a
    scan over consecutive parts gives the trips of the whole."""
    n = side.shape[0]
    n_out = 0
    is_open = carry[0] != 0.0
    pnl = carry[1]
    for i in range(n):
        q = qty[i]
        after = position[i]
        before = after - side[i] * q
        # positions are float sums of lot quantities: compare with a tolerance, not == 0
        tol = 1e-9 * max(1.0, abs(q))
        cash = -side[i] * price[i] * q - fee[i]
        if abs(before) <= tol:
            is_open = True
            pnl = 0.0
        if abs(after) <= tol:
            if is_open:
                out[n_out] = pnl + cash
                n_out += 1
            is_open = False
            pnl = 0.0
        elif before * after < 0.0 and q > 0.0:
            closing = abs(before) / q
            if is_open:
                out[n_out] = pnl + cash * closing
                n_out += 1
            is_open = True
            pnl = cash * (1.0 - closing)
        else:
            pnl += cash
    carry[0] = 1.0 if is_open else 0.0
    carry[1] = pnl
    return n_out


@njit(cache=True)
def round_trip_pnl_nb(
    side: npt.NDArray[np.int8],
    price: FloatArray,
    qty: FloatArray,
    fee: FloatArray,
    position: FloatArray,
    out: FloatArray,
) -> int:
    """Net P&L of each flat-to-flat round trip of one strategy on one instrument.

    Fills must be in time order; ``position`` is the position after each fill. A trip opens
    when a fill starts from flat and closes when the position returns to flat; a fill that
    flips the position closes one trip and opens the next, its cash and fee split by quantity.
    A trip already open before the first fill is not counted. Writes P&Ls to ``out`` (length
    at least ``len(side)``) and returns how many.
    """
    return round_trip_scan_nb(side, price, qty, fee, position, out, np.zeros(2))


def trip_args(
    g: pl.DataFrame,
) -> tuple[npt.NDArray[np.int8], FloatArray, FloatArray, FloatArray, FloatArray]:
    """The arrays :func:`round_trip_scan_nb` takes, from fills of one strategy and instrument."""
    return (
        g["side"].to_numpy().astype(np.int8),
        g["price"].to_numpy().astype(np.float64),
        g["qty"].to_numpy().astype(np.float64),
        g["fee"].to_numpy().astype(np.float64),
        g["position"].to_numpy().astype(np.float64),
    )


def round_trips(fills: pl.DataFrame) -> FloatArray:
    """Net P&L of every closed round trip in ``fills`` (per strategy and instrument)."""
    if fills.height == 0:
        return np.zeros(0, dtype=np.float64)
    parts: list[FloatArray] = []
    ordered = fills.sort(["strategy", "instrument", "ts"], maintain_order=True)
    for _, g in ordered.group_by(["strategy", "instrument"], maintain_order=True):
        out = np.empty(g.height, dtype=np.float64)
        side, price, qty, fee, position = trip_args(g)
        k = round_trip_pnl_nb(side, price, qty, fee, position, out)
        parts.append(out[:k])
    return np.concatenate(parts)
