"""The contract every importer follows, and the checks they share.

An importer is a function ``(paths, options) -> ImportResult``. It reads the source files,
converts them to :data:`~framework.core.events.EVENT_DTYPE` rows (prices in ticks, sizes in
lots, timestamps in epoch ns), validates them, and returns one :class:`DayData` per
venue/symbol/day together with an :class:`ImportReport` that counts rows read and rejected,
with reasons. Importers never write to the store themselves: the caller does, atomically,
only after the whole import succeeded, so a failed import leaves nothing behind.

Conventions every importer keeps
--------------------------------
* Rows are ordered by ``local_ts`` (non-decreasing); ties keep source order.
* Sources without a receive time set ``local_ts = exch_ts``.
* Exactly one event per source message carries ``FLAG_LAST`` (the last one the message
  produced): the book is consistent after a ``FLAG_LAST`` event.
* L3 order ids that an importer invents (book seeds, levels that come into view from a
  snapshot file) have bit 63 set: ``SYNTH_ORDER_ID_BASE | n``; such events carry
  ``FLAG_IMPLIED``. A real venue id never has bit 63 set in the sources we read.
* ``instrument`` is 0 inside a single-instrument day; the replay engine renumbers.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from numba import njit, types
from numba.typed import Dict

from framework.core.errors import ConfigError, DataError
from framework.core.events import (
    EVENT_DTYPE,
    FLAG_HIDDEN,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_TRADE,
    EventArray,
)
from framework.core.instrument import Instrument

SYNTH_ORDER_ID_BASE = np.uint64(1 << 63)


@dataclass(kw_only=True)
class ImportOptions:
    """What the user said on the command line (all optional; importers fill gaps).

    ``extra`` holds format-specific options, e.g. ``orderbook`` (LOBSTER), ``pcap`` (ITCH),
    ``tick_size``/``lot_size`` overrides, ``market`` (Binance ``spot``/``usdm``).
    """

    symbol: str | None = None
    venue: str | None = None
    date: dt.date | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.extra.get(key, default)


@dataclass
class ImportReport:
    """Counts of what an import read, wrote and rejected, with reasons."""

    source: str
    rows_read: int = 0
    rows_written: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def reject(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rejected source rows under ``reason``."""
        if n:
            self.rejected[reason] += int(n)

    def note(self, text: str) -> None:
        """Record something the user should know that is not a rejection."""
        self.notes.append(text)

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.source}: read {self.rows_read:,} rows, wrote {self.rows_written:,} events, "
            f"rejected {self.rows_rejected:,}"
        ]
        lines += [f"  rejected {n:,}: {reason}" for reason, n in self.rejected.most_common()]
        lines += [f"  note: {t}" for t in self.notes]
        return lines


@dataclass
class DayData:
    """Validated events of one instrument on one day, ready for the store."""

    instrument: Instrument
    date: dt.date
    events: EventArray
    labels: pa.Table | None = None  #: optional sidecar table (e.g. synthetic regime labels)

    def __post_init__(self) -> None:
        if self.events.dtype != EVENT_DTYPE:
            msg = f"DayData events must have EVENT_DTYPE, got {self.events.dtype}"
            raise TypeError(msg)


@dataclass
class ImportResult:
    days: list[DayData]
    report: ImportReport
    instruments: list[Instrument] = field(default_factory=list)  #: e.g. ITCH R / DBN definitions


Importer = Callable[[Sequence[Path], ImportOptions], ImportResult]

#: format name -> "module:function"; modules are imported lazily so the CLI starts fast.
IMPORTERS: dict[str, str] = {
    "lobster": "framework.ingest.lobster:import_lobster",
    "itch": "framework.ingest.itch:import_itch",
    "dbn": "framework.ingest.dbn:import_dbn",
    "binance": "framework.ingest.binance:import_binance",
    "tardis": "framework.ingest.tardis:import_tardis",
}


def get_importer(fmt: str) -> Importer:
    """The importer function for ``fmt``; a clear error for an unknown format."""
    import importlib

    target = IMPORTERS.get(fmt)
    if target is None:
        msg = f"unknown import format {fmt!r}; choose one of {', '.join(sorted(IMPORTERS))}"
        raise ConfigError(msg)
    mod_name, func_name = target.split(":")
    func: Importer = getattr(importlib.import_module(mod_name), func_name)
    return func


