"""Binance importer: raw websocket captures and NautilusTrader's Binance fixtures.

``import_binance(paths, opts)`` (format ``"binance"``) detects each file's kind from its bytes:

Raw websocket capture (hftbacktest's collector; gzip or plain text)
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

NautilusTrader depth CSV
    Columns ``symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty[,pu]``;
    ms timestamps (``local_ts = exch_ts``); each row -> ``KIND_LEVEL`` (``b`` BUY, ``a``
    SELL); ``snap`` rows get ``FLAG_SNAPSHOT`` and a run of them starts with an implied
    ``KIND_CLEAR``; rows sharing ``(timestamp, last_update_id)`` are one message;
    ``order_id = last_update_id``. Venue ``BINANCE_USDM`` when a ``pu`` column is present.

NautilusTrader Parquet: trades (``timestamp,trade_id,price,quantity,buyer_maker``) ->
    ``KIND_TRADE`` (buyer maker: SELL aggressor), quotes (``timestamp,symbol,ask_size,ask,
    bid_size,bid``) -> two ``KIND_BBO``. Venue ``BINANCE``; symbol from the ``symbol``
    column (``BTC/USDT`` -> ``BTCUSDT``) or the file name (``btcusdt-trades`` -> ``BTCUSDT``).
    Float columns are snapped to the coarsest decimal grid (<= 12 places) they sit on.

Prices and sizes are parsed exactly from their decimal text (no float rounding). Tick and
lot size: ``--tick-size``/``--lot-size``, else the finest power-of-ten grid the data uses
(BTCUSDT spot 0.01 / 0.00001, USD-M 0.1 / 0.001); off-grid values are rejected. Output is
split by UTC day of ``local_ts``.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from framework.core.errors import ConfigError, DataError, FormatError
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    FLAG_IMPLIED,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_BBO,
    KIND_CLEAR,
    KIND_LEVEL,
    KIND_TRADE,
    SELL,
)
from framework.core.timeutil import NS_PER_DAY, date_from_name, ns_to_date
from framework.ingest.base import (
    DayData,
    ImportOptions,
    ImportReport,
    ImportResult,
    require_files,
    resolve_instrument,
    validate_events,
)

I64 = npt.NDArray[np.int64]
_MAX_SCALE = 18  # int64 holds 18 decimal digits safely
_POS_SHIFT = 24  # event position = line << 24 | index within the line's emission


# --- exact decimals -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scaled:
    """Exact decimals as integers: ``value * 10**-scale``; ``bad`` marks unparseable ones."""

    value: I64
    scale: int
    bad: npt.NDArray[np.bool_]

    @staticmethod
    def zeros(n: int) -> Scaled:
        return Scaled(np.zeros(n, np.int64), 0, np.zeros(n, np.bool_))

    def rescaled(self, scale: int) -> Scaled:
        """The same numbers at a finer ``scale`` (values that would overflow become bad)."""
        if scale == self.scale:
            return self
        mul = 10 ** (scale - self.scale)
        lim = np.iinfo(np.int64).max // mul
        over = np.abs(self.value) > lim
        value = np.where(over, 0, self.value) * mul
        return Scaled(value.astype(np.int64), scale, self.bad | over)

    def significant_scale(self) -> int:
        """Fewest decimals that still represent every good value exactly."""
        v = self.value[~self.bad]
        v = v[v != 0]
        d = self.scale
        while d > 0 and v.size and not np.any(v % (10 ** (self.scale - d + 1))):
            d -= 1
        return d if v.size else 0


_DEC_RE = r"^[+-]?(\d+\.?\d*|\.\d+)$"


def parse_decimals(values: Sequence[str | None] | pl.Series) -> Scaled:
    """Parse decimal strings exactly (vectorised; exponent forms fall back to Decimal).

    >>> s = parse_decimals(["61837.63000000", "0.1", "-2", "x"])
    >>> s.value.tolist(), s.scale, s.bad.tolist()
    ([6183763, 10, -200, 0], 2, [False, False, False, True])
    """
    s = values if isinstance(values, pl.Series) else pl.Series("s", values, dtype=pl.String)
    df = pl.DataFrame({"s": s.cast(pl.String).str.strip_chars()})
    df = df.with_columns(
        ok=pl.col("s").str.contains(_DEC_RE).fill_null(False),
        expo=pl.col("s").str.contains(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$").fill_null(False),
        neg=pl.col("s").str.starts_with("-").fill_null(False),
    ).with_columns(
        ip=pl.col("s").str.extract(r"^[+-]?(\d*)", 1).str.strip_chars_start("0"),
        fr=pl.col("s").str.extract(r"\.(\d*)$", 1).fill_null("").str.strip_chars_end("0"),
    )
    ok = df["ok"].to_numpy()
    fr_len = df["fr"].str.len_chars().to_numpy()
    ip_len = df["ip"].fill_null("").str.len_chars().to_numpy()
    scale = int(fr_len[ok].max()) if ok.any() else 0
    bad = ~ok | (ip_len + scale > _MAX_SCALE)
    if scale > _MAX_SCALE:
        msg = f"decimal values with {scale} fractional digits do not fit int64 at full precision"
        raise DataError(msg)
    good = pl.Series(~bad)
    ip = df["ip"].fill_null("").zip_with(good, pl.Series(["0"] * len(df)))
    ipv = ip.replace("", "0").cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    value = ipv * (10**scale)
    if scale:
        frs = df["fr"].zip_with(good, pl.Series([""] * len(df))).str.pad_end(scale, "0")
        value = value + frs.cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    value = np.where(df["neg"].to_numpy(), -value, value).astype(np.int64)
    out = Scaled(value, scale, bad)
    expo = df["expo"].to_numpy()
    if expo.any():
        out = _merge_exponents(out, df["s"].to_numpy()[expo], np.flatnonzero(expo))
    return out


def _merge_exponents(base: Scaled, texts: Any, where: npt.NDArray[np.intp]) -> Scaled:
    """Fold exponent-form numbers (``1e-05``, as Tardis writes tiny sizes) into ``base``."""
    decs = [Decimal(str(t)).normalize() for t in texts]
    exps = [int(d.as_tuple().exponent) for d in decs]
    scale = max(base.scale, *(max(0, -e) for e in exps))
    scale = min(scale, _MAX_SCALE)
    out = base.rescaled(scale)
    value, bad = out.value.copy(), out.bad.copy()
    for i, d in zip(where, decs, strict=True):
        q = d.scaleb(scale)
        ok = q == q.to_integral_value() and abs(q) < 2**63
        value[i] = int(q) if ok else 0
        bad[i] = not ok
    return Scaled(value, scale, bad)


def floats_to_scaled(x: npt.ArrayLike, max_scale: int = 12) -> Scaled:
    """Snap floats to the coarsest decimal grid (<= ``max_scale`` places) each sits on.

    A float such as ``0.00031099999999999997`` is ``0.000311`` written by binary arithmetic;
    it is taken as 311e-6. Values on no grid up to ``max_scale`` are bad.

    >>> s = floats_to_scaled([39432.48, 0.00031099999999999997, 2.0])
    >>> s.value.tolist(), s.scale
    ([39432480000, 311, 2000000], 6)
    """
    a = np.asarray(x, dtype=np.float64)
    need = np.full(a.shape, -1, np.int64)
    finite = np.isfinite(a)
    for d in range(max_scale + 1):
        v = a * 10.0**d
        r = np.rint(v)
        hit = finite & (need < 0) & (np.abs(v - r) <= 1e-6 + 4 * np.spacing(np.abs(v)))
        need[hit] = d
    bad = need < 0
    scale = int(need[~bad].max()) if (~bad).any() else 0
    v = np.where(bad, 0.0, a) * 10.0**scale
    over = np.abs(v) >= 9.2e18
    bad |= over
    return Scaled(np.rint(np.where(over, 0.0, v)).astype(np.int64), scale, bad)


def concat_scaled(parts: Sequence[Scaled]) -> Scaled:
    """Concatenate at the finest scale among ``parts``."""
    if not parts:
        return Scaled.zeros(0)
    scale = max(p.scale for p in parts)
    rs = [p.rescaled(scale) for p in parts]
    return Scaled(
        np.concatenate([p.value for p in rs]), scale, np.concatenate([p.bad for p in rs])
    )


def step_of_scale(scale: int) -> Decimal:
    """``10**-scale`` as a Decimal (the grid a value with ``scale`` decimals sits on)."""
    return Decimal(1).scaleb(-scale)


def to_grid(s: Scaled, step: Decimal) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Integer multiples of ``step``; second array marks values off the grid (or bad)."""
    exp = step.normalize().as_tuple().exponent
    scale = max(s.scale, -int(exp) if isinstance(exp, int) else 0)
    s = s.rescaled(scale)
    unit = step.scaleb(scale)
    if unit != unit.to_integral_value():
        msg = f"step {step} is finer than {step_of_scale(scale)}"
        raise ConfigError(msg)
    u = int(unit)
    q, r = np.divmod(s.value, u)
    return q.astype(np.int64), (r != 0) | s.bad


