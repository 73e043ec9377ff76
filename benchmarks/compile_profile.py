"""Where the engine core's cold compile goes: wall and CPU seconds, with a breakdown.

Usage::

    python -m benchmarks.compile_profile              # the core (framework.kernel.core)
    python -m benchmarks.compile_profile --cprofile   # also the top functions by own time
    python -m benchmarks.compile_profile --json       # one JSON object
    python -m benchmarks.compile_profile --cli one_tick_mm   # the CLI's first backtest
    python -m benchmarks.compile_profile --speed      # run speed of what it compiled

Each measurement runs in a NEW process with an EMPTY numba cache (a fresh temporary folder
as ``HFTLAB_NUMBA_CACHE``), so nothing compiled earlier is loaded. The machine is shared:
compare variants by the process's CPU seconds, which other processes do not inflate.

The breakdown comes from numba's own events: ``numba:compile`` (one per function compiled,
inclusive of the functions it compiles in turn) and ``numba:run_pass`` (each compiler pass),
and from timers around the stages of numba's back end (lowering to LLVM IR in Python, the
CPython and cfunc wrappers, LLVM's function and module passes, machine code). Passes and
stages are counted exclusive of what is nested in them, so their rows add up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: runs in the child process: compiles the core and prints one JSON line
_CHILD = r"""
import cProfile, json, pstats, resource, sys, time
from collections import defaultdict

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

w0, c0 = time.perf_counter(), cpu()
from numba.core import event

stack = []                    # [name, start, time of nested passes]
passes = defaultdict(float)  # pass name -> exclusive seconds
compiled = []                # (qualname, inclusive seconds)

class Passes(event.Listener):
    def on_start(self, ev):
        stack.append([ev.data["name"].split(" [")[0], time.perf_counter(), 0.0])
    def on_end(self, ev):
        name, t, inner = stack.pop()
        el = time.perf_counter() - t
        passes[name] += el - inner
        if stack:
            stack[-1][2] += el

starts = {}
nest = []  # [time of nested compiles] per compile in progress
class Compiles(event.Listener):
    def on_start(self, ev):
        starts[id(ev.data["dispatcher"]), str(ev.data["args"])] = (time.perf_counter(), len(nest))
        nest.append(0.0)
    def on_end(self, ev):
        d = ev.data["dispatcher"]
        t, level = starts.pop((id(d), str(ev.data["args"])))
        el = time.perf_counter() - t
        inner = nest.pop()
        if nest:
            nest[-1] += el
        name = d.py_func.__module__ + "." + d.py_func.__qualname__
        compiled.append((name, el, level, el - inner))

# the stages of numba's back end, timed exclusive of each other (a stage that compiles
# another function counts that function's stages under their own names)
from numba.core import codegen, lowering
spans = defaultdict(float)
per_lib = defaultdict(float)  # library -> its LLVM module passes and machine code
def timed(cls, meth, label):
    f = getattr(cls, meth)
    def wrapper(*a, **k):
        stack.append([label, time.perf_counter(), 0.0])
        try:
            return f(*a, **k)
        finally:
            name, t, inner = stack.pop()
            el = time.perf_counter() - t
            spans[name] += el - inner
            if label.startswith("LLVM m"):
                per_lib[a[0].name] += el - inner
            if stack:
                stack[-1][2] += el
    setattr(cls, meth, wrapper)
timed(lowering.Lower, "lower", "lower to LLVM IR (Python)")
timed(lowering.Lower, "create_cpython_wrapper", "CPython wrappers (Python)")
timed(lowering.Lower, "create_cfunc_wrapper", "cfunc wrappers (Python)")
timed(codegen.CPUCodeLibrary, "add_ir_module", "parse IR")
timed(codegen.CPUCodeLibrary, "_optimize_functions", "LLVM function passes")
timed(codegen.CPUCodeLibrary, "_optimize_final_module", "LLVM module passes")
timed(codegen.JITCodeLibrary, "_finalize_specific", "LLVM machine code")
timed(codegen.CPUCodeLibrary, "_get_module_for_linking", "LLVM link / clone")

