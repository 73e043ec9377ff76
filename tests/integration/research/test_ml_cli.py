"""``hftlab regimes`` and ``hftlab anomalies`` through the real CLI on a generated store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framework.cli import main
from framework.features import FeatureModel
from framework.store.tickstore import TickStore
from research.ml.regime import as_l2, true_regimes

WHERE = ["--venue", "SIM", "--symbol", "SYN"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("store"))
    args = ["data", "generate", "--store", root, "--date", "2024-01-02", "--days", "3",
            "--events", "120000", "--seed", "7"]
    assert main(args) == 0
    return root


def test_regimes_writes_a_model_that_loads_and_a_report(store: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "reg"
    rc = main(["regimes", *WHERE, "--store", store, "--fit-from", "2024-01-02", "--fit-to",
               "2024-01-03", "--show", "2024-01-04", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "adjusted Rand index against the stored labels" in text
    ari = float(text.split("stored labels ")[1].split()[0])
    assert ari >= 0.6
    assert (out / "ml_report.html").is_file()
    model = FeatureModel.load(out / "regime_model.npz")
    ts = TickStore(store)
    ev = as_l2(ts.read("SIM", "SYN", "2024-01-04"))
    from framework.features.kernels import F_REGIME, compute_features

    pred = compute_features(ev, model=model)[:, F_REGIME]
    ok = ~np.isnan(pred)
    truth = true_regimes(ev, ts.read_labels("SIM", "SYN", "2024-01-04"))
    assert (pred[ok] == truth[ok]).mean() > 0.8


def test_anomalies_lists_the_flagged_seconds(store: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "an"
    rc = main(["anomalies", *WHERE, "--store", store, "--fit-from", "2024-01-02",
               "--show", "2024-01-04", "--out", str(out), "--top", "3", "--false-alarm",
               "0.005"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert "seconds flagged" in lines[0]
    assert sum(" UTC " in line for line in lines) == 3
    assert (out / "ml_report.html").is_file()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--fit-from", "2024-02-01", "--show", "2024-01-04"], "no stored days of SIM/SYN"),
        (["--fit-from", "2024-01-02", "--show", "2024-03-04"], "--show 2024-03-04: no stored"),
        (["--fit-from", "2024-01-03", "--fit-to", "2024-01-02", "--show", "2024-01-04"],
         "is before --fit-from"),
        (["--fit-from", "2024-01-02", "--show", "2024-01-04", "--inputs", "spread,colour"],
         "choose from"),
        (["--fit-from", "2024-01-02", "--show", "2024-01-04", "--halflife-s", "0"],
         "--halflife-s 0"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(store: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 extra: list[str], says: str):
    out = tmp_path / "never"
    assert main(["regimes", *WHERE, "--store", store, "--out", str(out), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert says in err[0]
    assert not out.exists()
