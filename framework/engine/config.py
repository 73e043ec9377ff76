"""Latency and queue-model settings, and their command-line spellings."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from framework.arena.enums import (
    LAT_CONSTANT,
    LAT_EMPIRICAL,
    LAT_FEED,
    QUEUE_FIFO,
    QUEUE_LOG,
    QUEUE_POWER,
    QUEUE_RISK_AVERSE,
)
from framework.arena.state import (
    H_LAT_MODEL,
    H_N_LAT_SERIES,
    H_QUEUE_MODEL,
    HF_LAT_ENTRY,
    HF_LAT_RESP,
    HF_QUEUE_N,
)
from framework.core.errors import ConfigError
from framework.core.ranges import Range

if TYPE_CHECKING:
    from framework.arena.state import State

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION_HELP = "write e.g. 500us, 1ms, 2s or a number of ns (units: ns, us, ms, s)"

#: a latency: not negative, and at most a day (any more would overflow the timestamps
#: it is added to long before it meant anything)
LATENCY_NS = Range(ge=0, le=86_400 * 1_000_000_000, note="ns: 0 to one day")
#: a multiple of the feed latency (``feed:MULT``)
FEED_MULT = Range(ge=0, le=1_000)
#: the exponent n of the ``power`` queue model, f(x) = x**n: positive (n <= 0 would put the
#: front of the queue behind its back) and small enough that x**n stays finite
QUEUE_POWER_N = Range(gt=0, le=10)
QUEUE_MODELS = ("risk_averse", "power", "log", "fifo")
#: how ``--queue`` and ``--latency`` are written (CLI help and error messages say this)
QUEUE_FORMS = "risk_averse | power[:n] (0 < n <= 10, default 2) | log | fifo (L3 data)"
LATENCY_FORMS = (
    "constant:1ms | constant:ENTRY,RESPONSE | feed[:MULT[,MULT]] | "
    "empirical:FILE.csv (ts,entry_ns,response_ns)"
)


def parse_duration(text: str) -> int:
    """``'1ms'`` -> 1_000_000 ns; bare numbers are ns; between 0 and one day.

    >>> parse_duration("250us"), parse_duration("2s"), parse_duration("10")
    (250000, 2000000000, 10)
    """
    m = re.fullmatch(r"\s*([-+]?[0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s)?\s*", text)
    if not m:
        msg = f"duration {text!r} does not parse; {_DURATION_HELP}"
        raise ConfigError(msg)
    ns = round(float(m[1]) * _UNITS[m[2] or "ns"])
    if not LATENCY_NS.contains(ns):
        msg = f"duration {text.strip()!r} is out of range: allowed {LATENCY_NS.describe()}"
        raise ConfigError(msg)
    return ns


def _read_series(path: Path) -> np.ndarray:
    """An empirical latency file: rows ``ts,entry_ns,response_ns``, an optional header line."""
    if not path.is_file():
        msg = f"{path}: no such latency series file (CSV with ts,entry_ns,response_ns)"
        raise ConfigError(msg)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the latency series ({exc})"
        raise ConfigError(msg) from exc
    rows: list[list[float]] = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if no == 1 and not rows:
                continue  # the header
            msg = f"{path}:{no}: {line.strip()!r} is not three numbers ts,entry_ns,response_ns"
            raise ConfigError(msg) from None
        if len(values) != 3:
            msg = f"{path}:{no}: {len(values)} column(s); write ts,entry_ns,response_ns"
            raise ConfigError(msg)
        for name, v in zip(("entry_ns", "response_ns"), values[1:], strict=True):
            if not LATENCY_NS.contains(v):
                msg = f"{path}:{no}: {name}={v:g} is out of range: allowed {LATENCY_NS.describe()}"
                raise ConfigError(msg)
        if rows and values[0] < rows[-1][0]:
            msg = f"{path}:{no}: ts {values[0]:g} is before the row above; sort the file by ts"
            raise ConfigError(msg)
        rows.append(values)
    if not rows:
        msg = f"{path}: the latency series is empty; give rows ts,entry_ns,response_ns"
        raise ConfigError(msg)
    return np.array(rows, dtype=np.float64)



def _number_in(rng: Range, raw: str, what: str) -> float:
    """``raw`` as a float inside ``rng``, else one line: ``<what> is out of range: allowed ...``."""
    try:
        x = float(raw)
    except ValueError:
        x = math.nan
    if not rng.contains(x):
        msg = f"{what} is out of range: allowed {rng.describe()}"
        raise ConfigError(msg)
    return x

@dataclass(frozen=True, kw_only=True)
class LatencyConfig:
    """How long orders take to reach the venue (entry) and responses to come back.

    * ``constant``: fixed ``entry_ns`` / ``response_ns``;
    * ``feed``: ``entry_mult`` / ``response_mult`` times the latest feed latency seen in the
      data (``local_ts - exch_ts``), so latency follows the data's own congestion;
    * ``empirical``: a measured series of rows ``(ts, entry_ns, response_ns)``; the row in
      force at each moment applies.
    """

    model: str = "constant"
    entry_ns: int = 1_000_000
    response_ns: int = 1_000_000
    entry_mult: float = 1.0
    response_mult: float = 1.0
    series: np.ndarray | None = field(default=None, compare=False)

    @property
    def code(self) -> int:
        return {"constant": LAT_CONSTANT, "feed": LAT_FEED, "empirical": LAT_EMPIRICAL}[self.model]

    def __post_init__(self) -> None:
        if self.model not in ("constant", "feed", "empirical"):
            msg = f"latency model {self.model!r} is unknown; choose constant, feed or empirical"
            raise ConfigError(msg)
        if self.model == "empirical":
            s = self.series
            if s is None or s.ndim != 2 or s.shape[1] != 3 or len(s) == 0:
                msg = (
                    "the empirical latency model needs a series of rows (ts, entry_ns, response_ns)"
                )
                raise ConfigError(msg)
            if not np.all(np.isfinite(s)):
                msg = "the empirical latency series holds NaN or infinite values"
                raise ConfigError(msg)
            if np.any(np.diff(s[:, 0]) < 0):
                msg = "the empirical latency series must be sorted by time"
                raise ConfigError(msg)
            lat = s[:, 1:]
            if not all(LATENCY_NS.contains(float(v)) for v in (lat.min(), lat.max())):
                msg = (
                    f"the empirical latency series has a latency of {lat.min():g} .. "
                    f"{lat.max():g} ns; allowed {LATENCY_NS.describe()}"
                )
                raise ConfigError(msg)
        LATENCY_NS.require("entry_ns", self.entry_ns)
        LATENCY_NS.require("response_ns", self.response_ns)
        FEED_MULT.require("entry_mult", self.entry_mult)
        FEED_MULT.require("response_mult", self.response_mult)

    @classmethod
    def parse(cls, text: str) -> LatencyConfig:
        """``constant:1ms`` (both ways), ``constant:500us,1ms`` (entry,response),
        ``feed`` or ``feed:1.5`` (or ``feed:1,2``), ``empirical:FILE.csv`` (rows
        ts,entry_ns,response_ns after an optional header)."""
        kind, _, arg = text.partition(":")
        kind = kind.strip().lower()
        parts = [p.strip() for p in arg.split(",")] if arg.strip() else []
        if kind in ("constant", "feed") and (len(parts) > 2 or "" in parts):
            msg = f"latency {text!r}: {kind} takes one or two values (entry,response)"
            raise ConfigError(msg)
        if kind == "constant":
            e = parse_duration(parts[0]) if parts else 1_000_000
            r = parse_duration(parts[1]) if len(parts) > 1 else e
            return cls(model="constant", entry_ns=e, response_ns=r)
        if kind == "feed":
            mults = [
                _number_in(FEED_MULT, p, f"latency {text!r}: feed multiplier {p!r}") for p in parts
            ]
            em = mults[0] if mults else 1.0
            rm = mults[1] if len(mults) > 1 else em
            return cls(model="feed", entry_mult=em, response_mult=rm)
        if kind == "empirical":
            if not arg.strip():
                msg = "latency empirical needs a file: empirical:FILE.csv (ts,entry_ns,response_ns)"
                raise ConfigError(msg)
            return cls(model="empirical", series=_read_series(Path(arg.strip())))
        msg = f"latency {text!r} is not one of: {LATENCY_FORMS}"
        raise ConfigError(msg)

    def encode(self, st: State) -> None:
        """Write this model into an arena (its header words and the series segment, which
        must hold ``len(series)`` rows: ``Capacity.lat_series``)."""
        st.h[H_LAT_MODEL] = self.code
        constant = self.model == "constant"
        st.hf[HF_LAT_ENTRY] = self.entry_ns if constant else self.entry_mult
        st.hf[HF_LAT_RESP] = self.response_ns if constant else self.response_mult
        if self.series is not None:
            st.lat_series[:, :] = self.series
            st.h[H_N_LAT_SERIES] = len(self.series)

    def describe(self) -> str:
        if self.model == "constant":
            return f"constant entry {self.entry_ns} ns, response {self.response_ns} ns"
        if self.model == "feed":
            return f"feed latency x{self.entry_mult} / x{self.response_mult}"
        return f"empirical series of {len(self.series) if self.series is not None else 0} rows"


@dataclass(frozen=True, kw_only=True)
class QueueConfig:
    """Queue-position model: ``risk_averse``, ``power[:n]``, ``log`` or ``fifo`` (L3 data)."""

    model: str = "power"
    n: float = 2.0

    @property
    def code(self) -> int:
        return {
            "risk_averse": QUEUE_RISK_AVERSE,
            "power": QUEUE_POWER,
            "log": QUEUE_LOG,
            "fifo": QUEUE_FIFO,
        }[self.model]

    def __post_init__(self) -> None:
        if self.model not in QUEUE_MODELS:
            msg = f"queue model {self.model!r} is unknown; choose {QUEUE_FORMS}"
            raise ConfigError(msg)
        if self.model == "power":
            why = QUEUE_POWER_N.check("power exponent n", self.n)
            if why is not None:
                msg = f"queue model power: {why}"
                raise ConfigError(msg)

    @classmethod
    def parse(cls, text: str) -> QueueConfig:
        """``risk_averse``, ``power`` (n = 2), ``power:N``, ``log`` or ``fifo``."""
        kind, sep, arg = text.partition(":")
        kind = kind.strip().lower().replace("-", "_")
        if kind not in QUEUE_MODELS:
            msg = f"queue model {kind!r} is unknown; choose {QUEUE_FORMS}"
            raise ConfigError(msg)
        if not sep:
            return cls(model=kind)
        if kind != "power":
            msg = f"queue {text!r}: {kind} takes no argument; choose {QUEUE_FORMS}"
            raise ConfigError(msg)
        n = _number_in(QUEUE_POWER_N, arg, f"queue {text!r}: the power exponent {arg.strip()!r}")
        return cls(model="power", n=n)

    def encode(self, st: State) -> None:
        """Write this model into an arena's header."""
        st.h[H_QUEUE_MODEL] = self.code
        st.hf[HF_QUEUE_N] = self.n

    def describe(self) -> str:
        return f"power (n={self.n})" if self.model == "power" else self.model