# --- event batches and the shared assembly step ----------------------------------------


@dataclass
class Batch:
    """Events of one instrument from one file, prices and sizes still exact decimals.

    ``msg`` numbers source messages (FLAG_LAST goes on the last event of each); ``pos`` is
    the source order used to break ``local_ts`` ties.
    """

    venue: str
    symbol: str
    currency: str
    source: str
    local_ts: I64
    exch_ts: I64
    price: Scaled
    qty: Scaled
    order_id: npt.NDArray[np.uint64]
    kind: npt.NDArray[np.uint8]
    side: npt.NDArray[np.int8]
    flags: npt.NDArray[np.uint32]
    msg: I64
    pos: I64
    hint_dates: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.local_ts)


def make_batch(
    *, venue: str, symbol: str, currency: str, source: str, groups: Sequence[dict[str, Any]]
) -> Batch:
    """Concatenate column groups (dicts of equal-length arrays) into a :class:`Batch`."""
    def col(name: str, dtype: Any) -> Any:
        return np.concatenate([np.asarray(g[name], dtype=dtype) for g in groups]) if groups \
            else np.zeros(0, dtype)

    return Batch(
        venue=venue, symbol=symbol, currency=currency, source=source,
        local_ts=col("local_ts", np.int64), exch_ts=col("exch_ts", np.int64),
        price=concat_scaled([g["price"] for g in groups]),
        qty=concat_scaled([g["qty"] for g in groups]),
        order_id=col("order_id", np.uint64), kind=col("kind", np.uint8),
        side=col("side", np.int8), flags=col("flags", np.uint32),
        msg=col("msg", np.int64), pos=col("pos", np.int64),
    )


