"""DBN MBO books against Databento's documented book, built here from the official decoder.

The reference applies Databento's MBO semantics in plain Python to the records the official
``databento_dbn`` decoder yields (docs: "order tracking" and "limit order book" examples):
A adds an order at the back of its level (with F_TOB: the only level of its side, none when
the price is undefined); M changes price and/or size -- a new price or a larger size sends
it to the back, a smaller one keeps its place -- and adds an order the book does not hold;
C removes ``size`` lots; R clears the book; T, F and N change nothing. A snapshot (F_SNAPSHOT
records) is the whole book. The book is read only after a record with F_LAST.

hftlab's side is the real pipeline: :func:`import_dbn` on the file, then the book replay
``hftlab book replay`` uses. Every book row (one per FLAG_LAST event) is compared, all levels,
with the reference after the venue event it closes; queues (priority) are compared too.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

from framework.book.l2 import NO_PRICE
from framework.book.l3 import L3Book
from framework.book.replay import replay_book_rows
from framework.cli import main
from framework.core.events import (
    FLAG_LAST,
    KIND_ADD,
    KIND_DELETE,
    KIND_MODIFY,
    KIND_TRADE,
    NO_SIDE,
    EventArray,
)
from framework.ingest.base import ImportOptions
from framework.ingest.dbn import import_dbn

UNDEF = dbn.UNDEF_PRICE
F_LAST, F_TOB, F_SNAPSHOT, F_BAD_TS = dbn.F_LAST, dbn.F_TOB, dbn.F_SNAPSHOT, dbn.F_BAD_TS_RECV
ES_TICK = 250_000_000  # 0.25 in 1e-9 units: the default tick of GLBX ES contracts
T0 = 1_609_160_400_000_000_000  # 2020-12-28 13:00 UTC
DAY = dt.date(2020, 12, 28)
MID = 14_880  # 3720.00 in ES ticks
ES = {5482: "ESH1", 5483: "ESM1"}


# --- the reference book ----------------------------------------------------------------------


@dataclass
class RefBook:
    """One book of Databento's MBO semantics (per instrument and publisher)."""

    orders: dict[int, list[int]] = field(default_factory=dict)  # id -> [side, price, size]
    levels: dict[str, dict[int, list[int]]] = field(
        default_factory=lambda: {"B": {}, "A": {}})  # side -> price -> ids, front first
    tob: dict[str, tuple[int, int] | None] = field(default_factory=lambda: {"B": None, "A": None})
    in_snapshot: bool = False

    def clear(self, side: str = "N") -> None:
        for s in ("B", "A") if side == "N" else (side,):
            for ids in self.levels[s].values():
                for oid in ids:
                    del self.orders[oid]
            self.levels[s] = {}
            self.tob[s] = None

    def _unlink(self, oid: int) -> list[int]:
        side, price, size = self.orders.pop(oid)
        level = self.levels["B" if side == 1 else "A"][price]
        level.remove(oid)
        if not level:
            del self.levels["B" if side == 1 else "A"][price]
        return [side, price, size]

    def _link(self, oid: int, side: str, price: int, size: int) -> None:
        self.orders[oid] = [1 if side == "B" else -1, price, size]
        self.levels[side].setdefault(price, []).append(oid)

    def apply(self, r: dbn.MBOMsg) -> None:
        a, s = str(r.action), str(r.side)
        snap = bool(r.flags & F_SNAPSHOT)
        if snap and not self.in_snapshot and a != "R":
            self.clear()  # a snapshot is the whole book
        self.in_snapshot = snap
        oid, price, size = int(r.order_id), int(r.price), int(r.size)
        if a in "TFN":
            return
        if a == "R":
            self.clear(s)
        elif s not in "BA":
            return  # an add or modify without a side rests nowhere
        elif a == "A" and r.flags & F_TOB:
            self.tob[s] = (price, size) if price != UNDEF and size > 0 else None
        elif a == "A" or (a == "M" and oid not in self.orders):  # an unknown modify adds
            if oid in self.orders:
                self._unlink(oid)  # an id added twice: the new order replaces the old
            if size > 0:
                self._link(oid, s, price, size)
        elif a == "M":
            _, old_price, old_size = self.orders[oid]
            if size == 0:
                self._unlink(oid)
            elif price != old_price or size > old_size:  # loses its place
                self._unlink(oid)
                self._link(oid, s, price, size)
            else:
                self.orders[oid][2] = size
        elif a == "C" and oid in self.orders:
            self.orders[oid][2] -= size
            if self.orders[oid][2] <= 0:
                self._unlink(oid)

    def depth(self, side: str) -> list[tuple[int, int]]:
        """(price, lots) per level, best first, in 1e-9 units."""
        if self.tob[side] is not None or not self.levels[side]:
            return [self.tob[side]] if self.tob[side] else []
        agg = [(p, sum(self.orders[o][2] for o in ids)) for p, ids in self.levels[side].items()]
        return sorted(agg, reverse=side == "B")

    def state(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self.depth("B"), self.depth("A")

    def queues(self) -> dict[tuple[int, int], list[int]]:
        return {(1 if s == "B" else -1, p): list(ids)
                for s in ("B", "A") for p, ids in self.levels[s].items()}


@dataclass
class RefRun:
    """What the reference saw of one book: its state after each F_LAST record."""

    rows: dict[int, tuple[list, list]] = field(default_factory=dict)  # ts_recv -> state
    queues: dict[int, dict] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)  # ts_recv of each F_LAST, in order
    unchanged: dict[int, bool] = field(default_factory=dict)  # event changed nothing
    trades: int = 0
    final: tuple[list, list] = ([], [])

    def closing(self, ts: int) -> int:
        """ts_recv of the F_LAST record that closes the venue event of a record at ``ts``
        (the first at or after it: records of an event without F_LAST belong to the next)."""
        i = bisect.bisect_left(self.order, ts)
        assert i < len(self.order), f"a book row at {ts}, after the last F_LAST"
        return self.order[i]


