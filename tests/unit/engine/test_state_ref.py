"""Compiled code's view of the arena (a StateRef from unpack_raw) is the Python one (unpack):
every segment at the same address, shape and dtype, and writes through either seen by the
other, whatever the capacity."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numba import njit

from framework.arena.state import (
    _FLOAT_SEGS,
    _SEG_NDIM,
    SEG_NAMES,
    Capacity,
    allocate,
    unpack,
    unpack_raw,
)


def _compiled_probe() -> Any:
    """A compiled function that, for every field of the state, writes ``k + 1`` into the
    view's last element and returns its data address and shape, padded to four numbers
    (the fields are named in its source: numba resolves attributes when it compiles)."""
    lines = ["def probe(a):", "    st = unpack_raw(a)", "    out = []"]
    for k, name in enumerate(SEG_NAMES):
        dims = range(_SEG_NDIM[k])
        last = ", ".join(f"st.{name}.shape[{d}] - 1" for d in dims)
        shape = ", ".join(f"st.{name}.shape[{d}]" for d in dims)
        lines.append(f"    st.{name}[{last}] = {k + 1}")
        lines.append(f"    out.append(_pad((st.{name}.ctypes.data, {shape})))")
    lines.append("    return out")
    ns: dict[str, Any] = {"unpack_raw": unpack_raw, "_pad": _pad}
    exec("\n".join(lines), ns)  # source generated from the field list above
    return njit(ns["probe"])


@njit
def _pad(t: Any) -> tuple[int, int, int, int]:
    if len(t) == 2:
        return (t[0], t[1], -1, -1)
    if len(t) == 3:
        return (t[0], t[1], t[2], -1)
    return (t[0], t[1], t[2], t[3])


_PROBE = _compiled_probe()


@pytest.mark.parametrize(
    "cap",
    [
        Capacity(n_inst=1, n_strat=1, max_orders=8, max_messages=8, book_ticks=16,
                 book_far_levels=2, record_rows=4),
        Capacity(n_inst=3, n_strat=2, max_orders=32, max_messages=16, book_ticks=64,
                 book_far_levels=8, record_rows=64, lat_series=5),
    ],
)
def test_compiled_fields_are_the_python_views(cap: Capacity) -> None:
    a = allocate(cap)
    got = _PROBE(a)
    st = unpack(a)
    for k, name in enumerate(SEG_NAMES):
        view = getattr(st, name)
        addr, *shape = got[k]
        assert addr == view.ctypes.data, name
        assert tuple(d for d in shape if d >= 0) == view.shape, name
        assert view.dtype == (np.float64 if k in _FLOAT_SEGS else np.int64), name
        assert view[tuple(d - 1 for d in view.shape)] == k + 1, name  # written through
