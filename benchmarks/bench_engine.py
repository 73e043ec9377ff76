"""Backtest engine: replay rate, the one-tick market maker against hftbacktest, the Python
path's callback rate, memory while streaming many days from the store, and cold start.

Same synthetic L2 events for both engines, one instrument, 1 ms entry and response latency,
a power-2 probabilistic queue model on both sides. hftbacktest gets the events converted to
its 64-byte rows inside the benchmark; its market maker follows the same rules as ours
(strategies/one_tick_mm.py): whenever the touch changes (best price or size, as our on_book),
quote one lot at the best bid and the best ask, cancel and replace a quote whose price is no
longer the touch, re-quote a side whose order has filled, stop quoting a side at
|position| >= 5. (hftbacktest cannot cancel an order whose request is still in flight, so
its version waits for the ack before replacing; ours sends the cancel at once.)
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from hftbacktest import GTC, LIMIT
from numba import njit

from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig, QueueConfig
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from framework.strategy import CompiledCallbacks, Params, Strategy

LAT = LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000)
QUEUE = QueueConfig(model="power", n=2.0)


class IdleParams(Params):
    pass


class Idle(Strategy):
    """Subscribes to nothing: measures the replay itself (both views, both books)."""

    Params = IdleParams
    compiled = CompiledCallbacks(state_size=1)


def _run(events: np.ndarray, inst: Any, strategy: Strategy, mode: str) -> Any:
    bt = Backtest(
        instruments=[inst],
        streams=[[events]],
        strategies=[strategy],
        latency=LAT,
        queue=QUEUE,
        mode=mode,
        sample_ns=1_000_000_000,
    )  # type: ignore[arg-type]
    return bt.run()


# --- the peer ---------------------------------------------------------------------------------
def to_hbt(events: np.ndarray, tick: float) -> np.ndarray:
    import hftbacktest as hbt

    from benchmarks.bench_store import to_hftbacktest

    rows = to_hftbacktest(events, tick)
    # the synthetic day's only CLEAR opens it on an empty book: hftbacktest needs none
    return rows[(rows["ev"] & 0xFF) != hbt.DEPTH_CLEAR_EVENT]


@njit
def hbt_mm(hbt: Any, max_pos: float) -> tuple[int, int, int]:  # pragma: no cover
    oid = 1
    bid_id = 0
    ask_id = 0
    bid_px = 0.0
    ask_px = 0.0
    last_bb = 0.0
    last_ba = 0.0
    last_bq = 0.0
    last_aq = 0.0
    n = 0
    while True:
        r = hbt.wait_next_feed(True, 3_600_000_000_000)
        if r == 1:
            break
        depth = hbt.depth(0)
        bb = depth.best_bid
        ba = depth.best_ask
        # (depth.best_bid_qty / best_ask_qty return the price in hftbacktest 2.4.4's numba
        # API, so the size is read at the best tick)
        bq = depth.bid_qty_at_tick(depth.best_bid_tick)
        aq = depth.ask_qty_at_tick(depth.best_ask_tick)
        if not (bb > 0.0 and ba > 0.0 and ba < 1e11):
            continue
        # ours is called when the touch (price or size) changes: the same here
        if bb == last_bb and ba == last_ba and bq == last_bq and aq == last_aq:
            continue
        last_bb = bb
        last_ba = ba
        last_bq = bq
        last_aq = aq
        n += 1
        hbt.clear_inactive_orders(0)
        orders = hbt.orders(0)
        pos = hbt.position(0)
        if bid_id != 0 and bid_id not in orders:
            bid_id = 0
        if ask_id != 0 and ask_id not in orders:
            ask_id = 0
        if bid_id != 0 and (bid_px != bb or pos >= max_pos):
            o = orders.get(bid_id)
            if o is not None and not o.cancellable:
                continue  # its request is still in flight; hftbacktest cannot cancel it yet
            hbt.cancel(0, bid_id, False)
            bid_id = 0
        if bid_id == 0 and pos < max_pos:
            hbt.submit_buy_order(0, oid, bb, 1.0, GTC, LIMIT, False)
            bid_id = oid
            bid_px = bb
            oid += 1
        if ask_id != 0 and (ask_px != ba or pos <= -max_pos):
            o = orders.get(ask_id)
            if o is not None and not o.cancellable:
                continue
            hbt.cancel(0, ask_id, False)
            ask_id = 0
        if ask_id == 0 and pos > -max_pos:
            hbt.submit_sell_order(0, oid, ba, 1.0, GTC, LIMIT, False)
            ask_id = oid
            ask_px = ba
            oid += 1
    return n, oid - 1, hbt.state_values(0).num_trades


def run_hbt(rows: np.ndarray, tick: float) -> tuple[float, int, int]:
    from hftbacktest import BacktestAsset, ROIVectorMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data([rows])
        .linear_asset(1.0)
        .constant_latency(1_000_000, 1_000_000)
        .power_prob_queue_model(2.0)
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(tick)
        .lot_size(1.0)
        .roi_lb(0.0)
        .roi_ub(float(rows["px"][rows["px"] < 1e11].max()) * 2)
        .last_trades_capacity(0)
    )
    hbt = ROIVectorMarketDepthBacktest([asset])
    t0 = time.perf_counter()
    _, orders, fills = hbt_mm(hbt, 5.0)
    el = time.perf_counter() - t0
    hbt.close()
    return el, orders, fills


_STREAM_CHILD = """
import sys, time
from benchmarks.memory import peak_rss_mb
from framework.engine.backtest import Backtest, store_streams
from framework.store import TickStore
from benchmarks.bench_engine import Idle, LAT, QUEUE
store = TickStore(sys.argv[1])
dates = [k.date for k in store.keys(venue="SIM", symbol="SYN")]
insts, streams = store_streams(store, [("SIM", "SYN")], dates)
bt = Backtest(instruments=insts, streams=streams, strategies=[Idle()], latency=LAT, queue=QUEUE,
              sample_ns=1_000_000_000)
