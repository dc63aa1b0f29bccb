"""The shipped Hydra config tree (a package so that it is found after `pip install`)."""
