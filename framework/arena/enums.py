"""Codes shared by the engine, risk, portfolio and strategies (usable inside numba code).

Order outcomes come in three kinds, as in vectorbt: bad input raises (:class:`OrderError`),
a limit breach is a *denial* with a reason code (recorded, the strategy is told), a venue
refusal is a *reject* with a reason code.
"""

from __future__ import annotations

from typing import Final

# --- order types and time in force ------------------------------------------------------
ORD_LIMIT: Final = 0
ORD_MARKET: Final = 1
ORDER_TYPE_NAMES: Final = {ORD_LIMIT: "limit", ORD_MARKET: "market"}

TIF_GTC: Final = 0  #: rests until cancelled
TIF_IOC: Final = 1  #: fill what crosses now, cancel the rest
TIF_FOK: Final = 2  #: fill entirely now or cancel entirely
TIF_POST_ONLY: Final = 3  #: rest only; rejected if it would take liquidity (GTX)
TIF_NAMES: Final = {TIF_GTC: "gtc", TIF_IOC: "ioc", TIF_FOK: "fok", TIF_POST_ONLY: "post_only"}

# --- order status (the strategy's view) and the transition table -------------------------
ST_NONE: Final = 0
ST_PENDING_NEW: Final = 1  #: sent, not yet acknowledged
ST_NEW: Final = 2  #: acknowledged, resting, nothing filled
ST_PARTIAL: Final = 3  #: partly filled, resting
ST_FILLED: Final = 4
ST_PENDING_CANCEL: Final = 5
ST_CANCELED: Final = 6
ST_REJECTED: Final = 7  #: refused by the venue
ST_DENIED: Final = 8  #: refused by pre-trade risk, never sent
ST_EXPIRED: Final = 9  #: IOC/FOK/market remainder cancelled by the venue
ST_PENDING_MODIFY: Final = 10
STATUS_NAMES: Final = {
    ST_NONE: "none",
    ST_PENDING_NEW: "pending_new",
    ST_NEW: "new",
    ST_PARTIAL: "partially_filled",
    ST_FILLED: "filled",
    ST_PENDING_CANCEL: "pending_cancel",
    ST_CANCELED: "canceled",
    ST_REJECTED: "rejected",
    ST_DENIED: "denied",
    ST_EXPIRED: "expired",
    ST_PENDING_MODIFY: "pending_modify",
}
TERMINAL_STATUSES: Final = (ST_FILLED, ST_CANCELED, ST_REJECTED, ST_DENIED, ST_EXPIRED)

# --- risk denial reasons -------------------------------------------------------------------
DENY_NONE: Final = 0
DENY_MAX_ORDER_QTY: Final = 1
DENY_MAX_NOTIONAL: Final = 2
DENY_PRICE_COLLAR: Final = 3
DENY_MAX_POSITION_INSTRUMENT: Final = 4
DENY_MAX_POSITION_STRATEGY: Final = 5
DENY_MAX_OPEN_ORDERS: Final = 6
DENY_RATE_LIMIT: Final = 7
DENY_SELF_TRADE: Final = 8
DENY_HALTED: Final = 9
DENY_REDUCE_ONLY: Final = 10  #: trading state "reducing": the order would grow the position
DENY_KILL_SWITCH: Final = 11
DENY_BAD_ORDER: Final = 12  #: non-positive size, price off the book's range, unknown instrument
DENY_NAMES: Final = {
    DENY_NONE: "ok",
    DENY_MAX_ORDER_QTY: "max_order_qty",
    DENY_MAX_NOTIONAL: "max_notional",
    DENY_PRICE_COLLAR: "price_collar",
    DENY_MAX_POSITION_INSTRUMENT: "max_position_instrument",
    DENY_MAX_POSITION_STRATEGY: "max_position_strategy",
    DENY_MAX_OPEN_ORDERS: "max_open_orders",
    DENY_RATE_LIMIT: "rate_limit",
    DENY_SELF_TRADE: "self_trade",
    DENY_HALTED: "halted",
    DENY_REDUCE_ONLY: "reduce_only",
    DENY_KILL_SWITCH: "kill_switch",
    DENY_BAD_ORDER: "bad_order",
}

# --- venue reject reasons --------------------------------------------------------------------
REJ_NONE: Final = 0
REJ_POST_ONLY_WOULD_TAKE: Final = 1
REJ_UNKNOWN_ORDER: Final = 2  #: cancel/modify of an order the venue no longer has
REJ_NO_LIQUIDITY: Final = 3  #: market order into an empty book side
REJ_HALTED: Final = 4  #: instrument halted at the venue
REJ_NAMES: Final = {
    REJ_NONE: "ok",
    REJ_POST_ONLY_WOULD_TAKE: "post_only_would_take",
    REJ_UNKNOWN_ORDER: "unknown_order",
    REJ_NO_LIQUIDITY: "no_liquidity",
    REJ_HALTED: "halted",
}

# --- trading state (risk) ----------------------------------------------------------------------
TS_ACTIVE: Final = 0
TS_REDUCING: Final = 1
TS_HALTED: Final = 2
TRADING_STATE_NAMES: Final = {TS_ACTIVE: "active", TS_REDUCING: "reducing", TS_HALTED: "halted"}

# --- latency and queue models ----------------------------------------------------------------
LAT_CONSTANT: Final = 0
LAT_FEED: Final = 1  #: entry/response = multiplier x the latest feed latency (local - exch)
LAT_EMPIRICAL: Final = 2  #: a time series of (ts, entry, response) measured latencies

QUEUE_RISK_AVERSE: Final = 0  #: only trades at our price advance us; we are last in line
QUEUE_POWER: Final = 1  #: probabilistic: cancels fall ahead with weight f(x) = x**n
QUEUE_LOG: Final = 2  #: probabilistic: f(x) = log(1 + x)
QUEUE_FIFO: Final = 3  #: exact FIFO against L3 order-id data
QUEUE_MODEL_NAMES: Final = {
    QUEUE_RISK_AVERSE: "risk_averse",
    QUEUE_POWER: "power",
    QUEUE_LOG: "log",
    QUEUE_FIFO: "fifo",
}
LATENCY_MODEL_NAMES: Final = {
    LAT_CONSTANT: "constant",
    LAT_FEED: "feed",
    LAT_EMPIRICAL: "empirical",
}

# --- liquidity flags of fills -----------------------------------------------------------------
LIQ_MAKER: Final = 0
LIQ_TAKER: Final = 1