def assemble(
    batches: Sequence[Batch], opts: ImportOptions, report: ImportReport
) -> ImportResult:
    """Group batches by instrument, fix the grids, sort, flag, validate and split by day."""
    groups: dict[tuple[str, str], list[Batch]] = {}
    for b in batches:
        groups.setdefault((b.venue, b.symbol), []).append(b)
    days: list[DayData] = []
    instruments = []
    for (venue, symbol), all_bs in groups.items():
        bs = [b for b in all_bs if len(b)]
        if not bs:
            continue
        price = concat_scaled([b.price for b in bs])
        qty = concat_scaled([b.qty for b in bs])
        kind = np.concatenate([b.kind for b in bs])
        # message ids and positions are per file: offset them so files never collide
        msg_off = np.cumsum([0] + [int(b.msg.max()) + 1 for b in bs[:-1]])
        msg = np.concatenate([b.msg + o for b, o in zip(bs, msg_off, strict=True)])
        ev = np.zeros(len(kind), EVENT_DTYPE)
        ev["local_ts"] = np.concatenate([b.local_ts for b in bs])
        ev["exch_ts"] = np.concatenate([b.exch_ts for b in bs])
        ev["order_id"] = np.concatenate([b.order_id for b in bs])
        ev["kind"] = kind
        ev["side"] = np.concatenate([b.side for b in bs])
        ev["flags"] = np.concatenate([b.flags for b in bs])
        file_no = np.concatenate([np.full(len(b), i, np.int64) for i, b in enumerate(bs)])
        pos = np.concatenate([b.pos for b in bs])

        priced = kind != KIND_CLEAR
        tick = _step_option(opts, "tick_size") or step_of_scale(
            _masked(price, priced).significant_scale())
        lot = _step_option(opts, "lot_size") or step_of_scale(
            _masked(qty, priced).significant_scale())
        inst = resolve_instrument(
            opts, symbol=symbol, venue=venue,
            defaults={"asset_class": "crypto", "currency": bs[0].currency,
                      "tick_size": tick, "lot_size": lot},
        )
        ev["price"], poff = to_grid(price, inst.tick_size)
        ev["qty"], qoff = to_grid(qty, inst.lot_size)
        unparsed = price.bad | qty.bad
        keep = ~unparsed
        report.reject("unparseable price or quantity", int(np.count_nonzero(unparsed)))
        bad = keep & poff
        report.reject(f"price off the {inst.tick_size} tick grid of {inst.key}",
                      int(np.count_nonzero(bad)))
        keep &= ~bad
        bad = keep & qoff
        report.reject(f"quantity off the {inst.lot_size} lot grid of {inst.key}",
                      int(np.count_nonzero(bad)))
        keep &= ~bad
        bad = keep & (ev["qty"] < 0)
        report.reject("negative quantity", int(np.count_nonzero(bad)))
        keep &= ~bad
        bad = keep & (kind == KIND_TRADE) & (ev["qty"] == 0)
        report.reject("trade with zero quantity", int(np.count_nonzero(bad)))
        keep &= ~bad

        src_order = np.lexsort((pos, file_no))
        if np.any(np.diff(ev["local_ts"][src_order]) < 0):
            report.note(f"{inst.key}: events re-sorted by local_ts (source not in receive order)")
        order = np.lexsort((pos, file_no, ev["local_ts"]))
        order = order[keep[order]]
        ev, msg = ev[order], msg[order]
        if len(ev):
            last = np.ones(len(ev), np.bool_)
            last[:-1] = msg[1:] != msg[:-1]
            ev["flags"][last] |= FLAG_LAST
        ev = validate_events(ev, report, l3=False)
        instruments.append(inst)
        days += _split_days(ev, inst, opts, report, bs)
    return ImportResult(days=days, report=report, instruments=instruments)


