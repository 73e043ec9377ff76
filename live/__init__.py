"""hftlab live trading: feed handlers, gateways, venue simulator, runner."""
