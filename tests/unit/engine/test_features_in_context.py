"""Strategies read the feature kernels' values through the Context, at their own time."""

import datetime as dt
import math

import pytest

from framework.engine.backtest import Backtest
from framework.ingest.synthetic import generate_day
from framework.strategy import Params, Strategy


class _P(Params):
    pass


class Recorder(Strategy):
    Params = _P
    features = True

    def on_start(self, ctx):
        self.seen = []

    def on_book(self, ctx, inst):
        bb, ba = ctx.best_bid(inst), ctx.best_ask(inst)
        bq, aq = ctx.bid_qty(inst), ctx.ask_qty(inst)
        micro = ctx.feature(inst, "microprice")
        imb = ctx.feature(inst, "imbalance")
        vol = ctx.feature(inst, "volatility")
        self.seen.append((bb, ba, bq, aq, micro, imb, vol))


class NoFeatures(Recorder):
    features = False


@pytest.fixture(scope="module")
def day():
    return generate_day(date=dt.date(2024, 1, 2), n_events=20_000, seed=9)


def test_features_match_the_book_the_strategy_sees(day):
    s = Recorder()
    Backtest(
        instruments=[day.instrument],
        streams=[[day.events]],
        strategies=[s],
        sample_ns=0,
        chunk=4096,
    ).run()
    assert len(s.seen) > 1000
    checked = 0
    for bb, ba, bq, aq, micro, imb, vol in s.seen:
        if bq + aq == 0:
            continue
        assert micro == pytest.approx((bb * aq + ba * bq) / (bq + aq))
        assert imb == pytest.approx((bq - aq) / (bq + aq))
        assert vol >= 0.0
        checked += 1
    assert checked > 1000


def test_features_are_nan_unless_the_strategy_asks_for_them(day):
    s = NoFeatures()
    Backtest(
        instruments=[day.instrument], streams=[[day.events[:5000]]], strategies=[s], sample_ns=0
    ).run()
    assert s.seen
    assert all(math.isnan(row[4]) for row in s.seen)


def test_unknown_feature_name_is_a_clear_error(day):
    class Bad(Recorder):
        def on_book(self, ctx, inst):
            ctx.feature(inst, "vwap")

    with pytest.raises(Exception, match="feature 'vwap' is unknown"):
        Backtest(
            instruments=[day.instrument],
            streams=[[day.events[:2000]]],
            strategies=[Bad()],
            sample_ns=0,
        ).run()
