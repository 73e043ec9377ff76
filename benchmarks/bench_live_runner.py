"""The live runner on loopback: tick-to-order per stage, and the journal's write rate.

The runner busy-polls (``hftlab live --busy-poll``) in rows 1-5: one compiled loop
(:mod:`live.hotpath`) polls the feed socket and takes each packet through receive, journal,
decode, book, the engine with its compiled callbacks and risk checks, the OUCH encoding and the
send, with no Python in between (Python callbacks: the loop stops after the book; the engine
runs them in Python; the requests go back through the loop's sender).

1. tick-to-order, compiled strategy (``one_tick_mm``, OUCH gateway, journal on with
   ``fsync=interval:100``; ``msgs_per_poll``: the messages a tick carried; ``journal_us``:
   the journal's share of the tick, measured in it): the time from a feed packet's receipt
   (the receive call returned) to the first order message its events caused leaving: the
   kernel's transmit stamp of its bytes, handed to the network device (``SO_TIMESTAMPING``,
   :mod:`live.txstamp`; ``--wire-stamps``), p50 (target ≤ 20 µs) and p99 (≤ 50 µs). On
   loopback the send call returns later than that: it also runs the receiving side's TCP
   work and wakes the venue (a network card would not), so the row shows the time to the
   call's return too (``to_send_return_us``, p50/p99). Per stage (p50/p99, µs): packet_in →
   decoded → book → strategy → risk → encoded → sent, and ``wire`` (encoded → stamp);
   ``ticks_over_50us``: the tail past the p99 target; ``loop_stalls_per_s`` and
   ``loop_stall_max_us``: the time the machine took from the spinning loop's CPU meanwhile,
   as the loop measured it (quiet passes over 50 µs: ``HotPath.watch_stalls``).
   ``decoded``: the packets journaled, framed, decoded and projected to price levels on the
   instrument's L3 book; ``book``: the append to the engine's window; ``strategy``: the
   engine's core and the callbacks up to the first request; ``sent``: the send call. The
   venue replays at --speed 100: a tick every few tens of milliseconds (60 s: ~360 ticks
   that sent an order); meanwhile the loop keeps the tick's code and state in the caches
   (``HotPath.keep_warm``: its code, its arrays' heads and the levels around the touch),
   runs the packet path on a scratch packet every 500 µs (``HotPath.warm_ticks``) and keeps
   the kernel's transmit path warm with a client heartbeat every millisecond
   (``HotPath.warm_sends``);
2. the same, the venue at --speed 3000 (ticks a few milliseconds apart: warmer caches);
3. the same with the Python callbacks (run by the engine's core from the loop:
   ``Engine.core_calls_python``): p50 (target ≤ 60 µs);
4. compiled without the journal (the journal's share is measured in row 1: ``journal_us``,
   target ≤ 1 µs at p50; two runs on a shared machine differ by more than that);
5. compiled with nothing kept warm between ticks (``warm_lines=0``, ``warm_send_us=0``,
   ``warm_tick_us=0``);
6. the default loop, which sleeps between packets (the difference to row 1 is its wake-up);
7. the floor of the ``sent`` and ``wire`` stages here: a 50-byte send on a loopback TCP
   connection from a compiled loop, a few milliseconds apart, to a process waiting in
   ``recv``: to the call's return, and to the kernel's transmit stamp;
8. the floor of a tick's tail here: a compiled loop reading the clock on the runner's CPU
   records every gap over 5 µs between two reads -- time the CPU spent elsewhere (the
   kernel's timer interrupt, 250 a second here, costs a spinning CPU ~17 µs each on this
   virtual machine): their rate, sizes and the share of 20 µs ticks one falls into;
9. journal append: records/s of 64-byte records, fsync never (target ≥ 1 M/s), from Python
   and from compiled code (target ≥ 2 M/s), with a two-part 80-byte record too.

The venue (``hftlab venue``: a generated L3 day, OUCH port) runs in a child process; the
runner runs here, started and compiled before the venue sends. Each has a CPU of its own
(``sched_setaffinity``: the venue the first of this process's CPUs, the runner's loop the
last), as a deployment pins its trading process; unpinned, the two (and the kernel's own
threads) were moved between the two CPUs of this machine, and the cold row's p99 with them
(a few stalls of 100-500 µs a run: 2 and 7 ticks over 60 µs in two 40 s runs, against 1
and 1 pinned). Only ticks that sent an order
are samples. Wall-clock figures on a shared 2-core machine: see ``load_1m``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.targets import target

DATE = dt.date(2024, 3, 1)
#: replay speed; the generated day's messages come in bursts, so a packet (a tick) carries
#: ~20 of them at any speed (``msgs_per_poll`` in the rows): a tick is the work of all of them
SPEED = 100
REPO = Path(__file__).resolve().parents[1]


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpus() -> tuple[int, int] | None:
    """(the venue's CPU, the runner's): two CPUs of this process's set, the venue on the
    first and the runner on the last, as a deployment pins its trading process to a core of
    its own; None with fewer than two (or no affinity calls)."""
    get = getattr(os, "sched_getaffinity", None)
    cpus = sorted(get(0)) if get is not None else []
    return (cpus[0], cpus[-1]) if len(cpus) >= 2 else None


@contextlib.contextmanager
def _pinned(cpu: int | None) -> Iterator[None]:
    """This thread (the runner's loop) on ``cpu`` meanwhile (None: as it is)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def _venue(store: str, feed: int, ouch: int, speed: int) -> Iterator[None]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "venue", "--store", store, "--venue", "SIM",
         "--symbol", "SYN", "--date", DATE.isoformat(), "--speed", str(speed), "--itch",
         f"127.0.0.1:{feed}", "--ouch-port", str(ouch), "--linger", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    cpus = _cpus()
    if cpus is not None:
        with contextlib.suppress(OSError):  # (it may have exited already: its log says)
            os.sched_setaffinity(proc.pid, {cpus[0]})
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)


