"""Bars from stored events: independent of how the events are batched, nothing from after a
bar's end in it, the touch features equal to the engine's, volumes equal to the trades'."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from framework.book.project import l2_stream
from framework.core.errors import ConfigError
from framework.core.events import BUY, KIND_TRADE, SELL, EventArray
from framework.features.kernels import F_IMBALANCE, F_MICROPRICE, compute_features
from framework.ingest.synthetic import generate_day
from framework.store.tickstore import TickStore
from research.screen.bars import BAR_SCHEMA, BarState, bars, day_bars, parse_every

DAY = dt.date(2024, 3, 4)
SEC = 1_000_000_000


@pytest.fixture(scope="module")
def events() -> EventArray:
    """A short generated L2 day (about 40 s of events at the open)."""
    return generate_day(date=DAY, n_events=3_000, seed=5).events


def _in_one(ev: EventArray, every: int) -> pl.DataFrame:
    st = BarState(every)
    st.feed(ev)
    return st.finish()


def test_bars_of_many_small_batches_equal_bars_of_one(events: EventArray) -> None:
    rng = np.random.default_rng(1)
    whole = _in_one(events, SEC // 4)
    assert whole.height > 10
    for n_cuts in (1, 7, 100, len(events) - 1):
        cuts = np.sort(rng.choice(np.arange(1, len(events)), n_cuts, replace=False))
        assert day_bars(np.split(events, cuts), SEC // 4).equals(whole), n_cuts
    singles = [events[i : i + 1] for i in range(len(events))]
    assert day_bars(singles, SEC // 4).equals(whole)


def test_a_day_split_at_any_batch_boundary_gives_the_same_bars(events: EventArray) -> None:
    ev = events[:1_500]
    whole = _in_one(ev, SEC // 10)
    for k in range(len(ev) + 1):
        st = BarState(SEC // 10)
        st.feed(ev[:k])
        st.feed(ev[k:])
        assert st.finish().equals(whole), k


def test_a_bar_holds_only_events_up_to_its_end(events: EventArray) -> None:
    every = SEC // 2
    base = _in_one(events, every)
    ts = events["local_ts"]
    for cut in (ts[100], ts[1_000], ts[2_000] + 1):
        later = events.copy()
        after = later["local_ts"] > cut
        # the future changes completely: other prices, sizes and sides
        later["qty"][after] = later["qty"][after] * 3 + 7
        later["price"][after] = later["price"][after] + 5
        later["side"][after] = -later["side"][after]
        changed = _in_one(later, every)
        known = base["ts"] <= cut
        assert base.filter(known).equals(changed.filter(changed["ts"] <= cut))
        assert not base.equals(changed)


def test_closed_right_an_event_on_a_boundary_ends_that_bar(events: EventArray) -> None:
    every = SEC
    ev = events[:200].copy()
    t0 = -(-int(ev["local_ts"][0]) // every) * every  # the first bar's end
    trade = np.zeros(2, dtype=ev.dtype)
    trade["kind"] = KIND_TRADE
    trade["side"] = BUY
    trade["qty"] = 1_000_000
    trade["price"] = ev["price"][ev["price"] > 0][0]
    trade["local_ts"] = [t0, t0 + 1]
    ev = ev[ev["local_ts"] < t0]
    b = _in_one(np.concatenate([ev, trade[:1]]), every)
    assert b["ts"][-1] == t0
    assert b["buy_volume"][-1] >= 1_000_000
    b2 = _in_one(np.concatenate([ev, trade]), every)
    assert b2["ts"].to_list()[-2:] == [t0, t0 + every]
    assert b2["buy_volume"][-1] == 1_000_000  # the print 1 ns later is the next bar's


def test_touch_features_equal_the_engines_at_each_bars_end(events: EventArray) -> None:
    every = SEC // 4
    b = _in_one(events, every)
    feats = compute_features(events)  # the engine's kernel, one pass over the day
    idx = np.searchsorted(events["local_ts"], b["ts"].to_numpy(), side="right") - 1
    np.testing.assert_array_equal(b["microprice"].to_numpy(), feats[idx, F_MICROPRICE])
    np.testing.assert_array_equal(b["imbalance"].to_numpy(), feats[idx, F_IMBALANCE])
    # microprice = mid + imbalance x half-spread: the bars' close and spread agree with it
    ok = b.filter(pl.col("microprice").is_not_nan())
    np.testing.assert_allclose(
        ok["close"] + ok["imbalance"] * ok["spread"] / 2, ok["microprice"], rtol=0, atol=1e-9
    )
    priced = b.filter(pl.col("close").is_not_nan())
    assert priced.height > 0.9 * b.height
    assert priced.select(
        (pl.col("high") >= pl.max_horizontal("open", "close")).all(),
        (pl.col("low") <= pl.min_horizontal("open", "close")).all(),
    ).row(0) == (True, True)


def test_volumes_trades_and_vwap_equal_the_prints_of_each_bar(events: EventArray) -> None:
    every = SEC // 2
    b = _in_one(events, every)
    t = events[events["kind"] == KIND_TRADE]
    trades = pl.DataFrame(
        {
            "ts": -(-t["local_ts"] // every) * every,
            "qty": t["qty"],
            "side": t["side"].astype(np.int64),
            "px": t["price"],
        }
    )
    want = trades.group_by("ts").agg(
        pl.col("qty").filter(pl.col("side") == BUY).sum().alias("buy"),
        pl.col("qty").filter(pl.col("side") == SELL).sum().alias("sell"),
        pl.len().alias("n"),
        ((pl.col("px") * pl.col("qty")).sum() / pl.col("qty").sum()).alias("vwap"),
    )
    got = b.join(want, on="ts", how="left").with_columns(pl.col("buy", "sell", "n").fill_null(0))
    assert got["buy_volume"].to_list() == got["buy"].to_list()
    assert got["sell_volume"].to_list() == got["sell"].to_list()
    assert got["n_trades"].to_list() == got["n"].to_list()
    traded = got.filter(pl.col("n") > 0)
    np.testing.assert_allclose(traded["vwap"].to_numpy(), traded["vwap_right"].to_numpy())
    assert got.filter(pl.col("n") == 0)["vwap"].is_nan().all()


def test_bars_without_events_carry_the_close_with_no_volume(events: EventArray) -> None:
    every = SEC // 20  # shorter than many gaps between events
    b = _in_one(events, every)
    assert (b["ts"].diff().drop_nulls() == every).all()  # a contiguous grid
    ends = b["ts"].to_numpy()
    ts = events["local_ts"]
    counts = np.searchsorted(ts, ends, "right") - np.searchsorted(ts, ends - every, "right")
    quiet = np.flatnonzero(counts == 0)
    assert len(quiet)
    assert quiet[0] > 0
    for i in quiet[:500]:
        row, prev = b.row(i, named=True), b.row(i - 1, named=True)
        assert row["open"] == row["high"] == row["low"] == row["close"] == prev["close"]
        assert row["buy_volume"] == row["sell_volume"] == row["n_trades"] == 0
        assert row["microprice"] == prev["microprice"]


def test_an_l3_day_gives_the_bars_of_its_projection_to_levels() -> None:
    l3 = generate_day(date=DAY, n_events=4_000, seed=2, mode="l3").events
    projected = list(l2_stream([l3]))
    assert day_bars(np.split(l3, [333, 2_000]), SEC).equals(day_bars(projected, SEC))


def test_bars_from_the_store_stream_day_after_day(tmp_path: Path) -> None:
    store = TickStore(tmp_path)
    days = [DAY, DAY + dt.timedelta(days=1)]
    evs = []
    for i, d in enumerate(days):
        g = generate_day(date=d, n_events=2_000, seed=10 + i)
        store.write(g.instrument, d, g.events)
        evs.append(g.events)
    got = bars(store, "SIM", "SYN", [*days, DAY + dt.timedelta(days=2)], "500ms")
    want = pl.concat([_in_one(e, SEC // 2) for e in evs])
    assert got.equals(want)
    assert list(got.schema.items()) == list(BAR_SCHEMA.items())
    with pytest.raises(ConfigError, match="no stored days of SIM/NOPE"):
        bars(store, "SIM", "NOPE", days)
    with pytest.raises(ConfigError, match="give longer bars"):
        bars(store, "SIM", "SYN", days, "1ns")  # trillions of bars: refused before a read


@pytest.mark.parametrize("text", ["0s", "-1s", "soon", "2d"])
def test_a_bad_bar_length_is_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--every"):
        parse_every(text)
