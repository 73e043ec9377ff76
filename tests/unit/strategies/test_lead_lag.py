"""Lead-lag on a generated pair whose answer is known: the follower repeats every push of
the leader 300 ms later, so the strategy must buy (sell) the follower right after each push
up (down), close once it has caught up, and never trade when nothing is pushed. The compiled
(fast) path must trade exactly as the Python one."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from framework.analysis.stats import round_trips
from framework.core.errors import ConfigError
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig
from framework.ingest.synthetic import SyntheticParams, market_hours_ns
from framework.ingest.synthetic_pair import PairParams, generate_pair
from strategies.lead_lag import S_ARMED, S_BASIS, S_BASIS_TS, S_ENTRY_TS, LeadLag

DATE = dt.date(2024, 3, 1)
T_OPEN = market_hours_ns(DATE)[0]
LAG_NS = 300_000_000
#: calm all session, latent mid diffusing 0.05 ticks/sqrt(s): only pushes move it by ticks
QUIET = SyntheticParams(mean_duration_s=(1e7, 180.0, 300.0), volatility=(0.05, 0.9, 0.3))
#: ten pushes of 6 ticks (6 bp at 100.00), alternating up and down, two minutes apart
PUSHES = tuple((60.0 + 120.0 * k, 6.0 if k % 2 == 0 else -6.0) for k in range(10))
PARAMS = {"leader": "SIM/LEAD", "lagger": "SIM/LAG", "entry_bps": 3.0, "exit_bps": 1.0}


def pair_backtest(pushes, *, basis_ticks=25.0, mode="auto", lagger_first=False, **params):
    """A backtest of LeadLag on the generated pair, and the strategy."""
    lead, lag = generate_pair(
        date=DATE, n_events=60_000, seed=3, session_s=1300, params=QUIET,
        pair=PairParams(lag_ms=LAG_NS / 1e6, basis_ticks=basis_ticks, pushes=pushes),
    )  # fmt: skip
    pair = [lag, lead] if lagger_first else [lead, lag]
    strategy = LeadLag({**PARAMS, **params})
    bt = Backtest(
        instruments=[d.instrument for d in pair],
        streams=[[d.events] for d in pair],
        strategies=[strategy],
        latency=LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        mode=mode,
    )
    return bt, strategy


def run_pair(pushes, **kw):
    return pair_backtest(pushes, **kw)[0].run()


@pytest.fixture(scope="module")
def pushed():
    return run_pair(PUSHES)


def test_enters_the_lagger_in_the_push_direction_before_it_catches_up(pushed):
    fills = pushed.fills.sort("ts")
    assert set(fills["instrument"]) == {"SIM/LAG"}  # the leader is only watched
    entries = fills.filter(pl.col("position") != 0)
    assert entries.height == len(PUSHES)  # one trade per push, none otherwise
    for (at_s, ticks), (ts, side) in zip(
        PUSHES, entries.select("ts", "side").iter_rows(), strict=True
    ):
        push_ns = T_OPEN + int(at_s * 1e9)
        assert side == np.sign(ticks)
        assert push_ns < ts < push_ns + LAG_NS  # filled while the lagger was still stale


def test_closes_each_trade_after_the_catch_up_at_a_profit(pushed):
    fills = pushed.fills.sort("ts")
    exits = fills.filter(pl.col("position") == 0)
    assert exits.height == len(PUSHES)
    for (at_s, _), ts in zip(PUSHES, exits["ts"], strict=True):
        push_ns = T_OPEN + int(at_s * 1e9)
        assert push_ns + LAG_NS <= ts < push_ns + LAG_NS + 1_000_000_000
    trips = round_trips(fills)
    # bought at the stale ask, sold at the repriced bid: ~6 ticks move less a 1-tick spread
    assert len(trips) == len(PUSHES)
    assert (trips >= 0.03).all()
    assert pushed.equity.filter(pl.col("strategy") == "LeadLag")["equity"][-1] > 0.3
    assert pushed.denials.height == 0


def test_stays_flat_when_the_leader_is_not_pushed():
    quiet = run_pair(())
    assert quiet.orders.height == 0
    assert quiet.fills.height == 0


def test_a_threshold_above_the_push_size_never_trades():
    assert run_pair(PUSHES, entry_bps=9.0, exit_bps=1.0).orders.height == 0


@pytest.mark.parametrize(
    "case",
    [
        {},
        {"lagger_first": True},  # p.leader/p.lagger are not simply 0 and 1
        {"max_hold_ms": 100.0},  # closed on the timer, before the lagger catches up
    ],
    ids=["pushes", "lagger_first", "timer_exit"],
)
def test_compiled_path_trades_exactly_as_the_python_path(case):
    results, strategies = {}, {}
    for mode in ("python", "compiled"):
        bt, strategies[mode] = pair_backtest(PUSHES, mode=mode, **case)
        results[mode] = bt.run()
        assert results[mode].config["mode"] == mode
    py, co = results["python"], results["compiled"]
    assert py.fills.height >= 2 * len(PUSHES)
    for table in ("orders", "fills", "equity", "positions", "denials"):
        assert getattr(co, table).equals(getattr(py, table)), table
    # the compiled callbacks' final state: the same basis to the last bit, same words
    state, ref = strategies["compiled"].compiled_state, strategies["python"]
    assert strategies["python"].compiled_state is None
    assert state[S_BASIS] == np.float64(ref.basis).view(np.int64)
    assert state[S_BASIS_TS] == ref.basis_ts
    assert state[S_ARMED] == ref.armed
    assert state[S_ENTRY_TS] == ref.entry_ts


def test_compiled_params_are_the_instrument_indices():
    s = LeadLag(PARAMS)
    assert s.compiled_params(["SIM/LAG", "X/Y", "SIM/LEAD"]) == {"leader": 2, "lagger": 0}
    with pytest.raises(ConfigError, match="SIM/LEAD"):
        s.compiled_params(["SIM/LAG", "X/Y"])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"leader": "SIM/X", "lagger": "SIM/X"}, "name two instruments"),
        ({"leader": "LEAD"}, "allowed text like VENUE/SYMBOL"),
        ({"entry_bps": 1.0, "exit_bps": 1.0}, "exit_bps < entry_bps"),
        ({"order_qty": 0}, "order_qty=0 is out of range: allowed >= 1"),
        ({"entry_bp": 1.0}, "did you mean 'entry_bps'"),
        ({"max_hold_ms": "soon"}, "not a valid float"),
    ],
)
def test_bad_parameters_fail_with_a_clear_error(params, match):
    with pytest.raises(ConfigError, match=match):
        LeadLag(params)


def test_default_risk_caps_the_position_at_one_clip():
    s = LeadLag({"order_qty": 7})
    assert s.risk_limits.max_position == 7
    assert s.instruments == ["BINANCE_USDM/BTCUSDT", "BINANCE/BTCUSDT"]


def test_an_instrument_missing_from_the_run_is_named():
    lead, _ = generate_pair(date=DATE, n_events=5_000, seed=1)
    for mode in ("python", "compiled"):
        with pytest.raises(ConfigError, match="SIM/LAG"):  # when the run is set up
            Backtest(
                instruments=[lead.instrument],
                streams=[[lead.events]],
                strategies=[LeadLag(PARAMS)],
                mode=mode,
            )
