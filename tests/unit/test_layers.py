"""The framework's packages import downwards only.

Under the engine: the data model, books, features, the store, importers and result
analysis. The arena (state layout, codes, messages, models) is the bottom of the engine; risk
and portfolio read it; the compiled kernel (venue, local order path, replay loop) uses those; the
strategy API sits on the kernel; the drivers (Engine, Backtest, the CLI's runner) on top. A
module may import from its own package and from any lower layer, never from a higher one.
Checked on the source (every import, module level or inside a function).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "framework"

#: packages by layer, lowest first; a package may import its own layer and those below
LAYERS = [
    {"core"},  # events, instruments, errors, ranges
    {"book"},
    {"features", "store", "ingest", "analysis"},
    {"arena"},
    {"risk", "portfolio"},
    {"kernel"},
    {"strategy"},
    {"engine"},  # the drivers: Engine, Backtest, runners
]
RANK = {pkg: k for k, layer in enumerate(LAYERS) for pkg in layer}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(n, m) for n, m in out if m.startswith("framework.")]


@pytest.mark.parametrize("pkg", sorted(RANK))
def test_imports_point_down(pkg: str) -> None:
    bad = []
    for path in sorted((ROOT / pkg).glob("*.py")):
        for line, mod in _imports(path):
            target = mod.split(".")[1]
            if target in RANK and RANK[target] > RANK[pkg]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {mod}")
    assert bad == []


def test_every_engine_package_has_a_layer() -> None:
    pkgs = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert pkgs <= set(RANK), sorted(pkgs - set(RANK))
