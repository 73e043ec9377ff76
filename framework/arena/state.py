"""The engine's state: one int64 arena, carved into named segments.

Crossing from Python into compiled code costs about 60 ns plus 80-100 ns per array argument
(DESIGN.md §9), so the whole engine state lives in ONE int64 array (float segments are
``.view(np.float64)`` of int64 storage). The compiled entry points take that arena and the
event window — two arguments — and name its segments with :func:`unpack_raw` (a
:class:`StateRef`, one pointer, whose fields are views built where they are used), which
costs nothing inside compiled code; Python code uses :func:`unpack`. The arena's first
``4 * N_SEG`` words say where each segment starts and its shape, so a run can pause at any
point and resume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.core.datamodel import models
from numba.core.typing.templates import AttributeTemplate
from numba.extending import infer_getattr, intrinsic, lower_getattr_generic, register_model

from framework.book.l2 import L2_META_SIZE, l2_init, l2_width
from framework.book.l2 import NO_PRICE as NO_PRICE_
from framework.core.jit import inline
from framework.features.kernels import N_FEATURES

# --- header words (segment SEG_H) ---------------------------------------------------------
H_N_INST: Final = 0
H_N_STRAT: Final = 1
H_MAX_ORDERS: Final = 2  #: order slots of each strategy (Capacity.max_orders)
H_NOW: Final = 3  #: engine clock: time of the last processed action
H_LOCAL_CUR: Final = 4  #: next event of the window the strategy view will see
H_VENUE_CUR: Final = 5  #: next event of the window the venue will apply
H_N_EV: Final = 6  #: valid events in the window
H_FINAL: Final = 7  #: 1 when the window holds the end of the data
H_WAKE: Final = 8  #: why the last advance stopped (WAKE_*)
H_WAKE_INST: Final = 9
H_WAKE_STRAT: Final = 10
H_WAKE_SLOT: Final = 11
H_CB_WAKE: Final = 12  #: for ERR_CALLBACK: the wake-up (WAKE_*) whose callback raised
H_EVENTS_LOCAL: Final = 13  #: events the strategy view has processed in total
H_EVENTS_VENUE: Final = 14
H_LAT_MODEL: Final = 15
H_QUEUE_MODEL: Final = 16
H_N_REQ: Final = 17
H_N_RESP: Final = 18
H_MSG_SEQ: Final = 19  #: tie-breaker of in-flight messages (FIFO at equal times)
H_SAMPLE_NS: Final = 20  #: equity / market sampling interval
H_NEXT_SAMPLE: Final = 21
H_FEED_LAT: Final = 22  #: latest feed latency seen (local_ts - exch_ts)
H_END_TS: Final = 23  #: stop the run at this local time (int64 max: end of data)
H_STARTED: Final = 24
H_STOPPED: Final = 25
H_N_FILL: Final = 26  #: recorder row counts
H_N_ORD: Final = 27
H_N_DENY: Final = 28
H_N_EQ: Final = 29
H_N_POS: Final = 30
H_N_MKT: Final = 31
H_N_LAT: Final = 32  #: unused (latencies are counted in the lat_hist segment, not rows)
H_WAKE_ORDER_KIND: Final = 33  #: for WAKE_ORDER: the response kind (RESP_*)
H_WAKE_QTY: Final = 34  #: for WAKE_FILL / WAKE_TRADE
H_WAKE_PRICE: Final = 35
H_WAKE_SIDE: Final = 36
H_WAKE_REASON: Final = 37
H_N_LAT_SERIES: Final = 38  #: rows of the empirical latency series
H_LAT_IDX: Final = 39  #: cursor into the empirical series
H_BOOK_NT: Final = 41
#: time of the last action every strategy shares (market data, samples): with a strategy's
#: own last action (S_OWN_NOW) it gives the clock a run of that strategy alone ends at
H_SHARED_NOW: Final = 42
H_LAST_TS: Final = 43  #: local time of the last event seen by the strategy view
H_WAKE_OID: Final = 45  #: for WAKE_FILL / WAKE_ORDER: the order id (its slot may be free already)
H_ERROR: Final = 46  #: ERR_* when a table overflowed (the run stops with WAKE_ERROR)
H_EV_PTR: Final = 47  #: address of the event window (the driver keeps the array alive)
H_FEAT_PTR: Final = 48  #: address of the window's feature rows (float64[n, N_FEATURES]), 0 = none
#: 1: orders leave through the driver (``Engine.drain_requests``) to a real or fake gateway,
#: whose answers come back through ``Engine.inject``; the simulated venue does not run
H_EXTERNAL: Final = 49
#: once the input has run out (and is not final), actions up to this time (timers, samples,
#: responses) still run: the driver vouches that no input stamped earlier will come (wall
#: clock). INT64_MIN: none, the engine waits for input (data clock)
H_HORIZON: Final = 50
#: 1: the clock is the wall's: a timer that fell behind it (a stall) fires once and goes on
#: from now, rather than once for every period missed
H_WALL: Final = 61
#: ring heads of the request / response queues (each kept in time order: see messages.py)
H_REQ_HEAD: Final = 51
H_RESP_HEAD: Final = 52
#: the next timer (earliest S_TIMER_AT, lowest strategy at equal times; -1: none), found
#: again only after a timer was set or fired (H_TIMER_DIRTY)
H_TIMER_DIRTY: Final = 53
H_TIMER_AT: Final = 54
H_TIMER_SID: Final = 55
#: addresses of the compiled core's entry points (framework/kernel/core.py ``install``):
#: compiled callers call through them instead of linking the engine's code
H_FN_ADVANCE: Final = 56
H_FN_SUBMIT: Final = 57
H_FN_CANCEL: Final = 58
H_FN_MODIFY: Final = 59
H_FN_FINISH: Final = 60
#: a compiled run's strategy callbacks as one C function ``wake(arena address, WAKE_*)``
#: (its generated runner's, framework/engine/codegen.py): the core calls it at a wake-up and
#: goes on, instead of returning to the runner and being entered again. 0: return (the
#: Python path, and runs whose parameters a C function cannot take)
H_FN_WAKE: Final = 62
H_CB_DATA: Final = 63  #: address of the callbacks' data for ``wake`` (see codegen.py)
H_SIZE: Final = 64

# --- float header (segment SEG_HF) ------------------------------------------------------
HF_QUEUE_N: Final = 0  #: exponent of the power queue model
HF_LAT_ENTRY: Final = 1  #: constant entry latency, ns (LAT_CONSTANT) / multiplier (LAT_FEED)
HF_LAT_RESP: Final = 2
HF_SIZE: Final = 16

# --- wake reasons ----------------------------------------------------------------------------
WAKE_NONE: Final = 0
WAKE_NEED_DATA: Final = 1  #: the window is used up: append the next batch and advance again
WAKE_FLUSH: Final = 2  #: a recorder buffer is full: copy it out and advance again
WAKE_DONE: Final = 3  #: end of data (or of the requested time span)
WAKE_BOOK: Final = 4  #: the touch of instrument H_WAKE_INST changed (strategy view)
WAKE_TRADE: Final = 5  #: a trade print on H_WAKE_INST
WAKE_FILL: Final = 6  #: a fill of order slot H_WAKE_SLOT reached the strategy
WAKE_ORDER: Final = 7  #: an ack / cancel / reject / expiry of slot H_WAKE_SLOT
WAKE_TIMER: Final = 8  #: the timer of strategy H_WAKE_STRAT fired
WAKE_START: Final = 9
WAKE_ERROR: Final = 10  #: a table is full; H_WAKE_REASON says which (ERR_*)
WAKE_REQUESTS: Final = 11  #: H_EXTERNAL: requests wait for the driver (drain_requests)

ERR_ORDERS_FULL: Final = 1
ERR_MESSAGES_FULL: Final = 2
ERR_BOOK_FULL: Final = 3
ERR_CALLBACK: Final = 4  #: a compiled callback raised, in the core's ``wake`` (H_WAKE_STRAT: whose)
ERR_NAMES: Final = {
    ERR_ORDERS_FULL: "a strategy has too many live orders: raise Capacity.max_orders "
    "(order slots per strategy)",
    ERR_MESSAGES_FULL: "too many in-flight messages: raise Capacity.max_messages",
    ERR_BOOK_FULL: "a book holds more price levels outside its window than "
    "Capacity.book_far_levels on one side: raise it",
    ERR_CALLBACK: "a strategy's compiled callback raised an exception in the engine core, and "
    "did not raise it again when called once more to show it",
}

# --- per-instrument int columns (SEG_INST, n_inst x INST_COLS) --------------------------------
I_SUB_BOOK: Final = 0  #: a strategy wants on_book for this instrument
I_SUB_TRADE: Final = 1
I_BB: Final = 2  #: last touch seen by the strategy view (to detect changes)
I_BA: Final = 3
I_BBQ: Final = 4
I_BAQ: Final = 5
I_HALTED: Final = 6  #: venue-side trading status (1 = halted)
I_N_RESTING: Final = 7  #: our orders resting at the venue on this instrument
I_LAST_TRADE_PX: Final = 8
I_LAST_TRADE_QTY: Final = 9
I_LAST_TRADE_SIDE: Final = 10
I_N_BOOK_WAKES: Final = 11  #: on_book wake-ups for this instrument (x subscribers = callbacks)
I_N_TRADE_WAKES: Final = 12
#: our resting orders' price range per side (kernel/venue.py rest_bounds): a venue event
#: outside it cannot touch them, so the scan of the resting list is skipped. Recomputed at
#: the next event after a resting list changed (I_REST_DIRTY)
I_REST_DIRTY: Final = 13
I_REST_BMIN: Final = 14  #: lowest resting buy price (INT64 max: none)
I_REST_BMAX: Final = 15  #: highest resting buy price (INT64 min: none)
I_REST_SMIN: Final = 16
I_REST_SMAX: Final = 17
INST_COLS: Final = 24

# --- per-instrument float columns (SEG_INSTF) -------------------------------------------------
IF_TICK: Final = 0
IF_LOT: Final = 1
IF_MULT: Final = 2
IF_MAKER_FEE: Final = 3
IF_TAKER_FEE: Final = 4
IF_FEE_PER_LOT: Final = 5
INSTF_COLS: Final = 8

# --- order slot int columns (SEG_ORD, n_strat * max_orders x ORD_COLS) -------------------------
# Strategy ``sid`` owns slots [sid * max_orders, (sid + 1) * max_orders), with its own free
# list (SEG_FREE, same partition) and its own list of orders resting at the venue (SEG_REST):
# its order ids and the order in which the venue scans its orders depend on nothing another
# strategy does, so each of K copies in one run behaves exactly as it does alone.
O_ID: Final = 0
O_STRAT: Final = 1
O_INST: Final = 2
O_SIDE: Final = 3
O_PRICE: Final = 4  #: ticks (the current price after modifies)
O_QTY: Final = 5  #: lots ordered (current, after modifies)
O_LEAVES: Final = 6  #: venue: lots still open at the venue
O_FILLED: Final = 7  #: strategy view: lots reported filled
O_TYPE: Final = 8
O_TIF: Final = 9
O_STATUS: Final = 10  #: strategy-view status ST_*
O_VSTATE: Final = 11  #: venue view: V_*
O_SUBMIT_TS: Final = 12
O_REASON: Final = 13
O_PEND_PRICE: Final = 14  #: a modify in flight: new price / qty
O_PEND_QTY: Final = 15
O_LOCAL_OPEN: Final = 16  #: strategy view: lots that may still fill (worst case, see local.py)
O_VENUE_TS: Final = 17  #: venue time the order rested (for FIFO tie-breaks)
O_NOTIONAL: Final = 18  #: sum of fill price*qty in ticks*lots (for the average price)
O_REST_IDX: Final = 19  #: position in its strategy's resting list while resting at the venue
# the strategy's own record of the order (O_PRICE / O_QTY change when the venue applies a
# modify, before the strategy can know): what pre-trade risk counts
O_LQTY: Final = 20  #: strategy view: size as last confirmed (or sent, while new)
O_LPRICE: Final = 21  #: strategy view: limit price as last confirmed
O_MOD_SENT: Final = 22  #: 1 while a modify is in flight (O_PEND_PRICE / O_PEND_QTY)
O_CXL_SENT: Final = 23  #: 1 while a cancel is in flight
#: the slot's place in ``free``: strategy ``sid``'s free slots are the first
#: ``strat[sid, S_N_FREE]`` of its partition (a stack), its live ones the rest, so the live
#: orders can be walked without scanning the table
O_LIVE_IDX: Final = 24
ORD_COLS: Final = 28

V_NONE: Final = 0  #: not at the venue yet
V_RESTING: Final = 1
V_DONE: Final = 2

# order slot float columns (SEG_ORDF)
OF_FRONT: Final = 0  #: estimated lots ahead of us in the venue's queue
OF_FEES: Final = 1
OF_TRADE_CREDIT: Final = 2  #: lots traded at our price not yet seen in a level update
ORDF_COLS: Final = 4

# --- in-flight messages (requests to the venue, responses to the strategy) ---------------------
M_TS: Final = 0  #: arrival time
M_SEQ: Final = 1
M_KIND: Final = 2
M_SLOT: Final = 3
M_ID: Final = 4  #: order id, to detect a slot reused since the message was sent
M_PRICE: Final = 5
M_QTY: Final = 6
M_LIQ: Final = 7
M_REASON: Final = 8
M_EXCH_TS: Final = 9  #: venue time of the event the message reports
M_SENT: Final = 10  #: time the message was sent
MSG_COLS: Final = 12
MSG_FEE: Final = 11  #: float fee stored bitwise in column 11 via the float view

REQ_NEW: Final = 1
REQ_CANCEL: Final = 2
REQ_MODIFY: Final = 3

RESP_ACK: Final = 1
RESP_FILL: Final = 2
RESP_CANCELED: Final = 3
RESP_REJECT: Final = 4
RESP_EXPIRED: Final = 5
RESP_MODIFIED: Final = 6
RESP_CANCEL_REJECT: Final = 7

# --- per (strategy, instrument) position ints (SEG_POS, n_strat x n_inst x POS_COLS) -----------
P_POS: Final = 0  #: lots, signed
P_OPEN_BUY: Final = 1  #: lots open buy orders may still fill (worst case, strategy view)
P_OPEN_SELL: Final = 2
P_N_OPEN: Final = 3  #: open orders
P_N_FILLS: Final = 4
P_N_DONE: Final = 5  #: orders finished (filled, cancelled, rejected, expired): only grows
POS_COLS: Final = 8
# floats (SEG_POSF)
PF_CASH: Final = 0  #: currency
PF_FEES: Final = 1
PF_TRADED: Final = 2  #: notional traded
POSF_COLS: Final = 4

# --- per-strategy ints (SEG_STRAT) and floats (SEG_STRATF) --------------------------------------
S_STATE: Final = 0  #: TS_* trading state
S_KILLED: Final = 1
S_TIMER_AT: Final = 2
S_TIMER_EVERY: Final = 3
S_N_OPEN: Final = 4
S_LAST_REFILL: Final = 5
S_RATE_EVENTS: Final = 6
S_SUB_FILL: Final = 7  #: the strategy has on_fill: wake it for fills (else they only book)
S_SUB_ORDER: Final = 8  #: the strategy has on_order
S_N_WAKES: Final = 9  #: fill, order-update and timer callbacks made
S_SEQ: Final = 10  #: the strategy's order-id sequence (its ids are seq * max_orders + slot index)
S_N_FREE: Final = 11  #: free slots on the strategy's stack (SEG_FREE, its partition)
#: the latest arrival time of the strategy's requests at the venue and of the venue's
#: responses at the strategy: each channel is FIFO, so a message never overtakes an earlier
#: one when the latency model's value drops (feed-latency and empirical models)
S_LAST_REQ_TS: Final = 12
S_LAST_RESP_TS: Final = 13
S_N_REST: Final = 14  #: the strategy's orders resting at the venue (SEG_REST, its partition)
#: strategies with the same account see each other's resting orders in self-trade
#: prevention; isolated copies (``Backtest(isolated=True)``) have one account each
S_ACCOUNT: Final = 15
#: time of the strategy's last own action (a message of its orders, its timer)
S_OWN_NOW: Final = 16
STRAT_COLS: Final = 20
SF_TOKENS: Final = 0
SF_PEAK_EQUITY: Final = 1
SF_LAST_EQUITY: Final = 2
STRATF_COLS: Final = 4

# risk limits per strategy (SEG_RISK, float, n_strat x RISK_COLS); inf = no limit
R_MAX_ORDER_QTY: Final = 0  #: lots
R_MAX_NOTIONAL: Final = 1  #: currency
R_COLLAR_TICKS: Final = 2  #: max distance from the reference (mid) in ticks
R_MAX_POS_INST: Final = 3  #: lots, per instrument
R_MAX_POS_STRAT: Final = 4  #: sum over instruments of |lots|
R_MAX_OPEN: Final = 5  #: open orders
R_RATE_PER_S: Final = 6  #: token-bucket refill (orders per second)
R_RATE_BURST: Final = 7  #: bucket size
R_MAX_LOSS: Final = 8  #: kill switch: equity below -max_loss
R_MAX_DRAWDOWN: Final = 9  #: kill switch: peak-to-now drawdown
R_SELF_TRADE: Final = 10  #: 1 = prevent self trades
RISK_COLS: Final = 12

# --- recorder rows --------------------------------------------------------------------------------
FILL_COLS: Final = (
    12  # ts, exch_ts, strat, inst, oid, side, price, qty, liq, pos_after, fee(bits), _
)
F_TS, F_EXCH_TS, F_STRAT, F_INST, F_OID, F_SIDE, F_PRICE, F_QTY, F_LIQ, F_POS, F_FEE = range(11)
ORDLOG_COLS: Final = 14
# oid, strat, inst, side, type, tif, price, qty, submit_ts, status, filled, notional, reason, end_ts
(
    OL_ID,
    OL_STRAT,
    OL_INST,
    OL_SIDE,
    OL_TYPE,
    OL_TIF,
    OL_PRICE,
    OL_QTY,
    OL_SUBMIT,
    OL_STATUS,
    OL_FILLED,
    OL_NOTIONAL,
    OL_REASON,
    OL_END,
) = range(14)
DENY_COLS: Final = 8  # ts, strat, inst, side, price, qty, reason, type
DENY_TS, DENY_STRAT, DENY_INST, DENY_SIDE, DENY_PRICE, DENY_QTY, DENY_REASON, DENY_TYPE = range(8)
EQ_COLS: Final = 6  # ts, strat, cash, fees, posval, equity (floats bitwise after ts/strat)
EQ_TS, EQ_STRAT, EQ_CASH, EQ_FEES, EQ_POSVAL, EQ_EQUITY = range(6)
EQ_STRAT_TOTAL: Final = -1  #: EQ_STRAT of the row summing every strategy (runs of several)
POSREC_COLS: Final = 5  # ts, strat, inst, pos, mid(bits)
POSREC_TS, POSREC_STRAT, POSREC_INST, POSREC_POS, POSREC_MID = range(5)
MKT_COLS: Final = 4  # ts, inst, bid, ask
MKT_TS, MKT_INST, MKT_BID, MKT_ASK = range(4)
LATK_ENTRY, LATK_RESP, LATK_ROUND_TRIP = 0, 1, 2
N_LAT_KINDS: Final = 3
#: Latencies are counted in a histogram (a bounded sink, however long the run): values below
#: 2**LAT_EXACT_BITS ns each have a bucket, larger ones 2**LAT_SUB_BITS buckets per power of
#: two (relative width under 1 %), up to 2**LAT_MAX_BITS ns (~3 days; beyond, the last
#: bucket). Each bucket keeps its count and the sum of its values, so the table's value per
#: bucket is the mean of what fell in it: exact whenever those were all equal.
LAT_EXACT_BITS: Final = 8
LAT_SUB_BITS: Final = 7
LAT_MAX_BITS: Final = 48
N_LAT_BUCKETS: Final = (1 << LAT_EXACT_BITS) + (LAT_MAX_BITS - LAT_EXACT_BITS) * (
    1 << LAT_SUB_BITS
)
LATH_COUNT, LATH_SUM = 0, 1

# --- segments ------------------------------------------------------------------------------
SEG_H, SEG_HF, SEG_INST, SEG_INSTF, SEG_VMETA, SEG_VQTY, SEG_LMETA, SEG_LQTY = range(8)
SEG_ORD, SEG_ORDF, SEG_FREE, SEG_REQ, SEG_RESP, SEG_POS, SEG_POSF, SEG_STRAT = range(8, 16)
SEG_STRATF, SEG_RISK, SEG_REC_FILL, SEG_REC_ORD, SEG_REC_DENY, SEG_REC_EQ, SEG_REC_POS = range(
    16, 23
)
SEG_REC_MKT, SEG_LAT_HIST, SEG_LAT_SERIES, SEG_SUB, SEG_REST, SEG_SCRATCH, SEG_FEAT = range(23, 30)
N_SEG: Final = 30
SEG_NAMES: Final = (
    "h",
    "hf",
    "inst",
    "instf",
    "vmeta",
    "vqty",
    "lmeta",
    "lqty",
    "ord",
    "ordf",
    "free",
    "req",
    "resp",
    "pos",
    "posf",
    "strat",
    "stratf",
    "risk",
    "rec_fill",
    "rec_ord",
    "rec_deny",
    "rec_eq",
    "rec_pos",
    "rec_mkt",
    "lat_hist",
    "lat_series",
    "sub",
    "rest",
    "scratch",
    "feat",
)
_FLOAT_SEGS: Final = frozenset(
    {SEG_HF, SEG_INSTF, SEG_ORDF, SEG_POSF, SEG_STRATF, SEG_RISK, SEG_LAT_SERIES, SEG_FEAT}
)

I64 = npt.NDArray[np.int64]
#: the arena itself: what non-inlined compiled functions take (one array is cheap to pass)
Arena = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class State(NamedTuple):
    """Named views of the arena (one field per segment, in segment order)."""

    h: I64
    hf: F64
    inst: I64
    instf: F64
    vmeta: I64
    vqty: I64
    lmeta: I64
    lqty: I64
    ord: I64
    ordf: F64
    free: I64
    req: I64
    resp: I64
    pos: I64
    posf: F64
    strat: I64
    stratf: F64
    risk: F64
    rec_fill: I64
    rec_ord: I64
    rec_deny: I64
    rec_eq: I64
    rec_pos: I64
    rec_mkt: I64
    lat_hist: I64  #: (kind, LATH_COUNT | LATH_SUM, bucket): the latency histogram
    lat_series: F64
    sub: I64
    rest: I64
    scratch: I64
    feat: F64  #: latest feature values per instrument (framework.features order)


assert State._fields == SEG_NAMES


@dataclass(frozen=True)
class Capacity:
    """Sizes of the arena's tables."""

    n_inst: int
    n_strat: int
    #: live orders of ONE strategy (each strategy has this many order slots of its own)
    max_orders: int = 4096
    max_messages: int = 4096
    book_ticks: int = 4096  #: dense window of each book near the touch (speed, not reach)
    book_far_levels: int = 4096  #: levels a side each book holds outside its window
    record_rows: int = 65536
    lat_series: int = 1