def _session(store: str, tmp: Path, *, mode: str, journal: bool, seconds: float,
             busy: bool = True, speed: int = SPEED,
             warm: bool = True) -> tuple[dict[str, dict[str, float]], float, dict[str, Any]]:
    from framework.store import TickStore
    from framework.strategy.spec import strategies_from_words
    from live.feeds.itch_mold import MoldFeedHandler
    from live.gateways.ouch import OuchGateway
    from live.journal import JournalWriter
    from live.runner import LiveRunner
    from live.wire.itch_encode import price_qty_steps

    inst = TickStore(store).instrument("SIM", "SYN", DATE)
    step, lot = price_qty_steps(inst.tick_size, inst.lot_size)
    feed_port, ouch_port = _free(socket.SOCK_DGRAM), _free(socket.SOCK_STREAM)
    feed = MoldFeedHandler(listen=("127.0.0.1", feed_port), date=DATE, price_step=step,
                           qty_step=lot)
    gw = OuchGateway("127.0.0.1", ouch_port, username="bench", password="pw", symbol="SYN",
                     price_mult=step)
    jw = JournalWriter(tmp / f"journal-{mode}-{journal}", fsync="interval:100") if journal \
        else None
    runner = LiveRunner(instrument=inst, strategies=strategies_from_words(["one_tick_mm"]),
                        feed=feed, gateway=gw, mode=mode,  # type: ignore[arg-type]
                        journal=jw, meta={"bench": True}, wire_stamps=True,
                        **({} if warm else {"warm_lines": 0, "warm_send_us": 0,
                                            "warm_tick_us": 0}))
    try:
        runner.prepare()
        cpus = _cpus()
        with _venue(store, feed_port, ouch_port, speed), _pinned(cpus and cpus[1]):
            asyncio.run(runner.run(duration_s=seconds, busy_poll=busy))
        lat = feed.latency_summary()
        clock = runner.clock
        stats = clock.stats()
        if runner._hot is not None and journal:
            stats["journal"] = runner._hot.journal_summary()
        return stats, lat.get("messages", 0.0) / max(lat.get("batches", 1.0), 1), \
            _tail(clock, stats, seconds)
    finally:
        runner.engine.abort()
        feed.close()
        if jw is not None:
            jw.close()


