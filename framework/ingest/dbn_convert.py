"""DBN records of one schema -> events (see :mod:`framework.ingest.dbn` for the mapping).

The records arrive as numpy structured arrays in the ``databento_dbn`` layout of the record
class (``RecordClass._dtypes``), already upgraded to DBN v3 and cut to one instrument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import databento_dbn as dbn
import numpy as np
import numpy.typing as npt

from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_BAD_TS,
    FLAG_LAST,
    FLAG_MAYBE_BAD_BOOK,
    FLAG_SNAPSHOT,
    FLAG_TOB,
    KIND_BBO,
    KIND_STATUS,
    KIND_TRADE,
    SELL,
    STATUS_CLOSED,
    STATUS_HALTED,
    STATUS_INFO,
    STATUS_OPEN,
    STATUS_PAUSED,
    STATUS_PRE_OPEN,
    STATUS_QUOTING,
    STATUS_UNKNOWN,
    EventArray,
)
from framework.ingest.base import ImportReport
from framework.ingest.dbn_nb import (
    MBO_CANCEL_UNKNOWN,
    MBO_FILLS,
    MBO_IMPLIED_CLEARS,
    MBO_MODIFY_ADDS,
    MBO_NO_SIDE,
    MBO_NONE,
    MBO_TOB,
    MBO_UNKNOWN_ACTION,
    MBO_ZERO_SIZE,
    mbo_to_events_nb,
    mbp_to_events_nb,
)

Records = npt.NDArray[np.void]

_DBN_FLAGS = (
    (dbn.F_LAST, FLAG_LAST),
    (dbn.F_SNAPSHOT, FLAG_SNAPSHOT),
    (dbn.F_TOB, FLAG_TOB),
    (dbn.F_BAD_TS_RECV, FLAG_BAD_TS),
    (dbn.F_MAYBE_BAD_BOOK, FLAG_MAYBE_BAD_BOOK),
)


def _map_flags(raw: npt.NDArray[Any]) -> npt.NDArray[np.uint32]:
    raw = raw.astype(np.uint32)
    out = np.zeros(raw.shape, np.uint32)
    for bit, flag in _DBN_FLAGS:
        out |= np.where(raw & bit, np.uint32(flag), np.uint32(0))
    return out


def _side(raw: npt.NDArray[Any]) -> npt.NDArray[np.int8]:
    b = raw.view(np.uint8)
    return np.where(b == ord("B"), BUY, np.where(b == ord("A"), SELL, 0)).astype(np.int8)


def _columns_to_events(cols: tuple[Any, ...]) -> EventArray:
    ex, lo, px, qt, oid, kd, sd, fl = cols[:8]
    ev = np.zeros(len(ex), dtype=EVENT_DTYPE)
    ev["exch_ts"], ev["local_ts"], ev["price"], ev["qty"] = ex, lo, px, qt
    ev["order_id"], ev["kind"], ev["side"], ev["flags"] = oid, kd, sd, fl
    return ev


def _level_arrays(rec: Records, prefix: str) -> tuple[Any, Any]:
    names = sorted(n for n in rec.dtype.names or () if n.startswith(f"{prefix}_px_"))
    px = np.stack([rec[n].astype(np.int64) for n in names], axis=1)
    sz = np.stack([rec[n.replace("_px_", "_sz_")].astype(np.int64) for n in names], axis=1)
    return np.ascontiguousarray(px), np.ascontiguousarray(sz)


def _interleave(parts: Sequence[EventArray]) -> EventArray:
    """Events of several per-record streams, record by record (part order inside a record)."""
    stacked = np.stack(parts, axis=1)  # (records, parts)
    return stacked.reshape(-1)


def _top_events(rec: Records, with_trade: bool, report: ImportReport
                ) -> EventArray:
    """Bid and ask KIND_BBO per record (undefined sides dropped), then an optional trade."""
    n = len(rec)
    base = np.zeros(n, dtype=EVENT_DTYPE)
    base["exch_ts"] = rec["ts_event"].astype(np.int64)
    base["local_ts"] = rec["ts_recv"].astype(np.int64)
    flags = _map_flags(rec["flags"]) & ~np.uint32(FLAG_LAST)
    parts, keep = [], []
    for side, prefix in ((BUY, "bid"), (SELL, "ask")):
        e = base.copy()
        e["kind"], e["side"] = KIND_BBO, side
        e["price"] = rec[f"{prefix}_px_00"]
        e["qty"] = rec[f"{prefix}_sz_00"].astype(np.int64)
        e["flags"] = flags | FLAG_TOB
        parts.append(e)
        keep.append(rec[f"{prefix}_px_00"] != dbn.UNDEF_PRICE)
    if with_trade:
        e = base.copy()
        e["kind"], e["side"] = KIND_TRADE, _side(rec["side"])
        e["price"], e["qty"], e["flags"] = rec["price"], rec["size"].astype(np.int64), flags
        parts.append(e)
        keep.append(np.ones(n, bool) if "action" not in (rec.dtype.names or ())
                    else rec["action"] == b"T")
    ev = _interleave(parts)
    kept = np.stack(keep, axis=1).reshape(-1)
    # FLAG_LAST on the last kept event of each record
    width = len(parts)
    idx = np.arange(len(ev)).reshape(n, width)
    last_pos = np.where(kept.reshape(n, width), idx, -1).max(axis=1)
    ev["flags"][last_pos[last_pos >= 0]] |= FLAG_LAST
    skipped = int(np.count_nonzero(last_pos < 0))
    if skipped:
        report.note(f"{skipped} top-of-book records had no defined price on either side")
    return ev[kept]


# DBN StatusAction -> STATUS_*
_STATUS_ACTION = {
    0: STATUS_UNKNOWN, 1: STATUS_PRE_OPEN, 2: STATUS_PRE_OPEN, 3: STATUS_QUOTING,
    4: STATUS_QUOTING, 5: STATUS_QUOTING, 6: STATUS_QUOTING, 7: STATUS_OPEN,
    8: STATUS_HALTED, 9: STATUS_PAUSED, 10: STATUS_HALTED, 11: STATUS_QUOTING,
    12: STATUS_CLOSED, 13: STATUS_CLOSED, 14: STATUS_INFO, 15: STATUS_HALTED,
}


def status_code(action: int, is_trading: bytes, is_quoting: bytes) -> int:
    """A STATUS_* code for a DBN status record.

    The action names the phase; ``is_trading`` (Y/N/~) says whether matching is on, and wins
    where the two disagree: CME sends the reopen after a halt as a "new price indication"
    with ``is_trading = Y``, which is trading, not quoting.
    """
    code = _STATUS_ACTION.get(int(action), STATUS_UNKNOWN)
    if code == STATUS_INFO:
        return code
    if is_trading == b"Y" and code in (STATUS_UNKNOWN, STATUS_PRE_OPEN, STATUS_QUOTING):
        return STATUS_OPEN
    if is_trading == b"N" and code in (STATUS_OPEN, STATUS_UNKNOWN):
        return STATUS_QUOTING if is_quoting == b"Y" else STATUS_HALTED
    return code


def _status_events(rec: Records) -> EventArray:
    ev = np.zeros(len(rec), dtype=EVENT_DTYPE)
    ev["exch_ts"] = rec["ts_event"].astype(np.int64)
    ev["local_ts"] = rec["ts_recv"].astype(np.int64)
    ev["kind"] = KIND_STATUS
    ev["flags"] = FLAG_LAST
    ev["qty"] = [status_code(a, t, q) for a, t, q in
                 zip(rec["action"], rec["is_trading"], rec["is_quoting"], strict=True)]
    # the raw venue codes, packed: action | reason << 16 | trading_event << 32
    ev["order_id"] = (rec["action"].astype(np.uint64)
                      | (rec["reason"].astype(np.uint64) << np.uint64(16))
                      | (rec["trading_event"].astype(np.uint64) << np.uint64(32)))
    return ev


#: report note per MBO counter (see :func:`framework.ingest.dbn_nb.mbo_to_events_nb`)
_MBO_NOTES = (
    (MBO_FILLS, "MBO fill records (F) are a resting order's share of a trade: they change no "
                "book (the C or M sent with them does) and the trade's T record is its print; "
                "not stored"),
    (MBO_NONE, "MBO records with action N (none) carry no book change; not stored"),
    (MBO_MODIFY_ADDS, "MBO modifies named orders not in the book; taken as adds, as "
                      "Databento's book does"),
    (MBO_CANCEL_UNKNOWN, "MBO cancels name orders not added in this import (e.g. added "
                         "before the file starts); kept as KIND_CANCEL (qty = size removed)"),
    (MBO_ZERO_SIZE, "MBO add, cancel or trade records of size 0 change no book and print "
                    "nothing; not stored"),
    (MBO_NO_SIDE, "MBO add or modify records have side N, so no book side to rest on; not "
                  "stored"),
    (MBO_UNKNOWN_ACTION, "MBO records have an action that is none of A M C R T F N; not "
                         "stored"),
    (MBO_IMPLIED_CLEARS, "MBO snapshots began without a clear (R): the book was cleared "
                         "before each (KIND_CLEAR with FLAG_IMPLIED), as a snapshot is the "
                         "whole book"),
    (MBO_TOB, "MBO adds carry F_TOB (a top-of-book venue): each replaces its side's level, "
              "stored as KIND_CLEAR of the side then KIND_BBO"),
)


def _mbo_events(rec: Records, report: ImportReport) -> EventArray:
    *cols, counts = mbo_to_events_nb(
        rec["ts_event"].astype(np.int64), rec["ts_recv"].astype(np.int64),
        rec["action"].view(np.uint8), rec["side"].view(np.uint8), rec["price"].astype(np.int64),
        rec["size"].astype(np.int64), rec["order_id"].astype(np.uint64),
        _map_flags(rec["flags"]),
    )
    for idx, text in _MBO_NOTES:
        if counts[idx]:
            report.note(f"{int(counts[idx]):,} {text}")
    return _columns_to_events(tuple(cols))


def _mbp_events(rec: Records) -> EventArray:
    bpx, bsz = _level_arrays(rec, "bid")
    apx, asz = _level_arrays(rec, "ask")
    out = mbp_to_events_nb(
        rec["ts_event"].astype(np.int64), rec["ts_recv"].astype(np.int64),
        rec["action"].view(np.uint8), rec["side"].view(np.uint8), rec["price"].astype(np.int64),
        rec["size"].astype(np.int64), _map_flags(rec["flags"]) & ~np.uint32(FLAG_LAST),
        bpx, bsz, apx, asz,
    )
    return _columns_to_events(out)


def _trade_events(rec: Records) -> EventArray:
    ev = np.zeros(len(rec), dtype=EVENT_DTYPE)
    ev["exch_ts"] = rec["ts_event"].astype(np.int64)
    ev["local_ts"] = rec["ts_recv"].astype(np.int64)
    ev["price"], ev["qty"] = rec["price"], rec["size"].astype(np.int64)
    ev["kind"], ev["side"] = KIND_TRADE, _side(rec["side"])
    ev["flags"] = _map_flags(rec["flags"]) | FLAG_LAST
    return ev


#: record classes that are not tick events -> what they hold
NOT_EVENTS: dict[type, str] = {
    dbn.OHLCVMsg: "bars",
    dbn.StatMsg: "statistics",
    dbn.ImbalanceMsg: "auction imbalance statistics",
}
#: record classes skipped without a note (control and symbology records)
SILENT: tuple[type, ...] = (dbn.SymbolMappingMsg, dbn.SystemMsg, dbn.ErrorMsg)


def events_for(cls: type, rec: Records, schema: str,
                report: ImportReport) -> EventArray | None:
    """Events for one instrument's records of one class, or None if the class is not events."""
    if cls is dbn.MBOMsg:
        return _mbo_events(rec, report)
    if cls is dbn.MBP1Msg and schema == "tbbo":
        return _top_events(rec, True, report)
    if cls in (dbn.MBP1Msg, dbn.MBP10Msg):
        return _mbp_events(rec)
    if cls is dbn.TradeMsg:
        return _trade_events(rec)
    if cls in (dbn.BBOMsg, dbn.CBBOMsg):
        return _top_events(rec, False, report)
    if cls is dbn.CMBP1Msg:
        return _top_events(rec, True, report)
    if cls is dbn.StatusMsg:
        return _status_events(rec)
    return None