def _masked(s: Scaled, m: npt.NDArray[np.bool_]) -> Scaled:
    return Scaled(s.value[m], s.scale, s.bad[m])


def _step_option(opts: ImportOptions, key: str) -> Decimal | None:
    raw = opts.get(key)
    if raw is None:
        return None
    try:
        d = Decimal(str(raw))
    except InvalidOperation as exc:
        msg = f"--{key.replace('_', '-')} {raw!r} is not a number; give a decimal such as 0.01"
        raise ConfigError(msg) from exc
    if not d.is_finite() or d <= 0:
        msg = f"--{key.replace('_', '-')} {raw!r} must be a positive number"
        raise ConfigError(msg)
    return d.normalize()


def _split_days(
    ev: Any, inst: Any, opts: ImportOptions, report: ImportReport, bs: Sequence[Batch]
) -> list[DayData]:
    if len(ev) == 0:
        report.note(f"{inst.key}: no events survived; nothing to store")
        return []
    day_no = ev["local_ts"] // NS_PER_DAY
    uniq = np.unique(day_no)
    if len(uniq) == 1:
        date = ns_to_date(int(uniq[0]) * NS_PER_DAY)
        if opts.date is not None and opts.date != date:
            report.note(f"{inst.key}: --date {opts.date} used although local_ts is on {date}")
            date = opts.date
        for b in bs:
            named = date_from_name(Path(b.source).name)
            if named is not None and named != date:
                report.note(f"{b.source}: name says {named} but local_ts is on {date} (UTC)")
        return [DayData(instrument=inst, date=date, events=ev)]
    if opts.date is not None:
        report.note(f"{inst.key}: data spans {len(uniq)} UTC days; --date ignored, split by day")
    else:
        report.note(f"{inst.key}: data spans {len(uniq)} UTC days; split by UTC day of local_ts")
    return [
        DayData(instrument=inst, date=ns_to_date(int(d) * NS_PER_DAY), events=ev[day_no == d])
        for d in uniq
    ]


