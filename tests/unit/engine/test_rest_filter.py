"""The venue skips its scan of our resting orders for events that cannot touch them
(``rest_relevant`` over the per-side price range ``rest_bounds`` keeps): the filter must pass
every event the scan would act on, whatever the orders, the queue model and the event."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from framework.arena.enums import QUEUE_FIFO, QUEUE_LOG, QUEUE_POWER, QUEUE_RISK_AVERSE
from framework.arena.state import (
    H_QUEUE_MODEL,
    HF_QUEUE_N,
    I_REST_DIRTY,
    O_INST,
    O_LEAVES,
    O_PRICE,
    O_QTY,
    O_SIDE,
    O_STRAT,
    O_VENUE_TS,
    OF_FRONT,
    OF_TRADE_CREDIT,
    Capacity,
    allocate,
    unpack,
)
from framework.core.events import (
    BUY,
    FLAG_QUEUE_TS,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_STATUS,
    KIND_TRADE,
    SELL,
)
from framework.kernel.venue import _rest_add, _rest_remove, rest_bounds, rest_relevant, scan_resting

ORDER = st.tuples(
    st.integers(0, 2),  # strategy
    st.integers(0, 1),  # instrument
    st.sampled_from([BUY, SELL]),
    st.integers(98, 102),  # price (narrow: events hit them often)
    st.integers(1, 5),  # leaves
    st.floats(0, 20),  # queue front
)
EVENT = st.tuples(
    st.sampled_from([KIND_LEVEL, KIND_BBO, KIND_TRADE, KIND_CLEAR, KIND_STATUS]),
    st.sampled_from([BUY, SELL, 0]),
    st.integers(96, 104),  # price
    st.integers(0, 30),  # qty
    st.integers(0, 30),  # the level's qty before
    st.sampled_from([0, FLAG_QUEUE_TS]),
    st.integers(0, 10),  # the event's queue priority time
)


@settings(max_examples=400, deadline=None)
# a level update at our only buy's price (the range's both ends) moves its queue
@example(orders=[(0, 0, BUY, 100, 2, 10.0)], removed=[], model=QUEUE_POWER,
         events=[(KIND_LEVEL, BUY, 100, 5, 20, 0, 0)])
# a sell level through our lowest ask of several fills it
@example(orders=[(0, 0, SELL, 101, 2, 1.0), (1, 0, SELL, 103, 1, 0.0)], removed=[],
         model=QUEUE_RISK_AVERSE, events=[(KIND_LEVEL, BUY, 101, 5, 0, 0, 0)])
@given(
    orders=st.lists(ORDER, max_size=8),
    removed=st.lists(st.integers(0, 7), max_size=3),
    model=st.sampled_from([QUEUE_RISK_AVERSE, QUEUE_POWER, QUEUE_LOG, QUEUE_FIFO]),
    events=st.lists(EVENT, min_size=1, max_size=6),
)
def test_events_the_filter_skips_change_no_resting_order(orders, removed, model, events) -> None:  # type: ignore[no-untyped-def]
    a = allocate(Capacity(n_inst=2, n_strat=3, max_orders=8))
    s = unpack(a)
    s.h[H_QUEUE_MODEL] = model
    s.hf[HF_QUEUE_N] = 2.0
    slots = []
    for k, (sid, inst, side, price, leaves, front) in enumerate(orders):
        slot = sid * 8 + k
        o = s.ord[slot]
        o[O_STRAT], o[O_INST], o[O_SIDE], o[O_PRICE] = sid, inst, side, price
        o[O_QTY] = o[O_LEAVES] = leaves
        o[O_VENUE_TS] = k
        s.ordf[slot, OF_FRONT] = front
        s.ordf[slot, OF_TRADE_CREDIT] = float(k % 3)
        _rest_add(s, slot)
        slots.append(slot)
    for k in sorted(set(removed), reverse=True):  # the range must follow removals too
        if k < len(slots):
            _rest_remove(s, slots.pop(k))
    for inst in (0, 1):
        if s.inst[inst, I_REST_DIRTY]:
            rest_bounds(s.h, s.strat, s.rest, s.ord, s.inst[inst], inst)
    out = np.zeros((16, 3), np.int64)
    for kind, side, price, qty, old, flags, prio in events:
        for inst in (0, 1):
            if rest_relevant(s.inst[inst], kind, side, price):
                continue
            before = s.ordf.copy()
            nf = scan_resting(s.h, s.hf, s.strat, s.rest, s.ord, s.ordf, inst, kind, side,
                              price, qty, old, flags, prio, out)
            assert nf == 0, (inst, kind, side, price)
            assert np.array_equal(before, s.ordf, equal_nan=True), (inst, kind, side, price)
