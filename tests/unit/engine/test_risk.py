"""Pre-trade risk: every denial reason, modifies, the token bucket and the kill switch.

Book: bids 9999 x 10, asks 10001 x 10 (mid 10000 ticks = 100.00). Orders go out at T.
"""

from __future__ import annotations

from typing import Any

import pytest

from framework.arena.enums import (
    DENY_BAD_ORDER,
    DENY_HALTED,
    DENY_KILL_SWITCH,
    DENY_MAX_NOTIONAL,
    DENY_MAX_OPEN_ORDERS,
    DENY_MAX_ORDER_QTY,
    DENY_MAX_POSITION_INSTRUMENT,
    DENY_MAX_POSITION_STRATEGY,
    DENY_NAMES,
    DENY_NONE,
    DENY_PRICE_COLLAR,
    DENY_RATE_LIMIT,
    DENY_REDUCE_ONLY,
    DENY_SELF_TRADE,
    TS_HALTED,
    TS_REDUCING,
)
from framework.risk.limits import RiskLimits
from framework.strategy.context import Context

from .conftest import (
    BUY,
    SELL,
    T0,
    Scripted,
    Tape,
    buy,
    instrument,
    market,
    modify,
    run,
    sell,
    set_trading_state,
)

T = T0 + 1_000
SECOND = 1_000_000_000


def tape(end: int = T + 100_000) -> Tape:
    return Tape().book(T0, bids=[(9999, 10)], asks=[(10001, 10)]).tick(end)


def codes(*orders: tuple[str, int, int] | tuple[str, int, int, int]) -> Any:
    """One step submitting several orders; returns each one's id or -reason."""

    def act(ctx: Context, ids: dict[str, Any]) -> list[int]:
        out = []
        for o in orders:
            side, price, qty = o[0], o[1], o[2]
            inst = o[3] if len(o) > 3 else 0  # type: ignore[misc]
            if price == 0:
                out.append(ctx.submit_market(inst, side, qty))
            else:
                out.append(ctx.submit(inst, side, price, qty))
        return out

    return act


def denied(results: list[int]) -> list[str]:
    """'ok' for an accepted order, else the denial reason name."""
    return ["ok" if r > 0 else DENY_NAMES[-r] for r in results]


def run_codes(risk: RiskLimits, *orders: Any, **kw: Any) -> tuple[list[str], Any, Scripted]:
    s = Scripted([(T, "r", codes(*orders))], risk=risk)
    res = run(kw.pop("tape", None) or tape(), s, **kw)
    return denied(s.ids["r"]), res, s


def test_max_order_qty_denies_a_bigger_order_and_records_it() -> None:
    got, res, _ = run_codes(RiskLimits(max_order_qty=5), ("buy", 9990, 5), ("buy", 9990, 6))
    assert got == ["ok", "max_order_qty"]
    d = res.denials.row(0, named=True)
    assert (d["ts"], d["reason"], d["side"], d["price"], d["qty"]) == (
        T,
        "max_order_qty",
        1,
        99.9,
        6.0,
    )


def test_max_notional_uses_the_limit_price_or_the_book_for_market_orders() -> None:
    # 10 x 99.90 = 999.00 passes 1000; 11 x 99.90 = 1098.90 does not; a market buy of 10 is
    # valued at the ask: 10 x 100.01 = 1000.10
    got, _, _ = run_codes(
        RiskLimits(max_notional=1000.0), ("buy", 9990, 10), ("buy", 9990, 11), ("buy", 0, 10)
    )
    assert got == ["ok", "max_notional", "max_notional"]


def test_a_market_order_is_valued_at_the_deepest_level_it_would_take() -> None:
    # asks 100.01 x 3 and 100.03 x 10: a market buy of 5 reaches 100.03, 5 x 100.03 = 500.15;
    # one of 3 takes 100.01 only; a market sell of 5 is valued at the bid it hits, 99.99
    t = Tape().book(T0, bids=[(9999, 10)], asks=[(10001, 3), (10003, 10)]).tick(T + 100_000)
    got, _, _ = run_codes(
        RiskLimits(max_notional=500.0), ("buy", 0, 5), ("buy", 0, 3), ("sell", 0, 5), tape=t
    )
    assert got == ["max_notional", "ok", "ok"]


