"""Event sources for the engine: per-instrument batch streams merged by local time.

The merge runs in compiled code and writes straight into the engine's event window: a
batch is read in place (no copy of it is made), and each row is copied once, into the
window, with its instrument index and clock shift applied on the way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from numba import njit

from framework.core.errors import ConfigError
from framework.core.events import EVENT_DTYPE, EventArray

_EMPTY = np.empty(0, dtype=EVENT_DTYPE)
_INF = np.iinfo(np.int64).max


@njit(cache=True)
def max_behind(b: EventArray) -> int:
    """The largest ``exch_ts - local_ts`` of a batch (how far its local clock lags)."""
    m = np.iinfo(np.int64).min
    ex = b["exch_ts"]
    lo = b["local_ts"]
    for j in range(b.shape[0]):
        m = max(m, ex[j] - lo[j])
    return m


@njit(cache=True)
def merge_into(
    srcs: tuple[EventArray, ...],
    pos: np.ndarray,
    offsets: np.ndarray,
    horizon: int,
    dst: EventArray,
    at: int,
    max_rows: int,
) -> int:
    """Copy rows of the streams ``srcs`` (each sorted by ``local_ts``) into ``dst[at:]`` in
    order of shifted local time (``local_ts + offsets[k]``; ties: lower stream first), up to
    ``horizon`` and at most ``max_rows`` rows. Each copied row gets ``instrument = k`` and
    the shifted time. ``pos[k]`` is the next unread row of stream ``k``; it is advanced.
    Returns the rows written."""
    k = len(srcs)
    w = at
    end = at + max_rows
    if k == 1:  # one stream: a straight copy
        s = srcs[0]
        p = pos[0]
        off = offsets[0]
        n = s.shape[0]
        while w < end and p < n and s[p]["local_ts"] + off <= horizon:
            dst[w] = s[p]
            dst[w]["instrument"] = 0
            dst[w]["local_ts"] = s[p]["local_ts"] + off
            p += 1
            w += 1
        pos[0] = p
        return w - at
    while w < end:
        best = -1
        bt = horizon
        for i in range(k):  # a few streams: a scan of their heads beats a heap
            s = srcs[i]
            p = pos[i]
            if p < s.shape[0]:
                t = s[p]["local_ts"] + offsets[i]
                if t < bt or (t == bt and best < 0):
                    best = i
                    bt = t
        if best < 0:
            break
        s = srcs[best]
        p = pos[best]
        dst[w] = s[p]
        dst[w]["instrument"] = best
        dst[w]["local_ts"] = bt
        pos[best] = p + 1
        w += 1
    return w - at


class MergedFeed:
    """Merges per-instrument streams of event batches into one stream ordered by
    ``local_ts`` (ties: instrument order, then source order), setting each event's
    ``instrument`` to its stream index. Memory holds one batch per instrument, read in
    place: a stream may hand out the same buffer again for its next batch (the store's
    ``iter_batches(reuse=True)`` does), since a batch is fully merged before the next is
    asked for. Batches are never modified.

    A capture whose local clock runs behind the exchange's (``local_ts < exch_ts``, as the
    Binance captures are, by ~1.3 s) would let a strategy see events before the venue applies
    them. With ``fix_clock`` (the default) each stream's local times are shifted forward by
    the largest such gap seen so far, so no event reaches the strategy before its exchange
    time; the shift only grows, which keeps local times in order. ``clock_offsets`` reports
    the final shift per stream (0 for sources with sane clocks).

    With ``live`` the streams are live feeds: each stream's iterator hands out what has
    arrived (an empty batch when nothing has) without blocking, and rows are stamped on
    receipt, so none can arrive with an earlier local time later: every row available is
    merged at once and a quiet stream holds up nothing. (Without ``live`` a row is merged
    only once every open stream has shown a row at least as late: a stored stream may still
    hold earlier ones.)
    """

    def __init__(
        self,
        streams: list[Iterable[EventArray]],
        *,
        chunk: int | None = None,
        fix_clock: bool = True,
        live: bool = False,
    ) -> None:
        self._its: list[Iterator[EventArray]] = [iter(s) for s in streams]
        k = len(streams)
        self._buf: list[EventArray] = [_EMPTY] * k
        self._pos = np.zeros(k, np.int64)  #: next unread row of each stream's batch
        self._off = np.zeros(k, np.int64)  #: clock shift of each stream's current batch
        self._done = [False] * k
        self.chunk = chunk  #: cap on rows per chunk (1 = event by event, as live feeds)
        self.fix_clock = fix_clock
        self.live = live

    @property
    def clock_offsets(self) -> list[int]:
        return [int(x) for x in self._off]

    def _left(self, i: int) -> int:
        return len(self._buf[i]) - int(self._pos[i])

    def _fill(self, i: int) -> None:
        while not self._done[i] and self._left(i) == 0:
            if self._take(i) and self.live:
                return  # nothing has arrived on this feed: go on without it

    def _take(self, i: int) -> bool:
        """Read stream ``i``'s next batch; True when it came empty (or the stream ended)."""
        try:
            b = next(self._its[i])
        except StopIteration:
            self._done[i] = True
            self._buf[i] = _EMPTY
            self._pos[i] = 0
            return True
        if b.dtype != EVENT_DTYPE:
            msg = (
                f"stream {i} gave a batch of dtype {b.dtype}; the engine takes "
                "framework.core.events.EVENT_DTYPE rows (see make_events)"
            )
            raise ConfigError(msg)
        b = np.ascontiguousarray(b)  # a copy only if it was strided
        if len(b) and self.fix_clock:
            self._off[i] = max(int(self._off[i]), int(max_behind(b)))
        self._buf[i] = b
        self._pos[i] = 0
        return len(b) == 0

    def pending(self) -> int:
        """An upper bound on the rows the next :meth:`next_into` writes."""
        for i in range(len(self._its)):
            self._fill(i)
        n = sum(self._left(i) for i in range(len(self._its)))
        return n if self.chunk is None else min(n, self.chunk)

    def next_into(self, dst: EventArray, at: int) -> tuple[int, bool]:
        """Merge the next rows into ``dst[at:]`` (room for :meth:`pending` rows needed);
        returns how many and whether the data ends with them."""
        k = len(self._its)
        for i in range(k):
            self._fill(i)
        have = [i for i in range(k) if self._left(i)]
        if not have:  # live feeds: nothing has arrived (else: every stream has ended)
            return 0, all(self._done)
        # rows up to the earliest last-row time among streams that may still grow are final
        open_ends = [
            int(self._buf[i]["local_ts"][-1]) + int(self._off[i])
            for i in have
            if not self._done[i]
        ]
        horizon = min(open_ends) if open_ends and not self.live else _INF
        room = len(dst) - at
        cap = room if self.chunk is None else min(room, self.chunk)
        n = int(merge_into(tuple(self._buf), self._pos, self._off, horizon, dst, at, cap))
        for i in range(k):
            self._fill(i)
        final = all(self._done) and not any(self._left(i) for i in range(k))
        return n, final

    def next_chunk(self) -> tuple[EventArray, bool]:
        """The next merged rows (a new array) and whether the data ends with them."""
        out = np.empty(self.pending(), dtype=EVENT_DTYPE)
        n, final = self.next_into(out, 0)
        return out[:n], final
