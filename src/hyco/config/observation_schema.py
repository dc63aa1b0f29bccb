"""Typed settings of `observation`: what part of the real data the trainers may see (masks, sensors, frames,
fields), how noisy it is and what of a state is known. Part of the schema (`hyco.config.schema`), declared with
`setting` like every key, so the configuration reference documents them."""

from __future__ import annotations

from dataclasses import dataclass

from hyco.config.fields import check_settings, setting
from hyco.errors import require

SPATIAL_MASKS = ("full", "box", "centre", "random_points", "sensors")
SENSOR_LAYOUTS = ("random", "grid", "random_per_frame", "circle", "given", "table")
TEMPORAL_MASKS = ("all", "every_k", "first_last", "frames")
STATES = ("initial", "full")
INITIAL = ("full", "observed")
INITIAL_FILLS = ("harmonic", "mean")


@dataclass
class ObservationConfig:
    """What part of the REAL data the trainers may see, and how noisy it is."""

    spatial: str = setting("full", "Where the data are observed: `full`; `box` (cells whose centres lie in "
                                   "[box_lower, box_upper)); `centre` (a centred box of `centre_fraction` of the "
                                   "domain); `random_points` (`point_fraction` of the grid points, the same in every "
                                   "frame); `sensors` (point sensors read by linear interpolation, `sensor_*` keys).",
                      choices=SPATIAL_MASKS)
    box_lower: list[float] = setting([0.25, 0.25], "spatial=box: the box's lower corner, fractions of the domain "
                                                   "per axis, x first.", allowed="fractions in [0, 1), below box_upper")
    box_upper: list[float] = setting([0.75, 0.75], "spatial=box: the box's upper corner (excluded), fractions of "
                                                   "the domain per axis, x first.",
                                     allowed="fractions in (0, 1], above box_lower")
    centre_fraction: float = setting(0.25, "spatial=centre: the observed fraction of the domain's volume.",
                                     above=0, at_most=1)
    point_fraction: float = setting(0.1, "spatial=random_points: the observed fraction of the grid points.",
                                    above=0, at_most=1)
    sensor_layout: str = setting("random", "spatial=sensors: where the sensors are: `random` (drawn once), `grid` "
                                           "(a regular lattice), `random_per_frame`, `circle` (moving along a circle), "
                                           "`given` (`sensor_positions`), `table` (`sensor_table`).",
                                 choices=SENSOR_LAYOUTS)
    sensor_count: int = setting(64, "spatial=sensors: the number of sensors (layout grid: the nearest k^d).",
                                at_least=1)
    sensor_positions: list[list[float]] = setting([], "sensor_layout=given: the sensor positions, fractions of the "
                                                      "domain per axis, x first.",
                                                  allowed="points with one fraction in [0, 1] per axis")
    sensor_table: str = setting("", "sensor_layout=table: a CSV file of readings (columns split, trajectory, t, x, "
                                    "y[, z] and one per dynamic channel; docs/guide/sensors.md).",
                                allowed="a path to a CSV file")
    sensor_centre: list[float] = setting([0.5, 0.5], "sensor_layout=circle: the circle's centre, fractions (x, y).",
                                         allowed="two fractions in [0, 1]")
    sensor_radius: float = setting(0.3, "sensor_layout=circle: the circle's radius, a fraction of the domain's side.",
                                   above=0, at_most=0.5)
    sensor_speed: float = setting(0.0, "sensor_layout=circle: the distance each sensor moves per stored frame, a "
                                       "fraction of the domain's side (0: fixed).", at_least=0)
    temporal: str = setting("all", "Which frames are observed: `all`; `every_k` (frames 0, k, 2k, ...); "
                                   "`first_last`; `frames` (the list `frames`).", choices=TEMPORAL_MASKS)
    every_k: int = setting(1, "temporal=every_k: the step between observed frames.", at_least=1)
    frames: list[int] = setting([], "temporal=frames: the observed frame indices.",
                                allowed="frame indices >= 0 (with states=initial: frame 0 among them)")
    noise_level: float = setting(0.0, "Gaussian noise on the observed dynamic channels, its std relative to each "
                                      "channel's std over the train split; the same for a frame in every epoch.",
                                 at_least=0)
    noise_levels: dict[str, float] = setting({}, "Per dynamic field, overrides `noise_level`.",
                                             allowed="numbers >= 0")
    fields: list[str] = setting([], "The observed dynamic fields; empty: all of them. The others are never "
                                    "observed.", allowed="distinct dynamic field names")
    states: str = setting("initial", "What is known of a state: `initial`: frame 0 as `initial` says, later frames "
                                     "only where observed (inputs of later windows are completed from a model's "
                                     "prediction); `full`: every state in full (\"oracle states\", for studies).",
                          choices=STATES)
    initial: str = setting("full", "What is known of frame 0 (`states=initial`): `full`: every value (the HYCO "
                                   "paper's setting); `observed`: only where the masks say, like any frame, its hidden "
                                   "part filled by `initial_fill` from the observed values.",
                           choices=INITIAL)
    initial_fill: str = setting("harmonic", "initial=observed: how frame 0's hidden part is filled: `harmonic` "
                                            "(smooth inpainting, Laplace's equation with the observed values as "
                                            "boundary) or `mean` (each channel's observed mean).",
                                choices=INITIAL_FILLS)
    seed: int = setting(1234, "Seed of the random points and of the noise, drawn under `data.seed` (vary it to "
                              "redraw them alone; apart from the training's `seed`).")

    def __post_init__(self) -> None:
        check_settings(self, "observation.")
        require(self.states == "initial" or self.initial == "full", "observation.initial",
                "full with observation.states=full (oracle states know every state in full, frame 0 included)",
                self.initial)
        if self.temporal == "frames":
            require(len(self.frames) > 0 and all(f >= 0 for f in self.frames), "observation.frames",
                    "a non-empty list of frame indices >= 0 (temporal=frames)", list(self.frames))
            require(self.states != "initial" or 0 in self.frames, "observation.frames",
                    f"a list that includes frame 0: observation.states=initial with initial={self.initial} needs "
                    "frame 0 observed" + (" (it is declared known in full)" if self.initial == "full"
                                          else " (its hidden part is filled from its observed values)"),
                    list(self.frames))
        require(len(set(self.fields)) == len(self.fields), "observation.fields", "distinct field names",
                list(self.fields))
        for name, level in self.noise_levels.items():
            require(level >= 0.0, f"observation.noise_levels.{name}", "a number >= 0", level)
        if self.spatial == "sensors":
            self._check_sensors()
        require(len(self.box_lower) == len(self.box_upper), "observation.box_upper",
                f"as many entries as observation.box_lower ({len(self.box_lower)})", list(self.box_upper))
        for i, (lo, hi) in enumerate(zip(self.box_lower, self.box_upper)):
            require(0.0 <= lo < hi <= 1.0, f"observation.box_lower[{i}]",
                    "fractions with 0 <= lower < upper <= 1", [lo, hi])


    def _check_sensors(self) -> None:
        require(not self.fields, "observation.fields", "empty with spatial=sensors (sensors read every dynamic field)",
                list(self.fields))
        if self.sensor_layout == "given":
            require(len(self.sensor_positions) > 0, "observation.sensor_positions",
                    "a non-empty list of points (sensor_layout=given)", list(self.sensor_positions))
            for i, point in enumerate(self.sensor_positions):
                require(len(point) > 0 and all(0.0 <= float(c) <= 1.0 for c in point),
                        f"observation.sensor_positions[{i}]", "fractions in [0, 1], one per axis (x first)",
                        list(point))
        if self.sensor_layout == "table":
            require(bool(self.sensor_table), "observation.sensor_table", "the path of a CSV file of readings "
                    "(sensor_layout=table)", self.sensor_table)
        if self.sensor_layout == "circle":
            require(len(self.sensor_centre) == 2 and all(0.0 <= float(c) <= 1.0 for c in self.sensor_centre),
                    "observation.sensor_centre", "two fractions in [0, 1] (x, y)", list(self.sensor_centre))
