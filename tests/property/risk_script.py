"""A strategy that plays a script of order actions, the same way on both execution paths.

The script is an int64 array, one row per action: ``(local time, op, side, a, b, tif)``.

* ``OP_LIMIT``: a limit order of ``b`` lots, priced ``a`` ticks from our side's touch toward
  the other side (a buy at ``best bid + a``: 0 joins the bid, the spread reaches the ask,
  more goes through it), time in force ``tif``;
* ``OP_MARKET``: a market order of ``b`` lots (IOC);
* ``OP_MODIFY``: our ``a``-th most recent limit order still working (0: the latest) to a
  total of ``b`` lots at its price;
* ``OP_CANCEL``: cancel our ``a``-th most recent limit order still working.

Every action runs at the first timer at or after its time, in row order. The result of row
``i`` is kept — in ``results`` on the Python path, in the compiled state (word ``1 + i``) on
the fast path: an order id (> 0), ``-reason`` of a denied order, ``0`` for a limit order
skipped because our side of the book was empty, a modify's DENY code (``0`` sent, ``-1`` no
such order or one of its requests still in flight) or a cancel's 1 / 0. The compiled
callbacks are module-level ``@njit(cache=True)`` functions so the generated runner can
import them by name.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit

from framework.core.events import BUY
from framework.strategy import CompiledCallbacks, Params, Strategy, nb
from framework.strategy.context import Context

OP_LIMIT, OP_MARKET, OP_MODIFY, OP_CANCEL = 1, 2, 3, 4
T, OP, SIDE, A, B, TIF = range(6)
MAX_ACTIONS = 256  #: rows a script may hold (the compiled state has one word per row)
TIF_WORDS = {nb.TIF_GTC: "gtc", nb.TIF_IOC: "ioc", nb.TIF_FOK: "fok", nb.TIF_POST_ONLY: "post_only"}


def _no_script() -> np.ndarray:
    return np.zeros((0, 6), np.int64)


class ScriptParams(Params):
    script: np.ndarray = dataclasses.field(default_factory=_no_script)


@njit(cache=True)
def _working(ctx, sid, sc, s, i, k) -> int:
    """Id of the ``k``-th most recent limit order placed before row ``i`` still working."""
    for j in range(i - 1, -1, -1):
        oid = s[1 + j]
        if sc[j, OP] == OP_LIMIT and oid > 0 and nb.order_status(ctx, sid, oid) != nb.ST_NONE:
            if k == 0:
                return oid
            k -= 1
    return 0


@njit(cache=True)
def _act(ctx, sid, sc, s, i) -> int:
    op = sc[i, OP]
    side = sc[i, SIDE]
    if op == OP_LIMIT:
        ref = nb.best_bid(ctx, 0) if side == BUY else nb.best_ask(ctx, 0)
        if ref == nb.NO_PRICE:
            return 0
        return nb.submit(ctx, sid, 0, side, ref + side * sc[i, A], sc[i, B], sc[i, TIF])
    if op == OP_MARKET:
        return nb.submit_market(ctx, sid, 0, side, sc[i, B], nb.TIF_IOC)
    oid = _working(ctx, sid, sc, s, i, sc[i, A])
    if op == OP_MODIFY:
        return nb.modify(ctx, sid, oid, nb.order_price(ctx, sid, oid), sc[i, B])
    return 1 if nb.cancel(ctx, sid, oid) else 0


@njit(cache=True)
def _arm(ctx, sid, sc, s) -> None:
    i = s[0]
    if i < sc.shape[0]:
        nb.set_timer(ctx, sid, 0, max(1, sc[i, T] - nb.now(ctx)))


@njit(cache=True)
def script_on_start(ctx, sid, p, s) -> None:
    s[0] = 0
    _arm(ctx, sid, p.script, s)


@njit(cache=True)
def script_on_timer(ctx, sid, p, s) -> None:
    sc = p.script
    now = nb.now(ctx)
    i = s[0]
    while i < sc.shape[0] and sc[i, T] <= now:
        s[1 + i] = _act(ctx, sid, sc, s, i)
        i += 1
    s[0] = i
    _arm(ctx, sid, sc, s)


class ScriptStrategy(Strategy):
    """Plays ``params.script``; the Python and compiled callbacks do the same thing."""

    Params = ScriptParams
    compiled = CompiledCallbacks(
        on_start=script_on_start, on_timer=script_on_timer, state_size=1 + MAX_ACTIONS
    )

    def __init__(self, script: np.ndarray, **kw: object) -> None:
        if len(script) > MAX_ACTIONS:
            msg = f"a script holds at most {MAX_ACTIONS} actions, got {len(script)}"
            raise ValueError(msg)
        super().__init__({"script": np.ascontiguousarray(script, np.int64)}, **kw)  # type: ignore[arg-type]

    @property
    def script(self) -> np.ndarray:
        return self.params.script  # type: ignore[attr-defined,no-any-return]

    def results_of_run(self) -> list[int]:
        """Each row's result, from whichever path the last run took."""
        if self.compiled_state is not None:
            return [int(x) for x in self.compiled_state[1 : 1 + len(self.script)]]
        return list(self.results)

    def _arm(self, ctx: Context) -> None:
        if self._next < len(self.script):
            ctx.set_timer(0, max(1, int(self.script[self._next, T]) - ctx.now))

    def on_start(self, ctx: Context) -> None:
        self.results: list[int] = []
        self._next = 0
        self._arm(ctx)

    def on_timer(self, ctx: Context) -> None:
        sc = self.script
        while self._next < len(sc) and sc[self._next, T] <= ctx.now:
            self.results.append(self._act(ctx, sc[self._next]))
            self._next += 1
        self._arm(ctx)

    def _working(self, ctx: Context, k: int) -> int:
        sc = self.script
        for j in range(len(self.results) - 1, -1, -1):
            oid = self.results[j]
            if sc[j, OP] == OP_LIMIT and oid > 0 and ctx.is_live(oid):
                if k == 0:
                    return oid
                k -= 1
        return 0

    def _act(self, ctx: Context, row: np.ndarray) -> int:
        op, side, a, b = int(row[OP]), int(row[SIDE]), int(row[A]), int(row[B])
        if op == OP_LIMIT:
            ref = ctx.best_bid(0) if side == BUY else ctx.best_ask(0)
            if ref == nb.NO_PRICE:
                return 0
            return ctx.submit(0, side, ref + side * a, b, tif=TIF_WORDS[int(row[TIF])])
        if op == OP_MARKET:
            return ctx.submit_market(0, side, b)
        oid = self._working(ctx, a)
        if op == OP_MODIFY:
            info = ctx.order(oid)
            return ctx.modify(oid, nb.NO_PRICE if info is None else info["price"], b)
        return 1 if ctx.cancel(oid) else 0
