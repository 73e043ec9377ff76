"""The benchmark runner's judging and reporting (benchmarks/__main__.py, targets.py), on fake
rows and fake benchmark modules: no real benchmark runs here."""

from __future__ import annotations

import io
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import finish, main, report
from benchmarks.targets import KINDS, MET, MISSED, NOT_CHECKED, describe, evaluate, target


def row(**fields: Any) -> dict[str, Any]:
    """A finished row: 1 M events in 0.1 s (10 M/s), 500 MB, peer 4 M/s (ratio 2.5)."""
    base = {
        "name": "fake",
        "events": 1_000_000,
        "seconds": 0.1,
        "peak_rss_mb": 500.0,
        "peer": "peer",
        "peer_events": 1_000_000,
        "peer_seconds": 0.25,
    }
    return finish({**base, **fields})


def run_report(rows: list[dict[str, Any]], *, check: bool, as_json: bool = True) -> tuple:
    out = io.StringIO()
    rc = report(rows, as_json=as_json, check=check, out=out)
    return rc, out.getvalue()


# --- each target kind, both sides of its boundary ------------------------------------------
@pytest.mark.parametrize(
    ("kind", "met_at", "missed_at"),
    [
        ("min rate", 10e6, 10.5e6),  # the figure is 10 M/s
        ("max seconds", 0.1, 0.09),  # 0.1 s
        ("min ratio", 2.5, 2.6),  # 10 / 4 M/s
        ("max MB", 500, 499),  # 500 MB
        ("max time ratio", 0.4, 0.39),  # 0.1 s / 0.25 s
    ],
)
def test_each_target_kind_is_met_at_its_boundary_and_missed_past_it(
    kind: str, met_at: float, missed_at: float
) -> None:
    ok = evaluate(row(**target(kind, met_at)))
    assert (ok["status"], ok["met"]) == (MET, True)
    assert "reason" not in ok
    bad = evaluate(row(**target(kind, missed_at)))
    assert (bad["status"], bad["met"]) == (MISSED, False)
    assert describe(bad) in bad["reason"]


def test_every_kind_is_covered_by_the_boundary_test() -> None:
    assert set(KINDS) == {"min rate", "max seconds", "min ratio", "max MB", "max time ratio"}


def test_finish_derives_rates_ratio_and_time_ratio() -> None:
    r = row()
    assert r["events_per_s"] == 10e6
    assert r["peer_events_per_s"] == 4e6
    assert r["ratio"] == 2.5
    assert r["time_ratio"] == 0.4


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"error": "boom"}, "error: boom"),
        ({"unavailable": "no K-instance driver"}, "not available yet: no K-instance driver"),
        ({"seconds": None}, "no events_per_s was measured"),
        ({"target": None}, "no target declared"),
        ({"target_kind": "fastest"}, "unknown target kind 'fastest'"),
    ],
)
def test_rows_that_cannot_meet_their_target_are_missed_with_a_reason(
    fields: dict[str, Any], reason: str
) -> None:
    r = evaluate(row(**{**target("min rate", 1e6), **fields}))
    assert (r["status"], r["met"]) == (MISSED, False)
    assert reason in r["reason"]


def test_a_row_without_any_target_is_missed() -> None:
    r = evaluate(row())
    assert r["status"] == MISSED
    assert r["target"] is None
    assert r["target_kind"] is None


def test_an_unchecked_target_is_neither_met_nor_missed() -> None:
    r = evaluate(row(**target("max MB", 1, unchecked="size-dependent")))
    assert (r["status"], r["met"], r["reason"]) == (NOT_CHECKED, None, "size-dependent")


@pytest.mark.parametrize(
    ("kind", "value"), [("min speed", 1.0), ("min rate", 0), ("min rate", float("nan"))]
)
def test_target_rejects_unknown_kinds_and_non_positive_values(kind: str, value: float) -> None:
    with pytest.raises(ValueError, match="target"):
        target(kind, value)


# --- report: exit status and output -------------------------------------------------------
MET_ROW = row(name="fast", **target("min rate", 1e6))
MISSED_ROW = row(name="slow", **target("min rate", 1e9))
UNCHECKED_ROW = row(name="big", **target("max MB", 1, unchecked="quick run"))
ERROR_ROW = {"name": "bench_broken", "error": "Traceback ... ZeroDivisionError"}


@pytest.mark.parametrize(
    ("rows", "plain", "checked"),
    [
        ([MET_ROW], 0, 0),
        ([MET_ROW, UNCHECKED_ROW], 0, 0),
        ([MET_ROW, MISSED_ROW], 0, 1),
        ([MET_ROW, ERROR_ROW], 1, 1),
    ],
)
def test_check_fails_on_any_missed_target_and_errors_always_fail(
    rows: list[dict[str, Any]], plain: int, checked: int
) -> None:
    assert run_report(rows, check=False)[0] == plain
    assert run_report(rows, check=True)[0] == checked
    assert run_report(rows, check=True, as_json=False)[0] == checked


