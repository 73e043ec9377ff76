"""The live runner: the backtest's Strategy classes on a live feed, through an order gateway.

One :class:`~framework.engine.engine.Engine` with the wall clock holds the strategies, their
book, their risk checks and their portfolio, exactly as in a backtest. The runner only
drives it:

* **feed**: each poll of the MoldUDP64 handler (:mod:`live.feeds.itch_mold`) decodes the
  packets received; their events (stamped with the local receive time) are pushed, then the
  engine runs to that time (``advance(until=t)``);
* **orders out**: the requests the engine then has (after its compiled risk checks) go to
  the gateway under the key ``"{strategy}:{oid}"`` (order ids are unique per strategy), each
  through the :class:`~live.control.KillSwitch`: while it is tripped a new order or a modify
  never leaves the process and is answered locally (a reject, a cancel reject), cancels go;
* **orders in**: the gateway's events become RESPONSE_DTYPE records stamped with their local
  receive time, injected, and the engine runs to that time.

A cancel or modify of an order the gateway cannot take yet (not acknowledged, or another
request of it in flight) waits for the order's next event and goes then; if the order ends
first, it is answered with a cancel reject (unknown order), as a venue would.

``--paper`` (no gateway): the same engine with the backtest's simulated venue (latency and
queue models) filling the orders, on the live feed.

**Journal** (:mod:`live.journal`, when given): every packet as received (``KIND_FEED``, its
receive time), every request the engine made (``KIND_ORDER_OUT``: the REQUEST_DTYPE record,
stream 0 sent or deferred, 1 held by the kill switch), every response injected
(``KIND_ORDER_IN``: the RESPONSE_DTYPE record), every engine run without new input
(``KIND_ADVANCE``) and every kill or reset (``KIND_CONTROL``). These are all the engine's
inputs in the order it took them, so :mod:`live.replay` can drive a fresh engine through the
same steps and compare its decisions with the live ones. With a bandit (:mod:`live.bandit`:
K isolated instances, one trading at a time) the gate's random choices are journaled too
(``KIND_GATE``): a replay takes them from there.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import struct
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from framework.arena.enums import (
    LIQ_MAKER,
    LIQ_TAKER,
    ORD_MARKET,
    REJ_NONE,
    REJ_UNKNOWN_ORDER,
    TIF_FOK,
    TIF_IOC,
    TIF_POST_ONLY,
)
from framework.arena.state import (
    H_FN_WAKE,
    H_MAX_ORDERS,
    H_N_REQ,
    O_ID,
    O_MOD_SENT,
    O_STRAT,
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_NEW,
    RESP_ACK,
    RESP_CANCEL_REJECT,
    RESP_CANCELED,
    RESP_EXPIRED,
    RESP_FILL,
    RESP_MODIFIED,
    RESP_REJECT,
    WAKE_ERROR,
)
from framework.book.project import L3ToL2
from framework.core.errors import ConfigError, VenueError
from framework.core.events import EVENT_DTYPE
from framework.core.hugepages import huge_copy
from framework.core.instrument import Instrument
from framework.engine.config import LatencyConfig, QueueConfig
from framework.engine.engine import Engine, Mode, Wake
from framework.kernel.seam import REQUEST_DTYPE, RESPONSE_DTYPE
from framework.strategy.base import Strategy
from live.control import KillSwitch
from live.fastpath import EventLevels, FastFeed, RequestDrain
from live.feeds.itch_mold import GapError, MoldFeedHandler
from live.gateways.base import (
    TERMINAL,
    Ack,
    Canceled,
    CancelRejected,
    Connected,
    Disconnected,
    Event,
    Fill,
    OrderGateway,
    OrderKind,
    OrderState,
    Rejected,
    Replaced,
    Side,
    TimeInForce,
    Timeout,
    Violation,
)
from live.hotpath import (
    HS_AT,
    HS_CODE,
    HS_DECIDED,
    HS_GOT,
    HS_GW_ERR,
    HS_HBS,
    HS_K,
    HS_LAST_LOCAL,
    HS_LATE,
    HS_NMINE,
    HS_NOT_SYNCED,
    HS_NPK,
    HS_NREQ,
    HS_NSENT,
    HS_PACKETS,
    HS_PAGE_STEP,
    HS_ROWS,
    HS_T,
    HS_TICK,
    HS_TICKS,
    HS_WAKE,
    KILL_HELD,
    KILL_NEW,
    KILL_NONE,
    PAGES_PER_PASS,
    RET_ADVANCE,
    RET_FEED,
    RET_IDLE,
    RET_JOURNAL,
    RET_KILL,
    RET_NAMES,
    RET_ORDERS,
    RET_PARTIAL,
    RET_PUSH,
    RET_SENT,
    RET_TICK,
    SL_REQ,
    SL_WAIT,
    WARM_LINES,
    WARM_SEND_US,
    WARM_TICK_US,
    HotPath,
)
from live.journal import KIND_CONTROL, KIND_FEED, KIND_META, KIND_ORDER_IN, KIND_ORDER_OUT
from live.monitor import WIRE, StageClock
from live.txstamp import TxStamps

log = logging.getLogger("hftlab.live.runner")

KIND_ADVANCE = 1000  #: journal: the engine ran to this record's time with no new input
#: journal: "KEY REF KIND": the protocol id a cancel or replace (KIND) is about to carry;
#: KIND ``unsent`` (REF_UNSENT): a recovered run found that replace never left (the venue
#: never answered it), so a later recovery need not wait for its answer again
KIND_REF = 1001
REF_UNSENT = "unsent"
#: journal, --paper: one order of the simulated venue (JSON row of the orders table), all of
#: them at the session's end: a paper session's decisions never leave the engine, so this
#: is what its parity compares
KIND_PAPER_ORDER = 1002
#: journal, --bandit: one decision of the gate (JSON: epoch start, context, arm, reward of
#: the epoch it ended), or the close of the last epoch; a replay takes the journaled arms
KIND_GATE = 1003
#: the orders-table columns a paper session's parity compares
PAPER_FIELDS = ("order_id", "strategy", "side", "order_type", "tif", "price", "qty",
                "submit_ts", "status", "filled_qty", "avg_price", "reason")
#: --busy-poll: how often the quiet loop runs the packet path on scratch state (FastFeed.warm)
WARM_S = 0.001
#: --busy-poll: how long one call of the compiled loop (live.hotpath) polls at most before
#: the runner's Python (timers, the order session's heartbeats, the control port) runs
SPIN_S = 0.0005
STREAM_SENT = 0  #: ORDER_OUT stream: handed to the gateway (now, or once it can take it)
STREAM_HELD = 1  #: ORDER_OUT stream: held by the kill switch, answered locally
#: ORDER_OUT stream: decided by a run that crashed before journaling it (so it never left),
#: journaled by the run recovered from it where the replay makes it; answered locally
STREAM_UNSENT = 2
IN_MORE = 1  #: ORDER_IN stream bit: more responses of the same injected batch follow
IN_LOCAL = 2  #: ORDER_IN stream bit: the runner's own answer (nothing came from the venue)
_SEQ = struct.Struct("<q")


def request_of(payload: bytes) -> npt.NDArray[np.void]:
    """The REQUEST_DTYPE record of an ORDER_OUT payload."""
    return np.frombuffer(payload[: REQUEST_DTYPE.itemsize], REQUEST_DTYPE)[0]


def reference_of(payload: bytes) -> str:
    """The gateway's id of a sent new order (OUCH UserRefNum, FIX ClOrdID), or ''."""
    return payload[REQUEST_DTYPE.itemsize :].decode("ascii")


def parse_ref(payload: bytes) -> tuple[str, str, str]:
    """Key, protocol id and request kind (``cancel``, ``replace``; '' in journals written
    before the kind was kept) of a KIND_REF payload."""
    key, ref, what = [*payload.decode("ascii").split(" ", 2), "", ""][:3]
    return key, ref, what


def response_of(payload: bytes) -> tuple[npt.NDArray[np.void], int]:
    """The RESPONSE_DTYPE record of an ORDER_IN payload and the venue message sequence
    number it came from (-1: not known, or a local answer)."""
    n = RESPONSE_DTYPE.itemsize
    seq = _SEQ.unpack(payload[n : n + 8])[0] if len(payload) >= n + 8 else -1
    return np.frombuffer(payload[:n], RESPONSE_DTYPE)[0], seq


class EventTap(asyncio.Queue[Any]):
    """A gateway's event queue that keeps, with each event, the sequence number of the
    venue message being applied when it was emitted (the gateway's ``applying``: OUCH's
    sequenced message, FIX's MsgSeqNum), so the journal knows which venue messages it holds
    the effects of."""

    def __init__(self, gateway: Any) -> None:
        super().__init__()
        self._gw = gateway
        #: called with each event as the gateway emits it (its order states are new then)
        self.hook: Any = None

    def put_nowait(self, item: Any) -> None:
        super().put_nowait((item, int(getattr(self._gw, "applying", -1))))
        if self.hook is not None:
            self.hook(item)
#: stage numbers of :data:`live.monitor.STAGES`
PACKET_IN, DECODED, BOOK, STRATEGY, RISK, ENCODED, SENT = range(7)


