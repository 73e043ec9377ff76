"""A market maker that follows the touch by modifying its quotes (no bundled one does), for
the tests of a replace in flight at a crash; imported by ``hftlab live`` as
``tests.integration.live.modify_mm:ModifyMM``.

Two test-only hooks the runner's process installs when it imports this module (the test
sets them in its environment; nothing else is changed):

* ``HFTLAB_TEST_CRASH=WHERE:N`` kills the process (SIGKILL) at the ``N``-th time of
  ``WHERE``: ``before`` -- a replace (OUCH Replace Order, FIX OrderCancelReplaceRequest)
  was journaled (its KIND_REF) and is about to be written: it never leaves; ``after`` -- it
  was just written, its answer not read;
  ``waiting`` -- a modify was journaled and waits for its order's answer before it can go.
* Every recovered run, after its reconciliation, and every run at the start of its orderly
  stop prints ``order views: ... differences: [...]``: each order as the engine (the
  strategy's view) and as the gateway (the venue's answers) hold it, compared where no
  request of it is in flight.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from framework.arena.state import (
    H_MAX_ORDERS,
    O_CXL_SENT,
    O_FILLED,
    O_ID,
    O_LPRICE,
    O_LQTY,
    O_MOD_SENT,
    O_STRAT,
    REQ_MODIFY,
)
from framework.core.events import BUY, SELL
from framework.risk.limits import RiskLimits
from framework.strategy import Params, Strategy, nb, param
from framework.strategy.context import Context
from live.gateways.base import TERMINAL, OrderState
from live.gateways.fix import FixGateway
from live.gateways.ouch import OuchGateway
from live.runner import LiveRunner, order_key
from tests.integration.live.live_helpers import CRASH_ENV

NO_PRICE = nb.NO_PRICE


class ModifyMMParams(Params):
    max_position: int = param(4, ge=1, note="lots")  #: a side is not quoted past it


class ModifyMM(Strategy):
    """One quote a side at the touch, moved there by modifies; its size (1 or 2 lots)
    follows the price's parity, so modifies change the size too."""

    Params = ModifyMMParams
    risk = RiskLimits(max_position=10, max_open_orders=10)

    def on_start(self, ctx: Context) -> None:
        self.ids = {BUY: 0, SELL: 0}

    def on_book(self, ctx: Context, inst: int) -> None:
        bb, ba = ctx.best_bids[inst], ctx.best_asks[inst]
        if bb == NO_PRICE or ba == NO_PRICE:
            return
        pos = ctx.positions[inst]
        lim = self.params.max_position
        for side, want, allowed in ((BUY, bb, pos < lim), (SELL, ba, pos > -lim)):
            oid = self.ids[side]
            if oid and not ctx.is_live(oid):
                oid = self.ids[side] = 0
            qty = 1 + want % 2
            if oid:
                o = ctx.order(oid)
                assert o is not None
                if not allowed:
                    ctx.cancel(oid)  # False while one is in flight: asked again next time
                elif (o["price"], o["qty"]) != (want, qty):
                    ctx.modify(oid, want, qty)  # -1 while a modify or cancel is in flight
            elif allowed:
                new = ctx.submit(inst, side, want, qty)
                if new > 0:
                    self.ids[side] = new


# --- the test-only hooks ------------------------------------------------------------------
def _die(what: str) -> None:
    print(f"test crash hook: {what}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def order_views(runner: LiveRunner) -> tuple[int, int, list[str]]:
    """(orders compared, orders with a request in flight, differences) between the engine's
    orders and the gateway's, after the gateway's events are taken into the engine."""
    gw = runner.gateway
    if gw is None:  # (paper: no venue's view to compare)
        return 0, 0, []
    runner.take_gateway_events()
    st = runner.engine.st
    m = int(st.h[H_MAX_ORDERS])
    compared = busy = 0
    diffs: list[str] = []
    for key, live in runner.orders.items():
        o = gw.orders.get(key)
        if o is None:
            continue
        if live.waiting or o.state in (OrderState.PENDING_NEW, OrderState.PENDING_CANCEL,
                                       OrderState.PENDING_REPLACE):
            busy += 1
            continue
        compared += 1
        row = st.ord[live.sid * m + live.oid % m]
        mine = int(row[O_ID]) == live.oid and int(row[O_STRAT]) == live.sid
        if o.state in TERMINAL:
            if mine:
                diffs.append(f"{key}: {o.state} at the venue, working in the engine")
            continue
        got = ((int(row[O_LPRICE]), int(row[O_LQTY]), int(row[O_FILLED]), int(row[O_MOD_SENT]),
                int(row[O_CXL_SENT])) if mine else None)
        if got != (o.price, o.qty, o.filled, 0, 0):
            diffs.append(f"{key}: venue {o.state} {o.qty}@{o.price} filled {o.filled}; engine "
                         + ("none" if got is None else
                            "{}@{} filled {} modify in flight {} cancel in flight {}".format(
                                got[1], got[0], *got[2:])))
    return compared, busy, diffs


def _print_views(runner: LiveRunner, when: str) -> None:
    n, busy, diffs = order_views(runner)
    print(f"order views {when}: {n} compared, {busy} in flight, differences: {diffs}",
          flush=True)


def _crash_around_replace(cls: type[OuchGateway] | type[FixGateway], spec: str, before: bool,
                          n: int, seen: list[int]) -> None:
    """Kill the process at the ``n``-th replace (counted in ``seen``) of a gateway class:
    ``before`` its bytes are written, else right after."""
    send = cls.replace

    def replace(self: Any, key: str, price: int, qty: int) -> None:
        seen[0] += 1
        if seen[0] == n and before:
            _die(f"{spec}: replace of {key} journaled, not sent")
        send(self, key, price, qty)
        if seen[0] == n:
            _die(f"{spec}: replace of {key} sent, not answered")

    cls.replace = replace  # type: ignore[method-assign]


def _install() -> None:
    recon = LiveRunner.reconcile
    wind = LiveRunner._wind_down

    async def reconcile(self: LiveRunner, rec: Any, *args: Any, **kw: Any) -> None:
        await recon(self, rec, *args, **kw)
        _print_views(self, "after recovery")

    async def wind_down(self: LiveRunner, *args: Any, **kw: Any) -> None:
        _print_views(self, "at the stop")
        await wind(self, *args, **kw)

    LiveRunner.reconcile = reconcile  # type: ignore[method-assign]
    LiveRunner._wind_down = wind_down  # type: ignore[method-assign]
    spec = os.environ.get(CRASH_ENV, "")
    if not spec:
        return
    where, _, nth = spec.partition(":")
    n = int(nth)
    seen = [0]
    if where in ("before", "after"):
        for cls in (OuchGateway, FixGateway):
            _crash_around_replace(cls, spec, where == "before", n, seen)
    elif where == "waiting":
        route: Callable[..., None] = LiveRunner._route

        def _route(self: LiveRunner, r: Any, answers: list[Any]) -> None:
            route(self, r, answers)
            live = self.orders.get(order_key(int(r["strategy"]), int(r["oid"])))
            if r["kind"] == REQ_MODIFY and live is not None and live.waiting:
                seen[0] += 1
                if seen[0] == n:
                    _die(f"{spec}: modify waits for its order's answer")

        LiveRunner._route = _route  # type: ignore[method-assign]
    else:
        msg = f"{CRASH_ENV}={spec!r}: give before:N, after:N or waiting:N"
        raise ValueError(msg)


_install()
