"""`hftlab data import` on damaged input: one error line and nothing stored, or with
--allow-partial an import whose report counts what was skipped."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from framework.cli import main
from framework.store import TickStore
from tests.store_helpers import store_files


def _itch(*msgs: bytes) -> bytes:
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def _add(ref: int, ts: int) -> bytes:
    return (b"A" + struct.pack(">HH", 7, 0) + ts.to_bytes(6, "big") + struct.pack(">Q", ref)
            + b"B" + struct.pack(">I", 100) + b"ABC     " + struct.pack(">I", 1_000_000))


def _files(store: Path) -> list[Path]:
    """The store's files but the writers' lock (``.staging/.lock`` stays once a write ran)."""
    return [p for p in store_files(store) if p.is_file()]


def test_damaged_itch_file_fails_in_one_line_and_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _itch(*(_add(k, 34_200_000_000_000 + k) for k in range(1, 6)))
    p = tmp_path / "01022024.NASDAQ_ITCH50"
    p.write_bytes(good[:76] + b"\x13\x37" + good[76:])  # two bytes inserted after message 2
    store = tmp_path / "store"
    assert main(["data", "import", "itch", str(p), "--store", str(store)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("hftlab: error: 01022024.NASDAQ_ITCH50: damaged input: bytes that "
                          "frame no ITCH 5.0 message")
    assert "(2 bytes, first at 01022024.NASDAQ_ITCH50 offset 76)" in err
    assert "--allow-partial" in err
    assert _files(store) == []

    assert main(["data", "import", "itch", str(p), "--store", str(store), "--allow-partial"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == ("01022024.NASDAQ_ITCH50: read 5 messages = 5 imported + 0 "
                                   "rejected; made 5 events = 5 written + 0 rejected")
    assert "damaged input: bytes that frame no ITCH 5.0 message" in out
    assert len(TickStore(store).read("XNAS", "ABC", "2024-01-02")) == 5


def test_cut_gzip_capture_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    line = '1723161000000000000 {"stream":"btcusdt@trade","data":{"E":1723161000000,"t":%d,' \
           '"p":"100.5","q":"0.1","m":true}}\n'
    data = gzip.compress("".join(line % k for k in range(2_000)).encode(), mtime=0)
    p = tmp_path / "btcusdt_20240809.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    store = tmp_path / "store"
    assert main(["data", "import", "binance", str(p), "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "gzip stream cut: the file ends inside it" in err
    assert _files(store) == []
    assert main(["data", "import", "binance", str(p), "--store", str(store),
                 "--allow-partial"]) == 0
    out = capsys.readouterr().out
    assert "damaged input: gzip stream cut" in out
    assert len(_files(store)) == 1


def test_lobster_message_file_alone_imports_from_an_empty_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "XYZ_2012-06-21_34200000_57600000_message_1.csv"
    p.write_text("34200.1,1,1,100,100000,1\n34200.2,3,9,50,100100,-1\n")
    store = tmp_path / "store"
    assert main(["data", "import", "lobster", str(p), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "read 2 rows = 2 imported + 0 rejected; made 3 events = 3 written" in out
    assert "no orderbook file" in out
    assert "1 orders (50 lots, 1 messages) are cancelled, executed or deleted but never added" \
        in out
    assert len(TickStore(store).read("XNAS", "XYZ", "2012-06-21")) == 3


def test_import_help_lists_allow_partial(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["data", "import", "--help"])
    assert "--allow-partial" in capsys.readouterr().out
