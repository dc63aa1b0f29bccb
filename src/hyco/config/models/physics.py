"""The `Params` of the shipped PDE models: the keys of a `physics` section, their defaults and range checks.

They live here, below the physics layer and free of torch and PhiFlow, so that a config is validated (and a
bad one refused, with the memory estimate that needs only these sizes) without importing the solvers. Each
model class keeps its `Params` as an alias of its dataclass here; each model's docstring explains the keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hyco.config.models.coefficients import CoefficientParams, ProfileParams, coefficient, domain_range
from hyco.errors import ConfigError, require

PERIODIC = "periodic"
DIRICHLET = "dirichlet"  # zero value on the boundary faces
NEUMANN = "neumann"  # zero flux through the boundary faces
RUNTIME_KEYS = ("batch_buckets",)  # `physics.<key>` that set how the model runs, outside its Params and data hash
# State-sized buffers autograd keeps per substep and window unless a model declares its own
# `memory_buffers_per_substep`: the physical trainer's batch sizing and the memory estimate (measured in
# `hyco.training.physical`: Burgers 21-24, heat 15, plus a margin).
BUFFERS_PER_SUBSTEP = 28


@dataclass(frozen=True)
class FieldSpec:
    """A field of the state: `channels` tensor channels (1 scalar, ndim vector), its grid type, and
    whether it evolves (dynamic) or is a fixed input such as a known velocity (static)."""

    name: str
    channels: int
    grid: str = "centered"  # centered | staggered
    dynamic: bool = True


def check_domain(resolution, bounds, dt: float, substeps: int, ndims=(1, 2, 3)) -> None:
    """Shared range checks of the domain keys (keys relative to the physics section)."""
    require(len(resolution) in ndims, "resolution", f"{' or '.join(map(str, ndims))} integers (x first)",
            list(resolution))
    require(all(n >= 4 for n in resolution), "resolution", "integers >= 4", list(resolution))
    require(len(bounds) == len(resolution), "bounds", f"{len(resolution)} numbers like resolution (x first)",
            list(bounds))
    require(all(b > 0 for b in bounds), "bounds", "numbers > 0", list(bounds))
    require(dt > 0, "dt", "a number > 0", dt)
    require(substeps >= 1, "substeps", "an integer >= 1", substeps)


@dataclass
class DomainParams:
    """The keys every shipped PDE model has: its grid, its domain and the time between stored frames. A model
    redeclares a field to change its default, and sets `DIMENSIONS` to the grids it supports."""

    resolution: list[int] = field(default_factory=lambda: [32, 32])  # cells per axis, x first
    bounds: list[float] = field(default_factory=lambda: [1.0, 1.0])  # domain size per axis, x first
    dt: float = 0.02  # time between stored frames
    substeps: int = 4  # solver steps per stored frame
    DIMENSIONS: ClassVar[tuple[int, ...]] = (1, 2, 3)

    def __post_init__(self) -> None:
        check_domain(self.resolution, self.bounds, self.dt, self.substeps, ndims=self.DIMENSIONS)


@dataclass
class BurgersParams(DomainParams):
    viscosity: CoefficientParams = field(default_factory=lambda: coefficient("scalar", 0.02, 0.01))
    init_modes: int = 3  # initial velocity: random Fourier modes with |k| <= init_modes
    init_amplitude: float = 1.0  # initial velocity: max |u| of each sample

    def __post_init__(self) -> None:
        super().__post_init__()
        self.viscosity.check("viscosity", len(self.resolution))
        require(self.init_modes >= 1, "init_modes", "an integer >= 1", self.init_modes)
        require(self.init_amplitude > 0, "init_amplitude", "a number > 0", self.init_amplitude)

    def state_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("velocity", len(self.resolution)),)


HEAT_INITS = ("fourier", "profile")


def _default_diffusivity() -> CoefficientParams:
    return CoefficientParams(
        kind="field",
        truth=ProfileParams(type="gaussians", value=0.01, centers=[[0.3, 0.3], [0.7, 0.6]], widths=[0.12, 0.15],
                            heights=[0.04, 0.03]),
        guess=ProfileParams(type="constant", value=0.02),
    )


@dataclass
class HeatParams(DomainParams):
    dt: float = 0.01
    origin: list[float] = field(default_factory=list)  # coordinates of the lower corner, x first ([] = zeros)
    boundary: str = "periodic"  # periodic | dirichlet (T = 0 on the walls)
    diffusivity: CoefficientParams = field(default_factory=_default_diffusivity)
    init: str = "fourier"  # initial temperature: fourier (random modes) | profile (init_profile, varied)
    init_modes: int = 4  # fourier: random Fourier modes with |k| <= init_modes
    init_amplitude: float = 1.0  # fourier: max |T| of each sample
    init_profile: ProfileParams = field(default_factory=ProfileParams)  # profile: T at t = 0 before variation
    init_jitter: float = 0.0  # profile: relative random variation of heights and centres per sample

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.origin) in (0, len(self.resolution)), "origin",
                f"{len(self.resolution)} numbers like resolution (x first), or []", list(self.origin))
        require(self.boundary in (PERIODIC, DIRICHLET), "boundary", "one of periodic, dirichlet", self.boundary)
        self.diffusivity.check("diffusivity", len(self.resolution))
        require(self.init_modes >= 1, "init_modes", "an integer >= 1", self.init_modes)
        require(self.init_amplitude > 0, "init_amplitude", "a number > 0", self.init_amplitude)
        require(self.init in HEAT_INITS, "init", f"one of {', '.join(HEAT_INITS)}", self.init)
        require(self.init_jitter >= 0, "init_jitter", "a number >= 0", self.init_jitter)
        if self.init == "profile":
            self.init_profile.check("init_profile", len(self.resolution), "field")
            ranges = domain_range(self.init_profile.units, tuple(self.bounds), tuple(self.origin) or None)
            for j, centre in enumerate(self.init_profile.centers if self.init_profile.type == "gaussians" else []):
                require(all(lo <= c <= hi for c, (lo, hi) in zip(centre, ranges)), f"init_profile.centers[{j}]",
                        "a centre inside the domain", list(centre))

    def state_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("temperature", 1),)


def _default_modulation() -> CoefficientParams:
    return CoefficientParams(
        kind="field",
        truth=ProfileParams(type="sinusoid", value=1.0, amplitude=0.5, wavenumber=[1, 1], phase=0.0),
        guess=ProfileParams(type="constant", value=0.8),
    )


@dataclass
class AdvectionParams(DomainParams):
    substeps: int = 2
    modulation: CoefficientParams = field(default_factory=_default_modulation)
    flow_modes: int = 2  # known flow: stream function of Fourier modes with |k| <= flow_modes
    flow_amplitude: float = 1.0  # known flow: max |w| of each sample
    blobs: int = 3  # initial density: number of gaussian blobs
    blob_width: float = 0.08  # initial density: blob std, fraction of the domain
    DIMENSIONS: ClassVar[tuple[int, ...]] = (2,)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.modulation.check("modulation", 2)
        require(self.flow_modes >= 1, "flow_modes", "an integer >= 1", self.flow_modes)
        require(self.flow_amplitude > 0, "flow_amplitude", "a number > 0", self.flow_amplitude)
        require(self.blobs >= 1, "blobs", "an integer >= 1", self.blobs)
        require(0 < self.blob_width < 1, "blob_width", "a number in (0, 1)", self.blob_width)

    def state_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("density", 1), FieldSpec("flow", 2, dynamic=False))


def _default_buoyancy() -> CoefficientParams:
    return CoefficientParams(
        kind="scalar",
        truth=ProfileParams(type="constant", value=1.0),
        guess=ProfileParams(type="constant", value=0.5),
    )


@dataclass
class SmokeParams(DomainParams):
    dt: float = 0.05
    substeps: int = 2
    buoyancy: CoefficientParams = field(default_factory=_default_buoyancy)
    pressure_tolerance: float = 1e-5  # CG: relative and absolute residual tolerance
    pressure_max_iterations: int = 1000  # CG iteration cap
    blobs: int = 2  # initial smoke: number of gaussian blobs (lower half of the box)
    blob_width: float = 0.08  # initial smoke: blob std, fraction of the domain

    # State-sized buffers autograd keeps per substep and window (sizes the physical trainer's batch):
    # measured 81-122 at 16x16 (MacCormack + staggered advection + the pressure solve's graph).
    memory_buffers_per_substep: ClassVar[int] = 128
    DIMENSIONS: ClassVar[tuple[int, ...]] = (2,)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.buoyancy.check("buoyancy", 2)
        require(self.pressure_tolerance > 0, "pressure_tolerance", "a number > 0", self.pressure_tolerance)
        require(self.pressure_max_iterations >= 1, "pressure_max_iterations", "an integer >= 1",
                self.pressure_max_iterations)
        require(self.blobs >= 1, "blobs", "an integer >= 1", self.blobs)
        require(0 < self.blob_width < 1, "blob_width", "a number in (0, 1)", self.blob_width)

    def state_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("velocity", 2, grid="staggered"), FieldSpec("smoke", 1))


GRAY_SCOTT_MAX_SUBSTEP = 1.5  # largest h = dt / substeps (at 1.75 the reaction would take the whole budget)
SEED_SHAPES = ("square", "gaussian")


def _known(value: float) -> CoefficientParams:
    params = coefficient("scalar", value, value)
    params.learn = False
    return params


@dataclass
class GrayScottParams(DomainParams):
    resolution: list[int] = field(default_factory=lambda: [64, 64])
    bounds: list[float] = field(default_factory=lambda: [100.0, 100.0])
    dt: float = 100.0
    substeps: int = 200  # h = dt / substeps < GRAY_SCOTT_MAX_SUBSTEP (checked below)
    D_u: CoefficientParams = field(default_factory=lambda: coefficient("scalar", 0.2, 0.1))
    D_v: CoefficientParams = field(default_factory=lambda: coefficient("scalar", 0.08, 0.05))
    f: CoefficientParams = field(default_factory=lambda: _known(0.018))  # feed rate
    k: CoefficientParams = field(default_factory=lambda: _known(0.051))  # kill rate
    seeds: int = 4  # initial state: random seeds of v per sample
    seed_shape: str = "square"  # square | gaussian
    seed_size: float = 0.1  # square side / gaussian std, fraction of the domain
    seed_u: float = 0.5  # u inside a seed (u = 1 elsewhere)
    seed_v: float = 0.25  # v inside a seed (v = 0 elsewhere)
    noise: float = 0.01  # uniform noise amplitude added to u and v

    def __post_init__(self) -> None:
        super().__post_init__()
        h = self.dt / self.substeps
        require(h < GRAY_SCOTT_MAX_SUBSTEP, "substeps",
                f"at least {int(self.dt / GRAY_SCOTT_MAX_SUBSTEP) + 1} (h = dt / substeps < {GRAY_SCOTT_MAX_SUBSTEP} "
                "leaves the diffusion a share of the explicit Euler budget)", self.substeps)
        for name in ("D_u", "D_v", "f", "k"):
            getattr(self, name).check(name, len(self.resolution))
        require(self.seeds >= 0, "seeds", "an integer >= 0", self.seeds)
        require(self.seed_shape in SEED_SHAPES, "seed_shape", f"one of {', '.join(SEED_SHAPES)}", self.seed_shape)
        require(0 < self.seed_size < 1, "seed_size", "a number in (0, 1)", self.seed_size)
        require(0 <= self.seed_u <= 1, "seed_u", "a number in [0, 1]", self.seed_u)
        require(0 <= self.seed_v <= 1, "seed_v", "a number in [0, 1]", self.seed_v)
        require(0 <= self.noise < 0.5, "noise", "a number in [0, 0.5)", self.noise)

    def state_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("u", 1), FieldSpec("v", 1))


# name -> Params of every model that `hyco.physics` registers (tests/physics check that the two agree)
PARAMS: dict[str, type] = {"advection": AdvectionParams, "burgers": BurgersParams, "gray_scott": GrayScottParams,
                           "heat": HeatParams, "smoke": SmokeParams}


def strip_runtime(rest: dict[str, Any]) -> dict[str, Any]:
    """How batches are run (PhysicalModel.batch_buckets), not what the model is: checked and set apart."""
    for key in RUNTIME_KEYS:
        if key in rest and not isinstance(rest[key], bool):
            raise ConfigError(f"physics.{key}", "true or false", rest[key])
    return {k: v for k, v in rest.items() if k not in RUNTIME_KEYS}
