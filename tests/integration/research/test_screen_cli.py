"""``hftlab screen`` from the command line, on generated days with and without a planted
signal: the screen finds the planted edge, the tick backtest of the chosen set trades it and
the report holds both; the control day shows no such edge; bad input is one line, exit
status 2 and nothing written.

The planted signal: ``informed_flow`` makes aggressors lean toward the latent mid the book
is about to follow, so the last second's trade flow predicts the next mid move. Trending
regimes are switched off on both days (no drift, no flow bias): a trend makes past flow
predict moves too, and the control is to have no edge at all. The screen fills at the mid
(``--slippage 0``): the planted move is about a tick, which a taker pays to cross -- what
the tick-level side of the report shows.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from framework.cli import main
from framework.ingest.synthetic import SyntheticParams, generate_day
from framework.store.tickstore import TickStore
from research.screen.bars import bars

DAY = dt.date(2024, 1, 2)
QUIET = {"trend_flow_bias": 0.0, "trend_drift": (0.0, 0.0)}
SPACE = ["--space", "window=1,5,30", "threshold=0.2,0.6", "hold=10,60"]


def _store(root: Path, informed: float, **knobs: float) -> str:
    params = SyntheticParams(informed_flow=informed, **QUIET, **knobs)  # type: ignore[arg-type]
    g = generate_day(date=DAY, n_events=200_000, seed=3, params=params)
    TickStore(root).write(g.instrument, DAY, g.events)
    return str(root)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _store(tmp_path_factory.mktemp("planted"), 1.0)


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _store(tmp_path_factory.mktemp("control"), 0.0)


def screen_args(store: str, out: Path, *extra: str, signal: str = "trade_flow") -> list[str]:
    return [
        "screen", signal, "--store", store, "--venue", "SIM", "--symbol", "SYN",
        "--from", str(DAY), "--slippage", "0", "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def planted_run(planted: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("planted_out") / "screen"
    rc = main(screen_args(planted, out, *SPACE, "--to-strategy", "trade_flow"))
    return {"rc": rc, "out": out, "table": pl.read_parquet(out / "screen.parquet")}


def test_the_screen_finds_the_planted_signal_and_the_tick_backtest_trades_it(
    planted_run: dict[str, Any],
) -> None:
    assert planted_run["rc"] == 0
    out: Path = planted_run["out"]
    t = planted_run["table"]
    assert t.height == 12
    best = t.row(0, named=True)
    assert best["rank"] == 1
    assert best["pnl"] > 0
    assert best["sharpe"] > 0
    assert best["window"] == 1  # the informed prints lead the move by about a second
    assert best["n_trades"] > 100
    # the tick-level run of the best set: through run_from_store, its own tables and report
    summary = (out / "tick" / "summary.json").read_text()
    fills = int(re.search(r'"n_fills":\s*(\d+)', summary)[1])  # type: ignore[index]
    assert fills > 0
    page = (out / "report.html").read_text()
    assert "Vectorised against tick-level" in page
    assert "vectorised (screen)" in page
    assert "tick-level backtest" in page
    assert "as <b>trade_flow</b>" in page
    assert "halflife_ms=346.574" in page  # 1 bar of 1 s: 1000 ms x ln 2 / 2
    assert page.count("<img") >= 3  # heat map, equity of the best, vectorised vs tick
    assert (out / "tick" / "report.html").is_file()
    assert (out / "equity.parquet").is_file()
    assert not list(out.parent.glob(".*tmp*"))


def test_the_control_day_shows_no_such_edge(
    control: str, planted_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "control"
    assert main(screen_args(control, out, *SPACE)) == 0
    text = capsys.readouterr().out
    assert "screen trade_flow: 12 sets x 23,400 bars (1 day(s))" in text
    assert "best by sharpe:" in text
    c = pl.read_parquet(out / "screen.parquet")
    p = planted_run["table"]
    assert c["sharpe"].max() < p["sharpe"].max() / 4  # type: ignore[operator]
    chosen = p.row(0, named=True)
    same = c.filter(
        (pl.col("window") == chosen["window"])
        & (pl.col("threshold") == chosen["threshold"])
        & (pl.col("hold") == chosen["hold"])
    ).row(0, named=True)
    assert same["pnl"] < chosen["pnl"] / 4
    assert not (out / "tick").exists()


def test_an_imbalance_screen_becomes_the_imbalance_taker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # planted: the touch imbalance leans toward where the latent mid is 5 s later
    store = _store(tmp_path / "store", 0.0, signal_strength=1.0)
    out = tmp_path / "imbalance"
    args = screen_args(
        store, out, "--space", "threshold=0.3,0.6,0.9", "hold=5,30", "--slippage", "0.5",
        "--to-strategy", "imbalance", signal="imbalance",
    )  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    best = pl.read_parquet(out / "screen.parquet").row(0, named=True)
    assert best["threshold"] >= 0.6
    assert best["pnl"] > 0
    assert "tick backtest of #1 as imbalance_taker" in text
    summary = (out / "tick" / "summary.json").read_text()
    assert int(re.search(r'"n_fills":\s*(\d+)', summary)[1]) > 0  # type: ignore[index]
    assert "as <b>imbalance_taker</b>" in (out / "report.html").read_text()


def test_any_signal_becomes_a_generated_bar_strategy(planted: str, tmp_path: Path) -> None:
    out = tmp_path / "breakout"
    args = screen_args(
        planted, out, "--every", "10s", "--space", "lookback=3,30", "hold=2,6",
        "--to-strategy", "bars", "--pick", "2", signal="breakout",
    )  # fmt: skip
    assert main(args) == 0
    page = (out / "report.html").read_text()
    assert "Set #2" in page
    assert "research.screen.tick:BarSignal" in page
    summary = (out / "tick" / "summary.json").read_text()
    assert int(re.search(r'"n_fills":\s*(\d+)', summary)[1]) > 0  # type: ignore[index]


#: the bars the generated strategy last gave the signal below
SEEN: dict[str, pl.DataFrame] = {}


def record_bars(bars: pl.DataFrame, *, k: int = 1) -> tuple[Any, ...]:
    """A signal that trades nothing and keeps the bars it was given."""
    SEEN["bars"] = bars
    none = np.zeros(bars.height, np.bool_)
    return none, none, none, none


def test_the_generated_strategy_sees_the_bars_the_screen_computed(
    planted: str, tmp_path: Path
) -> None:
    args = [
        "backtest", "research.screen.tick:BarSignal", "--store", planted, "--venue", "SIM",
        "--symbol", "SYN", "--from", str(DAY), "--out", str(tmp_path / "bt"), "--no-report",
        "--param", f"signal={__name__}:record_bars", "--param", "every_ms=10000",
    ]  # fmt: skip
    assert main(args) == 0
    got = SEEN["bars"]
    want = bars(TickStore(planted), "SIM", "SYN", DAY, "10s")
    # its last bar ends after the day's last event: the run is over before its timer
    assert got.height == want.height - 1
    assert got.equals(want.head(got.height))


@pytest.mark.parametrize(
    ("extra", "signal", "match"),
    [
        ([*SPACE], "trade_flw", "unknown signal 'trade_flw'; did you mean 'trade_flow'"),
        (["--space", "window=a:b"], "trade_flow", "window='a' is not an int"),
        (["--space", "windows=1,2"], "trade_flow", "did you mean 'window'"),
        (
            [*SPACE],
            "tests.unit.research.test_screen_signals:nope",
            "has no function 'nope'",
        ),
        ([*SPACE, "--to-strategy", "one_tick_mm"], "trade_flow", "maps to 'trade_flow' or"),
        ([*SPACE, "--metric", "alpha"], "trade_flow", "--metric 'alpha' is unknown"),
        ([*SPACE, "--every", "0s"], "trade_flow", "--every '0s'"),
        ([*SPACE, "--every", "1us"], "trade_flow", "give longer bars"),
        ([*SPACE, "--top", "0"], "trade_flow", "--top 0"),
        ([*SPACE, "--to-strategy", "trade_flow", "--pick", "13"], "trade_flow", "--pick 13"),
        ([*SPACE, "--to-strategy", "trade_flow", "--latency", "slow"], "trade_flow", "slow"),
        # the tick run refuses (no compiled callbacks) after the screen: still nothing kept
        (
            ["--space", "lookback=5,10", "--every", "30s", "--to-strategy", "bars", "--mode",
             "compiled"],
            "breakout",
            "compiled",
        ),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    planted: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    signal: str,
    match: str,
) -> None:
    out = tmp_path / "out"
    assert main(screen_args(planted, out, *extra, signal=signal)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("hftlab: error: ")
    assert match in err[0]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_no_stored_days_is_one_line_exit_2(
    planted: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = screen_args(planted, out, *SPACE)
    args[args.index("--from") + 1] = "2023-06-01"
    assert main([*args, "--to", "2023-06-09"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"hftlab: error: no stored days of SIM/SYN from 2023-06-01 to 2023-06-09 in {planted}; "
        "see `hftlab data ls` (or `hftlab data generate` for a synthetic day)"
    ]
    assert not out.exists()
