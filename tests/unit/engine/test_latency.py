"""Latency: when the venue sees an order and when the strategy hears back, to the nanosecond.

Actions at equal times run in this order: market data at the venue, order requests arriving
at the venue, responses reaching the strategy, market data reaching the strategy, timers.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from framework.arena.messages import lat_bucket
from framework.arena.state import LATH_COUNT, LATH_SUM, LATK_ENTRY, LATK_ROUND_TRIP, N_LAT_BUCKETS
from framework.engine.config import LatencyConfig
from framework.kernel.recorder import latency_table

from .conftest import SELL, T0, Scripted, Tape, buy, cancel, run

T = T0 + 1_000


def base_tape(feed_ns: int = 0) -> Tape:
    tape = Tape(feed_ns)
    tape.book(T0, bids=[(9999, 10)], asks=[(10001, 5), (10003, 10)])
    return tape


def test_ack_arrives_after_entry_plus_response_latency() -> None:
    s = Scripted([(T, "o", buy(9990, 1))])
    res = run(base_tape().tick(T + 10_000), s, entry_ns=300, response_ns=700)
    assert s.updates == [(T + 1_000, s.ids["o"], "ack", "")]
    lat = dict(zip(res.latency["kind"], res.latency["ns"], strict=True))
    assert lat == {"entry": 300, "response": 700, "round_trip": 1_000}
    assert res.latency["count"].to_list() == [1, 1, 1]


@njit(cache=True)
def _buckets(values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    for i in range(values.shape[0]):
        out[i] = lat_bucket(values[i])
    return out


def test_latency_histogram_buckets_are_ordered_and_narrow() -> None:
    """Values below 256 ns each have a bucket; above, a bucket spans under 1 % of its
    values; buckets follow the values' order; the largest values share the last one."""
    v = np.unique(
        np.concatenate(
            [np.arange(0, 5000), np.random.default_rng(0).integers(256, 1 << 47, 200_000)]
        )
    )
    b = _buckets(v)
    assert (np.diff(b) >= 0).all()
    assert (b[v < 256] == v[v < 256]).all()
    lo = np.full(N_LAT_BUCKETS, np.iinfo(np.int64).max)
    hi = np.zeros(N_LAT_BUCKETS, np.int64)
    np.minimum.at(lo, b, v)
    np.maximum.at(hi, b, v)
    used = hi > 0
    assert ((hi[used] - lo[used]) / np.maximum(lo[used], 1) < 0.01).all()
    assert _buckets(np.array([-5, 1 << 60], np.int64)).tolist() == [0, N_LAT_BUCKETS - 1]


def test_latency_table_is_each_buckets_mean_and_count() -> None:
    hist = np.zeros((3, 2, N_LAT_BUCKETS), np.int64)
    values = {LATK_ENTRY: [1_000_000] * 4, LATK_ROUND_TRIP: [2_000_001, 2_000_003, 5]}
    for kind, vs in values.items():
        for x in vs:
            b = int(_buckets(np.array([x], np.int64))[0])
            hist[kind, LATH_COUNT, b] += 1
            hist[kind, LATH_SUM, b] += x
    t = latency_table(hist)
    assert t.rows() == [("entry", 1_000_000, 4), ("round_trip", 5, 1), ("round_trip", 2_000_002, 2)]


@pytest.mark.parametrize(
    ("move_at", "filled"),
    [(T + 99, []), (T + 100, []), (T + 101, [(10001, 5)])],
)
def test_order_sent_just_before_a_price_move_fills_only_if_it_arrives_first(
    move_at: int, filled: list[tuple[int, int]]
) -> None:
    # the IOC is sent at T and reaches the venue at T + 100; the 10001 offer is pulled at
    # exchange time move_at (at equal times the venue applies market data first)
    tape = base_tape(feed_ns=50)
    tape.level(move_at, SELL, 10001, 0).tick(T + 10_000)
    s = Scripted([(T, "o", buy(10001, 5, tif="ioc"))])
    run(tape, s, entry_ns=100, response_ns=100)
    assert s.fills_of("o") == filled
    assert s.kinds("o") == (["ack"] if filled else ["ack", "expired"])
    # the strategy could not have known: it sees the move 50 ns after the venue does
    assert all(v[2] == 10001 for v in s.seen if v[0] < move_at + 50)


