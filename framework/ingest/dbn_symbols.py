"""DBN symbology and instruments: id -> symbol maps, definition records, dataset defaults."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import databento_dbn as dbn

PRICE_SCALE = 1_000_000_000  #: DBN FIXED_PRICE_SCALE

#: one symbology mapping: (raw symbol, [(start date, end date, mapped symbol), ...])
Mapping = tuple[str, list[tuple[dt.date, dt.date, str]]]

_EQUITY_VENUES = frozenset(
    ["XNAS", "XNYS", "XASE", "ARCX", "BATS", "BATY", "EDGA", "EDGX", "IEXG", "MEMX",
     "EPRL", "XBOS", "XPSX", "XCHI", "XCIS", "LTSE", "DBEQ", "EQUS"]
)
#: CME products whose tick we know when no definition record is given (root -> tick).
_GLBX_TICKS = {"ES": "0.25", "MES": "0.25", "NQ": "0.25", "MNQ": "0.25"}
_FUTURE_RE = re.compile(r"^([A-Z0-9]+?)[FGHJKMNQUVXZ]\d{1,2}$")
_ASSET_CLASS = {"K": "equity", "F": "future", "C": "option", "P": "option", "X": "fx",
                "S": "future"}


_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9._\-]+")


def safe_symbol(raw: str) -> str:
    """A DBN symbol as an instrument name: runs of other characters (the space of CME option
    symbols such as ``GEM3 P9812``) become ``_``."""
    return _NOT_IN_NAMES.sub("_", raw.strip())


def venue_of(dataset: str) -> str:
    return dataset.split(".", maxsplit=1)[0].upper() or "DBN"


def _scaled(value: int) -> Decimal | None:
    """A DBN 1e-9 fixed-point value as a decimal, or None when undefined or not positive."""
    if value is None or value >= dbn.UNDEF_PRICE or value <= 0:
        return None
    return (Decimal(int(value)) / PRICE_SCALE).normalize()


def definition_fields(d: Any) -> dict[str, Any]:
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
    if safe_symbol(str(d.raw_symbol)) != d.raw_symbol:
        extra["dbn_raw_symbol"] = str(d.raw_symbol)
    if 0 < d.min_lot_size_round_lot < 2**31 - 1:
        extra["round_lot"] = int(d.min_lot_size_round_lot)
    if d.expiration < 2**64 - 1:
        extra["expiration_ns"] = int(d.expiration)
    fields["extra"] = extra
    return fields


def default_fields(venue: str, symbol: str) -> dict[str, Any] | None:
    """Tick size and asset class by dataset when there is no definition record."""
    if venue in _EQUITY_VENUES:
        return {"asset_class": "equity", "tick_size": "0.01"}
    if venue == "GLBX":
        m = _FUTURE_RE.match(symbol)
        root = m.group(1) if m else symbol
        if root in _GLBX_TICKS:
            return {"asset_class": "future", "tick_size": _GLBX_TICKS[root]}
    return None


class Symbols:
    """instrument_id -> raw symbol, from symbology mappings (DBN metadata or a DBZ header)."""

    def __init__(self, stype_out: str = "", mappings: Iterable[Mapping] = ()) -> None:
        self.by_id: dict[int, list[tuple[dt.date, dt.date, str]]] = {}
        for raw, intervals in mappings:
            for start, end, mapped in intervals:
                if stype_out == "instrument_id" and mapped.isdigit():
                    iid, sym = int(mapped), raw
                elif raw.isdigit():  # mapped the other way round
                    iid, sym = int(raw), mapped
                else:
                    continue
                self.by_id.setdefault(iid, []).append((start, end, sym))

    @classmethod
    def of_metadata(cls, metadata: Any) -> Symbols:
        """The map of a DBN ``Metadata`` header."""
        stype_out = str(getattr(metadata.stype_out, "value", metadata.stype_out))
        mappings = [
            (str(raw), [(iv["start_date"], iv["end_date"], str(iv["symbol"])) for iv in ivs])
            for raw, ivs in (metadata.mappings or {}).items()
        ]
        return cls(stype_out, mappings)

    def get(self, iid: int, day: dt.date) -> str | None:
        spans = self.by_id.get(iid)
        if not spans:
            return None
        for start, end, sym in spans:
            if start <= day < end:
                return sym
        return spans[0][2]
