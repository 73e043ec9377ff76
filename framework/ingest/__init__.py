"""Importers that turn the formats researchers own into the store's event record."""

from framework.ingest.base import (
    IMPORTERS,
    SYNTH_ORDER_ID_BASE,
    DayData,
    ImportOptions,
    ImportReport,
    ImportResult,
    get_importer,
    validate_events,
)

__all__ = [
    "IMPORTERS",
    "SYNTH_ORDER_ID_BASE",
    "DayData",
    "ImportOptions",
    "ImportReport",
    "ImportResult",
    "get_importer",
    "validate_events",
]
