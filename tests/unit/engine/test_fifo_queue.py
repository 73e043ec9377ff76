"""Exact FIFO queue position on order-by-order (L3) data, computed by hand.

The bid at 9999 holds three orders when we join: A (4 lots, id 1), B (3, id 2), C (5, id 3),
so 12 lots are ahead of our 5-lot buy. After we join, D (6 lots, id 4) queues behind us.
The venue time our order joins is ``T + 100`` (1 us entry latency is 100 ns here).

* A cancels 4: front 12 -> 8. D cancels 2 (behind us): front stays 8.
* B is executed for 3 (a sell aggressor): front 8 -> 5; no fill (B was ahead).
* C is executed for 5: front 0; no fill.
* D (behind us) is executed for 4: we were ahead, so the aggressor would have hit us first:
  we fill 4 of our 5 lots.

Under a probabilistic model the same tape (projected to levels) gives other answers; the
FIFO answer depends only on who joined the queue before us.
"""

from __future__ import annotations

import numpy as np

from framework.core.events import (
    BUY,
    FLAG_LAST,
    KIND_ADD,
    KIND_CANCEL,
    KIND_EXECUTE,
    KIND_MODIFY,
    SELL,
    make_events,
)

from .conftest import T0, Scripted, buy, run

T = T0 + 1_000


def l3_tape(rows: list[tuple[int, int, int, int, int, int]]) -> np.ndarray:
    """(exch_ts, kind, side, price, qty, order_id) rows, one message each, seen 0 ns later."""
    ts, kind, side, price, qty, oid = (list(c) for c in zip(*rows, strict=True))
    return make_events(
        exch_ts=np.array(ts, np.int64),
        local_ts=np.array(ts, np.int64),
        kind=np.array(kind, np.uint8),
        side=np.array(side, np.int8),
        price=np.array(price, np.int64),
        qty=np.array(qty, np.int64),
        order_id=np.array(oid, np.uint64),
        flags=np.full(len(ts), FLAG_LAST, np.uint32),
    )


BOOK = [
    (T0, KIND_ADD, BUY, 9999, 4, 1),  # A
    (T0, KIND_ADD, BUY, 9999, 3, 2),  # B
    (T0, KIND_ADD, BUY, 9999, 5, 3),  # C
    (T0, KIND_ADD, SELL, 10001, 10, 9),
]


def tape(*rows: tuple[int, int, int, int, int, int]) -> np.ndarray:
    return l3_tape([*BOOK, (T + 500, KIND_ADD, BUY, 9999, 6, 4), *rows])  # D behind us


def fills(ev: np.ndarray, queue: str = "fifo") -> list[tuple[int, int]]:
    s = Scripted([(T, "o", buy(9999, 5))])
    run(ev, s, queue=queue)
    return s.fills_of("o")


def test_orders_ahead_move_us_up_and_an_execution_behind_us_fills_us() -> None:
    ev = tape(
        (T + 1_000, KIND_CANCEL, BUY, 9999, 4, 1),  # A, ahead: front 12 -> 8
        (T + 2_000, KIND_CANCEL, BUY, 9999, 2, 4),  # D, behind: front stays 8
        (T + 3_000, KIND_EXECUTE, BUY, 9999, 3, 2),  # B, ahead: front 5, no fill
        (T + 4_000, KIND_EXECUTE, BUY, 9999, 5, 3),  # C, ahead: front 0, no fill
        (T + 5_000, KIND_EXECUTE, BUY, 9999, 4, 4),  # D, behind us: it would have hit us
    )
    assert fills(ev) == [(9999, 4)]


def test_no_fill_while_orders_ahead_of_us_trade() -> None:
    ev = tape(
        (T + 3_000, KIND_EXECUTE, BUY, 9999, 3, 2),  # B, ahead
        (T + 4_000, KIND_EXECUTE, BUY, 9999, 4, 1),  # A, ahead
    )
    assert fills(ev) == []


def test_cancels_behind_us_do_not_move_us_up() -> None:
    # D cancels 6 (behind), then C trades 5: under FIFO 7 lots (A, B) are still ahead of us
    # and an execution of C (ahead) cannot reach us; a power model would have credited part
    # of D's cancel to the front and filled us on the next trade.
    ev = tape(
        (T + 1_000, KIND_CANCEL, BUY, 9999, 6, 4),
        (T + 2_000, KIND_EXECUTE, BUY, 9999, 5, 3),
    )
    assert fills(ev) == []


def test_order_that_loses_priority_goes_behind_us() -> None:
    # A raises its size 4 -> 8 after we joined: it loses its place and queues behind us,
    # so 8 lots (B, C) are ahead; an execution of A is then behind us and fills us.
    ev = tape(
        (T + 1_000, KIND_MODIFY, BUY, 9999, 8, 1),
        (T + 2_000, KIND_EXECUTE, BUY, 9999, 3, 1),
    )
    assert fills(ev) == [(9999, 3)]


def test_size_decrease_ahead_of_us_keeps_its_place_and_moves_us_up() -> None:
    ev = tape(
        (T + 1_000, KIND_MODIFY, BUY, 9999, 1, 1),  # A 4 -> 1, still ahead: front 9
        (T + 2_000, KIND_EXECUTE, BUY, 9999, 1, 1),  # A done: front 8
        (T + 3_000, KIND_EXECUTE, BUY, 9999, 3, 2),  # B: front 5
        (T + 4_000, KIND_EXECUTE, BUY, 9999, 5, 3),  # C: front 0
        (T + 5_000, KIND_EXECUTE, BUY, 9999, 6, 4),  # D behind: fills our 5
    )
    assert fills(ev) == [(9999, 5)]
