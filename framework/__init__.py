"""hftlab framework: everything backtest and live share."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__version__ = "0.1.0"


def _versioned_numba_cache() -> None:
    """Point numba's on-disk cache at a folder named by a hash of hftlab's sources.

    numba invalidates a cached function when *its* file changes, not when a function it
    calls changes in another file: after editing ``venue.py`` the cached replay loop would
    still run the old venue. Keying the cache folder on every source file makes any edit
    start from a clean cache. Strategy files are not part of the key: they are leaves
    (nothing in the framework imports them) so numba's own per-file check covers them, and
    the generated runner that calls them is named by their hash (engine/codegen.py); editing
    a strategy recompiles that strategy alone.

    One base folder serves the CLI, ``make demo``, the tests and the benchmarks, so what one
    compiled the others load: ``$HFTLAB_NUMBA_CACHE`` when set, else
    ``$XDG_CACHE_HOME/hftlab/numba`` (``~/.cache/hftlab/numba``). numba's own
    ``NUMBA_CACHE_DIR`` is set from it (a value set outside is not used: it would not be
    versioned).
    """
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        text = p.read_bytes()
        if b"njit" in text or b"framework.core.jit" in text:  # only compiled code goes stale
            h.update(p.relative_to(root.parent).as_posix().encode())
            h.update(text)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    base = os.environ.get("HFTLAB_NUMBA_CACHE") or str(Path(xdg) / "hftlab" / "numba")
    os.environ["HFTLAB_NUMBA_CACHE"] = base
    target = str(Path(base) / h.hexdigest()[:16])
    os.environ["NUMBA_CACHE_DIR"] = target
    import sys

    # generated strategy runners (framework/engine/codegen.py) live in the cache too; numba's
    # index of a strategy's callbacks imports them by name, so they must always be importable
    runners = str(Path(target) / "runners")
    if runners not in sys.path:
        sys.path.append(runners)

    if "numba" in sys.modules:  # numba read its config already: tell it too
        from numba.core import config

        config.CACHE_DIR = target  # type: ignore[attr-defined]


_versioned_numba_cache()