# --- file access ----------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    """Whole file, gunzipped if it starts with the gzip magic; corrupt gzip -> FormatError."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            msg = f"{path}: gzip data is corrupt ({exc}); re-download the file"
            raise FormatError(msg) from exc
    return data


_CAPTURE_RE = re.compile(rb"^\d{10,20} [\[{]")
NAUTILUS_DEPTH_COLS = ("symbol", "timestamp", "first_update_id", "last_update_id", "side",
                       "update_type", "price", "qty")




def read_csv_text(path: Path, data: bytes) -> pl.DataFrame:
    """A CSV as all-string columns (so decimals stay exact); unreadable -> FormatError."""
    import io

    try:
        return pl.read_csv(io.BytesIO(data), infer_schema=False, raise_if_empty=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        msg = f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); check the file"
        raise FormatError(msg) from exc


def drop_rows(
    df: pl.DataFrame, bad: npt.NDArray[np.bool_], report: ImportReport, reason: str
) -> pl.DataFrame:
    """Drop source rows where ``bad`` is true, counting them under ``reason``."""
    n = int(np.count_nonzero(bad))
    if n == 0:
        return df
    report.reject(reason, n)
    return df.filter(pl.Series(~bad))


def int_column(df: pl.DataFrame, name: str) -> tuple[I64, npt.NDArray[np.bool_]]:
    """An all-digit string column as int64 and a mask of values that are not integers."""
    s = df[name].str.strip_chars().cast(pl.Int64, strict=False)
    bad = s.is_null().to_numpy()
    return s.fill_null(0).to_numpy().astype(np.int64), bad


