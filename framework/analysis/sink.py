"""Result tables written to Parquet while a backtest runs, in bounded memory.

A run records millions of orders and fills; keeping them all until the end costs memory in
proportion to the run (about 50 MB per million events for a market maker) and a long write
at the end. :class:`ResultSink` takes the tables a batch at a time (each recorder flush,
decoded), buffers at most about :data:`ROW_GROUP_ROWS` rows per table and appends them to
``<name>.parquet`` as row groups; it feeds the same batches to a
:class:`framework.analysis.stats.Tally`, so statistics need no table loaded whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from framework.analysis.results import TABLES, TableFiles, empty_table
from framework.analysis.stats import Tally

#: Rows buffered per table before they are written as one row group.
ROW_GROUP_ROWS = 1 << 17
_COMPRESSION = "zstd"


class ResultSink:
    """One Parquet file per result table, appended to as rows arrive.

    With ``out_dir`` the files are built under hidden temporary names in that folder and
    renamed to ``<name>.parquet`` by :meth:`close` (readers never see half a file); without,
    they go to a new temporary folder that is deleted with the last result using them.
    Nothing touches the disk before the first rows (or :meth:`close`). :meth:`abort`
    removes everything written so far.
    """

    def __init__(
        self, out_dir: str | os.PathLike[str] | None = None, *, row_group_rows: int = ROW_GROUP_ROWS
    ) -> None:
        if row_group_rows < 1:
            msg = f"row_group_rows must be positive, got {row_group_rows}"
            raise ValueError(msg)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.row_group_rows = row_group_rows
        self.tally = Tally()
        self.rows: dict[str, int] = dict.fromkeys(TABLES, 0)  #: rows written per table
        self._schemas = {name: empty_table(name).to_arrow().schema for name in TABLES}
        self._buf: dict[str, list[pa.Table]] = {name: [] for name in TABLES}
        self._buffered: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._dir: Path | None = None
        self._temp = False  #: the folder is our own temporary one
        self._staged: dict[str, Path] = {}
        self._closed = False

    # --- writing -----------------------------------------------------------------------------
    def add(self, name: str, df: pl.DataFrame) -> None:
        """Append rows of table ``name`` (columns and dtypes of its schema)."""
        if self._closed:
            msg = "the result sink is closed; rows can no longer be added"
            raise RuntimeError(msg)
        if df.height == 0:
            return
        self.tally.update(name, df)
        table = df.to_arrow()
        if table.schema != self._schemas[name]:
            table = table.select(self._schemas[name].names).cast(self._schemas[name])
        self._buf[name].append(table)
        self._buffered[name] += df.height
        if self._buffered[name] >= self.row_group_rows:
            self._write(name)

    def _write(self, name: str) -> None:
        parts = self._buf[name]
        if not parts:
            return
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        writer = self._writers.get(name)
        if writer is None:
            writer = self._writers[name] = pq.ParquetWriter(
                self._path(name), self._schemas[name], compression=_COMPRESSION
            )
        writer.write_table(table, row_group_size=max(self.row_group_rows, table.num_rows))
        self.rows[name] += table.num_rows
        self._buf[name] = []
        self._buffered[name] = 0

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
            for name in TABLES:
                self._write(name)
                writer = self._writers.pop(name, None)
                if writer is not None:
                    writer.close()
                else:
                    pq.write_table(
                        self._schemas[name].empty_table(),
                        self._path(name),
                        compression=_COMPRESSION,
                    )
            for name, expr in (keep or {}).items():
                self._filter(name, expr)
        except BaseException:
            self.abort()
            raise
        self._closed = True
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
            with pq.ParquetWriter(dst, self._schemas[name], compression=_COMPRESSION) as writer:
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
        """Drop everything: close the writers and delete the files written so far."""
        self._closed = True
        for writer in self._writers.values():
            with contextlib.suppress(OSError, pa.ArrowException):  # the file goes anyway
                writer.close()
        self._writers.clear()
        self._buf = {name: [] for name in TABLES}
        if self._temp and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        else:
            for path in self._staged.values():
                path.unlink(missing_ok=True)
        self._staged.clear()
