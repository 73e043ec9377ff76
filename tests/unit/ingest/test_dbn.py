"""The DBN importer against the official DBN test files and their decoder's JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

from framework.cli import main
from framework.core.errors import ConfigError, DataError, FormatError
from framework.core.events import (
    BUY,
    FLAG_BAD_TS,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_ADD,
    KIND_BBO,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_STATUS,
    KIND_TRADE,
    NO_SIDE,
    SELL,
    STATUS_OPEN,
    STATUS_PRE_OPEN,
)
from framework.ingest.base import ImportOptions
from framework.ingest.dbn import import_dbn

SIDE = {"A": SELL, "B": BUY, "N": NO_SIDE}
ES_TICK = 250_000_000  # 0.25 in 1e-9 units
N_FILES = 81


def _data(shared_data: Path) -> Path:
    return shared_data / "dbn_databento_dbn_tests"


def _all_names() -> list[str]:
    root = Path(os.environ.get("HFTLAB_SHARED_DATA", Path(__file__).parents[4] / "shared" / "data"))
    folder = root / "dbn_databento_dbn_tests" / "tests_data"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _expected(shared_data: Path, name: str) -> list[dict]:
    """The official JSON of a file; a .dbz holds the records of the same schema's .dbn."""
    base = name.removesuffix(".zst").replace(".dbz", ".dbn")
    path = _data(shared_data) / "expected_json" / f"{base}.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _import(path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return import_dbn([path], ImportOptions(**kw))  # type: ignore[arg-type]


def _one_day(res):  # type: ignore[no-untyped-def]
    assert len(res.days) == 1
    return res.days[0].events


def _expect_flags(dbn_flags: int) -> int:
    out = FLAG_LAST if dbn_flags & 128 else 0
    out |= FLAG_SNAPSHOT if dbn_flags & 32 else 0
    out |= FLAG_BAD_TS if dbn_flags & 8 else 0
    return out


def _schema(name: str) -> str:
    return name.split(".")[1]


# --- every file imports: DBN, record fragments, legacy DBZ ---------------------------------

FRAG_DEFINITIONS = 8  # multi-frame.definition.v1.dbn.frag.zst; the other fragments hold 2


def test_the_test_folder_holds_81_files(shared_data: Path) -> None:
    assert len(list((_data(shared_data) / "tests_data").iterdir())) == N_FILES


@pytest.mark.parametrize("name", _all_names() or ["<no data>"])
def test_every_test_file_imports(shared_data: Path, name: str) -> None:
    path = _data(shared_data) / "tests_data" / name
    schema = _schema(name)
    res = _import(path)
    assert res.report.rows_rejected == 0
    if ".frag" in name:  # definitions of CME options, no metadata header, no JSON
        assert res.days == []
        n = FRAG_DEFINITIONS if name.startswith("multi-frame") else 2
        assert res.report.rows_read == n
        keys = {(i.key, i.tick_size) for i in res.instruments}
        assert ("XCME/GEM3_P9812", Decimal("0.5")) in keys
        # the others have no min_price_increment: not returned, with the reason in a note
        assert len(keys) + sum("not returned: no tick size" in t for t in res.report.notes) == n
        return
    assert res.report.rows_read == len(_expected(shared_data, name))
    if schema == "definition":
        assert res.days == []
        assert [(i.key, i.tick_size) for i in res.instruments] == [("XNAS/MSFT", Decimal("0.01"))]
    elif schema == "ohlcv-1d":
        assert res.days == []
        assert any("holds no records" in n for n in res.report.notes)
    elif schema.startswith("ohlcv") or schema in ("statistics", "imbalance"):
        assert res.days == []
        assert any("not events; nothing imported" in n for n in res.report.notes)
    else:
        day = res.days[0]
        assert (day.instrument.key, day.instrument.tick_size) == ("GLBX/ESH1", Decimal("0.25"))
        assert day.date == dt.date(2020, 12, 28)
        assert len(day.events) > 0
        assert (day.events["instrument"] == 0).all()


