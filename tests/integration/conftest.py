"""Shared by the integration tests that backtest strategies on the real samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.cli import main

AMZN = "lobster_AMZN_2012-06-21_L1_fullday/AMZN_2012-06-21_34200000_57600000_message_1.csv"
USDM = "crypto_hftbacktest_binance_raw_feed/binance_usdm_btcusdt_20240808.gz"
#: CLI arguments naming each imported sample, and its lot size
SAMPLES = {
    "amzn": (["--venue", "XNAS", "--symbol", "AMZN", "--from", "2012-06-21"], 1.0),
    "binance": (["--venue", "BINANCE_USDM", "--symbol", "BTCUSDT", "--from", "2024-08-08"], 0.001),
}


@pytest.fixture(scope="module")
def samples_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store holding the AMZN LOBSTER day and the Binance USD-M capture."""
    root = str(tmp_path_factory.mktemp("store"))
    assert main(["data", "import", "lobster", str(shared_data / AMZN), "--store", root]) == 0
    assert main(["data", "import", "binance", str(shared_data / USDM), "--store", root]) == 0
    return root
