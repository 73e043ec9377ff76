"""The compiled loop's parts (live.hotpath): its OUCH messages and journal payloads are byte
for byte the Python path's, its table of cancellable orders follows the gateway's states as
the gateway changes them (before the runner's turn), and a full table leaves cancels to
Python. The loop itself runs in the live runner's loopback tests (OUCH, --busy-poll: the
journal parity check replays each session through the Python path, decision by decision)."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.arena.state import REQ_CANCEL
from framework.ingest.synthetic import generate_day
from framework.kernel.seam import REQUEST_DTYPE, request_records
from framework.strategy.spec import strategies_from_words
from live.fastpath import FT_ST
from live.feeds.itch_mold import MoldFeedHandler
from live.gateways.base import Order, OrderKind, Side, TimeInForce
from live.gateways.ouch import OuchGateway
from live.hotpath import (
    HS_DRY_AT,
    HS_DRY_NS,
    HS_PAGE_AT,
    HS_PAGE_STEP,
    HS_PAGE_SUM,
    HS_STALL_NS,
    HS_STALLS,
    HS_TICKS,
    HS_WARM_OFF,
    HS_WARM_ROW,
    HS_WARM_STEP,
    PAGE,
    PAGE_ARRAY_MAX,
    PROBES,
    RET_IDLE,
    RET_SENT,
    STALL_US,
    T_DONE,
    T_STATE,
    T_WAIT,
    T_WORKING,
    TOUCH_LEVELS,
    WARM_DATA_MAX,
    WARM_TICK_US,
    _merged,
    _pages,
    _slot,
    _touch_step,
    _warm_step,
    cancel_nb,
    enter_nb,
    enter_template,
    request_bytes_nb,
    table_clear_nb,
    table_set_nb,
)
from live.runner import LiveRunner, _Live, order_key
from live.wire import ouch, soupbin

SYMBOL = ouch.pad_symbol("SYN")
TPL = enter_template(SYMBOL)

@contextlib.contextmanager
def _order_socket() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair: the loop's side (small buffer, non-blocking), the venue's."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        a.setblocking(False)
        b.settimeout(5)
        yield a, b


def _fill(sock: socket.socket) -> None:
    """Write until the socket takes nothing more."""
    while True:
        try:
            sock.send(b"x" * 512)
        except BlockingIOError:
            return


def _route_args(fd: int, tab: npt.NDArray[np.int64]) -> tuple[Any, ...]:
    """:func:`route_nb`'s arguments after the requests: orders may leave on ``fd`` with
    UserRefNums from 41, no journal."""
    from live.hotpath import (
        HS_FD,
        HS_JOURNAL,
        HS_LEN,
        HS_ORDERS,
        HS_PRICE_MAX,
        HS_PRICE_MULT,
        HS_URN,
        SL_COLS,
    )

    hs = np.zeros(HS_LEN, np.int64)
    hs[HS_ORDERS], hs[HS_FD], hs[HS_URN], hs[HS_JOURNAL] = 1, fd, 40, 0
    hs[HS_PRICE_MULT], hs[HS_PRICE_MAX] = 100, 2**40
    return (hs, tab, TPL, np.zeros(64, np.uint8),
            np.zeros(REQUEST_DTYPE.itemsize + 32, np.uint8), np.zeros((8, SL_COLS), np.int64),
            np.zeros(7, np.int64), np.zeros(1, np.int64), np.zeros(1, np.uint8),
            np.zeros(16, np.int64), np.zeros(2, np.int64))


@contextlib.contextmanager
def _prepared(gateway: Any = None, strategies: list[Any] | None = None) -> Iterator[LiveRunner]:
    """A compiled runner on a small generated day's instrument, prepared (its hot loop made,
    where it applies), its engine and feed closed after."""
    date = dt.date(2024, 3, 1)
    day = generate_day(date=date, n_events=200, seed=1, mode="l3")
    feed = MoldFeedHandler(listen=("127.0.0.1", 0), date=date, price_step=100, qty_step=1)
    runner = LiveRunner(instrument=day.instrument,
                        strategies=strategies or strategies_from_words(["one_tick_mm"]),
                        feed=feed, gateway=gateway, mode="compiled")
    try:
        runner.prepare()
        yield runner
    finally:
        runner.engine.abort()
        feed.close()



@settings(max_examples=300, deadline=None)
@given(urn=st.integers(1, 2**32 - 1), buy=st.booleans(), qty=st.integers(1, 2**32 - 1),
       price=st.integers(-(2**63), 2**63 - 1), ioc=st.booleans(),
       sid=st.integers(0, 10**9), oid=st.integers(0, 2**62))
def test_enter_and_cancel_are_the_gateways_bytes(urn: int, buy: bool, qty: int, price: int,
                                                 ioc: bool, sid: int, oid: int) -> None:
    out = np.zeros(64, np.uint8)
    n = enter_nb(out, TPL, urn, 1 if buy else -1, qty, price, ioc, sid, oid)
    key = order_key(sid, oid)
    want = soupbin.unsequenced(ouch.encode_enter(
        urn, b"B" if buy else b"S", qty, SYMBOL, price, ouch.TIF_IOC if ioc else ouch.TIF_DAY,
        ouch.pad_clordid(key[:14])))
    assert bytes(out[:n]) == want
    n = cancel_nb(out, urn)
    assert bytes(out[:n]) == soupbin.unsequenced(ouch.CancelOrder(urn, 0).encode())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=11, max_size=11),
       st.integers(-(2**63), 2**63 - 1))
def test_request_bytes_are_the_records(small: list[int], big: int) -> None:
    w = np.array(small, np.int64)
    w[[0, 1, 3, 9, 10]] = [big, big // 3, abs(big) // 7, -big // 5, big // 11]
    for f in (2, 6, 7, 8):  # the one-byte fields
        w[f] = int(w[f]) % 256 - 128
    out = np.zeros(REQUEST_DTYPE.itemsize, np.uint8)
    request_bytes_nb(w, out)
    assert bytes(out) == request_records(w[None].copy()).tobytes()


def test_the_table_sets_clears_and_leaves_a_full_neighbourhood_to_python() -> None:
    tab = np.zeros((64, 4), np.int64)
    assert table_set_nb(tab, 0, 7, 101)
    assert tab[_slot(tab, 0, 7), 2] == 101
    assert table_set_nb(tab, 0, 7, 102)  # a new UserRefNum for the same order
    assert tab[_slot(tab, 0, 7), 2] == 102
    assert _slot(tab, 1, 7) == -1  # another strategy's order 7
    table_clear_nb(tab, 0, 7)
    assert _slot(tab, 0, 7) == -1
    taken = np.zeros((64, 4), np.int64)
    taken[:, T_STATE] = T_WORKING  # every row busy with other orders
    taken[:, 0] = 9
    assert not table_set_nb(taken, 0, 7, 1)
    assert _slot(taken, 0, 7) == -1
    # done orders' rows are given up to new orders (a cancel of them then takes Python's
    # path, as one of an order the loop never knew); working and waiting ones never
    taken[1::2, T_STATE] = T_DONE
    taken[::2, T_STATE] = T_WAIT
    assert table_set_nb(taken, 0, 7, 1)
    i = _slot(taken, 0, 7)
    assert i % 2 == 1
    assert (taken[i, T_STATE], taken[i, 2]) == (T_WORKING, 1)
    assert (taken[::2, T_STATE] == T_WAIT).all()
    # filling: orders keep finding their own rows while PROBES allow
    for oid in range(40):
        if table_set_nb(tab, 2, oid, oid + 1000):
            assert tab[_slot(tab, 2, oid), 2] == oid + 1000
    assert PROBES >= 4


def test_the_table_follows_the_gateway_before_the_runner_takes_its_events() -> None:
    """A fill the gateway applied (the order is done) must stop the loop from cancelling
    it, though the runner takes the event later; an acceptance lets it."""
    gw = OuchGateway("127.0.0.1", 9, username="u", password="p", symbol="SYN", price_mult=100)
    with _prepared(gw) as runner:
        hot = runner._hot
        assert hot is not None
        assert hot.gateway is gw
        key = order_key(0, 5)
        runner.orders[key] = _Live(0, 5, 0)
        gw.booked_new(key, Side.BUY, 3, 100, TimeInForce.DAY, 41)
        runner._hot_sync(key)
        assert hot.tab[_slot(hot.tab, 0, 5), T_STATE] == T_WAIT  # not accepted: a cancel waits
        gw.tracker.acked(key, "9001")
        assert hot.tab[_slot(hot.tab, 0, 5), 2] == 41
        gw.tracker.filled(key, 1, 100, "A", "m1")  # partly: still cancellable
        assert _slot(hot.tab, 0, 5) >= 0
        assert hot.tab[_slot(hot.tab, 0, 5), T_STATE] == T_WORKING
        gw.tracker.filled(key, 2, 100, "A", "m2")  # done, before the runner's turn
        # a cancel of it is journaled by the loop and answered by Python's books after
        assert hot.tab[_slot(hot.tab, 0, 5), T_STATE] == T_DONE
        # an order the runner holds a request for is Python's too
        key2 = order_key(0, 6)
        runner.orders[key2] = live = _Live(0, 6, 0)
        gw.tracker.new(Order(key2, Side.SELL, 1, 101, OrderKind.LIMIT, TimeInForce.DAY))
        gw._book_new(gw.tracker.orders[key2], 42)
        live.waiting.append(np.zeros(1, REQUEST_DTYPE)[0])
        gw.tracker.acked(key2, "9002")
        assert hot.tab[_slot(hot.tab, 0, 6), T_STATE] == T_WAIT  # behind the held request


def test_the_loop_stays_out_where_its_push_would_be_wrong() -> None:
    """Features are computed per push in Python: with a strategy that reads them (or a
    feature model) the runner keeps the packet path and its own push."""
    from strategies.one_tick_mm import OneTickMM

    class ReadsFeatures(OneTickMM):
        features = True

    for strategy, hot in ((OneTickMM(), True), (ReadsFeatures(), False)):
        with _prepared(strategies=[strategy]) as runner:
            assert (runner._hot is not None) is hot


def test_a_full_socket_leaves_the_message_to_python_whole() -> None:
    """The sender writes with MSG_DONTWAIT: when the socket takes nothing or part of an
    Enter Order, the loop stops (RET_PARTIAL) with the order booked and the bytes left to
    write (``HotPath.left``); the next requests wait for Python (HS_K past the order)."""
    from framework.arena.state import REQ_NEW
    from live.hotpath import (
        ENTER_LEN,
        HS_K,
        HS_LEFT,
        HS_LEFT_AT,
        HS_NSENT,
        RET_PARTIAL,
        RET_SENT,
        SL_KIND,
        SL_OID,
        SL_URN,
        route_nb,
    )

    with _order_socket() as (a, b):
        words = np.zeros((2, len(REQUEST_DTYPE.names or ())), np.int64)
        words[:, 2], words[:, 3], words[:, 6], words[:, 9], words[:, 10] = REQ_NEW, [7, 8], 1, \
            10_000, 3
        args = _route_args(a.fileno(), np.zeros((64, 4), np.int64))
        hs = args[0]
        # room: both orders go whole
        assert route_nb(words, 0, 2, *args) == RET_SENT
        assert len(b.recv(4096)) == 2 * ENTER_LEN
        sent = args[5]
        assert hs[HS_NSENT] == 2
        assert list(sent[:2, SL_OID]) == [7, 8]
        assert list(sent[:2, SL_URN]) == [41, 42]
        hs[HS_NSENT] = 0
        _fill(a)
        code = route_nb(words, 0, 2, *args)
        assert code == RET_PARTIAL
        assert hs[HS_K] == 1  # the order is out of the loop's hands; the next waits
        assert hs[HS_NSENT] == 1  # and booked: its UserRefNum is used
        assert sent[0, SL_KIND] == REQ_NEW
        assert sent[0, SL_URN] == 43
        at, left = int(hs[HS_LEFT_AT]), int(hs[HS_LEFT])
        assert at + left == ENTER_LEN
        sbuf = args[3]
        want = soupbin.unsequenced(ouch.encode_enter(
            43, b"B", 3, SYMBOL, 10_000 * 100, ouch.TIF_DAY, ouch.pad_clordid("0:7")))
        assert bytes(sbuf[at : at + left]) == want[at:]


def test_the_journals_share_of_a_tick_ends_with_its_first_order(tmp_path: Any) -> None:
    """``HS_J_NS`` (the bench's journal share of a tick) counts the records appended before
    the tick's first order message left: those after it cannot delay that tick's
    tick-to-order. Every request is journaled either way."""
    from framework.arena.state import REQ_NEW
    from live.hotpath import HS_J_NS, HS_JOURNAL, HS_TICK, RET_SENT, SENT, route_nb
    from live.journal import KIND_ORDER_OUT, JournalWriter, read

    with _order_socket() as (a, b), JournalWriter(tmp_path / "j", fsync="never") as jw:
        words = np.zeros((2, len(REQUEST_DTYPE.names or ())), np.int64)
        words[:, 2], words[:, 3], words[:, 6], words[:, 9], words[:, 10] = REQ_NEW, [7, 8], 1, \
            10_000, 3
        args = list(_route_args(a.fileno(), np.zeros((64, 4), np.int64)))
        hs, marks = args[0], args[6]
        jb, js = jw.hot()
        args[8], args[9] = jb, js
        hs[HS_JOURNAL], hs[HS_TICK] = 1, 1
        assert route_nb(words, 0, 2, *args) == RET_SENT  # the tick's first order, then one
        assert marks[SENT] > 0
        first = int(hs[HS_J_NS])
        assert first > 0
        words[:, 3] = [9, 10]
        assert route_nb(words, 0, 2, *args) == RET_SENT  # later in the same tick
        assert hs[HS_J_NS] == first  # not counted
        b.recv(65536)
    assert sum(r.kind == KIND_ORDER_OUT for r in read(tmp_path / "j")) == 4  # all journaled


def test_warm_ranges_are_merged_line_aligned_and_walked_round() -> None:
    rows = _merged([(1000, 10), (64 * 100 + 5, 200), (64 * 102, 64), (0, 3)])
    assert rows.tolist() == [[0, 3], [960, 50], [6400, 205]]  # sorted, aligned, merged
    warm = np.array([[4096, 128], [8192, 64]], np.int64)
    hs = np.zeros(64, np.int64)
    hs[HS_WARM_STEP] = 2
    seen = []
    for _ in range(4):  # 3 lines in all: round and round, two a pass
        _warm_step(warm, hs)
        seen.append((int(hs[HS_WARM_ROW]), int(hs[HS_WARM_OFF])))
    assert seen == [(1, 0), (0, 64), (2, 0), (1, 0)]
    _warm_step(np.zeros((0, 2), np.int64), hs)  # nothing to warm: nothing happens


def test_pages_are_listed_once_and_read_round_and_round() -> None:
    spans = np.array([[3 * PAGE + 10, PAGE], [0, 1], [2 * PAGE, PAGE], [9 * PAGE, 0]])
    assert (_pages(spans) // PAGE).tolist() == [0, 2, 3, 4]  # sorted, each once, none empty
    assert len(_pages(np.zeros((0, 2), np.int64))) == 0
    # a byte of each page, ``HS_PAGE_STEP`` pages a pass, from where the last pass stopped
    mem = np.zeros(3 * PAGE, np.uint8)
    base = int(mem.ctypes.data)
    pages = np.array([base, base + PAGE + 7, base + 2 * PAGE + 9], np.int64)
    mem[0], mem[PAGE + 7], mem[2 * PAGE + 9] = 1, 10, 100
    hs = np.zeros(64, np.int64)
    hs[HS_PAGE_STEP] = 2
    at = []
    for _ in range(4):
        _touch_step(pages, hs)
        at.append(int(hs[HS_PAGE_AT]))
    assert at == [2, 1, 3, 2]
    assert hs[HS_PAGE_SUM] == 1 + 10 + 100 + 1 + 10 + 100 + 1 + 10  # every byte read
    _touch_step(np.zeros(0, np.int64), hs)  # no pages: nothing happens
    hs[HS_PAGE_STEP] = 0
    _touch_step(pages, hs)
    assert hs[HS_PAGE_SUM] == 233


def test_the_quiet_loop_reads_every_page_of_the_ticks_tables() -> None:
    """``keep_pages``: the pages the quiet loop reads cover the tick's code and every page of
    its tables (the decoder's order table, the book's order pool and hash: read at random),
    the loop goes through them while it spins, and the arrays they belong to are held until
    the list is made again (a read of memory given back would fault)."""
    with _prepared() as runner:
        hot = runner._hot
        assert hot is not None
        assert hot.hs[HS_PAGE_STEP] > 0  # on by default
        pages = set(hot.pages.tolist())
        orders, table = runner._levels.state[3:5]
        for arr in (runner.feed._tbl, orders, table, runner._levels.prio, hot.engine.st.ord,
                    hot.engine._cs.cb_data):
            assert arr.nbytes <= PAGE_ARRAY_MAX
            lo, hi = int(arr.ctypes.data), int(arr.ctypes.data) + arr.nbytes
            assert set(range(lo // PAGE * PAGE, hi, PAGE)) <= pages
        for lo, n in hot._code_rows or []:
            assert lo // PAGE * PAGE in pages
            assert (lo + n - 1) // PAGE * PAGE in pages
        big = hot.engine.st.rec_ord  # an append-only recorder: its head and its next row
        assert big.nbytes > PAGE_ARRAY_MAX
        assert int(big.ctypes.data) // PAGE * PAGE in pages
        assert not {int(big.ctypes.data) + PAGE_ARRAY_MAX} & pages
        from framework.arena.state import H_N_ORD

        nxt = int(big[int(hot.engine.st.h[H_N_ORD]) + 1000].ctypes.data) // PAGE * PAGE
        hot.engine.st.h[H_N_ORD] += 1000
        hot.follow_touch()
        assert nxt in set(hot.pages.tolist())
        hot.engine.st.h[H_N_ORD] -= 1000
        hot.follow_touch()
        # the loop reads them while it spins
        before = int(hot.hs[HS_PAGE_SUM]), int(hot.hs[HS_PAGE_AT])
        runner.feed._tbl[0] = 1  # (a byte the reads add up)
        import time

        hot.spin(time.time_ns() + 5_000_000, runner.clock._row)
        assert (int(hot.hs[HS_PAGE_SUM]), int(hot.hs[HS_PAGE_AT])) != before
        # an array replaced (a grown table) stays held until the list is made again
        old = runner.feed._tbl
        assert any(x is old for x in hot._page_owners)
        runner.feed._tbl = np.zeros(2 * len(old), old.dtype)
        del old
        hot.keep_warm(runner.warm_lines)
        assert not any(x is not runner.feed._tbl and x.shape == runner.feed._tbl.shape
                       for x in hot._page_owners)
        assert int(runner.feed._tbl.ctypes.data) // PAGE * PAGE in set(hot.pages.tolist())
        hot.keep_pages(0)  # off: the next list is empty
        hot.keep_warm(runner.warm_lines)
        assert len(hot.pages) == 0
        assert hot.hs[HS_PAGE_STEP] == 0


def test_the_touch_is_followed_when_the_loop_comes_back_quiet() -> None:
    """After a tick the runner re-points the warm ranges at the touch (~120 µs of Python),
    but only once the loop came back having seen nothing for a whole call: the packets
    right behind a tick (the rest of a burst) do not wait in the socket for it."""
    with _prepared() as runner:
        hot = runner._hot
        assert hot is not None
        calls: list[int] = []
        real = hot.follow_touch
        hot.follow_touch = lambda: (calls.append(1), real())[1]  # type: ignore[method-assign]
        hot.hs[HS_TICKS] = 1  # the call took a tick, and sent
        runner._after_spin(RET_SENT)
        assert calls == []
        hot.hs[HS_TICKS] = 0
        runner._after_spin(RET_SENT)  # (another busy return: still not)
        assert calls == []
        runner._after_spin(RET_IDLE)  # quiet: now, once
        runner._after_spin(RET_IDLE)
        assert calls == [1]


def test_transmit_stamps_are_drained_when_the_loop_comes_back_quiet() -> None:
    """The order socket's transmit stamps (``--wire-stamps``: one per send, heartbeats'
    too) are read when the loop comes back quiet, not after the tick that saw them: read
    then, they took ~200 µs of Python while the burst's next packets waited. Stamps no
    tick waits for are drained too (left, they keep the socket's error flag up and the
    event loop runs the session's reader at every turn)."""
    import select

    from live.hotpath import HS_GW_ERR
    from live.txstamp import TxStamps

    with _prepared() as runner, socket.socket() as ls:
        hot = runner._hot
        assert hot is not None
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        with socket.create_connection(ls.getsockname(), timeout=5) as c:
            s, _ = ls.accept()
            with s:
                tx = TxStamps(s.fileno())
                runner._wire_now = lambda: tx  # type: ignore[method-assign]
                p = select.poll()
                p.register(s, 0)  # (POLLERR is reported whatever is asked)

                def flagged() -> bool:
                    return any(ev & select.POLLERR for _, ev in p.poll(0))

                for _ in range(3):  # heartbeats: no tick waits for their stamps
                    s.send(b"h")
                for _ in range(200):  # bounded: a loopback send is stamped at once
                    if flagged():
                        break
                    select.select([], [], [], 0.005)
                assert flagged()
                hot.hs[HS_GW_ERR] = 1  # the loop saw the flag during a tick that sent
                runner._after_spin(RET_SENT)
                runner._after_spin(RET_SENT)
                assert tx.taken == 0  # not while the burst may go on
                assert flagged()
                runner._after_spin(RET_IDLE)  # quiet: drained, though no tick was due
                assert tx.taken == 3
                assert not flagged()
                assert c.recv(3, socket.MSG_WAITALL) == b"hhh"
                tx.close()


def test_the_loop_keeps_its_code_and_state_warm() -> None:
    """The ranges cover the machine code the tick runs (executable mappings around the
    loop's and the engine core's entry points) and the tick's arrays."""
    with _prepared() as runner:
        hot = runner._hot
        assert hot is not None
        assert hot.hs[HS_WARM_STEP] > 0  # on by default
        warm = hot.warm
        fixed = hot._fixed
        assert 0 < len(fixed) < len(warm)
        assert (warm[:, 0] % 64 == 0).all()
        assert (fixed[1:, 0] > fixed[:-1, 0] + fixed[:-1, 1]).all()  # sorted, disjoint
        # the last rows follow the touch: the levels around each side's best, of the
        # projection's book (lots, queue heads and tails) and of the engine's view of it
        from framework.book.l2 import M_ASK, M_BID

        meta, qty, ends = runner._levels.state[:3]
        lmeta, lqty = hot.engine.st.lmeta[0], hot.engine.st.lqty[0]
        saved = meta.copy(), lmeta.copy()
        for bid, ask in ((500, 510), (600, 601), (0, 3)):  # the market moves: rows follow
            meta[M_BID], meta[M_ASK] = lmeta[M_BID], lmeta[M_ASK] = bid, ask
            hot.follow_touch()
            touch = hot.warm[len(fixed):]
            for row, best in ((qty[0], bid), (ends[0, 0], bid), (ends[0, 1], bid),
                              (qty[1], ask), (ends[1, 1], ask), (lqty[0], bid),
                              (lqty[1], ask)):
                for x in (best, best + TOUCH_LEVELS - 1, max(best - TOUCH_LEVELS + 1, 0)):
                    addr = int(row.ctypes.data) + 8 * x
                    assert ((touch[:, 0] <= addr) & (addr < touch[:, 0] + touch[:, 1])).any()
        meta[:], lmeta[:] = saved
        # ... and where the engine writes next: the strategy's next order slot, the next
        # request's row, the order recorder's next row
        from framework.arena.state import H_MAX_ORDERS, H_N_ORD, H_N_REQ, H_REQ_HEAD, S_N_FREE

        st = hot.engine.st
        n = int(st.strat[0, S_N_FREE])
        slot = int(st.free[n - 1])
        nxt = (int(st.h[H_REQ_HEAD] + st.h[H_N_REQ])) % st.req.shape[0]
        for row in (st.ord[slot], st.ordf[slot], st.req[nxt], st.rec_ord[int(st.h[H_N_ORD])]):
            addr = int(row.ctypes.data)
            moving = hot.warm[len(fixed):]
            assert ((moving[:, 0] <= addr) & (addr < moving[:, 0] + moving[:, 1])).any()
        assert st.h[H_MAX_ORDERS] > 0

        def covered(addr: int) -> bool:
            return bool(((warm[:, 0] <= addr) & (addr < warm[:, 0] + warm[:, 1])).any())

        executable = []
        with open("/proc/self/maps") as f:
            for line in f:
                span, perms = line.split()[:2]
                lo, hi = (int(x, 16) for x in span.split("-"))
                if "x" in perms:
                    executable.append((lo, hi))
        from framework.arena.state import H_FN_ADVANCE, H_FN_CANCEL, H_FN_SUBMIT

        # the core's loop and the order calls the callbacks make (compiled apart)
        for k in (H_FN_ADVANCE, H_FN_SUBMIT, H_FN_CANCEL):
            core = int(hot.engine.st.h[k])
            assert covered(core)
            assert any(lo <= core < hi for lo, hi in executable)
        for arr in (hot.hs, hot.engine.st.h, hot.sbuf, runner.feed._st,
                    hot.engine._cs.cb_data, *hot.engine._cs.states):  # (the callbacks')
            assert covered(int(arr.ctypes.data))
        assert warm[:, 1].sum() < 8 * 1024 * 1024  # (bounded: each array's head only)
        big = hot.engine.st.rec_ord
        assert big.nbytes > WARM_DATA_MAX
        assert not covered(int(big.ctypes.data) + WARM_DATA_MAX + 64)
        hot.keep_warm(0)  # off
        assert len(hot.warm) == 0
        assert hot.hs[HS_WARM_STEP] == 0


def test_the_quiet_loop_runs_the_packet_path_on_scratch_state_only() -> None:
    """While the feed is quiet the loop takes a scratch packet through the journal append,
    the decoder, the L3 book and the projection (the same compiled functions as a tick's),
    every HS_DRY_NS: the scratch state moves, nothing real does (the feed's counters and
    tables, the projector's book, the engine's window)."""
    import time

    from live.feeds.itch_mold_nb import S_BATCHES, S_MESSAGES
    from live.journal_nb import J_SEQ

    with _prepared() as runner:
        hot, fast = runner._hot, runner._fast
        assert hot is not None
        assert fast is not None
        assert hot.hs[HS_DRY_NS] == WARM_TICK_US * 1000  # on by default
        _, ft, lv = fast.scratch()
        djs = hot._dry_journal[1]
        scratch_st = ft[FT_ST]
        real = [np.copy(a) for a in (runner.feed._st, runner.feed._tbl, *runner._levels.state,
                                     runner._levels.prio, hot.engine.st.h)]
        hot.warm_ticks(100)
        marks = np.zeros(9, np.int64)
        code = hot.spin(time.time_ns() + 30_000_000, marks)  # 30 ms, nothing arrives
        assert code == 0  # RET_IDLE
        runs = int(scratch_st[S_BATCHES])
        assert 10 <= runs <= 300, runs  # at most one per 100 µs
        assert scratch_st[S_MESSAGES] == 2 * runs  # an order added and deleted, each time
        assert djs[J_SEQ] == runs  # journaled each time, in the scratch journal
        assert lv[0][0] is not runner._levels.state[0]
        now = [runner.feed._st, runner.feed._tbl, *runner._levels.state, runner._levels.prio,
               hot.engine.st.h]
        for before, after in zip(real, now, strict=True):
            assert np.array_equal(before, after)
        assert hot.hs[HS_DRY_AT] > 0
        hot.warm_ticks(0)  # off: no more scratch runs
        hot.spin(time.time_ns() + 5_000_000, marks)
        assert int(scratch_st[S_BATCHES]) == runs


def test_a_task_sharing_the_loops_cpu_shows_as_its_stalls() -> None:
    """The quiet loop logs each pass that took longer than its threshold: here a busy
    process on the loop's CPU takes turns with it, and the turns it took are the stalls
    (their starts inside the call, their lengths over the threshold, about half the call
    in all). The runner books them into its clock at its quiet return (``loop_stall``);
    0 turns the log off."""
    import os
    import subprocess
    import sys
    import time

    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no sched_setaffinity here: the test shares a CPU on purpose")
    with _prepared() as runner:
        hot = runner._hot
        assert hot is not None
        assert hot.hs[HS_STALL_NS] == STALL_US * 1000  # on by default
        hot.warm_ticks(0)  # (the loop's own work is not a stall anyway)
        hot.warm_sends(0)
        cpu = min(os.sched_getaffinity(0))
        before = os.sched_getaffinity(0)
        hog = subprocess.Popen(  # busy for at most 20 s, whatever happens here
            [sys.executable, "-c", "import sys, time\nprint('go', flush=True)\n"
             "t = time.time()\nwhile time.time() - t < 20: pass"],
            stdout=subprocess.PIPE, text=True)
        try:
            assert hog.stdout is not None
            assert hog.stdout.readline().strip() == "go"
            os.sched_setaffinity(hog.pid, {cpu})
            os.sched_setaffinity(0, {cpu})
            marks = np.zeros(9, np.int64)
            t0 = time.time_ns()
            assert hot.spin(t0 + 200_000_000, marks) == RET_IDLE  # 200 ms, nothing arrives
            t1 = time.time_ns()
            assert hot.stalls_waiting
            runner._after_spin(RET_IDLE)  # a quiet return: the runner books them
            assert not hot.stalls_waiting
            hot.watch_stalls(0)  # off: nothing logged
            hot.spin(time.time_ns() + 50_000_000, marks)
            assert not hot.stalls_waiting
        finally:
            os.sched_setaffinity(0, before)
            hog.kill()
            hog.wait(15)
            if hog.stdout is not None:
                hog.stdout.close()
        rows = runner.clock.stall_log()
        assert len(rows) >= 1
        assert (rows[:, 1] > STALL_US * 1000).all()
        assert (rows[:, 0] >= t0).all()
        assert (rows[:, 0] + rows[:, 1] <= t1).all()
        assert (np.diff(rows[:, 0]) > 0).all()  # in order
        assert rows[:, 1].sum() > 20_000_000  # the other task's turns: ~half of 200 ms
        assert len(hot.take_stalls()) == 0  # taken once
        assert runner.clock.stats()["loop_stall"]["count"] == len(rows)


def test_the_stall_ring_keeps_the_last_ones_and_counts_the_rest() -> None:
    with _prepared() as runner:
        hot = runner._hot
        assert hot is not None
        cap = len(hot.stalls)
        for k in range(cap + 5):  # as the loop logs them: row count % rows, then the count
            hot.stalls[k % cap] = (k, 1_000 + k)
            hot.hs[HS_STALLS] += 1
        rows = hot.take_stalls()
        assert hot.stalls_lost == 5
        assert rows[:, 0].tolist() == list(range(5, cap + 5))  # oldest first
        hot.stalls[(cap + 5) % cap] = (99, 99)
        hot.hs[HS_STALLS] += 1
        assert hot.take_stalls().tolist() == [[99, 99]]


def test_a_cancel_of_an_order_not_accepted_yet_waits_and_the_next_request_goes() -> None:
    """The tick's first request cancels an order the venue has not accepted (the loop's own
    new order of an earlier request, or one the runner marked waiting): the loop journals
    it as a decision, leaves it for the runner's books (SL_WAIT, with the request's words)
    and sends the next request now, without a detour through Python."""
    from framework.arena.state import REQ_NEW
    from live.hotpath import (
        ENTER_LEN,
        HS_DECIDED,
        HS_NSENT,
        RET_ORDERS,
        RET_SENT,
        SL_KIND,
        SL_OID,
        SL_REQ,
        SL_WAIT,
        route_nb,
    )

    with _order_socket() as (a, b):
        tab = np.zeros((64, 4), np.int64)
        assert table_set_nb(tab, 0, 5, 0, T_WAIT)  # sent earlier, no acceptance yet
        words = np.zeros((4, len(REQUEST_DTYPE.names or ())), np.int64)
        assert table_set_nb(tab, 0, 8, 0, T_DONE)  # filled: the runner answers a cancel
        words = np.zeros((5, len(REQUEST_DTYPE.names or ())), np.int64)
        words[:, 2] = [REQ_CANCEL, REQ_NEW, REQ_CANCEL, REQ_CANCEL, REQ_CANCEL]
        words[:, 3] = [5, 6, 6, 8, 9]  # order ids; order 9 the loop does not know
        words[:, 0], words[:, 6], words[:, 9], words[:, 10] = 77, 1, 10_000, 3
        args = _route_args(a.fileno(), tab)
        hs, sent = args[0], args[5]
        code = route_nb(words, 0, 5, *args)
        assert code == RET_ORDERS  # at the cancel of the unknown order 9: Python's
        assert hs[HS_DECIDED] == 4
        assert hs[HS_NSENT] == 4
        assert list(sent[:4, SL_KIND]) == [SL_WAIT, REQ_NEW, SL_WAIT, SL_WAIT]
        assert list(sent[:4, SL_OID]) == [5, 6, 6, 8]
        for j in (0, 2, 3):
            assert (sent[j, SL_REQ : SL_REQ + words.shape[1]] == words[j]).all()
        assert len(b.recv(4096)) == ENTER_LEN  # only the new order left
        # the loop's own new order waits for its acceptance too
        assert tab[_slot(tab, 0, 6), T_STATE] == T_WAIT
        hs[HS_NSENT] = 0
        table_set_nb(tab, 0, 6, 41)  # accepted (the runner's sync): now it cancels
        assert route_nb(words, 2, 3, *args) == RET_SENT
        assert sent[0, SL_KIND] == REQ_CANCEL
        # ... once: a second cancel waits behind the first, until the venue's answer
        assert tab[_slot(tab, 0, 6), T_STATE] == T_WAIT
        hs[HS_NSENT] = 0
        assert route_nb(words, 2, 3, *args) == RET_SENT
        assert sent[0, SL_KIND] == SL_WAIT


def test_the_warming_heartbeat_is_a_soupbin_client_heartbeat_or_left_to_python() -> None:
    from live.hotpath import (
        HS_FD,
        HS_HBS,
        HS_K,
        HS_LEFT,
        HS_LEFT_AT,
        HS_LEN,
        HS_NREQ,
        _heartbeat_nb,
    )
    from live.wire.soupbin import CLIENT_HEARTBEAT_PACKET

    with _order_socket() as (a, b):
        hs = np.zeros(HS_LEN, np.int64)
        hs[HS_FD] = a.fileno()
        sbuf = np.zeros(64, np.uint8)
        assert _heartbeat_nb(hs, sbuf)
        assert b.recv(16) == CLIENT_HEARTBEAT_PACKET
        _fill(a)
        hs[HS_K], hs[HS_NREQ] = 3, 5
        assert not _heartbeat_nb(hs, sbuf)  # nothing taken: all 3 bytes are Python's
        assert (hs[HS_LEFT_AT], hs[HS_LEFT]) == (0, 3)
        assert (hs[HS_K], hs[HS_NREQ]) == (0, 0)  # no request in progress
        assert bytes(sbuf[:3]) == CLIENT_HEARTBEAT_PACKET
        assert hs[HS_HBS] == 2
