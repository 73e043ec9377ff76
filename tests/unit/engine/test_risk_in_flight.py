"""Requests in flight count at their worst case, on the compiled order functions themselves.

Both execution paths send orders through ``framework.kernel.local`` (the Python Context
and compiled strategies both through ``framework.strategy.nb``).
Here they are called directly on an engine arena, and the venue's answers are handed to
``local_response`` as the replay loop would, in any order a venue may send them, so every
answer — modified, cancel-rejected, cancelled, filled — is checked against what pre-trade
risk counts: lots that may still fill per side, and working orders.
"""

from __future__ import annotations

import numpy as np
import pytest

from framework.arena.enums import (
    DENY_BAD_ORDER,
    DENY_MAX_NOTIONAL,
    DENY_MAX_OPEN_ORDERS,
    DENY_MAX_POSITION_INSTRUMENT,
    DENY_MAX_POSITION_STRATEGY,
    DENY_NONE,
    ORD_LIMIT,
    ST_NEW,
    ST_PENDING_CANCEL,
    ST_PENDING_MODIFY,
    TIF_GTC,
)
from framework.arena.state import (
    H_N_DENY,
    IF_LOT,
    IF_MULT,
    IF_TICK,
    M_ID,
    M_KIND,
    M_PRICE,
    M_QTY,
    M_SLOT,
    MSG_COLS,
    O_STATUS,
    P_OPEN_BUY,
    P_OPEN_SELL,
    P_POS,
    RESP_ACK,
    RESP_CANCEL_REJECT,
    RESP_CANCELED,
    RESP_FILL,
    RESP_MODIFIED,
    S_N_OPEN,
    Capacity,
    allocate,
    unpack,
)
from framework.core.events import BUY, SELL
from framework.kernel.local import local_response, order_cancel, order_modify, order_submit
from framework.risk.limits import RiskLimits

NOW = 1_000


class Desk:
    """One strategy's side of an engine arena: send requests, deliver the venue's answers."""

    def __init__(self, risk: RiskLimits, n_inst: int = 1) -> None:
        self.a = allocate(Capacity(n_inst=n_inst, n_strat=1, max_orders=64, max_messages=64))
        self.st = unpack(self.a)
        self.st.risk[0, :] = risk.to_array()
        self.st.instf[:, IF_TICK] = 0.01
        self.st.instf[:, IF_LOT] = 1.0
        self.st.instf[:, IF_MULT] = 1.0

    def buy(self, price: int, qty: int, inst: int = 0) -> int:
        return int(order_submit(self.a, 0, inst, BUY, price, qty, ORD_LIMIT, TIF_GTC, NOW))

    def sell(self, price: int, qty: int, inst: int = 0) -> int:
        return int(order_submit(self.a, 0, inst, SELL, price, qty, ORD_LIMIT, TIF_GTC, NOW))

    def modify(self, oid: int, price: int, qty: int) -> int:
        return int(order_modify(self.a, 0, oid, price, qty, NOW))

    def cancel(self, oid: int) -> bool:
        return bool(order_cancel(self.a, 0, oid, NOW))

    def answer(self, oid: int, kind: int, qty: int = 0, price: int = 0) -> None:
        m = np.zeros(MSG_COLS, np.int64)
        m[M_SLOT] = oid % self.st.ord.shape[0]
        m[M_ID] = oid
        m[M_KIND] = kind
        m[M_QTY] = qty
        m[M_PRICE] = price
        local_response(self.a, m, NOW)

    def open_buy(self, inst: int = 0) -> int:
        return int(self.st.pos[0, inst, P_OPEN_BUY])

    def open_sell(self, inst: int = 0) -> int:
        return int(self.st.pos[0, inst, P_OPEN_SELL])

    def position(self, inst: int = 0) -> int:
        return int(self.st.pos[0, inst, P_POS])

    def working(self) -> int:
        return int(self.st.strat[0, S_N_OPEN])

    def status(self, oid: int) -> int:
        return int(self.st.ord[oid % self.st.ord.shape[0], O_STATUS])

    def denials(self) -> list[int]:
        return self.st.rec_deny[: self.st.h[H_N_DENY], 6].tolist()


