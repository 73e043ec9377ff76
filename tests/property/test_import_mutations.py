"""Mutation harness: damaged input never crashes an import, never hangs, never half-writes.

Every sample ``make demo`` imports (:data:`framework.demo.SAMPLES`, from ``../shared/data``;
large ones cut to a head) and a small generated sample per importer (LOBSTER pair, ITCH
BinaryFILE plain and gzip, Binance capture, depth CSV and trades Parquet, Tardis CSV) is
mutated with seeded mutations: truncation, flipped, inserted or zeroed bytes, a duplicated
byte range, an empty file; for text also duplicated, shuffled, swapped, deleted or garbage
lines and a cut at a line end; for compressed files a cut or corrupted stream and a
plaintext mutation recompressed. (A LOBSTER pair mutates either file.) Each sample is also
given to every other importer, which must refuse it. Each mutant goes through the real CLI
(:func:`framework.cli.main`, in process, with a fresh ``--store``; output on file descriptors
1 and 2 captured too, where native libraries write) under a time bound, and must either

* exit non-zero with exactly one line of output, ``hftlab: error: ...`` (no traceback), and
  leave the store untouched (no file, no temporary file, no directory); an error that offers
  ``--allow-partial`` is retried with it, and that run must satisfy the next point; or
* exit 0 with a report whose ledgers add up (``rows read = imported + rejected``, ``events
  made = written + rejected``, per-reason lines summing to the totals), whose rows read equal
  the source's own count for line-based files, and whose written events are exactly what
  the store holds. Damage only appears in a run with ``--allow-partial``.

Run size: ``HFTLAB_MUTANTS`` mutants per sample (default 20; e.g. ``HFTLAB_MUTANTS=500
pytest tests/property/test_import_mutations.py`` for a long run); ``HFTLAB_MUTANT_SEED``
changes the seed. A failing mutant is written to the test's tmp directory and named in the
failure message, so it can be imported by hand.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gzip
import io
import json
import os
import re
import signal
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import zstandard

from framework.cli import main
from framework.demo import SAMPLES as DEMO_SAMPLES
from framework.ingest.base import IMPORTERS
from tests.store_helpers import store_files

N_MUTANTS = int(os.environ.get("HFTLAB_MUTANTS", "20"))
SEED = int(os.environ.get("HFTLAB_MUTANT_SEED", "20240808"))
TIME_LIMIT_S = 60  # per mutant: a hang detector, far above the longest healthy run
HEAD_LINES = 1500  # large text samples are cut to their first lines (compressed ones too)
LEDGER = re.compile(
    r"^(?P<src>.+): read (?P<read>[\d,]+) (?P<unit>\w+) = (?P<imported>[\d,]+) imported \+ "
    r"(?P<rejected>[\d,]+) rejected; made (?P<made>[\d,]+) events = (?P<written>[\d,]+) "
    r"written \+ (?P<ev_rejected>[\d,]+) rejected$"
)
WROTE = re.compile(r"^  wrote \S+: (?P<n>[\d,]+) events -> (?P<path>.+)$")
REJ_ROWS = re.compile(r"^  rejected (?P<n>[\d,]+) (?P<unit>\w+): ")


class MutantTimeout(BaseException):
    """The import ran past the time bound (not an Exception: the CLI must not catch it)."""


# --- samples ----------------------------------------------------------------------------


@dataclass
class Sample:
    """Input files for one import: ``files[0]`` is mutated (or another of them, see
    ``mutable``); ``text`` files are line-based; ``rows`` counts the source rows of the
    mutated file's plaintext as the importer defines them (None: not line-based)."""

    name: str
    fmt: str
    files: dict[str, bytes]  # file name -> bytes (the first is the one imported)
    args: list[str] = field(default_factory=list)
    text: bool = False
    codec: str = ""  # "gz" / "zst": the first file is compressed
    rows: Callable[[bytes], int] | None = None
    mutable: tuple[str, ...] = ()  # names of files that may be mutated (default: the first)

    def targets(self) -> tuple[str, ...]:
        return self.mutable or (next(iter(self.files)),)


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _csv_like_rows(data: bytes) -> int:
    """Non-empty lines (a trailing \\r aside), as the CSV and LOBSTER readers count them."""
    return sum(1 for x in _lines(data) if x.rstrip(b"\r"))


