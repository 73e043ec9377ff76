"""Walk-forward inside a study, on generated days with a regime change.

Eight days from the synthetic generator: the first four are its default market, where the
one-tick market maker is adversely selected and loses more the more inventory it may hold;
from day five on the spread is four ticks and the mid barely moves, so quoting inside the
spread earns, the more the larger the inventory limit. A walk-forward study must follow the
regime: a small ``max_position`` on the early windows, a large one once the train window
lies in the new regime -- with a grid (every set on every day, chosen per window exactly
as a study of the train days alone ranks them) and with TPE (a study per train window).

On a strategy whose parameter only changes its random behaviour (a seed), on eight days of
the generator's default market (where a position's luck outweighs the cost of crossing), the
set that is best over all days is best by luck on those very days: its in-sample result
beats the stitched out-of-sample one.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import research
from framework.core.events import BUY, SELL
from framework.engine.config import LatencyConfig, QueueConfig
from framework.ingest.synthetic import SyntheticParams
from framework.strategy import Params, Strategy, param
from framework.strategy.context import Context
from research.optimize import OptimizeResult
from research.space import Space, params_key
from research.walkforward import choose, windows
from strategies.one_tick_mm import OneTickMM
from tests.unit.research.study_days import write_days

DAYS = [dt.date(2024, 4, 1) + dt.timedelta(days=i) for i in range(8)]
#: from this day on the market maker's regime: wide spread, a quiet mid
CHANGE = 4
QUIET = SyntheticParams(
    spread_ticks=4,
    volatility=(0.05, 0.05, 0.05),
    jump_rate_per_s=(0.0, 0.0, 0.0),
    trend_drift=(0.0, 0.0),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    regimes = [QUIET if i >= CHANGE else SyntheticParams() for i in range(len(DAYS))]
    return write_days(tmp_path_factory.mktemp("regimes"), DAYS, seed=100, params=regimes)


@pytest.fixture(scope="module")
def noisy_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_days(tmp_path_factory.mktemp("noisy"), DAYS, seed=200)


def study(store: Path, out: Path, strategy: Any, **kw: Any) -> OptimizeResult:
    args: dict[str, Any] = {
        "venue": "SIM",
        "symbol": "SYN",
        "days": DAYS,
        "store": store,
        "out": out,
        "study": "wf",
        "workers": 0,
        "objective": "pnl",
        "latency": LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        "queue": QueueConfig(model="power", n=2.0),
    }
    return research.optimize(strategy, **(args | kw))


def _max_position(r: OptimizeResult, key: str) -> int:
    return int(json.loads(r.results.filter(pl.col("key") == key)["params"][0])["max_position"])


def test_grid_walk_forward_follows_the_regime(store: Path, tmp_path: Path) -> None:
    r = study(
        store, tmp_path / "grid", "one_tick_mm", space=["max_position=1,3,8"],
        params={"improve": True}, walk_forward="2:1", mode="compiled",
    )  # fmt: skip
    w = r.walk
    assert w is not None
    assert r.evaluated == 3 * len(DAYS)  # every set on every day once; windows only read
    chosen = [_max_position(r, k) for k in w.windows["key"]]
    assert chosen[0] == 1  # trained on the losing regime: the least inventory
    assert chosen[-1] == 8  # trained on the earning one: the most
    assert w.distinct_choices >= 2
    assert w.oos["day"].to_list() == DAYS[2:]
    # each window's choice is the best set of a study of its train days alone
    for win in windows(DAYS, w.spec):
        folder = tmp_path / f"train{win.index}"
        shutil.copytree(tmp_path / "grid", folder)
        alone = study(
            store, folder, "one_tick_mm", space=["max_position=1,3,8"],
            params={"improve": True}, days=list(win.train), mode="compiled", report=False,
        )  # fmt: skip
        assert alone.evaluated == 0
        assert alone.best["key"][0] == w.windows["key"][win.index]
    # the headline: the stitched out-of-sample run, beside the in-sample set on the same days
    assert w.oos_stats["pnl"] == pytest.approx(w.oos["pnl"].sum())
    assert w.is_stats["n_days"] == w.oos_stats["n_days"] == len(DAYS) - 2
    saved = (tmp_path / "grid" / "overfit.json").read_text()
    assert '"walk_forward": {' in saved
    assert pl.read_parquet(tmp_path / "grid" / "walk_forward.parquet").height == len(w.windows)


def test_tpe_walk_forward_runs_a_study_per_train_window(store: Path, tmp_path: Path) -> None:
    import optuna

    r = study(
        store, tmp_path / "tpe", "one_tick_mm", space=["max_position=1,3,8"],
        params={"improve": True}, walk_forward="2:1", mode="compiled", method="tpe", trials=4,
    )  # fmt: skip
    w = r.walk
    assert w is not None
    chosen = [_max_position(r, k) for k in w.windows["key"]]
    assert chosen[0] == 1
    assert chosen[-1] == 8
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "tpe" / "optuna.journal"))
    )
    curves = r.equity()
    space = Space.parse(OneTickMM, ["max_position=1,3,8"], {"improve": True})
    for win in windows(DAYS, w.spec):
        st = optuna.load_study(study_name=f"wf.wf{win.index}", storage=storage)
        assert len(st.trials) == 4
        # the window's trials ran on its train days only
        for t in st.trials:
            assert len(t.intermediate_values) <= len(win.train)
        done = [t for t in st.trials if t.state.name == "COMPLETE"]
        keys = [params_key(space.make(t.params)) for t in done]
        best = choose(r.results, curves, win.train, ["pnl"], r.interval_ns, keys)
        assert best is not None
        assert best["key"] == w.windows["key"][win.index]
        # and the choice was evaluated on its test days
        test = r.results.filter(pl.col("key") == best["key"], pl.col("day").is_in(win.test))
        assert test.height == len(win.test)


class NoiseParams(Params):
    seed: int = param(0, ge=0)  #: only chooses the random path of the trades


class NoiseTaker(Strategy):
    """Every half hour, a seeded coin picks a position of -1, 0 or +1 lot and a market order
    gets there: no information, only luck (and the cost of crossing, small beside it)."""

    Params = NoiseParams

    def on_start(self, ctx: Context) -> None:
        self.rng = np.random.default_rng(self.params.seed)
        ctx.set_timer(30 * 60_000_000_000)

    def on_timer(self, ctx: Context) -> None:
        want = int(self.rng.integers(-1, 2))
        have = ctx.position(0)
        if want != have and ctx.open_order_count(0) == 0:
            ctx.submit_market(0, BUY if want > have else SELL, abs(want - have))


def test_noise_is_worse_out_of_sample(noisy_store: Path, tmp_path: Path) -> None:
    r = study(noisy_store, tmp_path / "noise", NoiseTaker, space=["seed=0:15"], walk_forward="3:1")
    w = r.walk
    assert w is not None
    assert r.trials["n_fills"].min() > 0  # every seed trades
    # the best seed over all days wins on the test days by the luck it was chosen for
    assert w.oos_stats["pnl"] < w.is_stats["pnl"]
    assert w.oos_pnl < w.is_pnl
