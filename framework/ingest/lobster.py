"""LOBSTER importer: a message file, with its orderbook file when there is one -> L3 events.

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
compiled L3 book (:mod:`framework.ingest.lobster_nb`, which describes it).

* **With the orderbook file** it is seeded from orderbook row 0 (``FLAG_SNAPSHOT |
  FLAG_FROM_BOOK | FLAG_IMPLIED``, ids ``SYNTH_ORDER_ID_BASE | n``), applies messages on
  unknown order ids to the synthetic quantity at their price (prep events ``FLAG_IMPLIED``)
  and, after each message, emits corrective events (``FLAG_FROM_BOOK | FLAG_IMPLIED``) so
  that the book after the message's last event -- the one with ``FLAG_LAST`` -- equals the
  orderbook row at all L levels.
* **Without one** (none given and none beside the message file) the book starts empty at the
  first message. An order the file cancels, executes or deletes but never adds rested before
  the first message (or joined below level L): it enters the book at its first message with
  its real id, by an implied add of the size the file later takes off it, so every later
  message acts on a known order and every execution stays a trade for the engine. Orders a
  message proves gone (the other side reached their price; more than L-1 levels in front of a
  level-L message) are removed by implied events. The report counts both; levels stay
  incomplete (deeper ones most) until their orders are seen.

Damage. A line that is not a message row (or not a valid one: type outside 1..7, time going
backwards, ...) is skipped with its orderbook row and counted as damage; an orderbook row
that is not valid leaves its message unchecked; a pair whose row counts differ (LOBSTER
writes one orderbook row per message) is damage too. Damage fails the import unless
``--allow-partial`` (see :func:`framework.ingest.base.run_import`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from framework.core.errors import DataError, FormatError
from framework.core.events import (
    EVENT_DTYPE,
    FLAG_IMPLIED,
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
    time_order_bad,
    validate_events,
)
from framework.ingest.lobster_nb import (
    ST_CORR_EV,
    ST_DEL_MISMATCH,
    ST_DUP_ADD,
    ST_KNOWN_SHORT,
    ST_MISMATCH,
    ST_PRE_MSGS,
    ST_PREP_EV,
    ST_REWRITE,
    ST_ROWS_CORR,
    ST_SEED,
    ST_UNCROSS,
    build_nb,
)
from framework.ingest.lobster_read import (
    MSG_LINE_RE,
    book_arrays,
    drop_damaged,
    head_lines,
    message_problems,
    read_rows,
    to_lots,
)

PRICE_SCALE = 10_000  #: LOBSTER prices are dollars x 10000

_NAME_RE = re.compile(
    r"^(?P<symbol>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<what>message|orderbook)_(?P<level>\d+)(?:\..*)?$"
)


# --- names and the orderbook file ------------------------------------------------------------


def _name_info(path: Path) -> re.Match[str] | None:
    return _NAME_RE.match(path.name)


def _orderbook_path(msg: Path, opts: ImportOptions) -> Path | None:
    """``--orderbook``, else the sibling named with 'orderbook' for 'message', else None."""
    given = opts.get("orderbook")
    if given is not None:
        return Path(given)
    if "message" in msg.name:
        head, _, tail = msg.name.rpartition("message")
        sibling = msg.with_name(f"{head}orderbook{tail}")
        if sibling.is_file():
            return sibling
    return None


def _status_codes(price: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.where(price < 0, STATUS_HALTED, np.where(price == 0, STATUS_QUOTING, STATUS_OPEN))


# --- the importer ------------------------------------------------------------------------


def import_lobster(paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Import one LOBSTER message file (``paths[0]``), with its orderbook file when there
    is one (``--orderbook``, else the file named like it with 'orderbook' for 'message')."""
    (msg_path,) = require_files(paths[:1])
    if len(paths) > 1:
        msg = f"LOBSTER imports one message file at a time; got {len(paths)} paths"
        raise DataError(msg)
    ob_path = _orderbook_path(msg_path, opts)
    if ob_path is not None:
        require_files([ob_path])
    report = ImportReport(source=str(msg_path))

    # names: symbol, date and the level count L
    info = _name_info(msg_path)
    head = head_lines(msg_path, "message")
    if 2 * sum(bool(MSG_LINE_RE.match(x)) for x in head) <= len(head):
        msg = (
            f"{msg_path}: first line {head[0][:80]!r} is not a LOBSTER message row "
            "(time,type,order id,size,price,direction), nor are most of the lines after it"
        )
        raise FormatError(msg)
    L = 0
    if ob_path is not None:
        widths = Counter(len(x.split(",")) for x in head_lines(ob_path, "orderbook"))
        ob_cols = widths.most_common(1)[0][0]
        if ob_cols % 4 != 0:
            msg = f"{ob_path}: {ob_cols} columns; a LOBSTER orderbook has 4 per level"
            raise FormatError(msg)
        L = ob_cols // 4
        for p_, inf in ((msg_path, info), (ob_path, _name_info(ob_path))):
            if inf is not None and int(inf["level"]) != L:
                msg = (
                    f"{p_}: the name says level {inf['level']} but the orderbook "
                    f"{ob_path.name} has {ob_cols} columns = level {L}; pass the matching pair"
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
    msgs = read_rows(msg_path, "message", [pa.float64(), i64, i64, i64, i64, i64])
    report.rows_read = msgs.n
    tsec: npt.NDArray[np.float64] = msgs.cols[0]
    typ: npt.NDArray[np.int64] = msgs.cols[1]
    oid: npt.NDArray[np.int64] = msgs.cols[2]
    size: npt.NDArray[np.int64] = msgs.cols[3]
    price: npt.NDArray[np.int64] = msgs.cols[4]
    direction: npt.NDArray[np.int64] = msgs.cols[5]
    if not msgs.good.any():
        msg = f"{msg_path}: no line is a LOBSTER message row; check the file"
        raise FormatError(msg)
    keep = drop_damaged(report, np.ones(msgs.n, np.bool_), msgs.line,
                         [("unparseable line", ~msgs.good)], msg_path.name, rows=True)
    keep = drop_damaged(report, keep, msgs.line, message_problems(
        tsec=tsec, typ=typ, oid=oid, size=size, price=price, direction=direction),
        msg_path.name, rows=True)
    ticks, off = inst.scaled_to_ticks(price, PRICE_SCALE)
    keep = drop_damaged(report, keep, msgs.line, [(
        f"visible order price off the {inst.tick_size} tick grid of {inst.key} (a damaged "
        "price, or pass the right --tick-size)", off & (typ <= 4))], msg_path.name, rows=True)
    # LOBSTER files are in time order: keep the longest run that is, drop the rest
    back = np.zeros(msgs.n, np.bool_)
    back[keep] = time_order_bad(np.rint(tsec[keep] * NS_PER_S).astype(np.int64))
    keep = drop_damaged(report, keep, msgs.line, [("out of time order", back)], msg_path.name,
                         rows=True)

    n_ob = 0
    ob_raw: npt.NDArray[np.int64] = np.zeros((msgs.n, 2, L), np.int64)
    ob_q: npt.NDArray[np.int64] = np.zeros((msgs.n, 2, L), np.int64)
    ob_ok: npt.NDArray[np.bool_] = np.zeros(msgs.n, np.bool_)
    if ob_path is not None:
        book = read_rows(ob_path, "orderbook", [i64] * (4 * L))
        n_ob = book.n
        _pair_lengths(report, msg_path, ob_path, msgs.n, n_ob)
        m = min(msgs.n, n_ob)
        raw_p, raw_q, problems = book_arrays([c[:m] for c in book.cols], L)
        ob_ok[:m] = drop_damaged(report, np.ones(m, np.bool_), book.line[:m],
                                  [("unparseable line", ~book.good[:m]), *problems],
                                  ob_path.name, rows=False)
        ob_raw[:m], ob_q[:m] = raw_p, raw_q
        occupied = (ob_raw >= 0) & ob_ok[:, None, None]
        ob_ticks, ob_off = inst.scaled_to_ticks(np.where(occupied, ob_raw, 0), PRICE_SCALE)
        off_rows = np.asarray((ob_off & occupied).reshape(msgs.n, -1).any(axis=1))
        ob_ok = drop_damaged(report, ob_ok, np.concatenate(
            [book.line[:m], np.zeros(msgs.n - m, np.int64)]), [(
                f"price off the {inst.tick_size} tick grid of {inst.key}", off_rows)],
            ob_path.name, rows=False)
    else:
        report.note(
            f"no orderbook file (none given, no {_sibling_name(msg_path)} beside it): the book "
            "starts empty at the first message and is not checked against LOBSTER's; levels "
            "hold only orders the file shows, so they are incomplete (deeper levels most) "
            "until every resting order has been seen"
        )

    # the rows that stay: messages, and the orderbook row of each (unusable rows unchecked)
    idx = np.flatnonzero(keep)
    tsec, typ, oid, size, price = tsec[idx], typ[idx], oid[idx], size[idx], price[idx]
    direction, ticks, off = direction[idx], ticks[idx], off[idx]
    ob_raw, ob_q, ob_ok = ob_raw[idx], ob_q[idx], ob_ok[idx]
    n = len(idx)
    occupied = (ob_raw >= 0) & ob_ok[:, None, None]
    ob_ticks, _ = inst.scaled_to_ticks(np.where(occupied, ob_raw, 0), PRICE_SCALE)
    sub_tick = off & (typ >= 5) & (typ <= 6)
    visible = typ <= 4

    # dense indices: distinct book prices (sorted) and distinct visible order ids
    px = np.unique(np.concatenate([ticks[visible], ob_ticks[occupied]]))
    pidx = np.where(visible, np.searchsorted(px, ticks), -1)
    ob_x = np.where(occupied, np.searchsorted(px, ob_ticks), -1)
    uid, inv = np.unique(oid[visible], return_inverse=True)
    slot_of = np.full(n, -1, np.int64)
    slot_of[visible] = inv
    side = np.where(direction == -1, 1, 0).astype(np.int64)
    lots = to_lots(msg_path, np.where(typ == 7, 0, size), inst.lot_size)
    lots = np.where(typ == 7, _status_codes(price), lots)
    ob_lots = to_lots(ob_path or msg_path, np.where(occupied, ob_q, 0), inst.lot_size)
    hidden_q = _never_added(typ, slot_of, lots, uid.shape[0]) if ob_path is None \
        else np.zeros(uid.shape[0], np.int64)

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
        ob_ok,
        hidden_q,
        L or (int(info["level"]) if info else 0),
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
    report.events_made = len(events)
    events = validate_events(events, report, l3=True)
    report.rows_imported = int(np.count_nonzero((events["flags"] & FLAG_IMPLIED) == 0))

    _notes(report, sc=sc, n=n, L=L, sub_tick=int(sub_tick.sum()), info=info, tsec=tsec,
           checked=int(ob_ok.sum()), hidden_q=hidden_q)
    day = DayData(instrument=inst, date=date, events=events)
    return ImportResult(days=[day], report=report, instruments=[inst])


def _sibling_name(msg: Path) -> str:
    head, _, tail = msg.name.rpartition("message")
    return f"{head}orderbook{tail}" if head or tail else "orderbook file"


def _pair_lengths(report: ImportReport, msg: Path, ob: Path, n_msg: int, n_ob: int) -> None:
    """LOBSTER writes one orderbook row per message: a pair of other lengths lost rows."""
    if n_msg == n_ob:
        return
    longer, shorter = (ob, msg) if n_ob > n_msg else (msg, ob)
    what = (f"the {n_msg:,} messages are checked against the first {n_msg:,} orderbook rows"
            if n_ob > n_msg else
            f"all messages are imported, the last {n_msg - n_ob:,} without the orderbook check")
    report.damage(
        f"{longer.name} has {abs(n_ob - n_msg):,} more rows than {shorter.name} ({n_msg:,} "
        f"messages, {n_ob:,} orderbook rows) though LOBSTER writes one orderbook row per "
        f"message: {shorter.name} looks cut (or {longer.name} gained lines); with "
        f"--allow-partial {what}",
        at=f"{longer.name} line {min(n_msg, n_ob) + 1:,}")


def _never_added(
    typ: npt.NDArray[np.int64], slot_of: npt.NDArray[np.int64], lots: npt.NDArray[np.int64],
    n_ids: int,
) -> npt.NDArray[np.int64]:
    """Lots per order slot for orders the file cancels, executes or deletes before (or
    without) adding them: they rested before the first message, or joined below level L
    where a level-L file does not show them. The size is what the file takes off the order
    up to its delete: all the file tells of it. 0 for every other order."""
    n = typ.shape[0]
    rows = np.arange(n)
    vis = slot_of >= 0
    first_add = np.full(n_ids, n, np.int64)
    np.minimum.at(first_add, slot_of[vis & (typ == 1)], rows[vis & (typ == 1)])
    first_del = np.full(n_ids, n, np.int64)
    np.minimum.at(first_del, slot_of[vis & (typ == 3)], rows[vis & (typ == 3)])
    hit = vis & (typ >= 2) & (typ <= 4)
    s = slot_of[hit]
    before = (rows[hit] < first_add[s]) & (rows[hit] <= first_del[s])
    total = np.zeros(n_ids, np.int64)
    np.add.at(total, s[before], lots[hit][before])
    return total


def _notes(
    report: ImportReport,
    *,
    sc: npt.NDArray[np.int64],
    n: int,
    L: int,
    sub_tick: int,
    info: re.Match[str] | None,
    tsec: npt.NDArray[np.float64],
    checked: int,
    hidden_q: npt.NDArray[np.int64],
) -> None:
    if L:
        report.note(f"level {L}: book seeded with {int(sc[ST_SEED])} synthetic order(s) from "
                    "row 0")
        report.note(
            f"{int(sc[ST_ROWS_CORR]):,} of {n:,} rows needed corrections to match the orderbook "
            f"file ({int(sc[ST_CORR_EV]):,} implied events: levels coming into view, changes "
            f"below level {L})"
        )
        if checked < n:
            report.note(f"{n - checked:,} of {n:,} messages have no usable orderbook row and "
                        "were imported without the orderbook check")
    unseen = int(np.count_nonzero(hidden_q))
    if unseen:
        report.note(
            f"{unseen:,} orders ({int(hidden_q.sum()):,} lots, {int(sc[ST_PRE_MSGS]):,} "
            "messages) are cancelled, executed or deleted but never added in the file: they "
            "rested before the first message (or joined below the file's levels). Each enters "
            "the book at its first message, by an implied add (FLAG_IMPLIED) of its real id "
            "with the size the file later takes off it"
        )
    if sc[ST_UNCROSS]:
        report.note(
            f"{int(sc[ST_UNCROSS]):,} implied removals of orders a later message proved gone "
            "(the other side reached their price, or a message showed more than L-1 levels "
            "in front of it): they were cancelled below the file's levels, where it shows "
            "no messages"
        )
    if sc[ST_REWRITE]:
        report.note(
            f"{int(sc[ST_REWRITE]):,} messages named an order not in the book and were applied "
            f"to the synthetic quantity at their price ({int(sc[ST_PREP_EV]):,} implied prep "
            "events)"
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
