"""Order types at the simulated venue, against hand-computed fills.

The book in most tests (prices in ticks of 0.01, sizes in lots)::

    bids 9999 x 10, 9998 x 10      asks 10001 x 5, 10002 x 5, 10003 x 10

Orders are sent at local time ``T`` and reach the venue 100 ns later; responses take 100 ns.
"""

from __future__ import annotations

from framework.core.events import STATUS_HALTED, STATUS_OPEN

from .conftest import BUY, SELL, T0, Scripted, Tape, buy, cancel, market, run, sell

T = T0 + 1_000


def book_tape() -> Tape:
    tape = Tape()
    tape.book(T0, bids=[(9999, 10), (9998, 10)], asks=[(10001, 5), (10002, 5), (10003, 10)])
    return tape.tick(T0 + 100_000)


def one_order(action, tape: Tape | None = None, **kw):
    s = Scripted([(T, "o", action)])
    res = run(tape or book_tape(), s, **kw)
    return s, res


def test_limit_buy_through_the_book_walks_levels_as_taker() -> None:
    s, res = one_order(buy(10002, 8))
    assert s.fills_of("o") == [(10001, 5), (10002, 3)]
    assert s.kinds("o") == ["ack"]
    assert res.fills["liquidity"].to_list() == ["taker", "taker"]
    assert res.fills["price"].to_list() == [100.01, 100.02]
    assert res.fills["position"].to_list() == [5.0, 8.0]
    o = res.orders.row(0, named=True)
    assert (o["status"], o["filled_qty"]) == ("filled", 8.0)
    assert o["avg_price"] == (5 * 10001 + 3 * 10002) / 8 * 0.01
    # the venue acted at T + 100, the strategy heard of it at T + 200
    assert res.fills["exch_ts"].to_list() == [T + 100, T + 100]
    assert res.fills["ts"].to_list() == [T + 200, T + 200]


def test_sell_limit_through_the_book_walks_bids_down() -> None:
    s, res = one_order(sell(9998, 15))
    assert s.fills_of("o") == [(9999, 10), (9998, 5)]
    assert s.fills[-1][5] == -15
    assert res.orders["status"].to_list() == ["filled"]


def test_market_order_walks_the_book_and_expires_the_rest() -> None:
    tape = Tape().book(T0, bids=[(9999, 10)], asks=[(10001, 5), (10002, 5)]).tick(T0 + 100_000)
    s, res = one_order(market("buy", 15), tape)
    assert s.fills_of("o") == [(10001, 5), (10002, 5)]
    assert s.kinds("o") == ["ack", "expired"]
    o = res.orders.row(0, named=True)
    assert (o["order_type"], o["status"], o["filled_qty"], o["qty"]) == (
        "market",
        "expired",
        10.0,
        15.0,
    )
    assert s.fills[-1][5] == 10  # the partial fill reached the position exactly


def test_market_order_into_an_empty_side_is_rejected_for_no_liquidity() -> None:
    tape = Tape().book(T0, bids=[(9999, 10)]).tick(T0 + 100_000)
    s, res = one_order(market("buy", 1), tape)
    assert s.fills == []
    assert s.updates == [(T + 200, s.ids["o"], "rejected", "no_liquidity")]
    assert res.orders.row(0, named=True)["reason"] == "no_liquidity"


def test_ioc_fills_what_crosses_and_expires_the_rest() -> None:
    s, res = one_order(buy(10001, 8, tif="ioc"))
    assert s.fills_of("o") == [(10001, 5)]
    assert s.kinds("o") == ["ack", "expired"]
    o = res.orders.row(0, named=True)
    assert (o["tif"], o["status"], o["filled_qty"]) == ("ioc", "expired", 5.0)


def test_ioc_that_does_not_cross_expires_without_a_fill() -> None:
    s, res = one_order(buy(10000, 3, tif="ioc"))
    assert s.fills == []
    assert s.kinds("o") == ["ack", "expired"]
    assert res.orders["status"].to_list() == ["expired"]


def test_ioc_that_fills_completely_ends_filled() -> None:
    s, res = one_order(buy(10002, 10, tif="ioc"))
    assert s.fills_of("o") == [(10001, 5), (10002, 5)]
    assert res.orders["status"].to_list() == ["filled"]


def test_fok_that_cannot_fill_entirely_expires_with_nothing_filled() -> None:
    # 10 lots are available up to 10002, the order wants 11
    s, res = one_order(buy(10002, 11, tif="fok"))
    assert s.fills == []
    assert s.kinds("o") == ["ack", "expired"]
    o = res.orders.row(0, named=True)
    assert (o["tif"], o["status"], o["filled_qty"]) == ("fok", "expired", 0.0)


def test_fok_that_can_fill_entirely_fills_across_levels() -> None:
    s, res = one_order(buy(10002, 10, tif="fok"))
    assert s.fills_of("o") == [(10001, 5), (10002, 5)]
    assert res.orders["status"].to_list() == ["filled"]


def test_post_only_that_would_take_is_rejected_with_reason() -> None:
    s, res = one_order(buy(10001, 1, tif="post_only"))
    assert s.fills == []
    assert s.updates == [(T + 200, s.ids["o"], "rejected", "post_only_would_take")]
    o = res.orders.row(0, named=True)
    assert (o["status"], o["reason"]) == ("rejected", "post_only_would_take")


def test_post_only_that_rests_is_acked_and_fills_as_maker() -> None:
    tape = book_tape().trade(T + 5_000, SELL, 9999, 12)
    s, res = one_order(buy(9999, 3, tif="post_only"), tape, queue="risk_averse")
    # 10 lots ahead of us; the 12-lot sell trade takes them and 2 of ours
    assert s.kinds("o") == ["ack"]
    assert s.fills_of("o") == [(9999, 2)]
    assert res.fills["liquidity"].to_list() == ["maker"]


