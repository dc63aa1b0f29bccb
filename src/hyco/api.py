"""hyco from Python: what a notebook needs, in the order it needs it.

```python
import hyco

cfg = hyco.compose(["experiment=heat_2d_quick"], output_dir="runs/heat", data_dir="data")
run = hyco.Run(cfg)
run.generate()                # simulate (or reuse) the dataset
run.train("physical")         # physical-only: the PDE's coefficients fitted to the observations
run.train("synthetic")        # network-only
run.train("hybrid")           # HYCO: both, each learning from the other
metrics = run.evaluate()      # metrics.json: rollout errors on held-out simulations, coefficient errors
print(run.table())            # the comparison table of the report
run.report()                  # report.html, report.md and figures/
```

Each step does what the same `hyco <task>` command does on the same run directory, so the two can be
mixed: `hyco.Run(cfg).evaluate()` on a directory trained with `hyco train`, or `hyco report` on one trained
here. Bad input raises `HycoError` with the same one-line message the command prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from hyco.config.schema import TRAIN_MODES, HycoConfig
from hyco.errors import ConfigError, DataError

if TYPE_CHECKING:  # annotations only; the run wiring itself is imported in `_tasks` below
    import torch

    from hyco.evaluation.sweep_stats import SweepComparison
    from hyco.tasks.context import RunContext
    from hyco.tasks.experiment import Experiment

__all__ = ["Mode", "Run", "Table", "compare", "compose", "run"]

Mode = Literal[TRAIN_MODES]  # type: ignore[valid-type]  # what `Run.train` trains: physical | synthetic | hybrid

log = logging.getLogger("hyco")


def _tasks() -> SimpleNamespace:
    """What this API calls of the layers below: the one place that knows where the run wiring lives."""
    from hyco.evaluation.comparison import comparison_html, comparison_markdown
    from hyco.physics.accuracy import coefficient_error
    from hyco.run_safety import remove_leftovers, uses_cache
    from hyco.tasks.context import RunContext
    from hyco.tasks.evaluate import METRICS_FILE, ROLLOUTS_FILE, evaluate
    from hyco.tasks.experiment import RUN_DIRS, open_experiment
    from hyco.tasks.report import report
    from hyco.tasks.train import TRAINERS

    return SimpleNamespace(
        context=RunContext, open_experiment=open_experiment, evaluate=evaluate, report=report,
        train=TRAINERS,
        metrics_file=METRICS_FILE, rollouts_file=ROLLOUTS_FILE, run_dirs=RUN_DIRS,
        coefficient_error=coefficient_error,
        table=lambda metrics: Table(comparison_markdown(metrics), comparison_html(metrics)),
        remove_leftovers=remove_leftovers, uses_cache=uses_cache)


class Table(str):
    """A comparison table: Markdown as a string (`print(run.table())`), an HTML table where a notebook shows
    it (`run.table()` as a cell's last line)."""

    def __new__(cls, markdown: str, html: str) -> Table:
        table = super().__new__(cls, markdown)
        table._html = html
        return table

    def _repr_html_(self) -> str:
        return self._html


# ------------------------------------------------------------------------------------------------ config
def _format_value(value: Any) -> str:
    """A Python value as Hydra override syntax: lists in brackets, booleans lower case, odd strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if text and all(c.isalnum() or c in "_-./:+@%~" for c in text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def compose(overrides: Sequence[str] = (), **keys: Any) -> HycoConfig:
    """The validated configuration that `hyco run <overrides>` would use.

    Args:
        overrides: command-line overrides, e.g. `["experiment=heat_2d_quick", "trainer.physical.epochs=3"]`.
        **keys: top-level keys as Python values, e.g. `output_dir="runs/heat"`, `seed=1`, `device="cpu"`;
            applied after `overrides`.

    Returns:
        The typed config. Its `output_dir` is resolved (a default one names the current time).

    Raises:
        HycoError: one line naming the key and what was expected (unknown key or experiment, a value out of
            range, an unwritable directory, a task that would not fit in memory).
    """
    if isinstance(overrides, str):
        raise ConfigError("overrides", "a list of key=value strings", overrides)
    overrides = [*overrides, *(f"{key}={_format_value(value)}" for key, value in keys.items())]
    if "torch" not in sys.modules:  # the thread budget must be set before torch starts its thread pool
        from hyco.utils.threads import configure_process

        configure_process(overrides)
    from hyco.config.paths import check_task_paths
    from hyco.config.validate import load
    from hyco.resources import check_resources

    cfg = load("run", overrides)
    check_task_paths(cfg)
    check_resources(cfg)
    return cfg


# ------------------------------------------------------------------------------------------------ a run
class Run:
    """One run directory (`cfg.output_dir`) and the experiment it belongs to.

    Creating a Run sets up what the command does before a task: the thread budget, the device, and the log
    file `<output_dir>/hyco.log` (records of the `hyco` loggers; a console handler is added only when
    logging is not configured yet). The dataset is opened, or generated, on first use.

    Args:
        cfg: a config from `compose`, or the overrides to compose one from.
        overwrite: `train(mode)` starts that model over, removing what an earlier training of the same mode
            left in the run directory (its checkpoints, logs and summary), instead of refusing to train on top
            of it. For a notebook whose cells are run again; the default keeps every earlier result.
        **keys: with overrides, top-level keys as in `compose`.
    """

    def __init__(self, cfg: HycoConfig | Sequence[str], *, overwrite: bool = False, **keys: Any):
        if not isinstance(cfg, HycoConfig):
            cfg = compose(cfg, **keys)
        elif keys:
            raise ConfigError(", ".join(keys), "no keyword arguments with a composed config (pass them to compose)",
                              has_got=False)
        from hyco.utils.device import resolve_device
        from hyco.utils.threads import job_budget

        self.cfg: HycoConfig = cfg
        self.overwrite: bool = overwrite
        self.run_dir: Path = Path(cfg.output_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        budget = job_budget(cfg.threads, workers=cfg.trainer.synthetic.num_workers)
        try:
            self.device: torch.device = resolve_device(cfg.device)
        except ValueError as exc:
            raise ConfigError("device", "", message=str(exc)) from None
        with self._logging():
            log.info("experiment %s, run directory %s, device %s, %s", cfg.experiment_name, self.run_dir,
                     self.device, budget.describe())

    def __repr__(self) -> str:
        return f"Run(experiment={self.cfg.experiment_name!r}, run_dir={str(self.run_dir)!r})"

    # ---------------------------------------------------------------- the pieces
    @property
    def context(self) -> RunContext:
        """What every task receives: config, run directory, device (and dtype)."""
        return _tasks().context(cfg=self.cfg, run_dir=self.run_dir, device=self.device)

    @functools.cached_property
    def experiment(self) -> Experiment:
        """The PDE model and the dataset (generated on first use, or reused when one matches the config)."""
        with self._logging():
            return _tasks().open_experiment(self.context)

    def mode_dir(self, mode: Mode) -> Path:
        """Where `train(mode)` writes: `physical/`, `synthetic/` or `hyco/` under the run directory."""
        _check_mode(mode)
        return self.run_dir / _tasks().run_dirs[mode]

    # ---------------------------------------------------------------- the tasks
    def generate(self) -> Path:
        """Simulate the train/val/test trajectories with the true coefficients, or reuse a dataset in `data_dir`
        made with the same settings; returns the HDF5 file's path."""
        return self.experiment.dataset_path

    def train(self, mode: Mode, *, resume: bool = False) -> dict[str, Any]:
        """Train one model as `hyco train mode=<mode>` does, into `mode_dir(mode)`.

        `physical` fits the solver's coefficients, `synthetic` trains the network alone, `hybrid` trains both
        with HYCO. Every call seeds the generators with `cfg.seed` first, so a call gives the same result
        whatever ran before it in this process.

        Args:
            mode: `physical`, `synthetic` or `hybrid`.
            resume: continue from the mode's last checkpoint. Without it an existing checkpoint is refused,
                unless the Run was made with `overwrite=True`: then the mode's earlier run is removed first.

        Returns:
            The trainer's last metrics (losses, and the coefficient errors for the solver).
        """
        _check_mode(mode)
        from hyco.utils.seed import seed_everything

        cfg = dataclasses.replace(self.cfg, task="train", mode=mode, resume=resume)
        exp = self.experiment
        with self._logging(), self._claimed(cfg):
            if self.overwrite and not resume:
                self._remove_earlier(mode)
            seed_everything(cfg.seed)
            log.info("=== training %s ===", mode)
            tasks = _tasks()
            return tasks.train[mode](tasks.context(cfg=cfg, run_dir=self.run_dir, device=self.device), exp)

    def evaluate(self) -> dict[str, Any]:
        """Roll every trained model of the run directory out on the held-out simulations (from frame 0 to the
        end) and write `metrics.json`; returns its content."""
        exp = self.experiment
        with self._logging():
            return _tasks().evaluate(exp)

    def report(self) -> Path:
        """Write `report.html`, `report.md` and `figures/` from the evaluated run; returns the HTML's path."""
        with self._logging():
            return _tasks().report(self.context)

    # ---------------------------------------------------------------- reading results
    def metrics(self) -> dict[str, Any]:
        """The content of `metrics.json` (written by `evaluate`)."""
        path = self.run_dir / _tasks().metrics_file
        if not path.exists():
            raise DataError(f"{path}: not found; call evaluate() first")
        return json.loads(path.read_text())

    def table(self) -> Table:
        """The report's comparison tables: the rollout errors (one row per evaluated model, the best of a column in
        bold where it is significantly better) and, when coefficients were learned, the coefficients against the
        truth. Markdown as a string (the two tables separated by a blank line), HTML tables when a notebook
        displays it."""
        return _tasks().table(self.metrics())

    def coefficient_errors(self) -> dict[str, dict[str, float | None]]:
        """Relative error of every learned coefficient, per model and for the initial guess:
        `{"initial": {"viscosity": 0.5}, "physical": {...}, "hyco_physical": {...}}` (None: truth unknown)."""
        metrics = self.metrics()
        coefficient_error = _tasks().coefficient_error
        out: dict[str, dict[str, float | None]] = {"initial": {}}
        truth = metrics["true_coefficients"]
        for name, guess in metrics["initial_coefficients"].items():
            out["initial"][name] = (coefficient_error(_tensor(guess), _tensor(truth[name])) if name in truth
                                    else None)
        for key, entry in metrics["runs"].items():
            if "coefficients" in entry:
                out[key] = {name: e.get("rel_error") for name, e in entry["coefficients"].items()}
        return out

    def coefficients(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every learned coefficient of every solver run, with how far the data determine it
        (`evaluation.uncertainty`: hyco.training.laplace or hyco.training.ensemble, the same keys; an ensemble adds
        its members' `ensemble_mean` and `ensemble_std`): `{"physical": {"viscosity": {"value": 0.0201,
        "interval": [0.0197, 0.0205], "std": 0.0002, "class": "determined", "identifiability": "...",
        "rel_error": 0.005}}}`. A parametric coefficient gives its learned `parameters` by group with
        `parameter_interval`, `parameter_std` and `parameter_class`; a field its `value` (nested lists) and the mean
        std inside and outside the observed region (its maps: `evaluation/uncertainty.pt`). Keys without an
        estimate (uncertainty=off) are absent."""
        metrics = self.metrics()
        learned = metrics.get("learned_coefficients", {})
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for key, entry in metrics["runs"].items():
            if "coefficients" not in entry:
                continue
            out[key] = {name: {"value": learned.get(key, {}).get(name), **e}
                        for name, e in entry["coefficients"].items() if not e.get("known")}
        return out

    def rollouts(self) -> dict[str, Any]:
        """The kept rollouts of one test simulation (`evaluation/rollouts.pt`): `truth` `[T, C, *space]`,
        `predictions` (per model `[T-1, C, *space]`, from frame 1), `fields`, `dt`, `sim`."""
        import torch

        path = self.run_dir / _tasks().rollouts_file
        if not path.exists():
            raise DataError(f"{path}: not found; call evaluate() first")
        return torch.load(path, map_location="cpu", weights_only=True)

    def figures(self) -> list[Path]:
        """The report's figures (PNG and GIF files under `figures/`), sorted by name."""
        return sorted(p for p in (self.run_dir / "figures").glob("*") if p.suffix in (".png", ".gif"))

    # ---------------------------------------------------------------- internals
    def _remove_earlier(self, mode: Mode) -> None:
        """What an earlier `train(mode)` wrote in the run directory (the caller holds the directory's lock)."""
        import shutil

        earlier = self.mode_dir(mode)
        if earlier.is_dir():
            shutil.rmtree(earlier)
            log.info("overwrite: removed the earlier %s run %s", mode, earlier)

    def _logging(self) -> contextlib.AbstractContextManager[None]:
        return _logging_to(self.run_dir, self.cfg.log_level.upper())

    @contextlib.contextmanager
    def _claimed(self, cfg: HycoConfig) -> Iterator[None]:
        """Hold the run directory (and an outside HYCO cache) like the command does while it trains, after
        removing what a killed run left there."""
        from hyco.config.paths import run_cache_dir
        from hyco.utils.run_lock import RunLock

        tasks = _tasks()
        cache = run_cache_dir(cfg.cache_dir, self.run_dir) if tasks.uses_cache(cfg) else None
        locks = [RunLock(self.run_dir.resolve(), "output_dir")]
        if cache is not None and not cache.resolve().is_relative_to(self.run_dir.resolve()):
            locks.append(RunLock(cache.resolve(), "cache_dir"))
        with contextlib.ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            tasks.remove_leftovers(self.run_dir, cache)
            yield


def run(overrides: Sequence[str] = (), **keys: Any) -> Run:
    """Everything `hyco run` does: generate, train physical-only, synthetic-only and HYCO, evaluate, report.

    Args:
        overrides: as in `compose`.
        **keys: as in `compose`.

    Returns:
        The Run, evaluated and reported (`metrics()`, `table()`, `figures()`).
    """
    session = Run(compose(overrides, **keys))
    for mode in TRAIN_MODES:
        session.train(mode)  # type: ignore[arg-type]
    session.evaluate()
    session.report()
    return session


# ------------------------------------------------------------------------------------------------ helpers
def compare(paths: str | Path | Sequence[str | Path], *, allow_mixed: bool = False,
            out_dir: str | Path | None = None) -> SweepComparison:
    """What `hyco compare` does: the runs under `paths` grouped by every override except the seeds.

    Args:
        paths: run directories, sweep directories, or directories holding either.
        allow_mixed: compare runs of different experiments too (the experiment becomes a grouping key).
        out_dir: where compare.md/.html/.json/.png go; default the first path.

    Returns:
        The comparison, with `groups` (each model's figures over the seeds), `paired` (HYCO against the model
        alone, with 95 % intervals) and `best` (per model, the best group against the next).
    """
    from hyco.tasks.compare import compare as compare_runs

    listed = [paths] if isinstance(paths, (str, Path)) else list(paths)
    return compare_runs(listed, allow_mixed, out_dir)[0]


def _check_mode(mode: str) -> None:
    if mode not in TRAIN_MODES:
        raise ConfigError("mode", f"one of {', '.join(TRAIN_MODES)}", mode)


def _tensor(values: Any) -> torch.Tensor:
    import torch

    return torch.as_tensor(values, dtype=torch.float64)


@contextlib.contextmanager
def _logging_to(run_dir: Path, level: str) -> Iterator[None]:
    """While a task runs, records of the `hyco` loggers also go to `<run_dir>/hyco.log` (appended, as the
    command writes it); the console gets them only when neither the root logger nor `hyco` has a handler
    (a bare notebook)."""
    from hyco.utils.log import LOG_FILE_NAME, LOG_FORMAT

    formatter = logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S")
    handlers: list[logging.Handler] = [logging.FileHandler(run_dir / LOG_FILE_NAME)]
    if not logging.getLogger().handlers and not log.handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    for name in ("matplotlib", "PIL", "h5py", "filelock", "torch", "phi", "phiml"):
        logging.getLogger(name).setLevel(logging.WARNING)
    previous = log.level
    log.setLevel(level)
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
        log.setLevel(previous)
