"""hftlab research tools (optimisation, walk-forward, screening); built on framework.

``research.optimize(...)`` runs a parameter study (:func:`research.optimize.optimize`) and
returns an :class:`~research.optimize.OptimizeResult`. The module is loaded on first use:
every ``hftlab`` command imports this package (its verbs are registered from it), and a
study's imports (polars, the engine, Dask) would slow them all.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("optimize", "OptimizeResult"):
        import importlib

        mod = importlib.import_module("research.optimize")  # binds research.optimize
        return mod if name == "optimize" else mod.OptimizeResult
    msg = f"module 'research' has no attribute {name!r}"
    raise AttributeError(msg)
