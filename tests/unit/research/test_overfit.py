"""Overfitting statistics against values worked out by hand and the DSR paper's own example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framework.core.errors import ConfigError
from research.overfit import (
    deflated_sharpe,
    expected_max_sharpe,
    groups_for,
    pbo_cscv,
    probabilistic_sharpe,
    skew_kurtosis,
)


def test_dsr_paper_example() -> None:
    """Bailey & López de Prado (2014), section 'A numerical example': an annualised Sharpe of
    2.5 over 1250 daily returns, skewness -3, kurtosis 10, 100 trials whose annualised Sharpe
    estimates vary by 0.5: SR0 ≈ 0.1132 per day and DSR ≈ 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_dsr_small_example_by_hand() -> None:
    r = [0.02, -0.01, 0.03, 0.00, 0.01, -0.02, 0.04, 0.01]
    trial_srs = [0.10, 0.30, 0.25, 0.05]
    # by hand: mean, sample std, biased central moments, then eqs. 6 and 9
    n = len(r)
    mu = sum(r) / n
    sd = math.sqrt(sum((x - mu) ** 2 for x in r) / (n - 1))
    m2 = sum((x - mu) ** 2 for x in r) / n
    m3 = sum((x - mu) ** 3 for x in r) / n
    m4 = sum((x - mu) ** 4 for x in r) / n
    sr, g3, g4 = mu / sd, m3 / m2**1.5, m4 / m2**2
    tm = sum(trial_srs) / 4
    v = sum((s - tm) ** 2 for s in trial_srs) / 3
    # normal quantiles (tables: Φ(0.6745) = 0.75, Φ(1.3287) = 0.90803 = 1 - 1/(4e))
    phi_inv = {0.75: 0.6744897501960817, 1 - 1 / (4 * math.e): 1.3287219496247633}
    sr0 = math.sqrt(v) * (
        (1 - 0.5772156649015329) * phi_inv[0.75]
        + 0.5772156649015329 * phi_inv[1 - 1 / (4 * math.e)]
    )
    z = (sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    want = 0.5 * (1 + math.erf(z / math.sqrt(2)))

    got = deflated_sharpe(r, trial_srs)
    assert got.n_trials == 4
    assert got.n_obs == 8
    assert got.sharpe == pytest.approx(sr, rel=1e-12)
    assert (got.skew, got.kurtosis) == pytest.approx((g3, g4), rel=1e-12)
    assert got.sr0 == pytest.approx(sr0, rel=1e-9)
    assert got.dsr == pytest.approx(want, rel=1e-9)
    # more trials than Sharpes (pruned ones): a higher bar, a lower probability
    assert deflated_sharpe(r, trial_srs, n_trials=40).dsr < got.dsr


def test_dsr_one_trial_is_the_probabilistic_sharpe_against_zero() -> None:
    r = np.array([0.01, 0.02, -0.01, 0.015, 0.0, 0.005])
    got = deflated_sharpe(r, [0.4])
    sk, ku = skew_kurtosis(r)
    assert got.sr0 == 0.0
    assert got.dsr == pytest.approx(probabilistic_sharpe(got.sharpe, 0.0, 6, sk, ku))


def _mean(m: np.ndarray) -> np.ndarray:
    return m.mean(axis=0)


def test_pbo_by_hand() -> None:
    """Four sets, four groups of two periods, the mean as the metric. Group means per set:
    A 3,0,0,0; B 0,2,2,1; C 1,1,2,1; D 2,2,2,2. Of the six ways to train on two groups, D is
    best in-sample in five and ranks 4th of 4 out of sample (ω = 4/5, λ = ln 4); training on
    groups 1 and 2 ties B with D (B, the earlier column, is taken) and B ranks last out of
    sample (ω = 1/5, λ = ln 1/4). PBO = 1/6."""
    means = np.array([[3, 0, 1, 2], [0, 2, 1, 2], [0, 2, 2, 2], [0, 1, 1, 2]], dtype=float)
    m = np.repeat(means, 2, axis=0)  # two periods per group, each at the group's mean
    got = pbo_cscv(m, n_groups=4, metric=_mean)
    assert got.n_splits == 6
    assert got.logits.tolist() == pytest.approx(
        [math.log(4)] * 3 + [math.log(0.25)] + [math.log(4)] * 2
    )
    assert got.pbo == pytest.approx(1 / 6)
    assert got.is_perf.tolist() == pytest.approx([2, 2, 2, 2, 2, 2])
    assert got.oos_perf.tolist() == pytest.approx([2, 2, 2, 0.5, 2, 2])
    assert got.prob_oos_loss == 0.0


def test_pbo_noise_is_near_half_and_skill_is_near_zero() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 1, size=(400, 20))
    # complementary halves: a lucky in-sample half leaves an unlucky one out of sample
    assert pbo_cscv(noise, n_groups=8).pbo > 0.5
    skilled = noise.copy()
    skilled[:, 3] += 0.5  # one set with a real edge
    assert pbo_cscv(skilled, n_groups=8).pbo < 0.05


