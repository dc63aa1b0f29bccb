"""Config validation: bad input ends in one line on stderr naming the key, exit code 2."""

import subprocess
import sys

import pytest
import torch

from hyco.config.validate import load
from hyco.errors import ConfigError, HycoError

BAD_INPUTS = [
    (["trainer.hybrid.alpha=1.5"], "trainer.hybrid.alpha", "[0, 1]"),
    (["trainer.hybrid.alpha=-0.1"], "trainer.hybrid.alpha", "[0, 1]"),
    (["experiment=does_not_exist"], "experiment", "burgers_2d_sparse"),
    (["no_such_key=1"], "no_such_key", "unknown key"),
    (["data.num_train=abc"], "data.num_train", "integer"),
    (["data.num_train=0"], "data.num_train", ">= 1"),
    (["device=gpu"], "device", "cuda"),
    (["seed=-3"], "seed", ">= 0"),
    (["data.rollout_steps=100"], "data.num_frames", "rollout_steps + 1"),
    (["data.regenerate=sometimes"], "data.regenerate", "auto, always, never"),
    (["observation.spatial=everywhere"], "observation.spatial", "full"),
    (["observation.noise_level=-1"], "observation.noise_level", ">= 0"),
    (["trainer.synthetic.lr=0"], "trainer.synthetic.lr", "> 0"),
    (["trainer.physical.optimizer=sgd"], "trainer.physical.optimizer", "lbfgsb"),
    (["+physics.resolution=2"], "physics.resolution", ">= 4"),
    (["+physics.dt=-0.01"], "physics.dt", "> 0"),
    (["physics.name=no_such_pde"], "physics.name", "fake_pde"),
    (["+physics.viscosty=0.1"], "physics.viscosty", "unknown key"),
    (["mode=both"], "mode", "physical, synthetic, hybrid"),
    (["dtype=float16"], "dtype", "float32"),
    (["observation.box_lower=[0.5,0.5]", "observation.box_upper=[0.4,0.9]"],
     "observation.box_lower[0]", "lower < upper"),
    (["a==b"], "command line", "key=value"),
    (["trainer.hybrid.physical.data_weight=-1"], "trainer.hybrid.physical.data_weight", ">= 0"),
    (["trainer.hybrid.synthetic.interaction_weight=-0.5"], "trainer.hybrid.synthetic.interaction_weight",
     "auto or a number >= 0"),
    (["trainer.hybrid.synthetic.interaction_weight=sometimes"], "trainer.hybrid.synthetic.interaction_weight",
     "auto or a number >= 0"),
    (["trainer.hybrid.physical.data_weight=0", "trainer.hybrid.physical.interaction_weight=0"],
     "trainer.hybrid.physical.interaction_weight", "would learn nothing"),
    (["trainer.hybrid.physical.data_weight=0", "trainer.hybrid.synthetic.data_weight=0"],
     "trainer.hybrid.synthetic.data_weight", "one model must learn from the data"),
    (["trainer.hybrid.first=both"], "trainer.hybrid.first", "auto, physical, synthetic"),
    (["trainer.hybrid.interaction_region=ghosts"], "trainer.hybrid.interaction_region", "unobserved, everywhere"),
    (["trainer.hybrid.completion=mine"], "trainer.hybrid.completion", "blend, partner"),
    (["trainer.hybrid.physical.interaction_region=somewhere"], "trainer.hybrid.physical.interaction_region",
     "unobserved, everywhere"),
    (["observation.states=some"], "observation.states", "initial, full"),
    (["observation.temporal=frames", "observation.frames=[2,4]"], "observation.frames", "includes frame 0"),
    (["observation.temporal=frames"], "observation.frames", "non-empty"),
    (["trainer.physical.windows=all"], "trainer.physical.windows", "sliding, trajectory"),
    (["trainer.physical.horizon=-1"], "trainer.physical.horizon", "an integer >= 0"),
    (["data.num_frames=8", "data.validation_frames=8"], "data.validation_frames", "in [0, num_frames - 1 = 7]"),
    # appended keys (`+key=value`) are checked against the schema like plain ones
    (["+foo=1"], "foo", "unknown key"),
    (["+trainer.hybrid.foo=1"], "trainer.hybrid.foo", "unknown key"),
    (["+data.nested.deeper=1"], "data.nested", "unknown key"),
    # no number may be infinite or NaN, in the typed sections or the model's own
    (["trainer.physical.lr=inf"], "trainer.physical.lr", "a finite number, got inf"),
    (["trainer.synthetic.lr=nan"], "trainer.synthetic.lr", "a finite number, got nan"),
    (["trainer.hybrid.memory_budget_gb=inf"], "trainer.hybrid.memory_budget_gb", "a finite number"),
    (["data.lock_timeout_s=inf"], "data.lock_timeout_s", "a finite number"),
    (["observation.box_upper=[0.9,inf]"], "observation.box_upper[1]", "a finite number"),
    (["+physics.dt=inf"], "physics.dt", "a finite number, got inf"),
    (["+physics.dt=-inf"], "physics.dt", "a finite number, got -inf"),
]


@pytest.mark.parametrize("overrides,key,expected", BAD_INPUTS, ids=[" ".join(b[0]) for b in BAD_INPUTS])
def test_bad_input_names_the_key(overrides, key, expected, fake_overrides):
    with pytest.raises(HycoError) as info:
        load("run", fake_overrides + overrides)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(key + ":"), message
    assert expected in message, message


