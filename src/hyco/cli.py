"""The `hyco` command: ``hyco <task> [experiment=<name>] [key=value ...] [-m]``.

The task is the first argument; everything after it is Hydra's (overrides, ``-m`` for multirun,
``--cfg job`` to print the config). Before Hydra runs, every job's config is composed and validated,
so a bad input ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from hyco.config.sweep_names import register_resolver
from hyco.errors import HycoError

register_resolver()  # the workers of a parallel launcher import this module to name their job directories

USAGE = "usage: hyco <task> [experiment=<name>] [key=value ...] [-m] [--cfg job]"
PRINT_ONLY_FLAGS = {"--cfg", "-c", "--info", "-i"}  # Hydra prints something and runs no task
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                          "--config-dir", "-cd", "--info", "-i", "--experimental-rerun"}

log = logging.getLogger("hyco")


def _wrapped(label: str, words: list[str], width: int = 110) -> list[str]:
    """`label` then the words, wrapped and indented under the first."""
    import textwrap

    return textwrap.wrap(", ".join(words) or "(none)", width, initial_indent=f"  {label:<12}",
                         subsequent_indent=" " * 14)


def _help_text() -> str:
    """Usage, the tasks and what can be chosen; imports no torch (the help must come at once)."""
    from hyco.config.catalogue import names
    from hyco.tasks import TASK_DESCRIPTIONS

    lines = [USAGE, "", "Hybrid-cooperative training of PDE solvers (PhiFlow) and neural networks.", "",
             "tasks:"]
    lines += [f"  {name:<9} {text}" for name, text in TASK_DESCRIPTIONS.items()]
    lines += ["  compare   one table across runs and sweeps: hyco compare RUN_OR_SWEEP_DIR... [--allow-mixed] "
              "[--out DIR]",
              "  list      the experiments, PDE models, networks and observations, each with a line", "",
              "choices (`hyco list` describes them; plug-ins: `plugins=[module]` or an entry point):"]
    for group, label in (("experiment", "experiment="), ("physics", "physics="), ("network", "network="),
                         ("observation", "observation=")):
        lines += _wrapped(label, names(group))
    lines += [
        "",
        "common keys: experiment=<name>|<file.yaml> output_dir=<dir> data_dir=<dir> device=auto|cpu|cuda[:N]",
        "             seed=<int> threads=auto|off|<int> (or HYCO_THREADS; auto: the cores this process may use)",
        "flags (anywhere): -m (a sweep), --cfg job (print the config), --config-dir <dir> (your own configs:",
        "             <dir>/experiment/<name>.yaml, <dir>/physics/...)",
        "examples:",
        "  hyco run                                   # the default experiment, end to end",
        "  hyco train mode=physical experiment=heat_2d",
        "  hyco train -m trainer.hybrid.alpha=0.1,0.5  # a Hydra multirun sweep",
        "  hyco run experiment=./my_exp.yaml --cfg job  # your own experiment file, its resolved config",
        "  hyco evaluate checkpoint=outputs/x/synthetic/best.pt data=data/y.h5  # a model on any dataset",
    ]
    return "\n".join(lines)


def _list_text(config_dirs: list[str] = ()) -> str:
    """`hyco list [--config-dir DIR]`: every choice with its description, the user's own (from DIR) marked."""
    from hyco.config.catalogue import options, user_options
    from hyco.tasks import TASK_DESCRIPTIONS

    lines = ["tasks:"] + [f"  {name:<24} {text}" for name, text in TASK_DESCRIPTIONS.items()]
    for group in ("experiment", "physics", "network", "observation", "trainer"):
        lines += ["", f"{group}=<name>:"]
        lines += [f"  {o.name:<24} {o.description}" for o in options(group)]
        lines += [f"  {o.name:<24} {o.description} [{o.source}]" for d in config_dirs for o in user_options(group, d)]
    return "\n".join(lines)


