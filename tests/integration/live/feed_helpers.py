"""Run the ``hftlab venue`` process and a feed handler against it on 127.0.0.1."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from framework.book.replay import replay_book_rows
from framework.core.events import FLAG_LAST
from framework.store import TickStore
from live.feeds.itch_mold import MoldFeedHandler
from live.venue.replay import ReplayDay, load_replay
from tests.procs import dies_with_parent

REPO = Path(__file__).resolve().parents[3]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def venue_process(store: str, venue: str, symbol: str, date: dt.date, *args: str,
                  log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The venue in its own process group; always stopped (SIGTERM, then SIGKILL)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            dies_with_parent([sys.executable, "-m", "framework.cli", "venue", "--store", store,
                              "--venue", venue, "--symbol", symbol, "--date", date.isoformat(),
                              *args]),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=REPO)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(15)


def handler_for(rep: ReplayDay, *, rerequest_port: int | None, record_rows: int,
                listen: tuple[str, int] = ("127.0.0.1", 0), **kw: object) -> MoldFeedHandler:
    h = MoldFeedHandler(listen=listen, date=rep.date, price_step=rep.price_step,
                        qty_step=rep.qty_step, levels=10, record_rows=record_rows,
                        rerequest=None if rerequest_port is None
                        else ("127.0.0.1", rerequest_port), **kw)  # type: ignore[arg-type]
    h.warm_up()  # compile before the venue starts sending, not while its packets pile up
    return h


def reference(store: str, venue: str, symbol: str, date: dt.date) -> tuple[ReplayDay, np.ndarray]:
    """The replay the venue publishes and the stored day's book after every stored event
    (``book replay``'s book code over the stored events, a row per event rather than per
    venue message: a packet may end inside a venue message larger than a packet)."""
    ts = TickStore(store)
    events = ts.read(venue, symbol, date)
    rep = load_replay(ts, venue, symbol, date)
    every = events.copy()
    every["flags"] |= FLAG_LAST
    return rep, replay_book_rows(every, levels=10, l3=rep.l3)


def row_after_message(rep: ReplayDay) -> np.ndarray:
    """Per message: the stored event after which the book equals the book once this
    message is applied (-1 inside an event that made several messages)."""
    me = rep.message_event()
    nxt = np.concatenate([me[1:], [len(rep.stored_flags)]])
    return np.where((me >= 0) & (nxt != me), nxt - 1, -1)


def check_rows(h: MoldFeedHandler, rep: ReplayDay, ref: np.ndarray) -> int:
    """Compare the handler's book at each packet boundary with the stored day's book after
    the same stored event; returns how many boundaries were checked."""
    rows, seqs = h.recorded()
    after = row_after_message(rep)
    idx = after[seqs - 2]  # next sequence s: the last message applied has index s - 2
    ok = idx >= 0
    bad = np.flatnonzero((rows[ok] != ref[idx[ok]]).any(axis=1))
    first = int(seqs[ok][bad[0]]) if bad.shape[0] else None
    assert bad.shape[0] == 0, f"book differs at {bad.shape[0]} boundaries, first at seq {first}"
    return int(ok.sum())
