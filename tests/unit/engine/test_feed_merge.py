"""The compiled merge of per-instrument streams: order, ties, chunk caps, reused buffers."""

from __future__ import annotations

import numpy as np
import pytest

from framework.core.errors import ConfigError
from framework.core.events import make_events
from framework.engine.feed import MergedFeed


def drain(feed: MergedFeed) -> np.ndarray:
    out = []
    final = False
    while not final:
        chunk, final = feed.next_chunk()
        out.append(chunk)
    return np.concatenate(out)


def ev(local: list[int], price0: int = 0) -> np.ndarray:
    return make_events(
        exch_ts=local, local_ts=local, price=[price0 + k for k in range(len(local))]
    )


def test_streams_merge_by_local_time_with_ties_in_instrument_order() -> None:
    a = [ev([1, 3, 3, 7], 100), ev([9, 12], 104)]
    b = [ev([2, 3, 8], 200), ev([12, 13], 203)]
    c = [ev([0, 20], 300)]
    got = drain(MergedFeed([a, b, c]))
    assert got["local_ts"].tolist() == [0, 1, 2, 3, 3, 3, 7, 8, 9, 12, 12, 13, 20]
    # at t=3 instrument 0's two rows (in their order) come before instrument 1's
    assert got["instrument"].tolist() == [2, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 2]
    prices = [300, 100, 200, 101, 102, 201, 103, 202, 104, 105, 203, 204, 301]
    assert got["price"].tolist() == prices


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_a_chunk_cap_changes_the_pieces_not_the_rows(chunk: int) -> None:
    def streams() -> list[list[np.ndarray]]:
        return [[ev([1, 3, 5, 7], 100)], [ev([2, 3, 6], 200), ev([9], 203)]]

    whole = drain(MergedFeed(streams()))
    feed = MergedFeed(streams(), chunk=chunk)
    pieces = []
    final = False
    while not final:
        part, final = feed.next_chunk()
        assert len(part) <= chunk
        pieces.append(part)
    assert np.array_equal(np.concatenate(pieces), whole)


def test_a_stream_that_reuses_one_buffer_and_the_inputs_are_left_untouched() -> None:
    # the store's iter_batches(reuse=True) hands out the same memory again: the merge must
    # finish with a batch before it asks for the next one
    src = [ev([1, 4, 6], 10), ev([8, 9, 15], 20), ev([16], 30)]
    keep = [b.copy() for b in src]

    def reused():
        buf = np.empty(3, dtype=src[0].dtype)
        for b in src:
            buf[: len(b)] = b
            yield buf[: len(b)]

    got = drain(MergedFeed([reused(), [ev([5, 10], 90)]]))
    assert got["price"].tolist() == [10, 11, 90, 12, 20, 21, 91, 22, 30]
    for b, k in zip(src, keep, strict=True):
        assert np.array_equal(b, k)  # instrument numbers and clock shifts went to the copy


def test_a_batch_of_another_dtype_is_refused_with_a_clear_error() -> None:
    bad = np.zeros(3, dtype=[("ts", "i8")])
    with pytest.raises(ConfigError, match="EVENT_DTYPE"):
        MergedFeed([[bad]]).next_chunk()
