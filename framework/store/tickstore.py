"""The Parquet tick store: one file per venue / symbol / day under a root directory.

Layout::

    <root>/<VENUE>/<SYMBOL>/<YYYY-MM-DD>.parquet          events, sorted by local_ts
    <root>/<VENUE>/<SYMBOL>/<YYYY-MM-DD>.labels.parquet   optional sidecar (e.g. regimes)

    <root>/.staging/                                      writes in progress (never read)

Every events file carries the instrument (JSON), the schema version and the id of the write
that made it in its metadata; a labels file carries the same write id, so labels left from
another write of the day are never paired with these events. Writes are atomic: files are
written in ``.staging`` and renamed into place only when every one is complete, so a failed
or killed write leaves no partial file where readers look, and the next write removes what
it left (:mod:`framework.store.staging`). Reads stream row groups, so memory stays bounded
however many days are replayed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from framework.core.errors import ConfigError, DataError, StoreError
from framework.core.events import EVENT_DTYPE, EventArray
from framework.core.instrument import Instrument
from framework.core.timeutil import parse_date
from framework.store.schema import (
    META_DATE,
    META_INSTRUMENT,
    META_SCHEMA_VERSION,
    META_WRITE_ID,
    SCHEMA_VERSION,
    batch_to_events,
    events_to_table,
)
from framework.store.staging import Staging, checkpoint, clean_legacy_tmp

DEFAULT_ROOT = Path("data/store")
ROW_GROUP_ROWS = 1 << 20  # 1 Mi rows = 48 MiB of events per streamed batch
_DAY_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.parquet$")

# Timestamps and ids compress best as deltas; small-cardinality columns as dictionaries.
#: Parquet codec of the event files. lz4 decodes about twice as fast as zstd here and costs
#: ~7% more bytes (8.7 vs 8.2 bytes/event on a synthetic L2 day): reading is the hot path.
COMPRESSION = "lz4"

# Timestamps, prices, sizes and ids change little from row to row: delta encoding halves
# their size before compression (benchmarks/bench_store.py measures both).
_COLUMN_ENCODING = dict.fromkeys(
    ("exch_ts", "local_ts", "price", "qty", "order_id"), "DELTA_BINARY_PACKED"
)


def default_root() -> Path:
    """The store root: ``$HFTLAB_STORE`` if set, else ``data/store``."""
    env = os.environ.get("HFTLAB_STORE")
    return Path(env) if env else DEFAULT_ROOT


@dataclass(frozen=True)
class DayKey:
    """Address of one stored day."""

    venue: str
    symbol: str
    date: dt.date

    def __str__(self) -> str:
        return f"{self.venue}/{self.symbol}/{self.date.isoformat()}"

    @classmethod
    def parse(cls, text: str) -> DayKey:
        """Parse ``VENUE/SYMBOL/YYYY-MM-DD``."""
        parts = text.strip("/").split("/")
        if len(parts) != 3:
            msg = f"{text!r} is not VENUE/SYMBOL/YYYY-MM-DD (e.g. XNAS/AMZN/2012-06-21)"
            raise ConfigError(msg)
        return cls(parts[0], parts[1], parse_date(parts[2]))


@dataclass(frozen=True)
class DayInfo:
    """What ``hftlab data ls`` and ``data info`` show for one stored day."""

    key: DayKey
    path: Path
    rows: int
    bytes_on_disk: int
    row_groups: int
    instrument: Instrument
    first_ts: int | None
    last_ts: int | None

    @property
    def bytes_per_event(self) -> float:
        return self.bytes_on_disk / self.rows if self.rows else 0.0


def _is_store_name(name: str) -> bool:
    """Whether ``name`` can be a venue or symbol folder: dot-names are the store's own."""
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name


def _corrupt(path: Path, exc: BaseException) -> StoreError:
    msg = f"{path}: cannot read Parquet ({exc}); the file is corrupt — delete and re-import"
    return StoreError(msg)


