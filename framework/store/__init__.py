"""Parquet tick store: schema, atomic writes, streaming reads, queries."""

from framework.store.schema import ARROW_SCHEMA, SCHEMA_VERSION, batch_to_events, events_to_table
from framework.store.tickstore import DayInfo, DayKey, TickStore, default_root

__all__ = [
    "ARROW_SCHEMA",
    "SCHEMA_VERSION",
    "DayInfo",
    "DayKey",
    "TickStore",
    "batch_to_events",
    "default_root",
    "events_to_table",
]