def reference(records: list[dbn.MBOMsg]) -> dict[tuple[int, int], RefRun]:
    """Replay records per (instrument_id, publisher_id) through :class:`RefBook`."""
    books: dict[tuple[int, int], RefBook] = {}
    runs: dict[tuple[int, int], RefRun] = {}
    for r in records:
        key = (int(r.instrument_id), int(r.publisher_id))
        book = books.setdefault(key, RefBook())
        run = runs.setdefault(key, RefRun())
        book.apply(r)
        run.trades += str(r.action) == "T" and r.size > 0
        if r.flags & F_LAST:
            ts = int(r.ts_recv)
            state = book.state()
            assert ts not in run.rows, "the test streams give each event its own ts_recv"
            prev = run.rows[run.order[-1]] if run.order else ([], [])
            run.unchanged[ts] = state == prev
            run.rows[ts] = state
            run.queues[ts] = book.queues()
            run.order.append(ts)
        run.final = book.state()
    return runs


def official_records(path: Path) -> list[dbn.MBOMsg]:
    """MBO records of a DBN or DBZ file as the official decoder yields them."""
    data = path.read_bytes()
    if data[:4] == b"\x50\x2a\x4d\x18":  # legacy DBZ: a skippable metadata frame, then v1
        body = data[8 + int.from_bytes(data[4:8], "little"):]
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        decoder = dbn.DBNDecoder(has_metadata=False, input_version=1)
    else:
        if data[:4] == b"\x28\xb5\x2f\xfd":
            data = b"".join(zstandard.ZstdDecompressor().read_to_iter(data))
        raw = data
        decoder = dbn.DBNDecoder(has_metadata=True)
    decoder.write(raw)
    return [r for r in decoder.decode() if isinstance(r, dbn.MBOMsg)]


# --- hftlab's side ---------------------------------------------------------------------------


def _side_rows(row: np.ndarray, col: int, levels: int) -> list[tuple[int, int]]:
    return [(int(row[4 * k + col]) * ES_TICK, int(row[4 * k + col + 1]))
            for k in range(levels) if row[4 * k + col] != NO_PRICE]


