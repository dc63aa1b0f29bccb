"""Neural surrogates; importing this registers the shipped architectures (unet, resnet, convnet, fno)."""

from hyco.networks import convnet, fno, resnet, unet  # noqa: F401  (registration side effects)
from hyco.networks.runtime import split_section
from hyco.networks.stats import compute_stats, identity_stats
from hyco.networks.surrogate import Surrogate, build_network
from hyco.registry import NETWORKS

# how the network runs, not what it is: checked and set apart (hyco.networks.runtime)
NETWORKS.strip_runtime = lambda rest: split_section(rest)[0]

__all__ = ["Surrogate", "build_network", "compute_stats", "identity_stats"]