# --- addresses ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedSpec:
    """``itch://HOST:PORT[?rerequest=PORT&session=NAME&locate=N]``: where the MoldUDP64 feed
    arrives (unicast, or a 239.x group on loopback) and the venue's re-request port; or
    ``binance-ws://HOST:PORT/PATH[?futures=1&reconnect_s=S]``: a Binance combined stream
    (depth, bookTicker, trade) over a websocket (``ws://HOST:PORT/PATH``), synced from
    snapshots asked for on the same connection (USD-M futures rules with ``futures=1``); a
    lost connection is reconnected for up to ``reconnect_s`` seconds (default 60)."""

    host: str
    port: int
    rerequest: int | None = None
    session: str | None = None
    locate: int = 1
    scheme: str = "itch"
    path: str = ""
    futures: bool = False
    reconnect_s: float = 60.0

    @classmethod
    def parse(cls, text: str) -> FeedSpec:
        u = _url(text, "--feed", ("itch", "binance-ws"),
                 "itch://127.0.0.1:PORT?rerequest=PORT or binance-ws://127.0.0.1:PORT/PATH")
        if u.scheme == "binance-ws":
            q = _query(u, "--feed", {"futures", "reconnect_s"})
            fut = q.get("futures", "0")
            if fut not in ("0", "1"):
                msg = f"--feed: futures={fut!r}: give futures=1 (USD-M) or leave it out (spot)"
                raise ConfigError(msg)
            try:
                rs = float(q.get("reconnect_s", "60"))
            except ValueError:
                rs = -1.0
            if not 0 <= rs < float("inf"):
                msg = (f"--feed: reconnect_s={q['reconnect_s']!r}: give the seconds to keep "
                       "reconnecting a lost connection (>= 0)")
                raise ConfigError(msg)
            return cls(host=u.hostname or "127.0.0.1", port=_port(u, "--feed"),
                       scheme=u.scheme, path=u.path or "/", futures=fut == "1",
                       reconnect_s=rs)
        q = _query(u, "--feed", {"rerequest", "session", "locate"})
        return cls(host=u.hostname or "127.0.0.1", port=_port(u, "--feed"),
                   rerequest=_int(q, "rerequest", "--feed"), session=q.get("session"),
                   locate=_int(q, "locate", "--feed") or 1)

    def build(self, instrument: Instrument, date: Any, *, price_step: int, qty_step: int,
              listen: bool = True) -> Any:
        """The feed handler this address names; ``listen=False``: a journal replay's (bound
        to a free port, no re-requests, never connected)."""
        if self.scheme == "binance-ws":
            from live.feeds.binance_live import BinanceFeed
            from live.feeds.binance_ws import Backoff

            return BinanceFeed(f"ws://{self.host}:{self.port}{self.path}",
                               tick_size=instrument.tick_size, lot_size=instrument.lot_size,
                               futures=self.futures, locate=self.locate,
                               reconnect=Backoff(give_up_s=self.reconnect_s))
        if not listen:
            return MoldFeedHandler(listen=("127.0.0.1", 0), date=date, price_step=price_step,
                                   qty_step=qty_step, locate=self.locate)
        return MoldFeedHandler(
            listen=(self.host, self.port), date=date, price_step=price_step,
            qty_step=qty_step, locate=self.locate, session=self.session,
            rerequest=None if self.rerequest is None else ("127.0.0.1", self.rerequest))


@dataclass(frozen=True)
class GatewaySpec:
    """``ouch://HOST:PORT?user=U&password=P`` or
    ``fix://HOST:PORT?sender=S&target=T[&store=DIR&heartbeat=S]``."""

    proto: str
    host: str
    port: int
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> GatewaySpec:
        u = _url(text, "--gateway", ("ouch", "fix"),
                 "ouch://127.0.0.1:PORT?user=U&password=P or fix://127.0.0.1:PORT?sender=S&target=T")
        if u.scheme == "ouch":
            q = _query(u, "--gateway", {"user", "password", "session"}, need=("user", "password"))
        else:
            q = _query(u, "--gateway", {"sender", "target", "store", "heartbeat"},
                       need=("sender", "target"))
        return cls(proto=u.scheme, host=u.hostname or "127.0.0.1", port=_port(u, "--gateway"),
                   options=q)

    def build(self, *, symbol: str, price_mult: int, timeout_s: float = 5.0) -> OrderGateway:
        """The gateway this address names (not connected yet)."""
        o = self.options
        if self.proto == "ouch":
            from live.gateways.ouch import OuchGateway

            return OuchGateway(self.host, self.port, username=o["user"], password=o["password"],
                               session=o.get("session", ""), symbol=symbol,
                               price_mult=price_mult, timeout_s=timeout_s)
        from live.gateways.fix import FixGateway

        store = Path(o["store"]) if "store" in o else None
        return FixGateway(self.host, self.port, sender=o["sender"], target=o["target"],
                          symbol=symbol, store_dir=store,
                          heartbeat_s=int(o.get("heartbeat", "30")), price_mult=price_mult,
                          price_decimals=4, timeout_s=timeout_s)


def _url(text: str, opt: str, schemes: Sequence[str], example: str) -> urllib.parse.SplitResult:
    u = urllib.parse.urlsplit(text)
    if u.scheme not in schemes:
        msg = f"{opt} {text!r}: use {example}"
        raise ConfigError(msg)
    return u


def _port(u: urllib.parse.SplitResult, opt: str) -> int:
    try:
        port = u.port
    except ValueError:
        port = None
    if not port:
        msg = f"{opt} {u.geturl()!r} names no port (HOST:PORT, 1-65535)"
        raise ConfigError(msg)
    return port


def _query(u: urllib.parse.SplitResult, opt: str, allowed: set[str],
           need: Sequence[str] = ()) -> dict[str, str]:
    q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    odd = sorted(set(q) - allowed)
    if odd:
        msg = f"{opt}: unknown option(s) {odd}; {u.scheme}:// takes {sorted(allowed)}"
        raise ConfigError(msg)
    missing = [k for k in need if not q.get(k)]
    if missing:
        msg = f"{opt}: {u.scheme}:// needs {', '.join(f'{k}=...' for k in missing)}"
        raise ConfigError(msg)
    return q


def _int(q: dict[str, str], key: str, opt: str) -> int | None:
    if key not in q:
        return None
    try:
        return int(q[key])
    except ValueError:
        msg = f"{opt}: {key}={q[key]!r} is not a whole number"
        raise ConfigError(msg) from None


@dataclass(frozen=True)
class Triggers:
    """When the runner trips the kill switch by itself (besides the strategies' own loss
    and drawdown limits, which trip it when the engine halts a strategy)."""

    stale_feed_s: float = 5.0  #: no packet (data or heartbeat) for this long
    gateway_down_s: float = 2.0  #: the order session down for this long
    rejects: int = 20  #: this many rejects from the venue ...
    rejects_window_s: float = 1.0  #: ... within this many seconds

    @classmethod
    def parse(cls, items: Sequence[str]) -> Triggers:
        """``KEY=VALUE`` items (``--kill-on stale_feed_s=3``); an unknown key or a value
        that is not a positive number is a ConfigError naming it."""
        names = {f.name: f.type for f in dataclasses.fields(cls)}
        vals: dict[str, Any] = {}
        for item in items:
            key, _, text = item.partition("=")
            if key not in names:
                msg = f"--kill-on {item!r}: the triggers are {', '.join(names)}"
                raise ConfigError(msg)
            try:
                v = int(text) if key == "rejects" else float(text)
            except ValueError:
                v = -1
            if v <= 0:
                msg = f"--kill-on {item!r}: give a number > 0"
                raise ConfigError(msg)
            vals[key] = v
        return cls(**vals)


# --- conversions ------------------------------------------------------------------------------
def order_key(sid: int, oid: int) -> str:
    """The gateway key of a strategy's order (order ids are unique per strategy only)."""
    return f"{sid}:{oid}"


def _parse_key(key: str) -> tuple[int, int]:
    sid, oid = key.split(":", 1)
    return int(sid), int(oid)


_SIDE = {int(s): s for s in Side}
_TIF = {TIF_IOC: TimeInForce.IOC, TIF_FOK: TimeInForce.IOC, TIF_POST_ONLY: TimeInForce.POST_ONLY}


@dataclass(slots=True)
class _Live:
    """What the runner keeps of an order it sent."""

    sid: int
    oid: int
    tif: int
    waiting: list[npt.NDArray[np.void]] = field(default_factory=list)  #: deferred requests


