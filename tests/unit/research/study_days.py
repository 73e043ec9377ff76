"""A small store of generated days (L2 and L3, fees on) shared by the research tests (its
fixture is exported by this package's conftest), and the helper that writes such days."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from framework.engine.config import LatencyConfig, QueueConfig
from framework.ingest.synthetic import SyntheticParams, generate_day
from framework.store.tickstore import TickStore
from research.evaluate import EvalSpec

L2_DAYS = (dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6))
L3_DAY = dt.date(2024, 3, 7)
EVENTS = 20_000


def write_days(
    root: Path,
    days: list[dt.date],
    seed: int,
    params: list[SyntheticParams] | None = None,
    **kw: object,
) -> Path:
    """Generated days (day ``i`` seeded ``seed + i``, with ``params[i]`` when given) written
    to a store at ``root`` with a taker fee of 0.001 a lot; ``kw`` goes to generate_day."""
    store = TickStore(root)
    for i, d in enumerate(days):
        p = params[i] if params is not None else None
        g = generate_day(date=d, n_events=EVENTS, seed=seed + i, params=p, **kw)  # type: ignore[arg-type]
        inst = dataclasses.replace(g.instrument, fee_per_lot=0.001)
        store.write(inst, g.date, g.events, labels=g.labels)
    return root


@pytest.fixture(scope="session")
def research_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``SIM/SYN`` on three L2 days and ``SIM/SYN3`` on one L3 day, seeded."""
    root = tmp_path_factory.mktemp("research_store")
    write_days(root, list(L2_DAYS), seed=0)
    return write_days(root, [L3_DAY], seed=9, symbol="SYN3", mode="l3")


def spec_of(root: Path, *, symbol: str = "SYN", **kw: object) -> EvalSpec:
    """The spec of a one_tick_mm study on ``SIM/symbol`` (L3: exact FIFO queues)."""
    queue = QueueConfig(model="fifo") if symbol == "SYN3" else QueueConfig(model="power", n=2.0)
    return EvalSpec(
        strategy="strategies.one_tick_mm:OneTickMM",
        venue="SIM",
        symbol=symbol,
        store=str(root),
        latency=LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        queue=queue,
        mode="compiled",
        sample_ns=1_000_000_000,
        **kw,  # type: ignore[arg-type]
    )