def _shapes(c: Capacity) -> list[tuple[int, ...]]:
    ni, ns, nr = c.n_inst, c.n_strat, c.record_rows
    slots = ns * c.max_orders
    return [
        (H_SIZE,),
        (HF_SIZE,),
        (ni, INST_COLS),
        (ni, INSTF_COLS),
        (ni, L2_META_SIZE),
        (ni, 2, l2_width(c.book_ticks, c.book_far_levels)),
        (ni, L2_META_SIZE),
        (ni, 2, l2_width(c.book_ticks, c.book_far_levels)),
        (slots, ORD_COLS),
        (slots, ORDF_COLS),
        (slots,),
        (c.max_messages, MSG_COLS),
        (c.max_messages, MSG_COLS),
        (ns, ni, POS_COLS),
        (ns, ni, POSF_COLS),
        (ns, STRAT_COLS),
        (ns, STRATF_COLS),
        (ns, RISK_COLS),
        (nr, FILL_COLS),
        (nr, ORDLOG_COLS),
        (nr, DENY_COLS),
        (nr, EQ_COLS),
        (nr, POSREC_COLS),
        (nr, MKT_COLS),
        (N_LAT_KINDS, 2, N_LAT_BUCKETS),
        (max(c.lat_series, 1), 3),
        (ns, ni),
        (slots,),
        (slots + 8, 3),
        (ni, N_FEATURES),
    ]


