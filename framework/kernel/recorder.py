"""The engine's recorder rows (int64, prices in ticks, sizes in lots) as result tables.

The compiled engine appends rows to fixed buffers in the arena (``rec_*`` segments, column
indices named in :mod:`framework.arena.state`); the driver copies them out when a buffer
fills. :class:`RecordDecoder` turns one such batch into a polars table in real units, with the
column names and dtypes of :data:`framework.analysis.results.SCHEMAS`, reading each column by
the same named constant the recorder writes it with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.analysis.results import SCHEMAS, TOTAL
from framework.arena.enums import (
    DENY_NAMES,
    LIQ_MAKER,
    ORD_MARKET,
    ORDER_TYPE_NAMES,
    REJ_NAMES,
    STATUS_NAMES,
    TERMINAL_STATUSES,
    TIF_NAMES,
)
from framework.arena.state import (
    DENY_COLS,
    DENY_INST,
    DENY_PRICE,
    DENY_QTY,
    DENY_REASON,
    DENY_SIDE,
    DENY_STRAT,
    DENY_TS,
    EQ_CASH,
    EQ_COLS,
    EQ_EQUITY,
    EQ_FEES,
    EQ_POSVAL,
    EQ_STRAT,
    EQ_STRAT_TOTAL,
    EQ_TS,
    F_EXCH_TS,
    F_FEE,
    F_INST,
    F_LIQ,
    F_OID,
    F_POS,
    F_PRICE,
    F_QTY,
    F_SIDE,
    F_STRAT,
    F_TS,
    FILL_COLS,
    LATH_COUNT,
    LATH_SUM,
    LATK_ENTRY,
    LATK_RESP,
    LATK_ROUND_TRIP,
    MKT_ASK,
    MKT_BID,
    MKT_COLS,
    MKT_INST,
    MKT_TS,
    OL_END,
    OL_FILLED,
    OL_ID,
    OL_INST,
    OL_NOTIONAL,
    OL_PRICE,
    OL_QTY,
    OL_REASON,
    OL_SIDE,
    OL_STATUS,
    OL_STRAT,
    OL_SUBMIT,
    OL_TIF,
    OL_TYPE,
    ORDLOG_COLS,
    POSREC_COLS,
    POSREC_INST,
    POSREC_MID,
    POSREC_POS,
    POSREC_STRAT,
    POSREC_TS,
)
from framework.book.l2 import NO_PRICE
from framework.core.instrument import Instrument

I64 = npt.NDArray[np.int64]

#: Recorder buffer (State field ``rec_<key>``) -> result table, with the row width.
RECORDS: Mapping[str, tuple[str, int]] = {
    "fill": ("fills", FILL_COLS),
    "ord": ("orders", ORDLOG_COLS),
    "deny": ("denials", DENY_COLS),
    "eq": ("equity", EQ_COLS),
    "pos": ("positions", POSREC_COLS),
    "mkt": ("market", MKT_COLS),
}
#: Columns and dtypes of the tables the decoder makes: :data:`SCHEMAS` and, in the order log,
#: the local time the strategy learnt an order finished (null while it was still working).
TABLE_SCHEMAS: Mapping[str, Mapping[str, pl.DataType]] = {
    **SCHEMAS,
    "orders": {**SCHEMAS["orders"], "end_ts": pl.Int64()},
}
LATENCY_KIND_NAMES: Mapping[int, str] = {
    LATK_ENTRY: "entry",
    LATK_RESP: "response",
    LATK_ROUND_TRIP: "round_trip",
}


def _f64(col: I64) -> npt.NDArray[np.float64]:
    """A float stored bit for bit in an int64 recorder column (contiguous)."""
    return col.view(np.float64)


def _lookup(names: Mapping[int, str], default: str | None = None) -> pl.Series:
    """Names indexed by code (codes are small non-negative ints); gaps get ``default``."""
    out = [default] * (max(names) + 1)
    for code, name in names.items():
        out[code] = name
    return pl.Series(out, dtype=pl.String)


def _take(names: pl.Series, idx: I64, what: str) -> pl.Series:
    """``names[idx]``; an index outside the table is an engine bug, named as such."""
    if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= len(names)):
        bad = int(idx[(idx < 0) | (idx >= len(names))][0])
        msg = f"the recorder wrote {what} code {bad}, which has no name; this is an engine bug"
        raise ValueError(msg)
    return names.gather(idx)


_ORDER_TYPES = _lookup(ORDER_TYPE_NAMES)
_TIFS = _lookup(TIF_NAMES)
_STATUSES = _lookup(STATUS_NAMES)
_REJECTS = _lookup({**REJ_NAMES, 0: ""}, default="")
_DENIALS = _lookup(DENY_NAMES)
_LIQUIDITY = pl.Series(["maker", "taker"], dtype=pl.String)
_LAT_KINDS = _lookup(LATENCY_KIND_NAMES)


class RecordDecoder:
    """Decode recorder batches of one run (its instruments and strategies) into tables.

    Position rows are kept for the instruments a strategy listens to or has held at some
    point in the run; the second is only known at the end, so :meth:`positions_to_drop`
    names the (strategy, instrument) pairs whose rows turned out not to be wanted.
    """

    def __init__(
        self,
        instruments: Sequence[Instrument],
        strategies: Sequence[str],
        subscribed: npt.NDArray[np.int64],
    ) -> None:
        self.n_inst = len(instruments)
        self.n_strat = len(strategies)
        # one extra entry at the end stands for an index no instrument has (a denied order
        # naming a bad instrument is recorded with the index it gave); the extra strategy
        # is the sum of all (equity rows of a run of several)
        self.inst_names = pl.Series([i.key for i in instruments] + ["?"], dtype=pl.String)
        self.strat_names = pl.Series([*strategies, TOTAL], dtype=pl.String)
        self.ticks = np.array([float(i.tick_size) for i in instruments] + [np.nan])
        self.lots = np.array([float(i.lot_size) for i in instruments] + [np.nan])
        self.subscribed = np.asarray(subscribed) != 0
        self.held = np.zeros_like(self.subscribed)  #: a non-zero position was sampled
        self.sampled = np.zeros_like(self.subscribed)  #: position rows were recorded
        self._decoders = {
            "fill": self._fills,
            "ord": self._orders,
            "deny": self._denials,
            "eq": self._equity,
            "pos": self._positions,
            "mkt": self._market,
        }
        assert self._decoders.keys() == RECORDS.keys()

    def decode(self, key: str, rows: I64) -> pl.DataFrame:
        """The table rows of recorder buffer ``key`` (see :data:`RECORDS`): ``rows`` is the
        buffer's filled part, ``(n, width)``, and may be the arena itself (it is copied)."""
        # one copy, column by column: a column of the row-major buffer is strided, and
        # reading each on its own would read the whole buffer once per column
        return self._decoders[key](np.array(rows.T, order="C"))

    def positions_to_drop(self) -> list[tuple[str, str]]:
        """(strategy, instrument) pairs with position rows that are neither listened to nor
        ever held: their rows say nothing (always 0) and are left out of the table."""
        drop = self.sampled & ~self.subscribed & ~self.held
        return [
            (str(self.strat_names[int(s)]), str(self.inst_names[int(i)]))
            for s, i in zip(*np.nonzero(drop), strict=True)
        ]

    # --- one method per table: each takes the rows column by column (c[COL] is a column) --
    def _fills(self, f: I64) -> pl.DataFrame:
        fi = f[F_INST]
        return pl.DataFrame(
            {
                "ts": f[F_TS],
                "exch_ts": f[F_EXCH_TS],
                "strategy": _take(self.strat_names, f[F_STRAT], "strategy"),
                "instrument": _take(self.inst_names, fi, "instrument"),
                "order_id": f[F_OID].astype(np.uint64),
                "side": f[F_SIDE].astype(np.int8),
                "price": f[F_PRICE] * self.ticks[fi],
                "qty": f[F_QTY] * self.lots[fi],
                "liquidity": _LIQUIDITY.gather((f[F_LIQ] != LIQ_MAKER).astype(np.int64)),
                "fee": _f64(f[F_FEE]),
                "position": f[F_POS] * self.lots[fi],
            }
        )

    def _orders(self, o: I64) -> pl.DataFrame:
        oi = o[OL_INST]
        kind = o[OL_TYPE]
        filled = o[OL_FILLED]
        reason = o[OL_REASON]
        # an unknown reject code reads as no reason (as the strategy is told)
        known = (reason >= 0) & (reason < len(_REJECTS))
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = np.where(filled > 0, o[OL_NOTIONAL] / np.maximum(filled, 1), np.nan)
        return pl.DataFrame(
            {
                "order_id": o[OL_ID].astype(np.uint64),
                "strategy": _take(self.strat_names, o[OL_STRAT], "strategy"),
                "instrument": _take(self.inst_names, oi, "instrument"),
                "side": o[OL_SIDE].astype(np.int8),
                "order_type": _take(_ORDER_TYPES, kind, "order type"),
                "tif": _take(_TIFS, o[OL_TIF], "time in force"),
                "price": np.where(kind == ORD_MARKET, np.nan, o[OL_PRICE] * self.ticks[oi]),
                "qty": o[OL_QTY] * self.lots[oi],
                "submit_ts": o[OL_SUBMIT],
                "status": _take(_STATUSES, o[OL_STATUS], "order status"),
                "filled_qty": filled * self.lots[oi],
                "avg_price": avg * self.ticks[oi],
                "reason": _REJECTS.gather(np.where(known, reason, 0)),
                # with submit_ts, when the order was open; null: still working at the end
                "end_ts": pl.Series(o[OL_END], dtype=pl.Int64).set(
                    pl.Series(~np.isin(o[OL_STATUS], TERMINAL_STATUSES)), None
                ),
            }
        )

    def _denials(self, d: I64) -> pl.DataFrame:
        raw = d[DENY_INST]
        di = np.where((raw >= 0) & (raw < self.n_inst), raw, self.n_inst)
        return pl.DataFrame(
            {
                "ts": d[DENY_TS],
                "strategy": _take(self.strat_names, d[DENY_STRAT], "strategy"),
                "instrument": self.inst_names.gather(di),
                "side": d[DENY_SIDE].astype(np.int8),
                "price": d[DENY_PRICE] * self.ticks[di],
                "qty": d[DENY_QTY] * self.lots[di],
                "reason": _take(_DENIALS, d[DENY_REASON], "denial reason"),
            }
        )

    def _equity(self, e: I64) -> pl.DataFrame:
        sid = np.where(e[EQ_STRAT] == EQ_STRAT_TOTAL, self.n_strat, e[EQ_STRAT])
        return pl.DataFrame(
            {
                "ts": e[EQ_TS],
                "strategy": _take(self.strat_names, sid, "strategy"),
                "equity": _f64(e[EQ_EQUITY]),
                "cash": _f64(e[EQ_CASH]),
                "fees": _f64(e[EQ_FEES]),
                "position_value": _f64(e[EQ_POSVAL]),
            }
        )

    def _positions(self, p: I64) -> pl.DataFrame:
        ps, pi = p[POSREC_STRAT], p[POSREC_INST]
        self.sampled[ps, pi] = True
        nz = p[POSREC_POS] != 0
        self.held[ps[nz], pi[nz]] = True
        return pl.DataFrame(
            {
                "ts": p[POSREC_TS],
                "strategy": _take(self.strat_names, ps, "strategy"),
                "instrument": _take(self.inst_names, pi, "instrument"),
                "position": p[POSREC_POS] * self.lots[pi],
                "mid": _f64(p[POSREC_MID]) * self.ticks[pi],
            }
        )

    def _market(self, m: I64) -> pl.DataFrame:
        mi = m[MKT_INST]
        tick = self.ticks[mi]
        bid, ask = m[MKT_BID], m[MKT_ASK]
        return pl.DataFrame(
            {
                "ts": m[MKT_TS],
                "instrument": _take(self.inst_names, mi, "instrument"),
                "bid": np.where(bid == NO_PRICE, np.nan, bid * tick),
                "ask": np.where(ask == NO_PRICE, np.nan, ask * tick),
            }
        )



def latency_table(hist: I64) -> pl.DataFrame:
    """The ``latency`` table from the run's histogram (State ``lat_hist``): one row per
    non-empty bucket, by kind then value -- ``ns`` the mean of the latencies counted in it
    (exact when they were all equal, as with a constant latency), ``count`` how many."""
    kinds, buckets = np.nonzero(hist[:, LATH_COUNT, :])
    count = hist[kinds, LATH_COUNT, buckets]
    total = hist[kinds, LATH_SUM, buckets]
    return pl.DataFrame(
        {
            "kind": _take(_LAT_KINDS, kinds.astype(np.int64), "latency kind"),
            "ns": (total + count // 2) // count,
            "count": count,
        }
    )
