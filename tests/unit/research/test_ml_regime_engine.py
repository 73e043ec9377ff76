"""The regime reaches strategies through the engine's feature pass, like microprice: the
Python Context and compiled callbacks read the same values, which are the model's values
for the events seen so far, and changing later events changes no earlier reading."""

from __future__ import annotations

import datetime as dt
import math
from functools import cache

import numpy as np
import pytest
from numba import njit

from framework.core.errors import ConfigError
from framework.engine.backtest import Backtest
from framework.features import F_REGIME, F_REGIME_PROB
from framework.ingest.synthetic import generate_day
from framework.strategy import CompiledCallbacks, Params, Strategy, nb
from research.ml.regime import fit_regimes

HL = 20_000_000_000
MOD = 1_000_000_007  # s * 31 stays inside int64
# state words: wake-ups without a regime, per regime, a running hash of the sequence
S_NAN, S_R0, S_HASH = 0, 1, 4


@njit(cache=True)
def _fold(s, r: float, p: float) -> None:
    if math.isnan(r):
        s[S_NAN] += 1
        code = 7
    else:
        s[S_R0 + int(r)] += 1
        code = int(r) * 1000 + int(p * 999.0)
    s[S_HASH] = (s[S_HASH] * 31 + code) % MOD


@njit(cache=True)
def rec_on_book(ctx, sid, inst, p, s) -> None:
    _fold(s, nb.feature(ctx, inst, F_REGIME), nb.feature(ctx, inst, F_REGIME_PROB))


class _P(Params):
    pass


class RegimeRecorder(Strategy):
    """Counts and hashes the regime it reads at every book change (both paths)."""

    Params = _P
    features = True
    compiled = CompiledCallbacks(on_book=rec_on_book, state_size=5)

    def on_start(self, ctx):
        self.seen: list[tuple[int, float]] = []
        self.words = np.zeros(5, np.int64)

    def on_book(self, ctx, inst):
        r = ctx.feature(inst, "regime")
        self.seen.append((ctx.now, -1.0 if math.isnan(r) else r))  # NaN != NaN in a list
        _fold.py_func(self.words, r, ctx.feature(inst, "regime_prob"))


@cache
def setup():
    days = [generate_day(date=dt.date(2024, 2, 5 + i), n_events=80_000, seed=40 + i)
            for i in range(3)]
    model = fit_regimes([d.events for d in days[:2]], halflife_ns=HL)
    return days[2], model


def _run(events, model, mode):
    day, _ = setup()
    s = RegimeRecorder()
    Backtest(instruments=[day.instrument], streams=[[events]], strategies=[s], mode=mode,
             sample_ns=0, chunk=5_003, feature_model=model.feature_model()).run()
    return s