def test_the_test_files_never_go_back_in_time(shared_data: Path) -> None:
    # so the importer's "time went backwards" rejection never fires on them (checked above)
    for path in (_data(shared_data) / "expected_json").iterdir():
        recs = [json.loads(x) for x in path.read_text().splitlines() if x]
        ts = [int(r["ts_recv"]) for r in recs if "ts_recv" in r]  # ohlcv bars have none
        assert ts == sorted(ts), path.name


# --- the key test: events agree with the official decoder's JSON ------------------------


def _names(schema: str) -> list[str]:
    """DBN and DBZ files of ``schema`` (a .dbz is checked against its .dbn's JSON)."""
    return [n for n in _all_names() if _schema(n) == schema and ".frag" not in n]


@pytest.mark.parametrize("name", _names("mbo") or ["<no data>"])
def test_mbo_events_match_official_json(shared_data: Path, name: str) -> None:
    res = _import(_data(shared_data) / "tests_data" / name)
    ev = _one_day(res)
    exp = _expected(shared_data, name)
    assert len(ev) == len(exp) == 2
    for e, j in zip(ev, exp, strict=True):
        assert j["action"] == "C"
        # cancels of orders added before the fragment: partial-cancel semantics, qty removed
        assert e["kind"] == KIND_CANCEL
        assert int(e["price"]) * ES_TICK == int(j["price"])
        assert e["qty"] == j["size"]
        assert e["side"] == SIDE[j["side"]]
        assert e["order_id"] == int(j["order_id"])
        assert e["exch_ts"] == int(j["hd"]["ts_event"])
        assert e["local_ts"] == int(j["ts_recv"])
        assert e["flags"] == _expect_flags(j["flags"])


@pytest.mark.parametrize("name", _names("trades") or ["<no data>"])
def test_trades_match_official_json(shared_data: Path, name: str) -> None:
    ev = _one_day(_import(_data(shared_data) / "tests_data" / name))
    exp = _expected(shared_data, name)
    assert len(ev) == len(exp) == 2
    for e, j in zip(ev, exp, strict=True):
        assert (e["kind"], e["side"]) == (KIND_TRADE, SIDE[j["side"]])
        assert int(e["price"]) * ES_TICK == int(j["price"])
        assert (e["qty"], e["exch_ts"], e["local_ts"]) == (
            j["size"], int(j["hd"]["ts_event"]), int(j["ts_recv"]))
        assert e["flags"] == _expect_flags(j["flags"]) == FLAG_LAST


@pytest.mark.parametrize("name", _names("tbbo") or ["<no data>"])
def test_tbbo_gives_pre_trade_bbo_then_trade(shared_data: Path, name: str) -> None:
    ev = _one_day(_import(_data(shared_data) / "tests_data" / name))
    exp = _expected(shared_data, name)
    assert len(ev) == 3 * len(exp)
    for r, j in enumerate(exp):
        bid, ask, trade = ev[3 * r: 3 * r + 3]
        lv = j["levels"][0]
        assert (bid["kind"], bid["side"], int(bid["price"]) * ES_TICK, bid["qty"]) == (
            KIND_BBO, BUY, int(lv["bid_px"]), lv["bid_sz"])
        assert (ask["kind"], ask["side"], int(ask["price"]) * ES_TICK, ask["qty"]) == (
            KIND_BBO, SELL, int(lv["ask_px"]), lv["ask_sz"])
        assert (trade["kind"], trade["side"], int(trade["price"]) * ES_TICK, trade["qty"]) == (
            KIND_TRADE, SIDE[j["side"]], int(j["price"]), j["size"])
        assert [bool(x["flags"] & FLAG_LAST) for x in (bid, ask, trade)] == [False, False, True]
        assert {int(x["local_ts"]) for x in (bid, ask, trade)} == {int(j["ts_recv"])}