class LiveRunner:
    """Strategies on a live feed and a gateway (or the simulated venue: ``gateway=None``)."""

    def __init__(
        self,
        *,
        instrument: Instrument,
        strategies: Sequence[Strategy],
        feed: Any,
        gateway: OrderGateway | None,
        locate: int = 1,
        mode: Mode = "auto",
        latency: LatencyConfig | None = None,
        queue: QueueConfig | None = None,
        journal: Any = None,
        switch: KillSwitch | None = None,
        clock: StageClock | None = None,
        meta: dict[str, Any] | None = None,
        replay: bool = False,
        triggers: Triggers | None = None,
        fast: bool = True,
        paper: bool | None = None,
        feature_model: Any = None,
        bandit: Any = None,
        wire_stamps: bool = False,
        warm_lines: int = WARM_LINES,
        warm_send_us: int = WARM_SEND_US,
        warm_tick_us: int = WARM_TICK_US,
        warm_pages: int = PAGES_PER_PASS,
    ) -> None:
        """``bandit``: a :class:`live.bandit.LiveBandit` whose gated instances are
        ``strategies``; the engine then keeps each instance's account apart (isolated).
        ``wire_stamps``: date each tick's first order message by the kernel's transmit stamp
        too (:mod:`live.txstamp`; the ``wire`` / ``tick_to_wire`` figures), on the compiled
        loop's OUCH session, and each tick's first packet by the kernel's receive stamp
        (``rx_wait``, ``rx_to_wire``: :meth:`live.wire.mmsg.BatchReceiver.stamp`).
        ``warm_lines``: cache lines of the tick's code and state the compiled loop prefetches
        per pass while the feed is quiet
        (:meth:`~live.hotpath.HotPath.keep_warm`; 0: none); ``warm_send_us``: while the
        feed is quiet the loop sends a client heartbeat on the OUCH session at most this
        often, which keeps the kernel's transmit path warm for the next order
        (:meth:`~live.hotpath.HotPath.warm_sends`; 0: never); ``warm_tick_us``: while the
        feed is quiet the loop runs the packet path on a scratch packet at most this often,
        which keeps its instructions warm (:meth:`~live.hotpath.HotPath.warm_ticks`; 0:
        never); ``warm_pages``: while the feed is quiet the loop reads a byte of this many of
        the tick's pages per pass, which keeps their address translations current
        (:meth:`~live.hotpath.HotPath.keep_pages`; 0: none; with ``warm_lines``)."""
        self.instrument = instrument
        self.feed, self.gateway, self.locate = feed, gateway, int(locate)
        #: the simulated venue fills the orders (live --paper, and the replay of its journal)
        self.paper = gateway is None and not replay if paper is None else paper
        self.engine = Engine(
            instruments=[instrument], strategies=list(strategies), mode=mode,
            latency=latency, queue=queue,
            venue="simulated" if self.paper else "external", clock="wall",
            feature_model=feature_model, isolated=bandit is not None)
        #: journal replay: requests are recorded here (the journal holds the answers)
        self.replay = replay
        self.decisions: list[tuple[npt.NDArray[np.void], int]] = []
        #: replay: (decisions made before it, "kill"/"reset", reason) of each journaled action
        self.controls: collections.deque[tuple[int, str, str]] = collections.deque()
        self.n_decisions = 0  #: requests the engine made (journaled as ORDER_OUT)
        #: recovery: requests the crashed run decided but never journaled (journaled as
        #: STREAM_UNSENT when the journal is attached)
        self.unjournaled: list[npt.NDArray[np.void]] = []
        self.journal = journal
        self.switch = switch or KillSwitch()
        self.triggers = triggers or Triggers()
        #: the switch as the loop last acted on it: a trip (from any thread) takes effect
        #: at the loop's next step or the next request, whichever comes first, and is
        #: journaled there, so a replay puts it at the same place
        self.killed = False
        #: the orderly stop began (journaled as a control action like a kill): from then on
        #: only cancels leave, as after a kill, while the working orders are cancelled
        self.stopping = False
        self._rejects: collections.deque[float] = collections.deque()
        self._last_packet = time.monotonic()
        self._down_since: float | None = None
        self._seen_receive = 0
        self.metrics: Any = None  #: a live.monitor.Metrics to update (the control port's)
        self._prepared = False
        self.clock = clock or StageClock()
        self.orders: dict[str, _Live] = {}
        self.sent = self.held = self.responses = self.violations = 0
        self.unsent = 0  #: new orders answered locally: the gateway was not connected
        #: gateway events not yet taken: (receive time, event, venue message sequence)
        self._pending: list[tuple[int, Event, int]] = []
        self._tap: EventTap | None = None
        if gateway is not None:
            self._tap = EventTap(gateway)
            gateway.events = gateway.tracker.events = self._tap
        self._t = 0  #: receive time of the input being processed
        self._tick_open = False  #: a tick's stage marks are being taken
        self.wire_stamps = wire_stamps
        self.warm_lines = warm_lines
        self.warm_send_us = warm_send_us
        self.warm_tick_us = warm_tick_us
        self.warm_pages = warm_pages
        self._wire: TxStamps | None = None  #: the session's transmit stamps (wire_stamps)
        self._sent_in_tick = False  #: and its first message has gone out
        self._levels = L3ToL2()
        #: the compiled batch path of an ITCH feed (live.fastpath), live sessions only
        self._fast = FastFeed(feed, self._levels) if fast and not replay and isinstance(
            feed, MoldFeedHandler) and feed._rx is not None else None
        #: the handler's own path's events to level rows in one compiled call (live sessions)
        self._ev_levels = EventLevels(self._levels) if fast and not replay else None
        if self._ev_levels is not None and isinstance(feed, MoldFeedHandler) and not len(feed.rows):
            feed.book_locate = -1  # the projection's book is the instrument's only book
        #: the engine's requests drained into buffers allocated once (live sessions)
        self._drain = RequestDrain(self.engine) if fast and not replay else None
        #: the compiled loop from the feed socket to the order socket (live.hotpath), made
        #: by prepare() for an ITCH feed (and, to send, an OUCH session)
        self._hot: HotPath | None = None
        self.spin_s = SPIN_S  #: how long one call of the loop polls at most (busy poll)
        self._touch_due = False  #: a tick moved the market: follow_touch when it is quiet
        #: committed ticks whose transmit stamps are read when it is quiet: (row, lo, hi)
        self._wire_due: list[tuple[int, int, int]] = []
        #: the loop saw the order socket's error flag alone: transmit stamps to drain when quiet
        self._stamps_waiting = False
        feed.on_events = self._on_events
        feed.on_packet = self._on_packet if journal is not None else None
        self.meta = dict(meta or {})
        if journal is not None:
            journal.append(KIND_META, json.dumps({"version": 1, **self.meta}).encode())
        self.bandit = bandit
        if bandit is not None:
            bandit.bind(self)

    def attach_journal(self, journal: Any) -> None:
        """Journal from now on (a recovered session: the journal it was rebuilt from)."""
        self.journal = journal
        self.feed.on_packet = self._on_packet
        # the crashed run's decisions the replay made past its journal, where they belong:
        # a later replay of the whole journal makes them there too
        for r in self.unjournaled:
            journal.append(KIND_ORDER_OUT, r.tobytes(), stream=STREAM_UNSENT)
        self.unjournaled.clear()
        if self.bandit is not None:
            self.bandit.journal_pending()  # decisions made while the journal was rebuilt

    # --- feed -----------------------------------------------------------------------------
    def start(self, at: int | None = None) -> None:
        """Start the strategies (compiled ones are compiled or loaded now); the journal
        keeps the engine's start time for a replay."""
        self.engine.start(at)
        if self.journal is not None:
            self.journal.append(KIND_CONTROL, json.dumps({"action": "start"}).encode(),
                                ts=self.engine.now)

    def _on_packet(self, pkt: memoryview, ts: int) -> None:
        self.journal.append(KIND_FEED, bytes(pkt), ts=ts)

    def _on_events(self, ev: npt.NDArray[np.void]) -> None:
        if self._ev_levels is not None:  # a live session: one compiled call
            n, own = self._ev_levels(ev, self.locate)
            if own:
                self._push_levels(self._ev_levels.rows, n)
            return
        mine = ev[ev["instrument"] == self.locate]
        if not len(mine):
            return
        rows = mine.astype(EVENT_DTYPE, copy=True)
        rows["instrument"] = 0
        # the venue's timestamps are of its (replayed) day: the receive time is the clock
        # the engine and the venue model share
        rows["exch_ts"] = rows["local_ts"]
        if not self._tick_open and not self.replay:  # the first events of this poll
            self._tick_open = True
            self.clock.mark(PACKET_IN, self.feed.last_receive_ns)
            self.clock.mark(DECODED, time.time_ns())
        self.engine.push(self._levels(rows))  # the engine's books are price levels
        if self._tick_open:
            self.clock.mark(BOOK, time.time_ns())

    def _push_levels(self, rows: npt.NDArray[np.void], n: int) -> None:
        """Level rows of a batch into the engine (the first of a poll opens its tick)."""
        if not self._tick_open:
            self._tick_open = True
            self.clock.mark(PACKET_IN, self.feed.last_receive_ns)
            self.clock.mark(DECODED, time.time_ns())
        self.engine.push_rows(rows, n)
        self.clock.mark(BOOK, time.time_ns())

    def poll_feed(self, timeout_s: float = 0.0, spin_s: float = 0.0) -> int:
        """Read and apply what the feed has, run the engine to its receive time, send what
        the strategies decided; returns the messages applied. ``spin_s``: with the compiled
        loop (:mod:`live.hotpath`), keep polling for that long while nothing needs Python."""
        if self.feed.alarm is not None:  # the book stopped at a lost range: no more data
            return 0
        if self._hot is not None and timeout_s <= 0 and self._hot_ready():
            return self._poll_hot(spin_s)
        fast = self._fast
        try:
            n = self.feed.poll(timeout_s) if fast is None or timeout_s > 0 else fast.poll()
        except GapError as exc:
            self.switch.trip(f"feed: {exc}")  # quotes on a book with a hole must not stand
            return 0
        if fast is not None and fast.n_rows:
            self._push_levels(fast.rows, fast.n_rows)
        if self.feed.heard_ns != self._seen_receive:  # the venue's (not a lost connection's)
            self._seen_receive = self.feed.heard_ns
            self._last_packet = time.monotonic()
        if n:
            self._run(self.feed.last_receive_ns)
            if self._tick_open:  # no order came of it: not a tick-to-order sample
                self._tick_open = False
                self.clock.discard()
        return n

    # --- the compiled loop (live.hotpath) --------------------------------------------------
    def _hot_ready(self) -> bool:
        """The loop can take the next batch: the handler is in its common state (a session
        learned, no gap open, nothing held) and no kill or stop is being acted on."""
        f = self.feed
        return f.session is not None and f._gap is None and not f._held

    def _arm_hot(self) -> None:
        hot = self._hot
        assert hot is not None
        hot.kill[0] = KILL_NONE  # cleared first: a trip from now on sets it again
        holding = self.holding or self.switch.tripped
        if holding:  # the feed goes on; requests come to Python, which holds them
            hot.kill[0] = KILL_HELD
        hot.arm(orders=not holding and self.gateway is not None and hot.gateway is not None)

    def _poll_hot(self, spin_s: float) -> int:
        """One call of the compiled loop, then Python takes over where it stopped."""
        hot = self._hot
        assert hot is not None
        f = self.feed
        m0 = f.messages
        self._arm_hot()
        code = hot.spin(time.time_ns() + int(spin_s * 1e9), self.clock._row)
        self._after_spin(code)
        return f.messages - m0

    def _after_spin(self, code: int) -> None:
        """Book what the loop did (the engine's window, the feed's counters, the orders it
        sent, the tick's marks), then finish by the Python path what it left."""
        hot = self._hot
        assert hot is not None
        hs = hot.hs
        f, eng = self.feed, self.engine
        hot.n_heartbeats += int(hs[HS_HBS])
        if hs[HS_NOT_SYNCED] and self.journal is not None:
            hs[HS_NOT_SYNCED] = 0
            self.journal.sync()  # raises what the disk said
        got = int(hs[HS_GOT])
        if got >= 0:
            eng.window = eng._wbuf[:got]
            eng._final = False
        eng._last_local = int(hs[HS_LAST_LOCAL])
        eng.late_events += int(hs[HS_LATE])
        if hs[HS_PACKETS]:
            f.compiled_polls += 1
            assert self._fast is not None
            self._fast.fast_batches += int(hs[HS_TICKS])
            hot.n_ticks_all += int(hs[HS_TICKS])
            if f.last_receive_ns != self._seen_receive:
                self._seen_receive = f.last_receive_ns
                self._last_packet = time.monotonic()
        self._book_hot()
        if hs[HS_TICK] and hs[HS_PACKETS]:
            self._tick_open = True
            self._sent_in_tick = bool(self.clock._row[SENT])
        t = int(hs[HS_T])
        if code == RET_SENT:
            hot.tick_sent()
            self._hot_commit()
        elif code == RET_FEED:  # the handler finishes the batch, then the usual tick
            fast = self._fast
            assert fast is not None
            fast.finish(int(hs[HS_CODE]), int(hs[HS_NPK]), hot.status, int(hs[HS_ROWS]),
                        int(hs[HS_AT]), int(hs[HS_NMINE]))
            f._settle()
            if fast.n_rows:
                self._push_levels(fast.rows, fast.n_rows)
            self._run(f.last_receive_ns)
        elif code == RET_PUSH:  # the engine's push grows the window
            assert self._fast is not None
            self.engine.push_rows(self._fast.rows, int(hs[HS_ROWS]))
            self.clock.mark(BOOK, time.time_ns())
            self._run(t)
        elif code == RET_TICK:  # Python callbacks: the engine runs here
            self._run(t)
        elif code == RET_ADVANCE:
            if hs[HS_WAKE] == WAKE_ERROR:
                eng._check_error(WAKE_ERROR)
            self._run(t)
        elif code in (RET_ORDERS, RET_KILL, RET_PARTIAL, RET_JOURNAL) and self._hot_rest(code):
            self._run(t)
        if code in (RET_FEED, RET_PUSH, RET_ADVANCE) and self.warm_lines:
            hot.keep_warm(self.warm_lines)  # (the steps that may replace arrays it warms)
            self._touch_due = False
        elif hs[HS_TICKS] and self.warm_lines:
            self._touch_due = True  # (the market moved: at the next quiet return)
        if self._tick_open:
            if self.clock._row[SENT]:  # (e.g. its last message went out in two writes)
                self._commit_tick()
            else:  # no order came of it: not a tick-to-order sample
                self._tick_open = self._sent_in_tick = False
                self.clock.discard()
        if hs[HS_GW_ERR]:  # the loop saw POLLERR alone: transmit stamps wait in the queue
            hs[HS_GW_ERR] = 0
            self._stamps_waiting = True  # (an error the gateway's reader sees on its turn)
        if code == RET_IDLE:
            self._settle_quiet()

    def _settle_quiet(self) -> None:
        """What a tick left for a quiet moment (the loop came back having seen no packet
        for a whole call): the warm ranges re-pointed at the touch (``follow_touch``), the
        loop's stalls booked, and the ticks' transmit stamps. Done right after the tick
        instead, the first and the last took ~120 and ~30 µs of Python (measured), while
        the packets after it -- a burst goes on, the venue answers the order -- waited in
        the socket."""
        hot = self._hot
        if self._touch_due and hot is not None:
            self._touch_due = False
            hot.follow_touch()
        if hot is not None and hot.stalls_waiting:  # (its ring holds ~50 busy ms of them)
            self.clock.note_stalls(hot.take_stalls())
        if self._wire_due or self._stamps_waiting:
            self._stamp_ticks()

    def _stamp_ticks(self) -> None:
        """The kernel's transmit stamps waiting in the session's error queue, matched to
        the committed ticks still waiting for theirs (each its first order message's: the
        earliest stamp between its ``encoded`` and ``sent`` marks) and written into their
        rows; other stamps (heartbeats') are dropped. A row the summariser took already, or
        the ring overwrote, is left as it is."""
        due, self._wire_due = self._wire_due, []
        self._stamps_waiting = False
        wire = self._wire_now()
        if wire is None:
            return
        clock = self.clock
        due = [d for d in due if clock.taken <= d[0] and d[0] > clock.written - clock.capacity]
        for (idx, _, _), best in zip(due, wire.first_in([(lo, hi) for _, lo, hi in due]),
                                     strict=True):
            if best:
                clock.rows[idx % clock.capacity][WIRE] = best

    def _hot_commit(self) -> None:
        if self._tick_open and self.clock._row[SENT]:
            self._commit_tick()

    def _commit_tick(self) -> None:
        """End the tick that sent an order; with the kernel's stamp of when its first
        message's bytes left, where transmit stamps are on (:mod:`live.txstamp`)."""
        row = self.clock._row
        if self._wire is not None and row[ENCODED]:  # (its stamp is read when it is quiet)
            self._wire_due.append((self.clock.written, int(row[ENCODED]),
                                   int(row[SENT]) or time.time_ns()))
        self.clock.commit()
        self._tick_open = self._sent_in_tick = False

    def _hot_rest(self, code: int) -> bool:
        """After the loop stopped in the middle of a tick's requests: the rest of a message
        the socket did not take, room in the journal, the request it could not take by the
        Python path, and the others back through the loop's sender (after a kill: all by
        the Python path, which holds them). Returns whether requests were in progress (the
        engine runs on)."""
        hot = self._hot
        assert hot is not None
        hs = hot.hs
        k, n = int(hs[HS_K]), int(hs[HS_NREQ])
        if code == RET_PARTIAL and hot.gateway is not None:
            # the rest of the message first, whatever follows (a kill's cancels, the batch's
            # next request), and also when it was the batch's last: the venue reads a stream
            hot.gateway.write_raw(hot.left())
            code = RET_SENT  # the batch's other requests go back to the loop's sender
        if k >= n:
            return False
        # the runner's own answers go in once the batch has gone, as _send does: the engine
        # must not run (and drain new requests over these) in between
        answers: list[npt.NDArray[np.void]] = []
        self.check_switch()
        self._rest_of_batch(code, k, n, answers)
        if answers:
            self._inject(np.concatenate(answers), self._t)
        return True

    def _rest_of_batch(self, code: int, k: int, n: int,
                       answers: list[npt.NDArray[np.void]]) -> None:
        hot = self._hot
        assert hot is not None
        hs = hot.hs
        for _ in range(2 * n + 2):  # each round takes a request, or makes journal room once
            if code == RET_PARTIAL and hot.gateway is not None:
                hot.gateway.write_raw(hot.left())
            elif code == RET_JOURNAL and self.journal is not None:
                self.journal.make_room(hot.journal_room())
            elif code == RET_KILL:
                self.check_switch()
                self._send_each(hot.requests(k, n), answers)
                return
            elif code == RET_ORDERS:
                self._send_each(hot.requests(k, k + 1), answers)
                k += 1
            if k >= n:
                return
            self._arm_hot()  # the Python path may have sent (UserRefNums, the transport)
            hs[HS_TICK] = int(self._tick_open)
            code = hot.route(k, n, self.clock._row)
            self._book_hot()
            if self._tick_open and self.clock._row[SENT]:
                self._sent_in_tick = True
            self._hot_commit()
            k = int(hs[HS_K])
            if code in (RET_SENT, RET_IDLE):
                return
        msg = f"the compiled sender made no progress on requests {k}..{n} (code {code})"
        raise ConfigError(msg)

    def _book_hot(self) -> None:
        """The orders and cancels the loop sent, into the gateway's and the runner's books
        (what :meth:`_route` does around the gateway's call)."""
        hot = self._hot
        assert hot is not None
        hs = hot.hs
        self.n_decisions += int(hs[HS_DECIDED])
        hs[HS_DECIDED] = 0
        n = int(hs[HS_NSENT])
        if not n:
            return
        gw = hot.gateway
        assert gw is not None
        answers: list[npt.NDArray[np.void]] = []
        for j, row in enumerate(hot.sent[:n, :SL_REQ].tolist()):
            kind, sid, oid, urn, side, qty, price, tif, _ = row
            key = order_key(sid, oid)
            if kind == SL_WAIT:  # journaled, not sent: it waits, as _route has it
                self._route(hot.waiting_request(j), answers)
                continue
            if kind == REQ_NEW:
                self.orders[key] = _Live(sid, oid, tif)
                gw.booked_new(key, _SIDE[side], qty, price, _TIF.get(tif, TimeInForce.DAY),
                              urn)
            else:
                gw.booked_cancel(key)
            self.sent += 1
            hot.n_sent += 1
        hs[HS_NSENT] = 0
        if answers:  # (none: the loop leaves a cancel it cannot place to Python's path)
            self._inject(np.concatenate(answers), self._t)

    def hot_summary(self) -> dict[str, Any] | None:
        """What the compiled loop did (None: the session ran without it): its returns to
        Python by reason, the order messages it wrote itself, the ticks it took, the
        heartbeats it sent to keep the order path warm, the pages it keeps read while the
        feed is quiet (:meth:`~live.hotpath.HotPath.keep_pages`) and how many a pass."""
        hot = self._hot
        if hot is None:
            return None
        return {"returns": {name: int(n) for name, n in zip(RET_NAMES, hot.calls, strict=True)
                            if n},
                "sent": hot.n_sent, "ticks": hot.n_ticks_all,
                "heartbeats": hot.n_heartbeats, "pages_kept": len(hot.pages),
                "pages_per_pass": int(hot.hs[HS_PAGE_STEP])}

    def _hot_sync(self, key: str) -> None:
        """Tell the loop whether it may cancel ``key`` itself (the venue accepted it and
        nothing else is pending or waiting on it), or a cancel of it waits."""
        hot = self._hot
        if hot is None or hot.gateway is None:
            return
        live = self.orders.get(key)
        if live is None:
            return
        o = self.gateway.orders.get(key) if self.gateway is not None else None
        if o is None or o.state in TERMINAL:  # a cancel of it is answered by Python's path
            hot.done(live.sid, live.oid)
        elif o.state in (OrderState.NEW, OrderState.PARTIALLY_FILLED) and not live.waiting:
            hot.working(live.sid, live.oid, int(hot.gateway.reference(key)))
        else:  # a cancel of it waits (_route): the loop journals it and leaves it to us
            hot.working(live.sid, live.oid, 0, wait=True)

    def _hot_out(self, t: int) -> bool:
        """The engine's requests through the loop's sender (Python callbacks' runs);
        False: not now (the Python path drains them)."""
        hot = self._hot
        if hot is None or hot.gateway is None or self.replay:
            return False
        if int(self.engine.st.h[H_N_REQ]) > len(hot.words):
            return False
        self.check_switch()
        self._arm_hot()
        hs = hot.hs
        hs[HS_TICK] = int(self._tick_open)
        hs[HS_T] = t
        code = hot.out(self.clock._row)
        self._book_hot()
        if self._tick_open and self.clock._row[SENT]:
            self._sent_in_tick = True
        if code in (RET_SENT, RET_IDLE):
            self._hot_commit()
        else:
            self._hot_rest(code)
        return True

    # --- gateway events -----------------------------------------------------------------------
    def take_gateway_events(self) -> int:
        """Convert the gateway's queued events into responses and inject them (each at its
        receive time, in order); returns how many responses were injected."""
        q = self._tap
        if q is None:
            return 0
        while not q.empty():
            ev, seq = q.get_nowait()
            self._pending.append((time.time_ns(), ev, seq))
        n = 0
        pending, self._pending = self._pending, []
        for t, ev, seq in pending:
            n += self._event(t, ev, seq)
        return n

    def _event(self, t: int, ev: Event, seq: int = -1) -> int:
        n = self._event_in(t, ev, seq)
        if self._hot is not None and isinstance(ev, Connected):
            self._hot.forget_all()  # a new session: every order looked at again
            for key in list(self.orders):
                self._hot_sync(key)
            self._stamp_wire()
        elif isinstance(ev, Disconnected):
            self._wire = None  # (its socket is gone)
        return n

    def _wire_now(self) -> TxStamps | None:
        """The transmit stamps, while their socket is the session's."""
        wire = self._wire
        if wire is None:
            return None
        hot = self._hot
        if hot is None or hot.gateway is None or hot.gateway.socket_fd() != wire.fd:
            self._wire = None
            return None
        return wire

    def _stamp_wire(self) -> None:
        """Transmit stamps on the new session's socket (``wire_stamps``)."""
        self._wire = None
        fd = self._hot.gateway.socket_fd() if self._hot is not None and \
            self._hot.gateway is not None else -1
        if not self.wire_stamps or fd < 0:
            return
        try:
            self._wire = TxStamps(fd)
        except OSError as e:
            log.warning("no transmit stamps on the order socket (%s): the wire figures are "
                        "not measured", e)
            self.wire_stamps = False

    def _event_in(self, t: int, ev: Event, seq: int = -1) -> int:
        if isinstance(ev, Connected):
            self._retry_all(t)  # requests that waited for the session go now
            return 0
        if isinstance(ev, Disconnected):
            log.warning("gateway disconnected: %s", ev.reason)
            return 0
        if isinstance(ev, Violation):
            self.violations += 1
            log.warning("gateway refused a venue message: %s %s", ev.key, ev.what)
            return 0
        if isinstance(ev, Timeout):
            log.warning("order %s: no answer within the timeout (%s)", ev.key, ev.state)
            return 0
        live = self.orders.get(ev.key)
        if live is None:
            log.warning("gateway event for an order this session did not send: %s", ev)
            return 0
        r = np.zeros(1, RESPONSE_DTYPE)[0]
        r["ts"] = r["exch_ts"] = t
        r["oid"], r["strategy"], r["fee"] = live.oid, live.sid, np.nan
        o = self.gateway.orders[ev.key] if self.gateway is not None else None
        if isinstance(ev, Ack):
            r["kind"], r["price"], r["qty"] = RESP_ACK, o.price if o else 0, o.leaves if o else 0
        elif isinstance(ev, Fill):
            r["kind"], r["price"], r["qty"] = RESP_FILL, ev.price, ev.qty
            r["liquidity"] = LIQ_MAKER if ev.liquidity == "A" else LIQ_TAKER
        elif isinstance(ev, Rejected):
            r["kind"], r["reason"] = RESP_REJECT, REJ_NONE
            self._rejects.append(time.monotonic())
            log.info("order %s rejected: %s", ev.key, ev.reason)
        elif isinstance(ev, Canceled):
            unsolicited = live.tif == TIF_IOC or live.tif == TIF_FOK
            r["kind"] = RESP_EXPIRED if unsolicited else RESP_CANCELED
            r["price"], r["qty"] = (o.price if o else 0), ev.qty
        elif isinstance(ev, Replaced):
            r["kind"], r["price"], r["qty"] = RESP_MODIFIED, ev.price, ev.qty
        elif isinstance(ev, CancelRejected):
            r["kind"], r["reason"] = RESP_CANCEL_REJECT, REJ_UNKNOWN_ORDER
        else:  # pragma: no cover - every gateway event type is handled above
            return 0
        self._inject(np.array([r], RESPONSE_DTYPE), t, seq)
        self._retry(ev.key, t)
        return 1

    def _inject(self, resp: npt.NDArray[np.void], t: int, seq: int | None = None) -> None:
        """Inject responses at ``t`` and run the engine; ``seq``: the venue message they
        came from (None: the runner's own answers)."""
        if self.journal is not None:
            local = IN_LOCAL if seq is None else 0
            tail = b"" if seq is None else _SEQ.pack(seq)
            for k, r in enumerate(resp):
                self.journal.append(KIND_ORDER_IN, r.tobytes() + tail, ts=t,
                                    stream=local | (IN_MORE if k + 1 < len(resp) else 0))
        self.engine.inject(resp)
        self.responses += len(resp)
        self._run(t)

    # --- engine and orders out ------------------------------------------------------------------
    def idle(self) -> None:
        """Run the engine to now with no new input (timers, samples, responses due)."""
        t = time.time_ns()
        if self.journal is not None:
            self.journal.append(KIND_ADVANCE, b"", ts=t)
        self._run(t)

    def _run(self, t: int) -> None:
        """Advance the engine to ``t`` and send its requests until it needs input."""
        eng = self.engine
        self._t = t
        for _ in range(1_000_000):  # each round sends at least one request
            w = eng.advance(until=t)
            if w != Wake.REQUESTS:
                return
            if self._hot_out(t):
                continue
            mark = self._tick_open and not self._sent_in_tick  # (up to its first order)
            if mark:
                self.clock.mark(STRATEGY, time.time_ns())  # callbacks and risk checks ran
            reqs = eng.drain_requests() if self._drain is None else self._drain()
            if mark:
                self.clock.mark(RISK, time.time_ns())  # the checked requests are out
            self._send(reqs)
        msg = "the strategies kept sending requests without any new input"
        raise ConfigError(msg)

    @property
    def holding(self) -> bool:
        """Only cancels leave (a kill, or the orderly stop's wind-down): new orders and
        modifies are held."""
        return self.killed or self.stopping

    def _send(self, reqs: npt.NDArray[np.void]) -> None:
        answers: list[npt.NDArray[np.void]] = []
        if not self.replay:
            self.check_switch()
        self._send_each(reqs, answers)
        if answers:
            self._inject(np.concatenate(answers), self._t)

    def _send_each(self, reqs: npt.NDArray[np.void],
                   answers: list[npt.NDArray[np.void]]) -> None:
        """The requests to the gateway (journaled first); the runner's own answers (held,
        or to an order that is done) are added to ``answers``, for the caller to inject once
        the whole batch has gone: the engine runs on them only then."""
        for r in reqs:
            if self.replay:
                self._replay_controls()
            self.n_decisions += 1
            kind = int(r["kind"])
            held = self.holding and kind != REQ_CANCEL
            if self.journal is not None and (held or kind != REQ_NEW):
                self.journal.append(KIND_ORDER_OUT, r.tobytes(),
                                    stream=STREAM_HELD if held else STREAM_SENT)
            if self.replay:
                self.decisions.append((r.copy(), STREAM_HELD if held else STREAM_SENT))
                continue
            if held:
                self.held += 1
                answers.append(_local_answer(r, self._t))
                continue
            self._route(r, answers)
        if self._tick_open and self._sent_in_tick:
            self._commit_tick()

    def _route(self, r: npt.NDArray[np.void], answers: list[npt.NDArray[np.void]]) -> None:
        gw = self.gateway
        assert gw is not None
        # the record's fields as Python ints in one call (each r[name] is a numpy scalar)
        _, _, kind, oid, sid, _, side, otype, tif, price, qty = r.item()
        key = order_key(sid, oid)
        if kind == REQ_NEW:
            if not gw.connected:  # never queued for later: the market will have moved
                if self.journal is not None:
                    self.journal.append(KIND_ORDER_OUT, r.tobytes(), stream=STREAM_SENT)
                log.warning("order %s not sent: the gateway is not connected", key)
                self.unsent += 1
                answers.append(_local_answer(r, self._t))
                return
            self.orders[key] = _Live(sid, oid, tif)
            first = self._tick_open and not self._sent_in_tick
            if first:
                self.clock.mark(ENCODED, time.time_ns())  # the gateway's call is ready
            if self.journal is not None:  # with the id it will have, before it goes
                self.journal.append(KIND_ORDER_OUT, r.tobytes() + gw.next_reference(key)
                                    .encode("ascii"), stream=STREAM_SENT)
                self.journal.flush()  # journaled before sent, even if the process dies
            gw.submit(_SIDE[side], qty, price, key=key, tif=_TIF.get(tif, TimeInForce.DAY),
                      kind=OrderKind.MARKET if otype == ORD_MARKET else OrderKind.LIMIT)
            if first:
                self.clock.mark(SENT, time.time_ns())  # encoded and written to the socket
                self._sent_in_tick = True
            self.sent += 1
            return
        live = self.orders.get(key)
        o = gw.orders.get(key)
        if live is None or o is None or o.state in TERMINAL:
            answers.append(_local_answer(r, self._t))
            return
        if (o.state not in (OrderState.NEW, OrderState.PARTIALLY_FILLED) or live.waiting
                or not gw.connected):
            live.waiting.append(r.copy())  # goes once the order (and session) can take it
            self._hot_sync(key)
            return
        self._request(gw, key, r)

    def _request(self, gw: OrderGateway, key: str, r: npt.NDArray[np.void]) -> None:
        first = self._tick_open and not self._sent_in_tick
        if first:
            self.clock.mark(ENCODED, time.time_ns())
        cancel = int(r["kind"]) == REQ_CANCEL
        self._note_ref(gw, key, "cancel" if cancel else "replace")
        if cancel:
            gw.cancel(key)
        else:
            gw.replace(key, int(r["price"]), int(r["qty"]))
        self._hot_sync(key)
        if first:
            self.clock.mark(SENT, time.time_ns())
            self._sent_in_tick = True
        self.sent += 1

    def _retry(self, key: str, t: int) -> None:
        """Send (or answer) the requests waiting on ``key`` now that it moved on."""
        live = self.orders.get(key)
        gw = self.gateway
        if live is None or not live.waiting or gw is None:
            return
        o = gw.orders[key]
        answers: list[npt.NDArray[np.void]] = []
        while live.waiting:
            if not gw.connected:
                break
            if o.state in TERMINAL:
                answers.extend(_local_answer(r, t) for r in live.waiting)
                live.waiting.clear()
                break
            if o.state not in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
                break
            r = live.waiting.pop(0)
            if r["kind"] == REQ_MODIFY and self.holding:
                answers.append(_local_answer(r, t))
                continue
            self._request(gw, key, r)
        self._hot_sync(key)  # what waits on it changed
        if answers:
            self._inject(np.concatenate(answers), t)

    def _retry_all(self, t: int) -> None:
        for key, live in list(self.orders.items()):
            if live.waiting:
                self._retry(key, t)

    def check_switch(self) -> None:
        """Act on the switch if it changed since the loop last looked: on a trip, journal
        it and cancel every working order; on a reset, journal it and let orders out."""
        tripped = self.switch.tripped
        if tripped == self.killed:
            return
        self.killed = tripped
        what = "kill" if tripped else "reset"
        if self.journal is not None:
            self.journal.append(KIND_CONTROL, json.dumps(
                {"action": what, "reason": self.switch.reason,
                 "decisions": self.n_decisions}).encode(), ts=self._t)
        if tripped:
            log.error("kill switch tripped: %s; cancelling every working order",
                      self.switch.reason)
            self.cancel_all()
        else:
            log.warning("kill switch reset: orders may leave again")

    def _replay_controls(self) -> None:
        """Replay: the kills and resets the session acted on before this decision."""
        q = self.controls
        while q and q[0][0] <= self.n_decisions:
            _, action, reason = q.popleft()
            if action == "stop":
                self.stopping = True
                continue
            if action == "kill":
                self.switch.trip(reason)
            else:
                self.switch.reset("journal")
            self.check_switch()

    def cancel_all(self) -> int:
        """Cancel every working order at the venue (their answers come back as events)."""
        gw = self.gateway
        if gw is None or self.replay or not gw.connected:
            return 0
        n = 0
        for key, o in list(gw.orders.items()):
            if o.state in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
                self._note_ref(gw, key, "cancel")
                gw.cancel(key)
                self._hot_sync(key)
                n += 1
        return n

    def _note_ref(self, gw: OrderGateway, key: str, kind: str) -> None:
        """Journal the id a cancel or replace will carry (a recovered run must know every
        id the venue's reports may name), and flush: journaled before sent."""
        if self.journal is None:
            return
        ref = gw.next_reference(key, kind)
        if ref:
            self.journal.append(KIND_REF, f"{key} {ref} {kind}".encode("ascii"))
        self.journal.flush()

    def check_triggers(self) -> None:
        """Trip the switch on a halted strategy (its loss or drawdown limit), a stale
        feed, a gateway down too long, or a storm of rejects."""
        if self.switch.tripped:
            return
        from framework.arena.state import S_KILLED

        now = time.monotonic()
        trg = self.triggers
        halted = [s.name for k, s in enumerate(self.engine.strategies)
                  if self.engine.st.strat[k, S_KILLED]]
        if halted:
            self.switch.trip(f"loss or drawdown limit of {', '.join(halted)}")
        elif now - self._last_packet > trg.stale_feed_s and not self.feed.ended:
            self.switch.trip(f"stale feed: no packet for {now - self._last_packet:.1f} s")
        elif self.gateway is not None:
            if self.gateway.connected:
                self._down_since = None
            elif self._down_since is None:
                self._down_since = now
            elif now - self._down_since > trg.gateway_down_s:
                self.switch.trip(f"gateway down for {now - self._down_since:.1f} s")
        while self._rejects and now - self._rejects[0] > trg.rejects_window_s:
            self._rejects.popleft()
        if len(self._rejects) >= trg.rejects and not self.switch.tripped:
            self.switch.trip(f"reject storm: {len(self._rejects)} rejects within "
                             f"{trg.rejects_window_s:g} s")

    # --- state ----------------------------------------------------------------------------------
    def positions(self) -> dict[str, int]:
        """Net position (lots) of each strategy in the instrument, from the engine."""
        from framework.arena.state import P_POS

        pos = self.engine.st.pos
        return {s.name: int(pos[k, 0, P_POS]) for k, s in enumerate(self.engine.strategies)}

    def status(self) -> dict[str, Any]:
        """The control endpoint's /status (what the dashboard shows). Read from the control
        thread: a snapshot that may be a step behind the loop, never blocking it."""
        from framework.portfolio.accounting import strategy_equity

        eng = self.engine
        inst = self.instrument
        names = [s.name for s in eng.strategies]
        equity = [float(strategy_equity(eng.st, k)[0]) for k in range(len(names))]
        orders = []
        gw = self.gateway
        if gw is not None:
            for key, o in list(gw.orders.items()):
                if o.live:
                    orders.append({"id": key, "instrument": inst.key,
                                   "side": "buy" if o.side == Side.BUY else "sell",
                                   "price": inst.ticks_to_price(o.price), "qty": o.qty,
                                   "filled": o.filled, "status": str(o.state)})
        return {
            "strategy": ", ".join(names),
            "pnl": sum(equity),
            "equity": sum(equity),
            "positions": {inst.key: sum(self.positions().values())},
            "orders": orders,
            "latency": self.clock.stats(),
            "risk": {"sent": self.sent, "held": self.held, "unsent": self.unsent,
                     "rejects_in_window": len(self._rejects),
                     "gateway_connected": bool(gw is not None and gw.connected),
                     "feed_messages": self.feed.messages, "feed_gaps": self.feed.gaps,
                     **{f"feed_{k}": v for k, v in self.feed.recoveries.items()}},
        }

    # --- running --------------------------------------------------------------------------------
    async def run(self, *, duration_s: float | None = None,
                  stop: asyncio.Event | None = None, idle_s: float = 0.005,
                  connect_timeout_s: float = 30.0, stats_every_s: float = 0.0,
                  recovered: Any = None, busy_poll: bool = False) -> None:
        """Start the strategies, connect (retrying while the venue is not up), trade until
        ``duration_s`` passed or ``stop`` is set, then stop in order: cancel the working
        orders, let their answers in, close the session.

        ``busy_poll``: never sleep between steps (the event loop's I/O runs every step, with
        a zero timeout): a packet is read as it arrives, on a core kept hot, instead of after
        the wake-up of a sleeping process (tens to hundreds of microseconds). It takes a
        core; the engine is still advanced with no input only every ``idle_s``, and the
        packet path runs on scratch state every ``WARM_S`` to keep its code in the caches."""
        loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        wake = asyncio.Event()
        opens = getattr(self.feed, "open", None)  # a feed on the loop (websocket)
        socks = [] if opens else [s.fileno() for s in (self.feed.sock, self.feed.req_sock)]
        for fd in socks:
            loop.add_reader(fd, wake.set)
        pump: asyncio.Task[None] | None = None
        try:
            self.prepare()
            if opens:
                await opens(wake)
            if self.gateway is not None:
                if recovered is not None:
                    self._adopt(recovered)
                await self._connect(connect_timeout_s)
                pump = asyncio.create_task(self._pump(wake))
                if recovered is not None:
                    await self.reconcile(recovered)
            end = None if duration_s is None else time.monotonic() + duration_s
            self._last_packet = time.monotonic()
            report_s = stats_every_s if stats_every_s > 0 else 1.0
            next_report = time.monotonic() + report_s

            def woken(_: str) -> None:  # a trip from another thread wakes the loop
                loop.call_soon_threadsafe(wake.set)

            self.switch.on_trip.append(woken)
            next_idle = next_warm = 0.0
            spin = self.spin_s if busy_poll else 0.0
            while not stop.is_set() and (end is None or time.monotonic() < end):
                if not self.poll_feed(spin_s=spin):
                    if opens and self.feed.ended:  # the server closed the stream: done
                        log.info("the feed's stream ended: stopping")
                        break
                    if not busy_poll or time.monotonic() >= next_idle:
                        self.idle()  # journaled: at most every idle_s when spinning
                        next_idle = time.monotonic() + idle_s
                    elif (self._fast is not None and self._hot is None
                          and time.monotonic() >= next_warm):
                        self._fast.warm()  # the packet path's code kept in the caches
                        next_warm = time.monotonic() + WARM_S
                self.take_gateway_events()
                self.check_triggers()
                self._t = time.time_ns()
                self.check_switch()
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + report_s
                    self._report(stats_every_s > 0)
                if busy_poll:
                    await asyncio.sleep(0)  # the loop's I/O and tasks, then straight on
                    continue
                h = loop.call_later(idle_s, wake.set)
                await wake.wait()
                h.cancel()
                wake.clear()
            self._settle_quiet()
            await self._wind_down()
        finally:
            for fd in socks:
                loop.remove_reader(fd)
            if opens:
                await self.feed.aclose()
            if pump is not None:
                pump.cancel()
            if self.gateway is not None:
                await self.gateway.close()

    def prepare(self) -> None:
        """Compile (or load) everything the first packet and order need and start the
        strategies; :meth:`run` does it if not done (once)."""
        if self._prepared:
            return
        self._prepared = True
        self.feed.warm_up()
        if self._fast is not None:
            self._fast.warm_up()
        self.start()
        # the seam's kernels too: compiling them at the first order would stall the loop
        # for seconds (the order session's heartbeats with it)
        self.engine.drain_requests()
        self.engine.inject(np.zeros(0, RESPONSE_DTYPE))
        if self._ev_levels is not None:  # the projection and the window's append (no rows)
            self._ev_levels(np.zeros(0, EVENT_DTYPE), self.locate)
            self.engine.push_rows(self._ev_levels.rows, 0)
        self._make_hot()
        log.info("ready: strategies started, feed on 127.0.0.1:%d", self.feed.port)

    def _make_hot(self) -> None:
        """The compiled loop, where it applies: an ITCH feed on the compiled batch path, a
        journal it can append to from compiled code (or none); it sends orders itself on an
        OUCH session, and runs the engine itself when the strategies' callbacks are
        compiled and called by the engine's core."""
        eng = self.engine
        if (self._fast is None or self.bandit is not None or eng.features
                or eng.clock != "wall"):
            return  # (features are computed per push, in Python: the loop's push has none)
        if self.journal is not None and not hasattr(self.journal, "hot"):
            return
        f = self.feed
        f._tbl = huge_copy(f._tbl)
        lv = self._levels
        meta, qty, ends, orders, table = lv.state
        lv.state = (huge_copy(meta), huge_copy(qty), huge_copy(ends), huge_copy(orders),
                    huge_copy(table))
        lv.prio = huge_copy(lv.prio)
        # room for the largest batch the loop projects, and as many rows not yet run
        eng.reserve_window(2 * len(self._fast.rows))
        if eng.python_callbacks:  # the loop runs the core, which calls them (ctypes)
            eng.core_calls_python()
        compiled = int(eng.st.h[H_FN_WAKE]) != 0
        if self.wire_stamps:  # the first packet's receive stamp too: the tick from stamp to stamp
            self._fast._rx.stamp()
        hot = HotPath(self._fast, eng, compiled=compiled, journal=self.journal)
        if self.gateway is not None and hasattr(self.gateway, "booked_new"):
            hot.bind(self.gateway)
        hot.warm_up(self.clock._row)
        hot.keep_pages(self.warm_pages)
        hot.keep_warm(self.warm_lines)
        hot.warm_sends(self.warm_send_us)
        hot.warm_ticks(self.warm_tick_us)
        hot.watch_stalls()  # (the stats' loop_stall: the CPU taken from the loop)
        self.switch.on_trip.append(lambda _: hot.kill.__setitem__(0, KILL_NEW))
        self._hot = hot
        if self._tap is not None:  # the gateway's states change before the runner's turn
            self._tap.hook = self._gateway_changed

    def _gateway_changed(self, ev: Event) -> None:
        """An event as the gateway emits it: the order's state changed already (a fill, a
        cancel) though the runner takes the event later: the loop must not act on the
        order's old state meanwhile."""
        key = getattr(ev, "key", None)
        if key is not None:
            self._hot_sync(key)

    def _report(self, table: bool) -> None:
        """Between ticks: the stage table (``--stats N``) and the Prometheus values."""
        if self._wire_due:
            self._stamp_ticks()
        if table:
            print(self.clock.table(), flush=True)
        if self.metrics is not None:
            self.metrics.update(self.clock, position=sum(self.positions().values()),
                                sent=self.sent, held=self.held, killed=int(self.killed),
                                messages=self.feed.messages)

    def _adopt(self, rec: Any) -> None:
        """Give the gateway the orders of the crashed run (live.replay.Recovered), each under
        its id now and with the id of a replace of it in flight, and have its login ask for
        every venue message after the last one journaled."""
        gw = self.gateway
        adopt, resume = getattr(gw, "adopt", None), getattr(gw, "resume_after", None)
        if adopt is None or resume is None or not hasattr(gw, "alias"):
            msg = "this gateway cannot adopt a crashed run's orders"
            raise ConfigError(msg)
        for key, o in rec.orders.items():
            sid, oid = _parse_key(key)
            self.orders[key] = _Live(sid, oid, rec.tifs[key])
            adopt(o, rec.refs[key], replacing=rec.replacing.get(key, ""))
        for key, ref in rec.aliases:
            if key in rec.orders:
                gw.alias(key, ref)  # type: ignore[union-attr]
        resume(rec.last_seq)

    async def reconcile(self, rec: Any, quiet_s: float = 2.0, timeout_s: float = 20.0) -> None:
        """After a recovered run logs in: take the venue's replay of what the journal
        missed (until the session is quiet for ``quiet_s``: OUCH does not say where the
        venue's stream ends, and 0.5 s was too short on a busy machine -- an order the venue
        had accepted was taken for one it never got), then settle the rest.

        Policy: a new order the venue never heard of (its bytes never left before the
        crash) is rejected locally, never sent again; so is a replace the venue never
        answered (journaled, then the crash before its bytes left: the order is the venue's
        as it was), and a modify the crash caught waiting to be sent (the order's answer
        came first): the strategy hears a refusal and decides again, no replace goes twice;
        an order the engine asked to cancel that is still working is cancelled now (the
        request may not have left either); everything else -- the venue's orders, fills,
        cancels, replaces -- is adopted as the venue reports it. Orphans (venue orders the
        journal does not name) cannot arise: every request is journaled with the protocol
        id it carries (UserRefNum, ClOrdID) before its bytes go."""
        gw = self.gateway
        assert gw is not None
        end = time.monotonic() + timeout_s
        quiet_until = time.monotonic() + quiet_s
        # a FIX session knows where the venue's resend ends (its logon's sequence number):
        # quiet does not count while it is still coming (a busy venue answers late)
        while time.monotonic() < min(quiet_until, end):
            await asyncio.sleep(0.02)
            if self._pending or not gw.events.empty() or gw.catching_up():
                self.take_gateway_events()
                quiet_until = time.monotonic() + quiet_s
        # what the gateway applied, into the engine: the two agree from here on (no await
        # until the answers below are injected)
        self.take_gateway_events()
        t = time.time_ns()
        lost = [k for k in rec.orders if gw.orders[k].state == OrderState.PENDING_NEW]
        unreplaced = [k for k, ref in rec.replacing.items()
                      if gw.forget_replace(k, ref)]
        if self.journal is not None:
            for key in unreplaced:
                self.journal.append(KIND_REF, f"{key} {rec.replacing[key]} {REF_UNSENT}"
                                    .encode("ascii"))
        answers: list[npt.NDArray[np.void]] = []
        for key in lost:
            live = self.orders[key]
            gw.orders[key].state = OrderState.REJECTED
            a = np.zeros(1, RESPONSE_DTYPE)
            a["ts"] = a["exch_ts"] = t
            a["kind"], a["oid"], a["strategy"], a["fee"] = RESP_REJECT, live.oid, live.sid, np.nan
            answers.append(a)
        # requests decided but never journaled before the crash (so never sent): a cancel
        # is sent now if its order still works; a new order or a modify is answered here
        # as if refused (the strategy decides again on what it sees next)
        cancels = set(rec.cancels)
        for r in rec.unsent:
            key = order_key(int(r["strategy"]), int(r["oid"]))
            if r["kind"] == REQ_CANCEL and key in gw.orders and gw.orders[key].live:
                cancels.add(key)
            else:
                answers.append(_local_answer(r, t))
        # a modify the engine awaits that is neither at the venue nor waiting to go: its
        # replace never left (above), or it waited for its order's answer at the crash
        unsent = {order_key(int(r["strategy"]), int(r["oid"])) for r in rec.unsent
                  if r["kind"] == REQ_MODIFY}
        stuck = [k for k in rec.orders
                 if k not in unsent and k not in lost and self._modify_in_flight(self.orders[k])
                 and gw.orders[k].state != OrderState.PENDING_REPLACE
                 and not any(w["kind"] == REQ_MODIFY for w in self.orders[k].waiting)]
        for key in stuck:
            live = self.orders[key]
            a = np.zeros(1, RESPONSE_DTYPE)
            a["ts"] = a["exch_ts"] = t
            a["kind"], a["oid"], a["strategy"], a["fee"] = (RESP_CANCEL_REJECT, live.oid,
                                                            live.sid, np.nan)
            answers.append(a)
        if answers:
            self._inject(np.concatenate(answers), t)
        again = [k for k in cancels if k in gw.orders
                 and gw.orders[k].state in (OrderState.NEW, OrderState.PARTIALLY_FILLED)]
        for key in again:
            self._note_ref(gw, key, "cancel")
            gw.cancel(key)
        log.warning("recovered: %d order(s) adopted, %d never reached the venue (rejected "
                    "locally), %d cancel(s) sent again, %d request(s) decided but never sent; "
                    "venue messages from %d on replayed; %d replace(s) in flight, %d of them "
                    "never reached the venue; %d modify(s) refused locally", len(rec.orders),
                    len(lost), len(again), len(rec.unsent), rec.last_seq + 1,
                    len(rec.replacing), len(unreplaced), len(stuck))

    def _modify_in_flight(self, live: _Live) -> bool:
        """The engine awaits the answer to a modify of this order (it takes no other)."""
        st = self.engine.st
        m = int(st.h[H_MAX_ORDERS])
        o = st.ord[live.sid * m + live.oid % m]
        return int(o[O_ID]) == live.oid and int(o[O_STRAT]) == live.sid and bool(o[O_MOD_SENT])

    async def _connect(self, timeout_s: float) -> None:
        gw = self.gateway
        assert gw is not None
        end = time.monotonic() + timeout_s
        while True:
            try:
                await gw.connect()
                break
            except (OSError, VenueError) as exc:
                if time.monotonic() > end:
                    msg = f"the order gateway did not connect within {timeout_s:g} s: {exc}"
                    raise VenueError(msg) from exc
                await asyncio.sleep(0.1)
        log.info("gateway connected")

    async def _pump(self, wake: asyncio.Event) -> None:
        """Wake the loop when the gateway has something (the events stay queued)."""
        q = self._tap
        assert q is not None
        while True:
            ev, seq = await q.get()
            self._pending.append((time.time_ns(), ev, seq))
            wake.set()

    async def _wind_down(self, timeout_s: float = 5.0) -> None:
        """Cancel every working order and wait (bounded) for the venue's answers."""
        gw = self.gateway
        if gw is None:
            return
        end = time.monotonic() + timeout_s
        self.begin_stop()
        if not self.cancel_all() and not gw.connected:
            working = [k for k, o in gw.orders.items() if o.live]
            if working:
                log.error("stopping with %d order(s) working at the venue: the gateway is "
                          "down, they could not be cancelled (%s)", len(working),
                          ", ".join(working[:10]))
            return
        while time.monotonic() < end and any(o.live for o in gw.orders.values()):
            await asyncio.sleep(0.01)
            self.take_gateway_events()
            # an order sent before the stop and acknowledged since can be cancelled now
            # (a cancel is only sent for an order the venue holds)
            self.cancel_all()
        self.take_gateway_events()

    def begin_stop(self) -> None:
        """The orderly stop: from here on no new order or modify leaves (answered here as
        after a kill), journaled where it happened so a replay holds the same decisions."""
        if self.stopping:
            return
        self.stopping = True
        if self.journal is not None:
            self.journal.append(KIND_CONTROL, json.dumps(
                {"action": "stop", "decisions": self.n_decisions}).encode(), ts=self._t)

    def finish(self) -> Any:
        """The session's result tables (orders, fills, positions) from the engine; a paper
        session journals its orders (``KIND_PAPER_ORDER``) before it returns."""
        result = self.engine.finish()
        if self.paper and not self.replay and self.journal is not None:
            for row in paper_orders(result):
                self.journal.append(KIND_PAPER_ORDER, row.encode(), ts=self.engine.now)
            self.journal.flush()
        return result


