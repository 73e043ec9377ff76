"""Instruments: what a price in ticks and a quantity in lots mean in real units."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from framework.core.errors import ConfigError, DataError

AssetClass = Literal["equity", "future", "option", "fx", "crypto"]
ASSET_CLASSES: tuple[str, ...] = get_args(AssetClass)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


def _decimal(value: object, what: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        msg = f"{what} {value!r} is not a number; give a decimal such as 0.01"
        raise ConfigError(msg) from exc
    if not d.is_finite() or d <= 0:
        msg = f"{what} {value!r} must be a positive finite number"
        raise ConfigError(msg)
    return d.normalize()


@dataclass(frozen=True, kw_only=True)
class Instrument:
    """A tradable instrument on one venue.

    Prices are stored as integer ticks (``price = ticks * tick_size``) and quantities as
    integer lots (``quantity = lots * lot_size``). Fees are fractions of notional; a negative
    fee is a rebate. ``fee_per_lot`` adds a fixed amount per lot (as US equity venues charge
    per share).

    >>> aapl = Instrument(venue="XNAS", symbol="AAPL", tick_size="0.01")
    >>> aapl.key, aapl.ticks_to_price(18712)
    ('XNAS/AAPL', 187.12)
    """

    venue: str
    symbol: str
    asset_class: AssetClass = "equity"
    tick_size: Decimal = field(default=Decimal("0.01"))
    lot_size: Decimal = field(default=Decimal("1"))
    multiplier: Decimal = field(default=Decimal("1"))
    currency: str = "USD"
    maker_fee: float = 0.0
    taker_fee: float = 0.0
    fee_per_lot: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("venue", "symbol"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _NAME_RE.match(value):
                msg = (
                    f"instrument {name} {value!r} is not a valid name; use letters, digits, "
                    "'.', '_' or '-', starting with a letter or digit"
                )
                raise ConfigError(msg)
        if self.asset_class not in ASSET_CLASSES:
            msg = f"asset class {self.asset_class!r} is unknown; choose one of {ASSET_CLASSES}"
            raise ConfigError(msg)
        object.__setattr__(self, "tick_size", _decimal(self.tick_size, "tick size"))
        object.__setattr__(self, "lot_size", _decimal(self.lot_size, "lot size"))
        object.__setattr__(self, "multiplier", _decimal(self.multiplier, "multiplier"))

    # --- naming ---------------------------------------------------------------------
    @property
    def key(self) -> str:
        """``VENUE/SYMBOL``, the instrument's place in the store."""
        return f"{self.venue}/{self.symbol}"

    # --- unit conversion ---------------------------------------------------------------
    @property
    def price_decimals(self) -> int:
        """Decimal places needed to print a price exactly."""
        exp = self.tick_size.as_tuple().exponent
        return max(0, -int(exp)) if isinstance(exp, int) else 0

    @property
    def qty_decimals(self) -> int:
        """Decimal places needed to print a quantity exactly."""
        exp = self.lot_size.as_tuple().exponent
        return max(0, -int(exp)) if isinstance(exp, int) else 0

    def ticks_to_price(self, ticks: int) -> float:
        """Price of ``ticks`` in currency units (rounded to the tick's decimals)."""
        return round(float(ticks * self.tick_size), self.price_decimals)

    def lots_to_qty(self, lots: int) -> float:
        """Quantity of ``lots`` in base units."""
        return round(float(lots * self.lot_size), self.qty_decimals)

    def price_to_ticks(self, price: float | str | Decimal) -> int:
        """Ticks of an exact price; raises :class:`DataError` if it is off the tick grid."""
        d = Decimal(str(price))
        q, r = divmod(d, self.tick_size)
        if r != 0:
            msg = (
                f"price {price} is not on the {self.tick_size} tick grid of {self.key}; "
                "round it or fix the instrument's tick size"
            )
            raise DataError(msg)
        return int(q)

    def qty_to_lots(self, qty: float | str | Decimal) -> int:
        """Lots of an exact quantity; raises :class:`DataError` if not a whole lot."""
        d = Decimal(str(qty))
        q, r = divmod(d, self.lot_size)
        if r != 0:
            msg = (
                f"quantity {qty} is not a whole number of lots of {self.lot_size} for "
                f"{self.key}; fix the instrument's lot size"
            )
            raise DataError(msg)
        return int(q)

    def scaled_to_ticks(
        self, raw: npt.ArrayLike, scale: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Convert integer prices in units of ``1/scale`` to ticks.

        Returns ``(ticks, off_grid)``; ``off_grid`` marks prices that are not a whole number
        of ticks (their ticks are truncated toward zero).

        >>> inst = Instrument(venue="XNAS", symbol="AMZN", tick_size="0.01")
        >>> t, bad = inst.scaled_to_ticks([2231800, 2231850], 10_000)
        >>> t.tolist(), bad.tolist()
        ([22318, 22318], [False, True])
        """
        tick_raw = self.tick_size * scale
        if tick_raw != tick_raw.to_integral_value():
            msg = (
                f"tick size {self.tick_size} of {self.key} is finer than the source's price "
                f"unit 1/{scale}; use a tick size that is a multiple of {Decimal(1) / scale}"
            )
            raise ConfigError(msg)
        step = int(tick_raw)
        arr = np.asarray(raw, dtype=np.int64)
        ticks = arr // step
        off = (arr - ticks * step) != 0
        # keep truncation toward zero for negative prices (spreads, some futures)
        neg = arr < 0
        if neg.any():
            ticks = np.where(neg & off, ticks + 1, ticks)
        return ticks.astype(np.int64), off

    # --- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (decimals as strings)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = str(v) if isinstance(v, Decimal) else v
        return out

    def to_json(self) -> str:
        """Compact JSON form, as stored in Parquet file metadata."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instrument:
        """Inverse of :meth:`to_dict`; unknown keys fail with the list of known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            msg = f"unknown instrument field(s) {sorted(unknown)}; known fields are {sorted(known)}"
            raise ConfigError(msg)
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Instrument:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"instrument metadata is not valid JSON ({exc}); the file may be corrupt"
            raise DataError(msg) from exc
        if not isinstance(data, dict):
            msg = "instrument metadata must be a JSON object"
            raise DataError(msg)
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Instrument:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)
