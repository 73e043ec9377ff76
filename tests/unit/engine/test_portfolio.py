"""Positions, cash, fees and equity, against hand-computed values.

Book: bids 9999 x 10, asks 10001 x 10, ticks of 0.01 (10000 = 100.00) unless said.
Equity = cash + position marked to the strategy's mid; fees are paid from cash.
"""

from __future__ import annotations

import pytest

from framework.analysis.results import TOTAL
from framework.core.events import BUY, SELL

from .conftest import T0, Scripted, Tape, instrument, market, run, sell

T = T0 + 1_000


def tape() -> Tape:
    return Tape().book(T0, bids=[(9999, 10)], asks=[(10001, 10)])


def test_round_trip_with_taker_fee_maker_rebate_and_per_lot_fee() -> None:
    # buy 4 at 100.01 as taker: fee 400.04 x 0.0005 + 4 x 0.001 = 0.20402
    # sell 4 at 100.03 as maker (a new level, nobody ahead; a 4-lot buy trade takes it):
    #   fee 400.12 x -0.0002 + 4 x 0.001 = -0.076024 (a rebate net of the per-lot fee)
    # cash = -400.04 - 0.20402 + 400.12 + 0.076024 = -0.047996
    inst = instrument(maker_fee=-0.0002, taker_fee=0.0005, fee_per_lot=0.001)
    t = tape().trade(T + 5_000, BUY, 10003, 4).tick(T + 10_000)
    s = Scripted([(T, "buy", market("buy", 4)), (T + 1_000, "sell", sell(10003, 4))])
    res = run(t, s, instruments=[inst])
    f = res.fills
    assert f["liquidity"].to_list() == ["taker", "maker"]
    assert f["fee"].to_list() == pytest.approx([0.20402, -0.076024], abs=1e-12)
    assert f["position"].to_list() == [4.0, 0.0]
    last = res.equity.row(-1, named=True)
    assert last["cash"] == pytest.approx(-0.047996, abs=1e-12)
    assert last["fees"] == pytest.approx(0.127996, abs=1e-12)
    assert last["position_value"] == 0.0
    assert last["equity"] == pytest.approx(-0.047996, abs=1e-12)


def test_lot_size_and_multiplier_scale_value_and_fees() -> None:
    # a future: tick 0.25, lot 0.1, multiplier 50. Buy 20 lots (2.0) at 18001 ticks (4500.25):
    # value 4500.25 x 2.0 x 50 = 450025; fee 0.0001 of it = 45.0025; marked at the mid
    # 18000 ticks (4500.00): 450000, so equity = -25 - 45.0025
    inst = instrument(tick_size="0.25", lot_size="0.1", multiplier="50", taker_fee=0.0001)
    t = Tape().book(T0, bids=[(17999, 100)], asks=[(18001, 100)]).tick(T + 10_000)
    s = Scripted([(T, "buy", market("buy", 20))])
    res = run(t, s, instruments=[inst])
    fill = res.fills.row(0, named=True)
    assert (fill["price"], fill["qty"], fill["position"]) == (4500.25, 2.0, 2.0)
    assert fill["fee"] == pytest.approx(45.0025, abs=1e-9)
    last = res.equity.row(-1, named=True)
    assert last["cash"] == pytest.approx(-450025 - 45.0025, abs=1e-6)
    assert last["position_value"] == pytest.approx(450000.0, abs=1e-6)
    assert last["equity"] == pytest.approx(-70.0025, abs=1e-6)
    assert res.positions.row(-1, named=True)["position"] == 2.0
    assert res.positions.row(-1, named=True)["mid"] == 4500.0


def test_short_position_is_marked_to_the_mid_as_it_moves() -> None:
    # sell 3 at 99.99: cash +299.97; the mid falls from 100.00 to 99.90: the short gains
    t = tape().book(T + 5_000, bids=[(9999, 0), (9989, 10)], asks=[(10001, 0), (9991, 10)])
    t.tick(T + 10_000)
    s = Scripted([(T, "sell", market("sell", 3))])
    res = run(t, s, sample_ns=1_000)
    eq = dict(zip(res.equity["ts"], res.equity["equity"], strict=True))
    assert eq[T + 1_000] == pytest.approx(299.97 - 300.00, abs=1e-9)
    assert eq[T + 5_000] == pytest.approx(299.97 - 299.70, abs=1e-9)
    assert res.fills["position"].to_list() == [-3.0]


def test_mark_falls_back_to_the_last_trade_when_a_side_is_empty() -> None:
    # long 2 at 100.01; the asks vanish and a trade prints at 100.50: marked at 100.50
    t = tape().clear(T + 5_000, SELL).trade(T + 6_000, BUY, 10050, 1).tick(T + 10_000)
    s = Scripted([(T, "buy", market("buy", 2))])
    res = run(t, s)
    assert res.equity.row(-1, named=True)["equity"] == pytest.approx(201.00 - 200.02, abs=1e-9)


def test_context_reports_position_open_quantities_and_equity_as_fills_arrive() -> None:
    probe = lambda ctx, ids: (  # noqa: E731
        ctx.position(0),
        ctx.open_qty(0),
        ctx.open_order_count(0),
        round(ctx.equity(), 9),
    )
    t = tape().trade(T + 5_000, SELL, 10000, 2).tick(T + 10_000)
    s = Scripted(
        [
            (T, "bid", lambda ctx, ids: ctx.submit(0, "buy", 10000, 5)),
            (T + 50, "pending", probe),  # sent, not yet at the venue
            (T + 6_000, "partly", probe),  # 2 of 5 filled at 100.00, marked at 100.00
        ]
    )
    run(t, s)
    assert s.ids["pending"] == (0, (5, 0), 1, 0.0)
    assert s.ids["partly"] == (2, (3, 0), 1, 0.0)


def test_two_strategies_keep_separate_books_and_the_total_adds_them() -> None:
    # A buys 4 at 100.01, B sells 2 at 99.99; marked at 100.00
    a = Scripted([(T, "x", market("buy", 4))], name="A")
    b = Scripted([(T, "x", market("sell", 2))], name="B")
    res = run(tape().tick(T + 10_000), [a, b])
    last = {r["strategy"]: r["equity"] for r in res.equity.iter_rows(named=True)}
    assert last["A"] == pytest.approx(-0.04, abs=1e-9)
    assert last["B"] == pytest.approx(-0.02, abs=1e-9)
    assert last[TOTAL] == pytest.approx(-0.06, abs=1e-9)
    pos = {(r["strategy"], r["position"]) for r in res.positions.iter_rows(named=True)}
    assert pos == {("A", 4.0), ("B", -2.0)}
    assert a.fills[-1][5] == 4
    assert b.fills[-1][5] == -2
