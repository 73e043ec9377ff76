"""The two market makers on the real samples, through the CLI, with the parameters that
docs/strategies.md gives for each.

LOBSTER AMZN 2012-06-21 (a full day, level 1; spreads of ~13 ticks, mid variance ~6
ticks^2/s) and the Binance USD-M BTCUSDT capture of 2024-08-08 (about six minutes; one-tick
spreads, ~6,000 ticks^2/s, lots of 0.001 BTC, touch sizes in the thousands of lots) are
imported into a temporary store. Each run must write its tables and report, and hold what
holds on any data: every fill is a maker fill (the quotes are post-only) and the position
never exceeds ``max_position`` (5 lots, the default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framework.analysis.results import BacktestResult
from framework.cli import main
from framework.store import TickStore

from .conftest import SAMPLES

pytestmark = pytest.mark.shared_data
PARAMS = {  # (strategy, data) -> --param values scaled to the instrument
    ("avellaneda_stoikov", "amzn"): ["gamma=0.01", "k=0.12", "horizon_s=30"],
    ("avellaneda_stoikov", "binance"): ["gamma=0.0001", "k=2", "horizon_s=1"],
    ("queue_aware_mm", "amzn"): [],
    ("queue_aware_mm", "binance"): ["max_queue_ahead=10000"],
}
NAMES = {"avellaneda_stoikov": "AvellanedaStoikov", "queue_aware_mm": "QueueAwareMM"}



@pytest.mark.parametrize("data", list(SAMPLES))
@pytest.mark.parametrize("strategy", list(NAMES))
def test_runs_on_the_sample_and_writes_a_report(
    samples_store: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    strategy: str,
    data: str,
) -> None:
    where, lot = SAMPLES[data]
    params = [x for kv in PARAMS[strategy, data] for x in ("--param", kv)]
    out = tmp_path / "out"
    argv = ["backtest", strategy, *where, *params, "--store", samples_store, "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"{NAMES[strategy]}: pnl" in text
    assert (out / "report.html").is_file()
    result = BacktestResult.read(out)
    # the summary counts the stored events and, for order-by-order data (LOBSTER; the
    # Binance capture is price levels), the book updates they became
    venue, symbol, day = where[1], where[3], where[5]
    stored = sum(TickStore(samples_store).kind_counts(venue, symbol, day).values())
    updates = result.config["book_updates"]
    assert result.config["stored_events"] == stored
    if data == "amzn":
        assert updates > stored
        words = f"{stored:,} stored events ({updates:,} book updates after the L3->L2 projection)"
    else:
        assert updates == stored
        words = f"{stored:,} stored events"
    assert text.startswith(f"backtest: {words} replayed in ")
    fills = result.fills
    assert fills.height > 50
    assert (fills["liquidity"] == "maker").all()
    readable = fills.select("ts", "side", "price", "qty", "fee", "position")
    assert readable.null_count().sum_horizontal()[0] == 0
    pos = np.rint(fills["position"].to_numpy() / lot).astype(np.int64)
    assert np.abs(pos).max() <= 5
    sampled = np.rint(result.positions["position"].to_numpy() / lot)
    assert np.abs(sampled).max() <= 5
