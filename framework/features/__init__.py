"""Online market features: one update kernel, run per event live or over whole arrays."""

from framework.features.kernels import (
    F_IMBALANCE,
    F_MICROPRICE,
    F_TFI,
    F_VOLATILITY,
    FEATURE_NAMES,
    N_FEATURES,
    compute_features,
    feature_state,
    feature_update,
)

__all__ = [
    "FEATURE_NAMES",
    "F_IMBALANCE",
    "F_MICROPRICE",
    "F_TFI",
    "F_VOLATILITY",
    "N_FEATURES",
    "compute_features",
    "feature_state",
    "feature_update",
]
