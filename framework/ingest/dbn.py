"""Databento DBN importer: MBO, MBP-1/10, trades, TBBO, BBO, status and definitions.

Decoding is done by the official ``databento_dbn`` package (versions 1-3 are upgraded to v3
on decode); zstd is undone with ``zstandard`` so a truncated file is detected exactly. Each
decoded record is turned into bytes and read with the package's own numpy layout
(``RecordClass._dtypes``), then mapped to events in bulk (numba kernels for MBO and MBP).

Mapping choices (see the docstrings of the kernels in
:mod:`framework.ingest.dbn_nb` for the details):

* ``exch_ts = ts_event``, ``local_ts = ts_recv`` (the capture server's receive time).
* Prices: int64 in 1e-9 units -> ticks of the instrument; off-grid prices are rejected
  ("price off tick grid"), ``UNDEF_PRICE`` on a priced event is rejected ("undefined price").
  Tick size: ``--tick-size``, else the instrument's definition record (min_price_increment),
  else a per-dataset default (US equity venues 0.01, CME equity-index futures 0.25).
* Sizes are lots of 1. Sides: 'B' bid = BUY, 'A' ask = SELL, 'N' = NO_SIDE; on trades the
  side is the aggressor's, as DBN defines it.
* Flags: LAST, SNAPSHOT, TOB, BAD_TS_RECV, MAYBE_BAD_BOOK map to FLAG_LAST, FLAG_SNAPSHOT,
  FLAG_TOB, FLAG_BAD_TS, FLAG_MAYBE_BAD_BOOK. MBO keeps DBN's LAST (it marks the end of the
  venue's event); every other schema sets FLAG_LAST on the last event a record produced.
* MBO: A add, M modify (new price/size), C cancel (qty = size removed; KIND_DELETE when it
  removes an order seen in full), F fill -> KIND_EXECUTE (its companion C is absorbed), T
  trade -> KIND_TRADE, R -> KIND_CLEAR, N skipped. Orders known only mid-stream make the
  shared order-id check meaningless, so MBO is validated with ``l3=False``.
* MBP-1/MBP-10: KIND_LEVEL diffs that keep an L2 book equal to the record's top-N levels
  (qty 0 removes a level that left the visible book), plus KIND_TRADE for action T.
* trades -> KIND_TRADE; tbbo -> the pre-trade bid and ask as KIND_BBO, then KIND_TRADE;
  bbo-1s/1m, cbbo-1s, cmbp-1 -> KIND_BBO per defined side (cmbp-1 action T also a trade);
  the last-trade fields of bbo/cbbo are not emitted (they repeat the previous interval's
  trade). status -> KIND_STATUS. ohlcv, statistics, imbalance are not tick events and are
  skipped with a note. definition -> :class:`Instrument` objects.
* One :class:`DayData` per instrument per UTC day of ``local_ts`` (Databento's own daily
  files are cut at UTC midnight, so a day here matches one of theirs).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import databento_dbn as dbn
import numpy as np
import numpy.typing as npt
import zstandard

from framework.core.errors import ConfigError, DataError, FormatError
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_BAD_TS,
    FLAG_LAST,
    FLAG_MAYBE_BAD_BOOK,
    FLAG_SNAPSHOT,
    FLAG_TOB,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
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
from framework.core.instrument import Instrument
from framework.core.timeutil import NS_PER_DAY
from framework.ingest.base import (
    DayData,
    ImportOptions,
    ImportReport,
    ImportResult,
    require_files,
    resolve_instrument,
    validate_events,
)
from framework.ingest.dbn_nb import mbo_to_events_nb, mbp_to_events_nb

PRICE_SCALE = 1_000_000_000  #: DBN FIXED_PRICE_SCALE

I64 = npt.NDArray[np.int64]


# --- decoding ---------------------------------------------------------------------------

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DBZ_MAGIC = b"\x50\x2a\x4d\x18"  # a zstd skippable frame: how legacy .dbz files begin
_CHUNK = 1 << 22

_DBN_FLAGS = (
    (dbn.F_LAST, FLAG_LAST),
    (dbn.F_SNAPSHOT, FLAG_SNAPSHOT),
    (dbn.F_TOB, FLAG_TOB),
    (dbn.F_BAD_TS_RECV, FLAG_BAD_TS),
    (dbn.F_MAYBE_BAD_BOOK, FLAG_MAYBE_BAD_BOOK),
)


@dataclasses.dataclass
class _Decoded:
    """One DBN file: its metadata and its records grouped by record class."""

    path: Path
    metadata: Any
    records: dict[type, npt.NDArray[np.void]]
    definitions: list[Any]
    n_records: int


def _plain_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, zstd frames undone; raises FormatError on a cut or corrupt frame."""
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        if head != _ZSTD_MAGIC:
            while chunk := fh.read(_CHUNK):
                yield chunk
            return
        dctx = zstandard.ZstdDecompressor()
        dobj = dctx.decompressobj()
        in_frame = False
        try:
            while chunk := fh.read(_CHUNK):
                data = chunk
                while data:
                    out = dobj.decompress(data)
                    in_frame = True
                    if out:
                        yield out
                    if dobj.eof:
                        data = dobj.unused_data
                        dobj = dctx.decompressobj()
                        in_frame = False
                    else:
                        data = b""
        except zstandard.ZstdError as exc:
            msg = f"{path}: corrupt zstd data ({exc}); the file is damaged, download it again"
            raise FormatError(msg) from exc
        if in_frame:
            msg = (
                f"{path}: truncated: the last zstd frame ends early; the file was cut "
                "(an interrupted download?), download it again"
            )
            raise FormatError(msg)