def _prefetched_row_groups(
    pf: pq.ParquetFile, path: Path, pool: ThreadPoolExecutor | None = None
) -> Iterator[pa.Table]:
    """The row groups of ``pf`` in order, each decoded in a background thread while the
    caller converts the previous one (pyarrow and the compiled converter release the GIL).

    Pass one ``pool`` for a whole multi-day stream: a new thread per day would give the
    Arrow allocator a new per-thread arena each time, and their cached pages add up.
    """
    n = pf.num_row_groups
    if n == 0:
        return
    own = pool is None
    ex = ThreadPoolExecutor(max_workers=1) if pool is None else pool
    try:
        nxt = ex.submit(pf.read_row_group, 0)
        for i in range(n):
            try:
                cur = nxt.result()
            except (OSError, pa.ArrowException) as exc:
                raise _corrupt(path, exc) from exc
            if i + 1 < n:
                nxt = ex.submit(pf.read_row_group, i + 1)
            yield cur
    finally:
        if own:
            ex.shutdown(wait=True)


class TickStore:
    """Write, read, list and delete stored days.

    >>> import tempfile
    >>> from framework.core.events import make_events
    >>> store = TickStore(tempfile.mkdtemp())
    >>> inst = Instrument(venue="SIM", symbol="ABC")
    >>> _ = store.write(inst, dt.date(2024, 1, 2), make_events(local_ts=[1, 2], qty=[5, 6]))
    >>> [str(k) for k in store.keys()], store.read("SIM", "ABC", "2024-01-02")["qty"].tolist()
    (['SIM/ABC/2024-01-02'], [5, 6])
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        if self.root.exists() and not self.root.is_dir():
            msg = f"store root {self.root} exists and is not a directory; pick another --store"
            raise StoreError(msg)

    # --- paths ------------------------------------------------------------------------
    def path_for(self, venue: str, symbol: str, date: dt.date | str) -> Path:
        for what, name in (("venue", venue), ("symbol", symbol)):
            if not _is_store_name(name):
                msg = (
                    f"{what} {name!r} cannot name a folder of the store: it must be non-empty, "
                    "without '/' or '\\', and not start with '.'"
                )
                raise ConfigError(msg)
        d = parse_date(date) if isinstance(date, str) else date
        return self.root / venue / symbol / f"{d.isoformat()}.parquet"

    def labels_path_for(self, venue: str, symbol: str, date: dt.date | str) -> Path:
        p = self.path_for(venue, symbol, date)
        return p.with_name(p.name.replace(".parquet", ".labels.parquet"))

    def _existing(self, venue: str, symbol: str, date: dt.date | str) -> Path:
        path = self.path_for(venue, symbol, date)
        if not path.is_file():
            have = [str(k) for k in self.keys(venue=venue, symbol=symbol)]
            hint = (
                f"stored days of {venue}/{symbol}: {', '.join(have[:10])}"
                if have
                else ("run `hftlab data ls` to see what is stored")
            )
            msg = f"no stored day {venue}/{symbol}/{path.stem} in {self.root}; {hint}"
            raise StoreError(msg)
        return path

    # --- write ------------------------------------------------------------------------
    def write(
        self,
        instrument: Instrument,
        date: dt.date,
        events: EventArray,
        *,
        labels: pa.Table | None = None,
        overwrite: bool = True,
    ) -> Path:
        """Write one day atomically and return its path."""
        return self.write_many([(instrument, date, events, labels)], overwrite=overwrite)[0]

    def write_many(
        self,
        days: Sequence[tuple[Instrument, dt.date, EventArray, pa.Table | None]],
        *,
        overwrite: bool = True,
    ) -> list[Path]:
        """Write several days; their files appear only once every one was written.

        Each file is replaced atomically: a reader sees the old file or the new one, never
        part of one. A day's events file goes in before its labels file; a write killed
        between the two leaves the new events with no labels (the old labels, if any, carry
        another write id and :meth:`read_labels` ignores them).
        """
        finals = [self.path_for(inst.venue, inst.symbol, date) for inst, date, _, _ in days]
        if not overwrite:
            for final in finals:
                if final.exists():
                    msg = (
                        f"{final} is already stored and overwrite=False (CLI: --no-overwrite) "
                        "keeps it; leave that out to replace the day"
                    )
                    raise StoreError(msg)
        with Staging(self.root) as stage:
            checkpoint("staging")
            staged: list[tuple[Path, Path, Path, Path | None]] = []
            for (inst, date, events, labels), final in zip(days, finals, strict=True):
                write_id = uuid.uuid4().hex.encode()
                tmp = stage.file_for(final)
                self._write_events_file(tmp, inst, date, events, write_id)
                checkpoint("events_staged")
                lfinal = self.labels_path_for(inst.venue, inst.symbol, date)
                ltmp = None
                if labels is not None:
                    ltmp = stage.file_for(lfinal)
                    meta = {**(labels.schema.metadata or {}), META_WRITE_ID: write_id}
                    pq.write_table(labels.replace_schema_metadata(meta), ltmp, compression="zstd")
                staged.append((tmp, final, lfinal, ltmp))
            checkpoint("staged")
            for tmp, final, lfinal, ltmp in staged:
                final.parent.mkdir(parents=True, exist_ok=True)
                clean_legacy_tmp(final.parent)
                os.replace(tmp, final)
                checkpoint("events_replaced")
                if ltmp is not None:
                    os.replace(ltmp, lfinal)
                else:
                    lfinal.unlink(missing_ok=True)  # an earlier write's labels of this day
                checkpoint("day_replaced")
        return finals

    def _write_events_file(
        self, path: Path, inst: Instrument, date: dt.date, events: EventArray, write_id: bytes
    ) -> None:
        if events.dtype != EVENT_DTYPE:
            msg = f"events for {inst.key} {date} have dtype {events.dtype}, not EVENT_DTYPE"
            raise DataError(msg)
        lt = events["local_ts"]
        if len(lt) > 1 and bool(np.any(lt[1:] < lt[:-1])):
            msg = (
                f"events for {inst.key} {date} are not sorted by local_ts; the store keeps "
                "each day in receive order (sort with np.argsort(kind='stable'))"
            )
            raise DataError(msg)
        meta = {
            META_SCHEMA_VERSION: str(SCHEMA_VERSION).encode(),
            META_INSTRUMENT: inst.to_json().encode(),
            META_DATE: date.isoformat().encode(),
            META_WRITE_ID: write_id,
        }
        table = events_to_table(events, meta)
        pq.write_table(
            table,
            path,
            row_group_size=ROW_GROUP_ROWS,
            compression=COMPRESSION,
            use_dictionary=["instrument", "kind", "side", "flags"],
            column_encoding=_COLUMN_ENCODING,
            write_statistics=["exch_ts", "local_ts"],
        )

    # --- read -------------------------------------------------------------------------
    def _open(self, path: Path) -> pq.ParquetFile:
        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise _corrupt(path, exc) from exc
        version = (pf.schema_arrow.metadata or {}).get(META_SCHEMA_VERSION)
        if version is None:
            msg = f"{path}: not an hftlab store file (no schema version in its metadata)"
            raise StoreError(msg)
        if int(version) != SCHEMA_VERSION:
            msg = (
                f"{path}: schema version {int(version)}, this hftlab reads {SCHEMA_VERSION}; "
                "re-import the day"
            )
            raise StoreError(msg)
        return pf

    def read(self, venue: str, symbol: str, date: dt.date | str) -> EventArray:
        """The whole day as one event array."""
        path = self._existing(venue, symbol, date)
        pf = self._open(path)
        out = np.empty(pf.metadata.num_rows, dtype=EVENT_DTYPE)
        pos = 0
        for rg in _prefetched_row_groups(pf, path):
            batch_to_events(rg, out[pos:])
            pos += rg.num_rows
        return out

    def iter_batches(
        self,
        venue: str,
        symbol: str,
        dates: Iterable[dt.date | str] | dt.date | str,
        *,
        reuse: bool = False,
    ) -> Iterator[EventArray]:
        """Stream the events of one or more days, one row group at a time.

        Memory is bounded by two row groups (:data:`ROW_GROUP_ROWS` rows each): the next
        one is decoded in a background thread while the caller works on this one. With
        ``reuse=True`` the batches are views of two buffers that take turns, valid until the
        iteration after the next: no new memory is touched per batch, which is much faster
        on machines where fresh pages are expensive. Copy a batch to keep it.
        """
        if isinstance(dates, dt.date | str):
            dates = [dates]
        bufs: list[EventArray] = [np.empty(0, dtype=EVENT_DTYPE), np.empty(0, dtype=EVENT_DTYPE)]
        k = 0
        with ThreadPoolExecutor(max_workers=1) as pool:
            for d in dates:
                path = self._existing(venue, symbol, d)
                pf = self._open(path)
                for rg in _prefetched_row_groups(pf, path, pool):
                    if not reuse:
                        yield batch_to_events(rg)
                        continue
                    if len(bufs[k]) < rg.num_rows:
                        bufs[k] = np.empty(rg.num_rows, dtype=EVENT_DTYPE)
                    yield batch_to_events(rg, bufs[k])
                    k ^= 1
                del pf
                pa.default_memory_pool().release_unused()

    def instrument(self, venue: str, symbol: str, date: dt.date | str) -> Instrument:
        """The instrument stored with a day."""
        pf = self._open(self._existing(venue, symbol, date))
        raw = (pf.schema_arrow.metadata or {}).get(META_INSTRUMENT)
        if raw is None:
            msg = f"{pf}: no instrument in the file metadata; re-import the day"
            raise StoreError(msg)
        return Instrument.from_json(raw)

    def read_labels(self, venue: str, symbol: str, date: dt.date | str) -> pa.Table | None:
        """The day's sidecar label table, or None when it has none.

        Labels written by another write of the day than its events (one killed between the
        two files, or an old one the new write could not remove) are not this day's: None.
        """
        p = self.labels_path_for(venue, symbol, date)
        if not p.is_file():
            return None
        events = self._open(self._existing(venue, symbol, date))
        events_id = (events.schema_arrow.metadata or {}).get(META_WRITE_ID)
        try:
            table = pq.read_table(p)
        except (OSError, pa.ArrowException) as exc:
            raise _corrupt(p, exc) from exc
        labels_id = (table.schema.metadata or {}).get(META_WRITE_ID)
        if events_id is not None and labels_id != events_id:
            return None
        return table

    # --- catalogue --------------------------------------------------------------------
    def keys(self, *, venue: str | None = None, symbol: str | None = None) -> list[DayKey]:
        """Stored days, sorted, optionally filtered by venue and symbol."""
        if not self.root.is_dir():
            return []
        out = []
        for vdir in sorted(self.root.iterdir()):
            if not _is_store_name(vdir.name) or not vdir.is_dir() or (venue and vdir.name != venue):
                continue
            for sdir in sorted(vdir.iterdir()):
                if not _is_store_name(sdir.name) or not sdir.is_dir():
                    continue
                if symbol and sdir.name != symbol:
                    continue
                for f in sorted(sdir.iterdir()):
                    m = _DAY_RE.match(f.name)
                    if m:
                        out.append(DayKey(vdir.name, sdir.name, dt.date.fromisoformat(m[1])))
        return out

    def info(self, venue: str, symbol: str, date: dt.date | str) -> DayInfo:
        """Rows, time span, bytes on disk and instrument of one day (metadata only)."""
        path = self._existing(venue, symbol, date)
        pf = self._open(path)
        md = pf.metadata
        first = last = None
        col = pf.schema_arrow.get_field_index("local_ts")
        for i in range(md.num_row_groups):
            st = md.row_group(i).column(col).statistics
            if st is not None and st.has_min_max:
                first = st.min if first is None else min(first, st.min)
                last = st.max if last is None else max(last, st.max)
        raw = (pf.schema_arrow.metadata or {}).get(META_INSTRUMENT, b"{}")
        d = parse_date(date) if isinstance(date, str) else date
        return DayInfo(
            key=DayKey(venue, symbol, d),
            path=path,
            rows=md.num_rows,
            bytes_on_disk=path.stat().st_size,
            row_groups=md.num_row_groups,
            instrument=Instrument.from_json(raw),
            first_ts=first,
            last_ts=last,
        )

    def kind_counts(self, venue: str, symbol: str, date: dt.date | str) -> dict[int, int]:
        """Events per kind in one day (reads only the ``kind`` column)."""
        path = self._existing(venue, symbol, date)
        try:
            kinds = self._open(path).read(columns=["kind"]).column("kind").to_numpy()
        except (OSError, pa.ArrowException) as exc:
            raise _corrupt(path, exc) from exc
        vals, counts = np.unique(kinds, return_counts=True)
        return {int(v): int(c) for v, c in zip(vals, counts, strict=True)}

    def delete(self, venue: str, symbol: str, date: dt.date | str | None = None) -> list[Path]:
        """Delete one day, or every day of a venue/symbol when ``date`` is None."""
        if date is not None:
            path = self._existing(venue, symbol, date)
            removed = [path]
            path.unlink()
            lp = self.labels_path_for(venue, symbol, date)
            if lp.exists():
                lp.unlink()
                removed.append(lp)
            return removed
        sdir = self.root / venue / symbol
        if not sdir.is_dir():
            msg = f"nothing stored for {venue}/{symbol} in {self.root}"
            raise StoreError(msg)
        removed = sorted(sdir.iterdir())
        shutil.rmtree(sdir)
        return removed

    # --- queries ----------------------------------------------------------------------
    def scan(self, venue: str, symbol: str, dates: Iterable[dt.date | str] | None = None) -> Any:
        """A polars LazyFrame over stored days of one instrument (all days by default)."""
        import polars as pl

        if dates is None:
            paths = [
                self.path_for(k.venue, k.symbol, k.date)
                for k in self.keys(venue=venue, symbol=symbol)
            ]
        else:
            paths = [self._existing(venue, symbol, d) for d in dates]
        if not paths:
            msg = f"nothing stored for {venue}/{symbol} in {self.root}"
            raise StoreError(msg)
        for p in paths:
            self._open(p)  # a corrupt or foreign file is named here, not deep in polars
        return pl.scan_parquet([str(p) for p in paths])

    def frame(
        self, venue: str, symbol: str, date: dt.date | str, *, real_units: bool = True
    ) -> Any:
        """One day as a polars DataFrame; with ``real_units`` prices and sizes are floats."""
        import polars as pl

        df = self.scan(venue, symbol, [date]).collect()
        if not real_units:
            return df
        inst = self.instrument(venue, symbol, date)
        return df.with_columns(
            (pl.col("price").cast(pl.Float64) * float(inst.tick_size)).round(inst.price_decimals),
            (pl.col("qty").cast(pl.Float64) * float(inst.lot_size)).round(inst.qty_decimals),
        )

    def sql(self, query: str) -> Any:
        """Run DuckDB SQL over the store and return a polars DataFrame. The views are
        ``events`` (as stored, plus ``venue``, ``symbol`` and ``date``), ``events_named``
        (names and real units, as ``data dump``) and ``days`` (see :mod:`framework.store.sql`).
        """
        from framework.store.sql import run_sql

        return run_sql(self, query)
