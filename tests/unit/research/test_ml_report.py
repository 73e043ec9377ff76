"""The learning layer's report: one self-contained page with the regime, anomaly and bandit
figures (embedded PNGs, nothing fetched)."""

from __future__ import annotations

import base64
import datetime as dt
import re

import numpy as np
import polars as pl

from framework.ingest.synthetic import generate_day
from research.ml.anomaly import features, fit_detector, generate_execution, inject_market
from research.ml.regime import fit_regimes
from research.ml.report import AnomalyView, RegimeView, write_report


def test_the_report_embeds_every_figure(tmp_path):
    days = [generate_day(date=dt.date(2024, 5, 6 + i), n_events=40_000, seed=90 + i)
            for i in range(2)]
    model = fit_regimes([days[0].events])
    day = days[1]
    pred, _ = model.predict(day.events)
    ev = day.events
    t0, t1 = int(ev["local_ts"][0]), int(ev["local_ts"][-1])
    _, clean = features(ev, generate_execution(t0, t1, seed=1), t0, t1)
    det = fit_detector(clean)
    bad, labels = inject_market(ev, n=3, seed=2)
    edges, x = features(bad, generate_execution(t0, t1, seed=1), t0, t1)
    per_day = pl.DataFrame({"policy": ["bandit", "random_0", "random_1", "set_0"] * 2,
                            "day": [dt.date(2024, 5, 8)] * 4 + [dt.date(2024, 5, 9)] * 4,
                            "pnl": [3.0, 1.0, -1.0, 2.0, 4.0, 0.0, 1.0, 1.0]})
    path = write_report(
        tmp_path / "out",
        regimes=RegimeView(ev, pred, model.names, tick=0.01, truth=day.labels),
        anomalies=AnomalyView(bad, edges, det.score(x), det.threshold, labels, tick=0.01),
        bandit=per_day,
        bandit_summary={"bandit": 7.0, "random": 0.5, "best_fixed": 3.0},
        notes=["seeded generated days"],
    )
    page = path.read_text()
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 3
    for data in imgs:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("Regimes", "Anomalies", "Online adaptation", "Notes"):
        assert f"<h2>{heading}</h2>" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "calm" in page
    assert not list((tmp_path / "out").glob(".tmp*"))
    assert np.isfinite(det.threshold)
