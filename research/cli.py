"""The ``hftlab`` verbs of ``research``, registered through the ``hftlab.commands`` entry point."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    """Add this package's sub-commands to the ``hftlab`` parser ``sub``."""