def compare_day(events: EventArray, run: RefRun) -> int:
    """Assert hftlab's replayed book equals the reference at every FLAG_LAST row; returns
    the number of rows compared."""
    levels = 2 + max((max(len(b), len(a)) for b, a in run.rows.values()), default=0)
    l3 = bool((events["kind"] == KIND_ADD).any())  # as ``hftlab book replay`` chooses
    rows = replay_book_rows(events, levels=levels, l3=l3)
    last = (events["flags"] & FLAG_LAST) != 0
    row_ts = [run.closing(t) for t in events["local_ts"][last].tolist()]
    assert len(rows) == len(row_ts)
    assert row_ts == sorted(set(row_ts)), "one row per venue event, in order"
    for ts, row in zip(row_ts, rows, strict=True):
        bids, asks = _side_rows(row, 2, levels), _side_rows(row, 0, levels)
        ref_bids, ref_asks = run.rows[ts]
        assert (bids, asks) == (ref_bids, ref_asks), f"book differs after the event at {ts}"
        if bids and asks and bids[0][0] >= asks[0][0]:
            assert ref_bids[0][0] >= ref_asks[0][0], "crossed where the reference is not"
    # an F_LAST event without a row is one that changed nothing
    missing = [ts for ts in run.order if ts not in set(row_ts)]
    assert all(run.unchanged[ts] for ts in missing)
    assert int(np.count_nonzero(events["kind"] == KIND_TRADE)) == run.trades
    if l3:
        _compare_queues(events, run)
    return len(rows)


def _compare_queues(events: EventArray, run: RefRun) -> None:
    """Order by order: the queue of every level at every row, and the final book."""
    book = L3Book(capacity=1 << 12, n_ticks=1 << 15)
    for e in events:
        book.apply(int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"]),
                   order_id=int(e["order_id"]))
        if e["flags"] & FLAG_LAST:
            ref = run.queues[run.closing(int(e["local_ts"]))]
            got = {(side, p * ES_TICK): book.queue(side, p)
                   for side in (1, -1) for p, _ in _levels_of(book, side)}
            assert got == ref, f"queues differ after the event at {int(e['local_ts'])}"
    ref_bids, ref_asks = run.final
    assert [(p * ES_TICK, q) for p, q in _levels_of(book, 1)] == ref_bids
    assert [(p * ES_TICK, q) for p, q in _levels_of(book, -1)] == ref_asks


def _levels_of(book: L3Book, side: int) -> list[tuple[int, int]]:
    d = book.depth(side, 1 << 12)
    return [(int(p), int(q)) for p, q in d if q > 0]


def check_file(path: Path, **opts: object) -> int:
    """Import ``path`` and compare every book it gives with the reference; returns rows."""
    runs = reference(official_records(path))
    res = import_dbn([path], ImportOptions(**opts))  # type: ignore[arg-type]
    assert res.report.rows_rejected == 0, res.report.rejected
    books = {}
    for day in res.days:
        books[(day.instrument.venue, day.instrument.symbol)] = day.events
    n = 0
    for (iid, pid), run in runs.items():
        venue = "GLBX" if len({p for i, p in runs if i == iid}) == 1 else f"GLBX-P{pid}"
        events = books.pop((venue, ES[iid]), None)
        if events is None:  # nothing stored: then the reference book never held anything
            assert all(state == ([], []) for state in run.rows.values())
            continue
        n += compare_day(events, run)
    assert not books
    return n


# --- writing DBN files with the official encoder ----------------------------------------------


def write_dbn(path: Path, records: list[dbn.MBOMsg], *, zstd: bool = False) -> Path:
    """A DBN (v3) file: the official Metadata encoder, then the records' own bytes."""
    iv = {iid: SimpleNamespace(start_date=dt.date(2020, 12, 27), end_date=dt.date(2020, 12, 31),
                               symbol=str(iid)) for iid in ES}
    md = dbn.Metadata(dataset="GLBX.MDP3", schema=dbn.Schema.MBO, start=T0,
                      stype_in=dbn.SType.RAW_SYMBOL, stype_out=dbn.SType.INSTRUMENT_ID,
                      symbols=list(ES.values()),
                      mappings=[SimpleNamespace(raw_symbol=sym, intervals=[iv[iid]])
                                for iid, sym in ES.items()])
    data = md.encode() + b"".join(bytes(r) for r in records)
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if zstd else data)
    return path


