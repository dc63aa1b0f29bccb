import pytest

from hyco.config.schema import DataConfig, HycoConfig, ObservationConfig

from .fake_physics import FakeDiffusion


def make_config(observation: dict | None = None, seed: int = 0, data_seed: int = 0, **data) -> HycoConfig:
    defaults = {"num_train": 3, "num_val": 2, "num_test": 1, "num_frames": 6, "rollout_steps": 2,
                "generation_batch": 4, "seed": data_seed}
    return HycoConfig(task="generate", experiment_name="unit", physics={"name": "fake_diffusion"},
                      network={"name": "none"}, seed=seed, data=DataConfig(**{**defaults, **data}),
                      observation=ObservationConfig(**(observation or {})))


@pytest.fixture
def fake_model():
    return FakeDiffusion()
