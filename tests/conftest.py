"""Shared fixtures: where the real sample data lives, temporary stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HFTLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the samples (directly or through a fixture) is marked
    ``shared_data``, so ``-m 'not shared_data'`` selects exactly those that run without them."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real market-data samples (../shared/data); tests needing them skip if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA} (set HFTLAB_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """An empty store root in a temporary directory."""
    root = tmp_path / "store"
    root.mkdir()
    return root
