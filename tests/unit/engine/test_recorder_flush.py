"""Recorder buffers are flushed before they fill: nothing recorded is ever dropped."""

import datetime as dt

from framework.arena.state import Capacity
from framework.engine.backtest import Backtest
from framework.ingest.synthetic import generate_day
from framework.risk.limits import RiskLimits
from framework.strategy import Params, Strategy


class _DenyParams(Params):
    pass


class AlwaysDenied(Strategy):
    """Submits an order on every book change that its tiny notional limit denies."""

    Params = _DenyParams

    def on_book(self, ctx, inst):
        ctx.submit(inst, "buy", ctx.best_bid(inst), 1)


def test_denials_beyond_one_recorder_buffer_are_all_kept():
    day = generate_day(date=dt.date(2024, 1, 2), n_events=20_000, seed=5)
    strat = AlwaysDenied(risk=RiskLimits(max_notional=1e-9))
    bt = Backtest(
        instruments=[day.instrument], streams=[[day.events]], strategies=[strat], sample_ns=0,
        capacity=Capacity(n_inst=1, n_strat=1, record_rows=1024),
    )
    res = bt.run()
    calls = res.config["callbacks"]
    assert calls > 3 * 1024  # several buffers' worth of denials
    assert res.denials.height == calls
    assert set(res.denials["reason"].to_list()) == {"max_notional"}
