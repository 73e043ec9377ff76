"""Risk limits of one strategy, as the user writes them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from framework.arena.state import (
    R_COLLAR_TICKS,
    R_MAX_DRAWDOWN,
    R_MAX_LOSS,
    R_MAX_NOTIONAL,
    R_MAX_OPEN,
    R_MAX_ORDER_QTY,
    R_MAX_POS_INST,
    R_MAX_POS_STRAT,
    R_RATE_BURST,
    R_RATE_PER_S,
    R_SELF_TRADE,
    RISK_COLS,
)
from framework.core.errors import ConfigError
from framework.core.ranges import Range

_COLUMN = {
    "max_order_qty": R_MAX_ORDER_QTY,
    "max_notional": R_MAX_NOTIONAL,
    "price_collar_ticks": R_COLLAR_TICKS,
    "max_position": R_MAX_POS_INST,
    "max_strategy_position": R_MAX_POS_STRAT,
    "max_open_orders": R_MAX_OPEN,
    "max_orders_per_s": R_RATE_PER_S,
    "order_burst": R_RATE_BURST,
    "max_loss": R_MAX_LOSS,
    "max_drawdown": R_MAX_DRAWDOWN,
}

#: what each limit may be. Zero is refused: a limit of 0 (or under one lot) denies every
#: order, which is no limit anyone means — ``None`` (CLI: ``none``) lifts a limit instead.
RANGES: dict[str, Range] = {
    "max_order_qty": Range(ge=1, note="lots"),
    "max_notional": Range(gt=0, note="currency"),
    "price_collar_ticks": Range(gt=0, note="ticks from the mid"),
    "max_position": Range(ge=1, note="lots"),
    "max_strategy_position": Range(ge=1, note="lots"),
    "max_open_orders": Range(ge=1, note="orders"),
    "max_orders_per_s": Range(gt=0, note="orders per second"),
    "order_burst": Range(ge=1, note="orders"),
    "max_loss": Range(gt=0, note="currency"),
    "max_drawdown": Range(gt=0, note="currency"),
}


@dataclass(frozen=True, kw_only=True)
class RiskLimits:
    """Limits of one strategy; ``None`` means no limit. Sizes in lots, money in currency.

    >>> RiskLimits(max_position=5, max_loss=100.0).to_array()[:4].tolist()
    [inf, inf, inf, 5.0]
    """

    max_order_qty: float | None = None
    max_notional: float | None = None  #: per order: fills so far + open lots at worst price
    price_collar_ticks: float | None = None  #: max distance of a limit price from the mid
    #: per instrument, each side apart: position + lots of that side that may still fill
    max_position: float | None = None
    max_strategy_position: float | None = None  #: sum over instruments
    max_open_orders: float | None = None  #: from submission until the end is confirmed
    max_orders_per_s: float | None = None  #: token-bucket rate
    order_burst: float | None = None  #: token-bucket size (default: the rate)
    max_loss: float | None = None  #: kill switch: equity below -max_loss
    max_drawdown: float | None = None  #: kill switch: drop from the peak equity
    self_trade_prevention: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.self_trade_prevention, bool):
            msg = (
                f"risk limit self_trade_prevention={self.self_trade_prevention!r}: "
                "give True or False"
            )
            raise ConfigError(msg)
        for name, rng in RANGES.items():
            v = getattr(self, name)
            why = None if v is None else rng.check(name, v)
            if why is not None:
                msg = f"risk limit {why}; None (CLI: none) lifts the limit"
                raise ConfigError(msg)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RiskLimits:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            import difflib

            name = sorted(unknown)[0]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known limits: {sorted(known)}"
            msg = f"unknown risk limit {name!r}{hint}"
            raise ConfigError(msg)
        return cls(**data)  # type: ignore[arg-type]

    def to_array(self) -> np.ndarray:
        out = np.full(RISK_COLS, np.inf)
        for name, col in _COLUMN.items():
            v = getattr(self, name)
            if v is not None:
                out[col] = float(v)
        out[R_SELF_TRADE] = 1.0 if self.self_trade_prevention else 0.0
        return out
