"""Training: the trainer wrapper, DP via Opacus, built-in architectures."""
