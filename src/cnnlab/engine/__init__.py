"""Training, evaluation and prediction loops, checkpoints and devices."""
