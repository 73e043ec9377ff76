"""A strategy that plays a script of order actions, the same way on both execution paths.

The script is an int64 array, one row per action: ``(local time, op, side, which, qty, tif,
px)``. Prices are ``px`` ticks from our side's touch toward the other side: a buy at
``best bid + px`` (0 joins the bid, the spread reaches the ask, more goes through it), a sell
at ``best ask - px``.

* ``OP_LIMIT``: a ``side`` limit order of ``qty`` lots at ``px``, time in force ``tif``;
* ``OP_MARKET``: a ``side`` market order of ``qty`` lots (IOC);
* ``OP_MODIFY``: our ``which``-th most recent ``side`` limit order still working (0: the
  latest) to a total of ``qty`` lots, at ``px`` (``KEEP``: at its price);
* ``OP_CANCEL``: cancel our ``which``-th most recent ``side`` limit order still working.

Every action runs at the first timer at or after its time, in row order. The result of row
``i`` is kept — in ``results`` on the Python path, in the compiled state (word ``1 + i``) on
the fast path: an order id (> 0), ``-reason`` of a denied order, ``0`` for an order skipped
because our side of the book was empty, a modify's DENY code (``0`` sent, ``-1`` not sent:
no such order, one of its requests still in flight, or no price) or a cancel's 1 / 0. The
compiled callbacks are module-level ``@njit(cache=True)`` functions so the generated runner
can import them by name.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit

from framework.core.events import BUY
from framework.strategy import CompiledCallbacks, Params, Strategy, nb
from framework.strategy.context import Context

OP_LIMIT, OP_MARKET, OP_MODIFY, OP_CANCEL = 1, 2, 3, 4
T, OP, SIDE, WHICH, QTY, TIF, PX = range(7)
COLS = 7
KEEP = 1 << 40  #: ``px`` of a modify that keeps the order's price
MAX_ACTIONS = 256  #: rows a script may hold (the compiled state has one word per row)
TIF_WORDS = {nb.TIF_GTC: "gtc", nb.TIF_IOC: "ioc", nb.TIF_FOK: "fok", nb.TIF_POST_ONLY: "post_only"}


def _no_script() -> np.ndarray:
    return np.zeros((0, COLS), np.int64)


class ScriptParams(Params):
    script: np.ndarray = dataclasses.field(default_factory=_no_script)


@njit(cache=True)
def _price(ctx, side, px) -> int:
    """``px`` ticks from our side's touch toward the other side, or NO_PRICE."""
    ref = nb.best_bid(ctx, 0) if side == BUY else nb.best_ask(ctx, 0)
    return nb.NO_PRICE if ref == nb.NO_PRICE else ref + side * px


@njit(cache=True)
def _working(ctx, sid, sc, s, i) -> int:
    """Id of the ``which``-th most recent limit order of row ``i``'s side still working."""
    k = sc[i, WHICH]
    for j in range(i - 1, -1, -1):
        oid = s[1 + j]
        if sc[j, OP] != OP_LIMIT or sc[j, SIDE] != sc[i, SIDE] or oid <= 0:
            continue
        if nb.order_status(ctx, sid, oid) != nb.ST_NONE:
            if k == 0:
                return oid
            k -= 1
    return 0


@njit(cache=True)
def _act(ctx, sid, sc, s, i) -> int:
    op = sc[i, OP]
    side = sc[i, SIDE]
    if op == OP_MARKET:
        return nb.submit_market(ctx, sid, 0, side, sc[i, QTY], nb.TIF_IOC)
    if op == OP_LIMIT:
        price = _price(ctx, side, sc[i, PX])
        if price == nb.NO_PRICE:
            return 0
        return nb.submit(ctx, sid, 0, side, price, sc[i, QTY], sc[i, TIF])
    oid = _working(ctx, sid, sc, s, i)
    if op == OP_CANCEL:
        return 1 if nb.cancel(ctx, sid, oid) else 0
    price = nb.order_price(ctx, sid, oid)
    if sc[i, PX] != KEEP:
        price = _price(ctx, side, sc[i, PX])
        if price == nb.NO_PRICE:
            return -1
    return nb.modify(ctx, sid, oid, price, sc[i, QTY])


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
        if len(script) > MAX_ACTIONS or script.shape[1:] != (COLS,):
            msg = f"a script is at most {MAX_ACTIONS} rows of {COLS}, got {script.shape}"
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
            self.results.append(self._act(ctx, [int(x) for x in sc[self._next]]))
            self._next += 1
        self._arm(ctx)

    def _price(self, ctx: Context, side: int, px: int) -> int:
        ref = ctx.best_bid(0) if side == BUY else ctx.best_ask(0)
        return nb.NO_PRICE if ref == nb.NO_PRICE else ref + side * px

    def _working(self, ctx: Context, side: int, k: int) -> int:
        sc = self.script
        for j in range(len(self.results) - 1, -1, -1):
            oid = self.results[j]
            if sc[j, OP] != OP_LIMIT or sc[j, SIDE] != side or oid <= 0:
                continue
            if ctx.is_live(oid):
                if k == 0:
                    return oid
                k -= 1
        return 0

    def _act(self, ctx: Context, row: list[int]) -> int:
        op, side = row[OP], row[SIDE]
        if op == OP_MARKET:
            return ctx.submit_market(0, side, row[QTY])
        if op == OP_LIMIT:
            price = self._price(ctx, side, row[PX])
            if price == nb.NO_PRICE:
                return 0
            return ctx.submit(0, side, price, row[QTY], tif=TIF_WORDS[row[TIF]])
        oid = self._working(ctx, side, row[WHICH])
        if op == OP_CANCEL:
            return 1 if ctx.cancel(oid) else 0
        info = ctx.order(oid)
        price = nb.NO_PRICE if info is None else info["price"]
        if row[PX] != KEEP:
            price = self._price(ctx, side, row[PX])
            if price == nb.NO_PRICE:
                return -1
        return ctx.modify(oid, price, row[QTY])
