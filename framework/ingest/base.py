"""The contract every importer follows, and the checks they share.

An importer is a function ``(paths, options) -> ImportResult``. It reads the source files,
converts them to :data:`~framework.core.events.EVENT_DTYPE` rows (prices in ticks, sizes in
lots, timestamps in epoch ns), validates them, and returns one :class:`DayData` per
venue/symbol/day together with an :class:`ImportReport` that accounts for every source row
and every event, with reasons. Importers never write to the store themselves: the caller
does, atomically, only after the whole import succeeded, so a failed import leaves nothing
behind. :func:`run_import` is that caller's one entry point: it refuses an import that lost
data to damage (unless ``allow_partial``) or that produced nothing.

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

Accounting
----------
Two ledgers that add up, so nothing is lost silently: **rows** (the source's units: lines,
messages, records) ``read = imported + rejected``, and **events** made from the imported
rows ``made = written + rejected``. A row is *damaged* when its bytes are not what the
format promises (unparseable, cut, misframed, a corrupt compressed stream): damage is
counted like any rejection but, unlike a rejected well-formed row (an unknown order id, an
off-grid price), it fails the import unless the user passes ``--allow-partial``. Binary
formats also count the bytes they skipped to resynchronise.
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
    """What an import read, made, wrote and rejected, with reasons (see "Accounting").

    ``rejected`` counts events by reason and ``rejected_rows`` source rows by reason.
    Importers that count them set ``rows_imported`` (rows that became events) and
    ``events_made``; left ``None``, they are what the rejections leave (the ledger then
    adds up by construction, not as a check).
    """

    source: str
    unit: str = "rows"  #: what a source row is called: rows, lines, messages, records
    rows_read: int = 0
    rows_imported: int | None = None
    events_made: int | None = None
    events_written: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejected_rows: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0  #: input bytes of the binary formats that track them (decompressed)
    bytes_skipped: Counter[str] = field(default_factory=Counter)
    #: damage reason -> where it was first seen ("line 17", "offset 4,081")
    damaged: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected_rows.values())

    @property
    def events_rejected(self) -> int:
        return sum(self.rejected.values())

    def reject(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rejected events under ``reason``."""
        if n:
            self.rejected[reason] += int(n)

    def reject_rows(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rejected source rows (that made no events) under ``reason``."""
        if n:
            self.rejected_rows[reason] += int(n)

    def damage(self, reason: str, n: int = 0, *, at: str = "", unit: str = "rows") -> None:
        """Record damaged input under ``reason``, first seen ``at``: ``n`` source rows (or
        ``unit="events"`` / ``"bytes"``) skipped, or none counted (``n=0``: data that is
        missing, such as a cut stream). Damage fails the import unless partial is allowed."""
        if unit == "bytes":
            if n:
                self.bytes_skipped[reason] += int(n)
        elif unit == "events":
            self.reject(reason, n)
        else:
            self.reject_rows(reason, n)
        self.damaged.setdefault(reason, at)

    def note(self, text: str) -> None:
        """Record something the user should know that is not a rejection."""
        self.notes.append(text)

    def ledger(self) -> tuple[int, int, int, int, int, int]:
        """``(rows read, imported, rejected, events made, written, rejected)``."""
        imported = self.rows_imported
        if imported is None:
            imported = self.rows_read - self.rows_rejected
        made = self.events_made
        if made is None:
            made = self.events_written + self.events_rejected
        return (self.rows_read, imported, self.rows_rejected, made, self.events_written,
                self.events_rejected)

    def damage_summary(self) -> str:
        """The damage in one phrase: the first kind with its count and place, and the rest."""
        parts = []
        for reason, at in self.damaged.items():
            if reason in self.bytes_skipped:
                count = f"{self.bytes_skipped[reason]:,} bytes"
            elif reason in self.rejected_rows:
                count = f"{self.rejected_rows[reason]:,} {self.unit}"
            elif reason in self.rejected:
                count = f"{self.rejected[reason]:,} events"
            else:
                count = ""
            where = ", ".join(x for x in (count, f"first at {at}" if at else "") if x)
            parts.append(reason + (f" ({where})" if where else ""))
        more = f"; and {len(parts) - 1} more kind(s) of damage" if len(parts) > 1 else ""
        return (parts[0] if parts else "") + more

    def summary_lines(self) -> list[str]:
        read, imported, rej_rows, made, written, rej_ev = self.ledger()
        u = self.unit
        lines = [
            f"{self.source}: read {read:,} {u} = {imported:,} imported + {rej_rows:,} rejected; "
            f"made {made:,} events = {written:,} written + {rej_ev:,} rejected"
        ]
        lines += [f"  rejected {n:,} {u}: {r}" for r, n in self.rejected_rows.most_common()]
        lines += [f"  rejected {n:,} events: {r}" for r, n in self.rejected.most_common()]
        if self.bytes_skipped:
            total = sum(self.bytes_skipped.values())
            of = f" of {self.bytes_read:,}" if self.bytes_read else ""
            lines.append(f"  skipped {total:,}{of} bytes:")
            lines += [f"    {n:,}: {r}" for r, n in self.bytes_skipped.most_common()]
        for reason, at in self.damaged.items():
            lines.append(f"  damaged input: {reason}" + (f" (first at {at})" if at else ""))
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


def run_import(fmt: str, paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Run the ``fmt`` importer and check its result before anything is written.

    Raises :class:`DataError` (one line, naming the damage or the emptiness and what to do)
    when the input was damaged and ``opts.extra["allow_partial"]`` is not set, or when the
    import produced neither events nor instrument definitions.
    """
    result = get_importer(fmt)(paths, opts)
    report = result.report
    report.events_written = sum(len(d.events) for d in result.days)
    if report.damaged and not opts.get("allow_partial"):
        msg = (
            f"{report.source}: damaged input: {report.damage_summary()}; nothing was written. "
            "Pass --allow-partial to import the rest (the report counts everything skipped)"
        )
        raise DataError(msg)
    if not result.days and not result.instruments:
        read = report.rows_read
        why = [f"{n:,} {report.unit}: {r}" for r, n in report.rejected_rows.most_common(2)]
        why += [f"{n:,} events: {r}" for r, n in report.rejected.most_common(2)]
        because = f" (rejected {'; '.join(why)})" if why else ""
        if not why and report.notes:
            because = f" ({report.notes[0]})"
        damage = f"; damaged input: {report.damage_summary()}" if report.damaged else ""
        msg = (
            f"{report.source}: nothing to import: {read:,} {report.unit} read, no events "
            f"made it{because}{damage}; check that the file is what the format expects"
        )
        raise DataError(msg)
    return result


def printable_name(text: str) -> bool:
    """True when ``text`` is non-empty printable ASCII: a symbol the source really sent, not
    bytes a corruption made (unprintable names are rejected, never escaped into a name)."""
    return bool(text.strip()) and all(0x20 <= ord(c) < 0x7F for c in text)


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
def time_order_bad(local_ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """The fewest rows to drop so that ``local_ts`` never goes backwards: the complement of a
    longest non-decreasing subsequence, the earliest rows kept among equally long ones. One
    corrupt time that jumps ahead costs that row, not every row after it."""
    n = local_ts.shape[0]
    bad = np.zeros(n, np.bool_)
    ordered = True
    for i in range(1, n):
        if local_ts[i] < local_ts[i - 1]:
            ordered = False
            break
    if ordered:
        return bad
    # right to left: run[i] = length of the longest non-decreasing run starting at row i;
    # head[k] = the largest first time of the runs of length k + 1 seen so far (falling in k)
    run = np.empty(n, np.int64)
    head = np.empty(n, np.int64)
    longest = 0
    for i in range(n - 1, -1, -1):
        t = local_ts[i]
        lo, hi = 0, longest  # the first k whose head is < t: t can lead runs of length k + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if head[mid] >= t:
                lo = mid + 1
            else:
                hi = mid
        run[i] = lo + 1
        if lo == longest:
            head[lo] = t
            longest += 1
        elif head[lo] < t:
            head[lo] = t
    need = longest
    last = np.iinfo(np.int64).min
    for i in range(n):
        if need > 0 and run[i] >= need and local_ts[i] >= last:
            need -= 1
            last = local_ts[i]
        else:
            bad[i] = True
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

    * time order: ``local_ts`` never goes backwards (the fewest rows that break it are
      dropped);
    * positive sizes: adds, cancels, executions, trades need ``qty > 0``; levels and BBOs
      ``qty >= 0``;
    * known order ids (``l3=True``): cancels, executions, modifies and deletes must name a
      live order, and an add must not reuse a live id. (Executions with ``FLAG_HIDDEN`` have
      no resting order and are exempt when ``order_id`` is 0.)
    """
    if len(events) == 0:
        return events
    events = apply_mask(events, time_order_bad(events["local_ts"]), report, "time went backwards")
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
