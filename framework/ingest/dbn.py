"""Databento DBN importer: MBO, MBP-1/10, trades, TBBO, BBO, status and definitions.

Reads DBN files (``.dbn``/``.dbn.zst``, versions 1-3), DBN record fragments without a
metadata header (``*.frag``/``*.frag.zst``) and legacy DBZ files (``.dbz``); decoding is in
:mod:`framework.ingest.dbn_decode`, symbology and definitions in
:mod:`framework.ingest.dbn_symbols`, the per-schema mapping to events in
:mod:`framework.ingest.dbn_convert` (numba kernels for MBO and MBP in
:mod:`framework.ingest.dbn_nb`).

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
  venue's event, the only place the book is consistent): FLAG_LAST goes on the last event of
  each such event and nowhere else; every other schema sets FLAG_LAST on the last event a
  record produced. A row dropped for its price hands its FLAG_LAST to the row before it of
  the same message.
* MBO follows Databento's book semantics exactly (A, M, C, R change the book; T and F do
  not): A -> KIND_ADD; M -> KIND_MODIFY (a price change or a size increase loses priority, a
  decrease keeps it; an M of an order not in the book is an add, size 0 a delete); C ->
  KIND_CANCEL, qty = the size removed (KIND_DELETE when it empties the order); R ->
  KIND_CLEAR; T -> KIND_TRADE, the print (side = aggressor or NO_SIDE, order_id as given);
  F (a resting order's share of a T, whose C or M comes separately) and N give no event.
  F_TOB adds (top-of-book venues) replace their side: KIND_CLEAR of the side, then KIND_BBO
  when priced. A snapshot (F_SNAPSHOT records) that does not start with R clears the book
  first. Records of several publishers for one instrument build separate books (one
  instrument each, venue ``<VENUE>-P<publisher_id>``). Orders known only mid-stream make
  the shared order-id check meaningless, so MBO is validated with ``l3=False``.
* MBP-1/MBP-10: KIND_LEVEL diffs that keep an L2 book equal to the record's top-N levels
  (qty 0 removes a level that left the visible book), plus KIND_TRADE for action T.
* trades -> KIND_TRADE; tbbo -> the pre-trade bid and ask as KIND_BBO, then KIND_TRADE;
  bbo-1s/1m, cbbo-1s, cmbp-1 -> KIND_BBO per defined side (cmbp-1 action T also a trade);
  the last-trade fields of bbo/cbbo are not emitted (they repeat the previous interval's
  trade). status -> KIND_STATUS. ohlcv, statistics, imbalance are not tick events and are
  skipped with a note. definition -> :class:`Instrument` objects.
* Symbols: ``--symbol``, else the file's symbology map, else a definition record with the
  same instrument_id in the import, else ``ID<instrument_id>`` (with a note). Fragments name
  no dataset: their venue is ``--venue``, else the definition's exchange.
* One :class:`DayData` per instrument per UTC day of ``local_ts`` (Databento's own daily
  files are cut at UTC midnight, so a day here matches one of theirs).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import databento_dbn as dbn
import numpy as np
import numpy.typing as npt

from framework.core.errors import ConfigError
from framework.core.events import (
    FLAG_LAST,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_TRADE,
    EventArray,
)
from framework.core.instrument import Instrument
from framework.core.timeutil import NS_PER_DAY
from framework.ingest.base import (
    DayData,
    ImportOptions,
    ImportReport,
    ImportResult,
    printable_name,
    require_files,
    resolve_instrument,
    validate_events,
)
from framework.ingest.dbn_convert import NOT_EVENTS, SILENT, events_for
from framework.ingest.dbn_decode import Decoded, decode_file
from framework.ingest.dbn_symbols import (
    PRICE_SCALE,
    Symbols,
    default_fields,
    definition_fields,
    safe_symbol,
    venue_of,
)

# --- the importer ------------------------------------------------------------------------

_PRICED = np.array([KIND_ADD, KIND_MODIFY, KIND_CANCEL, KIND_DELETE, KIND_EXECUTE, KIND_TRADE,
                    KIND_LEVEL, KIND_BBO], np.uint8)


def _drop(ev: EventArray, bad: npt.NDArray[np.bool_]) -> EventArray:
    """``ev`` without the ``bad`` rows. A dropped row that ended a venue message hands its
    FLAG_LAST to the kept row before it, when that row is of the same message, so the
    message keeps its boundary (a book row in replay)."""
    if not bad.any():
        return ev
    flags = ev["flags"]
    kept = np.flatnonzero(~bad)
    for i in np.flatnonzero(bad & ((flags & FLAG_LAST) != 0)):
        j = int(np.searchsorted(kept, i)) - 1
        if j >= 0 and not flags[kept[j]] & FLAG_LAST:
            flags[kept[j]] |= FLAG_LAST
    return ev[~bad]


def _to_ticks(ev: EventArray, inst: Instrument, report: ImportReport) -> EventArray:
    """Raw 1e-9 prices to ticks; drop undefined and off-grid prices with reasons."""
    priced = np.isin(ev["kind"], _PRICED)
    undef = priced & (ev["price"] == dbn.UNDEF_PRICE)
    ev = _drop(ev, undef)
    report.reject("undefined price (DBN UNDEF_PRICE) on a priced event", int(undef.sum()))
    priced = priced[~undef]
    ticks, off = inst.scaled_to_ticks(np.where(priced, ev["price"], 0), PRICE_SCALE)
    ev["price"] = ticks
    bad = priced & off
    if bad.any():
        report.reject(f"price off tick grid (not a multiple of {inst.tick_size} for "
                      f"{inst.key}; pass --tick-size if the default is wrong)", int(bad.sum()))
        ev = _drop(ev, bad)
    return ev


def import_dbn(paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Import Databento files: DBN (``.dbn``/``.dbn.zst``, versions 1-3), DBN record
    fragments (``*.frag``/``*.frag.zst``) and legacy DBZ (``.dbz``).

    Returns one :class:`DayData` per instrument per UTC day, and the instruments of any
    definition records in ``ImportResult.instruments``.
    """
    files = require_files(paths)
    report = ImportReport(source=", ".join(p.name for p in files))
    version = opts.get("dbn_version")
    decoded = [decode_file(p, None if version is None else int(version)) for p in files]
    report.rows_read = sum(d.n_records for d in decoded)
    for d in decoded:
        for text in d.notes:
            report.note(text)

    # definitions first, so a definition file given with a data file sets its tick size
    def_fields: dict[str, dict[str, Any]] = {}
    def_by_id: dict[int, tuple[str, str]] = {}  # instrument_id -> (venue, raw symbol)
    for d in decoded:
        for rec in d.definitions:
            try:
                raw, exchange = str(rec.raw_symbol), str(rec.exchange or "")
                fields = definition_fields(rec)
                ok = printable_name(raw) and (not exchange or printable_name(exchange))
            except dbn.DBNError:  # a text field that is not UTF-8: the record is damaged
                ok = False
            if not ok:
                report.damage("instrument definition whose symbol or exchange is not "
                              "printable text", 1, at=d.path.name)
                continue
            venue = opts.venue or _file_venue(d) or exchange or "DBN"
            name = safe_symbol(str(rec.raw_symbol))
            if name != rec.raw_symbol:
                report.note(f"{d.path.name}: symbol {rec.raw_symbol!r} stored as {name} "
                            "(instrument names hold only letters, digits, '.', '_', '-')")
            def_fields[f"{venue}/{name}"] = fields  # latest wins
            def_by_id[int(rec.instrument_id)] = (venue, name)
    instruments: dict[str, Instrument] = {}
    for key in def_fields:
        ven, def_name = key.split("/", 1)
        try:
            instruments[key] = _instrument(opts, ven, def_name, 0, def_fields, report)
        except ConfigError as exc:
            report.note(f"definition of {key} not returned: {exc}")
    days: dict[tuple[str, dt.date], list[EventArray]] = {}
    day_inst: dict[str, Instrument] = {}

    for d in decoded:
        if d.definitions:
            report.note(f"{d.path.name}: {len(d.definitions)} instrument definitions")
        if d.n_records == 0:
            report.note(f"{d.path.name}: schema {d.schema} file holds no records; "
                        "nothing imported")
        for cls, rec in d.records.items():
            if cls in NOT_EVENTS:
                report.note(f"{d.path.name}: schema {d.schema or cls.__name__} holds "
                            f"{NOT_EVENTS[cls]}, not events; nothing imported "
                            f"({len(rec)} records)")
                continue
            if cls in SILENT:
                continue
            ids = np.unique(rec["instrument_id"])
            chosen = _choose_ids(ids, d.symbols, opts)
            for iid in ids:
                if iid not in chosen:
                    continue
                sub = rec[rec["instrument_id"] == iid]
                def_venue, def_sym = def_by_id.get(int(iid), ("", None))
                venue = _file_venue(d) or def_venue
                if not venue and not opts.venue:
                    venue = "DBN"
                    report.note(f"{d.path.name}: names no dataset and no definition gives "
                                "the exchange; venue DBN (pass --venue)")
                ev: EventArray | None = None
                for pub, book_rec in _books_of(cls, sub, d, int(iid), report):
                    ev = events_for(cls, book_rec, d.schema, report)
                    if ev is None:
                        break
                    day_no = ev["local_ts"] // NS_PER_DAY
                    for dn in np.unique(day_no):
                        date = dt.date(1970, 1, 1) + dt.timedelta(days=int(dn))
                        sym = chosen[iid] or d.symbols.get(int(iid), date) or def_sym
                        inst = _instrument(opts, venue, sym, int(iid), def_fields, report,
                                           publisher=pub)
                        part = _to_ticks(ev[day_no == dn].copy(), inst, report)
                        part = validate_events(part, report, l3=False)
                        day_inst[inst.key] = inst
                        days.setdefault((inst.key, date), []).append(part)
                if ev is None:
                    report.note(f"{d.path.name}: record type {cls.__name__} is not imported")
                    break

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


