"""Regime model: the compiled mixture kernel, its parity and causality, recovery of the
generator's regimes (adjusted Rand index on held-out days)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from framework.book.l2 import NO_PRICE, L2Book, l2_new
from framework.core.errors import ConfigError
from framework.core.events import FLAG_LAST, KIND_TRADE, EventArray
from framework.features import F_REGIME, F_REGIME_PROB, MODEL_INPUTS, N_FEATURES, FeatureModel
from framework.features.kernels import compute_features, feature_state, feature_update
from framework.features.model import (
    DEFAULT_BASELINE_NS,
    MODEL_X,
    N_MODEL_INPUTS,
    model_state,
    model_update,
)
from framework.ingest.base import DayData
from framework.ingest.synthetic import REGIMES, generate_day
from research.ml.regime import (
    REGIME_NAMES,
    as_l2,
    fit_regimes,
    model_inputs,
    regime_ari,
    true_regimes,
)

HL = 20_000_000_000


@cache
def day(seed: int, n: int = 150_000) -> DayData:
    return generate_day(date=dt.date(2024, 1, 2) + dt.timedelta(days=seed % 7), n_events=n,
                        seed=seed)


@cache
def fitted():
    return fit_regimes([day(s).events for s in (11, 12, 13)], halflife_ns=HL)


def _model_from(gm: GaussianMixture, mean: np.ndarray, scale: np.ndarray) -> FeatureModel:
    return FeatureModel(
        inputs=MODEL_INPUTS,
        halflife_ns=HL,
        mean=mean,
        scale=scale,
        weights=gm.weights_,
        means=gm.means_,
        precisions_cholesky=gm.precisions_cholesky_,
        labels=np.arange(len(gm.weights_), dtype=np.int64),
        label_names=tuple(f"c{i}" for i in range(len(gm.weights_))),
    )


def test_the_kernel_gives_scikit_learns_posterior():
    ev = day(21, 40_000).events
    x = model_inputs(ev, halflife_ns=HL)
    ok = ~np.isnan(x).any(axis=1)
    mean, scale = x[ok].mean(axis=0), x[ok].std(axis=0) + 1e-9
    gm = GaussianMixture(n_components=3, random_state=0).fit((x[ok] - mean) / scale)
    f = compute_features(ev, model=_model_from(gm, mean, scale))
    proba = gm.predict_proba((x[ok] - mean) / scale)
    assert np.isnan(f[~ok, F_REGIME]).all()
    np.testing.assert_array_equal(f[ok, F_REGIME], proba.argmax(axis=1))
    np.testing.assert_allclose(f[ok, F_REGIME_PROB], proba.max(axis=1), rtol=0, atol=1e-9)


def test_components_sharing_a_label_add_their_posteriors():
    ev = day(21, 40_000).events
    x = model_inputs(ev, halflife_ns=HL)
    ok = ~np.isnan(x).any(axis=1)
    mean, scale = x[ok].mean(axis=0), x[ok].std(axis=0) + 1e-9
    gm = GaussianMixture(n_components=4, random_state=1).fit((x[ok] - mean) / scale)
    m = dataclasses.replace(
        _model_from(gm, mean, scale), labels=np.array([0, 1, 1, 0]), label_names=("a", "b")
    )
    f = compute_features(ev, model=m)
    p = gm.predict_proba((x[ok] - mean) / scale)
    by_label = np.stack([p[:, 0] + p[:, 3], p[:, 1] + p[:, 2]], axis=1)
    np.testing.assert_array_equal(f[ok, F_REGIME], by_label.argmax(axis=1))
    np.testing.assert_allclose(f[ok, F_REGIME_PROB], by_label.max(axis=1), atol=1e-9)


def test_one_pass_equals_live_event_by_event_and_batches():
    ev = day(22, 30_000).events
    m = fitted().feature_model()
    whole = compute_features(ev, model=m)
    # live style: a book, the feature kernel and the model kernel once per event
    book = L2Book(n_ticks=1 << 15)
    st, ms = feature_state(), model_state()
    out = np.full((len(ev), N_FEATURES), np.nan)
    xs = np.full((len(ev), N_MODEL_INPUTS), np.nan)
    for i, e in enumerate(ev):
        book.apply(int(e["kind"]), int(e["side"]), int(e["price"]), int(e["qty"]))
        if e["kind"] != KIND_TRADE and not e["flags"] & FLAG_LAST and i:
            out[i], xs[i] = out[i - 1], xs[i - 1]
            continue
        bb, ba = book.best_bid, book.best_ask
        args = (int(e["local_ts"]), int(e["kind"]), int(e["side"]), int(e["qty"]),
                NO_PRICE if bb is None else bb, NO_PRICE if ba is None else ba,
                book.best_bid_qty, book.best_ask_qty)
        feature_update.py_func(st, out[i], *args)
        model_update.py_func(m.params, ms, out[i], *args)
        xs[i] = ms[MODEL_X : MODEL_X + N_MODEL_INPUTS]
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(out))
    np.testing.assert_allclose(whole[~np.isnan(whole)], out[~np.isnan(out)], atol=1e-9)
    assert (~np.isnan(whole[:, F_REGIME])).sum() > 20_000
    x = model_inputs(ev, halflife_ns=HL)
    ok = ~np.isnan(x).any(axis=1)
    np.testing.assert_allclose(x[ok], xs[ok], atol=1e-9)
    # in batches, the book, feature and model state carried across
    bk, st2, ms2 = l2_new(1 << 15), feature_state(), model_state()
    parts = [compute_features(ev[a:b], state=st2, book=bk, model=m, model_state_=ms2)
             for a, b in ((0, 7_001), (7_001, 19_999), (19_999, len(ev)))]
    np.testing.assert_array_equal(np.vstack(parts), whole)


def _perturbations(ev: EventArray, k: int) -> dict[str, EventArray]:
    """Ways to change everything from event ``k`` on, each keeping a valid tape."""
    t = int(ev["local_ts"][k])
    out = {}
    more = ev.copy()
    more["qty"][k:] *= 3
    out["sizes tripled"] = more
    later = ev.copy()
    later["local_ts"][k:] += 60_000_000_000
    later["exch_ts"][k:] += 60_000_000_000
    out["a minute later"] = later
    keep = np.ones(len(ev), bool)
    keep[k:][ev["kind"][k:] == KIND_TRADE] = False
    out["trades dropped"] = ev[keep]
    out["cut off"] = ev[:k]
    other = day(31, 60_000).events
    tail = other[other["local_ts"] >= t]
    tail = tail[: len(tail)]
    spliced = np.concatenate([ev[:k], tail])
    out["another day's tail"] = spliced
    return out


def test_the_regime_at_an_event_never_depends_on_later_events():
    ev = day(23, 60_000).events
    m = fitted().feature_model()
    base = compute_features(ev, model=m)
    for k in (5_000, 30_000, 55_000):
        for what, alt in _perturbations(ev, k).items():
            f = compute_features(alt, model=m)
            np.testing.assert_array_equal(f[:k], base[:k], err_msg=f"{what} at {k}")
            if what != "cut off":
                assert not np.array_equal(f[k:], base[k:len(f)]) or len(f) != len(base), what


def test_regimes_recovered_on_held_out_days():
    model = fitted()
    assert model.names == REGIME_NAMES == REGIMES
    for seed in (14, 15):
        d = day(seed)
        ari = regime_ari(model, d.events, d.labels)
        assert ari >= 0.6, (seed, ari)
        # the components were named by their look, and the names are the generator's
        pred, prob = model.predict(d.events)
        ok = ~np.isnan(pred)
        truth = true_regimes(d.events, d.labels)
        assert (pred[ok] == truth[ok]).mean() > 0.8
        assert ((prob[ok] > 0.0) & (prob[ok] <= 1.0 + 1e-12)).all()
        assert ari == pytest.approx(adjusted_rand_score(truth[ok], pred[ok]))


def test_more_components_than_names_share_them():
    model = fit_regimes([day(s).events for s in (11, 12)], halflife_ns=HL, n_components=5)
    labels = model.feature_model().labels
    assert len(labels) == 5
    assert set(labels.tolist()) == {0, 1, 2}
    d = day(14)
    assert regime_ari(model, d.events, d.labels) >= 0.6


def test_bad_models_and_inputs_are_refused_with_the_reason():
    good = fitted().feature_model()
    k, d = len(good.weights), len(good.inputs)
    bad = {
        "inputs": ("log_volatility", "vwap"),
        "means": np.zeros((k, d + 1)),
        "precisions_cholesky": np.zeros((k, d)),
        "weights": np.full(k, 0.5),
        "labels": np.array([0, 1, 7]),
        "halflife_ns": 0,
        "scale": np.zeros(d),
    }
    for name, value in bad.items():
        with pytest.raises(ConfigError, match="feature model"):
            dataclasses.replace(good, **{name: value})
    with pytest.raises(ConfigError, match="choose from"):
        fit_regimes([day(11).events], inputs=("spread", "colour"))
    with pytest.raises(ConfigError, match="each once"):
        fit_regimes([day(11).events], inputs=("spread", "spread"))
    with pytest.raises(ConfigError, match="n_components=2"):
        fit_regimes([day(11).events], n_components=2)
    with pytest.raises(ConfigError, match="usable events"):
        fit_regimes([day(11).events[:100]])
    with pytest.raises(ConfigError, match="inputs_out"):
        compute_features(day(11).events[:100], inputs_out=np.zeros((100, N_MODEL_INPUTS)))


def test_order_by_order_days_are_projected_or_refused():
    l3 = generate_day(date=dt.date(2024, 1, 9), mode="l3", n_events=40_000, seed=4).events
    with pytest.raises(ConfigError, match="as_l2"):
        model_inputs(l3)
    l2 = as_l2(l3)
    assert len(l2) >= len(l3) // 2
    pred, _ = fitted().predict(l2)
    assert (~np.isnan(pred)).sum() > 1000
    assert as_l2(day(11).events) is day(11).events


def test_a_saved_model_loads_and_gives_the_same_regimes(tmp_path):
    m = fitted().feature_model()
    path = m.save(tmp_path / "regimes.npz")
    back = FeatureModel.load(path)
    assert back.inputs == m.inputs
    assert back.label_names == m.label_names
    np.testing.assert_array_equal(back.params, m.params)
    ev = day(24, 20_000).events
    np.testing.assert_array_equal(compute_features(ev, model=back), compute_features(ev, model=m))
    assert not list(tmp_path.glob(".tmp*"))


def test_anything_but_a_saved_model_is_refused_in_one_line(tmp_path):
    m = fitted().feature_model()
    good = m.save(tmp_path / "good.npz").read_bytes()
    cases = {
        "missing.npz": None,
        "garbage.npz": b"not a zip at all",
        "cut.npz": good[: len(good) // 2],
        "array.npy": None,
    }
    np.save(tmp_path / "array.npy", np.arange(3))
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError, match="is not a feature model") as exc:
            FeatureModel.load(tmp_path / name)
        assert "\n" not in str(exc.value)
    other = tmp_path / "other.npz"
    np.savez(other, format=np.array("something else"))
    with pytest.raises(ConfigError, match="is not a feature model"):
        FeatureModel.load(other)


@cache
def busy_day(seed: int) -> DayData:
    """A day four times as busy as the ones the model is fitted on (same session)."""
    return day(seed, 600_000)


def test_a_model_fitted_on_quiet_days_labels_a_busy_day():
    model = fitted()  # relative rates by default
    for seed in (14, 16):
        d = busy_day(seed)
        assert regime_ari(model, d.events, d.labels) >= 0.6, seed
    # the class of failure the relative rates remove: absolute rates read the busy day as
    # one regime (every event more active than anything seen in the fit)
    absolute = fit_regimes([day(s).events for s in (11, 12, 13)], halflife_ns=HL,
                           inputs=("log_volatility", "log_trade_rate", "log_message_rate",
                                   "abs_trade_flow"))
    d = busy_day(14)
    assert regime_ari(absolute, d.events, d.labels) < 0.2
    pred, _ = absolute.predict(d.events)
    ok = pred[~np.isnan(pred)]
    assert (ok == REGIME_NAMES.index("volatile")).mean() > 0.9


def test_relative_rates_do_not_move_with_the_days_activity_level():
    """The same regime path at two activity levels: the absolute log-rates differ by about
    the log of the ratio, the relative ones agree (once the baseline has settled)."""
    quiet, busy = day(17, 150_000), day(17, 600_000)
    assert busy.labels.equals(quiet.labels)
    cols = {n: MODEL_INPUTS.index(n) for n in MODEL_INPUTS}
    settled = quiet.events["local_ts"][0] + 3_600_000_000_000
    med = {}
    for name, d in (("quiet", quiet), ("busy", busy)):
        x = model_inputs(d.events, halflife_ns=HL)
        keep = (d.events["local_ts"] > settled) & ~np.isnan(x).any(axis=1)
        med[name] = np.median(x[keep], axis=0)
    gap = med["busy"] - med["quiet"]
    assert gap[cols["log_message_rate"]] == pytest.approx(np.log(4), abs=0.15)
    assert abs(gap[cols["rel_message_rate"]]) < 0.1
    assert abs(gap[cols["rel_trade_rate"]]) < 0.15


def test_a_first_format_model_file_still_loads(tmp_path):
    m = fitted().feature_model()
    old = tmp_path / "old.npz"
    # what FeatureModel.save wrote before the relative rates: no baseline half-life
    np.savez(old, format=np.array("hftlab-feature-model-1"),
             inputs=np.array('["log_volatility", "log_trade_rate"]'),
             label_names=np.array('["calm", "volatile", "trending"]'),
             halflife_ns=np.array(HL), mean=m.mean[:2], scale=m.scale[:2],
             weights=m.weights, means=m.means[:, :2],
             precisions_cholesky=m.precisions_cholesky[:, :2, :2], labels=m.labels)
    back = FeatureModel.load(old)
    assert back.inputs == ("log_volatility", "log_trade_rate")
    assert back.baseline_halflife_ns == DEFAULT_BASELINE_NS
    with pytest.raises(ConfigError, match=r"baseline_halflife_ns .* must be longer"):
        dataclasses.replace(m, baseline_halflife_ns=HL)
    # the current format keeps the baseline it was fitted with
    m2 = dataclasses.replace(m, baseline_halflife_ns=2 * DEFAULT_BASELINE_NS)
    assert FeatureModel.from_bytes(m2.to_bytes()).baseline_halflife_ns == 2 * DEFAULT_BASELINE_NS
