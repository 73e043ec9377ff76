"""The synthetic generator: determinism, feed invariants, and the statistics that make it useful."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque

import numpy as np
import pytest

from framework.core.errors import ConfigError
from framework.core.events import (
    BUY,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    FLAG_SYNTHETIC,
    KIND_ADD,
    KIND_CANCEL,
    KIND_CLEAR,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
)
from framework.ingest.base import ImportReport, validate_events
from framework.ingest.synthetic import SyntheticParams, generate_day, market_hours_ns

DATE = dt.date(2024, 3, 1)
SEED = 7


@pytest.fixture(scope="module")
def l2_day():
    return generate_day(date=DATE, n_events=200_000, seed=SEED)


@pytest.fixture(scope="module")
def l3_day():
    return generate_day(date=DATE, mode="l3", n_events=120_000, seed=SEED)


# --- reference books -------------------------------------------------------------------------


def l2_tops(events):
    """Replay L2 events; return (exch_ts, best bid, best ask) at every FLAG_LAST row."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    out = []
    for ex, price, qty, kind, side, flags in zip(
        events["exch_ts"].tolist(), events["price"].tolist(), events["qty"].tolist(),
        events["kind"].tolist(), events["side"].tolist(), events["flags"].tolist(), strict=True,
    ):
        if kind == KIND_CLEAR:
            bids.clear()
            asks.clear()
        elif kind == KIND_LEVEL:
            book = bids if side == BUY else asks
            if qty == 0:
                del book[price]  # a delete must name a level that exists
            else:
                book[price] = qty
        if flags & FLAG_LAST:
            bb = max(bids)
            ba = min(asks)
            out.append((ex, bb, ba, bids[bb], asks[ba]))
    return np.array(out, dtype=np.int64)


def l3_replay(events):
    """Replay L3 events with FIFO queues; check ids, FIFO executions and the touch.

    Returns (exch_ts, best bid, best ask) at every FLAG_LAST row.
    """
    orders: dict[int, list[int]] = {}  # id -> [side, price, qty]
    queues: dict[tuple[int, int], deque[int]] = defaultdict(deque)
    tops = []
    for ex, price, qty, oid, kind, side, flags in zip(
        events["exch_ts"].tolist(), events["price"].tolist(), events["qty"].tolist(),
        events["order_id"].tolist(), events["kind"].tolist(), events["side"].tolist(),
        events["flags"].tolist(), strict=True,
    ):
        if kind == KIND_ADD:
            assert oid not in orders, f"duplicate add of order {oid}"
            orders[oid] = [side, price, qty]
            queues[side, price].append(oid)
        elif kind in (KIND_CANCEL, KIND_DELETE, KIND_EXECUTE):
            o = orders[oid]  # KeyError = unknown order id
            assert (o[0], o[1]) == (side, price)
            if kind == KIND_EXECUTE:
                q = queues[side, price]
                assert q[0] == oid, "execution did not hit the oldest order of the level"
                touch = max(p for s, p in _live_levels(queues) if s == BUY) if side == BUY \
                    else min(p for s, p in _live_levels(queues) if s == SELL)
                assert price == touch, "execution away from the touch"
            if kind == KIND_DELETE:
                assert qty == o[2]
                o[2] = 0
            else:
                assert 0 < qty <= o[2]
                o[2] -= qty
            if o[2] == 0:
                queues[side, price].remove(oid)
                del orders[oid]
        if flags & FLAG_LAST:
            levels = _live_levels(queues)
            bb = max(p for s, p in levels if s == BUY)
            ba = min(p for s, p in levels if s == SELL)
            tops.append((ex, bb, ba))
    return np.array(tops, dtype=np.int64)


