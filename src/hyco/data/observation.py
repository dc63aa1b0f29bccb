"""What the models may see of the REAL data: a spatial mask, a temporal mask, per-field selection, noise.

HYCO exists for sparse, noisy observations, and this module is where the data become sparse and noisy:

- **Spatial masks** (the same for every frame, 1 = observed): ``full``; ``box`` (the cells whose centres
  lie in ``[box_lower, box_upper)``, fractions of the domain, one entry per axis, **x first** like the
  domain bounds); ``centre`` (a centred box covering ``centre_fraction`` of the domain's volume, the same
  fraction of cells along every axis); ``random_points`` (``point_fraction`` of the grid points, drawn once
  from ``observation.seed``).
- **Temporal masks** over the stored frames: ``all``; ``every_k`` (frames 0, k, 2k, ...); ``first_last``;
  ``frames`` (an explicit list).
- **Fields**: ``fields`` names the observed dynamic fields (default: all); the others are never observed.
- **Noise**: Gaussian, added to the dynamic channels with a standard deviation of ``noise_level`` (or the
  field's entry in ``noise_levels``) times the channel's standard deviation over the train split (stored in
  the dataset file), on every frame, frame 0 included. Static channels (known inputs such as a prescribed
  velocity) stay clean. The noise of a frame is drawn from a seed derived from (``observation.seed``,
  ``data.seed``, split, simulation), so it is the same in every epoch, in every window that contains the
  frame, and whether or not the simulation was evicted from a cache meanwhile.
- **Seeds**: the random masks and the noise are data, drawn under ``data.seed`` (read from the dataset file,
  which records it) with ``observation.seed`` as their own stream; the training ``seed`` never changes them.

**What is known of a state** (``states``). With ``initial`` (the default) frame 0 of every trajectory is
known as ``initial`` says and every later frame only where the masks say so: the unobserved values are
erased (set to 0) the moment a simulation is read, so no model, validator or statistic can read them. A
window starting at t > 0 then needs its input state completed from a model's prediction (see
hyco.data.completion). ``initial=full`` declares frame 0 known in full (with its noise; the HYCO paper's
setting); ``initial=observed`` knows it only where observed, like any frame, and fills its hidden part from
its observed values alone (``initial_fill``, hyco.data.inpaint), since no earlier frame exists to step from.
With ``states=full`` ("oracle states", for studies) every state is known in full and noisy, and only the
loss targets are masked. Generated (HYCO) data are complete fields either way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from hyco.config.schema import ObservationConfig
from hyco.errors import ConfigError
from hyco.utils.seed import seeded_generator

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
MASK_STREAM, NOISE_STREAM = 99, 7  # keys of hyco.utils.seed under observation.seed
PERTURBATION_STREAM = 31  # a second draw of the noise on top of the observed data (an ensemble member's)


def spatial_mask(config: ObservationConfig, spatial_shape: Sequence[int], data_seed: int = 0) -> torch.Tensor:
    """Float32 mask [1, *space] (1 = observed), space in tensor order (x last); random points are drawn under
    (`observation.seed`, `data_seed`). Point sensors observe no grid cell: their mask is 0."""
    shape = tuple(int(n) for n in spatial_shape)
    ndim = len(shape)
    if config.spatial == "sensors":
        return torch.zeros((1, *shape))
    if config.spatial == "full":
        return torch.ones((1, *shape))
    if config.spatial == "box":
        if len(config.box_lower) != ndim:
            raise ConfigError("observation.box_lower", f"{ndim} entries (one per spatial axis, x first)",
                              list(config.box_lower))
        mask = torch.ones(shape)
        # config is x first; tensor axes are (..., y, x)
        for axis, (lo, hi) in enumerate(zip(reversed(config.box_lower), reversed(config.box_upper))):
            n = shape[axis]
            centres = (torch.arange(n) + 0.5) / n
            inside = ((centres >= lo) & (centres < hi)).float()
            mask = mask * inside.reshape([n if a == axis else 1 for a in range(ndim)])
        if mask.sum() == 0:
            raise ConfigError("observation.box_lower", "a box containing at least one grid cell centre",
                              [list(config.box_lower), list(config.box_upper)])
        return mask[None]
    if config.spatial == "centre":
        side = config.centre_fraction ** (1.0 / ndim)
        mask = torch.zeros(shape)
        index = []
        for n in shape:
            k = min(n, max(1, round(n * side)))
            start = (n - k) // 2
            index.append(slice(start, start + k))
        mask[tuple(index)] = 1.0
        return mask[None]
    if config.spatial == "random_points":
        total = math.prod(shape)
        count = min(total, max(1, round(config.point_fraction * total)))
        chosen = torch.randperm(total, generator=seeded_generator(config.seed, MASK_STREAM, data_seed))[:count]
        mask = torch.zeros(total)
        mask[chosen] = 1.0
        return mask.reshape(1, *shape)
    raise ConfigError("observation.spatial", "one of full, box, centre, random_points", config.spatial)


def temporal_mask(config: ObservationConfig, num_frames: int) -> torch.Tensor:
    """Bool [T]: which stored frames are observed."""
    frames = torch.arange(num_frames)
    if config.temporal == "all":
        return torch.ones(num_frames, dtype=torch.bool)
    if config.temporal == "every_k":
        return frames % config.every_k == 0
    if config.temporal == "first_last":
        return (frames == 0) | (frames == num_frames - 1)
    if config.temporal == "frames":
        outside = [f for f in config.frames if f >= num_frames]
        if outside:
            raise ConfigError("observation.frames", f"frame indices < {num_frames} (the frames per trajectory)",
                              list(config.frames))
        return torch.isin(frames, torch.as_tensor(list(config.frames), dtype=torch.long))
    raise ConfigError("observation.temporal", "one of all, every_k, first_last, frames", config.temporal)


def observed_channels(config: ObservationConfig, field_specs: Sequence[dict]) -> torch.Tensor:
    """Bool [C]: the channels of the observed dynamic fields (``observation.fields``; empty = all dynamic)."""
    dynamic = [f["name"] for f in field_specs if f["dynamic"]]
    static = [f["name"] for f in field_specs if not f["dynamic"]]
    for name in config.fields:
        if name in static:
            raise ConfigError("observation.fields", f"dynamic fields ({', '.join(dynamic)}); {name!r} is a static "
                              "input, known in full", list(config.fields))
        if name not in dynamic:
            raise ConfigError("observation.fields", f"names of dynamic fields ({', '.join(dynamic)})",
                              list(config.fields))
    for name in config.noise_levels:
        if name not in dynamic:
            raise ConfigError(f"observation.noise_levels.{name}", f"a dynamic field ({', '.join(dynamic)})", name)
    chosen = set(config.fields) if config.fields else set(dynamic)
    return torch.tensor([f["dynamic"] and f["name"] in chosen for f in field_specs
                         for _ in range(int(f["channels"]))], dtype=torch.bool)


def check_observation(config: ObservationConfig, field_specs: Sequence[dict], spatial_shape: Sequence[int],
                      num_frames: int) -> None:
    """Refuse, in one line, an observation that leaves nothing to learn from: every observed field needs
    at least one observed value in frames 1..T-1 (frame 0 is an initial state, never a target); with
    `initial=observed` every dynamic field needs observed values in frame 0 to fill the rest from."""
    spatial = spatial_mask(config, spatial_shape)
    temporal = temporal_mask(config, num_frames)
    channels = observed_channels(config, field_specs)
    if config.states == "initial" and config.initial == "observed":
        start = 0
        for spec in field_specs:
            stop = start + int(spec["channels"])
            if spec["dynamic"] and not bool(channels[start:stop].all()):
                raise ConfigError("observation.initial", f"full when field {spec['name']!r} is not observed "
                                  "(observation.fields): its frame 0 would be unknown everywhere", config.initial)
            start = stop
    if num_frames > 1 and not bool(temporal[1:].any()):
        raise ConfigError("observation.temporal", "a temporal mask that observes at least one frame after frame 0 "
                          f"(the data have {num_frames} frames)", config.temporal)
    if not bool(spatial.any()) and config.spatial != "sensors":
        raise ConfigError("observation.spatial", "a mask that observes at least one grid point", config.spatial)


def _field_specs_of(num_channels: int, dynamic_channels: Sequence[int]) -> list[dict]:
    """One single-channel field per channel, named c0, c1, ... (when no field specs are given)."""
    dynamic = set(int(c) for c in dynamic_channels)
    return [{"name": f"c{c}", "channels": 1, "dynamic": c in dynamic} for c in range(num_channels)]


class Observation:
    """The observation operator of one dataset: per-frame masks, noise, and what is known of a state.

    - ``frame_masks`` ``[T, 1|C, *space]`` (float, 1 = observed): the values of each frame an observer sees;
      one channel when every dynamic channel is observed alike, else one per channel (static ones 0).
    - ``known`` ``[T, 1|C, *space]`` (bool) or None: what is known of each STATE; None when everything is
      (``states=full``). With ``states=initial``: frame 0 in full, later frames where observed, static
      channels always.
    """

    def __init__(self, config: ObservationConfig, spatial_shape: Sequence[int], num_frames: int,
                 channel_std: torch.Tensor, dynamic_channels: Sequence[int], field_specs: Sequence[dict] | None = None,
                 data_seed: int = 0, periodic: bool = False, sensor_table: dict | None = None):
        self.config = config
        self.data_seed = int(data_seed)
        self.periodic = bool(periodic)  # the domain wraps around (the frame-0 fill's stencil)
        num_channels = len(channel_std)
        specs = list(field_specs) if field_specs is not None else _field_specs_of(num_channels, dynamic_channels)
        self.spatial = spatial_mask(config, spatial_shape, self.data_seed)
        self.temporal = temporal_mask(config, num_frames)
        self.channels = observed_channels(config, specs)  # [C] bool
        self.dynamic = torch.as_tensor(list(dynamic_channels), dtype=torch.long)
        all_dynamic = bool(self.channels[self.dynamic].all())
        self.has_mask = config.spatial != "full" or config.temporal != "all" or not all_dynamic
        self.num_frames = int(num_frames)
        self._ndim = len(spatial_shape)
        shape_1 = [1] * self._ndim
        frames = self.temporal.to(torch.float32).reshape(-1, 1, *shape_1) * self.spatial  # [T, 1, *s]
        if all_dynamic:
            self.frame_masks = frames
        else:
            self.frame_masks = frames * self.channels.to(torch.float32).reshape(1, -1, *shape_1)
        self.sensors = config.spatial == "sensors"
        self.sensor_set = None
        if self.sensors:
            self._place_sensors(spatial_shape, sensor_table)
        self.known = None
        if config.states == "initial" and self.has_mask:
            static = torch.ones(num_channels, dtype=torch.bool)
            static[self.dynamic] = False
            known = torch.zeros_like(self.frame_masks, dtype=torch.bool) if self.sensors else self.frame_masks.bool()
            if bool(static.any()):  # static inputs are known in full: one mask per channel
                known = known.expand(-1, num_channels, *known.shape[2:]) | static.reshape(1, -1, *shape_1)
            known = known.clone()
            if config.initial == "full":
                known[0] = True
            elif self.sensors:  # frame 0 is known at the cells nearest to its sensors, from their readings
                known[0] |= self.frame_masks[0].bool()
            self.known = known
        sigma = torch.zeros(num_channels)
        start = 0
        std = channel_std.float()
        for spec in specs:
            stop = start + int(spec["channels"])
            if spec["dynamic"]:
                level = config.noise_levels.get(spec["name"], config.noise_level)
                sigma[start:stop] = level * std[start:stop]
            start = stop
        self.noise_std = sigma  # [C]
        # (seed, std [C]) of a second, independent noise draw added on top of the observation's own, or None: the
        # data an ensemble member fits (hyco.training.ensemble, randomised maximum likelihood)
        self.perturbation: tuple[int, torch.Tensor] | None = None

    def _place_sensors(self, spatial_shape: Sequence[int], table: dict | None) -> None:
        """The sensors (hyco.data.sensor_set); the frame masks become the cells nearest to them (the report's
        picture, HYCO's ghost points)."""
        from hyco.data.sensor_set import SensorSet

        if self.config.sensor_layout == "table" and table is None:
            raise ConfigError("observation.sensor_table", "readings of a dataset (an Observation made with "
                              "Observation.from_store reads the table)", self.config.sensor_table)
        self.sensor_set = SensorSet(self.config, spatial_shape, self.temporal, self.data_seed, self.periodic, table)
        self.frame_masks = self.sensor_set.frame_masks
        self.has_mask = True

    @property
    def sensor_positions(self) -> torch.Tensor:
        """`[T, K, d]` the sensors of the first training trajectory (fractions, x first): the report's tracks."""
        return self.sensor_set.positions("train", 0)

    def read_sensors(self, trajectory: torch.Tensor, split: str, index: int) -> None:
        """Record what the sensors read of simulation `index` (its clean `trajectory` [T, C, *space] sampled at
        them plus their noise, or a table's readings); nothing without sensors."""
        if self.sensors:
            self.sensor_set.read(trajectory, split, index, self.noise_std)

    def window_sensors(self, split: str, sims: torch.Tensor, starts: torch.Tensor, steps: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stencils `[B, R, K, P]` and readings `[B, R, C, K]` of the target frames of windows (`read_sensors`
        has run for their simulations: they are loaded)."""
        return self.sensor_set.windows(split, sims, starts, steps)

    @classmethod
    def from_store(cls, config: ObservationConfig, store) -> Observation:
        table = None
        if config.spatial == "sensors" and config.sensor_layout == "table":
            from hyco.data.sensor_table import read_sensor_table

            table = read_sensor_table(config.sensor_table, store)
        return cls(config, store.spatial_shape, store.num_frames, store.channel_std, store.dynamic_channels,
                   store.field_specs, data_seed=store.data_seed, periodic=store.periodic, sensor_table=table)

    @property
    def has_noise(self) -> bool:
        return bool(self.noise_std.gt(0).any())

    @property
    def hides_initial(self) -> bool:
        """Some value of frame 0 is unknown (`initial=observed` with a sparse frame 0): it is filled on load."""
        return self.known is not None and not bool(self.known[0].all())

    @property
    def hides_states(self) -> bool:
        """Some value of a state is unknown (inputs of later windows need completing; frame 0's is filled)."""
        return self.known is not None

    @property
    def spatial_fraction(self) -> float:
        return float(self.spatial.mean())

    @property
    def temporal_fraction(self) -> float:
        return float(self.temporal.float().mean())

    def window_masks(self, starts: torch.Tensor, steps: int) -> torch.Tensor:
        """Masks [B, R, 1|C, *space] of the target frames t+1..t+R of windows starting at `starts` [B].

        Read-only: when every frame is observed alike the result is a broadcast view (no copy per batch)."""
        if self.sensors:  # the grid is not observed: the sensors' readings are (`window_sensors`)
            return torch.zeros((1, 1, *self.spatial.shape)).expand(starts.shape[0], steps, *self.spatial.shape)
        if self.config.temporal == "all" and self.frame_masks.shape[1] == 1:
            return self.spatial.expand(starts.shape[0], steps, *self.spatial.shape)
        frames = starts[:, None] + 1 + torch.arange(steps)
        return self.frame_masks[frames]

    def add_noise_(self, trajectory: torch.Tensor, split: str, index: int) -> torch.Tensor:
        """Add this simulation's noise to `trajectory` [T, C, *space] in place (and return it); with a
        `perturbation`, also its second draw."""
        if self.has_noise:
            generator = seeded_generator(self.config.seed, NOISE_STREAM, self.data_seed, SPLIT_IDS[split], index)
            noise = torch.randn(trajectory.shape, generator=generator)
            scale = self.noise_std.reshape(1, -1, *([1] * self._ndim))
            trajectory += (noise * scale).to(trajectory.dtype)
        if self.perturbation is not None:
            seed, std = self.perturbation
            generator = seeded_generator(seed, PERTURBATION_STREAM, self.data_seed, SPLIT_IDS[split], index)
            noise = torch.randn(trajectory.shape, generator=generator)
            trajectory += (noise * std.float().reshape(1, -1, *([1] * self._ndim))).to(trajectory.dtype)
        return trajectory

    def hide_(self, trajectory: torch.Tensor) -> torch.Tensor:
        """Erase (set to 0) every value of `trajectory` [T, C, *space] that is not known, in place. NaN or
        inf in an unknown place are erased too: nothing of the hidden truth survives."""
        if self.known is not None:
            trajectory.masked_fill_(~self.known.expand_as(trajectory), 0.0)
        return trajectory

    def fill_initial_(self, trajectory: torch.Tensor, split: str = "train", index: int = 0) -> torch.Tensor:
        """Fill the hidden values of frame 0 of `trajectory` [T, C, *space] (already hidden) from its observed
        ones, in place (`initial_fill`, hyco.data.inpaint); nothing to do unless `initial=observed` hides some.
        With sensors the observed ones are the frame-0 readings (of simulation `index` of `split`), each put
        into its nearest cell (the mean of the sensors that share one)."""
        if self.hides_initial:
            from hyco.data.inpaint import fill_hidden

            if self.sensors:
                self.sensor_set.place_initial_readings(trajectory, split, index, self.dynamic)

            known = self.known[0]
            trajectory[0] = fill_hidden(trajectory[:1], known, self.config.initial_fill, self.periodic)[0]
        return trajectory

    def describe(self) -> str:
        where = (f"{self.sensor_set.count} sensors, layout {self.config.sensor_layout}" if self.sensors
                 else f"{self.spatial_fraction:.1%} of the grid")
        parts = [f"spatial={self.config.spatial} ({where})",
                 f"temporal={self.config.temporal} ({self.temporal_fraction:.1%} of the frames)"]
        if self.config.fields:
            parts.append(f"fields={','.join(self.config.fields)}")
        if self.has_noise:
            parts.append(f"noise={self.config.noise_level:g} x channel std"
                         + (f" ({self.config.noise_levels})" if self.config.noise_levels else ""))
        if self.hides_initial:
            parts.append(f"states: frame 0 only where observed (the rest filled: {self.config.initial_fill}), "
                         "later ones only where observed")
        elif self.hides_states:
            parts.append("states: frame 0 known, later ones only where observed")
        else:
            parts.append("states: known in full" + (" (oracle)" if self.has_mask else ""))
        return ", ".join(parts)
