"""Trainers (one module per model kind), metrics and baselines, and the end-to-end run."""