def _fail(error: HycoError) -> None:
    # one write call: under torchrun every rank shares stderr, and a line written in pieces interleaves
    line = f"hyco: error: {error}\n"
    sys.stderr.flush()
    try:
        os.write(sys.stderr.fileno(), line.encode(errors="replace"))
    except (AttributeError, OSError, ValueError):  # stderr replaced by an object without a file (pytest's capsys)
        sys.stderr.write(line)
    sys.exit(error.exit_code)


def _split(args: list[str]) -> tuple[list[str], list[str]]:
    """Separate Hydra flags (kept in order) from key=value overrides."""
    flags, overrides = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            flags.append(arg)
            takes_value = arg in HYDRA_FLAGS_WITH_VALUE and i + 1 < len(args) and not args[i + 1].startswith("-")
            # `--info` takes an optional value (never a key=value override); `--cfg` a required one
            if takes_value and (arg not in ("--info", "-i") or "=" not in args[i + 1]):
                flags.append(args[i + 1])
                i += 1
        else:
            overrides.append(arg)
        i += 1
    return flags, overrides


def validate_command_line(task: str, overrides: list[str], multirun: bool) -> list:
    """Compose and validate the config of every job the command would start, probe the directories
    each will write and check its memory estimate (before Hydra creates anything); returns the configs."""
    from hyco.config.launchers import check_launcher, check_sweeper
    from hyco.config.paths import check_task_paths
    from hyco.config.validate import expand_sweeps, load
    from hyco.resources import check_resources

    check_launcher(overrides)
    if multirun:
        check_sweeper(overrides)
    jobs = expand_sweeps(overrides) if multirun else [overrides]
    configs = []
    for job_overrides in jobs:
        cfg = load(task, job_overrides)
        check_task_paths(cfg)
        check_resources(cfg)
        configs.append(cfg)
    return configs


def _fixed_output_dir(task: str, overrides: list[str]) -> bool:
    """Whether the run directory is known before Hydra starts (it is not when it names `${now:...}`)."""
    from omegaconf import OmegaConf

    from hyco.config.validate import compose

    return "${now:" not in str(OmegaConf.to_container(compose(task, overrides), resolve=False)["output_dir"])


def entry() -> None:
    """The console command (`hyco`, `python -m hyco`): `main`, then an exit that no late signal interrupts."""
    main(exiting=True)


