"""Calls through a function address from compiled code.

numba links every compiled function a caller uses into the caller's own machine code and
optimises the whole again, so a strategy callback that calls ``submit`` used to carry (and
compile, for ~20 s) the engine's order path, risk checks and book. Calling through an
address instead keeps the two apart: the engine's entry points are C functions compiled once
(:mod:`framework.kernel.core`), their addresses sit in the arena's header, and a caller
compiles a single indirect call. Nothing here embeds an address in cached code: it is read
from the arena at run time, so cached callers stay valid in every process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def _call_i64(typingctx: Any, addr: Any, args: Any) -> Any:
    """``call_i64(addr, (x0, x1, ...))``: call the C function at ``addr`` taking int64
    arguments and returning int64 (the ABI of ``cfunc(int64(int64, ...))``)."""
    if not isinstance(addr, types.Integer):
        return None
    if isinstance(args, types.UniTuple):
        if args.dtype != types.int64:
            return None
        n = args.count
    elif isinstance(args, types.Tuple) and len(args.types) == 0:
        n = 0
    else:
        return None
    sig = types.int64(addr, args)

    def codegen(context: Any, builder: Any, signature: Any, llargs: Any) -> Any:
        addr_v, tup = llargs
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(i64, [i64] * n)
        fptr = builder.inttoptr(addr_v, fnty.as_pointer())
        return builder.call(fptr, [builder.extract_value(tup, k) for k in range(n)])

    return sig, codegen


#: typed for callers: ``call_i64(addr, (x0, x1, ...)) -> int``
call_i64: Callable[[int, tuple[Any, ...]], int] = _call_i64  # type: ignore[assignment]

__all__ = ["call_i64"]


ARENA_T = types.Array(types.int64, 1, "C")  #: the numba type of an arena
I64_T = types.int64


def entry(fn: Any, *argtypes: Any) -> Callable[..., Any]:
    """The compiled entry point of numba function ``fn`` for ``argtypes`` (compiled or
    loaded from the cache now). Calling it skips numba's dispatcher (argument typing and
    overload lookup), which halves the cost of a call from Python: the Python strategy path
    makes one such call per callback. Call it with exactly those types: Python ints for
    int64, a C-contiguous int64 array for an arena."""
    fn.compile(argtypes)
    return fn.overloads[argtypes].entry_point


def machine_code(fn: Any) -> list[int]:
    """The addresses of numba function ``fn``'s native code, one per compiled overload
    (what a C caller would call; e.g. to keep that code in the caches)."""
    out = []
    for cres in fn.overloads.values():
        res: Any = cres
        out.append(int(res.library.get_pointer_to_function(res.fndesc.llvm_func_name)))
    return out

