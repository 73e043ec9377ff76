"""A live session's journal, replayed: decision parity, and a store day with its latencies.

**Parity** (:func:`parity`): a fresh engine with the session's strategies (built from the
journal's metadata: the same classes, parameters and limits; compiled or Python callbacks as
asked) is driven through the journal's records exactly as the runner drove the live one:
the packets through the same feed decoder at their receive times, the venue's answers
injected at theirs, the idle runs and kill-switch actions where they happened. Every request
the replayed engine makes is compared with the journaled one at the same place, field for
field (kind, strategy, order id, side, type, time in force, price, size, times, and whether
the kill switch held it): the first difference ends the comparison with both sides shown.
A bandit session's gate takes the journaled arms and its decisions are compared too
(:mod:`live.bandit`).

**Replay to a backtest** (:func:`to_store_day`, :func:`latency_series`): the journaled
packets decoded into a store day (local time = receive time), and an empirical latency
series from the session's own orders: each new order's time from its ORDER_OUT to its first
ORDER_IN (the venue's answer), split in half between the way in and the way back (the
gateway's messages carry no venue time to split it better).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from framework.arena.state import (
    REQ_CANCEL,
    REQ_NEW,
    RESP_ACK,
    RESP_CANCEL_REJECT,
    RESP_CANCELED,
    RESP_EXPIRED,
    RESP_FILL,
    RESP_MODIFIED,
    RESP_REJECT,
)
from framework.core.errors import ConfigError, DataError
from framework.core.events import EVENT_DTYPE, EventArray
from framework.core.instrument import Instrument
from framework.core.timeutil import parse_date
from framework.engine.config import LatencyConfig, QueueConfig
from framework.engine.engine import Mode
from framework.kernel.seam import RESPONSE_DTYPE
from live.bandit import BanditSpec, session_strategies
from live.gateways.base import TERMINAL, Order, OrderState, Side
from live.journal import (
    KIND_CONTROL,
    KIND_FEED,
    KIND_META,
    KIND_ORDER_IN,
    KIND_ORDER_OUT,
    Record,
    read,
)
from live.runner import (
    IN_LOCAL,
    IN_MORE,
    KIND_ADVANCE,
    KIND_PAPER_ORDER,
    KIND_REF,
    REF_UNSENT,
    STREAM_HELD,
    STREAM_SENT,
    STREAM_UNSENT,
    FeedSpec,
    LiveRunner,
    order_key,
    paper_orders,
    parse_ref,
    reference_of,
    request_of,
    response_of,
)

FIELDS = ("kind", "strategy", "oid", "side", "order_type", "tif", "price", "qty", "ts",
          "arrive_ts")


@dataclass
class Session:
    """What a journal's metadata says about its session."""

    meta: dict[str, Any]
    instrument: Instrument
    date: dt.date
    price_step: int
    qty_step: int
    locate: int

    @classmethod
    def of(cls, records: list[Record], where: Path) -> Session:
        metas = [r for r in records if r.kind == KIND_META]
        if not metas:
            msg = f"{where}: the journal has no session record (KIND_META); not a runner's?"
            raise DataError(msg)
        m = json.loads(metas[0].payload)
        return cls(m, Instrument.from_dict(m["instrument"]), parse_date(m["date"]),
                   int(m["price_step"]), int(m["qty_step"]), int(m["locate"]))

    def feature_model(self) -> Any:
        """The regime model the session ran with (carried in its record), or None."""
        fm = self.meta.get("feature_model")
        if fm is None:
            return None
        from framework.features.model import FeatureModel

        return FeatureModel.from_bytes(base64.b64decode(fm["npz_base64"]),
                                       where=f"the session record's feature model ({fm['path']})")

    def feed(self) -> Any:
        """A feed handler as the session's (ITCH: its socket is never read, packets come
        from the journal, no re-requests; Binance: never connected)."""
        spec = FeedSpec.parse(self.meta["feed"])
        return spec.build(self.instrument, self.date, price_step=self.price_step,
                          qty_step=self.qty_step, listen=False)