def _capture_rows(data: bytes) -> int:
    return sum(1 for x in data.decode("utf-8", errors="replace").split("\n") if x.strip())


def _decompress(data: bytes, codec: str) -> bytes:
    if codec == "gz":
        return gzip.decompress(data)
    if codec == "zst":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _compress(data: bytes, codec: str) -> bytes:
    if codec == "gz":
        return gzip.compress(data, mtime=0)
    if codec == "zst":
        return zstandard.ZstdCompressor().compress(data)
    return data


def _head(data: bytes, n: int) -> bytes:
    return b"".join(x + b"\n" for x in _lines(data)[:n])


def demo_samples(shared: Path) -> list[Sample]:
    """The samples ``make demo`` imports, read from ``shared`` (heads of the large ones)."""
    out = []
    for what, (fmt, *rest), _ in DEMO_SAMPLES:
        paths = [shared / a for a in rest if not a.startswith("--")]
        args = [a for a in rest if a.startswith("--")]
        path = paths[0]
        name = re.sub(r"[^a-z0-9]+", "_", what.lower()).strip("_")[:40]
        if fmt == "lobster":
            msg = _head(path.read_bytes(), HEAD_LINES)
            ob_path = path.with_name(path.name.replace("message", "orderbook"))
            ob = _head(ob_path.read_bytes(), HEAD_LINES)
            out.append(Sample(name, fmt, {path.name: msg, ob_path.name: ob}, args, text=True,
                              rows=_csv_like_rows, mutable=(path.name, ob_path.name)))
        elif fmt == "binance":
            plain = _head(gzip.decompress(path.read_bytes()), HEAD_LINES)
            out.append(Sample(name, fmt, {path.name: gzip.compress(plain, mtime=0)}, args,
                              text=True, codec="gz", rows=_capture_rows))
        elif path.name.endswith(".zst"):
            out.append(Sample(name, fmt, {path.name: path.read_bytes()}, args, codec="zst"))
        else:
            out.append(Sample(name, fmt, {path.name: path.read_bytes()}, args))
    return out


