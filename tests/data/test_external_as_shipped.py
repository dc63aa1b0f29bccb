"""Data as their makers ship them, tried the way a new user would: The Well's folders of files per split and its
`valid` split, a frame stride that needs more solver substeps, a truth left unknown, a coefficient field stored
with the data, mappings typed without `+`, solver settings that must not re-import a file, and files read where
they lie (`data.external.in_place`). Every layout is written here by h5py, not by hyco."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from hyco.config.validate import load
from hyco.data.external import physics_config
from hyco.data.generate import ensure_dataset
from hyco.data.loader import make_loader
from hyco.data.store import TrajectoryStore
from hyco.data.windows import WindowDataset
from hyco.errors import DataError
from hyco.physics import build_physics
from hyco.utils.filesystems import mount_type, network_filesystem

from .external_layouts import cell_centres, numpy_heat, write_well

HEAT = ["experiment=heat_2d_quick", "physics.resolution=[16,12]", "physics.diffusivity.kind=scalar",
        "physics.diffusivity.truth.type=constant", "physics.diffusivity.truth.value=0.05"]
COORDS = {"x": cell_centres(16, 2.0), "y": cell_centres(12, 0.75)}


def heat_file(path, seed: int, trajectories: int = 3, frames: int = 12, dt: float = 0.01, **fields):
    temperature = numpy_heat(trajectories, frames, (16, 12), (2.0, 0.75), 0.05, dt=dt, substeps=4, seed=seed)
    return write_well(path, coords=COORDS, time=np.arange(frames) * dt,
                      fields={"temperature": (0, temperature), **fields}, constant=list(fields)), temperature


@pytest.fixture
def well_folder(tmp_path):
    """The Well's own layout of a dataset: data/train/*.hdf5 (two files of 3 trajectories), data/valid, data/test."""
    root = tmp_path / "heat" / "data"
    values = {}
    for split, files in (("train", 2), ("valid", 1), ("test", 1)):
        (root / split).mkdir(parents=True)
        values[split] = [heat_file(root / split / f"heat_{k:02d}.hdf5", seed=10 * len(values) + k)[1]
                         for k in range(files)]
    return root, values


def open_dataset(tmp_path, *overrides: str):
    cfg = load("generate", [*HEAT, *overrides, f"data_dir={tmp_path}/data", f"output_dir={tmp_path}/out"])
    model = build_physics(physics_config(cfg), "cpu", "float32")
    return cfg, model, TrajectoryStore(ensure_dataset(cfg, model, tmp_path / "data"))


def space_last(values: np.ndarray) -> np.ndarray:
    return np.swapaxes(values, -1, -2)


def test_a_split_spread_over_a_folder_of_files_and_the_valid_split_name(tmp_path, well_folder):
    root, values = well_folder
    _, _, store = open_dataset(tmp_path, f"data.external.splits.train={root}/train",
                               f"data.external.splits.valid={root}/valid", f"data.external.splits.test={root}/test",
                               "data.num_train=5", "data.num_val=2", "data.num_test=1", "data.num_frames=6")
    train = np.concatenate(values["train"])  # the folder's files in name order: trajectories 0-2, then 3-5
    for i in range(5):
        np.testing.assert_allclose(store.read_simulation("train", i)[:, 0], space_last(train[i, :6]), rtol=1e-6)
    np.testing.assert_allclose(store.read_simulation("val", 1)[:, 0], space_last(values["valid"][0][1, :6]),
                               rtol=1e-6)
    assert [int(s) for s in store.seeds("train")] == [0, 1, 2, 0, 1]  # indices within their own files
    assert store.attrs["source"]["paths"]["train"] == [str(root / "train" / "heat_00.hdf5"),
                                                       str(root / "train" / "heat_01.hdf5")]
    with pytest.raises(DataError, match=r"train \(2 files\): holds 6 trajectories, data.num_\* take 7 train"):
        open_dataset(tmp_path / "more", f"data.external.path={root}/train", "data.num_train=7", "data.num_val=0",
                     "data.num_test=0")
    with pytest.raises(Exception, match=r"data.external.splits.valid: expected the same as data.external.splits.val"):
        load("generate", [f"data.external.splits.val={root}/test", f"data.external.splits.valid={root}/valid"])


def test_a_field_mapping_needs_no_plus():
    cfg = load("generate", ["data.external.fields.data_0=u", "+data.external.fields.data_1=v"])
    assert cfg.data.external.fields == {"data_0": "u", "data_1": "v"}
    cfg = load("generate", ["data.external.fields={Vx: 'velocity[0]', Vy: 'velocity[1]'}"])
    assert cfg.data.external.fields == {"Vx": "velocity[0]", "Vy": "velocity[1]"}


def test_a_frame_stride_raises_the_substeps_to_what_the_stability_limit_needs(tmp_path, caplog):
    path, _ = heat_file(tmp_path / "heat.hdf5", seed=1)
    common = [f"data.external.path={path}", "data.external.frame_stride=5", "data.num_frames=3",
              "data.rollout_steps=1", "data.num_train=1", "data.num_val=1", "data.num_test=1",
              "physics.diffusivity.truth.value=0.3", "data.external.known_truth=[diffusivity]"]
    cfg = load("generate", [*HEAT, *common])
    with caplog.at_level(logging.INFO, logger="hyco.data.external.physics_setup"):
        section = physics_config(cfg)
    # h = 0.05 / substeps; stable while 0.3 < 0.9 / (h (2/dx^2 + 2/dy^2)) with dx = 0.125, dy = 0.0625
    needed = int(np.floor(0.3 * 0.05 * 2 * (64 + 256) / 0.9)) + 1
    assert section["dt"] == pytest.approx(0.05) and section["substeps"] == needed == 11
    assert "physics.substeps = 11 (the config said 4)" in caplog.text and "frame_stride" in caplog.text
    build_physics(section, "cpu", "float32")  # the model runs on the file's time step
    assert physics_config(load("generate", [*HEAT, *common[:-2]]))["substeps"] == 4  # no known truth to hold


