"""Generate the compiled runner for a set of compiled strategies.

numba does not cache a function that receives other compiled functions as arguments, so a
generic loop taking the strategy's callbacks would recompile on every run. Instead hftlab
writes a small module per set of strategies whose callbacks are *globals* of the runner;
numba caches that module like any other. The module's name carries a hash of its text and
of the strategies' source files, so editing a strategy makes a new runner (numba's cache
does not notice callee changes on its own).

Neighbouring strategies of one class whose parameters have the same types form a group: the
runner loops over a group's members (their params a tuple, their states the rows of one
array), so K copies of a strategy with different parameters -- a parameter sweep in one pass
-- make the same text, and compile in the time of one, whatever K.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from framework.core.errors import ConfigError
from framework.strategy.base import Strategy
from framework.strategy.params import NB_TUPLE


def cache_dir() -> Path:
    """Where generated runners live: a ``runners`` folder inside numba's cache folder.

    They must live and die with that cache: numba's index of a strategy's cached callbacks
    names the runner modules whose parameter types it was compiled for, and loading the index
    imports them all. Kept apart (another folder, or one of them deleted), a later run fails
    to load the index with ``No module named 'hftlab_runner_...'``.
    """
    from numba.core import config

    base = config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR", ".")  # type: ignore[attr-defined]
    return Path(base) / "runners"


def _ref(cls: type[Strategy], name: str) -> tuple[str, str]:
    fn = getattr(cls.compiled, name)
    mod = getattr(fn, "__module__", None)
    qual = getattr(getattr(fn, "py_func", fn), "__name__", None)
    if not mod or not qual or getattr(sys.modules.get(mod), qual, None) is not fn:
        msg = (
            f"compiled callback {name} of {cls.__qualname__} must be a module-level numba "
            f"function (found {fn!r}); define it with @njit(cache=True) at module level"
        )
        raise ConfigError(msg)
    return mod, qual


# callbacks get the arena ``a`` as ``ctx``: one array is the cheapest thing to pass down.
# ``{k}`` is the strategy's index in the run, ``{p}`` / ``{s}`` its params and state array.
_CALLS = {
    "on_book": "{f}(a, {k}, inst, {p}, {s})",
    "on_trade": "{f}(a, {k}, inst, {p}, {s})",
    "on_fill": (
        "{f}(a, {k}, h[H_WAKE_OID], h[H_WAKE_SIDE], h[H_WAKE_PRICE], h[H_WAKE_QTY], {p}, {s})"
    ),
    "on_order": "{f}(a, {k}, h[H_WAKE_OID], h[H_WAKE_ORDER_KIND], h[H_WAKE_REASON], {p}, {s})",
    "on_timer": "{f}(a, {k}, {p}, {s})",
    "on_start": "{f}(a, {k}, {p}, {s})",
    "on_stop": "{f}(a, {k}, {p}, {s})",
}
_WAKES = (
    ("WAKE_BOOK", "on_book"),
    ("WAKE_TRADE", "on_trade"),
    ("WAKE_FILL", "on_fill"),
    ("WAKE_ORDER", "on_order"),
    ("WAKE_TIMER", "on_timer"),
)


def param_values(strategy: Strategy, instrument_keys: Sequence[str]) -> list[Any]:
    """The values of strategy's ``p`` in field order (its :meth:`~framework.strategy.base.
    Strategy.compiled_params` applied)."""
    names = strategy.params.names()
    over = strategy.compiled_params(list(instrument_keys))
    unknown = sorted(set(over) - set(names))
    if unknown:
        msg = f"{strategy.name}.compiled_params() names no parameter: {unknown}"
        raise ConfigError(msg)
    return [over.get(n, getattr(strategy.params, n)) for n in names] or [0]


def groups(strategies: Sequence[Strategy], instrument_keys: Sequence[str]) -> list[range]:
    """The run's strategies as runs of neighbours of one class whose parameters have the
    same numba types: each such group is one loop in the runner (its params a homogeneous
    tuple, its states the rows of one array), so K copies of a strategy cost the code of one.
    """
    import numba

    out: list[range] = []
    last: Any = None
    for k, s in enumerate(strategies):
        key = (type(s), numba.typeof(tuple(param_values(s, instrument_keys))))
        if out and key == last:
            out[-1] = range(out[-1].start, k + 1)
        else:
            out.append(range(k, k + 1))
        last = key
    return out


def _dispatch(
    names: list[dict[str, str]],
    single: list[bool],
    pad: str,
    args: Callable[[int, str | None], tuple[str, str]],
    after: str,
    note: str = "",
) -> list[str]:
    """The lines that call the strategies' callbacks for wake-up ``w`` (one ``if`` per kind;
    ``after`` ends each branch): every strategy subscribed to the instrument for a book or
    trade wake, in the order of the run; the one named by ``H_WAKE_STRAT`` for the others.
    ``args(g, j)``: the params and state expressions of group ``g``'s member ``j`` (None:
    the group's only member, held outside the loop). ``note``: a line before each call,
    ``{k}`` the strategy's index."""
    out: list[str] = []

    def called(pad2: str, k: str, call: str) -> list[str]:
        return ([f"{pad2}{note.format(k=k)}"] if note else []) + [f"{pad2}{call}"]

    for wake, cbname in _WAKES:
        out.append(f"{pad}if w == {wake}:")
        if cbname in ("on_book", "on_trade"):
            out.append(f"{pad}    inst = h[H_WAKE_INST]")
            for g, m in enumerate(names):
                if cbname not in m:
                    continue
                if single[g]:
                    q, r = args(g, None)
                    call = _CALLS[cbname].format(f=m[cbname], k=f"b{g}", p=q, s=r)
                    out.append(f"{pad}    if sub[b{g}, inst]:")
                    out += called(f"{pad}        ", f"b{g}", call)
                else:
                    q, r = args(g, "j")
                    call = _CALLS[cbname].format(f=m[cbname], k=f"b{g} + j", p=q, s=r)
                    out += [
                        f"{pad}    for j in range(n{g}):",
                        f"{pad}        if sub[b{g} + j, inst]:",
                        *called(f"{pad}            ", f"b{g} + j", call),
                    ]
        else:
            out.append(f"{pad}    sid = h[H_WAKE_STRAT]")
            for g, m in enumerate(names):
                if cbname not in m:
                    continue
                if single[g]:
                    q, r = args(g, None)
                    call = _CALLS[cbname].format(f=m[cbname], k="sid", p=q, s=r)
                    out += [f"{pad}    if sid == b{g}:", *called(f"{pad}        ", "sid", call)]
                else:
                    q, r = args(g, "j")
                    call = _CALLS[cbname].format(f=m[cbname], k="sid", p=q, s=r)
                    out += [
                        f"{pad}    j = sid - b{g}",
                        f"{pad}    if j >= 0 and j < n{g}:",
                        *called(f"{pad}        ", "sid", call),
                    ]
        out.append(f"{pad}    {after}")
    return out


#: numba types a parameter may have for the core to call the callbacks itself (``wake``):
#: each is kept in one int64 word (a float's bits, a bool as 0 / 1)
_WORD_KINDS = {"int64": "i", "float64": "f", "bool": "b"}


def word_kinds(values: Sequence[Any]) -> str | None:
    """Per parameter value, how ``wake`` reads it back from its word (``i``, ``f``, ``b``);
    None when one of them does not fit a word (a string, a tuple...)."""
    import numba

    out = ""
    for v in values:
        k = _WORD_KINDS.get(str(numba.typeof(v)))
        if k is None:
            return None
        out += k
    return out


def param_words(values: Sequence[Any], kinds: str) -> list[int]:
    """``values`` as the int64 words ``wake`` reads (see :func:`word_kinds`)."""
    out = []
    for v, k in zip(values, kinds, strict=True):
        if k == "f":
            out.append(int(np.array([v], np.float64).view(np.int64)[0]))
        else:
            out.append(int(v))
    return out


#: words per group in the callbacks' data (``h[H_CB_DATA]``): the address of its params'
#: words, of its states, its size, state words, param words
CB_WORDS = 5


def _wake_source(names: list[dict[str, str]], kinds: list[str], single: list[bool]) -> list[str]:
    """``wake(p, w)``, a C function the core calls at a wake-up (``h[H_FN_WAKE]``): the
    runner's dispatch, with each group's params rebuilt from their words (a C function
    takes only plain ints, and the core reaches the states and words through
    ``h[H_CB_DATA]``). A callback that raises stops the run with ERR_CALLBACK (an exception
    cannot leave a C function). A group of one (the usual run) gets its state and words as
    rows, with no loop, as in ``run``."""
    n = len(names)
    lines = [
        "",
        "",
        "@cfunc(_types.int64(_types.int64, _types.int64), cache=True)",
        "def wake(ptr, w):",
        "    a = arena_at(ptr)",
        "    st = unpack_raw(a)",
        "    h = st.h",
        "    sub = st.sub",
        f"    cb = carray(_as_voidptr(h[H_CB_DATA]), ({CB_WORDS * n},), int64)",
        "    cur = -1",
        "    try:",
    ]
    for g in range(n):
        o = CB_WORDS * g
        lines.append(f"        b{g} = " + ("0" if g == 0 else f"b{g - 1} + n{g - 1}"))
        lines.append(f"        n{g} = cb[{o + 2}]")
        shape = f"(cb[{o + 3}],)" if single[g] else f"(n{g}, cb[{o + 3}])"
        words = f"(cb[{o + 4}],)" if single[g] else f"(n{g}, cb[{o + 4}])"
        lines += [
            f"        s{g} = carray(_as_voidptr(cb[{o + 1}]), {shape}, int64)",
            f"        w{g} = carray(_as_voidptr(cb[{o}]), {words}, int64)",
        ]
        if "f" in kinds[g]:
            lines.append(f"        v{g} = carray(_as_voidptr(cb[{o}]), {words}, float64)")

    def args(g: int, j: str | None) -> tuple[str, str]:
        at = "" if j is None else f"{j}, "
        fields = []
        for x, k in enumerate(kinds[g]):
            fields.append(
                f"w{g}[{at}{x}]" if k == "i" else
                f"v{g}[{at}{x}]" if k == "f" else f"w{g}[{at}{x}] != 0"
            )
        return f"P{g}({', '.join(fields)})", (f"s{g}" if j is None else f"s{g}[{j}]")

    # the strategy a callback is for, noted before the call, names the culprit of an error
    lines += _dispatch(names, single, "        ", args, "return 0", note="cur = {k}")
    lines += [
        "    except Exception:",
        "        h[H_ERROR] = ERR_CALLBACK",
        "        h[H_WAKE_STRAT] = cur",
        "        h[H_CB_WAKE] = w",
        "    return 0",
    ]
    return lines


def _source(
    strategies: Sequence[Strategy], spans: list[range], kinds: list[str | None]
) -> str:
    """The runner module's text; ``kinds``: each group's :func:`word_kinds` (``wake`` is
    written when every group's params fit words)."""
    lines = [
        "# Generated by hftlab (framework/engine/codegen.py). Do not edit.",
        "from numba import carray, cfunc, njit",
        "from numba import types as _types",
        "from numpy import float64, int64",
        "from framework.arena.fnptr import call_i64",
        "from framework.arena.state import (unpack_raw, H_WAKE_INST, H_WAKE_STRAT, H_WAKE_OID,",
        "    H_FN_ADVANCE, H_CB_DATA, H_CB_WAKE, H_ERROR, ERR_CALLBACK, arena_at, _as_voidptr,",
        "    H_WAKE_SIDE, H_WAKE_PRICE, H_WAKE_QTY, H_WAKE_ORDER_KIND, H_WAKE_REASON,",
        "    WAKE_BOOK, WAKE_TRADE, WAKE_FILL, WAKE_ORDER, WAKE_TIMER)",
    ]
    lines.append("from collections import namedtuple")
    # the params namedtuple type: the Params class's own when its module can name it (then a
    # strategy's callbacks compile once for all runs), else one defined here (numba pickles
    # the type to cache the runner, so it must be importable)
    for g, span in enumerate(spans):
        strat = strategies[span.start]
        pcls = type(strat.params)
        named = "<locals>" not in pcls.__qualname__ and pcls.__module__ != "__main__"
        if named and NB_TUPLE in vars(pcls):
            top, _, rest = pcls.__qualname__.partition(".")
            lines.append(f"from {pcls.__module__} import {top} as _P{g}")
            path = ".".join(x for x in (rest, NB_TUPLE) if x)
            lines.append(f"P{g} = _P{g}.{path}")
        else:
            fields = strat.params.names() or ["empty"]
            lines.append(f"P{g} = namedtuple('P{g}', {fields!r})")
    imported: dict[tuple[str, str], str] = {}
    names: list[dict[str, str]] = []
    for span in spans:
        cls = type(strategies[span.start])
        cb = cls.compiled
        assert cb is not None
        mine: dict[str, str] = {}
        for name in cb.names():
            mod, qual = _ref(cls, name)
            alias = imported.get((mod, qual))
            if alias is None:
                alias = f"_f{len(imported)}"
                imported[(mod, qual)] = alias
                lines.append(f"from {mod} import {qual} as {alias}")
            mine[name] = alias
        names.append(mine)
    # the runner: the strategies' callbacks around the engine core's ``advance`` (called
    # through its address: the runner never compiles the engine), all in compiled code.
    # Group g: params tuple p{g}, states s{g} (one row per strategy), strategies b{g}...;
    # the sizes are read from the arguments, so the text is the same for any number of copies
    # from two on
    args = ", ".join(f"p{g}, s{g}" for g in range(len(spans)))
    lines += [
        "",
        "",
        # nogil: the result sink's thread decodes and writes the recorder's rows meanwhile
        "@njit(cache=True, nogil=True)",
        f"def run(a, {args}):",
        "    st = unpack_raw(a)",
        "    h = st.h",
        "    sub = st.sub",
        "    p = int64(a.ctypes.data)",
        "    advance = h[H_FN_ADVANCE]",
    ]
    # a group of one (the usual run) gets its params and state row once, outside the loop:
    # a row view made per call would cost a reference count per callback
    single = [len(span) == 1 for span in spans]
    for g in range(len(spans)):
        lines.append(f"    b{g} = " + ("0" if g == 0 else f"b{g - 1} + n{g - 1}"))
        lines.append(f"    n{g} = s{g}.shape[0]")
        if single[g]:
            lines.append(f"    q{g} = p{g}[0]")
            lines.append(f"    r{g} = s{g}[0]")
    lines += [
        "    while True:",
        "        w = call_i64(advance, (p,))",
    ]
    lines += _dispatch(
        names,
        single,
        "        ",
        lambda g, j: (f"q{g}", f"r{g}") if j is None else (f"p{g}[{j}]", f"s{g}[{j}]"),
        "continue",
    )
    lines.append("        return w")
    if all(k is not None for k in kinds):
        lines += _wake_source(names, [k for k in kinds if k is not None], single)
    # per group, one entry per lifecycle callback, and a dispatcher for the Python path's
    # mixed runs: each for one strategy of the group (index k in the run)
    for g, m in enumerate(names):
        for cbname in ("on_start", "on_stop"):
            call = _CALLS[cbname].format(f=m[cbname], k="k", p="p", s="s") if cbname in m else ""
            lines += ["", "", "@njit(cache=True)", f"def {cbname}_{g}(a, k, p, s):"]
            lines.append("    " + (call or "pass"))
        lines += [
            "",
            "",
            "@njit(cache=True)",
            f"def dispatch_{g}(a, w, k, p, s):",
            "    st = unpack_raw(a)",
            "    h = st.h",
            "    inst = h[H_WAKE_INST]",
        ]
        for wake, cbname in _WAKES:
            if cbname in m:
                call = _CALLS[cbname].format(f=m[cbname], k="k", p="p", s="s")
                lines.append(f"    if w == {wake}:\n        {call}")
        lines.append("    return 0")
    return "\n".join(lines) + "\n"


def _fingerprint(strategies: list[Strategy], text: str) -> str:
    h = hashlib.sha256(text.encode())
    seen: set[str] = set()
    for s in strategies:
        for cls in type(s).__mro__:
            try:
                f = inspect.getsourcefile(cls)
            except TypeError:
                continue
            if f and f not in seen:
                seen.add(f)
                h.update(Path(f).read_bytes())
        cb = type(s).compiled
        for name in cb.names() if cb is not None else []:
            f = inspect.getsourcefile(sys.modules[_ref(type(s), name)[0]])
            if f and f not in seen:  # callbacks may live in another module than the class
                seen.add(f)
                h.update(Path(f).read_bytes())
    # the framework's own sources need no place here: the runners live in numba's cache
    # folder, which is named by a hash of them all (framework/__init__.py)
    return h.hexdigest()[:16]


def build_runner(strategies: Sequence[Strategy], instrument_keys: Sequence[str] = ()) -> ModuleType:
    """Import (writing it first if needed) the runner module for these compiled strategies
    (``instrument_keys``: the run's instruments, for ``compiled_params``)."""
    spans = groups(strategies, instrument_keys)
    kinds = [word_kinds(param_values(strategies[sp.start], instrument_keys)) for sp in spans]
    text = _source(strategies, spans, kinds)
    name = f"hftlab_runner_{_fingerprint(list(strategies), text)}"
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.py"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
        importlib.invalidate_caches()  # the folder's finder may have listed it before
    sys.path_importer_cache.pop(str(d), None)  # a finder cached while the folder was missing
    if str(d) not in sys.path:
        sys.path.append(str(d))
    return importlib.import_module(name)


class CompiledStrategies:
    """A run's compiled strategies: their runner module, each group's params tuple and state
    array (one row per strategy), and calls to start, stop and dispatch them.

    ``sids`` are the strategies' indices in the run (default 0, 1, ...). The runner's ``run``
    loop numbers them itself, so it serves only runs made of exactly these strategies; the
    per-strategy entries (:meth:`start`, :meth:`stop`, :meth:`dispatcher`) take any ``sids``
    (a Python-path run calls its compiled-only strategies through them).
    """

    def __init__(
        self,
        strategies: Sequence[Strategy],
        instrument_keys: Sequence[str],
        sids: Sequence[int] | None = None,
    ) -> None:
        self.strategies = list(strategies)
        self.sids = list(range(len(strategies))) if sids is None else list(sids)
        spans = groups(self.strategies, instrument_keys)
        self.module = build_runner(self.strategies, instrument_keys)
        #: per group: the params namedtuples (a tuple) and the int64 states (n x state size)
        self.params: list[tuple[Any, ...]] = []
        self.states: list[np.ndarray] = []
        #: per strategy: (group, row)
        self.where: list[tuple[int, int]] = []
        #: per group: its params as words (n x params), for the runner's ``wake``
        self.words: list[np.ndarray] = []
        for g, span in enumerate(spans):
            nt = getattr(self.module, f"P{g}")
            members = self.strategies[span.start : span.stop]
            values = [param_values(s, instrument_keys) for s in members]
            self.params.append(tuple(nt(*v) for v in values))
            size = max(type(members[0]).compiled.state_size, 1)  # type: ignore[union-attr]
            self.states.append(np.zeros((len(members), size), np.int64))
            self.where += [(g, j) for j in range(len(members))]
            kinds = word_kinds(values[0])  # the group's members share their params' types
            if kinds is not None:
                self.words.append(np.array([param_words(v, kinds) for v in values], np.int64))
        #: what ``wake`` reads through ``h[H_CB_DATA]`` (see CB_WORDS)
        self.cb_data = np.array(
            [
                [w.ctypes.data, s.ctypes.data, s.shape[0], s.shape[1], w.shape[1]]
                for w, s in zip(self.words, self.states, strict=False)
            ],
            np.int64,
        ).reshape(-1)

    def wake(self) -> tuple[int, int] | None:
        """The runner's ``wake`` C function and its data, as the addresses the arena's
        header takes (``H_FN_WAKE``, ``H_CB_DATA``): the core then calls the callbacks
        itself; None when the runner has none (a parameter that does not fit a word)."""
        fn = getattr(self.module, "wake", None)  # written when every group's params fit
        if fn is None:
            return None
        return int(fn.address), int(self.cb_data.ctypes.data)

    def run_args(self) -> list[Any]:
        """The arguments of the runner's ``run`` after the arena."""
        out: list[Any] = []
        for p, s in zip(self.params, self.states, strict=True):
            out += [p, s]
        return out

    def _call(self, fn: str, idx: int, arena: np.ndarray) -> None:
        g, j = self.where[idx]
        getattr(self.module, f"{fn}_{g}")(
            arena, self.sids[idx], self.params[g][j], self.states[g][j]
        )

    def start(self, arena: np.ndarray, idx: int | None = None) -> None:
        """Strategy ``idx``'s ``on_start`` (every strategy's, in order, when None)."""
        for i in range(len(self.strategies)) if idx is None else (idx,):
            self._call("on_start", i, arena)

    def stop(self, arena: np.ndarray, idx: int | None = None) -> None:
        """Strategy ``idx``'s ``on_stop`` (every strategy's, in order, when None); each
        keeps a copy of its final state (``Strategy.compiled_state``)."""
        for i in range(len(self.strategies)) if idx is None else (idx,):
            self._call("on_stop", i, arena)
            g, j = self.where[i]
            self.strategies[i].compiled_state = self.states[g][j].copy()

    def dispatcher(self, idx: int) -> Callable[[np.ndarray, int], Any]:
        """``fn(arena, wake)``: strategy ``idx``'s callback for a wake-up (WAKE_*)."""
        g, j = self.where[idx]
        fn = getattr(self.module, f"dispatch_{g}")
        k, p, s = self.sids[idx], self.params[g][j], self.states[g][j]
        return lambda arena, w: fn(arena, w, k, p, s)


__all__ = ["CompiledStrategies", "build_runner", "cache_dir", "groups", "param_values"]
