"""The venue's pacing: the packets due in one go are exactly those each one's own due time
says are due (the batch path sends them with one call)."""

from __future__ import annotations

import numpy as np

from live.venue.server import _Pacer


def test_due_counts_the_packets_whose_wait_is_over() -> None:
    ts0 = 1_700_000_000_000_000_000
    ts = ts0 + np.cumsum(np.random.default_rng(1).integers(0, 3_000_000, 500)).astype(np.int64)
    for speed in (1.0, 50.0, 1e4):
        pacer = _Pacer(speed, ts0)
        for k in range(0, 500, 37):
            due = pacer.due(ts[k:])
            assert all(pacer.wait_s(int(t)) <= 0 for t in ts[k : k + due])
            # the first one not counted was not due just before the count (time only grows)
            if k + due < len(ts):
                assert pacer.wait_s(int(ts[k + due])) > -1e-3
    assert _Pacer(None, ts0).due(ts) == len(ts)  # --speed max: everything, now