def main(argv: list[str] | None = None, *, exiting: bool = False) -> None:
    """Run one command line. `exiting`: the process ends after this call, so graceful signals stay
    ignored once the task is over (see `hyco.utils.signals`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    from hyco.utils.threads import configure_process

    try:
        configure_process(args)  # before torch and NumPy start their thread pools (the next import loads them)
    except HycoError as error:
        _fail(error)
    from hyco.tasks import TASKS

    if not args or args[0] in ("-h", "--help", "help"):
        print(_help_text())
        sys.exit(0 if args else 2)
    if args[0] == "list":
        try:
            flags, config_dirs = _config_dirs(args[1:])
            if flags:
                raise HycoError(f"list: expected no arguments but --config-dir <dir>, got {' '.join(flags)}")
            missing = [d for d in config_dirs if not os.path.isdir(d)]
            if missing:
                raise HycoError(f"--config-dir: expected an existing directory, got {missing[0]!r}")
        except HycoError as error:
            _fail(error)
        print(_list_text(config_dirs))
        sys.exit(0)
    if args[0] == "compare":
        from hyco.tasks.compare import compare_command

        try:
            print(compare_command(args[1:]))
        except HycoError as error:
            _fail(error)
        sys.exit(0)
    task, rest = args[0], args[1:]
    if task not in TASKS:
        choices = ", ".join((*TASKS, "compare", "list"))
        _fail(HycoError(f"task: expected one of {choices}, got {task!r}"))
    flags, overrides = _split(rest)
    try:
        flags, config_dirs = _config_dirs(flags)
        from hyco.config.overrides import prepare

        overrides = prepare(overrides, config_dirs)
    except HycoError as error:
        _fail(error)
    if any(a in ("-h", "--help", "--hydra-help") for a in flags):
        _run_hydra(task, flags, overrides)
        return
    multirun = "-m" in flags or "--multirun" in flags
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    from hyco.run_safety import LOCKED_TASKS, lock_directory, release_all
    from hyco.utils.signals import Interrupted, as_interrupted, stop_on_signals

    with stop_on_signals(afterwards="ignore" if exiting else "restore"):
        try:
            try:
                _check_torchrun(task, overrides, multirun)
                configs = validate_command_line(task, overrides, multirun)
                _check_backend(configs)
                sweep_dir = None
                if multirun and not set(flags) & PRINT_ONLY_FLAGS:
                    overrides, sweep_dir = _prepare_sweep(task, overrides, configs)
                    # before Hydra writes multirun.yaml: a second sweep into the same directory is refused
                    lock_directory(sweep_dir, "output_dir")
                elif (task in LOCKED_TASKS and not multirun and not set(flags) & PRINT_ONLY_FLAGS
                        and _fixed_output_dir(task, overrides)):
                    # before Hydra writes .hydra/ and the log into a directory another run is using
                    lock_directory(configs[0].output_dir, "output_dir")
            except HycoError as error:
                if as_interrupted(error) is not None:
                    raise as_interrupted(error) from None
                _fail(error)
            if multirun and set(flags) & PRINT_ONLY_FLAGS:
                _print_sweep(task, flags, overrides)
            else:
                _run_hydra(task, flags, overrides)
                if sweep_dir is not None:
                    from hyco.config.launchers import choice

                    # a sampling sweeper (Optuna, ...) decides the number of its jobs itself
                    basic = choice(overrides, "hydra/sweeper") in (None, "basic")
                    _summarise_sweep(sweep_dir, len(configs) if basic else None)
        except Exception as error:  # a stop signal that a library converted (see `as_interrupted`)
            stop = as_interrupted(error)
            if stop is None:
                raise
            _stopped_early(stop)
        except Interrupted as stop:  # before the task started: nothing of it exists yet
            _stopped_early(stop)
        finally:
            release_all()


def _prepare_sweep(task: str, overrides: list[str], configs: list) -> tuple[list[str], Path]:
    """The overrides a sweep runs with and its directory (see `hyco.tasks.sweep.sweep_overrides`)."""
    from hyco.config.validate import expand_sweeps
    from hyco.tasks.sweep import sweep_overrides

    jobs = expand_sweeps(overrides)
    sweep_dir = Path(configs[0].output_dir)
    pin = "output_dir" not in [o.split("=", 1)[0].lstrip("+~") for o in overrides] and not _fixed_output_dir(task,
                                                                                                          jobs[0])
    return sweep_overrides(overrides, jobs, sweep_dir if pin else None), sweep_dir


def _summarise_sweep(sweep_dir: Path, launched: int | None) -> None:
    """After the last job: print the summary's path; one error line (exit 2) when a job did not complete."""
    from hyco.tasks.sweep import check_sweep

    try:
        print(check_sweep(sweep_dir, launched))
    except HycoError as error:
        _fail(error)


def _stopped_early(stop) -> None:
    print(f"hyco: stopped by {stop.name} before the task started; nothing was written", file=sys.stderr)
    sys.exit(stop.exit_code)


def _config_dirs(flags: list[str]) -> tuple[list[str], list[str]]:
    """(the other flags, the folders of `--config-dir DIR` / `-cd DIR` / `--config-dir=DIR`): hyco puts them
    on the search path itself, so that its checks before Hydra see the user's configs too."""
    rest, dirs = [], []
    i = 0
    while i < len(flags):
        flag = flags[i]
        if flag in ("--config-dir", "-cd"):
            if i + 1 >= len(flags):
                raise HycoError(f"{flag}: expected a directory after it")
            dirs.append(flags[i + 1])
            i += 2
            continue
        if flag.startswith("--config-dir="):
            dirs.append(flag.split("=", 1)[1])
        else:
            rest.append(flag)
        i += 1
    return rest, dirs


