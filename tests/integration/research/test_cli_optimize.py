"""``hftlab optimize`` from the command line: a study prints its best sets, a re-run
command and where its results are; a second run finds everything done; bad input is one
line and a non-zero exit status (an unreachable scheduler within seconds, not a hang)."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from framework.cli import main


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two small generated days, Thursday 2024-01-04 and Friday 2024-01-05."""
    root = str(tmp_path_factory.mktemp("store"))
    args = ["data", "generate", "--store", root, "--days", "2", "--events", "20000"]
    assert main([*args, "--date", "2024-01-04"]) == 0
    return root


def optimize(store: str, *extra: str) -> list[str]:
    return [
        "optimize", "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
        "--from", "2024-01-04", "--to", "2024-01-07", *extra,
    ]  # fmt: skip


def test_a_study_prints_its_best_sets_and_resumes(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study"
    args = optimize(
        store, "--space", "max_position=1:3", "order_qty=1,2", "--workers", "0",
        "--out", str(out), "--param", "improve=true", "--risk", "max_open_orders=6",
    )  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr()
    assert "6 sets (6 complete) x 2 day(s); 12 set-days evaluated, 0 found done" in text.out
    assert "best by sharpe:" in text.out
    assert f"results: {out}" in text.out
    # no progress bar when stderr is not a terminal (a cold cache may say it compiles)
    assert "\r" not in text.err
    assert "%|" not in text.err
    rerun = next(line for line in text.out.splitlines() if "re-run the best:" in line)
    assert "--param improve=true" in rerun
    assert "--risk max_open_orders=6" in rerun
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials.height == 6
    assert "improve" not in trials.columns  # fixed, not searched: in each set's params
    params = pl.read_parquet(out / "results" / "*.parquet")["params"]
    assert params.str.contains('"improve":true').all()
    assert main(args) == 0
    assert "0 set-days evaluated, 12 found done" in capsys.readouterr().out


def test_a_walk_forward_study_prints_out_of_sample_first_and_writes_its_report(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path_factory.mktemp("week"))
    gen = ["data", "generate", "--store", root, "--days", "4", "--events", "20000"]
    assert main([*gen, "--date", "2024-01-08"]) == 0  # Monday to Thursday
    capsys.readouterr()
    out = tmp_path / "study"
    args = [
        "optimize", "one_tick_mm", "--store", root, "--venue", "SIM", "--symbol", "SYN",
        "--from", "2024-01-08", "--to", "2024-01-11", "--space", "max_position=1:3",
        "order_qty=1,2", "--workers", "0", "--out", str(out), "--walk-forward", "2:1",
    ]  # fmt: skip
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("walk-forward 2:1:rolling: 2 window(s)")
    assert lines[1].startswith("  OUT OF SAMPLE (stitched test days): pnl ")
    assert lines[2].startswith("  in sample (best over all days, same test days): pnl ")
    text = "\n".join(lines)
    assert "deflated Sharpe ratio" in text
    assert "probability of backtest overfitting" in text
    assert f"report: {out / 'report.html'}" in text
    page = (out / "report.html").read_text()
    for title in (
        "Summary", "Overfitting", "Walk-forward", "In sample against out of sample",
        "Heat map", "Slices", "Parameter importance",
    ):  # fmt: skip
        assert f"<h2>{title}</h2>" in page
    assert "Deflated Sharpe ratio" in page
    assert "Probability of backtest overfitting" in page
    assert "Walk-forward windows" in page
    # each top set's re-run line is the study's own backtest command with its parameters
    base = "hftlab backtest one_tick_mm --venue SIM --symbol SYN --from 2024-01-08 --to 2024-01-11"
    assert page.count(base) >= 6
    assert (out / "overfit.json").is_file()
    # --no-report: the same study, no page rewritten
    (out / "report.html").unlink()
    assert main([*args, "--no-report"]) == 0
    assert "report:" not in capsys.readouterr().out
    assert not (out / "report.html").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--space", "max_postion=1:3"], "did you mean 'max_position'?"),
        (["--space", "max_position=5:2"], "empty range (5 > 2)"),
        (
            ["--space", "max_position=1:3", "--to", "2024-01-08"],
            "no stored data of SIM/SYN on 2024-01-08",
        ),
        (["--space", "max_position=1:3", "--method", "tpe"], "--method tpe needs --trials N"),
        (["--space", "max_position=1", "--latency", "constant:-1ms"], "'-1ms' is out of range"),
        (["--space", "max_position=1:3", "--param", "max_position=2"], "search it or fix it"),
        (["--space", "max_position=1:3", "--trials", "4"], "--trials 4 does not apply to"),
        (["--space", "max_position=1:3", "--walk-forward", "2:1"], "needs at least 3 days"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    rc = main(optimize(store, "--workers", "0", "--out", str(tmp_path / "s"), *extra))
    err = capsys.readouterr().err
    assert rc != 0
    assert message in err
    assert err.count("\n") == 1


def test_an_unreachable_scheduler_is_one_line_within_seconds(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    args = ["--space", "max_position=1:3", "--scheduler", f"tcp://127.0.0.1:{port}"]
    rc = main(optimize(store, "--out", str(tmp_path / "s"), *args))
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert rc == 1
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err
    assert err.count("\n") == 1
    assert elapsed < 30  # the connect timeout is 5 s: never a hang
