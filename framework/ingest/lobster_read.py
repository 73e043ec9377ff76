"""Reading and checking LOBSTER CSV files: rows by line, damaged lines marked, not fatal.

Every non-empty line of a message or orderbook file is one row (blank lines hold nothing and
shift nothing). A line that is not a row of its file's kind, or a row LOBSTER never writes
(an event type outside 1..7, a size beyond any real order, bid levels out of order, ...), is
marked so the importer can skip it (a message) or leave its message unchecked (an orderbook
row) and count it as damage. See :mod:`framework.ingest.lobster` for the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from framework.core.errors import DataError, FormatError
from framework.ingest.base import ImportReport
from framework.ingest.csv_text import line_bounds

EMPTY_ASK = 9_999_999_999  #: orderbook placeholder for a missing ask level
EMPTY_BID = -9_999_999_999
MSG_LINE_RE = re.compile(r"^\s*\d+(\.\d*)?,-?\d+,-?\d+,-?\d+,-?\d+,-?\d+\s*$")
SNIFF_LINES = 20  #: lines read to tell the format (most must be rows: one may be damaged)
MAX_SIZE = 10**12  #: shares; larger sizes are damage (and would overflow level sums)
MAX_PRICE = 10**12  #: $ x 10000 = $100M; real quotes are far below, empty levels aside


def head_lines(path: Path, what: str) -> list[str]:
    """The first non-empty lines of a text file; FormatError for empty or binary files."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        msg = f"{path}: the file is empty; expected a LOBSTER {what} CSV"
        raise FormatError(msg)
    arr = np.frombuffer(head, np.uint8)
    text_bytes = int(np.count_nonzero(((arr >= 32) & (arr < 127)) | (arr == 10) | (arr == 13)))
    if text_bytes < len(head) * 0.9:  # a damaged byte or two is not a binary file
        msg = f"{path}: binary data, not a LOBSTER {what} CSV (comma-separated numbers)"
        raise FormatError(msg)
    lines = head.decode("ascii", errors="replace").splitlines()
    if len(head) == 1 << 16 and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut by the read size
    return [x for x in lines if x.strip()][:SNIFF_LINES]


def _row_re(ncols: int, is_message: bool) -> re.Pattern[str]:
    return MSG_LINE_RE if is_message else re.compile(rf"^\s*-?\d+(,-?\d+){{{ncols - 1}}}\s*$")


@dataclass
class Rows:
    """The numeric columns of a LOBSTER CSV, one entry per non-empty line.

    ``good`` is false on lines that are not a row of the file's kind (their columns hold 0);
    ``line`` gives each row's 1-based line number in the file.
    """

    cols: list[npt.NDArray[Any]]
    good: npt.NDArray[np.bool_]
    line: npt.NDArray[np.int64]

    @property
    def n(self) -> int:
        return int(self.good.shape[0])


def _parse(data: Any, ncols: int, types: list[pa.DataType]) -> list[npt.NDArray[Any]] | None:
    """pyarrow's parse of well-formed rows, or None when some row is not one."""
    names = [f"c{i}" for i in range(ncols)]
    try:
        table = pacsv.read_csv(
            data,
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=pacsv.ConvertOptions(column_types=dict(zip(names, types, strict=True))),
        )
    except (pa.ArrowException, ValueError):
        return None
    if any(table.column(i).null_count for i in range(ncols)):
        return None
    return [table.column(i).to_numpy() for i in range(ncols)]


def read_rows(path: Path, what: str, types: list[pa.DataType]) -> Rows:
    """Every non-empty line of a LOBSTER CSV, parsed; lines that are no row are marked."""
    ncols = len(types)
    data = path.read_bytes()
    starts, ends = line_bounds(data)
    rows = np.flatnonzero(ends > starts)
    if len(rows) == len(starts):  # no blank lines: try the fast parse of the whole file
        cols = _parse(pa.py_buffer(data), ncols, types)
        if cols is not None and cols[0].shape[0] == len(rows):
            return Rows(cols, np.ones(len(rows), np.bool_), rows + 1)
    pattern = _row_re(ncols, what == "message")
    text = [data[starts[i] : ends[i]].decode("ascii", errors="replace") for i in rows.tolist()]
    good = np.array([pattern.match(t) is not None for t in text], np.bool_)
    cols = [np.zeros(len(rows), t.to_pandas_dtype()) for t in types]
    if good.any():
        clean = "\n".join(t for t, g in zip(text, good.tolist(), strict=True) if g) + "\n"
        parsed = _parse(pa.py_buffer(clean.encode()), ncols, types)
        if parsed is None:  # a number too large for its type: find those lines one by one
            for k in np.flatnonzero(good).tolist():
                if _parse(pa.py_buffer(text[k].encode()), ncols, types) is None:
                    good[k] = False
            clean = "\n".join(t for t, g in zip(text, good.tolist(), strict=True) if g) + "\n"
            parsed = _parse(pa.py_buffer(clean.encode()), ncols, types) if good.any() else None
        if parsed is not None:
            for c, v in zip(cols, parsed, strict=True):
                c[good] = v
    return Rows(cols, good, rows + 1)


