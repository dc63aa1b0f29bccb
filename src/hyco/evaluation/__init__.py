"""Evaluation on held-out simulations: metrics, plots and the report."""
