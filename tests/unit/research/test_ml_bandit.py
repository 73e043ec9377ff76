"""The contextual bandit and the gate that lets one of K instances trade."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import polars as pl
import pytest

from framework.core.errors import ConfigError
from framework.engine.config import LatencyConfig
from framework.engine.instances import copies
from framework.ingest.synthetic import generate_day
from research.ml.bandit import (
    NS,
    Gate,
    ThompsonBandit,
    UniformChooser,
    epoch_rewards,
    gated,
    results_table,
    run_day,
)
from research.ml.regime import fit_regimes
from strategies.one_tick_mm import OneTickMM

SETS = [{"max_position": 1}, {"max_position": 5}]
LAT = LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000)


def test_thompson_sampling_learns_the_best_arm_of_each_context():
    rng = np.random.default_rng(0)
    means = np.array([[0.2, 0.0, -0.1], [-0.3, 0.1, 0.0], [0.0, -0.2, 0.15]])
    ts, un = ThompsonBandit(3, 3, seed=1), UniformChooser(3, seed=1)
    got = {"ts": 0.0, "un": 0.0}
    late_best = 0
    for t in range(6_000):
        c = int(rng.integers(3))
        for name, ch in (("ts", ts), ("un", un)):
            a = ch.choose(c)
            r = float(rng.normal(means[c, a], 1.0))
            ch.update(c, a, r)
            got[name] += means[c, a]
            if name == "ts" and t >= 5_000:
                late_best += a == int(np.argmax(means[c]))
    best = 6_000 * means.max(axis=1).mean()
    assert got["ts"] > got["un"] + 0.5 * (best - got["un"]), got
    assert late_best / 1_000 > 0.85
    mean, sd = ts.posterior(0)
    assert int(np.argmax(mean)) == 0
    assert (sd > 0).all()


def test_a_bandit_refuses_no_arms():
    with pytest.raises(ConfigError, match="needs arms"):
        ThompsonBandit(0, 3)


@dataclass
class Script:
    """Chooses arms from a fixed cycle (a chooser whose choices a test knows)."""

    cycle: list[int]
    seen: list[tuple[int, int, float]] = field(default_factory=list)
    i: int = 0

    def choose(self, context: int) -> int:
        self.i += 1
        return self.cycle[(self.i - 1) % len(self.cycle)]

    def update(self, context: int, arm: int, reward: float) -> None:
        self.seen.append((context, arm, reward))


@cache
def setup():
    days = [generate_day(date=dt.date(2024, 3, 4 + i), n_events=60_000, seed=70 + i)
            for i in range(2)]
    model = fit_regimes([days[0].events], halflife_ns=20 * NS)
    return days[1], model


def test_only_the_chosen_instance_adds_to_its_position():
    day, model = setup()
    gate = Gate(Script([0, 1, 2, 1]), 2, epoch_ns=30 * NS, flat_arm=True)
    strategies = gated(OneTickMM, SETS, gate)
    from framework.engine.backtest import Backtest

    res = Backtest(instruments=[day.instrument], streams=[[day.events]],
                   strategies=strategies, isolated=True, sample_ns=0, latency=LAT,
                   feature_model=model.feature_model()).run()
    log = gate.table()
    assert log.height > 100
    assert log["arm"].to_list()[:4] == [0, 1, 2, 1]
    assert not log["reward"].is_nan().any()  # the last epoch closed at the end
    starts = log["ts"].to_numpy()
    arms = log["arm"].to_numpy()
    fills = res.fills.sort("ts")
    orders = res.orders
    checked = 0

    def arm_at(t: np.ndarray) -> np.ndarray:
        return arms[np.clip(np.searchsorted(starts, t, "right") - 1, 0, None)]

    for k, name in enumerate(s.name for s in strategies):
        f = fills.filter(pl.col("strategy") == name).join(
            orders.filter(pl.col("strategy") == name).select("order_id", "submit_ts"),
            on="order_id", how="left")
        pos = np.rint(f["position"].to_numpy()).astype(np.int64)
        before = np.concatenate([[0], pos[:-1]])
        grew = np.abs(pos) > np.abs(before)
        sent, at = f["submit_ts"].to_numpy(), f["ts"].to_numpy()
        # a position grows only by an order sent while the instance was the chosen one,
        # filled then or within the cancel's round trip after it stopped being chosen
        assert (arm_at(sent[grew]) == k).all(), name
        late = grew & (arm_at(at) != k)
        nxt = starts[np.searchsorted(starts, sent[late], "right")]
        assert (at[late] - nxt <= 2 * 1_000_000 + 1_000).all(), (name, at[late] - nxt)
        checked += int((arm_at(at) != k).sum())
        assert grew.any()
    assert checked > 0  # instances did wind down outside their epochs
    # the rewards told to the chooser are the active instance's equity changes
    script = gate.chooser
    assert [a for _, a, _ in script.seen] == arms.tolist()
    flat = [r for _, a, r in script.seen if a == 2]
    assert flat
    assert all(r == 0.0 for r in flat)


def test_an_instance_always_chosen_trades_as_it_would_alone():
    day, model = setup()
    gate = Gate(Script([1]), 2, epoch_ns=60 * NS, flat_arm=False)
    together = run_day(day.instrument, day.events, gated(OneTickMM, SETS, gate), day.date,
                       feature_model=model.feature_model(), latency=LAT, gate=gate)
    alone = run_day(day.instrument, day.events, copies(OneTickMM, SETS), day.date,
                    latency=LAT)
    assert together.pnl["OneTickMM_1"] == alone.pnl["OneTickMM_1"]
    assert together.pnl["OneTickMM_0"] == 0.0
    assert alone.pnl["OneTickMM_0"] != 0.0
    # the rewards add up to the instance's PnL
    assert together.gate_log["reward"].sum() == pytest.approx(alone.pnl["OneTickMM_1"])


def test_epoch_rewards_and_walk_forward_tables():
    day, model = setup()
    run = run_day(day.instrument, day.events, copies(OneTickMM, SETS), day.date, latency=LAT)
    pred, _ = model.predict(day.events)
    reg = pl.DataFrame({"ts": day.events["local_ts"], "regime": pred})
    r = epoch_rewards(run, ["OneTickMM_0", "OneTickMM_1"], reg, 60 * NS)
    assert set(r["arm"].unique().to_list()) == {0, 1, 2}
    assert set(r["context"].unique().to_list()) <= {0, 1, 2, 3}
    for k, name in enumerate(("OneTickMM_0", "OneTickMM_1")):
        assert r.filter(pl.col("arm") == k)["reward"].sum() == pytest.approx(run.pnl[name])
    assert (r.filter(pl.col("arm") == 2)["reward"] == 0.0).all()
    results, curves = results_table([run], {"OneTickMM_0": "set_0", "OneTickMM_1": "set_1"})
    assert results.columns == ["key", "day", "pnl", "max_drawdown"]
    assert sorted(curves["key"].unique().to_list()) == ["set_0", "set_1"]
    assert (results["max_drawdown"] >= 0).all()


def test_a_chooser_choosing_no_arm_stops_the_run_with_the_reason():
    day, model = setup()
    gate = Gate(Script([5]), 2, flat_arm=True)
    with pytest.raises(ConfigError, match=r"chose arm 5; it has arms 0\.\.2"):
        run_day(day.instrument, day.events[:5_000], gated(OneTickMM, SETS, gate), day.date,
                feature_model=model.feature_model(), latency=LAT, gate=gate)


def test_gate_needs_one_set_per_instance_and_python_callbacks():
    gate = Gate(UniformChooser(3), 2)
    with pytest.raises(ConfigError, match="2 parameter sets, got 1"):
        gated(OneTickMM, SETS[:1], gate)
    from framework.strategy import CompiledCallbacks, Params, Strategy

    class _P(Params):
        pass

    class CompiledOnly(Strategy):
        Params = _P
        compiled = CompiledCallbacks()

    with pytest.raises(ConfigError, match="no Python callbacks"):
        gated(CompiledOnly, [{}, {}], gate)
