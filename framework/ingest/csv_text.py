"""Reading CSV files as exact text: gunzip, all-string columns, integer columns, dropped rows."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.core.errors import FormatError
from framework.ingest.base import ImportReport
from framework.ingest.decimal_text import I64


def read_bytes(path: Path) -> bytes:
    """Whole file, gunzipped if it starts with the gzip magic; corrupt gzip -> FormatError."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            msg = f"{path}: gzip data is corrupt ({exc}); re-download the file"
            raise FormatError(msg) from exc
    return data


def read_csv_text(path: Path, data: bytes) -> pl.DataFrame:
    """A CSV as all-string columns (so decimals stay exact); unreadable -> FormatError."""
    import io

    try:
        return pl.read_csv(io.BytesIO(data), infer_schema=False, raise_if_empty=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        msg = f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); check the file"
        raise FormatError(msg) from exc


def drop_rows(
    df: pl.DataFrame, bad: npt.NDArray[np.bool_], report: ImportReport, reason: str
) -> pl.DataFrame:
    """Drop source rows where ``bad`` is true, counting them under ``reason``."""
    n = int(np.count_nonzero(bad))
    if n == 0:
        return df
    report.reject(reason, n)
    return df.filter(pl.Series(~bad))


def int_column(df: pl.DataFrame, name: str) -> tuple[I64, npt.NDArray[np.bool_]]:
    """An all-digit string column as int64 and a mask of values that are not integers."""
    s = df[name].str.strip_chars().cast(pl.Int64, strict=False)
    bad = s.is_null().to_numpy()
    return s.fill_null(0).to_numpy().astype(np.int64), bad
