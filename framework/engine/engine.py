"""The engine as one object every driver uses: a backtest, a live or paper session, research.

:class:`Engine` owns the arena (the compiled engine's whole state) and the strategies. A
driver gives it market data with :meth:`Engine.push` (any number of events, in local-time
order) and runs it with :meth:`Engine.advance`, which calls the strategies and returns when
the engine needs the driver: more input, requests to send, or the end.

Orders leave the strategies' side through the local order path (risk checks, the kill
switch, the strategy's view of its orders). Behind it sits a venue:

- ``venue="simulated"``: the simulated venue inside the compiled loop (queue positions,
  partial fills, fees, latency from the latency model): what a backtest uses;
- ``venue="external"``: requests wait for :meth:`Engine.drain_requests` (``advance`` returns
  ``Wake.REQUESTS`` as soon as there is one); the driver hands them to a gateway and gives
  its answers back with :meth:`Engine.inject`. The same strategy objects run either way.

The clock follows the data (``clock="data"``: time is the events' time, and when the input
runs out the engine waits for more) or the wall (``clock="wall"``: when the input runs out,
timers, samples and responses due by now still run, so a quiet feed stalls nothing).

Results go to Parquet files as the run goes (:class:`~framework.analysis.sink.ResultSink`);
:meth:`Engine.finish` returns them as a
:class:`~framework.analysis.results.BacktestResult`.

>>> # eng = Engine(instruments=[inst], strategies=[MyStrategy()], venue="external")
>>> # eng.push(events); w = eng.advance(); reqs = eng.drain_requests(); eng.inject(answers)
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

from framework.analysis.results import BacktestResult
from framework.analysis.sink import ResultSink
from framework.arena.enums import REJ_NAMES
from framework.arena.fnptr import I64_T, entry
from framework.arena.state import (
    ERR_CALLBACK,
    ERR_NAMES,
    H_CB_DATA,
    H_CB_WAKE,
    H_END_TS,
    H_ERROR,
    H_EV_PTR,
    H_EVENTS_LOCAL,
    H_EVENTS_VENUE,
    H_EXTERNAL,
    H_FEAT_PTR,
    H_FINAL,
    H_FN_WAKE,
    H_HORIZON,
    H_LOCAL_CUR,
    H_N_DENY,
    H_N_EQ,
    H_N_EV,
    H_N_FILL,
    H_N_MKT,
    H_N_ORD,
    H_N_POS,
    H_N_REQ,
    H_NEXT_SAMPLE,
    H_NOW,
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
    H_WALL,
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
    WAKE_REQUESTS,
    WAKE_TIMER,
    WAKE_TRADE,
    Capacity,
    allocate,
    unpack,
)
from framework.core.errors import ConfigError, HftlabError
from framework.core.events import EVENT_DTYPE, EventArray
from framework.core.hugepages import huge_copy
from framework.core.instrument import Instrument
from framework.engine.config import LatencyConfig, QueueConfig
from framework.engine.feed import MergedFeed
from framework.features.kernels import N_FEATURES
from framework.features.model import FeatureModel
from framework.kernel.core import WAKE_CODES, advance_code
from framework.kernel.core import finish as finish_state
from framework.kernel.loop import NO_HORIZON
from framework.kernel.recorder import RECORDS, TABLE_SCHEMAS, RecordDecoder, latency_table
from framework.kernel.seam import (
    REQUEST_DTYPE,
    RESPONSE_DTYPE,
    RESPONSE_KINDS,
    check_responses,
    drain_requests_state,
    inject_state,
    request_records,
)
from framework.strategy.base import Strategy
from framework.strategy.context import Context, FillInfo, OrderUpdate

Mode = Literal["auto", "compiled", "python"]
Venue = Literal["simulated", "external"]
Clock = Literal["data", "wall"]


class Wake(enum.IntEnum):
    """Why :meth:`Engine.advance` returned."""

    NEED_INPUT = WAKE_NEED_DATA  #: the input is used up: push more (or end it)
    REQUESTS = WAKE_REQUESTS  #: external venue: requests wait in drain_requests()
    DONE = WAKE_DONE  #: the input ended and nothing is left to do (or end_ts passed)


class Engine:
    """Instruments, strategies, the arena, a venue and a clock; see the module docstring.

    ``mode`` picks the strategies' callbacks: compiled (numba, in one compiled loop with the
    engine), Python, or ``auto`` (compiled when every strategy has them). ``end_ts`` stops
    the run at that local time. ``out_dir`` receives the result tables as they are written
    (a temporary folder living as long as the result otherwise).

    Strategies of one engine share an account unless ``isolated``: self-trade prevention
    stops an order that would meet a working order of any of them. With ``isolated=True``
    each strategy trades for an account of its own and sees nothing of the others' orders,
    so K copies of a strategy with different parameters
    (:func:`framework.engine.instances.copies`) run in one pass over the events, each with
    exactly the orders, fills and PnL of a run alone (README, "K instances in one pass").

    ``feature_model`` (:class:`~framework.features.model.FeatureModel`, plain arrays) is
    evaluated per event in the feature pass and fills the ``regime`` / ``regime_prob``
    features (NaN without one): one model for every instrument, or a dict of instrument
    keys ("VENUE/SYMBOL") to models, each fitted on its own instrument. Features are
    computed when a strategy sets ``features`` or a model is given.
    """

    _decoder: RecordDecoder | None  #: made with the first flush, after set-up
    _step: Any  #: one run of the loop to a wake-up for the driver (set by start)

    def __init__(
        self,
        *,
        instruments: Sequence[Instrument],
        strategies: Sequence[Strategy],
        latency: LatencyConfig | None = None,
        queue: QueueConfig | None = None,
        mode: Mode = "auto",
        venue: Venue = "simulated",
        clock: Clock = "data",
        sample_ns: int = 1_000_000_000,
        capacity: Capacity | None = None,
        end_ts: int | None = None,
        out_dir: Any = None,
        isolated: bool = False,
        feature_model: FeatureModel | dict[str, FeatureModel] | None = None,
    ) -> None:
        if not instruments:
            msg = "an engine needs at least one instrument"
            raise ConfigError(msg)
        if not strategies:
            msg = "an engine needs at least one strategy"
            raise ConfigError(msg)
        names = [s.name for s in strategies]
        if len(set(names)) != len(names):
            msg = f"strategy names must be unique in a run, got {names}; pass name=... to each"
            raise ConfigError(msg)
        if venue not in ("simulated", "external"):
            msg = f"venue={venue!r}: use 'simulated' (the backtest venue) or 'external' (a gateway)"
            raise ConfigError(msg)
        if clock not in ("data", "wall"):
            msg = f"clock={clock!r}: use 'data' (event time) or 'wall' (live)"
            raise ConfigError(msg)
        self.instruments = list(instruments)
        self.strategies = list(strategies)
        self.latency = latency or LatencyConfig()
        self.queue = queue or QueueConfig()
        self.mode = self._pick_mode(mode)
        self.venue: Venue = venue
        self.clock: Clock = clock
        self.sample_ns = int(sample_ns)
        self.capacity = capacity or Capacity(n_inst=len(instruments), n_strat=len(strategies))
        self.end_ts = end_ts
        self.isolated = bool(isolated)
        self.feature_model = feature_model
        #: the model of each instrument (None: its regime features stay NaN)
        self._models = self._models_per_instrument(feature_model)
        #: responses from inject() that named no live order (kept, not dropped)
        self.unmatched: npt.NDArray[np.void] = np.empty(0, RESPONSE_DTYPE)
        self._py_wake: Any = None  #: core_calls_python's C callback (kept alive here)
        self._py_error: BaseException | None = None  #: what a callback raised in the core
        #: pushed events whose local time was earlier than one pushed before (wall clock:
        #: they are processed at the latest time seen, and counted here)
        self.late_events = 0
        self._last_local = np.iinfo(np.int64).min
        self._final = False
        self._started = False
        self._finished = False
        self._replay_seconds = 0.0
        self.flushes = 0  #: recorder flushes to the result sink so far
        self._t0 = time.perf_counter()
        # a feature model is there to be read: it turns the feature pass on
        self.features = feature_model is not None or any(
            type(s).features for s in self.strategies
        )
        # the compiled loop releases the GIL: the sink's thread decodes beside it; a Python
        # path holds the GIL, so decoding stays here (two Python threads only take turns)
        self._sink = ResultSink(
            out_dir, schemas=TABLE_SCHEMAS, decode_in_thread=self.mode == "compiled"
        )
        self._decoder = None
        self._append: Any = None  #: push_rows's compiled append, resolved at first use
        try:
            self._setup()
        except BaseException:
            self._sink.abort()
            raise

    def _models_per_instrument(self, given: Any) -> list[FeatureModel | None]:
        keys = [i.key for i in self.instruments]
        if given is None or isinstance(given, FeatureModel):
            return [given] * len(keys)
        if not isinstance(given, dict):
            msg = (f"feature_model must be a framework.features.FeatureModel or a dict of "
                   f"instrument keys to them, got {type(given).__name__}")
            raise ConfigError(msg)
        unknown = [k for k in given if k not in keys]
        bad = [k for k, m in given.items() if not isinstance(m, FeatureModel)]
        if unknown or bad:
            what = f"names instruments {unknown} not in this run ({keys})" if unknown else (
                f"maps {bad} to something other than a framework.features.FeatureModel")
            raise ConfigError(f"feature_model {what}")
        return [given.get(k) for k in keys]

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
        cap = self.capacity
        if self.latency.series is not None:
            cap = dataclasses.replace(cap, lat_series=len(self.latency.series))
        a = allocate(cap)
        from framework.kernel.core import install

        install(a)  # the compiled core's entry points (compiled on first use)
        st = unpack(a)
        self.latency.encode(st)
        self.queue.encode(st)
        h = st.h
        h[H_SAMPLE_NS] = self.sample_ns
        h[H_EXTERNAL] = 1 if self.venue == "external" else 0
        h[H_WALL] = 1 if self.clock == "wall" else 0
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
        if self.features:
            from framework.book.l2 import l2_new
            from framework.features.kernels import feature_state
            from framework.features.model import model_state

            # per instrument: its own book, feature and model state, carried across batches
            # (the book sees what the strategy's book sees: it holds as much)
            self._feat_state = [
                (
                    feature_state(),
                    l2_new(cap.book_ticks, far_levels=cap.book_far_levels),
                    model_state(),
                )
                for _ in range(len(self.instruments))
            ]
        self.arena = a
        self.st = st
        self.window: EventArray = np.empty(0, dtype=EVENT_DTYPE)
        self._wbuf: EventArray = self.window  #: the window's buffer, reused across batches
        self.window_feats = np.empty((0, N_FEATURES))

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

    # --- input -----------------------------------------------------------------------------
    def _reserve(self, more: int) -> tuple[EventArray, int, int]:
        """The window buffer with room for ``more`` rows after the ones not yet seen by both
        views (moved to its front: the buffer is reused, no allocation per batch), where the
        new rows go, and how many rows were dropped from the front."""
        h = self.st.h
        if self.venue == "external":  # the venue view does not read the window
            h[H_EVENTS_VENUE] += h[H_LOCAL_CUR] - h[H_VENUE_CUR]
            h[H_VENUE_CUR] = h[H_LOCAL_CUR]
        keep = int(min(h[H_LOCAL_CUR], h[H_VENUE_CUR]))
        n = int(h[H_N_EV])
        rest = n - keep
        need = rest + more
        buf = self._wbuf
        if len(buf) < need:  # the first batch, a larger one: grow with some headroom
            grown = np.empty(need + need // 4, dtype=EVENT_DTYPE)
            grown[:rest] = buf[keep:n]
            buf = self._wbuf = grown
        elif rest and keep:
            buf[:rest] = buf[keep:n]  # overlapping move: numpy copies through a temporary
        return buf, rest, keep

    def _commit(self, keep: int, rest: int, got: int, final: bool) -> None:
        """``got`` new rows stand after the ``rest`` kept ones (``keep`` were dropped from the
        front): make them the window."""
        h = self.st.h
        buf = self._wbuf
        n = int(h[H_N_EV])
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
        self._final = final
        if got:
            self._last_local = max(self._last_local, int(buf["local_ts"][rest + got - 1]))
        if h[H_NEXT_SAMPLE] == 0 and len(self.window) and self.sample_ns > 0:
            first = int(self.window["local_ts"][0])
            h[H_NEXT_SAMPLE] = (first // self.sample_ns + 1) * self.sample_ns
        if h[H_NOW] == 0 and len(self.window):
            h[H_NOW] = int(min(self.window["exch_ts"][0], self.window["local_ts"][0]))

    def push(self, events: EventArray, *, final: bool = False) -> None:
        """Append market data: EVENT_DTYPE rows in local-time order, ``instrument`` the index
        of the event's instrument in this engine. ``final`` says no more will come.

        With the data clock an event earlier than one pushed before is an error (the
        engine's view of time would go backwards); with the wall clock (several feeds
        stamping on receipt) it is processed at the latest time seen and counted in
        :attr:`late_events`."""
        self._check_open()
        ev = self._checked(events)
        buf, rest, keep = self._reserve(len(ev))
        buf[rest : rest + len(ev)] = ev
        if self.clock == "wall" and len(ev):
            lt = buf["local_ts"][rest : rest + len(ev)]
            run = np.maximum.accumulate(lt)
            run = np.maximum(run, self._last_local)
            self.late_events += int(np.count_nonzero(run != lt))
            lt[:] = run
        self._commit(keep, rest, len(ev), final)

    def _checked(self, events: EventArray) -> EventArray:
        if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
            got = getattr(events, "dtype", type(events).__name__)
            msg = (
                f"push() takes framework.core.events.EVENT_DTYPE rows, got {got}; "
                "build them with framework.core.events.make_events"
            )
            raise ConfigError(msg)
        ev = np.atleast_1d(events)
        if not len(ev):
            return ev
        inst = ev["instrument"]
        n = len(self.instruments)
        bad = inst[(inst < 0) | (inst >= n)]
        if len(bad):
            msg = (
                f"pushed events name instrument index {int(bad[0])}; this engine has {n} "
                f"instrument(s) (0..{n - 1})"
            )
            raise ConfigError(msg)
        if self.clock == "data":
            lt = ev["local_ts"]
            if (np.diff(lt) < 0).any() or int(lt[0]) < self._last_local:
                msg = (
                    "pushed events go back in local time (local_ts must not decrease across "
                    "pushes with clock='data'); sort them, or use clock='wall' for live feeds"
                )
                raise ConfigError(msg)
        return ev

    def push_rows(self, rows: EventArray, n: int) -> None:
        """:meth:`push` of ``rows[:n]`` for a live driver's hot path: one compiled call,
        no allocation, none of push's checks of the values -- the rows' instrument
        indices must be valid (the driver's own decoder made them). Late rows are handled as
        push handles them (wall clock). Where the compiled append cannot take them (a data
        clock, features computed per push, a window buffer too small) it is :meth:`push`."""
        if (self.clock != "wall" or self.features or self._finished
                or rows.dtype != EVENT_DTYPE or not rows.flags.c_contiguous):
            self.push(rows[:n])
            return
        if self._append is None:
            self._append = _entry_for(_append_window_nb, self.st.h, self._wbuf, rows, 0, 0, True)
        got, last, late = self._append(self.st.h, self._wbuf, rows, n, self._last_local,
                                       self.venue == "external")
        if got < 0:  # no room: push() grows the buffer
            self.push(rows[:n])
            return
        self.window = self._wbuf[:got]
        self._last_local = last
        self.late_events += late
        self._final = False

    def reserve_window(self, rows: int) -> None:
        """Make the window's buffer hold ``rows`` rows now, its pages touched (on huge pages
        where the platform has them), so that no later push of up to that many rows grows
        it. A live driver calls it before its first packet: otherwise each batch larger than
        any before takes :meth:`push`'s growth (an allocation and a copy, in Python) in the
        middle of a tick -- on a live feed, the busiest ticks."""
        if len(self._wbuf) >= rows:
            return
        h = self.st.h
        n = int(h[H_N_EV])
        grown = huge_copy(np.zeros(rows, dtype=EVENT_DTYPE))
        grown[:n] = self._wbuf[:n]
        self._wbuf = grown
        self.window = grown[:n]
        h[H_EV_PTR] = grown.ctypes.data

    def push_from(self, feed: MergedFeed) -> bool:
        """Merge ``feed``'s next rows straight into the window (no intermediate copy);
        returns whether the input ended with them."""
        self._check_open()
        buf, rest, keep = self._reserve(feed.pending())
        got, final = feed.next_into(buf, rest)
        self._commit(keep, rest, got, final)
        return final

    def end_input(self) -> None:
        """No more market data will come: the engine runs out what is left and finishes."""
        self.push(np.empty(0, EVENT_DTYPE), final=True)

    def _chunk_features(self, chunk: EventArray) -> npt.NDArray[np.float64]:
        """Features after every event of ``chunk``: one compiled pass per instrument."""
        from framework.features.kernels import compute_features

        out = np.full((len(chunk), N_FEATURES), np.nan)
        inst = chunk["instrument"]
        for i, (state, book, mstate) in enumerate(self._feat_state):
            mask = inst == i
            if mask.any():
                out[mask] = compute_features(
                    chunk[mask],
                    state=state,
                    book=book,
                    model=self._models[i],
                    model_state_=mstate,
                )
        return out

    # --- the order seam --------------------------------------------------------------------
    def drain_requests(self) -> npt.NDArray[np.void]:
        """The orders, cancels and modifies the strategies sent (after the risk checks) that
        no venue has taken yet, as REQUEST_DTYPE records in the order the venue would see
        them; the queue is emptied. With the simulated venue the loop takes them itself, so
        this is empty."""
        n = int(self.st.h[H_N_REQ])
        words = np.empty((n, len(REQUEST_DTYPE.names or ())), np.int64)
        got = drain_requests_state(self.arena, words)
        return request_records(words[:got])

    def inject(self, responses: npt.NDArray[np.void]) -> int:
        """Give the venue's answers (RESPONSE_DTYPE records) to the strategies' side: each is
        acted on when the clock reaches its ``ts``; ``oid`` and ``strategy`` are the
        request's (order ids are unique per strategy). Answers naming no live order are kept in
        :attr:`unmatched` (a late answer to a finished order, a foreign id); returns how
        many of ``responses`` were queued."""
        self._check_open()
        r = np.atleast_1d(np.asarray(responses))
        if r.dtype != RESPONSE_DTYPE:
            msg = (
                f"inject() takes framework.kernel.seam.RESPONSE_DTYPE records, got {r.dtype}"
            )
            raise ConfigError(msg)
        problem = check_responses(r)
        if problem:
            raise ConfigError(f"inject(): {problem}")
        names = ("ts", "exch_ts", "kind", "oid", "strategy", "price", "qty", "liquidity",
                 "reason")
        ints = np.stack([r[k].astype(np.int64) for k in names], axis=1) if len(r) else (
            np.empty((0, len(names)), np.int64)
        )
        matched = np.zeros(len(r), np.bool_)
        ok = inject_state(self.arena, ints, np.ascontiguousarray(r["fee"], np.float64), matched)
        if not ok:
            self._check_error(WAKE_ERROR)
        if not matched.all():
            self.unmatched = np.concatenate([self.unmatched, r[~matched]])
        return int(matched.sum())

    # --- running ---------------------------------------------------------------------------
    def start(self, at: int | None = None) -> None:
        """Call the strategies' ``on_start`` (the first :meth:`advance` does it too).

        With the wall clock and no data yet the clock starts now, or at ``at`` (ns): a
        replay of a live session starts where the session did."""
        if self._started:
            return
        self._started = True
        h = self.st.h
        if self.clock == "wall" and h[H_NOW] == 0:  # no data yet: the clock starts now
            h[H_NOW] = time.time_ns() if at is None else int(at)
            if self.sample_ns > 0:
                h[H_NEXT_SAMPLE] = (int(h[H_NOW]) // self.sample_ns + 1) * self.sample_ns
        if self.mode == "compiled":
            self._start_compiled()
        else:
            self._start_python()

    def advance(self, until: int | None = None) -> Wake:
        """Run the engine, calling the strategies, until it needs the driver: more input,
        requests to send (external venue) or the end.

        When the input runs out, the data clock waits for more; the wall clock (or an
        explicit ``until``, in ns) lets timers, samples and responses due by then run first."""
        self._check_open()
        self.start()
        h = self.st.h
        if until is not None:
            h[H_HORIZON] = until
        elif self.clock == "wall":
            h[H_HORIZON] = time.time_ns()
        else:
            h[H_HORIZON] = NO_HORIZON
        t0 = time.perf_counter()
        try:
            while True:
                w = self._step()
                if w == WAKE_FLUSH:
                    self._flush()
                    continue
                if w in (WAKE_NEED_DATA, WAKE_REQUESTS, WAKE_DONE):
                    return Wake(w)
                self._check_error(w)
        finally:
            self._replay_seconds += time.perf_counter() - t0

    def _check_error(self, w: int) -> None:
        code = int(self.st.h[H_ERROR])
        if code == ERR_CALLBACK and self._py_error is not None:
            exc, self._py_error = self._py_error, None  # a Python callback's, in the core
            raise exc
        what = ERR_NAMES.get(code, f"engine error {code}") if code else f"wake-up code {w}"
        sid = int(self.st.h[H_WAKE_STRAT])
        if code == ERR_CALLBACK and 0 <= sid < len(self.strategies):
            # an exception cannot leave the core's C function: the callback is called once
            # more from here, through its runner, to raise it (the run stops either way)
            name = self.strategies[sid].name
            try:
                self._cs.dispatcher(sid)(self.arena, int(self.st.h[H_CB_WAKE]))
            except Exception as exc:
                exc.add_note(f"in a compiled callback of strategy {name!r}")
                raise
            what = f"{name}: {what}"
        msg = f"the engine stopped: {what}"
        raise HftlabError(msg)

    def _check_open(self) -> None:
        if self._finished:
            msg = "this engine has finished (finish() was called); make a new one"
            raise HftlabError(msg)

    # compiled strategies: the generated runner loops over the core and the callbacks
    def _start_compiled(self) -> None:
        from framework.engine.codegen import CompiledStrategies

        cs = self._cs = CompiledStrategies(self.strategies, [i.key for i in self.instruments])
        self._mod, self._args = cs.module, cs.run_args()
        cs.start(self.arena)
        # compile (or load from the cache) before the clock starts
        import numba

        self._mod.run.compile(tuple(numba.typeof(x) for x in (self.arena, *self._args)))
        # the core calls the callbacks itself at a wake-up, through the runner's ``wake``
        wake = cs.wake()
        if wake is not None:
            self.st.h[H_FN_WAKE], self.st.h[H_CB_DATA] = wake
        self._step = self._step_compiled
        # called through its entry point: numba's dispatcher types the params tuples at
        # every call (3.6 us against 0.6 us, per wake-up for the driver)
        self._run = _entry_for(self._mod.run, self.arena, *self._args)

    def _step_compiled(self) -> int:
        return int(self._run(self.arena, *self._args))

    def _stop_compiled(self) -> None:
        self.st.h[H_FN_WAKE] = self.st.h[H_CB_DATA] = 0
        for k in self._stopping():
            self._cs.stop(self.arena, k)

    def _stopping(self) -> Iterator[int]:
        """The strategies' indices for their ``on_stop``, the clock set to the time each
        one's run would end alone (``loop.end_clock``; other strategies' messages may still
        have been in flight), then set back."""
        from framework.kernel.loop import end_clock

        h, strat = self.st.h, self.st.strat
        now = int(h[H_NOW])
        for k in range(len(self.strategies)):
            h[H_NOW] = end_clock(h, strat, k)
            yield k
        h[H_NOW] = now

    # Python strategies (compiled-only ones among them through generated dispatchers)
    def _start_python(self) -> None:
        strategies = self.strategies
        self._ctxs = ctxs = [
            Context(self.arena, sid, self.instruments) for sid in range(len(strategies))
        ]
        sub = self.st.sub
        # Python ints from the header without numpy scalar boxing
        self._hv = memoryview(self.st.h)  # type: ignore[arg-type]
        compiled_only = [k for k, s in enumerate(strategies) if not s.has_python_path()]
        disp: dict[int, Any] = {}
        self._index: dict[int, int] = {}
        if compiled_only:
            from framework.engine.codegen import CompiledStrategies

            cs = self._cs = CompiledStrategies(
                [strategies[k] for k in compiled_only],
                [i.key for i in self.instruments],
                sids=compiled_only,
            )
            disp = {k: cs.dispatcher(j) for j, k in enumerate(compiled_only)}
            self._index = {k: j for j, k in enumerate(compiled_only)}
        self._disp = disp
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

        # per wake-up code (advance_code: a book change / a trade of each instrument), the
        # call to make, f(x, y, inst): built once, so a wake-up is one list index and one call
        # (a lone subscriber's method's function itself, with the strategy and its context:
        # no bound method or partial in between)
        self._calls: list[tuple[Any, Any, Any, int] | None] = [None] * WAKE_CODES
        for i in range(len(self.instruments)):
            for name, wake in (("on_book", WAKE_BOOK), ("on_trade", WAKE_TRADE)):
                self._calls.append((*_fire(calls(name, wake, i)), i))
        for k, s in enumerate(strategies):
            if k in disp:
                self._cs.start(arena, self._index[k])
            else:
                s.on_start(ctxs[k])
        self._py_step = entry(advance_code, I64_T)
        self._step = self._step_python

    def _step_python(self) -> int:
        """One compiled step per wake-up, then the subscribers' callbacks, until a wake-up
        for the driver (locals only, checked in order of frequency: this is the hot loop)."""
        step = self._py_step
        ptr = int(self.arena.ctypes.data)  # self.arena stays alive for the whole loop
        hv = self._hv
        calls = self._calls
        while True:
            w = step(ptr)
            if w >= WAKE_CODES:  # a book change or a trade
                f, x, y, inst = calls[w]
                f(x, y, inst)
            elif w == WAKE_FILL or w == WAKE_ORDER or w == WAKE_TIMER:
                self._strategy_wake(w, hv[H_WAKE_STRAT])
            else:
                return int(w)

    @property
    def python_callbacks(self) -> bool:
        """Started, with the strategies' callbacks run from Python (their Python forms)."""
        return getattr(self, "_step", None) == self._step_python

    def core_calls_python(self) -> int:
        """Python strategies: have the engine's core call their callbacks itself, through
        a C callback at ``h[H_FN_WAKE]`` (ctypes), as it calls compiled ones; returns its
        address. A compiled driver (the live runner's loop, :mod:`live.hotpath`) then runs
        the core, the callbacks and the sending of their requests without returning to
        Python between them: only the callbacks' own code runs in the interpreter. Measured
        on a live tick (``benchmarks/bench_live_runner.py``), the returns, the driver's
        bookkeeping and the sender's call from Python cost ~30 µs of a ~77 µs tick-to-order.

        The core's loop is the compiled strategies' (it looks again when the callbacks
        acted), whose decisions equal the Python driver's, one for one (the parity tests
        of both forms). An exception in a callback cannot leave the C function: it is kept,
        the core stops with ``ERR_CALLBACK`` and :meth:`advance` (or the driver's check)
        raises it, as the Python driver would have. :meth:`_stop_python` unhooks it."""
        if not self.python_callbacks:
            msg = "core_calls_python needs an engine started with Python strategies (mode='python')"
            raise ConfigError(msg)
        if self._py_wake is not None:
            return int(self.st.h[H_FN_WAKE])
        hv, calls = self._hv, self._calls
        strategy_wake = self._strategy_wake

        def wake(_p: int, w: int) -> int:
            try:
                if w == WAKE_BOOK or w == WAKE_TRADE:
                    call = calls[WAKE_CODES + 2 * hv[H_WAKE_INST] + (w == WAKE_TRADE)]
                    if call is not None:
                        f, x, y, inst = call
                        f(x, y, inst)
                else:
                    strategy_wake(w, hv[H_WAKE_STRAT])
            except BaseException as exc:  # (raised again by _check_error)
                self._py_error = exc
                hv[H_ERROR] = ERR_CALLBACK
                hv[H_CB_WAKE] = w
            return 0

        self._py_wake = _WAKE_FN(wake)
        addr = ctypes.cast(self._py_wake, ctypes.c_void_p).value or 0
        self.st.h[H_FN_WAKE] = addr
        return addr

    def _strategy_wake(self, w: int, k: int) -> None:
        """A fill, order update or timer for strategy ``k`` (Python path)."""
        hv = self._hv
        ctx = self._ctxs[k]
        if k in self._disp:
            self._disp[k](self.arena, w)
        elif w == WAKE_FILL:
            self.strategies[k].on_fill(
                ctx,
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
                ctx,
                OrderUpdate(
                    hv[H_WAKE_OID],
                    RESPONSE_KINDS.get(kind, str(kind)),
                    REJ_NAMES.get(reason, "") if reason else "",
                ),
            )
        else:
            self.strategies[k].on_timer(ctx)

    def _stop_python(self) -> None:
        self.st.h[H_FN_WAKE] = 0  # (core_calls_python's hook: on_stop runs from here)
        for k in self._stopping():
            if k in self._disp:
                self._cs.stop(self.arena, self._index[k])
            else:
                self.strategies[k].on_stop(self._ctxs[k])

    # --- results ---------------------------------------------------------------------------
    def _flush(self) -> None:
        """Move the recorder buffers' rows, decoded, to the result sink and empty them."""
        self.flushes += 1
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
        ):
            n = int(h[word])
            if n:
                # decoded by the sink's thread while the replay goes on: a copy, as the engine
                # writes over the buffer meanwhile (decoded here: the decoder copies it)
                rows = getattr(st, f"rec_{key}")[:n]
                if self._sink.decode_in_thread:
                    rows = rows.copy()
                self._sink.add_later(RECORDS[key][0], partial(self._decoder.decode, key, rows))
                h[word] = 0

    @property
    def now(self) -> int:
        """The engine clock (ns): the time of the last action taken."""
        return int(self.st.h[H_NOW])

    @property
    def events(self) -> int:
        """Events the strategies' view has processed."""
        return int(self.st.h[H_EVENTS_LOCAL])

    @property
    def replay_seconds(self) -> float:
        """Wall seconds spent in :meth:`advance` (the strategies' callbacks included)."""
        return self._replay_seconds

    def callbacks(self) -> int:
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

    def describe(self) -> dict[str, Any]:
        """The run's set-up for the result's config (mode, models, instruments, strategies)."""
        return {
            "mode": self.mode,
            "venue": self.venue,
            "clock": self.clock,
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
            "callbacks": self.callbacks(),
            "isolated": self.isolated,
            "book_updates": self.events,
            **({"feature_models": {
                inst.key: {
                    "inputs": list(m.inputs),
                    "halflife_ns": m.halflife_ns,
                    "labels": list(m.label_names),
                }
                for inst, m in zip(self.instruments, self._models, strict=True)
                if m is not None
            }} if self.feature_model is not None else {}),
        }

    def finish(self, config: dict[str, Any] | None = None) -> BacktestResult:
        """Stop the strategies (``on_stop``), take the last sample, log the orders still
        working, close the result files and return the result (``config`` adds to its
        config). The engine cannot be used afterwards."""
        self._check_open()
        try:
            self.start()
            if self.mode == "compiled":
                self._stop_compiled()
            else:
                self._stop_python()
            self._flush()
            finish_state(self.arena)
            self._flush()
            self._sink.add("latency", latency_table(self.st.lat_hist))
            self._finished = True
            return self._result(config or {})
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the result files written so far (nothing half-written is left)."""
        self._finished = True
        self._sink.abort()

    def _result(self, extra: dict[str, Any]) -> BacktestResult:
        keep: dict[str, pl.Expr] = {}
        self._sink.drain()  # every position row decoded: the decoder knows which to drop
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
        cfg = {**self.describe(), **extra}
        if self.unmatched.size:
            cfg["unmatched_responses"] = int(self.unmatched.size)
        if self.late_events:
            cfg["late_events"] = self.late_events
        start, end = span.row(0)
        return BacktestResult(
            files=files,
            tally=self._sink.tally,
            events=self.events,
            wall_seconds=time.perf_counter() - self._t0,
            start_ts=0 if start is None else int(start),
            end_ts=0 if end is None else int(end),
            config=cfg,
        )


@njit(cache=True)
def _append_window_nb(
    h: npt.NDArray[np.int64],
    buf: EventArray,
    rows: EventArray,
    n: int,
    last_local: int,
    external: bool,
) -> tuple[int, int, int]:
    """:meth:`Engine._reserve`, the copy and :meth:`Engine._commit` of a wall-clock push
    of ``rows[:n]`` into the window buffer ``buf``: ``(window rows, latest local time,
    late rows)``, or ``(-1, ...)`` with nothing moved when ``buf`` cannot hold them."""
    if external:  # the venue view does not read the window
        h[H_EVENTS_VENUE] += h[H_LOCAL_CUR] - h[H_VENUE_CUR]
        h[H_VENUE_CUR] = h[H_LOCAL_CUR]
    keep = min(h[H_LOCAL_CUR], h[H_VENUE_CUR])
    rest = h[H_N_EV] - keep
    if rest + n > buf.shape[0]:
        return -1, last_local, 0
    if keep:
        for i in range(rest):  # to the front, in order (the ranges may overlap)
            buf[i] = buf[keep + i]
    late = 0
    for j in range(n):
        buf[rest + j] = rows[j]
        lt = buf[rest + j].local_ts
        if lt < last_local:
            buf[rest + j].local_ts = last_local
            late += 1
        else:
            last_local = lt
    total = rest + n
    h[H_EV_PTR] = buf.ctypes.data
    h[H_LOCAL_CUR] -= keep
    h[H_VENUE_CUR] -= keep
    h[H_N_EV] = total
    h[H_FINAL] = 0
    if h[H_NEXT_SAMPLE] == 0 and total > 0 and h[H_SAMPLE_NS] > 0:
        h[H_NEXT_SAMPLE] = (buf[0].local_ts // h[H_SAMPLE_NS] + 1) * h[H_SAMPLE_NS]
    if h[H_NOW] == 0 and total > 0:
        h[H_NOW] = min(buf[0].exch_ts, buf[0].local_ts)
    return total, last_local, late


def _entry_for(fn: Any, *example: Any) -> Callable[..., Any]:
    """:func:`~framework.arena.fnptr.entry` of ``fn`` for the types of ``example``."""
    import numba

    return entry(fn, *(numba.typeof(x) for x in example))


#: the C signature of the core's wake-up hook (``wake(p, w)``, ``h[H_FN_WAKE]``)
_WAKE_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)


def _fire(calls: list[tuple[Any, Any]]) -> tuple[Callable[[Any, Any, int], Any], Any, Any]:
    """``(f, x, y)`` with ``f(x, y, inst)`` making the calls ``fn(arg, inst)`` in order."""
    if not calls:
        return _nothing, None, None
    if len(calls) == 1:
        fn, arg = calls[0]
        func = getattr(fn, "__func__", None)  # a strategy's bound method: its function
        if func is not None:
            return func, fn.__self__, arg
        return _one, fn, arg
    return _each, calls, None


def _nothing(x: Any, y: Any, inst: int) -> None:
    """No strategy listens to the instrument."""


def _one(fn: Any, arg: Any, inst: int) -> None:
    fn(arg, inst)


def _each(calls: list[tuple[Any, Any]], _: Any, inst: int) -> None:
    for fn, arg in calls:
        fn(arg, inst)


__all__ = ["REQUEST_DTYPE", "RESPONSE_DTYPE", "Clock", "Engine", "Mode", "Venue", "Wake"]
