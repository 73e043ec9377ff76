"""Binance raw websocket captures (hftbacktest's collector; gzip or plain text).

One line per message: ``<local_recv_ns> <json>``. Combined-stream messages
``{"stream": "<sym>@<kind>", "data": {...}}`` and one bare REST snapshot
``{"lastUpdateId": ..., "bids": [[px, qty], ...], "asks": [...]}``.

* ``local_ts`` = the line's receive ns; ``exch_ts`` = the message's event time ``E``
  (ms -> ns). ``E`` (not the matching engine's ``T``) is used for every futures stream so
  depth, bookTicker and trades share one clock. Spot bookTicker and the spot REST
  snapshot carry no exchange time: they get the latest ``E`` seen on an earlier line
  (the capture's own clock is not comparable: in the samples it runs ~1.27 s behind).
* ``<sym>@depth[@0ms|@100ms|@500ms]`` diffs are synced to the snapshot by Binance's
  rules: diffs with ``u <= lastUpdateId`` are dropped (rejected as "depth diff before
  snapshot sync", they carry nothing the snapshot lacks); the first applied diff must
  have ``U <= lastUpdateId+1 <= u`` (spot) or ``U <= lastUpdateId <= u`` (futures; a
  diff whose ``pu == lastUpdateId`` also qualifies); each later one ``U == u_prev + 1``
  (spot) or ``pu == u_prev`` (futures). A gap is noted and counted; diffs then wait for
  the next snapshot (none: they are rejected and the book stops updating).
  Diffs received before the snapshot but applied after it are emitted at the snapshot
  line's ``local_ts`` (the moment a local book could apply them).
* The snapshot -> ``KIND_CLEAR`` + one ``KIND_LEVEL`` per level, all ``FLAG_SNAPSHOT``;
  a diff -> one ``KIND_LEVEL`` per level (bids BUY, asks SELL, qty 0 removes). Depth
  events carry the diff's final update id ``u`` (snapshot: ``lastUpdateId``) as
  ``order_id`` so a book can be matched against bookTicker's ``u``.
* ``<sym>@bookTicker`` -> two ``KIND_BBO`` (bid BUY, ask SELL), ``order_id = u``.
* ``<sym>@trade`` -> ``KIND_TRADE``; side = aggressor (``m`` true: buyer is maker, so
  SELL); ``order_id`` = trade id ``t``.
* Market ``spot``/``usdm``: ``--market``, else futures diffs carry ``pu``, else the
  file name. Venue ``BINANCE`` (spot) / ``BINANCE_USDM``; symbol from the stream name.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from framework.core.errors import FormatError
from framework.core.events import (
    BUY,
    FLAG_SNAPSHOT,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
)
from framework.ingest.assemble import Batch, make_batch
from framework.ingest.base import ImportOptions, ImportReport
from framework.ingest.binance_market import market_is_usdm, quote_currency
from framework.ingest.decimal_text import Scaled, parse_decimals

_POS_SHIFT = 24  # event position = line << 24 | index within the line's emission
_MS_LIMIT = (1 << 63) // 1_000_000  # event times in ms that still fit int64 ns


@dataclass
class _Book:
    """One depth message (diff or REST snapshot) of a raw capture."""

    line: int
    local_ts: int
    exch_ts: int
    first: int  # U (diff) / lastUpdateId (snapshot)
    last: int  # u (diff) / lastUpdateId (snapshot)
    prev: int  # pu (futures diff) or -1
    bids: tuple[tuple[Any, ...], tuple[Any, ...]]
    asks: tuple[tuple[Any, ...], tuple[Any, ...]]
    snap: bool

    @property
    def n(self) -> int:
        return len(self.bids[0]) + len(self.asks[0])


def _id(v: Any, limit: int = 1 << 63) -> int:
    """An id or time: an integer in ``0..limit`` (else the message is malformed)."""
    x = int(v)
    if not 0 <= x < limit:
        msg = f"id {x} out of range"
        raise ValueError(msg)
    return x


def _levels(raw: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    if not raw:
        return (), ()
    px, qty = zip(*raw, strict=True)  # a level that is not [px, qty] raises ValueError
    return px, qty


_DEPTH_STREAMS = ("depth", "depth@0ms", "depth@100ms", "depth@250ms", "depth@500ms")


@dataclass
class _Capture:
    """What one pass over a capture's lines collected."""

    book: list[_Book] = field(default_factory=list)
    bbo: list[tuple[Any, ...]] = field(default_factory=list)  # line, local, exch, u, b, B, a, A
    trades: list[tuple[Any, ...]] = field(default_factory=list)  # line, local, exch, t, p, q, m
    symbol: str | None = None
    futures_hint: bool | None = None
    bad_json: list[int] = field(default_factory=list)
    bad_msg: list[int] = field(default_factory=list)
    bad_time: list[int] = field(default_factory=list)
    bad_symbol: list[int] = field(default_factory=list)
    rows: int = 0
    backwards: int = 0


