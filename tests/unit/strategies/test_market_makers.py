"""The two reference market makers on synthetic days whose answer is known, and on tapes.

What the generator guarantees (``framework.ingest.synthetic``): in the *calm* regime the
latent mid diffuses slowly (0.25 ticks/sqrt(s)) and trades at the touch are noise, so a
passive quote at the touch earns most of the one-tick spread; in the *trending* regime the
mid drifts and aggressors lean with the trend, so a market maker is filled against the trend
again and again and its inventory runs to whatever limit it has. A transition matrix whose
every row points at one regime keeps the whole day in it. With ``signal_strength = w`` the
touch imbalance after each touch update is ``w * tanh((mid 5 s ahead - mid) / 1.5)`` plus
noise: it leads the price. With ``w = 0`` it is noise.

Fees: a maker fee of 0.001 a lot (0.1 tick) makes "earns net of fees" mean something.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache

import numpy as np
import polars as pl
import pytest

from framework.analysis.results import BacktestResult
from framework.analysis.stats import summarize
from framework.core.errors import ConfigError
from framework.core.events import BUY, SELL, EventArray
from framework.core.instrument import Instrument
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig, QueueConfig
from framework.ingest.synthetic import SyntheticParams, generate_day
from framework.strategy import Strategy
from framework.strategy.context import Context, OrderUpdate
from strategies.avellaneda_stoikov import AvellanedaStoikov, target_quotes
from strategies.queue_aware_mm import QueueAwareMM
from tests.unit.engine.conftest import T0, Tape, run

DATE = dt.date(2024, 3, 5)
FEE_PER_LOT = 0.001  #: currency per lot = 0.1 tick of 0.01
TICK = 0.01
ONLY = {  # every row of the transition matrix leads back to the one regime
    "calm": SyntheticParams(transition=((1.0, 0.0, 0.0),) * 3, initial_regime="calm"),
    "trending": SyntheticParams(transition=((0.0, 0.0, 1.0),) * 3, initial_regime="trending"),
}
MAKERS = [AvellanedaStoikov, QueueAwareMM]


@cache
def day(regime: str, seed: int, signal: float = 0.0) -> tuple[Instrument, EventArray]:
    d = generate_day(
        date=DATE, n_events=150_000, seed=seed, params=ONLY[regime].replace(signal_strength=signal)
    )
    assert d.labels is not None
    assert set(d.labels.column("regime").to_pylist()) == {regime}
    return dataclasses.replace(d.instrument, fee_per_lot=FEE_PER_LOT), d.events


def backtest(strategy: Strategy, data: tuple[Instrument, EventArray], mode: str = "python"):
    inst, events = data
    return Backtest(
        instruments=[inst],
        streams=[[events]],
        strategies=[strategy],
        mode=mode,  # type: ignore[arg-type]
        latency=LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        queue=QueueConfig(model="power", n=2.0),
        sample_ns=100_000_000,
    ).run()


def realised_spread(result: BacktestResult, horizon_s: float) -> np.ndarray:
    """Ticks earned per fill against the mid ``horizon_s`` later: the half-spread captured
    minus the adverse move (the mid is the last 100 ms sample at or before that time)."""
    mids = (
        result.market.sort("ts")
        .select(pl.col("ts").alias("at"), ((pl.col("bid") + pl.col("ask")) / 2).alias("mid"))
    )
    fills = result.fills.sort("ts").with_columns(
        (pl.col("ts") + int(horizon_s * 1e9)).alias("at")
    )
    j = fills.join_asof(mids, on="at")
    return (j["side"].cast(pl.Float64) * (j["mid"] - j["price"])).to_numpy() / TICK


# --- known answers on synthetic days -----------------------------------------------------------
@pytest.mark.parametrize("cls", MAKERS)
def test_in_a_calm_day_the_market_makers_earn_the_spread_net_of_fees(cls: type[Strategy]) -> None:
    result = backtest(cls(), day("calm", 3))
    s = summarize(result)
    assert s["n_fills"] > 2_000
    assert s["maker_share_qty"] == 1.0  # post-only quotes never take
    assert s["fees"] == pytest.approx(FEE_PER_LOT * s["filled_qty"])
    assert s["pnl"] > 0  # equity after fees, open inventory marked to the mid
    # the robust part: what a fill earns once the price has had 5 s to move against it is
    # still more than the fee (an average over thousands of fills, not one day's mark)
    rs = realised_spread(result, 5.0)
    assert rs.mean() > FEE_PER_LOT / TICK


@pytest.mark.parametrize(
    ("cls", "params"),
    [(AvellanedaStoikov, {"gamma": 0.05}), (QueueAwareMM, {})],
)
def test_in_a_trending_day_inventory_runs_to_the_limit_and_never_past_it(
    cls: type[Strategy], params: dict[str, float]
) -> None:
    limit = 3
    result = backtest(cls({**params, "max_position": limit}), day("trending", 4))
    sampled = result.positions["position"].abs()
    after_fills = result.fills["position"].abs()
    assert len(sampled) > 100_000  # a sample every 100 ms of the day
    # filled against the trend, the book runs into the limit (the known answer) ...
    assert after_fills.max() == limit
    # ... and stops there: neither a sample nor any fill sees more
    assert sampled.max() <= limit
    assert after_fills.max() <= limit
    assert result.denials.height == 0  # the strategy held the limit, not the risk checks


def test_the_reservation_price_skew_keeps_inventory_well_inside_the_limit() -> None:
    # with the default risk aversion one lot of inventory moves the reservation price by
    # gamma * sigma2 * tau ~ 0.5 * 0.1 * 10 = 0.5 tick: the next quote on the side that
    # would add steps back a tick, so the trend never gets to push the book to its limit
    result = backtest(AvellanedaStoikov({"max_position": 5}), day("trending", 4))
    assert len(result.fills) > 2_000
    assert result.fills["position"].abs().max() <= 2


def test_pulling_quotes_on_adverse_imbalance_improves_fills_when_imbalance_predicts() -> None:
    def markouts(signal: float) -> tuple[float, float, int]:
        off, on = QueueAwareMM({"imbalance_cancel": 0}), QueueAwareMM({"imbalance_cancel": 0.6})
        r_off, r_on = backtest(off, day("calm", 5, signal)), backtest(on, day("calm", 5, signal))
        assert off.cancels["imbalance"] == 0
        return realised_spread(r_off, 5.0).mean(), realised_spread(r_on, 5.0).mean(), on.cancels[
            "imbalance"
        ]

    # imbalance leads the mid: the side it points against is pulled before it is run over
    off, on, pulled = markouts(0.8)
    assert pulled > 1_000
    assert on > off + 0.04
    # control: imbalance is noise, pulling only costs queue places, and helps nothing
    off, on, pulled = markouts(0.0)
    assert pulled > 1_000
    assert on < off


@pytest.mark.parametrize(
    "params",
    [{}, {"use_microprice": True, "gamma": 0.05, "stop_loss": 10.0, "requote_ticks": 2}],
)
def test_avellaneda_stoikov_compiled_and_python_paths_agree(params: dict[str, object]) -> None:
    data = day("trending", 6)
    py = AvellanedaStoikov(params)
    a, b = backtest(py, data, "python"), backtest(AvellanedaStoikov(params), data, "compiled")
    assert (a.config["mode"], b.config["mode"]) == ("python", "compiled")
    assert len(a.fills) > 300
    if params:
        assert py.stopped  # the stop-loss branch ran too
    for name in ("orders", "fills", "equity", "positions", "denials"):
        assert getattr(a, name).equals(getattr(b, name)), f"{name} differ"
    eq_a, eq_b = a.equity["equity"].to_numpy(), b.equity["equity"].to_numpy()
    assert np.array_equal(eq_a.view(np.int64), eq_b.view(np.int64))


def test_after_the_stop_loss_only_fills_that_reduce_the_position_happen() -> None:
    s = AvellanedaStoikov({"gamma": 0.05, "stop_loss": 10.0})
    result = backtest(s, day("trending", 6))
    assert s.stopped
    eq = result.equity.filter(pl.col("strategy") == s.name)
    hit = eq.filter(pl.col("equity") < -10.0)["ts"].to_numpy().min()
    # quotes already resting when the stop trips are cancelled; allow them a round trip
    late = result.fills.filter(pl.col("ts") > hit + 100_000_000)
    assert late.height > 0
    before = late["position"] - late["side"].cast(pl.Float64) * late["qty"]
    assert (late["position"].abs() < before.abs()).all()


# --- the mechanics on hand-written tapes (prices in ticks of 0.01) --------------------------------
def test_target_quotes_lean_against_inventory_and_never_cross() -> None:
    # flat, sigma2 = 0: half-spread ln(1 + 0.5 / 1.5) / 0.5 = 0.575 around mid 100.5
    assert target_quotes(100.5, 0, 0.0, 0.5, 1.5, 10.0, 100, 101) == (100, 101)
    # long 2 lots, sigma2 = 0.1: r = 100.5 - 2 * 0.5 = 99.5, half = 0.25 + 0.575; the ask
    # would be 100, inside the touch it must not cross, so it stays at the best ask
    assert target_quotes(100.5, 2, 0.1, 0.5, 1.5, 10.0, 100, 101) == (99, 101)
    assert target_quotes(100.5, -2, 0.1, 0.5, 1.5, 10.0, 100, 101) == (100, 102)


def updates(cls: type[Strategy]) -> type[Strategy]:
    """``cls`` recording every order update it hears as (now, kind, order id, price)."""

    class Logged(cls):  # type: ignore[valid-type, misc]
        def on_start(self, ctx: Context) -> None:
            super().on_start(ctx)
            self.log: list[tuple[int, str, int, int]] = []

        def on_order(self, ctx: Context, update: OrderUpdate) -> None:
            info = ctx.order(update.order_id)
            self.log.append((ctx.now, update.kind, update.order_id, info["price"] if info else 0))
            super().on_order(ctx, update)

    return Logged


@pytest.mark.parametrize("requote", [1, 2])
def test_a_resting_quote_moves_only_when_its_price_is_requote_ticks_off(requote: int) -> None:
    s = 1_000_000_000
    tape = Tape().book(T0, bids=[(9999, 50)], asks=[(10001, 50)])
    # one mid move 10 s later: sigma2 = 1 tick^2 / 10 s, quotes 10000 / 10002 (see above)
    tape.book(T0 + 10 * s, bids=[(9999, 0), (10000, 50)], asks=[(10001, 0), (10002, 50)])
    for k in range(1, 6):  # sizes change, prices do not: nothing to do
        tape.book(T0 + (10 + k) * s, bids=[(10000, 50 + k)], asks=[(10002, 50 - k)])
    # the mid moves a tick (after 10 s again, so sigma2 is unchanged): the targets move 1 tick
    tape.book(T0 + 20 * s, bids=[(10000, 0), (10001, 50)], asks=[(10002, 0), (10003, 50)])
    tape.tick(T0 + 21 * s)
    params = {"warmup_moves": 1, "requote_ticks": requote}
    mm = updates(AvellanedaStoikov)(params)
    result = run(tape, mm)
    acks = sorted((now // s, px) for now, kind, _, px in mm.log if kind == "ack")
    cancels = sorted((now // s, px) for now, kind, _, px in mm.log if kind == "canceled")
    if requote == 1:  # a one-tick move is enough: both quotes follow the mid
        assert acks == [(10, 10000), (10, 10002), (20, 10001), (20, 10003)]
        assert [t for t, _ in cancels] == [20, 20]
    else:  # two ticks are needed: both quotes keep their place
        assert acks == [(10, 10000), (10, 10002)]
        assert cancels == []
    # the compiled path does the same
    compiled = run(tape, AvellanedaStoikov(params, name=mm.name), mode="compiled")
    for name in ("orders", "fills", "equity", "latency"):
        assert getattr(result, name).equals(getattr(compiled, name)), name


def test_queue_position_is_cut_by_trades_at_its_price_and_pro_rata_by_cancels() -> None:
    tape = Tape().book(T0, bids=[(9999, 100)], asks=[(10001, 100)])
    tape.trade(T0 + 1_000, SELL, 9999, 30).level(T0 + 1_000, BUY, 9999, 70)  # 30 traded
    tape.level(T0 + 2_000, BUY, 9999, 35)  # 35 cancelled: half the queue, half of ours ahead
    tape.level(T0 + 3_000, BUY, 9999, 80)  # 45 join, behind us
    tape.level(T0 + 4_000, BUY, 9999, 60)  # 20 of 80 cancelled: 35 * 20 // 80 = 8 of ours
    tape.tick(T0 + 5_000)
    mm = QueueAwareMM()
    run(tape, mm)
    bid = mm.quotes[BUY]
    assert (bid.price, bid.acked) == (9999, True)
    assert bid.ahead == 27  # 100 - 30 - 35 - 8
    assert mm.quotes[SELL].ahead == 100  # nothing happened on the ask
    assert sum(mm.cancels.values()) == 0  # size changes alone never re-queue


def test_a_heavy_ask_pulls_the_bid_and_the_bid_rejoins_when_it_clears() -> None:
    tape = Tape().book(T0, bids=[(9999, 100)], asks=[(10001, 100)])
    tape.level(T0 + 1_000, SELL, 10001, 1_000)  # imbalance (100 - 1000) / 1100 = -0.82
    tape.level(T0 + 2_000, SELL, 10001, 100)  # balanced again
    tape.tick(T0 + 3_000)
    mm = updates(QueueAwareMM)()
    run(tape, mm)
    assert mm.cancels == {"touch_moved": 0, "imbalance": 1, "queue": 0, "inventory": 0}
    first_bid, first_ask = mm.log[0][2], mm.log[1][2]
    assert [(k, oid) for _, k, oid, _ in mm.log] == [
        ("ack", first_bid),
        ("ack", first_ask),  # the heavy side is the safe one: the ask stays
        ("canceled", first_bid),
        ("ack", mm.quotes[BUY].oid),  # re-joined ...
    ]
    assert mm.log[3][0] > T0 + 2_000  # ... only once the book was balanced again
    assert mm.quotes[SELL].oid == first_ask


def test_an_order_acked_behind_too_long_a_queue_is_pulled_and_not_rejoined() -> None:
    tape = Tape().book(T0, bids=[(9999, 100)], asks=[(10001, 100)])
    tape.level(T0 + 500, BUY, 9999, 150)  # joins the level while our order is on its way
    tape.tick(T0 + 10_000)
    mm = QueueAwareMM({"max_queue_ahead": 120})
    result = run(tape, mm, entry_ns=1_000, response_ns=1_000)
    assert mm.cancels["queue"] == 1
    bids = result.orders.filter(pl.col("side") == BUY)
    assert bids["status"].to_list() == ["canceled"]  # 150 > 120: crowded, not re-joined


@pytest.mark.parametrize(
    ("regime", "seed", "signal", "params"),
    [
        ("calm", 5, 0.8, {"max_queue_ahead": 250}),
        (
            "trending",
            6,
            0.0,
            {"order_qty": 2, "max_position": 3, "max_queue_ahead": 250, "imbalance_cancel": 0.4},
        ),
    ],
)
def test_queue_aware_mm_compiled_and_python_paths_agree(
    regime: str, seed: int, signal: float, params: dict[str, object]
) -> None:
    data = day(regime, seed, signal)
    py = QueueAwareMM(params)
    a = backtest(py, data, "python")
    fast = QueueAwareMM(params)
    b = backtest(fast, data, "compiled")
    assert (a.config["mode"], b.config["mode"]) == ("python", "compiled")
    assert len(a.fills) > 1_000
    for name in ("orders", "fills", "equity", "positions", "denials"):
        assert getattr(a, name).equals(getattr(b, name)), f"{name} differ"
    eq_a, eq_b = a.equity["equity"].to_numpy(), b.equity["equity"].to_numpy()
    assert np.array_equal(eq_a.view(np.int64), eq_b.view(np.int64))
    # the compiled path counts its cancels in its state words (handed back after the run)
    assert fast.cancel_summary() == py.cancel_summary() == py.cancels
    # quotes were pulled for every reason that can fire ...
    assert min(py.cancels["touch_moved"], py.cancels["imbalance"], py.cancels["queue"]) > 0
    # ... and the inventory one cannot on one instrument: a side's pos + open lots grows only
    # by the strategy's own orders, each sized to keep it within max_position
    assert py.cancels["inventory"] == 0


@pytest.mark.parametrize(
    ("cls", "params", "needle"),
    [
        (AvellanedaStoikov, {"gama": 0.1}, "did you mean 'gamma'"),
        (AvellanedaStoikov, {"k": 0}, "k=0.0 is out of range: allowed > 0"),
        (AvellanedaStoikov, {"vol_alpha": "1.5"}, "vol_alpha=1.5 is out of range: allowed > 0 and"),
        (AvellanedaStoikov, {"gamma": "high"}, "gamma='high' of"),
        (QueueAwareMM, {"imbalance_cancel": 1.5}, "imbalance_cancel=1.5 is out of range: allowed"),
        (QueueAwareMM, {"max_queue": 10}, "did you mean 'max_queue_ahead'"),
    ],
)
def test_bad_parameters_fail_with_a_clear_message(
    cls: type[Strategy], params: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigError) as err:
        cls(params)
    assert needle in str(err.value)