def runs_start(flag: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """True where a run of true values starts."""
    start = flag.copy()
    start[1:] &= ~flag[:-1]
    return start


def snapshot_groups(
    *, n: int, snap: npt.NDArray[np.bool_], msg: I64, local_ts: I64, exch_ts: I64,
    order_id: npt.NDArray[np.uint64],
) -> dict[str, Any]:
    """The implied ``KIND_CLEAR`` events before each run of snapshot rows (row i -> pos 2i)."""
    start = np.flatnonzero(runs_start(snap))
    m = len(start)
    return {
        "local_ts": local_ts[start], "exch_ts": exch_ts[start], "price": Scaled.zeros(m),
        "qty": Scaled.zeros(m), "order_id": order_id[start],
        "kind": np.full(m, KIND_CLEAR), "side": np.zeros(m),
        "flags": np.full(m, FLAG_SNAPSHOT | FLAG_IMPLIED), "msg": msg[start], "pos": 2 * start,
    }


# --- raw websocket captures -----------------------------------------------------------------


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
    rows: int = 0
    backwards: int = 0


def _scan_capture(lines: list[str], report: ImportReport, src: str) -> _Capture:
    cap = _Capture()
    last_e = 0
    prev_ts = -1
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cap.rows += 1
        sp = line.find(" ")
        try:
            ts = int(line[:sp]) if sp > 0 else int("x")
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
                    report.reject("message without a stream name (not a snapshot either)")
                    continue
                e = int(m["E"]) * 1_000_000 if "E" in m else (last_e or ts)
                lid = int(m["lastUpdateId"])
                cap.book.append(_Book(lineno, ts, e, lid, lid, -1, _levels(m["bids"]),
                                      _levels(m["asks"]), True))
                continue
            sym, _, kind = stream.partition("@")
            if cap.symbol is None:
                cap.symbol = sym
            elif sym != cap.symbol:
                report.reject(f"message for another symbol ({sym.upper()}); one symbol per file")
                continue
            d = m["data"]
            if "E" in d:
                e = int(d["E"]) * 1_000_000
                last_e = max(last_e, e)
            else:
                e = last_e or ts
            if kind == "bookTicker":
                cap.bbo.append((lineno, ts, e, int(d["u"]), d["b"], d["B"], d["a"], d["A"]))
                if cap.futures_hint is None:
                    cap.futures_hint = "e" in d
            elif kind == "trade":
                cap.trades.append((lineno, ts, e, int(d["t"]), d["p"], d["q"], bool(d["m"])))
            elif kind in _DEPTH_STREAMS:
                pu = d.get("pu")
                if pu is not None or cap.futures_hint is None:
                    cap.futures_hint = pu is not None
                cap.book.append(_Book(lineno, ts, e, int(d["U"]), int(d["u"]),
                                      -1 if pu is None else int(pu), _levels(d["b"]),
                                      _levels(d["a"]), False))
            else:
                report.reject(f"unsupported stream @{kind}")
        except (KeyError, TypeError, ValueError, AttributeError):
            cap.bad_msg.append(lineno)
    return cap


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
                report.reject("REST snapshot older than the already synced book")
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
        report.reject("depth diff after a sequence gap (no snapshot to resync)", len(buffer))
    report.reject("depth diff before snapshot sync", pre_sync)
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


def _market(opts: ImportOptions, hint: bool | None, name: str) -> bool:
    """True for USD-M futures."""
    market = opts.get("market")
    if market is not None:
        if market not in ("spot", "usdm"):
            msg = f"--market {market!r} is unknown; choose spot or usdm"
            raise ConfigError(msg)
        return bool(market == "usdm")
    if hint is not None:
        return hint
    low = name.lower()
    return "usdm" in low or "futures" in low


def _import_capture(path: Path, data: bytes, opts: ImportOptions, report: ImportReport) -> Batch:
    src = path.name
    # one decode of the whole file is cheaper than json.loads sniffing each line's encoding
    text = data.decode("utf-8", errors="replace")
    cap = _scan_capture(text.split("\n"), report, src)
    report.rows_read += cap.rows
    if cap.bad_json:
        report.reject("malformed JSON line", len(cap.bad_json))
        report.note(f"{src}: malformed JSON on line(s) {_some(cap.bad_json)}")
    if cap.bad_msg:
        report.reject("malformed message (bad timestamp, missing or bad field)", len(cap.bad_msg))
        report.note(f"{src}: malformed message on line(s) {_some(cap.bad_msg)}")
    if cap.backwards:
        report.note(f"{src}: {cap.backwards} lines have a receive time before the previous one")
    if cap.symbol is None:
        msg = f"{src}: no combined-stream message found; is this a Binance websocket capture?"
        raise FormatError(msg)
    futures = _market(opts, cap.futures_hint, src)
    chunks = _sync_depth(cap.book, futures, report, src)
    groups = _depth_groups(chunks) + _bbo_groups(cap.bbo) + _trade_groups(cap.trades)
    return make_batch(venue="BINANCE_USDM" if futures else "BINANCE", symbol=cap.symbol.upper(),
                      currency=_quote_ccy(cap.symbol.upper()), source=str(path), groups=groups)


def _some(lines: list[int], k: int = 10) -> str:
    head = ", ".join(str(x) for x in lines[:k])
    return head + (f" and {len(lines) - k} more" if len(lines) > k else "")


def _quote_ccy(symbol: str) -> str:
    for ccy in ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "BTC", "ETH", "EUR"):
        if symbol.endswith(ccy):
            return ccy
    return "USDT"


# --- NautilusTrader fixtures ----------------------------------------------------------------