@pytest.mark.parametrize("name", _names("mbp-1") + _names("mbp-10") or ["<no data>"])
def test_mbp_levels_rebuild_the_official_book_after_every_record(
    shared_data: Path, name: str
) -> None:
    ev = _one_day(_import(_data(shared_data) / "tests_data" / name))
    exp = _expected(shared_data, name)
    book: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}
    records = iter(exp)
    n_last = 0
    for e in ev:
        j_ts = None
        if e["kind"] == KIND_LEVEL:
            side = book[int(e["side"])]
            if e["qty"] == 0:
                del side[int(e["price"]) * ES_TICK]
            else:
                side[int(e["price"]) * ES_TICK] = int(e["qty"])
        if e["flags"] & FLAG_LAST:
            n_last += 1
            j = next(records)
            j_ts = int(j["ts_recv"])
            assert e["local_ts"] == j_ts
            assert e["exch_ts"] == int(j["hd"]["ts_event"])
            want_bid = {int(lv["bid_px"]): lv["bid_sz"] for lv in j["levels"]}
            want_ask = {int(lv["ask_px"]): lv["ask_sz"] for lv in j["levels"]}
            assert book[BUY] == want_bid
            assert book[SELL] == want_ask
    assert n_last == len(exp) == 2
    depth = 10 if "mbp-10" in name else 1
    # the first record sets every level, the second only what its action changed
    assert np.count_nonzero(ev["kind"] == KIND_LEVEL) == 2 * depth + 1


@pytest.mark.parametrize("name", _names("status") or ["<no data>"])
def test_status_maps_action_and_is_trading(shared_data: Path, name: str) -> None:
    ev = _one_day(_import(_data(shared_data) / "tests_data" / name))
    exp = _expected(shared_data, name)
    assert (ev["kind"] == KIND_STATUS).all()
    # TRADING; PRE_OPEN x2 (is_trading N); NEW_PRICE_INDICATION with is_trading Y = reopen
    assert ev["qty"].tolist() == [STATUS_OPEN, STATUS_PRE_OPEN, STATUS_PRE_OPEN, STATUS_OPEN]
    assert ev["order_id"].tolist() == [
        j["action"] | j["reason"] << 16 | j["trading_event"] << 32 for j in exp]
    assert ev["local_ts"].tolist() == [int(j["ts_recv"]) for j in exp]


@pytest.mark.parametrize("name", _names("bbo-1s") + _names("cbbo-1s") or ["<no data>"])
def test_bbo_records_give_bid_and_ask(shared_data: Path, name: str) -> None:
    ev = _one_day(_import(_data(shared_data) / "tests_data" / name))
    exp = _expected(shared_data, name)
    assert (ev["kind"] == KIND_BBO).all()
    assert len(ev) == 2 * len(exp)
    assert (ev["price"][0::2] * ES_TICK).tolist() == [int(j["levels"][0]["bid_px"]) for j in exp]
    assert (ev["price"][1::2] * ES_TICK).tolist() == [int(j["levels"][0]["ask_px"]) for j in exp]
    assert ev["qty"][1::2].tolist() == [j["levels"][0]["ask_sz"] for j in exp]
    assert ev["side"][0::2].tolist() == [BUY] * len(exp)
    assert (ev["flags"][1::2] & FLAG_LAST).all()
    assert not (ev["flags"][0::2] & FLAG_LAST).any()


def test_definition_gives_the_symbol_of_the_json(shared_data: Path) -> None:
    name = "test_data.definition.v3.dbn.zst"
    res = _import(_data(shared_data) / "tests_data" / name)
    exp = _expected(shared_data, name)
    (inst,) = res.instruments
    assert {j["raw_symbol"] for j in exp} == {inst.symbol} == {"MSFT"}
    assert inst.venue == "XNAS"
    assert inst.asset_class == "equity"
    # min_price_increment is UNDEF in these records, so the XNAS default applies
    assert {j["min_price_increment"] for j in exp} == {str(dbn.UNDEF_PRICE)}
    assert inst.tick_size == Decimal("0.01")
    assert inst.extra["round_lot"] == 100


# --- legacy DBZ and record fragments ----------------------------------------------------------


