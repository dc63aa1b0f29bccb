"""The `Params` of the shipped PDE models: the keys of a `physics` section, their defaults and range checks.

They live here, below the physics layer and free of torch and PhiFlow, so that a config is validated (and a
bad one refused, with the memory estimate that needs only these sizes) without importing the solvers. Each
model class keeps its `Params` as an alias of its dataclass here; each model's docstring explains the keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hyco.config.fields import check_settings, setting
from hyco.config.models.coefficients import CoefficientParams, ProfileParams, coefficient, domain_range
from hyco.errors import ConfigError, require

PERIODIC = "periodic"
DIRICHLET = "dirichlet"  # zero value on the boundary faces
NEUMANN = "neumann"  # zero flux through the boundary faces
RUNTIME_KEYS = ("batch_buckets",)  # `physics.<key>` that set how the model runs, outside its Params and data hash
RUNTIME_DOCS = {"batch_buckets": "Run a batch as compiled calls of at most 32 samples, padded to powers of two, so "
                                  "that each size is traced once (true or false; default true)."}
# State-sized buffers autograd keeps per substep and window unless a model declares its own
# `memory_buffers_per_substep`: the physical trainer's batch sizing and the memory estimate (measured in
# `hyco.training.physical`: Burgers 21-24, heat 15, plus a margin).
BUFFERS_PER_SUBSTEP = 28
# `physics.time_step`: how a substep integrates in time (hyco.physics.time_step has the schemes)
TIME_STEPS = ("euler", "heun", "ssprk3", "rk4")
TIME_STEP_EVALUATIONS = {"euler": 1, "heun": 2, "ssprk3": 3, "rk4": 4}  # rate evaluations (cost) per substep


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

    resolution: list[int] = setting([32, 32], "Cells per axis, x first (its length is the number of dimensions).",
                                    allowed="1 to 3 integers >= 4 (as the model supports)")
    bounds: list[float] = setting([1.0, 1.0], "The domain's size per axis, x first.",
                                  allowed="numbers > 0, one per axis")
    dt: float = setting(0.02, "Time between stored frames.", above=0)
    substeps: int = setting(4, "Solver steps per stored frame (the explicit scheme's step is dt / substeps).",
                            at_least=1)
    time_step: str = setting("euler", "How a substep integrates in time: `euler` (explicit, first order), `heun` "
                                      "(SSP Runge-Kutta 2), `ssprk3` (SSP Runge-Kutta 3) or `rk4` (classical "
                                      "Runge-Kutta 4); a scheme of order p costs p rate evaluations per substep "
                                      "(rk4: 4) and is offered by the models whose substep is a rate (heat, "
                                      "gray_scott, burgers: there the method of lines with central advection "
                                      "instead of the semi-Lagrangian Euler step).", choices=TIME_STEPS)
    DIMENSIONS: ClassVar[tuple[int, ...]] = (1, 2, 3)
    RATE_FORM: ClassVar[bool] = False  # the model's substep is u + h rate(u): the Runge-Kutta schemes apply

    def __post_init__(self) -> None:
        check_domain(self.resolution, self.bounds, self.dt, self.substeps, ndims=self.DIMENSIONS)
        check_settings(self)  # the declared choices and bounds of every key, the model's own included
        require(self.time_step == "euler" or self.RATE_FORM, "time_step",
                "euler (this model's substep is semi-Lagrangian, not a rate: no Runge-Kutta scheme applies)",
                self.time_step)


@dataclass
class BurgersParams(DomainParams):
    viscosity: CoefficientParams = setting(coefficient("scalar", 0.02, 0.01), "The viscosity ν (a coefficient).",
                                           kind="coefficient")
    init_modes: int = setting(3, "Initial velocity: random Fourier modes with |k| <= init_modes.", at_least=1)
    init_amplitude: float = setting(1.0, "Initial velocity: the largest |u| of each sample.", above=0)
    RATE_FORM: ClassVar[bool] = True  # Runge-Kutta: the method of lines (hyco.physics.burgers); euler: semi-Lagrangian

    def __post_init__(self) -> None:
        super().__post_init__()
        self.viscosity.check("viscosity", len(self.resolution))

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
    RATE_FORM: ClassVar[bool] = True
    origin: list[float] = setting([], "Coordinates of the domain's lower corner, x first ([]: zeros); profiles "
                                      "with `units: domain` use them.", allowed="[] or one number per axis")
    boundary: str = setting("periodic", "`periodic`, or `dirichlet` (T = 0 on the walls).",
                            choices=(PERIODIC, DIRICHLET))
    diffusivity: CoefficientParams = setting(_default_diffusivity(), "The diffusivity κ (a coefficient).",
                                             kind="coefficient")
    init: str = setting("fourier", "Initial temperature: `fourier` (random modes) or `profile` (`init_profile`, "
                                   "varied per sample).", choices=HEAT_INITS)
    init_modes: int = setting(4, "init=fourier: random Fourier modes with |k| <= init_modes.", at_least=1)
    init_amplitude: float = setting(1.0, "init=fourier: the largest |T| of each sample.", above=0)
    init_profile: ProfileParams = setting(ProfileParams(), "init=profile: T at t = 0 before the variation (a "
                                                           "profile, the keys of a coefficient's truth).",
                                          kind="profile")
    init_jitter: float = setting(0.0, "init=profile: relative random variation of the heights and centres per "
                                      "sample.", at_least=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(len(self.origin) in (0, len(self.resolution)), "origin",
                f"{len(self.resolution)} numbers like resolution (x first), or []", list(self.origin))
        self.diffusivity.check("diffusivity", len(self.resolution))
        if self.init == "profile":
            self.init_profile.check("init_profile", len(self.resolution), "field")
            ranges = domain_range(self.init_profile.units, tuple(self.bounds), tuple(self.origin) or None)
            for j, centre in enumerate(self.init_profile.centers if self.init_profile.type == "gaussians" else []):
                require(all(lo <= c <= hi for c, (lo, hi) in zip(centre, ranges)), f"init_profile.centers[{j}]",
                        "a centre inside the domain", list(centre))

    def state_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("temperature", 1),)


def _no_decay() -> CoefficientParams:
    params = coefficient("field", 0.0, 0.0)
    params.learn = False
    return params


@dataclass
class HeatDecayParams(HeatParams):
    """Heat with a first-order decay: the term the `heat` model lacks (the missing-physics experiments simulate
    their data with it and learn with `heat`)."""

    decay: CoefficientParams = setting(_no_decay(), "The decay rate r(x) of dT/dt = ∇·(κ∇T) − r T (a coefficient, "
                                                    "known by default; 0: plain heat).", kind="coefficient")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.decay.check("decay", len(self.resolution))


def _default_modulation() -> CoefficientParams:
    return CoefficientParams(
        kind="field",
        truth=ProfileParams(type="sinusoid", value=1.0, amplitude=0.5, wavenumber=[1, 1], phase=0.0),
        guess=ProfileParams(type="constant", value=0.8),
    )


@dataclass
class AdvectionParams(DomainParams):
    substeps: int = 2
    modulation: CoefficientParams = setting(_default_modulation(), "The modulation m of the known flow (a "
                                                                   "coefficient).", kind="coefficient")
    flow_modes: int = setting(2, "Known flow: a stream function of Fourier modes with |k| <= flow_modes.",
                              at_least=1)
    flow_amplitude: float = setting(1.0, "Known flow: the largest |w| of each sample.", above=0)
    blobs: int = setting(3, "Initial density: the number of gaussian blobs.", at_least=1)
    blob_width: float = setting(0.08, "Initial density: the blobs' std, a fraction of the domain.", above=0, below=1)
    DIMENSIONS: ClassVar[tuple[int, ...]] = (2,)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.modulation.check("modulation", 2)

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
    buoyancy: CoefficientParams = setting(_default_buoyancy(), "The buoyancy b (a coefficient).", kind="coefficient")
    pressure_tolerance: float = setting(1e-5, "Pressure solve (conjugate gradient): relative and absolute residual "
                                              "tolerance.", above=0)
    pressure_max_iterations: int = setting(1000, "Pressure solve: the iteration cap.", at_least=1)
    blobs: int = setting(2, "Initial smoke: the number of gaussian blobs (lower half of the box).", at_least=1)
    blob_width: float = setting(0.08, "Initial smoke: the blobs' std, a fraction of the domain.", above=0, below=1)

    # State-sized buffers autograd keeps per substep and window (sizes the physical trainer's batch):
    # measured 81-122 at 16x16 (MacCormack + staggered advection + the pressure solve's graph).
    memory_buffers_per_substep: ClassVar[int] = 128
    DIMENSIONS: ClassVar[tuple[int, ...]] = (2,)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.buoyancy.check("buoyancy", 2)

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
    RATE_FORM: ClassVar[bool] = True
    D_u: CoefficientParams = setting(coefficient("scalar", 0.2, 0.1), "The diffusivity of u (a coefficient).",
                                     kind="coefficient")
    D_v: CoefficientParams = setting(coefficient("scalar", 0.08, 0.05), "The diffusivity of v (a coefficient).",
                                     kind="coefficient")
    f: CoefficientParams = setting(_known(0.018), "The feed rate (a coefficient, known by default).",
                                   kind="coefficient")
    k: CoefficientParams = setting(_known(0.051), "The kill rate (a coefficient, known by default).",
                                   kind="coefficient")
    seeds: int = setting(4, "Initial state: random seeds of v per sample.", at_least=0)
    seed_shape: str = setting("square", "Initial state: the seeds' shape.", choices=SEED_SHAPES)
    seed_size: float = setting(0.1, "Initial state: a square's side or a gaussian's std, a fraction of the domain.",
                               above=0, below=1)
    seed_u: float = setting(0.5, "Initial state: u inside a seed (u = 1 elsewhere).", at_least=0, at_most=1)
    seed_v: float = setting(0.25, "Initial state: v inside a seed (v = 0 elsewhere).", at_least=0, at_most=1)
    noise: float = setting(0.01, "Initial state: the amplitude of uniform noise added to u and v.", at_least=0,
                           below=0.5)

    def __post_init__(self) -> None:
        super().__post_init__()
        h = self.dt / self.substeps
        require(h < GRAY_SCOTT_MAX_SUBSTEP, "substeps",
                f"at least {int(self.dt / GRAY_SCOTT_MAX_SUBSTEP) + 1} (h = dt / substeps < {GRAY_SCOTT_MAX_SUBSTEP} "
                "leaves the diffusion a share of the explicit Euler budget)", self.substeps)
        for name in ("D_u", "D_v", "f", "k"):
            getattr(self, name).check(name, len(self.resolution))

    def state_fields(self) -> tuple[FieldSpec, ...]:
        return (FieldSpec("u", 1), FieldSpec("v", 1))


# name -> Params of every model that `hyco.physics` registers (tests/physics check that the two agree)
PARAMS: dict[str, type] = {"advection": AdvectionParams, "burgers": BurgersParams, "gray_scott": GrayScottParams,
                           "heat": HeatParams, "heat_decay": HeatDecayParams,
                           "smoke": SmokeParams}


def strip_runtime(rest: dict[str, Any]) -> dict[str, Any]:
    """How batches are run (PhysicalModel.batch_buckets), not what the model is: checked and set apart."""
    for key in RUNTIME_KEYS:
        if key in rest and not isinstance(rest[key], bool):
            raise ConfigError(f"physics.{key}", "true or false", rest[key])
    return {k: v for k, v in rest.items() if k not in RUNTIME_KEYS}
