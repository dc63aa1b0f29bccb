"""The command line as a newcomer types it: flags anywhere, sweeps with --cfg, own experiment files and
folders, plug-in models without `+`, a help that lists what can be chosen and comes at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from hyco.config.validate import load

PLUGIN = textwrap.dedent('''
    """A user's plug-in PDE with nested parameters, as README's "Adding your own PDE" writes one."""
    from dataclasses import dataclass, field

    from hyco.config.registry import PHYSICS


    @dataclass
    class Rate:
        value: float = 1.5
        learn: bool = True


    @PHYSICS.register("toy_decay")
    class ToyDecay:
        @dataclass
        class Params:
            resolution: int = 12
            rate: Rate = field(default_factory=Rate)
''')


def hyco(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "hyco", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env=env)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    (tmp_path / "toy_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def with_path(directory) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(directory), env.get("PYTHONPATH", "")])
    return env


def test_flags_after_the_overrides(tmp_path):
    """Was: `hyco run experiment=heat_2d_quick --cfg job` -> exit 2, "unrecognized arguments: task=run"."""
    result = hyco("run", "experiment=heat_2d_quick", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "experiment_name: heat_2d_quick" in result.stdout and "task: run" in result.stdout


def test_a_sweep_with_cfg_prints_every_job(tmp_path):
    """Was: `hyco -m ... --cfg job` -> a traceback ("Only one of --run, --multirun, --cfg ...")."""
    result = hyco("train", "-m", "experiment=heat_2d_quick", "seed=3,4", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    jobs = result.stdout.split("# job ")[1:]
    assert [job.splitlines()[0] for job in jobs] == ["0: experiment=heat_2d_quick seed=3",
                                                     "1: experiment=heat_2d_quick seed=4"]
    assert "\nseed: 3\n" in jobs[0] and "\nseed: 4\n" in jobs[1]


def test_an_experiment_file_anywhere(tmp_path):
    """Was: refused by the pre-check ("experiment: expected one of ..."). A file without `@package` works."""
    (tmp_path / "my_exp.yaml").write_text("defaults:\n  - heat_2d_quick\nexperiment_name: mine\n"
                                          "data:\n  num_train: 3\n")
    cfg = load("run", [f"experiment={tmp_path / 'my_exp.yaml'}"])
    assert (cfg.experiment_name, cfg.data.num_train, cfg.physics["name"]) == ("mine", 3, "heat")
    result = hyco("run", "experiment=./my_exp.yaml", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "experiment_name: mine" in result.stdout and "num_train: 3" in result.stdout


def test_a_config_dir_of_ones_own(tmp_path):
    (tmp_path / "cfg" / "experiment").mkdir(parents=True)
    (tmp_path / "cfg" / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - heat_2d_quick\nexperiment_name: from_dir\nseed: 17\n")
    result = hyco("run", "--config-dir", "cfg", "experiment=mine", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "experiment_name: from_dir" in result.stdout and "\nseed: 17\n" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["experiment=missing.yaml"], "hyco: error: experiment: expected the name of an experiment or an existing "
                                  ".yaml file, got 'missing.yaml'"),
    (["--config-dir", "nowhere", "experiment=mine"], "hyco: error: --config-dir: expected an existing directory, "
                                                     "got 'nowhere'"),
])
def test_a_missing_file_or_folder_is_one_line(tmp_path, args, message):
    result = hyco("run", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]


def test_plugin_keys_without_plus_and_a_neutral_experiment(plugin_dir):
    """Was: `physics.rate.value=...` -> "unknown key" (needed `+`), and the run inherited Burgers' experiment."""
    cfg = load("run", ["plugins=[toy_plugin]", "physics=plugin", "physics.name=toy_decay", "physics.rate.value=0.3"])
    assert cfg.physics == {"name": "toy_decay", "resolution": 12, "rate": {"value": 0.3, "learn": True}}
    assert cfg.experiment_name == "toy_decay"
    assert cfg.observation.spatial == "full"
    # selected directly by its name; an old command with `+` still works
    cfg = load("run", ["plugins=[toy_plugin]", "physics=toy_decay", "+physics.resolution=20"])
    assert cfg.physics["resolution"] == 20 and cfg.experiment_name == "toy_decay"
    # an explicit experiment is kept
    cfg = load("run", ["plugins=[toy_plugin]", "physics=toy_decay", "experiment=burgers_2d_sparse"])
    assert cfg.experiment_name == "burgers_2d_sparse"


