"""Risk limits cannot be crossed, whatever the strategy does and whatever the latency.

Random scripts of orders (limit orders at and through the touch, IOC / FOK / post-only,
market orders, modifies up and down, cancels, at random times) run through the real engine
on a small seeded synthetic day, on the Python path and on the compiled path, with entry
and response latencies from zero to longer than the gaps between market events, drawn
apart. On every run, from the result tables:

* the position after every fill stays within ``max_position`` both ways (the fills table),
  and the fills add up to it;
* no order trades more than ``max_notional``: a buy's fills cost at most that, a sell's
  filled lots valued at its limit come to at most that (a sell that takes liquidity may
  get better prices than its limit; nothing the strategy sees bounds them). Market orders
  are valued at the strategy's book when sent; the venue's book when they arrive may be
  worse, so they are left out here (tests/unit/engine/test_risk.py covers their valuation);
* at no submission were more than ``max_open_orders`` orders working, counting each from
  its submission until the strategy learnt it finished (the orders table: ``submit_ts``,
  ``end_ts``, null for one still working at the end), which spans its whole life at the
  venue;
* every denied request is in the denials table, in order, with its reason;
* both paths give the same tables.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.analysis.results import BacktestResult
from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_LEVEL,
    KIND_STATUS,
    KIND_TRADE,
    SELL,
    STATUS_INFO,
    EventArray,
    make_events,
)
from framework.core.instrument import Instrument
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig, QueueConfig
from framework.engine.enums import DENY_MAX_POSITION_INSTRUMENT, DENY_NAMES, DENY_NONE
from framework.ingest.synthetic import generate_day
from framework.risk.limits import RiskLimits
from framework.strategy import nb

from .risk_script import (
    MAX_ACTIONS,
    OP,
    OP_CANCEL,
    OP_LIMIT,
    OP_MARKET,
    OP_MODIFY,
    ScriptStrategy,
)

MODES = ("python", "compiled")
MS = 1_000_000
S = 1_000_000_000
#: latencies from none to longer than most gaps between the day's messages (~4 s)
LATENCIES = (0, 10_000, MS, 300 * MS, 5 * S, 30 * S)


@cache
def day() -> tuple[Instrument, EventArray]:
    """About 4,000 events of a seeded synthetic day (a touch near 100.00, one tick wide)."""
    d = generate_day(date=dt.date(2024, 3, 5), n_events=4_000, seed=3)
    return d.instrument, d.events


def run(
    script: np.ndarray,
    risk: RiskLimits,
    *,
    mode: str,
    entry_ns: int,
    response_ns: int,
    instrument: Instrument | None = None,
    events: EventArray | None = None,
) -> tuple[BacktestResult, list[int]]:
    """Run the script; the result tables and each script row's result."""
    if instrument is None or events is None:
        instrument, events = day()
    strat = ScriptStrategy(script, risk=risk)
    res = Backtest(
        instruments=[instrument],
        streams=[[events]],
        strategies=[strat],
        mode=mode,  # type: ignore[arg-type]
        latency=LatencyConfig(entry_ns=entry_ns, response_ns=response_ns),
        queue=QueueConfig(model="power", n=2.0),
        sample_ns=0,
    ).run()
    return res, strat.results_of_run()


