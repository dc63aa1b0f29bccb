"""Data pipeline: generation, the HDF5 trajectory store, observations, sliding windows, loaders.

The modules are imported on demand (``from hyco.data.store import TrajectoryStore``) so that reading a
dataset does not pull in PhiFlow.
"""
