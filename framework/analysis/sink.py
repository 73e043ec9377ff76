"""Result tables written to Parquet while a backtest runs, in bounded memory.

A run records millions of orders and fills; keeping them all until the end costs memory in
proportion to the run (about 50 MB per million events for a market maker) and a long write
at the end. :class:`ResultSink` takes the tables a batch at a time (each recorder flush),
buffers at most about :data:`ROW_GROUP_ROWS` rows per table and appends them to
``<name>.parquet`` as row groups; it feeds the same batches to a
:class:`framework.analysis.stats.Tally`, so statistics need no table loaded whole. All of that
runs in a thread of its own, beside the replay (whose compiled loop releases the GIL).
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from framework.analysis.results import SCHEMAS, TABLES, TableFiles
from framework.analysis.tally import Tally

#: Rows buffered per table before they are written as one row group.
ROW_GROUP_ROWS = 1 << 17
#: Parts waiting for the sink's thread, at most (more wait in the caller): with the engine's
#: recorder buffers (65 536 rows) a few MB each
PENDING = 8
#: LZ4: its encode takes ~30 % less CPU than zstd's on these tables (files ~40 % larger);
#: the sink's thread shares the machine with the replay, so its CPU is the run's
_COMPRESSION = "lz4"
#: Columns whose row groups carry min/max statistics: the times readers filter on. Statistics
#: of every column cost ~20 % of the encode and no query here uses them.
_STATISTICS = ("ts", "exch_ts", "submit_ts")
#: Columns with a new value on almost every row: a dictionary page for them costs time and
#: space for nothing (names, codes, prices on a tick grid and latencies repeat: they get one).
_PLAIN = frozenset(
    {"ts", "exch_ts", "submit_ts", "order_id", "fee", "equity", "cash", "fees", "position_value"}
)


class ResultSink:
    """One Parquet file per result table, appended to as rows arrive.

    ``schemas`` gives each table's columns and dtypes: those of :data:`SCHEMAS`, and more
    where the caller records more.

    With ``out_dir`` the files are built under hidden temporary names in that folder and
    renamed to ``<name>.parquet`` by :meth:`close` (readers never see half a file); without,
    they go to a new temporary folder that is deleted with the last result using them.
    Nothing touches the disk before the first row group (or :meth:`close`). :meth:`abort`
    removes everything written so far.

    Parts are decoded (:meth:`add_later`), counted and encoded -- by a thread of the sink's
    own with ``decode_in_thread``, else by the caller -- and written by that thread, in the
    order they were added, so the replay goes on meanwhile; at most :data:`PENDING` jobs wait
    for it. What fails there (a write, a decode) is raised by the next :meth:`add`,
    :meth:`drain` or :meth:`close`, which abort the sink.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str] | None = None,
        *,
        schemas: Mapping[str, Mapping[str, pl.DataType]] = SCHEMAS,
        row_group_rows: int = ROW_GROUP_ROWS,
        decode_in_thread: bool = True,
    ) -> None:
        if row_group_rows < 1:
            msg = f"row_group_rows must be positive, got {row_group_rows}"
            raise ValueError(msg)
        for name in TABLES:  # a table may have more columns than SCHEMAS, never fewer
            missing = [c for c in SCHEMAS[name] if schemas[name].get(c) != SCHEMAS[name][c]]
            if missing:
                msg = f"the sink's {name} schema lacks column(s) {missing} of SCHEMAS"
                raise ValueError(msg)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.row_group_rows = row_group_rows
        self.decode_in_thread = decode_in_thread  #: see :meth:`add_later`
        self.tally = Tally()
        self.rows: dict[str, int] = dict.fromkeys(TABLES, 0)  #: rows written per table
        self._schemas = {
            name: pl.DataFrame(schema=dict(schemas[name])).to_arrow().schema for name in TABLES
        }
        self._dictionary = {
            name: [c for c in schema.names if c not in _PLAIN]
            for name, schema in self._schemas.items()
        }
        self._buf: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
        self._buffered: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._writers: dict[str, pq.ParquetWriter] = {}  #: the sink's thread's until it stops
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(PENDING)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None  #: set by the sink's thread
        self._dir: Path | None = None
        self._temp = False  #: the folder is our own temporary one
        self._staged: dict[str, Path] = {}
        self._closed = False

    # --- writing -----------------------------------------------------------------------------
    def add(self, name: str, df: pl.DataFrame) -> None:
        """Append rows of table ``name`` (columns and dtypes of its schema)."""
        self.add_later(name, lambda: df)

    def add_later(self, name: str, make: Callable[[], pl.DataFrame]) -> None:
        """Append the rows ``make()`` returns to table ``name``.

        With ``decode_in_thread`` (the compiled engine, whose loop releases the GIL) the
        sink's thread calls ``make``, counts and encodes: the engine hands over its recorder
        rows (a copy) with the decoder, and all that runs beside the replay. Otherwise (a
        Python-path run holds the GIL: a second Python thread would only take turns with it)
        this thread does, and the sink's thread only writes the row groups (Arrow encodes
        and writes without the GIL). Tables are built in the order they were added. What
        fails in the sink's thread is raised by the next :meth:`add`, :meth:`drain` or
        :meth:`close`."""
        if self._closed:
            msg = "the result sink is closed; rows can no longer be added"
            raise RuntimeError(msg)
        self._raise_error()
        if self.decode_in_thread:
            self._submit(lambda: self._append(name, make(), self._write_table))
        else:
            self._append(name, make(), self._write_later)

    def drain(self) -> None:
        """Wait until everything added so far is counted and buffered (or written)."""
        if self._thread is not None:
            self._queue.join()
        self._raise_error()

    def _submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` for the sink's thread (started with the first)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work_loop, name="hftlab-result-sink", daemon=True
            )
            self._thread.start()
        self._queue.put(job)  # waits while PENDING are queued

    def _work_loop(self) -> None:
        """The sink's thread: the queued jobs, in order, until None."""
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None and not self._closed:  # else: drop the rest
                    job()
            except BaseException as exc:  # handed to the caller's thread, which raises it
                self._error = exc
            finally:
                self._queue.task_done()

    def _append(
        self, name: str, df: pl.DataFrame, write: Callable[[str, pa.Table], None]
    ) -> None:
        """Count and buffer ``df``; a full row group goes to ``write``."""
        if df.height == 0:
            return
        self.tally.update(name, df)
        table = df.to_arrow()
        if table.schema != self._schemas[name]:
            table = table.select(self._schemas[name].names).cast(self._schemas[name])
        self._buf[name].append(table)
        self._buffered[name] += df.height
        if self._buffered[name] >= self.row_group_rows:
            write(name, self._take(name))

    def _take(self, name: str) -> pa.Table | None:
        """The buffered rows of ``name`` as one table (None when there are none)."""
        parts = self._buf[name]
        if not parts:
            return None
        self._buf[name] = []
        self._buffered[name] = 0
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def _write_later(self, name: str, table: pa.Table) -> None:
        self._submit(lambda: self._write_table(name, table))

    def _write_table(self, name: str, table: pa.Table | None) -> None:
        """Write ``table`` as one row group of ``name``."""
        if table is None:
            return
        path = self._path(name)
        try:
            writer = self._writers.get(name)
            if writer is None:
                writer = self._writers[name] = self._writer(name, path)
            writer.write_table(table, row_group_size=max(self.row_group_rows, table.num_rows))
        except BaseException as exc:
            err = OSError(
                f"writing result table {name} to {path} failed ({exc}); "
                "check the free space and permissions of that folder"
            )
            raise err from exc
        self.rows[name] += table.num_rows

    def _join(self) -> None:
        """Wait until the sink's thread has done everything queued, and stop it."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _raise_error(self) -> None:
        """Raise what the sink's thread failed with; the sink is aborted then."""
        err = self._error
        if err is not None:
            self.abort()
            raise err

    def _writer(self, name: str, path: Path) -> pq.ParquetWriter:
        return pq.ParquetWriter(
            path,
            self._schemas[name],
            compression=_COMPRESSION,
            use_dictionary=self._dictionary[name],
            write_statistics=[c for c in self._schemas[name].names if c in _STATISTICS],
        )

    def _path(self, name: str) -> Path:
        """Where table ``name`` is being written (the folder is made on first use)."""
        if self._dir is None:
            if self.out_dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="hftlab-result-"))
                self._temp = True
            else:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                self._dir = self.out_dir
        path = self._staged.get(name)
        if path is None:
            if self._temp:
                path = self._dir / f"{name}.parquet"
            else:
                path = self._dir / f".tmp-{uuid.uuid4().hex}-{name}.parquet"
            self._staged[name] = path
        return path

    # --- the end -----------------------------------------------------------------------------
    def close(self, *, keep: Mapping[str, pl.Expr] | None = None) -> TableFiles:
        """Write what is buffered, finish every file (empty tables get an empty file) and
        put them in place. ``keep`` filters tables whose wanted rows are only known at the
        end: the table's file is rewritten a row group at a time with the rows kept."""
        if self._closed:
            msg = "the result sink is already closed"
            raise RuntimeError(msg)
        try:
            self._join()
            self._raise_error()
            for name in TABLES:  # the thread has stopped: its buffers are ours
                self._write_table(name, self._take(name))
            for name in TABLES:
                writer = self._writers.pop(name, None)
                if writer is None:
                    writer = self._writer(name, self._path(name))
                writer.close()
            for name, expr in (keep or {}).items():
                self._filter(name, expr)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        pa.default_memory_pool().release_unused()  # the row groups' buffers, for what follows
        if self._temp:
            return TableFiles(dict(self._staged), temp_dir=self._dir)
        assert self._dir is not None
        final = {name: self._dir / f"{name}.parquet" for name in TABLES}
        for name, path in self._staged.items():
            os.replace(path, final[name])
        return TableFiles(final)

    def _filter(self, name: str, expr: pl.Expr) -> None:
        src = self._staged[name]
        dst = src.with_name(f".tmp-{uuid.uuid4().hex}-{name}.parquet")
        kept = 0
        try:
            with self._writer(name, dst) as writer:
                for batch in pq.ParquetFile(src).iter_batches(batch_size=self.row_group_rows):
                    df = pl.DataFrame(pl.from_arrow(batch)).filter(expr)
                    if df.height:
                        writer.write_table(df.to_arrow().cast(self._schemas[name]))
                        kept += df.height
            os.replace(dst, src)
        finally:
            dst.unlink(missing_ok=True)
        self.rows[name] = kept

    def abort(self) -> None:
        """Drop everything: stop the sink's thread, delete the files written so far."""
        self._closed = True  # the thread drops what is still queued
        self._join()
        self._buf = {name: [] for name in TABLES}
        for writer in self._writers.values():
            with contextlib.suppress(OSError, pa.ArrowException):  # the file goes anyway
                writer.close()
        self._writers.clear()
        if self._temp and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        else:
            for path in self._staged.values():
                path.unlink(missing_ok=True)
        self._staged.clear()