def _print_sweep(task: str, flags: list[str], overrides: list[str]) -> None:
    """`-m ... --cfg job`: Hydra prints one config and refuses a sweep; print every job's, each headed."""
    from hyco.config.validate import expand_sweeps

    single = [f for f in flags if f not in ("-m", "--multirun")]
    for number, job in enumerate(expand_sweeps(overrides)):
        print(f"# job {number}: {' '.join(job)}", flush=True)
        _run_hydra(task, single, job)


def _check_torchrun(task: str, overrides: list[str], multirun: bool) -> None:
    """Under torchrun every rank runs the same command and must agree on one run directory."""
    from hyco.utils.launch_env import launched

    if not launched():
        return
    if multirun:
        raise HycoError("-m: a sweep cannot run under torchrun; start torchrun once per job, or sweep with a "
                        "launcher (hydra/launcher=parallel|slurm) whose jobs each run on one process")
    if not _fixed_output_dir(task, overrides):
        raise HycoError("output_dir: under torchrun every rank must write to one directory; pass "
                        "output_dir=<dir> (the default names the start time, which ranks may not share)")


def _check_backend(configs: list) -> None:
    """Under torchrun: the process-group backend fits the device (NCCL needs CUDA), before anything starts."""
    from hyco.utils.launch_env import launched

    if not launched():
        return
    from hyco.utils.device import resolve_device
    from hyco.utils.distributed import choose_backend

    for cfg in configs:
        try:
            device = resolve_device(cfg.device)
        except ValueError as exc:
            raise HycoError(str(exc)) from None
        choose_backend(cfg.dist_backend, device)


def _run_hydra(task: str, flags: list[str], overrides: list[str]) -> None:
    import hydra

    from hyco.config.store import register_schema

    register_schema()
    program = sys.argv[0]
    saved = sys.argv

    # the job writes .hydra/ itself, once it holds its run directory (`_record_job`): a start that is refused
    # leaves the directory of the run that holds it as it was
    overrides = [*overrides, "hydra.output_subdir=null"]
    register_resolver()
    # flags first: Hydra's argparse refuses overrides on both sides of a flag (`a=1 --cfg job task=x`)
    sys.argv = [program, *flags, *overrides, f"task={task}"]
    try:
        hydra.main(config_path="conf", config_name="config", version_base="1.3")(_run_job)()
    finally:
        sys.argv = saved


def _run_job(dict_cfg) -> None:
    """One Hydra job: validate, take the run directory, set up the process (logging, seed, device), run the task.

    Nothing is written into the run directory before it is held (`lock_run`). In a sweep the job also keeps a
    record (`job.json`, see `hyco.tasks.sweep`), and a job that fails on a bad input says so in one line and
    lets the sweep go on with the next job."""
    import time

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from hyco.config.run_record import write_record
    from hyco.config.validate import to_typed
    from hyco.run_safety import lock_run, release
    from hyco.tasks import sweep
    from hyco.utils.distributed import process_info
    from hyco.utils.signals import Interrupted, as_interrupted
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    job = {"num": int(hydra_cfg.job.get("num") or 0), "overrides": list(hydra_cfg.overrides.task),
           "started": time.time()}
    recorded, status, message = False, sweep.FAILED, None
    try:
        saved = dict_cfg.copy()  # as the user composed it: `.hydra/config.yaml`
        _bind_run_dir(dict_cfg, run_dir)
        cfg = to_typed(dict_cfg)
        lock_run(cfg, run_dir)  # refused (one line): nothing was written into a directory another run holds
        if process_info().is_main:
            write_record(run_dir, saved)
            if in_sweep:
                sweep.write_job_record(run_dir, status=sweep.RUNNING, **job)
                recorded = True
        _run_locked(cfg, run_dir)
        status = sweep.COMPLETED
    except HycoError as error:
        if as_interrupted(error) is not None:
            status = sweep.STOPPED
            raise as_interrupted(error) from None
        log.debug("task failed", exc_info=True)
        message = str(error)
        if not in_sweep:
            _fail(error)
        print(f"hyco: error: job {run_dir.name}: {error}", file=sys.stderr, flush=True)  # the sweep goes on
    except Exception as error:  # while setting up: a converted stop goes on to `main` as what it is
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if as_interrupted(error) is None:
            raise
        status = sweep.STOPPED
        raise as_interrupted(error) from None
    except (Interrupted, SystemExit):
        status = sweep.STOPPED
        raise
    finally:
        if recorded:
            sweep.write_job_record(run_dir, status=status, error=message, **job)
        if in_sweep:  # a sweep run in this process (the basic launcher) holds no finished job's directory
            release(run_dir)


