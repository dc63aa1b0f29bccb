"""One external file, opened read-only, in either layout (The Well or PDEBench): its trajectories, fields, grid
and time step, each problem a DataError naming the file."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hyco.data.external import pdebench, well
from hyco.data.external.layout import SourceField, first_line
from hyco.errors import DataError

WELL, PDEBENCH = "the_well", "pdebench"
UNIFORM_TOLERANCE = 1e-3  # relative spread of grid spacings still taken as a uniform grid (float32 coordinates)


class Source:
    """One external file, opened read-only: trajectories, fields, grid and time step, in either layout.

    Every problem (missing group or dataset, wrong rank or size) raises a DataError naming the file."""

    def __init__(self, path: str | Path, fmt: str = "auto"):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise self.error("no such file" if not self.path.exists() else "not a file")
        try:
            self._file = h5py.File(self.path, "r")
        except Exception as exc:  # OSError mostly; damaged superblocks raise others
            raise self.error(f"not a readable HDF5 file ({first_line(exc)})") from None
        self.fields: dict[str, SourceField] = {}
        self.unreadable: dict[str, str] = {}  # datasets that are not fields, and why (named if mapped)
        self.boundary: dict[str, str] = {}
        self.info: dict[str, Any] = {}
        try:
            self.format = _detect(self._file) if fmt == "auto" else fmt
            (well if self.format == WELL else pdebench).read(self, self._file)
        except DataError:
            self.close()
            raise
        except Exception as exc:  # a damaged object header or an attribute of an unexpected type
            self.close()
            raise self.error(f"unreadable {self.format if fmt != 'auto' else 'HDF5'} layout ({first_line(exc)})") \
                from None
        if not self.fields:
            self.close()
            why = "; ".join(f"{k}: {v}" for k, v in self.unreadable.items())
            raise self.error(f"no field readable in the {self.format} layout" + (f" ({why})" if why else ""))

    # ------------------------------------------------------------------ helpers
    def error(self, problem: str) -> DataError:
        return DataError(f"{self.path}: {problem}")

    def member(self, group: h5py.Group, name: str, kind: type, layout: str) -> Any:
        where = f"{group.name.strip('/')}/{name}".strip("/")
        if name not in group:
            what = "group" if kind is h5py.Group else "dataset"
            raise self.error(f"{what} '{where}' missing ({layout} layout)")
        obj = group[name]
        if not isinstance(obj, kind):
            raise self.error(f"'{where}' is not a {'group' if kind is h5py.Group else 'dataset'} ({layout} layout)")
        return obj

    def _spacing(self, coords: np.ndarray, what: str) -> float | None:
        """Grid spacing of uniform coordinates (None for a single point); refuses a non-uniform grid."""
        coords = np.asarray(coords, dtype=np.float64).reshape(-1)
        if coords.size < 2:
            return None
        steps = np.diff(coords)
        mean = float(steps.mean())
        if not np.isfinite(mean) or mean <= 0 or np.abs(steps - mean).max() > UNIFORM_TOLERANCE * abs(mean):
            raise self.error(f"{what} is not uniform and increasing (hyco's grids are uniform)")
        return mean

    def set_grid(self, resolution: Sequence[int], coordinates: Sequence[np.ndarray], names: Sequence[str],
                  times: np.ndarray | None, time_name: str) -> None:
        self.resolution = tuple(int(n) for n in resolution)
        self.ndim = len(self.resolution)
        if not 1 <= self.ndim <= 3:
            raise self.error(f"{self.ndim} spatial axes; hyco reads 1 to 3")
        spacings = [self._spacing(c, f"coordinate '{name}'") for c, name in zip(coordinates, names)]
        self.bounds = (tuple(n * s for n, s in zip(self.resolution, spacings))
                       if all(s is not None for s in spacings) else None)
        self.dt = self._spacing(times, f"'{time_name}'") if times is not None else None

    # ------------------------------------------------------------------ fields and reading
    def add(self, source_field: SourceField) -> None:
        self.fields[source_field.name] = source_field

    def field(self, name: str, key: str = "data.external.fields") -> SourceField:
        if name in self.fields:
            return self.fields[name]
        if name in self.unreadable:
            raise self.error(self.unreadable[name])
        raise self.error(f"{key}: no field '{name}' in the file (its fields: {', '.join(self.fields)})")

    def describe_fields(self) -> str:
        return ", ".join(f"{n}[{f.components}]" if f.components > 1 else n for n, f in self.fields.items())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _detect(f: h5py.File) -> str:
    return WELL if "dimensions" in f or any(g in f for g in well.WELL_FIELD_GROUPS) else PDEBENCH
