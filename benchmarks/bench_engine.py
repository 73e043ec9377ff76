"""Backtest engine: replay rate and the one-tick market maker against hftbacktest in the same
run, the Python path's callback rate, K instances in one pass against K separate runs, and
100 M events with the market maker streamed from the store (peak memory; writing the results
and statistics against the replay time). Start-up (cold and warm numba cache) is measured in
bench_startup.py.

Same synthetic L2 events for both engines, one instrument, 1 ms entry and response latency,
a power-2 probabilistic queue model on both sides. hftbacktest gets the events converted to
its 64-byte rows inside the benchmark; its market maker follows the same rules as ours
(strategies/one_tick_mm.py): whenever the touch changes (best price or size, as our on_book),
quote one lot at the best bid and the best ask, cancel and replace a quote whose price is no
longer the touch, re-quote a side whose order has filled, stop quoting a side at
|position| >= 5. (hftbacktest cannot cancel an order whose request is still in flight, so
its version waits for the ack before replacing; ours sends the cancel at once.) Its
do-nothing replay elapses to the end of the data without a strategy, as our Idle subscribes
to nothing.

Each timed figure of the replay, the market maker and the Python path -- ours and the
peer's alike -- is the best of three runs in the same process (see REPEATS).

The targets are issue 10's (engine core), for this 2-core machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hftbacktest import GTC, LIMIT
from numba import njit

from benchmarks.targets import target
from framework.engine.backtest import Backtest
from framework.engine.config import LatencyConfig, QueueConfig
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from framework.strategy import CompiledCallbacks, Params, Strategy

# as the CLI's --latency / --queue (also given to the streaming child, which must not import
# this module: hftbacktest would count in its peak memory)
LAT_SPEC, QUEUE_SPEC = "constant:1ms", "power:2"
LAT = LatencyConfig.parse(LAT_SPEC)
QUEUE = QueueConfig.parse(QUEUE_SPEC)


class IdleParams(Params):
    pass


class Idle(Strategy):
    """Subscribes to nothing: measures the replay itself (both views, both books)."""

    Params = IdleParams
    compiled = CompiledCallbacks(state_size=1)


#: each timed figure, ours and the peer's alike, is the best of this many runs of the same
#: work in the same process (the first run of a size also pays the kernel's zeroing of the
#: memory it touches first, and the other vCPU's load varies from run to run)
REPEATS = 3


def _best(events: np.ndarray, inst: Any, make: Callable[[], Strategy], mode: str) -> Any:
    """The fastest of :data:`REPEATS` runs (each with a new strategy from ``make``)."""
    runs = [_run(events, inst, make(), mode) for _ in range(REPEATS)]
    return min(runs, key=lambda r: r.config["replay_seconds"])


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


@njit
def hbt_idle(hbt: Any) -> int:  # pragma: no cover
    """Elapse to the end of the data with no strategy: hftbacktest's do-nothing replay."""
    while True:
        r = hbt.elapse(3_600_000_000_000)
        if r != 0:
            return r


def _hbt(rows: np.ndarray, tick: float) -> Any:
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
    return ROIVectorMarketDepthBacktest([asset])


def run_hbt(rows: np.ndarray, tick: float) -> tuple[float, int, int]:
    """hftbacktest's one-tick market maker: seconds, orders sent, fills."""
    hbt = _hbt(rows, tick)
    t0 = time.perf_counter()
    _, orders, fills = hbt_mm(hbt, 5.0)
    el = time.perf_counter() - t0
    hbt.close()
    return el, orders, fills


def run_hbt_idle(rows: np.ndarray, tick: float) -> float:
    """hftbacktest's do-nothing replay of ``rows``: seconds."""
    hbt = _hbt(rows, tick)
    t0 = time.perf_counter()
    r = hbt_idle(hbt)
    el = time.perf_counter() - t0
    hbt.close()
    if r != 1:
        msg = f"hftbacktest's elapse returned {r} before the end of the data"
        raise RuntimeError(msg)
    return el


# --- K instances in one pass ------------------------------------------------------------------
K = 16


