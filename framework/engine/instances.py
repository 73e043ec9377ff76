"""K isolated instances of one strategy in one pass over the events (a parameter sweep).

:func:`copies` makes the instances, one per parameter set, with unique names; a
``Backtest(..., strategies=copies(...), isolated=True)`` then replays the events once for all
of them. Each copy has its own orders (ids numbered as in a run alone), its own order slots
and resting list at the venue (our orders are virtual: they never change the replayed book,
so no copy's queue estimate sees another's orders), its own risk limits, rate-limit bucket,
kill switch and portfolio, and an account of its own, so self-trade prevention never sets
one copy against another. Its rows of the result tables -- orders, fills, denials, equity,
positions -- are bit for bit those of a run of that copy alone
(``tests/unit/engine/test_instances.py``), at a fraction of the cost: the events, both books
and the wake-ups are processed once, and the compiled runner loops over the copies (its code
and compile time do not grow with K; ``framework/engine/codegen.py``).

>>> from strategies.one_tick_mm import OneTickMM
>>> [s.name for s in copies(OneTickMM, [{"max_position": 2}, {"max_position": 4}])]
['OneTickMM_0', 'OneTickMM_1']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from framework.core.errors import ConfigError
from framework.risk.limits import RiskLimits
from framework.strategy.base import Strategy

S = TypeVar("S", bound=Strategy)


def copies(
    cls: type[S],
    params: Sequence[Mapping[str, Any]],
    *,
    name: str | None = None,
    risk: RiskLimits | dict[str, Any] | None = None,
    instruments: list[str] | None = None,
) -> list[S]:
    """One instance of ``cls`` per parameter set in ``params``, named ``{name}_{i}``
    (``name`` defaults to the class name), each with the same ``risk`` limits and
    ``instruments``. Run them with ``Backtest(..., isolated=True)``."""
    if not params:
        msg = f"copies() of {cls.__name__} got no parameter sets; pass a list of dicts"
        raise ConfigError(msg)
    base = name or cls.__name__
    out: list[S] = []
    for i, p in enumerate(params):
        try:
            out.append(cls(dict(p), risk=risk, instruments=instruments, name=f"{base}_{i}"))
        except ConfigError as exc:
            msg = f"parameter set {i} of {base}: {exc}"
            raise ConfigError(msg) from exc
    return out


__all__ = ["copies"]