@dataclass
class Rec:
    action: str
    oid: int = 0
    size: int = 0
    side: str = "N"
    ticks: int | None = MID  # price in ES ticks; None = UNDEF_PRICE
    iid: int = 5482
    pid: int = 1
    flags: int = 0


class Stream:
    """MBO records built venue event by venue event: the records of one event share a
    ts_recv, and the last record of each instrument (and publisher) in it has F_LAST."""

    def __init__(self) -> None:
        self.records: list[dbn.MBOMsg] = []
        self.t = T0

    def event(self, *recs: Rec, last: bool = True) -> None:
        self.t += 1_000
        ends = {(r.iid, r.pid): i for i, r in enumerate(recs)} if last else {}
        for i, r in enumerate(recs):
            flags = r.flags | (F_LAST if ends.get((r.iid, r.pid)) == i else 0)
            px = UNDEF if r.ticks is None else r.ticks * ES_TICK
            self.records.append(dbn.MBOMsg(
                publisher_id=r.pid, instrument_id=r.iid, ts_event=self.t - 500,
                order_id=r.oid, price=px, size=r.size, action=dbn.Action(r.action),
                side=dbn.Side(r.side), ts_recv=self.t, flags=flags, sequence=len(self.records)))

    def write(self, path: Path, *, zstd: bool = False) -> Path:
        return write_dbn(path, self.records, zstd=zstd)


def A(oid: int, size: int, side: str, ticks: int | None, **kw: int) -> Rec:
    return Rec("A", oid, size, side, ticks, **kw)


def C(oid: int, size: int, side: str, ticks: int, **kw: int) -> Rec:
    return Rec("C", oid, size, side, ticks, **kw)


def M(oid: int, size: int, side: str, ticks: int, **kw: int) -> Rec:
    return Rec("M", oid, size, side, ticks, **kw)


def F(oid: int, size: int, side: str, ticks: int, **kw: int) -> Rec:
    return Rec("F", oid, size, side, ticks, **kw)


def T(size: int, side: str, ticks: int, oid: int = 0, **kw: int) -> Rec:
    return Rec("T", oid, size, side, ticks, **kw)


def N(**kw: int) -> Rec:
    return Rec("N", 0, 0, "N", None, **kw)


def R(**kw: int) -> Rec:
    return Rec("R", 0, 0, "N", None, **kw)


# --- every MBO file Databento's DBN repository ships -------------------------------------------


def _sample_mbo(shared_data: Path) -> list[Path]:
    folder = shared_data / "dbn_databento_dbn_tests" / "tests_data"
    return sorted(p for p in folder.iterdir() if p.name.startswith("test_data.mbo."))


def test_every_sample_mbo_file_gives_the_reference_book(shared_data: Path) -> None:
    paths = _sample_mbo(shared_data)
    # .dbn (v2), .dbz, .v1.dbn.zst, .v2.dbn.zst, .v3.dbn, .v3.dbn.zst
    assert len(paths) == 6
    for path in paths:
        assert len(official_records(path)) == 2, path.name
        check_file(path)


# --- generated streams: what the 2-record samples cannot show ----------------------------------


def test_fills_after_modifies_leave_the_cancel_its_full_size(tmp_path: Path) -> None:
    # the case of the issue: add 12, two fills of 1, the venue's modify to 10, cancel 10
    s = Stream()
    s.event(A(7, 12, "B", MID))
    s.event(T(1, "A", MID), F(7, 1, "B", MID))
    s.event(T(1, "A", MID), F(7, 1, "B", MID), M(7, 10, "B", MID))
    s.event(C(7, 10, "B", MID))
    path = s.write(tmp_path / "fills.dbn")
    assert check_file(path) == 4
    ev = import_dbn([path], ImportOptions()).days[0].events
    assert ev["kind"].tolist() == [KIND_ADD, KIND_TRADE, KIND_TRADE, KIND_MODIFY, KIND_DELETE]
    assert ev["qty"].tolist() == [12, 1, 1, 10, 10]
    book = L3Book(capacity=8, n_ticks=1 << 15)
    book.apply_events(ev)
    assert book.n_orders == 0
    assert book.best_bid is None