def assert_within_limits(
    res: BacktestResult, script: np.ndarray, results: list[int], risk: RiskLimits
) -> None:
    fills, orders = res.fills, res.orders
    # position: after every fill, and as the fills add up
    pos = fills["position"].to_numpy()
    assert np.array_equal(np.cumsum(fills["side"].to_numpy() * fills["qty"].to_numpy()), pos)
    if risk.max_position is not None:
        assert np.all(np.abs(pos) <= risk.max_position), f"position reached {np.abs(pos).max()}"
    # notional of each limit order: what a buy paid, a sell's filled lots at its limit
    if risk.max_notional is not None and len(fills):
        per = (
            fills.group_by("order_id")
            .agg(paid=(pl.col("qty") * pl.col("price")).sum(), lots=pl.col("qty").sum())
            .join(orders, on="order_id")
            .filter(pl.col("order_type") == "limit")
        )
        worth = np.where(
            per["side"].to_numpy() == BUY,
            per["paid"].to_numpy(),
            per["lots"].to_numpy() * per["price"].to_numpy(),
        )
        assert np.all(worth <= risk.max_notional * (1 + 1e-12)), f"notional {worth.max()}"
    # open orders at each submission (ids grow with submission time)
    if risk.max_open_orders is not None and len(orders):
        o = orders.sort("order_id")
        sub = o["submit_ts"].to_numpy()
        end = o["end_ts"].fill_null(np.iinfo(np.int64).max).to_numpy()  # null: still working
        working = [int(np.sum(end[: k + 1] > sub[k])) for k in range(len(o))]
        assert max(working) <= risk.max_open_orders, f"{max(working)} orders working"
    # every denial recorded, in order, with its reason
    expected = []
    for row, r in zip(script, results, strict=True):
        if row[OP] in (OP_LIMIT, OP_MARKET) and r < 0:
            expected.append(DENY_NAMES[-r])
        elif row[OP] == OP_MODIFY and r > DENY_NONE:
            expected.append(DENY_NAMES[r])
    assert res.denials["reason"].to_list() == expected


def check_both_paths(
    script: np.ndarray, risk: RiskLimits, entry_ns: int, response_ns: int, **kw: Any
) -> list[tuple[BacktestResult, list[int]]]:
    runs = [
        run(script, risk, mode=m, entry_ns=entry_ns, response_ns=response_ns, **kw)
        for m in MODES
    ]
    for res, results in runs:
        assert_within_limits(res, script, results, risk)
    (a, ra), (b, rb) = runs
    assert ra == rb
    for name in ("orders", "fills", "denials"):
        assert getattr(a, name).equals(getattr(b, name)), f"{name} differ between the paths"
    return runs


