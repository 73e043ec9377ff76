"""Hand-made results shared by the analysis tests."""

import polars as pl

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
