"""The strategy API on the raw arena: what the Python Context calls (one array argument,
so a call costs ~200 ns rather than microseconds for a tuple of views; the ``*_at`` forms
take the arena's address as an int, the cheapest argument to pass from Python).

:func:`entry` gives a compiled function's entry point for fixed argument types: calling it
skips numba's dispatcher (argument type inference and overload lookup), which halves the
cost of a call from Python. The Python path makes one such call per strategy callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, types

from framework.engine.fnptr import call_i64
from framework.engine.state import H_FN_ADVANCE, H_FN_FINISH, arena_at, unpack_raw
from framework.strategy import nb


@njit(cache=True)
def advance_at(p: int) -> int:
    """Run the arena at address ``p`` to its next wake-up (the core's ``advance``): one plain
    int is the cheapest argument to pass from Python, paid on every strategy wake-up."""
    return call_i64(unpack_raw(arena_at(p)).h[H_FN_ADVANCE], (np.int64(p),))


@njit(cache=True)
def submit(a: np.ndarray, sid: int, inst: int, side: int, price: int, qty: int, tif: int) -> int:
    return nb.submit(a, sid, inst, side, price, qty, tif)


@njit(cache=True)
def submit_at(p: int, sid: int, inst: int, side: int, price: int, qty: int, tif: int) -> int:
    return nb.submit(arena_at(p), sid, inst, side, price, qty, tif)


@njit(cache=True)
def cancel_at(p: int, sid: int, oid: int) -> bool:
    return nb.cancel(arena_at(p), sid, oid)


@njit(cache=True)
def submit_market(a: np.ndarray, sid: int, inst: int, side: int, qty: int, tif: int) -> int:
    return nb.submit_market(a, sid, inst, side, qty, tif)


@njit(cache=True)
def cancel(a: np.ndarray, sid: int, oid: int) -> bool:
    return nb.cancel(a, sid, oid)


@njit(cache=True)
def modify(a: np.ndarray, sid: int, oid: int, price: int, qty: int) -> int:
    return nb.modify(a, sid, oid, price, qty)


@njit(cache=True)
def set_timer(a: np.ndarray, sid: int, every_ns: int, first_in_ns: int) -> None:
    nb.set_timer(a, sid, every_ns, first_in_ns)


@njit(cache=True)
def set_trading_state(a: np.ndarray, sid: int, state: int) -> None:
    nb.set_trading_state(a, sid, state)


@njit(cache=True)
def equity(a: np.ndarray, sid: int) -> float:
    return nb.equity(a, sid)


@njit(cache=True)
def order_info(a: np.ndarray, sid: int, oid: int, out: np.ndarray) -> None:
    """status, price, qty, filled of a live order into ``out``."""
    out[0] = nb.order_status(a, sid, oid)
    out[1] = nb.order_price(a, sid, oid)
    out[2] = nb.order_qty(a, sid, oid)
    out[3] = nb.order_filled(a, sid, oid)


@njit(cache=True)
def level_qty(a: np.ndarray, inst: int, side: int, price: int) -> int:
    return nb.level_qty(a, inst, side, price)


@njit(cache=True)
def depth(a: np.ndarray, inst: int, side: int, n: int, out: np.ndarray) -> int:
    return nb.depth(a, inst, side, n, out)


@njit(cache=True)
def finish(a: np.ndarray) -> int:
    """The last sample and the orders still working at the end into the order log (so the
    orders table lists every order sent); returns how many were still working."""
    return call_i64(unpack_raw(a).h[H_FN_FINISH], (np.int64(a.ctypes.data),))


ARENA_T = types.Array(types.int64, 1, "C")
I64_T = types.int64


def entry(fn: Any, *argtypes: Any) -> Callable[..., Any]:
    """The compiled entry point of numba function ``fn`` for ``argtypes`` (compiled or
    loaded from the cache now). Call it with exactly those types: Python ints for int64,
    a C-contiguous int64 array for the arena."""
    fn.compile(argtypes)
    return fn.overloads[argtypes].entry_point
