"""The point sensors of one dataset's observation: where they are in each frame of each trajectory, their
interpolation stencils, and what they read — drawn from a layout (synthetic sensors on generated data) or read
from a table of measurements (hyco.data.sensor_table).

A layout puts the same sensors in every trajectory; their readings are the clean stored state sampled at them
plus the sensors' own noise (``observation.noise_level`` times the channel's std, drawn per trajectory under
(``observation.seed``, ``data.seed``, split, trajectory), a stream apart from the grid noise: never the training
seed). A table gives each trajectory its own positions and readings, taken as they are (they carry their noise).
Frames the temporal mask leaves out read nothing (weight 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hyco.data.sensors import SENSOR_NOISE_STREAM, check_inside, nearest_cells, sample, sensor_positions, stencils
from hyco.utils.seed import seeded_generator

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


class SensorSet:
    """Sensors, stencils and readings per trajectory (`table`: the readings of a sensor table, or None)."""

    def __init__(self, config, spatial_shape: Sequence[int], temporal: torch.Tensor, data_seed: int, periodic: bool,
                 table: dict | None = None):
        self.config, self.spatial_shape, self.periodic = config, tuple(spatial_shape), periodic
        self.data_seed = data_seed
        self.temporal = temporal.to(torch.float64)[:, None, None]
        self.table = table
        self._values: dict[tuple[str, int], torch.Tensor] = {}
        if table is None:
            self.shared_positions = sensor_positions(config, len(spatial_shape), len(temporal), data_seed)
            check_inside(self.shared_positions, periodic)
            self.shared_stencil = self._stencil(self.shared_positions)
            self.frame_masks = nearest_cells(*self.shared_stencil, spatial_shape)
        else:
            masks = [nearest_cells(*self._stencil(r.positions, r.present), spatial_shape) for r in table.values()]
            self.frame_masks = torch.stack(masks).amax(dim=0) if masks else \
                torch.zeros((len(temporal), 1, *spatial_shape))
            self._stencils = {key: self._stencil(r.positions, r.present) for key, r in table.items()}

    def _stencil(self, positions: torch.Tensor, present: torch.Tensor | None = None):
        index, weight = stencils(positions, self.spatial_shape, self.periodic)
        weight = weight * self.temporal
        if present is not None:
            weight = weight * present[..., None]
        return index, weight.float()

    @property
    def count(self) -> int:
        """Sensor slots per frame (K)."""
        return int(self.shared_stencil[0].shape[1]) if self.table is None else \
            max((int(r.present.shape[1]) for r in self.table.values()), default=0)

    def positions(self, split: str, sim: int) -> torch.Tensor:
        """`[T, K, d]` fractions of the domain, x first."""
        if self.table is None:
            return self.shared_positions
        readings = self.table.get((split, int(sim)))
        return readings.positions if readings is not None else torch.zeros((len(self.temporal), 0,
                                                                            len(self.spatial_shape)))

    def stencil(self, split: str, sim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`[T, K, P]` flat cell indices and weights (all 0 where no sensor reads)."""
        if self.table is None:
            return self.shared_stencil
        stencil = self._stencils.get((split, int(sim)))
        if stencil is None:
            return self._padded(torch.zeros((len(self.temporal), 0, 2 ** len(self.spatial_shape)), dtype=torch.long),
                                torch.zeros((len(self.temporal), 0, 2 ** len(self.spatial_shape))))
        return self._padded(*stencil)

    def _padded(self, index: torch.Tensor, weight: torch.Tensor):
        """A table's trajectory with fewer slots than the widest: silent slots added (weight 0)."""
        extra = self.count - index.shape[1]
        if extra <= 0:
            return index, weight
        return (torch.cat([index, index.new_zeros((index.shape[0], extra, index.shape[2]))], 1),
                torch.cat([weight, weight.new_zeros((weight.shape[0], extra, weight.shape[2]))], 1))

    def read(self, trajectory: torch.Tensor, split: str, sim: int, noise_std: torch.Tensor) -> None:
        """Record trajectory `sim`'s readings: the table's, or `trajectory` [T, C, *space] (clean) sampled at
        the sensors plus their noise (`noise_std` per channel)."""
        key = (split, int(sim))
        if self.table is not None:
            readings = self.table.get(key)
            values = readings.values if readings is not None else torch.zeros((trajectory.shape[0],
                                                                               trajectory.shape[1], 0))
            extra = self.count - values.shape[2]
            self._values[key] = torch.cat([values, values.new_zeros((*values.shape[:2], extra))], 2)
            return
        index, weight = self.shared_stencil
        values = sample(trajectory[None].double(), index[None], weight[None].double())[0]
        if bool(noise_std.gt(0).any()):
            generator = seeded_generator(self.config.seed, SENSOR_NOISE_STREAM, self.data_seed, SPLIT_IDS[split], sim)
            noise = torch.randn(values.shape, generator=generator, dtype=values.dtype)
            values = values + noise * noise_std.double()[:, None]
        self._values[key] = values.float()  # [T, C, K]

    def readings(self, split: str, sim: int) -> torch.Tensor:
        """`[T, C, K]` what the sensors read of trajectory `sim` (read first)."""
        return self._values[(split, int(sim))]

    def windows(self, split: str, sims: torch.Tensor, starts: torch.Tensor, steps: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stencils `[B, R, K, P]` and readings `[B, R, C, K]` of the target frames of windows."""
        frames = starts[:, None] + 1 + torch.arange(steps)
        rows = torch.arange(len(sims))[:, None]
        values = torch.stack([self.readings(split, s) for s in sims.tolist()])[rows, frames]
        if self.table is None:
            index, weight = self.shared_stencil
            return index[frames], weight[frames], values
        stencils_ = [self.stencil(split, s) for s in sims.tolist()]
        index = torch.stack([s[0] for s in stencils_])[rows, frames]
        weight = torch.stack([s[1] for s in stencils_])[rows, frames]
        return index, weight, values

    def place_initial_readings(self, trajectory: torch.Tensor, split: str, sim: int, dynamic: torch.Tensor) -> None:
        """Put frame 0's readings into their nearest cells of `trajectory` [T, C, *space] (the mean of the sensors
        that share one), in place: what `initial=observed` fills the rest of frame 0 from."""
        readings = self.readings(split, sim)[0]  # [C, K]
        index, weight = (t[0] for t in self.stencil(split, sim))
        nearest = index.gather(-1, weight.argmax(-1, keepdim=True)).squeeze(-1)  # [K]
        active = (weight.sum(-1) > 0).to(readings.dtype)
        frame = trajectory[0].reshape(trajectory.shape[1], -1)
        sums = torch.zeros_like(frame).index_add_(1, nearest, readings.to(frame.dtype) * active)
        counts = torch.zeros(frame.shape[1], dtype=frame.dtype).index_add_(0, nearest, active.to(frame.dtype))
        chosen = torch.zeros(frame.shape[0], dtype=torch.bool)
        chosen[dynamic] = True
        where = chosen[:, None] & (counts > 0)[None]
        frame[where] = (sums / counts.clamp_min(1.0))[where]
