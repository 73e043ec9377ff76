"""The compiled replay engine and simulated venue."""
