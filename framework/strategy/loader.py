"""Find a strategy class by ``module:Class`` path or bundled name."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from framework.core.errors import ConfigError
from framework.strategy.base import Strategy

#: bundled strategies (the ``strategies`` package), by short name
BUNDLED: dict[str, str] = {
    "one_tick_mm": "strategies.one_tick_mm:OneTickMM",
    "lead_lag": "strategies.lead_lag:LeadLag",
    "avellaneda_stoikov": "strategies.avellaneda_stoikov:AvellanedaStoikov",
    "queue_aware_mm": "strategies.queue_aware_mm:QueueAwareMM",
    "imbalance_taker": "strategies.imbalance_taker:ImbalanceTaker",
    "trade_flow": "strategies.trade_flow:TradeFlow",
}


def import_attr(mod_name: str, attr: str, *, what: str) -> Any:
    """``mod_name.attr`` of a ``module:attr`` reference (None when the module lacks it); a
    module that does not import is one ConfigError naming ``what`` was asked for."""
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        msg = f"{what}: cannot import module {mod_name!r} ({exc})"
        raise ConfigError(msg) from exc
    return getattr(mod, attr, None)


def load_strategy_class(spec: str) -> type[Strategy]:
    """``"one_tick_mm"`` or ``"mypkg.mymod:MyStrategy"`` -> the class."""
    target = BUNDLED.get(spec, spec)
    if ":" not in target:
        close = difflib.get_close_matches(spec, list(BUNDLED), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = (
            f"strategy {spec!r} is neither a bundled name ({', '.join(sorted(BUNDLED))}) "
            f"nor a module:Class path{hint}"
        )
        raise ConfigError(msg)
    mod_name, _, cls_name = target.partition(":")
    cls = import_attr(mod_name, cls_name, what=f"strategy {target}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        msg = f"{target}: no Strategy subclass named {cls_name!r} in {mod_name}"
        raise ConfigError(msg)
    return cls