@dataclass
class Parity:
    """The outcome of :func:`parity`."""

    compared: int = 0  #: decisions equal one for one
    live: int = 0  #: decisions the journal holds
    first_difference: str | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_difference is None


def _feed_groups(records: list[Record]) -> Iterator[tuple[str, Any]]:
    """The journal as the runner's steps: ("feed", (ts, [packets])) for the packets one
    poll read, and ("record", record) for everything else."""
    k = 0
    while k < len(records):
        r = records[k]
        if r.kind == KIND_FEED:
            group = [r.payload]
            k += 1
            while k < len(records) and records[k].kind == KIND_FEED and records[k].ts == r.ts:
                group.append(records[k].payload)
                k += 1
            yield "feed", (r.ts, group)
            continue
        yield "record", r
        k += 1


def _show(row: npt.NDArray[np.void] | None, stream: int | None) -> str:
    if row is None:
        return "nothing"
    held = {STREAM_HELD: " (held by the kill switch)",
            STREAM_UNSENT: " (decided before a crash, never sent)"}.get(stream or 0, "")
    return ", ".join(f"{f}={int(row[f])}" for f in FIELDS) + held


def drive(runner: LiveRunner, records: list[Record], out: Parity, *,
          recovering: bool = False) -> None:
    """Drive ``runner`` (built with ``replay=True``) through ``records`` as the session's
    runner was driven, comparing decisions as they come (into ``out``); stops at the first
    difference. The engine and the feed handler are left as the session's were.
    ``recovering``: a bandit may decide past the journal's last gate decision (the crash
    came before it was journaled)."""
    feed = runner.feed
    bandit = runner.bandit
    if bandit is not None:
        bandit.replay_from(records, fresh_ok=recovering)
    live: list[tuple[npt.NDArray[np.void], int]] = []
    got = runner.decisions
    pending_in: list[npt.NDArray[np.void]] = []
    starts = [r.ts for r in records
              if r.kind == KIND_CONTROL and json.loads(r.payload).get("action") == "start"]
    runner.start(starts[0] if starts else None)
    # kills, resets and the orderly stop take effect where the session acted on them: before
    # the decision they preceded (a trip seen in the middle of a step included)
    for rec in records:
        c = json.loads(rec.payload) if rec.kind == KIND_CONTROL else {}
        if c.get("action") in ("kill", "reset", "stop"):
            runner.controls.append((int(c["decisions"]), c["action"], str(c.get("reason", ""))))
    for what, item in _feed_groups(records):
        if what == "feed":
            ts, packets = item
            if feed.apply_packets(packets, ts):
                runner._run(ts)
        else:
            r: Record = item
            if r.kind == KIND_ORDER_OUT:
                live.append((request_of(r.payload), r.stream))
            elif r.kind == KIND_ORDER_IN:
                pending_in.append(response_of(r.payload)[0])
                if not r.stream & IN_MORE:  # the last of the batch the runner injected
                    runner.engine.inject(np.array(pending_in, RESPONSE_DTYPE))
                    pending_in.clear()
                    runner._run(r.ts)
            elif r.kind == KIND_ADVANCE:
                runner._run(r.ts)
        # a gate decision comes before the orders of the instance it chose
        diff = (bandit.difference if bandit is not None else None) or _compare(live, got, out)
        if diff:
            out.first_difference = diff
            break
    else:
        n = min(len(live), len(got))
        if len(live) != len(got):
            a = live[n] if n < len(live) else None
            b = got[n] if n < len(got) else None
            out.first_difference = (
                f"decision {n + 1}: live: {_show(*a) if a else 'nothing'}; "
                f"replay: {_show(*b) if b else 'nothing'}")
        elif bandit is not None:
            out.first_difference = bandit.check()
    out.live = len(live)


