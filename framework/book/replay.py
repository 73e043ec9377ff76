"""Book replay: the book after every venue message, as LOBSTER-layout rows and CSV.

``hftlab book replay`` calls :func:`book_replay_to_csv`. A row is written after each event
that carries ``FLAG_LAST`` (the book is consistent there; a message that became several
events gives one row), in LOBSTER's orderbook column order: ask price, ask size, bid price,
bid size for level 1..N. Rows are int64 ticks and lots with empty levels ``(NO_PRICE, 0)``;
the CSV has prices in currency units and leaves empty levels blank.
"""

# Compiled kernels take their state arrays and event fields positionally (numba has no
# keyword-only arguments), so the positional-argument limit does not apply here.

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import IO, Any

import numpy as np
from numba import njit

from framework.book.l2 import (
    BOOK_FULL,
    NO_PRICE,
    POOL_FULL,
    STAT_NAMES,
    IntArray,
    l2_apply,
    l2_made_room,
    l2_new,
    l2_snapshot,
)
from framework.book.l3 import L3_STAT_NAMES, l3_apply, l3_made_room, l3_new
from framework.core.errors import ConfigError
from framework.core.events import FLAG_LAST, KIND_ADD, EventArray
from framework.core.instrument import Instrument

#: book window for replay: the part of the book near the touch kept as a dense array (levels
#: outside it live in the far lists; the width only trades memory for speed)
REPLAY_TICKS = 1 << 15
#: order pool to start with; the replayer doubles it when a day needs more
REPLAY_CAPACITY = 1 << 16


@njit(cache=True)
def _replay_l2_nb(meta: IntArray, qty: IntArray, events: EventArray, start: int, levels: int,
                  out: IntArray, r: int) -> tuple[int, int]:
    """Apply ``events[start:]``; returns ``(rows written so far, -1)`` or, when the far lists
    fill, ``(rows, index of the next event to apply after growing them)``."""
    for i in range(start, events.shape[0]):
        e = events[i]
        res = l2_apply(meta, qty, e["kind"], e["side"], e["price"], e["qty"])
        if e["flags"] & FLAG_LAST:
            l2_snapshot(meta, qty, levels, out[r])
            r += 1
        if res == BOOK_FULL:
            return r, i + 1
    return r, -1


@njit(cache=True)
def _replay_l3_nb(meta: IntArray, qty: IntArray, ends: IntArray, orders: IntArray,
                  table: IntArray, events: EventArray, start: int, levels: int,
                  out: IntArray, r: int) -> tuple[int, int]:
    """Apply ``events[start:]``; returns ``(rows written so far, -1)`` or, when the pool or
    the far lists fill, ``(rows, index of the next event to apply after growing them)``."""
    for i in range(start, events.shape[0]):
        e = events[i]
        res = l3_apply(meta, qty, ends, orders, table, e["kind"], e["side"], e["price"],
                       e["qty"], np.int64(e["order_id"]))
        if res == POOL_FULL:  # nothing applied: retry the event
            return r, i
        if e["flags"] & FLAG_LAST:
            l2_snapshot(meta, qty, levels, out[r])
            r += 1
        if res == BOOK_FULL:  # applied: go on with the next one
            return r, i + 1
    return r, -1


class BookReplayer:
    """Keeps one book across batches and returns the rows each batch produces.

    The book holds every level at any price: its far lists and (L3) order pool start at
    the given sizes and double whenever a day needs more, so a replay never drops an order
    or fails for want of room.
    """

    def __init__(self, *, levels: int, l3: bool, n_ticks: int = REPLAY_TICKS,
                 capacity: int = REPLAY_CAPACITY) -> None:
        if not isinstance(levels, int | np.integer) or levels < 1:
            msg = f"levels={levels!r}: give the number of book levels per row, 1 or more"
            raise ConfigError(msg)
        self.levels = int(levels)
        self.l3 = l3
        self.rows_written = 0
        if l3:
            self.state: tuple[IntArray, ...] = l3_new(capacity, n_ticks)
        else:
            self.state = l2_new(n_ticks)

    def feed(self, events: EventArray) -> IntArray:
        """Apply a batch; returns int64[rows, 4 * levels], one row per ``FLAG_LAST`` event."""
        n_rows = int(np.count_nonzero(events["flags"] & FLAG_LAST))
        out = np.empty((n_rows, 4 * self.levels), np.int64)
        r, i = 0, 0
        while True:
            if self.l3:
                r, i = _replay_l3_nb(*self.state, events, i, self.levels, out, r)
            else:
                r, i = _replay_l2_nb(*self.state, events, i, self.levels, out, r)
            if i < 0:
                break
            if self.l3:
                self.state = l3_made_room(self.state)
            else:
                self.state = l2_made_room(*self.state)
        self.rows_written += int(r)
        return out[:r]

    @property
    def stats(self) -> dict[str, int]:
        names = L3_STAT_NAMES if self.l3 else STAT_NAMES
        return {k: int(self.state[0][i]) for k, i in names.items()}


