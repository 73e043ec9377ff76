"""The summary says what a run replayed: the stored events and, when order-by-order data
was projected to price levels (an execution is a trade print and a level update), the book
updates the engine processed; the rate is per stored event."""

from __future__ import annotations

import re

import pytest

from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_ADD,
    KIND_EXECUTE,
    KIND_LEVEL,
    SELL,
    make_events,
)
from framework.engine.runner import print_summary

from .conftest import T0, Scripted, Tape, run


def _first_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.splitlines()[0]


def test_l3_day_reports_stored_events_and_the_book_updates_they_became(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 4 stored events: two adds (a level update each), an execution (a trade print and a
    # level update) and an add: 5 book updates
    ev = make_events(
        exch_ts=[T0, T0 + 10, T0 + 20, T0 + 30], local_ts=[T0, T0 + 10, T0 + 20, T0 + 30],
        kind=[KIND_ADD, KIND_ADD, KIND_EXECUTE, KIND_ADD], side=[BUY, SELL, SELL, SELL],
        price=[100, 102, 102, 103], qty=[5, 3, 1, 2], order_id=[1, 2, 2, 3],
        flags=[FLAG_LAST] * 4,
    )
    result = run(ev, Scripted())
    assert result.config["stored_events"] == 4
    assert result.config["book_updates"] == result.events == 5
    assert result.config["l3_projected"] is True
    print_summary(result, None)
    line = _first_line(capsys)
    assert line.startswith(
        "backtest: 4 stored events (5 book updates after the L3->L2 projection) replayed in "
    )
    rate = float(re.search(r"\(([\d,]+) stored events/s", line)[1].replace(",", ""))  # type: ignore[index]
    replay = result.config["replay_seconds"]
    assert rate == pytest.approx(4 / max(replay, 1e-9), rel=0.01, abs=1)


def test_l2_day_reports_its_stored_events_only(capsys: pytest.CaptureFixture[str]) -> None:
    tape = Tape().book(T0, bids=[(9999, 1)], asks=[(10001, 1)]).level(T0 + 10, BUY, 9998, 2)
    result = run(tape, Scripted())
    assert result.config["stored_events"] == result.config["book_updates"] == 3
    assert result.config["l3_projected"] is False
    print_summary(result, None)
    assert _first_line(capsys).startswith("backtest: 3 stored events replayed in ")


def test_a_run_cut_short_counts_only_what_it_reached(capsys: pytest.CaptureFixture[str]) -> None:
    tape = Tape()
    for k in range(10):
        tape.level(T0 + 100 * k, SELL, 10001 + k, 1)
    ev = tape.events()
    assert int(ev["kind"][0]) == KIND_LEVEL
    result = run(ev, Scripted(), end_ts=T0 + 450)
    assert result.config["stored_events"] == result.config["book_updates"] == 5
