import h5py
import numpy as np
import pytest

from hyco.data.store import FORMAT_VERSION, TRAJECTORIES, TrajectoryStore, create_store
from hyco.errors import DataError

FIELDS = [{"name": "u", "channels": 2, "grid": "centered", "dynamic": True}]


def _write(path, data=None, fail_after=None):
    data = np.random.default_rng(0).normal(size=(5, 4, 2, 8, 8)).astype(np.float32) if data is None else data
    attrs = {"config_hash": "h", "config": {"seed": 0}, "field_specs": FIELDS, "dynamic_channels": [0, 1],
             "bounds": [1.0, 2.0], "dt": 0.5}
    with create_store(path, split_sizes={"train": 3, "val": 1, "test": 1}, num_frames=4, num_channels=2,
                      spatial_shape=(8, 8), attrs=attrs, coefficients={"nu": np.float32(0.1)}) as writer:
        for first in range(0, 5, 2):
            if fail_after is not None and first >= fail_after:
                raise RuntimeError("simulated crash")
            writer.write(first, data[first:first + 2], np.arange(first, min(first + 2, 5)))
    return data


def test_round_trip_layout_readable_with_plain_h5py(tmp_path):
    path = tmp_path / "d.h5"
    data = _write(path)
    store = TrajectoryStore(path)
    assert store.num_sims("train") == 3 and store.num_sims("val") == 1 and store.num_sims("test") == 1
    np.testing.assert_array_equal(store.trajectories("val").numpy(), data[3:4])
    np.testing.assert_array_equal(store.read_simulation("test", 0), data[4])
    assert store.true_coefficients["nu"].item() == pytest.approx(0.1)
    assert store.bounds == (1.0, 2.0) and store.dt == 0.5 and store.dynamic_channels == [0, 1]
    np.testing.assert_allclose(store.channel_std.numpy(), data[:3].transpose(2, 0, 1, 3, 4).reshape(2, -1).std(1),
                               rtol=1e-5)
    store.close()
    with h5py.File(path, "r") as f:  # the README's recipe
        assert f.attrs["format_version"] == FORMAT_VERSION and f.attrs["complete"] == 1
        assert f["trajectories"].shape == (5, 4, 2, 8, 8) and f["trajectories"].chunks[0] == 1


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "d.h5"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _write(path, fail_after=2)
    assert list(tmp_path.iterdir()) == []


def test_unwritten_simulations_are_refused_at_write(tmp_path):
    path = tmp_path / "d.h5"
    with pytest.raises(RuntimeError, match="never written"), create_store(
            path, split_sizes={"train": 2}, num_frames=2, num_channels=1, spatial_shape=(4,),
            attrs={"config_hash": "h", "field_specs": [{"name": "u", "channels": 1}], "dynamic_channels": [0],
                   "bounds": [1.0], "dt": 0.1}, coefficients={}) as writer:
        writer.write(0, np.zeros((1, 2, 1, 4), np.float32), np.zeros(1))
    assert not path.exists()


def test_truncated_file_is_detected(tmp_path):
    path = tmp_path / "d.h5"
    _write(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"d\.h5: not a readable HDF5 file, truncated or corrupt"):
        TrajectoryStore(path)


def test_corrupt_chunk_raises_instead_of_reading_silently(tmp_path):
    path = tmp_path / "d.h5"
    _write(path)
    with h5py.File(path, "r") as f:
        offset = f[TRAJECTORIES].id.get_chunk_info(3).byte_offset  # chunk of simulation 3 (val)
    with open(path, "r+b") as handle:
        handle.seek(offset + 100)
        handle.write(b"\xff\x00\xff\x00")
    store = TrajectoryStore(path)  # the structure is intact
    with pytest.raises(DataError, match="corrupt"):
        store.read_simulation("val", 0)
    with pytest.raises(DataError, match="corrupt"):
        store.verify()


def test_incomplete_and_wrong_version_are_refused(tmp_path):
    path = tmp_path / "d.h5"
    _write(path)
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = 0
    with pytest.raises(DataError, match="incomplete"):
        TrajectoryStore(path)
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = 1
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(DataError, match="format version"):
        TrajectoryStore(path)
    with pytest.raises(DataError, match="no such dataset file"):
        TrajectoryStore(tmp_path / "missing.h5")


def test_inconsistent_shapes_are_refused(tmp_path):
    path = tmp_path / "d.h5"
    _write(path)
    with h5py.File(path, "r+") as f:
        f.attrs["splits"] = '{"train": [0, 3], "val": [3, 4], "test": [4, 7]}'
    with pytest.raises(DataError, match="splits cover 7 simulations"):
        TrajectoryStore(path)
