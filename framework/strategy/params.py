"""Typed strategy parameters: frozen, keyword-only, unknown names fail with "did you mean"."""

from __future__ import annotations

import collections
import dataclasses
import difflib
from typing import Any, get_type_hints

from framework.core.errors import ConfigError

NB_TUPLE = "nb_tuple"  #: the class attribute holding a Params class's namedtuple


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params:
    """Base of a strategy's parameters. Subclass it with typed fields and defaults::

    class MMParams(Params):
        spread_ticks: int = 1
        order_qty: int = 1
    """

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
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