def allocate(c: Capacity) -> npt.NDArray[np.int64]:
    """A zeroed arena for capacity ``c`` with its segment table filled in."""
    shapes = _shapes(c)
    table = 4 * N_SEG  # offset, d0, d1, d2 per segment
    total = table + sum(int(np.prod(s)) for s in shapes)
    arena = np.zeros(total, np.int64)
    off = table
    for k, shp in enumerate(shapes):
        dims = (*shp, 1, 1)[:3]
        arena[4 * k : 4 * k + 4] = (off, dims[0], dims[1], dims[2])
        off += int(np.prod(shp))
    st = unpack(arena)
    st.h[H_N_INST] = c.n_inst
    st.h[H_N_STRAT] = c.n_strat
    st.h[H_MAX_ORDERS] = c.max_orders
    st.h[H_BOOK_NT] = c.book_ticks
    st.h[H_END_TS] = np.iinfo(np.int64).max
    st.h[H_HORIZON] = np.iinfo(np.int64).min
    st.h[H_TIMER_DIRTY] = 1
    m = c.max_orders
    st.strat[:, S_N_FREE] = m
    for sid in range(c.n_strat):  # a stack per strategy: pop from the end
        st.free[sid * m : (sid + 1) * m] = np.arange((sid + 1) * m - 1, sid * m - 1, -1)
    for i in range(c.n_inst):
        l2_init(st.vmeta[i], st.vqty[i], c.book_ticks, c.book_far_levels)
        l2_init(st.lmeta[i], st.lqty[i], c.book_ticks, c.book_far_levels)
    st.risk[:, :] = np.inf
    st.feat[:, :] = np.nan
    # the touch as the strategy view last saw it at a message boundary: none yet
    st.inst[:, I_BB] = NO_PRICE_
    st.inst[:, I_BA] = NO_PRICE_
    st.risk[:, R_SELF_TRADE] = 1.0
    return arena


