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

NautilusTrader depth CSV (``symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty[,pu]``)
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
    if scale > _MAX_SCALE:
        scale = _MAX_SCALE
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
    for (venue, symbol), bs in groups.items():
        bs = [b for b in bs if len(b)]
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

        order = np.lexsort((pos, file_no, ev["local_ts"]))
        if not np.array_equal(order, np.arange(len(order))):
            report.note(f"{inst.key}: events re-sorted by local_ts (source not in receive order)")
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