def _itch_msgs() -> bytes:
    """A small ITCH 5.0 day: system events, a directory, and every order message type."""

    def hdr(t: str, locate: int, ts: int) -> bytes:
        return t.encode() + struct.pack(">HH", locate, 0) + ts.to_bytes(6, "big")

    def stock(s: str) -> bytes:
        return s.ljust(8).encode()

    rng = np.random.default_rng(7)
    ts = 34_200_000_000_000
    msgs = [hdr("S", 0, ts - 10**9) + b"Q"]
    for loc, sym in ((1, "AAA"), (2, "BBB")):
        msgs.append(hdr("R", loc, ts - 10**9) + stock(sym) + b"Q " + struct.pack(">I", 100)
                    + b"NCZ P N1N" + struct.pack(">I", 0) + b"N")
    live: dict[int, tuple[int, int]] = {}
    ref = 1
    for _ in range(120):
        ts += int(rng.integers(1, 10**6))
        loc = int(rng.integers(1, 3))
        op = "A" if len(live) < 4 else str(rng.choice(list("AAEXDUCP")))
        if op == "A":
            shares = int(rng.integers(1, 10)) * 100
            price = 100_000 + int(rng.integers(-20, 20)) * 100
            side = str(rng.choice(["B", "S"]))
            msgs.append(hdr("A", loc, ts) + struct.pack(">Q", ref) + side.encode()
                        + struct.pack(">I", shares) + stock("AAA" if loc == 1 else "BBB")
                        + struct.pack(">I", price))
            live[ref] = (loc, shares)
            ref += 1
            continue
        if op == "P":
            msgs.append(hdr("P", loc, ts) + struct.pack(">Q", 0) + b"B" + struct.pack(">I", 100)
                        + stock("AAA" if loc == 1 else "BBB") + struct.pack(">I", 100_000)
                        + struct.pack(">Q", ref))
            continue
        key = int(rng.choice(list(live)))
        loc, shares = live[key]
        if op in "EXC":
            k = min(shares, 100)
            body = struct.pack(">QI", key, k)
            if op == "E":
                body += struct.pack(">Q", key)
            elif op == "C":
                body += struct.pack(">Q", key) + b"Y" + struct.pack(">I", 100_100)
            msgs.append(hdr(op, loc, ts) + body)
            if k == shares:
                del live[key]
            else:
                live[key] = (loc, shares - k)
        elif op == "D":
            msgs.append(hdr("D", loc, ts) + struct.pack(">Q", key))
            del live[key]
        else:  # U
            msgs.append(hdr("U", loc, ts) + struct.pack(">QQII", key, ref, 200, 100_200))
            del live[key]
            live[ref] = (loc, 200)
            ref += 1
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def _lobster_pair() -> tuple[bytes, bytes]:
    """A consistent level-2 LOBSTER pair made from a random order flow."""
    rng = np.random.default_rng(11)
    orders: dict[int, list[int]] = {}
    msg, ob = [], []
    t = 34_200.0
    oid = 1
    for _ in range(300):
        t += float(rng.integers(1, 10**6)) / 1e6
        if len(orders) < 6 or rng.random() < 0.45:
            side = int(rng.choice([1, -1]))
            price = (100_000 - int(rng.integers(1, 6)) * 100) if side == 1 else \
                (100_100 + int(rng.integers(0, 5)) * 100)
            q = int(rng.integers(1, 10)) * 10
            orders[oid] = [side, price, q]
            msg.append(f"{t:.9f},1,{oid},{q},{price},{side}")
            oid += 1
        else:
            k = int(rng.choice(list(orders)))
            side, price, q = orders[k]
            typ = int(rng.choice([2, 3, 4]))
            size = q if typ == 3 else min(q, int(rng.integers(1, 5)) * 10)
            msg.append(f"{t:.9f},{typ},{k},{size},{price},{side}")
            orders[k][2] -= size
            if orders[k][2] <= 0 or typ == 3:
                del orders[k]
        row = []
        for lvl in range(2):
            asks = sorted({p for s, p, _ in orders.values() if s == -1})
            bids = sorted({p for s, p, _ in orders.values() if s == 1}, reverse=True)
            a = asks[lvl] if lvl < len(asks) else None
            b = bids[lvl] if lvl < len(bids) else None
            aq = sum(q for s, p, q in orders.values() if s == -1 and p == a)
            bq = sum(q for s, p, q in orders.values() if s == 1 and p == b)
            row += [a or 9_999_999_999, aq, b or -9_999_999_999, bq]
        ob.append(",".join(map(str, row)))
    return ("\n".join(msg) + "\n").encode(), ("\n".join(ob) + "\n").encode()