def _no_header_error(path: Path, head: bytes) -> FormatError:
    if head.startswith(_DBZ_MAGIC) or path.suffix == ".dbz":
        what = "it is a legacy DBZ file (DBN's predecessor), which current decoders cannot read"
        todo = "download the data again as DBN"
    elif ".frag" in path.name:
        what = "it is a record fragment without the metadata that names dataset and symbols"
        todo = "import the complete .dbn file it was cut from"
    else:
        what = f"it does not start with 'DBN' (first bytes {head[:8]!r})"
        todo = "check that this is a Databento DBN file (.dbn or .dbn.zst)"
    msg = f"{path}: has no DBN metadata header; {what}; {todo}"
    return FormatError(msg)


def _decode_file(path: Path) -> _Decoded:
    """Decode a whole DBN file with the official decoder (v1/v2 upgraded to v3)."""
    decoder = dbn.DBNDecoder(
        upgrade_policy=dbn.VersionUpgradePolicy.UPGRADE_TO_V3, compression=dbn.Compression.NONE
    )
    head = b""
    metadata = None
    raw: dict[type, list[bytes]] = {}
    definitions: list[Any] = []
    n = 0
    try:
        for chunk in _plain_chunks(path):
            if len(head) < 3:
                head += chunk[:8]
                if len(head) >= 3 and not head.startswith(b"DBN"):
                    raise _no_header_error(path, head)
            try:
                recs = decoder.write_and_decode(chunk)
            except dbn.DBNError as exc:
                if metadata is None:
                    raise _no_header_error(path, head) from exc
                msg = f"{path}: corrupt DBN data after {n} records ({exc}); download it again"
                raise FormatError(msg) from exc
            for r in recs:
                if isinstance(r, dbn.Metadata):
                    metadata = r
                    continue
                n += 1
                if isinstance(r, dbn.InstrumentDefMsg):
                    definitions.append(r)
                else:
                    raw.setdefault(type(r), []).append(bytes(r))
    except OSError as exc:
        msg = f"{path}: cannot read ({exc})"
        raise DataError(msg) from exc
    if metadata is None:
        if not head:
            msg = f"{path}: empty file; nothing to import"
            raise FormatError(msg)
        if not head.startswith(b"DBN"):
            raise _no_header_error(path, head)
        msg = f"{path}: truncated inside the DBN metadata header; download the file again"
        raise FormatError(msg)
    left = len(decoder.buffer())
    if left:
        msg = (
            f"{path}: truncated: {left} bytes after record {n} do not make a whole record; "
            "the file was cut, download it again"
        )
        raise FormatError(msg)
    records = {
        cls: np.frombuffer(b"".join(chunks), dtype=np.dtype(cls._dtypes))
        for cls, chunks in raw.items()
    }
    return _Decoded(path, metadata, records, definitions, n)


# --- instruments --------------------------------------------------------------------------

_EQUITY_VENUES = frozenset(
    ["XNAS", "XNYS", "XASE", "ARCX", "BATS", "BATY", "EDGA", "EDGX", "IEXG", "MEMX",
     "EPRL", "XBOS", "XPSX", "XCHI", "XCIS", "LTSE", "DBEQ", "EQUS"]
)
#: CME products whose tick we know when no definition record is given (root -> tick).
_GLBX_TICKS = {"ES": "0.25", "MES": "0.25", "NQ": "0.25", "MNQ": "0.25"}
_FUTURE_RE = re.compile(r"^([A-Z0-9]+?)[FGHJKMNQUVXZ]\d{1,2}$")
_ASSET_CLASS = {"K": "equity", "F": "future", "C": "option", "P": "option", "X": "fx",
                "S": "future"}


