"""hyco: hybrid-cooperative training of differentiable PDE solvers and neural networks."""

from hyco.version import __version__

__all__ = ["__version__"]
