"""Lead-lag on the real samples, end to end through the command line.

* Binance BTCUSDT, 2024-08-08 (about six minutes): USD-M futures lead spot -- two venues of
  one symbol, both imported from the raw websocket captures.
* LOBSTER AMZN, 2012-06-21: one instrument only, so the lagger is a generated follower of
  its book (``hftlab data generate --follow``), 300 ms late: the strategy must earn there.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from framework.analysis.results import BacktestResult
from framework.analysis.stats import summarize
from framework.cli import main

pytestmark = pytest.mark.shared_data
RAW = "crypto_hftbacktest_binance_raw_feed"
AMZN = "lobster_AMZN_2012-06-21_L1_fullday/AMZN_2012-06-21_34200000_57600000_message_1.csv"


@pytest.fixture(scope="module")
def store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("store"))
    for market in ("spot", "usdm"):
        path = shared_data / RAW / f"binance_{market}_btcusdt_20240808.gz"
        assert main(["data", "import", "binance", str(path), "--store", root]) == 0
    assert main(["data", "import", "lobster", str(shared_data / AMZN), "--store", root]) == 0
    return root


def test_binance_futures_lead_spot(store: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "binance"
    args = [
        "backtest", "lead_lag", "--from", "2024-08-08", "--store", store, "--out", str(out),
        "--param", "leader=BINANCE_USDM/BTCUSDT", "--param", "lagger=BINANCE/BTCUSDT",
        "--param", "order_qty=1000",  # lots of 0.000001 BTC: 0.001 BTC a trade
    ]  # fmt: skip
    assert main(args) == 0
    assert "LeadLag: pnl" in capsys.readouterr().out
    assert (out / "report.html").is_file()
    res = BacktestResult.read(out)
    assert set(res.config["clock_offsets_ns"]) == {"BINANCE_USDM/BTCUSDT", "BINANCE/BTCUSDT"}
    fills = res.fills
    assert fills.height > 10
    assert set(fills["instrument"]) == {"BINANCE/BTCUSDT"}  # futures are only watched
    assert fills["position"].abs().max() <= 0.001 + 1e-12  # one clip, as the risk default
    assert (fills["liquidity"] == "taker").all()


def test_amzn_with_a_generated_follower_earns_the_lag(store: str, tmp_path: Path) -> None:
    gen = [
        "data", "generate", "--follow", "XNAS/AMZN/2012-06-21", "--venue", "SIM",
        "--follower", "AMZN_LAG", "--lag-ms", "300", "--events", "200000", "--store", store,
    ]  # fmt: skip
    assert main(gen) == 0
    out = tmp_path / "amzn"
    args = [
        "backtest", "lead_lag", "--from", "2012-06-21", "--store", store, "--out", str(out),
        "--param", "leader=XNAS/AMZN", "--param", "lagger=SIM/AMZN_LAG",
    ]  # fmt: skip
    assert main(args) == 0
    assert (out / "report.html").is_file()
    res = BacktestResult.read(out)
    assert set(res.fills["instrument"]) == {"SIM/AMZN_LAG"}
    # the follower repeats AMZN's moves 300 ms late: entering before it reprices pays
    final = res.equity.filter(pl.col("strategy") == "LeadLag")["equity"][-1]
    assert final > 0
    assert summarize(res, strategy="LeadLag")["hit_ratio"] > 0.5