def one_pass(events: np.ndarray, inst: Any, strategies: list[Strategy]) -> float:
    """Wall seconds of one backtest running ``strategies`` as isolated instances over one
    pass of the events (the optimiser of DESIGN.md section 4), measured as the separate runs
    are: set-up, replay and the result tables, each copy's rows as in its run alone."""
    t0 = time.perf_counter()
    Backtest(
        instruments=[inst],
        streams=[[events]],
        strategies=strategies,
        latency=LAT,
        queue=QUEUE,
        mode="compiled",
        sample_ns=1_000_000_000,
        isolated=True,
    ).run()
    return time.perf_counter() - t0


#: Runs K isolated instances of a strategy over one pass of the events and returns its wall
#: seconds: ``one_pass(events, instrument, strategies)``; None reports the row as not
#: available (MISSED).
ONE_PASS: Callable[[np.ndarray, Any, list[Strategy]], float] | None = one_pass
ONE_PASS_MISSING = "no driver for K instances in one pass (ONE_PASS in benchmarks/bench_engine.py)"


def k_instances(k: int) -> list[Strategy]:
    """K one-tick market makers, each with its own inventory limit (a parameter sweep)."""
    from framework.engine.instances import copies
    from strategies.one_tick_mm import OneTickMM

    return list(copies(OneTickMM, [{"max_position": 1 + i} for i in range(k)], name="mm"))


def separate_runs(events: np.ndarray, inst: Any, strategies: list[Strategy]) -> float:
    """Wall seconds of one backtest per strategy, one after the other (runner compiled)."""
    total = 0.0
    for s in strategies:
        t0 = time.perf_counter()
        _run(events, inst, s, "compiled")
        total += time.perf_counter() - t0
    return total


def k_row(events: np.ndarray, inst: Any) -> dict[str, Any]:
    strategies = k_instances(K)
    _run(events[:5000], inst, strategies[0], "compiled")  # compile / load outside the clock
    peer_s = separate_runs(events, inst, strategies)
    row: dict[str, Any] = {
        "name": f"engine.{K} one_tick_mm instances in one pass",
        "events": K * len(events),
        "seconds": None,
        "peer": f"{K} separate runs",
        "peer_events": K * len(events),
        "peer_seconds": peer_s,
        # issue 10: one pass over the events feeds every instance, so it must beat replaying
        # them once per instance by 3x
        **target("min ratio", 3.0),
    }
    if ONE_PASS is None:
        row["unavailable"] = ONE_PASS_MISSING
    else:
        ONE_PASS(events[:5000], inst, k_instances(K))
        row["seconds"] = ONE_PASS(events, inst, k_instances(K))
    return row


# --- 100 M events from the store --------------------------------------------------------------
_STREAM_CHILD = """
import json, sys, time
import polars as pl
from benchmarks.memory import peak_rss_mb
from framework.analysis.stats import summarize_all
from framework.engine.backtest import Backtest, store_streams
from framework.engine.config import LatencyConfig, QueueConfig
from framework.store import TickStore
from strategies.one_tick_mm import OneTickMM
store = TickStore(sys.argv[1])
dates = [k.date for k in store.keys(venue="SIM", symbol="SYN")]
insts, streams = store_streams(store, [("SIM", "SYN")], dates)
bt = Backtest(instruments=insts, streams=streams, strategies=[OneTickMM()],
              latency=LatencyConfig.parse(sys.argv[3]), queue=QueueConfig.parse(sys.argv[4]),
              mode="compiled", sample_ns=1_000_000_000)
r = bt.run()
# what run_from_store and `hftlab backtest --no-report` do after the replay: the tables and
# summary.json (with the statistics), then the statistics the summary prints
t0 = time.perf_counter()
r.write(sys.argv[2])
summarize_all(r)
write_s = time.perf_counter() - t0
peak = peak_rss_mb()  # before the counts below: the bench's own reads are not the run's
n_orders, n_fills = (r.scan(t).select(pl.len()).collect().item() for t in ("orders", "fills"))
print(json.dumps({"events": r.events, "replay_seconds": r.config["replay_seconds"],
                  "wall_seconds": r.wall_seconds, "write_seconds": write_s,
                  "orders": n_orders, "fills": n_fills, "peak_rss_mb": peak}))
"""


def write_days(root: Path, days: int, n: int) -> None:
    """``days`` synthetic weekdays of ``n`` events each in a store at ``root``."""
    store = TickStore(root)
    d = dt.date(2024, 1, 2)
    made = 0
    while made < days:
        if d.weekday() < 5:
            g = generate_day(date=d, n_events=n, seed=made)
            store.write(g.instrument, g.date, g.events)
            made += 1
        d += dt.timedelta(days=1)


