"""hftlab research tools (optimisation, walk-forward, screening); built on framework."""