def test_opening_auction_crossed_until_the_uncross(tmp_path: Path) -> None:
    s = Stream()
    # pre-open: orders cross and rest crossed (bids above asks), one event each
    s.event(A(1, 5, "B", MID + 2))
    s.event(A(2, 3, "B", MID + 1))
    s.event(A(3, 4, "A", MID - 1))
    s.event(A(4, 6, "A", MID))
    s.event(A(5, 2, "B", MID - 3), A(6, 2, "A", MID + 4))
    # the uncross at MID: 8 lots trade, no aggressor; the venue's fills, then its book updates
    s.event(
        T(8, "N", MID),
        F(1, 5, "B", MID), F(2, 3, "B", MID), F(3, 4, "A", MID), F(4, 4, "A", MID),
        C(1, 5, "B", MID + 2), C(2, 3, "B", MID + 1), C(3, 4, "A", MID - 1),
        M(4, 2, "A", MID),  # partly filled: its rest keeps its place
    )
    s.event(C(4, 2, "A", MID))
    s.event(C(5, 2, "B", MID - 3))
    path = s.write(tmp_path / "auction.dbn.zst", zstd=True)
    runs = reference(official_records(path))
    run = runs[(5482, 1)]
    crossed = [b[0][0] >= a[0][0] for b, a in (run.rows[t] for t in run.order) if b and a]
    assert crossed == [True] * 3 + [False] * 2
    assert check_file(path) == 8


def test_modifies_keep_or_lose_priority(tmp_path: Path) -> None:
    s = Stream()
    s.event(A(1, 5, "A", MID + 1), A(2, 5, "A", MID + 1), A(3, 5, "A", MID + 1))
    s.event(M(1, 3, "A", MID + 1))  # size down: keeps the front
    s.event(M(2, 9, "A", MID + 1))  # size up: to the back
    s.event(M(3, 5, "A", MID + 1))  # same size: keeps its place
    s.event(M(1, 3, "A", MID + 2))  # new price: back of the new level
    s.event(M(3, 4, "A", MID + 2), M(2, 2, "A", MID + 1))  # price and size in one event
    s.event(M(9, 4, "A", MID + 1))  # an order the book does not hold: an add
    s.event(M(2, 0, "A", MID + 1))  # size 0: gone
    s.event(C(3, 1, "A", MID + 2))
    assert check_file(s.write(tmp_path / "modify.dbn")) == 9


def test_clears_snapshots_and_records_without_last(tmp_path: Path) -> None:
    s = Stream()
    s.event(A(1, 5, "B", MID), A(2, 5, "A", MID + 2))
    s.event(A(3, 1, "B", MID - 1), C(1, 2, "B", MID), last=False)  # no F_LAST mid-packet
    s.event(A(4, 7, "A", MID + 3), N())  # the event ends on an N with F_LAST
    s.event(N())  # an event of nothing: no row
    s.event(F(77, 1, "B", MID), T(1, "A", MID))  # a fill of an order never added; a print
    s.event(C(88, 3, "A", MID + 5))  # a cancel of an order never added
    s.event(R())  # clear
    s.event(A(5, 2, "B", MID - 2), A(6, 3, "N", MID - 2))  # an add without a side rests nowhere
    snap = F_SNAPSHOT | F_BAD_TS
    s.event(R(flags=snap), A(10, 4, "B", MID, flags=snap), A(11, 4, "B", MID, flags=snap),
            A(12, 6, "A", MID + 1, flags=snap))
    s.event(C(10, 4, "B", MID), A(13, 1, "B", MID))
    # a snapshot without its R (Databento's files before 2024-02-10): it is the whole book
    s.event(A(20, 3, "B", MID - 1, flags=snap), A(21, 3, "A", MID + 1, flags=snap))
    s.event(M(20, 5, "B", MID - 1), T(0, "B", MID))  # a trade of size 0 prints nothing
    assert check_file(s.write(tmp_path / "clears.dbn")) == 10