def test_fill_reaches_the_strategy_before_the_public_trade_when_the_feed_is_slower() -> None:
    # a bid inside the spread (nobody ahead) is hit at exchange time T + 5000; the private
    # fill arrives after 100 ns, the public print after the 500 ns feed latency
    tape = base_tape(feed_ns=500)
    tape.trade(T + 5_000, SELL, 10000, 2).tick(T + 10_000)
    s = Scripted([(T, "o", buy(10000, 2))])
    res = run(tape, s, entry_ns=100, response_ns=100)
    assert [f[0] for f in s.fills] == [T + 5_100]
    assert [t[0] for t in s.trades] == [T + 5_500]
    assert res.fills.row(0, named=True)["exch_ts"] == T + 5_000


@pytest.mark.parametrize(
    ("trade_after", "fills", "kinds"),
    [
        (50, [(10000, 2)], ["ack"]),
        (150, [], ["ack", "canceled"]),
    ],
)
def test_cancel_in_flight_races_a_fill_exactly_as_the_latencies_say(
    trade_after: int, fills: list[tuple[int, int]], kinds: list[str]
) -> None:
    # the cancel is sent at T + 2000 and reaches the venue 100 ns later. When the trade
    # comes first the order is filled; the venue's reject of the late cancel reaches a
    # strategy that already knows the order finished, and is not reported again.
    tape = base_tape()
    tape.trade(T + 2_000 + trade_after, SELL, 10000, 2).tick(T + 10_000)
    s = Scripted([(T, "o", buy(10000, 2)), (T + 2_000, "c", cancel("o"))])
    res = run(tape, s, entry_ns=100, response_ns=100)
    assert s.ids["c"] is True
    assert s.fills_of("o") == fills
    assert s.kinds("o") == kinds
    assert res.orders["status"].to_list() == (["filled"] if fills else ["canceled"])
    assert res.orders["filled_qty"].to_list() == [2.0 if fills else 0.0]


def test_feed_latency_model_follows_the_datas_own_latency() -> None:
    # feed latency is 400 ns up to T, then 1000 ns; entry = 1 x, response = 2 x that
    tape = Tape(feed_ns=400)
    tape.book(T0, bids=[(9999, 10)], asks=[(10001, 5)])
    tape.level(T + 10_000, SELL, 10002, 1, local=T + 11_000)
    tape.tick(T + 50_000, local=T + 51_000)
    s = Scripted([(T, "a", buy(9990, 1)), (T + 20_000, "b", buy(9991, 1))])
    run(tape, s, latency=LatencyConfig(model="feed", entry_mult=1.0, response_mult=2.0))
    acks = {oid: now for now, oid, kind, _ in s.updates if kind == "ack"}
    assert acks[s.ids["a"]] == T + 400 + 800
    assert acks[s.ids["b"]] == T + 20_000 + 1_000 + 2_000


def test_empirical_latency_uses_the_series_row_in_force() -> None:
    series = np.array([[0, 100, 200], [T + 10_000, 1_000, 3_000]], dtype=np.float64)
    s = Scripted([(T, "a", buy(9990, 1)), (T + 20_000, "b", buy(9991, 1))])
    run(
        base_tape().tick(T + 50_000),
        s,
        latency=LatencyConfig(model="empirical", series=series),
    )
    acks = {oid: now for now, oid, kind, _ in s.updates if kind == "ack"}
    assert acks[s.ids["a"]] == T + 300
    assert acks[s.ids["b"]] == T + 20_000 + 1_000 + 3_000


def test_zero_latency_orders_still_follow_the_market_data_at_the_same_instant() -> None:
    # entry 0: the order reaches the venue at T, after the venue applied data stamped T
    tape = base_tape()
    tape.level(T, SELL, 10001, 0).tick(T + 10_000)
    s = Scripted([(T, "o", buy(10001, 5, tif="ioc"))])
    run(tape, s, entry_ns=0, response_ns=0)
    assert s.fills == []
    assert s.kinds("o") == ["ack", "expired"]
