"""The ``hftlab venue`` process: a stored day replayed as ITCH 5.0 over MoldUDP64.

One thread, one loop: send the packets that are due (exchange time x ``speed`` since the
first message; ``--speed max`` sends as fast as the socket takes them), answer re-requests,
heartbeat when nothing was sent for ``heartbeat_s``, end-of-session after the last message
(repeated every ``heartbeat_s`` while re-requests are still served), stop on SIGTERM/SIGINT
or ``linger_s`` after the end. Packets end only where the stored day's book is consistent
(the end of a venue message) unless one message alone overflows a packet.

**Order sessions** (OUCH, FIX: another module) plug in as an :class:`OrderHook`. With a hook
the day is not pre-encoded: each stored venue message goes to ``hook.on_market`` and its
events plus the client-order activity the hook returns (adds, executions, deletes of client
orders, executions of replayed orders by client orders, as EVENT_DTYPE rows) are encoded by
one stateful encoder, so the published feed is the venue's book as it is, and a replayed
message about an order a client already took is skipped (the encoder counts it), not sent.
``hook.poll()`` runs every loop turn (serve the order sockets, non-blocking) and may return
more rows to publish; ``hook.close()`` runs at shutdown.
"""

from __future__ import annotations

import datetime as dt
import logging
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

import numpy as np
import numpy.typing as npt

from framework.core.errors import ConfigError
from framework.core.events import FLAG_LAST, EventArray
from live.venue.feed import FeedStats, MoldPublisher
from live.venue.replay import LOCATE, ReplayDay, load_replay
from live.wire.itch_encode import ItchEncoder, ItchStream
from live.wire.moldudp64 import MAX_PAYLOAD, packetize_nb

log = logging.getLogger("hftlab.venue")

#: packets sent in a row at ``--speed max`` before the loop serves re-requests again
BURST = 256
#: under ``--max-rate`` the loop sends the packets the rate allows per this many seconds
#: together (at least one): one wake-up and one ``sendmmsg`` per ~60 packets at 5 M msgs/s
#: instead of a sleep shorter than the timer's slack per packet or two, whose loop turns
#: cost the sender more CPU than the packets; a slow rate still goes a packet at a time
RATE_QUANTUM_S = 0.0005


class OrderHook(Protocol):
    """What the venue calls for order sessions (see the module docstring)."""

    def on_market(self, events: EventArray) -> EventArray: ...

    def poll(self) -> EventArray: ...

    def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class VenueConfig:
    """Settings of one venue run (the CLI's options)."""

    venue: str
    symbol: str
    date: dt.date
    store: str | None = None
    speed: float | None = 1.0  #: None = as fast as possible
    #: messages per second at most (None: no cap): a steady offered load, whatever --speed
    max_rate: float | None = None
    itch: tuple[tuple[str, int], ...] = ()
    rerequest_port: int | None = None
    drop: float = 0.0
    seed: int = 0
    session: str = "HFTLAB"
    heartbeat_s: float = 1.0
    buffer_messages: int | None = None  #: retransmission buffer (None: the whole day)
    #: serve re-requests this long after the end (None: until stopped)
    linger_s: float | None = None

    def __post_init__(self) -> None:
        if self.speed is not None and not self.speed > 0:
            msg = f"--speed {self.speed} must be a positive number or 'max'"
            raise ConfigError(msg)
        if self.max_rate is not None and not self.max_rate > 0:
            msg = f"--max-rate {self.max_rate} must be a positive number of messages per second"
            raise ConfigError(msg)
        if not self.itch:
            msg = "give at least one --itch HOST:PORT to publish the feed to"
            raise ConfigError(msg)
        if not self.heartbeat_s > 0:
            msg = f"--heartbeat {self.heartbeat_s} must be positive seconds"
            raise ConfigError(msg)


@dataclass
class VenueResult:
    stats: FeedStats
    replay_messages: int
    skipped: dict[str, int] = field(default_factory=dict)


def _wait(sock_fd: int | None, seconds: float) -> None:
    """Sleep up to ``seconds``, waking early when a re-request arrives."""
    if seconds <= 0:
        return
    if sock_fd is None:
        time.sleep(seconds)
    else:
        select.select([sock_fd], [], [], seconds)


