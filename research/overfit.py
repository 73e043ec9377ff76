"""Overfitting statistics of a parameter study.

A study that tries many parameter sets and keeps the best one reports a Sharpe ratio that is
biased upwards: the maximum of many noisy estimates. Two corrections, both reported for every
study:

- **Deflated Sharpe ratio** (Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting
  for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management
  40(5), 2014): the probability that the selected set's true Sharpe ratio exceeds the largest
  one expected from ``n_trials`` unskilled trials, given the sample length and the skewness and
  kurtosis of the returns.
- **Probability of backtest overfitting** by combinatorially symmetric cross-validation (CSCV;
  Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest Overfitting", Journal of
  Computational Finance 20(4), 2017): how often the set that is best in-sample ranks in the
  bottom half out-of-sample, over every split of the periods into two halves.

Sharpe ratios here are per period (not annualised): the formulas are stated in the periods of
the return series.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from framework.analysis.stats import has_spread
from framework.core.errors import ConfigError

FloatArray = npt.NDArray[np.float64]

#: Euler–Mascheroni constant (the expected maximum of Gaussians, DSR paper eq. 6)
EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def period_sharpe(returns: npt.ArrayLike) -> float:
    """Per-period Sharpe ratio ``mean / std`` (sample std); NaN when undefined."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan
    sd, mu = float(r.std(ddof=1)), float(r.mean())
    return mu / sd if has_spread(sd, mu) else math.nan


def skew_kurtosis(returns: npt.ArrayLike) -> tuple[float, float]:
    """Sample skewness and (non-excess, Pearson) kurtosis of ``returns``, the moments the DSR
    paper's eq. 9 takes (a normal sample gives about 0 and 3)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan, math.nan
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if not m2 > 0:
        return math.nan, math.nan
    return float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """The largest per-period Sharpe ratio expected among ``n_trials`` independent unskilled
    trials whose Sharpe estimates vary with ``sharpe_variance`` (DSR paper, eq. 6):
    ``sqrt(V) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))``. Zero for one trial."""
    if n_trials < 1:
        msg = f"expected_max_sharpe needs at least one trial, got {n_trials}"
        raise ConfigError(msg)
    if n_trials == 1 or not sharpe_variance > 0:
        return 0.0
    z1 = _N.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _N.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe(
    sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Probability that the true per-period Sharpe ratio exceeds ``benchmark`` given an
    estimate ``sharpe`` from ``n_obs`` returns with this skewness and (Pearson) kurtosis
    (DSR paper, eq. 9; the probabilistic Sharpe ratio)."""
    if n_obs < 2 or not math.isfinite(sharpe):
        return math.nan
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not var > 0:
        return math.nan
    return _N.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of a study's selected set, with what went into it."""

    dsr: float  #: probability that the selected set's true Sharpe exceeds ``sr0``
    sharpe: float  #: the selected set's per-period Sharpe ratio
    sr0: float  #: expected maximum Sharpe of ``n_trials`` unskilled trials
    n_trials: int
    n_obs: int  #: returns in the selected set's series
    skew: float
    kurtosis: float
    sharpe_variance: float  #: variance of the trials' Sharpe estimates


def deflated_sharpe(
    selected: npt.ArrayLike, trial_sharpes: npt.ArrayLike, n_trials: int | None = None
) -> DeflatedSharpe:
    """The deflated Sharpe ratio of the returns ``selected`` (the chosen set), deflated by the
    per-period Sharpe ratios of every trial of the study (``trial_sharpes``, whose variance
    sets the expected maximum). ``n_trials`` defaults to the number of trial Sharpes; pass a
    larger number when trials were tried and discarded (pruned) without a Sharpe."""
    r = np.asarray(selected, dtype=np.float64)
    r = r[np.isfinite(r)]
    srs = np.asarray(trial_sharpes, dtype=np.float64)
    srs = srs[np.isfinite(srs)]
    n = int(n_trials) if n_trials is not None else int(srs.size)
    if n < 1:
        msg = "the deflated Sharpe ratio needs at least one trial with a Sharpe ratio"
        raise ConfigError(msg)
    var = float(srs.var(ddof=1)) if srs.size > 1 else 0.0
    sr = period_sharpe(r)
    sk, ku = skew_kurtosis(r)
    sr0 = expected_max_sharpe(n, var)
    return DeflatedSharpe(
        dsr=probabilistic_sharpe(sr, sr0, int(r.size), sk, ku),
        sharpe=sr,
        sr0=sr0,
        n_trials=n,
        n_obs=int(r.size),
        skew=sk,
        kurtosis=ku,
        sharpe_variance=var,
    )


