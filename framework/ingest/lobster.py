"""LOBSTER importer: a message file plus its orderbook file -> L3 events.

LOBSTER (lobsterdata.com) reconstructs NASDAQ TotalView-ITCH into two CSV files per day:
``TICKER_DATE_START_END_message_L.csv`` (time, type, order id, size, price x 10000,
direction) and ``..._orderbook_L.csv`` (the top ``L`` levels *after* each message). See
``PROTOCOLS.md`` §6.

Mapping (one message row -> one "message event", plus implied events around it)

====== ========================================================================
type   event
====== ========================================================================
1      ``KIND_ADD`` (order id, side +1 buy / -1 sell, price, size)
2      ``KIND_CANCEL`` (qty = shares cancelled)
3      ``KIND_DELETE`` (qty = shares the file says were deleted)
4      ``KIND_EXECUTE`` of the resting order (side = the resting order's side)
5      ``KIND_TRADE | FLAG_HIDDEN``: execution against a hidden order. ``KIND_TRADE``'s
       side is the *aggressor* (events.py), so side = minus the file's direction (the
       file gives the hidden resting order's side). Hidden executions can print at a
       sub-penny midpoint; they are kept at the tick below (truncated) and counted in
       ``report.notes`` -- dropping them would lose real volume, and a half-tick error on a
       trade print does not touch the book.
6      ``KIND_TRADE | FLAG_AUCTION`` (cross trade; not in LOBSTER's readme but in later files)
7      ``KIND_STATUS``: qty = STATUS_HALTED (price -1), STATUS_QUOTING (0), STATUS_OPEN (1)
====== ========================================================================

The non-implied events are exactly the message rows, in order, with the kinds above: the
book a consumer builds is the file's book, and counts per kind equal the file's type counts.

The book. Message files lack the orders resting before they start, and a level-L file omits
messages that only touch deeper levels, so the messages are replayed through the importer's own
compiled L3 book (:mod:`framework.ingest.lobster_nb`, which describes it). It is seeded from
orderbook row 0 (``FLAG_SNAPSHOT | FLAG_FROM_BOOK | FLAG_IMPLIED``, ids
``SYNTH_ORDER_ID_BASE | n``), applies messages on unknown order ids to the synthetic quantity
at their price (prep events ``FLAG_IMPLIED``) and, after each message, emits corrective events
(``FLAG_FROM_BOOK | FLAG_IMPLIED``) so that the book after the message's last event -- the one
with ``FLAG_LAST`` -- equals the orderbook row at all L levels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from framework.core.errors import DataError, FormatError
from framework.core.events import (
    EVENT_DTYPE,
    STATUS_HALTED,
    STATUS_OPEN,
    STATUS_QUOTING,
)
from framework.core.timeutil import NS_PER_S, parse_date, venue_midnight_ns
from framework.ingest.base import (
    DayData,
    ImportOptions,
    ImportReport,
    ImportResult,
    require_files,
    resolve_instrument,
    validate_events,
)
from framework.ingest.lobster_nb import (
    ST_CORR_EV,
    ST_DEL_MISMATCH,
    ST_DUP_ADD,
    ST_KNOWN_SHORT,
    ST_MISMATCH,
    ST_PREP_EV,
    ST_REWRITE,
    ST_ROWS_CORR,
    ST_SEED,
    build_nb,
)

PRICE_SCALE = 10_000  #: LOBSTER prices are dollars x 10000
EMPTY_ASK = 9_999_999_999  #: orderbook placeholder for a missing ask level
EMPTY_BID = -9_999_999_999

_NAME_RE = re.compile(
    r"^(?P<symbol>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<what>message|orderbook)_(?P<level>\d+)(?:\..*)?$"
)
_MSG_LINE_RE = re.compile(r"^\s*\d+(\.\d*)?,-?\d+,-?\d+,-?\d+,-?\d+,-?\d+\s*$")
_INT_RE = re.compile(r"^-?\d+$")


# --- reading and checking the files --------------------------------------------------------


def _name_info(path: Path) -> re.Match[str] | None:
    return _NAME_RE.match(path.name)


def _orderbook_path(msg: Path, opts: ImportOptions) -> Path:
    given = opts.get("orderbook")
    if given is not None:
        return Path(given)
    if "message" in msg.name:
        head, _, tail = msg.name.rpartition("message")
        sibling = msg.with_name(f"{head}orderbook{tail}")
        if sibling.is_file():
            return sibling
    msg_text = (
        f"{msg}: no orderbook file found beside it (looked for the name with 'message' "
        "replaced by 'orderbook'); pass --orderbook FILE"
    )
    raise DataError(msg_text)


def _first_line(path: Path, what: str) -> str:
    """The first line of a text file; FormatError for empty or binary files."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if not head.strip():
        msg = f"{path}: the file is empty; expected a LOBSTER {what} CSV"
        raise FormatError(msg)
    if b"\x00" in head:
        msg = f"{path}: binary data, not a LOBSTER {what} CSV (comma-separated numbers)"
        raise FormatError(msg)
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError as exc:
        msg = f"{path}: non-ASCII bytes at offset {exc.start}; not a LOBSTER {what} CSV"
        raise FormatError(msg) from exc
    return text.splitlines()[0]


