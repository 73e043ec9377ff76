"""Risk limits of one strategy, as the user writes them."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from framework.core.errors import ConfigError
from framework.engine.state import (
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
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "self_trade_prevention" or v is None:
                continue
            if not isinstance(v, int | float) or math.isnan(v) or v < 0:
                msg = f"risk limit {f.name}={v!r} must be a non-negative number or None"
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