def _live_levels(queues):
    return [k for k, q in queues.items() if q]


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_labels():
    a = generate_day(date=DATE, n_events=50_000, seed=3)
    b = generate_day(date=DATE, n_events=50_000, seed=3)
    assert a.events.tobytes() == b.events.tobytes()
    assert a.labels.equals(b.labels)
    c = generate_day(date=DATE, mode="l3", n_events=50_000, seed=3)
    d = generate_day(date=DATE, mode="l3", n_events=50_000, seed=3)
    assert c.events.tobytes() == d.events.tobytes()


def test_different_seed_gives_different_events():
    a = generate_day(date=DATE, n_events=50_000, seed=3)
    b = generate_day(date=DATE, n_events=50_000, seed=4)
    assert a.events.tobytes() != b.events.tobytes()
    assert not a.labels.equals(b.labels)


# --- feed invariants -------------------------------------------------------------------------


@pytest.mark.parametrize("day_name", ["l2_day", "l3_day"])
def test_rows_are_time_ordered_positive_on_grid_and_synthetic(day_name, request):
    day = request.getfixturevalue(day_name)
    ev = day.events
    assert np.all(np.diff(ev["local_ts"]) >= 0)
    assert np.all(np.diff(ev["exch_ts"]) >= 0)
    assert np.all(ev["exch_ts"] <= ev["local_ts"])
    lat = ev["local_ts"] - ev["exch_ts"]
    assert lat.min() >= SyntheticParams().latency_base_ns
    assert np.all(ev["flags"] & FLAG_SYNTHETIC)
    assert np.all(ev["instrument"] == 0)
    body = ev[ev["kind"] != KIND_CLEAR]
    assert np.all(body["price"] > 0)  # integer ticks: on the grid by construction
    sized = np.isin(body["kind"], [KIND_TRADE, KIND_ADD, KIND_CANCEL, KIND_DELETE, KIND_EXECUTE])
    assert np.all(body["qty"][sized] > 0)
    assert np.all(body["qty"] >= 0)
    t_open, t_close = market_hours_ns(DATE)
    assert ev["exch_ts"][0] == t_open
    assert t_close - 120 * 10**9 < ev["exch_ts"][-1] < t_close


@pytest.mark.parametrize("day_name", ["l2_day", "l3_day"])
def test_each_message_carries_exactly_one_flag_last_on_its_last_row(day_name, request):
    ev = request.getfixturevalue(day_name).events
    last = (ev["flags"] & FLAG_LAST) != 0
    assert last[-1]
    # rows of one message share both timestamps; a new message starts after each FLAG_LAST
    inner = np.flatnonzero(~last[:-1])
    assert np.all(ev["exch_ts"][inner + 1] == ev["exch_ts"][inner])
    assert np.all(ev["local_ts"][inner + 1] == ev["local_ts"][inner])
    # a trade is always followed by its level update in the same message
    assert not np.any(last & (ev["kind"] == KIND_TRADE))
    # the opening snapshot is one message: CLEAR, then the book, all FLAG_SNAPSHOT
    snap = (ev["flags"] & FLAG_SNAPSHOT) != 0
    n_snap = int(np.argmin(snap))
    assert ev["kind"][0] == KIND_CLEAR
    assert np.all(snap[:n_snap])
    assert not snap[n_snap:].any()
    assert np.flatnonzero(last)[0] == n_snap - 1


def test_l2_book_is_never_crossed_or_locked_at_flag_last(l2_day):
    tops = l2_tops(l2_day.events)
    assert len(tops) == np.count_nonzero(l2_day.events["flags"] & FLAG_LAST)
    assert np.all(tops[:, 1] < tops[:, 2])
    assert np.all(tops[:, 3] > 0)
    assert np.all(tops[:, 4] > 0)
    depth = SyntheticParams().depth_levels
    snapshot_levels = np.count_nonzero(l2_day.events["flags"] & FLAG_SNAPSHOT) - 1
    assert snapshot_levels == 2 * depth


