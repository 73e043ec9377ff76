"""Property tests: invariants checked over generated inputs."""
