"""Tardis.dev CSV "datasets" importer (format ``"tardis"``); plain or gzip'd CSV.

The dataset kind comes from the header (and must agree with a kind named in the file name):

``incremental_book_L2`` (``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,``
``price,amount``)
    One ``KIND_LEVEL`` per row (``bid`` BUY, ``ask`` SELL; amount 0 removes the level).
    ``is_snapshot=true`` rows get ``FLAG_SNAPSHOT``; a run of them starting the file or
    following incremental rows is a fresh snapshot and is preceded by an implied
    ``KIND_CLEAR`` (``FLAG_SNAPSHOT | FLAG_IMPLIED``). Rows sharing a ``local_timestamp``
    form one message: ``FLAG_LAST`` on the last of them.
``trades`` (``...,id,side,price,amount``)
    ``KIND_TRADE``; side = aggressor (``buy``/``sell``; ``unknown`` -> ``NO_SIDE``);
    ``order_id`` = the id if it is a number below 2**63, else a stable 63-bit BLAKE2b hash
    of it (bit 63 stays clear: that bit marks synthetic ids).
``book_snapshot_N`` (``asks[i].price,asks[i].amount,bids[i].price,bids[i].amount``)
    Each row is a full top-N book: ``KIND_CLEAR`` (implied) + one ``KIND_LEVEL`` per
    non-empty level, all ``FLAG_SNAPSHOT``.
``quotes`` (``ask_amount,ask_price,bid_price,bid_amount``)
    Two ``KIND_BBO`` (bid BUY, ask SELL); an empty side is skipped.

Timestamps are µs since the epoch: ``exch_ts = timestamp``, ``local_ts = local_timestamp``
(ns). Venue = the exchange upper-cased with ``-`` -> ``_`` (``binance-futures`` ->
``BINANCE_FUTURES``); symbol as given (characters outside ``A-Za-z0-9._-`` become ``-``).
A file holding several symbols gives one instrument each. Prices and amounts are parsed
exactly from the text (exponent forms such as ``1e-05`` included). Tick/lot size:
``--tick-size``/``--lot-size``, else the finest power-of-ten grid the data uses (so
Deribit's 0.5 tick shows as 0.1: pass ``--tick-size 0.5`` to store the venue grid).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.core.errors import FormatError
from framework.core.events import (
    BUY,
    FLAG_IMPLIED,
    FLAG_SNAPSHOT,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    NO_SIDE,
    SELL,
)
from framework.ingest.assemble import Batch, assemble, make_batch, snapshot_groups
from framework.ingest.base import ImportOptions, ImportReport, ImportResult, require_files
from framework.ingest.csv_text import LINE, drop_rows, int_column, read_csv_text
from framework.ingest.decimal_text import Scaled, parse_decimals
from framework.ingest.rawfile import read_input

_KEY = ("exchange", "symbol", "timestamp", "local_timestamp")
KINDS: dict[str, tuple[str, ...]] = {
    "incremental_book_L2": (*_KEY, "is_snapshot", "side", "price", "amount"),
    "trades": (*_KEY, "id", "side", "price", "amount"),
    "quotes": (*_KEY, "ask_amount", "ask_price", "bid_price", "bid_amount"),
    "book_snapshot_N": (*_KEY, "asks[0].price", "asks[0].amount", "bids[0].price",
                        "bids[0].amount", "..."),
}
_SNAP_COL = re.compile(r"^(asks|bids)\[(\d+)\]\.(price|amount)$")


def _detect(path: Path, columns: list[str]) -> str:
    """The dataset kind named by the header; FormatError listing the known headers."""
    cols = set(columns)
    found = None
    for kind, want in KINDS.items():
        if kind != "book_snapshot_N" and set(want) <= cols:
            found = kind
    if found is None and set(_KEY) <= cols and any(_SNAP_COL.match(c) for c in columns):
        found = "book_snapshot_N"
    named = next((k for k in ("incremental_book_L2", "trades", "quotes", "book_snapshot")
                  if k in path.name), None)
    if found is None or (named and not found.startswith(named)):
        expected = "; ".join(f"{k}: {','.join(v)}" for k, v in KINDS.items())
        what = f"a Tardis {named} file" if named else "a Tardis CSV dataset"
        msg = (f"{path}: header {','.join(columns)[:200]!r} is not {what}; expected the "
               f"columns of one of: {expected}")
        raise FormatError(msg)
    return found


def _venue(exchange: str) -> str:
    return re.sub(r"[^A-Z0-9._]", "_", exchange.strip().upper()) or "UNKNOWN"


def _symbol(symbol: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]", "-", symbol.strip()).strip("-._")
    return s or "UNKNOWN"


def _currency(symbol: str) -> str:
    base = re.sub(r"[-_](PERPETUAL|PERP|SWAP)$", "", symbol.upper())
    for ccy in ("USDT", "USDC", "BUSD", "USD", "BTC", "ETH", "EUR"):
        if base.endswith(ccy) and len(base.rstrip("-_")) > len(ccy):
            return ccy
    return "USD"


def _order_ids(ids: pl.Series) -> npt.NDArray[np.uint64]:
    """Numeric ids as they are; any other id hashed to a stable 63-bit number; none: 0."""
    num = ids.str.strip_chars().cast(pl.UInt64, strict=False)
    ok = num.is_not_null() & (num.fill_null(0) < 2**63)
    out = num.fill_null(0).to_numpy().astype(np.uint64)
    given = (ids.fill_null("").str.strip_chars() != "").to_numpy()
    for i in np.flatnonzero(~ok.to_numpy() & given):
        h = hashlib.blake2b(str(ids[int(i)]).encode(), digest_size=8).digest()
        out[i] = int.from_bytes(h, "big") & (2**63 - 1)
    return out


def _rows(n: int) -> npt.NDArray[np.int64]:
    return np.arange(n, dtype=np.int64)


def _build(kind: str, df: pl.DataFrame, ts: Any, lts: Any, report: ImportReport) -> list[dict]:
    """Column groups of one instrument's rows."""
    n = len(df)
    rows = _rows(n)
    line = df[LINE].to_numpy().astype(np.int64)
    base = {"local_ts": lts, "exch_ts": ts, "line": line}
    if kind == "incremental_book_L2":
        side = df["side"].str.strip_chars().str.to_lowercase()
        sd = side.replace_strict({"bid": BUY, "buy": BUY, "ask": SELL, "sell": SELL},
                                 default=0, return_dtype=pl.Int8).to_numpy()
        snap = df["is_snapshot"].str.strip_chars().str.to_lowercase().is_in(["true", "1"])
        snap_np = snap.to_numpy()
        new = np.ones(n, np.bool_)
        new[1:] = lts[1:] != lts[:-1]
        msg = np.cumsum(new, dtype=np.int64)
        levels = {**base, "price": parse_decimals(df["price"]),
                  "qty": parse_decimals(df["amount"]), "order_id": np.zeros(n),
                  "kind": np.full(n, KIND_LEVEL), "side": sd,
                  "flags": np.where(snap_np, FLAG_SNAPSHOT, 0), "msg": msg, "pos": 2 * rows + 1}
        clears = snapshot_groups(n=n, snap=snap_np, msg=msg, local_ts=lts, exch_ts=ts,
                                 order_id=np.zeros(n, np.uint64))
        clears["line"] = line[clears["pos"] // 2]
        return [clears, levels]
    if kind == "trades":
        side = df["side"].str.strip_chars().str.to_lowercase()
        sd = side.replace_strict({"buy": BUY, "sell": SELL}, default=NO_SIDE,
                                 return_dtype=pl.Int8).to_numpy()
        return [{**base, "price": parse_decimals(df["price"]),
                 "qty": parse_decimals(df["amount"]), "order_id": _order_ids(df["id"]),
                 "kind": np.full(n, KIND_TRADE), "side": sd, "flags": np.zeros(n),
                 "msg": rows, "pos": rows}]
    if kind == "quotes":
        out = []
        for j, (s, p, a) in enumerate(((BUY, "bid_price", "bid_amount"),
                                       (SELL, "ask_price", "ask_amount"))):
            has = (df[p].fill_null("").str.strip_chars() != "").to_numpy()
            out.append({"local_ts": lts[has], "exch_ts": ts[has], "line": line[has],
                        "price": parse_decimals(df[p].filter(pl.Series(has))),
                        "qty": parse_decimals(df[a].filter(pl.Series(has))),
                        "order_id": np.zeros(int(has.sum())),
                        "kind": np.full(int(has.sum()), KIND_BBO),
                        "side": np.full(int(has.sum()), s), "flags": np.zeros(int(has.sum())),
                        "msg": rows[has], "pos": 2 * rows[has] + j})
        return out
    # book_snapshot_N: row r -> CLEAR at pos r*K, levels after it
    levels_cols: list[tuple[int, int, str, str]] = []  # (side, level, price col, amount col)
    for c in df.columns:
        m = _SNAP_COL.match(c)
        if m and m.group(3) == "price":
            amt = f"{m.group(1)}[{m.group(2)}].amount"
            if amt in df.columns:
                levels_cols.append((BUY if m.group(1) == "bids" else SELL, int(m.group(2)),
                                    c, amt))
    levels_cols.sort(key=lambda t: (-t[0], t[1]))  # bids first, then asks, by level
    k = len(levels_cols) + 1
    out = [{**base, "price": Scaled.zeros(n), "qty": Scaled.zeros(n), "order_id": np.zeros(n),
            "kind": np.full(n, KIND_CLEAR), "side": np.zeros(n),
            "flags": np.full(n, FLAG_SNAPSHOT | FLAG_IMPLIED), "msg": rows, "pos": rows * k}]
    for j, (s, _lvl, pc, ac) in enumerate(levels_cols, 1):
        has = (df[pc].fill_null("").str.strip_chars() != "").to_numpy()
        m_ = int(has.sum())
        out.append({"local_ts": lts[has], "exch_ts": ts[has], "line": line[has],
                    "price": parse_decimals(df[pc].filter(pl.Series(has))),
                    "qty": parse_decimals(df[ac].filter(pl.Series(has))),
                    "order_id": np.zeros(m_), "kind": np.full(m_, KIND_LEVEL),
                    "side": np.full(m_, s), "flags": np.full(m_, FLAG_SNAPSHOT),
                    "msg": rows[has], "pos": rows[has] * k + j})
    return out


_US_LIMIT = (1 << 63) // 1_000  # µs times that still fit int64 ns
_MAX_CLOCK_DRIFT_US = 3_600 * 1_000_000  # receive vs exchange time, beyond the file's usual


def _import_file(path: Path, report: ImportReport) -> list[Batch]:
    df = read_csv_text(path, read_input(path, report), report)
    kind = _detect(path, [c for c in df.columns if c != LINE])
    _, bad = int_column(df, "timestamp")
    _, bad2 = int_column(df, "local_timestamp")
    df = drop_rows(df, bad | bad2, report, "unparseable timestamp", damaged=True)
    ts, _ = int_column(df, "timestamp")
    lts, _ = int_column(df, "local_timestamp")
    df = drop_rows(df, (ts < 0) | (ts >= _US_LIMIT) | (lts < 0) | (lts >= _US_LIMIT), report,
                   "timestamp out of range", damaged=True)
    ts, _ = int_column(df, "timestamp")
    lts, _ = int_column(df, "local_timestamp")
    if len(ts):  # a time that disagrees with its row's other time by far more than usual
        off = lts - ts
        drift = np.abs(off - int(np.median(off))) > _MAX_CLOCK_DRIFT_US
        df = drop_rows(df, drift, report, "local_timestamp more than an hour off the timestamp "
                       "(the file's other rows agree within it)", damaged=True)
    if kind == "incremental_book_L2":
        side = df["side"].str.strip_chars().str.to_lowercase()
        df = drop_rows(df, (~side.is_in(["bid", "ask", "buy", "sell"])).to_numpy(), report,
                       "unknown book side (expected bid/ask)", damaged=True)
    if kind == "quotes":
        empty = ((df["bid_price"].fill_null("").str.strip_chars() == "")
                 & (df["ask_price"].fill_null("").str.strip_chars() == "")).to_numpy()
        df = drop_rows(df, empty, report, "quote with neither bid nor ask")
    report.rows_imported = (report.rows_imported or 0) + df.height
    batches = []
    keys = df.select(pl.col("exchange").str.strip_chars(), pl.col("symbol").str.strip_chars())
    pairs = list(dict.fromkeys(zip(keys["exchange"].to_list(), keys["symbol"].to_list(),
                                   strict=True)))
    for exch, sym in pairs:
        m = ((keys["exchange"] == exch) & (keys["symbol"] == sym)).to_numpy()
        sub = df.filter(pl.Series(m))
        ts, _ = int_column(sub, "timestamp")
        lts, _ = int_column(sub, "local_timestamp")
        groups = _build(kind, sub, ts * 1_000, lts * 1_000, report)
        batches.append(make_batch(venue=_venue(exch or "UNKNOWN"), symbol=_symbol(sym or ""),
                                  currency=_currency(sym or ""), source=str(path),
                                  groups=groups))
    return batches


def import_tardis(paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Import Tardis.dev CSV datasets (see the module doc for each kind's mapping)."""
    files = require_files(paths)
    report = ImportReport(source=", ".join(p.name for p in files))
    batches: list[Batch] = []
    for path in files:
        batches += _import_file(path, report)
    return assemble(batches, opts, report)