def _line_ok(line: str, ncols: int, is_message: bool) -> bool:
    if is_message:
        return _MSG_LINE_RE.match(line) is not None
    cells = line.strip().split(",")
    return len(cells) == ncols and all(_INT_RE.match(c) for c in cells)


def _format_error(path: Path, what: str, ncols: int, is_message: bool, cause: str) -> FormatError:
    """Find the first bad line (slow path, only after the fast parser failed)."""
    with path.open("r", encoding="ascii", errors="replace") as fh:
        for no, line in enumerate(fh, start=1):
            if line.strip() and not _line_ok(line, ncols, is_message):
                shown = line.strip()[:80]
                return FormatError(
                    f"{path}: line {no} is not a LOBSTER {what} row ({ncols} comma-separated "
                    f"numbers): {shown!r}; fix or truncate the file"
                )
    return FormatError(f"{path}: cannot parse as a LOBSTER {what} CSV ({cause})")


def _read_numbers(path: Path, what: str, types: list[pa.DataType]) -> list[npt.NDArray[Any]]:
    ncols = len(types)
    is_message = what == "message"
    names = [f"c{i}" for i in range(ncols)]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=","),
            convert_options=pacsv.ConvertOptions(column_types=dict(zip(names, types, strict=True))),
        )
        cols = [table.column(i).to_numpy() for i in range(ncols)]
    except (pa.ArrowException, ValueError) as exc:
        raise _format_error(path, what, ncols, is_message, str(exc).splitlines()[0]) from exc
    if any(table.column(i).null_count for i in range(ncols)):
        raise _format_error(path, what, ncols, is_message, "empty cells")
    return cols


def _status_codes(price: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.where(price < 0, STATUS_HALTED, np.where(price == 0, STATUS_QUOTING, STATUS_OPEN))


def _first_row(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0]) + 1  # 1-based, as an editor shows lines


def _check_messages(
    path: Path,
    *,
    tsec: npt.NDArray[np.float64],
    typ: npt.NDArray[np.int64],
    oid: npt.NDArray[np.int64],
    size: npt.NDArray[np.int64],
    price: npt.NDArray[np.int64],
    direction: npt.NDArray[np.int64],
) -> None:
    def fail(mask: npt.NDArray[np.bool_], problem: str) -> None:
        if mask.any():
            msg = (
                f"{path}: {int(mask.sum()):,} row(s) {problem} (first at line {_first_row(mask)}); "
                "the file is not a valid LOBSTER message file"
            )
            raise DataError(msg)

    fail(~np.isin(typ, [1, 2, 3, 4, 5, 6, 7]), "have an event type outside 1..7")
    fail(~np.isfinite(tsec) | (tsec < 0) | (tsec >= 2 * 86_400), "have a time outside 0..48h")
    fail(np.diff(tsec) < 0, "go back in time")
    trade = typ <= 6
    fail(trade & (size <= 0), "have a non-positive size")
    fail(trade & (price <= 0), "have a non-positive price")
    fail((typ <= 5) & (direction != 1) & (direction != -1), "have a direction other than 1/-1")
    fail((typ <= 4) & (oid < 0), "have a negative order id")
    fail((typ == 7) & ((price < -1) | (price > 1)), "are halts (type 7) with price not -1/0/1")