def test_resting_order_fills_when_a_trade_prints_through_its_price() -> None:
    # a sell trade at 9998 means everything at 9999 traded: our bid fills entirely at 9999
    tape = book_tape().trade(T + 5_000, SELL, 9998, 1)
    s, _ = one_order(buy(9999, 4), tape)
    assert s.fills_of("o") == [(9999, 4)]


def test_resting_order_fills_when_the_book_moves_through_it() -> None:
    # the ask drops to 9999: our bid at 9999 is reached and filled at its own price
    tape = book_tape()
    tape.book(T + 5_000, asks=[(9999, 7)])
    s, res = one_order(buy(9999, 4), tape)
    assert s.fills_of("o") == [(9999, 4)]
    assert res.fills["liquidity"].to_list() == ["maker"]
    assert res.fills["exch_ts"].to_list() == [T + 5_000]


def test_partial_fills_accumulate_exactly_in_position_and_order() -> None:
    # a bid inside the spread at 10000 (no one ahead): sell trades of 2, 2 and 3 at 10000
    tape = book_tape()
    for k, q in enumerate((2, 2, 3)):
        tape.trade(T + 5_000 * (k + 1), SELL, 10000, q)
    s, res = one_order(buy(10000, 5), tape)
    assert s.fills_of("o") == [(10000, 2), (10000, 2), (10000, 1)]
    assert [f[5] for f in s.fills] == [2, 4, 5]  # position seen in each on_fill
    assert res.fills["position"].to_list() == [2.0, 4.0, 5.0]
    o = res.orders.row(0, named=True)
    assert (o["status"], o["filled_qty"], o["avg_price"]) == ("filled", 5.0, 100.0)


def test_partially_filled_order_reports_partial_status_then_cancel_keeps_the_fill() -> None:
    tape = book_tape().trade(T + 5_000, SELL, 10000, 2)
    s = Scripted(
        [
            (T, "o", buy(10000, 5)),
            (T + 6_000, "status", lambda ctx, ids: ctx.order(ids["o"])),
            (T + 6_000, "c", cancel("o")),
        ]
    )
    res = run(tape, s)
    assert s.ids["status"] == {"status": "partially_filled", "price": 10000, "qty": 5, "filled": 2}
    assert s.kinds("o") == ["ack", "canceled"]
    o = res.orders.row(0, named=True)
    assert (o["status"], o["filled_qty"]) == ("canceled", 2.0)
    assert s.fills[-1][5] == 2


def test_cancel_of_a_resting_order_is_confirmed_after_the_round_trip() -> None:
    s = Scripted([(T, "o", buy(9990, 1)), (T + 2_000, "c", cancel("o"))])
    res = run(book_tape(), s, entry_ns=300, response_ns=700)
    assert s.ids["c"] is True
    assert s.updates == [
        (T + 1_000, s.ids["o"], "ack", ""),
        (T + 3_000, s.ids["o"], "canceled", ""),
    ]
    assert res.orders["status"].to_list() == ["canceled"]


def test_orders_on_a_halted_instrument_are_rejected_by_the_venue() -> None:
    tape = Tape().book(T0, bids=[(9999, 10)], asks=[(10001, 5)])
    tape.status(T0 + 500, STATUS_HALTED).status(T + 10_000, STATUS_OPEN).tick(T + 50_000)
    s = Scripted([(T, "halted", buy(9999, 1)), (T + 20_000, "open", buy(9999, 1))])
    res = run(tape, s)
    assert s.kinds("halted") == ["rejected"]
    assert s.updates[0][3] == "halted"
    assert s.kinds("open") == ["ack"]
    # the second order is still working at the end: listed as it stands, with no reason
    assert res.orders["reason"].to_list() == ["halted", ""]


def test_buy_and_sell_sides_are_symmetric_for_a_maker_fill() -> None:
    tape = book_tape().trade(T + 5_000, BUY, 10001, 7)
    s, res = one_order(sell(10001, 4), tape)
    # 5 lots ahead at 10001; the 7-lot buy trade leaves 2 for us
    assert s.fills_of("o") == [(10001, 2)]
    assert res.fills["position"].to_list() == [-2.0]


def test_remainder_of_a_crossing_limit_rests_and_is_not_filled_by_unrelated_updates() -> None:
    # buy 12 up to 10002: takes 5 @10001 and 5 @10002, the last 2 rest at 10002. Our orders
    # do not change the replayed book, so it still shows those asks; an unrelated bid-side
    # update must not fill the remainder against liquidity the order already took.
    tape = book_tape()
    tape.level(T + 5_000, BUY, 9998, 3)
    s, res = one_order(buy(10002, 12), tape)
    assert s.fills_of("o") == [(10001, 5), (10002, 5)]
    assert res.fills["liquidity"].to_list() == ["taker", "taker"]
    assert s.fills[-1][5] == 10


def test_remainder_of_a_crossing_limit_fills_when_new_liquidity_reaches_its_price() -> None:
    # as above, then 4 new lots are offered at 10002 (5 -> 9): they trade with our 2
    tape = book_tape()
    tape.level(T + 5_000, BUY, 9998, 3).level(T + 6_000, SELL, 10002, 9)
    s, res = one_order(buy(10002, 12), tape)
    assert s.fills_of("o") == [(10001, 5), (10002, 5), (10002, 2)]
    assert res.fills["liquidity"].to_list() == ["taker", "taker", "maker"]
    assert res.fills["exch_ts"].to_list()[-1] == T + 6_000
