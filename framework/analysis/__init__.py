"""Backtest analysis: the result tables, statistics and the HTML report.

``write_report`` is imported lazily: it pulls in matplotlib, which the engine (which only
needs :class:`BacktestResult`) should not pay for at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from framework.analysis.results import SCHEMAS, TOTAL, BacktestResult, empty_table, tick_sizes
from framework.analysis.stats import (
    drawdown,
    max_drawdown,
    max_drawdown_relative,
    resample_last,
    round_trips,
    sharpe,
    sortino,
    summarize,
    summarize_all,
)

if TYPE_CHECKING:
    from framework.analysis.report import write_report

__all__ = [
    "SCHEMAS",
    "TOTAL",
    "BacktestResult",
    "drawdown",
    "empty_table",
    "max_drawdown",
    "max_drawdown_relative",
    "resample_last",
    "round_trips",
    "sharpe",
    "sortino",
    "summarize",
    "summarize_all",
    "tick_sizes",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from framework.analysis.report import write_report

        return write_report
    msg = f"module 'framework.analysis' has no attribute {name!r}"
    raise AttributeError(msg)
