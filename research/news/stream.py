"""Scored headlines as a timestamped feature stream, stored beside the ticks.

One file per instrument and UTC day, in the store's layout:
``<root>/<VENUE>/<SYMBOL>/<YYYY-MM-DD>.news.parquet`` next to the day's
``<YYYY-MM-DD>.parquet`` (the store lists days by that name only, so the stream never
passes for a day of ticks). Columns: ``ts`` (int64 ns since the epoch, UTC), ``symbol``,
``score`` (float64 in [-1, 1]), ``model`` (what scored), ``headline``; sorted by ``ts``.
Writing merges with what the day holds (a headline scored again at the same ``ts``
replaces the old row) and replaces the file whole (temporary file, rename).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import polars as pl

from framework.core.errors import ConfigError, DataError
from research.news.client import TextClient

SUFFIX = ".news.parquet"
SCHEMA = {"ts": pl.Int64(), "symbol": pl.String(), "score": pl.Float64(),
          "model": pl.String(), "headline": pl.String()}


def parse_ts(text: str) -> int:
    """ns since the epoch from an integer (ns) or an ISO 8601 time (UTC unless it says)."""
    t = text.strip()
    if t.lstrip("-").isdigit():
        return int(t)
    try:
        d = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        msg = f"time {text!r} is neither ns since the epoch nor ISO 8601 (2024-03-01T14:30:00Z)"
        raise ConfigError(msg) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    delta = d - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def read_headlines_csv(path: str | Path, *, symbol: str | None = None) -> pl.DataFrame:
    """``ts,headline[,symbol]`` rows (ts, symbol, headline). With ``symbol``: a file with
    no symbol column is all about it, one with a column keeps its rows. A row with a bad
    time, no headline or no symbol is a DataError naming its line (nothing is skipped)."""
    p = Path(path)
    rows: list[tuple[int, str, str]] = []
    try:
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = set(reader.fieldnames or ())
            if not {"ts", "headline"} <= cols:
                msg = f"{p}: want columns ts,headline[,symbol]; it has {sorted(cols)}"
                raise DataError(msg)
            if "symbol" not in cols and symbol is None:
                msg = f"{p}: no symbol column; say which instrument with --symbol"
                raise DataError(msg)
            for line, r in enumerate(reader, start=2):
                sym = (r.get("symbol") or symbol or "").strip()
                text = (r.get("headline") or "").strip()
                if not text or not sym:
                    msg = f"{p}:{line}: empty {'headline' if not text else 'symbol'}"
                    raise DataError(msg)
                try:
                    ts = parse_ts(r.get("ts") or "")
                except ConfigError as exc:
                    raise DataError(f"{p}:{line}: {exc}") from None
                rows.append((ts, sym, text))
    except OSError as exc:
        msg = f"{p}: cannot read it ({exc.strerror or exc})"
        raise DataError(msg) from exc
    df = pl.DataFrame(rows, schema={"ts": pl.Int64(), "symbol": pl.String(),
                                    "headline": pl.String()}, orient="row")
    return df.filter(pl.col("symbol") == symbol) if symbol is not None else df


def score(headlines: pl.DataFrame, client: TextClient) -> pl.DataFrame:
    """The stream's rows of ``headlines`` (ts, symbol, headline), scored by ``client``."""
    scores = client.sentiment(headlines["headline"].to_list()) if len(headlines) else []
    if len(scores) != len(headlines):
        msg = f"{client.name} gave {len(scores)} scores for {len(headlines)} headlines"
        raise DataError(msg)
    return headlines.with_columns(
        pl.Series("score", scores, pl.Float64()), pl.lit(client.name).alias("model"),
    ).select(list(SCHEMA)).sort("ts", maintain_order=True)


def path_for(root: str | Path, venue: str, symbol: str, day: dt.date) -> Path:
    """Beside the store's day file (the names checked as the store checks them)."""
    from framework.store.tickstore import TickStore

    return TickStore(root).path_for(venue, symbol, day).with_name(f"{day.isoformat()}{SUFFIX}")


def _day(ts: pl.Expr) -> pl.Expr:
    return pl.from_epoch(ts, time_unit="ns").dt.date()


def write(root: str | Path, venue: str, rows: pl.DataFrame) -> list[Path]:
    """Store scored rows per (symbol, UTC day); returns the files written."""
    out = []
    for (sym, day), part in sorted(rows.with_columns(_day(pl.col("ts")).alias("_day"))
                                   .group_by("symbol", "_day"), key=lambda kv: kv[0]):
        path = path_for(root, venue, str(sym), day)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = part.drop("_day").select(list(SCHEMA))
        if path.exists():
            old = pl.read_parquet(path)
            new = pl.concat([old, new]).unique(["ts", "headline"], keep="last",
                                               maintain_order=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            new.sort("ts", maintain_order=True).write_parquet(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            msg = f"cannot write {path}: {exc.strerror or exc}"
            raise DataError(msg) from exc
        out.append(path)
    return out


def read(root: str | Path, venue: str, symbol: str, *, start: int | None = None,
         end: int | None = None) -> pl.DataFrame:
    """The stream of one instrument with ``start <= ts < end`` (ns; None: open), by ts."""
    folder = Path(root) / venue / symbol
    files = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    if start is not None or end is not None:
        lo = dt.date.min if start is None else _date_of(start)
        hi = dt.date.max if end is None else _date_of(end)
        files = [f for f in files if lo <= dt.date.fromisoformat(f.name[:10]) <= hi]
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    df = pl.concat([pl.read_parquet(f) for f in files])
    if start is not None:
        df = df.filter(pl.col("ts") >= start)
    if end is not None:
        df = df.filter(pl.col("ts") < end)
    return df.sort("ts", maintain_order=True)


def _date_of(ts: int) -> dt.date:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts // 1000)).date()


__all__ = ["SCHEMA", "SUFFIX", "parse_ts", "path_for", "read", "read_headlines_csv", "score",
           "write"]

