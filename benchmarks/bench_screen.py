"""Signal screening (research/screen): bars from stored events, and a vectorbt screen.

- ``screen.bars``: 1-s bars of every stored day (research.screen.bars: the store's row
  groups, one compiled pass each carrying the book and the open bar), 10 generated L2 days
  of 10 M events (``quick``: 2 of 1 M, the best of 3 passes). Issue 14: at least 20 M
  events/s, with bounded memory (peak RSS of the pass at most 1 GB, checked on the full
  100 M events only: the interpreter, numba, polars and vectorbt alone take a few hundred
  MB). The peer is what a pandas user writes: one day read whole, the engine's features per event
  (``compute_features``), then ``DataFrame.resample("1s", label="right", closed="right")``.
- ``screen.vectorbt``: 100 parameter sets of ``trade_flow`` over a day of 1-s bars
  (23,400), in one ``Portfolio.from_signals`` call (research.screen.core.run_screen: the
  signals, the portfolio, the metrics), warm (vectorbt's compiled functions loaded; the
  first call's time is ``cold_seconds``). Issue 14: "in seconds", here at most 5 s. The
  peer: one ``from_signals`` call per set; ``events`` counts bar x set cells.

The days are generated in a child process, so the peak memory is the bars pass's (and the
screen's after it).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_research import write_days
from benchmarks.memory import peak_rss_mb
from benchmarks.targets import target
from framework.store import TickStore

SIZE_DEPENDENT = "size-dependent: checked on the full 100 M events only"
SPACE = ["window=1,2,5,10,30", "threshold=0.2:1:0.2", "hold=5,10,30,60"]  # 100 sets


def _generate(root: Path, days: int, n: int) -> list[dt.date]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(write_days, (root, days, n))


def peer_bars(store: TickStore, day: dt.date) -> int:
    """The pandas way: the day whole, features per event, resampled; returns its bars."""
    import pandas as pd

    from framework.core.events import BUY, KIND_TRADE, SELL
    from framework.features.kernels import F_IMBALANCE, F_MICROPRICE, compute_features

    ev = store.read("SIM", "SYN", day)
    f = compute_features(ev)
    trade = ev["kind"] == KIND_TRADE
    qty = np.where(trade, ev["qty"], 0)
    df = pd.DataFrame(
        {
            "microprice": f[:, F_MICROPRICE],
            "imbalance": f[:, F_IMBALANCE],
            "buy": np.where(ev["side"] == BUY, qty, 0),
            "sell": np.where(ev["side"] == SELL, qty, 0),
            "n": trade.astype(np.int64),
            "notional": qty * ev["price"],
        },
        index=pd.DatetimeIndex(ev["local_ts"].astype("datetime64[ns]")),
    )
    r = df.resample("1s", label="right", closed="right")
    out = pd.concat(
        [
            r["microprice"].ohlc(),
            r["imbalance"].last(),
            r[["buy", "sell", "n", "notional"]].sum(),
        ],
        axis=1,
    )
    return len(out)


def bars_rows(root: Path, days: list[dt.date], events: int, quick: bool) -> list[dict[str, Any]]:
    from research.screen.bars import bars

    store = TickStore(root)
    bars(store, "SIM", "SYN", days[:1], "1s")  # compile (or load) the pass
    seconds = cpu = float("inf")
    for _ in range(3 if quick else 1):  # quick: the best of 3, as bench_store reads
        t0, c0 = time.perf_counter(), time.process_time()
        b = bars(store, "SIM", "SYN", days, "1s")
        seconds = min(seconds, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    peak = peak_rss_mb()
    one_day = TickStore(root).info("SIM", "SYN", days[0]).rows
    t0 = time.perf_counter()
    peer_bars(store, days[0])
    peer_s = time.perf_counter() - t0
    return [
        {
            "name": f"screen.bars (1-s bars of {len(days)} stored days)",
            "events": events,
            "seconds": seconds,
            "bars": b.height,
            "peak_rss_mb": peak,
            # the store's reader and the compiled pass run on two threads: CPU time of both
            "cpu_seconds": round(cpu, 3),
            "peer": "pandas resample (1 day whole)",
            "peer_events": one_day,
            "peer_seconds": peer_s,
            **target("min rate", 20e6),  # issue 14
        },
        {
            "name": "screen.bars peak memory (process, after the pass)",
            "events": events,
            "seconds": seconds,
            "peak_rss_mb": peak,
            **target("max MB", 1024, unchecked=SIZE_DEPENDENT if quick else None),
        },
    ]


def screen_row(root: Path, day: dt.date) -> dict[str, Any]:
    from research.screen.bars import bars
    from research.screen.core import Costs, run_screen, space_of, vectorbt
    from research.screen.signals import BUILTIN, signal_matrix

    store = TickStore(root)
    inst = store.instrument("SIM", "SYN", day)
    b = bars(store, "SIM", "SYN", [day], "1s")
    sig = BUILTIN["trade_flow"]
    sets = space_of(sig, SPACE).grid()
    costs = Costs.of(inst)
    t0 = time.perf_counter()
    run_screen(b, sig, sets, instrument=inst, costs=costs)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_screen(b, sig, sets, instrument=inst, costs=costs)
    seconds = time.perf_counter() - t0

    import pandas as pd

    vbt = vectorbt()
    le, lx, se, sx = signal_matrix(sig, b, sets)
    index = pd.DatetimeIndex(b["ts"].to_numpy().astype("datetime64[ns]"))
    close = pd.Series(b["close"].fill_nan(None).fill_null(strategy="forward").to_numpy(), index)
    t0 = time.perf_counter()
    for j in range(len(sets)):
        vbt.Portfolio.from_signals(
            close,
            entries=le[:, j],
            exits=lx[:, j],
            short_entries=se[:, j],
            short_exits=sx[:, j],
            size=1.0,
            init_cash=1e9,
        ).value()
    peer_s = time.perf_counter() - t0
    return {
        "name": f"screen.vectorbt ({len(sets)} sets x {b.height:,} 1-s bars, warm)",
        "events": len(sets) * b.height,
        "seconds": seconds,
        "cold_seconds": round(cold, 3),
        "peer": "vectorbt, one call per set",
        "peer_seconds": peer_s,
        **target("max seconds", 5.0),  # issue 14: "in seconds"
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    n_days, n = (2, 1_000_000) if quick else (10, 10_000_000)
    # removed afterwards: a full run writes 10 days of 10 M events (~900 MB)
    with tempfile.TemporaryDirectory(prefix="hftlab-bench-screen-") as t:
        root = Path(t) / "store"
        days = _generate(root, n_days, n)
        events = sum(TickStore(root).info("SIM", "SYN", d).rows for d in days)
        rows = bars_rows(root, days, events, quick)
        rows.append(screen_row(root, days[0]))
    return rows
