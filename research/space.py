"""Parameter spaces of a strategy: ``--space`` words checked against its declared Params.

A word is ``NAME=LO:HI[:STEP]`` (a numeric range; an int steps by 1 unless told, a float
without a step is continuous) or ``NAME=A,B,C`` (the values to try, any type). Every name,
bound and value is checked against the strategy's ``Params`` declaration (type and allowed
range, unknown names with "did you mean") when the space is built, so a typo fails in one
line before any day is read, not in a worker an hour later.

A parameter set is keyed by the canonical JSON of the *whole* Params it makes (defaults and
fixed values included): two spellings of the same set (``1`` and ``1.0``, a default written
out or left out) have one key, which is how a study never evaluates a set twice and how a
resumed study finds what it has done.

>>> from strategies.one_tick_mm import OneTickMM
>>> s = Space.parse(OneTickMM, ["max_position=1:3", "improve=true,false"])
>>> s.size, [(p["max_position"], p["improve"]) for p in s.grid()][:3]
(6, [(1, True), (1, False), (2, True)])
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, get_type_hints

import numpy as np

from framework.core.errors import ConfigError
from framework.strategy import Params, Strategy

Kind = Literal["range", "choices"]

#: a float grid point is rounded to this many decimals (0.1 * 3 is 0.3, not 0.30000000000000004)
GRID_DECIMALS = 12


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched parameter: a numeric range (``lo``..``hi`` by ``step``; a float without
    a step is continuous) or a list of ``values``."""

    name: str
    type: type
    kind: Kind
    lo: float = 0.0
    hi: float = 0.0
    step: float | None = None
    values: tuple[Any, ...] = ()

    @property
    def discrete(self) -> bool:
        return self.kind == "choices" or self.step is not None

    def points(self) -> list[Any]:
        """Every value of a discrete dimension, in order."""
        if self.kind == "choices":
            return list(self.values)
        if self.step is None:
            msg = (
                f"{self.name}={_num(self.lo)}:{_num(self.hi)} is continuous; give a step for "
                f"a grid: {self.name}={_num(self.lo)}:{_num(self.hi)}:STEP"
            )
            raise ConfigError(msg)
        return [self._at(i) for i in range(self.n_points)]

    @property
    def n_points(self) -> int:
        """Values of a discrete dimension (counted, not listed: a range may be long)."""
        if self.kind == "choices":
            return len(self.values)
        if self.step is None:
            return 0
        return math.floor((self.hi - self.lo) / self.step + 1e-9) + 1

    def _at(self, i: int) -> Any:
        assert self.step is not None
        if self.type is int:
            return int(self.lo) + i * int(self.step)
        return round(self.lo + i * self.step, GRID_DECIMALS)

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "choices":
            return self.values[int(rng.integers(len(self.values)))]
        if self.step is None:
            return float(rng.uniform(self.lo, self.hi))
        return self._at(int(rng.integers(self.n_points)))

    @property
    def top(self) -> float:
        """The last point of a stepped range (``hi`` rounded down onto the grid)."""
        if self.step is None:
            return self.hi
        return float(self._at(self.n_points - 1))

    def describe(self) -> str:
        if self.kind == "choices":
            return f"{self.name}={','.join(_num(v) for v in self.values)}"
        step = "" if self.step is None else f":{_num(self.step)}"
        return f"{self.name}={_num(self.lo)}:{_num(self.hi)}{step}"