def test_several_instruments_and_publishers_in_one_file(tmp_path: Path) -> None:
    s = Stream()
    s.event(A(1, 5, "B", MID, iid=5482), A(1, 7, "B", MID + 4, iid=5483),
            A(2, 2, "A", MID + 1, iid=5482))
    s.event(C(1, 5, "B", MID, iid=5482), M(1, 3, "B", MID + 4, iid=5483))
    s.event(A(3, 1, "A", MID + 6, iid=5483))
    # ESM1 from two publishers of one dataset: two books with their own order ids
    s.event(A(1, 9, "A", MID + 9, iid=5483, pid=2), A(4, 1, "B", MID + 5, iid=5483))
    s.event(C(1, 9, "A", MID + 9, iid=5483, pid=2), R(iid=5483, pid=1))
    path = s.write(tmp_path / "multi.dbn")
    assert check_file(path) == 3 + 4 + 2
    keys = sorted(d.instrument.key for d in import_dbn([path], ImportOptions()).days)
    assert keys == ["GLBX-P1/ESM1", "GLBX-P2/ESM1", "GLBX/ESH1"]


def test_top_of_book_venue_adds_replace_their_side(tmp_path: Path) -> None:
    s = Stream()
    s.event(A(0, 5, "B", MID, flags=F_TOB), A(0, 4, "A", MID + 2, flags=F_TOB))
    s.event(A(0, 6, "B", MID + 1, flags=F_TOB), A(0, 4, "A", MID + 2, flags=F_TOB))
    s.event(A(0, 1, "B", MID - 3, flags=F_TOB), A(0, 0, "A", None, flags=F_TOB))
    s.event(T(2, "B", MID + 2), A(0, 2, "A", MID + 2, flags=F_TOB))
    assert check_file(s.write(tmp_path / "tob.dbn")) == 4


# --- a long random stream ----------------------------------------------------------------------


