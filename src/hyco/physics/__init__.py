"""Differentiable PDE models with learnable coefficients; importing this registers the shipped ones."""
