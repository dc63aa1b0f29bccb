"""Where a plug-in registers its PDE model or network: `from hyco.registry import PHYSICS, NETWORKS`.

The registries themselves belong to the config layer (hyco.config.registry); this name stays for plug-in
authors, at the top of the package, so that nothing inside hyco imports it.
"""

from hyco.config.registry import NETWORKS, PHYSICS

__all__ = ["NETWORKS", "PHYSICS"]
