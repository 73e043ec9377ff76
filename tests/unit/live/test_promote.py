"""Promotion records and gates without sockets: gate 1 on a real walk-forward study (its
rule on both sides), the record's append-only history (failed, passed, forced entries with
who/when/evidence), the live gate's order, and ``hftlab live`` refusing (exit 2, one line)
a strategy whose record lacks a passed gate -- before any socket opens -- unless --force,
which is recorded. The paper gate and the enforced limits are in
tests/integration/live/test_promote_live.py (real sockets)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

import research
from framework.cli import main
from framework.core.errors import ConfigError
from framework.engine.config import LatencyConfig, QueueConfig
from framework.strategy.spec import strategies_from_words
from live.promote import (
    Candidate,
    append,
    check_backtest,
    load_record,
    require_live,
    run_gates,
)
from research.optimize import OptimizeResult
from tests.unit.research.study_days import write_days

DAYS = [dt.date(2024, 3, 4) + dt.timedelta(days=i) for i in range(3)]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> OptimizeResult:
    root = tmp_path_factory.mktemp("promote-store")
    write_days(root, DAYS, seed=3)
    return research.optimize(
        "one_tick_mm", venue="SIM", symbol="SYN", days=DAYS, space=["max_position=1:2"],
        store=root, out=root / "study", workers=0, mode="compiled", walk_forward="1:1",
        latency=LatencyConfig(entry_ns=1_000_000, response_ns=1_000_000),
        queue=QueueConfig(model="power", n=2.0), report=False)


def _params(tmp: Path, **values: object) -> Path:
    p = tmp / "params.json"
    p.write_text(json.dumps(values))
    return p


def _chosen(study: OptimizeResult, tmp: Path) -> Candidate:
    row = study.best.row(0, named=True)
    return Candidate.from_file("one_tick_mm", _params(tmp, max_position=row["max_position"]))


def test_gate_backtest_passes_only_for_the_chosen_set_above_the_oos_sharpe(
    study: OptimizeResult, tmp_path: Path
) -> None:
    oos = study.walk.oos_stats["sharpe"]  # type: ignore[union-attr]
    cand = _chosen(study, tmp_path)
    assert cand.key == study.best["key"][0]  # the file's set is the study's key
    above = check_backtest(study.out, cand, min_oos_sharpe=oos - 1.0)
    assert above.passed, above.why
    assert above.evidence["walk_forward"]["out_of_sample"]["sharpe"] == pytest.approx(oos)
    assert len(above.evidence["windows"]) == 2
    assert set(above.evidence["files"]) == {"study.json", "trials.parquet", "overfit.json",
                                            "walk_forward.parquet"}
    at = check_backtest(study.out, cand, min_oos_sharpe=oos)
    assert not at.passed
    assert "out-of-sample Sharpe" in at.why
    # the default rule (Sharpe > 0) on this losing market maker
    assert check_backtest(study.out, cand).passed == (oos > 0)
    # a set the study evaluated but did not choose
    other = study.trials.filter(pl.col("key") != cand.key).row(0, named=True)
    c2 = Candidate.from_file("one_tick_mm", _params(tmp_path, max_position=other["max_position"]))
    r = check_backtest(study.out, c2, min_oos_sharpe=-1e9)
    assert not r.passed
    assert "not the study's choice" in r.why
    # a set it never evaluated, and another strategy class
    c3 = Candidate.from_file("one_tick_mm", _params(tmp_path, max_position=7))
    assert "never evaluated" in check_backtest(study.out, c3, min_oos_sharpe=-1e9).why
    c4 = Candidate.from_file("queue_aware_mm", _params(tmp_path))
    assert "the study is of" in check_backtest(study.out, c4).why


def test_a_study_without_walk_forward_or_files_fails_the_gate(
    study: OptimizeResult, tmp_path: Path
) -> None:
    cand = _chosen(study, tmp_path)
    copy = tmp_path / "nowf"
    copy.mkdir()
    for name in ("study.json", "trials.parquet"):
        (copy / name).write_bytes((study.out / name).read_bytes())
    over = json.loads((study.out / "overfit.json").read_text())
    (copy / "overfit.json").write_text(json.dumps({**over, "walk_forward": None}))
    assert "no walk-forward" in check_backtest(copy, cand, min_oos_sharpe=-1e9).why
    (copy / "trials.parquet").unlink()
    with pytest.raises(ConfigError, match=r"no trials\.parquet there"):
        check_backtest(copy, cand)


def test_the_record_keeps_every_attempt_and_force_needs_a_reason(
    study: OptimizeResult, tmp_path: Path
) -> None:
    cand = _chosen(study, tmp_path)
    rec_dir = tmp_path / "sessions"
    oos = study.walk.oos_stats["sharpe"]  # type: ignore[union-attr]
    failed = run_gates(rec_dir, cand, study=str(study.out), min_oos_sharpe=oos + 1)
    assert [c.passed for c in failed] == [False]
    with pytest.raises(ConfigError, match="--force needs --reason"):
        run_gates(rec_dir, cand, study=str(study.out), min_oos_sharpe=oos + 1, force=True)
    # the live gate before the paper gate: recorded as failed
    live = run_gates(rec_dir, cand, max_position=2, max_notional=1e6)
    assert not live[0].passed
    assert "backtest, paper not passed" in live[0].why
    run_gates(rec_dir, cand, study=str(study.out), min_oos_sharpe=oos + 1, force=True,
              reason="synthetic days lose; checked by hand")
    run_gates(rec_dir, cand, study=str(study.out), min_oos_sharpe=oos - 1)
    rec = load_record(rec_dir, cand)
    assert rec is not None
    h = rec.history
    assert [(e["gate"], e["passed"], e.get("forced", False)) for e in h] == [
        ("backtest", False, False), ("live", False, False), ("backtest", True, True),
        ("backtest", True, False)]
    assert h[2]["reason"] == "synthetic days lose; checked by hand"
    assert h[2]["checked"] is False  # forced past a failed check, and the check is kept
    for e in h:
        assert e["by"]
        assert e["at"]
        assert e["evidence"]
    assert rec.data["params"]["max_position"] == cand.params["max_position"]
    assert rec.missing() == ["paper", "live"]
    # the file on disk is the whole record, nothing else left in the folder
    assert json.loads(rec.path.read_text())["history"] == h
    assert sorted(p.name for p in rec_dir.iterdir() if not p.name.startswith(".")) == [
        rec.path.name]


def test_a_record_of_another_set_is_refused(tmp_path: Path) -> None:
    a = Candidate.from_file("one_tick_mm", _params(tmp_path, max_position=2))
    b = Candidate.from_file("one_tick_mm", _params(tmp_path, max_position=3))
    append(tmp_path, a, {"gate": "backtest", "passed": True})
    a.record_path(tmp_path).rename(b.record_path(tmp_path))
    with pytest.raises(ConfigError, match="is about"):
        load_record(tmp_path, b)


def test_live_start_needs_every_gate_and_takes_the_record_limits(tmp_path: Path) -> None:
    (s,) = strategies_from_words(["one_tick_mm"], params=["max_position=2"],
                                 risk=["max_notional=500"])
    cand = Candidate.of(s)
    for gate in ("backtest", "paper"):
        append(tmp_path, cand, {"gate": gate, "passed": True})
    from live.promote import PromotionError

    with pytest.raises(PromotionError, match="gate\\(s\\) live not passed"):
        require_live(tmp_path, [s], force=False, reason=None)
    append(tmp_path, cand, {"gate": "live", "passed": True,
                            "limits": {"max_position": 3, "max_notional": 900.0}})
    words = require_live(tmp_path, [s], force=False, reason=None)
    # the tighter of the record's and the run's own
    assert (s.risk_limits.max_position, s.risk_limits.max_notional) == (3.0, 500.0)
    assert words == ["OneTickMM.max_notional=500.0", "OneTickMM.max_position=3.0"]
    # --force past a missing record: allowed, and recorded with its reason
    (t,) = strategies_from_words(["one_tick_mm"], params=["max_position=4"])
    assert require_live(tmp_path, [t], force=True, reason="incident 7 hedge") == []
    rec = load_record(tmp_path, Candidate.of(t))
    assert rec is not None
    (e,) = rec.history
    assert (e["gate"], e["forced"], e["reason"]) == ("live-start", True, "incident 7 hedge")
    assert e["missing"] == ["backtest", "paper", "live"]


def test_hftlab_live_refuses_an_unpromoted_strategy_before_opening_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from framework.ingest.synthetic import generate_day
    from framework.store import TickStore

    day = generate_day(date=DAYS[0], n_events=2_000, seed=1, mode="l3")
    TickStore(tmp_path / "store").write(day.instrument, DAYS[0], day.events)
    base = ["live", "one_tick_mm", "--store", str(tmp_path / "store"), "--venue", "SIM",
            "--symbol", "SYN", "--date", DAYS[0].isoformat(), "--feed",
            "itch://127.0.0.1:9?rerequest=10", "--gateway",
            "ouch://127.0.0.1:11?user=u&password=p", "--param", "max_position=2"]
    journal = tmp_path / "sessions" / "live-1"
    assert main([*base, "--journal", str(journal)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "is not promoted to live: no promotion record in" in err
    assert str(tmp_path / "sessions") in err
    assert not journal.exists()  # nothing opened
    assert main(base) == 2  # no journal, no --records: says where the record would be
    assert "give --journal DIR" in capsys.readouterr().err
    assert main([*base, "--journal", str(journal), "--force"]) == 1
    assert "--force needs --reason" in capsys.readouterr().err


@pytest.mark.parametrize(("params", "limits", "reason"), [
    (["max_position=5"], {"max_position": 1, "max_notional": 1e9}, "max_position_instrument"),
    ([], {"max_position": 5, "max_notional": 1.0}, "max_notional"),
])
def test_the_record_limits_are_enforced_by_the_compiled_risk_checks(
    tmp_path: Path, params: list[str], limits: dict[str, float], reason: str
) -> None:
    """A promoted strategy in the runner (paper, packet by packet): every order beyond the
    live gate's limits is denied with its reason code, none of them reaches the venue."""
    from live.feeds.itch_mold import MoldFeedHandler
    from live.runner import LiveRunner
    from tests.unit.live.test_runner import DATE, T0, _packets

    (s,) = strategies_from_words(["one_tick_mm"], params=params)
    cand = Candidate.of(s)
    for gate in ("backtest", "paper"):
        append(tmp_path, cand, {"gate": gate, "passed": True})
    append(tmp_path, cand, {"gate": "live", "passed": True, "limits": limits})
    require_live(tmp_path, [s], force=False, reason=None)
    rep, packets = _packets()
    feed = MoldFeedHandler(listen=("127.0.0.1", 0), date=DATE,
                           price_step=rep.price_step,  # type: ignore[attr-defined]
                           qty_step=rep.qty_step)  # type: ignore[attr-defined]
    r = LiveRunner(instrument=rep.instrument, strategies=[s], feed=feed,  # type: ignore[attr-defined]
                   gateway=None, mode="compiled")
    try:
        r.start(T0)
        t = T0
        for p in packets:
            t += 2_000_000
            if feed.apply_packets([p], t):
                r._run(t)
        res = r.finish()
    finally:
        feed.close()
    assert res.denials.height > 0
    assert set(res.denials["reason"].to_list()) == {reason}
    placed = res.orders.filter(pl.col("status") != "denied")
    if reason == "max_notional":
        assert placed.height == 0  # every order's notional is above 1
    else:  # it trades up to the limit, never beyond, though its own limit is 5
        lot = float(rep.instrument.lot_size)  # type: ignore[attr-defined]
        assert placed.height > 0
        assert res.fills.height > 0
        assert res.fills["position"].abs().max() == pytest.approx(1 * lot)


def test_hftlab_promote_bad_input_is_one_line_and_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _params(tmp_path, max_position=2)
    rec = tmp_path / "rec"
    cases = [
        (["--params", str(good)], "give --records DIR"),
        (["--params", str(tmp_path / "none.json"), "--records", str(rec)], "cannot read it"),
        (["--params", str(good), "--records", str(rec), "--max-position", "2"],
         "needs both --max-position N"),
        (["--params", str(good), "--records", str(rec), "--study", str(tmp_path)],
         "no study.json, trials.parquet, overfit.json there"),
        (["--params", str(good), "--records", str(rec), "--journal", str(tmp_path / "j")],
         "no journal there"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    cases.append((["--params", str(bad), "--records", str(rec)], "give one JSON object"))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"max_postion": 2}))
    cases.append((["--params", str(wrong), "--records", str(rec)], "did you mean"))
    for argv, why in cases:
        assert main(["promote", "one_tick_mm", *argv]) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert why in err[0], err
    assert not any(rec.glob("promotion-*.json"))
    # no gate asked: the record's state
    assert main(["promote", "one_tick_mm", "--params", str(good), "--records", str(rec)]) == 0
    assert "no promotion record of OneTickMM" in capsys.readouterr().out
