"""One exception root for hftlab, with a few meaningful branches.

Every error message says what was wrong and what to do about it.
"""

from __future__ import annotations


class HftlabError(Exception):
    """Root of every error hftlab raises on purpose."""


class DataError(HftlabError):
    """Input data is missing, malformed or inconsistent."""


class FormatError(DataError):
    """A file is not in the format it was said to be in (or is corrupt)."""


class StoreError(HftlabError):
    """The tick store cannot do what was asked (missing day, bad root, failed write)."""


class ConfigError(HftlabError):
    """A setting, parameter or command-line option is wrong."""


class OrderError(HftlabError):
    """An order request is malformed (not a risk denial: those are results, not errors)."""


class VenueError(HftlabError):
    """A venue or gateway misbehaved or refused a session-level request."""


class HftlabWarning(UserWarning):
    """Root of hftlab's warnings."""


class PerformanceWarning(HftlabWarning):
    """Something works but will be slow (say, an uncompiled path on a hot loop)."""


class LookAheadWarning(HftlabWarning):
    """Something may let a strategy see data before its local time."""