def test_pbo_refuses_bad_shapes() -> None:
    with pytest.raises(ConfigError, match="even number"):
        pbo_cscv(np.zeros((40, 3)), n_groups=5)
    with pytest.raises(ConfigError, match="at least 2"):
        pbo_cscv(np.zeros((40, 1)))
    with pytest.raises(ConfigError, match="needs at least 32 periods"):
        pbo_cscv(np.zeros((20, 3)), n_groups=16)
    assert groups_for(20) == 10
    assert groups_for(3) == 0
    assert groups_for(1000) == 16


def test_pbo_from_group_sums_equals_restacking_the_rows() -> None:
    """The default Sharpe metric, computed from per-group sums, ranks exactly as the Sharpe
    of the restacked rows of each split: with a set that never trades (all zeros), a flat
    set (a constant return), two identical sets (a tie) and one with an edge."""
    from research.overfit import _col_sharpe

    rng = np.random.default_rng(11)
    m = rng.normal(0.0, 1.0, size=(160, 7))
    m[:, 1] = 0.0
    m[:, 2] = 0.1
    m[:, 4] = m[:, 3]
    m[:, 5] += 0.2
    for groups in (2, 8, 16):
        fast = pbo_cscv(m, n_groups=groups)
        slow = pbo_cscv(m, n_groups=groups, metric=_col_sharpe)
        assert fast.n_splits == slow.n_splits
        assert np.array_equal(fast.logits, slow.logits)
        assert fast.pbo == slow.pbo
        assert fast.is_perf == pytest.approx(slow.is_perf, rel=1e-9)
        assert fast.oos_perf == pytest.approx(slow.oos_perf, rel=1e-9, nan_ok=True)
        # the matrix's memory layout (polars hands out Fortran-ordered arrays) changes nothing
        assert np.array_equal(pbo_cscv(np.asfortranarray(m), n_groups=groups).logits, fast.logits)


@pytest.mark.parametrize("value", [0.0, 0.1, -0.3, 1e-7, 123.456])
def test_a_constant_series_has_no_sharpe_ratio(value: float) -> None:
    """The mean of n equal floats is not always that float, so a constant series has a
    standard deviation of rounding dust: no Sharpe ratio, in every place one is taken."""
    from research.overfit import _col_sharpe, period_sharpe

    r = np.full(1000, value)
    assert math.isnan(period_sharpe(r))
    assert np.isnan(_col_sharpe(np.column_stack([r, r]))).all()
    m = np.column_stack([r, np.random.default_rng(1).normal(size=1000)])
    # the flat set is never the best (its Sharpe would be ~1e15): the noise set always is
    assert np.all(np.abs(pbo_cscv(m, n_groups=4).is_perf) < 1.0)
    assert math.isnan(deflated_sharpe(r, [0.1, 0.2]).sharpe)
