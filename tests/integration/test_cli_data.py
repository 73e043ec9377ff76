"""`hftlab data ...` end to end, in-process (the same entry point as the console command)."""

import datetime as dt
import json
import subprocess
import sys

import pytest

from framework.cli import main
from framework.core import Instrument
from framework.core.events import BUY, FLAG_LAST, KIND_ADD, KIND_TRADE, SELL, make_events
from framework.store import TickStore

DAY = dt.date(2024, 1, 2)


@pytest.fixture
def filled_store(store_root):
    inst = Instrument(venue="SIM", symbol="ABC", tick_size="0.01", lot_size="0.001")
    ev = make_events(
        exch_ts=[1_704_205_800_000_000_000, 1_704_205_800_000_001_000],
        local_ts=[1_704_205_800_000_100_000, 1_704_205_800_000_101_000],
        price=[10101, 10102],
        qty=[1500, 2],
        order_id=[7, 0],
        kind=[KIND_ADD, KIND_TRADE],
        side=[BUY, SELL],
        flags=[FLAG_LAST, FLAG_LAST],
    )
    TickStore(store_root).write(inst, DAY, ev)
    return store_root


def test_ls_on_empty_store_says_how_to_fill_it(store_root, capsys):
    assert main(["data", "ls", "--store", str(store_root)]) == 0
    assert "is empty" in capsys.readouterr().out


def test_ls_and_info_show_rows_span_kinds_and_bytes(filled_store, capsys):
    assert main(["data", "ls", "--store", str(filled_store)]) == 0
    out = capsys.readouterr().out
    assert "SIM/ABC/2024-01-02" in out
    assert main(["data", "info", "SIM/ABC/2024-01-02", "--store", str(filled_store)]) == 0
    out = capsys.readouterr().out
    assert "2 events" in out
    assert "bytes/event" in out
    assert "add 1 (50.0%)" in out
    assert "trade 1 (50.0%)" in out
    assert "2024-01-02T14:30:00.000" in out  # span in UTC


def test_dump_csv_and_jsonl_in_real_units(filled_store, capsys):
    assert main(["data", "dump", "SIM/ABC/2024-01-02", "--store", str(filled_store)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "exch_ts,local_ts,kind,side,price,qty,order_id,flags"
    assert lines[1].split(",")[2:] == ["add", "buy", "101.01", "1.5", "7", "last"]
    assert (
        main(
            [
                "data",
                "dump",
                "SIM/ABC/2024-01-02",
                "--limit",
                "1",
                "--format",
                "jsonl",
                "--store",
                str(filled_store),
            ]
        )
        == 0
    )
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 1
    assert rows[0]["price"] == 101.01
    assert rows[0]["kind"] == "add"


def test_sql_runs_duckdb_over_the_store(filled_store, capsys):
    q = "SELECT symbol, sum(qty) AS q FROM events GROUP BY symbol"
    assert main(["data", "sql", q, "--store", str(filled_store)]) == 0
    out = capsys.readouterr().out
    assert "ABC" in out
    assert "1502" in out


def test_bad_sql_is_one_line_error(filled_store, capsys):
    assert main(["data", "sql", "SELEKT 1", "--store", str(filled_store)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("hftlab: error: SQL failed")


def test_rm_deletes_a_day(filled_store, capsys):
    assert main(["data", "rm", "SIM/ABC/2024-01-02", "--store", str(filled_store)]) == 0
    assert TickStore(filled_store).keys() == []


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["data", "info", "SIM/NOPE"], "nothing stored for SIM/NOPE"),
        (["data", "info", "a/b/c/d"], "is not VENUE/SYMBOL"),
        (["data", "info", "garbage"], "nothing stored for venue garbage"),
        (["data", "dump", "SIM/ABC/2024-02-30"], "does not parse"),
        (["data", "dump", "SIM/ABC/2024-01-09"], "no stored day SIM/ABC/2024-01-09"),
        (["data", "import", "lobster", "/no/such/file.csv"], "/no/such/file.csv"),
    ],
)
def test_user_errors_are_one_line_naming_the_problem(filled_store, capsys, argv, needle):
    rc = main([*argv, "--store", str(filled_store)])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert needle in err[0]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["data", "import", "csv", "x"], "invalid choice: 'csv'"),
        (["data", "import", "lobster", "x", "--date", "2012-13-01"], "does not parse"),
        (["data", "frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert needle in err[0]


def test_console_entry_point_runs_as_module(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "framework", "data", "ls", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert "is empty" in proc.stdout