def _dbz_names() -> list[str]:
    return [n for n in _all_names() if n.endswith(".dbz")]


@pytest.mark.parametrize("name", _dbz_names() or ["<no data>"])
def test_dbz_agrees_with_the_json_of_the_same_schemas_dbn(shared_data: Path, name: str) -> None:
    """A .dbz holds the records of test_data.<schema>.dbn: same rows, same events, and the
    fields the events carry agree with that file's official JSON."""
    dbz = _import(_data(shared_data) / "tests_data" / name)
    dbn_name = name.replace(".dbz", ".dbn")
    ref = _import(_data(shared_data) / "tests_data" / dbn_name)
    exp = _expected(shared_data, dbn_name)
    assert dbz.report.rows_read == ref.report.rows_read == len(exp)
    assert dbz.report.rows_rejected == 0
    assert [(i.key, i.tick_size) for i in dbz.instruments] == [
        (i.key, i.tick_size) for i in ref.instruments]
    assert len(dbz.days) == len(ref.days)
    for a, b in zip(dbz.days, ref.days, strict=True):
        assert (a.instrument.key, a.date) == (b.instrument.key, b.date)
        assert a.events.tobytes() == b.events.tobytes()
    if not dbz.days:
        return
    ev = dbz.days[0].events
    last = ev[(ev["flags"] & FLAG_LAST) != 0]  # one per record
    assert last["local_ts"].tolist() == [int(j["ts_recv"]) for j in exp]
    assert last["exch_ts"].tolist() == [int(j["hd"]["ts_event"]) for j in exp]
    assert {j["hd"]["instrument_id"] for j in exp} == {5482}
    assert {j["symbol"] for j in exp} == {dbz.days[0].instrument.symbol} == {"ESH1"}
    if _schema(name) in ("trades", "tbbo", "mbo"):
        priced = ev[ev["kind"] != KIND_BBO]
        assert (priced["price"] * ES_TICK).tolist() == [int(j["price"]) for j in exp]
        assert priced["qty"].tolist() == [j["size"] for j in exp]
        assert priced["side"].tolist() == [SIDE[j["side"]] for j in exp]


def test_dbz_with_unreadable_mappings_names_instruments_by_id(
    shared_data: Path, tmp_path: Path
) -> None:
    data = bytearray((_data(shared_data) / "tests_data" / "test_data.trades.dbz").read_bytes())
    data[8 + 96: 8 + 100] = b"\0\0\0\0"  # break the zstd frame of the symbol mappings
    path = tmp_path / "t.dbz"
    path.write_bytes(bytes(data))
    res = import_dbn([path], ImportOptions(extra={"tick_size": "0.25"}))
    assert [d.instrument.key for d in res.days] == ["GLBX/ID5482"]
    assert any("symbol mappings cannot be read" in n for n in res.report.notes)
    assert any("stored as ID5482" in n for n in res.report.notes)


def test_unversioned_fragment_is_version_2_by_its_definition_size(shared_data: Path) -> None:
    res = _import(_data(shared_data) / "tests_data" / "test_data.definition.dbn.frag.zst")
    assert any("v2, from the size of its definition records" in n for n in res.report.notes)
    (inst,) = res.instruments
    assert inst.extra["dbn_raw_symbol"] == "GEM3 P9812"
    assert inst.asset_class == "option"


def test_fragment_read_as_the_wrong_version_fails_clearly(
    shared_data: Path, tmp_path: Path
) -> None:
    path = _data(shared_data) / "tests_data" / "test_data.definition.v3.dbn.frag"
    with pytest.raises(FormatError, match="the size of DBN v3; read it with dbn_version=3"):
        import_dbn([path], ImportOptions(extra={"dbn_version": 1}))
    named = tmp_path / "test_data.definition.v1.dbn.frag"
    named.write_bytes(path.read_bytes())
    with pytest.raises(FormatError, match=r"\(its name\).*the size of DBN v3; name it "
                                          r"\*\.v3\.dbn\.frag"):
        import_dbn([named], ImportOptions())
    named = tmp_path / "test_data.definition.v9.dbn.frag"
    named.write_bytes(path.read_bytes())
    with pytest.raises(FormatError, match="its name says DBN version 9, but this reader "
                                          r"\(databento-dbn [\d.]+\) reads DBN versions 1-3"):
        import_dbn([named], ImportOptions())


