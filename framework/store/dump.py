"""Events of a stored day as a table in real units (for ``hftlab data dump``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from framework.core.events import FLAG_NAMES, KIND_NAMES, SIDE_NAMES
from framework.store.tickstore import TickStore


def _flag_strings(flags: np.ndarray[Any, np.dtype[np.uint32]]) -> list[str]:
    # few distinct flag values per day: name each distinct value once
    uniq, inv = np.unique(flags, return_inverse=True)
    names = ["|".join(n for bit, n in FLAG_NAMES.items() if int(u) & bit) for u in uniq]
    return [names[i] for i in inv]


def dump_frame(
    store: TickStore, venue: str, symbol: str, date: dt.date, *, limit: int | None = None
) -> pl.DataFrame:
    """One day's events with prices and sizes in real units and names for codes."""
    inst = store.instrument(venue, symbol, date)
    lf = store.scan(venue, symbol, [date])
    if limit is not None:
        lf = lf.head(limit)
    df = lf.collect()
    kind_map = {int(k): v for k, v in KIND_NAMES.items()}
    side_map = {int(k): v for k, v in SIDE_NAMES.items()}
    flags = _flag_strings(df["flags"].to_numpy())
    return pl.DataFrame(
        {
            "exch_ts": df["exch_ts"],
            "local_ts": df["local_ts"],
            "kind": df["kind"].cast(pl.Int64).replace_strict(kind_map, default="?"),
            "side": df["side"].cast(pl.Int64).replace_strict(side_map, default="?"),
            "price": (df["price"].cast(pl.Float64) * float(inst.tick_size)).round(
                inst.price_decimals
            ),
            "qty": (df["qty"].cast(pl.Float64) * float(inst.lot_size)).round(inst.qty_decimals),
            "order_id": df["order_id"],
            "flags": pl.Series(flags, dtype=pl.String),
        }
    )