def first_row(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0]) + 1  # 1-based, as an editor shows lines


def message_problems(
    *,
    tsec: npt.NDArray[np.float64],
    typ: npt.NDArray[np.int64],
    oid: npt.NDArray[np.int64],
    size: npt.NDArray[np.int64],
    price: npt.NDArray[np.int64],
    direction: npt.NDArray[np.int64],
) -> list[tuple[str, npt.NDArray[np.bool_]]]:
    """Rows that are not valid LOBSTER messages, by problem (LOBSTER writes none of them)."""
    trade = typ <= 6
    return [
        ("event type outside 1..7", ~np.isin(typ, [1, 2, 3, 4, 5, 6, 7])),
        ("time outside 0..48h", ~np.isfinite(tsec) | (tsec < 0) | (tsec >= 2 * 86_400)),
        ("non-positive size or one beyond any real order",
         trade & ((size <= 0) | (size > MAX_SIZE))),
        ("non-positive price or one beyond any real quote",
         trade & ((price <= 0) | (price > MAX_PRICE))),
        ("direction other than 1/-1", (typ <= 5) & (direction != 1) & (direction != -1)),
        ("negative order id", (typ <= 4) & (oid < 0)),
        ("halt (type 7) with price not -1/0/1", (typ == 7) & ((price < -1) | (price > 1))),
    ]


def book_arrays(
    cols: list[npt.NDArray[np.int64]], L: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[tuple[str, npt.NDArray[np.bool_]]]]:
    """Orderbook columns -> raw prices and sizes shaped (n, side 0 bid / 1 ask, L), and the
    rows that are not valid LOBSTER orderbook rows, by problem."""
    n = cols[0].shape[0]
    p = np.empty((n, 2, L), np.int64)
    q = np.empty((n, 2, L), np.int64)
    for j in range(L):
        p[:, 1, j], q[:, 1, j] = cols[4 * j], cols[4 * j + 1]
        p[:, 0, j], q[:, 0, j] = cols[4 * j + 2], cols[4 * j + 3]
    empty = np.stack([p[:, 0] == EMPTY_BID, p[:, 1] == EMPTY_ASK], axis=1)

    def rows(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        return np.asarray(mask.reshape(n, -1).any(axis=1))

    problems = [
        ("size on an empty (9999999999) level", rows(empty & (q != 0))),
        ("level with a non-positive size or one beyond any real book",
         rows(~empty & ((q <= 0) | (q > MAX_SIZE)))),
        ("level with a non-positive price or one beyond any real quote",
         rows(~empty & ((p <= 0) | (p > MAX_PRICE)))),
    ]
    if L > 1:
        both = ~empty[:, :, 1:]
        problems += [
            ("occupied level below an empty one", rows(empty[:, :, :-1] & ~empty[:, :, 1:])),
            ("bid levels not in falling order", rows(both[:, 0] & (p[:, 0, 1:] >= p[:, 0, :-1]))),
            ("ask levels not in rising order", rows(both[:, 1] & (p[:, 1, 1:] <= p[:, 1, :-1]))),
        ]
    return np.where(empty, -1, p), q, problems


def to_lots(path: Path, shares: npt.NDArray[np.int64], lot: object) -> npt.NDArray[np.int64]:
    from decimal import Decimal

    lot_d = Decimal(str(lot))
    num, den = lot_d.as_integer_ratio()
    if num == 1 and den == 1:
        return shares
    scaled = shares * den
    bad = scaled % num != 0
    if bad.ndim > 1:  # orderbook sizes: report the row
        bad = bad.reshape(bad.shape[0], -1).any(axis=1)
    if bad.any():
        msg = (
            f"{path}: {int(bad.sum()):,} size(s) are not whole lots of {lot_d:f} shares "
            f"(first at row {first_row(bad)}); pass a --lot-size that divides every size"
        )
        raise DataError(msg)
    return scaled // num


def drop_damaged(
    report: ImportReport, good: npt.NDArray[np.bool_], line: npt.NDArray[np.int64],
    problems: list[tuple[str, npt.NDArray[np.bool_]]], what: str, *, rows: bool,
) -> npt.NDArray[np.bool_]:
    """Count each bad row once, under its first problem; returns the rows still good.

    ``rows``: the bad rows are skipped messages; else orderbook rows whose messages are
    imported unchecked (damage with no rows skipped).
    """
    ok = good.copy()
    for reason, mask in problems:
        hit = ok & mask
        if hit.any():
            first = f"{what} line {int(line[np.argmax(hit)]):,}"
            n = int(hit.sum())
            if rows:
                report.damage(f"not a LOBSTER message row: {reason}", n, at=first)
            else:
                report.damage(f"{n:,} orderbook rows are not valid ({reason}); their messages "
                              "are imported without the orderbook check", at=first)
            ok &= ~mask
    return ok