def _frag(path: Path, records: list) -> Path:
    path.write_bytes(b"".join(bytes(r) for r in records))
    return path


def test_fragment_events_take_symbol_option_else_id(tmp_path: Path) -> None:
    path = _frag(tmp_path / "x.v3.dbn.frag", [_mbo(0, "A", 1, 2), _mbo(1, "C", 1, 2)])
    res = import_dbn([path], ImportOptions(venue="GLBX", extra={"tick_size": "0.25"}))
    (day,) = res.days
    assert day.instrument.key == "GLBX/ID5482"
    assert day.events["kind"].tolist() == [KIND_ADD, KIND_DELETE]
    assert any("stored as ID5482" in n for n in res.report.notes)
    res = import_dbn([path], ImportOptions(symbol="ESH1", venue="GLBX"))
    assert [d.instrument.key for d in res.days] == ["GLBX/ESH1"]  # GLBX ES default tick


# --- synthetic files: semantics the 2-record samples cannot show ----------------------------

T0 = 1_609_160_400_000_000_000  # 2020-12-28 13:00 UTC
PX = 3_720_000_000_000  # 3720.00


def _write(
    path: Path, records: list, *, symbol: str = "ESH1", zstd: bool = False
) -> Path:
    """A DBN v3 file of ``records`` with a GLBX.MDP3 header mapping ``symbol`` to 5482."""
    iv = SimpleNamespace(start_date=dt.date(2020, 12, 27), end_date=dt.date(2020, 12, 31),
                         symbol="5482")
    md = dbn.Metadata(dataset="GLBX.MDP3", schema=dbn.Schema.MBO, start=T0,
                      stype_in=dbn.SType.RAW_SYMBOL,
                      stype_out=dbn.SType.INSTRUMENT_ID, symbols=[symbol],
                      mappings=[SimpleNamespace(raw_symbol=symbol, intervals=[iv])])
    data = md.encode() + b"".join(bytes(r) for r in records)
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if zstd else data)
    return path


def _mbo(
    i: int, action: str, oid: int, size: int, side: str = "B", px: int = PX,
         ts: int | None = None, flags: int = 128) -> dbn.MBOMsg:
    t = T0 + i * 1000 if ts is None else ts
    return dbn.MBOMsg(publisher_id=1, instrument_id=5482, ts_event=t - 100, order_id=oid,
                      price=px, size=size, action=dbn.Action(action), side=dbn.Side(side),
                      ts_recv=t, flags=flags)


def test_fill_changes_no_book_and_the_cancel_removes_its_lots(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.dbn", [
        _mbo(0, "A", 7, 5),
        _mbo(1, "T", 0, 2, side="A", flags=0),  # the print
        _mbo(1, "F", 7, 2, flags=0),  # order 7's share of it: no book change, no print
        _mbo(1, "C", 7, 2),  # the book change of the fill; ends the venue event
        _mbo(2, "C", 7, 1),  # a partial cancel
        _mbo(3, "C", 7, 2),  # removes the rest: a delete
    ], zstd=True)
    res = _import(path)
    ev = _one_day(res)
    assert ev["kind"].tolist() == [KIND_ADD, KIND_TRADE, KIND_CANCEL, KIND_CANCEL, KIND_DELETE]
    assert ev["qty"].tolist() == [5, 2, 2, 1, 2]
    assert (ev["flags"] & FLAG_LAST).tolist() == [1, 0, 1, 1, 1]
    assert ev["side"][1] == SELL  # trade side = aggressor
    assert ev["price"][0] == 3720 * 4
    assert any("fill records (F)" in n for n in res.report.notes)


