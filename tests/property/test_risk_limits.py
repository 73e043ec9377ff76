"""Risk limits cannot be crossed, whatever the strategy does and whatever the latency.

Random scripts of orders (limit orders behind, at and through the touch, GTC / IOC / FOK /
post-only, market orders, modifies up and down with or without a new price, cancels, in
bursts at random times, many of them racing a modify or a cancel in flight) run through the
real engine on a small seeded synthetic day, on the Python path and on the compiled path,
under random limits, with entry and response latencies from zero to longer than the gaps
between market events, drawn apart. On every run, from the result tables:

* the position after every fill stays within ``max_position`` both ways (the fills table),
  and the fills add up to it;
* no limit order trades more than ``max_notional``: a buy's fills cost at most that; a
  sell's filled lots, each valued at no more than the order's last limit, come to at most
  that (a sell that takes liquidity may get better prices than its limit). Market orders
  are valued at the strategy's book when they are sent and the venue's book may have moved
  by the time they arrive, so they are left out here (tests/unit/engine/test_risk.py
  covers their valuation);
* at no submission were more than ``max_open_orders`` orders working, counting each from
  its submission until the strategy learnt it finished (the orders table: ``submit_ts``,
  ``end_ts``, null for one still working at the end), which spans its whole life at the
  venue;
* every denied request is in the denials table, in order, with its reason;
* both paths give the same tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.analysis.results import BacktestResult
from framework.arena.enums import DENY_MAX_POSITION_INSTRUMENT, DENY_NAMES, DENY_NONE
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
from framework.ingest.synthetic import generate_day
from framework.risk.limits import RiskLimits
from framework.strategy import nb

from .risk_script import (
    COLS,
    KEEP,
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
    # notional of each limit order
    if risk.max_notional is not None and len(fills):
        limits = orders.filter(pl.col("order_type") == "limit").select(
            "order_id", limit=pl.col("price")
        )
        f = fills.join(limits, on="order_id")
        price = pl.when(pl.col("side") == BUY).then("price").otherwise(
            pl.min_horizontal("price", "limit")
        )
        worth = f.group_by("order_id").agg(worth=(pl.col("qty") * price).sum())["worth"]
        assert (worth <= risk.max_notional * (1 + 1e-12)).all(), f"notional {worth.max()}"
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
X = TypeVar("X")
TIFS = (nb.TIF_GTC,) * 4 + (nb.TIF_IOC, nb.TIF_FOK, nb.TIF_POST_ONLY)
OPS = (OP_LIMIT,) * 3 + (OP_MARKET,) * 2 + (OP_MODIFY,) * 2 + (OP_CANCEL,)


def make_script(
    num: Callable[[int, int], int], pick: Callable[[Sequence[X]], X], t: int
) -> np.ndarray:
    """A random script from ``num(lo, hi)`` (an int in [lo, hi]) and ``pick(seq)``.

    Actions come in bursts, 0.1 to 20 s apart (across several of the day's market
    messages): a few actions at one moment or within 2 ms (inside most latencies), mostly
    on one side. A burst is random actions, or a race: an order joins the touch, a modify
    (up or down, maybe through the touch) or a cancel of it follows at once, and more
    orders the same way follow that while it is in flight.
    """
    rows: list[tuple[int, ...]] = []

    def add(op: int, side: int, which: int = 0, qty: int = 0, tif: int = 0, px: int = 0) -> None:
        nonlocal t
        t += num(0, 2 * MS) if num(0, 1) else 0
        rows.append((t, op, side, which, qty, tif, px))

    def new_order(side: int, taker: bool) -> None:
        op = pick((OP_LIMIT, OP_MARKET))
        if op == OP_LIMIT:  # -1: behind our touch, 0: at it, 1: at the far touch, 2: past
            px = num(1, 2) if taker else num(-1, 2)
            add(op, side, qty=num(1, 4), tif=pick(TIFS[:-1] if taker else TIFS), px=px)
        else:
            add(op, side, qty=num(1, 4))

    for _ in range(num(5, 60)):
        t += num(100 * MS, 20 * S)
        way = pick((BUY, SELL))
        race = pick((None, OP_MODIFY, OP_MODIFY, OP_CANCEL))
        if race is not None:
            qty = num(1, 4)
            add(OP_LIMIT, way, qty=qty, tif=nb.TIF_GTC, px=num(-1, 0))
            if race == OP_MODIFY:  # down or (more often) up; at its price or through the touch
                add(race, way, qty=max(1, qty + num(-2, 3)), px=pick((KEEP, KEEP, 1, 2)))
            else:
                add(race, way)
            for _ in range(num(1, 3)):  # orders that take liquidity while it is in flight
                new_order(way if num(0, 9) else -way, taker=True)
            continue
        for _ in range(num(1, 4)):
            side = way if num(0, 9) else -way
            op = pick(OPS)
            if op in (OP_LIMIT, OP_MARKET):
                new_order(side, taker=False)
            elif op == OP_MODIFY:  # one of the three latest orders on that side still working
                add(op, side, which=num(0, 2), qty=num(1, 6), px=pick((KEEP, -1, 0, 1, 2)))
            else:
                add(op, side, which=num(0, 2))
    return np.array(rows[:MAX_ACTIONS], np.int64).reshape(-1, COLS)


def make_limits(num: Callable[[int, int], int], pick: Callable[[Sequence[Any]], Any]) -> RiskLimits:
    return RiskLimits(
        max_position=num(1, 10),
        max_open_orders=pick((None, None, 1, 2, 3, 4)),
        max_notional=pick((None, None, None, 250.0, 450.0, 650.0)),
    )


def numpy_draws(seed: int) -> tuple[Callable[[int, int], int], Callable[[Sequence[X]], X]]:
    rng = np.random.default_rng(seed)

    def num(lo: int, hi: int) -> int:
        return int(rng.integers(lo, hi + 1))

    def pick(seq: Sequence[X]) -> X:
        return seq[int(rng.integers(len(seq)))]

    return num, pick


def seeded_script(seed: int) -> np.ndarray:
    """The script of ``seed``, starting in the first half of the day."""
    num, pick = numpy_draws(seed)
    _, ev = day()
    t0, t1 = int(ev["local_ts"][0]), int(ev["local_ts"][-1])
    return make_script(num, pick, num(t0, t0 + (t1 - t0) // 2))


def seeded_case(seed: int) -> tuple[np.ndarray, RiskLimits, int, int]:
    """Script, limits and (entry, response) latencies of ``seed``."""
    num, pick = numpy_draws(seed ^ 0x5EED)
    return seeded_script(seed), make_limits(num, pick), pick(LATENCIES), pick(LATENCIES)


# Hypothesis draws only the seed: its own draws favour the first choices and short lists
# (no latency, the lowest limits, a few actions), and a race worth testing needs a busy
# script with time in flight. A failure names the seed; seeded_case(seed) replays it.
@settings(max_examples=20, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_no_script_crosses_a_limit_at_any_latency_on_either_path(seed: int) -> None:
    script, risk, entry, response = seeded_case(seed)
    check_both_paths(script, risk, entry, response)


def test_scripts_like_the_property_tests_reach_every_limit() -> None:
    # the checks above are only worth something if the scripts do press on the limits:
    # a few of them, under one set of limits, are denied for each, trade up to the position
    # limit, and send modifies and cancels
    risk = RiskLimits(max_position=4, max_open_orders=2, max_notional=350.0)
    reasons: set[str] = set()
    sent: list[int] = []
    reached = 0.0
    for seed in range(3):
        script = seeded_script(seed)
        (res, results), _ = check_both_paths(script, risk, MS, 300 * MS)
        reasons |= set(res.denials["reason"])
        reached = max(reached, np.abs(res.fills["position"].to_numpy()).max())
        done = list(zip(script[:, OP], results, strict=True))
        sent.append(sum(r == DENY_NONE for o, r in done if o == OP_MODIFY))
        sent.append(sum(r == 1 for o, r in done if o == OP_CANCEL))
    assert {"max_position_instrument", "max_open_orders", "max_notional"} <= reasons
    assert reached == risk.max_position
    assert min(sent) > 0


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
            (T, OP_LIMIT, BUY, 0, 1, nb.TIF_GTC, 0),
            (T + 5_000, OP_MODIFY, BUY, 0, 5, 0, KEEP),
            (T + 5_500, OP_MARKET, BUY, 0, 4, 0, 0),
        ],
        np.int64,
    )
    risk = RiskLimits(max_position=5)
    for res, results in check_both_paths(script, risk, 1_000, 1_000, instrument=inst, events=ev):
        assert results[1:] == [DENY_NONE, -DENY_MAX_POSITION_INSTRUMENT]
        assert res.denials["reason"].to_list() == ["max_position_instrument"]
        assert res.fills["position"].to_list() == [5.0]
