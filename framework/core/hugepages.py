"""Arrays on transparent huge pages, for the tables a live tick reads at random.

A table of a few megabytes read at random lines (an order hash, an order pool) on 4 KiB pages
takes a TLB miss for nearly every line once the tick path has been quiet for a while; in a
virtual machine each miss is a two-level page walk. On 2 MiB pages the same table needs a
handful of TLB entries. numpy asks for huge pages only from 4 MiB up; :func:`huge_copy` puts
smaller arrays on them too (Linux with transparent huge pages in ``madvise`` or ``always``
mode; elsewhere it returns the array unchanged).
"""

from __future__ import annotations

import mmap
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

HUGE = 2 * 1024 * 1024  #: the huge page size on x86-64 and most aarch64 kernels
_MADV = getattr(mmap, "MADV_HUGEPAGE", None)
A = TypeVar("A", bound=npt.NDArray[Any])


def huge_copy(a: A) -> A:
    """A C-contiguous copy of ``a`` on memory advised for huge pages, its pages touched
    now (so the kernel backs them while it can, not on the hot path); ``a`` itself where the
    platform has no huge pages or ``a`` is under a huge page."""
    n = a.nbytes
    if _MADV is None or n < HUGE // 2:
        return a
    size = (n + HUGE - 1) // HUGE * HUGE + HUGE  # room to start on a 2 MiB boundary
    try:
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(_MADV)
    except (OSError, ValueError):
        return a
    raw = np.frombuffer(m, np.uint8)  # keeps the mapping alive as its base
    start = (-raw.ctypes.data) % HUGE
    out = raw[start : start + n].view(a.dtype).reshape(a.shape)
    out[...] = a
    return cast(A, out)


__all__ = ["HUGE", "huge_copy"]
