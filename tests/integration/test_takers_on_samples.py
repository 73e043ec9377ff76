"""The imbalance taker and the trade-flow strategy on the real samples, through the CLI.

LOBSTER AMZN 2012-06-21 (a full day, level 1) and the Binance USD-M BTCUSDT capture of
2024-08-08 (about six minutes) are imported into a temporary store; each strategy is
backtested on each (with its default parameters, but for the imbalance taker's predicted
move on AMZN) and writes its tables and report. The checks
are the ones that hold on any data: every fill is a taker fill, the position never exceeds
``max_position`` (1 lot), and the timer closes every position within the holding time plus
the order's round trip (1 ms each way, the CLI's default latency).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framework.analysis.results import BacktestResult
from framework.cli import main

from .conftest import SAMPLES

pytestmark = pytest.mark.shared_data
STRATEGIES = {"imbalance_taker": ("ImbalanceTaker", 5_000), "trade_flow": ("TradeFlow", 10_000)}
ROUND_TRIP_NS = 2_000_000



@pytest.mark.parametrize("data", list(SAMPLES))
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_runs_on_the_sample_and_writes_a_report(
    samples_store: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    strategy: str,
    data: str,
) -> None:
    where, lot = SAMPLES[data]
    name, hold_ms = STRATEGIES[strategy]
    out = tmp_path / "out"
    args = ["backtest", strategy, *where, "--store", samples_store, "--out", str(out)]
    if (strategy, data) == ("imbalance_taker", "amzn"):
        # AMZN's spread is 13 ticks (median): a 2-tick predicted move never beats it
        args += ["--param", "move_per_imbalance=10"]
    assert main(args) == 0
    assert f"{name}: pnl" in capsys.readouterr().out
    assert (out / "report.html").is_file()
    fills = BacktestResult.read(out).fills
    assert fills.height > 10
    assert (fills["liquidity"] == "taker").all()
    pos = np.rint(fills["position"].to_numpy() / lot).astype(np.int64)
    assert np.abs(pos).max() == 1
    # the fills alternate: one opens a one-lot position, the next closes it
    ts = fills["ts"].to_numpy()
    assert (pos[1::2] == 0).all()
    held = ts[1::2] - ts[0::2][: len(ts) // 2]
    assert held.max() <= hold_ms * 1_000_000 + ROUND_TRIP_NS