_SYMBOL_RE = re.compile(r"^[a-z0-9]{2,30}$")  # Binance stream names: lower-case letters, digits
_MAX_CLOCK_DRIFT_NS = 3_600 * 1_000_000_000  # receive vs event time, beyond the file's usual


def _scan_capture(lines: list[str], report: ImportReport, src: str) -> _Capture:
    cap = _Capture()
    last_e = 0
    prev_ts = -1
    entries: list[tuple[str, str, int, int, bool, Any]] = []  # kind, symbol, line, ts, has_e
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cap.rows += 1
        sp = line.find(" ")
        try:
            ts = _id(line[:sp]) if sp > 0 else int("x")
        except ValueError:
            cap.bad_msg.append(lineno)
            continue
        if ts < prev_ts:
            cap.backwards += 1
        prev_ts = ts
        try:
            m = json.loads(line[sp + 1:])
        except ValueError:
            cap.bad_json.append(lineno)
            continue
        try:
            stream = m.get("stream")
            if stream is None:
                if "lastUpdateId" not in m:
                    report.reject_rows("message without a stream name (not a snapshot either)")
                    continue
                e = _id(m["E"], _MS_LIMIT) * 1_000_000 if "E" in m else (last_e or ts)
                lid = _id(m["lastUpdateId"])
                snap = _Book(lineno, ts, e, lid, lid, -1, _levels(m["bids"]), _levels(m["asks"]),
                             True)
                entries.append(("book", "", lineno, ts - e, "E" in m, snap))
                continue
            sym, _, kind = stream.partition("@")
            if not _SYMBOL_RE.match(sym):
                cap.bad_symbol.append(lineno)
                continue
            d = m["data"]
            if "E" in d:
                e = _id(d["E"], _MS_LIMIT) * 1_000_000
                last_e = max(last_e, e)
            else:
                e = last_e or ts
            item: Any
            if kind == "bookTicker":
                item = (lineno, ts, e, _id(d["u"]), d["b"], d["B"], d["a"], d["A"])
                if cap.futures_hint is None:
                    cap.futures_hint = "e" in d
            elif kind == "trade":
                item = (lineno, ts, e, _id(d["t"]), d["p"], d["q"], bool(d["m"]))
            elif kind in _DEPTH_STREAMS:
                pu = d.get("pu")
                if pu is not None or cap.futures_hint is None:
                    cap.futures_hint = pu is not None
                item = _Book(lineno, ts, e, _id(d["U"]), _id(d["u"]), -1 if pu is None else _id(pu),
                             _levels(d["b"]), _levels(d["a"]), False)
                kind = "book"
            else:
                report.reject_rows(f"unsupported stream @{kind}")
                continue
            entries.append((kind, sym, lineno, ts - e, "E" in d, item))
        except (KeyError, TypeError, ValueError, AttributeError):
            cap.bad_msg.append(lineno)
    _sort_entries(cap, entries, report)
    return cap