class _Pacer:
    """Due time of an exchange timestamp: the first one is now, then x ``speed``."""

    def __init__(self, speed: float | None, ts0: int) -> None:
        self.speed, self.ts0, self.t0 = speed, ts0, time.monotonic()

    def wait_s(self, ts: int) -> float:
        if self.speed is None:
            return 0.0
        return self.t0 + (ts - self.ts0) / 1e9 / self.speed - time.monotonic()

    def due(self, ts: npt.NDArray[np.int64]) -> int:
        """How many of the (non-decreasing) exchange times ``ts`` are due now."""
        if self.speed is None:
            return len(ts)
        elapsed = (time.monotonic() - self.t0) * 1e9 * self.speed  # exchange ns since ts0
        return int(np.searchsorted(ts - self.ts0, elapsed, side="right"))


def _packets(rep: ReplayDay) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Packet boundaries (first message index per packet + end), each packet's exchange time,
    and the byte offsets of the framed messages."""
    stream = rep.stream
    starts = stream.starts
    lens = np.diff(np.concatenate([starts, stream.ends[-1:]])) - 2
    firsts = packetize_nb(lens.astype(np.int64), rep.may_end_packet(), MAX_PAYLOAD)
    ev_ts = rep.events["exch_ts"]
    src = stream.src
    first_ts = int(ev_ts[0]) if len(ev_ts) else 0
    msg_ts = np.where(src >= 0, ev_ts[np.maximum(src, 0)], first_ts)
    return firsts, msg_ts[firsts[:-1]], starts


class Venue:
    """The venue loop over one replayed day."""

    def __init__(self, cfg: VenueConfig, rep: ReplayDay, *, hook: OrderHook | None = None,
                 stop: threading.Event | None = None) -> None:
        self.cfg, self.rep, self.hook = cfg, rep, hook
        self.stop = stop if stop is not None else threading.Event()
        self.pub = MoldPublisher(session=cfg.session, targets=cfg.itch,
                                 rerequest_port=cfg.rerequest_port, drop=cfg.drop, seed=cfg.seed,
                                 buffer_messages=cfg.buffer_messages)
        self._fd = None if self.pub.req_sock is None else self.pub.req_sock.fileno()
        self._last_send = time.monotonic()
        self.skipped: dict[str, int] = dict(rep.stream.skipped)

    def _idle(self) -> None:
        self.pub.serve_requests()
        if self.hook is not None:
            self._publish_events(self.hook.poll())
        if time.monotonic() - self._last_send >= self.cfg.heartbeat_s:
            self.pub.heartbeat()
            self._last_send = time.monotonic()

    def _publish_stream(self, stream: ItchStream) -> None:
        if not len(stream):
            return
        starts = stream.starts
        lens = (stream.ends - starts - 2).astype(np.int64)
        may_end = np.zeros(len(stream), np.bool_)
        may_end[-1] = True
        firsts = packetize_nb(lens, may_end, MAX_PAYLOAD)
        self.pub.publish_many(stream.buf, starts[firsts[:-1]], stream.ends[firsts[1:] - 1],
                              np.diff(firsts))
        self._last_send = time.monotonic()

    def _publish_events(self, events: EventArray) -> None:
        if len(events):
            stream = self._encoder.encode(events)
            for reason, n in stream.skipped.items():
                self.skipped[reason] = self.skipped.get(reason, 0) + n
            self._publish_stream(stream)

    def run(self) -> VenueResult:
        rep, cfg = self.rep, self.cfg
        log.info("venue %s %s %s: %d ITCH messages (%s day) to %s, re-requests on %s, speed %s, "
                 "drop %.4f (seed %d), session %r", rep.instrument.venue, rep.instrument.symbol,
                 rep.date, rep.n_messages, "L3" if rep.l3 else "L2 as per-level orders",
                 ", ".join(f"{h}:{p}" for h, p in cfg.itch), cfg.rerequest_port or "none",
                 cfg.speed or "max", cfg.drop, cfg.seed, cfg.session)
        try:
            if self.hook is None:
                self._run_stream()
            else:
                self._run_with_hook()
            if not self.stop.is_set():
                self._end()
        finally:
            if self.hook is not None:
                self.hook.close()
            self.pub.close()
        s = self.pub.stats
        log.info("venue done: %d messages in %d packets sent, %d dropped on purpose, %d "
                 "heartbeats, %d re-requests (%d packets resent, %d refused), bad requests %s",
                 s.messages_published, s.packets_sent, s.packets_dropped, s.heartbeats,
                 s.requests, s.packets_resent, s.requests_refused, s.bad_requests or "none")
        if self.skipped:
            log.info("events with no ITCH form, not sent: %s", self.skipped)
        return VenueResult(s, rep.n_messages, self.skipped)

    def _run_stream(self) -> None:
        firsts, pkt_ts, starts = _packets(self.rep)
        buf = self.rep.stream.buf
        p_starts = starts[firsts[:-1]]  # each packet's bytes
        p_ends = self.rep.stream.ends[firsts[1:] - 1]
        counts = np.diff(firsts)
        pacer = _Pacer(self.cfg.speed, int(pkt_ts[0]) if len(pkt_ts) else 0)
        rate = self.cfg.max_rate
        n = len(firsts) - 1
        k = 0
        sent = 0  # messages, for --max-rate
        while k < n and not self.stop.is_set():
            burst = pacer.due(pkt_ts[k : k + BURST])  # the packets due now, in one go
            if burst and rate is not None:  # no more messages than the rate allows by now
                room = (time.monotonic() - pacer.t0) * rate - sent
                cum = np.cumsum(counts[k : k + burst])
                fit = int(np.searchsorted(cum, room, "right"))
                quantum = int(np.searchsorted(cum, rate * RATE_QUANTUM_S, "right"))
                want = min(burst, max(quantum, 1))
                if fit < want:  # sleep until a quantum fits (re-requests wake the loop)
                    self._idle()
                    _wait(self._fd, min((cum[want - 1] - room) / rate, 0.01))
                    continue
                burst = fit
            if burst:
                sent += int(counts[k : k + burst].sum())
                e = k + burst
                self.pub.publish_many(buf, p_starts[k:e], p_ends[k:e], counts[k:e])
                k = e
                self._last_send = time.monotonic()
            self._idle()
            if k < n and burst < BURST:
                _wait(self._fd, min(pacer.wait_s(int(pkt_ts[k])), self.cfg.heartbeat_s, 0.05))

    def _run_with_hook(self) -> None:
        rep = self.rep
        self._encoder = ItchEncoder(date=rep.date, symbol=rep.instrument.extra.get(
            "itch_symbol") or rep.instrument.symbol, price_step=rep.price_step,
            qty_step=rep.qty_step, locate=LOCATE)
        ev = rep.events
        if not len(ev):
            return
        self._publish_stream(self._encoder.encode(ev[:0], preamble=True))
        ends = np.flatnonzero((ev["flags"] & FLAG_LAST) != 0) + 1
        if not len(ends) or ends[-1] != len(ev):
            ends = np.concatenate([ends, [len(ev)]])
        pacer = _Pacer(self.cfg.speed, int(ev["exch_ts"][0]))
        a = 0
        for b in ends.tolist():
            while not self.stop.is_set() and pacer.wait_s(int(ev["exch_ts"][a])) > 0:
                self._idle()
                _wait(self._fd, min(pacer.wait_s(int(ev["exch_ts"][a])), 0.01))
            if self.stop.is_set():
                return
            group = ev[a:b]
            extra = self.hook.on_market(group) if self.hook is not None else group[:0]
            self._publish_events(np.concatenate([group, extra]) if len(extra) else group)
            self._idle()
            a = b

    def _end(self) -> None:
        self.pub.end_of_session()
        t_end = time.monotonic()
        last = t_end
        lo, hi = self.pub.buffered_range
        log.info("end of session at message %d; re-requests served for %d..%d until %s",
                 hi - 1, lo, hi - 1, "stopped" if self.cfg.linger_s is None
                 else f"{self.cfg.linger_s:g} s")
        while not self.stop.is_set():
            now = time.monotonic()
            if self.cfg.linger_s is not None and now - t_end >= self.cfg.linger_s:
                break
            self.pub.serve_requests()
            if self.hook is not None:
                self._publish_events(self.hook.poll())
            if now - last >= self.cfg.heartbeat_s:
                self.pub.end_of_session()
                last = now
            _wait(self._fd, min(0.05, self.cfg.heartbeat_s))


def run_venue(cfg: VenueConfig, *, hook_factory: Callable[[ReplayDay], OrderHook] | None = None,
              stop: threading.Event | None = None) -> VenueResult:
    """Load the day from the store and run the venue until the end (or ``stop``)."""
    from framework.store import TickStore

    rep = load_replay(TickStore(cfg.store), cfg.venue, cfg.symbol, cfg.date)
    hook = hook_factory(rep) if hook_factory is not None else None
    return Venue(cfg, rep, hook=hook, stop=stop).run()


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop``: the loop ends its turn and shuts down cleanly."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def parse_speed(text: str) -> float | None:
    if text.lower() == "max":
        return None
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v > 0:
        msg = f"--speed {text!r} must be a positive number (1 = real time) or 'max'"
        raise ConfigError(msg)
    return v


def targets(texts: Sequence[str]) -> tuple[tuple[str, int], ...]:
    from live.venue.feed import parse_addr

    return tuple(parse_addr(t) for t in texts)