t0 = time.perf_counter()
r = bt.run()
el = time.perf_counter() - t0
print(r.events, el, peak_rss_mb())
"""


# --- benchmarks ---------------------------------------------------------------------------------
def _cold_start(tmp: Path) -> float:
    """Wall time of `hftlab backtest` in a new process, numba cache warm (second run)."""
    store = tmp / "cold"
    day = generate_day(date=dt.date(2024, 1, 2), n_events=20_000, seed=3)
    TickStore(store).write(day.instrument, day.date, day.events)
    cmd = [
        sys.executable,
        "-m",
        "framework",
        "backtest",
        "one_tick_mm",
        "--venue",
        "SIM",
        "--symbol",
        "SYN",
        "--from",
        "2024-01-02",
        "--store",
        str(store),
        "--out",
        str(tmp / "cold_out"),
        "--no-report",
    ]
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ))
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ))
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool = False) -> list[dict[str, Any]]:
    from strategies.one_tick_mm import OneTickMM

    n = 200_000 if quick else 10_000_000
    day = generate_day(date=dt.date(2024, 1, 2), n_events=n, seed=11)
    ev, inst = day.events, day.instrument
    tick = float(inst.tick_size)
    out: list[dict[str, Any]] = []

    _run(ev[:5000], inst, Idle(), "compiled")  # compile / load caches outside the clock
    r = _run(ev, inst, Idle(), "compiled")
    out.append(
        {
            "name": "engine.replay (do-nothing strategy)",
            "events": r.events,
            "seconds": r.config["replay_seconds"],
        }
    )

    _run(ev[:5000], inst, OneTickMM(), "compiled")
    r = _run(ev, inst, OneTickMM(), "compiled")
    rows = to_hbt(ev, tick)
    run_hbt(rows[:5000], tick)
    peer_s, peer_orders, peer_fills = run_hbt(rows, tick)
    out.append(
        {
            "name": "engine.one_tick_mm (compiled path)",
            "events": r.events,
            "seconds": r.config["replay_seconds"],
            "orders": len(r.orders),
            "fills": len(r.fills),
            "peer_orders": peer_orders,
            "peer_fills": peer_fills,
            "peer": "hftbacktest 2.4.4",
            "peer_events": len(rows),
            "peer_seconds": peer_s,
        }
    )

    m = min(n, 2_000_000)
    _run(ev[:5000], inst, OneTickMM(), "python")
    r = _run(ev[:m], inst, OneTickMM(), "python")
    out.append(
        {
            "name": "engine.one_tick_mm (Python path, callbacks)",
            "events": int(r.config["callbacks"]),
            "seconds": r.config["replay_seconds"],
            "events_replayed": r.events,
        }
    )

    with tempfile.TemporaryDirectory(prefix="hftlab-bench-") as t:
        tmp = Path(t)
        days = 2 if quick else 10
        store = TickStore(tmp / "store")
        d = dt.date(2024, 1, 2)
        made = 0
        while made < days:
            if d.weekday() < 5:
                g = generate_day(date=d, n_events=n, seed=made)
                store.write(g.instrument, g.date, g.events)
                made += 1
            d += dt.timedelta(days=1)
        # in a process of its own, so its peak memory is the streaming replay's alone
        proc = subprocess.run(
            [sys.executable, "-c", _STREAM_CHILD, str(tmp / "store")],
            check=True,
            capture_output=True,
            text=True,
            env=dict(os.environ),
        )
        ev_n, secs, peak = proc.stdout.strip().splitlines()[-1].split()
        out.append(
            {
                "name": f"engine.replay from store ({days} days streamed, own process)",
                "events": int(ev_n),
                "seconds": float(secs),
                "peak_rss_mb": float(peak),
            }
        )
        cold = _cold_start(tmp)
        out.append(
            {
                "name": "engine.cold start (new process, warm cache, 20k events)",
                "events": 20_000,
                "seconds": cold,
            }
        )
    return out
