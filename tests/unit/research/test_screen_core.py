"""The vectorbt screen: every set a column of one portfolio (each as if alone), costs as
declared, the ranking by the metric, and vectorbt kept to research.screen."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from framework.core.errors import ConfigError
from framework.core.instrument import Instrument
from research.screen import core
from research.screen.core import Costs, run_screen, space_of
from research.screen.signals import BUILTIN

from .test_screen_signals import synthetic_bars

INST = Instrument(venue="SIM", symbol="SYN", tick_size="0.01")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(3_600, seed=11)


def test_each_set_of_one_portfolio_is_what_it_is_alone(bars: pl.DataFrame) -> None:
    sig = BUILTIN["imbalance"]
    sets = space_of(sig, ["threshold=0.3,0.6,0.9", "hold=3,30"]).grid()
    costs = Costs(fee_per_lot=0.002, slippage_ticks=0.5)
    together = run_screen(bars, sig, sets, instrument=INST, costs=costs)
    assert together.table.height == 6
    for values in sets:
        alone = run_screen(bars, sig, [values], instrument=INST, costs=costs).table
        row = together.table.filter(
            (pl.col("threshold") == values["threshold"]) & (pl.col("hold") == values["hold"])
        )
        for m in ("pnl", "fees", "n_trades", "sharpe", "max_drawdown"):
            np.testing.assert_allclose(row[m].to_numpy(), alone[m].to_numpy(), rtol=1e-12)


def test_slippage_and_fees_cost_what_they_say_per_order(bars: pl.DataFrame) -> None:
    sig = BUILTIN["breakout"]
    sets = space_of(sig, ["lookback=5,20,60", "hold=5,50"]).grid()
    free = run_screen(bars, sig, sets, instrument=INST, costs=Costs(slippage_ticks=0.0))
    costly = run_screen(
        bars, sig, sets, instrument=INST, costs=Costs(fee_per_lot=0.003, slippage_ticks=0.75)
    )
    key = ["lookback", "hold"]
    f = free.table.sort(key)
    c = costly.table.sort(key)
    assert (f["n_trades"] > 0).all()
    assert f["n_trades"].to_list() == c["n_trades"].to_list()
    orders = f["n_orders"].to_numpy()
    assert (orders >= 2 * f["n_trades"].to_numpy() - 1).all()  # the last may stay open
    tick = float(INST.tick_size)
    np.testing.assert_allclose(c["fees"].to_numpy(), orders * 0.003)
    np.testing.assert_allclose(
        f["pnl"].to_numpy() - c["pnl"].to_numpy(), orders * (0.75 * tick + 0.003), atol=1e-9
    )
    np.testing.assert_allclose(c["gross"].to_numpy(), c["pnl"].to_numpy() + c["fees"].to_numpy())
    assert f["fees"].to_list() == [0.0] * len(sets)


def test_sets_are_ranked_by_the_metric_best_first(bars: pl.DataFrame) -> None:
    sig = BUILTIN["trade_flow"]
    sets = space_of(sig, ["window=1,5,20", "threshold=0.05,0.3,0.9", "hold=2,20"]).grid()
    for metric, best_high in core.METRICS.items():
        t = run_screen(bars, sig, sets, instrument=INST, costs=Costs(), metric=metric).table
        assert t["rank"].to_list() == list(range(1, len(sets) + 1))
        v = t[metric].cast(pl.Float64).fill_nan(None)
        known = v.drop_nulls().to_numpy()
        assert np.array_equal(known, np.sort(known)[::-1] if best_high else np.sort(known))
        assert v.is_null().arg_true().to_list() == list(range(len(known), len(v)))
    with pytest.raises(ConfigError, match="--metric 'alpha' is unknown"):
        run_screen(bars, sig, sets, instrument=INST, costs=Costs(), metric="alpha")


def test_the_equity_of_a_set_ends_at_its_pnl(bars: pl.DataFrame) -> None:
    sig = BUILTIN["micro_reversion"]
    sets = space_of(sig, ["window=10,60", "z=0.5,1.5"]).grid()
    r = run_screen(bars, sig, sets, instrument=INST, costs=Costs())
    last = r.equity.group_by("rank").agg(pl.col("equity").last()).sort("rank")
    np.testing.assert_allclose(last["equity"].to_numpy(), r.table["pnl"].to_numpy())
    assert r.best(1) == {n: r.table[n][0] for n in r.names}
    with pytest.raises(ConfigError, match="--pick 9"):
        r.best(9)


def test_a_screen_too_big_for_memory_is_refused(
    bars: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "MAX_CELLS", bars.height * 3)
    sig = BUILTIN["imbalance"]
    sets = space_of(sig, ["threshold=0.1,0.2,0.3,0.4"]).grid()
    with pytest.raises(ConfigError, match="4 sets x 3,600 bars is more than"):
        run_screen(bars, sig, sets, instrument=INST, costs=Costs())


def test_without_vectorbt_the_screen_says_how_to_install_it(
    bars: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "vectorbt", None)  # import vectorbt raises ImportError
    sig = BUILTIN["imbalance"]
    with pytest.raises(ConfigError, match=r"pip install 'hftlab\[research\]'") as err:
        run_screen(bars, sig, [{"threshold": 0.5}], instrument=INST, costs=Costs())
    assert "\n" not in str(err.value)


def test_only_research_screen_imports_vectorbt() -> None:
    found = []
    for top in ("framework", "research", "strategies", "live"):
        for path in sorted((REPO / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                if any(n.split(".")[0] == "vectorbt" for n in names):
                    found.append(str(path.relative_to(REPO)))
    assert found
    assert {Path(p).parent.as_posix() for p in found} == {"research/screen"}


@pytest.mark.parametrize(("slip", "size"), [(-1.0, 1), (float("nan"), 1), (0.5, 0)])
def test_bad_costs_are_refused(slip: float, size: int) -> None:
    with pytest.raises(ConfigError):
        Costs.of(INST, slippage_ticks=slip, size=size)