import framework.kernel.core as core_mod
w1, c1 = time.perf_counter(), cpu()
event.register("numba:run_pass", Passes())
event.register("numba:compile", Compiles())
core_s = []
_core = core_mod.core
def timed_core(**kw):
    t = time.perf_counter()
    try:
        return _core(**kw)
    finally:
        core_s.append(time.perf_counter() - t)
core_mod.core = timed_core
prof = cProfile.Profile() if sys.argv[1] == "1" else None
if prof:
    prof.enable()
if sys.argv[2] == "core":
    core_mod.core(quiet=True)
else:
    from framework.cli import main
    rc = main(sys.argv[3:])
    if rc:
        sys.exit(rc)
if prof:
    prof.disable()
w2, c2 = time.perf_counter(), cpu()
in_passes = sum(passes.values())
by_name = {}  # name -> [compiles, own seconds, largest inclusive seconds]
for n, t, _, own in compiled:
    k, o, big = by_name.get(n, (0, 0.0, 0.0))
    by_name[n] = (k + 1, o + own, max(big, t))
out = {
    "import_wall_s": round(w1 - w0, 2), "import_cpu_s": round(c1 - c0, 2),
    "wall_s": round(w2 - w1, 2), "cpu_s": round(c2 - c1, 2),
    "core_wall_s": round(sum(core_s), 2),
    "numba_passes_s": round(in_passes, 2),
    "backend_s": round(sum(spans.values()), 2),
    "functions_compiled": len(compiled),
    "backend": {k: round(v, 2) for k, v in sorted(spans.items(), key=lambda kv: -kv[1])},
    "libraries": {k: round(v, 2) for k, v in sorted(per_lib.items(), key=lambda kv: -kv[1])[:15]},
    "passes": {k: round(v, 2) for k, v in sorted(passes.items(), key=lambda kv: -kv[1])[:12]},
    "functions": [[n, k, round(own, 2), round(t, 2)] for n, (k, own, t) in sorted(
        by_name.items(), key=lambda kv: -kv[1][1])[:25]],
    "roots": [[n, round(t, 2)] for n, t, lv, _ in sorted(compiled, key=lambda x: -x[1]) if lv == 0],
}
if prof:
    st = pstats.Stats(prof)
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:25]  # by own time
    out["own_time"] = [[f"{fn[0].split('site-packages/')[-1]}:{fn[1]} {fn[2]}",
                        round(v[2], 2), round(v[3], 2)] for fn, v in rows]
