"""hftlab framework: everything backtest and live share."""