def _num(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return f"{v:g}" if isinstance(v, float) else str(v)


def params_key(params: Params) -> str:
    """The canonical key of a full parameter set: a short hash of its sorted JSON."""
    return hashlib.sha1(params_json(params).encode()).hexdigest()[:16]


def params_json(params: Params) -> str:
    """A full parameter set as canonical JSON (sorted names, no spaces)."""
    return json.dumps(params.as_dict(), sort_keys=True, separators=(",", ":"), default=str)


@dataclasses.dataclass(frozen=True)
class Space:
    """The searched dimensions of a strategy class, and the fixed parameters beside them."""

    strategy: type[Strategy]
    dims: tuple[Dimension, ...]
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    # --- parsing --------------------------------------------------------------------
    @classmethod
    def parse(
        cls,
        strategy: type[Strategy],
        words: Sequence[str],
        fixed: Mapping[str, Any] | None = None,
    ) -> Space:
        """Build a space from ``--space`` words; ``fixed`` are the ``--param`` values."""
        fixed = dict(fixed or {})
        if not words:
            msg = "give at least one --space NAME=LO:HI[:STEP] or NAME=A,B,C to search"
            raise ConfigError(msg)
        pcls = strategy.Params
        try:
            pcls.create(fixed)  # the fixed values alone are valid
        except ConfigError as exc:
            msg = f"--param: {exc}"
            raise ConfigError(msg) from exc
        dims: list[Dimension] = []
        for word in words:
            d = _parse_word(strategy, word)
            if any(x.name == d.name for x in dims):
                msg = f"--space {word!r}: {d.name} is searched twice; give it once"
                raise ConfigError(msg)
            if d.name in fixed:
                msg = (
                    f"--space {word!r}: {d.name} is also fixed by --param {d.name}="
                    f"{fixed[d.name]}; search it or fix it, not both"
                )
                raise ConfigError(msg)
            dims.append(d)
        return cls(strategy=strategy, dims=tuple(dims), fixed=fixed)

    # --- sets -----------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    @property
    def size(self) -> int | None:
        """Number of grid points (None when a dimension is continuous)."""
        if not all(d.discrete for d in self.dims):
            return None
        return math.prod(d.n_points for d in self.dims)

    def make(self, values: Mapping[str, Any]) -> Params:
        """The full Params of searched ``values`` and the fixed ones (checked)."""
        return self.strategy.Params.create({**self.fixed, **values})

    def grid(self) -> list[dict[str, Any]]:
        """Every combination, first dimension slowest; combinations the strategy refuses
        (a cross-field check of its Params) and repeats of a key are left out."""
        combos = (
            dict(zip(self.names, vals, strict=True))
            for vals in itertools.product(*(d.points() for d in self.dims))
        )
        return list(self._distinct(combos))

    def sample(self, n: int, *, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` distinct random sets (seeded); all of a discrete space smaller than ``n``."""
        if n < 1:
            msg = f"--trials {n} is out of range: allowed >= 1"
            raise ConfigError(msg)
        rng = np.random.default_rng(seed)
        size = self.size
        if size is not None and size <= n:
            return self.grid()

        def draws() -> Iterator[dict[str, Any]]:
            for _ in range(50 * n):  # bounded: a space with few valid sets ends the draw
                yield {d.name: d.sample(rng) for d in self.dims}

        return list(itertools.islice(self._distinct(draws()), n))

    def _distinct(self, combos: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        refused: ConfigError | None = None
        yielded = False
        for values in combos:
            try:
                key = params_key(self.make(values))
            except ConfigError as exc:
                refused = exc
                continue
            if key not in seen:
                seen.add(key)
                yielded = True
                yield values
        if not yielded and refused is not None:
            msg = f"no parameter set of the space is valid: {refused}"
            raise ConfigError(msg)

    def describe(self) -> str:
        return " ".join(d.describe() for d in self.dims)


def _declared(strategy: type[Strategy], name: str, word: str) -> type:
    pcls = strategy.Params
    known = pcls.names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = (
            f"--space {word!r}: unknown parameter {name!r} for {strategy.__name__}{hint} "
            f"(parameters: {', '.join(known) or 'none'})"
        )
        raise ConfigError(msg)
    typ = get_type_hints(pcls).get(name, str)
    return typ if isinstance(typ, type) else str


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _value(strategy: type[Strategy], name: str, raw: str, word: str, typ: type) -> Any:
    """``raw`` as the declared type, checked against the declared range. Alone: a value
    another parameter must agree with (a cross-field check) is judged per set (see
    :meth:`Space.grid`), not here."""
    try:
        if typ is bool:
            low = raw.lower()
            if low not in _TRUE + _FALSE:
                raise ValueError(raw)
            value: Any = low in _TRUE
        elif typ is int:
            value = int(raw)
        elif typ is float:
            value = float(raw)
        else:
            value = raw
    except ValueError as exc:
        msg = (
            f"--space {word!r}: {name}={raw!r} is not {'an' if typ is int else 'a'} "
            f"{typ.__name__}"
        )
        raise ConfigError(msg) from exc
    rng = strategy.Params.ranges().get(name)
    why = rng.check(name, value) if rng is not None else None
    if why is not None:
        msg = f"--space {word!r}: {strategy.__name__} parameter {why}"
        raise ConfigError(msg)
    return value


def _parse_word(strategy: type[Strategy], word: str) -> Dimension:
    name, sep, body = word.partition("=")
    name, body = name.strip(), body.strip()
    if not sep or not name or not body:
        msg = f"--space {word!r}: write NAME=LO:HI[:STEP] (a range) or NAME=A,B,C (values)"
        raise ConfigError(msg)
    typ = _declared(strategy, name, word)
    numeric = typ in (int, float)
    if not numeric or ":" not in body:
        raws = [v.strip() for v in body.split(",")]
        if "" in raws:
            msg = f"--space {word!r}: an empty value in the list; write NAME=A,B,C"
            raise ConfigError(msg)
        values = tuple(_value(strategy, name, r, word, typ) for r in raws)
        uniq = tuple(dict.fromkeys((type(v), v) for v in values))
        return Dimension(name, typ, "choices", values=tuple(v for _, v in uniq))
    parts = [p.strip() for p in body.split(":")]
    if len(parts) not in (2, 3) or "" in parts:
        msg = f"--space {word!r}: write NAME=LO:HI or NAME=LO:HI:STEP"
        raise ConfigError(msg)
    lo = _value(strategy, name, parts[0], word, typ)
    hi = _value(strategy, name, parts[1], word, typ)
    step: float | None = None
    if len(parts) == 3:
        try:
            step = int(parts[2]) if typ is int else float(parts[2])
        except ValueError as exc:
            msg = (
                f"--space {word!r}: the step {parts[2]!r} is not "
                f"{'an int' if typ is int else 'a number'}"
            )
            raise ConfigError(msg) from exc
        if not (math.isfinite(step) and step > 0):
            msg = f"--space {word!r}: the step must be > 0, got {parts[2]}"
            raise ConfigError(msg)
    elif typ is int:
        step = 1
    if hi < lo:
        msg = (
            f"--space {word!r}: empty range ({_num(lo)} > {_num(hi)}); write LO:HI with "
            "LO <= HI"
        )
        raise ConfigError(msg)
    return Dimension(name, typ, "range", lo=lo, hi=hi, step=step)


__all__ = ["Dimension", "Space", "params_json", "params_key"]
