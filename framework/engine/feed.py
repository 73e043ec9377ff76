"""Event sources for the engine: per-instrument batch streams merged by local time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from framework.core.events import EVENT_DTYPE, EventArray

_EMPTY = np.empty(0, dtype=EVENT_DTYPE)


class MergedFeed:
    """Merges per-instrument streams of event batches into one stream ordered by
    ``local_ts`` (ties: instrument order, then source order), setting each event's
    ``instrument`` to its stream index. Memory holds about one batch per instrument.

    A capture whose local clock runs behind the exchange's (``local_ts < exch_ts``, as the
    Binance captures are, by ~1.3 s) would let a strategy see events before the venue applies
    them. With ``fix_clock`` (the default) each stream's local times are shifted forward by
    the largest such gap seen so far, so no event reaches the strategy before its exchange
    time; the shift only grows, which keeps local times in order. ``clock_offsets`` reports
    the final shift per stream (0 for sources with sane clocks).
    """

    def __init__(
        self,
        streams: list[Iterable[EventArray]],
        *,
        chunk: int | None = None,
        fix_clock: bool = True,
    ) -> None:
        self._its: list[Iterator[EventArray]] = [iter(s) for s in streams]
        self._buf: list[EventArray] = [_EMPTY] * len(streams)
        self._done = [False] * len(streams)
        self.chunk = chunk  #: cap on rows per chunk (1 = event by event, as live feeds)
        self.fix_clock = fix_clock
        self.clock_offsets = [0] * len(streams)

    def _fill(self, i: int) -> None:
        while not self._done[i] and len(self._buf[i]) == 0:
            try:
                b = next(self._its[i])
            except StopIteration:
                self._done[i] = True
                return
            if len(b):
                b = b.copy()
                b["instrument"] = i
                if self.fix_clock:
                    behind = int((b["exch_ts"] - b["local_ts"]).max())
                    self.clock_offsets[i] = max(self.clock_offsets[i], behind)
                    if self.clock_offsets[i]:
                        b["local_ts"] += self.clock_offsets[i]
                self._buf[i] = b

    def next_chunk(self) -> tuple[EventArray, bool]:
        """The next merged rows and whether the data ends with them."""
        k = len(self._its)
        for i in range(k):
            self._fill(i)
        live = [i for i in range(k) if len(self._buf[i])]
        if not live:
            return _EMPTY, True
        # rows up to the earliest last-row time among streams that may still grow are final
        open_ends = [int(self._buf[i]["local_ts"][-1]) for i in live if not self._done[i]]
        horizon = min(open_ends) if open_ends else np.iinfo(np.int64).max
        parts = []
        for i in live:
            b = self._buf[i]
            cut = int(np.searchsorted(b["local_ts"], horizon, side="right"))
            parts.append(b[:cut])
            self._buf[i] = b[cut:]
        merged = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if len(parts) > 1:
            merged = merged[np.argsort(merged["local_ts"], kind="stable")]
        if self.chunk is not None and len(merged) > self.chunk:
            # hand out the rest later: put it back in front of its streams
            rest = merged[self.chunk :]
            merged = merged[: self.chunk]
            for i in live:
                mine = rest[rest["instrument"] == i]
                if len(mine):
                    self._buf[i] = np.concatenate([mine, self._buf[i]])
        final = all(self._done[i] and len(self._buf[i]) == 0 for i in range(k))
        if not final:
            for i in range(k):
                self._fill(i)
            final = all(self._done) and not any(len(b) for b in self._buf)
        return merged, final
