"""What every importer shares: the report's ledgers and damage, run_import's refusals, the
time-order check, reading (possibly damaged) gzip and checking CSV lines."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.core.errors import DataError, FormatError
from framework.ingest.base import (
    ImportOptions,
    ImportReport,
    printable_name,
    run_import,
    time_order_bad,
)
from framework.ingest.csv_text import LINE, read_csv_text
from framework.ingest.rawfile import read_input

TRADES = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"


def _trade(k: int) -> str:
    return f"bitmex,XBTUSD,{1_585_699_200_000_000 + k},{1_585_699_200_000_500 + k},{k},buy,10.5,1\n"


# --- time order -----------------------------------------------------------------------------


def _longest_sorted_earliest(ts: list[int]) -> tuple[int, ...]:
    """Brute force: the lexicographically earliest longest non-decreasing index subsequence."""
    for r in range(len(ts), -1, -1):
        for comb in itertools.combinations(range(len(ts)), r):
            if all(ts[a] <= ts[b] for a, b in itertools.pairwise(comb)):
                return comb
    return ()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=9))
def test_time_order_keeps_a_longest_sorted_run_and_the_earliest_rows_among_equals(
    ts: list[int],
) -> None:
    bad = time_order_bad(np.array(ts, np.int64))
    assert tuple(np.flatnonzero(~bad).tolist()) == _longest_sorted_earliest(ts)


def test_one_time_that_jumps_ahead_costs_one_row_not_every_row_after_it() -> None:
    ts = np.array([1, 2, 10**12, 3, 4, 5], np.int64)
    assert np.flatnonzero(time_order_bad(ts)).tolist() == [2]
    assert not time_order_bad(np.arange(5, dtype=np.int64)).any()


# --- the report -----------------------------------------------------------------------------


def test_report_ledgers_add_up_and_name_their_units() -> None:
    rep = ImportReport(source="x.csv", unit="lines", rows_read=10, rows_imported=7,
                       events_made=12)
    rep.reject_rows("malformed JSON line", 2)
    rep.damage("lines that are not a CSV row of 8 text fields", 1, at="line 4")
    rep.reject("price off the 0.1 tick grid of V/S", 3)
    rep.events_written = 9
    assert rep.ledger() == (10, 7, 3, 12, 9, 3)
    lines = rep.summary_lines()
    assert lines[0] == ("x.csv: read 10 lines = 7 imported + 3 rejected; "
                        "made 12 events = 9 written + 3 rejected")
    assert "  rejected 2 lines: malformed JSON line" in lines
    assert "  rejected 3 events: price off the 0.1 tick grid of V/S" in lines
    assert "  damaged input: lines that are not a CSV row of 8 text fields (first at line 4)" \
        in lines


def test_damage_in_bytes_and_missing_data_is_summarised_in_one_phrase() -> None:
    rep = ImportReport(source="f.itch", unit="messages")
    rep.damage("bytes that frame no ITCH 5.0 message", 17, at="f.itch offset 40", unit="bytes")
    rep.damage("gzip stream cut: the file ends inside it", at="compressed byte 9")
    assert rep.rows_rejected == 0
    assert rep.bytes_skipped == {"bytes that frame no ITCH 5.0 message": 17}
    assert rep.damage_summary() == ("bytes that frame no ITCH 5.0 message (17 bytes, first at "
                                    "f.itch offset 40); and 1 more kind(s) of damage")


def test_printable_names_are_text_not_bytes_a_corruption_made() -> None:
    assert printable_name("ABR-A")
    assert printable_name("BRK A")
    assert not printable_name("AB\x07C")
    assert not printable_name("   ")
    assert not printable_name("Ä")


# --- run_import ---------------------------------------------------------------------------


def test_damaged_input_fails_unless_partial_is_allowed(tmp_path: Path) -> None:
    p = tmp_path / "bitmex_trades_XBTUSD.csv"
    p.write_text(TRADES + _trade(1) + "bitmex,XBTUSD,\x01\x02\n" + _trade(2))
    with pytest.raises(DataError, match=r"^bitmex_trades_XBTUSD\.csv: damaged input: lines that "
                                        r"are not a CSV row of 8 text fields \(1 rows, first at "
                                        r"line 3\); nothing was written\. Pass --allow-partial"):
        run_import("tardis", [p], ImportOptions())
    res = run_import("tardis", [p], ImportOptions(extra={"allow_partial": True}))
    assert res.report.ledger() == (3, 2, 1, 2, 2, 0)
    assert res.report.events_written == len(res.days[0].events) == 2


def test_input_that_makes_no_events_is_an_error_saying_why(tmp_path: Path) -> None:
    p = tmp_path / "bitmex_trades_XBTUSD.csv"
    p.write_text(TRADES + _trade(1).replace("10.5", "abc"))
    with pytest.raises(DataError, match=r"nothing to import: 1 rows read, no events made it "
                                        r"\(rejected 1 events: unparseable price"):
        run_import("tardis", [p], ImportOptions(extra={"allow_partial": True}))


# --- gzip ---------------------------------------------------------------------------------


def _gz(text: bytes) -> bytes:
    return gzip.compress(text, mtime=0)


def test_gzip_members_are_read_whole_and_trailing_nuls_are_padding(tmp_path: Path) -> None:
    p = tmp_path / "x.gz"
    p.write_bytes(_gz(b"a\n") + _gz(b"b\n") + bytes(8))
    rep = ImportReport(source="x")
    assert read_input(p, rep) == b"a\nb\n"
    assert not rep.damaged


def test_damaged_gzip_keeps_what_decodes_and_counts_the_damage(tmp_path: Path) -> None:
    text = b"".join(b"%06d some line of a capture\n" % k for k in range(20_000))
    whole = _gz(text)
    p = tmp_path / "x.gz"
    p.write_bytes(whole[: len(whole) // 2])  # cut
    rep = ImportReport(source="x")
    got = read_input(p, rep)
    assert text.startswith(got)
    assert len(got) > len(text) // 3
    assert list(rep.damaged) == ["gzip stream cut: the file ends inside it (an interrupted copy?)"]
    bad = bytearray(whole)
    bad[len(bad) // 2] ^= 0xFF  # corrupt in the middle: a prefix still decodes
    p.write_bytes(bytes(bad))
    rep = ImportReport(source="x")
    got = read_input(p, rep)
    assert len(got) > len(text) // 4
    (reason,) = rep.damaged
    assert reason.startswith("gzip data corrupt")
    assert sum(rep.bytes_skipped.values()) > 0
    p.write_bytes(whole + b"garbage")
    rep = ImportReport(source="x")
    assert read_input(p, rep) == text
    assert rep.bytes_skipped == {"bytes after the gzip stream that are not gzip": 7}


def test_gzip_that_decodes_to_nothing_is_one_format_error(tmp_path: Path) -> None:
    p = tmp_path / "x.gz"
    p.write_bytes(b"\x1f\x8b" + bytes(30))
    with pytest.raises(FormatError, match=r"x\.gz: gzip data is corrupt .*nothing decodes"):
        read_input(p, ImportReport(source="x"))
    p.write_bytes(b"")
    with pytest.raises(FormatError, match="empty file"):
        read_input(p, ImportReport(source="x"))


# --- CSV lines ------------------------------------------------------------------------------


def test_csv_lines_with_the_wrong_field_count_or_binary_bytes_are_damaged(tmp_path: Path) -> None:
    data = b"a,b,c\r\n1,2,3\r\n4,5\r\n\r\n6,\xff,8\r\n9,\"x,y\r\n10,11,12"
    rep = ImportReport(source="x")
    df = read_csv_text(tmp_path / "x.csv", data, rep)
    # quotes are plain characters (no importer's CSV quotes): they never swallow lines
    assert df.rows() == [("1", "2", "3", 2), ("9", '"x', "y", 6), ("10", "11", "12", 7)]
    assert df.columns == ["a", "b", "c", LINE]
    assert rep.rows_read == 5  # the blank line holds nothing
    assert rep.rejected_rows == {"lines that are not a CSV row of 3 text fields": 2}
    assert rep.damaged == {"lines that are not a CSV row of 3 text fields": "line 3"}
