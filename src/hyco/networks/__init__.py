"""Neural surrogates; importing this registers the shipped architectures (unet, resnet, convnet, fno)."""

from hyco.networks import convnet, fno, resnet, unet  # noqa: F401  (registration side effects)
from hyco.networks.stats import compute_stats, identity_stats
from hyco.networks.surrogate import Surrogate, build_network

__all__ = ["Surrogate", "build_network", "compute_stats", "identity_stats"]
