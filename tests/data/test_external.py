"""Data made elsewhere: files in The Well's and PDEBench's layouts imported into hyco's store (values, axes,
splits, grid and time step), re-imported when they change, and refused in one line when malformed."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from hyco.config.validate import load
from hyco.data import external
from hyco.data.external import physics_config
from hyco.data.generate import ensure_dataset
from hyco.data.store import TrajectoryStore
from hyco.errors import ConfigError, DataError
from hyco.physics import build_physics

from .external_layouts import cell_centres, write_pdebench_arrays, write_pdebench_groups, write_well

RNG = np.random.default_rng(7)


def imported(tmp_path, *overrides: str):
    """Config, model (built on the file's domain) and the store of an imported dataset."""
    cfg = load("generate", [*overrides, f"data_dir={tmp_path}/data", f"output_dir={tmp_path}/out"])
    model = build_physics(physics_config(cfg), "cpu", "float32")
    path = ensure_dataset(cfg, model, tmp_path / "data")
    return cfg, model, TrajectoryStore(path)


def space_last(values: np.ndarray) -> np.ndarray:
    """[T, x, y] -> [T, y, x]: hyco's tensor order."""
    return np.swapaxes(values, -1, -2)


@pytest.fixture
def advection_file(tmp_path):
    """The Well layout, 10 x 6 cells on a 5 x 1.5 box, frames 0.01 apart: a dynamic scalar (density), a vector
    constant in time (flow) and a field the model has no use for (pressure)."""
    density = RNG.normal(size=(5, 9, 10, 6))
    flow = RNG.normal(size=(5, 10, 6, 2))
    pressure = RNG.normal(size=(5, 9, 10, 6))
    path = write_well(tmp_path / "advection.hdf5", coords={"x": cell_centres(10, 5.0), "y": cell_centres(6, 1.5)},
                      time=np.arange(9) * 0.01,
                      fields={"density": (0, density), "pressure": (0, pressure), "flow": (1, flow)},
                      constant=["flow"])
    return path, density.astype(np.float32), flow.astype(np.float32)


def test_the_well_file_is_imported_with_its_grid_time_step_and_splits(tmp_path, advection_file):
    path, density, flow = advection_file
    cfg, model, store = imported(tmp_path, "experiment=advection_2d_quick", "physics.resolution=[10,6]",
                                 f"data.external.path={path}", "data.external.start_frame=1",
                                 "data.external.frame_stride=2", "data.num_frames=4", "data.rollout_steps=1",
                                 "data.num_train=2", "data.num_val=1", "data.num_test=2")
    assert store.shape == (5, 4, 3, 6, 10)  # [sim, time, (density, flow_x, flow_y), y, x]
    assert [int(s) for s in np.concatenate([store.seeds(s) for s in ("train", "val", "test")])] == [0, 1, 2, 3, 4]
    for split, first in (("train", 0), ("val", 2), ("test", 3)):
        for i in range(store.num_sims(split)):
            sim = store.read_simulation(split, i)
            np.testing.assert_array_equal(sim[:, 0], space_last(density[first + i, 1:8:2]))
            for c in range(2):  # the constant flow, in every frame, x component first
                np.testing.assert_array_equal(sim[:, 1 + c], np.broadcast_to(flow[first + i, :, :, c].T, (4, 6, 10)))
    # grid and time step from the file (cell centres 0.5 and 0.25 apart; frames 0.01 apart, every second one)
    np.testing.assert_allclose(store.bounds, (5.0, 1.5), rtol=1e-6)
    np.testing.assert_allclose([store.dt, model.dt], [0.02, 0.02], rtol=1e-5)
    np.testing.assert_allclose(model.bounds, (5.0, 1.5), rtol=1e-6)
    source = store.attrs["source"]
    assert source["paths"]["test"] == [str(path)] and source["format"] == "the_well"
    assert source["boundary"] == {"x": "periodic", "y": "periodic"}
    assert store.coefficient_names == []  # the modulation is learned and its truth unknown
    _, _, known = imported(tmp_path / "known", "experiment=advection_2d_quick", "physics.resolution=[10,6]",
                           f"data.external.path={path}", "data.external.known_truth=[modulation]")
    assert known.coefficient_names == ["modulation"] and known.path.name != store.path.name


def test_components_and_channels_are_mapped_one_by_one(tmp_path):
    """PDEBench's CFD layout (one root array per variable) onto Burgers' velocity, and The Well's vector with
    its components swapped: each channel lands where the mapping says."""
    vx, vy, density = (RNG.normal(size=(3, 5, 8, 4)) for _ in range(3))
    path = write_pdebench_arrays(tmp_path / "cfd.h5", {"Vx": vx, "Vy": vy, "density": density},
                                 {"x": cell_centres(8, 1.0), "y": cell_centres(4, 0.5)}, np.linspace(0, 0.1, 6))
    common = ["experiment=burgers_2d_quick", "physics.resolution=[8,4]", "data.num_frames=5", "data.rollout_steps=1",
              "data.num_train=1", "data.num_val=1", "data.num_test=1"]
    _, model, store = imported(tmp_path / "a", *common, f"data.external.path={path}",
                               "+data.external.fields={Vx: 'velocity[0]', Vy: 'velocity[1]'}")
    np.testing.assert_allclose(model.dt, 0.02, rtol=1e-5)  # t-coordinate holds T + 1 entries, 0.02 apart
    sim = store.read_simulation("val", 0)
    np.testing.assert_array_equal(sim[:, 0], space_last(vx[1].astype(np.float32)))
    np.testing.assert_array_equal(sim[:, 1], space_last(vy[1].astype(np.float32)))

    velocity = np.stack([vx, vy], axis=-1)
    well = write_well(tmp_path / "velocity.hdf5", coords={"x": cell_centres(8, 1.0), "y": cell_centres(4, 0.5)},
                      time=np.arange(5) * 0.02, fields={"velocity": (1, velocity)})
    _, _, swapped = imported(tmp_path / "b", *common, f"data.external.path={well}",
                             "+data.external.fields={velocity_y: 'velocity[0]', velocity_x: 'velocity[1]'}")
    sim = swapped.read_simulation("test", 0)
    np.testing.assert_array_equal(sim[:, 0], space_last(vy[2].astype(np.float32)))
    np.testing.assert_array_equal(sim[:, 1], space_last(vx[2].astype(np.float32)))


def test_pdebench_groups_fill_the_channels_in_order_and_known_coefficients_stay_known(tmp_path):
    """2D diffusion-reaction style: `0000/data` [T, x, y, 2] onto Gray-Scott's u and v (no mapping needed)."""
    data = RNG.uniform(size=(4, 6, 12, 8, 2))
    path = write_pdebench_groups(tmp_path / "2D_diff-react.h5", data,
                                 {"x": cell_centres(12, 18.75), "y": cell_centres(8, 12.5)}, np.arange(6) * 10.0)
    common = ["experiment=gray_scott_quick", "physics.resolution=[12,8]", f"data.external.path={path}",
              "data.num_frames=6"]
    _, model, store = imported(tmp_path, *common)
    for split, first in (("train", 0), ("val", 2), ("test", 3)):
        sim = store.read_simulation(split, 0)
        for c in range(2):
            np.testing.assert_array_equal(sim[:, c], space_last(data[first, ..., c].astype(np.float32)))
    np.testing.assert_allclose([model.dt, store.dt], [10.0, 10.0])  # the file's, not gray_scott_quick's 20
    np.testing.assert_allclose(model.bounds, (18.75, 12.5), rtol=1e-6)
    assert store.coefficient_names == ["f", "k"]  # given (learn: false); D_u and D_v are unknown
    _, _, known = imported(tmp_path / "known", *common, "data.external.known_truth=[D_u]",
                           "+data.external.fields={data_1: u, data_0: v}")  # and the channels swapped
    assert known.coefficient_names == ["D_u", "f", "k"]
    np.testing.assert_array_equal(known.read_simulation("train", 1)[:, 0],
                                  space_last(data[1, ..., 1].astype(np.float32)))


def test_one_dimensional_tensor_and_a_file_per_split(tmp_path):
    """PDEBench's `tensor` [N, T, X] (Burgers 1D); val and test from files of their own, each from its first
    trajectory (The Well keeps data/train, data/valid, data/test)."""
    coords, times = {"x": cell_centres(16, 1.0)}, np.arange(7) * 0.01
    files = {}
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        tensor = RNG.normal(size=(n, 6, 16))
        files[split] = (write_pdebench_arrays(tmp_path / f"{split}.h5", {"tensor": tensor}, coords, times), tensor)
    _, _, store = imported(tmp_path, "experiment=burgers_1d_quick", "physics.resolution=[16]",
                           f"data.external.path={files['train'][0]}", f"data.external.splits.val={files['val'][0]}",
                           f"data.external.splits.test={files['test'][0]}", "data.num_frames=6",
                           "data.num_train=3", "data.num_val=2", "data.num_test=1")
    assert store.shape == (6, 6, 1, 16)
    for split in ("train", "val", "test"):
        assert list(store.seeds(split)) == list(range(store.num_sims(split)))
        np.testing.assert_array_equal(store.trajectories(split)[:, :, 0].numpy(),
                                      files[split][1][:store.num_sims(split)].astype(np.float32))


def test_a_changed_source_is_imported_again_a_moved_one_is_not(tmp_path, advection_file):
    path = advection_file[0]
    args = ["experiment=advection_2d_quick", "physics.resolution=[10,6]", "data.num_frames=4", "data.rollout_steps=1"]
    _, _, first = imported(tmp_path, *args, f"data.external.path={path}")
    moved = path.rename(tmp_path / "elsewhere.hdf5")
    _, _, again = imported(tmp_path, *args, f"data.external.path={moved}")
    assert again.path == first.path  # same contents, same dataset
    with h5py.File(moved, "r+") as f:
        f["t0_fields/density"][0, 0, 0, 0] = 123.0
    _, _, changed = imported(tmp_path, *args, f"data.external.path={moved}")
    assert changed.path != first.path
    assert changed.read_simulation("train", 0)[0, 0, 0, 0] == 123.0
    assert first.read_simulation("train", 0)[0, 0, 0, 0] != 123.0


def test_the_digest_of_an_unchanged_file_is_read_from_the_cache(tmp_path, advection_file):
    path = advection_file[0]
    digest = external.file_digest(path, tmp_path)
    cache_file = tmp_path / external.DIGEST_CACHE
    cache = json.loads(cache_file.read_text())
    cache[str(path.resolve())]["sha256"] = "remembered"
    cache_file.write_text(json.dumps(cache))
    assert external.file_digest(path, tmp_path) == "remembered"  # same size and mtime: not read again
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert external.file_digest(path, tmp_path) == digest  # touched: read again


# ---------------------------------------------------------------------------- malformed files
def _heat_well(path, **changes):
    temperature = RNG.normal(size=(4, 8, 16, 12))
    return write_well(path, coords={"x": cell_centres(16, 1.0), "y": cell_centres(12, 0.75)},
                      time=np.arange(8) * 0.01, fields={"temperature": (0, temperature)}, **changes)


def _drop(name):
    def damage(path):
        with h5py.File(path, "r+") as f:
            del f[name]
    return damage


def _replace(name, values):
    def damage(path):
        with h5py.File(path, "r+") as f:
            attrs = dict(f[name].attrs)
            del f[name]
            f[name] = values
            f[name].attrs.update(attrs)
    return damage


def _not_hdf5(path):
    path.write_bytes(b"these are not the trajectories you are looking for\n" * 10)


def _non_finite(path):
    with h5py.File(path, "r+") as f:
        f["t0_fields/temperature"][1, 3, 2, 2] = np.nan


MALFORMED = {
    "missing group": (_drop("dimensions"), [], "group 'dimensions' missing (The Well layout)"),
    "missing dataset": (_drop("t0_fields/temperature"), [], "dataset 't0_fields/temperature' missing"),
    "missing coordinate": (_drop("dimensions/y"), [], "dataset 'dimensions/y' missing"),
    "wrong rank": (_replace("t0_fields/temperature", np.zeros((4, 8, 16), np.float32)), [],
                   "'t0_fields/temperature' has 3 axes [4, 8, 16], expected 4 [n_traj, T, x, y]"),
    "missing field": (None, ["+data.external.fields={pressure: temperature}"],
                      "no field 'pressure' in the file (its fields: temperature)"),
    "no source for a field": (None, ["physics=advection_2d", "physics.resolution=[16,12]"],
                              "physics field 'density' has no source in the file (its fields: temperature)"),
    "other resolution": (None, ["physics.resolution=[12,16]"], "grid [16, 12] (x first), physics.resolution is "
                                                               "[12, 16]"),
    "too few trajectories": (None, ["data.num_train=3"], "holds 4 trajectories, data.num_* take 3 train + 1 val + "
                                                         "1 test"),
    "too few frames": (None, ["data.num_frames=5", "data.external.frame_stride=2"],
                       "trajectories of 8 frames; data.num_frames=5 from frame 0 every 2 needs 9"),
    "not HDF5": (_not_hdf5, [], "not a readable HDF5 file"),
    "non-finite values": (_non_finite, [], "trajectory 1 holds non-finite values"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_file_is_refused_in_one_line_naming_it(tmp_path, case):
    damage, overrides, expected = MALFORMED[case]
    path = _heat_well(tmp_path / "heat.hdf5")
    if damage is not None:
        damage(path)
    with pytest.raises(DataError) as err:
        imported(tmp_path, "experiment=heat_2d_quick", "physics.resolution=[16,12]", "data.num_frames=4",
                 f"data.external.path={path}", *overrides)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message
    assert not list((tmp_path / "data").glob("*.h5")) if (tmp_path / "data").exists() else True  # nothing left


def test_pdebench_layout_problems_name_the_dataset(tmp_path):
    groups = write_pdebench_groups(tmp_path / "groups.h5", RNG.normal(size=(2, 5, 16, 12, 1)),
                                   {"x": cell_centres(16, 1.0), "y": cell_centres(12, 0.75)}, np.arange(5) * 0.01)
    with h5py.File(groups, "r+") as f:
        del f["0001/grid/x"], f["0000/grid/x"], f["0000/grid/y"]
    with pytest.raises(DataError, match=r"groups\.h5: dataset '0000/grid/x' missing \(PDEBench layout\)"):
        external.Source(groups)
    tensor = write_pdebench_arrays(tmp_path / "tensor.h5", {"tensor": np.zeros((2, 5, 16))},
                                   {"x": cell_centres(16, 1.0), "y": cell_centres(12, 0.75)}, np.arange(5) * 0.01)
    with pytest.raises(DataError, match=r"tensor\.h5: no field readable in the pdebench layout \(tensor: 'tensor' "
                                        r"has shape \[2, 5, 16\], expected \[N, T, X, Y\]"):
        external.Source(tensor)
    with pytest.raises(DataError, match=r"tensor\.h5: group 'dimensions' missing \(The Well layout\)"):
        external.Source(tensor, "the_well")


def test_config_mistakes_name_the_key(tmp_path):
    path = _heat_well(tmp_path / "heat.hdf5")
    with pytest.raises(ConfigError, match="data.external.known_truth: expected coefficient names .* diffusivity"):
        imported(tmp_path, "experiment=heat_2d_quick", "physics.resolution=[16,12]", f"data.external.path={path}",
                 "data.external.known_truth=[kappa]")
    with pytest.raises(ConfigError, match="data.external.fields: expected physics fields among temperature"):
        imported(tmp_path, "experiment=heat_2d_quick", "physics.resolution=[16,12]", f"data.external.path={path}",
                 "+data.external.fields={temperature: T}")
    with pytest.raises(ConfigError, match="data.external.format: expected one of auto, the_well, pdebench"):
        load("generate", ["data.external.format=netcdf"])