def _book_arrays(
    path: Path, cols: list[npt.NDArray[np.int64]], L: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Orderbook columns -> raw prices and sizes shaped (n, side 0 bid / 1 ask, L)."""
    n = cols[0].shape[0]
    p = np.empty((n, 2, L), np.int64)
    q = np.empty((n, 2, L), np.int64)
    for j in range(L):
        p[:, 1, j], q[:, 1, j] = cols[4 * j], cols[4 * j + 1]
        p[:, 0, j], q[:, 0, j] = cols[4 * j + 2], cols[4 * j + 3]
    empty = np.stack([p[:, 0] == EMPTY_BID, p[:, 1] == EMPTY_ASK], axis=1)

    def fail(mask: npt.NDArray[np.bool_], problem: str) -> None:
        if mask.any():
            rows = np.asarray(mask.reshape(n, -1).any(axis=1))
            msg = (
                f"{path}: {int(rows.sum()):,} row(s) {problem} (first at line "
                f"{_first_row(rows)}); the file is not a valid LOBSTER orderbook"
            )
            raise DataError(msg)

    fail(empty & (q != 0), "have a size on an empty (9999999999) level")
    fail(~empty & (q <= 0), "have a level with a non-positive size")
    fail(~empty & (p <= 0), "have a level with a non-positive price")
    if L > 1:
        fail(empty[:, :, :-1] & ~empty[:, :, 1:], "have an occupied level below an empty one")
        both = ~empty[:, :, 1:]
        fail(both[:, 0] & (p[:, 0, 1:] >= p[:, 0, :-1]), "have bid levels not in falling order")
        fail(both[:, 1] & (p[:, 1, 1:] <= p[:, 1, :-1]), "have ask levels not in rising order")
    return np.where(empty, -1, p), q


def _to_lots(path: Path, shares: npt.NDArray[np.int64], lot: object) -> npt.NDArray[np.int64]:
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
            f"(first at line {_first_row(bad)}); pass a --lot-size that divides every size"
        )
        raise DataError(msg)
    return scaled // num


# --- the importer ------------------------------------------------------------------------


def import_lobster(paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Import one LOBSTER message file (``paths[0]``) with its orderbook file."""
    (msg_path,) = require_files(paths[:1])
    if len(paths) > 1:
        msg = f"LOBSTER imports one message file at a time; got {len(paths)} paths"
        raise DataError(msg)
    ob_path = _orderbook_path(msg_path, opts)
    require_files([ob_path])
    report = ImportReport(source=str(msg_path))

    # names: symbol, date and the level count L
    info = _name_info(msg_path)
    ob_info = _name_info(ob_path)
    first = _first_line(msg_path, "message")
    if not _MSG_LINE_RE.match(first):
        msg = (
            f"{msg_path}: first line {first[:80]!r} is not a LOBSTER message row "
            "(time,type,order id,size,price,direction)"
        )
        raise FormatError(msg)
    ob_cols = len(_first_line(ob_path, "orderbook").split(","))
    if ob_cols % 4 != 0:
        msg = f"{ob_path}: {ob_cols} columns; a LOBSTER orderbook has 4 per level"
        raise FormatError(msg)
    L = ob_cols // 4
    for p_, inf in ((msg_path, info), (ob_path, ob_info)):
        if inf is not None and int(inf["level"]) != L:
            msg = (
                f"{p_}: the name says level {inf['level']} but the orderbook {ob_path.name} has "
                f"{ob_cols} columns = level {L}; pass the matching pair of files"
            )
            raise DataError(msg)
    date = opts.date or (parse_date(info["date"]) if info else None)
    if date is None:
        msg = f"{msg_path}: no date in the file name; pass --date YYYY-MM-DD"
        raise DataError(msg)
    inst = resolve_instrument(
        opts,
        symbol=info["symbol"] if info else None,
        venue="XNAS",
        defaults={"asset_class": "equity", "tick_size": "0.01", "lot_size": "1", "currency": "USD"},
    )

    # parse (pyarrow, multi-threaded C++), then vectorised checks
    i64 = pa.int64()
    tsec, typ, oid, size, price, direction = _read_numbers(
        msg_path, "message", [pa.float64(), i64, i64, i64, i64, i64]
    )
    book = _read_numbers(ob_path, "orderbook", [i64] * ob_cols)
    n = typ.shape[0]
    report.rows_read = n
    if book[0].shape[0] != n:
        msg = (
            f"{msg_path} has {n:,} rows but {ob_path} has {book[0].shape[0]:,}; LOBSTER writes "
            "one orderbook row per message: pass the matching (and equally truncated) pair"
        )
        raise DataError(msg)
    _check_messages(
        msg_path, tsec=tsec, typ=typ, oid=oid, size=size, price=price, direction=direction
    )
    ob_raw, ob_q = _book_arrays(ob_path, book, L)

    # prices -> ticks; the visible book must be on the grid, hidden prints may be sub-penny
    ticks, off = inst.scaled_to_ticks(price, PRICE_SCALE)
    visible = typ <= 4
    if (off & visible).any():
        bad = off & visible
        msg = (
            f"{msg_path}: {int(bad.sum()):,} visible order price(s) are off the "
            f"{inst.tick_size} tick grid of {inst.key} (first at line {_first_row(bad)}: "
            f"{price[bad][0]}); pass the right --tick-size"
        )
        raise DataError(msg)
    occupied = ob_raw >= 0
    ob_ticks, ob_off = inst.scaled_to_ticks(np.where(occupied, ob_raw, 0), PRICE_SCALE)
    if (ob_off & occupied).any():
        rows = np.asarray((ob_off & occupied).reshape(n, -1).any(axis=1))
        msg = (
            f"{ob_path}: price(s) off the {inst.tick_size} tick grid of {inst.key} (first at "
            f"line {_first_row(rows)}); pass the right --tick-size"
        )
        raise DataError(msg)
    sub_tick = off & (typ >= 5) & (typ <= 6)

    # dense indices: distinct book prices (sorted) and distinct visible order ids
    px = np.unique(np.concatenate([ticks[visible], ob_ticks[occupied]]))
    pidx = np.where(visible, np.searchsorted(px, ticks), -1)
    ob_x = np.where(occupied, np.searchsorted(px, ob_ticks), -1)
    uid, inv = np.unique(oid[visible], return_inverse=True)
    slot_of = np.full(n, -1, np.int64)
    slot_of[visible] = inv
    side = np.where(direction == -1, 1, 0).astype(np.int64)
    lots = _to_lots(msg_path, np.where(typ == 7, 0, size), inst.lot_size)
    lots = np.where(typ == 7, _status_codes(price), lots)
    ob_lots = _to_lots(ob_path, ob_q, inst.lot_size)

    ev, sc = build_nb(
        typ.astype(np.int64),
        slot_of,
        lots.astype(np.int64),
        pidx.astype(np.int64),
        side,
        ticks,
        oid.astype(np.int64),
        uid.astype(np.int64),
        px.astype(np.int64),
        ob_x.astype(np.int64),
        ob_lots.astype(np.int64),
    )

    # time: seconds after New York midnight (LOBSTER is NASDAQ whatever the venue label);
    # float64 holds 9 decimals of < 172800 s to within 0.02 ns, so rounding is exact
    ts = venue_midnight_ns(date, "XNAS") + np.rint(tsec * NS_PER_S).astype(np.int64)
    events = np.zeros(ev.shape[0], dtype=EVENT_DTYPE)
    events["exch_ts"] = ts[ev[:, 0]]
    events["local_ts"] = events["exch_ts"]
    events["price"] = ev[:, 3]
    events["qty"] = ev[:, 4]
    events["order_id"] = ev[:, 5].view(np.uint64)
    events["kind"] = ev[:, 1]
    events["side"] = ev[:, 2]
    events["flags"] = ev[:, 6]
    events = validate_events(events, report, l3=True)

    _notes(report, sc=sc, n=n, L=L, sub_tick=int(sub_tick.sum()), info=info, tsec=tsec)
    day = DayData(instrument=inst, date=date, events=events)
    return ImportResult(days=[day], report=report, instruments=[inst])


def _notes(
    report: ImportReport,
    *,
    sc: npt.NDArray[np.int64],
    n: int,
    L: int,
    sub_tick: int,
    info: re.Match[str] | None,
    tsec: npt.NDArray[np.float64],
) -> None:
    report.note(f"level {L}: book seeded with {int(sc[ST_SEED])} synthetic order(s) from row 0")
    report.note(
        f"{int(sc[ST_ROWS_CORR]):,} of {n:,} rows needed corrections to match the orderbook "
        f"file ({int(sc[ST_CORR_EV]):,} implied events: levels coming into view, changes "
        f"below level {L})"
    )
    report.note(
        f"{int(sc[ST_REWRITE]):,} messages named an order not in the book and were applied to "
        f"the synthetic quantity at their price ({int(sc[ST_PREP_EV]):,} implied prep events)"
    )
    for key, text in (
        (ST_KNOWN_SHORT, "executions/cancels larger than the tracked order (topped up first)"),
        (ST_DEL_MISMATCH, "deletes whose size differs from the tracked remainder"),
        (ST_DUP_ADD, "adds reusing a live order id (old order removed first)"),
        (ST_MISMATCH, "messages whose price/side differ from their order's (order re-created)"),
    ):
        if sc[key]:
            report.note(f"{int(sc[key]):,} {text}")
    if sub_tick:
        report.note(
            f"{sub_tick:,} hidden/cross executions at sub-tick prices (midpoint) stored at the "
            "tick below"
        )
    if info is not None and n:
        lo, hi = int(info["start"]) / 1000, int(info["end"]) / 1000
        outside = int(np.count_nonzero((tsec < lo) | (tsec > hi)))
        if outside:
            report.note(f"{outside:,} messages lie outside the window {lo:g}-{hi:g} s in the name")
