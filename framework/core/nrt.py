"""Arrays handed to compiled callees without reference counting.

Every call from one compiled function to another that passes an array (and every alias of
an array argument numba does not inline away) increments and decrements the array's
reference count: two atomic updates of its memory-info block. Back to back they are cheap;
on a live tick after a quiet spell each block's line is cold, and a call with twenty arrays
waits for twenty memory round trips before doing any work (the live runner's journal share
of a tick: 2.4 us with its append called, 1.0 inlined). :func:`borrowed` gives the callee
the same array without its memory-info pointer, so nothing is counted.
"""

from __future__ import annotations

from typing import Any

from numba.core.extending import intrinsic
from numba.np.arrayobj import populate_array


def _borrowed_typer(typingctx: object, arr: Any) -> Any:
    """``arr`` without its memory-info pointer, so numba counts no references to it.

    Every call to a compiled function and every inlined alias of an array argument costs
    an atomic increment and decrement of its reference count (numba's NRT; its pruning pass
    leaves those in the book's code): measured, ~40% of an L3 book update on a small book.
    Only for arrays the caller keeps alive for the whole call, never to be returned."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ary = context.make_array(arr)(context, builder, value=args[0])
        out = context.make_array(arr)(context, builder)
        populate_array(out, data=ary.data, shape=ary.shape,  # type: ignore[no-untyped-call]
                       strides=ary.strides,
                       itemsize=ary.itemsize, meminfo=None)
        return out._getvalue()

    return arr(arr), codegen


#: ``borrowed(arr)``: ``arr`` without reference counting (compiled code only)
borrowed: Any = intrinsic(_borrowed_typer)

__all__ = ["borrowed"]
