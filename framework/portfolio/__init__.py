"""Portfolio accounting (compiled): positions, cash, fees, equity per strategy and instrument."""