def _venue_of(dataset: str) -> str:
    return dataset.split(".", maxsplit=1)[0].upper() or "DBN"


def _scaled(value: int) -> Decimal | None:
    """A DBN 1e-9 fixed-point value as a decimal, or None when undefined or not positive."""
    if value is None or value >= dbn.UNDEF_PRICE or value <= 0:
        return None
    return (Decimal(int(value)) / PRICE_SCALE).normalize()


def _definition_fields(d: Any) -> dict[str, Any]:
    """Instrument fields from a DBN InstrumentDefMsg."""
    fields: dict[str, Any] = {}
    cls = str(getattr(d.instrument_class, "value", d.instrument_class) or "")
    fields["asset_class"] = _ASSET_CLASS.get(cls, "equity")
    tick = _scaled(d.min_price_increment)
    if tick is not None:
        fields["tick_size"] = tick
    mult = _scaled(d.unit_of_measure_qty)
    if mult is None and 0 < d.contract_multiplier < 2**31 - 1:
        mult = Decimal(d.contract_multiplier)
    if mult is not None:
        fields["multiplier"] = mult
    if d.currency:
        fields["currency"] = d.currency
    extra = {"dbn_instrument_id": int(d.instrument_id), "dbn_instrument_class": cls,
             "exchange": d.exchange}
    if 0 < d.min_lot_size_round_lot < 2**31 - 1:
        extra["round_lot"] = int(d.min_lot_size_round_lot)
    if d.expiration < 2**64 - 1:
        extra["expiration_ns"] = int(d.expiration)
    fields["extra"] = extra
    return fields


def _default_fields(venue: str, symbol: str) -> dict[str, Any] | None:
    """Tick size and asset class by dataset when there is no definition record."""
    if venue in _EQUITY_VENUES:
        return {"asset_class": "equity", "tick_size": "0.01"}
    if venue == "GLBX":
        m = _FUTURE_RE.match(symbol)
        root = m.group(1) if m else symbol
        if root in _GLBX_TICKS:
            return {"asset_class": "future", "tick_size": _GLBX_TICKS[root]}
    return None


class _Symbols:
    """instrument_id -> raw symbol, from the metadata's symbology mappings."""

    def __init__(self, metadata: Any) -> None:
        self.by_id: dict[int, list[tuple[dt.date, dt.date, str]]] = {}
        stype_out = str(getattr(metadata.stype_out, "value", metadata.stype_out))
        for raw, intervals in (metadata.mappings or {}).items():
            for iv in intervals:
                if stype_out == "instrument_id" and str(iv["symbol"]).isdigit():
                    iid, sym = int(iv["symbol"]), raw
                elif str(raw).isdigit():  # mapped the other way round
                    iid, sym = int(raw), str(iv["symbol"])
                else:
                    continue
                self.by_id.setdefault(iid, []).append((iv["start_date"], iv["end_date"], sym))

    def get(self, iid: int, day: dt.date) -> str | None:
        spans = self.by_id.get(iid)
        if not spans:
            return None
        for start, end, sym in spans:
            if start <= day < end:
                return sym
        return spans[0][2]


# --- per-schema conversion -------------------------------------------------------------------


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


def _level_arrays(rec: npt.NDArray[np.void], prefix: str) -> tuple[Any, Any]:
    names = sorted(n for n in rec.dtype.names or () if n.startswith(f"{prefix}_px_"))
    px = np.stack([rec[n].astype(np.int64) for n in names], axis=1)
    sz = np.stack([rec[n.replace("_px_", "_sz_")].astype(np.int64) for n in names], axis=1)
    return np.ascontiguousarray(px), np.ascontiguousarray(sz)


def _interleave(parts: list[EventArray]) -> EventArray:
    """Events of several per-record streams, record by record (part order inside a record)."""
    stacked = np.stack(parts, axis=1)  # (records, parts)
    return stacked.reshape(-1)