def parity(directory: str | Path, *, mode: Mode | None = None) -> Parity:
    """Drive a fresh engine through the journal and compare its decisions with the live
    session's, in order; stops at the first difference."""
    where = Path(directory)
    records = list(read(where))
    s = Session.of(records, where)
    m = s.meta
    model = s.feature_model()
    strategies, bandit = session_strategies(m, model)
    feed = s.feed()
    paper = bool(m.get("paper"))
    runner = LiveRunner(instrument=s.instrument, strategies=strategies, feed=feed, gateway=None,
                        locate=s.locate, mode=mode or m["mode"],
                        latency=LatencyConfig.parse(m["latency"]),
                        queue=QueueConfig.parse(m["queue"]), replay=True, paper=paper,
                        feature_model=model, bandit=bandit)
    out = Parity()
    finished = False
    try:
        drive(runner, records, out)
        if paper and out.ok:
            # the simulated venue's orders: the session journaled its own at the end
            live = [r.payload.decode() for r in records if r.kind == KIND_PAPER_ORDER]
            got = paper_orders(runner.finish())
            finished = True
            _compare_paper(live, got, out)
            if out.ok and bandit is not None:  # the last epoch's close, at the finish
                out.first_difference = bandit.check()
    finally:
        if not finished:
            runner.engine.abort()
        feed.close()
    return out


def _compare_paper(live: list[str], got: list[str], out: Parity) -> None:
    """A paper session's orders (journaled) against the replay's, one for one."""
    out.live = len(live)
    for k in range(max(len(live), len(got))):
        a = live[k] if k < len(live) else "nothing"
        b = got[k] if k < len(got) else "nothing"
        if a != b:
            out.first_difference = f"paper order {k + 1}: live: {a}; replay: {b}"
            return
        out.compared += 1


@dataclass
class Recovered:
    """What a journal says about the order session it was written by."""

    last_seq: int = 0  #: the last venue message whose effects the journal holds
    orders: dict[str, Order] = field(default_factory=dict)  #: as the journal leaves them
    #: key -> the order's UserRefNum / ClOrdID now (a replace the venue took changed it)
    refs: dict[str, str] = field(default_factory=dict)
    cancels: set[str] = field(default_factory=set)  #: cancels the engine asked for
    tifs: dict[str, int] = field(default_factory=dict)
    aliases: list[tuple[str, str]] = field(default_factory=list)  #: (key, id of a request)
    #: key -> id of a replace of it journaled as sent that no venue answer journaled
    #: follows: the venue took it, refused it, or never got it (the crash came first)
    replacing: dict[str, str] = field(default_factory=dict)
    #: requests the crashed run decided but never journaled, so never sent
    unsent: list[npt.NDArray[np.void]] = field(default_factory=list)


