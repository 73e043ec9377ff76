"""Regimes on a real day: LOBSTER AMZN 2012-06-21 imported into a store, its order-by-order
events projected to levels, a model fitted on the morning and run causally over the whole
day through a backtest from the store (the regime a strategy reads)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from framework.cli import main
from framework.engine.backtest import Backtest, store_streams
from framework.store.tickstore import TickStore
from framework.strategy import Params, Strategy
from research.ml.regime import REGIME_NAMES, as_l2, fit_regimes, model_inputs

from ..conftest import AMZN

pytestmark = pytest.mark.shared_data
DAY = dt.date(2012, 6, 21)
HL = 60_000_000_000  # AMZN's L1 day has ~4 events/s: a minute's memory


class _P(Params):
    pass


class Reader(Strategy):
    Params = _P
    features = True

    def on_start(self, ctx):
        self.regimes: list[float] = []

    def on_book(self, ctx, inst):
        self.regimes.append(ctx.feature(inst, "regime"))


@pytest.fixture(scope="module")
def amzn_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TickStore:
    root = str(tmp_path_factory.mktemp("store"))
    assert main(["data", "import", "lobster", str(shared_data / AMZN), "--store", root]) == 0
    return TickStore(root)


def test_regimes_on_the_amzn_day(amzn_store: TickStore) -> None:
    ev = as_l2(amzn_store.read("XNAS", "AMZN", DAY))
    morning = ev[ev["local_ts"] < ev["local_ts"][0] + 3 * 3600 * 10**9]
    model = fit_regimes([morning], halflife_ns=HL,
                        inputs=("log_volatility", "spread", "log_trade_rate",
                                "log_message_rate", "abs_trade_flow"))
    pred, _ = model.predict(ev)
    ok = ~np.isnan(pred)
    assert ok.mean() > 0.95
    afternoon = ok & (ev["local_ts"] >= morning["local_ts"][-1])
    seen = set(np.unique(pred[afternoon]).astype(int))
    assert len(seen) >= 2, seen
    # the names mean what they say: the volatile regime's volatility is the highest
    x = model_inputs(ev, halflife_ns=HL)[:, 0]
    vol = {REGIME_NAMES[r]: float(np.nanmean(x[pred == r])) for r in range(3) if (pred == r).any()}
    assert vol["volatile"] == max(vol.values()), vol
    # a backtest from the store gives a strategy the same regimes
    instruments, streams = store_streams(amzn_store, [("XNAS", "AMZN")], [DAY])
    s = Reader()
    Backtest(instruments=instruments, streams=streams, strategies=[s], sample_ns=0,
             feature_model=model.feature_model()).run()
    got = np.array([r for r in s.regimes if not math.isnan(r)])
    assert len(got) > 10_000
    assert set(np.unique(got).astype(int)) <= set(range(3))
    share = np.bincount(got.astype(int), minlength=3) / len(got)
    want = np.bincount(pred[ok].astype(int), minlength=3) / ok.sum()
    np.testing.assert_allclose(share, want, atol=0.05)