def _tail(clock: Any, st: dict[str, dict[str, float]], seconds: float) -> dict[str, Any]:
    """What shapes a session's tail: the ticks over the p99 target (50 µs, of the figure
    the row shows), and the spinning loop's stalls (quiet passes over 50 µs: time the
    machine took from its CPU meanwhile) a second and the longest."""
    from live.monitor import STALL, TO_WIRE, TOTAL

    stall = st.get(STALL, {})
    return {"ticks_over_50us": clock.count_over(TO_WIRE if TO_WIRE in st else TOTAL, 50_000),
            "loop_stalls_per_s": round(stall.get("count", 0) / seconds, 1),
            "loop_stall_max_us": round(stall.get("max", 0) / 1e3, 1)}


def _rows(name: str, got: tuple[dict[str, dict[str, float]], float, dict[str, Any]],
          checks: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Rows of a session: the figure is ``tick_to_wire`` (to the kernel's transmit stamp)
    where the session has it, else ``tick_to_order``; both are shown."""
    st, per_batch, tail = got
    total = st.get("tick_to_wire") or st.get("tick_to_order")
    if total is None:
        return [{"name": name, "events": 0, "seconds": 0.0,
                 "unavailable": "no tick sent an order"}]
    call = st.get("tick_to_order", {})
    stages = {f"{k}_us": f"{v['p50'] / 1e3:.1f}/{v['p99'] / 1e3:.1f}" for k, v in st.items()
              if k not in ("tick_to_order", "tick_to_wire") and v}
    return [{"name": f"{name} {q}", "events": int(total["count"]),
             "seconds": total[q] / 1e9, "p50_us": round(total["p50"] / 1e3, 1),
             "p99_us": round(total["p99"] / 1e3, 1),
             "to_send_return_us": f"{call.get('p50', 0) / 1e3:.1f}/{call.get('p99', 0) / 1e3:.1f}",
             "msgs_per_poll": round(per_batch, 1), **tail, **stages, **tgt}
            for q, tgt in checks]


def _journal_row(quick: bool) -> list[dict[str, Any]]:
    """The journal's append rate from Python, and from compiled code (the runner's tick
    path: ``append_nb``, and ``append2_nb`` for a 46-byte request record followed by its
    34-byte ASCII reference, rotating through ``make_room``)."""
    import numpy as np
    from numba import njit

    from live.journal import KIND_FEED, KIND_ORDER_OUT, JournalWriter
    from live.journal_nb import NO_ROOM, append2_nb, append_nb

    @njit
    def fill(buf: Any, st: Any, i: int, n: int, a: Any, b: Any) -> int:
        while i < n:
            if len(b) == 0:
                seq = append_nb(buf, st, KIND_FEED, 0, i, a, len(a))
            else:
                seq = append2_nb(buf, st, KIND_ORDER_OUT, 1, i, a, len(a), b, len(b))
            if seq == NO_ROOM:
                break
            i += 1
        return i

    n = 200_000 if quick else 2_000_000
    payload = b"x" * 64
    with tempfile.TemporaryDirectory() as d:
        w = JournalWriter(d, fsync="never")
        append = w.append
        t0 = time.perf_counter()
        for i in range(n):
            append(KIND_FEED, payload, ts=i)
        w.sync()
        el = time.perf_counter() - t0
        w.close()
    rows = [{"name": "journal append (64 B records, fsync never)", "events": n,
             "seconds": el, "ns_each": round(el / n * 1e9, 1), **target("min rate", 1e6)}]
    n *= 5
    for label, a, b in [("64 B records", np.frombuffer(payload, np.uint8), np.zeros(0, np.uint8)),
                        ("46 B + 34 B two-part records", np.full(46, 7, np.uint8),
                         np.frombuffer(b"SIM-20240301-000000000001-ABCDEFGH", np.uint8))]:
        with tempfile.TemporaryDirectory() as d:
            w = JournalWriter(d, fsync="never", max_bytes=16 * 1024 * 1024)
            buf, st = w.hot()
            fill(buf, st, 0, 1, a, b)  # compiled before the clock starts
            i, t0 = 1, time.perf_counter()
            while i < n:
                i = fill(buf, st, i, n, a, b)
                if i < n:
                    w.make_room(len(a) + len(b))
                    buf, st = w.hot()
            el = time.perf_counter() - t0
            w.close()
        rows.append({"name": f"journal append from compiled code ({label}, fsync never)",
                     "events": n, "seconds": el, "ns_each": round(el / n * 1e9, 1),
                     **target("min rate", 2e6)})
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    from framework.ingest.synthetic import generate_day
    from framework.store import TickStore

    seconds = 8.0 if quick else 25.0
    # the cold rows' samples (ticks that sent an order) come ~6 a second: 60 s make ~360,
    # so a p99 is not the second-worst tick of the run
    cold = 8.0 if quick else 60.0
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store = str(tmp / "store")
        day = generate_day(date=DATE, n_events=40_000, seed=3, mode="l3")
        TickStore(store).write(day.instrument, DATE, day.events)
        st = _session(store, tmp, mode="compiled", journal=True, seconds=cold)
        rows += _rows("live tick-to-order, compiled, busy poll:", st,
                      [("p50", target("max seconds", 20e-6)),
                       ("p99", target("max seconds", 50e-6))])
        j = st[0].get("journal")
        if j:
            rows.append({"name": "journal's share of a tick (compiled, in the tick)",
                         "events": int(j["count"]), "seconds": j["p50"] / 1e9,
                         "p99_us": round(j["p99"] / 1e3, 2),
                         **target("max seconds", 1e-6)})
        st = _session(store, tmp, mode="compiled", journal=True, seconds=seconds, speed=3000)
        rows += _rows("live tick-to-order, compiled, busy poll, ticks ms apart:", st,
                      [("p50", target("max seconds", 20e-6)),
                       ("p99", target("max seconds", 50e-6))])
        st = _session(store, tmp, mode="python", journal=True, seconds=cold)
        rows += _rows("live tick-to-order, python, busy poll:", st,
                      [("p50", target("max seconds", 60e-6))])
        st = _session(store, tmp, mode="compiled", journal=False, seconds=seconds)
        rows += _rows("live tick-to-order, compiled, busy poll, no journal:", st,
                      [("p50", target("max seconds", 20e-6,
                                      unchecked="the journal's share is measured in row 1"))])
        st = _session(store, tmp, mode="compiled", journal=True, seconds=seconds, warm=False)
        rows += _rows("live tick-to-order, compiled, busy poll, nothing kept warm:", st,
                      [("p50", target("max seconds", 20e-6,
                                      unchecked="what keeping the tick warm gains: the "
                                      "difference to row 1"))])
        st = _session(store, tmp, mode="compiled", journal=True, seconds=seconds, busy=False)
        rows += _rows("live tick-to-order, compiled, sleeping loop:", st,
                      [("p50", target("max seconds", 20e-6,
                                      unchecked="the default loop sleeps between packets: "
                                      "its wake-up is the difference to row 1"))])
    rows += _send_floor(quick)
    rows += _spin_floor(quick)
    rows += _journal_row(quick)
    return rows


_PEER = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
while s.recv(65536):
    pass
"""


def _send_floor(quick: bool) -> list[dict[str, Any]]:
    """A 50-byte send on a loopback TCP connection (TCP_NODELAY, as the gateway's) from
    compiled code, every 5 ms, to a process blocked in ``recv``: p50/p99 of the call, and
    of the time to the kernel's transmit stamp (the bytes handed to the device)."""
    import numpy as np
    from numba import njit

    from live.hotpath import MSG_NOSIGNAL, send_nb
    from live.txstamp import TxStamps
    from live.wire.mmsg import clock_gettime_nb

    @njit
    def send_after(fd: int, buf: Any, ts: Any, gap_ns: int) -> tuple[int, int]:
        clock_gettime_nb(0, ts.ctypes.data)  # realtime: the transmit stamps' clock
        t0 = ts[0] * 1_000_000_000 + ts[1]
        t1 = t0
        while t1 - t0 < gap_ns:  # spin, as the runner's loop does between ticks
            clock_gettime_nb(0, ts.ctypes.data)
            t1 = ts[0] * 1_000_000_000 + ts[1]
        send_nb(fd, buf.ctypes.data, 50, MSG_NOSIGNAL)
        clock_gettime_nb(0, ts.ctypes.data)
        return t1, ts[0] * 1_000_000_000 + ts[1]

    n = 200 if quick else 1000
    call, wire = np.zeros(n, np.int64), np.zeros(n, np.int64)
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        peer = subprocess.Popen([sys.executable, "-c", _PEER, str(ls.getsockname()[1])])
        try:
            c, _ = ls.accept()
            with c:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                tx = TxStamps(c.fileno())
                ts = np.zeros(2, np.int64)
                buf = np.zeros(64, np.uint8)
                for _ in range(5):  # compiled, connection warm
                    send_after(c.fileno(), buf, ts, 0)
                tx.take()
                for k in range(n):
                    t0, t1 = send_after(c.fileno(), buf, ts, 5_000_000)
                    call[k] = t1 - t0
                    wire[k] = tx.first_between(t0, t1) - t0
                tx.close()
        finally:
            peer.kill()
            peer.wait(15)
    wire = wire[wire > 0]
    return [{"name": "floor: 50 B loopback TCP send from compiled code, the call",
             "events": n, "seconds": float(np.percentile(call, 50)) / 1e9,
             "p99_us": round(float(np.percentile(call, 99)) / 1e3, 1),
             **target("max seconds", 20e-6, unchecked="what the machine's loopback costs: "
                      "the call runs the receiving side's TCP work and wakes it")},
            {"name": "floor: the same send to its transmit stamp (the 'wire' stage)",
             "events": len(wire), "seconds": float(np.percentile(wire, 50)) / 1e9,
             "p99_us": round(float(np.percentile(wire, 99)) / 1e3, 1),
             **target("max seconds", 20e-6, unchecked="what the machine's TCP stack costs "
                      "to the device")}]


def _local_timer_irqs(cpu: int) -> int | None:
    """The local timer interrupts CPU ``cpu`` took since boot (``/proc/interrupts``, LOC)."""
    try:
        with open("/proc/interrupts") as f:
            head = f.readline().split()
            col = head.index(f"CPU{cpu}")
            for line in f:
                parts = line.split()
                if parts and parts[0] == "LOC:":
                    return int(parts[1 + col])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _spin_floor(quick: bool) -> list[dict[str, Any]]:
    """What the machine takes from a spinning CPU: a compiled loop reading the clock (as
    the runner's loop does between packets), on the runner's CPU, records each gap between
    two reads over 5 µs -- time the CPU spent elsewhere (an interrupt, the hypervisor).
    With the gaps' rate and sizes, the share of 20 µs ticks one falls into: a tick's p99
    cannot be below what that share adds to it."""
    import numpy as np
    from numba import njit

    from live.wire.mmsg import clock_gettime_nb

    @njit
    def gaps(ns: int, ts: Any, out: Any) -> int:
        clock_gettime_nb(1, ts.ctypes.data)
        last = ts[0] * 1_000_000_000 + ts[1]
        end = last + ns
        k = 0
        while last < end and k < out.shape[0]:
            clock_gettime_nb(1, ts.ctypes.data)
            now = ts[0] * 1_000_000_000 + ts[1]
            if now - last > 5_000:
                out[k] = now - last
                k += 1
            last = now
        return k

    seconds = 2.0 if quick else 10.0
    ts, out = np.zeros(2, np.int64), np.zeros(1 << 20, np.int64)
    gaps(1000, ts, out)  # compiled before the clock starts
    cpus = _cpus()
    cpu = cpus[1] if cpus else min(os.sched_getaffinity(0))
    with _pinned(cpus and cpus[1]):
        irq0 = _local_timer_irqs(cpu)
        k = gaps(int(seconds * 1e9), ts, out)
        irq1 = _local_timer_irqs(cpu)
    g = out[:k] / 1e3 if k else np.zeros(1)  # (none: every figure 0)
    hit = min(1.0, k / seconds * (20.0 + float(g.mean())) / 1e6)  # a 20 µs tick meets one
    row: dict[str, Any] = {
        "name": "floor: a spinning CPU's interruptions (gaps over 5 µs in a clock loop)",
        "events": k, "seconds": float(np.percentile(g, 50)) / 1e6,
        "per_s": round(k / seconds, 1),
        "p99_us": round(float(np.percentile(g, 99)), 1),
        "max_us": round(float(g.max()), 1),
        "lost_pct": round(float(g.sum()) / (seconds * 1e6) * 100, 2),
        "ticks_20us_hit_pct": round(hit * 100, 2),
        **target("max seconds", 5e-6, unchecked="what the machine takes from a spinning CPU: "
                 "a 20 µs tick meets one of these gaps in ticks_20us_hit_pct of cases")}
    if irq0 is not None and irq1 is not None:
        row["timer_irqs_per_s"] = round((irq1 - irq0) / seconds, 1)
    return [row]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
