"""L3 -> L2 projection carries each changed order's queue-priority time (FLAG_QUEUE_TS)."""

from __future__ import annotations

import numpy as np

from framework.book.project import L3ToL2
from framework.core.events import (
    BUY,
    FLAG_LAST,
    FLAG_QUEUE_TS,
    KIND_ADD,
    KIND_CANCEL,
    KIND_EXECUTE,
    KIND_LEVEL,
    KIND_MODIFY,
    KIND_TRADE,
    make_events,
)


def events(rows: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """(exch_ts, kind, price, qty, order_id) rows on the bid side, one message each."""
    ts, kind, price, qty, oid = (list(c) for c in zip(*rows, strict=True))
    return make_events(
        exch_ts=np.array(ts, np.int64),
        local_ts=np.array(ts, np.int64),
        kind=np.array(kind, np.uint8),
        side=np.full(len(ts), BUY, np.int8),
        price=np.array(price, np.int64),
        qty=np.array(qty, np.int64),
        order_id=np.array(oid, np.uint64),
        flags=np.full(len(ts), FLAG_LAST, np.uint32),
    )


def test_priority_times_follow_adds_executions_and_modifies() -> None:
    out = L3ToL2()(
        events(
            [
                (10, KIND_ADD, 100, 5, 1),  # A joins at 10
                (20, KIND_ADD, 100, 3, 2),  # B joins at 20
                (30, KIND_CANCEL, 100, 2, 1),  # A partly cancelled: keeps 10
                (40, KIND_EXECUTE, 100, 1, 2),  # B executed: trade + level, both 20
                (50, KIND_MODIFY, 100, 9, 1),  # A grows: leaves at 10, re-joins at 50
                (60, KIND_MODIFY, 100, 1, 1),  # A shrinks: keeps 50
            ]
        )
    )
    assert (out["flags"] & FLAG_QUEUE_TS).all()
    got = [(int(e["kind"]), int(e["qty"]), int(e["order_id"])) for e in out]
    assert got == [
        (KIND_LEVEL, 5, 10),
        (KIND_LEVEL, 8, 20),
        (KIND_LEVEL, 6, 10),
        (KIND_TRADE, 1, 20),
        (KIND_LEVEL, 5, 20),
        (KIND_LEVEL, 2, 10),  # the level without A (B's 2 lots): A left its place
        (KIND_LEVEL, 11, 50),  # A back at the end with 9
        (KIND_LEVEL, 3, 50),
    ]
    # only the last row of a message keeps FLAG_LAST
    assert [bool(f & FLAG_LAST) for f in out["flags"]] == [1, 1, 1, 0, 1, 0, 1, 1]
