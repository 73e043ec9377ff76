"""Run a backtest: feed the compiled engine, call strategies, collect the results."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from framework.analysis.results import BacktestResult
from framework.analysis.sink import ResultSink
from framework.core.errors import ConfigError, HftlabError
from framework.core.events import EVENT_DTYPE, EventArray
from framework.core.instrument import Instrument
from framework.engine import api
from framework.engine.config import LatencyConfig, QueueConfig
from framework.engine.enums import QUEUE_FIFO, REJ_NAMES
from framework.engine.feed import MergedFeed
from framework.engine.recorder import RECORDS, TABLE_SCHEMAS, RecordDecoder
from framework.engine.state import (
    ERR_NAMES,
    H_END_TS,
    H_ERROR,
    H_EV_PTR,
    H_EVENTS_LOCAL,
    H_FEAT_PTR,
    H_FINAL,
    H_LAT_MODEL,
    H_LOCAL_CUR,
    H_N_DENY,
    H_N_EQ,
    H_N_EV,
    H_N_FILL,
    H_N_LAT,
    H_N_LAT_SERIES,
    H_N_MKT,
    H_N_ORD,
    H_N_POS,
    H_NEXT_SAMPLE,
    H_NOW,
    H_QUEUE_MODEL,
    H_SAMPLE_NS,
    H_VENUE_CUR,
    H_WAKE_INST,
    H_WAKE_OID,
    H_WAKE_ORDER_KIND,
    H_WAKE_PRICE,
    H_WAKE_QTY,
    H_WAKE_REASON,
    H_WAKE_SIDE,
    H_WAKE_STRAT,
    HF_LAT_ENTRY,
    HF_LAT_RESP,
    HF_QUEUE_N,
    I_N_BOOK_WAKES,
    I_N_TRADE_WAKES,
    I_SUB_BOOK,
    I_SUB_TRADE,
    IF_FEE_PER_LOT,
    IF_LOT,
    IF_MAKER_FEE,
    IF_MULT,
    IF_TAKER_FEE,
    IF_TICK,
    RESP_ACK,
    RESP_CANCEL_REJECT,
    RESP_CANCELED,
    RESP_EXPIRED,
    RESP_MODIFIED,
    RESP_REJECT,
    S_ACCOUNT,
    S_N_WAKES,
    S_SUB_FILL,
    S_SUB_ORDER,
    WAKE_BOOK,
    WAKE_DONE,
    WAKE_ERROR,
    WAKE_FILL,
    WAKE_FLUSH,
    WAKE_NEED_DATA,
    WAKE_ORDER,
    WAKE_TIMER,
    WAKE_TRADE,
    Capacity,
    allocate,
    unpack,
)
from framework.strategy.base import Strategy
from framework.strategy.context import Context, FillInfo, OrderUpdate

Mode = Literal["auto", "compiled", "python"]
RESP_NAMES = {
    RESP_ACK: "ack",
    RESP_CANCELED: "canceled",
    RESP_REJECT: "rejected",
    RESP_EXPIRED: "expired",
    RESP_MODIFIED: "modified",
    RESP_CANCEL_REJECT: "cancel_rejected",
}


class Backtest:
    """One run: instruments' event streams, strategies, a venue model.

    The result tables are written to Parquet as the run goes (bounded memory whatever its
    length): ``<table>.parquet`` in ``out_dir``, or in a temporary folder that lives as long
    as the result. ``result.write(out_dir)`` then adds ``summary.json`` (and statistics).

    Strategies of one run share an account unless ``isolated``: self-trade prevention stops
    an order that would meet a resting order of any of them. With ``isolated=True`` each
    strategy trades for an account of its own and sees nothing of the others' orders, so K
    copies of a strategy with different parameters (:func:`framework.engine.instances.copies`)
    run in one pass over the events, each with exactly the orders, fills and PnL of a run
    alone (README, "K instances in one pass").

    >>> # Backtest(instruments=[inst], streams=[[events]], strategies=[MyStrategy()]).run()
    """

    _sink: ResultSink  #: the current run's result files (made by run)
    _decoder: RecordDecoder | None  #: made with the run's first flush, after set-up

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
    ) -> None:
        if len(instruments) != len(streams):
            msg = f"{len(instruments)} instruments but {len(streams)} event streams"
            raise ConfigError(msg)
        if not instruments:
            msg = "a backtest needs at least one instrument"
            raise ConfigError(msg)
        if not strategies:
            msg = "a backtest needs at least one strategy"
            raise ConfigError(msg)
        names = [s.name for s in strategies]
        if len(set(names)) != len(names):
            msg = f"strategy names must be unique in a run, got {names}; pass name=... to each"
            raise ConfigError(msg)
        self.instruments = list(instruments)
        self.strategies = list(strategies)
        self.latency = latency or LatencyConfig()
        self.queue = queue or QueueConfig()
        self.mode = self._pick_mode(mode)
        self.sample_ns = int(sample_ns)
        self.capacity = capacity or Capacity(n_inst=len(instruments), n_strat=len(strategies))
        from framework.book.project import l2_stream

        # the engine's books are price levels: order-by-order data is projected to levels
        # (exact FIFO queues need order-by-order data: l2_stream refuses level data then)
        fifo = self.queue.code == QUEUE_FIFO
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
        self.isolated = bool(isolated)
        self.features = any(type(s).features for s in self.strategies)
        if self.features:
            from framework.book.l2 import l2_new
            from framework.features.kernels import feature_state

            # per instrument: its own book and feature state, carried across batches (the
            # book sees what the strategy's book sees: it holds as much)
            cap = self.capacity
            self._feat_state = [
                (feature_state(), l2_new(cap.book_ticks, far_levels=cap.book_far_levels))
                for _ in range(len(self.instruments))
            ]
        self.out_dir = out_dir

    def _counted(self, batches: Iterable[EventArray], key: str) -> Iterator[EventArray]:
        """Pass batches through, counting their events (up to ``end_ts`` when it is set)."""
        for b in batches:
            if self.end_ts is None:
                self._counts[key] += len(b)
            else:
                self._counts[key] += int(np.count_nonzero(b["local_ts"] <= self.end_ts))
            yield b

    def _pick_mode(self, mode: Mode) -> Literal["compiled", "python"]:
        if mode == "python":
            bad = [s.name for s in self.strategies if not s.has_python_path()]
            if bad:
                msg = f"mode='python' but {bad} have no Python callbacks"
                raise ConfigError(msg)
            return "python"
        compiled_ok = all(s.has_compiled_path() for s in self.strategies)
        if mode == "compiled" and not compiled_ok:
            bad = [s.name for s in self.strategies if not s.has_compiled_path()]
            msg = f"mode='compiled' but {bad} have no compiled callbacks"
            raise ConfigError(msg)
        return "compiled" if compiled_ok else "python"

    # --- set-up ----------------------------------------------------------------------------
    def _setup(self) -> None:
        series = self.latency.series
        cap = self.capacity
        if series is not None:
            cap = dataclasses.replace(cap, lat_series=len(series))
        a = allocate(cap)
        from framework.engine.core import install

        install(a)  # the compiled core's entry points (compiled on first use)
        st = unpack(a)
        h = st.h
        h[H_LAT_MODEL] = self.latency.code
        st.hf[HF_LAT_ENTRY] = (
            self.latency.entry_ns if self.latency.model == "constant" else self.latency.entry_mult
        )
        st.hf[HF_LAT_RESP] = (
            self.latency.response_ns
            if self.latency.model == "constant"
            else self.latency.response_mult
        )
        if self.latency.series is not None:
            st.lat_series[:, :] = self.latency.series
            h[H_N_LAT_SERIES] = len(self.latency.series)
        h[H_QUEUE_MODEL] = self.queue.code
        st.hf[HF_QUEUE_N] = self.queue.n
        h[H_SAMPLE_NS] = self.sample_ns
        if self.end_ts is not None:
            h[H_END_TS] = self.end_ts
        for i, inst in enumerate(self.instruments):
            f = st.instf[i]
            f[IF_TICK] = float(inst.tick_size)
            f[IF_LOT] = float(inst.lot_size)
            f[IF_MULT] = float(inst.multiplier)
            f[IF_MAKER_FEE] = inst.maker_fee
            f[IF_TAKER_FEE] = inst.taker_fee
            f[IF_FEE_PER_LOT] = inst.fee_per_lot
        keys = [i.key for i in self.instruments]
        for sid, s in enumerate(self.strategies):
            st.risk[sid, :] = s.risk_limits.to_array()
            st.strat[sid, S_ACCOUNT] = sid if self.isolated else 0
            wanted = keys if s.instruments is None else s.instruments
            unknown = [k for k in wanted if k not in keys]
            if unknown:
                msg = f"strategy {s.name} names instrument(s) {unknown} not in this run ({keys})"
                raise ConfigError(msg)
            for k in wanted:
                st.sub[sid, keys.index(k)] = 1
        for sid, s in enumerate(self.strategies):
            s.compiled_state = None  # set again at the end of a run on the fast path
            # the loop wakes a strategy only for callbacks it has: a fill or an ack nobody
            # listens to is booked without leaving compiled code
            st.strat[sid, S_SUB_FILL] = self._wants(s, "on_fill")
            st.strat[sid, S_SUB_ORDER] = self._wants(s, "on_order")
            for i in range(len(keys)):
                if st.sub[sid, i]:
                    st.inst[i, I_SUB_BOOK] |= self._wants(s, "on_book")
                    st.inst[i, I_SUB_TRADE] |= self._wants(s, "on_trade")
        self.arena = a
        self.st = st
        self.window: EventArray = np.empty(0, dtype=EVENT_DTYPE)
        self._wbuf: EventArray = self.window  #: the window's buffer, reused across batches
        self.window_feats = np.empty((0, 4))

    def _wants(self, s: Strategy, name: str) -> bool:
        """Whether ``s`` handles callback ``name`` in this run's mode."""
        if self.mode == "compiled":
            cb = type(s).compiled
            return cb is not None and getattr(cb, name) is not None
        return s.subscribes(name) or self._compiled_sub(s, name)

    def _compiled_sub(self, s: Strategy, name: str) -> bool:
        return (
            not s.has_python_path()
            and s.compiled is not None
            and getattr(s.compiled, name) is not None
        )

    # --- data ------------------------------------------------------------------------------
    def _refill(self) -> None:
        """Move the rows not yet seen by both views to the front of the window buffer and
        merge the next rows in after them (the buffer is reused: no allocation per batch)."""
        h = self.st.h
        keep = int(min(h[H_LOCAL_CUR], h[H_VENUE_CUR]))
        n = int(h[H_N_EV])
        rest = n - keep
        need = rest + self.feed.pending()
        buf = self._wbuf
        if len(buf) < need:  # the first batch, a larger one: grow with some headroom
            grown = np.empty(need + need // 4, dtype=EVENT_DTYPE)
            grown[:rest] = buf[keep:n]
            buf = self._wbuf = grown
        elif rest and keep:
            buf[:rest] = buf[keep:n]  # overlapping move: numpy copies through a temporary
        got, final = self.feed.next_into(buf, rest)
        self.window = buf[: rest + got]
        h[H_EV_PTR] = buf.ctypes.data  # advance() reads the window through it
        if self.features:
            fresh = self._chunk_features(buf[rest : rest + got])
            old = self.window_feats[keep:n] if n else fresh[:0]
            self.window_feats = np.ascontiguousarray(np.concatenate([old, fresh]))
            h[H_FEAT_PTR] = self.window_feats.ctypes.data if len(self.window_feats) else 0
        h[H_LOCAL_CUR] -= keep
        h[H_VENUE_CUR] -= keep
        h[H_N_EV] = len(self.window)
        h[H_FINAL] = 1 if final else 0
        if h[H_NEXT_SAMPLE] == 0 and len(self.window) and self.sample_ns > 0:
            first = int(self.window["local_ts"][0])
            h[H_NEXT_SAMPLE] = (first // self.sample_ns + 1) * self.sample_ns
        if h[H_NOW] == 0 and len(self.window):
            h[H_NOW] = int(min(self.window["exch_ts"][0], self.window["local_ts"][0]))

    def _chunk_features(self, chunk: EventArray) -> np.ndarray:
        """Features after every event of ``chunk``: one compiled pass per instrument."""
        from framework.features.kernels import N_FEATURES, compute_features

        out = np.full((len(chunk), N_FEATURES), np.nan)
        inst = chunk["instrument"]
        for i, (state, book) in enumerate(self._feat_state):
            mask = inst == i
            if mask.any():
                out[mask] = compute_features(chunk[mask], state=state, book=book)
        return out

    def _flush(self) -> None:
        """Move the recorder buffers' rows, decoded, to the result sink and empty them."""
        st = self.st
        h = st.h
        if self._decoder is None:
            names = [s.name for s in self.strategies]
            self._decoder = RecordDecoder(self.instruments, names, st.sub)
        for key, word in (
            ("fill", H_N_FILL),
            ("ord", H_N_ORD),
            ("deny", H_N_DENY),
            ("eq", H_N_EQ),
            ("pos", H_N_POS),
            ("mkt", H_N_MKT),
            ("lat", H_N_LAT),
        ):
            n = int(h[word])
            if n:
                # decoded into new arrays: the engine writes over the buffer when it goes on
                rows = getattr(st, f"rec_{key}")[:n]
                self._sink.add(RECORDS[key][0], self._decoder.decode(key, rows))
                h[word] = 0

    # --- running ---------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        """Replay everything and return the result tables."""
        t0 = time.perf_counter()
        # the result tables go to Parquet files as the recorder flushes (out_dir, else a
        # temporary folder)
        self._sink = ResultSink(self.out_dir, schemas=TABLE_SCHEMAS)
        self._decoder = None
        try:
            self._setup()
            self._refill()
            if self.mode == "compiled":
                self._run_compiled()
            else:
                self._run_python()
            self._flush()
            self.extra_config["replay_seconds"] = round(self._replay_seconds, 6)
            return self._result(time.perf_counter() - t0)
        except BaseException:
            self._sink.abort()  # no half-written result files are left behind
            raise

    def _check_error(self, w: int) -> None:
        if w == WAKE_ERROR:
            code = int(self.st.h[H_ERROR])
            msg = f"the backtest stopped: {ERR_NAMES.get(code, code)}"
            raise HftlabError(msg)

    def _run_compiled(self) -> None:
        from framework.engine.codegen import CompiledStrategies

        cs = CompiledStrategies(self.strategies, [i.key for i in self.instruments])
        mod = cs.module
        args = cs.run_args()
        cs.start(self.arena)
        # compile (or load from the cache) before the clock starts
        import numba

        mod.run.compile(tuple(numba.typeof(x) for x in (self.arena, *args)))
        t0 = time.perf_counter()
        while True:
            w = mod.run(self.arena, *args)
            if w == WAKE_NEED_DATA:
                self._refill()
            elif w == WAKE_FLUSH:
                self._flush()
            elif w == WAKE_DONE:
                break
            else:
                self._check_error(w)
        self._replay_seconds = time.perf_counter() - t0
        for k in self._stopping():
            cs.stop(self.arena, k)
        self._finish()

    def _run_python(self) -> None:
        strategies = self.strategies
        ctxs = [Context(self.arena, sid, self.instruments) for sid in range(len(strategies))]
        sub = self.st.sub
        h = self.st.h
        # Python ints from the header without numpy scalar boxing
        hv = self._hv = memoryview(h)  # type: ignore[arg-type]
        # compiled-only strategies in a mixed run are called through generated dispatchers
        compiled_only = [k for k, s in enumerate(strategies) if not s.has_python_path()]
        disp: dict[int, Any] = {}
        if compiled_only:
            from framework.engine.codegen import CompiledStrategies

            cs = CompiledStrategies(
                [strategies[k] for k in compiled_only],
                [i.key for i in self.instruments],
                sids=compiled_only,
            )
            disp = {k: cs.dispatcher(j) for j, k in enumerate(compiled_only)}
            index = {k: j for j, k in enumerate(compiled_only)}
        # per instrument, the calls to make on a book change / a trade, each fn(arg, inst);
        # built once so a wake-up is a short list walk
        arena = self.arena

        def compiled_call(d: Any, wake: int) -> Any:
            return lambda a, inst: d(a, wake)

        def calls(name: str, wake: int, i: int) -> list[tuple[Any, Any]]:
            out: list[tuple[Any, Any]] = []
            for k, s in enumerate(strategies):
                if not sub[k, i]:
                    continue
                if k in disp:
                    out.append((compiled_call(disp[k], wake), arena))
                elif s.subscribes(name):
                    out.append((getattr(s, name), ctxs[k]))
            return out

        book_calls = [calls("on_book", WAKE_BOOK, i) for i in range(len(self.instruments))]
        trade_calls = [calls("on_trade", WAKE_TRADE, i) for i in range(len(self.instruments))]
        for k, s in enumerate(strategies):
            if k in disp:
                cs.start(arena, index[k])
            else:
                s.on_start(ctxs[k])
        step = api.entry(api.advance_at, api.I64_T)
        ptr = int(arena.ctypes.data)  # self.arena stays alive for the whole loop
        t0 = time.perf_counter()
        # the hot loop: one compiled step per wake-up, then the subscribers' callbacks (the
        # compiled side counts the wake-ups; locals only, checked in order of frequency)
        while True:
            w = step(ptr)
            if w == WAKE_BOOK:
                inst = hv[H_WAKE_INST]
                for fn, arg in book_calls[inst]:
                    fn(arg, inst)
            elif w == WAKE_TRADE:
                inst = hv[H_WAKE_INST]
                for fn, arg in trade_calls[inst]:
                    fn(arg, inst)
            elif w == WAKE_FILL or w == WAKE_ORDER or w == WAKE_TIMER:
                self._strategy_wake(w, hv[H_WAKE_STRAT], ctxs, disp)
            elif w == WAKE_NEED_DATA:
                self._refill()
            elif w == WAKE_FLUSH:
                self._flush()
            elif w == WAKE_DONE:
                break
            else:
                self._check_error(w)
        self._replay_seconds = time.perf_counter() - t0
        for k in self._stopping():
            s = strategies[k]
            if k in disp:
                cs.stop(arena, index[k])
            else:
                s.on_stop(ctxs[k])
        self._finish()

    def _stopping(self) -> Iterator[int]:
        """The strategies' indices for their ``on_stop``, the clock set to the time each
        one's run would end alone (``loop.end_clock``; other strategies' messages may still
        have been in flight), then set back."""
        from framework.engine.loop import end_clock

        h, strat = self.st.h, self.st.strat
        now = int(h[H_NOW])
        for k in range(len(self.strategies)):
            h[H_NOW] = end_clock(h, strat, k)
            yield k
        h[H_NOW] = now

    def _strategy_wake(self, w: int, k: int, ctxs: list[Context], disp: dict[int, Any]) -> None:
        """A fill, order update or timer for strategy ``k`` (Python path)."""
        hv = self._hv
        if k in disp:
            disp[k](self.arena, w)
        elif w == WAKE_FILL:
            self.strategies[k].on_fill(
                ctxs[k],
                FillInfo(
                    hv[H_WAKE_OID],
                    hv[H_WAKE_SIDE],
                    hv[H_WAKE_PRICE],
                    hv[H_WAKE_QTY],
                    hv[H_WAKE_INST],
                ),
            )
        elif w == WAKE_ORDER:
            kind = hv[H_WAKE_ORDER_KIND]
            reason = hv[H_WAKE_REASON]
            self.strategies[k].on_order(
                ctxs[k],
                OrderUpdate(
                    hv[H_WAKE_OID],
                    RESP_NAMES.get(kind, str(kind)),
                    REJ_NAMES.get(reason, "") if reason else "",
                ),
            )
        else:
            self.strategies[k].on_timer(ctxs[k])

    def _callbacks(self) -> int:
        """Strategy callbacks made: each book/trade wake-up of an instrument calls every
        strategy on it that has the callback; fills, order updates and timers call one."""
        st = self.st
        n = int(st.strat[:, S_N_WAKES].sum())
        for i in range(len(self.instruments)):
            for k, s in enumerate(self.strategies):
                if st.sub[k, i]:
                    n += int(st.inst[i, I_N_BOOK_WAKES]) * self._wants(s, "on_book")
                    n += int(st.inst[i, I_N_TRADE_WAKES]) * self._wants(s, "on_trade")
        return n

    def _finish(self) -> None:
        """The last sample, and the orders still working at the end into the order log."""
        self._flush()
        api.finish(self.arena)

    # --- results ---------------------------------------------------------------------------
    def _result(self, wall: float) -> BacktestResult:
        keep: dict[str, pl.Expr] = {}
        drop = self._decoder.positions_to_drop() if self._decoder is not None else []
        if drop:
            pairs = [(pl.col("strategy") == s) & (pl.col("instrument") == i) for s, i in drop]
            keep["positions"] = ~pl.any_horizontal(pairs)
        files = self._sink.close(keep=keep)
        span = (
            pl.scan_parquet(files.paths["equity"])
            .select(pl.col("ts").min().alias("start"), pl.col("ts").max().alias("end"))
            .collect()
        )
        h = self.st.h
        cfg = {
            "mode": self.mode,
            "latency": self.latency.describe(),
            "queue": self.queue.describe(),
            "instruments": [i.to_dict() for i in self.instruments],
            "strategies": {
                s.name: {
                    "class": f"{type(s).__module__}:{type(s).__qualname__}",
                    "params": s.params.as_dict(),
                }
                for s in self.strategies
            },
            "callbacks": self._callbacks(),
            "isolated": self.isolated,
            "clock_offsets_ns": dict(
                zip([i.key for i in self.instruments], self.feed.clock_offsets, strict=True)
            ),
            # what was replayed: the stored events, and the book updates (levels, trades,
            # statuses) the engine processed -- more when L3 data was projected to levels
            "stored_events": self._counts["stored"],
            "book_updates": int(h[H_EVENTS_LOCAL]),
            "l3_projected": self._counts["fed"] != self._counts["stored"],
            **self.extra_config,
        }
        start, end = span.row(0)
        return BacktestResult(
            files=files,
            tally=self._sink.tally,
            events=int(h[H_EVENTS_LOCAL]),
            wall_seconds=wall,
            start_ts=0 if start is None else int(start),
            end_ts=0 if end is None else int(end),
            config=cfg,
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
