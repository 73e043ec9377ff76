"""Allowed ranges of settings, checked where values enter (CLI words, configs, Params).

One :class:`Range` describes what a setting may be — bounds, a set of choices, or a text
pattern — and says so in words, so every refusal names the allowed range the same way:

>>> Range(ge=1).check("order_qty", 0)
'order_qty=0 is out of range: allowed >= 1'
>>> Range(gt=0, le=1).describe(), Range(ge=0, also=(-1,)).describe()
('> 0 and <= 1', '>= 0, or -1')
>>> Range(choices=("momentum", "reversion")).check("mode", "trend")
"mode='trend' is out of range: allowed one of 'momentum', 'reversion'"
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any

from framework.core.errors import ConfigError

INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True, kw_only=True)
class Range:
    """What a setting may be.

    ``ge``/``gt``/``le``/``lt`` bound a number (which must also be finite); ``also`` lists
    special values allowed outside the bounds (e.g. ``-1`` for "the instrument's own");
    ``choices`` lists every allowed value; ``pattern`` is a regular expression a text must
    match in full, described by ``example``. ``note`` is appended to the description.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    also: tuple[Any, ...] = ()
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None
    example: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.ge is not None and self.gt is not None:
            msg = "a Range takes ge or gt, not both"
            raise ValueError(msg)
        if self.le is not None and self.lt is not None:
            msg = "a Range takes le or lt, not both"
            raise ValueError(msg)

    @property
    def numeric(self) -> bool:
        return self.choices is None and self.pattern is None

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return any(value == c and type(value) is type(c) for c in self.choices)
        if self.pattern is not None:
            return isinstance(value, str) and re.fullmatch(self.pattern, value) is not None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if value in self.also:
            return True
        v: int | float
        if isinstance(value, numbers.Integral):
            v = int(value)
            if not -INT64_MAX - 1 <= v <= INT64_MAX:
                return False  # compiled code holds it in an int64
        else:
            v = float(value)
            if not math.isfinite(v):
                return False
        return (
            (self.ge is None or v >= self.ge)
            and (self.gt is None or v > self.gt)
            and (self.le is None or v <= self.le)
            and (self.lt is None or v < self.lt)
        )

    def describe(self) -> str:
        """The allowed values in words: ``'> 0 and <= 1'``, ``"one of 'a', 'b'"``."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.pattern is not None:
            text = f"text like {self.example}" if self.example else f"text matching {self.pattern}"
        else:
            parts = [
                f"{op} {_num(v)}"
                for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                if v is not None
            ]
            text = " and ".join(parts) or "any finite number"
            if self.also:
                text += ", or " + " or ".join(_num(v) for v in self.also)
        return f"{text} ({self.note})" if self.note else text

    def check(self, name: str, value: Any) -> str | None:
        """None when ``value`` is allowed, else the one-line reason naming the range."""
        if self.contains(value):
            return None
        return f"{name}={value!r} is out of range: allowed {self.describe()}"

    def require(self, name: str, value: Any) -> None:
        """Raise :class:`ConfigError` naming the range unless ``value`` is allowed."""
        why = self.check(name, value)
        if why is not None:
            raise ConfigError(why)


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
