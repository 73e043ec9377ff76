"""Hand-made results shared by the analysis tests."""

import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from framework.analysis import TOTAL

S = 1_000_000_000
T0 = 1_700_000_000 * S
INST = "XNAS/AAPL"


def three_fills() -> pl.DataFrame:
    """Buy 2 @ 100 (maker), sell 3 @ 101 (taker), buy 1 @ 102 (maker) for strategy "mm"."""
    return pl.DataFrame(
        {
            "ts": [T0 + 10 * S, T0 + 70 * S, T0 + 130 * S],
            "exch_ts": [T0 + 9 * S, T0 + 69 * S, T0 + 129 * S],
            "strategy": ["mm"] * 3,
            "instrument": [INST] * 3,
            "order_id": [1, 2, 3],
            "side": [1, -1, 1],
            "price": [100.0, 101.0, 102.0],
            "qty": [2.0, 3.0, 1.0],
            "liquidity": ["maker", "taker", "maker"],
            "fee": [-0.02, 0.09, -0.01],
            "position": [2.0, -1.0, 0.0],
        }
    )


def random_tables(seed: int = 7, n_fills: int = 5_000) -> dict[str, pl.DataFrame]:
    """Orders, fills, denials, equity and positions of two strategies on two instruments,
    seeded: positions cross zero often (round trips, flips), fills are in time order."""
    rng = np.random.default_rng(seed)
    strats = np.array(["mm", "tk"])
    insts = np.array([INST, "XNAS/MSFT"])
    s = rng.integers(0, 2, n_fills)
    i = rng.integers(0, 2, n_fills)
    side = rng.choice(np.array([-1, 1], np.int8), n_fills)
    qty = rng.integers(1, 4, n_fills).astype(np.float64)
    price = 100.0 + np.cumsum(rng.normal(0.0, 0.05, n_fills)).round(2)
    liq = rng.choice(np.array(["maker", "taker"]), n_fills, p=[0.7, 0.3])
    fee = np.where(liq == "maker", -0.0001, 0.0003) * price * qty
    pos = np.zeros(n_fills)
    for key in range(4):
        m = (s * 2 + i) == key
        pos[m] = np.cumsum(side[m] * qty[m]) + (3.0 if key == 3 else 0.0)  # one starts long
    ts = T0 + np.cumsum(rng.integers(0, 2 * S, n_fills))  # equal times happen
    fills = pl.DataFrame(
        {
            "ts": ts,
            "exch_ts": ts - 1_000,
            "strategy": strats[s],
            "instrument": insts[i],
            "order_id": np.arange(1, n_fills + 1, dtype=np.uint64),
            "side": side,
            "price": price,
            "qty": qty,
            "liquidity": liq,
            "fee": fee,
            "position": pos,
        }
    )
    n_ord = n_fills + n_fills // 2
    statuses = np.array(["filled", "canceled", "rejected", "expired"])
    orders = pl.DataFrame(
        {
            "order_id": np.arange(1, n_ord + 1, dtype=np.uint64),
            "strategy": strats[rng.integers(0, 2, n_ord)],
            "instrument": insts[rng.integers(0, 2, n_ord)],
            "side": rng.choice(np.array([-1, 1], np.int8), n_ord),
            "order_type": ["limit"] * n_ord,
            "tif": ["gtc"] * n_ord,
            "price": np.full(n_ord, 100.0),
            "qty": np.ones(n_ord),
            "submit_ts": T0 + np.arange(n_ord, dtype=np.int64) * S,
            "status": statuses[rng.integers(0, 4, n_ord)],
            "filled_qty": np.ones(n_ord),
            "avg_price": np.full(n_ord, 100.0),
            "reason": [""] * n_ord,
        }
    )
    n_den = n_fills // 10
    reasons = np.array(["max_position_instrument", "rate_limit", "price_collar"])
    denials = pl.DataFrame(
        {
            "ts": T0 + np.arange(n_den, dtype=np.int64) * S,
            "strategy": strats[rng.integers(0, 2, n_den)],
            "instrument": insts[rng.integers(0, 2, n_den)],
            "side": rng.choice(np.array([-1, 1], np.int8), n_den),
            "price": np.full(n_den, 100.0),
            "qty": np.ones(n_den),
            "reason": reasons[rng.integers(0, 3, n_den)],
        }
    )
    n_eq = 600
    grid = T0 + np.arange(n_eq, dtype=np.int64) * S
    walk = {name: np.cumsum(rng.normal(0.0, 1.0, n_eq)) for name in strats}
    equity = pl.concat(
        pl.DataFrame(
            {
                "ts": grid,
                "strategy": [name] * n_eq,
                "equity": eq,
                "cash": eq,
                "fees": np.linspace(0.0, 1.0, n_eq),
                "position_value": np.zeros(n_eq),
            }
        )
        for name, eq in [*walk.items(), (TOTAL, walk["mm"] + walk["tk"])]
    )
    positions = pl.concat(
        pl.DataFrame(
            {
                "ts": grid,
                "strategy": [name] * n_eq,
                "instrument": [inst] * n_eq,
                "position": rng.integers(-5, 6, n_eq).astype(np.float64),
                "mid": np.full(n_eq, 100.0),
            }
        )
        for name in strats
        for inst in insts
    )
    return {
        "orders": orders,
        "fills": fills,
        "denials": denials,
        "equity": equity,
        "positions": positions,
    }


def assert_stats_equal(a: Any, b: Any, path: str = "") -> None:
    """Statistics equal: counts exactly, floats to rounding (sums taken in parts add in
    another order)."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_stats_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float):
        same = (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-9)
        assert same, f"{path}: {a} != {b}"
    else:
        assert a == b, path
