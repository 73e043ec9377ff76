"""The engine core compiles once, whatever strategies run.

Strategy callbacks, generated runners and the Python API reach the core through addresses in
the arena header, so compiling them must not compile (numba would link in and compile again)
any of the engine's functions. Checked in a new process with an empty cache, where numba
would have to compile every engine function such code used: its compile events list them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from framework.arena.state import (
    H_FN_ADVANCE,
    H_FN_CANCEL,
    H_FN_FINISH,
    H_FN_MODIFY,
    H_FN_SUBMIT,
    unpack,
)
from framework.engine.backtest import Backtest
from framework.ingest.synthetic import generate_day
from framework.kernel.core import core
from strategies.one_tick_mm import OneTickMM

REPO = Path(__file__).resolve().parents[3]

#: modules of the engine core: none of their functions may be compiled for a strategy
CORE_MODULES = (
    "framework.kernel.loop",
    "framework.kernel.venue",
    "framework.kernel.local",
    "framework.arena.messages",
    "framework.arena.models",
    "framework.risk.checks",
    "framework.book.l3",
)

_CHILD = """
import json, sys
from numba.core import event
from framework.kernel.core import advance_code, finish
from framework.strategy.context import _cancel_at, _submit_at
from framework.strategy import nb
from framework.engine.codegen import build_runner
from numba import types
from strategies.avellaneda_stoikov import AvellanedaStoikov
from strategies.one_tick_mm import OneTickMM

seen = []
class Rec(event.Listener):
    def on_start(self, ev):
        d = ev.data["dispatcher"].py_func
        seen.append((d.__module__, d.__qualname__))
    def on_end(self, ev):
        pass
event.register("numba:compile", Rec())
arr, i8 = types.Array(types.int64, 1, "C"), types.int64
for fn, sig in ((advance_code, (i8,)), (_submit_at, (i8,) * 7),
                (_cancel_at, (i8,) * 3), (nb.modify, (arr, i8, i8, i8, i8)),
                (finish, (arr,))):
    fn.compile(sig)
strategies = [AvellanedaStoikov(), OneTickMM()]
mod = build_runner(strategies)
ps = [(mod.P0(*[getattr(s.params, n) for n in s.params.names()]),) for s in strategies[:1]]
ps.append((mod.P1(*[getattr(strategies[1].params, n) for n in strategies[1].params.names()]),))
st = types.Array(types.int64, 2, "C")  # a group's states: one row per strategy
import numba
mod.run.compile((arr, numba.typeof(ps[0]), st, numba.typeof(ps[1]), st))
print(json.dumps(seen))
"""


def test_strategies_runners_and_api_compile_without_the_engine(tmp_path: Path) -> None:
    env = dict(os.environ, HFTLAB_NUMBA_CACHE=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=900, check=True,
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    names = {f"{m}.{q}" for m, q in seen}
    # the strategies' callbacks and the runner were compiled here ...
    assert any(m == "strategies.one_tick_mm" for m, _ in seen), names
    assert any(q == "run" for _, q in seen), names
    # ... and nothing of the engine core
    assert sorted(n for n in names if n.startswith(CORE_MODULES)) == []


def test_backtests_install_the_core_addresses() -> None:
    day = generate_day(date=dt.date(2024, 1, 2), n_events=500, seed=5)
    bt = Backtest(instruments=[day.instrument], streams=[[day.events]], strategies=[OneTickMM()])
    r = bt.run()
    assert r.events == len(day.events)
    h = unpack(bt.engine.arena).h
    c = core()
    words = [H_FN_ADVANCE, H_FN_SUBMIT, H_FN_CANCEL, H_FN_MODIFY, H_FN_FINISH]
    assert [int(h[w]) for w in words] == [c.addresses[w] for w in words]
    assert np.all(h[words] != 0)
    assert len(set(c.addresses.values())) == len(words)