def test_a_truth_left_unknown_is_not_checked_against_the_stability_limit(tmp_path):
    path, _ = heat_file(tmp_path / "heat.hdf5", seed=2)
    common = [f"data.external.path={path}", "data.num_frames=6", "data.num_train=1", "data.num_val=1",
              "data.num_test=1", "physics.diffusivity.truth.value=40.0"]  # far past the limit, and not the data's
    _, model, store = open_dataset(tmp_path, *common, "data.external.known_truth=[]")
    assert store.coefficient_names == [] and model.learnable_coefficients == ["diffusivity"]


def test_solver_settings_do_not_import_the_same_file_again(tmp_path):
    path, _ = heat_file(tmp_path / "heat.hdf5", seed=3)
    common = [f"data.external.path={path}", "data.num_frames=6", "data.num_train=1", "data.num_val=1",
              "data.num_test=1", "data.external.known_truth=[diffusivity]"]
    paths = {open_dataset(tmp_path, *common, f"physics.substeps={s}")[2].path for s in (4, 7, 12)}
    assert len(paths) == 1 and len(list((tmp_path / "data").glob("*.h5"))) == 1
    other = open_dataset(tmp_path, *common, "physics.diffusivity.truth.value=0.04")[2].path  # a truth is the data's
    assert other not in paths


def test_a_coefficient_field_stored_in_the_file_is_the_truth(tmp_path):
    kappa = np.tile((0.03 + 0.02 * np.sin(np.linspace(0, 2 * np.pi, 16)))[None, :, None], (3, 1, 12))  # x first
    path, _ = heat_file(tmp_path / "heat.hdf5", seed=4, kappa=(0, kappa))
    cfg, model, store = open_dataset(tmp_path, f"data.external.path={path}", "data.num_frames=6", "data.num_train=1",
                                     "data.num_val=1", "data.num_test=1", "physics.diffusivity.kind=field",
                                     "data.external.fields.kappa=diffusivity", "data.external.fields.temperature="
                                     "temperature", "physics.diffusivity.truth.value=9.0")  # the config's: not used
    assert store.coefficient_names == ["diffusivity"]
    np.testing.assert_allclose(store.true_coefficients["diffusivity"].numpy(), kappa[0].T, rtol=1e-6)
    from hyco.tasks.context import RunContext
    from hyco.tasks.experiment import Experiment

    ctx = RunContext(cfg=cfg, run_dir=tmp_path / "out", device=torch.device("cpu"))
    truth = Experiment(ctx=ctx, physics=model, dataset_path=store.path).true_coefficients()
    np.testing.assert_allclose(truth["diffusivity"].numpy(), kappa[0].T, rtol=1e-6)
    varying = kappa * np.arange(1, 4)[:, None, None]  # another coefficient per trajectory: not one truth
    other, _ = heat_file(tmp_path / "varying.hdf5", seed=4, kappa=(0, varying))
    with pytest.raises(DataError, match=r"field 'kappa' \(diffusivity's true value, data.external.fields\) differs "
                                        r"between frames or trajectories"):
        open_dataset(tmp_path / "v", f"data.external.path={other}", "data.num_frames=6", "data.num_train=2",
                     "data.num_val=0", "data.num_test=0", "physics.diffusivity.kind=field",
                     "data.external.fields.kappa=diffusivity", "data.external.fields.temperature=temperature")


def test_files_read_in_place_give_the_imported_data_without_a_copy(tmp_path, well_folder):
    root, _ = well_folder
    common = [f"data.external.splits.train={root}/train", f"data.external.splits.valid={root}/valid",
              f"data.external.splits.test={root}/test", "data.num_train=5", "data.num_val=2", "data.num_test=1",
              "data.num_frames=6"]
    _, _, copied = open_dataset(tmp_path / "copy", *common)
    _, _, in_place = open_dataset(tmp_path / "in_place", *common, "data.external.in_place=true")
    assert in_place.in_place and not copied.in_place
    assert in_place.path.stat().st_size < copied.path.stat().st_size / 2  # the trajectories are not in it
    for split in ("train", "val", "test"):
        assert torch.equal(in_place.trajectories(split), copied.trajectories(split))
    assert in_place.attrs["channel_std"] == copied.attrs["channel_std"]
    streamed = [torch.cat([b.targets for b in make_loader(WindowDataset(s, "train", 2, max_cached_sims=2), 4,
                                                           seed=1)]) for s in (in_place, copied)]
    assert torch.equal(*streamed)  # the loader reads ahead from the files themselves
    in_place.close()
    touched = root / "train" / "heat_01.hdf5"
    touched.write_bytes(touched.read_bytes())  # a new modification time: the file may have changed
    with pytest.raises(DataError, match=r"heat_01.hdf5: changed since .* was made to read it in place"):
        TrajectoryStore(in_place.path).read_simulation("train", 4)


def test_a_file_on_a_network_file_system_is_imported_all_the_same(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(f"server:/export {tmp_path}/remote nfs4 rw 0 0\n/dev/sda1 / ext4 rw 0 0\n")
    assert mount_type(tmp_path / "remote" / "x.h5", str(mounts)) == "nfs4"
    assert network_filesystem(tmp_path / "remote" / "x.h5", str(mounts)) == "nfs4"
    assert network_filesystem(tmp_path / "local.h5", str(mounts)) is None
