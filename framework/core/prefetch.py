"""A software prefetch for compiled code: ``prefetch(address)`` asks the CPU to bring the
cache line at ``address`` in, without waiting for it.

A live tick touches a few random lines of large tables per message (a decoder's order table,
a book's order hash and pool); after milliseconds of quiet those lines have left the caches,
and each lookup waits its own memory round trip in turn. Issued for every message of a
batch before the work, the misses overlap instead: the batch waits about one round trip per
level of indirection, not one per message. A prefetch never faults (an address outside the
mapped memory is ignored), so a guessed address is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _prefetch_typer(write: int) -> Any:
    def typer(typingctx: Any, addr: Any) -> Any:
        if not isinstance(addr, types.Integer):
            return None
        sig = types.void(addr)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
                builder.module, fnty, "llvm.prefetch")
            ptr = builder.inttoptr(args[0], i8p)
            # read or write, keep in all cache levels, data cache
            builder.call(fn, [ptr, i32(write), i32(3), i32(1)])
            return context.get_dummy_value()

        return sig, codegen

    typer.__name__ = typer.__qualname__ = "_prefetch_write" if write else "_prefetch_read"
    return typer


def _touch_typer(typingctx: Any, addr: Any) -> Any:
    if not isinstance(addr, types.Integer):
        return None
    sig = types.uint8(addr)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.load(builder.inttoptr(args[0], ir.IntType(8).as_pointer()), align=1)

    return sig, codegen


#: ``touch(address)``: the byte at ``address`` (a mapped one: unlike a prefetch, a read
#: faults where nothing is mapped). A read is what makes the machine's translation of a page
#: current again, where a prefetch that misses it is dropped (see
#: :func:`live.hotpath._touch_step`). The caller keeps the value (stores what it folds it
#: into), or the compiler drops the read.
touch: Callable[[int], int] = intrinsic(cast(Any, _touch_typer))

#: typed for callers: ``prefetch(address)`` in compiled code (for reading)
prefetch: Callable[[int], None] = intrinsic(_prefetch_typer(0))
#: ``prefetch_write(address)``: the line is about to be written (fetched for ownership)
prefetch_write: Callable[[int], None] = intrinsic(_prefetch_typer(1))

__all__ = ["prefetch", "prefetch_write", "touch"]