def random_stream(seed: int, n_events: int) -> Stream:
    """A valid book sequence: adds, cancels, modifies, executions (T, F, then the venue's C
    or M), clears, N records, strays; 1-4 actions per venue event."""
    rng = random.Random(seed)
    s = Stream()
    book = RefBook()  # the generator's own view, to make only valid records
    next_oid = 1

    def best(side: str) -> int | None:
        lv = book.levels[side]
        return (max(lv) if side == "B" else min(lv)) // ES_TICK if lv else None

    def price_for(side: str) -> int:
        bb, ba = best("B"), best("A")
        if side == "B":
            top = (ba - 1) if ba is not None else MID + 3
            return top - rng.choice([0, 0, 1, 1, 2, 3, 5, 8])
        bot = (bb + 1) if bb is not None else MID - 3
        return bot + rng.choice([0, 0, 1, 1, 2, 3, 5, 8])

    for _ in range(n_events):
        recs: list[Rec] = []
        for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
            op = rng.random()
            live = list(book.orders)
            if not live or op < 0.32:
                side = rng.choice("BA")
                rec = A(next_oid, rng.randint(1, 20), side, price_for(side))
                next_oid += 1
            elif op < 0.52:
                oid = rng.choice(live)
                sd, px, size = book.orders[oid]
                rec = C(oid, rng.choice([size, rng.randint(1, size)]), "B" if sd == 1 else "A",
                        px // ES_TICK)
            elif op < 0.70:
                oid = rng.choice(live)
                sd, px, size = book.orders[oid]
                side = "B" if sd == 1 else "A"
                how = rng.random()
                new_px = price_for(side) if how < 0.4 else px // ES_TICK
                new_size = size if how < 0.55 else max(1, size + rng.randint(-size, 10))
                rec = M(oid, new_size, side, new_px)
            elif op < 0.86:  # an aggressor takes part of the best level of one side
                side = rng.choice("BA")
                if not book.levels[side]:
                    continue
                px = best(side)
                queue = book.levels[side][px * ES_TICK]
                want = rng.randint(1, sum(book.orders[o][2] for o in queue))
                execs: list[Rec] = [T(want, "A" if side == "B" else "B", px)]
                updates: list[Rec] = []
                for oid in list(queue):
                    if want == 0:
                        break
                    size = book.orders[oid][2]
                    q = min(want, size)
                    want -= q
                    execs.append(F(oid, q, side, px))
                    if q == size or rng.random() < 0.5:
                        updates.append(C(oid, q, side, px))  # ITCH-like: cancel the fill
                    else:
                        updates.append(M(oid, size - q, side, px))  # CME-like: new size
                for r in execs + updates:
                    book.apply(_msg(r))
                recs += execs + updates
                continue
            elif op < 0.93:
                rec = N()
            elif op < 0.96:  # strays: a fill and a cancel of orders never seen
                rec = rng.choice([F(10**9 + next_oid, 1, "B", MID), C(10**9 + next_oid, 1, "A",
                                                                     MID)])
            elif op < 0.965:
                rec = R()
            else:
                rec = T(rng.randint(1, 5), "N", MID)
            book.apply(_msg(rec))
            recs.append(rec)
        if recs:
            s.event(*recs, last=rng.random() > 0.05)
    return s


def _msg(r: Rec) -> dbn.MBOMsg:
    px = UNDEF if r.ticks is None else r.ticks * ES_TICK
    return dbn.MBOMsg(publisher_id=r.pid, instrument_id=r.iid, ts_event=0, order_id=r.oid,
                      price=px, size=r.size, action=dbn.Action(r.action),
                      side=dbn.Side(r.side), ts_recv=0, flags=r.flags)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_stream_gives_the_reference_book_at_every_row(tmp_path: Path, seed: int) -> None:
    s = random_stream(seed, 1500)
    assert len(s.records) > 3000
    actions = {str(r.action) for r in s.records}
    assert actions == set("ACMFTNR")
    rows = check_file(s.write(tmp_path / f"random{seed}.dbn.zst", zstd=True))
    assert rows > 1300


def test_book_replay_command_writes_the_reference_book(tmp_path: Path) -> None:
    # the whole path the issue names: `hftlab data import dbn FILE`, then `hftlab book replay`
    path = random_stream(7, 300).write(tmp_path / "day.dbn")
    run = reference(official_records(path))[(5482, 1)]
    store, out = str(tmp_path / "store"), tmp_path / "book.csv"
    assert main(["data", "import", "dbn", str(path), "--store", store]) == 0
    levels = 2 + max(max(len(b), len(a)) for b, a in run.rows.values())
    assert main(["book", "replay", "--store", store, "--venue", "GLBX", "--symbol", "ESH1",
                 "--date", DAY.isoformat(), "--levels", str(levels), "--out", str(out)]) == 0
    ev = import_dbn([path], ImportOptions()).days[0].events
    row_ts = [run.closing(t) for t in ev["local_ts"][(ev["flags"] & FLAG_LAST) != 0].tolist()]
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == len(row_ts) > 250
    for ts, row in zip(row_ts, rows, strict=True):
        def side(col: int, row: list[str] = row) -> list[tuple[int, int]]:
            return [(round(float(row[4 * k + col]) * 1e9), int(row[4 * k + col + 1]))
                    for k in range(levels) if row[4 * k + col]]
        assert (side(2), side(0)) == run.rows[ts]


def test_trades_keep_their_side_and_order_id(tmp_path: Path) -> None:
    s = Stream()
    s.event(T(3, "N", MID), T(2, "B", MID + 1, oid=55))
    ev = import_dbn([s.write(tmp_path / "t.dbn")], ImportOptions()).days[0].events
    assert ev["kind"].tolist() == [KIND_TRADE, KIND_TRADE]
    assert ev["side"].tolist() == [NO_SIDE, 1]
    assert ev["order_id"].tolist() == [0, 55]
    assert (ev["flags"] & FLAG_LAST).tolist() == [0, FLAG_LAST]
    assert not (ev["kind"] == KIND_DELETE).any()