def test_cfg_job_shows_a_plugins_keys_with_their_defaults(plugin_dir):
    result = hyco("run", "plugins=[toy_plugin]", "physics=plugin", "physics.name=toy_decay", "--cfg", "job",
                  cwd=plugin_dir, env=with_path(plugin_dir))
    assert result.returncode == 0, result.stderr
    assert "physics:\n  name: toy_decay\n  resolution: 12\n  rate:\n    value: 1.5\n    learn: true\n" in result.stdout
    assert "experiment_name: ${physics.name}" in result.stdout


def test_help_lists_the_choices_and_entry_point_plugins_without_torch(tmp_path):
    """The help reads config names and entry points only; an installed plug-in's model shows by its name."""
    dist = tmp_path / "toy_models-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-models\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hyco.physics]\nfisher_kpp = toy_models:Fisher\n"
                                           "[hyco.networks]\ntiny_net = toy_models:Tiny\n")
    probe = ("import sys\nfrom hyco.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
             "    print('exit', e.code, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                            env=with_path(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "exit 0 False"
    text = " ".join(result.stdout.split())
    for name in ("generate", "evaluate", "heat_2d_quick", "gray_scott", "burgers_2d", "unet", "fno",
                 "fisher_kpp", "tiny_net", "random_points"):
        assert name in text
    assert "physics= advection_2d" in text and "fisher_kpp" in text.split("network=")[0].split("physics=")[1]


def test_list_describes_every_choice(tmp_path):
    result = hyco("list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "heat_2d_quick            A minute-sized version of heat_2d for smoke tests." in result.stdout
    assert "network=<name>:" in result.stdout and "  fno " in result.stdout


def test_task_help_is_hycos(tmp_path):
    """Was: "cli is powered by Hydra." as the first line of `hyco train --help`."""
    result = hyco("train", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("usage: hyco train [experiment=")
    assert "powered by Hydra" not in result.stdout and "experiment: advection_2d" in result.stdout


def test_an_entry_point_plugin_needs_no_plugins_key(plugin_dir):
    """A model declared by an installed package's entry point is chosen by name alone."""
    dist = plugin_dir / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hyco.physics]\ntoy_decay = toy_plugin:ToyDecay\n")
    result = hyco("run", "physics=toy_decay", "physics.resolution=30", "--cfg", "job", "--resolve",
                  cwd=plugin_dir, env=with_path(plugin_dir))
    assert result.returncode == 0, result.stderr
    assert "experiment_name: toy_decay" in result.stdout
    assert "physics:\n  name: toy_decay\n  resolution: 30\n  rate:\n    value: 1.5\n" in result.stdout


def test_generate_prints_only_the_dataset_path_on_stdout(tmp_path):
    """Was: PhiML's `Φ-ML's default backend is now torch (INFO), ...` and a blank line before the path, so that
    `P=$(hyco generate ...)` captured them too. Library chatter goes to the log (stderr and hyco.log)."""
    result = hyco("generate", "experiment=heat_2d_quick", "data_dir=data", "output_dir=run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith(".h5") and (tmp_path / lines[0]).resolve().is_file()
    assert "default backend is now torch" in (tmp_path / "run" / "hyco.log").read_text()


def test_list_and_run_take_a_config_dirs_experiment_without_a_package_line(tmp_path):
    """Was: `hyco list --config-dir DIR` ignored DIR, and such a file failed with "experiment: unknown key"."""
    (tmp_path / "cfg" / "experiment").mkdir(parents=True)
    (tmp_path / "cfg" / "experiment" / "mine.yaml").write_text(
        "# My heat run: the quick one with three training simulations.\ndefaults:\n  - heat_2d_quick\n"
        "experiment_name: from_dir\ndata:\n  num_train: 3\n")
    listed = hyco("list", "--config-dir", "cfg", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    mine = [line for line in listed.stdout.splitlines() if line.split()[:1] == ["mine"]]
    assert len(mine) == 1 and "My heat run: the quick one with three training simulations." in mine[0]
    assert mine[0].endswith(f"[{os.path.join('cfg', 'experiment')}]")
    result = hyco("run", "--config-dir", "cfg", "experiment=mine", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "experiment_name: from_dir" in result.stdout and "num_train: 3" in result.stdout
    assert (tmp_path / "cfg" / "experiment" / "mine.yaml").read_text().startswith("# My heat run")  # untouched
    missing = hyco("list", "--config-dir", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "hyco: error: --config-dir: expected an existing directory, got 'nowhere'")


def test_each_observation_line_states_what_its_file_sets():
    """Was: `full` listed as "observed, without noise" while its description spoke for the experiments too (gray_scott
    adds 1 % noise to it). A line says what the file itself sets: its noise level, and its fraction or step."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    from hyco.config.catalogue import shipped_options

    folder = files("hyco.conf") / "observation"
    for option in shipped_options("observation"):
        settings = OmegaConf.load(str(folder / f"{option.name}.yaml"))
        level = settings.noise_level
        assert f"noise_level {level:g}" in option.description, option
        for key in ("centre_fraction", "point_fraction"):
            if key in settings:
                assert f"{key} {settings[key]:g}" in option.description, option
        if settings.temporal == "every_k":
            assert f"every {settings.every_k}th frame" in option.description, option


@pytest.mark.parametrize(("args", "message"), [
    (["evaluation.uncertainty=bootstrap"],
     "hyco: error: evaluation.uncertainty: expected one of laplace, ensemble, off, got 'bootstrap'"),
    (["evaluation.uncertainty=ensemble", "evaluation.ensemble_size=1"],
     "hyco: error: evaluation.ensemble_size: expected an integer >= 2, got 1"),
    (["evaluation.uncertainty=ensemble", "evaluation.uncertainty_prior=regulariser"],
     "hyco: error: evaluation.uncertainty_prior: regulariser is a Laplace setting: the ensemble's members are "
     "fitted with the trainer's smoothness penalty as it is; use uncertainty_prior=bounds with uncertainty=ensemble"),
    (["evaluation.uncertainty_rank=0"], "hyco: error: evaluation.uncertainty_rank: expected an integer >= 1, got 0"),
    (["evaluation.uncertainty_prior=flat"],
     "hyco: error: evaluation.uncertainty_prior: expected one of bounds, regulariser, got 'flat'"),
])
def test_an_uncertainty_method_hyco_does_not_have_is_one_line(tmp_path, args, message):
    """A method hyco does not have, an ensemble of fewer than 2 members, or the regulariser prior (a Laplace
    reading) with the ensemble: refused up front in one line naming the key, exit 2."""
    result = hyco("evaluate", f"output_dir={tmp_path / 'run'}", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]


def test_laplace_of_a_field_too_large_for_its_dense_matrices_is_refused_before_any_data_is_made(tmp_path):
    """A 136 x 136 field (18496 numbers, over the 16384 Laplace builds dense matrices for): the error names the
    key and the way out, exit 2, and no dataset was generated."""
    result = hyco("evaluate", f"output_dir={tmp_path / 'run'}", f"data_dir={tmp_path / 'data'}",
                  "experiment=heat_2d_quick", "physics.resolution=[136,136]", "physics.bounds=[8.0,8.0]", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "hyco: error: evaluation.uncertainty: laplace of 18496 learned numbers needs dense 18496 x 18496 matrices "
        "(about 10 GiB); it is done up to 16384 (a 128 x 128 field): use evaluation.uncertainty=ensemble or off")
    assert not any((tmp_path / "data").glob("*.h5"))
