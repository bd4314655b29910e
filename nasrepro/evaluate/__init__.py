"""Evaluators: score a derived architecture (benchmark lookups, retraining)."""
