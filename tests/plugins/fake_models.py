"""A user plugin as a user would write it: registers a PDE model and a network by decorator.

Used by the config tests through `plugins=[fake_models]`, which also exercises the plugin path.
"""

from dataclasses import dataclass

from hyco.errors import require
from hyco.registry import NETWORKS, PHYSICS


@PHYSICS.register("fake_pde")
class FakePDE:
    @dataclass
    class Params:
        resolution: int = 16
        dt: float = 0.1

        def __post_init__(self) -> None:
            require(self.resolution >= 4, "resolution", "an integer >= 4", self.resolution)
            require(self.dt > 0, "dt", "a number > 0", self.dt)


@NETWORKS.register("fake_net")
class FakeNet:
    @dataclass
    class Params:
        width: int = 8
