"""Queue position under each L2 model, computed by hand.

We join a bid level of 10 lots at 9999, so 10 lots are ahead of us. The level then grows to
30 (20 lots behind us) and shrinks to 24: 6 lots are cancelled somewhere in the queue.

* risk-averse: nobody ahead cancels; front = min(10, 24) = 10
* power n=2:   the front takes 6 * 10^2 / (10^2 + 20^2) = 1.2 lots: front 8.8
* power n=3:   6 * 1000 / (1000 + 8000) = 0.667: front 9.333
* log:         6 * ln 11 / (ln 11 + ln 21) = 2.644: front 7.356

A 12-lot sell trade at 9999 then fills what it reaches beyond the front, in whole lots:
risk-averse 2, power-2 3 (3.2), power-3 2 (2.667), log 4 (4.644).
"""

from __future__ import annotations

import pytest

from framework.core.errors import ConfigError
from framework.engine.config import QueueConfig

from .conftest import BUY, SELL, T0, Scripted, Tape, buy, modify, run

T = T0 + 1_000


def joined_tape() -> Tape:
    tape = Tape()
    tape.book(T0, bids=[(9999, 10), (9998, 10)], asks=[(10001, 10)])
    return tape


@pytest.mark.parametrize(
    ("queue", "filled"),
    [
        (QueueConfig(model="risk_averse"), 2),
        (QueueConfig(model="power", n=2.0), 3),
        (QueueConfig(model="power", n=3.0), 2),
        (QueueConfig(model="log"), 4),
    ],
)
def test_cancels_move_us_up_as_each_queue_model_says(queue: QueueConfig, filled: int) -> None:
    tape = joined_tape()
    tape.level(T + 1_000, BUY, 9999, 30).level(T + 2_000, BUY, 9999, 24)
    tape.trade(T + 3_000, SELL, 9999, 12).tick(T + 10_000)
    s = Scripted([(T, "o", buy(9999, 5))])
    run(tape, s, queue=queue)
    assert s.fills_of("o") == [(9999, filled)]


@pytest.mark.parametrize("queue", ["risk_averse", "power", "log"])
def test_trades_at_our_price_advance_us_then_fill_us(queue: str) -> None:
    # 10 ahead; trades of 4 and 4 leave 2 ahead; a trade of 5 fills 3 of our 5
    tape = joined_tape()
    for k, q in enumerate((4, 4, 5)):
        tape.trade(T + 1_000 * (k + 1), SELL, 9999, q)
    tape.tick(T + 10_000)
    s = Scripted([(T, "o", buy(9999, 5))])
    run(tape, s, queue=queue)
    assert s.fills_of("o") == [(9999, 3)]


def test_risk_averse_moves_up_only_when_the_level_is_shorter_than_our_place() -> None:
    # 10 ahead; the level shrinks to 4: at most 4 can be ahead; a 6-lot trade fills 2
    tape = joined_tape()
    tape.level(T + 1_000, BUY, 9999, 4).trade(T + 2_000, SELL, 9999, 6).tick(T + 10_000)
    s = Scripted([(T, "o", buy(9999, 5))])
    run(tape, s, queue="risk_averse")
    assert s.fills_of("o") == [(9999, 2)]


@pytest.mark.parametrize("queue", ["risk_averse", "power", "log"])
def test_a_level_update_that_reports_a_trade_is_not_counted_as_a_cancel(queue: str) -> None:
    # 10 ahead; a 4-lot trade leaves 6 ahead; the feed then reports the level at 6: the same
    # 4 lots, not a cancel. A 7-lot trade fills exactly 1. (Counting the update as a cancel
    # would put the power model at 6 - 4 * 36/52 = 3.23 ahead and fill 3.)
    tape = joined_tape()
    tape.trade(T + 1_000, SELL, 9999, 4).level(T + 1_000, BUY, 9999, 6)
    tape.trade(T + 2_000, SELL, 9999, 7).tick(T + 10_000)
    s = Scripted([(T, "o", buy(9999, 5))])
    run(tape, s, queue=queue)
    assert s.fills_of("o") == [(9999, 1)]


