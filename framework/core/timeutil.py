"""Dates and timestamps: everything is int64 nanoseconds since the Unix epoch (UTC)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from framework.core.errors import ConfigError

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S

#: Venue time zones for sources whose timestamps are "since local midnight".
VENUE_TZ: dict[str, str] = {
    "XNAS": "America/New_York",
    "NASDAQ": "America/New_York",
    "XNYS": "America/New_York",
    "GLBX": "America/Chicago",
}

_DATE_RES = (
    (re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{4})(?!\d)"), "mdy"),  # NASDAQ: 12302019.NASDAQ_ITCH50
)


def parse_date(text: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` (or ``YYYYMMDD``); a clear error otherwise.

    >>> parse_date("2012-06-21")
    datetime.date(2012, 6, 21)
    """
    s = text.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    msg = f"date {text!r} does not parse; write it as YYYY-MM-DD, e.g. 2012-06-21"
    raise ConfigError(msg)


def date_from_name(name: str) -> dt.date | None:
    """Find a plausible date in a file name (``2012-06-21``, ``20240808``, ``12302019``)."""
    for rx, order in _DATE_RES:
        for m in rx.finditer(name):
            a, b, c = (int(g) for g in m.groups())
            y, mo, d = (a, b, c) if order == "ymd" else (c, a, b)
            if 1990 <= y <= 2100:
                try:
                    return dt.date(y, mo, d)
                except ValueError:
                    continue
    return None


def midnight_ns(date: dt.date, tz: str = "UTC") -> int:
    """Epoch ns of local midnight of ``date`` in time zone ``tz``."""
    start = dt.datetime(date.year, date.month, date.day, tzinfo=ZoneInfo(tz))
    return int(start.timestamp()) * NS_PER_S


def venue_midnight_ns(date: dt.date, venue: str) -> int:
    """Epoch ns of midnight at ``venue`` (UTC for venues not in :data:`VENUE_TZ`)."""
    return midnight_ns(date, VENUE_TZ.get(venue.upper(), "UTC"))


def ns_to_date(ts: int, tz: str = "UTC") -> dt.date:
    """Calendar date of an epoch-ns timestamp in time zone ``tz``."""
    return dt.datetime.fromtimestamp(ts / NS_PER_S, tz=ZoneInfo(tz)).date()


def format_ns(ts: int) -> str:
    """ISO-8601 UTC with nanoseconds: ``2012-06-21T13:30:00.017459617Z``."""
    sec, ns = divmod(int(ts), NS_PER_S)
    base = dt.datetime.fromtimestamp(sec, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns:09d}Z"
