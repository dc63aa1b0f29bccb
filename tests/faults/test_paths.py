"""Directories a task writes are probed before any work: one line naming the key, exit 2.
A valid dataset in a read-only data directory is read without a lock."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from hyco.config.paths import check_task_paths
from hyco.config.validate import load
from hyco.data.generate import ensure_dataset
from hyco.data.store import TrajectoryStore
from hyco.errors import ConfigError, DataError
from hyco.utils.paths import write_problem
from tests.data.conftest import make_config
from tests.data.fake_physics import FakeDiffusion

from .conftest import QUICK, hyco, one_error_line


def test_write_problem_names_what_is_in_the_way(tmp_path, read_only):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    locked = tmp_path / "locked"
    (locked / "inside").mkdir(parents=True)
    view = read_only(locked)
    reason = "read-only file system" if os.geteuid() == 0 else "permission denied"
    assert write_problem(tmp_path) is None
    assert write_problem(tmp_path / "new" / "deeper") is None
    assert not (tmp_path / "new").exists()  # probing creates nothing
    assert write_problem(a_file) == f"{a_file} is a file, expected a directory"
    assert write_problem(a_file / "run") == f"cannot create {a_file / 'run'}: {a_file} is a file, not a directory"
    assert write_problem(dangling) == f"{dangling} is a dangling symbolic link (to {tmp_path / 'gone'})"
    assert write_problem(view) == f"{view} is not writable ({reason})"
    assert write_problem(view / "inside") == f"{view / 'inside'} is not writable ({reason})"
    assert write_problem(view / "new") == f"cannot create {view / 'new'}: {view} is not writable ({reason})"
    assert not list(tmp_path.glob("**/.hyco-probe-*"))


@pytest.mark.parametrize("task,mode,key", [("train", "hybrid", "output_dir"), ("generate", "hybrid", "data_dir"),
                                           ("train", "hybrid", "cache_dir"), ("run", "hybrid", "cache_dir")])
def test_each_key_a_task_writes_is_checked(tmp_path, fake_overrides, task, mode, key):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    dirs = {"output_dir": tmp_path / "out", "data_dir": tmp_path / "data", "cache_dir": tmp_path / "cache"}
    dirs[key] = a_file / "sub"
    cfg = load(task, fake_overrides + [f"mode={mode}"] + [f"{k}={v}" for k, v in dirs.items()])
    with pytest.raises(ConfigError) as info:
        check_task_paths(cfg)
    assert str(info.value) == f"{key}: cannot create {a_file / 'sub'}: {a_file} is a file, not a directory"


def test_keys_a_task_does_not_write_are_not_checked(tmp_path, fake_overrides):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    check_task_paths(load("train", fake_overrides + ["mode=physical", f"output_dir={tmp_path}/out",
                                                     f"data_dir={tmp_path}/data", f"cache_dir={a_file}"]))
    check_task_paths(load("report", fake_overrides + [f"output_dir={tmp_path}/out", f"data_dir={a_file}"]))


def test_read_only_data_dir_is_accepted_by_the_path_check(tmp_path, fake_overrides, read_only):
    (tmp_path / "data").mkdir()
    view = read_only(tmp_path / "data")
    check_task_paths(load("train", fake_overrides + [f"output_dir={tmp_path}/out", f"data_dir={view}"]))
    with pytest.raises(ConfigError, match=r"^output_dir: .* is not writable"):
        check_task_paths(load("train", fake_overrides + [f"output_dir={view}", f"data_dir={tmp_path}"]))


def test_cli_refuses_a_file_in_the_way_before_any_work(tmp_path):
    a_file = tmp_path / "taken"
    a_file.write_text("not a directory")
    result = hyco("train", *QUICK, f"output_dir={a_file}", f"data_dir={tmp_path}/data", cwd=tmp_path)
    assert one_error_line(result) == f"output_dir: {a_file} is a file, expected a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no data, no run directory


def test_dataset_in_a_read_only_directory_is_read_without_a_lock(tmp_path, read_only, caplog):
    model = FakeDiffusion()
    written = ensure_dataset(make_config(), model, tmp_path / "data")
    written.with_name(written.name + ".lock").unlink()
    expected = TrajectoryStore(written).trajectories("train").clone()
    view = read_only(tmp_path / "data")
    calls = model.rollout_calls
    with caplog.at_level(logging.INFO, logger="hyco.data.generate"):
        path = ensure_dataset(make_config(), model, view)
    assert path == view / written.name and model.rollout_calls == calls
    assert "read-only data_dir" in caplog.text
    assert sorted(p.name for p in view.iterdir()) == [written.name]  # no lock file, nothing else
    np.testing.assert_array_equal(TrajectoryStore(path).trajectories("train"), expected)
    # a dataset that would have to be written: one line naming data_dir; `never` keeps its own message
    with pytest.raises(DataError, match=r"^data_dir: .* is not writable .*, and dataset unit-.*\.h5 would have to "
                                        r"be written \(missing\); set data_dir to a writable directory$"):
        ensure_dataset(make_config(num_train=4), model, view)
    with pytest.raises(DataError, match=r"^data_dir: .*would have to be written \(data.regenerate=always\)"):
        ensure_dataset(make_config(regenerate="always"), model, view)
    with pytest.raises(DataError, match=r"^data.regenerate=never: no usable dataset .*differs in: data.num_train"):
        ensure_dataset(make_config(num_train=4, regenerate="never"), model, view)
