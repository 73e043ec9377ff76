"""Core model: the event record, instruments, errors, time helpers."""

from framework.core.errors import (
    ConfigError,
    DataError,
    FormatError,
    HftlabError,
    HftlabWarning,
    LookAheadWarning,
    OrderError,
    PerformanceWarning,
    StoreError,
    VenueError,
)
from framework.core.events import (
    BUY,
    EVENT_DTYPE,
    NO_SIDE,
    SELL,
    EventArray,
    empty_events,
    make_events,
)
from framework.core.instrument import ASSET_CLASSES, AssetClass, Instrument

__all__ = [
    "ASSET_CLASSES",
    "BUY",
    "EVENT_DTYPE",
    "NO_SIDE",
    "SELL",
    "AssetClass",
    "ConfigError",
    "DataError",
    "EventArray",
    "FormatError",
    "HftlabError",
    "HftlabWarning",
    "Instrument",
    "LookAheadWarning",
    "OrderError",
    "PerformanceWarning",
    "StoreError",
    "VenueError",
    "empty_events",
    "make_events",
]