@dataclass(frozen=True)
class PBO:
    """Probability of backtest overfitting by CSCV, with the per-split detail."""

    pbo: float  #: share of splits whose in-sample best ranks in the out-of-sample bottom half
    logits: FloatArray  #: λ = ln(ω / (1 − ω)) per split (ω: its out-of-sample relative rank)
    is_perf: FloatArray  #: in-sample performance of the in-sample best, per split
    oos_perf: FloatArray  #: its out-of-sample performance, per split
    n_splits: int
    n_groups: int  #: S, the number of row groups the periods were cut into

    @property
    def degradation(self) -> float:
        """Slope of out-of-sample on in-sample performance of the selected set across splits
        (the paper's performance degradation; negative when in-sample luck does not carry)."""
        x, y = self.is_perf, self.oos_perf
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 2 or float(np.var(x[ok])) == 0.0:
            return math.nan
        return float(np.polyfit(x[ok], y[ok], 1)[0])

    @property
    def prob_oos_loss(self) -> float:
        """Share of splits whose selected set lost out of sample."""
        y = self.oos_perf[np.isfinite(self.oos_perf)]
        return float(np.mean(y < 0)) if y.size else math.nan


def _col_sharpe(m: FloatArray) -> FloatArray:
    """Per-column per-period Sharpe of a (T, N) matrix; NaN for a flat column."""
    sd = m.std(axis=0, ddof=1)
    mu = m.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(has_spread(sd, mu), mu / sd, np.nan)


def _split_sharpes(
    groups: FloatArray, train: npt.NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray]:
    """:func:`_col_sharpe` of every set on the train rows and on the test rows of every split
    (``train``: (splits, S) membership of the groups), from each group's count, sum and sum
    of squares instead of restacking the rows per split: the work is splits x S x N, not
    splits x T x N. Sums run in a fixed order per column (no BLAS), so identical columns
    get identical figures, as they do from :func:`_col_sharpe`."""
    _, size, n = groups.shape
    centre = groups.reshape(-1, n).mean(axis=0)  # centred sums keep the variance accurate
    d = groups - centre
    g_sum, g_sq = d.sum(axis=1), (d * d).sum(axis=1)  # (S, N)

    def sharpe(member: npt.NDArray[np.bool_]) -> FloatArray:
        out = np.empty((len(member), n))
        for i in range(0, len(member), 512):  # bounded memory: 512 x S x N at a time
            m = member[i : i + 512, :, None]
            k = m.sum(axis=1) * size  # periods, (chunk, 1)
            tot = np.where(m, g_sum[None], 0.0).sum(axis=1)
            sq = np.where(m, g_sq[None], 0.0).sum(axis=1)
            mu = tot / k
            sd = np.sqrt(np.maximum(sq - tot * mu, 0.0) / (k - 1))
            mean = centre + mu
            with np.errstate(divide="ignore", invalid="ignore"):
                out[i : i + 512] = np.where(has_spread(sd, mean), mean / sd, np.nan)
        return out

    return sharpe(train), sharpe(~train)


