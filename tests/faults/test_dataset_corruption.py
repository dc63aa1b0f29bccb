"""Damage anywhere in a dataset file is detected and named: regenerated with a warning under
`data.regenerate=auto`, refused in one line under `never`. A byte flip that is not detected must leave
everything a reader can see (every attribute, every dataset's values, types, shapes, chunking, filters,
the list of objects) bit-identical: it hit bytes no read uses, such as the free space of HDF5's global
heap, which is where these files have unused bytes."""

from __future__ import annotations

import logging
import random
import struct

import h5py
import numpy as np
import pytest

from hyco.data.generate import ensure_dataset
from hyco.data.store import SPLITS, TrajectoryStore
from hyco.errors import DataError
from tests.data.conftest import make_config
from tests.data.fake_physics import FakeDiffusion


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A valid dataset file and its bytes."""
    path = ensure_dataset(make_config(), FakeDiffusion(), tmp_path_factory.mktemp("pristine"))
    return path, path.read_bytes()


def visible_content(path) -> dict:
    """Everything a reader of the file can observe through HDF5."""
    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visit(names.append)
        out: dict = {"objects": sorted(names)}
        for name, obj in [("", f), *((n, f[n]) for n in sorted(names))]:
            for attr in sorted(obj.attrs):
                value = obj.attrs[attr]
                out[f"attr {name}:{attr}"] = value if isinstance(value, (str, bytes)) else np.asarray(value).tobytes()
            if isinstance(obj, h5py.Dataset):
                out[f"data {name}"] = (obj.dtype.str, obj.shape, obj.chunks, obj.fletcher32, obj.compression,
                                       np.asarray(obj[()]).tobytes())
    return out


def read_everything(path) -> None:
    """What hyco does with a dataset: open (structure + checksums), verify every chunk, read every split."""
    with TrajectoryStore(path) as store:
        store.verify()
        for split in SPLITS:
            store.seeds(split)
            if store.num_sims(split):
                store.trajectories(split)
        store.true_coefficients  # noqa: B018


def global_heap_free_space(raw: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the free-space objects of HDF5 global heap collections (variable-length strings)."""
    ranges, position = [], 0
    while (position := raw.find(b"GCOL", position)) >= 0:
        size = struct.unpack_from("<Q", raw, position + 8)[0]
        end, cursor = position + size, position + 16
        while cursor + 16 <= end:
            index, _, _, object_size = struct.unpack_from("<HHIQ", raw, cursor)
            if index == 0:  # object 0 is the collection's free space
                ranges.append((cursor, end))
                break
            cursor += 16 + (object_size + 7) // 8 * 8
        position += 4
    return ranges


def flip_sweep(path, raw: bytes, offsets, work) -> dict[str, list[int]]:
    """Flip each offset (all 8 bits) in a copy; classify as detected, harmless or silent corruption."""
    reference = visible_content(path)
    outcome: dict[str, list[int]] = {"detected": [], "harmless": [], "silent": []}
    for offset in offsets:
        damaged = bytearray(raw)
        damaged[offset] ^= 0xFF
        work.write_bytes(bytes(damaged))
        try:
            read_everything(work)
        except DataError:
            outcome["detected"].append(offset)
            continue
        try:
            same = visible_content(work) == reference
        except Exception:  # noqa: BLE001 (unreadable through HDF5 yet not detected: counts as silent)
            same = False
        outcome["harmless" if same else "silent"].append(offset)
    return outcome


def test_byte_flips_at_60_offsets_are_detected_or_provably_harmless(pristine, tmp_path):
    path, raw = pristine
    offsets = sorted(random.Random(17).sample(range(len(raw)), 60))
    outcome = flip_sweep(path, raw, offsets, tmp_path / "damaged.h5")
    assert outcome["silent"] == []
    assert len(outcome["detected"]) >= 40, outcome
    # where the harmless ones landed: mostly the global heap's free space
    free = global_heap_free_space(raw)
    in_free = [o for o in outcome["harmless"] if any(lo <= o < hi for lo, hi in free)]
    assert len(in_free) >= len(outcome["harmless"]) // 2, (outcome["harmless"], free)


