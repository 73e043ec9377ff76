"""Several strategies in one run: results attributed per strategy, each strategy exactly as
it is alone, and one strategy's limit breaches denied without touching the others.

Data: four generated instruments of one day -- SIM/SYN (a market maker's), SIM/LEAD and
SIM/LAG (a lead-lag pair whose follower repeats the leader's pushes 300 ms later) and SIM/W
(a spare instrument for a misbehaving strategy).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from framework.analysis.results import TOTAL, BacktestResult
from framework.cli import main
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig
from framework.ingest.synthetic import generate_day
from framework.ingest.synthetic_pair import PairParams, generate_pair
from framework.risk.limits import RiskLimits
from framework.store import TickStore
from framework.strategy import Strategy
from strategies.lead_lag import LeadLag
from strategies.one_tick_mm import OneTickMM

DATE = dt.date(2024, 3, 1)
N = 60_000
PUSHES = tuple((600.0 * k, 6.0 if k % 2 else -6.0) for k in range(1, 30))
LL = {"leader": "SIM/LEAD", "lagger": "SIM/LAG", "entry_bps": 3.0, "exit_bps": 1.0}
TABLES = ("orders", "fills", "denials", "positions", "equity")


@pytest.fixture(scope="module")
def days():
    lead, lag = generate_pair(
        date=DATE, n_events=N, seed=3, pair=PairParams(lag_ms=300, pushes=PUSHES)
    )
    syn = generate_day(date=DATE, n_events=N, seed=11, symbol="SYN")
    w = generate_day(date=DATE, n_events=N, seed=12, symbol="W")
    return {d.instrument.key: d for d in (syn, lead, lag, w)}


def run(days, strategies: list[Strategy], keys=None) -> BacktestResult:
    keys = keys or list(days)
    return Backtest(
        instruments=[days[k].instrument for k in keys],
        streams=[[days[k].events] for k in keys],
        strategies=strategies,
        latency=LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        mode="python",
    ).run()


def mm() -> OneTickMM:
    return OneTickMM(name="mm", instruments=["SIM/SYN"])


def ll() -> LeadLag:
    return LeadLag(LL, name="ll")


def rows(result: BacktestResult, table: str, strategy: str) -> pl.DataFrame:
    """One strategy's rows; order ids (numbered across the run, so they depend on what the
    other strategies sent) become the order's rank among this strategy's orders."""
    df = getattr(result, table).filter(pl.col("strategy") == strategy)
    if "order_id" not in df.columns:
        return df
    ids = result.orders.filter(pl.col("strategy") == strategy)["order_id"]
    rank = pl.DataFrame({"order_id": ids.sort(), "order_rank": range(len(ids))})
    return df.join(rank, on="order_id", how="left", maintain_order="left").drop("order_id")


@pytest.fixture(scope="module")
def alone(days):
    """Each well-behaved strategy alone, on the same data."""
    return {"mm": run(days, [mm()]), "ll": run(days, [ll()])}


def assert_as_alone(result: BacktestResult, alone: dict[str, BacktestResult]) -> None:
    for name, solo in alone.items():
        assert rows(solo, "fills", name).height > 0  # the comparison is not vacuous
        for table in TABLES:
            assert rows(result, table, name).equals(rows(solo, table, name)), (name, table)


def test_strategies_on_different_instruments_get_exactly_their_solo_results(days, alone):
    both = run(days, [mm(), ll()])
    assert_as_alone(both, alone)
    assert set(both.fills["strategy"]) == {"mm", "ll"}
    assert set(rows(both, "fills", "ll")["instrument"]) == {"SIM/LAG"}
    assert set(rows(both, "fills", "mm")["instrument"]) == {"SIM/SYN"}
    # TOTAL equity is the sum of the two, sample by sample
    eq = both.equity.pivot(on="strategy", index="ts", values="equity")
    assert (eq[TOTAL] - eq["mm"] - eq["ll"]).abs().max() < 1e-9


def test_a_strategy_alone_on_its_own_instruments_makes_the_same_trades(days, alone):
    own = {
        "mm": run(days, [mm()], keys=["SIM/SYN"]),
        "ll": run(days, [ll()], keys=["SIM/LEAD", "SIM/LAG"]),
    }
    for name, result in own.items():
        for table in ("orders", "fills", "denials"):
            assert rows(result, table, name).equals(rows(alone[name], table, name))


#: (misbehaving strategy, its instrument, the denial reason it must get)
BREACHES = {
    # every order 500 lots against a 100-lot limit, on the market maker's own instrument
    "oversized": (
        lambda: OneTickMM({"order_qty": 500}, risk=RiskLimits(max_order_qty=100)),
        "SIM/SYN",
        "max_order_qty",
    ),
    # quotes up to 50 lots of inventory against a 2-lot position limit
    "position": (
        lambda: OneTickMM({"max_position": 50}, risk=RiskLimits(max_position=2)),
        "SIM/W",
        "max_position_instrument",
    ),
    # re-quotes on every touch change against one order a second
    "rate": (
        lambda: OneTickMM(risk=RiskLimits(max_orders_per_s=1, order_burst=2)),
        "SIM/W",
        "rate_limit",
    ),
}


@pytest.mark.parametrize("breach", list(BREACHES))
def test_a_strategy_breaching_its_limits_is_denied_and_leaves_the_others_alone(
    days, alone, breach
):
    make, inst, reason = BREACHES[breach]
    wild = make()
    wild.name, wild.instruments = "wild", [inst]
    result = run(days, [mm(), ll(), wild])
    assert_as_alone(result, alone)
    denied = rows(result, "denials", "wild")
    assert denied.height > 0
    assert set(denied["reason"]) == {reason}
    assert set(result.denials["strategy"]) == {"wild"}
    fills = rows(result, "fills", "wild")
    if breach == "oversized":
        assert rows(result, "orders", "wild").height == 0  # nothing reached the venue
    if breach == "position":
        assert fills["position"].abs().max() <= 2


@pytest.fixture
def store_with_days(store_root, days):
    store = TickStore(store_root)
    for d in days.values():
        store.write(d.instrument, d.date, d.events)
    return store_root


def test_cli_runs_three_strategies_and_prints_each_with_denials_and_the_total(
    store_with_days, tmp_path, capsys
):
    args = [
        "backtest", "mm=one_tick_mm", "ll=lead_lag", "wild=one_tick_mm",
        "--from", DATE.isoformat(), "--store", str(store_with_days),
        "--instrument", "SIM/SYN", "--instrument", "SIM/LEAD", "--instrument", "SIM/LAG",
        "--on", "mm=SIM/SYN", "--on", "wild=SIM/SYN",
        "--param", "ll.leader=SIM/LEAD", "--param", "ll.lagger=SIM/LAG",
        "--param", "ll.entry_bps=3", "--param", "ll.exit_bps=1",
        "--param", "wild.order_qty=500", "--risk", "wild.max_order_qty=100",
        "--mode", "python", "--no-report", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = {ln.split(":")[0].strip(): ln for ln in out.splitlines() if ln.startswith("  ")}
    assert {"mm", "ll", "wild", "TOTAL"} <= set(lines)
    assert "fills 0" in lines["wild"]
    assert "(max_order_qty " in lines["wild"]
    assert lines["mm"].endswith("denials 0")
    assert lines["ll"].endswith("denials 0")
    saved = BacktestResult.read(tmp_path / "out")
    assert set(saved.denials["strategy"]) == {"wild"}
    assert set(saved.fills["strategy"]) == {"mm", "ll"}
    assert saved.config["strategies"]["wild"]["params"]["order_qty"] == 500
    assert saved.config["risk_limits"]["wild"]["max_order_qty"] == 100
    assert saved.config["risk_limits"]["mm"]["max_order_qty"] is None
    assert saved.config["strategy_instruments"]["ll"] == ["SIM/LEAD", "SIM/LAG"]


def test_cli_lead_lag_finds_its_instruments_from_its_parameters(store_with_days, capsys):
    args = [
        "backtest", "lead_lag", "--from", DATE.isoformat(), "--store", str(store_with_days),
        "--param", "leader=SIM/LEAD", "--param", "lagger=SIM/LAG", "--no-report",
        "--out", str(store_with_days.parent / "ll"),
    ]  # fmt: skip
    assert main(args) == 0
    assert "LeadLag: pnl" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param", "max_position=3"], "scope it to one as STRATEGY.max_position"),
        (["--param", "mmm.max_position=3"], "did you mean 'mm'"),
        (["--risk", "mm.max_postion=3"], "did you mean 'max_position'"),
        (["--risk", "mm.max_position=lots"], "give a number"),
        (["--on", "mm=SYN"], "VENUE/SYMBOL"),
    ],
)
def test_cli_bad_multi_strategy_options_fail_with_one_clear_line(
    store_with_days, capsys, extra, message
):
    args = ["backtest", "mm=one_tick_mm", "ll=lead_lag", "--from", DATE.isoformat(),
            "--store", str(store_with_days), "--instrument", "SIM/SYN", *extra]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