def pbo_cscv(
    returns: npt.ArrayLike,
    n_groups: int = 16,
    metric: Callable[[FloatArray], FloatArray] | None = None,
) -> PBO:
    """PBO of a study from its (T, N) matrix of returns: T periods (rows, in time order) of
    N parameter sets (columns).

    The rows are cut into ``n_groups`` (S, even) contiguous groups of equal size (the last
    ``T mod S`` rows are dropped); for each of the C(S, S/2) ways to pick half of the groups
    as the training set, the set with the best ``metric`` on the training rows is found, and
    its relative rank ω = rank / (N + 1) among all sets on the other half (rank 1 = worst,
    ties by the order of the columns). λ = logit(ω); PBO is the share of splits with λ ≤ 0.
    A set whose metric is undefined (NaN) on the training half is never the best one; on the
    test half it ranks last. ``metric`` (columns of a (rows, N) matrix -> N values) defaults
    to the per-period Sharpe ratio, computed from per-group sums (C(16, 8) = 12,870 splits
    of a month of one-minute returns of 100 sets take seconds, not minutes)."""
    # one memory layout: numpy sums a column of a Fortran array pairwise and one of a C array
    # row by row, and the last-bit differences could reorder near-equal sets
    m = np.ascontiguousarray(returns, dtype=np.float64)
    if m.ndim != 2:
        msg = f"pbo_cscv takes a (periods, sets) matrix, got {m.ndim} dimension(s)"
        raise ConfigError(msg)
    t, n = m.shape
    if n_groups < 2 or n_groups % 2:
        msg = f"CSCV needs an even number of groups (at least 2), got {n_groups}"
        raise ConfigError(msg)
    if n < 2:
        msg = f"PBO compares parameter sets: it needs at least 2, got {n}"
        raise ConfigError(msg)
    size = t // n_groups
    if size < 2:
        msg = (
            f"PBO with {n_groups} groups needs at least {2 * n_groups} periods of returns, "
            f"got {t}; use fewer groups or a finer sampling of returns"
        )
        raise ConfigError(msg)
    groups = m[: size * n_groups].reshape(n_groups, size, n)
    splits = list(itertools.combinations(range(n_groups), n_groups // 2))
    member = np.zeros((len(splits), n_groups), dtype=bool)
    for i, combo in enumerate(splits):
        member[i, list(combo)] = True
    if metric is None:
        all_is, all_oos = _split_sharpes(groups, member)
    logits, is_perf, oos_perf = [], [], []
    for i, train in enumerate(member):
        if metric is None:
            r_is, r_oos = all_is[i], all_oos[i]
        else:
            r_is = metric(groups[train].reshape(-1, n))
            r_oos = metric(groups[~train].reshape(-1, n))
        if not np.isfinite(r_is).any():
            continue
        best = int(np.nanargmax(r_is))
        oos = np.where(np.isfinite(r_oos), r_oos, -np.inf)
        # rank of the best's out-of-sample value, 1 = worst; ties: earlier columns rank lower
        rank = int(np.sum(oos < oos[best]) + np.sum(oos[:best] == oos[best])) + 1
        w = rank / (n + 1)
        logits.append(math.log(w / (1.0 - w)))
        is_perf.append(float(r_is[best]))
        oos_perf.append(float(r_oos[best]))
    lg = np.asarray(logits, dtype=np.float64)
    return PBO(
        pbo=float(np.mean(lg <= 0)) if lg.size else math.nan,
        logits=lg,
        is_perf=np.asarray(is_perf, dtype=np.float64),
        oos_perf=np.asarray(oos_perf, dtype=np.float64),
        n_splits=int(lg.size),
        n_groups=n_groups,
    )


def groups_for(n_periods: int, wanted: int = 16) -> int:
    """The largest even number of CSCV groups up to ``wanted`` that leaves at least two
    periods per group (0 when even two groups cannot be formed)."""
    s = min(wanted, n_periods // 2)
    s -= s % 2
    return max(s, 0)


__all__ = [
    "PBO",
    "DeflatedSharpe",
    "deflated_sharpe",
    "expected_max_sharpe",
    "groups_for",
    "pbo_cscv",
    "period_sharpe",
    "probabilistic_sharpe",
    "skew_kurtosis",
]
