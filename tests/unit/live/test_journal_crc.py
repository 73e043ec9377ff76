"""The journal's compiled CRC32C equals google_crc32c on every input, by the SSE4.2
instruction and by the slice-by-8 tables; compiled code is cached per CPU features."""

from __future__ import annotations

from typing import Any

import google_crc32c
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from live import journal_nb
from live.journal_nb import HW_CRC, crc32c_hw_nb, crc32c_sw_nb


@njit(cache=True)
def _hw(data: Any, start: int, n: int, cut: int) -> int:
    return crc32c_hw_nb(crc32c_hw_nb(0, data, start, cut), data, start + cut, n - cut)


@njit(cache=True)
def _sw(data: Any, start: int, n: int, cut: int) -> int:
    return crc32c_sw_nb(crc32c_sw_nb(0, data, start, cut), data, start + cut, n - cut)


_IMPLS = [pytest.param(_sw, id="slice-by-8"),
          pytest.param(_hw, id="sse4.2", marks=pytest.mark.skipif(
              not HW_CRC, reason="this CPU has no SSE4.2 crc32"))]


@pytest.mark.parametrize("crc", _IMPLS)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), start=st.integers(0, 7), cut=st.integers(0, 300))
def test_crc32c_equals_google_crc32c(crc: Any, data: bytes, start: int, cut: int) -> None:
    """Any length 0..300 at any alignment, computed in one go or continued in two."""
    buf = np.frombuffer(bytes(start) + data, np.uint8)
    assert crc(buf, start, len(data), min(cut, len(data))) == google_crc32c.value(data)


def test_compiled_code_is_cached_per_cpu_features() -> None:
    """numba's cache index key holds the host's CPU name and features: code compiled
    with the crc32 instruction is never loaded on a CPU without it."""
    _hw(np.zeros(8, np.uint8), 0, 8, 0)
    sig = _hw.signatures[0]
    codegen = _hw.targetctx.codegen()
    triple, cpu, features = codegen.magic_tuple()
    assert (triple, cpu, features) in _hw._cache._index_key(sig, codegen)
    assert cpu
    assert ("+sse4.2" in features.split(",")) == HW_CRC
    assert journal_nb.crc32c_nb is (crc32c_hw_nb if HW_CRC else crc32c_sw_nb)
