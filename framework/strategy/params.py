"""Typed strategy parameters: frozen, keyword-only, unknown names fail with "did you mean",
and each value is checked against its declared range however the Params are built.

Declare a range with :func:`param`::

    class MMParams(Params):
        order_qty: int = param(1, ge=1)  #: lots per quote
        threshold: float = param(0.6, gt=0, le=1)
        mode: str = param("momentum", choices=("momentum", "reversion"))
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import numbers
from typing import Any, get_type_hints

import numpy as np

from framework.core.errors import ConfigError
from framework.core.ranges import Range

NB_TUPLE = "nb_tuple"  #: the class attribute holding a Params class's namedtuple
RANGE = "range"  #: the field-metadata key holding a parameter's :class:`Range`


def param(default: Any, **bounds: Any) -> Any:
    """A parameter with its default and allowed range (the keywords of
    :class:`~framework.core.ranges.Range`: ``ge``, ``gt``, ``le``, ``lt``, ``also``,
    ``choices``, ``pattern``, ``example``, ``note``). Out-of-range values are refused with a
    line naming the range whenever the Params are built (``create``, the constructor,
    ``replace``)."""
    return dataclasses.field(default=default, metadata={RANGE: Range(**bounds)})


def _has_type(value: Any, typ: Any) -> bool:
    """Whether ``value`` is of the declared type (an int is a float; a bool is neither;
    numpy numbers count as what they are)."""
    if typ is bool:
        return isinstance(value, bool | np.bool_)
    if typ is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
    if typ is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if typ is str:
        return isinstance(value, str)
    return True


def _check_values(self: Params) -> None:
    """Type and range of every field of ``self``; raises ConfigError on the first bad one."""
    cls = type(self)
    hints = get_type_hints(cls)
    for name, rng in cls.ranges().items():
        value = getattr(self, name)
        typ = hints.get(name)
        if not _has_type(value, typ):
            msg = (
                f"{cls.__qualname__} parameter {name}={value!r} is not "
                f"{'an' if typ is int else 'a'} {getattr(typ, '__name__', typ)}"
            )
            raise ConfigError(msg)
        why = rng.check(name, value) if rng is not None else None
        if why is not None:
            msg = f"{cls.__qualname__} parameter {why}"
            raise ConfigError(msg)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params:
    """Base of a strategy's parameters. Subclass it with typed fields, defaults and
    (see :func:`param`) allowed ranges::

    class MMParams(Params):
        spread_ticks: int = param(1, ge=1)
        order_qty: int = param(1, ge=1)
    """

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        # Values are checked before the class's own __post_init__ (its cross-field checks),
        # whether or not that calls super(): the declared ranges hold for every instance.
        own = cls.__dict__.get("__post_init__")

        def post_init(self: Params) -> None:
            _check_values(self)
            if own is not None:
                own(self)

        post_init.__name__ = post_init.__qualname__ = "__post_init__"
        cls.__post_init__ = post_init  # type: ignore[attr-defined]
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        # What compiled callbacks get as ``p``: a namedtuple of the fields. One class per
        # Params class, reachable by name from its module (so numba can pickle its type):
        # a strategy's compiled callbacks are then compiled once for every run they join,
        # and cached on disk, instead of once per combination of strategies.
        nt = collections.namedtuple(f"{cls.__name__}Tuple", cls.names() or ["empty"])  # type: ignore[misc]
        nt.__module__ = cls.__module__
        nt.__qualname__ = f"{cls.__qualname__}.{NB_TUPLE}"
        setattr(cls, NB_TUPLE, nt)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def ranges(cls) -> dict[str, Range | None]:
        """Each parameter's allowed range (None: any value of its type). A ``bool`` needs
        none declared: its range is its type."""
        hints = get_type_hints(cls)
        out: dict[str, Range | None] = {}
        for f in dataclasses.fields(cls):
            rng = f.metadata.get(RANGE)
            if rng is None and hints.get(f.name) is bool:
                rng = Range(choices=(False, True))
            out[f.name] = rng
        return out

    @classmethod
    def create(cls, values: dict[str, Any] | None = None) -> Params:
        """Build from a dict (values may be strings, as from ``--param k=v``)."""
        values = dict(values or {})
        known = cls.names()
        hints = get_type_hints(cls)
        out: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                msg = (
                    f"unknown parameter {key!r} for {cls.__qualname__}{hint} "
                    f"(parameters: {', '.join(known) or 'none'})"
                )
                raise ConfigError(msg)
            out[key] = _convert(cls.__qualname__, key, raw, hints.get(key, str))
        return cls(**out)

    def replace(self, **changes: Any) -> Params:
        return type(self).create({**dataclasses.asdict(self), **changes})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(owner: str, key: str, raw: Any, typ: Any) -> Any:
    if not isinstance(raw, str):
        if typ is int and isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if typ is float and isinstance(raw, int):
            return float(raw)
        return raw
    try:
        if typ is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
    except ValueError as exc:
        msg = f"parameter {key}={raw!r} of {owner} is not a valid {getattr(typ, '__name__', typ)}"
        raise ConfigError(msg) from exc
    return raw