def test_every_float_key_of_the_schema_refuses_infinity(fake_overrides):
    """Walks the typed schema, so a float key added later is covered without a new test line."""
    import dataclasses

    from hyco.config.schema import HycoConfig

    def float_keys(cls, prefix=""):
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                yield from float_keys(type(default), f"{prefix}{f.name}.")
            elif isinstance(default, float):
                yield f"{prefix}{f.name}"

    keys = list(float_keys(HycoConfig))
    assert "trainer.physical.lr" in keys and len(keys) >= 15
    for key in keys:
        with pytest.raises(ConfigError, match=rf"^{key}: expected a finite number, got inf$"):
            load("run", fake_overrides + [f"{key}=inf"])


def test_physics_bounds_infinity_is_one_line():
    """Shipped model: `physics.bounds=[inf]` used to end in ZeroDivisionError inside the stability limit."""
    with pytest.raises(ConfigError, match=r"^physics\.bounds\[0\]: expected a finite number, got inf$"):
        load("train", ["experiment=burgers_1d_quick", "physics.bounds=[inf]"])


def test_cli_flags_and_overrides_in_any_order(tmp_path):
    result = _hyco("train", "experiment=burgers_2d_quick", "--cfg", "job", "trainer.hybrid.cycles=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "experiment_name: burgers_2d_quick" in result.stdout and "cycles: 3" in result.stdout


def test_defaults_compose_and_validate(fake_overrides):
    cfg = load("train", fake_overrides)
    assert cfg.task == "train"
    assert cfg.experiment_name == "burgers_2d_sparse"
    assert cfg.observation.spatial == "centre"
    assert 0.0 <= cfg.trainer.hybrid.alpha <= 1.0
    assert cfg.device == "auto"


def test_overrides_reach_the_typed_config(fake_overrides):
    cfg = load("run", fake_overrides + ["trainer.hybrid.alpha=0.25", "seed=7", "data.num_train=3", "device=cpu"])
    assert cfg.trainer.hybrid.alpha == 0.25
    assert cfg.seed == 7 and cfg.data.num_train == 3 and cfg.device == "cpu"


def test_model_params_are_validated_by_the_model_schema(fake_overrides):
    from hyco.config.registry import model_params

    cls, params = model_params({"name": "fake_pde", "resolution": 8}, "physics")
    assert cls.__name__ == "FakePDE" and params.resolution == 8 and params.dt == 0.1
    with pytest.raises(ConfigError, match=r"^physics\.resolution: expected an integer >= 4, got 3$"):
        model_params({"name": "fake_pde", "resolution": 3}, "physics")


def _hyco(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hyco", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_cli_bad_input_is_one_line_exit_2(fake_overrides, tmp_path):
    result = _hyco("train", *fake_overrides, "trainer.hybrid.alpha=2", f"output_dir={tmp_path}/run", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["hyco: error: trainer.hybrid.alpha: expected a number in [0, 1], got 2.0"], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_multirun_validates_every_job(fake_overrides, tmp_path):
    result = _hyco("train", "-m", *fake_overrides, "trainer.hybrid.alpha=0.1,3", f"output_dir={tmp_path}/run",
                   cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "hyco: error: trainer.hybrid.alpha: expected a number in [0, 1], got 3.0"]


def test_cli_help_lists_the_tasks():
    result = _hyco("--help")
    assert result.returncode == 0
    for task in ("generate", "train", "evaluate", "report", "run"):
        assert f"  {task} " in result.stdout


def test_cli_unknown_task(tmp_path):
    result = _hyco("fly", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "task" in result.stderr


def test_device_selection():
    from hyco.utils.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")


OBSERVATION_ERRORS = [
    (["observation.fields=[pressure]"], "observation.fields", "names of dynamic fields (velocity)"),
    (["observation.temporal=frames", "observation.frames=[0]"], "observation.temporal", "after frame 0"),
    (["observation.temporal=frames", "observation.frames=[0,99]"], "observation.frames", "frame indices < "),
    (["+observation.noise_levels.density=0.1"], "observation.noise_levels.density", "a dynamic field"),
]


@pytest.mark.parametrize("overrides,key,expected", OBSERVATION_ERRORS, ids=[" ".join(b[0]) for b in OBSERVATION_ERRORS])
def test_observations_that_leave_nothing_to_learn_are_refused_before_any_data(overrides, key, expected, tmp_path):
    """Checked against the PDE's fields before a dataset is made (`ensure_dataset`), as a ConfigError: the
    CLI prints it as one line with exit code 2."""
    from hyco.data.generate import ensure_dataset
    from hyco.physics import build_physics

    cfg = load("generate", ["experiment=burgers_1d_quick", *overrides])
    with pytest.raises(ConfigError) as info:
        ensure_dataset(cfg, build_physics(dict(cfg.physics)), tmp_path / "data")
    message = str(info.value)
    assert message.startswith(f"{key}:") and expected in message and "\n" not in message
    assert not list(tmp_path.rglob("*.h5"))  # no dataset was made


def test_a_static_field_cannot_be_observed(tmp_path):
    from hyco.config.schema import ObservationConfig
    from hyco.data.observation import observed_channels

    specs = [{"name": "density", "channels": 1, "dynamic": True}, {"name": "flow", "channels": 2, "dynamic": False}]
    with pytest.raises(ConfigError, match="'flow' is a static input"):
        observed_channels(ObservationConfig(fields=["flow"]), specs)
    assert observed_channels(ObservationConfig(fields=["density"]), specs).tolist() == [True, False, False]