def test_a_market_order_bigger_than_the_book_side_has_no_bounded_notional() -> None:
    got, _, _ = run_codes(RiskLimits(max_notional=1e9), ("buy", 0, 11), ("buy", 0, 10))
    assert got == ["max_notional", "ok"]


def test_price_collar_around_the_mid() -> None:
    # mid 10000, collar 5 ticks: 9995..10005 pass
    got, _, _ = run_codes(
        RiskLimits(price_collar_ticks=5),
        ("buy", 9995, 1),
        ("buy", 9994, 1),
        ("sell", 10005, 1),
        ("sell", 10006, 1),
    )
    assert got == ["ok", "price_collar", "ok", "price_collar"]


def test_max_position_per_instrument_counts_open_orders_on_that_side() -> None:
    got, _, _ = run_codes(
        RiskLimits(max_position=5),
        ("buy", 9990, 3),
        ("buy", 9990, 2),
        ("buy", 9990, 1),
        ("sell", 10010, 5),
        ("sell", 10010, 1),
    )
    assert got == ["ok", "ok", "max_position_instrument", "ok", "max_position_instrument"]


def test_max_position_per_strategy_sums_instruments() -> None:
    a, b = instrument("A"), instrument("B")
    ev = tape().events()
    s = Scripted(
        [(T, "r", codes(("buy", 9990, 5, 0), ("buy", 9990, 4, 1), ("buy", 9990, 3, 1)))],
        risk=RiskLimits(max_strategy_position=8),
    )
    run(None, s, instruments=[a, b], streams=[[ev], [ev.copy()]])  # type: ignore[arg-type]
    assert denied(s.ids["r"]) == ["ok", "max_position_strategy", "ok"]


def test_max_open_orders() -> None:
    got, _, _ = run_codes(
        RiskLimits(max_open_orders=2), ("buy", 9990, 1), ("buy", 9991, 1), ("buy", 9992, 1)
    )
    assert got == ["ok", "ok", "max_open_orders"]