def test_python_and_compiled_strategies_read_the_same_regimes():
    day, model = setup()
    py = _run(day.events, model, "python")
    co = _run(day.events, model, "compiled")
    assert np.array_equal(py.words, co.compiled_state), (py.words, co.compiled_state)
    assert py.words[S_R0 : S_R0 + 3].min() > 100  # every regime was seen
    # each reading is the model's value at an event of that local time
    pred, _ = model.predict(day.events)
    lt = day.events["local_ts"]
    for now, r in py.seen[:: max(1, len(py.seen) // 2000)]:
        lo, hi = np.searchsorted(lt, now, "left"), np.searchsorted(lt, now, "right")
        vals = pred[lo:hi]
        assert (r == -1.0 and np.isnan(vals).any()) or (r == vals).any()


def test_changing_the_future_changes_no_earlier_reading():
    day, model = setup()
    ev = day.events
    base = _run(ev, model, "python").seen
    k = len(ev) * 3 // 5
    t = int(ev["local_ts"][k])
    alt = ev.copy()
    alt["qty"][k:] = alt["qty"][k:] * 4 + 1
    alt["local_ts"][k:] += 30_000_000_000
    alt["exch_ts"][k:] += 30_000_000_000
    got = _run(alt, model, "python").seen
    past = [x for x in base if x[0] < t]
    assert len(past) > 1000
    assert [x for x in got if x[0] < t] == past
    assert got[len(past):] != base[len(past):]


def test_feature_model_must_be_the_framework_type():
    day, model = setup()
    with pytest.raises(ConfigError, match=r"must be a framework\.features\.FeatureModel"):
        Backtest(instruments=[day.instrument], streams=[[day.events]],
                 strategies=[RegimeRecorder()], feature_model=model)  # type: ignore[arg-type]


class PlainReader(RegimeRecorder):
    compiled = None
    features = False  # the model alone turns the feature pass on


def test_a_feature_model_turns_the_feature_pass_on_and_is_recorded():
    day, model = setup()
    s = PlainReader()
    res = Backtest(instruments=[day.instrument], streams=[[day.events[:30_000]]],
                   strategies=[s], sample_ns=0, feature_model=model.feature_model()).run()
    assert any(r != -1.0 for _, r in s.seen)
    cfg = res.config["feature_models"][day.instrument.key]
    assert cfg["labels"] == ["calm", "volatile", "trending"]
    assert cfg["halflife_ns"] == HL
    plain = Backtest(instruments=[day.instrument], streams=[[day.events[:5_000]]],
                     strategies=[PlainReader()], sample_ns=0).run()
    assert "feature_models" not in plain.config


class PerInstrument(Strategy):
    Params = _P
    features = True

    def on_start(self, ctx):
        self.seen: dict[int, list[float]] = {0: [], 1: []}

    def on_book(self, ctx, inst):
        self.seen[inst].append(ctx.feature(inst, "regime"))


def test_each_instrument_gets_its_own_model_or_none():
    _, model = setup()
    a = generate_day(symbol="AAA", date=dt.date(2024, 2, 8), n_events=30_000, seed=61)
    b = generate_day(symbol="BBB", date=dt.date(2024, 2, 8), n_events=30_000, seed=62)
    s = PerInstrument()
    res = Backtest(instruments=[a.instrument, b.instrument], streams=[[a.events], [b.events]],
                   strategies=[s], sample_ns=0,
                   feature_model={b.instrument.key: model.feature_model()}).run()
    assert all(math.isnan(r) for r in s.seen[0])
    assert sum(not math.isnan(r) for r in s.seen[1]) > 1000
    # and b's readings are the model's on b alone
    pred, _ = model.predict(b.events)
    got = {r for r in s.seen[1] if not math.isnan(r)}
    assert got <= set(pred[~np.isnan(pred)].tolist())
    assert list(res.config["feature_models"]) == [b.instrument.key]
    for bad, says in (({"XXX/YYY": model.feature_model()}, "names instruments"),
                      ({a.instrument.key: model}, "something other than"),
                      ([model.feature_model()], "or a dict")):
        with pytest.raises(ConfigError, match=says):
            Backtest(instruments=[a.instrument, b.instrument],
                     streams=[[a.events], [b.events]], strategies=[PerInstrument()],
                     feature_model=bad)  # type: ignore[arg-type]


def test_fed_one_event_at_a_time_as_live_the_readings_are_the_backtests():
    from framework.engine.engine import Engine, Wake

    day, model = setup()
    ev = day.events[:25_000]
    s_live = RegimeRecorder()
    eng = Engine(instruments=[day.instrument], strategies=[s_live], mode="python",
                 sample_ns=0, feature_model=model.feature_model())
    for k in range(len(ev)):
        eng.push(ev[k : k + 1])
        assert eng.advance() == Wake.NEED_INPUT
    eng.end_input()
    assert eng.advance() == Wake.DONE
    eng.finish()
    s_bt = RegimeRecorder()
    Backtest(instruments=[day.instrument], streams=[[ev]], strategies=[s_bt], mode="python",
             sample_ns=0, feature_model=model.feature_model()).run()
    assert len(s_bt.seen) > 1000
    assert len({r for _, r in s_bt.seen}) >= 3  # the warm-up and at least two regimes
    assert s_live.seen == s_bt.seen
