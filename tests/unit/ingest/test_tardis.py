"""Tardis CSV datasets: the five real samples, exact values, gzip and bad headers."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from framework.core.errors import DataError, FormatError
from framework.core.events import (
    BUY,
    FLAG_IMPLIED,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    NO_SIDE,
    SELL,
)
from framework.ingest.base import ImportOptions, ImportResult, get_importer
from framework.ingest.tardis import import_tardis

TARDIS = "crypto_nautilus_tardis_binance_samples/tardis"


def _imp(shared_data: Path, name: str, **extra: str) -> ImportResult:
    return import_tardis([shared_data / TARDIS / name], ImportOptions(extra=extra))


def test_incremental_book_l2_snapshot_run_starts_with_a_clear(shared_data: Path) -> None:
    res = _imp(shared_data, "deribit_incremental_book_L2_BTC-PERPETUAL.csv")
    assert (res.report.rows_read, dict(res.report.rejected)) == (15, {})
    day = res.days[0]
    inst = day.instrument
    assert (inst.key, str(inst.tick_size), str(inst.lot_size), inst.currency) == (
        "DERIBIT/BTC-PERPETUAL", "0.1", "1", "USD")
    assert str(day.date) == "2020-04-01"
    ev = day.events
    assert len(ev) == 16
    assert ev["kind"][0] == KIND_CLEAR
    assert ev["flags"][0] == FLAG_SNAPSHOT | FLAG_IMPLIED
    # row 1: deribit,BTC-PERPETUAL,1585699200245000,1585699200355684,true,ask,6421.5,18640
    assert ev[["exch_ts", "local_ts", "price", "qty", "side", "kind"]][1].tolist() == (
        1585699200245000000, 1585699200355684000, 64215, 18640, SELL, KIND_LEVEL)
    assert ev["price"][1] * inst.tick_size == Decimal("6421.5")
    # one FLAG_LAST per group of rows sharing a local_timestamp
    groups = len(np.unique(ev["local_ts"]))
    assert int(np.count_nonzero(ev["flags"] & FLAG_LAST)) == groups
    assert bool(ev["flags"][-1] & FLAG_LAST)


def test_tick_size_option_stores_the_venue_grid(shared_data: Path) -> None:
    res = _imp(shared_data, "deribit_incremental_book_L2_BTC-PERPETUAL.csv", tick_size="0.5")
    assert dict(res.report.rejected) == {}
    assert res.days[0].events["price"][1] == 12843  # 6421.5 / 0.5


def test_too_coarse_tick_size_rejects_off_grid_rows_with_a_reason(shared_data: Path) -> None:
    res = _imp(shared_data, "deribit_incremental_book_L2_BTC-PERPETUAL.csv", tick_size="1")
    (reason, n), = res.report.rejected.items()
    assert reason == "price off the 1 tick grid of DERIBIT/BTC-PERPETUAL"
    src = (shared_data / TARDIS / "deribit_incremental_book_L2_BTC-PERPETUAL.csv").read_text()
    assert n == sum(1 for line in src.splitlines()[1:] if line.split(",")[6].endswith(".5"))


def test_trades_with_uuid_ids_get_stable_63_bit_hashes(shared_data: Path) -> None:
    res = _imp(shared_data, "bitmex_trades_XBTUSD.csv")
    assert (res.report.rows_read, dict(res.report.rejected)) == (10, {})
    inst = res.days[0].instrument
    assert (inst.key, str(inst.tick_size), str(inst.lot_size)) == ("BITMEX/XBTUSD", "0.1", "1")
    ev = res.days[0].events
    assert np.all(ev["kind"] == KIND_TRADE)
    assert np.all(ev["flags"] == FLAG_LAST)
    # row 1: id ccc3c1fa-..., sell, 8531.5, 2152
    assert ev[["price", "qty", "side"]][0].tolist() == (85315, 2152, SELL)
    assert np.all(ev["order_id"] < np.uint64(1 << 63))
    assert len(np.unique(ev["order_id"])) == 10
    again = _imp(shared_data, "bitmex_trades_XBTUSD.csv").days[0].events
    assert np.array_equal(ev["order_id"], again["order_id"])


def test_trade_side_unknown_and_numeric_ids(tmp_path: Path) -> None:
    p = tmp_path / "binance_trades_BTCUSDT.csv.gz"
    p.write_bytes(gzip.compress(
        b"exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        b"binance,BTCUSDT,1598918400000000,1598918400100000,42,unknown,11649.51,1e-05\n"
        b"binance,BTCUSDT,1598918400000000,1598918400200000,43,buy,11649.52,0.002\n"))
    res = import_tardis([p], ImportOptions())
    assert dict(res.report.rejected) == {}
    inst = res.days[0].instrument
    assert (inst.key, str(inst.lot_size), inst.currency) == ("BINANCE/BTCUSDT", "0.00001",
                                                             "USDT")
    ev = res.days[0].events
    assert ev[["order_id", "side", "price", "qty"]].tolist() == [
        (42, NO_SIDE, 1164951, 1), (43, BUY, 1164952, 200)]


@pytest.mark.parametrize(("name", "levels"), [
    ("binance-futures_book_snapshot_5_BTCUSDT.csv", 5),
    ("binance-futures_book_snapshot_25_BTCUSDT.csv", 25),
])
def test_book_snapshot_rows_become_clear_plus_levels(
    shared_data: Path, name: str, levels: int
) -> None:
    res = _imp(shared_data, name)
    assert (res.report.rows_read, dict(res.report.rejected)) == (10, {})
    inst = res.days[0].instrument
    assert (inst.key, str(inst.tick_size), str(inst.lot_size)) == (
        "BINANCE_FUTURES/BTCUSDT", "0.01", "0.001")
    ev = res.days[0].events
    per_row = 1 + 2 * levels
    assert len(ev) == 10 * per_row
    assert np.all(ev["flags"] & FLAG_SNAPSHOT)
    assert np.array_equal(np.flatnonzero(ev["kind"] == KIND_CLEAR), np.arange(10) * per_row)
    assert int(np.count_nonzero(ev["flags"] & FLAG_LAST)) == 10
    first = ev[1:per_row]
    # row 1: asks[0] 11657.08 x 1.714, bids[0] 11657.07 x 10.896
    bid0 = first[(first["side"] == BUY)][0]
    ask0 = first[(first["side"] == SELL)][0]
    assert (int(bid0["price"]), int(bid0["qty"])) == (1165707, 10896)
    assert (int(ask0["price"]), int(ask0["qty"])) == (1165708, 1714)
    assert ask0["qty"] * inst.lot_size == Decimal("1.714")


def test_quotes_become_two_bbo_events(shared_data: Path) -> None:
    res = _imp(shared_data, "huobi-dm-swap_quotes_BTC-USD.csv")
    assert (res.report.rows_read, dict(res.report.rejected)) == (10, {})
    inst = res.days[0].instrument
    assert (inst.key, str(inst.tick_size), str(inst.lot_size), inst.currency) == (
        "HUOBI_DM_SWAP/BTC-USD", "0.1", "1", "USD")
    ev = res.days[0].events
    assert np.all(ev["kind"] == KIND_BBO)
    # row 1: ask_amount 5494, ask 8629.3, bid 8629.2, bid_amount 806
    assert ev[["side", "price", "qty", "flags"]][:2].tolist() == [
        (BUY, 86292, 806, 0), (SELL, 86293, 5494, FLAG_LAST)]


def test_gzipped_csv_imports_the_same(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / TARDIS / "bitmex_trades_XBTUSD.csv"
    gz = tmp_path / "bitmex_trades_XBTUSD.csv.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    a = import_tardis([src], ImportOptions()).days[0].events
    b = import_tardis([gz], ImportOptions()).days[0].events
    assert np.array_equal(a, b)


def test_wrong_header_raises_format_error_naming_file_and_expected_columns(
    tmp_path: Path,
) -> None:
    p = tmp_path / "deribit_trades_BTC-PERPETUAL.csv"
    p.write_text("exchange,symbol,time,price\nderibit,BTC-PERPETUAL,1,2\n")
    with pytest.raises(FormatError) as err:
        import_tardis([p], ImportOptions())
    text = str(err.value)
    assert str(p) in text
    assert "exchange,symbol,timestamp,local_timestamp,id,side,price,amount" in text


def test_header_disagreeing_with_the_file_name_is_a_format_error(
    shared_data: Path, tmp_path: Path
) -> None:
    p = tmp_path / "deribit_quotes_X.csv"
    p.write_bytes((shared_data / TARDIS / "bitmex_trades_XBTUSD.csv").read_bytes())
    with pytest.raises(FormatError, match="not a Tardis quotes file"):
        import_tardis([p], ImportOptions())


def test_bad_rows_are_counted_not_fatal(tmp_path: Path) -> None:
    p = tmp_path / "x_incremental_book_L2.csv"
    p.write_text(
        "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
        "deribit,ETH-PERPETUAL,1,10,false,bid,100.5,3\n"
        "deribit,ETH-PERPETUAL,x,11,false,bid,100.5,3\n"
        "deribit,ETH-PERPETUAL,2,12,false,middle,100.5,3\n"
        "deribit,ETH-PERPETUAL,3,13,false,ask,abc,3\n")
    res = import_tardis([p], ImportOptions())
    rep = res.report
    assert dict(rep.rejected_rows) == {
        "unparseable timestamp": 1, "unknown book side (expected bid/ask)": 1}
    assert dict(rep.rejected) == {"unparseable price or quantity": 1}
    # text where a number or a side belongs is damage: each kind is located by its line
    assert rep.damaged == {"unparseable timestamp": "line 3",
                           "unknown book side (expected bid/ask)": "line 4",
                           "unparseable price or quantity": "x_incremental_book_L2.csv line 5"}
    assert rep.ledger() == (4, 2, 2, 2, 0, 1)  # events_written is set by run_import
    assert len(res.days[0].events) == 1


def test_missing_file_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        import_tardis([tmp_path / "none.csv"], ImportOptions())


def test_importer_is_registered_as_tardis() -> None:
    assert get_importer("tardis") is import_tardis


def test_time_far_off_its_rows_other_time_is_damage_not_a_new_day(tmp_path: Path) -> None:
    p = tmp_path / "bitmex_trades_XBTUSD.csv"
    rows = [f"bitmex,XBTUSD,{1_585_699_200_000_000 + k},{1_585_699_200_000_900 + k},{k + 1},buy,"
            "6500.5,10" for k in range(5)]
    rows[2] = rows[2].replace(",1585699200000902,", ",1595699200000902,")  # a flipped digit
    p.write_text("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                 + "\n".join(rows) + "\n")
    res = import_tardis([p], ImportOptions())
    reason = ("local_timestamp more than an hour off the timestamp (the file's other rows agree "
              "within it)")
    assert res.report.rejected_rows == {reason: 1}
    assert res.report.damaged == {reason: "line 4"}
    assert [len(d.events) for d in res.days] == [4]


def test_trades_without_an_id_are_never_taken_for_repeats(tmp_path: Path) -> None:
    p = tmp_path / "bitmex_trades_XBTUSD.csv"
    row = "bitmex,XBTUSD,1585699200000000,1585699200000900,,buy,6500.5,10"
    p.write_text("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                 + f"{row}\n{row}\n")
    res = import_tardis([p], ImportOptions())
    assert res.days[0].events["order_id"].tolist() == [0, 0]
    assert not res.report.rejected