def _binance_capture() -> bytes:
    """A small USD-M capture: snapshot, synced diffs, bookTicker and trades."""
    t = 1_723_161_000_000_000_000
    e = t // 10**6 - 1_000
    lines = [f"{t} " + json.dumps({"lastUpdateId": 100, "bids": [["100.0", "5.000"]],
                                   "asks": [["100.5", "4.000"]]})]
    u = 100
    for k in range(80):
        t += 1_000_000
        e += 1
        kind = k % 3
        if kind == 0:
            d = {"e": "depthUpdate", "E": e, "U": u, "u": u + 2, "pu": u,
                 "b": [[f"{99.9 - k % 5 / 10:.1f}", f"{k % 7}.000"]], "a": [["100.5", "3.000"]]}
            u += 2
            lines.append(f"{t} " + json.dumps({"stream": "btcusdt@depth@0ms", "data": d}))
        elif kind == 1:
            d = {"e": "bookTicker", "u": u, "E": e, "b": "100.0", "B": "5.000", "a": "100.5",
                 "A": "3.000"}
            lines.append(f"{t} " + json.dumps({"stream": "btcusdt@bookTicker", "data": d}))
        else:
            d = {"e": "trade", "E": e, "t": 1000 + k, "p": "100.5", "q": "0.010", "m": k % 2 == 0}
            lines.append(f"{t} " + json.dumps({"stream": "btcusdt@trade", "data": d}))
    return ("\n".join(lines) + "\n").encode()


def _trades_parquet() -> bytes:
    """NautilusTrader-style trades Parquet (timestamp, trade_id, price, quantity, buyer_maker)."""
    import pyarrow as pa

    n = 80
    table = pa.table({
        "timestamp": pa.array(1_610_064_000_000 + np.arange(n) * 250, pa.int64()),
        "trade_id": pa.array(553_287_559 + np.arange(n), pa.int64()),
        "price": pa.array(39_432.48 + (np.arange(n) % 7) * 0.01, pa.float64()),
        "quantity": pa.array(0.000263 + (np.arange(n) % 5) * 0.001, pa.float64()),
        "buyer_maker": pa.array(np.arange(n) % 2 == 0),
    })
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def synthetic_samples() -> list[Sample]:
    """One small generated input per importer (needs no shared data)."""
    itch = _itch_msgs()
    msg, ob = _lobster_pair()
    stem = "SYN_2024-01-02_34200000_57600000"
    depth = ["symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu"]
    for k in range(60):
        side = "b" if k % 2 else "a"
        px = f"{20_000 + (k % 9) * (1 if side == 'a' else -1):.1f}"
        kind = "snap" if k < 10 else "set"
        depth.append(f"BTCUSDT,{1_667_346_579_000 + k},{9_000 + k},{9_000 + k},{side},{kind},"
                     f"{px},{k % 4}.000,{8_999 + k}")
    trades = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"] + [
        f"bitmex,XBTUSD,{1_585_699_200_000_000 + 1000 * k},{1_585_699_200_004_000 + 1000 * k},"
        f"{100 + k},{'buy' if k % 3 else 'sell'},{6_500 + k % 7}.5,{10 + k}" for k in range(60)]
    return [
        Sample("synthetic_lobster_pair", "lobster",
               {f"{stem}_message_2.csv": msg, f"{stem}_orderbook_2.csv": ob}, text=True,
               rows=_csv_like_rows, mutable=(f"{stem}_message_2.csv", f"{stem}_orderbook_2.csv")),
        Sample("synthetic_itch_binaryfile", "itch", {"01022024.NASDAQ_ITCH50": itch}),
        Sample("synthetic_itch_gzip", "itch",
               {"01022024.NASDAQ_ITCH50.gz": gzip.compress(itch, mtime=0)}, codec="gz"),
        Sample("synthetic_binance_capture", "binance",
               {"usdm_btcusdt_20240809.gz": gzip.compress(_binance_capture(), mtime=0)},
               text=True, codec="gz", rows=_capture_rows),
        Sample("synthetic_binance_depth_csv", "binance",
               {"btcusdt-depth.csv": ("\n".join(depth) + "\n").encode()}, text=True,
               rows=lambda d: _csv_like_rows(d) - 1),
        Sample("synthetic_binance_trades_parquet", "binance",
               {"btcusdt-trades.parquet": _trades_parquet()}),
        Sample("synthetic_tardis_trades", "tardis",
               {"bitmex_trades_XBTUSD.csv": ("\n".join(trades) + "\n").encode()}, text=True,
               rows=lambda d: _csv_like_rows(d) - 1),
    ]