def _sort_entries(
    cap: _Capture, entries: list[tuple[str, str, int, int, bool, Any]], report: ImportReport
) -> None:
    """Keep the file's symbol (the one most lines name) and the lines whose receive time
    agrees with their exchange time as well as the file's other lines do."""
    counts = Counter(sym for _, sym, *_ in entries if sym)
    if counts:
        cap.symbol = counts.most_common(1)[0][0]
    offsets = [off for _, _, _, off, has_e, _ in entries if has_e]
    usual = sorted(offsets)[len(offsets) // 2] if offsets else 0
    for kind, sym, lineno, off, has_e, item in entries:
        if sym and sym != cap.symbol:
            report.reject_rows(f"message for another symbol ({sym.upper()}); one symbol per file")
        elif has_e and abs(off - usual) > _MAX_CLOCK_DRIFT_NS:
            cap.bad_time.append(lineno)
        elif kind == "book":
            cap.book.append(item)
        elif kind == "bookTicker":
            cap.bbo.append(item)
        else:
            cap.trades.append(item)


@dataclass
class _Chunk:
    pos: int
    book: _Book
    local_ts: int


def _sync_depth(book: list[_Book], futures: bool, report: ImportReport, src: str) -> list[_Chunk]:
    """Apply Binance's snapshot + diff sync rules; return the depth messages to emit."""
    chunks: list[_Chunk] = []
    buffer: list[_Book] = []
    lid: int | None = None
    awaiting = synced = False
    last_u = 0
    pre_sync = applied = gaps = 0
    stale = [0]  # a list: step() counts into it
    # receive order, whatever the line order: a shuffled capture syncs as it was received
    book = sorted(book, key=lambda b: (b.local_ts, b.line))

    def step(d: _Book, pos: int, local_ts: int) -> bool:
        nonlocal awaiting, synced, last_u, pre_sync, gaps
        if lid is None:  # only called once a snapshot is known
            return False
        if awaiting:
            if d.last <= lid:
                pre_sync += 1
                return False
            ok = (d.first <= lid <= d.last or d.prev == lid) if futures else (
                d.first <= lid + 1 <= d.last)
            want = f"U <= {lid}{'' if futures else ' + 1'} <= u"
        elif d.last <= last_u:  # a repeat of (or older than) a diff already applied
            stale[0] += 1
            return False
        else:
            ok = d.prev == last_u if futures else d.first == last_u + 1
            want = f"pu == {last_u}" if futures else f"U == {last_u + 1}"
        if not ok:
            gaps += 1
            report.note(f"{src}: depth gap at line {d.line}: expected {want}, got U={d.first} "
                        f"u={d.last} pu={d.prev}; diffs wait for the next snapshot")
            awaiting = synced = False
            buffer.append(d)
            return False
        awaiting, synced, last_u = False, True, d.last
        chunks.append(_Chunk(pos, d, local_ts))
        return True

    for item in book:
        if item.snap:
            if synced and last_u >= item.last:
                report.reject_rows("REST snapshot older than the already synced book")
                continue
            lid = item.last
            base = item.line << _POS_SHIFT
            chunks.append(_Chunk(base + 1, item, item.local_ts))
            nxt = base + 1 + item.n
            awaiting, synced = True, False
            pending, buffer = buffer, []
            for d in pending:
                if awaiting or synced:
                    if step(d, nxt, item.local_ts):
                        applied += 1
                        nxt += d.n
                else:
                    buffer.append(d)
            continue
        if lid is None or not (awaiting or synced):
            buffer.append(item)
        elif step(item, item.line << _POS_SHIFT, item.local_ts):
            applied += 1
    if lid is None and buffer:
        report.note(f"{src}: no REST depth snapshot: {len(buffer)} depth diffs cannot be synced")
        pre_sync += len(buffer)
    elif buffer:
        report.note(f"{src}: {len(buffer)} depth diffs after the last sequence gap dropped: no "
                    "later snapshot to resync from; the book stops updating there")
        report.reject_rows("depth diff after a sequence gap (no snapshot to resync)", len(buffer))
    report.reject_rows("depth diff before snapshot sync", pre_sync)
    report.reject_rows("depth diff already applied (a repeated or older update id)", stale[0])
    if pre_sync:
        report.note(f"{src}: {pre_sync} diffs before snapshot sync dropped (received before "
                    "the snapshot and already contained in it)")
    report.note(f"{src}: {applied} depth diffs applied, {gaps} sequence gap(s)")
    return chunks


def _depth_groups(chunks: list[_Chunk]) -> list[dict[str, Any]]:
    """Column groups for the CLEAR + level events of the synced depth messages."""
    px: list[Any] = []
    qy: list[Any] = []
    counts = np.zeros(2 * len(chunks), np.int64)
    for i, c in enumerate(chunks):
        px += c.book.bids[0]
        px += c.book.asks[0]
        qy += c.book.bids[1]
        qy += c.book.asks[1]
        counts[2 * i] = len(c.book.bids[0])
        counts[2 * i + 1] = len(c.book.asks[0])
    per = counts[0::2] + counts[1::2]
    local = np.array([c.local_ts for c in chunks], np.int64)
    exch = np.array([c.book.exch_ts for c in chunks], np.int64)
    uid = np.array([c.book.last for c in chunks], np.uint64)
    line = np.array([c.book.line for c in chunks], np.int64)
    pos = np.array([c.pos for c in chunks], np.int64)
    snap = np.array([c.book.snap for c in chunks], np.bool_)
    total = int(per.sum())
    starts = np.cumsum(per) - per
    sub = np.arange(total, dtype=np.int64) - np.repeat(starts, per)
    sides = np.tile(np.array([BUY, SELL], np.int8), len(chunks))
    levels = {
        "local_ts": np.repeat(local, per), "exch_ts": np.repeat(exch, per),
        "price": parse_decimals(pl.Series("p", px, dtype=pl.String, strict=False)),
        "qty": parse_decimals(pl.Series("q", qy, dtype=pl.String, strict=False)),
        "order_id": np.repeat(uid, per), "kind": np.full(total, KIND_LEVEL),
        "side": np.repeat(sides, counts),
        "flags": np.repeat(np.where(snap, FLAG_SNAPSHOT, 0), per),
        "msg": np.repeat(line, per), "pos": np.repeat(pos, per) + sub,
    }
    k = int(snap.sum())
    clears = {
        "local_ts": local[snap], "exch_ts": exch[snap], "price": Scaled.zeros(k),
        "qty": Scaled.zeros(k), "order_id": uid[snap], "kind": np.full(k, KIND_CLEAR),
        "side": np.zeros(k), "flags": np.full(k, FLAG_SNAPSHOT), "msg": line[snap],
        "pos": pos[snap] - 1,
    }
    return [clears, levels]


def _bbo_groups(bbo: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    if not bbo:
        return []
    line, local, exch, uid, b, bq, a, aq = zip(*bbo, strict=True)
    n = len(line)
    ln = np.array(line, np.int64)
    common = {"local_ts": np.array(local, np.int64), "exch_ts": np.array(exch, np.int64),
              "order_id": np.array(uid, np.uint64), "kind": np.full(n, KIND_BBO),
              "flags": np.zeros(n), "msg": ln}

    def side(px: Any, qty: Any, s: int) -> dict[str, Any]:
        return {**common, "price": parse_decimals(pl.Series("p", px, pl.String, strict=False)),
                "qty": parse_decimals(pl.Series("q", qty, pl.String, strict=False)),
                "side": np.full(n, s), "pos": (ln << _POS_SHIFT) + (0 if s == BUY else 1)}

    return [side(b, bq, BUY), side(a, aq, SELL)]


def _trade_groups(trades: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    if not trades:
        return []
    line, local, exch, tid, px, qty, maker = zip(*trades, strict=True)
    ln = np.array(line, np.int64)
    n = len(ln)
    return [{
        "local_ts": np.array(local, np.int64), "exch_ts": np.array(exch, np.int64),
        "price": parse_decimals(pl.Series("p", px, pl.String, strict=False)),
        "qty": parse_decimals(pl.Series("q", qty, pl.String, strict=False)),
        "order_id": np.array(tid, np.uint64), "kind": np.full(n, KIND_TRADE),
        "side": np.where(np.array(maker, np.bool_), SELL, BUY), "flags": np.zeros(n),
        "msg": ln, "pos": ln << _POS_SHIFT,
    }]


def import_capture(path: Path, data: bytes, opts: ImportOptions, report: ImportReport) -> Batch:
    src = path.name
    # one decode of the whole file is cheaper than json.loads sniffing each line's encoding
    text = data.decode("utf-8", errors="replace")
    cap = _scan_capture(text.split("\n"), report, src)
    report.rows_read += cap.rows
    for lines, what in (
        (cap.bad_json, "malformed JSON line"),
        (cap.bad_msg, "malformed message (bad timestamp, missing or bad field)"),
        (cap.bad_symbol, "stream name whose symbol is not lower-case letters and digits"),
        (cap.bad_time, "receive time more than an hour off the exchange time (the file's "
                       "other lines agree within it)"),
    ):
        if lines:
            report.damage(what, len(lines), at=f"{src} line {lines[0]:,}")
            report.note(f"{src}: {what} on line(s) {_some(lines)}")
    if cap.backwards:
        report.note(f"{src}: {cap.backwards} lines have a receive time before the previous one")
    if cap.symbol is None:
        msg = f"{src}: no combined-stream message found; is this a Binance websocket capture?"
        raise FormatError(msg)
    futures = market_is_usdm(opts, cap.futures_hint, src)
    chunks = _sync_depth(cap.book, futures, report, src)
    report.rows_imported = (report.rows_imported or 0) + (
        len(cap.bbo) + len(cap.trades) + len(chunks)
    )
    groups = _depth_groups(chunks) + _bbo_groups(cap.bbo) + _trade_groups(cap.trades)
    return make_batch(venue="BINANCE_USDM" if futures else "BINANCE", symbol=cap.symbol.upper(),
                      currency=quote_currency(cap.symbol.upper()), source=str(path), groups=groups)


def _some(lines: list[int], k: int = 10) -> str:
    head = ", ".join(str(x) for x in lines[:k])
    return head + (f" and {len(lines) - k} more" if len(lines) > k else "")