def test_a_row_dropped_for_its_price_hands_on_the_message_end(tmp_path: Path) -> None:
    path = _write(tmp_path / "h.dbn", [
        _mbo(0, "A", 1, 1),
        _mbo(1, "A", 2, 1, flags=0),
        _mbo(1, "A", 3, 1, px=PX + 10**8),  # off the 0.25 grid: dropped, LAST moves to 2
        _mbo(2, "A", 4, 1, px=PX + 10**8),  # alone in its message: nothing to hand it to
    ])
    res = _import(path)
    ev = _one_day(res)
    assert ev["order_id"].tolist() == [1, 2]
    assert (ev["flags"] & FLAG_LAST).tolist() == [1, 1]
    assert sum(res.report.rejected.values()) == 2


def test_modify_clear_and_none_actions(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.dbn", [
        _mbo(0, "A", 7, 5),
        _mbo(1, "M", 7, 3, px=PX + ES_TICK),
        _mbo(2, "N", 0, 0, side="N", px=dbn.UNDEF_PRICE),
        _mbo(3, "R", 0, 0, side="N", px=dbn.UNDEF_PRICE, flags=128 | 32 | 8),
    ])
    res = _import(path)
    ev = _one_day(res)
    assert ev["kind"].tolist() == [KIND_ADD, KIND_MODIFY, KIND_CLEAR]
    assert ev["price"][1] == 3720 * 4 + 1
    assert ev["qty"][1] == 3
    assert ev["flags"][2] == FLAG_LAST | FLAG_SNAPSHOT | FLAG_BAD_TS
    assert any("action N" in n for n in res.report.notes)


def test_receive_time_going_backwards_is_rejected_with_reason(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.dbn", [
        _mbo(0, "A", 1, 1, ts=T0 + 500), _mbo(1, "A", 2, 1, ts=T0 + 400),
        _mbo(2, "A", 3, 1, ts=T0 + 600)])
    res = _import(path)
    assert _one_day(res)["order_id"].tolist() == [1, 3]
    assert res.report.rejected == {"time went backwards": 1}
    assert res.report.rows_read == 3