# --- mutations ------------------------------------------------------------------------------


def _plain_mutation(data: bytes, rng: np.random.Generator, text: bool) -> tuple[str, bytes]:
    """One seeded mutation of uncompressed bytes: (description, mutant)."""
    n = len(data)
    kinds = ["truncate", "flip", "insert", "duplicate range", "zero range", "empty"]
    if text:
        kinds += ["duplicate lines", "shuffle lines", "garbage line", "swap lines",
                  "delete lines", "cut at a line end"]
    kind = str(rng.choice(kinds))
    if kind == "empty" or n == 0:
        return "empty file", b""
    if kind == "truncate":
        k = int(rng.integers(0, n))
        return f"truncate at {k}", data[:k]
    if kind == "flip":
        out = bytearray(data)
        at = sorted(int(x) for x in rng.integers(0, n, int(rng.integers(1, 4))))
        for a in at:
            out[a] ^= int(rng.integers(1, 256))
        return f"flip bytes at {at}", bytes(out)
    if kind == "insert":
        k = int(rng.integers(0, n + 1))
        junk = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        return f"insert {junk!r} at {k}", data[:k] + junk + data[k:]
    if kind == "duplicate range":
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(1, 200)))
        return f"duplicate bytes {a}:{b}", data[:b] + data[a:b] + data[b:]
    if kind == "zero range":
        a = int(rng.integers(0, n))
        b = min(n, a + int(rng.integers(1, 64)))
        return f"zero bytes {a}:{b}", data[:a] + bytes(b - a) + data[b:]
    lines = data.split(b"\n")
    m = len(lines)
    i = int(rng.integers(0, m))
    j = min(m, i + int(rng.integers(1, 20)))
    if kind == "duplicate lines":
        return f"duplicate lines {i}:{j}", b"\n".join(lines[:j] + lines[i:j] + lines[j:])
    if kind == "shuffle lines":
        part = lines[i:j]
        order = rng.permutation(len(part))
        return f"shuffle lines {i}:{j}", b"\n".join(lines[:i] + [part[k] for k in order]
                                                     + lines[j:])
    if kind == "delete lines":
        return f"delete lines {i}:{j}", b"\n".join(lines[:i] + lines[j:])
    if kind == "cut at a line end":
        return f"keep lines :{i}", b"".join(x + b"\n" for x in lines[:i])
    if kind == "swap lines":
        k = int(rng.integers(0, m))
        lines[i], lines[k] = lines[k], lines[i]
        return f"swap lines {i} and {k}", b"\n".join(lines)
    junk = rng.integers(0, 256, int(rng.integers(1, 80)), dtype=np.uint8).tobytes()
    lines[i] = junk
    return f"replace line {i} by {junk!r}", b"\n".join(lines)


def mutate(sample: Sample, rng: np.random.Generator) -> tuple[str, dict[str, bytes]]:
    """A mutant of the sample: (description, files)."""
    files = dict(sample.files)
    target = str(rng.choice(list(sample.targets())))
    data = files[target]
    codec = sample.codec if target == next(iter(files)) else ""
    if codec:
        kind = str(rng.choice(["cut stream", "corrupt stream", "recompress"]))
        if kind == "cut stream":
            k = int(rng.integers(0, len(data)))
            desc, files[target] = f"cut the {codec} stream at {k}", data[:k]
        elif kind == "corrupt stream":
            out = bytearray(data)
            at = sorted(int(x) for x in rng.integers(0, len(data), int(rng.integers(1, 4))))
            for a in at:
                out[a] ^= int(rng.integers(1, 256))
            desc, files[target] = f"flip {codec} bytes at {at}", bytes(out)
        else:
            what, plain = _plain_mutation(_decompress(data, codec), rng, sample.text)
            desc, files[target] = f"{what}, recompressed ({codec})", _compress(plain, codec)
    else:
        desc, files[target] = _plain_mutation(data, rng, sample.text)
    return f"{target}: {desc}", files