def require_files(paths: Sequence[Path]) -> list[Path]:
    """Check each path is a readable file; raise :class:`DataError` naming the first that isn't."""
    out = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            msg = f"{path}: no such file; check the path"
            raise DataError(msg)
        if not path.is_file():
            msg = f"{path}: not a regular file"
            raise DataError(msg)
        out.append(path)
    if not out:
        msg = "no input files given"
        raise DataError(msg)
    return out


# --- shared validation ------------------------------------------------------------------


def apply_mask(
    events: EventArray, bad: npt.NDArray[np.bool_], report: ImportReport, reason: str
) -> EventArray:
    """Drop rows where ``bad`` is true, counting them under ``reason``."""
    n = int(np.count_nonzero(bad))
    if n == 0:
        return events
    report.reject(reason, n)
    return events[~bad]


@njit(cache=True)
def _time_order_bad(local_ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    bad = np.zeros(local_ts.shape[0], np.bool_)
    hi = np.iinfo(np.int64).min
    for i in range(local_ts.shape[0]):
        t = local_ts[i]
        if t < hi:
            bad[i] = True
        else:
            hi = t
    return bad


@njit(cache=True)
def _order_id_bad(
    kind: npt.NDArray[np.uint8], order_id: npt.NDArray[np.uint64], flags: npt.NDArray[np.uint32]
) -> npt.NDArray[np.int8]:
    """0 ok, 1 unknown order id, 2 duplicate add."""
    # a typed Dict, not a numba set(): the set degrades into an endless probe loop after
    # a few thousand add/remove cycles (seen with numba 0.68)
    live = Dict.empty(key_type=types.uint64, value_type=types.int8)
    out = np.zeros(kind.shape[0], np.int8)
    for i in range(kind.shape[0]):
        k = kind[i]
        oid = order_id[i]
        if k == KIND_ADD:
            if oid in live:
                out[i] = 2
            else:
                live[oid] = np.int8(1)
        elif k == KIND_DELETE:
            if oid in live:
                del live[oid]
            else:
                out[i] = 1
        elif k == KIND_CANCEL or k == KIND_EXECUTE or k == KIND_MODIFY:
            hidden = k == KIND_EXECUTE and oid == 0 and (flags[i] & FLAG_HIDDEN) != 0
            if oid not in live and not hidden:
                out[i] = 1
    return out


def validate_events(events: EventArray, report: ImportReport, *, l3: bool) -> EventArray:
    """Apply the checks every importer shares and return the surviving rows.

    * time order: ``local_ts`` never goes backwards;
    * positive sizes: adds, cancels, executions, trades need ``qty > 0``; levels and BBOs
      ``qty >= 0``;
    * known order ids (``l3=True``): cancels, executions, modifies and deletes must name a
      live order, and an add must not reuse a live id. (Executions with ``FLAG_HIDDEN`` have
      no resting order and are exempt when ``order_id`` is 0.)
    """
    if len(events) == 0:
        return events
    events = apply_mask(events, _time_order_bad(events["local_ts"]), report, "time went backwards")
    kind = events["kind"]
    qty = events["qty"]
    needs_pos = np.isin(kind, [KIND_ADD, KIND_CANCEL, KIND_EXECUTE, KIND_TRADE])
    events = apply_mask(events, needs_pos & (qty <= 0), report, "non-positive size")
    kind = events["kind"]
    events = apply_mask(
        events, np.isin(kind, [KIND_LEVEL, KIND_BBO]) & (events["qty"] < 0), report,
        "negative level size",
    )
    if l3:
        codes = _order_id_bad(events["kind"], events["order_id"], events["flags"])
        if codes.any():
            report.reject("unknown order id", int(np.count_nonzero(codes == 1)))
            report.reject("duplicate order id", int(np.count_nonzero(codes == 2)))
            events = events[codes == 0]
    return events


def resolve_instrument(
    opts: ImportOptions,
    *,
    symbol: str | None,
    venue: str | None,
    defaults: dict[str, Any],
) -> Instrument:
    """Build the instrument from (in priority order) user options, the source, defaults.

    ``--tick-size``/``--lot-size`` in ``opts.extra`` override the defaults.
    """
    sym = opts.symbol or symbol
    ven = opts.venue or venue
    if not sym:
        msg = "no symbol: the source does not name one; pass --symbol"
        raise ConfigError(msg)
    if not ven:
        msg = "no venue: the source does not name one; pass --venue"
        raise ConfigError(msg)
    fields = dict(defaults)
    for key in ("tick_size", "lot_size"):
        if opts.extra.get(key) is not None:
            fields[key] = opts.extra[key]
    return Instrument(venue=ven, symbol=sym, **fields)