def test_json_is_one_object_per_line_with_target_fields() -> None:
    _, text = run_report([MET_ROW, MISSED_ROW, UNCHECKED_ROW, ERROR_ROW], check=True)
    lines = [json.loads(line) for line in text.splitlines()]
    assert [x["name"] for x in lines] == ["fast", "slow", "big", "bench_broken"]
    assert [x["met"] for x in lines] == [True, False, None, False]
    assert [x["target_kind"] for x in lines] == ["min rate", "min rate", "max MB", None]
    assert [x["target"] for x in lines] == [1e6, 1e9, 1, None]
    assert lines[1]["events_per_s"] == 10e6  # the measured figures are kept


def test_table_shows_target_status_peer_and_reason() -> None:
    _, text = run_report([MET_ROW, MISSED_ROW, ERROR_ROW], check=False, as_json=False)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["benchmark", "events", "seconds"]
    for col in ("target", "status", "peer"):
        assert col in lines[0]
    fast = next(x for x in lines if x.startswith("fast"))
    assert ">= 1.00 M/s" in fast
    assert " MET " in fast
    assert "peer: 4.00 M/s, x2.50" in fast
    slow = lines.index(next(x for x in lines if x.startswith("slow")))
    assert " MISSED " in lines[slow]
    assert "10.00 M/s against >= 1000.00 M/s" in lines[slow + 1]
    assert "error: Traceback ... ZeroDivisionError" in text
    assert lines[-1] == "1 MET, 2 MISSED, 0 not checked"


def test_table_shows_slow_rates_in_thousands() -> None:
    r = row(name="start", events=20_000, seconds=4.0, **target("max seconds", 2.0))
    _, text = run_report([r], check=False, as_json=False)
    assert "5.00 k/s" in next(x for x in text.splitlines() if x.startswith("start"))


def test_table_shows_a_time_ratio_row_against_its_peers_time_not_rate() -> None:
    r = row(name="write", **target("max time ratio", 0.5))
    _, text = run_report([r], check=False, as_json=False)
    line = next(x for x in text.splitlines() if x.startswith("write"))
    assert "<= 0.5 x peer time" in line
    assert "peer: 4.00 M/s, 0.40 x its time" in line
    assert "x2.50" not in line


def test_table_says_when_the_machine_was_busy() -> None:
    cores = os.cpu_count() or 1
    _, calm = run_report([{**MET_ROW, "load_1m": cores - 0.5}], check=False, as_json=False)
    assert "busy" not in calm
    _, busy = run_report([{**MET_ROW, "load_1m": cores + 4.0}], check=False, as_json=False)
    assert f"load up to {cores + 4.0:g} on {cores} cores" in busy.splitlines()[-1]


# --- main: modules run in their own processes -----------------------------------------------
FAKE_OK = """
from benchmarks.targets import target

def run(quick):
    n = 100 if quick else 1000
    return [
        {"name": "fake.ok", "events": n, "seconds": 1.0, **target("min rate", 50)},
        {"name": "fake.slow", "events": n, "seconds": 1.0, **target("min rate", 5000)},
    ]
"""
FAKE_CRASH = """
def run(quick):
    raise RuntimeError("the fake benchmark broke")
"""


@pytest.fixture
def fake_package(tmp_path: Path) -> Path:
    pkg = tmp_path / "fakebench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bench_ok.py").write_text(textwrap.dedent(FAKE_OK))
    (pkg / "bench_crash.py").write_text(textwrap.dedent(FAKE_CRASH))
    return pkg


def test_main_runs_each_module_in_a_process_and_check_counts_a_crash_as_missed(
    fake_package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "--quick", "ok"], folder=fake_package) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["name"], x["events"], x["met"]) for x in lines] == [
        ("fake.ok", 100, True),
        ("fake.slow", 100, False),
    ]
    assert all(x["peak_rss_mb"] > 0 for x in lines)  # measured in the child
    assert all(x["load_1m"] >= 0 for x in lines)
    assert main(["--json", "--check", "ok"], folder=fake_package) == 1
    capsys.readouterr()
    assert main(["--json", "crash"], folder=fake_package) == 1
    (crash,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert crash["name"] == "bench_crash"
    assert crash["met"] is False
    assert "the fake benchmark broke" in crash["reason"]


def test_main_names_a_filter_that_matches_nothing(
    fake_package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["nosuch"], folder=fake_package) == 2
    assert "no benchmark module matches 'nosuch'" in capsys.readouterr().err
