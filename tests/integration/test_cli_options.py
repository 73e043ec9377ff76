"""What a new user meets on the command line: settings out of range refused in one line that
names the range, help that says every form, the whole-store summary, the book replay's
layout and header, and event names in SQL."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from framework.cli import build_parser, main
from framework.core import Instrument
from framework.core.events import BUY, FLAG_LAST, KIND_LEVEL, KIND_TRADE, SELL, make_events
from framework.store import TickStore

DAY = dt.date(2024, 1, 2)
TS = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC
RUN = ["backtest", "one_tick_mm", "--venue", "SIM", "--symbol", "SYN", "--from", "2024-01-02"]


@pytest.fixture
def two_instruments(store_root: Path) -> Path:
    store = TickStore(store_root)
    a = Instrument(venue="SIM", symbol="ABC", tick_size="0.01", lot_size="0.001")
    b = Instrument(venue="XNAS", symbol="AMZN", tick_size="0.01")

    def day(ts: int) -> np.ndarray:
        return make_events(
            exch_ts=[ts, ts + 1_000, ts + 2_000, ts + 3_000],
            local_ts=[ts + 100, ts + 1_100, ts + 2_100, ts + 3_100],
            price=[10100, 10102, 10101, 10101],
            qty=[1500, 2000, 7, 0],
            kind=[KIND_LEVEL, KIND_LEVEL, KIND_TRADE, KIND_LEVEL],
            side=[BUY, SELL, SELL, BUY],
            flags=[0, FLAG_LAST, FLAG_LAST, FLAG_LAST],
        )

    store.write(a, DAY, day(TS))
    store.write(a, dt.date(2024, 1, 3), day(TS + 86_400 * 10**9))
    store.write(b, DAY, day(TS))
    return store_root


# --- settings out of range -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--param", "order_qty=0"], "order_qty=0 is out of range: allowed >= 1 (lots)"),
        (["--param", "order_qty=-3"], "order_qty=-3 is out of range: allowed >= 1"),
        (["--param", "max_position=0"], "max_position=0 is out of range: allowed >= 1"),
        (["--param", "order_qty=1.5"], "order_qty='1.5' of OneTickMMParams is not a valid int"),
        (["--queue", "power:-3"], "the power exponent '-3' is out of range: allowed > 0 and <= 10"),
        (["--queue", "power:0"], "the power exponent '0' is out of range: allowed > 0 and <= 10"),
        (["--queue", "power:abc"], "the power exponent 'abc' is out of range"),
        (["--queue", "fast"], "queue model 'fast' is unknown; choose risk_averse | power[:n]"),
        (["--queue", "log:3"], "log takes no argument"),
        (["--latency", "constant:-1ms"], "duration '-1ms' is out of range: allowed >= 0"),
        (["--latency", "constant:1xs"], "duration '1xs' does not parse; write e.g. 500us"),
        (["--latency", "feed:-2"], "feed multiplier '-2' is out of range: allowed >= 0"),
        (["--latency", "teleport"], "is not one of: constant:1ms"),
        (["--risk", "max_position=-1"], "max_position=-1.0 is out of range: allowed >= 1 (lots)"),
        (["--risk", "max_position=0"], "max_position=0.0 is out of range: allowed >= 1"),
        (["--risk", "max_loss=0"], "max_loss=0.0 is out of range: allowed > 0 (currency)"),
        (["--to", "2024-01-01"], "--to 2024-01-01 is before --from 2024-01-02"),
    ],
)
def test_backtest_settings_out_of_range_are_one_line_errors(
    store_root: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    assert main([*RUN, *extra, "--store", str(store_root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("hftlab: error: ")
    assert needle in err[0]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["data", "generate", "--days", "0"], "--days 0 is out of range: allowed >= 1"),
        (["data", "generate", "--days", "-2"], "--days -2 is out of range: allowed >= 1"),
        (["book", "replay", "--venue", "SIM", "--symbol", "ABC", "--date", "2024-01-02",
          "--levels", "0", "--out", "x.csv"], "levels=0: give the number of book levels"),
    ],
)  # fmt: skip
def test_other_counts_out_of_range_are_one_line_errors(
    two_instruments: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert main([*argv, "--store", str(two_instruments)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert needle in err[0]


def test_empirical_latency_files_are_checked_before_the_run(
    store_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("ts,entry_ns,response_ns\n")
    negative = tmp_path / "neg.csv"
    negative.write_text("ts,entry_ns,response_ns\n0,1000,-5\n")
    for spec, needle in (
        (f"empirical:{tmp_path / 'missing.csv'}", "no such latency series file"),
        (f"empirical:{empty}", f"{empty}: the latency series is empty"),
        (f"empirical:{negative}", f"{negative}:2: response_ns=-5 is out of range"),
    ):
        assert main([*RUN, "--latency", spec, "--store", str(store_root)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert needle in err[0]


def test_a_bad_parameter_in_a_run_of_several_names_the_strategy(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["backtest", "a=one_tick_mm", "b=one_tick_mm", "--instrument", "SIM/SYN"]
    argv += ["--from", "2024-01-02", "--param", "b.order_qty=0", "--store", str(store_root)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("hftlab: error: strategy b: OneTickMMParams parameter order_qty=0")


# --- help ------------------------------------------------------------------------------------
def _subparsers(parser: argparse.ArgumentParser, path: str = "hftlab"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub
                yield from _subparsers(sub, f"{path} {name}")


def test_every_option_of_every_command_has_help() -> None:
    missing = [
        f"{path} {action.dest}"
        for path, sub in _subparsers(build_parser())
        for action in sub._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and not action.help
    ]
    assert missing == []


def test_help_names_every_queue_model_and_latency_form(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for form in ("risk_averse", "power[:n]", "log", "fifo", "0 < n <= 10", "constant:1ms",
                 "feed[:MULT[,MULT]]", "empirical:FILE.csv"):  # fmt: skip
        assert form in out, form


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["data", "sql", "--help"], ["events_named", "days", "kind, side, flags as names"]),
        (["data", "info", "--help"], ["VENUE[/SYMBOL[/DATE]]", "whole store"]),
        (["book", "replay", "--help"], ["ask_px_1, ask_sz_1, bid_px_1, bid_sz_1", "--header",
                                        "local_time (ISO-8601 UTC)"]),
    ],
)  # fmt: skip
def test_help_says_what_a_command_shows(
    capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    out = " ".join(capsys.readouterr().out.split())
    for needle in needles:
        assert needle in out, needle


# --- data info without a day -------------------------------------------------------------------
def test_info_without_an_argument_summarises_the_store(
    two_instruments: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "info", "--store", str(two_instruments)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"store {two_instruments}: 2 venue(s), 2 symbol(s), 3 day(s), ")
    assert "12 events" in out[0]
    assert out[1] == "span (UTC): 2024-01-02T14:30:00.000 -> 2024-01-03T14:30:00.000"  # local
    rows = {line.split()[0]: line.split() for line in out[3:]}
    assert rows["SIM/ABC"][1:4] == ["2", "2024-01-02", "2024-01-03"]
    assert rows["XNAS/AMZN"][1:5] == ["1", "2024-01-02", "2024-01-02", "4"]
    assert main(["data", "info", "XNAS", "--store", str(two_instruments)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "1 venue(s), 1 symbol(s), 1 day(s), 4 events" in out[0]


def test_info_on_an_empty_store_says_how_to_fill_it(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "info", "--store", str(store_root)]) == 0
    assert "is empty" in capsys.readouterr().out


# --- book replay: layout and header ------------------------------------------------------------
def test_book_replay_says_its_layout_and_writes_a_header_with_times(
    two_instruments: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["book", "replay", "--venue", "SIM", "--symbol", "ABC", "--date", "2024-01-02"]
    base += ["--levels", "2", "--store", str(two_instruments)]
    plain, headed = tmp_path / "plain.csv", tmp_path / "headed.csv"
    assert main([*base, "--out", str(plain)]) == 0
    out = capsys.readouterr().out
    assert "layout: LOBSTER orderbook layout, no header" in out
    assert "ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ... up to level 2" in out
    assert main([*base, "--out", str(headed), "--header"]) == 0
    assert "layout: a header line, then per message: local_time, local_ts, exch_ts" in (
        capsys.readouterr().out
    )
    lines = headed.read_text().splitlines()
    assert lines[0] == (
        "local_time,local_ts,exch_ts,ask_px_1,ask_sz_1,bid_px_1,bid_sz_1,"
        "ask_px_2,ask_sz_2,bid_px_2,bid_sz_2"
    )
    ts = TS
    # one row per FLAG_LAST event (the 2nd, 3rd and 4th), stamped with that event's times
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["2024-01-02T14:30:00.000001100Z", str(ts + 1_100), str(ts + 1_000)],
        ["2024-01-02T14:30:00.000002100Z", str(ts + 2_100), str(ts + 2_000)],
        ["2024-01-02T14:30:00.000003100Z", str(ts + 3_100), str(ts + 3_000)],
    ]
    # after the time columns, the same book as without --header
    assert [line.split(",", 3)[3] for line in lines[1:]] == plain.read_text().splitlines()


# --- SQL with names ----------------------------------------------------------------------------
def test_sql_events_named_shows_what_dump_shows(
    two_instruments: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", str(two_instruments)]
    assert main(["data", "dump", "SIM/ABC/2024-01-02", *store]) == 0
    dumped = capsys.readouterr().out.strip().splitlines()[1:]
    named = TickStore(two_instruments).sql(
        "SELECT exch_ts, local_ts, kind, side, price, qty, order_id, flags FROM events_named "
        "WHERE symbol = 'ABC' AND date = '2024-01-02' ORDER BY local_ts"
    )
    assert named.write_csv(include_header=False).strip().splitlines() == dumped
    # the numeric view is unchanged
    raw = TickStore(two_instruments).sql(
        "SELECT kind, side, price, qty FROM events WHERE symbol = 'ABC' ORDER BY date, local_ts"
    )
    assert raw.rows()[:2] == [(KIND_LEVEL, BUY, 10100, 1500), (KIND_LEVEL, SELL, 10102, 2000)]
    assert main(["data", "sql", "SELECT * FROM days ORDER BY venue, date", *store]) == 0
    assert "XNAS" in capsys.readouterr().out
