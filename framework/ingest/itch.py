"""NASDAQ TotalView-ITCH 5.0 importer: BinaryFILE (optionally gzipped) and pcap/MoldUDP64.

Decoding is compiled (:mod:`framework.ingest.itch_nb`): one pass frames and classifies every
message, a second decodes the good ones into event columns while keeping an order table, so
executions, cancels, deletes and replaces carry the resting order's side and price.

Choices (the brief leaves them to the importer; documented here and in the report notes):

* **Tick size 0.0001 for every ITCH instrument**: ITCH prices are integers in 1/10000 $ and
  stocks under $1 trade in sub-pennies, so this tick is exact and never rejects a price.
  ``--tick-size`` overrides it (a coarser tick rejects off-grid prices as "price off tick
  grid"). Lot size is 1 share; the round lot size goes to ``Instrument.extra``.
* **Events** (L3): ``A``/``F`` add; ``E`` execute at the resting price; ``C`` execute at the
  execution price (``FLAG_NON_PRINTABLE`` when not printable); ``X`` cancel; ``D`` delete;
  ``U`` delete old + add new (both ``FLAG_REPLACE``); ``P`` trade with ``FLAG_HIDDEN`` and no
  side (the spec fills the indicator with ``B`` since 2014); ``Q`` trade with
  ``FLAG_AUCTION``, ``order_id`` = packed cross type (a zero-share cross becomes a
  ``STATUS_INFO`` event with the cross price). Execute/cancel/delete of an order the input
  never added is rejected as "unknown order id" (a capture that starts mid-day).
* **Status events**: ``S``, ``H`` and ``h`` (market code ``Q`` only) map to STATUS_* codes;
  ``R Y L V W K J I N B`` become ``STATUS_INFO`` (``K``/``J``/``I`` keep a reference price).
  ``order_id`` holds the raw codes: the type byte in the top byte, then the code fields
  (``B``: the match number in the low 7 bytes).
* **System events** (stock locate 0: ``S``, ``V``, ``W``) are copied into every symbol's day,
  since market open/close matter to every book; an input with no symbol day keeps them in
  a day of its own under the symbol ``SYSTEM``.
* **Names**: a locate without a Stock Directory message takes the Stock field of its first
  message that has one (``A F P Q H Y ...``), else ``LOCATE<n>``. Characters that are not
  valid in an instrument name (``ACEL+``) are written as ``_XX`` hex (``ACEL_2B``); the ITCH
  name stays in ``extra["itch_symbol"]`` and ``--symbol`` matches either. ``--symbol``
  names the one locate of an input that names nothing (no R, no Stock field). Locates that
  resolve to one name share its day (two days under one key would overwrite each other).
* **Not carried** (the event record has no field for them): the MPID of ``F``, match
  numbers of ``E``/``C``/``P``, the share counts of ``I`` (NOII) and the 8-decimal ``V``
  levels.
* **Damage** (fails the import unless ``--allow-partial``; the report counts it): a
  BinaryFILE whose length-prefixed framing breaks (a flipped, inserted or lost byte) is
  resynchronised at the next offset where two messages in a row frame, and the skipped bytes
  are counted with the offset of each break; a message cut by the end of the file is counted
  too. In a pcap, record headers that are not plausible are skipped the same way, packets
  whose IPv4/UDP checksums fail (verified when most of the capture's match) and MoldUDP64
  blocks that frame no ITCH message are skipped to the next packet. Messages whose type,
  length, side byte or Stock field (unprintable bytes) ITCH never sends are damage, not names.
* **Memory**: a file is decoded whole in memory (about 150 bytes per message: the input,
  the framing arrays, the decoded events and their per-symbol copies); a full-day file
  (~400 M messages) needs a large machine or a symbol-filtered extract.
* **Times**: 6-byte ns since New York midnight of the file's date (``--date``, else the
  ``MMDDYYYY`` in the file name, else the first pcap packet's New York date). ``local_ts`` is
  ``exch_ts`` for files and the capture time for pcaps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import numpy.typing as npt

from framework.core.errors import ConfigError, DataError, FormatError
from framework.core.events import EVENT_DTYPE, FLAG_LAST, EventArray
from framework.core.instrument import Instrument
from framework.core.timeutil import date_from_name, midnight_ns, ns_to_date
from framework.ingest.base import (
    DayData,
    ImportOptions,
    ImportReport,
    ImportResult,
    require_files,
    validate_events,
)
from framework.ingest.itch_nb import (
    DAMAGE_CODES,
    MSG_DUPLICATE_SEQ,
    MSG_OK,
    REASONS,
    STOCK_OFFSET,
    classify_nb,
    count_events_nb,
    decode_nb,
    frame_binaryfile,
)
from framework.ingest.pcap import frame_pcap, is_pcap
from framework.ingest.rawfile import read_input

NY = "America/New_York"
ITCH_PRICE_SCALE = 10_000
DEFAULT_TICK = Decimal("0.0001")
SYSTEM_SYMBOL = "SYSTEM"


@dataclass
class ItchDecoded:
    """Everything one decode produced (message-level arrays and event columns)."""

    buf: npt.NDArray[np.uint8]
    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    status: npt.NDArray[np.int8]  #: MSG_OK or a reject code per message
    events: EventArray  #: ``instrument`` holds the stock locate
    first_stock: npt.NDArray[np.int64]  #: per locate, first message with a Stock field
    #: BinaryFILE framing breaks: (offset, bytes skipped) per resynchronisation
    breaks: npt.NDArray[np.int64] = dataclasses.field(
        default_factory=lambda: np.empty((0, 2), np.int64))

    def types(self) -> npt.NDArray[np.uint8]:
        """Type byte of each message (0 for an empty or out-of-bounds one)."""
        ok = (self.lengths > 0) & (self.offsets + self.lengths <= self.buf.shape[0])
        out = np.zeros(self.offsets.shape[0], np.uint8)
        out[ok] = self.buf[self.offsets[ok]]
        return out

    def type_counts(self) -> dict[str, int]:
        """Decoded (accepted) messages per type letter."""
        t = self.types()[self.status == MSG_OK]
        vals, counts = np.unique(t, return_counts=True)
        return {chr(int(v)): int(c) for v, c in zip(vals, counts, strict=True)}


class Workspace:
    """Reusable decode buffers: the order table and the event output.

    The importer makes a fresh one per call; a caller that decodes buffer after buffer (a
    chunked reader, a feed handler, the benchmark) keeps one so pages are touched once.
    """

    def __init__(self) -> None:
        self.table: npt.NDArray[np.int64] = np.zeros(4 << 16, np.int64)
        self.first_stock = np.empty(65536, np.int64)
        self.events = np.empty(0, EVENT_DTYPE)
        self._offs = np.empty(0, np.int64)
        self._lens = np.empty(0, np.int64)
        self._status = np.empty(0, np.int8)

    def framing(
        self, n: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        """Offset, length and status arrays for ``n`` messages (views into reused buffers)."""
        if self._offs.shape[0] < n:
            self._offs = np.empty(n, np.int64)
            self._lens = np.empty(n, np.int64)
            self._status = np.empty(n, np.int8)
        return self._offs[:n], self._lens[:n], self._status[:n]

    def events_for(self, n: int) -> EventArray:
        if self.events.shape[0] < n:
            self.events = np.empty(n, EVENT_DTYPE)
        return self.events


def decode_messages(
    buf: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    status: npt.NDArray[np.int8],
    *,
    base_ns: int,
    local_ts: npt.NDArray[np.int64] | None = None,
    price_step: int = 1,
    qty_step: int = 1,
    work: Workspace | None = None,
) -> ItchDecoded:
    """Run the compiled decode over framed messages (``status`` from pass 1 is updated).

    With a ``work`` space the events are a view into its buffer, valid until its next use.
    """
    ws = work if work is not None else Workspace()
    ev = ws.events_for(int(count_events_nb(buf, offsets, status)))
    lts = np.empty(0, np.int64) if local_ts is None else np.ascontiguousarray(local_ts, np.int64)
    n, ws.table = decode_nb(buf, offsets, status, lts, int(base_ns), int(price_step),
                            int(qty_step), ev, ws.table, ws.first_stock)
    first = ws.first_stock if work is not None else ws.first_stock.copy()
    return ItchDecoded(buf, offsets, lengths, status, ev[:n], first)


def decode_binaryfile(
    buf: npt.NDArray[np.uint8],
    *,
    base_ns: int = 0,
    price_step: int = 1,
    qty_step: int = 1,
    work: Workspace | None = None,
) -> tuple[ItchDecoded, int]:
    """Frame and decode a BinaryFILE buffer; also returns where the last whole message ends.

    Where the framing breaks the walk resynchronises; ``ItchDecoded.breaks`` lists the
    skipped byte runs.
    """
    offs, lens, status, end, breaks = frame_binaryfile(
        buf, framing=None if work is None else work.framing)
    dec = decode_messages(buf, offs, lens, status, base_ns=base_ns, price_step=price_step,
                          qty_step=qty_step, work=work)
    dec.breaks = breaks
    return dec, int(end)


# --- input loading -------------------------------------------------------------------------
@dataclass
class _Source:
    path: Path
    buf: npt.NDArray[np.uint8]
    offsets: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    status: npt.NDArray[np.int8]
    local_ts: npt.NDArray[np.int64] | None
    date: dt.date
    pcap: bool


def _file_date(path: Path, opts: ImportOptions, capture_ns: int | None) -> dt.date:
    if opts.date is not None:
        return opts.date
    d = date_from_name(path.name)
    if d is not None:
        return d
    if capture_ns is not None:
        return ns_to_date(capture_ns, NY)
    msg = (
        f"{path}: cannot tell the trading date (ITCH times are ns since midnight and the file "
        "name has no MMDDYYYY); pass --date YYYY-MM-DD"
    )
    raise ConfigError(msg)


def _load(path: Path, opts: ImportOptions, report: ImportReport) -> _Source:
    data = read_input(path, report)
    report.bytes_read += len(data)
    name = path.name
    if opts.get("pcap") or is_pcap(data[:4]):
        frames = frame_pcap(data, name)
        for t in frames.notes:
            report.note(t)
        for reason, n, at in frames.skipped:
            if at is not None:  # damage: bytes the capture holds that frame no feed message
                report.damage(reason, n, at=f"{name} offset {at:,}", unit="bytes")
            else:
                report.bytes_skipped[reason] += n
        if frames.offsets.shape[0] == 0:
            lost = "; ".join(f"{r}: {n:,} bytes" + (f" from offset {a:,}" if a else "")
                             for r, n, a in frames.skipped[:3])
            msg = (
                f"{path}: no MoldUDP64 messages in {frames.packets} packet(s)"
                + (f" (skipped {lost})" if lost else "")
                + "; is it an uncut ITCH-over-UDP capture?"
            )
            raise FormatError(msg)
        buf = np.frombuffer(data, np.uint8)
        status = classify_nb(buf, frames.offsets, frames.lengths)
        status[frames.duplicate & (status == MSG_OK)] = MSG_DUPLICATE_SEQ
        return _Source(path, buf, frames.offsets, frames.lengths, status, frames.capture_ns,
                       _file_date(path, opts, frames.first_capture_ns), True)
    buf = np.frombuffer(data, np.uint8)
    offs, lens, status, end, breaks = frame_binaryfile(buf)
    if offs.shape[0] == 0:
        msg = (
            f"{path}: not NASDAQ ITCH 5.0 BinaryFILE: no valid length-prefixed message found "
            f"(first bytes {data[:8]!r}); for a capture pass --pcap, or check the format"
        )
        raise FormatError(msg)
    skipped = int(breaks[:, 1].sum())
    if skipped * 2 > len(data):
        msg = (
            f"{path}: mostly not ITCH 5.0: {skipped:,} of {len(data):,} bytes frame no "
            "message; the file is corrupt or another format"
        )
        raise FormatError(msg)
    if len(breaks):
        where = ", ".join(f"{o:,} ({k:,} bytes)" for o, k in breaks[:5].tolist())
        report.damage("bytes that frame no ITCH 5.0 message (the length-prefixed framing "
                      "breaks; resynchronised where two messages in a row frame again)",
                      skipped, at=f"{name} offset {int(breaks[0, 0]):,}", unit="bytes")
        report.note(f"{name}: {len(breaks):,} framing break(s) at offset(s) {where}"
                    f"{' ...' if len(breaks) > 5 else ''}")
    if end < len(data):
        report.damage("bytes of a message cut by the end of the file", len(data) - end,
                      at=f"{name} offset {end:,}", unit="bytes")
    return _Source(path, buf, offs, lens, status, None, _file_date(path, opts, None), False)


def _steps(opts: ImportOptions) -> tuple[Decimal, Decimal, int, int]:
    try:
        tick = Decimal(str(opts.get("tick_size") or DEFAULT_TICK))
        lot = Decimal(str(opts.get("lot_size") or 1))
    except InvalidOperation as exc:
        msg = f"--tick-size/--lot-size must be decimal numbers ({exc})"
        raise ConfigError(msg) from exc
    step = tick * ITCH_PRICE_SCALE
    if tick <= 0 or step != step.to_integral_value():
        msg = f"tick size {tick} must be a positive multiple of ITCH's price unit 0.0001"
        raise ConfigError(msg)
    if lot <= 0 or lot != lot.to_integral_value():
        msg = f"lot size {lot} must be a whole number of shares for ITCH"
        raise ConfigError(msg)
    return tick, lot, int(step), int(lot)


# --- names and instruments -----------------------------------------------------------------
def _safe_symbol(raw: str) -> str:
    """An instrument-safe spelling: invalid characters become ``_XX`` hex."""
    out = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else f"_{ord(c):02X}"
                  for c in raw)
    if out and not out[0].isalnum():
        out = "X" + out
    return out


def _stock(buf: npt.NDArray[np.uint8], off: int) -> str:
    return bytes(buf[off : off + 8]).decode("latin-1").strip()


def _directory(dec: ItchDecoded) -> dict[int, dict[str, object]]:
    """Fields of the first Stock Directory message of each locate."""
    b = dec.buf
    out: dict[int, dict[str, object]] = {}
    r_idx = np.flatnonzero((dec.status == MSG_OK) & (dec.types() == ord("R")))
    for m in r_idx.tolist():
        o = int(dec.offsets[m])
        locate = int(b[o + 1]) << 8 | int(b[o + 2])
        if locate in out:
            continue
        c = bytes(b[o : o + 39]).decode("latin-1")
        out[locate] = {
            "locate": locate,
            "itch_symbol": _stock(b, o + 11),
            "market_category": c[19],
            "financial_status": c[20],
            "round_lot_size": int.from_bytes(bytes(b[o + 21 : o + 25]), "big"),
            "round_lots_only": c[25],
            "issue_classification": c[26],
            "issue_subtype": c[27:29].strip(),
            "authenticity": c[29],
            "short_sale_threshold": c[30],
            "ipo_flag": c[31],
            "luld_tier": c[32],
            "etp_flag": c[33],
            "etp_leverage_factor": int.from_bytes(bytes(b[o + 34 : o + 38]), "big"),
            "inverse": c[38],
        }
    return out


def _names(
    dec: ItchDecoded, locates: list[int], directory: dict[int, dict[str, object]], *,
    opts: ImportOptions, report: ImportReport, fname: str,
) -> dict[int, str]:
    """ITCH name of each locate (R, else a Stock field, else LOCATE<n>)."""
    names: dict[int, str] = {}
    from_msgs: list[str] = []
    unnamed: list[int] = []
    for loc in locates:
        if loc in directory:
            names[loc] = str(directory[loc]["itch_symbol"])
            continue
        m = int(dec.first_stock[loc])
        if m >= 0:
            o = int(dec.offsets[m])
            names[loc] = _stock(dec.buf, o + int(STOCK_OFFSET[dec.buf[o]]))
            from_msgs.append(f"{loc}={names[loc]}")
        if not names.get(loc):
            names[loc] = f"LOCATE{loc}"
            unnamed.append(loc)
    if len(locates) == 1 and opts.symbol and unnamed:  # nothing in the input names it
        names[locates[0]] = opts.symbol
    elif from_msgs:
        report.note(f"{fname}: no Stock Directory message for locate(s) "
                    f"{', '.join(from_msgs[:10])}{' ...' if len(from_msgs) > 10 else ''}; "
                    "named from the Stock field of their messages")
    if unnamed and not (len(locates) == 1 and opts.symbol):
        report.note(f"{fname}: locate(s) {unnamed[:10]} have no name in the input; "
                    "stored as LOCATE<n>")
    return names


def _instrument(
    symbol: str, venue: str, tick: Decimal, lot: Decimal, info: dict[str, object] | None
) -> Instrument:
    safe = _safe_symbol(symbol)
    extra: dict[str, object] = dict(info or {})
    extra["itch_symbol"] = symbol
    try:
        return Instrument(venue=venue, symbol=safe, asset_class="equity", tick_size=tick,
                          lot_size=lot, currency="USD", extra=extra)
    except ConfigError:  # e.g. an empty name from a garbled Stock field
        return Instrument(venue=venue, symbol=f"LOCATE{extra.get('locate', 0)}",
                          asset_class="equity", tick_size=tick, lot_size=lot, currency="USD",
                          extra=extra)


# --- the importer --------------------------------------------------------------------------
def import_itch(paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Import NASDAQ ITCH 5.0 BinaryFILE (``.gz`` too) or pcap/MoldUDP64 captures."""
    files = require_files(paths)
    report = ImportReport(source=", ".join(p.name for p in files), unit="messages")
    report.rows_imported = 0
    report.events_made = 0
    venue = opts.venue or "XNAS"
    tick, lot, price_step, qty_step = _steps(opts)
    sources = [_load(p, opts, report) for p in files]
    by_date: dict[dt.date, list[_Source]] = {}
    for s in sources:
        by_date.setdefault(s.date, []).append(s)

    days: list[DayData] = []
    instruments: dict[str, Instrument] = {}
    matched = False
    for date, group in sorted(by_date.items()):
        dec = _decode_group(group, date, price_step, qty_step)
        fname = ", ".join(s.path.name for s in group)
        report.rows_read += int(dec.offsets.shape[0])
        _count_status(dec, group, report)
        counts = dec.type_counts()
        listed = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
        report.note(f"{fname}: decoded messages by type: {listed or 'none'}")
        day_list, insts, hit = _split_days(dec, date, venue=venue, tick=tick, lot=lot, opts=opts,
                                           report=report, fname=fname)
        matched |= hit
        days += day_list
        for inst in insts:
            instruments.setdefault(inst.key, inst)
    if opts.symbol and not matched:
        present = sorted({d.instrument.symbol for d in days})[:10]
        msg = f"symbol {opts.symbol!r} is not in the input; symbols present include {present}"
        raise DataError(msg)
    return ImportResult(days=days, report=report, instruments=list(instruments.values()))


