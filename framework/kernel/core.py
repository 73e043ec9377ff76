"""The engine's compiled core: compiled once, whatever strategies run.

The replay loop, the simulated venue, the local order path with its risk checks and the
recorder are C functions here (numba ``cfunc``, cached on disk). Everything else reaches
them through their addresses, which :func:`install` writes into the arena's header
(``H_FN_*``): a strategy's compiled callbacks (:mod:`framework.strategy.nb` calls ``submit``
through ``h[H_FN_SUBMIT]``), the generated runners (:mod:`framework.engine.codegen`) and the
Python driver (:func:`advance_code` here). None of them links the engine's code, so a new
strategy or a new combination of strategies compiles only its own small callbacks, and the
core is compiled once per machine (per version of hftlab's sources: see
``framework/__init__.py`` for the cache folder).

The first compile takes a while; :func:`core` says so on the terminal with the number of
functions compiled so far (numba's compile events), and is silent when the cache is warm.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import cfunc, types
from numba.core.event import Listener

from framework.arena.fnptr import call_i64
from framework.arena.state import (
    H_FN_ADVANCE,
    H_FN_CANCEL,
    H_FN_FINISH,
    H_FN_MODIFY,
    H_FN_SUBMIT,
    H_NOW,
    H_WAKE_INST,
    WAKE_BOOK,
    WAKE_TRADE,
    arena_at,
    unpack,
    unpack_raw,
)
from framework.core.jit import outline
from framework.kernel.local import order_cancel, order_modify, order_submit
from framework.kernel.loop import advance
from framework.kernel.loop import finish as finish_body

_I = types.int64


def _submit(p: int, sid: int, inst: int, side: int, price: int, qty: int, otype: int,
            tif: int) -> int:
    """A new order (after the risk checks): its id, or ``-reason`` when denied."""
    a = arena_at(p)
    return order_submit(a, sid, inst, side, price, qty, otype, tif, unpack_raw(a).h[H_NOW])


def _cancel(p: int, sid: int, oid: int) -> int:
    a = arena_at(p)
    return 1 if order_cancel(a, sid, oid, unpack_raw(a).h[H_NOW]) else 0


def _modify(p: int, sid: int, oid: int, price: int, qty: int) -> int:
    a = arena_at(p)
    return order_modify(a, sid, oid, price, qty, unpack_raw(a).h[H_NOW])


#: name -> (header word of its address, Python body, C signature)
_ENTRY: dict[str, tuple[int, Callable[..., int], Any]] = {
    "advance": (H_FN_ADVANCE, advance, _I(_I)),
    "submit": (H_FN_SUBMIT, _submit, _I(_I, _I, _I, _I, _I, _I, _I, _I)),
    "cancel": (H_FN_CANCEL, _cancel, _I(_I, _I, _I)),
    "modify": (H_FN_MODIFY, _modify, _I(_I, _I, _I, _I, _I)),
    "finish": (H_FN_FINISH, finish_body, _I(_I)),
}


@dataclass(frozen=True)
class Core:
    """The compiled entry points' ``addresses``, by the header word that holds each."""

    addresses: dict[int, int]


_CORE: dict[str, Core] = {}  #: the process's core, once built
_LOCK = threading.Lock()


class _Progress:
    """A line on stderr while the core compiles: silent for a warm cache (loading takes
    well under a second); after ``delay`` seconds the elapsed time and the number of
    functions compiled so far (numba's compile events), updated in place on a terminal,
    every 15 s otherwise."""

    def __init__(self, what: str, delay: float = 1.0) -> None:
        self.what = what
        self.delay = delay
        self.count = 0
        self.t0 = time.perf_counter()
        self.shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._listener = _Counter(self)

    def __enter__(self) -> _Progress:
        from numba.core import event

        event.register("numba:compile", self._listener)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        from numba.core import event

        self._stop.set()
        self._thread.join()
        event.unregister("numba:compile", self._listener)
        if self.shown:
            el = time.perf_counter() - self.t0
            self._print(
                f"{self.what}: done in {el:.0f} s ({self.count} functions); later runs "
                "load it from the cache\n"
            )

    def _print(self, text: str) -> None:
        prefix = "\r\033[K" if sys.stderr.isatty() else ""
        sys.stderr.write(prefix + text)
        sys.stderr.flush()

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        self.shown = True
        tty = sys.stderr.isatty()
        while True:
            el = time.perf_counter() - self.t0
            line = f"{self.what} (first run only) ... {el:.0f} s, {self.count} functions"
            self._print(line if tty else line + "\n")
            if self._stop.wait(0.5 if tty else 15.0):
                return


class _Counter(Listener):
    """Counts the functions whose compilation finished."""

    def __init__(self, progress: _Progress) -> None:
        self.progress = progress

    def on_start(self, event: Any) -> None:
        return None

    def on_end(self, event: Any) -> None:
        self.progress.count += 1


def core(*, quiet: bool = False) -> Core:
    """The engine's compiled entry points: compiled on first use (with a progress line on
    stderr unless ``quiet``), loaded from numba's cache afterwards, once per process."""
    if "core" in _CORE:
        return _CORE["core"]
    with _LOCK:
        if "core" not in _CORE:
            addresses: dict[int, int] = {}
            with _Progress("compiling the engine") if not quiet else nullcontext():
                for word, body, sig in _ENTRY.values():
                    f = cfunc(sig, cache=True)(body)
                    addresses[word] = int(f.address or 0)
            _CORE["core"] = Core(addresses)
    return _CORE["core"]


def install(a: npt.NDArray[np.int64], *, quiet: bool = False) -> None:
    """Write the core's entry-point addresses into arena ``a``'s header."""
    h = unpack(a).h
    for word, addr in core(quiet=quiet).addresses.items():
        h[word] = addr


# --- calls through the installed addresses, for Python callers ----------------------------------
#: the Python driver's codes (:func:`advance_code`) for a book change of instrument ``i``
#: (``WAKE_CODES + 2 * i``) and a trade (``+ 1``): above every WAKE_*
WAKE_CODES = 16


@outline(python=True)
def advance_code(p: int) -> int:
    """Run the arena at address ``p`` to its next wake-up (through ``h[H_FN_ADVANCE]``),
    for the Python driver (one plain int is the cheapest argument to pass from Python, paid
    on every wake-up). A book or trade wake-up comes back as one code naming the instrument
    too (``WAKE_CODES + 2 * inst``, ``+ 1`` for a trade): the driver finds its callbacks
    with one list index, without reading the header back."""
    h = unpack_raw(arena_at(p)).h
    w = call_i64(h[H_FN_ADVANCE], (np.int64(p),))
    if w == WAKE_BOOK:
        return WAKE_CODES + 2 * h[H_WAKE_INST]
    if w == WAKE_TRADE:
        return WAKE_CODES + 2 * h[H_WAKE_INST] + 1
    return w


@outline(python=True)
def finish(a: npt.NDArray[np.int64]) -> int:
    """The last sample and the orders still working at the end into the order log (so the
    orders table lists every order sent); returns how many were still working."""
    return call_i64(unpack_raw(a).h[H_FN_FINISH], (np.int64(a.ctypes.data),))


__all__ = ["WAKE_CODES", "Core", "advance_code", "core", "finish", "install"]
