"""Measurements from a table: point sensors' readings as rows of a CSV file, read with pandas.

One row per reading: ``split`` (optional: train, val or test; default train), ``trajectory`` (the simulation's
index in its split of the gridded dataset, which gives the initial states, the domain and the frames), ``t`` (a
time on the dataset's frames, t = frame * dt), ``x``, ``y`` [, ``z``] (domain coordinates, the physics' origin
and bounds), and one column per dynamic channel: the field's name for a one-channel field, ``<name>_<i>`` for
channel i of a vector field. Every problem of a file is reported, one line each, naming the file and the row (as
a spreadsheet numbers it: the header is row 1): a position outside the domain, a time outside the run or between
frames, a column the model does not have, a missing or non-numeric value, a trajectory the split lacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hyco.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")
AXES = ("x", "y", "z")
MAX_LISTED = 20  # problems listed in the error (the count of the rest is given)
_ON_FRAME = 1e-6  # a time this close (in frames) to a frame is on it


@dataclass
class Readings:
    """One trajectory's readings: positions `[T, K, d]` (fractions, x first), values `[T, C, K]`, and which of
    the K slots of each frame hold a reading `[T, K]`."""

    positions: torch.Tensor
    values: torch.Tensor
    present: torch.Tensor


def channel_columns(field_specs) -> list[tuple[str, int]]:
    """The column of every dynamic channel and the channel's index."""
    out, channel = [], 0
    for spec in field_specs:
        count = int(spec["channels"])
        if spec["dynamic"]:
            names = [spec["name"]] if count == 1 else [f"{spec['name']}_{i}" for i in range(count)]
            out += [(name, channel + i) for i, name in enumerate(names)]
        channel += count
    return out


def domain_of(store) -> tuple[list[float], list[float]]:
    """(origin, bounds) of the store's domain, per axis x first."""
    bounds = list(store.bounds)
    origin = (store.attrs.get("physics") or {}).get("origin") or [0.0] * len(bounds)
    return [float(o) for o in origin], bounds


def read_sensor_table(path: str | Path, store) -> dict[tuple[str, int], Readings]:
    """Every trajectory's readings from the table at `path`, checked against `store` (the gridded dataset)."""
    try:
        import pandas as pd
    except ModuleNotFoundError:
        raise ConfigError("observation.sensor_table", "pandas installed to read it (pip install 'hyco[sensors]')",
                          str(path)) from None

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such sensor table (observation.sensor_table)")
    try:
        table = pd.read_csv(path)
    except Exception as error:  # noqa: BLE001 - any parser failure is the file's fault: one line naming it
        raise DataError(f"{path}: not a readable CSV table: {error}") from None
    ndim = len(store.spatial_shape)
    axes = list(AXES[:ndim])
    channels = channel_columns(store.field_specs)
    known = {"split", "trajectory", "t", *axes, *(name for name, _ in channels)}
    problems = [f"{path}: column {c!r}: not a column of a sensor table of this model (expected split, trajectory, "
                f"t, {', '.join(axes)}, {', '.join(n for n, _ in channels)})" for c in table.columns if c not in known]
    problems += [f"{path}: column {c!r} is missing" for c in ["trajectory", "t", *axes, *(n for n, _ in channels)]
                 if c not in table.columns]
    if problems:
        raise DataError(_listed(problems))
    numeric = table[["trajectory", "t", *axes, *(n for n, _ in channels)]].apply(pd.to_numeric, errors="coerce")
    splits = table["split"].astype(str) if "split" in table.columns else pd.Series(["train"] * len(table))
    origin, bounds = domain_of(store)
    frames_total, dt = store.num_frames, store.dt
    for row in range(len(table)):
        line = f"{path}: row {row + 2}"
        bad = [c for c in numeric.columns if not math.isfinite(float(numeric.iat[row, numeric.columns.get_loc(c)]))]
        if bad:
            got = ", ".join(str(table.iloc[row][c]) for c in bad)
            problems.append(f"{line}: {', '.join(bad)}: expected a number, got {got}")
            continue
        split = splits.iat[row]
        if split not in SPLITS:
            problems.append(f"{line}: split {split!r}: expected one of {', '.join(SPLITS)}")
            continue
        sim = float(numeric.at[row, "trajectory"])
        if not sim.is_integer() or not 0 <= sim < store.num_sims(split):
            count = store.num_sims(split)
            problems.append(f"{line}: trajectory {sim:g}: the {split} split has trajectories 0..{count - 1}")
        t = float(numeric.at[row, "t"])
        frame = t / dt
        if not -_ON_FRAME <= frame <= frames_total - 1 + _ON_FRAME:
            problems.append(f"{line}: t = {t:g} is outside the run (0 to {(frames_total - 1) * dt:g})")
        elif abs(frame - round(frame)) > _ON_FRAME:
            problems.append(f"{line}: t = {t:g} lies between the frames (every {dt:g}); readings between frames are "
                            "not supported: give them at a frame's time")
        for axis, (o, b) in zip(axes, zip(origin, bounds)):
            value = float(numeric.at[row, axis])
            if not o <= value <= o + b:
                problems.append(f"{line}: {axis} = {value:g} is outside the domain [{o:g}, {o + b:g}]")
    if problems:
        raise DataError(_listed(problems))
    return _group(numeric, splits, axes, channels, origin, bounds, store)


