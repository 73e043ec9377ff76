"""Exchange wire formats: encoders and decoders (pure functions over bytes)."""