# --- running and checking -----------------------------------------------------------------


@contextlib.contextmanager
def time_bound(seconds: int, report_fd: int) -> Iterator[None]:
    """Raise MutantTimeout after ``seconds``; a compiled loop that never returns to Python
    is caught by faulthandler, which dumps the stacks to ``report_fd`` and ends the process."""

    def expire(signum: int, frame: Any) -> None:
        raise MutantTimeout(f"import ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    with os.fdopen(os.dup(report_fd), "w") as report:
        faulthandler.dump_traceback_later(3 * seconds, exit=True, file=report)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            faulthandler.cancel_dump_traceback_later()


def run_cli(argv: list[str]) -> tuple[int, str]:
    """The CLI's exit status and everything it printed, Python's and native code's (what a
    Rust or C library writes straight to file descriptors 1 and 2) alike."""
    out, err = io.StringIO(), io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as native:
        os.dup2(native.fileno(), 1)
        os.dup2(native.fileno(), 2)
        try:
            with time_bound(TIME_LIMIT_S, saved[1]), contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(err):
                rc = main(argv)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        native.seek(0)
        raw = native.read().decode("utf-8", errors="replace")
    return rc, out.getvalue() + err.getvalue() + raw


def _num(text: str) -> int:
    return int(text.replace(",", ""))


def check_success(output: str, store: Path, *, partial: bool, rows: int | None) -> None:
    """An exit-0 import: ledgers add up, every written event is in the store, nothing more."""
    lines = output.splitlines()
    heads = [m for m in map(LEDGER.match, lines) if m]
    assert len(heads) == 1, "no (or several) ledger lines"
    h = {k: (_num(v) if k not in ("src", "unit") else v) for k, v in heads[0].groupdict().items()}
    assert h["read"] == h["imported"] + h["rejected"], "rows: read != imported + rejected"
    assert h["made"] == h["written"] + h["ev_rejected"], "events: made != written + rejected"
    by_unit: dict[str, int] = {}
    for m in filter(None, map(REJ_ROWS.match, lines)):
        by_unit[m["unit"]] = by_unit.get(m["unit"], 0) + _num(m["n"])
    assert by_unit.get("events", 0) == h["ev_rejected"], "event reasons do not add up"
    assert sum(v for k, v in by_unit.items() if k != "events") == h["rejected"], \
        "row reasons do not add up"
    if rows is not None:
        assert h["read"] == rows, f"read {h['read']} rows, the file has {rows}"
    if not partial:
        assert "damaged input" not in output, "damage reported without --allow-partial"
    wrote = [m for m in map(WROTE.match, lines) if m]
    assert sum(_num(m["n"]) for m in wrote) == h["written"], "wrote-lines != events written"
    on_disk = sorted(p for p in store_files(store) if p.is_file())
    assert on_disk == sorted(Path(m["path"]) for m in wrote), "store files != wrote-lines"
    for m in wrote:
        assert pq.ParquetFile(m["path"]).metadata.num_rows == _num(m["n"])


def check_failure(output: str, store: Path) -> None:
    lines = [x for x in output.splitlines() if x.strip()]
    assert len(lines) == 1, "a failed import printed more (or less) than one line"
    assert lines[0].startswith("hftlab: error: "), "the error line is not hftlab's"
    left = store_files(store)
    assert not left, f"a failed import left {left[:3]} in the store"


def exercise(sample: Sample, files: dict[str, bytes], folder: Path, fmt: str,
             rows: int | None) -> str:
    """Import one mutant (and again with --allow-partial when the error offers it); returns
    what happened, for the summary. Raises AssertionError naming the broken promise."""
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    paths = [str(folder / next(iter(files)))]
    base = ["data", "import", fmt, *paths, *sample.args]
    store = folder / "store"
    rc, output = run_cli([*base, "--store", str(store)])
    assert "Traceback" not in output, "a traceback"
    if rc != 0:
        check_failure(output, store)
        if "--allow-partial" not in output:
            return "error"
        store2 = folder / "store_partial"
        rc, output = run_cli([*base, "--store", str(store2), "--allow-partial"])
        assert "Traceback" not in output, "a traceback (--allow-partial)"
        if rc != 0:
            check_failure(output, store2)
            return "error, then error with --allow-partial"
        check_success(output, store2, partial=True, rows=rows)
        return "error, then partial import"
    check_success(output, store, partial="--allow-partial" in sample.args, rows=rows)
    return "imported"


def _rows_of(sample: Sample, files: dict[str, bytes]) -> int | None:
    """The source's own row count of the imported file, when it can be told."""
    if sample.rows is None:
        return None
    data = files[next(iter(files))]
    try:
        plain = _decompress(data, sample.codec)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError):
        return None
    if sample.codec == "gz" and not _whole_gzip(data):
        return None
    return sample.rows(plain)