def _count_status(dec: ItchDecoded, group: list[_Source], report: ImportReport) -> None:
    """Count the messages pass 1 or 2 refused: damage (bytes ITCH does not send) or rejects."""
    codes = np.bincount(dec.status.astype(np.int64), minlength=len(REASONS) + 1)
    sizes = np.cumsum([0] + [s.buf.shape[0] for s in group])
    for code, n in enumerate(codes.tolist()):
        if code == MSG_OK or not n:
            continue
        if code in DAMAGE_CODES:
            off = int(dec.offsets[int(np.argmax(dec.status == code))])
            k = int(np.searchsorted(sizes, off, side="right")) - 1
            at = f"{group[k].path.name} offset {off - int(sizes[k]):,}"
            report.damage(REASONS[code], n, at=at)
        else:
            report.reject_rows(REASONS[code], n)


def _decode_group(
    group: list[_Source], date: dt.date, price_step: int, qty_step: int
) -> ItchDecoded:
    """Decode the inputs of one date as one stream (split captures share order state)."""
    if len(group) == 1:
        s = group[0]
        buf, offs, lens, status, lts = s.buf, s.offsets, s.lengths, s.status, s.local_ts
    else:
        shifts = np.cumsum([0] + [s.buf.shape[0] for s in group[:-1]])
        buf = np.concatenate([s.buf for s in group])
        offs = np.concatenate([s.offsets + k for s, k in zip(group, shifts, strict=True)])
        lens = np.concatenate([s.lengths for s in group])
        status = np.concatenate([s.status for s in group])
        lts = None
        if any(s.pcap for s in group):
            lts = np.concatenate([
                s.local_ts if s.local_ts is not None else np.full(s.offsets.shape[0], -1)
                for s in group
            ])
            if (lts < 0).any():
                msg = ("mixing pcap captures and BinaryFILE files of one date in one import "
                       "is not supported; import them separately")
                raise ConfigError(msg)
    return decode_messages(buf, offs, lens, status, base_ns=midnight_ns(date, NY),
                           local_ts=lts, price_step=price_step, qty_step=qty_step)