def test_l3_book_replays_with_fifo_executions_at_the_touch_and_never_crosses(l3_day):
    tops = l3_replay(l3_day.events)
    assert np.all(tops[:, 1] < tops[:, 2])
    kinds = set(np.unique(l3_day.events["kind"]).tolist())
    assert {KIND_ADD, KIND_CANCEL, KIND_DELETE, KIND_EXECUTE} <= kinds
    assert KIND_LEVEL not in kinds
    assert KIND_TRADE not in kinds
    ids = l3_day.events["order_id"][l3_day.events["kind"] == KIND_ADD]
    assert len(np.unique(ids)) == len(ids)


def test_l3_day_passes_validate_events_with_zero_rejects(l3_day):
    report = ImportReport("synthetic")
    kept = validate_events(l3_day.events, report, l3=True)
    assert report.rows_rejected == 0, report.summary_lines()
    assert len(kept) == len(l3_day.events)


def test_labels_tile_the_session_and_hold_all_three_regimes(l2_day):
    lab = l2_day.labels.to_pydict()
    t_open, t_close = market_hours_ns(DATE)
    assert lab["start_ts"][0] == t_open
    assert lab["end_ts"][-1] == t_close
    assert lab["start_ts"][1:] == lab["end_ts"][:-1]
    assert all(a < b for a, b in zip(lab["start_ts"], lab["end_ts"], strict=True))
    assert set(lab["regime"]) == {"calm", "volatile", "trending"}
    for reg, drift in zip(lab["regime"], lab["drift"], strict=True):
        assert (drift != 0) == (reg == "trending")


# --- statistics that make the data useful -----------------------------------------------------


def mid_path(day):
    """(exch_ts, book mid in ticks) at every FLAG_LAST row."""
    tops = l2_tops(day.events)
    return tops[:, 0], (tops[:, 1] + tops[:, 2]) / 2.0


def segments(day):
    lab = day.labels.to_pydict()
    return list(zip(lab["start_ts"], lab["end_ts"], lab["regime"], lab["drift"], strict=True))


def test_trending_segments_drift_with_the_labelled_sign(l2_day):
    ts, mid = mid_path(l2_day)
    hits = total = 0
    signed_move = trend_seconds = 0.0
    for start, end, regime, drift in segments(l2_day):
        if regime != "trending":
            continue
        a, b = np.searchsorted(ts, [start, end]) - [0, 1]
        move = mid[b] - mid[a]
        signed_move += np.sign(drift) * move
        trend_seconds += (end - start) / 1e9
        if end - start > 60 * 10**9:  # short segments are dominated by noise
            total += 1
            hits += np.sign(move) == np.sign(drift)
    assert total >= 8
    assert hits >= 0.8 * total
    lo, hi = SyntheticParams().trend_drift
    assert 0.5 * lo < signed_move / trend_seconds < 1.5 * hi  # ticks per second


def test_volatile_segments_are_more_volatile_than_calm_ones(l2_day):
    ts, mid = mid_path(l2_day)
    moves: dict[str, list[float]] = defaultdict(list)
    for start, end, regime, _ in segments(l2_day):
        grid = np.arange(start, end, 10 * 10**9)  # sample the book mid every 10 s
        sampled = mid[np.searchsorted(ts, grid, side="right") - 1]
        moves[regime].extend(np.diff(sampled).tolist())
    rv = {r: float(np.sqrt(np.mean(np.square(m)) / 10.0)) for r, m in moves.items()}
    assert rv["volatile"] > 2.5 * rv["calm"]
    assert 0.15 < rv["calm"] < 0.4  # ticks per sqrt(second): the configured 0.25 shows


