"""Typed schema of the whole configuration.

Hydra composes the YAML tree in ``hyco/conf`` on top of :class:`HycoConfig`, so an unknown key or a
value of the wrong type is rejected while composing; the range checks in ``__post_init__`` run when
the composed config is turned into these objects (:func:`hyco.config.validate.to_typed`).
Model-specific settings (``physics``, ``network``) are free-form here and validated against the
schema that the chosen model declares in its registry entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyco.config.errors import require

TASKS = ("generate", "train", "evaluate", "report", "run")
TRAIN_MODES = ("physical", "synthetic", "hybrid")


def _is_positive(value: float) -> bool:
    return value > 0


EXTERNAL_FORMATS = ("auto", "the_well", "pdebench")


@dataclass
class ExternalSplits:
    """A file of its own for a split (The Well keeps data/train, data/valid, data/test); empty: `path`."""

    train: str = ""
    val: str = ""
    test: str = ""


@dataclass
class ExternalDataConfig:
    """Trajectories made elsewhere (The Well or PDEBench HDF5 layouts), imported instead of simulated.

    See `hyco.data.external`: the file's fields are mapped onto the physics model's channels; its grid, dt and
    bounds are used where it has them. `path: ""` (the default) simulates the data as usual."""

    path: str = ""  # the file every split takes its trajectories from, in order train, val, test
    format: str = "auto"  # auto | the_well | pdebench
    # file field[component] -> physics field[channel], e.g. +data.external.fields={Vx: 'velocity[0]'}; empty: by
    # name (a physics field takes the file field of its name; a file of one field fills the channels in order)
    fields: dict[str, str] = field(default_factory=dict)
    splits: ExternalSplits = field(default_factory=lambda: ExternalSplits())  # a file of its own per split
    start_frame: int = 0  # the first frame of each trajectory taken
    frame_stride: int = 1  # every k-th frame from there (dt = k x the file's dt)
    known_truth: list[str] = field(default_factory=list)  # learned coefficients whose physics.<name>.truth is
    # the true value of the file's data; the others are reported as unknown (known ones, learn: false, always)

    def __post_init__(self) -> None:
        require(self.format in EXTERNAL_FORMATS, "data.external.format", f"one of {', '.join(EXTERNAL_FORMATS)}",
                self.format)
        require(self.start_frame >= 0, "data.external.start_frame", "an integer >= 0", self.start_frame)
        require(self.frame_stride >= 1, "data.external.frame_stride", "an integer >= 1", self.frame_stride)
        for source, target in self.fields.items():
            require(bool(source) and bool(target), "data.external.fields", "file field: physics field pairs",
                    f"{source}: {target}")

    @property
    def enabled(self) -> bool:
        return bool(self.path or self.splits.train or self.splits.val or self.splits.test)


@dataclass
class ReferenceConfig:
    """How the data are simulated: a reference finer than the learning solver, restricted to its grid.

    `refine` cells per learning cell along each axis; `substeps` solver steps per stored frame of the reference
    (0: the learning substeps x refine^2, what an explicit scheme's stability bound dx^2 / h needs on the finer
    grid). refine 1 with substeps 0 is the learning solver itself: the data then come from the very
    discretisation that learns from them (the inverse crime), which the quick experiments accept for speed."""

    refine: int = 1
    substeps: int = 0

    def __post_init__(self) -> None:
        require(self.refine >= 1, "data.reference.refine", "an integer >= 1 (1: the learning grid)", self.refine)
        require(self.substeps >= 0, "data.reference.substeps",
                "an integer >= 0 (0: the learning substeps x refine^2)", self.substeps)

    @property
    def is_learning_solver(self) -> bool:
        """True when the data come from the learning solver itself (no finer grid, no finer time step)."""
        return self.refine == 1 and self.substeps == 0


@dataclass
class DataConfig:
    """How many trajectories to simulate and how they are cut into training windows."""

    num_train: int = 8
    num_val: int = 2
    num_test: int = 2
    num_frames: int = 32  # stored frames per trajectory, the initial state included
    rollout_steps: int = 4  # R: targets are frames t+1..t+R
    # seeds what the data are: the trajectories' initial states, the random observation masks and the noise
    # (`seed` seeds what training draws: initial weights, shuffling). Part of the dataset's hash; `seed` is not
    seed: int = 0
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)  # the simulator that makes the data
    regenerate: str = "auto"  # auto | always | never
    generation_batch: int = 8  # simulations per batched rollout during generation
    max_cached_sims: int = 64  # decoded trajectories kept in the loader's LRU
    lock_timeout_s: float = 600.0  # wait this long for another process generating the same file
    # Completed input states (observation.states=initial): refreshed every `completion_every` epochs of
    # physical-only / synthetic-only training; stored like HYCO's generated data (memory | cache | on_the_fly)
    completion_every: int = 1
    completion_memory_gb: float = 1.0
    completion_strategy: str = "auto"
    # frames of each validation trajectory (after frame 0) that validation scores; 0 = all. Rollouts of a
    # chaotic or pattern-forming system decorrelate: past that horizon the error ranks models by chance
    validation_frames: int = 0
    external: ExternalDataConfig = field(default_factory=ExternalDataConfig)  # data made elsewhere

    def __post_init__(self) -> None:
        require(self.num_train >= 1, "data.num_train", "an integer >= 1", self.num_train)
        require(self.seed >= 0, "data.seed", "an integer >= 0", self.seed)
        require(self.num_val >= 0, "data.num_val", "an integer >= 0", self.num_val)
        require(self.num_test >= 0, "data.num_test", "an integer >= 0", self.num_test)
        require(self.rollout_steps >= 1, "data.rollout_steps", "an integer >= 1", self.rollout_steps)
        require(
            self.num_frames >= self.rollout_steps + 1,
            "data.num_frames",
            f"an integer >= rollout_steps + 1 = {self.rollout_steps + 1}",
            self.num_frames,
        )
        require(
            self.regenerate in ("auto", "always", "never"),
            "data.regenerate",
            "one of auto, always, never",
            self.regenerate,
        )
        require(self.generation_batch >= 1, "data.generation_batch", "an integer >= 1", self.generation_batch)
        require(self.max_cached_sims >= 1, "data.max_cached_sims", "an integer >= 1", self.max_cached_sims)
        require(self.lock_timeout_s > 0, "data.lock_timeout_s", "a number > 0", self.lock_timeout_s)
        require(self.completion_every >= 1, "data.completion_every", "an integer >= 1", self.completion_every)
        require(0 <= self.validation_frames < self.num_frames, "data.validation_frames",
                f"an integer in [0, num_frames - 1 = {self.num_frames - 1}] (0: all)", self.validation_frames)
        require(self.completion_memory_gb > 0, "data.completion_memory_gb", "a number > 0",
                self.completion_memory_gb)
        require(self.completion_strategy in ("auto", "memory", "cache", "on_the_fly"), "data.completion_strategy",
                "one of auto, memory, cache, on_the_fly", self.completion_strategy)


SPATIAL_MASKS = ("full", "box", "centre", "random_points")
TEMPORAL_MASKS = ("all", "every_k", "first_last", "frames")
STATES = ("initial", "full")
INITIAL = ("full", "observed")
INITIAL_FILLS = ("harmonic", "mean")


@dataclass
class ObservationConfig:
    """What part of the REAL data the trainers may see, and how noisy it is."""

    spatial: str = "full"  # full | box | centre | random_points
    box_lower: list[float] = field(default_factory=lambda: [0.25, 0.25])  # fractions of the domain
    box_upper: list[float] = field(default_factory=lambda: [0.75, 0.75])
    centre_fraction: float = 0.25  # fraction of the domain's volume, centred
    point_fraction: float = 0.1  # fraction of grid points observed (random_points)
    temporal: str = "all"  # all | every_k | first_last | frames
    every_k: int = 1
    frames: list[int] = field(default_factory=list)  # temporal=frames: the observed frame indices
    noise_level: float = 0.0  # std of additive noise, relative to the data's std per channel
    noise_levels: dict[str, float] = field(default_factory=dict)  # per dynamic field, overrides noise_level
    fields: list[str] = field(default_factory=list)  # observed dynamic fields; empty = all of them
    # What is known of a state: `initial` = frame 0 as `initial` says, later frames only where observed (inputs
    # of later windows are completed from a model's prediction); `full` = every state in full ("oracle states").
    states: str = "initial"
    # What is known of frame 0 (states=initial): `full` = every value (the HYCO paper's setting); `observed` =
    # only where the masks say, like any frame, its hidden part filled by `initial_fill` from the observed values
    initial: str = "full"
    initial_fill: str = "harmonic"  # harmonic (smooth inpainting: Laplace's equation) | mean (observed mean)
    seed: int = 1234  # the masks' and the noise's stream under data.seed (vary it to redraw them alone)

    def __post_init__(self) -> None:
        require(self.spatial in SPATIAL_MASKS, "observation.spatial", f"one of {', '.join(SPATIAL_MASKS)}",
                self.spatial)
        require(self.temporal in TEMPORAL_MASKS, "observation.temporal",
                f"one of {', '.join(TEMPORAL_MASKS)}", self.temporal)
        require(self.states in STATES, "observation.states", f"one of {', '.join(STATES)}", self.states)
        require(self.initial in INITIAL, "observation.initial", f"one of {', '.join(INITIAL)}", self.initial)
        require(self.initial_fill in INITIAL_FILLS, "observation.initial_fill", f"one of {', '.join(INITIAL_FILLS)}",
                self.initial_fill)
        require(self.states == "initial" or self.initial == "full", "observation.initial",
                "full with observation.states=full (oracle states know every state in full, frame 0 included)",
                self.initial)
        if self.temporal == "frames":
            require(len(self.frames) > 0 and all(f >= 0 for f in self.frames), "observation.frames",
                    "a non-empty list of frame indices >= 0 (temporal=frames)", list(self.frames))
            require(self.states != "initial" or 0 in self.frames, "observation.frames",
                    f"a list that includes frame 0: observation.states=initial with initial={self.initial} needs "
                    "frame 0 observed" + (" (it is declared known in full)" if self.initial == "full"
                                          else " (its hidden part is filled from its observed values)"),
                    list(self.frames))
        require(len(set(self.fields)) == len(self.fields), "observation.fields", "distinct field names",
                list(self.fields))
        for name, level in self.noise_levels.items():
            require(level >= 0.0, f"observation.noise_levels.{name}", "a number >= 0", level)
        require(len(self.box_lower) == len(self.box_upper), "observation.box_upper",
                f"as many entries as observation.box_lower ({len(self.box_lower)})", list(self.box_upper))
        for i, (lo, hi) in enumerate(zip(self.box_lower, self.box_upper)):
            require(0.0 <= lo < hi <= 1.0, f"observation.box_lower[{i}]",
                    "fractions with 0 <= lower < upper <= 1", [lo, hi])
        require(0.0 < self.centre_fraction <= 1.0, "observation.centre_fraction", "a number in (0, 1]",
                self.centre_fraction)
        require(0.0 < self.point_fraction <= 1.0, "observation.point_fraction", "a number in (0, 1]",
                self.point_fraction)
        require(self.every_k >= 1, "observation.every_k", "an integer >= 1", self.every_k)
        require(self.noise_level >= 0.0, "observation.noise_level", "a number >= 0", self.noise_level)


@dataclass
class SyntheticTrainerConfig:
    """Network training (`SyntheticTrainer`)."""

    epochs: int = 20  # epochs of synthetic-only training
    batch_size: int = 16
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "cosine"  # cosine | step | none
    step_size: int = 10  # epochs per step of the `step` scheduler
    gamma: float = 0.5
    grad_clip: float = 1.0  # max gradient norm; 0 disables
    curriculum: list[int] = field(default_factory=list)  # rollout lengths, spread over the whole run
    num_workers: int = 0
    # epochs between validation rollouts; auto: every epoch of synthetic-only training, once per HYCO cycle
    # (at its end, where the trust weights need it anyway)
    validate_every: Any = "auto"
    # activation memory of one step's rollout: a larger batch runs as micro-batches (the same gradient).
    # 0.35, not 0.5: on the issue-16 case (64x64 UNet of width 64, 3-step rollouts) it took the peak RSS from
    # about 1660 to 1445 MiB at the same CPU time (micro-batches of 5 samples instead of 7)
    memory_budget_gb: float = 0.35
    checkpoint_rollout: bool = False  # recompute each rollout step in the backward pass: 1 step's activations

    def __post_init__(self) -> None:
        p = "trainer.synthetic."
        require(self.epochs >= 0, p + "epochs", "an integer >= 0", self.epochs)
        require(self.batch_size >= 1, p + "batch_size", "an integer >= 1", self.batch_size)
        require(self.optimizer in ("adam", "adamw"), p + "optimizer", "one of adam, adamw", self.optimizer)
        require(self.lr > 0, p + "lr", "a number > 0", self.lr)
        require(self.weight_decay >= 0, p + "weight_decay", "a number >= 0", self.weight_decay)
        require(self.scheduler in ("cosine", "step", "none"), p + "scheduler", "one of cosine, step, none",
                self.scheduler)
        require(self.step_size >= 1, p + "step_size", "an integer >= 1", self.step_size)
        require(0 < self.gamma <= 1, p + "gamma", "a number in (0, 1]", self.gamma)
        require(self.grad_clip >= 0, p + "grad_clip", "a number >= 0", self.grad_clip)
        require(all(r >= 1 for r in self.curriculum), p + "curriculum", "rollout lengths >= 1",
                list(self.curriculum))
        require(self.num_workers >= 0, p + "num_workers", "an integer >= 0", self.num_workers)
        every = self.validate_every
        require(every == "auto" or (isinstance(every, int) and not isinstance(every, bool) and every >= 1),
                p + "validate_every", "auto or an integer >= 1", every)
        require(self.memory_budget_gb > 0, p + "memory_budget_gb", "a number > 0", self.memory_budget_gb)


@dataclass
class PhysicalTrainerConfig:
    """Coefficient inference (`PhysicalTrainer`)."""

    epochs: int = 5  # epochs of physical-only training
    optimizer: str = "lbfgsb"  # lbfgsb | adam
    iterations: int = 10  # optimizer iterations per epoch
    tolerance: float = 1e-9
    lr: float = 0.05  # adam only
    batch_windows: int = 0  # windows per objective; 0 = as many as fit memory_budget_gb
    smoothness: float = 0.0  # weight of the gradient penalty on field coefficients
    memory_budget_gb: float = 2.0
    # sliding: the data's R-step windows; trajectory: one window per simulation from frame 0 to its end
    # (shooting: no input state after frame 0 is needed, so nothing is completed); auto: trajectory when
    # states are hidden (observation.states=initial with a sparse observation), else sliding
    windows: str = "auto"
    # windows=trajectory: frames of each trajectory fitted from frame 0; 0 = all of them when every training
    # simulation's whole trajectory fits memory_budget_gb in one objective, else the longest beginning that does
    horizon: int = 0
    # stop at the data's noise floor: an epoch ends when its remaining iterations cannot lower the loss by its
    # standard error, and a `train` call when a whole epoch did not (hyco.training.physical.noise_floor)
    early_stop: bool = True

    def __post_init__(self) -> None:
        p = "trainer.physical."
        require(self.windows in ("auto", "sliding", "trajectory"), p + "windows", "one of auto, sliding, trajectory",
                self.windows)
        require(self.epochs >= 0, p + "epochs", "an integer >= 0", self.epochs)
        require(self.horizon >= 0, p + "horizon", "an integer >= 0 (0: as many frames as fit)", self.horizon)
        require(self.optimizer in ("lbfgsb", "adam"), p + "optimizer", "one of lbfgsb, adam", self.optimizer)
        require(self.iterations >= 1, p + "iterations", "an integer >= 1", self.iterations)
        require(self.tolerance > 0, p + "tolerance", "a number > 0", self.tolerance)
        require(self.lr > 0, p + "lr", "a number > 0", self.lr)
        require(self.batch_windows >= 0, p + "batch_windows", "an integer >= 0", self.batch_windows)
        require(self.smoothness >= 0, p + "smoothness", "a number >= 0", self.smoothness)
        require(self.memory_budget_gb > 0, p + "memory_budget_gb", "a number > 0", self.memory_budget_gb)


INTERACTION_REGIONS = ("unobserved", "everywhere")
COMPLETIONS = ("blend", "partner")


@dataclass
class CouplingConfig:
    """One model's HYCO loss: `data_weight * L_data + interaction_weight * L_int` (see training/loss.py).

    `interaction_weight` is a number >= 0 or `auto` (trust weighting: each cycle, the ratio of this model's
    observed-validation error to its partner's, clipped to [0, 1])."""

    data_weight: float = 1.0
    interaction_weight: Any = "auto"
    interaction_region: str | None = None  # this model's region; None = trainer.hybrid.interaction_region

    def check(self, key: str) -> None:
        require(self.interaction_region in (None, *INTERACTION_REGIONS), f"{key}.interaction_region",
                f"one of {', '.join(INTERACTION_REGIONS)} (or null: trainer.hybrid.interaction_region)",
                self.interaction_region)
        require(self.data_weight >= 0, f"{key}.data_weight", "a number >= 0", self.data_weight)
        weight = self.interaction_weight
        if isinstance(weight, str):
            require(weight == "auto", f"{key}.interaction_weight", "auto or a number >= 0", weight)
        else:
            require(isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight >= 0,
                    f"{key}.interaction_weight", "auto or a number >= 0", weight)
        require(self.data_weight > 0 or weight == "auto" or weight > 0, f"{key}.interaction_weight",
                f"a weight > 0 (or auto) when {key}.data_weight is 0: the model would learn nothing", weight)


@dataclass
class HybridTrainerConfig:
    """HYCO cycles (`HybridTrainer`)."""

    cycles: int = 5
    alpha: float = 0.5  # generated samples per real sample, per cycle
    synthetic_epochs_per_cycle: int = 2
    physical_epochs_per_cycle: int = 1
    variant: str = "hyco"  # hyco | warm_start | mixed
    warm_start_epochs: int = 0  # network epochs on real data before the first cycle (warm_start)
    mix: float = 0.7  # mixed variant: weight of the real target in the blended target
    order: str = "sequential"  # sequential | parallel
    # which model trains first in a cycle: physical | synthetic | auto (the solver, unless it learns through
    # the network only, physical.data_weight 0: then the network, which alone sees the data)
    first: str = "auto"
    # trust weights (interaction_weight auto): hear a partner that has not trained yet (its guess or its
    # random weights); by default a model hears its partner only once the partner has learned from data
    hear_untrained: bool = False
    initial_states: str = "real"  # real | random (fresh random states, "ghost points")
    physical: CouplingConfig = field(default_factory=CouplingConfig)  # the solver's loss terms
    synthetic: CouplingConfig = field(default_factory=CouplingConfig)  # the network's loss terms
    # where L_int applies, for both models unless one sets its own: unobserved (ghost points) | everywhere
    interaction_region: str = "unobserved"
    interaction_ramp_cycles: int = 0  # ramp the interaction weights linearly over the first cycles
    completion: str = "blend"  # inputs after frame 0 (states=initial): blend of both models | partner
    # `hyco run` also trains the network alone with as many optimizer steps and samples as HYCO's network had
    # (run `synthetic_matched`): HYCO's network sees (1 + alpha) x the samples of the default network alone. Off
    # by default: it costs 1 + alpha times the network alone's training, which the default experiment's 2-minute
    # budget does not hold (benchmarks.hyco_study turns it on; the report says when it is missing)
    matched_baseline: bool = False
    memory_budget_gb: float = 2.0
    strategy: str = "auto"  # auto | memory | cache | on_the_fly
    # hand the heap's freed pages back to the OS after each phase (glibc malloc_trim): a lower peak RSS for
    # more CPU time (the pages are faulted in again); see hyco.utils.memory.release_freed_memory
    release_memory: bool = False

    @property
    def first_model(self) -> str:
        """`first` resolved: with `auto`, the model that learns from the data goes first: the solver, unless
        it learns through the network only (its data_weight 0; it would wait a cycle for a network that has
        learned, and never hear the network's last cycle)."""
        if self.first != "auto":
            return self.first
        return "synthetic" if self.physical.data_weight == 0 else "physical"

    def __post_init__(self) -> None:
        p = "trainer.hybrid."
        require(self.cycles >= 0, p + "cycles", "an integer >= 0", self.cycles)
        require(0.0 <= self.alpha <= 1.0, p + "alpha", "a number in [0, 1]", self.alpha)
        require(self.synthetic_epochs_per_cycle >= 0, p + "synthetic_epochs_per_cycle", "an integer >= 0",
                self.synthetic_epochs_per_cycle)
        require(self.physical_epochs_per_cycle >= 0, p + "physical_epochs_per_cycle", "an integer >= 0",
                self.physical_epochs_per_cycle)
        require(self.variant in ("hyco", "warm_start", "mixed"), p + "variant",
                "one of hyco, warm_start, mixed", self.variant)
        require(self.warm_start_epochs >= 0, p + "warm_start_epochs", "an integer >= 0", self.warm_start_epochs)
        require(0.0 <= self.mix <= 1.0, p + "mix", "a number in [0, 1]", self.mix)
        require(self.order in ("sequential", "parallel"), p + "order", "one of sequential, parallel", self.order)
        require(self.first in ("auto", "synthetic", "physical"), p + "first", "one of auto, physical, synthetic",
                self.first)
        require(self.initial_states in ("real", "random"), p + "initial_states", "one of real, random",
                self.initial_states)
        self.physical.check(p + "physical")
        self.synthetic.check(p + "synthetic")
        require(self.physical.data_weight > 0 or self.synthetic.data_weight > 0, p + "synthetic.data_weight",
                f"a weight > 0 when {p}physical.data_weight is 0: one model must learn from the data", 0)
        require(self.interaction_region in INTERACTION_REGIONS, p + "interaction_region",
                f"one of {', '.join(INTERACTION_REGIONS)}", self.interaction_region)
        require(self.interaction_ramp_cycles >= 0, p + "interaction_ramp_cycles", "an integer >= 0",
                self.interaction_ramp_cycles)
        require(self.completion in COMPLETIONS, p + "completion", f"one of {', '.join(COMPLETIONS)}",
                self.completion)
        require(self.memory_budget_gb > 0, p + "memory_budget_gb", "a number > 0", self.memory_budget_gb)
        require(self.strategy in ("auto", "memory", "cache", "on_the_fly"), p + "strategy",
                "one of auto, memory, cache, on_the_fly", self.strategy)


@dataclass
class TrainerConfig:
    synthetic: SyntheticTrainerConfig = field(default_factory=SyntheticTrainerConfig)
    physical: PhysicalTrainerConfig = field(default_factory=PhysicalTrainerConfig)
    hybrid: HybridTrainerConfig = field(default_factory=HybridTrainerConfig)


@dataclass
class EvaluationConfig:
    split: str = "test"  # test | val
    corr_threshold: float = 0.8  # "correlation time": steps until Pearson r falls below this
    plot_times: int = 4  # snapshots per model in the side-by-side figure
    animation: bool = True  # animated GIF of truth vs models for one simulation
    animation_sim: int = 0
    # `hyco evaluate checkpoint=PATH [data=PATH]`: one network or physical checkpoint on a dataset file
    checkpoint: str = ""
    data: str = ""  # a hyco dataset file; empty: the configured experiment's dataset
    # `hyco run` also fits the solver to the full, noise-free training data (the data's reference truth): the
    # coefficient error it reaches there is the model floor, the best any observation of these data allows
    model_floor: bool = True

    def __post_init__(self) -> None:
        require(self.split in ("test", "val"), "evaluation.split", "one of test, val", self.split)
        require(0.0 < self.corr_threshold < 1.0, "evaluation.corr_threshold", "a number in (0, 1)",
                self.corr_threshold)
        require(self.plot_times >= 1, "evaluation.plot_times", "an integer >= 1", self.plot_times)
        require(self.animation_sim >= 0, "evaluation.animation_sim", "an integer >= 0", self.animation_sim)


@dataclass
class HycoConfig:
    task: str = "run"  # set by the command line: hyco <task>
    experiment_name: str = "default"
    output_dir: str = "outputs/${experiment_name}/${now:%Y-%m-%d_%H-%M-%S}"
    data_dir: str = "data"
    cache_dir: str = "${output_dir}/cache"
    device: str = "auto"  # auto | cpu | cuda | cuda:N (under torchrun auto/cuda: cuda:LOCAL_RANK)
    dist_backend: str = "auto"  # under torchrun: auto (gloo on CPU, nccl on CUDA) | gloo | nccl
    dtype: str = "float32"  # float32 | float64
    seed: int = 0  # what training draws: initial weights, shuffling, HYCO's picks (the data: data.seed)
    mode: str = "hybrid"  # what `hyco train` trains: physical | synthetic | hybrid
    resume: bool = False
    log_level: str = "INFO"
    # CPU threads: auto (cores this process may use / local ranks / parallel jobs; fewer while other processes
    # use them) | off | N
    threads: str = "auto"
    plugins: list[str] = field(default_factory=list)  # user modules that register models
    physics: dict[str, Any] = field(default_factory=dict)  # `name` + the model's own schema
    network: dict[str, Any] = field(default_factory=dict)  # `name` + the network's own schema
    data: DataConfig = field(default_factory=DataConfig)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def __post_init__(self) -> None:
        require(self.task in TASKS, "task", f"one of {', '.join(TASKS)}", self.task)
        require(bool(self.experiment_name), "experiment_name", "a non-empty name", self.experiment_name)
        require(bool(self.output_dir), "output_dir", "a non-empty path", self.output_dir)
        require(bool(self.data_dir), "data_dir", "a non-empty path", self.data_dir)
        from hyco.utils.device import DEVICE_PATTERN

        require(bool(DEVICE_PATTERN.match(self.device)), "device", "auto, cpu, cuda or cuda:N", self.device)
        require(self.dist_backend in ("auto", "gloo", "nccl"), "dist_backend", "one of auto, gloo, nccl",
                self.dist_backend)
        require(self.dtype in ("float32", "float64"), "dtype", "one of float32, float64", self.dtype)
        require(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        require(self.mode in TRAIN_MODES, "mode", f"one of {', '.join(TRAIN_MODES)}", self.mode)
        from hyco.utils.threads import parse_setting

        parse_setting(self.threads, "threads")  # auto | off | an integer >= 1
        require(self.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level",
                "one of DEBUG, INFO, WARNING, ERROR", self.log_level)
        curriculum = list(self.trainer.synthetic.curriculum)
        require(all(r <= self.data.rollout_steps for r in curriculum), "trainer.synthetic.curriculum",
                f"rollout lengths <= data.rollout_steps ({self.data.rollout_steps})", curriculum)
        require("name" in self.physics, "physics.name", "the name of a registered PDE model", None)
        require("name" in self.network, "network.name", "the name of a registered network", None)
