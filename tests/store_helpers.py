"""What tests see of a store's files."""

from __future__ import annotations

from pathlib import Path


def store_files(store: Path) -> list[Path]:
    """Everything in the store but the writers' lock (``.staging/.lock``, which stays once a
    write has run); a staged file left behind still counts."""
    if not store.exists():
        return []
    keep = {store / ".staging", store / ".staging" / ".lock"}
    return sorted(p for p in store.rglob("*") if p not in keep)