def test_a_modify_up_counts_its_new_size_from_the_moment_it_is_sent() -> None:
    d = Desk(RiskLimits(max_position=5))
    oid = d.buy(9990, 1)
    d.answer(oid, RESP_ACK)
    assert d.modify(oid, 9990, 5) == DENY_NONE
    assert d.open_buy() == 5
    assert d.buy(9990, 1) == -DENY_MAX_POSITION_INSTRUMENT
    d.answer(oid, RESP_MODIFIED, 5)
    assert (d.open_buy(), d.status(oid)) == (5, ST_NEW)
    d.answer(oid, RESP_FILL, 5, 9990)
    assert (d.position(), d.open_buy(), d.working()) == (5, 0, 0)
    assert d.denials() == [DENY_MAX_POSITION_INSTRUMENT]


def test_a_refused_modify_up_counts_the_confirmed_size_again() -> None:
    d = Desk(RiskLimits(max_position=5))
    oid = d.buy(9990, 2)
    assert d.modify(oid, 9990, 5) == DENY_NONE  # before the ack: a new order counts fully
    assert d.open_buy() == 5
    d.answer(oid, RESP_ACK)
    d.answer(oid, RESP_CANCEL_REJECT)
    assert (d.open_buy(), d.status(oid)) == (2, ST_NEW)
    assert d.buy(9990, 3) > 0


def test_a_modify_down_counts_the_old_size_until_confirmed() -> None:
    # a fill at the old size may reach the venue before the modify does
    d = Desk(RiskLimits(max_position=5))
    oid = d.buy(9990, 5)
    d.answer(oid, RESP_ACK)
    assert d.modify(oid, 9990, 2) == DENY_NONE
    assert d.open_buy() == 5
    assert d.buy(9990, 1) == -DENY_MAX_POSITION_INSTRUMENT
    d.answer(oid, RESP_FILL, 1, 9990)  # filled before the venue applied the modify
    assert (d.position(), d.open_buy()) == (1, 4)
    d.answer(oid, RESP_MODIFIED, 1)  # 2 lots in all, 1 of them filled
    assert (d.position(), d.open_buy()) == (1, 1)
    assert d.buy(9990, 3) > 0
    assert d.buy(9990, 1) == -DENY_MAX_POSITION_INSTRUMENT


def test_a_cancel_in_flight_counts_the_order_fully_until_confirmed() -> None:
    d = Desk(RiskLimits(max_position=5, max_open_orders=2))
    oid = d.sell(10010, 5)
    d.buy(9990, 1)
    d.answer(oid, RESP_ACK)
    assert d.cancel(oid)
    assert not d.cancel(oid)  # one cancel at a time
    assert (d.open_sell(), d.working(), d.status(oid)) == (5, 2, ST_PENDING_CANCEL)
    assert d.sell(10010, 1) == -DENY_MAX_POSITION_INSTRUMENT
    assert d.buy(9990, 1) == -DENY_MAX_OPEN_ORDERS
    d.answer(oid, RESP_FILL, 2, 10010)  # the order filled partly before the cancel arrived
    assert (d.position(), d.open_sell(), d.working()) == (-2, 3, 2)
    d.answer(oid, RESP_CANCELED, 3)
    assert (d.position(), d.open_sell(), d.working()) == (-2, 0, 1)
    assert d.sell(10010, 3) > 0


def test_a_refused_cancel_leaves_the_order_working_and_cancellable() -> None:
    d = Desk(RiskLimits(max_open_orders=1))
    oid = d.buy(9990, 2)
    assert d.cancel(oid)
    d.answer(oid, RESP_ACK)
    d.answer(oid, RESP_CANCEL_REJECT)
    assert (d.open_buy(), d.working(), d.status(oid)) == (2, 1, ST_NEW)
    assert d.cancel(oid)


