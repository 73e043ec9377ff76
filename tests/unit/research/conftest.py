"""Fixtures of the research tests (the days themselves: ``study_days``)."""

from __future__ import annotations

from .study_days import research_store

__all__ = ["research_store"]
