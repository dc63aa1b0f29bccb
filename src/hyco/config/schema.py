"""Typed schema of the whole configuration: every key with its default, its meaning and its allowed values.

Hydra composes the YAML tree in `hyco/conf` on top of `HycoConfig`, so an unknown key or a value of the wrong
type is rejected while composing; the range checks in `__post_init__` run when the composed config is turned
into these objects (`hyco.config.validate.to_typed`). Each key is declared with `setting` (`hyco.config.fields`):
its description and allowed values are read by those checks and by the configuration reference of the docs,
which prints them beside the default that actually runs (the shipped YAML files set several keys otherwise).
Model-specific settings (`physics`, `network`) are free-form here and validated against the schema that the
chosen model declares in its registry entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyco.config.external_schema import ExternalDataConfig
from hyco.config.fields import check_settings, section, setting
from hyco.config.observation_schema import (  # noqa: F401 - re-exported: the schema's names in one place
    INITIAL,
    INITIAL_FILLS,
    SENSOR_LAYOUTS,
    SPATIAL_MASKS,
    STATES,
    TEMPORAL_MASKS,
    ObservationConfig,
)
from hyco.errors import ConfigError, require

TASKS = ("generate", "train", "evaluate", "report", "run")
TRAIN_MODES = ("physical", "synthetic", "hybrid")
STORAGE = ("auto", "memory", "cache", "on_the_fly")


@dataclass
class ReferenceConfig:
    """How the data are simulated: a reference finer than the learning solver, restricted to its grid.

    `refine` cells per learning cell along each axis; `substeps` solver steps per stored frame of the reference
    (0: the learning substeps x refine^2, what an explicit scheme's stability bound dx^2 / h needs on the finer
    grid). refine 1 with substeps 0 is the learning solver itself: the data then come from the very
    discretisation that learns from them (the inverse crime), which the quick experiments accept for speed."""

    refine: int = setting(1, "Reference cells per learning cell along each axis; the data are cell averages of "
                             "the finer simulation (1: the learning grid).", at_least=1)
    substeps: int = setting(0, "Reference solver steps per stored frame; 0: the learning substeps x refine^2 (the "
                               "explicit scheme's stability bound on the finer grid).", at_least=0)
    physics: dict[str, Any] = setting(
        {}, "Keys laid over the `physics` section for the simulator only (e.g. `{name: heat_decay, decay: ...}`): "
            "the data then contain physics the learning solver lacks, and the report gives its coefficients' bias "
            "against their truth. {}: the learner's own PDE.", allowed="a mapping of physics keys")

    def __post_init__(self) -> None:
        check_settings(self, "data.reference.")

    @property
    def is_learning_solver(self) -> bool:
        """True when the data come from the learning solver itself (no finer grid, no finer time step)."""
        return self.refine == 1 and self.substeps == 0 and not self.physics


@dataclass
class DataConfig:
    """How many trajectories to simulate and how they are cut into training windows."""

    num_train: int = setting(8, "Training trajectories (simulations).", at_least=1)
    num_val: int = setting(2, "Validation trajectories: they choose the kept checkpoint and HYCO's trust weights.",
                           at_least=0)
    num_test: int = setting(2, "Held-out test trajectories, used only by the final evaluation.", at_least=0)
    num_frames: int = setting(32, "Stored frames per trajectory, the initial state included.",
                              allowed="an integer >= rollout_steps + 1")
    rollout_steps: int = setting(4, "R: a training window's targets are the frames t+1..t+R after its state t.",
                                 at_least=1)
    seed: int = setting(0, "Seed of what the data are: the trajectories' initial states, the random observation "
                           "masks and the noise. Part of the dataset's hash; the top-level `seed` (training's draws) "
                           "is not.", at_least=0)
    reference: ReferenceConfig = section(ReferenceConfig, "The simulator that makes the data: a reference finer "
                                                          "than the learning solver, restricted to its grid.")
    regenerate: str = setting("auto", "`auto`: reuse a matching dataset, make a missing or damaged one anew; "
                                      "`always`: simulate again; `never`: reuse, or stop naming what differs.",
                              choices=("auto", "always", "never"))
    generation_batch: int = setting(8, "Simulations per batched, compiled rollout while generating (does not "
                                       "change the data).", at_least=1)
    max_cached_sims: int = setting(64, "Decoded trajectories kept in the loader's LRU cache: bounds the memory "
                                       "whatever the dataset's size.", at_least=1)
    lock_timeout_s: float = setting(600.0, "Seconds to wait for another process that is generating the same "
                                           "dataset, then reuse its file.", above=0)
    completion_every: int = setting(
        1, "With hidden states (`observation.states=initial`): epochs of physical-only or synthetic-only "
           "training between refreshes of the completed input states.", at_least=1)
    completion_memory_gb: float = setting(1.0, "Memory for completed input states before they go to a disk cache.",
                                          above=0)
    completion_strategy: str = setting("auto", "Where completed input states are kept: `auto` chooses by "
                                               "`completion_memory_gb`.", choices=STORAGE)
    validation_frames: int = setting(
        0, "Frames of each validation trajectory (after frame 0) that validation scores; 0: all. Rollouts of a "
           "chaotic or pattern-forming system decorrelate: past that horizon their error ranks models by chance.",
        allowed="an integer in [0, num_frames - 1] (0: all)")
    external: ExternalDataConfig = section(ExternalDataConfig, "Trajectories made elsewhere, imported instead of "
                                                               "simulated (The Well, PDEBench).")

    def __post_init__(self) -> None:
        check_settings(self, "data.")
        require(
            self.num_frames >= self.rollout_steps + 1,
            "data.num_frames",
            f"an integer >= rollout_steps + 1 = {self.rollout_steps + 1}",
            self.num_frames,
        )
        require(0 <= self.validation_frames < self.num_frames, "data.validation_frames",
                f"an integer in [0, num_frames - 1 = {self.num_frames - 1}] (0: all)", self.validation_frames)


@dataclass
class SyntheticTrainerConfig:
    """Network training (`SyntheticTrainer`)."""

    epochs: int = setting(20, "Epochs of synthetic-only training.", at_least=0)
    batch_size: int = setting(16, "Windows per optimiser step, over all ranks together (the global batch).",
                              at_least=1)
    optimizer: str = setting("adam", "The torch optimiser.", choices=("adam", "adamw"))
    lr: float = setting(1e-3, "Learning rate.", above=0)
    weight_decay: float = setting(0.0, "Weight decay of the optimiser.", at_least=0)
    scheduler: str = setting("cosine", "Learning-rate schedule over the whole planned run.",
                             choices=("cosine", "step", "none"))
    step_size: int = setting(10, "scheduler=step: epochs per step.", at_least=1)
    gamma: float = setting(0.5, "scheduler=step: the factor per step.", above=0, at_most=1)
    grad_clip: float = setting(1.0, "Largest gradient norm; 0 disables clipping.", at_least=0)
    curriculum: list[int] = setting(
        [], "Rollout lengths of the training loss, spread evenly over the whole planned run (HYCO cycles continue "
            "it); empty: always `data.rollout_steps`.", allowed="rollout lengths >= 1 and <= data.rollout_steps")
    num_workers: int = setting(0, "Data-loader worker processes (they take their threads out of the run's budget).",
                               at_least=0)
    validate_every: Any = setting(
        "auto", "Epochs between validation rollouts; `auto`: every epoch of synthetic-only training, once at the end "
                "of each HYCO cycle (where the trust weights need it anyway).",
        allowed="auto or an integer >= 1", kind="auto | int")
    memory_budget_gb: float = setting(
        0.35, "Activation memory of one step's rollout: a larger batch runs as micro-batches with the same gradient.",
        above=0)
    checkpoint_rollout: bool = setting(False, "Recompute each rollout step in the backward pass: keeps one step's "
                                              "activations instead of R (slower, less memory).")

    def __post_init__(self) -> None:
        p = "trainer.synthetic."
        check_settings(self, p)
        require(all(r >= 1 for r in self.curriculum), p + "curriculum", "rollout lengths >= 1",
                list(self.curriculum))
        every = self.validate_every
        require(every == "auto" or (isinstance(every, int) and not isinstance(every, bool) and every >= 1),
                p + "validate_every", "auto or an integer >= 1", every)


@dataclass
class PhysicalTrainerConfig:
    """Coefficient inference (`PhysicalTrainer`)."""

    epochs: int = setting(5, "Epochs of physical-only training.", at_least=0)
    optimizer: str = setting("lbfgsb", "`lbfgsb`: SciPy's L-BFGS-B with torch gradients; `adam`: torch's Adam.",
                             choices=("lbfgsb", "adam"))
    iterations: int = setting(10, "Optimiser iterations (Adam: steps) per epoch.", at_least=1)
    tolerance: float = setting(1e-9, "optimizer=lbfgsb: the relative tolerance of the loss (`ftol`).", above=0)
    lr: float = setting(0.05, "optimizer=adam: the learning rate.", above=0)
    batch_windows: int = setting(0, "Windows per objective; 0: as many as fit `memory_budget_gb`.", at_least=0)
    smoothness: float = setting(0.0, "Weight of the squared finite-difference penalty on field coefficients.",
                                at_least=0)
    memory_budget_gb: float = setting(2.0, "Memory of one objective's rollout and its gradient (sizes the batch and "
                                           "the fitted horizon).", above=0)
    windows: str = setting(
        "auto", "`sliding`: the data's R-step windows; `trajectory`: one window per simulation from frame 0 "
                "(shooting: nothing to complete); `auto`: trajectory when states are hidden "
                "(`observation.states=initial` with a sparse observation), else sliding.",
        choices=("auto", "sliding", "trajectory"))
    horizon: int = setting(
        0, "windows=trajectory: frames of each trajectory fitted from frame 0; 0: all of them when every training "
           "simulation fits `memory_budget_gb` in one objective, else the longest beginning that does.",
        at_least=0, allowed="an integer >= 0 (0: as many frames as fit)")
    early_stop: bool = setting(True, "Stop at the data's noise floor: an epoch ends when its remaining iterations "
                                     "cannot lower the loss by its standard error, and a `train` call when a whole "
                                     "epoch did not.")

    def __post_init__(self) -> None:
        check_settings(self, "trainer.physical.")


INTERACTION_REGIONS = ("unobserved", "everywhere")
COMPLETIONS = ("blend", "partner")


@dataclass
class CouplingConfig:
    """One model's HYCO loss: `data_weight * L_data + interaction_weight * L_int` (see training/loss.py).

    `interaction_weight` is a number >= 0 or `auto` (trust weighting: each cycle, the ratio of this model's
    observed-validation error to its partner's, clipped to [0, 1])."""

    data_weight: float = setting(1.0, "Weight of the loss on the observed real data; 0 trains this model through "
                                      "its partner alone.", at_least=0)
    interaction_weight: Any = setting(
        "auto", "Weight of the loss on the partner's predictions; `auto`: trust weighting (this model's observed-"
                "validation error over its partner's, clipped to [0, 1], each cycle).",
        allowed="auto or a number >= 0", kind="auto | float")
    interaction_region: str | None = setting(
        None, "This model's interaction region; null: `trainer.hybrid.interaction_region`.",
        choices=(None, *INTERACTION_REGIONS),
        allowed=f"one of {', '.join(INTERACTION_REGIONS)} (or null: trainer.hybrid.interaction_region)")

    def check(self, key: str) -> None:
        check_settings(self, f"{key}.")
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

    cycles: int = setting(5, "HYCO cycles; each trains both models.", at_least=0)
    alpha: float = setting(0.5, "Generated windows per real window, per model and cycle.", at_least=0, at_most=1)
    synthetic_epochs_per_cycle: int = setting(2, "Network epochs per cycle.", at_least=0)
    physical_epochs_per_cycle: int = setting(1, "Solver epochs per cycle.", at_least=0)
    variant: str = setting("hyco", "`hyco`; `warm_start`: the network first trains `warm_start_epochs` on real data; "
                                   "`mixed`: generated targets blended with the observed real ones (`mix`).",
                           choices=("hyco", "warm_start", "mixed"))
    warm_start_epochs: int = setting(0, "variant=warm_start: network epochs on real data before the first cycle.",
                                     at_least=0)
    mix: float = setting(0.7, "variant=mixed: weight of the real target in the blended target.", at_least=0,
                         at_most=1)
    order: str = setting("sequential", "`sequential`: each model trains on predictions of its partner's latest "
                                       "state; `parallel`: both generations at the start of the cycle.",
                         choices=("sequential", "parallel"))
    first: str = setting("auto", "Which model trains first in a cycle; `auto`: the solver, unless it learns through "
                                 "the network only (`physical.data_weight` 0): then the network, which alone sees "
                                 "the data.", choices=("auto", "physical", "synthetic"))
    hear_untrained: bool = setting(False, "Trust weights (`interaction_weight: auto`): hear a partner that has not "
                                          "trained yet (its guess or its random weights).")
    learn_from_worse_partner: bool = setting(
        True, "Trust weights (`interaction_weight: auto`): a model trained through its partner alone (its "
              "`data_weight` 0) still trains in a cycle where the partner explains the observed validation data worse "
              "than the model itself (true, the paper's setting); false: it skips that cycle (with no data term the "
              "trust weight only scales the loss, so it cannot hold the model back).")
    initial_states: str = setting("real", "Where generated windows start: `real` (completed) states, or fresh "
                                          "`random` ones (\"ghost points\").", choices=("real", "random"))
    physical: CouplingConfig = section(CouplingConfig, "The solver's loss terms.")
    synthetic: CouplingConfig = section(CouplingConfig, "The network's loss terms.")
    interaction_region: str = setting(
        "unobserved", "Where the interaction term applies, for both models unless one sets its own: `unobserved` "
                      "(the ghost points: the complement of each window's observation mask) or `everywhere`.",
        choices=INTERACTION_REGIONS)
    interaction_ramp_cycles: int = setting(0, "Ramp the interaction weights linearly over the first cycles.",
                                           at_least=0)
    completion: str = setting("blend", "Inputs after frame 0 (`observation.states=initial`): a `blend` of both "
                                       "models weighted by their validation errors, or the `partner` alone.",
                              choices=COMPLETIONS)
    matched_baseline: bool = setting(
        False, "`hyco run` also trains the network alone with as many optimizer steps and samples as HYCO's network "
               "had (run `synthetic_matched`; HYCO's network sees 1 + alpha times the samples of the network alone). "
               "Off by default: it costs 1 + alpha times the network alone's training (`benchmarks.hyco_study` turns "
               "it on; the report says when it is missing).")
    memory_budget_gb: float = setting(2.0, "Memory for generated windows: below half of it they stay in memory, "
                                           "below it in a disk cache, above it they are made chunk by chunk.",
                                      above=0)
    strategy: str = setting("auto", "Where generated windows are kept: `auto` chooses by `memory_budget_gb`; the "
                                    "three give identical results.", choices=STORAGE)
    release_memory: bool = setting(False, "Hand the heap's freed pages back to the OS after each phase (glibc "
                                          "malloc_trim): a lower peak RSS for more CPU time.")

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
        check_settings(self, p)
        self.physical.check(p + "physical")
        self.synthetic.check(p + "synthetic")
        require(self.physical.data_weight > 0 or self.synthetic.data_weight > 0, p + "synthetic.data_weight",
                f"a weight > 0 when {p}physical.data_weight is 0: one model must learn from the data", 0)


@dataclass
class TrainerConfig:
    synthetic: SyntheticTrainerConfig = section(SyntheticTrainerConfig, "Network training.")
    physical: PhysicalTrainerConfig = section(PhysicalTrainerConfig, "Coefficient inference.")
    hybrid: HybridTrainerConfig = section(HybridTrainerConfig, "HYCO cycles.")


@dataclass
class EvaluationConfig:
    split: str = setting("test", "The held-out split the models are evaluated on.", choices=("test", "val"))
    corr_threshold: float = setting(0.8, "\"Correlation time\": steps until the Pearson correlation with the truth "
                                         "falls below this.", above=0, below=1)
    plot_times: int = setting(4, "Snapshots per model in the side-by-side figure.", at_least=1)
    animation: bool = setting(True, "An animated GIF of the truth and the models for one simulation.")
    animation_sim: int = setting(0, "Which test simulation the animation shows.", at_least=0)
    uncertainty: str = setting(
        "laplace", "How far the data determine each learned coefficient: `laplace`, the Gauss–Newton posterior at "
                   "the evaluated optimum (95 % intervals, std, identifiability class; hyco.training.laplace), "
                   "`ensemble`, the spread of `ensemble_size` solvers refitted to the observations with their noise "
                   "drawn again (hyco.training.ensemble), or `off`.", choices=("laplace", "ensemble", "off"))
    ensemble_size: int = setting(8, "uncertainty=ensemble: the members K (physical trainings from drawn initial "
                                    "guesses; at least 2 for a spread). The interval is the evaluated value ± "
                                    "t_{K-1} × the members' std.", at_least=2)
    ensemble_start: str = setting(
        "optimum", "uncertainty=ensemble: where each member starts: `optimum`, the evaluated solver's values moved "
                   "by a small random draw (the spread of that optimum), or `prior`, a draw of the bounds' prior "
                   "(other optima too, including swaps of interchangeable parts such as two bumps).",
        choices=("optimum", "prior"))
    ensemble_workers: int = setting(1, "uncertainty=ensemble: members trained at once in joblib processes (the "
                                       "`cluster` extra), sharing the process's threads.", at_least=1)
    uncertainty_rank: int = setting(256, "uncertainty=laplace with more than 4096 learned numbers (a field): the "
                                        "leading eigenpairs of the data's Gauss–Newton matrix kept; directions "
                                        "beyond them keep the prior's width.", at_least=1)
    uncertainty_prior: str = setting(
        "bounds", "What the posterior takes as known besides the data: `bounds` (each number uniform in its bounds: "
                  "the classes say what the data alone determine) or `regulariser` (also "
                  "`trainer.physical.smoothness` read as a prior, scaled as the objective weighs it).",
        choices=("bounds", "regulariser"))
    checkpoint: str = setting("", "`hyco evaluate checkpoint=PATH`: one network or physical checkpoint to evaluate "
                                  "instead of the run's models.")
    data: str = setting("", "`hyco evaluate checkpoint=PATH data=PATH`: a hyco dataset file to evaluate it on; "
                            "empty: the experiment's dataset.")
    model_floor: bool = setting(True, "`hyco run` also fits the solver to the full, noise-free training data (the "
                                      "reference truth): the coefficient error it reaches there is the model floor, "
                                      "the best any observation of these data allows.")

    def __post_init__(self) -> None:
        check_settings(self, "evaluation.")
        if self.uncertainty == "ensemble" and self.uncertainty_prior == "regulariser":
            raise ConfigError("evaluation.uncertainty_prior", "", message="regulariser is a Laplace setting: the "
                              "ensemble's members are fitted with the trainer's smoothness penalty as it is; use "
                              "uncertainty_prior=bounds with uncertainty=ensemble")


@dataclass
class HycoConfig:
    task: str = setting("run", "Set by the command line: `hyco <task>`.", choices=TASKS)
    experiment_name: str = setting("default", "The experiment's name: it names the dataset file and the default "
                                              "run directory.", allowed="a non-empty name")
    output_dir: str = setting("outputs/${experiment_name}/${now:%Y-%m-%d_%H-%M-%S}", "The run directory.",
                              allowed="a writable directory")
    data_dir: str = setting("data", "Where datasets are kept and looked for.", allowed="a directory (read-only "
                                                                                       "works to reuse a dataset)")
    cache_dir: str = setting("${output_dir}/cache", "Where HYCO's generated windows go when they do not fit "
                                                    "memory (removed after each cycle).",
                             allowed="a writable directory")
    device: str = setting("auto", "`auto` picks CUDA when present; under torchrun auto and cuda mean "
                                  "cuda:LOCAL_RANK.", allowed="auto, cpu, cuda or cuda:N")
    dist_backend: str = setting("auto", "Under torchrun: the process group's backend; `auto`: gloo on CPU, nccl on "
                                        "CUDA.", choices=("auto", "gloo", "nccl"))
    dtype: str = setting("float32", "Floating-point type of simulation and training.",
                         choices=("float32", "float64"))
    seed: int = setting(0, "Seed of what training draws: initial weights, shuffling, HYCO's picks (the data have "
                           "their own, `data.seed`).", at_least=0)
    mode: str = setting("hybrid", "What `hyco train` trains.", choices=TRAIN_MODES)
    resume: bool = setting(False, "Continue from the run directory's last checkpoint.")
    reuse_baselines: bool = setting(True, "In a sweep of `hyco run`: physical-only and synthetic-only are trained "
                                          "once per (dataset, their configuration, seed) and reused by the other "
                                          "jobs (`<sweep dir>/baselines/`).")
    log_level: str = setting("INFO", "Level of the console and `hyco.log`.",
                             allowed="one of DEBUG, INFO, WARNING, ERROR")
    threads: str = setting(
        "auto", "CPU threads: `auto` (the cores this process may use, divided by local ranks and parallel jobs; "
                "fewer while other processes use them), `off` (torch's own choice), or a number.",
        allowed="auto, off or an integer >= 1")
    plugins: list[str] = setting([], "Importable modules that register PDE models or networks.")
    physics: dict[str, Any] = setting({}, "`name` and the PDE model's own keys (see the PDE models below).",
                                      kind="section")
    network: dict[str, Any] = setting({}, "`name` and the network's own keys (see the networks below).",
                                      kind="section")
    data: DataConfig = section(DataConfig, "Dataset sizes and windows.")
    observation: ObservationConfig = section(ObservationConfig, "What the models may see of the real data.")
    trainer: TrainerConfig = section(TrainerConfig, "The three trainers.")
    evaluation: EvaluationConfig = section(EvaluationConfig, "The held-out evaluation.")

    def __post_init__(self) -> None:
        check_settings(self)
        require(bool(self.experiment_name), "experiment_name", "a non-empty name", self.experiment_name)
        require(bool(self.output_dir), "output_dir", "a non-empty path", self.output_dir)
        require(bool(self.data_dir), "data_dir", "a non-empty path", self.data_dir)
        from hyco.utils.device import DEVICE_PATTERN

        require(bool(DEVICE_PATTERN.match(self.device)), "device", "auto, cpu, cuda or cuda:N", self.device)
        from hyco.utils.threads import parse_setting

        parse_setting(self.threads, "threads")  # auto | off | an integer >= 1
        require(self.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level",
                "one of DEBUG, INFO, WARNING, ERROR", self.log_level)
        curriculum = list(self.trainer.synthetic.curriculum)
        require(all(r <= self.data.rollout_steps for r in curriculum), "trainer.synthetic.curriculum",
                f"rollout lengths <= data.rollout_steps ({self.data.rollout_steps})", curriculum)
        require("name" in self.physics, "physics.name", "the name of a registered PDE model", None)
        require("name" in self.network, "network.name", "the name of a registered network", None)
