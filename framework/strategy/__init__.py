"""One Strategy API for backtest, paper and live."""

from framework.strategy.base import CompiledCallbacks, Strategy
from framework.strategy.params import Params, param

__all__ = ["CompiledCallbacks", "Params", "Strategy", "param"]
