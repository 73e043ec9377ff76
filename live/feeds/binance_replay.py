"""A local Binance-style websocket server replaying a raw capture (hftbacktest's collector
format: ``<recv_ns> <json>`` per line, gzip or plain), for the websocket handler's tests and
for demos.

It sends each combined-stream line as it was received. At the capture's REST snapshot line it
waits for the client's snapshot request (``{"method": "depth", "id": n}``) and answers
``{"id": n, "status": 200, "result": <the snapshot>}`` there, so the snapshot lands among the
diffs where it was taken. A later request (a resync after a gap) is answered at the next
line (after the last line: while requests keep coming within ``grace_s``) with the book the
exchange has at that point (captured snapshot + every diff since, sent or skipped,
keyed by price text) and the last update id. ``skip_lines`` leaves lines out (to make a gap). At the
end the server closes the connection normally (code 1000, reason
:data:`~live.feeds.binance_ws.END_OF_DATA`).

Faults, for the reconnect tests: ``drops`` cuts the connection after the n-th message sent
(aborted without a close frame, or closed with ``drop_code``), once per count; the stream goes
on as an exchange's does: the next connection continues where it was, minus ``lost`` lines
the client was away for (the book still takes them). ``down_after``: after that many messages
the server stops for good (listening socket closed, the connection closed 1001 "going
away"), as an exchange down for maintenance. ``close_at_once``: the connections (counted
from 1) the server accepts and closes at once (code 1013 "try again later", nothing sent), as
an overloaded exchange does; the stream waits for the next connection.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live.feeds.binance_ws import END_OF_DATA

#: the server waits for a pong every this many messages: the client's websockets library stops
#: reading (so stops answering pings) while its app lags, so the replay cannot run more than
#: about this far ahead of what the client has processed, as a live exchange cannot either
PING_EVERY = 200


def read_capture(path: Path) -> list[str]:
    """The capture's non-empty lines."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return [ln for ln in raw.decode("utf-8", errors="replace").split("\n") if ln.strip()]


@dataclass
class _ServerBook:
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    last_u: int = 0

    def set(self, snap: dict[str, Any]) -> None:
        self.bids = dict(snap["bids"])
        self.asks = dict(snap["asks"])
        self.last_u = int(snap["lastUpdateId"])

    def apply(self, d: dict[str, Any]) -> None:
        for side, levels in ((self.bids, d["b"]), (self.asks, d["a"])):
            for p, q in levels:
                if float(q) == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_u = int(d["u"])

    def snapshot(self) -> dict[str, Any]:
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))
        return {"lastUpdateId": self.last_u, "bids": [list(x) for x in bids],
                "asks": [list(x) for x in asks]}


@dataclass
class _Stream:
    """The exchange's side of a replay: the next line, the book (every diff, sent or
    skipped), the diffs before the capture's snapshot, the messages sent."""

    book: _ServerBook = field(default_factory=_ServerBook)
    early: list[dict[str, Any]] = field(default_factory=list)
    synced: bool = False
    pos: int = 0
    sent: int = 0

    def track(self, text: str) -> dict[str, Any] | None:
        """Keep the book through one line; the snapshot when the line is the capture's."""
        if "@depth" in text[:40]:
            d = json.loads(text)["data"]
            if self.synced:
                self.book.apply(d)
            else:
                self.early.append(d)
        elif text.startswith('{"lastUpdateId"'):
            return dict(json.loads(text))
        return None

    def take(self, snap: dict[str, Any]) -> None:
        """The capture's snapshot is the book from here (the diffs after it applied)."""
        self.book.set(snap)
        for d in self.early:
            if int(d["u"]) > self.book.last_u:
                self.book.apply(d)
        self.early.clear()
        self.synced = True


def _text(line: str) -> str:
    return line[line.find(" ") + 1 :]


