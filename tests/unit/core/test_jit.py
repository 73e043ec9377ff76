"""framework.core.jit: helpers compiled once per argument types, inlined by LLVM or called,
callable from Python as plain Python unless compiled for it, never returning what they
cannot count references to."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numba import njit

from framework.core.jit import inline, outline

K3 = 3


@inline
def _add(x: int, k: int) -> int:
    return x + k


@outline
def _scaled(x: int, k: int) -> int:
    return x * k + 1


@outline(python=True)
def _twice(x: int) -> int:
    return 2 * x


@inline
def _tail(a: np.ndarray) -> np.ndarray:
    return a[1:]


@inline
def _same(a: np.ndarray) -> np.ndarray:
    return a


# the same body twice (one Python function may back only one cached dispatcher), too large
# for LLVM to inline at six call sites of its own accord
@inline
def _mix_inlined(a: np.ndarray, k: int) -> int:
    s = 0
    for i in range(a.shape[0]):
        v = a[i]
        if v % 3 == k:
            s += v * v - k
        elif v % 5 == k:
            s ^= v << 3
        else:
            s -= (v + k) // 7
        s = (s * 31 + i) % 1000003
    return s


@outline
def _mix_called(a: np.ndarray, k: int) -> int:
    s = 0
    for i in range(a.shape[0]):
        v = a[i]
        if v % 3 == k:
            s += v * v - k
        elif v % 5 == k:
            s ^= v << 3
        else:
            s -= (v + k) // 7
        s = (s * 31 + i) % 1000003
    return s


@inline
def _halve(x: int) -> int:
    return x // 2


@inline
def _sum(a: np.ndarray) -> int:
    s = 0
    for v in a:
        s += v
    return s


@njit
def _constants(x: int) -> int:
    # four calls with four different constants: one compiled version of each helper
    return _add(x, K3) + _add(x, 5) + _scaled(x, 7) + _scaled(x, 11)


@njit
def _sums(a: np.ndarray) -> int:
    return _sum(a) + _sum(a[1:])


@njit
def _takes_tail(a: np.ndarray) -> int:
    return _tail(a)[0]


@njit
def _takes_same(a: np.ndarray) -> int:
    return _same(a)[0]


@njit
def _mixes(a: np.ndarray) -> int:
    s = 0
    for k in range(6):
        s += _mix_inlined(a, k) - _mix_called(a, k)
    return s


def test_one_compiled_version_per_argument_types_whatever_the_constants() -> None:
    assert _constants(1) == (1 + 3) + (1 + 5) + (1 * 7 + 1) + (1 * 11 + 1)
    assert [str(s) for s in _add.signatures] == ["(int64, int64)"]
    assert [str(s) for s in _scaled.signatures] == ["(int64, int64)"]


def test_inline_helpers_are_inlined_and_outline_ones_called() -> None:
    a = np.arange(50, dtype=np.int64)
    assert _mixes(a) == 0
    ll = _mixes.inspect_llvm(_mixes.signatures[0])
    callees = set(re.findall(r"call [^@]*@\"?([^\"( ]+)", ll))
    assert any("_mix_called" in c for c in callees)
    assert not any("_mix_inlined" in c for c in callees)


def test_helpers_not_compiled_for_python_run_as_python_there() -> None:
    assert _halve(9) == 4
    assert _halve.signatures == []  # nothing was compiled: the Python function ran
    a = np.arange(5, dtype=np.int64)
    assert _sum(a) == 10  # as Python
    assert _sums(a) == 10 + 10  # compiled, inside a caller


def test_helpers_compiled_for_python_are_compiled() -> None:
    assert _twice(21) == 42
    assert [str(s) for s in _twice.signatures] == ["(int64,)"]


def test_an_inline_helper_may_not_return_an_array() -> None:
    # it counts no references: an array handed back would be released once too often
    a = np.arange(3, dtype=np.int64)
    with pytest.raises(Exception, match="needs reference counting: make it outline"):
        _takes_same(a)
    with pytest.raises(Exception, match="Only accept returning of array passed into"):
        _takes_tail(a)  # numba's own refusal, for arrays made inside