def recover(runner: LiveRunner, directory: str | Path) -> Recovered:
    """Rebuild ``runner`` (a runner of the same session, not started, no journal attached)
    from the journal its crashed predecessor wrote: the engine (book, orders, positions,
    strategy state) and the feed handler by replaying it, checked decision for decision;
    the order session's orders from the requests sent and the venue's answers journaled.

    The runner then resumes with :meth:`LiveRunner.run` (``recovered=``): the gateway
    adopts the orders and asks the venue for every message after the last journaled one;
    see :meth:`LiveRunner.reconcile` for what happens to orders the venue never got."""
    where = Path(directory)
    records = list(read(where))
    s = Session.of(records, where)
    if s.meta.get("gateway") not in ("ouch", "fix"):
        msg = (f"{where}: recovery needs an order session (OUCH or FIX) to replay the venue's "
               f"messages; this journal's is {s.meta.get('gateway')!r}")
        raise ConfigError(msg)
    mine = [s.meta[k] for k in ("strategy", "param", "risk")]
    if [runner.meta.get(k) for k in ("strategy", "param", "risk")] != mine:
        msg = (f"{where}: the journal is of another session ({' '.join(mine[0])} "
               f"{mine[1]} {mine[2]}); give the same strategy, --param and --risk, or a new "
               "--journal folder")
        raise ConfigError(msg)
    was, now = s.meta.get("feature_model"), runner.meta.get("feature_model")
    if (was or {}).get("npz_base64") != (now or {}).get("npz_base64"):
        said = "none" if was is None else was["path"]
        msg = (f"{where}: the session ran with feature model {said}, this restart with "
               f"{'none' if now is None else now['path']} (or a changed file): the rebuilt "
               "regimes would differ; give the same --feature-model, or a new --journal folder")
        raise ConfigError(msg)
    was_b, now_b = s.meta.get("bandit"), runner.meta.get("bandit")
    if (was_b is None) != (now_b is None) or (
            was_b is not None and now_b is not None
            and not BanditSpec.from_meta(was_b).same_session(BanditSpec.from_meta(now_b))):
        said = "none" if was_b is None else f"sets {was_b['sets']} every {was_b['epoch_ns']} ns"
        now_s = "none" if now_b is None else f"sets {now_b['sets']} every {now_b['epoch_ns']} ns"
        msg = (f"{where}: the session ran with bandit {said}, this restart with {now_s}: give "
               "the same --bandit and --bandit-epoch, or a new --journal folder")
        raise ConfigError(msg)
    runner.replay = True
    out = Parity()
    try:
        drive(runner, records, out, recovering=True)
        # decisions after the journal's last one: the engine made them, the crash came
        # before they were journaled (so before any byte of theirs left): never sent
        unsent = [r for r, _ in runner.decisions[out.live:]]
        runner.unjournaled = list(unsent)
    finally:
        runner.replay = False
        runner.decisions.clear()
    trailing = out.compared == out.live and len(unsent) > 0
    if not out.ok and not trailing:
        msg = (f"{where}: the journal does not replay to its own decisions "
               f"({out.first_difference}); not resuming from it")
        raise DataError(msg)
    if runner.bandit is not None:
        runner.bandit.resume()
    rec = Recovered(unsent=unsent if trailing else [])
    for r in records:
        if r.kind == KIND_ORDER_OUT and r.stream == STREAM_SENT:
            q = request_of(r.payload)
            key = order_key(int(q["strategy"]), int(q["oid"]))
            ref = reference_of(r.payload)
            if q["kind"] == REQ_NEW and ref:
                rec.orders[key] = Order(key, Side(int(q["side"])), int(q["qty"]),
                                        int(q["price"]))
                rec.refs[key] = ref
                rec.tifs[key] = int(q["tif"])
            elif q["kind"] == REQ_CANCEL:
                rec.cancels.add(key)
        elif r.kind == KIND_REF:
            key, ref, what = parse_ref(r.payload)
            o = rec.orders.get(key)
            if what == REF_UNSENT:  # a run recovered before found it never left
                if rec.replacing.get(key) == ref:
                    del rec.replacing[key]
                    if o is not None and o.state == OrderState.PENDING_REPLACE:
                        o.state = o._back
                continue
            rec.aliases.append((key, ref))
            if what == "replace" and o is not None:
                _replacing(o)
                rec.replacing[key] = ref
        elif r.kind == KIND_ORDER_IN and not r.stream & IN_LOCAL:
            a, seq = response_of(r.payload)
            rec.last_seq = max(rec.last_seq, seq)
            key = order_key(int(a["strategy"]), int(a["oid"]))
            o = rec.orders.get(key)
            if o is not None:
                _answered(o, a, key, rec)
    return rec


def _replacing(o: Order) -> None:
    """A rebuilt order whose replace left: pending until the venue's answer. The gateway
    sent it from a working state, which the journal may not show yet (the runner journals
    an ack or fill when it takes the event, after the gateway applied it)."""
    if o.state in TERMINAL:
        return
    if o.state != OrderState.PENDING_REPLACE:
        o._back = OrderState.PARTIALLY_FILLED if o.filled else OrderState.NEW
    o.state = OrderState.PENDING_REPLACE


