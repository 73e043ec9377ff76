"""Decorators for compiled helpers: inlined by LLVM, compiled once per argument types.

numba's own ways to inline (``njit(inline="always")``) copy the callee's numba IR into every
call site and compile it again there, nested helpers within helpers: that was most of the
engine's first compile. These decorators keep one compiled body per helper and let LLVM do
the inlining, which costs little:

* :func:`inline` marks the function ``alwaysinline`` for LLVM (numba's ``forceinline``):
  calls to it cost nothing at run time, as if its body were written at the call site. It
  does no reference counting (numba's ``_nrt=False``): numba would count a reference to
  every array argument on entry and release it at every exit, calls (atomic operations on
  a real array) that LLVM cannot remove once the body is inlined, and that left the L2
  book's updates at a third of their speed. Its arguments are the caller's, alive for the
  call, so nothing is lost, as long as it allocates no array and returns none (refused
  when it compiles);
* :func:`outline` is not forced inline (an ordinary call, unless LLVM finds the body small
  enough to inline), for paths too rare or too large to copy into every caller, and counts
  references as usual. Both say so explicitly: a function numba compiles while it compiles
  an inline one would otherwise inherit its ``forceinline`` and ``_nrt=False``.

Both compile one version per argument *types*: numba would compile another for every
distinct constant a caller passes (``f(x, 3)`` and ``f(x, 5)`` are ``Literal[int](3)`` and
``Literal[int](5)``), which only repeats the work here, as LLVM sees the constant after
inlining anyway. Neither builds the CPython wrapper (the unboxing code a call from Python
needs, often larger than the function) unless ``python=True``: most helpers are only ever
called from compiled code, and called from Python they run as plain Python. Both cache on
disk like ``njit(cache=True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from numba.core import types
from numba.core.registry import CPUDispatcher

F = TypeVar("F", bound=Callable[..., Any])


class _TypesDispatcher(CPUDispatcher):
    """A dispatcher that compiles for argument types, never for constants' values."""

    def get_call_template(self, args: Any, kws: Any) -> Any:
        args = tuple(types.unliteral(a) for a in args)  # type: ignore[no-untyped-call]
        kws = {k: types.unliteral(v) for k, v in kws.items()}  # type: ignore[no-untyped-call]
        return super().get_call_template(args, kws)

    def add_overload(self, cres: Any) -> None:
        rt = cres.signature.return_type
        counted = cres.target_context.data_model_manager[rt].contains_nrt_meminfo()
        if counted and not self.targetoptions["_nrt"]:
            name = self.py_func.__qualname__
            msg = f"{name} returns {rt}, which needs reference counting: make it outline"
            raise TypeError(msg)
        super().add_overload(cres)


class _CompiledOnly(_TypesDispatcher):
    """No CPython wrapper: a call from Python would jump into unboxing code that is not
    there, so a call from Python runs the plain Python function instead (as the pure-Python
    versions of the kernels do, which tests compare with the compiled ones)."""

    def __call__(self, *args: Any, **kws: Any) -> Any:
        return self.py_func(*args, **kws)


def _jit(fn: F, *, force: bool, python: bool) -> F:
    opts = {
        "nopython": True,
        "boundscheck": None,
        "forceinline": force,
        "_nrt": not force,
        "no_cpython_wrapper": not python,
        "no_cfunc_wrapper": True,
    }
    cls = _TypesDispatcher if python else _CompiledOnly
    disp = cls(py_func=fn, locals={}, targetoptions=opts)
    disp.enable_caching()
    return disp  # type: ignore[return-value]


@overload
def inline(fn: F, *, python: bool = False) -> F: ...
@overload
def inline(fn: None = None, *, python: bool = False) -> Callable[[F], F]: ...
def inline(fn: F | None = None, *, python: bool = False) -> F | Callable[[F], F]:
    """Compile ``fn`` for LLVM to inline at every call (``python``: callable from Python
    too)."""
    if fn is None:
        return lambda f: _jit(f, force=True, python=python)
    return _jit(fn, force=True, python=python)


@overload
def outline(fn: F, *, python: bool = False) -> F: ...
@overload
def outline(fn: None = None, *, python: bool = False) -> Callable[[F], F]: ...
def outline(fn: F | None = None, *, python: bool = False) -> F | Callable[[F], F]:
    """Compile ``fn`` once, called (not forced inline) from compiled code (``python``:
    callable from Python too)."""
    if fn is None:
        return lambda f: _jit(f, force=False, python=python)
    return _jit(fn, force=False, python=python)


__all__ = ["inline", "outline"]
