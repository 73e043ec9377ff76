"""A fitted feature model evaluated per event in the feature pass: regime as a feature.

A model is plain arrays (no library object): which online *model inputs* it reads, their
standardisation, and a Gaussian mixture over them (log weights, means, precision Cholesky
factors) whose components map to integer labels. The feature pass folds every event into a
small per-instrument state (time-decayed rates and means with the model's half-life, all
causal), and once one half-life has passed since the first event it writes the most probable
label to ``regime`` and its posterior probability to ``regime_prob``. The same kernel runs
over whole arrays in a backtest and per event live, so both see identical values.

Whatever fits the mixture (``research.ml.regime`` uses scikit-learn) hands over arrays:
the framework depends on no fitting library. Model inputs (units: ticks, seconds):

* ``log_volatility``: log sqrt of the decayed sum of squared mid changes per second;
* ``spread``: time-decayed mean spread;
* ``abs_imbalance``: time-decayed mean of |book imbalance|;
* ``log_trade_rate`` / ``log_message_rate``: log of decayed trades / updates per second;
* ``abs_trade_flow``: |decayed signed traded volume / decayed traded volume|;
* ``rel_trade_rate`` / ``rel_message_rate``: log of the trade / update rate over the model's
  half-life relative to the same rate over the day so far (a causal baseline decayed with
  ``baseline_halflife_ns``): scale-free, so a model fitted on quiet days reads a busy one.

Why relative rates, and why this baseline: a day's activity level moves every absolute rate
by the same factor (a day twice as busy adds log 2 to both log-rates), which a mixture
fitted on quieter days reads as a change of regime -- every event of a busy day lands in
the most active component. A ratio to the same day's own rate cancels that factor. The
baseline is an exponentially decayed count over a long half-life (default an hour: it
spans several regime segments, so it tracks the day's level, not the current regime)
divided by the decayed length of time it covers, ``(1 - 0.5^(t/h)) h / ln 2``; the short
rate is normalised the same way. Both are then unbiased from the first event on (an
undivided decayed count starts at zero and would read "quiet" for the first half-lives),
depend only on past events, and cost two decays and two logs per event. Log-rates
standardised by a running mean and deviation were the alternative: their deviation term
needs as long to settle as the baseline, and dividing by it rescales the regime gaps the
mixture separates by an amount that differs from day to day.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from framework.book.l2 import NO_PRICE
from framework.core.errors import ConfigError
from framework.core.events import BUY, KIND_TRADE

MODEL_INPUTS: Final = (
    "log_volatility",
    "spread",
    "abs_imbalance",
    "log_trade_rate",
    "log_message_rate",
    "abs_trade_flow",
    "rel_trade_rate",
    "rel_message_rate",
)
N_MODEL_INPUTS: Final = len(MODEL_INPUTS)
MAX_COMPONENTS: Final = 16  #: mixture components a model may have (state scratch size)

# where the model's outputs go in a feature row (framework.features.kernels.FEATURE_NAMES)
OUT_REGIME: Final = 4
OUT_REGIME_PROB: Final = 5

# parameter vector header
_P_D, _P_K, _P_HL, _P_BL = 0, 1, 2, 3
_P_HEAD: Final = 4
DEFAULT_BASELINE_NS: Final = 3_600_000_000_000  #: the relative rates' baseline half-life

# state words
(_M_FIRST_TS, _M_LAST_TS, _M_MSG, _M_TRD, _M_FLOW, _M_VOLU, _M_SQ, _M_SPREAD, _M_IMB,
 _M_LAST_MID, _M_W, _M_BMSG, _M_BTRD, _M_BW) = range(14)
MODEL_X: Final = 14  #: the latest model inputs (N_MODEL_INPUTS words)
_M_Z: Final = MODEL_X + N_MODEL_INPUTS  #: the model's standardised inputs (scratch)
_M_LP: Final = _M_Z + N_MODEL_INPUTS  #: per-component log probabilities (scratch)
MODEL_STATE_SIZE: Final = _M_LP + 2 * MAX_COMPONENTS

FloatArray = npt.NDArray[np.float64]
_FORMAT: Final = "hftlab-feature-model-2"
#: files of the first format: the same arrays, no baseline (their inputs are all absolute)
_FORMAT_1: Final = "hftlab-feature-model-1"
_LN2: Final = math.log(2.0)


@dataclass(frozen=True)
class FeatureModel:
    """A Gaussian mixture over standardised model inputs, as arrays.

    ``inputs``: names from :data:`MODEL_INPUTS`; ``halflife_ns``: the decay of every input;
    ``mean``/``scale``: standardisation (x - mean) / scale; ``weights`` (k), ``means``
    (k, d), ``precisions_cholesky`` (k, d, d: the factor P with precision P P^T, as
    scikit-learn's full covariance stores it); ``labels`` (k): the label of each component
    (several components may share one); ``label_names``: names of the labels, by code;
    ``baseline_halflife_ns``: the decay of the relative rates' baseline.
    """

    inputs: tuple[str, ...]
    halflife_ns: int
    mean: FloatArray
    scale: FloatArray
    weights: FloatArray
    means: FloatArray
    precisions_cholesky: FloatArray
    labels: npt.NDArray[np.int64]
    label_names: tuple[str, ...]
    baseline_halflife_ns: int = DEFAULT_BASELINE_NS
    params: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        d, k = len(self.inputs), len(self.weights)
        unknown = [n for n in self.inputs if n not in MODEL_INPUTS]
        if unknown or not d:
            msg = f"feature model inputs {list(self.inputs)}: choose from {MODEL_INPUTS}"
            raise ConfigError(msg)
        if not 1 <= k <= MAX_COMPONENTS:
            msg = f"a feature model has 1..{MAX_COMPONENTS} components, got {k}"
            raise ConfigError(msg)
        shapes = {
            "mean": (self.mean, (d,)),
            "scale": (self.scale, (d,)),
            "means": (self.means, (k, d)),
            "precisions_cholesky": (self.precisions_cholesky, (k, d, d)),
            "labels": (self.labels, (k,)),
        }
        for name, (arr, shape) in shapes.items():
            if np.shape(arr) != shape:
                msg = f"feature model {name} has shape {np.shape(arr)}, expected {shape}"
                raise ConfigError(msg)
        if self.halflife_ns <= 0 or not (np.asarray(self.scale) > 0).all():
            msg = "feature model needs halflife_ns > 0 and positive scales"
            raise ConfigError(msg)
        if self.baseline_halflife_ns <= self.halflife_ns:
            msg = (f"feature model baseline_halflife_ns {self.baseline_halflife_ns} must be "
                   f"longer than halflife_ns {self.halflife_ns} (the baseline is the day's level)")
            raise ConfigError(msg)
        w = np.asarray(self.weights, np.float64)
        if (w <= 0).any() or not math.isclose(float(w.sum()), 1.0, rel_tol=1e-6):
            msg = f"feature model weights must be positive and sum to 1, got {w.tolist()}"
            raise ConfigError(msg)
        lab = np.asarray(self.labels)
        if lab.min() < 0 or lab.max() >= len(self.label_names) or len(self.label_names) > k:
            msg = (f"feature model labels {lab.tolist()} must index label_names "
                   f"{self.label_names} (at most one name per component)")
            raise ConfigError(msg)
        pc = np.asarray(self.precisions_cholesky, np.float64)
        logdet = np.log(np.abs(np.diagonal(pc, axis1=1, axis2=2))).sum(axis=1)
        parts = [
            np.array([d, k, float(self.halflife_ns), float(self.baseline_halflife_ns)]),
            np.array([MODEL_INPUTS.index(n) for n in self.inputs], np.float64),
            np.asarray(self.mean, np.float64),
            np.asarray(self.scale, np.float64),
            np.log(w),
            np.asarray(self.means, np.float64).ravel(),
            pc.ravel(),
            logdet,
            lab.astype(np.float64),
        ]
        object.__setattr__(self, "params", np.ascontiguousarray(np.concatenate(parts)))

    @property
    def names(self) -> tuple[str, str]:
        """The feature names the model fills."""
        return ("regime", "regime_prob")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to ``path`` (``.npz``: its arrays and names, nothing pickled),
        whole or not at all; a live session loads it with :meth:`load`."""
        out = Path(path)
        tmp = out.with_name(f".tmp-{out.name}")
        tmp.write_bytes(self.to_bytes())
        os.replace(tmp, out)
        return out

    def to_bytes(self) -> bytes:
        """The model as the bytes of its ``.npz`` file (a live journal carries them)."""
        f = io.BytesIO()
        np.savez(
            f,
            format=np.array(_FORMAT),
            inputs=np.array(json.dumps(list(self.inputs))),
            label_names=np.array(json.dumps(list(self.label_names))),
            halflife_ns=np.array(self.halflife_ns, np.int64),
            baseline_halflife_ns=np.array(self.baseline_halflife_ns, np.int64),
            mean=self.mean,
            scale=self.scale,
            weights=self.weights,
            means=self.means,
            precisions_cholesky=self.precisions_cholesky,
            labels=self.labels,
        )
        return f.getvalue()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FeatureModel:
        """A model written by :meth:`save`; anything else is refused in one line."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            msg = (f"{path} is not a feature model written by FeatureModel.save "
                   f"({type(exc).__name__}: {exc}); fit and save one again")
            raise ConfigError(msg) from exc
        return cls.from_bytes(data, where=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = "the data") -> FeatureModel:
        """A model from the bytes :meth:`to_bytes` made; anything else is refused in one
        line naming ``where`` it came from."""
        try:
            z = np.load(io.BytesIO(data), allow_pickle=False)
            if not hasattr(z, "files"):
                raise ValueError("an array, not an .npz archive")
            with z:
                fmt = str(z["format"])
                if fmt not in (_FORMAT, _FORMAT_1):
                    msg = (f"{where} is not a feature model this hftlab reads (format "
                           f"{fmt!r}; it reads {_FORMAT!r} and {_FORMAT_1!r}); fit and save "
                           "one again")
                    raise ConfigError(msg)
                base = (int(z["baseline_halflife_ns"]) if fmt == _FORMAT
                        else DEFAULT_BASELINE_NS)
                return cls(
                    inputs=tuple(json.loads(str(z["inputs"]))),
                    halflife_ns=int(z["halflife_ns"]),
                    mean=z["mean"],
                    scale=z["scale"],
                    weights=z["weights"],
                    means=z["means"],
                    precisions_cholesky=z["precisions_cholesky"],
                    labels=z["labels"].astype(np.int64),
                    label_names=tuple(json.loads(str(z["label_names"]))),
                    baseline_halflife_ns=base,
                )
        except ConfigError:
            raise
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            msg = (f"{where} is not a feature model written by FeatureModel.save "
                   f"({type(exc).__name__}: {exc}); fit and save one again")
            raise ConfigError(msg) from exc


NO_MODEL: Final = np.empty(0, np.float64)  #: the parameter vector of "no model"


def model_state() -> FloatArray:
    """A fresh per-instrument model state."""
    s = np.zeros(MODEL_STATE_SIZE)
    s[_M_FIRST_TS] = np.nan
    s[_M_LAST_MID] = np.nan
    s[_M_SPREAD] = np.nan
    return s


@njit(cache=True)
def model_update(
    mp: FloatArray,
    ms: FloatArray,
    out: FloatArray,
    ts: int,
    kind: int,
    side: int,
    qty: int,
    bb: int,
    ba: int,
    bq: int,
    aq: int,
) -> None:
    """Fold one event into the model state ``ms`` and write ``regime`` / ``regime_prob``
    into ``out`` (NaN during the first half-life or with a one-sided book); the inputs stay
    in ``ms[MODEL_X:]``."""
    hl = mp[_P_HL]
    bl = mp[_P_BL]
    if math.isnan(ms[_M_FIRST_TS]):
        ms[_M_FIRST_TS] = float(ts)
        ms[_M_LAST_TS] = float(ts)
    dt = max(float(ts) - ms[_M_LAST_TS], 0.0)
    ms[_M_LAST_TS] = float(ts)
    d = 0.5 ** (dt / hl)
    db = 0.5 ** (dt / bl)
    # decayed lengths of time the short and the baseline counts cover (s): rate = count / w
    ms[_M_W] = ms[_M_W] * d + (1.0 - d) * hl * 1e-9 / _LN2
    ms[_M_BW] = ms[_M_BW] * db + (1.0 - db) * bl * 1e-9 / _LN2
    ms[_M_BMSG] = ms[_M_BMSG] * db + 1.0
    ms[_M_BTRD] *= db
    ms[_M_MSG] = ms[_M_MSG] * d + 1.0
    ms[_M_TRD] *= d
    ms[_M_FLOW] *= d
    ms[_M_VOLU] *= d
    ms[_M_SQ] *= d
    if kind == KIND_TRADE and qty > 0:
        ms[_M_TRD] += 1.0
        ms[_M_BTRD] += 1.0
        ms[_M_FLOW] += qty if side == BUY else (-qty if side != 0 else 0.0)
        ms[_M_VOLU] += qty
    two_sided = bb != NO_PRICE and ba != NO_PRICE and bq + aq > 0
    if two_sided:
        mid = 0.5 * (bb + ba)
        imb = abs(bq - aq) / (bq + aq)
        if math.isnan(ms[_M_SPREAD]):
            ms[_M_SPREAD] = float(ba - bb)
            ms[_M_IMB] = imb
        else:
            ms[_M_SPREAD] = ms[_M_SPREAD] * d + (1.0 - d) * (ba - bb)
            ms[_M_IMB] = ms[_M_IMB] * d + (1.0 - d) * imb
        if not math.isnan(ms[_M_LAST_MID]):
            ms[_M_SQ] += (mid - ms[_M_LAST_MID]) ** 2
        ms[_M_LAST_MID] = mid
    per_s = _LN2 / (hl * 1e-9)
    x = ms[MODEL_X : MODEL_X + 8]
    x[0] = 0.5 * math.log(ms[_M_SQ] * per_s + 1e-6)
    x[1] = ms[_M_SPREAD]
    x[2] = ms[_M_IMB]
    x[3] = math.log(ms[_M_TRD] * per_s + 1e-3)
    x[4] = math.log(ms[_M_MSG] * per_s + 1e-3)
    x[5] = abs(ms[_M_FLOW] / ms[_M_VOLU]) if ms[_M_VOLU] > 0.0 else 0.0
    # half a count added to each: a window without trades has a finite log (at the first
    # event neither covers any time yet: both take the same floor, the ratio is 1)
    w, bw = max(ms[_M_W], 1e-9), max(ms[_M_BW], 1e-9)
    x[6] = math.log((ms[_M_TRD] + 0.5) / w) - math.log((ms[_M_BTRD] + 0.5) / bw)
    x[7] = math.log((ms[_M_MSG] + 0.5) / w) - math.log((ms[_M_BMSG] + 0.5) / bw)
    if not two_sided or math.isnan(ms[_M_SPREAD]) or float(ts) - ms[_M_FIRST_TS] < hl:
        out[OUT_REGIME] = np.nan
        out[OUT_REGIME_PROB] = np.nan
        return
    nd = int(mp[_P_D])
    k = int(mp[_P_K])
    o_idx = _P_HEAD
    o_mean = o_idx + nd
    o_scale = o_mean + nd
    o_logw = o_scale + nd
    o_mu = o_logw + k
    o_pc = o_mu + k * nd
    o_ld = o_pc + k * nd * nd
    o_lab = o_ld + k
    z = ms[_M_Z : _M_Z + nd]
    for j in range(nd):
        z[j] = (x[int(mp[o_idx + j])] - mp[o_mean + j]) / mp[o_scale + j]
    lp = ms[_M_LP : _M_LP + k]
    best = -np.inf
    for c in range(k):
        q = 0.0
        for col in range(nd):  # y = (z - mu_c) @ P_c, column by column
            y = 0.0
            for row in range(nd):
                y += (z[row] - mp[o_mu + c * nd + row]) * mp[o_pc + (c * nd + row) * nd + col]
            q += y * y
        v = mp[o_logw + c] + mp[o_ld + c] - 0.5 * q
        lp[c] = v
        best = max(best, v)
    # posterior per label: components sharing a label add up
    post = ms[_M_LP + MAX_COMPONENTS : _M_LP + MAX_COMPONENTS + k]
    post[:] = 0.0
    total = 0.0
    for c in range(k):
        p = math.exp(lp[c] - best)
        total += p
        post[int(mp[o_lab + c])] += p
    lab = 0
    for j in range(k):
        if post[j] > post[lab]:
            lab = j
    out[OUT_REGIME] = float(lab)
    out[OUT_REGIME_PROB] = post[lab] / total


__all__ = [
    "DEFAULT_BASELINE_NS",
    "MAX_COMPONENTS",
    "MODEL_INPUTS",
    "MODEL_STATE_SIZE",
    "MODEL_X",
    "NO_MODEL",
    "N_MODEL_INPUTS",
    "FeatureModel",
    "model_state",
    "model_update",
]