@pytest.mark.parametrize("queue", ["risk_averse", "power", "log"])
def test_a_level_emptied_by_cancels_puts_us_at_the_front(queue: str) -> None:
    tape = joined_tape()
    tape.level(T + 1_000, BUY, 9999, 0).trade(T + 2_000, SELL, 9999, 3).tick(T + 10_000)
    s = Scripted([(T, "o", buy(9999, 5))])
    run(tape, s, queue=queue)
    assert s.fills_of("o") == [(9999, 3)]


def test_an_order_at_a_new_price_has_nobody_ahead() -> None:
    tape = joined_tape()
    tape.trade(T + 1_000, SELL, 10000, 3).tick(T + 10_000)
    s = Scripted([(T, "o", buy(10000, 5))])
    run(tape, s)
    assert s.fills_of("o") == [(10000, 3)]


def test_orders_that_arrive_later_queue_behind_what_rested_meanwhile() -> None:
    # the level grows from 10 to 15 before our order arrives (T + 100): 15 ahead
    tape = joined_tape()
    tape.level(T + 50, BUY, 9999, 15).trade(T + 1_000, SELL, 9999, 16).tick(T + 10_000)
    s = Scripted([(T, "o", buy(9999, 5))])
    run(tape, s)
    assert s.fills_of("o") == [(9999, 1)]


# --- modify and priority ------------------------------------------------------------------
# 10 ahead of our 5 lots at 9999; the level then grows to 20 (10 behind us); we modify at
# T + 2000 (reaching the venue at T + 2100); a 12-lot sell trade at 9999 prints at T + 5000.


def modify_tape() -> Tape:
    tape = joined_tape()
    tape.level(T + 1_000, BUY, 9999, 20)
    tape.trade(T + 5_000, SELL, 9999, 12).tick(T + 10_000)
    return tape


def test_size_decrease_keeps_queue_priority() -> None:
    s = Scripted([(T, "o", buy(9999, 5)), (T + 2_000, "m", modify("o", 9999, 3))])
    res = run(modify_tape(), s)
    assert s.ids["m"] == 0
    assert s.kinds("o") == ["ack", "modified"]
    assert s.fills_of("o") == [(9999, 2)]  # still 10 ahead: 12 - 10
    # 1 of 3 lots still open at the end: the order log lists it as it stands
    (row,) = res.orders.to_dicts()
    assert (row["status"], row["qty"], row["filled_qty"]) == ("partially_filled", 3.0, 2.0)


def test_size_increase_loses_queue_priority() -> None:
    s = Scripted([(T, "o", buy(9999, 5)), (T + 2_000, "m", modify("o", 9999, 6))])
    run(modify_tape(), s)
    assert s.kinds("o") == ["ack", "modified"]
    assert s.fills_of("o") == []  # now behind all 20: the trade leaves 8 ahead


def test_price_change_loses_queue_priority_and_joins_the_new_level() -> None:
    # moved to 9998 (10 lots there): 10 ahead; the trade at 9999 does not reach 9998, a
    # 13-lot sell trade at 9998 fills 3
    tape = modify_tape().trade(T + 6_000, SELL, 9998, 13)
    s = Scripted([(T, "o", buy(9999, 5)), (T + 2_000, "m", modify("o", 9998, 5))])
    run(tape, s)
    assert s.fills_of("o") == [(9998, 3)]


def test_modify_shows_the_new_size_and_price_once_acknowledged() -> None:
    s = Scripted(
        [
            (T, "o", buy(9999, 5)),
            (T + 2_000, "m", modify("o", 9998, 4)),
            (T + 2_300, "after", lambda ctx, ids: ctx.order(ids["o"])),
        ]
    )
    run(modify_tape(), s)
    assert s.ids["after"] == {"status": "new", "price": 9998, "qty": 4, "filled": 0}


def test_fifo_queue_model_refuses_level_data() -> None:
    with pytest.raises(ConfigError, match=r"fifo.*\(L3\)"):
        run(joined_tape(), Scripted(), queue="fifo")
