"""Bars and sampled series of stored days, built batch by batch in one compiled pass.

A bar of ``every`` ns is labelled by its END and closed on the right: the bar ``ts`` holds
the events with ``ts - every < local_ts <= ts``, so a row uses only what a strategy could
have seen by ``ts`` (``local_ts``: when the event reached us, the time the engine replays
by). Per bar:

* ``open``: the mid (ticks) in effect as the bar opens (the last bar's close; a day's first
  bar: its first mid); ``high/low/close``: the highest / lowest / last mid, the open
  included, after each whole venue message (the book a strategy's ``on_book`` sees);
* ``microprice``, ``imbalance``, ``spread`` (ticks): the values as of ``ts`` -- computed by
  :func:`framework.features.kernels.feature_update` on the same L2 book and at the same
  events (the last of a venue message, and trades) as the engine's features, so they equal
  what a strategy's ``ctx.feature`` reads at that moment;
* ``buy_volume``, ``sell_volume`` (lots, by aggressor side), ``n_trades`` (every print,
  with or without a side), ``vwap`` (ticks, of every print; NaN without trades).

A bar without events carries the last close (and the sampled values) forward with zero
volume: each day is a contiguous grid from its first event's bar to its last event's.
Prices are integer ticks of the instrument, as strategies see them.

The book, the feature state and the open bar carry from batch to batch, so the bars do not
depend on where the batches end; memory is two row groups of events plus the bars. Order-
by-order (L3) days are projected to price levels first, as a backtest does. While the
compiled pass (which releases the GIL) works on one batch, the store converts the next.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

from framework.book.l2 import (
    BOOK_FULL,
    NO_PRICE,
    l2_apply,
    l2_best_ask,
    l2_best_ask_qty,
    l2_best_bid,
    l2_best_bid_qty,
    l2_made_room,
    l2_new,
)
from framework.book.project import l2_stream
from framework.core.errors import ConfigError, StoreError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
    EventArray,
)
from framework.features.kernels import (
    F_IMBALANCE,
    F_MICROPRICE,
    N_FEATURES,
    STATE_SIZE,
    feature_update,
)

#: the columns of a bars frame, in order, with their dtypes
BAR_SCHEMA: Final[dict[str, pl.DataType]] = {
    "ts": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "microprice": pl.Float64(),
    "imbalance": pl.Float64(),
    "spread": pl.Float64(),
    "buy_volume": pl.Int64(),
    "sell_volume": pl.Int64(),
    "n_trades": pl.Int64(),
    "vwap": pl.Float64(),
}
#: most bars one call makes (12 columns of 8 bytes each: about 2 GB)
MAX_BARS: Final = 20_000_000
_FLOAT_COLS: Final = ("open", "high", "low", "close", "microprice", "imbalance", "spread", "vwap")
_INT_COLS: Final = ("buy_volume", "sell_volume", "n_trades")

# float state words of the open bar (and what carries from bar to bar)
(A_OPEN, A_HIGH, A_LOW, A_CLOSE, A_NOTIONAL, A_LAST_MID) = range(6)
A_FEAT = 6  #: N_FEATURES words: scratch output of feature_update at a bar's end
A_SCRATCH = A_FEAT + N_FEATURES  #: STATE_SIZE words: a feature state used only there
A_SIZE: Final = A_SCRATCH + STATE_SIZE
# int state words
# (I_STARTED: 0 no bar yet, 1 a bar is open, 2 one is open without a mid yet;
# I_SEEN: an event of the day was observed, as the engine's features start on the first)
# I_BB .. I_AQ: the touch at the last consistent update (what the sampled values are of)
I_END, I_BUY, I_SELL, I_NT, I_STARTED, I_SEEN, I_VOL, I_BB, I_BA, I_BQ, I_AQ = range(11)
I_SIZE: Final = 11


class BarState:
    """What carries from one batch to the next within a day: the L2 book, the feature
    state, the open bar. :func:`bars` makes one per day; tests drive it batch by batch."""

    def __init__(self, every_ns: int) -> None:
        if every_ns <= 0:
            msg = f"a bar must last more than 0 ns, got {every_ns}"
            raise ConfigError(msg)
        self.every = int(every_ns)
        self.meta, self.book = l2_new(1 << 15)
        self.acc = np.full(A_SIZE, np.nan)
        self.acc[A_NOTIONAL] = 0.0
        self.ints = np.zeros(I_SIZE, np.int64)
        self.ints[I_BB] = self.ints[I_BA] = NO_PRICE
        self.parts: list[dict[str, npt.NDArray[Any]]] = []

    def feed(self, events: EventArray) -> None:
        """Fold a batch in; the bars it closed are kept (see :meth:`finish`)."""
        if len(events) == 0:
            return
        last = int(events["local_ts"][-1])
        end = int(self.ints[I_END])
        if not self.ints[I_STARTED]:
            end = _bar_end(int(events["local_ts"][0]), self.every)
        cap = max(0, (_bar_end(last, self.every) - end) // self.every) + 1
        out_f = np.empty((len(_FLOAT_COLS), cap), np.float64)
        out_i = np.empty((len(_INT_COLS) + 1, cap), np.int64)
        n = 0
        start = 0
        while True:
            start, n = _bars_pass(
                events, start, self.meta, self.book, self.acc, self.ints,
                self.every, out_f, out_i, n,
            )  # fmt: skip
            if start < 0:
                break
            self.meta, self.book = l2_made_room(self.meta, self.book)
        if n:
            self.parts.append(_columns(out_f[:, :n], out_i[:, :n]))

    def finish(self) -> pl.DataFrame:
        """The bars of everything fed, the open bar closed at its end."""
        if self.ints[I_STARTED]:
            out_f = np.empty((len(_FLOAT_COLS), 1), np.float64)
            out_i = np.empty((len(_INT_COLS) + 1, 1), np.int64)
            _emit(self.acc, self.ints, out_f, out_i, 0)
            self.parts.append(_columns(out_f, out_i))
            self.ints[I_STARTED] = 0
        if not self.parts:
            return pl.DataFrame(schema=BAR_SCHEMA)
        cols = {k: np.concatenate([p[k] for p in self.parts]) for k in BAR_SCHEMA}
        self.parts = []
        return pl.DataFrame(cols, schema=BAR_SCHEMA)


def _columns(out_f: npt.NDArray[np.float64], out_i: npt.NDArray[np.int64]) -> dict[str, Any]:
    cols: dict[str, Any] = {"ts": out_i[0].copy()}
    for j, k in enumerate(_FLOAT_COLS):
        cols[k] = out_f[j].copy()
    for j, k in enumerate(_INT_COLS):
        cols[k] = out_i[j + 1].copy()
    return cols


def _bar_end(ts: int, every: int) -> int:
    """End of the bar holding ``ts`` (closed on the right: a ts on a boundary ends a bar)."""
    return -((-ts) // every) * every


@njit(cache=True, nogil=True)
def _emit_row(  # the bar's values as scalars: the pass keeps its state in registers
    out_f, out_i, n, end, o, h, lo, c, bb, ba, bq, aq, buy, sell, nt, vol, notional, acc
) -> None:
    """Write a bar as row ``n``."""
    out_i[0, n] = end
    out_f[0, n] = o
    out_f[1, n] = h
    out_f[2, n] = lo
    out_f[3, n] = c
    # microprice and imbalance are functions of the touch alone: the engine's kernel computes
    # them from it (a scratch state: its volatility and flow words are not wanted here)
    feats = acc[A_FEAT : A_FEAT + N_FEATURES]
    feature_update(acc[A_SCRATCH : A_SCRATCH + STATE_SIZE], feats, end, 0, 0, 0, bb, ba, bq, aq)
    out_f[4, n] = feats[F_MICROPRICE]
    out_f[5, n] = feats[F_IMBALANCE]
    out_f[6, n] = float(ba - bb) if bb != NO_PRICE and ba != NO_PRICE else np.nan
    out_f[7, n] = notional / vol if vol > 0 else np.nan
    out_i[1, n] = buy
    out_i[2, n] = sell
    out_i[3, n] = nt


@njit(cache=True, nogil=True)
def _emit(acc, ints, out_f, out_i, n) -> None:
    """Write the open bar (from the state arrays) as row ``n``."""
    _emit_row(
        out_f, out_i, n, ints[I_END], acc[A_OPEN], acc[A_HIGH], acc[A_LOW], acc[A_CLOSE],
        ints[I_BB], ints[I_BA], ints[I_BQ], ints[I_AQ], ints[I_BUY], ints[I_SELL], ints[I_NT],
        ints[I_VOL], acc[A_NOTIONAL], acc,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _bars_pass(events, start, meta, book, acc, ints, every, out_f, out_i, n):
    """Fold ``events[start:]`` into the open bar, writing every bar it closes from row ``n``
    on. Returns ``(-1, rows)``, or ``(i, rows)`` when the book must grow before event ``i``.
    The state lives in locals during the pass and goes back to ``acc``/``ints`` at its end."""
    end, started, seen = ints[I_END], ints[I_STARTED], ints[I_SEEN]
    buy, sell, nt, vol = ints[I_BUY], ints[I_SELL], ints[I_NT], ints[I_VOL]
    bb, ba, bq, aq = ints[I_BB], ints[I_BA], ints[I_BQ], ints[I_AQ]
    o, h, lo, c = acc[A_OPEN], acc[A_HIGH], acc[A_LOW], acc[A_CLOSE]
    notional, last_mid = acc[A_NOTIONAL], acc[A_LAST_MID]
    stop = -1
    for i in range(start, events.shape[0]):
        e = events[i]
        ts = e["local_ts"]
        if started == 0 or ts > end:
            target = -((-ts) // every) * every
            if started != 0:
                _emit_row(out_f, out_i, n, end, o, h, lo, c, bb, ba, bq, aq, buy, sell, nt,
                          vol, notional, acc)  # fmt: skip
                n += 1
                gap = end + every
                while gap < target:  # bars without events: the last values carried
                    _emit_row(out_f, out_i, n, gap, last_mid, last_mid, last_mid, last_mid,
                              bb, ba, bq, aq, 0, 0, 0, 0, 0.0, acc)  # fmt: skip
                    n += 1
                    gap += every
            # the bar opens at the mid in effect (the last close); before any, at its first
            end = target
            buy = sell = nt = vol = 0
            notional = 0.0
            o = h = lo = c = last_mid
            started = 2 if math.isnan(last_mid) else 1
        kind = e["kind"]
        full = False
        if kind == KIND_LEVEL or kind == KIND_BBO or kind == KIND_CLEAR:
            full = l2_apply(meta, book, kind, e["side"], e["price"], e["qty"]) == BOOK_FULL
        elif kind == KIND_TRADE and e["qty"] > 0:
            q = e["qty"]
            if e["side"] == BUY:
                buy += q
            elif e["side"] == SELL:
                sell += q
            nt += 1
            vol += q
            notional += float(e["price"]) * q
        # the touch the features are of (as the engine's: at a message's end, and at a trade
        # inside one) and, at a message's end, the mid: the book a strategy's on_book sees
        last = e["flags"] & FLAG_LAST
        if kind == KIND_TRADE or last or seen == 0:
            seen = 1
            bb = l2_best_bid(meta, book)
            ba = l2_best_ask(meta, book)
            bq = l2_best_bid_qty(meta, book)
            aq = l2_best_ask_qty(meta, book)
            if last and bb != NO_PRICE and ba != NO_PRICE:
                mid = 0.5 * (bb + ba)
                last_mid = mid
                if started == 2:
                    o = h = lo = mid
                    started = 1
                h = max(h, mid)
                lo = min(lo, mid)
                c = mid
        if full:
            stop = i + 1  # grow the book before the next event
            break
    ints[I_END], ints[I_STARTED], ints[I_SEEN] = end, started, seen
    ints[I_BUY], ints[I_SELL], ints[I_NT], ints[I_VOL] = buy, sell, nt, vol
    ints[I_BB], ints[I_BA], ints[I_BQ], ints[I_AQ] = bb, ba, bq, aq
    acc[A_OPEN], acc[A_HIGH], acc[A_LOW], acc[A_CLOSE] = o, h, lo, c
    acc[A_NOTIONAL], acc[A_LAST_MID] = notional, last_mid
    return stop, n


def _pipelined(batches: Iterable[EventArray], state: BarState, pool: ThreadPoolExecutor) -> None:
    """Feed ``state`` with ``batches``: the compiled pass over one batch runs in ``pool``'s
    thread while this one takes the next from the store (converted, or projected from L3).
    A batch of a ``reuse=True`` stream stays valid until the one after next is taken: the
    pass over it always ends before that."""
    pending: Future[None] | None = None
    try:
        for b in batches:
            if pending is not None:
                pending.result()
            pending = pool.submit(state.feed, b)
    finally:
        if pending is not None:
            pending.result()


def day_bars(
    batches: Iterable[EventArray], every_ns: int, pool: ThreadPoolExecutor | None = None
) -> pl.DataFrame:
    """The bars of one day's event batches (L2 or L3), in order."""
    state = BarState(every_ns)
    if pool is None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bars") as own:
            _pipelined(l2_stream(batches), state, own)
    else:
        _pipelined(l2_stream(batches), state, pool)
    return state.finish()