def stream_rows(days: int, n: int, *, quick: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="hftlab-bench-") as t:
        tmp = Path(t)
        write_days(tmp / "store", days, n)
        # in a process of its own, so its peak memory is the streaming backtest's alone
        args = [str(tmp / "store"), str(tmp / "out"), LAT_SPEC, QUEUE_SPEC]
        proc = subprocess.run(
            [sys.executable, "-c", _STREAM_CHILD, *args],
            check=False,
            capture_output=True,
            text=True,
            env=dict(os.environ),
        )
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            msg = f"the streaming backtest failed (exit {proc.returncode}): {tail}"
            raise RuntimeError(msg)
        got = json.loads(proc.stdout.strip().splitlines()[-1])

    quick_note = "size-dependent: checked on the full 100 M events only" if quick else None
    counts = {"orders": got["orders"], "fills": got["fills"]}
    return [
        {
            # in a process of its own
            "name": f"engine.one_tick_mm streamed from store ({days} days)",
            "events": got["events"],
            "seconds": got["replay_seconds"],
            "peak_rss_mb": got["peak_rss_mb"],
            **counts,
            # issue 10: 100 M events through the market maker in at most 1 GB. Peak memory
            # does not shrink with the input (the interpreter, numba and polars alone take a
            # few hundred MB), so the small --quick run does not check it.
            **target("max MB", 1024, unchecked=quick_note),
        },
        {
            "name": "engine.write results + statistics (same run)",
            "events": got["events"],
            "seconds": got["write_seconds"],
            "peak_rss_mb": got["peak_rss_mb"],
            "peer": "its replay",
            "peer_events": got["events"],
            "peer_seconds": got["replay_seconds"],
            # issue 10: writing the results and their statistics takes at most half as long
            # as the replay that produced them
            **target("max time ratio", 0.5),
        },
    ]


# --- benchmarks ---------------------------------------------------------------------------------
def run(quick: bool = False) -> list[dict[str, Any]]:
    from strategies.one_tick_mm import OneTickMM

    n = 200_000 if quick else 10_000_000
    day = generate_day(date=dt.date(2024, 1, 2), n_events=n, seed=11)
    ev, inst = day.events, day.instrument
    tick = float(inst.tick_size)
    rows = to_hbt(ev, tick)
    out: list[dict[str, Any]] = []

    _run(ev[:5000], inst, Idle(), "compiled")  # compile / load caches outside the clock
    r = _best(ev, inst, Idle, "compiled")
    run_hbt_idle(rows[:5000], tick)
    out.append(
        {
            "name": "engine.replay (do-nothing strategy)",
            "events": r.events,
            "seconds": r.config["replay_seconds"],
            "peer": "hftbacktest 2.4.4 (elapse, no strategy)",
            "peer_events": len(rows),
            "peer_seconds": min(run_hbt_idle(rows, tick) for _ in range(REPEATS)),
            **target("min rate", 40e6),  # issue 10
        }
    )

    _run(ev[:5000], inst, OneTickMM(), "compiled")
    r = _best(ev, inst, OneTickMM, "compiled")
    run_hbt(rows[:5000], tick)
    peer_s, peer_orders, peer_fills = min(run_hbt(rows, tick) for _ in range(REPEATS))
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
            **target("min ratio", 2.5),  # issue 10: 2.5x hftbacktest's rate, same run
        }
    )

    m = min(n, 2_000_000)
    _run(ev[:5000], inst, OneTickMM(), "python")
    r = _best(ev[:m], inst, OneTickMM, "python")
    out.append(
        {
            "name": "engine.one_tick_mm (Python path, callbacks)",
            "events": int(r.config["callbacks"]),
            "seconds": r.config["replay_seconds"],
            "events_replayed": r.events,
            **target("min rate", 1.3e6),  # issue 10: callbacks per second
        }
    )

    out.append(k_row(ev[:m], inst))

    # 100 M events (10 days of 10 M); --quick: 2 days of 200 k
    try:
        out.extend(stream_rows(2 if quick else 10, n, quick=quick))
    except RuntimeError as exc:  # the rows above still count
        out.append({"name": "engine.one_tick_mm from store", "error": str(exc)})
    return out
