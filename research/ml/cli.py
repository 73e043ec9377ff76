"""``hftlab regimes`` and ``hftlab anomalies``: fit on stored days, show another, write the
model and an HTML report (registered by :func:`research.cli.register`)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

_REGIMES_EPILOG = """\
examples:
  fit on a week of generated days, show the next one (its stored labels are compared):
    hftlab regimes --venue SIM --symbol SYN --fit-from 2024-01-02 --fit-to 2024-01-08 \\
        --show 2024-01-09
  the model is written as regime_model.npz; strategies read its regime when a run gets it:
    hftlab backtest my_strategy ... --feature-model OUT/regime_model.npz
    hftlab live my_strategy ... --feature-model OUT/regime_model.npz
  (in Python: framework.features.FeatureModel.load(path), passed as feature_model=...)
"""

_ANOMALIES_EPILOG = """\
examples:
  learn what a normal second looks like on two days, flag the unusual ones of a third:
    hftlab anomalies --venue XNAS --symbol AMZN --fit-from 2012-06-21 --show 2012-06-21
  market features only (message bursts, spread blow-outs): the store holds no execution
  stream; research.ml.anomaly adds fill and reject ratios for a run's own orders.
"""


def register(sub: Any, store_parent: argparse.ArgumentParser) -> None:
    """Add ``regimes`` and ``anomalies`` to the ``hftlab`` parser ``sub``."""
    from framework.cli import date_arg as _date

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--venue", required=True, help="venue of the data")
        p.add_argument("--symbol", required=True, help="symbol of the data")
        p.add_argument("--fit-from", type=_date, required=True, metavar="DATE",
                       help="first day to fit on")
        p.add_argument("--fit-to", type=_date, metavar="DATE",
                       help="last day to fit on (default --fit-from)")
        p.add_argument("--show", type=_date, required=True, metavar="DATE",
                       help="the day to apply the fitted model to")
        p.add_argument("--out", metavar="DIR", help="where the report goes "
                       "(default reports/<verb>/VENUE_SYMBOL_DAY)")

    reg = sub.add_parser(
        "regimes", parents=[store_parent],
        help="fit a regime model on stored days and show it on another (report, model file)",
        description="Fit a regime model (Gaussian mixture on online market inputs) on stored "
        "days, apply it causally to another day, and write regime_model.npz and "
        "ml_report.html.",
        epilog=_REGIMES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(reg)
    reg.add_argument("--halflife-s", type=float, default=20.0,
                     help="memory of the model's inputs in seconds (default 20)")
    reg.add_argument("--inputs", help="comma-separated model inputs (default "
                     "log_volatility,rel_trade_rate,rel_message_rate,abs_trade_flow: the "
                     "rates relative to the day's own level, so a model fitted on quiet days "
                     "reads a busy one)")
    reg.set_defaults(func=cmd_regimes)
    an = sub.add_parser(
        "anomalies", parents=[store_parent],
        help="learn normal seconds on stored days, flag unusual ones on another (report)",
        description="Fit a robust z-score detector of market anomalies (message bursts, "
        "spread blow-outs) on stored days, run it over another day, write ml_report.html.",
        epilog=_ANOMALIES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(an)
    an.add_argument("--false-alarm", type=float, default=0.01,
                    help="share of the fit days' seconds that may be flagged (default 0.01)")
    an.add_argument("--top", type=int, default=10, help="detections to print (default 10)")
    an.set_defaults(func=cmd_anomalies)


def _days(args: argparse.Namespace) -> tuple[Any, list[dt.date]]:
    from framework.core.errors import ConfigError
    from framework.store.tickstore import TickStore

    start, end = args.fit_from, args.fit_to or args.fit_from
    if end < start:
        msg = f"--fit-to {end} is before --fit-from {start}; give --fit-to on or after it"
        raise ConfigError(msg)
    store = TickStore(args.store)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    days = [d for d in days if store.path_for(args.venue, args.symbol, d).is_file()]
    if not days:
        msg = (f"no stored days of {args.venue}/{args.symbol} from {start} to {end}; "
               "see `hftlab data ls`")
        raise ConfigError(msg)
    if not store.path_for(args.venue, args.symbol, args.show).is_file():
        msg = (f"--show {args.show}: no stored day of {args.venue}/{args.symbol}; "
               "see `hftlab data ls`")
        raise ConfigError(msg)
    return store, days


def _out(args: argparse.Namespace, verb: str) -> Path:
    return Path(args.out or Path("reports") / verb / f"{args.venue}_{args.symbol}_{args.show}")


def cmd_regimes(args: argparse.Namespace) -> int:
    import numpy as np

    from framework.core.errors import ConfigError
    from research.ml.regime import DEFAULT_INPUTS, as_l2, fit_regimes, regime_ari
    from research.ml.report import RegimeView, write_report

    if not args.halflife_s > 0:
        raise ConfigError(f"--halflife-s {args.halflife_s}: give a positive number of seconds")
    store, days = _days(args)
    inputs = tuple(args.inputs.split(",")) if args.inputs else DEFAULT_INPUTS
    fit = [as_l2(store.read(args.venue, args.symbol, d)) for d in days]
    model = fit_regimes(fit, inputs=inputs, halflife_ns=round(args.halflife_s * 1e9))
    ev = as_l2(store.read(args.venue, args.symbol, args.show))
    pred, _ = model.predict(ev)
    inst = store.instrument(args.venue, args.symbol, args.show)
    labels = store.read_labels(args.venue, args.symbol, args.show)
    out = _out(args, "regimes")
    out.mkdir(parents=True, exist_ok=True)
    model.feature_model().save(out / "regime_model.npz")
    print(f"fitted on {len(days)} day(s), {model.n_samples:,} samples:")
    for name, prof in model.profile.items():
        print(f"  {name:9s} " + "  ".join(f"{k}={v:.3g}" for k, v in prof.items()))
    ok = pred[~np.isnan(pred)].astype(int)
    share = [float((ok == r).mean()) if len(ok) else 0.0 for r in range(len(model.names))]
    line = ", ".join(f"{n} {s:.0%}" for n, s in zip(model.names, share, strict=True))
    notes = [f"fitted on {', '.join(map(str, days))}; shown on {args.show}"]
    if labels is not None and "regime" in labels.column_names:
        ari = regime_ari(model, ev, labels)
        line += f"; adjusted Rand index against the stored labels {ari:.3f}"
        notes.append(f"adjusted Rand index against the stored labels: {ari:.3f}")
    print(f"{args.show}: {line}")
    page = write_report(out, regimes=RegimeView(ev, pred, model.names,
                                                tick=float(inst.tick_size), truth=labels),
                        notes=notes)
    print(f"model: {out / 'regime_model.npz'}\nreport: {page}")
    return 0


def cmd_anomalies(args: argparse.Namespace) -> int:
    import numpy as np
    import polars as pl

    from framework.core.errors import ConfigError
    from research.ml.anomaly import FEATURES, RobustZ, calibrate, features
    from research.ml.regime import as_l2
    from research.ml.report import AnomalyView, write_report

    if not 0 < args.false_alarm < 0.5:
        raise ConfigError(f"--false-alarm {args.false_alarm}: give a share in (0, 0.5)")
    store, days = _days(args)
    none = pl.DataFrame(schema={"ts": pl.Int64, "kind": pl.Int8})

    def rows(d: dt.date) -> tuple[Any, Any, Any]:
        ev = as_l2(store.read(args.venue, args.symbol, d))
        edges, x = features(ev, none, int(ev["local_ts"][0]), int(ev["local_ts"][-1]))
        return ev, edges, x

    clean = np.concatenate([rows(d)[2] for d in days])
    det = RobustZ().fit(clean)
    calibrate(det, clean, args.false_alarm)
    ev, edges, x = rows(args.show)
    score = det.score(x)
    flagged = np.flatnonzero(score > det.threshold)
    print(f"fitted on {len(days)} day(s), {len(clean):,} seconds; {args.show}: "
          f"{len(flagged):,} of {len(x):,} seconds flagged")
    z = det.z(x)
    for i in flagged[np.argsort(-score[flagged])][: args.top]:
        j = int(np.argmax(z[i] / det.tail))
        t = dt.datetime.fromtimestamp(int(edges[i]) / 1e9, dt.UTC).strftime("%H:%M:%S")
        print(f"  {t} UTC  {FEATURES[j]} = {x[i, j]:.3g} (z {z[i, j]:.1f}, score {score[i]:.1f})")
    inst = store.instrument(args.venue, args.symbol, args.show)
    out = _out(args, "anomalies")
    page = write_report(out, anomalies=AnomalyView(ev, edges, score, det.threshold,
                                                   tick=float(inst.tick_size)),
                        notes=[f"fitted on {', '.join(map(str, days))}; shown on {args.show}"])
    print(f"report: {page}")
    return 0
