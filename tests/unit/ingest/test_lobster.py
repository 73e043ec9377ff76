"""The LOBSTER importer against the real LOBSTER samples and small hand-made files."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from framework.core.errors import ConfigError, DataError, FormatError
from framework.core.events import (
    BUY,
    FLAG_FROM_BOOK,
    FLAG_HIDDEN,
    FLAG_IMPLIED,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_ADD,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_MODIFY,
    KIND_STATUS,
    KIND_TRADE,
    NO_SIDE,
    SELL,
    STATUS_HALTED,
    STATUS_OPEN,
    STATUS_QUOTING,
    EventArray,
)
from framework.ingest import lobster
from framework.ingest.base import SYNTH_ORDER_ID_BASE, ImportOptions, ImportResult, run_import
from framework.ingest.lobster import import_lobster
from framework.ingest.lobster_read import EMPTY_ASK, EMPTY_BID

AMZN_DIR = "lobster_AMZN_2012-06-21_L1_fullday"
AMZN_MSG = "AMZN_2012-06-21_34200000_57600000_message_1.csv"
AAPL_DIR = "lobster_AAPL_2012-06-21_L10_first999"
AAPL_MSG = "AAPL_2012-06-21_34200000_57600000_message_10.first999.csv"
SYN = int(SYNTH_ORDER_ID_BASE)
TYPE_KIND = {1: KIND_ADD, 2: KIND_CANCEL, 3: KIND_DELETE, 4: KIND_EXECUTE, 5: KIND_TRADE}


# --- helpers --------------------------------------------------------------------------------


def _load(path: Path, ncols: int) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2).reshape(-1, ncols)


def reference_snapshots(events: EventArray, levels: int) -> np.ndarray:
    """Replay events through a plain dict order book; one LOBSTER-style row per FLAG_LAST.

    Independent of the importer's kernel: orders are ``id -> [side, price, qty]``, levels are
    summed per price, and prices go back to LOBSTER units (ticks x 100).
    """
    orders: dict[int, list[int]] = {}
    book: list[dict[int, int]] = [{}, {}]  # 0 bids, 1 asks

    def change(side: int, price: int, delta: int) -> None:
        lvl = book[side]
        lvl[price] = lvl.get(price, 0) + delta
        assert lvl[price] >= 0
        if lvl[price] == 0:
            del lvl[price]

    rows = []
    for _, _, price, qty, oid, _, kind, side, flags in events.tolist():
        if kind == KIND_ADD:
            assert oid not in orders, f"add of live order {oid}"
            s = 0 if side == BUY else 1
            orders[oid] = [s, price, qty]
            change(s, price, qty)
        elif kind in (KIND_CANCEL, KIND_EXECUTE):
            o = orders[oid]
            assert 0 < qty <= o[2], f"{kind} of {qty} from an order of {o[2]}"
            o[2] -= qty
            change(o[0], o[1], -qty)
            if o[2] == 0:
                del orders[oid]
        elif kind == KIND_DELETE:
            s, p, q = orders.pop(oid)
            change(s, p, -q)
        elif kind == KIND_MODIFY:
            o = orders[oid]
            change(o[0], o[1], qty - o[2])
            o[2] = qty
        if flags & FLAG_LAST:
            bids = sorted(book[0].items(), reverse=True)[:levels]
            asks = sorted(book[1].items())[:levels]
            row = []
            for j in range(levels):
                ap, aq = (asks[j][0] * 100, asks[j][1]) if j < len(asks) else (EMPTY_ASK, 0)
                bp, bq = (bids[j][0] * 100, bids[j][1]) if j < len(bids) else (EMPTY_BID, 0)
                row += [ap, aq, bp, bq]
            rows.append(row)
    return np.array(rows, dtype=np.int64)


def write_pair(
    folder: Path, messages: list[str], books: list[str], *, level: int = 1, name: str = "TEST"
) -> Path:
    """Write a LOBSTER message/orderbook pair; returns the message path."""
    stem = f"{name}_2012-06-21_34200000_57600000"
    msg = folder / f"{stem}_message_{level}.csv"
    msg.write_text("\n".join(messages) + "\n")
    (folder / f"{stem}_orderbook_{level}.csv").write_text("\n".join(books) + "\n")
    return msg


def _import(path: Path, **extra: object) -> ImportResult:
    return import_lobster([path], ImportOptions(extra=dict(extra)))


def _rows(ev: EventArray) -> list[tuple[int, int, int, int, int, int]]:
    """(kind, side, price, qty, order id, flags) per event, for exact comparisons."""
    return [
        (
            int(e["kind"]),
            int(e["side"]),
            int(e["price"]),
            int(e["qty"]),
            int(e["order_id"]),
            int(e["flags"]),
        )
        for e in ev
    ]


@pytest.fixture(scope="module")
def amzn(shared_data: Path) -> tuple[ImportResult, Path]:
    path = shared_data / AMZN_DIR / AMZN_MSG
    return import_lobster([path], ImportOptions()), path


@pytest.fixture(scope="module")
def aapl(shared_data: Path) -> tuple[ImportResult, Path]:
    path = shared_data / AAPL_DIR / AAPL_MSG
    return import_lobster([path], ImportOptions()), path


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.shared_data  # through request.getfixturevalue
@pytest.mark.parametrize(("which", "levels", "nrows"), [("amzn", 1, 57_515), ("aapl", 10, 999)])
def test_replayed_events_reproduce_every_orderbook_row_at_every_level(
    which: str, levels: int, nrows: int, request: pytest.FixtureRequest
) -> None:
    result, path = request.getfixturevalue(which)
    events = result.days[0].events
    assert result.report.rows_rejected == 0
    assert result.report.rows_read == nrows
    assert int(np.count_nonzero(events["flags"] & FLAG_LAST)) == nrows
    assert events["flags"][-1] & FLAG_LAST
    expected = _load(Path(str(path).replace("message", "orderbook")), 4 * levels).astype(np.int64)
    got = reference_snapshots(events, levels)
    assert got.shape == expected.shape == (nrows, 4 * levels)
    mismatched = np.flatnonzero((got != expected).any(axis=1))
    assert mismatched.size == 0, f"first mismatching rows {mismatched[:5].tolist()}"


def test_amzn_message_events_are_the_file_rows_in_order_with_their_kinds(
    amzn: tuple[ImportResult, Path],
) -> None:
    result, path = amzn
    events = result.days[0].events
    raw = _load(path, 6)
    own = events[(events["flags"] & FLAG_IMPLIED) == 0]
    assert len(own) == len(raw) == 57_515
    assert Counter(own["kind"].tolist()) == {
        KIND_ADD: 27_845,
        KIND_CANCEL: 16,
        KIND_DELETE: 18_235,
        KIND_EXECUTE: 8_974,
        KIND_TRADE: 2_445,
    }
    typ = raw[:, 1].astype(int)
    assert own["kind"].tolist() == [TYPE_KIND[t] for t in typ]
    assert np.array_equal(own["qty"], raw[:, 3].astype(np.int64))
    assert np.array_equal(own["price"], raw[:, 4].astype(np.int64) // 100)  # truncated for 5
    book_side = np.where(raw[:, 5] > 0, BUY, SELL)
    visible = typ <= 4
    assert np.array_equal(own["side"][visible], book_side[visible])
    assert np.array_equal(own["side"][~visible], -book_side[~visible])  # trades: aggressor
    adds = typ == 1
    assert np.array_equal(own["order_id"][adds], raw[adds, 2].astype(np.uint64))


def test_amzn_first_event_time_is_the_first_message_in_new_york_time(
    amzn: tuple[ImportResult, Path],
) -> None:
    result, _ = amzn
    events = result.days[0].events
    ny = dt.datetime(2012, 6, 21, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    expected = int(ny.timestamp()) * 1_000_000_000 + 17_459_617
    assert int(events["exch_ts"][0]) == expected == 1_340_285_400_017_459_617
    assert np.array_equal(events["local_ts"], events["exch_ts"])
    assert int(events["exch_ts"][-1]) == int(ny.timestamp()) * 10**9 - 34_200 * 10**9 + (
        57_599_959_359_650
    )


def test_amzn_instrument_and_day_come_from_the_file_name(amzn: tuple[ImportResult, Path]) -> None:
    result, _ = amzn
    day = result.days[0]
    inst = day.instrument
    assert (inst.venue, inst.symbol, inst.asset_class, inst.currency) == (
        "XNAS",
        "AMZN",
        "equity",
        "USD",
    )
    assert (inst.tick_size, inst.lot_size) == (Decimal("0.01"), Decimal("1"))
    assert day.date == dt.date(2012, 6, 21)
    assert result.instruments == [inst]
    assert (day.events["instrument"] == 0).all()


def test_amzn_known_rows_decode_to_the_right_events(amzn: tuple[ImportResult, Path]) -> None:
    result, _ = amzn
    events = result.days[0].events
    seeds = events[(events["flags"] & FLAG_SNAPSHOT) != 0]
    # row 0 is ask 223.95 x 100, bid 223.18 x 100 after a hidden execution: seeded as is
    assert _rows(seeds) == [
        (KIND_ADD, BUY, 22318, 100, SYN | 0, FLAG_SNAPSHOT | FLAG_FROM_BOOK | FLAG_IMPLIED),
        (KIND_ADD, SELL, 22395, 100, SYN | 1, FLAG_SNAPSHOT | FLAG_FROM_BOOK | FLAG_IMPLIED),
    ]
    own = events[(events["flags"] & FLAG_IMPLIED) == 0]
    # 34200.017459617,5,0,1,2238200,-1: a hidden sell order hit by a buyer
    assert _rows(own[:1]) == [(KIND_TRADE, BUY, 22382, 1, 0, FLAG_HIDDEN | FLAG_LAST)]
    # 34200.18960767,1,11885113,21,2238100,1
    assert _rows(own[1:2]) == [(KIND_ADD, BUY, 22381, 21, 11885113, FLAG_LAST)]
    # 34200.190226476,4,11885113,21,2238100,1 then 4,11534792,26,2237500,1 (an unseen order)
    assert _rows(own[2:3])[0][:5] == (KIND_EXECUTE, BUY, 22381, 21, 11885113)
    ex = own[3]
    assert (int(ex["kind"]), int(ex["price"]), int(ex["qty"])) == (KIND_EXECUTE, 22375, 26)
    assert int(ex["order_id"]) & SYN  # acts on the synthetic quantity that came into view


def test_amzn_notes_count_corrections_rewrites_and_sub_penny_prints(
    amzn: tuple[ImportResult, Path],
) -> None:
    notes = "\n".join(amzn[0].report.notes)
    assert "8,232 of 57,515 rows needed corrections" in notes
    assert "8,120 messages named an order not in the book" in notes
    assert "63 hidden/cross executions at sub-tick prices" in notes


def test_aapl_prefix_with_suffix_in_name_imports_without_rejects(
    aapl: tuple[ImportResult, Path],
) -> None:
    result, _ = aapl
    day = result.days[0]
    assert (day.instrument.symbol, day.date) == ("AAPL", dt.date(2012, 6, 21))
    own = day.events[(day.events["flags"] & FLAG_IMPLIED) == 0]
    assert Counter(own["kind"].tolist()) == {
        KIND_ADD: 471,
        KIND_DELETE: 369,
        KIND_EXECUTE: 98,
        KIND_TRADE: 61,
    }
    seeds = day.events[(day.events["flags"] & FLAG_SNAPSHOT) != 0]
    # ten levels a side, minus the bid level that message 0 (an add of 18 @ 585.33) created
    assert len(seeds) == 19
    assert 58533 not in seeds["price"][seeds["side"] == BUY].tolist()


def test_options_override_symbol_venue_date_and_orderbook(shared_data: Path) -> None:
    folder = shared_data / AAPL_DIR
    opts = ImportOptions(
        symbol="AAPL2",
        venue="XBOS",
        date=dt.date(2012, 6, 22),
        extra={"orderbook": folder / "AAPL_2012-06-21_34200000_57600000_orderbook_10.first999.csv"},
    )
    result = import_lobster([folder / AAPL_MSG], opts)
    day = result.days[0]
    assert (day.instrument.key, day.date) == ("XBOS/AAPL2", dt.date(2012, 6, 22))
    # times stay New York seconds after midnight of the given date
    ny = dt.datetime(2012, 6, 22, tzinfo=ZoneInfo("America/New_York"))
    assert int(day.events["exch_ts"][0]) == int(ny.timestamp()) * 10**9 + 34_200_004_241_176


def test_coarser_tick_size_than_the_prices_is_damage_naming_the_option(shared_data: Path) -> None:
    with pytest.raises(DataError, match=r"off the 0\.05 tick grid of XNAS/AAPL.*--tick-size"):
        run_import("lobster", [shared_data / AAPL_DIR / AAPL_MSG],
                   ImportOptions(extra={"tick_size": "0.05"}))


def test_tick_size_finer_than_lobster_price_unit_is_a_config_error(shared_data: Path) -> None:
    with pytest.raises(ConfigError, match="finer than the source's price unit"):
        _import(shared_data / AAPL_DIR / AAPL_MSG, tick_size="0.00001")


# --- hand-made files -------------------------------------------------------------------------

BOOK0 = "100500,300,100000,200"  # ask 10.05 x 300, bid 10.00 x 200


def test_unknown_order_ids_act_on_the_synthetic_quantity_at_their_price(tmp_path: Path) -> None:
    msg = write_pair(
        tmp_path,
        [
            "34200.1,1,1,100,100000,1",  # add 100 @ 10.00: the seed is the other 100
            "34200.2,4,99,50,100000,1",  # execution of an order that rested before the file
            "34200.3,3,98,30,100000,1",  # delete of 30 of that unseen quantity
            "34200.4,2,97,20,100000,1",  # partial cancel of 20 of it
        ],
        [BOOK0, "100500,300,100000,150", "100500,300,100000,120", "100500,300,100000,100"],
    )
    result = _import(msg)
    assert result.report.rows_rejected == 0
    seed = SYN | 0
    assert _rows(result.days[0].events) == [
        (KIND_ADD, BUY, 1000, 100, seed, FLAG_SNAPSHOT | FLAG_FROM_BOOK | FLAG_IMPLIED),
        (KIND_ADD, SELL, 1005, 300, SYN | 1, FLAG_SNAPSHOT | FLAG_FROM_BOOK | FLAG_IMPLIED),
        (KIND_ADD, BUY, 1000, 100, 1, FLAG_LAST),
        (KIND_EXECUTE, BUY, 1000, 50, seed, FLAG_LAST),
        # the delete stays a delete of 30: split them off the synthetic order first
        (KIND_CANCEL, BUY, 1000, 30, seed, FLAG_IMPLIED),
        (KIND_ADD, BUY, 1000, 30, SYN | 2, FLAG_IMPLIED),
        (KIND_DELETE, BUY, 1000, 30, SYN | 2, FLAG_LAST),
        (KIND_CANCEL, BUY, 1000, 20, seed, FLAG_LAST),
    ]
    assert "3 messages named an order not in the book" in "\n".join(result.report.notes)


def test_unknown_execution_larger_than_the_synthetic_order_takes_from_real_orders(
    tmp_path: Path,
) -> None:
    # both 100 lots at 10.00 are real orders in our book, yet an unseen order is executed:
    # one of them must really be that order, so 60 lots move onto a synthetic order first
    msg = write_pair(
        tmp_path,
        ["34200.1,1,1,100,100000,1", "34200.2,1,2,100,100000,1", "34200.3,4,99,60,100000,1"],
        ["100500,300,100000,100", "100500,300,100000,200", "100500,300,100000,140"],
    )
    ev = _import(msg).days[0].events
    assert _rows(ev[-3:]) == [
        (KIND_CANCEL, BUY, 1000, 60, 2, FLAG_IMPLIED),  # newest real order first
        (KIND_ADD, BUY, 1000, 60, SYN | 1, FLAG_IMPLIED),
        (KIND_EXECUTE, BUY, 1000, 60, SYN | 1, FLAG_LAST),
    ]
    assert reference_snapshots(ev, 1)[-1].tolist() == [100500, 300, 100000, 140]


def test_level_coming_into_view_is_added_from_the_orderbook_before_flag_last(
    tmp_path: Path,
) -> None:
    msg = write_pair(
        tmp_path,
        ["34200.1,1,1,200,100100,1", "34200.2,3,1,200,100100,1", "34200.3,5,0,10,100250,-1"],
        # after the delete the file shows 9.99 x 500, a level deeper than L=1 until now
        ["100500,300,100100,200", "100500,300,99900,500", "100500,300,99900,500"],
    )
    result = _import(msg)
    ev = result.days[0].events
    # row 0 is the book after the add, so only the ask is seeded
    assert _rows(ev[1:]) == [
        (KIND_ADD, BUY, 1001, 200, 1, FLAG_LAST),
        (KIND_DELETE, BUY, 1001, 200, 1, 0),
        (KIND_ADD, BUY, 999, 500, SYN | 1, FLAG_FROM_BOOK | FLAG_IMPLIED | FLAG_LAST),
        # a sub-penny hidden print (10.025) is kept at the tick below, aggressor side
        (KIND_TRADE, BUY, 1002, 10, 0, FLAG_HIDDEN | FLAG_LAST),
    ]
    notes = "\n".join(result.report.notes)
    assert "1 of 3 rows needed corrections to match the orderbook file (1 implied events" in notes
    assert "1 hidden/cross executions at sub-tick prices" in notes


def test_unseen_change_below_level_l_is_corrected_on_real_orders(tmp_path: Path) -> None:
    msg = write_pair(
        tmp_path,
        [
            "34200.1,1,1,100,99900,1",  # level 2: invisible in a level-1 file...
            "34200.2,1,2,100,99900,1",
            "34200.3,3,7,200,100000,1",  # ...until the best bid goes: 9.99 shows only 150
        ],
        ["100500,300,100000,200", "100500,300,100000,200", "100500,300,99900,150"],
    )
    ev = _import(msg).days[0].events
    assert _rows(ev[-2:]) == [
        (KIND_DELETE, BUY, 1000, 200, SYN | 0, 0),
        (KIND_CANCEL, BUY, 999, 50, 2, FLAG_FROM_BOOK | FLAG_IMPLIED | FLAG_LAST),
    ]


def test_empty_side_in_the_file_prunes_everything_on_that_side(tmp_path: Path) -> None:
    msg = write_pair(
        tmp_path,
        ["34200.1,1,1,100,99900,1", "34200.2,3,7,200,100000,1"],
        ["100500,300,100000,200", f"100500,300,{EMPTY_BID},0"],
    )
    ev = _import(msg).days[0].events
    assert _rows(ev[-2:]) == [
        (KIND_DELETE, BUY, 1000, 200, SYN | 0, 0),
        (KIND_DELETE, BUY, 999, 100, 1, FLAG_FROM_BOOK | FLAG_IMPLIED | FLAG_LAST),
    ]
    assert reference_snapshots(ev, 1)[-1].tolist() == [100500, 300, EMPTY_BID, 0]


def test_halt_messages_become_status_events(tmp_path: Path) -> None:
    msg = write_pair(
        tmp_path,
        ["36023,7,0,0,-1,-1", "36323,7,0,0,0,-1", "36723,7,0,0,1,-1"],
        [BOOK0] * 3,
    )
    ev = _import(msg).days[0].events
    status = ev[ev["kind"] == KIND_STATUS]
    assert status["qty"].tolist() == [STATUS_HALTED, STATUS_QUOTING, STATUS_OPEN]
    assert (status["side"] == NO_SIDE).all()
    assert (status["flags"] == FLAG_LAST).all()
    assert len(ev) == 5  # two seeds + three statuses


def test_level_ten_file_is_seeded_at_every_level(tmp_path: Path) -> None:
    levels = [f"{100500 + 100 * j},10,{100000 - 100 * j},{20 + j}" for j in range(3)]
    msg = write_pair(tmp_path, ["34200.1,5,0,5,100250,1"], [",".join(levels)], level=3, name="XYZ")
    ev = _import(msg).days[0].events
    assert len(ev) == 7
    assert reference_snapshots(ev, 3)[0].tolist() == [
        int(v) for lvl in levels for v in lvl.split(",")
    ]


# --- bad input -------------------------------------------------------------------------------


def test_missing_message_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
    with pytest.raises(DataError, match=r"message_1\.csv: no such file"):
        _import(path)


def test_without_orderbook_the_book_starts_empty_and_unseen_orders_enter_at_first_sight(
    tmp_path: Path,
) -> None:
    msg = write_pair(
        tmp_path,
        [
            "34200.1,1,1,100,100000,1",  # an add
            "34200.2,4,99,50,100000,1",  # an execution of an order the file never adds...
            "34200.3,3,99,30,100000,1",  # ...and the delete of its rest
            "34200.4,2,98,20,100500,-1",  # a partial cancel of another unseen order
            "34200.5,4,98,10,100500,-1",
        ],
        [BOOK0] * 5,
    )
    msg.with_name(msg.name.replace("message", "orderbook")).unlink()
    result = run_import("lobster", [msg], ImportOptions())
    rep = result.report
    assert rep.ledger() == (5, 5, 0, 7, 7, 0)
    # each unseen order enters with its real id and the size the file takes off it
    assert _rows(result.days[0].events) == [
        (KIND_ADD, BUY, 1000, 100, 1, FLAG_LAST),
        (KIND_ADD, BUY, 1000, 80, 99, FLAG_IMPLIED),
        (KIND_EXECUTE, BUY, 1000, 50, 99, FLAG_LAST),
        (KIND_DELETE, BUY, 1000, 30, 99, FLAG_LAST),
        (KIND_ADD, SELL, 1005, 30, 98, FLAG_IMPLIED),
        (KIND_CANCEL, SELL, 1005, 20, 98, FLAG_LAST),
        (KIND_EXECUTE, SELL, 1005, 10, 98, FLAG_LAST),
    ]
    notes = "\n".join(rep.notes)
    assert "no orderbook file (none given, no TEST_2012-06-21_34200000_57600000_orderbook_1.csv" \
        in notes
    assert "incomplete (deeper levels most) until every resting order has been seen" in notes
    assert "2 orders (110 lots, 4 messages) are cancelled, executed or deleted but never added" \
        in notes


def test_without_orderbook_orders_a_message_proves_gone_are_removed(tmp_path: Path) -> None:
    msg = write_pair(
        tmp_path,
        [
            "34200.1,1,1,100,100000,1",
            "34200.2,1,2,100,100100,1",  # a better bid: order 1 is now below level 1...
            "34200.3,3,2,100,100100,1",  # ...where its cancel may hide from a level-1 file
            "34200.4,1,3,100,99900,1",  # level 1 is now 9.99: nothing is above it
            "34200.5,1,4,50,99800,-1",  # an ask at 9.98: no bid rests at or above it
        ],
        [BOOK0] * 5,
    )
    msg.with_name(msg.name.replace("message", "orderbook")).unlink()
    ev = run_import("lobster", [msg], ImportOptions()).days[0].events
    assert _rows(ev[3:]) == [
        (KIND_ADD, BUY, 999, 100, 3, 0),
        (KIND_DELETE, BUY, 1000, 100, 1, FLAG_IMPLIED | FLAG_LAST),
        (KIND_ADD, SELL, 998, 50, 4, 0),
        (KIND_DELETE, BUY, 999, 100, 3, FLAG_IMPLIED | FLAG_LAST),
    ]
    assert reference_snapshots(ev, 1)[-1].tolist() == [99800, 50, EMPTY_BID, 0]


def test_without_orderbook_a_level_l_message_keeps_at_most_l_minus_1_better_levels(
    tmp_path: Path,
) -> None:
    msg = write_pair(
        tmp_path,
        ["34200.1,1,1,100,100000,1", "34200.2,1,2,100,100100,1", "34200.3,1,3,100,100200,1",
         "34200.4,2,1,10,100000,1"],  # 10.00 is within the top 2: one of 10.01/10.02 is gone
        [BOOK0 + ",100600,1,99900,1"] * 4,
        level=2,
    )
    msg.with_name(msg.name.replace("message", "orderbook")).unlink()
    ev = run_import("lobster", [msg], ImportOptions()).days[0].events
    assert _rows(ev[-2:]) == [
        (KIND_CANCEL, BUY, 1000, 10, 1, 0),
        (KIND_DELETE, BUY, 1002, 100, 3, FLAG_IMPLIED | FLAG_LAST),  # the farthest goes
    ]


@pytest.mark.shared_data
def test_amzn_without_orderbook_stores_a_book_the_engine_replays_without_unknown_ids(
    shared_data: Path, tmp_path: Path
) -> None:
    from framework.book.project import L3ToL2

    path = tmp_path / AMZN_MSG
    path.write_bytes((shared_data / AMZN_DIR / AMZN_MSG).read_bytes())
    result = run_import("lobster", [path], ImportOptions())
    events = result.days[0].events
    raw = _load(path, 6)
    own = events[(events["flags"] & FLAG_IMPLIED) == 0]
    typ = raw[:, 1].astype(int)
    assert own["kind"].tolist() == [TYPE_KIND[t] for t in typ]  # the file's rows, in order
    # ids acted on before (or without) an add, counted here independently of the kernel
    first: dict[int, int] = {}
    for t, oid in zip(typ.tolist(), raw[:, 2].astype(np.int64).tolist(), strict=True):
        if t <= 4:
            first.setdefault(oid, t)
    unseen = sum(1 for t in first.values() if t != 1)
    assert any(f"{unseen:,} orders (" in n for n in result.report.notes)
    books = reference_snapshots(events, 1)  # asserts every event names a live order
    crossed = (books[:, 2] >= books[:, 0]) & (books[:, 0] != EMPTY_ASK) & (books[:, 2] != EMPTY_BID)
    assert not crossed.any()
    # the engine's L3 -> L2 projection sees every visible execution as a trade
    projected = L3ToL2()(events)
    trades = int(np.count_nonzero(projected["kind"] == KIND_TRADE))
    assert trades == int(np.count_nonzero(typ == 4)) + int(np.count_nonzero(typ == 5))
    # the level-1 book without the orderbook file: best prices as LOBSTER's in most rows
    expected = _load(Path(str(shared_data / AMZN_DIR / AMZN_MSG).replace("message", "orderbook")),
                     4).astype(np.int64)
    same = (books[:, [0, 2]] == expected[:, [0, 2]]).all(axis=1).mean()
    assert same > 0.6, same


def test_missing_given_orderbook_is_a_data_error(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, ["34200.1,1,1,100,100000,1"], [BOOK0])
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        _import(msg, orderbook=tmp_path / "nope.csv")


def test_garbled_line_is_damage_naming_file_and_line(tmp_path: Path) -> None:
    msg = write_pair(
        tmp_path,
        ["34200.1,1,1,100,100000,1", "34200.2,1,2,100,100000,1", "34200.3,1,x3,100,1000",
         "34200.4,1,3,100,100000,1"],
        ["100500,300,100000,100", "100500,300,100000,200", "100500,300,100000,999",
         "100500,300,100000,300"],
    )
    with pytest.raises(DataError, match=r"damaged input: not a LOBSTER message row: unparseable "
                                        r"line \(1 rows, first at TEST_.*message_1\.csv line 3\)"):
        run_import("lobster", [msg], ImportOptions())
    res = run_import("lobster", [msg], ImportOptions(extra={"allow_partial": True}))
    assert res.report.ledger()[:3] == (4, 3, 1)
    # the line and its orderbook row are gone together: the rest still match LOBSTER's book
    assert reference_snapshots(res.days[0].events, 1).tolist() == [
        [100500, 300, 100000, 100], [100500, 300, 100000, 200], [100500, 300, 100000, 300]]


def test_blank_lines_carry_nothing_and_shift_nothing(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, ["34200.1,1,1,100,100000,1", "", "34200.2,1,2,100,100000,1"],
                     [BOOK0, "100500,300,100000,200"])
    res = run_import("lobster", [msg], ImportOptions())
    assert res.report.ledger()[:3] == (2, 2, 0)
    assert not res.report.damaged


def test_garbled_orderbook_line_leaves_its_message_unchecked(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, ["34200.1,1,1,100,100000,1"] * 2, [BOOK0, "100500,300,abc,200"])
    with pytest.raises(DataError, match=r"1 orderbook rows are not valid \(unparseable line\)"):
        run_import("lobster", [msg], ImportOptions())
    res = run_import("lobster", [msg], ImportOptions(extra={"allow_partial": True}))
    assert res.report.rows_rejected == 0


@pytest.mark.parametrize(("n_msg", "n_book", "needle"), [
    (2, 1, r"message_1\.csv has 1 more rows than \S*orderbook_1\.csv \(2 messages, 1 orderbook "
           r"rows\) .*orderbook_1\.csv looks cut"),
    (1, 2, r"orderbook_1\.csv has 1 more rows than \S*message_1\.csv \(1 messages, 2 orderbook "
           r"rows\) .*message_1\.csv looks cut"),
])
def test_pairs_of_different_lengths_say_what_to_do_and_import_the_overlap(
    tmp_path: Path, n_msg: int, n_book: int, needle: str
) -> None:
    rows = ["34200.1,1,1,100,100000,1", "34200.2,1,2,100,100000,1"]
    books = ["100500,300,100000,100", "100500,300,100000,200"]
    msg = write_pair(tmp_path, rows[:n_msg], books[:n_book])
    with pytest.raises(DataError, match=needle + r".*--allow-partial"):
        run_import("lobster", [msg], ImportOptions())
    res = run_import("lobster", [msg], ImportOptions(extra={"allow_partial": True}))
    assert res.report.ledger()[:3] == (n_msg, n_msg, 0)  # every message is imported
    assert reference_snapshots(res.days[0].events, 1).tolist() == [
        [int(v) for v in b.split(",")] for b in books[:n_msg]]


def test_level_in_name_disagreeing_with_orderbook_columns_is_a_data_error(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, ["34200.1,1,1,100,100000,1"], [BOOK0], level=5)
    with pytest.raises(DataError, match=r"the name says level 5 but .* = level 1"):
        _import(msg)


def test_itch_binary_file_is_rejected_as_not_lobster(shared_data: Path, tmp_path: Path) -> None:
    itch = (
        shared_data / "itch50_binaryfile_real_heads" / "LukeFasanello_ItchParser_tests_sample.itch"
    )
    orderbook = tmp_path / "book.csv"
    orderbook.write_text(BOOK0 + "\n")
    with pytest.raises(FormatError, match=r"\.itch: .*not a LOBSTER message"):
        _import(itch, orderbook=orderbook)


def test_invalid_messages_are_damage_skipped_with_their_orderbook_rows(tmp_path: Path) -> None:
    msg = write_pair(
        tmp_path,
        ["34200.1,1,1,100,100000,1", "34200.2,9,1,100,100000,1", "34200.05,1,2,50,100000,1",
         "34200.3,1,3,100,100000,1"],
        ["100500,300,100000,300", "100500,300,100000,999", "100500,300,100000,999",
         "100500,300,100000,400"],
    )
    with pytest.raises(DataError, match=r"not a LOBSTER message row: event type outside 1\.\.7 "
                                        r"\(1 rows, first at TEST_.*_message_1\.csv line 2\)"):
        run_import("lobster", [msg], ImportOptions())
    res = run_import("lobster", [msg], ImportOptions(extra={"allow_partial": True}))
    rep = res.report
    assert dict(rep.rejected_rows) == {"not a LOBSTER message row: event type outside 1..7": 1,
                                       "not a LOBSTER message row: out of time order": 1}
    assert rep.ledger()[:3] == (4, 2, 2)
    ev = res.days[0].events
    assert reference_snapshots(ev, 1).tolist() == [[100500, 300, 100000, 300],
                                                   [100500, 300, 100000, 400]]


def test_orderbook_with_size_on_an_empty_level_leaves_its_message_unchecked(
    tmp_path: Path,
) -> None:
    msg = write_pair(tmp_path, ["34200.1,1,1,100,100000,1", "34200.2,1,2,100,100000,1"],
                     [BOOK0, f"{EMPTY_ASK},5,100000,300"])
    with pytest.raises(DataError, match=r"1 orderbook rows are not valid \(size on an empty "
                                        r"\(9999999999\) level\)"):
        run_import("lobster", [msg], ImportOptions())
    res = run_import("lobster", [msg], ImportOptions(extra={"allow_partial": True}))
    assert res.report.rows_rejected == 0
    assert len(reference_snapshots(res.days[0].events, 1)) == 2
    assert any("1 of 2 messages have no usable orderbook row" in n for n in res.report.notes)


def test_file_without_date_or_symbol_in_its_name_needs_options(tmp_path: Path) -> None:
    msg = tmp_path / "msgs.csv"
    msg.write_text("34200.1,1,1,100,100000,1\n")
    book = tmp_path / "book.csv"
    book.write_text("100500,300,100000,100\n")
    with pytest.raises(DataError, match="no date in the file name; pass --date"):
        _import(msg, orderbook=book)
    with pytest.raises(ConfigError, match="pass --symbol"):
        import_lobster([msg], ImportOptions(date=dt.date(2012, 6, 21), extra={"orderbook": book}))
    result = import_lobster(
        [msg], ImportOptions(symbol="ABC", date=dt.date(2012, 6, 21), extra={"orderbook": book})
    )
    assert result.days[0].instrument.key == "XNAS/ABC"


def test_plain_python_kernel_gives_the_same_events_as_the_compiled_one(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = shared_data / AAPL_DIR / AAPL_MSG
    compiled = import_lobster([path], ImportOptions()).days[0].events
    monkeypatch.setattr(lobster, "build_nb", lobster.build_nb.py_func)
    plain = import_lobster([path], ImportOptions()).days[0].events
    assert len(plain) == 1034
    assert np.array_equal(plain, compiled)


def test_lot_size_divides_sizes_or_is_a_data_error(tmp_path: Path) -> None:
    msg = write_pair(tmp_path, ["34200.1,1,1,100,100000,1"], [BOOK0])
    ev = _import(msg, lot_size="100").days[0].events
    assert ev["qty"].tolist() == [1, 3, 1]  # seed bid 100 shares, seed ask 300, the add 100
    msg = write_pair(tmp_path, ["34200.1,1,1,150,100000,1"], ["100500,300,100000,250"])
    with pytest.raises(DataError, match=r"not whole lots of 100 shares .*--lot-size"):
        _import(msg, lot_size="100")