def replay_book_rows(events: EventArray, *, levels: int, l3: bool,
                     n_ticks: int = REPLAY_TICKS) -> IntArray:
    """The book after every ``FLAG_LAST`` event of ``events``: int64[rows, 4 * levels] of
    (ask price, ask lots, bid price, bid lots) per level in ticks; empty levels are
    ``(NO_PRICE, 0)``."""
    n_adds = int(np.count_nonzero(events["kind"] == KIND_ADD))
    rep = BookReplayer(levels=levels, l3=l3, n_ticks=n_ticks,
                       capacity=max(16, min(n_adds + 1, REPLAY_CAPACITY)))
    return rep.feed(events)


# --- CSV -------------------------------------------------------------------------------------


def _scaled(step: Any, decimals: int) -> int:
    """``step`` (a Decimal tick or lot size) in units of 10**-decimals, as an exact int."""
    v = step.scaleb(decimals)
    if v != v.to_integral_value():
        msg = f"{step} does not fit {decimals} decimals"
        raise ConfigError(msg)
    return int(v)


def lobster_frame(rows: IntArray, instrument: Instrument) -> Any:
    """Rows as a polars DataFrame of strings in currency units, empty levels null."""
    import polars as pl

    levels = rows.shape[1] // 4
    pd_, qd = instrument.price_decimals, instrument.qty_decimals
    pmul, qmul = _scaled(instrument.tick_size, pd_), _scaled(instrument.lot_size, qd)
    names = lobster_columns(levels)
    df = pl.DataFrame(rows, schema=names, orient="row")

    def fmt(col: str, mul: int, dec: int) -> pl.Expr:
        v = pl.col(col) * mul
        a = v.abs()
        text = pl.when(v < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        if dec:
            unit = 10**dec
            text = text + (a // unit).cast(pl.Utf8) + "." + (a % unit).cast(pl.Utf8).str.zfill(dec)
        else:
            text = text + a.cast(pl.Utf8)
        return text

    exprs = []
    for k in range(levels):
        for w in ("ask", "bid"):
            px, sz = f"{w}_px_{k + 1}", f"{w}_sz_{k + 1}"
            empty = pl.col(px) == NO_PRICE
            exprs.append(pl.when(empty).then(None).otherwise(fmt(px, pmul, pd_)).alias(px))
            exprs.append(pl.when(empty).then(None).otherwise(fmt(sz, qmul, qd)).alias(sz))
    return df.select(exprs).select(names)


#: the columns ``--header`` puts first: the local (receive) time of the message after which
#: the row shows the book, as ISO-8601 UTC and as ns since the epoch, and its exchange time
TIME_COLUMNS = ("local_time", "local_ts", "exch_ts")


def lobster_columns(levels: int, *, times: bool = False) -> list[str]:
    """Column names of a replay CSV: ``ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ...``."""
    book = [f"{w}_{k + 1}" for k in range(levels) for w in ("ask_px", "ask_sz", "bid_px", "bid_sz")]
    return [*TIME_COLUMNS, *book] if times else book


def write_lobster_csv(rows: IntArray, instrument: Instrument, out: IO[bytes], *,
                      times: tuple[IntArray, IntArray] | None = None) -> None:
    """Append rows to ``out`` as LOBSTER-layout CSV (no header, empty levels blank).

    ``times`` — the ``(exch_ts, local_ts)`` of each row's message — adds the
    :data:`TIME_COLUMNS` in front of the book columns.
    """
    if not len(rows):
        return
    import polars as pl

    df = lobster_frame(rows, instrument)
    if times is not None:
        exch, local = (pl.Series(t, dtype=pl.Int64) for t in times)
        iso = pl.from_epoch(local, time_unit="ns").dt.strftime("%Y-%m-%dT%H:%M:%S%.9fZ")
        df = pl.DataFrame({"local_time": iso, "local_ts": local, "exch_ts": exch}).hstack(df)
    df.write_csv(out, include_header=False, null_value="")


def book_replay_to_csv(store: Any, venue: str, symbol: str, date: dt.date | str,
                       levels: int, out_path: str | os.PathLike[str], *,
                       header: bool = False) -> int:
    """Replay a stored day through the book and write the book after every message as
    LOBSTER-layout CSV; returns the rows written. Uses an L3 book when the day has order
    adds, else an L2 book. Streams the day a row group at a time; the file appears only
    when complete. With ``header`` the file starts with a line of column names and each
    row with the :data:`TIME_COLUMNS` of its message."""
    inst = store.instrument(venue, symbol, date)
    counts = store.kind_counts(venue, symbol, date)
    n_adds = int(counts.get(KIND_ADD, 0))
    rep = BookReplayer(levels=levels, l3=n_adds > 0,
                       capacity=max(16, min(n_adds + 1, REPLAY_CAPACITY)))
    out = Path(out_path)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            if header:
                fh.write((",".join(lobster_columns(levels, times=True)) + "\n").encode())
            for batch in store.iter_batches(venue, symbol, date):
                rows = rep.feed(batch)
                last = batch[(batch["flags"] & FLAG_LAST) != 0] if header else None
                times = None if last is None else (last["exch_ts"], last["local_ts"])
                write_lobster_csv(rows, inst, fh, times=times)
        tmp.replace(out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rep.rows_written
