"""Which Binance market a file comes from (spot or USD-M), its quote currency, clean symbols."""

from __future__ import annotations

import re

from framework.core.errors import ConfigError
from framework.ingest.base import ImportOptions


def market_is_usdm(opts: ImportOptions, hint: bool | None, name: str) -> bool:
    """True for USD-M futures."""
    market = opts.get("market")
    if market is not None:
        if market not in ("spot", "usdm"):
            msg = f"--market {market!r} is unknown; choose spot or usdm"
            raise ConfigError(msg)
        return bool(market == "usdm")
    if hint is not None:
        return hint
    low = name.lower()
    return "usdm" in low or "futures" in low


def quote_currency(symbol: str) -> str:
    """The quote currency a symbol ends with (``BTCUSDT`` -> ``USDT``); default USDT."""
    for ccy in ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "BTC", "ETH", "EUR"):
        if symbol.endswith(ccy):
            return ccy
    return "USDT"


def clean_symbol(sym: str) -> str:
    """``sym`` upper-cased without characters outside ``A-Za-z0-9._-``."""
    return re.sub(r"[^A-Za-z0-9._-]", "", sym).upper() or "UNKNOWN"