def _group(numeric, splits, axes, channels, origin, bounds, store) -> dict[tuple[str, int], Readings]:
    """The rows per trajectory, each frame's readings in K slots (K: the most readings of any frame there)."""
    frames = np.rint(numeric["t"].to_numpy() / store.dt).astype(int)
    out: dict[tuple[str, int], Readings] = {}
    keys = list(zip(splits.tolist(), numeric["trajectory"].astype(int).tolist()))
    for key in dict.fromkeys(keys):
        rows = np.flatnonzero([k == key for k in keys])
        its_frames = frames[rows]
        slots = max(int(np.bincount(its_frames).max()), 1)
        positions = torch.zeros((store.num_frames, slots, len(axes)), dtype=torch.float64)
        values = torch.zeros((store.num_frames, store.num_channels, slots), dtype=torch.float32)
        present = torch.zeros((store.num_frames, slots), dtype=torch.bool)
        used = np.zeros(store.num_frames, dtype=int)
        for row, frame in zip(rows, its_frames):
            slot = used[frame]
            used[frame] += 1
            for axis, name in enumerate(axes):
                positions[frame, slot, axis] = (float(numeric.at[row, name]) - origin[axis]) / bounds[axis]
            for name, channel in channels:
                values[frame, channel, slot] = float(numeric.at[row, name])
            present[frame, slot] = True
        out[key] = Readings(positions, values, present)
    return out


def write_sensor_table(path: str | Path, observation, store) -> Path:
    """Write what `observation`'s sensors read of every trajectory of `store` (their readings of the clean
    states plus their noise, as training sees them) as a sensor table; returns its path."""
    import pandas as pd

    origin, bounds = domain_of(store)
    axes = AXES[:len(store.spatial_shape)]
    channels = channel_columns(store.field_specs)
    columns: dict[str, list] = {"split": [], "trajectory": [], "t": [], **{a: [] for a in axes},
                                **{n: [] for n, _ in channels}}
    for split in SPLITS:
        for sim in range(store.num_sims(split)):
            sensors = observation.sensor_set
            observation.read_sensors(torch.from_numpy(store.read_simulation(split, sim)), split, sim)
            values = sensors.readings(split, sim)  # [T, C, K]
            _, weight = sensors.stencil(split, sim)
            positions = sensors.positions(split, sim)
            for frame, slot in (weight.sum(-1) > 0).nonzero().tolist():
                columns["split"].append(split)
                columns["trajectory"].append(sim)
                columns["t"].append(repr(frame * store.dt))
                for axis, name in enumerate(axes):
                    columns[name].append(repr(origin[axis] + float(positions[frame, slot, axis]) * bounds[axis]))
                for name, channel in channels:
                    columns[name].append(repr(float(values[frame, channel, slot])))
    path = Path(path)
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def _listed(problems: list[str]) -> str:
    shown = problems[:MAX_LISTED]
    more = len(problems) - len(shown)
    return "\n".join(shown + ([f"... and {more} more problems"] if more else []))