def test_superblock_flips_are_detected(pristine, tmp_path):
    path, raw = pristine
    outcome = flip_sweep(path, raw, range(0, 48), tmp_path / "damaged.h5")  # superblock v3: 48 bytes
    assert outcome["silent"] == [] and outcome["harmless"] == [], outcome


def _edit(pristine, tmp_path, edit):
    path, raw = pristine
    target = tmp_path / path.name
    target.write_bytes(raw)
    with h5py.File(target, "r+") as f:
        edit(f)
    return target


EDITS = {
    "flip inside seeds": (lambda f: f["seeds"].__setitem__(0, f["seeds"][0] ^ 1), "dataset 'seeds' changed"),
    "flip inside a coefficient": (lambda f: f["coefficients/nu"].__setitem__((), np.float32(0.011)),
                                  "dataset 'coefficients/nu' changed"),
    "seeds deleted": (lambda f: f.__delitem__("seeds"), "dataset 'seeds' missing"),
    "coefficient deleted": (lambda f: f.__delitem__("coefficients/nu"), "dataset 'coefficients/nu' missing"),
    "channel_std removed": (lambda f: f.attrs.__delitem__("channel_std"), "attribute 'channel_std' missing"),
    "dt changed": (lambda f: f.attrs.__setitem__("dt", 0.2), "attribute 'dt' changed"),
    "attribute added": (lambda f: f.attrs.__setitem__("extra", 1), "unexpected attribute 'extra'"),
    "checksums damaged": (lambda f: f.attrs.__setitem__("checksums", "{"), "attribute 'checksums' is damaged"),
    "fewer frames": (lambda f: _rewrite_trajectories(f, lambda a: a[:, :4]), "dataset 'trajectories' changed"),
    "smaller grid": (lambda f: _rewrite_trajectories(f, lambda a: a[..., :8]), "dataset 'trajectories' changed"),
}


def _rewrite_trajectories(f, cut):
    data = cut(f["trajectories"][()])
    del f["trajectories"]
    f.create_dataset("trajectories", data=data, chunks=(1, *data.shape[1:]), fletcher32=True)


@pytest.mark.parametrize("name", list(EDITS))
def test_each_kind_of_damage_is_named(name, pristine, tmp_path):
    edit, expected = EDITS[name]
    target = _edit(pristine, tmp_path, edit)
    with pytest.raises(DataError) as info:
        read_everything(target)
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


@pytest.mark.parametrize("name", ["flip inside seeds", "channel_std removed", "fewer frames"])
def test_auto_regenerates_with_a_warning_and_never_refuses_in_one_line(name, pristine, tmp_path, caplog):
    edit, expected = EDITS[name]
    target = _edit(pristine, tmp_path, edit)
    with pytest.raises(DataError) as info:
        ensure_dataset(make_config(regenerate="never"), FakeDiffusion(), tmp_path)
    assert str(info.value).startswith("data.regenerate=never: no usable dataset") and expected in str(info.value)
    with caplog.at_level(logging.WARNING, logger="hyco.data.generate"):
        assert ensure_dataset(make_config(), FakeDiffusion(), tmp_path) == target
    assert expected in caplog.text and "generating it anew" in caplog.text
    assert visible_content(target)["data trajectories"] == visible_content(pristine[0])["data trajectories"]


def test_directory_and_dangling_link_in_the_dataset_place(pristine, tmp_path):
    path, _ = pristine
    (tmp_path / path.name).mkdir()
    for mode in ("auto", "never"):
        with pytest.raises(DataError, match=r"a directory is in the dataset file's place; remove it"):
            ensure_dataset(make_config(regenerate=mode), FakeDiffusion(), tmp_path)
    (tmp_path / path.name).rmdir()
    (tmp_path / path.name).symlink_to(tmp_path / "gone.h5")
    other = tmp_path / "unit-fake_diffusion-000000000000.h5"  # a sibling that is a dangling link too
    other.symlink_to(tmp_path / "gone-too.h5")
    with pytest.raises(DataError, match=r"^data.regenerate=never: no usable dataset .* \(no dataset of experiment"):
        ensure_dataset(make_config(regenerate="never"), FakeDiffusion(), tmp_path)
    written = ensure_dataset(make_config(), FakeDiffusion(), tmp_path)
    assert written.is_file() and not written.is_symlink()
    read_everything(written)