def _bind_run_dir(dict_cfg, run_dir: Path) -> None:
    """`output_dir` of the job's config is its run directory: in a sweep, Hydra's job directory under the sweep
    directory (so the default `cache_dir`, `${output_dir}/cache`, is each job's own)."""
    from omegaconf import open_dict

    with open_dict(dict_cfg):
        dict_cfg.output_dir = str(run_dir)


def _run_locked(cfg, run_dir: Path) -> None:
    """The job once it holds its run directory: logging, threads, device, seed, process group, the task."""
    from hydra.core.hydra_config import HydraConfig

    from hyco.run_safety import claim_run
    from hyco.tasks import run_task
    from hyco.tasks.context import RunContext
    from hyco.utils.device import resolve_device
    from hyco.utils.distributed import process_group, process_info
    from hyco.utils.log import setup_logging
    from hyco.utils.seed import seed_everything
    from hyco.utils.signals import Interrupted, as_interrupted
    from hyco.utils.threads import follower, job_budget

    main_rank = process_info().is_main  # the other ranks log warnings to the console only
    setup_logging(run_dir if main_rank else None, cfg.log_level.upper() if main_rank else "WARNING")
    threads = job_budget(cfg.threads, launcher=HydraConfig.get().launcher, workers=cfg.trainer.synthetic.num_workers)
    try:
        device = resolve_device(cfg.device)
    except ValueError as exc:
        raise HycoError(str(exc)) from None
    seed_everything(cfg.seed)
    with process_group(cfg.dist_backend, device) as ranks:  # torn down also when the task fails
        try:
            claim_run(cfg, run_dir)  # held already: removes what a killed run left
            log.info("task %s, experiment %s, run directory %s, device %s, %s%s", cfg.task, cfg.experiment_name,
                     run_dir, device, threads.describe(),
                     f", {ranks.world_size} ranks (torchrun)" if ranks.parallel else "")
            from hydra.types import RunMode

            in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN  # the job directories lie in the sweep directory
            run_task(cfg.task, RunContext(cfg=cfg, run_dir=run_dir, device=device,
                                          baselines_dir=run_dir.parent / "baselines" if in_sweep else None))
            if follower() is not None:
                log.info("%s", follower().describe())
        except Exception as error:  # a stop signal that a library converted on its way up
            stop = as_interrupted(error)
            if stop is None:
                raise
            log.debug("%s arrived as %r", stop.name, error)
            _stopped(stop, cfg, run_dir)
        except Interrupted as stop:  # the stack has unwound: every finally block has run
            _stopped(stop, cfg, run_dir)


def _stopped(stop, cfg, run_dir) -> None:
    """After a stop signal: remove what the cleanup may have left, say how to continue, exit 128 + signal."""
    from hydra.core.hydra_config import HydraConfig

    from hyco.run_safety import stop_message, sweep_after_stop

    sweep_after_stop(cfg, run_dir)
    log.warning("%s", stop_message(stop.name, cfg, run_dir, list(HydraConfig.get().overrides.task)))
    sys.exit(stop.exit_code)