def test_trade_sides_are_balanced_in_calm_and_lean_with_the_trend(l2_day):
    ev = l2_day.events
    trades = ev[ev["kind"] == KIND_TRADE]
    calm = [0, 0]
    trend = [0, 0]
    for start, end, regime, drift in segments(l2_day):
        t = trades[(trades["exch_ts"] >= start) & (trades["exch_ts"] < end)]
        if regime == "calm":
            calm[0] += int(np.count_nonzero(t["side"] == BUY))
            calm[1] += len(t)
        elif regime == "trending":
            trend[0] += int(np.count_nonzero(t["side"] == (BUY if drift > 0 else SELL)))
            trend[1] += len(t)
    assert calm[1] > 5_000
    assert abs(calm[0] / calm[1] - 0.5) < 0.02
    assert trend[0] / trend[1] > 0.6


def one_tick_market_maker(day):
    """PnL (ticks) and seconds per regime of a naive one-lot market maker.

    It quotes one lot at the best bid and ask after every message; a quote is filled by a
    trade of the opposite aggressor side at or through its price and is re-placed at the next
    message. Inventory is marked to the book mid and flattened at the mid at every regime
    boundary, so each segment's PnL is its own.
    """
    ev = day.events
    segs = segments(day)
    pnl: dict[str, float] = defaultdict(float)
    secs: dict[str, float] = defaultdict(float)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    cash = 0.0
    inv = 0
    mid = qb = qa = None
    k = 0
    seg_value = 0.0
    for ex, price, qty, kind, side, flags in zip(
        ev["exch_ts"].tolist(), ev["price"].tolist(), ev["qty"].tolist(),
        ev["kind"].tolist(), ev["side"].tolist(), ev["flags"].tolist(), strict=True,
    ):
        while ex >= segs[k][1]:  # close the segment at the last mid
            value = cash + inv * mid
            pnl[segs[k][2]] += value - seg_value
            secs[segs[k][2]] += (segs[k][1] - segs[k][0]) / 1e9
            cash, inv, seg_value = value, 0, value
            k += 1
        if kind == KIND_LEVEL:
            book = bids if side == BUY else asks
            if qty:
                book[price] = qty
            else:
                del book[price]
        elif kind == KIND_TRADE and qb is not None:
            if side == BUY and qa is not None and price >= qa:
                cash += qa
                inv -= 1
                qa = None
            elif side == SELL and qb is not None and price <= qb:
                cash -= qb
                inv += 1
                qb = None
        elif kind == KIND_CLEAR:
            bids.clear()
            asks.clear()
        if flags & FLAG_LAST:
            qb, qa = max(bids), min(asks)
            mid = (qb + qa) / 2.0
    return {r: pnl[r] / secs[r] for r in pnl}


def test_one_tick_market_maker_loses_in_trends_and_earns_the_spread_in_calm(l2_day):
    per_second = one_tick_market_maker(l2_day)
    assert per_second["trending"] < 0
    assert per_second["calm"] > 0.1  # ticks per second of spread capture


def touch_taker(day, *, threshold: float = 0.95, hold_s: float = 5.0):
    """Correlation of touch imbalance with the mid move ``hold_s`` ahead, and the mean PnL
    (ticks) of a taker that crosses the spread when the imbalance passes ``threshold`` and
    crosses back ``hold_s`` later."""
    ts, bb, ba, bq, aq = l2_tops(day.events).T
    imb = (bq - aq) / (bq + aq)
    mid = (bb + ba) / 2.0
    ahead = np.searchsorted(ts, ts + int(hold_s * 1e9))
    ok = ahead < len(ts)
    corr = np.corrcoef(imb[ok], mid[ahead[ok]] - mid[ok])[0, 1]
    pnl = []
    i = 0
    while i < len(ts) and ahead[i] < len(ts):
        k = ahead[i]
        if abs(imb[i]) > threshold:
            pnl.append(bb[k] - ba[i] if imb[i] > 0 else bb[i] - ba[k])
            i = k
        else:
            i += 1
    return corr, float(np.mean(pnl)), len(pnl)