def _whole_gzip(data: bytes) -> bool:
    """The data is complete gzip members with nothing after them."""
    try:
        d = zlib.decompressobj(wbits=31)
        d.decompress(data)
        return d.eof and not d.unused_data
    except zlib.error:
        return False


def _run_sample(sample: Sample, tmp_path: Path) -> None:
    rng = np.random.default_rng([SEED, *sample.name.encode()])
    failures = []
    for k in range(N_MUTANTS):
        desc, files = mutate(sample, rng)
        folder = tmp_path / f"m{k:04d}"
        try:
            exercise(sample, files, folder, sample.fmt, _rows_of(sample, files))
        except (Exception, MutantTimeout) as exc:
            failures.append(f"mutant {k} ({desc}) in {folder}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures[:10])


def _run_wrong_formats(sample: Sample, tmp_path: Path) -> None:
    """Another importer refuses the sample: one error line (even with --allow-partial)."""
    failures = []
    for fmt in sorted(IMPORTERS):
        if fmt == sample.fmt:
            continue
        try:
            what = exercise(Sample(sample.name, fmt, sample.files), sample.files,
                            tmp_path / fmt, fmt, None)
            assert what in ("error", "error, then error with --allow-partial"), what
        except (Exception, MutantTimeout) as exc:
            failures.append(f"{sample.name} imported as {fmt}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


SYNTHETIC = synthetic_samples()


@pytest.mark.parametrize("sample", SYNTHETIC, ids=[s.name for s in SYNTHETIC])
def test_generated_sample_and_its_mutants_import_cleanly(sample: Sample, tmp_path: Path) -> None:
    assert exercise(sample, sample.files, tmp_path / "clean", sample.fmt,
                    _rows_of(sample, sample.files)) == "imported"
    _run_sample(sample, tmp_path)


@pytest.mark.parametrize("sample", SYNTHETIC, ids=[s.name for s in SYNTHETIC])
def test_generated_sample_given_to_every_other_importer_fails_cleanly(
    sample: Sample, tmp_path: Path
) -> None:
    _run_wrong_formats(sample, tmp_path)


@pytest.mark.shared_data
@pytest.mark.parametrize("index", range(len(DEMO_SAMPLES)),
                         ids=[re.sub(r"\W+", "_", w.lower())[:30] for w, _, _ in DEMO_SAMPLES])
def test_demo_sample_and_its_mutants_import_cleanly(
    index: int, shared_data: Path, tmp_path: Path
) -> None:
    sample = demo_samples(shared_data)[index]
    assert exercise(sample, sample.files, tmp_path / "clean", sample.fmt,
                    _rows_of(sample, sample.files)) == "imported"
    _run_sample(sample, tmp_path)
    _run_wrong_formats(sample, tmp_path / "wrong")
