"""A fitted regime model reaches runs from the command line: `hftlab backtest
--feature-model`, and `hftlab live --feature-model`, whose journal carries the model itself
(parity and recovery read the regimes the session read, whatever became of the file)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import types
from pathlib import Path

import numpy as np
import pytest

from framework.analysis.results import SUMMARY_FILE
from framework.cli import main
from framework.core.errors import ConfigError
from framework.features.model import FeatureModel
from framework.ingest.synthetic import generate_day
from framework.store import TickStore
from live.journal import KIND_META, JournalWriter
from live.replay import Session, recover
from research.ml.regime import fit_regimes

DATE = dt.date(2024, 1, 2)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("fm")
    day = generate_day(date=DATE, n_events=20_000, seed=2)
    TickStore(root / "store").write(day.instrument, DATE, day.events)
    path = fit_regimes([day.events], halflife_ns=2_000_000_000).feature_model().save(
        root / "regime_model.npz"
    )
    return str(root / "store"), path


def test_the_model_round_trips_through_its_bytes(fitted: tuple[str, Path]) -> None:
    m = FeatureModel.load(fitted[1])
    back = FeatureModel.from_bytes(m.to_bytes())
    assert back.label_names == m.label_names
    assert back.inputs == m.inputs
    for name in ("mean", "scale", "weights", "means", "precisions_cholesky", "labels"):
        assert np.array_equal(getattr(back, name), getattr(m, name)), name
    with pytest.raises(ConfigError, match=r"the journal.*is not a feature model"):
        FeatureModel.from_bytes(b"garbage", where="the journal")


def test_backtest_reads_the_model_given_on_the_command_line(
    fitted: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, model = fitted
    base = ["backtest", "one_tick_mm", "--store", store, "--venue", "SIM", "--symbol", "SYN",
            "--from", DATE.isoformat(), "--no-report"]
    assert main([*base, "--out", str(tmp_path / "run"), "--feature-model", str(model)]) == 0
    cfg = json.loads((tmp_path / "run" / SUMMARY_FILE).read_text())["config"]
    assert cfg["feature_models"]["SIM/SYN"]["labels"] == list(FeatureModel.load(model)
                                                              .label_names)
    capsys.readouterr()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    assert main([*base, "--out", str(tmp_path / "bad-run"), "--feature-model", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "is not a feature model" in err[0]
    assert not (tmp_path / "bad-run").exists()


def _journal(where: Path, model: bytes | None, store: str) -> None:
    inst = TickStore(store).instrument("SIM", "SYN", DATE).to_dict()
    meta = {"version": 1, "strategy": ["one_tick_mm"], "param": [], "risk": [],
            "gateway": "ouch", "instrument": inst, "date": DATE.isoformat(), "price_step": 100,
            "qty_step": 1, "locate": 1}
    if model is not None:
        meta["feature_model"] = {"path": "m.npz",
                                 "npz_base64": base64.b64encode(model).decode("ascii")}
    with JournalWriter(where, fsync="never") as w:
        w.append(KIND_META, json.dumps(meta).encode())


def test_the_journal_carries_the_model_and_a_restart_must_bring_the_same(
    fitted: tuple[str, Path], tmp_path: Path
) -> None:
    data = FeatureModel.load(fitted[1]).to_bytes()
    _journal(tmp_path / "j", data, fitted[0])
    meta = json.loads(next(iter(_records(tmp_path / "j"))).payload)
    s = Session(meta, None, DATE, 100, 1, 1)  # type: ignore[arg-type]
    assert s.feature_model().to_bytes() == data
    for other in (None, data[:-1] + b"?"):  # none, or a changed file
        fm = None if other is None else {"path": "m.npz",
                                         "npz_base64": base64.b64encode(other).decode()}
        runner = types.SimpleNamespace(meta={"strategy": ["one_tick_mm"], "param": [],
                                             "risk": [], "feature_model": fm})
        with pytest.raises(ConfigError, match="give the same --feature-model"):
            recover(runner, tmp_path / "j")  # type: ignore[arg-type]


def _records(where: Path) -> list:  # type: ignore[type-arg]
    from live.journal import read

    return list(read(where))