class CaptureReplay:
    """One replay per connection (each client gets the whole capture); with ``drops`` or
    ``down_after``, one stream that the connections take turns following."""

    def __init__(self, lines: list[str], *, skip_lines: Iterable[int] = (),
                 grace_s: float = 1.0, drops: Iterable[int] = (), drop_code: int | None = None,
                 lost: int = 0, down_after: int | None = None,
                 close_at_once: Iterable[int] = ()) -> None:
        self.lines = lines
        self.grace_s = grace_s
        self.skip = set(skip_lines)
        self.drops = set(drops)
        self.drop_code, self.lost, self.down_after = drop_code, lost, down_after
        self.close_at_once = set(close_at_once)
        self.requests_answered = 0
        self.connections = 0
        self.dropped = 0  #: connections cut (``drops``)
        self.server: Any = None  #: the ``websockets`` server (:func:`serve_capture`)
        self.stream: _Stream | None = None  #: the stream (the last connection's)

    @property
    def book(self) -> dict[str, Any]:
        """The exchange's book now (a snapshot's shape)."""
        return (self.stream or _Stream()).book.snapshot()

    def _stream(self) -> _Stream:
        one = bool(self.drops) or self.down_after is not None
        if self.stream is None or not one:
            self.stream = _Stream()
        return self.stream

    def _away(self, st: _Stream) -> None:
        """The ``lost`` lines the client misses while away: the exchange's book takes them."""
        for _ in range(self.lost):
            if st.pos >= len(self.lines):
                return
            snap = st.track(_text(self.lines[st.pos]))
            if snap is not None:
                st.take(snap)
            st.pos += 1

    async def handler(self, ws: Any) -> None:
        requests: asyncio.Queue[int] = asyncio.Queue()
        self.connections += 1
        if self.connections in self.close_at_once:
            await ws.close(1013, "replay: try again later")
            return

        async def read() -> None:
            async for raw in ws:
                try:
                    m = json.loads(raw)
                    if m.get("method") == "depth":
                        await requests.put(int(m["id"]))
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue

        reader = asyncio.create_task(read())
        st = self._stream()
        try:
            while st.pos < len(self.lines):
                st.pos += 1
                text = _text(self.lines[st.pos - 1])
                snap = st.track(text)
                if st.pos in self.skip:
                    continue
                if snap is not None:
                    req = await requests.get()
                    await ws.send(json.dumps({"id": req, "status": 200, "result": snap}))
                    self.requests_answered += 1
                    st.take(snap)
                    continue
                while st.synced and not requests.empty():  # a resync: the book as sent so far
                    req = requests.get_nowait()
                    await ws.send(json.dumps({"id": req, "status": 200,
                                              "result": st.book.snapshot()}))
                    self.requests_answered += 1
                await ws.send(text)
                st.sent += 1
                if st.sent in self.drops:
                    self.dropped += 1
                    self._away(st)
                    if self.drop_code is None:
                        ws.transport.abort()
                    else:
                        await ws.close(self.drop_code, "replay: connection cut")
                    return
                if st.sent == self.down_after:
                    self.server.close()  # nothing listens from here
                    await ws.close(1001, "going away")
                    return
                if st.sent % PING_EVERY == 0:
                    await (await ws.ping())  # stay near the client (see PING_EVERY)
                await asyncio.sleep(0)  # let the reader see requests between messages
            await (await ws.ping())
            # a client behind the stream may ask for a snapshot after the last line: answer
            # until it has been quiet for ``grace_s``
            while st.synced:
                try:
                    req = await asyncio.wait_for(requests.get(), self.grace_s)
                except TimeoutError:
                    break
                await ws.send(json.dumps({"id": req, "status": 200,
                                          "result": st.book.snapshot()}))
                self.requests_answered += 1
        finally:
            reader.cancel()
        await ws.close(1000, END_OF_DATA)


async def serve_capture(replay: CaptureReplay, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Start serving; returns the ``websockets`` server (``.sockets[0].getsockname()``)."""
    from websockets.asyncio.server import serve

    replay.server = await serve(replay.handler, host, port, max_size=1 << 24)
    return replay.server