def parse_every(text: str) -> int:
    """``--every`` as ns (``1s``, ``250ms``, ``100us``); more than 0, at most a day."""
    from framework.engine.config import parse_duration

    try:
        ns = parse_duration(text)
    except ConfigError as exc:
        msg = f"--every {text!r}: {exc}"
        raise ConfigError(msg) from exc
    if ns <= 0:
        msg = f"--every {text!r}: a bar must last more than 0 ns (e.g. 1s, 250ms)"
        raise ConfigError(msg)
    return ns


def stored_days(store: Any, venue: str, symbol: str, dates: Sequence[dt.date]) -> list[dt.date]:
    """The days of ``dates`` that ``store`` holds for ``venue/symbol``; one clear line when
    it holds none of them."""
    have = [d for d in dates if store.path_for(venue, symbol, d).is_file()]
    if not have:
        span = f"{dates[0]}" if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
        msg = (
            f"no stored days of {venue}/{symbol} from {span} in {store.root}; see "
            "`hftlab data ls` (or `hftlab data generate` for a synthetic day)"
        )
        raise ConfigError(msg)
    return have


def bars(
    store: Any,
    venue: str,
    symbol: str,
    dates: Sequence[dt.date] | dt.date,
    every: str | int = "1s",
) -> pl.DataFrame:
    """Bars of ``every`` (``"1s"``, ``"250ms"`` or ns) of stored days, one day after the
    other (:data:`BAR_SCHEMA`; see the module's docstring). Days the store does not hold
    are skipped; none held is a :class:`ConfigError`."""
    every_ns = parse_every(every) if isinstance(every, str) else int(every)
    days = [dates] if isinstance(dates, dt.date) else list(dates)
    if not days:
        msg = "bars of no days: give at least one date"
        raise ConfigError(msg)
    have = stored_days(store, venue, symbol, days)
    infos = [store.info(venue, symbol, d) for d in have]
    rows = [i.rows for i in infos]
    n_bars = sum(
        (i.last_ts - i.first_ts) // every_ns + 2
        for i in infos
        if i.first_ts is not None and i.last_ts is not None
    )
    if n_bars > MAX_BARS:
        msg = (
            f"bars of {every_ns:,} ns over {len(have)} day(s) would be {n_bars:,} bars, more "
            f"than {MAX_BARS:,}; give longer bars (--every) or fewer days"
        )
        raise ConfigError(msg)
    # one stream for all days (one reader thread, its two buffers reused throughout); a row
    # group never spans two files, so each day's batches are counted off by its rows
    stream = store.iter_batches(venue, symbol, have, reuse=True)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bars") as pool:
            frames = [day_bars(_take(stream, n), every_ns, pool) for n in rows]
    finally:
        stream.close()  # a generator: its reader thread ends with it
    return pl.concat(frames) if frames else pl.DataFrame(schema=BAR_SCHEMA)


def _take(stream: Iterator[EventArray], n: int) -> Iterator[EventArray]:
    """The next batches of ``stream`` holding ``n`` events."""
    left = n
    while left > 0:
        b = next(stream, None)
        if b is None:
            msg = f"the store's stream ended {left:,} events before the day did"
            raise StoreError(msg)
        left -= len(b)
        yield b


__all__ = ["BAR_SCHEMA", "BarState", "bars", "day_bars", "parse_every", "stored_days"]
