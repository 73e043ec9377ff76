"""Run a backtest: stored event streams into an :class:`~framework.engine.engine.Engine`
with the simulated venue, then the result tables."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from framework.analysis.results import BacktestResult
from framework.arena.enums import QUEUE_FIFO
from framework.arena.state import Capacity
from framework.core.errors import ConfigError, HftlabError
from framework.core.events import EventArray
from framework.core.instrument import Instrument
from framework.engine.config import LatencyConfig, QueueConfig
from framework.engine.engine import Engine, Mode, Wake
from framework.engine.feed import MergedFeed
from framework.features.model import FeatureModel
from framework.strategy.base import Strategy

__all__ = ["Backtest", "Mode", "store_streams"]


class Backtest:
    """One run: instruments' event streams, strategies, a venue model.

    The driver of an :class:`~framework.engine.engine.Engine` for stored data: the streams
    are merged by local time straight into the engine's event window, the engine runs with
    the simulated venue until it needs more, and so on to the end. The result tables are
    written to Parquet as the run goes (bounded memory whatever its length):
    ``<table>.parquet`` in ``out_dir``, or in a temporary folder that lives as long as the
    result. ``result.write(out_dir)`` then adds ``summary.json`` (and statistics).
    ``isolated``: each strategy its own account (see :class:`~framework.engine.engine.Engine`;
    K copies of a strategy in one pass). ``feature_model``: fills the ``regime`` features
    (see the Engine).

    >>> # Backtest(instruments=[inst], streams=[[events]], strategies=[MyStrategy()]).run()
    """

    def __init__(
        self,
        *,
        instruments: Sequence[Instrument],
        streams: Sequence[Iterable[EventArray]],
        strategies: Sequence[Strategy],
        latency: LatencyConfig | None = None,
        queue: QueueConfig | None = None,
        mode: Mode = "auto",
        sample_ns: int = 1_000_000_000,
        capacity: Capacity | None = None,
        chunk: int | None = None,
        end_ts: int | None = None,
        config: dict[str, Any] | None = None,
        out_dir: str | os.PathLike[str] | None = None,
        isolated: bool = False,
        feature_model: FeatureModel | dict[str, FeatureModel] | None = None,
    ) -> None:
        if len(instruments) != len(streams):
            msg = f"{len(instruments)} instruments but {len(streams)} event streams"
            raise ConfigError(msg)
        self.instruments = list(instruments)
        self.strategies = list(strategies)
        self.engine = Engine(
            instruments=self.instruments,
            strategies=self.strategies,
            latency=latency,
            queue=queue,
            mode=mode,
            sample_ns=sample_ns,
            capacity=capacity,
            end_ts=end_ts,
            out_dir=out_dir,
            isolated=isolated,
            feature_model=feature_model,
        )
        from framework.book.project import l2_stream

        # the engine's books are price levels: order-by-order data is projected to levels
        # (exact FIFO queues need order-by-order data: l2_stream refuses level data then)
        fifo = self.engine.queue.code == QUEUE_FIFO
        self.end_ts = end_ts
        #: stored events read and events fed to the engine after the projection (an L3
        #: event may become several: an execution is a trade print and a level update)
        self._counts = {"stored": 0, "fed": 0}
        self.feed = MergedFeed(
            [
                self._counted(
                    l2_stream(self._counted(s, "stored"), require_l3=fifo, name=inst.key),
                    "fed",
                )
                for s, inst in zip(streams, self.instruments, strict=False)
            ],
            chunk=chunk,
        )
        self.extra_config = config or {}

    def _counted(self, batches: Iterable[EventArray], key: str) -> Iterator[EventArray]:
        """Pass batches through, counting their events (up to ``end_ts`` when it is set)."""
        for b in batches:
            if self.end_ts is None:
                self._counts[key] += len(b)
            else:
                self._counts[key] += int(np.count_nonzero(b["local_ts"] <= self.end_ts))
            yield b

    def run(self) -> BacktestResult:
        """Replay everything and return the result tables."""
        eng = self.engine
        try:
            eng.push_from(self.feed)
            eng.start()  # on_start; compiled strategies are compiled (or loaded) now
            t0 = time.perf_counter()
            while True:
                w = eng.advance()
                if w == Wake.NEED_INPUT:
                    eng.push_from(self.feed)
                elif w == Wake.DONE:
                    break
                else:
                    msg = f"the simulated venue's engine stopped with {w.name}"
                    raise HftlabError(msg)
            replay = time.perf_counter() - t0
        except BaseException:
            eng.abort()  # no half-written result files are left behind
            raise
        return eng.finish(
            {
                "clock_offsets_ns": dict(
                    zip([i.key for i in self.instruments], self.feed.clock_offsets, strict=True)
                ),
                # what was replayed: the stored events, and the book updates (levels,
                # trades, statuses) the engine processed -- more when L3 data was projected
                "stored_events": self._counts["stored"],
                "l3_projected": self._counts["fed"] != self._counts["stored"],
                **self.extra_config,
                "replay_seconds": round(replay, 6),
            }
        )


def store_streams(
    store: Any, keys: Sequence[tuple[str, str]], dates: Sequence[dt.date]
) -> tuple[list[Instrument], list[Iterable[EventArray]]]:
    """Instruments and streamed batches of stored days (each instrument over all dates)."""
    instruments = []
    streams: list[Iterable[EventArray]] = []
    for venue, symbol in keys:
        have = [d for d in dates if store.path_for(venue, symbol, d).is_file()]
        if not have:
            msg = (
                f"no stored days of {venue}/{symbol} between {dates[0]} and {dates[-1]}; "
                "see `hftlab data ls`"
            )
            raise ConfigError(msg)
        instruments.append(store.instrument(venue, symbol, have[0]))
        streams.append(store.iter_batches(venue, symbol, have, reuse=True))
    return instruments, streams