def _books_of(cls: type, rec: npt.NDArray[Any], d: Decoded, iid: int, report: ImportReport
              ) -> list[tuple[int | None, npt.NDArray[Any]]]:
    """One instrument's records cut into the books they build: ``[(None, rec)]``, except MBO
    records of several publishers (a dataset that joins venues, e.g. Databento Equities
    Basic), whose books are separate -- Databento keys its book by instrument and publisher
    -- and so become one instrument each: ``[(publisher_id, records), ...]``."""
    pubs = np.unique(rec["publisher_id"])
    if cls is not dbn.MBOMsg or len(pubs) < 2:
        return [(None, rec)]
    report.note(f"{d.path.name}: instrument_id {iid} has MBO records of {len(pubs)} "
                f"publishers ({', '.join(str(int(p)) for p in pubs)}); each builds its own "
                "book, so each is stored as its own instrument, venue <VENUE>-P<publisher_id>")
    return [(int(p), rec[rec["publisher_id"] == p]) for p in pubs]


def _file_venue(d: Decoded) -> str:
    """The venue a file's dataset names ("" for fragments, which name none)."""
    return venue_of(d.dataset) if d.dataset else ""


def _choose_ids(ids: npt.NDArray[Any], symbols: Symbols, opts: ImportOptions
                ) -> dict[Any, str | None]:
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
    def_fields: dict[str, dict[str, Any]], report: ImportReport, *,
    publisher: int | None = None) -> Instrument:
    """The instrument of some events: user options, then definition, then dataset default.
    ``publisher`` names the venue of one publisher's book (``<VENUE>-P<publisher_id>``)."""
    ven = opts.venue or venue
    if not symbol:
        symbol = f"ID{iid}"
        note = (f"instrument_id {iid} has no symbol (not in the file's symbology map, no "
                f"definition record for it in the import); stored as {symbol} (pass --symbol "
                "to name it)")
        if note not in report.notes:
            report.note(note)
    elif safe_symbol(symbol) != symbol:
        note = (f"symbol {symbol!r} stored as {safe_symbol(symbol)} (instrument names hold "
                "only letters, digits, '.', '_' and '-')")
        symbol = safe_symbol(symbol)
        if note not in report.notes:
            report.note(note)
    defaults = {**(default_fields(ven, symbol) or {}), **def_fields.get(f"{ven}/{symbol}", {})}
    if "tick_size" not in defaults and opts.extra.get("tick_size") is None:
        msg = (f"no tick size known for {ven}/{symbol}: the files hold no definition with a "
               "min_price_increment for it and the dataset has no default; pass --tick-size "
               "(e.g. 0.25) or add the definition file to the import")
        raise ConfigError(msg)
    if publisher is not None:
        ven = f"{ven}-P{publisher}"
    return resolve_instrument(dataclasses.replace(opts, symbol=None, venue=None),
                              symbol=symbol, venue=ven, defaults=defaults)
