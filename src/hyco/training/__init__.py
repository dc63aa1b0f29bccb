"""Trainers: synthetic (network), physical (coefficients) and hybrid (HYCO cycles)."""
