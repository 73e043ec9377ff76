"""Reading a small JSON file a user names on the command line (parameter sets, parameter
files): one clear line when it cannot be read or is not JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from framework.core.errors import ConfigError


def read_json(path: str | Path, what: str, shape: str) -> Any:
    """The JSON value in ``path``. ``what`` names it in errors (``--params FILE``), ``shape``
    says what to write there (``{"name": value, ...}``)."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{what} {p}: cannot read it ({exc.strerror or exc})"
        raise ConfigError(msg) from exc
    except ValueError as exc:
        msg = f"{what} {p}: not JSON ({exc}); write {shape}"
        raise ConfigError(msg) from exc


__all__ = ["read_json"]
