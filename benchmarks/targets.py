"""Targets a benchmark row declares for itself, and whether a measured row met them.

A row carries ``target`` (a number) and ``target_kind`` (one of :data:`KINDS`) beside the
figures it measured, so a target lives next to the code that measures it. Build them with
:func:`target` (``**target("min rate", 40e6)``). A row may also carry:

- ``unavailable``: why the figure could not be measured (a missing feature): MISSED;
- ``unchecked``: why the target is deliberately not checked in this run (a size-dependent
  target under ``--quick``): NOT CHECKED, which ``--check`` does not count as a miss;
- ``error``: the benchmark failed: MISSED.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MET = "MET"
MISSED = "MISSED"
NOT_CHECKED = "NOT CHECKED"


def _rate(x: float) -> str:
    return f"{x / 1e6:.2f} M/s"


@dataclass(frozen=True)
class Kind:
    """How a target kind reads a row: the figure it compares and in which direction."""

    name: str
    #: the row's figure compared with the target (after the runner's ``finish``)
    field: str
    #: True: the figure must be >= the target; False: <= the target
    at_least: bool
    fmt: Callable[[float], str]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("min rate", "events_per_s", True, _rate),
        Kind("max seconds", "seconds", False, lambda x: f"{x:g} s"),
        # ours / peer's events per second
        Kind("min ratio", "ratio", True, lambda x: f"x{x:.2f}"),
        Kind("max MB", "peak_rss_mb", False, lambda x: f"{x:,.0f} MB"),
        # our seconds / the peer's seconds: "takes at most this share of the peer's time"
        Kind("max time ratio", "time_ratio", False, lambda x: f"{x:g} x peer time"),
    )
}


def target(kind: str, value: float, *, unchecked: str | None = None) -> dict[str, Any]:
    """The fields a row adds to declare its target (``unchecked``: why it is not checked)."""
    if kind not in KINDS:
        msg = f"unknown target kind {kind!r}; use one of: {', '.join(KINDS)}"
        raise ValueError(msg)
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        msg = f"a {kind} target must be a positive number, got {value!r}"
        raise ValueError(msg)
    out: dict[str, Any] = {"target": value, "target_kind": kind}
    if unchecked:
        out["unchecked"] = unchecked
    return out


def describe(row: dict[str, Any]) -> str:
    """The target as printed: ``>= 40.00 M/s``, ``<= 30 s``, ... ("-" if none)."""
    kind = KINDS.get(row.get("target_kind", ""))
    if kind is None or row.get("target") is None:
        return "-"
    return f"{'>=' if kind.at_least else '<='} {kind.fmt(float(row['target']))}"


def evaluate(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with ``met`` (True / False / None when not checked), ``status`` and, unless
    met, ``reason``."""
    out = dict(row)
    status, reason = _judge(row)
    out["status"] = status
    out["met"] = {MET: True, MISSED: False}.get(status)
    out.setdefault("target", None)
    out.setdefault("target_kind", None)
    if reason:
        out["reason"] = reason
    return out


def _judge(row: dict[str, Any]) -> tuple[str, str | None]:
    if row.get("error"):
        return MISSED, f"error: {row['error']}"
    kind_name = row.get("target_kind")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if row.get("target") is None or not kind_name:
        return MISSED, "no target declared: every row declares one (benchmarks/targets.py)"
    if kind is None:
        return MISSED, f"unknown target kind {kind_name!r}; use one of: {', '.join(KINDS)}"
    if row.get("unavailable"):
        return MISSED, f"not available yet: {row['unavailable']}"
    if row.get("unchecked"):
        return NOT_CHECKED, str(row["unchecked"])
    value = row.get(kind.field)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSED, f"no {kind.field} was measured"
    goal = float(row["target"])
    ok = float(value) >= goal if kind.at_least else float(value) <= goal
    if ok:
        return MET, None
    return MISSED, f"{kind.fmt(float(value))} against {describe(row)}"
