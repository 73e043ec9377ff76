"""The learning layer: market regimes, anomalies, online choice of parameter sets.

``research.ml.regime`` fits a regime model that the engine evaluates per event (the
``regime`` feature), ``research.ml.anomaly`` flags market and execution anomalies and can
trip a kill switch, ``research.ml.bandit`` picks a strategy's parameter set per regime as a
run goes. scikit-learn is imported only where a model is fitted.
"""
