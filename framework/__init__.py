"""hftlab framework: everything backtest and live share."""

__version__ = "0.1.0"