def test_order_rate_limit_is_a_token_bucket() -> None:
    # 2 orders/s, burst 2: two pass at T, the third is denied; half a second refills one
    s = Scripted(
        [
            (T, "a", codes(("buy", 9990, 1), ("buy", 9990, 1), ("buy", 9990, 1))),
            (T + SECOND // 2, "b", codes(("buy", 9990, 1), ("buy", 9990, 1))),
            (T + 2 * SECOND, "c", codes(("buy", 9990, 1), ("buy", 9990, 1), ("buy", 9990, 1))),
        ],
        risk=RiskLimits(max_orders_per_s=2, order_burst=2),
    )
    run(tape(T + 3 * SECOND), s)
    assert denied(s.ids["a"]) == ["ok", "ok", "rate_limit"]
    assert denied(s.ids["b"]) == ["ok", "rate_limit"]
    assert denied(s.ids["c"]) == ["ok", "ok", "rate_limit"]  # refilled to the burst, no more


def test_denied_orders_do_not_use_rate_tokens() -> None:
    got, _, _ = run_codes(
        RiskLimits(max_orders_per_s=1, order_burst=1, max_order_qty=1),
        ("buy", 9990, 2),
        ("buy", 9990, 1),
    )
    assert got == ["max_order_qty", "ok"]


def test_self_trade_prevention_against_our_own_resting_order() -> None:
    s = Scripted(
        [
            (T, "rest", sell(10001, 1)),
            (T + 1_000, "r", codes(("buy", 10001, 1), ("buy", 10002, 1), ("buy", 10000, 1))),
            (T + 1_000, "m", codes(("buy", 0, 1))),
        ]
    )
    run(tape(), s)
    assert denied(s.ids["r"]) == ["self_trade", "self_trade", "ok"]
    assert denied(s.ids["m"]) == ["self_trade"]


def test_self_trade_prevention_can_be_switched_off() -> None:
    s = Scripted(
        [(T, "rest", sell(10005, 1)), (T + 1_000, "r", codes(("buy", 10005, 1)))],
        risk=RiskLimits(self_trade_prevention=False),
    )
    run(tape(), s)
    assert denied(s.ids["r"]) == ["ok"]


def test_halted_trading_state_denies_every_order() -> None:
    s = Scripted(
        [
            (T, "state", set_trading_state(TS_HALTED)),
            (T, "r", codes(("buy", 9990, 1), ("sell", 10010, 1))),
        ]
    )
    res = run(tape(), s)
    assert denied(s.ids["r"]) == ["halted", "halted"]
    assert res.denials["reason"].to_list() == ["halted", "halted"]


def test_reducing_trading_state_allows_only_orders_that_shrink_the_position() -> None:
    # long 3 (market buy at T), then reducing: buys are denied, sells up to 3 lots pass
    s = Scripted(
        [
            (T, "long", market("buy", 3)),
            (T + 1_000, "state", set_trading_state(TS_REDUCING)),
            (
                T + 1_000,
                "r",
                codes(("buy", 9990, 1), ("sell", 10010, 2), ("sell", 10010, 2), ("sell", 10010, 1)),
            ),
        ]
    )
    run(tape(), s)
    assert s.fills[-1][5] == 3
    assert denied(s.ids["r"]) == ["reduce_only", "ok", "reduce_only", "ok"]


def test_bad_orders_are_denied_not_sent() -> None:
    got, res, s = run_codes(RiskLimits(), ("buy", 9990, 0), ("buy", 9990, -2), ("buy", 9990, 1))
    assert got == ["bad_order", "bad_order", "ok"]
    assert len(s.updates) == 1  # only the good order was sent (and acknowledged)
    assert res.denials["qty"].to_list() == [0.0, -2.0]


def test_an_order_for_an_unknown_instrument_is_denied_as_a_bad_order() -> None:
    got, res, _ = run_codes(RiskLimits(), ("buy", 9990, 1, 3))
    assert got == ["bad_order"]
    assert res.denials["instrument"].to_list() == ["?"]


# --- modifies pass the same limits ----------------------------------------------------------
@pytest.mark.parametrize(
    ("risk", "old_price", "new_price", "new_qty", "expect"),
    [
        # a modify applies the size limit to the new size, not to the lots added
        (RiskLimits(max_order_qty=5), 9990, 9990, 6, DENY_MAX_ORDER_QTY),
        (RiskLimits(max_order_qty=5), 9990, 9990, 5, DENY_NONE),
        # notional of the new size: 11 x 99.90 > 1000
        (RiskLimits(max_notional=1000.0), 9990, 9990, 11, DENY_MAX_NOTIONAL),
        # a modify is not another open order
        (RiskLimits(max_open_orders=1), 9995, 9991, 4, DENY_NONE),
        # re-pricing an order at the position limit adds no exposure; growing it does
        (RiskLimits(max_position=4), 9995, 9991, 4, DENY_NONE),
        (RiskLimits(max_position=4), 9990, 9990, 5, DENY_MAX_POSITION_INSTRUMENT),
        (RiskLimits(price_collar_ticks=5), 9995, 9994, 4, DENY_PRICE_COLLAR),
    ],
)
def test_modify_is_checked_like_the_order_it_makes(
    risk: RiskLimits, old_price: int, new_price: int, new_qty: int, expect: int
) -> None:
    s = Scripted(
        [(T, "o", buy(old_price, 4)), (T + 1_000, "m", modify("o", new_price, new_qty))],
        risk=risk,
    )
    res = run(tape(), s)
    assert s.ids["o"] > 0
    assert s.ids["m"] == expect
    assert s.kinds("o") == (["ack", "modified"] if expect == DENY_NONE else ["ack"])
    assert res.denials["reason"].to_list() == ([] if expect == DENY_NONE else [DENY_NAMES[expect]])


# --- kill switch ----------------------------------------------------------------------------
def crash_tape(mid_after: int) -> Tape:
    """The touch moves to mid ``mid_after`` (a one-tick-wide spread each side) at T + 5000."""
    t = tape(T + 100_000)
    t.book(
        T + 5_000,
        bids=[(9999, 0), (mid_after - 1, 10)],
        asks=[(10001, 0), (mid_after + 1, 10)],
    )
    return t


def test_kill_switch_trips_on_the_loss_limit_cancels_orders_and_blocks_new_ones() -> None:
    # long 10 at 100.01 (marked at 100.00: equity -0.10); the mid falls to 99.41:
    # equity 10 x 99.41 - 1000.10 = -6.00 < -5 at the sample at T + 5000
    s = Scripted(
        [
            (T, "long", market("buy", 10)),
            (T, "rest", sell(10050, 1)),
            (T + 6_000, "after", codes(("sell", 9950, 1))),
        ],
        risk=RiskLimits(max_loss=5.0),
    )
    res = run(crash_tape(9941), s, sample_ns=1_000)
    assert s.fills_of("long") == [(10001, 10)]
    # the cancel went out when the switch tripped: at the venue at T+5100, confirmed at T+5200
    assert (T + 5_200, s.ids["rest"], "canceled", "") in s.updates
    assert denied(s.ids["after"]) == ["kill_switch"]
    eq = res.equity.filter(res.equity["ts"] == T + 5_000)["equity"].item()
    assert eq == pytest.approx(-6.0, abs=1e-9)
    assert res.denials["reason"].to_list() == ["kill_switch"]


def test_kill_switch_does_not_trip_inside_the_loss_limit() -> None:
    # mid 99.61: equity -4.00 > -5
    s = Scripted(
        [(T, "long", market("buy", 10)), (T + 6_000, "after", codes(("sell", 9950, 1)))],
        risk=RiskLimits(max_loss=5.0),
    )
    run(crash_tape(9961), s, sample_ns=1_000)
    assert denied(s.ids["after"]) == ["ok"]


@pytest.mark.parametrize(("low_mid", "trips"), [(10021, False), (10019, True)])
def test_kill_switch_trips_on_drawdown_from_the_peak(low_mid: int, trips: bool) -> None:
    # long 10 at 100.01; mid rises to 100.50 (equity +4.90, the peak), then falls to
    # 100.21 (equity +2.00, drawdown 2.90) or 100.19 (drawdown 3.10 > 3)
    t = crash_tape(10050)
    t.book(
        T + 8_000,
        bids=[(10049, 0), (low_mid - 1, 10)],
        asks=[(10051, 0), (low_mid + 1, 10)],
    )
    s = Scripted(
        [(T, "long", market("buy", 10)), (T + 9_000, "after", codes(("sell", 10100, 1)))],
        risk=RiskLimits(max_drawdown=3.0),
    )
    res = run(t, s, sample_ns=1_000)
    assert denied(s.ids["after"]) == (["kill_switch"] if trips else ["ok"])
    peak = res.equity.filter(res.equity["ts"] == T + 5_000)["equity"].item()
    assert peak == pytest.approx(4.9, abs=1e-9)


def test_kill_switch_trips_on_a_fill_without_waiting_for_a_sample() -> None:
    # a 1% taker fee: buying 10 at 100.01 costs 10.001 in fees; equity -10.101 < -5 at the
    # fill itself (no equity sampling in this run)
    s = Scripted(
        [(T, "long", market("buy", 10)), (T + 1_000, "after", codes(("buy", 9990, 1)))],
        risk=RiskLimits(max_loss=5.0),
    )
    run(tape(), s, instruments=[instrument(taker_fee=0.01)], sample_ns=0)
    assert denied(s.ids["after"]) == ["kill_switch"]


def test_every_denial_reason_is_named() -> None:
    reasons = [
        DENY_MAX_ORDER_QTY,
        DENY_MAX_NOTIONAL,
        DENY_PRICE_COLLAR,
        DENY_MAX_POSITION_INSTRUMENT,
        DENY_MAX_POSITION_STRATEGY,
        DENY_MAX_OPEN_ORDERS,
        DENY_RATE_LIMIT,
        DENY_SELF_TRADE,
        DENY_HALTED,
        DENY_REDUCE_ONLY,
        DENY_KILL_SWITCH,
        DENY_BAD_ORDER,
    ]
    assert sorted(DENY_NAMES) == sorted([DENY_NONE, *reasons])
    assert BUY == -SELL
