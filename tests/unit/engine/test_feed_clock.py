"""A local clock behind the exchange's is shifted so no event is seen before its exchange time."""

import numpy as np

from framework.core.events import make_events
from framework.engine.feed import MergedFeed


def test_local_clock_behind_the_exchange_is_shifted_forward_monotonically():
    b1 = make_events(exch_ts=[100, 200, 300], local_ts=[50, 150, 260])  # up to 50 behind
    b2 = make_events(exch_ts=[400, 500], local_ts=[320, 480])  # 80 behind at 400
    feed = MergedFeed([[b1, b2]])
    out = []
    final = False
    while not final:
        chunk, final = feed.next_chunk()
        out.append(chunk)
    ev = np.concatenate(out)
    assert ev["local_ts"].tolist() == [100, 200, 310, 400, 560]
    assert (ev["local_ts"] >= ev["exch_ts"]).all()
    assert (np.diff(ev["local_ts"]) >= 0).all()
    assert feed.clock_offsets == [80]


def test_sane_clocks_are_left_alone_and_the_fix_can_be_turned_off():
    b = make_events(exch_ts=[100, 200], local_ts=[150, 260])
    feed = MergedFeed([[b]])
    chunk, _ = feed.next_chunk()
    assert chunk["local_ts"].tolist() == [150, 260]
    assert feed.clock_offsets == [0]
    skewed = make_events(exch_ts=[100], local_ts=[40])
    raw = MergedFeed([[skewed]], fix_clock=False)
    assert raw.next_chunk()[0]["local_ts"].tolist() == [40]
