"""Book replay: rows after every message, CSV layout, and the key check -- the book rebuilt
from the stored LOBSTER events equals LOBSTER's own orderbook file at every row and level."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from framework.book.l2 import NO_PRICE
from framework.book.replay import BookReplayer, book_replay_to_csv, replay_book_rows
from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_ADD,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
    make_events,
)
from framework.core.instrument import Instrument
from framework.store import TickStore

N = NO_PRICE


def test_l2_rows_are_written_only_after_last_in_packet_events() -> None:
    ev = make_events(
        kind=[KIND_LEVEL, KIND_LEVEL, KIND_LEVEL, KIND_TRADE, KIND_LEVEL],
        side=[BUY, SELL, SELL, BUY, BUY],
        price=[100, 102, 101, 101, 100],
        qty=[5, 3, 1, 1, 0],
        flags=[0, FLAG_LAST, FLAG_LAST, FLAG_LAST, FLAG_LAST],
    )
    rows = replay_book_rows(ev, levels=2, l3=False)
    assert rows.tolist() == [
        [102, 3, 100, 5, N, 0, N, 0],
        [101, 1, 100, 5, 102, 3, N, 0],
        [101, 1, 100, 5, 102, 3, N, 0],
        [101, 1, N, 0, 102, 3, N, 0],
    ]


def test_l3_replay_persists_the_book_across_batches_and_grows_its_pool() -> None:
    n = 40
    adds = make_events(kind=[KIND_ADD] * n, side=[BUY] * n, price=[100 - i % 3 for i in range(n)],
                       qty=[1] * n, order_id=np.arange(1, n + 1), flags=[FLAG_LAST] * n)
    dels = make_events(kind=[KIND_CANCEL, KIND_DELETE], side=[BUY, BUY], price=[100, 99],
                       qty=[1, 1], order_id=[1, 2], flags=[0, FLAG_LAST])
    rep = BookReplayer(levels=3, l3=True, capacity=4)  # must double its pool several times
    first = rep.feed(adds)
    second = rep.feed(dels)
    assert len(first) == n
    assert first[-1].tolist() == [N, 0, 100, 14, N, 0, 99, 13, N, 0, 98, 13]
    assert second.tolist() == [[N, 0, 100, 13, N, 0, 99, 12, N, 0, 98, 13]]
    assert rep.rows_written == n + 1


def test_replayer_rejects_zero_levels() -> None:
    with pytest.raises(ConfigError, match="levels"):
        BookReplayer(levels=0, l3=False)


def test_csv_has_prices_in_currency_units_and_blank_empty_levels(tmp_path: Path) -> None:
    inst = Instrument(venue="SIM", symbol="SPRD", asset_class="future", tick_size="0.05",
                      lot_size="0.5")
    store = TickStore(tmp_path / "store")
    day = dt.date(2024, 1, 2)
    ev = make_events(
        local_ts=[1, 2, 3],
        kind=[KIND_LEVEL] * 3,
        side=[BUY, SELL, BUY],
        price=[-3, 2, -41],  # -0.15, 0.10, -2.05
        qty=[4, 3, 1],
        flags=[FLAG_LAST] * 3,
    )
    store.write(inst, day, ev)
    out = tmp_path / "book.csv"
    assert book_replay_to_csv(store, "SIM", "SPRD", day, 2, out) == 3
    assert out.read_text().splitlines() == [
        ",,-0.15,2.0,,,,",
        "0.10,1.5,-0.15,2.0,,,,",
        "0.10,1.5,-0.15,2.0,,,-2.05,0.5",
    ]


# --- the key check: LOBSTER's own orderbook files ---------------------------------------------


def _lobster_rows(path: Path, levels: int) -> list[list[int | None]]:
    """LOBSTER rows as integers (price x 10000), empty levels None."""
    out = []
    for line in path.read_text().splitlines():
        v = [int(x) for x in line.split(",")]
        assert len(v) == 4 * levels
        row: list[int | None] = []
        for j in range(0, len(v), 2):
            empty = abs(v[j]) == 9_999_999_999
            row += [None, None] if empty else [v[j], v[j + 1]]
        out.append(row)
    return out


def _our_rows(path: Path) -> list[list[int | None]]:
    out = []
    for line in path.read_text().splitlines():
        row: list[int | None] = []
        for j, x in enumerate(line.split(",")):
            if x == "":
                row.append(None)
            else:
                row.append(int(Decimal(x) * 10_000) if j % 2 == 0 else int(x))
        out.append(row)
    return out


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("folder", "levels", "n_rows"),
    [
        ("lobster_AMZN_2012-06-21_L1_fullday", 1, 57_515),
        ("lobster_AAPL_2012-06-21_L10_first999", 10, 999),
    ],
)
def test_book_replay_equals_lobster_orderbook_file(
    shared_data: Path, tmp_path: Path, folder: str, levels: int, n_rows: int
) -> None:
    lobster = pytest.importorskip("framework.ingest.lobster")
    from framework.ingest.base import ImportOptions

    src = shared_data / folder
    msg = next(p for p in src.iterdir() if "_message_" in p.name)
    book = next(p for p in src.iterdir() if "_orderbook_" in p.name)
    result = lobster.import_lobster([msg], ImportOptions(extra={"orderbook": book}))
    day = result.days[0]
    store = TickStore(tmp_path / "store")
    store.write(day.instrument, day.date, day.events)

    out = tmp_path / "book.csv"
    inst = day.instrument
    written = book_replay_to_csv(store, inst.venue, inst.symbol, day.date, levels, out)

    want = _lobster_rows(book, levels)
    got = _our_rows(out)
    assert written == n_rows == len(want) == len(got)
    bad = [i for i in range(n_rows) if got[i] != want[i]]
    assert not bad, f"{len(bad)} rows differ; first row {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"


# --- quotes far from the touch, resting all day, through import and `hftlab book replay` ----

FAR_QUOTES = [(SELL, 20_000_000, 30), (SELL, 90_000_000, 5), (BUY, 10_000, 40), (BUY, 100, 7)]
"""LOBSTER prices (dollars x 10000): asks at $2000.00 and $9000.00, bids at $1.00 and
$0.01 (tick 1), for a stock whose touch starts at $30 and climbs past $500."""


def _lobster_day(folder: Path, levels: int, steps: int) -> Path:
    """A LOBSTER message/orderbook pair: the far quotes first, then a touch that moves $5
    a message (each message a delete of the old near orders or an add of new ones); the
    orderbook file is the reference book after every message."""
    from tests.book_reference import RefL3

    msgs: list[tuple[int, int, int, int, int]] = []  # type, id, size, price, direction
    oid = 0
    for side, price, size in FAR_QUOTES:
        oid += 1
        msgs.append((1, oid, size, price, side))
    near: list[tuple[int, int, int, int]] = []
    for k in range(steps):
        c = 300_000 + 50_000 * k  # $30.00, then $5.00 up a message
        msgs += [(3, i, q, p, s) for i, q, p, s in near]
        near = []
        for side, off, size in ((BUY, -100, 2 + k % 3), (SELL, 100, 3), (BUY, -300, 1),
                                (SELL, 200, 4)):
            oid += 1
            near.append((oid, size, c + off, side))
            msgs.append((1, oid, size, c + off, side))
    ref = RefL3()
    msg_lines, book_lines = [], []
    for n, (typ, i, size, price, side) in enumerate(msgs):
        ref.apply(KIND_ADD if typ == 1 else KIND_DELETE, i, side, price, size)
        msg_lines.append(f"{34_200 + n * 0.25:.9f},{typ},{i},{size},{price},{side}")
        asks, bids = ref.depth(SELL), ref.depth(BUY)
        row: list[int] = []
        for k in range(levels):
            row += asks[k] if k < len(asks) else [9_999_999_999, 0]
            row += bids[k] if k < len(bids) else [-9_999_999_999, 0]
        book_lines.append(",".join(map(str, row)))
    stem = f"FAR_2012-06-21_34200000_57600000_{{}}_{levels}.csv"
    (folder / stem.format("orderbook")).write_text("\n".join(book_lines) + "\n")
    msg_path = folder / stem.format("message")
    msg_path.write_text("\n".join(msg_lines) + "\n")
    return msg_path


@pytest.mark.parametrize("levels", [4, 6])
def test_far_quotes_resting_all_day_are_in_every_replayed_row(tmp_path: Path, levels: int) -> None:
    from framework.cli import main

    msg = _lobster_day(tmp_path, levels, steps=120)
    book = msg.with_name(msg.name.replace("message", "orderbook"))
    root = str(tmp_path / "store")
    assert main(["data", "import", "lobster", str(msg), "--store", root]) == 0
    (key,) = TickStore(root).keys()
    out = tmp_path / "book.csv"
    argv = ["book", "replay", "--store", root, "--venue", key.venue, "--symbol", key.symbol,
            "--date", str(key.date), "--levels", str(levels), "--out", str(out)]
    assert main(argv) == 0
    want = _lobster_rows(book, levels)
    got = _our_rows(out)
    assert len(got) == len(want) == len(msg.read_text().splitlines())
    bad = [i for i in range(len(want)) if got[i] != want[i]]
    assert not bad, f"{len(bad)} rows differ; first row {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"
    # the $2000.00 ask and the $0.01 bid are in every row once they are in
    for row in got[4:]:
        assert [20_000_000, 30] in [row[j : j + 2] for j in range(0, len(row), 4)]
        assert [100, 7] in [row[j : j + 2] for j in range(2, len(row), 4)]