def _matches(inst: Instrument, symbol: str) -> bool:
    return symbol in (inst.symbol, inst.extra.get("itch_symbol"))


def _split_days(
    dec: ItchDecoded, date: dt.date, *, venue: str, tick: Decimal, lot: Decimal,
    opts: ImportOptions, report: ImportReport, fname: str,
) -> tuple[list[DayData], list[Instrument], bool]:
    ev = dec.events
    loc = ev["instrument"]
    order = np.argsort(loc, kind="stable")
    sorted_loc = loc[order]
    uniq, starts = np.unique(sorted_loc, return_index=True)
    ends = [*starts[1:].tolist(), len(order)] if len(order) else []
    bounds = dict(zip(uniq.tolist(), zip(starts.tolist(), ends, strict=True), strict=True))
    last = (ev["flags"] & FLAG_LAST) != 0  # one per accepted message
    msgs_of = {k: int(np.count_nonzero(last[order[slice(*b)]])) for k, b in bounds.items()}
    sys_idx = order[slice(*bounds[0])] if 0 in bounds else np.empty(0, np.int64)
    locates = [u for u in uniq.tolist() if u != 0]
    directory = _directory(dec)
    names = _names(dec, locates, directory, opts=opts, report=report, fname=fname)
    insts = [_instrument(str(directory[k]["itch_symbol"]), venue, tick, lot, directory[k])
             for k in sorted(directory)]
    renamed = [i.extra["itch_symbol"] for i in insts if i.symbol != i.extra["itch_symbol"]]
    if renamed:
        report.note(f"{fname}: symbols with characters not allowed in names were hex-escaped: "
                    f"{', '.join(map(str, renamed[:10]))}{' ...' if len(renamed) > 10 else ''}")
    # locates that resolve to one instrument (a name repeated, a damaged locate code) share
    # its day: two days under one key would overwrite each other in the store
    by_key: dict[str, list[int]] = {}
    inst_of: dict[str, Instrument] = {}
    for k in locates:
        inst = _instrument(names[k], venue, tick, lot, directory.get(k, {"locate": k}))
        by_key.setdefault(inst.key, []).append(k)
        inst_of.setdefault(inst.key, inst)
    days: list[DayData] = []
    matched = False
    other = 0
    for key, locs in by_key.items():
        inst = inst_of[key]
        if opts.symbol and not _matches(inst, opts.symbol):
            other += sum(msgs_of[k] for k in locs)
            continue
        matched = True
        if len(locs) > 1:
            report.note(f"{fname}: locates {', '.join(map(str, locs))} all name "
                        f"{inst.symbol}; their messages form one day")
        report.rows_imported = (report.rows_imported or 0) + sum(msgs_of[k] for k in locs)
        idx = np.sort(np.concatenate([sys_idx, *(order[slice(*bounds[k])] for k in locs)]))
        days.append(_day(inst, date, ev[idx], report))
    report.reject_rows(f"message of another symbol than --symbol {opts.symbol}", other)
    if not locates and sys_idx.shape[0] and not opts.symbol:
        inst = Instrument(venue=venue, symbol=SYSTEM_SYMBOL, tick_size=tick, lot_size=lot,
                          extra={"locate": 0})
        report.note(f"{fname}: only system events (locate 0); stored under {inst.key}")
        days.append(_day(inst, date, ev[sys_idx], report))
    if days:
        report.rows_imported = (report.rows_imported or 0) + msgs_of.get(0, 0)
    else:
        report.reject_rows("system message (no symbol day to hold it)", msgs_of.get(0, 0))
    return days, insts, matched


def _day(inst: Instrument, date: dt.date, events: EventArray, report: ImportReport) -> DayData:
    events["instrument"] = 0  # ``events`` is a fresh copy (fancy indexing)
    report.events_made = (report.events_made or 0) + len(events)
    return DayData(instrument=inst, date=date, events=validate_events(events, report, l3=True))