def test_predictive_imbalance_signal_leads_the_mid_only_when_switched_on(l2_day):
    corr_off, pnl_off, n_off = touch_taker(l2_day)
    on = generate_day(date=DATE, n_events=200_000, seed=SEED,
                      params=SyntheticParams(signal_strength=1.0))
    corr_on, pnl_on, n_on = touch_taker(on)
    assert abs(corr_off) < 0.05
    assert corr_on > 0.5
    assert n_off > 100
    assert n_on > 100
    assert pnl_off < -0.5  # crossing the spread on noise pays the spread
    assert pnl_on > 0.2  # ticks per round trip


def trades_agreeing_with_the_next_move(day) -> float:
    """Share of trades whose aggressor side is the direction of the next move of the mid."""
    ev = day.events
    tops = l2_tops(ev)
    ts, mid2 = tops[:, 0], tops[:, 1] + tops[:, 2]
    moved = np.nonzero(np.diff(mid2))[0] + 1
    trades = ev[ev["kind"] == KIND_TRADE]
    k = np.searchsorted(ts[moved], trades["exch_ts"], side="right")
    ok = k < len(moved)
    nxt = moved[k[ok]]
    return float(np.mean(np.sign(mid2[nxt] - mid2[nxt - 1]) == trades["side"][ok]))


def test_informed_flow_makes_trades_predict_the_next_move_and_costs_the_market_maker(l2_day):
    informed = generate_day(date=DATE, n_events=200_000, seed=SEED,
                            params=SyntheticParams(informed_flow=1.0))
    off, on = trades_agreeing_with_the_next_move(l2_day), trades_agreeing_with_the_next_move(
        informed
    )
    # off: only the sweeps that make a move (and trend flow) agree with it; on: noise trades
    # at the touch lean toward the latent mid, so they precede the moves they point to
    assert off < 0.56
    assert on > off + 0.1
    # a resting quote that gets hit is now more often about to be run over
    assert one_tick_market_maker(informed)["calm"] < 0.5 * one_tick_market_maker(l2_day)["calm"]


# --- API ----------------------------------------------------------------------------------------


def test_day_holds_at_most_n_events_and_nearly_that_many(l2_day, l3_day):
    assert 0.999 * 200_000 < len(l2_day.events) <= 200_000
    assert 0.99 * 120_000 < len(l3_day.events) <= 120_000
    assert l2_day.instrument.key == "SIM/SYN"
    assert str(l2_day.instrument.tick_size) == "0.01"
    first_bid = l2_day.events["price"][1]
    assert first_bid == 10_000  # start_price 100.0 on a 0.01 grid


def test_bad_parameters_raise_config_error_saying_what_to_fix():
    with pytest.raises(ConfigError, match="transition"):
        SyntheticParams(transition=((0.5, 0.5, 0.5), (0.7, 0.0, 0.3), (0.7, 0.3, 0.0)))
    with pytest.raises(ConfigError, match="unknown SyntheticParams knob"):
        SyntheticParams().replace(volatilty=(1.0, 2.0, 3.0))
    with pytest.raises(ConfigError, match="mode"):
        generate_day(date=DATE, mode="l4", n_events=10_000)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="start price"):
        generate_day(date=DATE, n_events=10_000, start_price=0.5)
    with pytest.raises(ConfigError, match="informed_flow"):
        SyntheticParams(informed_flow=1.5)
    assert SyntheticParams().replace(spread_ticks=2).spread_ticks == 2


def test_wider_spread_and_other_dates_keep_the_book_sound():
    day = generate_day(date=dt.date(2024, 3, 11), n_events=50_000, seed=11,
                       params=SyntheticParams(spread_ticks=2, depth_levels=10))
    tops = l2_tops(day.events)
    assert np.all(tops[:, 2] - tops[:, 1] == 2)
    t_open, _ = market_hours_ns(dt.date(2024, 3, 11))  # the Monday after the DST switch
    assert day.events["exch_ts"][0] == t_open
    assert t_open % (86_400 * 10**9) == (13 * 3600 + 1800) * 10**9  # 09:30 EDT = 13:30 UTC