def _import_nautilus_depth(
    path: Path, data: bytes, opts: ImportOptions, report: ImportReport
) -> list[Batch]:
    df = read_csv_text(path, data)
    report.rows_read += len(df)
    missing = [c for c in NAUTILUS_DEPTH_COLS if c not in df.columns]
    if missing:
        msg = (f"{path}: NautilusTrader depth CSV lacks column(s) {missing}; expected "
               f"{','.join(NAUTILUS_DEPTH_COLS)}[,pu]")
        raise FormatError(msg)
    ts, bad = int_column(df, "timestamp")
    lid, bad2 = int_column(df, "last_update_id")
    bad |= bad2
    df = drop_rows(df, bad, report, "unparseable timestamp or update id")
    ts, _ = int_column(df, "timestamp")
    lid, _ = int_column(df, "last_update_id")
    side_s = df["side"].str.strip_chars().str.to_lowercase()
    side = side_s.replace_strict({"b": BUY, "bid": BUY, "a": SELL, "ask": SELL},
                                 default=0, return_dtype=pl.Int8).to_numpy()
    utype = df["update_type"].str.strip_chars().str.to_lowercase().to_numpy()
    snap = utype == "snap"
    bad = (side == 0) | ~(snap | (utype == "set"))
    if bad.any():
        report.reject("unknown side or update_type", int(np.count_nonzero(bad)))
        df, ts, lid, side, snap = (df.filter(pl.Series(~bad)), ts[~bad], lid[~bad],
                                   side[~bad], snap[~bad])
    futures = _market(opts, "pu" in df.columns, path.name) if "pu" in df.columns or \
        opts.get("market") else False
    batches = []
    syms = df["symbol"].str.strip_chars().str.to_uppercase().to_numpy()
    for sym in dict.fromkeys(syms.tolist()):
        m = syms == sym
        n = int(m.sum())
        t_ns = ts[m] * 1_000_000
        oid = lid[m].astype(np.uint64)
        new = np.ones(n, np.bool_)
        new[1:] = (t_ns[1:] != t_ns[:-1]) | (oid[1:] != oid[:-1])
        msg_no = np.cumsum(new)
        rows = np.arange(n, dtype=np.int64)
        sub = df.filter(pl.Series(m))
        levels = {
            "local_ts": t_ns, "exch_ts": t_ns, "price": parse_decimals(sub["price"]),
            "qty": parse_decimals(sub["qty"]), "order_id": oid, "kind": np.full(n, KIND_LEVEL),
            "side": side[m], "flags": np.where(snap[m], FLAG_SNAPSHOT, 0), "msg": msg_no,
            "pos": 2 * rows + 1,
        }
        clears = snapshot_groups(n=n, snap=snap[m], msg=msg_no, local_ts=t_ns, exch_ts=t_ns,
                                 order_id=oid)
        batches.append(make_batch(
            venue="BINANCE_USDM" if futures else "BINANCE", symbol=_clean_symbol(sym),
            currency=_quote_ccy(_clean_symbol(sym)), source=str(path), groups=[clears, levels]))
    return batches


def _clean_symbol(sym: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "", sym).upper() or "UNKNOWN"


def _ts_column_ns(col: Any) -> tuple[I64, npt.NDArray[np.bool_]]:
    """A Parquet timestamp column (or integer s/ms/us/ns by magnitude) as epoch ns."""
    import pyarrow as pa

    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ns", tz=col.type.tz))
    arr = col.cast(pa.int64()).to_numpy(zero_copy_only=False)
    bad = col.is_null().to_numpy(zero_copy_only=False)
    arr = np.where(bad, 0, arr).astype(np.int64)
    if not pa.types.is_timestamp(col.type) and len(arr):
        mx = int(np.abs(arr).max())
        arr = arr * (1 if mx > 10**17 else 1_000 if mx > 10**14 else
                     1_000_000 if mx > 10**11 else 1_000_000_000)
    return arr, bad


def _number_column(col: Any) -> Scaled:
    import pyarrow as pa

    if pa.types.is_floating(col.type):
        x = col.to_numpy(zero_copy_only=False).astype(np.float64)
        return floats_to_scaled(x)
    if pa.types.is_integer(col.type):
        bad = col.is_null().to_numpy(zero_copy_only=False)
        v = col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return Scaled(v, 0, bad)
    return parse_decimals(pl.Series("x", col.cast(pa.string()).to_pylist(), pl.String))


_TRADE_PQ = ("timestamp", "trade_id", "price", "quantity", "buyer_maker")
_QUOTE_PQ = ("timestamp", "ask_size", "ask", "bid_size", "bid")