def paper_orders(result: Any) -> list[str]:
    """The orders of a simulated-venue session as canonical JSON rows (PAPER_FIELDS)."""
    cols = [c for c in PAPER_FIELDS if c in result.orders.columns]
    return [json.dumps(r, sort_keys=True)
            for r in result.orders.select(cols).iter_rows(named=True)]


def _local_answer(r: npt.NDArray[np.void], t: int) -> npt.NDArray[np.void]:
    """The runner's own answer to a request that does not leave the process: a new order
    is rejected, a cancel or modify of an order that is gone is refused."""
    a = np.zeros(1, RESPONSE_DTYPE)
    a["ts"] = a["exch_ts"] = t
    a["oid"], a["strategy"], a["fee"] = r["oid"], r["strategy"], np.nan
    a["price"], a["qty"] = r["price"], r["qty"]
    if r["kind"] == REQ_NEW:
        a["kind"] = RESP_REJECT
    else:
        a["kind"], a["reason"] = RESP_CANCEL_REJECT, REJ_UNKNOWN_ORDER
    return a


__all__ = [
    "KIND_ADVANCE",
    "KIND_GATE",
    "KIND_PAPER_ORDER",
    "FeedSpec",
    "GatewaySpec",
    "LiveRunner",
    "order_key",
]
