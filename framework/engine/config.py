"""Latency and queue-model settings, and their command-line spellings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framework.core.errors import ConfigError
from framework.engine.enums import (
    LAT_CONSTANT,
    LAT_EMPIRICAL,
    LAT_FEED,
    QUEUE_FIFO,
    QUEUE_LOG,
    QUEUE_POWER,
    QUEUE_RISK_AVERSE,
)

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def parse_duration(text: str) -> int:
    """``'1ms'`` -> 1_000_000 ns; bare numbers are ns.

    >>> parse_duration("250us"), parse_duration("2s"), parse_duration("10")
    (250000, 2000000000, 10)
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s)?\s*", text)
    if not m:
        msg = f"duration {text!r} does not parse; write e.g. 500us, 1ms, 2s or a number of ns"
        raise ConfigError(msg)
    return round(float(m[1]) * _UNITS[m[2] or "ns"])


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
            if np.any(np.diff(s[:, 0]) < 0):
                msg = "the empirical latency series must be sorted by time"
                raise ConfigError(msg)
        if min(self.entry_ns, self.response_ns) < 0:
            msg = "latencies cannot be negative"
            raise ConfigError(msg)

    @classmethod
    def parse(cls, text: str) -> LatencyConfig:
        """``constant:1ms`` (both ways), ``constant:500us,1ms`` (entry,response),
        ``feed`` or ``feed:1.5``, ``empirical:FILE.csv`` (columns ts,entry_ns,response_ns)."""
        kind, _, arg = text.partition(":")
        kind = kind.strip().lower()
        if kind == "constant":
            parts = [p for p in arg.split(",") if p.strip()] or ["1ms"]
            e = parse_duration(parts[0])
            r = parse_duration(parts[1]) if len(parts) > 1 else e
            return cls(model="constant", entry_ns=e, response_ns=r)
        if kind == "feed":
            parts = [p for p in arg.split(",") if p.strip()]
            try:
                em = float(parts[0]) if parts else 1.0
                rm = float(parts[1]) if len(parts) > 1 else em
            except ValueError as exc:
                msg = f"feed latency multipliers {arg!r} are not numbers"
                raise ConfigError(msg) from exc
            return cls(model="feed", entry_mult=em, response_mult=rm)
        if kind == "empirical":
            p = Path(arg)
            if not p.is_file():
                msg = f"{arg}: no such latency series file (CSV with ts,entry_ns,response_ns)"
                raise ConfigError(msg)
            try:
                data = np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
            except ValueError as exc:
                msg = f"{p}: not a CSV of ts,entry_ns,response_ns ({exc})"
                raise ConfigError(msg) from exc
            return cls(model="empirical", series=data)
        msg = (
            f"latency {text!r}: write constant:1ms, constant:500us,1ms, feed[:mult] "
            "or empirical:FILE"
        )
        raise ConfigError(msg)

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
        if self.model not in ("risk_averse", "power", "log", "fifo"):
            msg = (
                f"queue model {self.model!r} is unknown; choose risk_averse, power[:n], log or fifo"
            )
            raise ConfigError(msg)

    @classmethod
    def parse(cls, text: str) -> QueueConfig:
        kind, _, arg = text.partition(":")
        kind = kind.strip().lower().replace("-", "_")
        if kind == "power" and arg:
            try:
                return cls(model="power", n=float(arg))
            except ValueError as exc:
                msg = f"queue power exponent {arg!r} is not a number"
                raise ConfigError(msg) from exc
        return cls(model=kind)

    def describe(self) -> str:
        return f"power (n={self.n})" if self.model == "power" else self.model