def _answered(o: Order, a: npt.NDArray[np.void], key: str, rec: Recovered) -> None:
    """Move a rebuilt order as the venue's answer moved the live one (the gateway's state
    machine, :class:`~live.gateways.base.OrderTracker`); an answer to its replace makes the
    replace's id the order's (taken) or leaves the order's (refused)."""
    kind = int(a["kind"])
    pending = o.state == OrderState.PENDING_REPLACE
    if kind == RESP_ACK:
        if o.state == OrderState.PENDING_NEW:
            o.state = OrderState.NEW
    elif kind == RESP_FILL:
        o.filled += int(a["qty"])
        if o.filled >= o.qty:
            o.state = OrderState.FILLED
        elif pending:
            o._back = OrderState.PARTIALLY_FILLED
        else:
            o.state = OrderState.PARTIALLY_FILLED
    elif kind in (RESP_CANCELED, RESP_EXPIRED):
        o.state = OrderState.CANCELLED
    elif kind == RESP_REJECT:
        o.state = OrderState.REJECTED
    elif kind == RESP_MODIFIED:
        o.price, o.qty = int(a["price"]), int(a["qty"])
        o.state = OrderState.PARTIALLY_FILLED if o.filled else OrderState.NEW
        ref = rec.replacing.pop(key, None)
        if ref is not None:
            rec.refs[key] = ref  # the venue names the order by the replace's id from now on
    elif kind == RESP_CANCEL_REJECT:
        if pending:
            o.state = o._back
        elif o.state not in TERMINAL:
            o.state = OrderState.PARTIALLY_FILLED if o.filled else OrderState.NEW
        rec.replacing.pop(key, None)


def _compare(live: list[tuple[npt.NDArray[np.void], int]],
             got: list[tuple[npt.NDArray[np.void], int]], out: Parity) -> str | None:
    """Compare the decisions both sides have made so far (from ``out.compared`` on)."""
    while out.compared < min(len(live), len(got)):
        k = out.compared
        (a, sa), (b, sb) = live[k], got[k]
        # a decision the crashed run never sent is whatever the replay would have done
        # with it; the rest of it must be the same
        if (sa != sb and sa != STREAM_UNSENT) or any(int(a[f]) != int(b[f]) for f in FIELDS):
            return f"decision {k + 1}: live: {_show(a, sa)}; replay: {_show(b, sb)}"
        out.compared += 1
    return None


def decoded_events(directory: str | Path) -> tuple[Session, EventArray]:
    """The journaled packets through the session's decoder: its instrument's events, local
    time = receive time (exchange time too: the venue's clock is another machine's)."""
    where = Path(directory)
    records = list(read(where))
    s = Session.of(records, where)
    feed = s.feed()
    parts: list[EventArray] = []

    def keep(ev: npt.NDArray[np.void]) -> None:
        mine = ev[ev["instrument"] == s.locate].astype(EVENT_DTYPE, copy=True)
        mine["instrument"] = 0
        mine["exch_ts"] = mine["local_ts"]
        parts.append(mine)

    feed.on_events = keep
    try:
        for what, item in _feed_groups(records):
            if what == "feed":
                feed.apply_packets(item[1], item[0])
    finally:
        feed.close()
    if not parts:
        msg = f"{where}: the journal holds no market data the decoder could apply"
        raise DataError(msg)
    return s, np.concatenate(parts)


def latency_series(directory: str | Path) -> npt.NDArray[np.float64]:
    """Rows (ts, entry_ns, response_ns): per new order sent, its send time and half its
    round trip to the first answer each way."""
    sent: dict[tuple[int, int], int] = {}
    rows: list[tuple[int, int, int]] = []
    for r in read(Path(directory)):
        if r.kind == KIND_ORDER_OUT and r.stream == 0:
            q = request_of(r.payload)
            if q["kind"] == REQ_NEW:
                sent[int(q["strategy"]), int(q["oid"])] = r.ts
        elif r.kind == KIND_ORDER_IN:
            a = response_of(r.payload)[0]
            t0 = sent.pop((int(a["strategy"]), int(a["oid"])), None)
            if t0 is not None:
                rtt = max(r.ts - t0, 2)
                rows.append((t0, rtt // 2, rtt - rtt // 2))
    if not rows:
        msg = f"{directory}: no order was answered in this session; no latency to measure"
        raise DataError(msg)
    rows.sort()
    return np.array(rows, np.float64)


__all__ = ["Parity", "Recovered", "Session", "decoded_events", "drive", "latency_series",
           "parity", "recover"]
