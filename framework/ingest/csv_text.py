"""Reading CSV files as exact text: whole lines checked, all-string columns, dropped rows.

A CSV line is the unit of damage: a line with the wrong number of fields or with bytes that
are not printable ASCII (binary garbage, a flipped bit, a cut) is skipped and counted as
damaged, so one bad line never shifts or swallows its neighbours.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.core.errors import FormatError
from framework.ingest.base import ImportReport
from framework.ingest.decimal_text import I64


def line_bounds(data: bytes) -> tuple[I64, I64]:
    """Start and end (exclusive, without ``\\r\\n``) of every line of ``data``."""
    buf = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], nl + 1]).astype(np.int64)
    ends = np.concatenate([nl, [len(buf)]]).astype(np.int64)
    if starts[-1] == len(buf):  # the text ends with a newline: no line after it
        starts, ends = starts[:-1], ends[:-1]
    cr = np.zeros(len(ends), np.bool_)
    has = ends > starts
    cr[has] = buf[ends[has] - 1] == 13
    return starts, ends - cr


def _per_line(flag: npt.NDArray[np.bool_], starts: I64, ends: I64) -> npt.NDArray[np.int64]:
    """How many ``flag`` bytes lie from each non-empty line's start to the next one's."""
    out = np.zeros(len(starts), np.int64)
    full = ends > starts
    if full.any():
        out[full] = np.add.reduceat(flag, starts[full], dtype=np.int64)
    return out


def checked_lines(
    path: Path, data: bytes, report: ImportReport
) -> tuple[bytes, npt.NDArray[np.int64]]:
    """The header and the data lines that have the header's field count and printable ASCII
    bytes only, joined; and the 1-based line number of each kept data line.

    Other non-empty lines are damaged (counted, first line named); blank lines hold nothing.
    ``report.rows_read`` grows by the number of non-empty data lines.
    """
    starts, ends = line_bounds(data)
    buf = np.frombuffer(data, np.uint8)
    empty = ends == starts
    # a line's counts run from its start to the next non-empty line's start: newlines and
    # blank lines in between hold no commas and (\t, \r, \n aside) no control bytes
    commas = _per_line(buf == 44, starts, ends)
    bad_byte = ((buf < 32) & (buf != 9) & (buf != 10) & (buf != 13)) | (buf >= 127)
    bad = _per_line(bad_byte, starts, ends) > 0
    full = np.flatnonzero(~empty)
    if len(full) == 0:
        msg = f"{path}: the file holds no lines; expected a CSV with a header"
        raise FormatError(msg)
    head = full[0]
    if bad[head]:
        msg = f"{path}: line {head + 1} (the header) holds bytes that are not text; check the file"
        raise FormatError(msg)
    rows = full[1:]
    report.rows_read += len(rows)
    broken = rows[(commas[rows] != commas[head]) | bad[rows]]
    if len(broken) == 0 and len(full) == len(starts):
        return data, rows + 1
    if len(broken):
        report.damage(f"lines that are not a CSV row of {commas[head] + 1} text fields",
                      len(broken), at=f"line {broken[0] + 1:,}")
    keep = np.setdiff1d(full, broken, assume_unique=True)
    text = b"\n".join(data[starts[i] : ends[i]] for i in keep.tolist()) + b"\n"
    return text, keep[1:] + 1


LINE = "__line__"  #: the column :func:`read_csv_text` adds: each row's 1-based line number


def read_csv_text(path: Path, data: bytes, report: ImportReport) -> pl.DataFrame:
    """A CSV as all-string columns (so decimals stay exact) plus :data:`LINE`.

    Damaged lines are skipped and counted (see :func:`checked_lines`); a file whose lines
    parse as no CSV is a FormatError.
    """
    text, line_no = checked_lines(path, data, report)
    try:
        df = pl.read_csv(io.BytesIO(text), infer_schema=False, raise_if_empty=False,
                         quote_char=None)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        msg = f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); check the file"
        raise FormatError(msg) from exc
    if df.height != len(line_no):  # cannot happen after the line check; never lose rows
        msg = f"{path}: {len(line_no):,} CSV lines parsed as {df.height:,} rows; check the file"
        raise FormatError(msg)
    if LINE in df.columns:
        msg = f"{path}: the header has a column named {LINE!r}; rename it"
        raise FormatError(msg)
    return df.with_columns(pl.Series(LINE, line_no, dtype=pl.Int64))


def drop_rows(
    df: pl.DataFrame, bad: npt.NDArray[np.bool_], report: ImportReport, reason: str,
    *, damaged: bool = False,
) -> pl.DataFrame:
    """Drop source rows where ``bad`` is true, counting them under ``reason`` (as damage,
    located by the first one's line, when ``damaged``)."""
    n = int(np.count_nonzero(bad))
    if n == 0:
        return df
    if damaged:
        line = int(df[LINE][int(np.argmax(bad))]) if LINE in df.columns else 0
        report.damage(reason, n, at=f"line {line:,}" if line else "")
    else:
        report.reject_rows(reason, n)
    return df.filter(pl.Series(~bad))


def int_column(df: pl.DataFrame, name: str) -> tuple[I64, npt.NDArray[np.bool_]]:
    """An all-digit string column as int64 and a mask of values that are not integers."""
    s = df[name].str.strip_chars().cast(pl.Int64, strict=False)
    bad = s.is_null().to_numpy()
    return s.fill_null(0).to_numpy().astype(np.int64), bad