# --- random scripts -----------------------------------------------------------------------
GAPS = st.one_of(
    st.just(0),
    st.integers(1, 2 * MS),  # within the shorter latencies
    st.integers(100 * MS, 20 * S),  # across several market messages
)
OPS = (OP_LIMIT,) * 4 + (OP_MARKET,) * 2 + (OP_MODIFY,) * 3 + (OP_CANCEL,) * 2
TIFS = (nb.TIF_GTC,) * 4 + (nb.TIF_IOC, nb.TIF_FOK, nb.TIF_POST_ONLY)


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, RiskLimits, int, int]:
    _, ev = day()
    t0, t1 = int(ev["local_ts"][0]), int(ev["local_ts"][-1])
    t = draw(st.integers(t0, t0 + (t1 - t0) // 2))
    rows: list[tuple[int, int, int, int, int, int]] = []
    for _ in range(draw(st.integers(5, 60))):
        t += draw(GAPS)
        op = draw(st.sampled_from(OPS))
        side = draw(st.sampled_from((BUY, SELL)))
        a = b = 0
        tif = nb.TIF_GTC
        if op == OP_LIMIT:
            # -3: behind our touch ... 0: joining it ... 1: the far touch (one tick wide), 2: past
            a, b = draw(st.integers(-3, 2)), draw(st.integers(1, 6))
            tif = draw(st.sampled_from(TIFS))
        elif op == OP_MARKET:
            b = draw(st.integers(1, 6))
        else:  # one of our three latest orders still working
            a, b = draw(st.integers(0, 2)), draw(st.integers(1, 8))
        rows.append((t, op, side, a, b, tif))
    risk = RiskLimits(
        max_position=draw(st.integers(1, 6)),
        max_open_orders=draw(st.integers(1, 4)),
        max_notional=draw(st.sampled_from((None, 250.0, 450.0))),
    )
    entry = draw(st.sampled_from(LATENCIES))
    response = draw(st.sampled_from(LATENCIES))
    return np.array(rows, np.int64), risk, entry, response


@settings(max_examples=20, deadline=None, derandomize=True)
@given(case=cases())
def test_no_script_crosses_a_limit_at_any_latency_on_either_path(
    case: tuple[np.ndarray, RiskLimits, int, int],
) -> None:
    script, risk, entry, response = case
    check_both_paths(script, risk, entry, response)


def seeded_script(rng: np.random.Generator, n: int, t0: int) -> np.ndarray:
    """A script like the property test's, drawn with numpy (for a fixed example)."""
    rows = []
    t = t0
    for _ in range(n):
        t += int(rng.choice([0, int(rng.integers(1, 2 * MS)), int(rng.integers(100 * MS, 5 * S))]))
        op = int(rng.choice(OPS))
        side = int(rng.choice([BUY, SELL]))
        a = b = 0
        tif = nb.TIF_GTC
        if op == OP_LIMIT:
            a, b, tif = int(rng.integers(-3, 3)), int(rng.integers(1, 7)), int(rng.choice(TIFS))
        elif op == OP_MARKET:
            b = int(rng.integers(1, 7))
        else:
            a, b = int(rng.integers(0, 3)), int(rng.integers(1, 9))
        rows.append((t, op, side, a, b, tif))
    return np.array(rows, np.int64)


def test_a_busy_seeded_script_meets_every_limit_and_is_denied_for_each() -> None:
    # the property test's checks are only worth something if scripts like its own do reach
    # the limits: this one (fixed seed) is denied for all three and still trades
    _, ev = day()
    script = seeded_script(np.random.default_rng(7), MAX_ACTIONS, int(ev["local_ts"][0]))
    risk = RiskLimits(max_position=3, max_open_orders=2, max_notional=450.0)
    (res, _), _ = check_both_paths(script, risk, 1 * MS, 300 * MS)
    reasons = set(res.denials["reason"])
    assert {"max_position_instrument", "max_open_orders", "max_notional"} <= reasons
    assert len(res.fills) > 10
    assert np.abs(res.fills["position"].to_numpy()).max() == risk.max_position


# --- the case that used to cross the limit ---------------------------------------------------
T0 = 1_000_000
T = T0 + 1_000


def tape() -> tuple[Instrument, EventArray]:
    """Bids 99.99 x 10, asks 100.01 x 10; at T0 + 50 us a sell sweeps through 99.98."""
    rows = [
        (T0, KIND_LEVEL, BUY, 9999, 10, 0),
        (T0, KIND_LEVEL, SELL, 10001, 10, FLAG_LAST),
        (T0 + 50_000, KIND_TRADE, SELL, 9998, 20, FLAG_LAST),
        (T0 + 100_000, KIND_STATUS, 0, 0, STATUS_INFO, FLAG_LAST),
    ]
    c = list(zip(*rows, strict=True))
    ev = make_events(
        exch_ts=np.array(c[0], np.int64),
        local_ts=np.array(c[0], np.int64),
        kind=np.array(c[1], np.uint8),
        side=np.array(c[2], np.int8),
        price=np.array(c[3], np.int64),
        qty=np.array(c[4], np.int64),
        flags=np.array(c[5], np.uint32),
    )
    return Instrument(venue="TEST", symbol="A", tick_size="0.01"), ev


def test_a_market_order_behind_a_modify_up_in_flight_is_denied_on_both_paths() -> None:
    # a resting 1-lot bid is modified up to 5; while that modify is in flight a market buy of
    # 4 must be denied: the modify counts at 5 from the moment it is sent. (It used to pass,
    # counting the old single lot, and the position reached 9 once the bid was swept.)
    inst, ev = tape()
    script = np.array(
        [
            (T, OP_LIMIT, BUY, 0, 1, nb.TIF_GTC),
            (T + 5_000, OP_MODIFY, BUY, 0, 5, 0),
            (T + 5_500, OP_MARKET, BUY, 0, 4, 0),
        ],
        np.int64,
    )
    risk = RiskLimits(max_position=5)
    for res, results in check_both_paths(
        script, risk, 1_000, 1_000, instrument=inst, events=ev
    ):
        assert results[1:] == [DENY_NONE, -DENY_MAX_POSITION_INSTRUMENT]
        assert res.denials["reason"].to_list() == ["max_position_instrument"]
        assert res.fills["position"].to_list() == [5.0]