def _import_parquet(path: Path, opts: ImportOptions, report: ImportReport) -> Batch:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        msg = f"{path}: not a readable Parquet file ({exc})"
        raise FormatError(msg) from exc
    cols = set(t.column_names)
    report.rows_read += t.num_rows
    if "timestamp" not in cols:
        msg = f"{path}: Parquet file has no 'timestamp' column; columns are {sorted(cols)}"
        raise FormatError(msg)
    ts, bad_ts = _ts_column_ns(t.column("timestamp"))
    n = t.num_rows
    rows = np.arange(n, dtype=np.int64)
    base = {"local_ts": ts, "exch_ts": ts, "msg": rows, "flags": np.zeros(n)}
    if set(_TRADE_PQ) <= cols:
        bm = pl.Series(t.column("buyer_maker").cast(pa.string()).to_pylist(), dtype=pl.String)
        bm = bm.str.to_lowercase().is_in(["true", "1", "t", "yes"]).to_numpy()
        groups = [{**base, "price": _number_column(t.column("price")),
                   "qty": _number_column(t.column("quantity")),
                   "order_id": t.column("trade_id").fill_null(0).to_numpy().astype(np.uint64),
                   "kind": np.full(n, KIND_TRADE), "side": np.where(bm, SELL, BUY),
                   "pos": 2 * rows}]
    elif set(_QUOTE_PQ) <= cols:
        common = {**base, "order_id": np.zeros(n), "kind": np.full(n, KIND_BBO)}
        groups = [
            {**common, "price": _number_column(t.column("bid")),
             "qty": _number_column(t.column("bid_size")), "side": np.full(n, BUY),
             "pos": 2 * rows},
            {**common, "price": _number_column(t.column("ask")),
             "qty": _number_column(t.column("ask_size")), "side": np.full(n, SELL),
             "pos": 2 * rows + 1},
        ]
    else:
        msg = (f"{path}: Parquet columns {sorted(cols)} are neither NautilusTrader trades "
               f"({','.join(_TRADE_PQ)}) nor quotes ({','.join(_QUOTE_PQ)})")
        raise FormatError(msg)
    if "symbol" in cols and n:
        symbol = _clean_symbol(str(t.column("symbol")[0].as_py()))
    else:
        symbol = _clean_symbol(re.split(r"[-_.]", path.name)[0])
    batch = make_batch(venue="BINANCE", symbol=symbol,
                       currency=_quote_ccy(symbol), source=str(path), groups=groups)
    if bad_ts.any():
        report.note(f"{path.name}: {int(bad_ts.sum())} rows without a timestamp dropped")
        keep_rows = ~bad_ts[batch.msg]
        batch = _filter_batch(batch, keep_rows)
        report.reject("missing timestamp", int(bad_ts.sum()))
    return batch


def _filter_batch(b: Batch, keep: npt.NDArray[np.bool_]) -> Batch:
    return Batch(
        venue=b.venue, symbol=b.symbol, currency=b.currency, source=b.source,
        local_ts=b.local_ts[keep], exch_ts=b.exch_ts[keep], price=_masked(b.price, keep),
        qty=_masked(b.qty, keep), order_id=b.order_id[keep], kind=b.kind[keep],
        side=b.side[keep], flags=b.flags[keep], msg=b.msg[keep], pos=b.pos[keep],
    )


# --- entry point ------------------------------------------------------------------------


def import_binance(paths: Sequence[Path], opts: ImportOptions) -> ImportResult:
    """Import Binance raw captures and NautilusTrader Binance fixtures (see module doc)."""
    files = require_files(paths)
    report = ImportReport(source=", ".join(p.name for p in files))
    batches: list[Batch] = []
    for path in files:
        raw = path.read_bytes()[:4]
        if raw == b"PAR1":
            batches.append(_import_parquet(path, opts, report))
            continue
        data = read_bytes(path)
        first = data[: data.find(b"\n")] if b"\n" in data else data[:4096]
        if _CAPTURE_RE.match(first):
            batches.append(_import_capture(path, data, opts, report))
        elif first.strip().lower().startswith(b"symbol,") and all(
            c.encode() in first for c in NAUTILUS_DEPTH_COLS
        ):
            batches += _import_nautilus_depth(path, data, opts, report)
        else:
            msg = (
                f"{path}: not a Binance file this importer reads; expected a raw websocket "
                "capture ('<recv_ns> <json>' lines, plain or gzip), a NautilusTrader depth CSV "
                f"({','.join(NAUTILUS_DEPTH_COLS)},pu) or trades/quotes Parquet; the file "
                f"starts with {first[:24]!r}"
            )
            raise FormatError(msg)
    return assemble(batches, opts, report)
