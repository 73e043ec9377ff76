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
end the server closes the connection normally (code 1000).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class CaptureReplay:
    """One replay per connection (each client gets the whole capture)."""

    def __init__(self, lines: list[str], *, skip_lines: Iterable[int] = (),
                 grace_s: float = 1.0) -> None:
        self.lines = lines
        self.grace_s = grace_s
        self.skip = set(skip_lines)
        self.requests_answered = 0

    async def handler(self, ws: Any) -> None:
        requests: asyncio.Queue[int] = asyncio.Queue()

        async def read() -> None:
            async for raw in ws:
                try:
                    m = json.loads(raw)
                    if m.get("method") == "depth":
                        await requests.put(int(m["id"]))
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue

        reader = asyncio.create_task(read())
        book = _ServerBook()  # the exchange's book: every diff, sent or skipped
        early: list[dict[str, Any]] = []  # diffs before the snapshot
        synced = False
        sent = 0
        try:
            for lineno, line in enumerate(self.lines, 1):
                text = line[line.find(" ") + 1 :]
                depth = "@depth" in text[:40]
                if depth:
                    d = json.loads(text)["data"]
                    if synced:
                        book.apply(d)
                    else:
                        early.append(d)
                if lineno in self.skip:
                    continue
                if text.startswith('{"lastUpdateId"'):
                    snap = json.loads(text)
                    req = await requests.get()
                    await ws.send(json.dumps({"id": req, "status": 200, "result": snap}))
                    self.requests_answered += 1
                    book.set(snap)
                    for d in early:
                        if int(d["u"]) > book.last_u:
                            book.apply(d)
                    synced = True
                    continue
                while synced and not requests.empty():  # a resync: the book as sent so far
                    req = requests.get_nowait()
                    await ws.send(json.dumps({"id": req, "status": 200,
                                              "result": book.snapshot()}))
                    self.requests_answered += 1
                await ws.send(text)
                sent += 1
                if sent % PING_EVERY == 0:
                    await (await ws.ping())  # stay near the client (see PING_EVERY)
                await asyncio.sleep(0)  # let the reader see requests between messages
            await (await ws.ping())
            # a client behind the stream may ask for a snapshot after the last line: answer
            # until it has been quiet for ``grace_s``
            while synced:
                try:
                    req = await asyncio.wait_for(requests.get(), self.grace_s)
                except TimeoutError:
                    break
                await ws.send(json.dumps({"id": req, "status": 200, "result": book.snapshot()}))
                self.requests_answered += 1
        finally:
            reader.cancel()
        await ws.close(1000, "end of capture")


async def serve_capture(replay: CaptureReplay, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Start serving; returns the ``websockets`` server (``.sockets[0].getsockname()``)."""
    from websockets.asyncio.server import serve

    return await serve(replay.handler, host, port, max_size=1 << 24)