def test_a_modify_and_a_cancel_in_flight_together() -> None:
    d = Desk(RiskLimits(max_position=5))
    oid = d.buy(9990, 2)
    d.answer(oid, RESP_ACK)
    assert d.modify(oid, 9990, 4) == DENY_NONE
    assert d.cancel(oid)
    assert d.modify(oid, 9990, 3) == -1  # wait for the answers
    assert (d.open_buy(), d.status(oid)) == (4, ST_PENDING_CANCEL)
    d.answer(oid, RESP_MODIFIED, 4)  # the modify was sent first, so it is answered first
    assert (d.open_buy(), d.status(oid)) == (4, ST_PENDING_CANCEL)
    d.answer(oid, RESP_CANCELED, 4)
    assert (d.open_buy(), d.working()) == (0, 0)


def test_only_one_modify_in_flight_per_order() -> None:
    d = Desk(RiskLimits())
    oid = d.buy(9990, 2)
    assert d.modify(oid, 9990, 3) == DENY_NONE
    assert d.status(oid) == ST_PENDING_MODIFY
    assert d.modify(oid, 9990, 4) == -1
    assert d.open_buy() == 3


def test_a_modify_to_no_lots_is_a_bad_order() -> None:
    d = Desk(RiskLimits())
    oid = d.buy(9990, 2)
    assert d.modify(oid, 9990, 0) == DENY_BAD_ORDER
    assert d.denials() == [DENY_BAD_ORDER]
    assert d.open_buy() == 2


def test_the_notional_of_a_modify_in_flight_is_taken_at_the_worse_of_both_prices() -> None:
    # 400.00 allowed: 4 x 99.90 passes; re-pricing to 100.10 is valued at 4 x 100.10 = 400.40
    d = Desk(RiskLimits(max_notional=400.0))
    oid = d.buy(9990, 4)
    d.answer(oid, RESP_ACK)
    assert d.modify(oid, 10010, 4) == DENY_MAX_NOTIONAL
    assert d.modify(oid, 9980, 4) == DENY_NONE  # cheaper
    d.answer(oid, RESP_MODIFIED, 4)
    # its fills so far count at what they cost: 2 at 99.80 + 2 more at 100.10 = 399.80
    d.answer(oid, RESP_FILL, 2, 9980)
    assert d.modify(oid, 10010, 4) == DENY_NONE
    d.answer(oid, RESP_MODIFIED, 2)
    d.answer(oid, RESP_FILL, 2, 10010)
    assert d.position() == 4


def test_fills_so_far_count_in_the_notional_of_a_modify_up() -> None:
    # 2 filled at 100.00 (200.00) then 3 more lots at 99.00: 497.00 > 450
    d = Desk(RiskLimits(max_notional=450.0))
    oid = d.buy(10000, 4)
    d.answer(oid, RESP_ACK)
    d.answer(oid, RESP_FILL, 2, 10000)
    assert d.modify(oid, 9900, 5) == DENY_MAX_NOTIONAL
    assert d.modify(oid, 9900, 4) == DENY_NONE  # 200.00 + 2 x max(100.00, 99.00)


@pytest.mark.parametrize(("pending", "allowed"), [(3, True), (4, False)])
def test_the_strategy_position_limit_counts_a_modify_up_in_flight(
    pending: int, allowed: bool
) -> None:
    d = Desk(RiskLimits(max_strategy_position=6), n_inst=2)
    oid = d.buy(9990, 1, inst=0)
    assert d.modify(oid, 9990, pending) == DENY_NONE
    got = d.sell(10010, 3, inst=1)
    assert (got > 0) if allowed else got == -DENY_MAX_POSITION_STRATEGY