print("@@PROFILE@@" + json.dumps(out))
"""


def measure(*, cprofile: bool = False, strategy: str | None = None) -> dict[str, Any]:
    """Compile in a new process with an empty cache: the core alone, or (``strategy``) the
    CLI's whole first backtest of that strategy on bench_startup's 20 k-event day."""
    with tempfile.TemporaryDirectory(prefix="hftlab-compile-") as t:
        tmp = Path(t)
        cache = tmp / "numba"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        what = ["core"]
        if strategy is not None:
            from benchmarks.bench_startup import DATE, N_EVENTS

            store = tmp / "store"
            gen = [
                "data",
                "generate",
                "--store",
                str(store),
                "--date",
                DATE,
                "--seed",
                "3",
                "--events",
                str(N_EVENTS),
            ]
            subprocess.run(
                [sys.executable, "-m", "framework.cli", *gen],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=True,
            )  # with the caller's cache
            what = [
                "cli",
                "backtest",
                strategy,
                "--venue",
                "SIM",
                "--symbol",
                "SYN",
                "--from",
                DATE,
                "--store",
                str(store),
                "--out",
                str(tmp / "out"),
                "--no-report",
            ]
        env.update(HFTLAB_NUMBA_CACHE=str(cache), NUMBA_CACHE_DIR=str(cache))
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, "1" if cprofile else "0", *what],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    for line in proc.stdout.splitlines():
        if line.startswith("@@PROFILE@@"):
            out: dict[str, Any] = json.loads(line[len("@@PROFILE@@") :])
            out["what"] = " ".join(what[:3])
            out["load_1m"] = round(os.getloadavg()[0], 2)
            return out
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
    msg = f"the compile child exited {proc.returncode}: {tail}"
    raise RuntimeError(msg)


def speed(n: int, repeat: int) -> dict[str, float]:
    """Rates of what the core compiled (this process, the caller's cache): the do-nothing
    replay and one_tick_mm compiled in M events/s, the Python path in M callbacks/s, per
    CPU second of the replay; the best of ``repeat`` runs each (the rows of bench_engine,
    without its peer)."""
    import datetime as dt
    import types as pytypes

    import framework.engine.backtest as bt_mod
    from benchmarks.bench_engine import Idle, _run
    from framework.ingest.synthetic import generate_day
    from strategies.one_tick_mm import OneTickMM

    # the replay's clock (Backtest's replay_seconds) made the main thread's CPU time: on a
    # shared machine wall time measures the neighbours as much as the code
    bt_mod.time = pytypes.SimpleNamespace(perf_counter=time.thread_time)  # type: ignore[attr-defined]
    day = generate_day(date=dt.date(2024, 1, 2), n_events=n, seed=11)
    ev, inst = day.events, day.instrument
    m = min(n, 2_000_000)
    out: dict[str, float] = {}
    for name, make, mode, k, key in (
        ("replay_Mev_s", Idle, "compiled", n, "events"),
        ("one_tick_mm_Mev_s", OneTickMM, "compiled", n, "events"),
        ("python_Mcb_s", OneTickMM, "python", m, "callbacks"),
    ):
        _run(ev[:5000], inst, make(), mode)  # compile / load outside the clock
        best = 0.0
        for _ in range(repeat):
            r = _run(ev[:k], inst, make(), mode)
            count = r.events if key == "events" else int(r.config["callbacks"])
            best = max(best, count / r.config["replay_seconds"] / 1e6)
        out[name] = round(best, 2)
    return out


def _print(r: dict[str, Any]) -> None:
    print(
        f"{r['what']}: {r['wall_s']} s wall, {r['cpu_s']} s CPU, of which the core "
        f"{r['core_wall_s']} s wall ({r['functions_compiled']} functions; numba passes "
        f"{r['numba_passes_s']} s, back end {r['backend_s']} s); import "
        f"{r['import_wall_s']} s wall; load {r['load_1m']}"
    )
    print("back end (exclusive s):")
    for k, v in r["backend"].items():
        print(f"  {v:8.2f}  {k}")
    print("LLVM module passes and machine code by library (s):")
    for k, v in r["libraries"].items():
        print(f"  {v:8.2f}  {k}")
    print("numba passes (exclusive s):")
    for k, v in r["passes"].items():
        print(f"  {v:8.2f}  {k}")
    print("functions (compiles, own s, largest inclusive s):")
    for n, k, own, t in r["functions"]:
        print(f"  {k:4d}  {own:8.2f}  {t:8.2f}  {n}")
    print("compiled from Python (inclusive s; the core's cfuncs are not among them):")
    for n, t in r["roots"]:
        print(f"  {t:8.2f}  {n}")
    for fn, own, cum in r.get("own_time", []):
        print(f"  own {own:7.2f}  cum {cum:7.2f}  {fn}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cprofile", action="store_true", help="top functions by own time")
    ap.add_argument("--json", action="store_true", help="one JSON object")
    ap.add_argument(
        "--cli",
        metavar="STRATEGY",
        help="the CLI's whole first backtest of STRATEGY, not the core alone",
    )
    ap.add_argument(
        "--speed",
        action="store_true",
        help="only the run speed of the compiled core (the caller's cache)",
    )
    ap.add_argument("--events", type=int, default=10_000_000, help="events for --speed")
    ap.add_argument("--repeat", type=int, default=3, help="runs per --speed row (best)")
    args = ap.parse_args(argv)
    if args.speed:
        print(json.dumps(speed(args.events, args.repeat)))
        return 0
    r = measure(cprofile=args.cprofile, strategy=args.cli)
    if args.json:
        print(json.dumps(r))
    else:
        _print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
