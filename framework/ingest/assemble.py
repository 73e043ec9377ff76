"""Building event arrays from columns: the step the Binance and Tardis importers share.

Parsers hand over column groups (dicts of equal-length arrays, prices and sizes still exact
decimals). :func:`make_batch` joins one instrument's groups from one file into a
:class:`Batch`; :func:`assemble` groups batches by instrument, fixes the tick and lot grid
(options, else the finest power-of-ten grid the data uses), rejects off-grid values, sorts by
``local_ts`` (source order breaks ties), sets ``FLAG_LAST`` per source message, validates and
splits by UTC day of ``local_ts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from framework.core.errors import ConfigError
from framework.core.events import (
    EVENT_DTYPE,
    FLAG_IMPLIED,
    FLAG_LAST,
    FLAG_SNAPSHOT,
    KIND_CLEAR,
    KIND_TRADE,
    EventArray,
)
from framework.core.timeutil import NS_PER_DAY, date_from_name, ns_to_date
from framework.ingest.base import (
    DayData,
    ImportOptions,
    ImportReport,
    ImportResult,
    resolve_instrument,
    validate_events,
)
from framework.ingest.decimal_text import I64, Scaled, concat_scaled, step_of_scale, to_grid


@dataclass
class Batch:
    """Events of one instrument from one file, prices and sizes still exact decimals.

    ``msg`` numbers source messages (FLAG_LAST goes on the last event of each); ``pos`` is
    the source order used to break ``local_ts`` ties; ``line`` is where each event came
    from (a group without a ``line`` column uses ``msg``).
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
    line: I64  #: source line (or row) of each event, to say where a problem is
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
        line=np.concatenate([np.asarray(g["line"] if "line" in g else g["msg"], np.int64)
                             for g in groups]) if groups else np.zeros(0, np.int64),
    )


def assemble(
    batches: Sequence[Batch], opts: ImportOptions, report: ImportReport
) -> ImportResult:
    """Group batches by instrument, fix the grids, sort, flag, validate and split by day."""
    groups: dict[tuple[str, str], list[Batch]] = {}
    for b in batches:
        groups.setdefault((b.venue, b.symbol), []).append(b)
    report.events_made = (report.events_made or 0) + sum(len(b) for b in batches)
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
        ev: EventArray = np.zeros(len(kind), EVENT_DTYPE)
        ev["local_ts"] = np.concatenate([b.local_ts for b in bs])
        ev["exch_ts"] = np.concatenate([b.exch_ts for b in bs])
        ev["order_id"] = np.concatenate([b.order_id for b in bs])
        ev["kind"] = kind
        ev["side"] = np.concatenate([b.side for b in bs])
        ev["flags"] = np.concatenate([b.flags for b in bs])
        file_no = np.concatenate([np.full(len(b), i, np.int64) for i, b in enumerate(bs)])
        pos = np.concatenate([b.pos for b in bs])
        pos_line = np.concatenate([b.line for b in bs])

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
        if unparsed.any():  # text that is no number: the source row is damaged
            report.damage("unparseable price or quantity", int(np.count_nonzero(unparsed)),
                          at=_where(bs, file_no, pos_line, unparsed), unit="events")
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
        bad = _repeated_trades(ev, keep, file_no, pos)
        report.reject("repeated trade (same trade id, time, side, price and size)",
                      int(np.count_nonzero(bad)))
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
        inst_days = _split_days(ev, inst, opts, report, bs)
        if inst_days:  # an instrument no event survived for is not a result
            instruments.append(inst)
            days += inst_days
    return ImportResult(days=days, report=report, instruments=instruments)


def _repeated_trades(
    ev: EventArray, keep: npt.NDArray[np.bool_], file_no: I64, pos: I64
) -> npt.NDArray[np.bool_]:
    """Trades with an id that repeat an earlier trade field for field (a line stored twice):
    venues number trades uniquely, so the copy would count the volume twice."""
    out = np.zeros(len(ev), np.bool_)
    idx = np.flatnonzero(keep & (ev["kind"] == KIND_TRADE) & (ev["order_id"] != 0))
    if len(idx) < 2:
        return out
    t = ev[idx]
    order = np.lexsort((pos[idx], file_no[idx], t["side"], t["qty"], t["price"], t["exch_ts"],
                        t["order_id"]))
    t = t[order]
    same = np.ones(len(t) - 1, np.bool_)
    for f in ("order_id", "exch_ts", "price", "qty", "side"):
        same &= t[f][1:] == t[f][:-1]
    out[idx[order[1:][same]]] = True
    return out


def _where(bs: Sequence[Batch], file_no: I64, line: I64, bad: npt.NDArray[np.bool_]) -> str:
    """Where the first flagged event came from: its file and source line."""
    i = int(np.argmax(bad))
    return f"{Path(bs[int(file_no[i])].source).name} line {int(line[i]):,}"


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
