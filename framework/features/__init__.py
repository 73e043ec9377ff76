"""Online market features: one update kernel, run per event live or over whole arrays."""

from framework.features.kernels import (
    F_IMBALANCE,
    F_MICROPRICE,
    F_REGIME,
    F_REGIME_PROB,
    F_TFI,
    F_VOLATILITY,
    FEATURE_NAMES,
    N_FEATURES,
    compute_features,
    feature_state,
    feature_update,
)
from framework.features.model import MODEL_INPUTS, FeatureModel, model_state

__all__ = [
    "FEATURE_NAMES",
    "F_IMBALANCE",
    "F_MICROPRICE",
    "F_REGIME",
    "F_REGIME_PROB",
    "F_TFI",
    "F_VOLATILITY",
    "MODEL_INPUTS",
    "N_FEATURES",
    "FeatureModel",
    "compute_features",
    "feature_state",
    "feature_update",
    "model_state",
]