def _top_events(rec: npt.NDArray[np.void], with_trade: bool, report: ImportReport
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


def _status_events(rec: npt.NDArray[np.void]) -> EventArray:
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


def _mbo_events(rec: npt.NDArray[np.void], report: ImportReport) -> EventArray:
    out = mbo_to_events_nb(
        rec["ts_event"].astype(np.int64), rec["ts_recv"].astype(np.int64),
        rec["action"].view(np.uint8), rec["side"].view(np.uint8), rec["price"].astype(np.int64),
        rec["size"].astype(np.int64), rec["order_id"].astype(np.uint64),
        _map_flags(rec["flags"]),
    )
    n_none, n_absorbed, n_unknown = out[8:]
    if n_none:
        report.note(f"{n_none} MBO records with action N (none) carry no book change; skipped")
    if n_absorbed:
        report.note(f"{n_absorbed} MBO cancels that only remove a fill's quantity were merged "
                    "into the fill's KIND_EXECUTE")
    if n_unknown:
        report.note(f"{n_unknown} MBO cancels name orders not added in this import; kept as "
                    "KIND_CANCEL (qty = size removed)")
    return _columns_to_events(out)


def _mbp_events(rec: npt.NDArray[np.void]) -> EventArray:
    bpx, bsz = _level_arrays(rec, "bid")
    apx, asz = _level_arrays(rec, "ask")
    out = mbp_to_events_nb(
        rec["ts_event"].astype(np.int64), rec["ts_recv"].astype(np.int64),
        rec["action"].view(np.uint8), rec["side"].view(np.uint8), rec["price"].astype(np.int64),
        rec["size"].astype(np.int64), _map_flags(rec["flags"]) & ~np.uint32(FLAG_LAST),
        bpx, bsz, apx, asz,
    )
    return _columns_to_events(out)


def _trade_events(rec: npt.NDArray[np.void]) -> EventArray:
    ev = np.zeros(len(rec), dtype=EVENT_DTYPE)
    ev["exch_ts"] = rec["ts_event"].astype(np.int64)
    ev["local_ts"] = rec["ts_recv"].astype(np.int64)
    ev["price"], ev["qty"] = rec["price"], rec["size"].astype(np.int64)
    ev["kind"], ev["side"] = KIND_TRADE, _side(rec["side"])
    ev["flags"] = _map_flags(rec["flags"]) | FLAG_LAST
    return ev


_NOT_EVENTS = {
    dbn.OHLCVMsg: "bars",
    dbn.StatMsg: "statistics",
    dbn.ImbalanceMsg: "auction imbalance statistics",
}
_SILENT = (dbn.SymbolMappingMsg, dbn.SystemMsg, dbn.ErrorMsg)


def _events_for(cls: type, rec: npt.NDArray[np.void], schema: str,
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


# --- the importer ------------------------------------------------------------------------

_PRICED = np.array([KIND_ADD, KIND_MODIFY, KIND_CANCEL, KIND_DELETE, KIND_EXECUTE, KIND_TRADE,
                    KIND_LEVEL, KIND_BBO], np.uint8)


def _to_ticks(ev: EventArray, inst: Instrument, report: ImportReport) -> EventArray:
    """Raw 1e-9 prices to ticks; drop undefined and off-grid prices with reasons."""
    priced = np.isin(ev["kind"], _PRICED)
    undef = priced & (ev["price"] == dbn.UNDEF_PRICE)
    ev = ev[~undef]
    report.reject("undefined price (DBN UNDEF_PRICE) on a priced event", int(undef.sum()))
    priced = priced[~undef]
    ticks, off = inst.scaled_to_ticks(np.where(priced, ev["price"], 0), PRICE_SCALE)
    ev["price"] = ticks
    bad = priced & off
    if bad.any():
        report.reject(f"price off tick grid (not a multiple of {inst.tick_size} for "
                      f"{inst.key}; pass --tick-size if the default is wrong)", int(bad.sum()))
        ev = ev[~bad]
    return ev


def import_dbn(paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Import Databento DBN files (``.dbn`` or ``.dbn.zst``, DBN versions 1-3).

    Returns one :class:`DayData` per instrument per UTC day, and the instruments of any
    definition records in ``ImportResult.instruments``.
    """
    files = require_files(paths)
    report = ImportReport(source=", ".join(p.name for p in files))
    decoded = [_decode_file(p) for p in files]
    report.rows_read = sum(d.n_records for d in decoded)

    # definitions first, so a definition file given with a data file sets its tick size
    def_fields: dict[str, dict[str, Any]] = {}
    for d in decoded:
        venue = opts.venue or _venue_of(d.metadata.dataset)
        for rec in d.definitions:
            def_fields[f"{venue}/{rec.raw_symbol}"] = _definition_fields(rec)  # latest wins
    instruments: dict[str, Instrument] = {}
    for key in def_fields:
        ven, sym = key.split("/", 1)
        try:
            instruments[key] = _instrument(opts, ven, sym, 0, def_fields, report)
        except ConfigError as exc:
            report.note(f"definition of {key} not returned: {exc}")
    days: dict[tuple[str, dt.date], list[EventArray]] = {}
    day_inst: dict[str, Instrument] = {}

    for d in decoded:
        schema = str(d.metadata.schema or "")
        if d.definitions:
            report.note(f"{d.path.name}: {len(d.definitions)} instrument definitions")
        if d.n_records == 0:
            report.note(f"{d.path.name}: schema {schema} file holds no records; nothing imported")
        symbols = _Symbols(d.metadata)
        dataset_venue = _venue_of(d.metadata.dataset)
        for cls, rec in d.records.items():
            if cls in _NOT_EVENTS:
                report.note(f"{d.path.name}: schema {schema} holds {_NOT_EVENTS[cls]}, not "
                            f"events; nothing imported ({len(rec)} records)")
                continue
            if cls in _SILENT:
                continue
            ids = np.unique(rec["instrument_id"])
            chosen = _choose_ids(ids, rec, symbols, opts)
            for iid in ids:
                if iid not in chosen:
                    continue
                sub = rec[rec["instrument_id"] == iid]
                ev = _events_for(cls, sub, schema, report)
                if ev is None:
                    report.note(f"{d.path.name}: record type {cls.__name__} is not imported")
                    break
                day_no = ev["local_ts"] // NS_PER_DAY
                for dn in np.unique(day_no):
                    date = dt.date(1970, 1, 1) + dt.timedelta(days=int(dn))
                    sym = chosen[iid] or symbols.get(int(iid), date)
                    inst = _instrument(opts, dataset_venue, sym, int(iid), def_fields, report)
                    part = _to_ticks(ev[day_no == dn].copy(), inst, report)
                    part = validate_events(part, report, l3=False)
                    day_inst[inst.key] = inst
                    days.setdefault((inst.key, date), []).append(part)

    out_days = []
    for (key, date), parts in sorted(days.items()):
        if len(parts) == 1:
            ev = parts[0]
        else:  # several files for one instrument-day: merge by local time, stable
            ev = np.concatenate(parts)
            ev = ev[np.argsort(ev["local_ts"], kind="stable")]
            report.note(f"{key} {date}: {len(parts)} files merged by local_ts")
        out_days.append(DayData(instrument=day_inst[key], date=date, events=ev))
    for key, inst in day_inst.items():
        instruments.setdefault(key, inst)
    return ImportResult(days=out_days, report=report, instruments=list(instruments.values()))


def _choose_ids(ids: npt.NDArray[Any], rec: npt.NDArray[np.void], symbols: _Symbols,
                opts: ImportOptions) -> dict[Any, str | None]:
    """Which instrument ids to import, and a forced symbol for each (None: use the map).

    ``--symbol`` renames a single-instrument file, or picks one instrument out of several.
    """
    if not opts.symbol:
        return dict.fromkeys(ids)
    if len(ids) == 1:
        return {ids[0]: opts.symbol}
    named = {i for i in ids if any(s == opts.symbol for _, _, s in symbols.by_id.get(int(i), []))}
    if not named:
        msg = (f"--symbol {opts.symbol} names none of the {len(ids)} instruments in the file; "
               "leave it out to import them all")
        raise ConfigError(msg)
    return dict.fromkeys(named)


def _instrument(
    opts: ImportOptions, venue: str, symbol: str | None, iid: int,
    def_fields: dict[str, dict[str, Any]], report: ImportReport) -> Instrument:
    """The instrument of some events: user options, then definition, then dataset default."""
    ven = opts.venue or venue
    if not symbol:
        symbol = str(iid)
        note = (f"instrument_id {iid} has no symbol in the file's symbology map; stored under "
                "its id (pass --symbol to name it)")
        if note not in report.notes:
            report.note(note)
    defaults = {**(_default_fields(ven, symbol) or {}), **def_fields.get(f"{ven}/{symbol}", {})}
    if "tick_size" not in defaults and opts.extra.get("tick_size") is None:
        msg = (f"no tick size known for {ven}/{symbol}: the files hold no definition with a "
               "min_price_increment for it and the dataset has no default; pass --tick-size "
               "(e.g. 0.25) or add the definition file to the import")
        raise ConfigError(msg)
    return resolve_instrument(dataclasses.replace(opts, symbol=None), symbol=symbol,
                              venue=ven, defaults=defaults)
