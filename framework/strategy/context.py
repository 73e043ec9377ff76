"""The Context a Python strategy talks to: time, books, position, orders, timers.

It reads the engine's arena directly (numpy views) and sends orders through the same
compiled functions a compiled strategy calls, so both paths behave identically. The same
interface is what paper and live trading will provide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from framework.arena.enums import (
    DENY_NAMES,
    REJ_NAMES,
    STATUS_NAMES,
    TIF_FOK,
    TIF_GTC,
    TIF_IOC,
    TIF_POST_ONLY,
    TRADING_STATE_NAMES,
)
from framework.arena.fnptr import ARENA_T, I64_T, entry
from framework.arena.state import (
    H_MAX_ORDERS,
    H_NOW,
    I_BA,
    I_BAQ,
    I_BB,
    I_BBQ,
    I_LAST_TRADE_PX,
    I_LAST_TRADE_QTY,
    I_LAST_TRADE_SIDE,
    O_FILLED,
    O_ID,
    O_LPRICE,
    O_LQTY,
    O_STATUS,
    O_STRAT,
    P_N_DONE,
    P_N_OPEN,
    P_OPEN_BUY,
    P_OPEN_SELL,
    P_POS,
    arena_at,
    unpack,
)
from framework.core.errors import ConfigError
from framework.core.events import BUY, SELL
from framework.features.kernels import FEATURE_NAMES
from framework.strategy import nb


def _flat(x: np.ndarray) -> memoryview:
    """A flat int64 memoryview of an arena segment (reads give Python ints)."""
    return memoryview(x.reshape(-1)).cast("B").cast("q")  # type: ignore[arg-type]


def _col(table: np.ndarray, c: int) -> memoryview:
    """Column ``c`` of a 2-D int64 arena table as a read-only (strided) memoryview."""
    return memoryview(table[:, c]).toreadonly()  # type: ignore[arg-type]


_TIF = {"gtc": TIF_GTC, "ioc": TIF_IOC, "fok": TIF_FOK, "post_only": TIF_POST_ONLY}
_SIDE = {"buy": BUY, "sell": SELL, BUY: BUY, SELL: SELL}


@dataclass(frozen=True)
class FillInfo:
    order_id: int
    side: int
    price: int  #: ticks
    qty: int  #: lots
    inst: int = 0  #: instrument index


@dataclass(frozen=True)
class OrderUpdate:
    order_id: int
    kind: str  #: ack, canceled, rejected, expired, modified, cancel_rejected
    reason: str  #: reject reason name ("" when none)


class Context:
    """What a Python strategy sees. Prices in ticks, sizes in lots, times in ns.

    Besides the methods, the values a hot callback reads most are also read-only views
    indexed by instrument — ``best_bids``, ``best_asks``, ``bid_qtys``, ``ask_qtys``,
    ``positions``, ``finished_counts`` — with ``ctx.best_bids[i] == ctx.best_bid(i)``. A
    subscript costs ~25 ns against ~50 ns for a method call, which matters in a callback made
    a million times a second (strategies/one_tick_mm.py reads the touch that way).
    """

    # slots: attribute reads on the hot path are a little cheaper than through a dict
    __slots__ = (
        "__dict__",
        "_a",
        "_cancel",
        "_h",
        "_hv",
        "_level_qty",
        "_max_orders",
        "_nopen",
        "_ofilled",
        "_oid",
        "_oprice",
        "_oqty",
        "_ostatus",
        "_ostrat",
        "_p",
        "_pos",
        "_slot0",
        "_st",
        "_submit",
        "ask_qtys",
        "best_asks",
        "best_bids",
        "bid_qtys",
        "finished_counts",
        "instruments",
        "positions",
        "sid",
    )

    def __init__(self, arena: np.ndarray, sid: int, instruments: list[Any]) -> None:
        self._a = arena
        self._st = unpack(arena)
        self._h = self._st.h
        self._pos = self._st.pos
        self.sid = sid
        self.instruments = instruments  #: Instrument objects, by index
        # Python ints straight from the arena: one memoryview per column read on the hot
        # path, indexed by instrument or order slot (a numpy element read costs ~100 ns and
        # boxes a numpy scalar; a memoryview read ~25 ns, with no index arithmetic in Python)
        # our order slots: [_slot0, _slot0 + _max_orders) of the table (state.py, SEG_ORD)
        self._max_orders = int(self._h[H_MAX_ORDERS])
        self._slot0 = sid * self._max_orders
        self._hv = _flat(self._h)
        inst, ordm, mine = self._st.inst, self._st.ord, self._pos[sid]
        self.best_bids = _col(inst, I_BB)  #: best bid (ticks) per instrument, as best_bid()
        self.best_asks = _col(inst, I_BA)
        self.bid_qtys = _col(inst, I_BBQ)  #: lots at the best bid per instrument
        self.ask_qtys = _col(inst, I_BAQ)
        self.positions = _col(mine, P_POS)  #: our position (lots) per instrument
        self.finished_counts = _col(mine, P_N_DONE)  #: as finished_count(), per instrument
        self._nopen = _col(mine, P_N_OPEN)
        self._oid, self._ostrat = _col(ordm, O_ID), _col(ordm, O_STRAT)
        # price and size as the venue last confirmed them (a modify in flight is not yet)
        self._ostatus, self._oprice = _col(ordm, O_STATUS), _col(ordm, O_LPRICE)
        self._oqty, self._ofilled = _col(ordm, O_LQTY), _col(ordm, O_FILLED)
        # order actions through compiled entry points (no dispatcher on the hot path)
        A, N = ARENA_T, I64_T
        self._p = int(arena.ctypes.data)  # self._a keeps the arena alive
        self._submit = entry(_submit_at, N, N, N, N, N, N, N)
        self._cancel = entry(_cancel_at, N, N, N)
        self._level_qty = entry(nb.level_qty, A, N, N, N)

    # --- time and market ------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Current local time (ns since the epoch)."""
        return self._hv[H_NOW]

    def best_bid(self, inst: int = 0) -> int:
        """Best bid in ticks as of the last whole message seen, or ``NO_PRICE`` (the minimum
        int64) when the side is empty."""
        return self.best_bids[inst]

    def best_ask(self, inst: int = 0) -> int:
        return self.best_asks[inst]

    def bid_qty(self, inst: int = 0) -> int:
        return self.bid_qtys[inst]

    def ask_qty(self, inst: int = 0) -> int:
        return self.ask_qtys[inst]

    def level_qty(self, inst: int, side: int | str, price: int) -> int:
        """Lots resting at ``price`` on ``side`` (0 when the level is empty)."""
        return self._level_qty(self._a, inst, _SIDE[side], price)

    def depth(self, inst: int, side: int | str, n: int = 5) -> np.ndarray:
        """Up to ``n`` levels of ``side`` as an int64 array of (price, qty) rows, best first."""
        out = np.zeros((n, 2), np.int64)
        k = nb.depth(self._a, inst, _SIDE[side], n, out)
        return out[:k]

    def feature(self, inst: int, name: str) -> float:
        """Latest ``microprice``, ``imbalance``, ``volatility``, ``trade_flow_imbalance``,
        ``regime`` or ``regime_prob`` of ``inst`` (NaN until defined; the strategy class must
        set ``features = True``; the regime needs the run's ``feature_model``)."""
        try:
            k = FEATURE_NAMES.index(name)
        except ValueError as exc:
            msg = f"feature {name!r} is unknown; choose one of {FEATURE_NAMES}"
            raise ConfigError(msg) from exc
        return float(self._st.feat[inst, k])

    def last_trade(self, inst: int = 0) -> tuple[int, int, int]:
        """(price, qty, aggressor side) of the last trade seen."""
        r = self._st.inst[inst]
        return int(r[I_LAST_TRADE_PX]), int(r[I_LAST_TRADE_QTY]), int(r[I_LAST_TRADE_SIDE])

    # --- our state ------------------------------------------------------------------------
    def position(self, inst: int = 0) -> int:
        """Position in lots, as fills have reported it."""
        return self.positions[inst]

    def open_qty(self, inst: int = 0) -> tuple[int, int]:
        """Lots our (buy, sell) orders may still fill: what risk counts, so a modify up or a
        cancel in flight counts at its worst case until the venue answers."""
        p = self._pos[self.sid, inst]
        return int(p[P_OPEN_BUY]), int(p[P_OPEN_SELL])

    def open_order_count(self, inst: int = 0) -> int:
        """Orders of ours on ``inst`` still working (as :meth:`is_live` counts them)."""
        return self._nopen[inst]

    def finished_count(self, inst: int = 0) -> int:
        """Orders of ours on ``inst`` that have finished so far (filled, cancelled, rejected
        or expired). It only grows: while it stands still, every order that was working
        still is, so one read can stand in for an :meth:`is_live` per order."""
        return self.finished_counts[inst]

    def equity(self) -> float:
        return float(nb.equity(self._a, self.sid))

    def _slot(self, oid: int) -> int:
        """The slot of a live order of ours, or -1 (ids encode their place among our slots:
        id % capacity)."""
        return self._slot0 + oid % self._max_orders if self.is_live(oid) else -1

    def is_live(self, oid: int) -> bool:
        """Whether the order is still working (not filled, cancelled, rejected or expired)."""
        slot = self._slot0 + oid % self._max_orders
        return oid > 0 and self._oid[slot] == oid and self._ostrat[slot] == self.sid

    def order(self, oid: int) -> dict[str, Any] | None:
        """Status, price, qty and filled qty of a live order; None once it has finished."""
        slot = self._slot(oid)
        if slot < 0:
            return None
        return {
            "status": STATUS_NAMES[self._ostatus[slot]],
            "price": self._oprice[slot],
            "qty": self._oqty[slot],
            "filled": self._ofilled[slot],
        }

    # --- actions ----------------------------------------------------------------------------
    def submit(self, inst: int, side: int | str, price: int, qty: int, *, tif: str = "gtc") -> int:
        """A limit order; returns its id (> 0), or ``-reason`` if risk denied it
        (``framework.arena.enums.DENY_NAMES`` names the reasons)."""
        try:
            t = _TIF[tif]
            s = _SIDE[side]
        except KeyError as exc:
            msg = f"bad order argument {exc}: side is 'buy'/'sell'/+1/-1, tif one of {list(_TIF)}"
            raise ConfigError(msg) from exc
        # the entry point converts its arguments as int() would (a float is truncated, a
        # numpy integer taken as is) and returns a Python int: an int() around each cost
        # ~40 ns, most of a submission's own Python time
        return self._submit(self._p, self.sid, inst, s, price, qty, t)

    def submit_market(self, inst: int, side: int | str, qty: int, *, tif: str = "ioc") -> int:
        return int(nb.submit_market(self._a, self.sid, inst, _SIDE[side], int(qty), _TIF[tif]))

    def cancel(self, oid: int) -> bool:
        return self._cancel(self._p, self.sid, oid) != 0

    def modify(self, oid: int, price: int, qty: int) -> int:
        return int(nb.modify(self._a, self.sid, int(oid), int(price), int(qty)))

    def set_timer(self, every_ns: int, first_in_ns: int = -1) -> None:
        nb.set_timer(self._a, self.sid, int(every_ns), int(first_in_ns))

    def set_trading_state(self, state: str) -> None:
        """``"active"``, ``"reducing"`` (only orders that shrink the position pass risk) or
        ``"halted"`` (no new orders)."""
        codes = {v: k for k, v in TRADING_STATE_NAMES.items()}
        if state not in codes:
            msg = f"trading state {state!r} is unknown; choose one of {sorted(codes)}"
            raise ConfigError(msg)
        nb.set_trading_state(self._a, self.sid, codes[state])

    @staticmethod
    def deny_reason(code: int) -> str:
        return DENY_NAMES.get(-code if code < 0 else code, str(code))

    @staticmethod
    def reject_reason(code: int) -> str:
        return REJ_NAMES.get(code, str(code))


# the Context's fast order path: entry points taking the arena's address (one plain int is
# the cheapest argument to pass from Python), called without numba's dispatcher
@njit(cache=True)
def _submit_at(p: int, sid: int, inst: int, side: int, price: int, qty: int, tif: int) -> int:
    return nb.submit(arena_at(p), sid, inst, side, price, qty, tif)


@njit(cache=True)
def _cancel_at(p: int, sid: int, oid: int) -> bool:
    return nb.cancel(arena_at(p), sid, oid)
