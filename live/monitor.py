"""Latency per stage of the live path, measured on the hot path, summarised off it.

The hot path only writes integers: for each tick it marks the local time (ns) at each stage it
passes -- packet received, decoded, applied to the book, strategy called, risk checked, order
encoded, bytes sent -- into one row of a preallocated ring (:meth:`StageClock.mark`), and ends
the row (:meth:`StageClock.commit`). :meth:`StageClock.summarise` (from a timer, the control
thread or at the end) folds the rows written since the last call into one HDR histogram per
stage (the time from the stage before it) and one for the whole tick (first to last stage
marked); stages a tick did not pass (no order sent, say) are not counted for it. Rows the
summariser could not take before the ring wrapped are counted in :attr:`StageClock.lost`.

A row has two more columns. :data:`WIRE`: when the kernel handed the tick's first order
message to the network device (:mod:`live.txstamp`, where the runner asks for it). Where it is
marked, ``wire`` (from ``encoded``) and ``tick_to_wire`` (from ``packet_in``) are summarised
beside the send call's ``sent`` and ``tick_to_order``. :data:`RX`: when the kernel received
the tick's first packet (``SO_TIMESTAMPNS``, :meth:`live.wire.mmsg.BatchReceiver.stamp`):
``rx_wait`` (to ``packet_in``: the kernel's receive path, the packet's wait in the socket and
the receive call) and ``rx_to_wire`` (to the transmit stamp: the tick from stamp to stamp).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, Gauge

STAGES = ("packet_in", "decoded", "book", "strategy", "risk", "encoded", "sent")
TOTAL = "tick_to_order"
#: the column after the stages: the kernel's transmit stamp of the first order message
WIRE = len(STAGES)
TO_WIRE = "tick_to_wire"
#: the column after it: the kernel's receive stamp of the tick's first packet
RX = len(STAGES) + 1
RX_WAIT = "rx_wait"  #: the receive stamp to ``packet_in`` (the receive call returned)
RX_TO_WIRE = "rx_to_wire"  #: the receive stamp to the transmit stamp
#: the compiled loop's stalls: quiet passes that took longer than the loop's threshold
#: (:meth:`live.hotpath.HotPath.watch_stalls`), time the CPU spent elsewhere
STALL = "loop_stall"
#: the HDR histograms' range (1 ns .. 10 s) and precision (3 significant digits)
_LOWEST, _HIGHEST, _DIGITS = 1, 10_000_000_000, 3
QUANTILES = (("p50", 50.0), ("p99", 99.0), ("p999", 99.9))


class StageClock:
    """Per-stage timestamps of ticks in a ring of ``capacity`` rows."""

    def __init__(self, stages: Sequence[str] = STAGES, capacity: int = 1 << 16) -> None:
        self.stages = tuple(stages)
        self.capacity = capacity
        # + the wire stamp, the receive stamp
        self.rows = np.zeros((capacity, len(self.stages) + 2), np.int64)
        self._row = self.rows[0]
        self.written = 0  #: ticks committed
        self.taken = 0  #: ticks folded into the histograms
        self.lost = 0  #: ticks overwritten before they were folded
        self.hist = {s: HdrHistogram(_LOWEST, _HIGHEST, _DIGITS) for s in self.stages[1:]}
        self.hist[TOTAL] = HdrHistogram(_LOWEST, _HIGHEST, _DIGITS)
        self.hist["wire"] = HdrHistogram(_LOWEST, _HIGHEST, _DIGITS)
        self.hist[TO_WIRE] = HdrHistogram(_LOWEST, _HIGHEST, _DIGITS)
        self.hist[RX_WAIT] = HdrHistogram(_LOWEST, _HIGHEST, _DIGITS)
        self.hist[RX_TO_WIRE] = HdrHistogram(_LOWEST, _HIGHEST, _DIGITS)
        self.hist[STALL] = HdrHistogram(_LOWEST, _HIGHEST, _DIGITS)
        #: the last ``capacity`` stalls: (start ns, length ns), ``stalls_written`` in all
        self._stall_log = np.zeros((capacity, 2), np.int64)
        self.stalls_written = 0
        self._lock = threading.Lock()

    # --- hot path: integers into a preallocated row --------------------------------------
    def mark(self, stage: int, ns: int) -> None:
        """The tick in progress passed stage number ``stage`` at local time ``ns``."""
        self._row[stage] = ns

    def commit(self) -> None:
        """End the tick in progress; the next marks go to a fresh row."""
        self.written += 1
        self._row = self.rows[self.written % self.capacity]
        self._row[:] = 0

    def discard(self) -> None:
        """Drop the tick in progress (it sent nothing: no tick-to-order sample)."""
        self._row[:] = 0

    # --- off the hot path ------------------------------------------------------------------
    def note_stalls(self, rows: np.ndarray) -> None:
        """Log stalls of the loop: rows (start ns, length ns), oldest first."""
        if not len(rows):
            return
        with self._lock:
            self._record(self.hist[STALL], rows[:, 1])
            cap = len(self._stall_log)
            idx = np.arange(self.stalls_written, self.stalls_written + len(rows)) % cap
            self._stall_log[idx[-cap:]] = rows[-cap:]
            self.stalls_written += len(rows)

    def stall_log(self) -> np.ndarray:
        """The last stalls logged (at most ``capacity``), oldest first."""
        with self._lock:
            cap, n = len(self._stall_log), self.stalls_written
            idx = np.arange(max(n - cap, 0), n) % cap
            return self._stall_log[idx].copy()

    def summarise(self) -> None:
        """Fold the ticks committed since the last call into the histograms."""
        with self._lock:
            end = self.written
            start = max(self.taken, end - self.capacity + 1)  # the row in progress is live
            self.lost += start - self.taken
            if end <= start:
                self.taken = end
                return
            idx = np.arange(start, end) % self.capacity
            block = self.rows[idx]
            self.taken = end
        n = len(self.stages)
        wire, rx, block = block[:, n], block[:, n + 1], block[:, :n]
        if (wire > 0).any():
            # from the stage before the last (the send call's start), and from the first
            for name, k in (("wire", n - 2), (TO_WIRE, 0)):
                ok = (wire > 0) & (block[:, k] > 0)
                self._record(self.hist[name], wire[ok] - block[ok, k])
        if (rx > 0).any():
            ok = (rx > 0) & (block[:, 0] > 0)
            self._record(self.hist[RX_WAIT], block[ok, 0] - rx[ok])
            ok &= wire > 0
            self._record(self.hist[RX_TO_WIRE], wire[ok] - rx[ok])
        for k in range(1, len(self.stages)):
            d = block[:, k] - block[:, k - 1]
            ok = (block[:, k] > 0) & (block[:, k - 1] > 0)
            self._record(self.hist[self.stages[k]], d[ok])
        marked = block > 0
        any_mark = marked.any(axis=1)
        if any_mark.any():
            first = np.where(marked, block, np.iinfo(np.int64).max).min(axis=1)
            last = np.where(marked, block, 0).max(axis=1)
            self._record(self.hist[TOTAL], (last - first)[any_mark & (marked.sum(axis=1) > 1)])

    @staticmethod
    def _record(h: HdrHistogram, values: np.ndarray) -> None:
        v = np.clip(values, _LOWEST, _HIGHEST)
        uniq, counts = np.unique(v, return_counts=True)
        for x, c in zip(uniq.tolist(), counts.tolist(), strict=True):
            h.record_value(x, c)

    def stats(self) -> dict[str, dict[str, float]]:
        """p50 / p99 / p99.9 / max (ns) and count per stage with data (and for the tick)."""
        self.summarise()
        out: dict[str, dict[str, float]] = {}
        for name, h in self.hist.items():
            n = h.get_total_count()
            if n == 0:
                continue
            row: dict[str, float] = {q: float(h.get_value_at_percentile(p)) for q, p in QUANTILES}
            row["max"] = float(h.get_max_value())
            row["count"] = float(n)
            out[name] = row
        return out

    def count_over(self, name: str, ns: int) -> int:
        """How many of ``name``'s values (a stage, a tick figure, the stalls) were over
        ``ns`` (to the histograms' precision: values in ``ns``'s own bucket are not)."""
        self.summarise()
        h = self.hist[name]
        top = h.get_highest_equivalent_value(ns)
        return sum(i.count_added_in_this_iter_step for i in h.get_recorded_iterator()
                   if i.value_iterated_to > top)

    def table(self) -> str:
        """The stats as a fixed-width text table in µs (``hftlab live --stats``)."""
        st = self.stats()
        lines = [f"{'stage':<14}{'p50':>10}{'p99':>10}{'p99.9':>10}{'max':>10}{'count':>10}"]
        for name, r in st.items():
            lines.append(
                f"{name:<14}"
                + "".join(f"{r[k] / 1e3:>10.1f}" for k in ("p50", "p99", "p999", "max"))
                + f"{int(r['count']):>10}"
            )
        if self.lost:
            lines.append(f"({self.lost} ticks overwritten before they were summarised)")
        return "\n".join(lines)


class Metrics:
    """The Prometheus view of a live process (served on the control port's /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.latency = Gauge(
            "hftlab_stage_latency_ns",
            "latency of each stage of the live path (ns), by quantile",
            ["stage", "quantile"],
            registry=self.registry,
        )
        self.values = Gauge(
            "hftlab_live", "state of the live session", ["what"], registry=self.registry
        )

    def update(self, clock: StageClock | None = None, **values: Any) -> None:
        """Publish the clock's stage quantiles and named values (pnl=..., position=...)."""
        if clock is not None:
            for stage, row in clock.stats().items():
                for q, _ in (*QUANTILES, ("max", 0.0)):
                    self.latency.labels(stage, q).set(row[q])
            self.values.labels("loop_stalls").set(clock.stalls_written)  # (how many, in all)
        for k, v in values.items():
            self.values.labels(k).set(float(v))


__all__ = ["RX", "RX_TO_WIRE", "RX_WAIT", "STAGES", "STALL", "TOTAL", "TO_WIRE", "WIRE",
           "Metrics", "StageClock"]
