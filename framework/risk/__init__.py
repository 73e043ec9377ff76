"""Pre-trade risk checks and the kill switch (compiled, shared by backtest and live)."""

from framework.risk.limits import RiskLimits

__all__ = ["RiskLimits"]
