"""Binance importer: raw websocket captures (with a bookTicker oracle) and Nautilus fixtures."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framework.core.errors import ConfigError, DataError, FormatError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
)
from framework.ingest.base import ImportOptions, ImportResult, get_importer
from framework.ingest.binance import import_binance
from framework.ingest.decimal_text import floats_to_scaled, parse_decimals

RAW = "crypto_hftbacktest_binance_raw_feed"
NAUT = "crypto_nautilus_tardis_binance_samples/binance"
PRESYNC = "depth diff before snapshot sync"


@pytest.fixture(scope="module")
def usdm(shared_data: Path) -> ImportResult:
    return import_binance([shared_data / RAW / "binance_usdm_btcusdt_20240808.gz"], ImportOptions())


@pytest.fixture(scope="module")
def spot(shared_data: Path) -> ImportResult:
    return import_binance([shared_data / RAW / "binance_spot_btcusdt_20240808.gz"], ImportOptions())


def _one_day(res: ImportResult) -> np.ndarray:
    assert len(res.days) == 1
    return res.days[0].events


# --- decimals ----------------------------------------------------------------------------


def test_decimal_strings_parse_exactly_including_exponents_and_garbage() -> None:
    s = parse_decimals(["61837.63000000", "0.00100000", "1e-05", "-3", "", "1.2.3"])
    assert s.scale == 5
    assert s.value.tolist() == [6183763000, 100, 1, -300000, 0, 0]
    assert s.bad.tolist() == [False, False, False, False, True, True]


def test_float_columns_snap_to_their_decimal_grid() -> None:
    s = floats_to_scaled([0.00031099999999999997, 39432.48, float("nan")])
    assert s.scale == 6
    assert s.value[:2].tolist() == [311, 39432480000]
    assert s.bad.tolist() == [False, False, True]


# --- raw captures ------------------------------------------------------------------------


def test_usdm_capture_imports_with_only_presync_diffs_rejected(usdm: ImportResult) -> None:
    rep = usdm.report
    assert rep.rows_read == 93_954
    # the 4 diffs received before the REST snapshot are all covered by it (u <= lastUpdateId)
    assert (dict(rep.rejected_rows), dict(rep.rejected)) == ({PRESYNC: 4}, {})
    # every line is accounted for: imported (made events) or rejected
    assert rep.ledger()[:3] == (93_954, 93_950, 4)
    inst = usdm.days[0].instrument
    assert (inst.key, str(inst.tick_size), str(inst.lot_size)) == ("BINANCE_USDM/BTCUSDT",
                                                                    "0.1", "0.001")
    assert (inst.asset_class, inst.currency, str(usdm.days[0].date)) == ("crypto", "USDT",
                                                                         "2024-08-08")
    assert "binance_usdm_btcusdt_20240808.gz: 6547 depth diffs applied, 0 sequence gap(s)" \
        in rep.notes
    assert not [n for n in rep.notes if "depth gap" in n]


def test_spot_capture_imports_and_infers_the_finest_lot_used(spot: ImportResult) -> None:
    rep = spot.report
    assert rep.rows_read == 41_249
    assert (dict(rep.rejected_rows), dict(rep.rejected)) == ({PRESYNC: 2}, {})
    inst = spot.days[0].instrument
    # BTCUSDT spot trades in 0.00001 lots, but 3 far levels (74000, 80000, 200000) still hold
    # 6-decimal quantities such as 25.426189: the finest grid used in the file is 0.000001
    assert (inst.key, str(inst.tick_size), str(inst.lot_size)) == ("BINANCE/BTCUSDT",
                                                                   "0.01", "0.000001")
    assert "binance_spot_btcusdt_20240808.gz: 3449 depth diffs applied, 0 sequence gap(s)" \
        in rep.notes


def test_spot_lot_size_option_rejects_the_three_finer_levels(shared_data: Path) -> None:
    res = import_binance([shared_data / RAW / "binance_spot_btcusdt_20240808.gz"],
                         ImportOptions(extra={"lot_size": "0.00001", "market": "spot"}))
    assert dict(res.report.rejected_rows) == {PRESYNC: 2}
    assert dict(res.report.rejected) == {"quantity off the 0.00001 lot grid of BINANCE/BTCUSDT": 3}


@pytest.mark.shared_data  # through request.getfixturevalue
@pytest.mark.parametrize(
    ("which", "depth", "bbo", "trades"),
    [("usdm", 6_551, 66_089, 21_313), ("spot", 3_451, 28_040, 9_757)],
)
def test_message_counts_per_stream_match_source_txt(
    which: str, depth: int, bbo: int, trades: int, request: pytest.FixtureRequest
) -> None:
    res: ImportResult = request.getfixturevalue(which)
    ev = _one_day(res)
    last = (ev["flags"] & FLAG_LAST) != 0
    snap = (ev["flags"] & FLAG_SNAPSHOT) != 0
    applied = int(np.count_nonzero(last & (ev["kind"] == KIND_LEVEL) & ~snap))
    assert applied + res.report.rejected_rows[PRESYNC] == depth
    assert int(np.count_nonzero(ev["kind"] == KIND_CLEAR)) == 1  # the one REST snapshot
    assert int(np.count_nonzero(ev["kind"] == KIND_BBO)) == 2 * bbo
    assert int(np.count_nonzero(last & (ev["kind"] == KIND_BBO))) == bbo
    assert int(np.count_nonzero(ev["kind"] == KIND_TRADE)) == trades
    # exactly one FLAG_LAST per source message, rows ordered by local_ts
    assert int(np.count_nonzero(last)) == applied + 1 + bbo + trades
    assert np.all(np.diff(ev["local_ts"]) >= 0)


def _depth_tops(ev: np.ndarray) -> dict[int, tuple[int, int]]:
    """Reference L2 book: best (bid, ask) after every depth message, keyed by its update id."""
    book: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}
    best = {BUY: None, SELL: None}
    tops: dict[int, tuple[int, int]] = {}
    sel = (ev["kind"] == KIND_LEVEL) | (ev["kind"] == KIND_CLEAR)
    rows = zip(ev["kind"][sel].tolist(), ev["side"][sel].tolist(), ev["price"][sel].tolist(),
               ev["qty"][sel].tolist(), ev["order_id"][sel].tolist(),
               ev["flags"][sel].tolist(), strict=True)
    for kind, side, px, qty, oid, flags in rows:
        if kind == KIND_CLEAR:
            book = {BUY: {}, SELL: {}}
            best = {BUY: None, SELL: None}
        else:
            levels = book[side]
            better = max if side == BUY else min
            if qty:
                levels[px] = qty
                b = best[side]
                best[side] = px if b is None else better(b, px)
            else:
                levels.pop(px, None)
                if best[side] == px:
                    best[side] = better(levels) if levels else None
        if flags & FLAG_LAST and best[BUY] is not None and best[SELL] is not None:
            tops[oid] = (best[BUY], best[SELL])
    return tops


@pytest.mark.shared_data  # through request.getfixturevalue
@pytest.mark.parametrize("which", ["usdm", "spot"])
def test_oracle_book_top_equals_every_bookticker_with_the_same_update_id(
    which: str, request: pytest.FixtureRequest
) -> None:
    """THE oracle: the depth stream rebuilt by a plain dict book agrees with bookTicker.

    A bookTicker carries the update id ``u`` it reflects; a depth diff ends at its own ``u``.
    Where the two ids coincide, both describe the book after the same update, so the best
    bid/ask must be equal. Measured fraction of bookTickers with a matching id: usdm
    629 / 66,089 (0.95 %), spot 564 / 28,040 (2.0 %): a diff's ``u`` is the last update of
    its batch, which touches the top only sometimes. All matches agree (100 %).
    """
    res: ImportResult = request.getfixturevalue(which)
    ev = _one_day(res)
    tops = _depth_tops(ev)
    bbo = ev[ev["kind"] == KIND_BBO]
    bid, ask = bbo[bbo["side"] == BUY], bbo[bbo["side"] == SELL]
    assert np.array_equal(bid["order_id"], ask["order_id"])
    matched = agree = 0
    for u, b, a in zip(bid["order_id"].tolist(), bid["price"].tolist(), ask["price"].tolist(),
                       strict=True):
        top = tops.get(u)
        if top is None:
            continue
        matched += 1
        agree += top == (b, a)
    expected = {"usdm": 629, "spot": 564}[which]
    assert matched == expected
    assert agree == matched


def test_usdm_values_are_exact_for_hand_checked_rows(usdm: ImportResult) -> None:
    ev = _one_day(usdm)
    inst = usdm.days[0].instrument
    # line 3: {"e":"trade","E":1723161256322,"t":5266583935,"p":"61800.30","q":"0.006","m":false}
    t = ev[(ev["kind"] == KIND_TRADE) & (ev["order_id"] == 5266583935)]
    assert len(t) == 1
    assert (int(t["price"][0]), int(t["qty"][0]), int(t["side"][0])) == (618003, 6, BUY)
    assert int(t["exch_ts"][0]) == 1723161256322 * 1_000_000
    assert int(t["local_ts"][0]) == 1723161255088176367
    assert t["price"][0] * inst.tick_size == Decimal("61800.30")
    assert t["qty"][0] * inst.lot_size == Decimal("0.006")
    # line 2 bookTicker u=5123107839020: b 61800.20 / B 2.507, a 61800.30 / A 2.510
    q = ev[(ev["kind"] == KIND_BBO) & (ev["order_id"] == 5123107839020)]
    assert q[["side", "price", "qty"]].tolist() == [(BUY, 618002, 2507), (SELL, 618003, 2510)]
    assert q["flags"].tolist() == [0, FLAG_LAST]
    # the REST snapshot (lastUpdateId 5123107852948) starts with a CLEAR at its line's time
    snap = ev[ev["order_id"] == 5123107852948]
    assert snap["kind"][0] == KIND_CLEAR
    assert len(snap) == 2001
    assert np.all(snap["flags"] & FLAG_SNAPSHOT)


def test_spot_values_are_exact_for_hand_checked_rows(spot: ImportResult) -> None:
    ev = _one_day(spot)
    inst = spot.days[0].instrument
    # line 4: trade t=3735683259 p "61837.63000000" q "0.02000000" m true -> aggressor SELL
    t = ev[(ev["kind"] == KIND_TRADE) & (ev["order_id"] == 3735683259)]
    assert (int(t["price"][0]), int(t["qty"][0]), int(t["side"][0])) == (6183763, 20000, SELL)
    assert t["qty"][0] * inst.lot_size == Decimal("0.02")
    # line 1886 diff level ["200000.00000000", "25.42618900"] (the 6-decimal residue)
    lv = ev[(ev["kind"] == KIND_LEVEL) & (ev["price"] == 20_000_000)
            & (ev["qty"] == 25_426_189)]
    assert len(lv) == 1
    assert lv["qty"][0] * inst.lot_size == Decimal("25.426189")
    assert lv["price"][0] * inst.tick_size == Decimal("200000.00")


def test_spot_bookticker_without_event_time_gets_the_latest_earlier_exchange_time(
    spot: ImportResult,
) -> None:
    ev = _one_day(spot)
    # line 3 bookTicker u=50093239212 follows line 2's depth diff with E=1723161255308
    q = ev[(ev["kind"] == KIND_BBO) & (ev["order_id"] == 50093239212)]
    assert q["exch_ts"].tolist() == [1723161255308 * 1_000_000] * 2


# --- synthetic captures: gaps, midnight, broken lines -------------------------------------


def _line(ts: int, obj: dict[str, Any]) -> str:
    return f"{ts} {json.dumps(obj)}"


def _diff(U: int, u: int, E: int, bid: str = "100.00") -> dict[str, Any]:
    return {"stream": "ethusdt@depth@100ms", "data": {"e": "depthUpdate", "E": E,
            "s": "ETHUSDT", "U": U, "u": u, "b": [[bid, "1.0"]], "a": [["101.00", "2.0"]]}}


def _write(tmp_path: Path, lines: list[str], name: str = "spot_ethusdt.gz") -> Path:
    p = tmp_path / name
    p.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return p


SNAP = {"lastUpdateId": 10, "bids": [["99.00", "5"]], "asks": [["102.00", "5"]]}


def test_sequence_gap_is_noted_and_later_diffs_are_rejected_without_a_new_snapshot(
    tmp_path: Path,
) -> None:
    t0 = 1_723_161_000_000_000_000
    lines = [_line(t0, _diff(5, 9, 1)), _line(t0 + 1, SNAP), _line(t0 + 2, _diff(10, 12, 2)),
             _line(t0 + 3, _diff(13, 14, 3)), _line(t0 + 4, _diff(20, 22, 4)),
             _line(t0 + 5, _diff(23, 25, 5))]
    res = import_binance([_write(tmp_path, lines)], ImportOptions())
    assert dict(res.report.rejected_rows) == {
        PRESYNC: 1, "depth diff after a sequence gap (no snapshot to resync)": 2}
    assert any("depth gap at line 5: expected U == 15" in n for n in res.report.notes)
    ev = res.days[0].events
    assert res.days[0].instrument.key == "BINANCE/ETHUSDT"
    assert ev["kind"].tolist() == [KIND_CLEAR] + [KIND_LEVEL] * 6


def test_gap_resyncs_on_the_next_snapshot(tmp_path: Path) -> None:
    t0 = 1_723_161_000_000_000_000
    snap2 = {**SNAP, "lastUpdateId": 30}
    lines = [_line(t0, SNAP), _line(t0 + 1, _diff(11, 12, 1)), _line(t0 + 2, _diff(20, 22, 2)),
             _line(t0 + 3, _diff(29, 31, 3, bid="100.50")), _line(t0 + 4, snap2),
             _line(t0 + 5, _diff(32, 33, 4))]
    res = import_binance([_write(tmp_path, lines)], ImportOptions())
    # diff 20-22 broke the chain and is covered by the new snapshot; 29-31 (received before
    # it) is applied right after it, at the snapshot line's local time
    assert dict(res.report.rejected_rows) == {PRESYNC: 1}
    ev = res.days[0].events
    applied = ev[(ev["order_id"] == 31)]
    assert applied["local_ts"].tolist() == [t0 + 4, t0 + 4]
    assert applied["price"].tolist() == [1005, 1010]  # finest grid used: 0.1


def test_capture_spanning_midnight_is_split_by_utc_day(tmp_path: Path) -> None:
    midnight = 1_723_161_600_000_000_000  # 2024-08-09T00:00Z
    def trade(t: int) -> dict[str, Any]:
        return {"stream": "ethusdt@trade", "data": {"e": "trade", "E": midnight // 10**6,
                                                    "t": t, "p": "100.5", "q": "0.1", "m": False}}

    lines = [_line(midnight - 5, trade(7)), _line(midnight + 5, trade(8))]
    res = import_binance([_write(tmp_path, lines, "x_20240808.gz")], ImportOptions())
    assert [str(d.date) for d in res.days] == ["2024-08-08", "2024-08-09"]
    assert [len(d.events) for d in res.days] == [1, 1]


def test_broken_json_line_is_rejected_with_its_line_number(
    tmp_path: Path, shared_data: Path
) -> None:
    src = shared_data / RAW / "binance_spot_btcusdt_20240808.gz"
    lines = gzip.decompress(src.read_bytes()).decode().splitlines()[:400]
    lines[99] = lines[99][:60]  # cut line 100 (a bookTicker) mid-JSON
    res = import_binance([_write(tmp_path, lines, "spot_btcusdt_20240808.gz")],
                         ImportOptions())
    assert res.report.rows_read == 400
    assert dict(res.report.rejected_rows) == {"malformed JSON line": 1, PRESYNC: 2}
    assert res.report.damaged == {"malformed JSON line": "spot_btcusdt_20240808.gz line 100"}
    assert any("malformed JSON line on line(s) 100" in n for n in res.report.notes)
    assert len(res.days[0].events) > 1000


def test_missing_file_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        import_binance([tmp_path / "nope.gz"], ImportOptions())


def test_itch_binary_passed_as_binance_raises_format_error(shared_data: Path) -> None:
    itch = next((shared_data / "itch50_binaryfile_real_heads").glob("*.itch"))
    with pytest.raises(FormatError, match="not a Binance file"):
        import_binance([itch], ImportOptions())


def test_unknown_market_option_raises_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, [_line(1_723_161_000_000_000_000, SNAP),
                             _line(1_723_161_000_000_000_001, _diff(11, 12, 1))])
    with pytest.raises(ConfigError, match="--market 'coinm'"):
        import_binance([path], ImportOptions(extra={"market": "coinm"}))


def test_importer_is_registered_as_binance() -> None:
    assert get_importer("binance") is import_binance


# --- NautilusTrader fixtures -----------------------------------------------------------


def test_nautilus_depth_snapshot_csv_becomes_clear_plus_levels(shared_data: Path) -> None:
    res = import_binance([shared_data / NAUT / "btcusdt-depth-snap.csv"], ImportOptions())
    assert (res.report.rows_read, res.report.rows_rejected, dict(res.report.rejected)) == (
        100, 0, {})
    inst = res.days[0].instrument
    assert (inst.key, str(inst.tick_size), str(inst.lot_size)) == ("BINANCE_USDM/BTCUSDT",
                                                                   "0.1", "0.001")
    ev = res.days[0].events
    assert len(ev) == 101
    assert ev["kind"][0] == KIND_CLEAR
    assert np.all(ev["flags"] & FLAG_SNAPSHOT)
    # row 1: b,snap,20377.00,1.770
    assert ev[["side", "price", "qty"]][1].tolist() == (BUY, 203770, 1770)
    assert int(np.count_nonzero(ev["flags"] & FLAG_LAST)) == 1
    assert set(ev["order_id"].tolist()) == {2098021528332}


def test_nautilus_depth_update_csv_levels_group_by_update_id(shared_data: Path) -> None:
    res = import_binance([shared_data / NAUT / "btcusdt-depth-update.csv"], ImportOptions())
    assert (res.report.rows_read, dict(res.report.rejected)) == (100, {})
    ev = res.days[0].events
    assert len(ev) == 100
    assert not np.any(ev["kind"] == KIND_CLEAR)
    # row 1: a,set,20472.80,0.000 (a removal)
    assert ev[["side", "price", "qty"]][0].tolist() == (SELL, 204728, 0)
    last = ev[(ev["flags"] & FLAG_LAST) != 0]
    assert len(np.unique(ev["order_id"])) == len(last)


def test_nautilus_trades_parquet(shared_data: Path) -> None:
    res = import_binance([shared_data / NAUT / "btcusdt-trades.parquet"], ImportOptions())
    assert (res.report.rows_read, dict(res.report.rejected)) == (2001, {})
    inst = res.days[0].instrument
    assert (inst.key, str(inst.tick_size), str(inst.lot_size)) == ("BINANCE/BTCUSDT", "0.01",
                                                                   "0.000001")
    ev = res.days[0].events
    # first rows: 39432.48 x 0.000263 buyer_maker True (SELL), 39439.44 x 0.004376 (BUY)
    assert ev[["price", "qty", "side", "order_id"]][:2].tolist() == [
        (3943248, 263, SELL, 553287559), (3943944, 4376, BUY, 553287560)]
    assert str(res.days[0].date) == "2021-01-08"


def test_nautilus_quotes_parquet(shared_data: Path) -> None:
    res = import_binance([shared_data / NAUT / "btcusdt-quotes.parquet"], ImportOptions())
    assert (res.report.rows_read, dict(res.report.rejected)) == (451, {})
    ev = res.days[0].events
    assert len(ev) == 902
    assert res.days[0].instrument.symbol == "BTCUSDT"
    # first row: bid 39432.99 x 0.0031, ask 39433.62 x 0.066851
    assert ev[["side", "price", "qty", "flags"]][:2].tolist() == [
        (BUY, 3943299, 3100, 0), (SELL, 3943362, 66851, FLAG_LAST)]


# --- damaged captures ---------------------------------------------------------------------


def _ethusdt(t0: int) -> list[str]:
    """A snapshot, two synced diffs, a bookTicker and a trade; E agrees with receive time."""
    e = t0 // 10**6
    bbo = {"stream": "ethusdt@bookTicker", "data": {"u": 14, "E": e, "b": "100.00", "B": "1",
                                                    "a": "101.00", "A": "2"}}
    trade = {"stream": "ethusdt@trade", "data": {"e": "trade", "E": e, "t": 5, "p": "100.5",
                                                 "q": "0.1", "m": True}}
    return [_line(t0, SNAP), _line(t0 + 1, _diff(11, 12, e)), _line(t0 + 2, _diff(13, 14, e)),
            _line(t0 + 3, bbo), _line(t0 + 4, trade)]


def test_repeated_lines_drop_as_repeats_without_breaking_the_depth_sync(tmp_path: Path) -> None:
    t0 = 1_723_161_000_000_000_000
    lines = _ethusdt(t0)
    lines.insert(3, lines[2])  # the second diff again
    lines.append(lines[-1])  # the trade again
    res = import_binance([_write(tmp_path, lines)], ImportOptions())
    rep = res.report
    assert dict(rep.rejected_rows) == {
        "depth diff already applied (a repeated or older update id)": 1}
    assert dict(rep.rejected) == {
        "repeated trade (same trade id, time, side, price and size)": 1}
    assert not rep.damaged
    assert not [n for n in rep.notes if "gap" in n and "0 sequence gap" not in n]


def test_shuffled_capture_imports_as_the_ordered_one(tmp_path: Path) -> None:
    t0 = 1_723_161_000_000_000_000
    lines = _ethusdt(t0)
    ordered = import_binance([_write(tmp_path, lines, "a_spot.gz")], ImportOptions())
    shuffled = [lines[k] for k in (4, 2, 0, 3, 1)]
    again = import_binance([_write(tmp_path, shuffled, "b_spot.gz")], ImportOptions())
    assert np.array_equal(ordered.days[0].events, again.days[0].events)
    assert not again.report.rejected_rows


def test_capture_symbol_is_the_one_most_lines_name(tmp_path: Path) -> None:
    t0 = 1_723_161_000_000_000_000
    lines = _ethusdt(t0)
    lines[3] = lines[3].replace("ethusdt@", "etiusdt@")  # a flipped byte in a stream name
    lines.insert(0, lines[3])
    res = import_binance([_write(tmp_path, lines)], ImportOptions())
    assert res.days[0].instrument.symbol == "ETHUSDT"
    assert dict(res.report.rejected_rows) == {
        "message for another symbol (ETIUSDT); one symbol per file": 2}


def test_receive_time_far_off_the_exchange_time_is_damage(tmp_path: Path) -> None:
    t0 = 1_723_161_000_000_000_000
    lines = _ethusdt(t0)
    lines[3] = str(t0 + 3 + 10**14) + lines[3][len(str(t0 + 3)):]  # a digit gone wrong
    res = import_binance([_write(tmp_path, lines)], ImportOptions())
    reason = ("receive time more than an hour off the exchange time (the file's other lines "
              "agree within it)")
    assert res.report.rejected_rows == {reason: 1}
    assert res.report.damaged == {reason: "spot_ethusdt.gz line 4"}
    assert len(res.days) == 1  # not a second day made of one bogus time