def _seg(a: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    off = int(a[4 * k])
    return a[off : off + int(a[4 * k + 1] * a[4 * k + 2] * a[4 * k + 3])]


@intrinsic
def _as_voidptr(typingctx: Any, addr: Any) -> Any:
    sig = types.voidptr(addr)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


@njit(cache=True, forceinline=True)
def arena_at(p: int) -> npt.NDArray[np.int64]:
    """The arena at address ``p``, for entry points called with the address as a plain int
    (an array argument costs ~0.15 us more per call to unbox). Only the segment table is in
    its shape; :func:`unpack_raw` finds the segments through it."""
    return carray(_as_voidptr(p), (4 * N_SEG,), np.int64)  # type: ignore[call-arg]


#: dimensions of each segment's view, in segment order (see :func:`_shapes`)
_SEG_NDIM: Final = (1, 1, 2, 2, 2, 3, 2, 3, 2, 2, 1, 2, 2, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                    3, 2, 2, 1, 2, 2)
_SEG_VIEW: Final = tuple(
    (nd, types.float64 if k in _FLOAT_SEGS else types.int64) for k, nd in enumerate(_SEG_NDIM)
)
assert tuple(len(s) for s in _shapes(Capacity(n_inst=1, n_strat=1))) == _SEG_NDIM
_SEG_INDEX: Final = {name: k for k, name in enumerate(SEG_NAMES)}
_VIEW_T: Final = tuple(types.Array(dt, nd, "C") for nd, dt in _SEG_VIEW)


class StateRef(types.Type):
    """:class:`State` in compiled code: the arena's address, one machine word.

    ``st.ord`` (any :class:`State` field) is a view built where it is used from the arena's
    segment table: a few loads, marked invariant (the table never changes once the arena is
    allocated), so LLVM computes each view once per function however often it is named and
    drops the views a function never names. Passing ``st`` to another compiled function
    passes one pointer, where a tuple of thirty array views was some 270 arguments: that
    size, in every signature, call and wrapper, was most of the engine's compile time.
    """

    def __init__(self) -> None:
        super().__init__(name="hftlab.StateRef")


STATE_REF: Final = StateRef()


@register_model(StateRef)
class _StateRefModel(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: Any) -> None:
        super().__init__(dmm, fe_type, ir.IntType(64).as_pointer())


@infer_getattr
class _StateRefFields(AttributeTemplate):
    key = StateRef

    def generic_resolve(self, typ: Any, attr: str) -> Any:  # type: ignore[override]
        k = _SEG_INDEX.get(attr)
        return None if k is None else _VIEW_T[k]


@lower_getattr_generic(StateRef)
def _state_ref_field(context: Any, builder: Any, typ: Any, base: Any, attr: str) -> Any:
    """The view of segment ``attr``: data at its offset, shape from the table, C strides.
    It carries no reference count (the caller keeps the arena alive, as every compiled
    entry point does by holding it or its owner)."""
    from numba.np.arrayobj import populate_array

    k = _SEG_INDEX[attr]
    nd, dt = _SEG_VIEW[k]
    i64 = ir.IntType(64)
    invariant = builder.module.add_metadata([])
    word = []
    for j in range(nd + 1):
        w = builder.load(builder.gep(base, [ir.Constant(i64, 4 * k + j)]))
        w.set_metadata("invariant.load", invariant)
        word.append(w)
    data = builder.bitcast(builder.gep(base, [word[0]]), context.get_data_type(dt).as_pointer())
    shape = word[1:]
    strides = [ir.Constant(i64, 8)]
    for d in reversed(shape[1:]):
        strides.insert(0, builder.mul(strides[0], d))
    view = context.make_array(_VIEW_T[k])(context, builder)
    populate_array(view, data=data, shape=shape, strides=strides,
                   itemsize=ir.Constant(i64, 8), meminfo=None)
    return view._getvalue()


@intrinsic
def _unpack_raw(typingctx: Any, a: Any) -> Any:
    """:func:`unpack` for compiled code: a :class:`StateRef` on the arena's data (emitted in
    place: no call, nothing to compile). Python code uses :func:`unpack`."""
    if not (isinstance(a, types.Array) and a.dtype == types.int64 and a.ndim == 1):
        return None
    sig = STATE_REF(a)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return sig, codegen


#: typed for callers: numba calls the intrinsic with the arena alone
unpack_raw: Callable[[npt.NDArray[np.int64]], State] = _unpack_raw  # type: ignore[assignment]


@inline
def slot_of(st: State, sid: int, oid: int) -> int:
    """The slot of a live order of strategy ``sid``, or -1 (an order's id is the strategy's
    sequence number times ``H_MAX_ORDERS`` plus the slot's place in the strategy's
    partition). Shared by the order path, the order seam and the strategy API
    (framework.strategy.nb), which compiles it without the engine."""
    _h = st.h
    _ord = st.ord
    if oid <= 0:
        return -1
    m = _h[H_MAX_ORDERS]
    slot = sid * m + oid % m
    o = _ord[slot]
    if o[O_ID] != oid or o[O_STRAT] != sid:
        return -1
    return slot


def unpack(a: npt.NDArray[np.int64]) -> State:
    """Named views of the arena, for Python code (compiled code uses :func:`unpack_raw`)."""
    views = []
    for k, nd in enumerate(_SEG_NDIM):
        v = _seg(a, k)
        if k in _FLOAT_SEGS:
            v = v.view(np.float64)
        views.append(v.reshape(tuple(int(d) for d in a[4 * k + 1 : 4 * k + 1 + nd])))
    return State._make(views)


def write_heads(st: State, rows: int = 2) -> list[tuple[int, int]]:
    """(address, bytes) of where the engine writes next, ``rows`` rows each: every
    strategy's next order slot (the top of its free stack: the slot's order words and
    floats), the request and response queues' next rows and each recorder buffer's. A live
    loop keeps these warm while the feed is quiet (they move with every order and record,
    so a fixed range would not follow them: ``live.hotpath.HotPath.follow_touch``)."""
    h, m = st.h, int(st.h[H_MAX_ORDERS])
    out: list[tuple[int, int]] = []

    def at(a: npt.NDArray[Any], i: int) -> None:
        if 0 <= i < a.shape[0]:
            k = min(rows, a.shape[0] - i)
            out.append((int(a.ctypes.data) + i * a.strides[0], k * a.strides[0]))

    for sid in range(st.strat.shape[0]):
        n = int(st.strat[sid, S_N_FREE])
        if n > 0:
            slot = int(st.free[sid * m + n - 1])
            at(st.free, sid * m + n - 1)
            at(st.ord, slot)
            at(st.ordf, slot)
    for q, head, count in ((st.req, H_REQ_HEAD, H_N_REQ), (st.resp, H_RESP_HEAD, H_N_RESP)):
        at(q, int(h[head] + h[count]) % max(q.shape[0], 1))
    for rec, count in ((st.rec_fill, H_N_FILL), (st.rec_ord, H_N_ORD), (st.rec_deny, H_N_DENY),
                       (st.rec_eq, H_N_EQ), (st.rec_pos, H_N_POS), (st.rec_mkt, H_N_MKT)):
        at(rec, int(h[count]))
    return out
