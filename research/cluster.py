"""Where a study's batches run: a Dask distributed cluster (a local one on this machine's
cores by default, or a running scheduler's), or this process (``workers=0``, for debugging).

The client submits :func:`research.evaluate.evaluate_batch` tasks (one day read once, a batch
of sets replayed together) and takes results as they complete; it alone writes them, so a
task that Dask re-ran after losing a worker is simply a second copy of rows the results
folder already holds (keyed by set and day, and skipped). Every worker first compiles -- or
loads from numba's cache -- what a batch runs (:func:`research.evaluate.warm`), so no task
pays the compilation and timings compare: the warm-up is a worker plugin
(:class:`WarmUp`) the client registers, so the workers there run it at once and a worker
that joins the cluster later runs it as it registers, before it reads its first task.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import polars as pl
from distributed.diagnostics.plugin import WorkerPlugin

from framework.core.errors import ConfigError
from research.evaluate import EvalSpec, evaluate_batch, warm

#: seconds to reach a scheduler before giving up (an unreachable address fails fast)
CONNECT_TIMEOUT_S = 5
#: seconds to wait for a scheduler's first worker
WORKER_WAIT_S = 60

Batch = tuple[dt.date, list[Mapping[str, Any]]]
Done = Callable[[Batch, pl.DataFrame, pl.DataFrame], None]


class Runner(ABC):
    """Runs batches and hands each result to a callback as it completes."""

    n_workers: int = 1

    @abstractmethod
    def run(self, batches: Sequence[Batch], done: Done) -> None:
        """Evaluate ``batches`` and call ``done`` with each one's results as it completes."""


class InlineRunner(Runner):
    """In this process, one batch after the other (``workers=0``)."""

    def __init__(self, spec: EvalSpec) -> None:
        self.spec = spec

    def run(self, batches: Sequence[Batch], done: Done) -> None:
        for b in batches:
            metrics, equity = evaluate_batch(self.spec, b[0], b[1])
            done(b, metrics, equity)


class WarmUp(WorkerPlugin):
    """Warms a worker's numba cache for a study (:func:`research.evaluate.warm`) in its
    ``setup``: on every worker when the client registers it, and on a worker that joins
    later as it registers -- Dask sets a joining worker's plugins up before it reads
    anything the scheduler sends, so its first task finds the code compiled. The compile
    runs in a thread, so the worker keeps answering the scheduler meanwhile.

    ``warmed_at`` (epoch seconds) and ``seconds`` record it on the worker's copy."""

    name = "hftlab-warm-up"

    def __init__(self, spec: EvalSpec, day: dt.date) -> None:
        self.spec = spec
        self.day = day
        self.warmed_at: float | None = None
        self.seconds: float | None = None

    async def setup(self, worker: Any) -> None:
        loop = asyncio.get_running_loop()
        self.seconds = await loop.run_in_executor(None, warm, self.spec, self.day)
        self.warmed_at = time.time()
        logging.getLogger("distributed.worker").info(
            "hftlab: numba cache warm for %s in %.1f s", self.spec.strategy, self.seconds
        )


class DaskRunner(Runner):
    """On the workers of a Dask client (each warmed by :class:`WarmUp` first)."""

    def __init__(self, client: Any, spec: EvalSpec, warm_day: dt.date) -> None:
        self.client = client
        self.spec = spec
        client.register_plugin(WarmUp(spec, warm_day))

    @property
    def n_workers(self) -> int:  # type: ignore[override]
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def run(self, batches: Sequence[Batch], done: Done) -> None:
        from distributed import as_completed

        if not batches:
            return
        futures = [
            self.client.submit(evaluate_batch, self.spec, b[0], b[1], pure=False) for b in batches
        ]
        batch_of = {f.key: b for f, b in zip(futures, batches, strict=True)}
        try:
            for fut in as_completed(futures):
                metrics, equity = fut.result()
                done(batch_of[fut.key], metrics, equity)
        except BaseException:
            self.client.cancel(futures)
            raise


@contextlib.contextmanager
def open_runner(
    spec: EvalSpec,
    warm_day: dt.date,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[Runner]:
    """A runner for the study: ``scheduler`` an address (``tcp://HOST:PORT``) of a running
    Dask scheduler; else a local cluster of ``workers`` processes (default: this machine's
    cores), one thread each, on 127.0.0.1 with no dashboard; ``workers=0``: this process."""
    if scheduler is not None and workers is not None:
        msg = "give --workers (a local cluster) or --scheduler (a running one), not both"
        raise ConfigError(msg)
    if scheduler is None and workers == 0:
        yield InlineRunner(spec)
        return
    if workers is not None and workers < 0:
        msg = f"--workers {workers} is out of range: allowed >= 0 (0: in this process)"
        raise ConfigError(msg)
    from distributed import Client, LocalCluster

    if scheduler is not None:
        client = _connect(scheduler)
        try:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError as exc:
                msg = (
                    f"the Dask scheduler at {scheduler} has no workers after {WORKER_WAIT_S} s; "
                    f"start some with `dask worker {scheduler}`"
                )
                raise ConfigError(msg) from exc
            yield DaskRunner(client, spec, warm_day)
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            # no dashboard; its HTTP server (health, metrics) still starts: on loopback, any
            # free port (the default is every interface, port 8787)
            dashboard_address="127.0.0.1:0",
            worker_dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield DaskRunner(client, spec, warm_day)


def _connect(address: str) -> Any:
    from distributed import Client

    if "://" not in address:
        msg = f"--scheduler {address!r}: give the scheduler's address as tcp://HOST:PORT"
        raise ConfigError(msg)
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        msg = (
            f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s "
            f"({type(exc).__name__}); start one with `dask scheduler` or leave out --scheduler "
            "for a local cluster"
        )
        raise ConfigError(msg) from exc


__all__ = [
    "CONNECT_TIMEOUT_S",
    "DaskRunner",
    "InlineRunner",
    "Runner",
    "WarmUp",
    "open_runner",
]
