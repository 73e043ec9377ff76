"""The simulated venue: replay, feed, order sessions and matching."""