def test_off_grid_price_is_rejected_with_reason(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.dbn", [_mbo(0, "A", 1, 1), _mbo(1, "A", 2, 1, px=PX + 10**8)])
    res = _import(path)
    assert _one_day(res)["order_id"].tolist() == [1]
    (reason,) = res.report.rejected
    assert reason.startswith("price off tick grid")
    assert "0.25" in reason


def test_tick_size_option_overrides_the_default(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.dbn", [_mbo(0, "A", 1, 1, px=PX + 10**8)])
    res = import_dbn([path], ImportOptions(extra={"tick_size": "0.05"}))
    day = res.days[0]
    assert day.instrument.tick_size == Decimal("0.05")
    assert day.events["price"].tolist() == [74402]  # 3720.10 / 0.05


def test_unknown_cme_product_without_definition_asks_for_tick_size(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.dbn", [_mbo(0, "A", 1, 1)], symbol="ZZH1")
    with pytest.raises(ConfigError, match="--tick-size"):
        _import(path)


def test_events_are_split_by_utc_day_and_symbol_option_renames(tmp_path: Path) -> None:
    day2 = T0 + 86_400 * 10**9
    path = _write(tmp_path / "g.dbn", [_mbo(0, "A", 1, 1), _mbo(1, "A", 2, 1, ts=day2)])
    res = import_dbn([path], ImportOptions(symbol="ES", venue="CME", extra={"tick_size": "0.25"}))
    assert [(d.instrument.key, d.date, len(d.events)) for d in res.days] == [
        ("CME/ES", dt.date(2020, 12, 28), 1), ("CME/ES", dt.date(2020, 12, 29), 1)]


# --- bad input ------------------------------------------------------------------------------


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        _import(tmp_path / "nope.dbn")


def test_non_dbn_text_file_has_no_metadata_header(tmp_path: Path) -> None:
    path = tmp_path / "x.dbn"
    path.write_text("ts,price\n1,2\n")
    with pytest.raises(FormatError, match=r"has no DBN metadata header.*does not start with 'DBN'"):
        _import(path)


def test_garbage_bytes_fail_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "g.dbn"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(FormatError, match="has no DBN metadata header"):
        _import(path)
    zpath = tmp_path / "g.dbn.zst"
    zpath.write_bytes(b"\x28\xb5\x2f\xfd" + np.random.default_rng(2).bytes(5000))
    with pytest.raises(FormatError, match="zstd"):
        _import(zpath)


def test_empty_file_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "e.dbn"
    path.write_bytes(b"")
    with pytest.raises(FormatError, match="empty file"):
        _import(path)


@pytest.mark.parametrize("name", ["test_data.mbp-10.dbn", "test_data.mbo.dbn",
                                  "test_data.mbp-10.v3.dbn.zst"])
def test_real_file_cut_in_half_is_reported_truncated(
    shared_data: Path, tmp_path: Path, name: str
) -> None:
    data = (_data(shared_data) / "tests_data" / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated"):
        _import(cut)


@pytest.mark.parametrize(("version", "says"), [
    (9, "a newer databento-dbn may read it"), (0, "there is no DBN version 0"),
    (255, "a newer databento-dbn may read it")])
def test_unsupported_dbn_version_is_named_in_one_line(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], version: int,
    says: str
) -> None:
    data = bytearray((_data(shared_data) / "tests_data" / "test_data.mbo.dbn").read_bytes())
    data[3] = version
    path = tmp_path / "v.dbn"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError) as info:
        _import(path)
    text = str(info.value)
    assert f"the header says DBN version {version}, but this reader" in text
    assert "reads DBN versions 1-3" in text
    assert says in text
    # the CLI prints it as one line and fails
    assert main(["data", "import", "dbn", str(path), "--store", str(tmp_path / "s")]) != 0
    err = capsys.readouterr().err.strip()
    assert err == f"hftlab: error: {text}"
    assert "\n" not in err
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("*.parquet"))


def _damaged(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new):]


@pytest.mark.parametrize(("change", "says"), [
    ((24, b"\x63\x00"), "the DBN version 2 metadata header is damaged: its schema code 99 is "
                         "not a DBN schema"),
    ((50, b"\x63"), "its symbology type code 99 is not a DBN symbology type"),
    ((8, b"\xff\xfe"), "its dataset is not text"),
    ((4, b"\x04\x00\x00\x00"), "it declares 4 bytes of metadata, fewer than its fixed fields"),
    ((4, b"\xff\xff\xff\x00"), "truncated inside the metadata header: the DBN version 2 "
                                 "header declares 16777215 bytes of metadata, but the file "
                                 "holds only 457 after its 8-byte prefix"),
])
def test_damaged_metadata_header_says_what_is_wrong(
    shared_data: Path, tmp_path: Path, change: tuple[int, bytes], says: str
) -> None:
    data = (_data(shared_data) / "tests_data" / "test_data.mbo.dbn").read_bytes()
    for zst in (False, True):
        bad = _damaged(data, *change)
        path = tmp_path / ("d.dbn.zst" if zst else "d.dbn")
        path.write_bytes(zstandard.ZstdCompressor().compress(bad) if zst else bad)
        with pytest.raises(FormatError, match=re.escape(says)):
            _import(path)


@pytest.mark.parametrize(("cut", "says"), [
    (5, "the file ends after 5 bytes, inside the 8-byte DBN prefix"),
    (100, "the DBN version 2 header declares 345 bytes of metadata, but the file holds only "
          "92 after its 8-byte prefix"),
])
def test_file_cut_inside_the_header_says_how_much_is_there(
    shared_data: Path, tmp_path: Path, cut: int, says: str
) -> None:
    data = (_data(shared_data) / "tests_data" / "test_data.mbo.dbn").read_bytes()
    path = tmp_path / "c.dbn"
    path.write_bytes(data[:cut])
    with pytest.raises(FormatError, match=re.escape(says)):
        _import(path)
