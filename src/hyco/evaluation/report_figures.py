"""Which figures the report shows, drawn from metrics.json, the kept rollouts and the training records.

Every input is plain data (dicts, numpy arrays); the task layer reads the files. Runs keep the keys of
metrics.json here and get their reader's names and styles in the figure modules.
"""

from __future__ import annotations

import inspect
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hyco.evaluation import plots
from hyco.evaluation.comparison import coefficient_interval, initial_error
from hyco.evaluation.figure_style import finite, new_figure
from hyco.evaluation.report import Figure
from hyco.evaluation.uncertainty_figures import field_uncertainty_figures, parameter_interval_figures

# the physical runs and where their per-epoch records are, relative to the run directory
PHYSICAL_RECORDS = {"physical": "physical", "hyco_physical": "hyco/physical"}


@dataclass
class Training:
    """What training left behind: per-epoch records (`<dir>/metrics.jsonl`) and summaries (`<dir>/summary.json`),
    keyed by the directory relative to the run directory: physical, synthetic, hyco, hyco/physical."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Rollouts:
    """One held-out simulation as evaluate kept it: truth `[T, C, *space]`, predictions per run `[T-1, C,
    *space]` (from frame 1), field specs, where each channel was observed `[1|C, *space]` and which frames."""

    sim: int
    truth: np.ndarray
    predictions: dict[str, np.ndarray]
    fields: list[dict[str, Any]]
    observed_space: np.ndarray | None = None
    observed_frames: np.ndarray | None = None
    domain: dict[str, list[float]] | None = None
    sensor_tracks: np.ndarray | None = None  # [T, K, d] point sensors' positions, fractions of the domain, x first


class Plan:
    """The figures to draw, each a call of a `plots` function known by the file it will write: planning
    them first lets the report draw them side by side in processes (they share nothing)."""

    def __init__(self):
        self.calls: list[partial] = []

    def draw(self, function, *args, **kwargs) -> Path:
        """Plan `function(*args, **kwargs)`; returns the path it will write."""
        self.calls.append(partial(function, *args, **kwargs))
        return Path(inspect.signature(function).bind(*args, **kwargs).arguments["path"])

    def run(self, workers: int = 1) -> None:
        """Draw every planned figure: serially, or in a pool of forked processes (Linux) when `workers` > 1."""
        workers = min(workers, len(self.calls))
        if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            for call in self.calls:
                call()
            return
        costly = sorted(self.calls, key=_cost, reverse=True)  # the longest first: the pool ends together
        _load_fonts()  # once, before the fork, instead of once in every drawing process
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for future in [pool.submit(call) for call in costly]:
                future.result()


def _load_fonts() -> None:
    figure = new_figure(1, 1, layout=None)
    figure.text(0.5, 0.5, "t = 0.1 −×⁻")
    figure.canvas.draw()


def _cost(call: partial) -> int:
    """A rough order of drawing cost: maps and the animation before curves."""
    name = call.func.__name__
    return 2 if name in ("animate", "plot_snapshots", "plot_error_maps") else 1 if "map" in name else 0


def field_quantity(frames: np.ndarray, fields: list[dict[str, Any]], name: str) -> np.ndarray:
    """One scalar per grid point of field `name` for the figures (its magnitude if a vector)."""
    start = 0
    for spec in fields:
        part = frames[:, start:start + spec["channels"]]
        if spec["name"] == name:
            return part[:, 0] if spec["channels"] == 1 else np.sqrt((part**2).sum(axis=1))
        start += spec["channels"]
    raise KeyError(name)


def _label(spec: dict[str, Any]) -> str:
    return spec["name"] if spec["channels"] == 1 else f"|{spec['name']}|"


def _extent(domain: dict | None) -> list[float] | None:
    """[x0, x1] or [x0, x1, y0, y1] in the domain's units (None: grid indices)."""
    if not domain:
        return None
    origin, bounds = domain["origin"], domain["bounds"]
    if len(bounds) > 2:
        return None  # 3D fields are not drawn as maps
    return [v for o, b in zip(origin, bounds) for v in (o, o + b)]


def _observed(rollouts: Rollouts, spec: dict[str, Any] | None = None) -> np.ndarray | None:
    """Where a field (None: any field) was observed in some frame, `[*space]` bool."""
    space = rollouts.observed_space
    if space is None:
        return None
    if space.shape[0] > 1 and spec is not None:
        start = 0
        for f in rollouts.fields:
            if f["name"] == spec["name"]:
                return space[start:start + f["channels"]].max(axis=0) > 0.5
            start += f["channels"]
    return space.max(axis=0) > 0.5


def _outline(mask: np.ndarray | None) -> str:
    if mask is None:
        return ""
    return "everywhere" if mask.all() else "drawn" if mask.any() else ""


def make_figures(metrics: dict[str, Any], rollouts: Rollouts, training: Training, figures_dir: Path,
                 plot_times: int = 4, animation: bool = True, workers: int = 1,
                 uncertainty: dict[str, Any] | None = None) -> list[Figure]:
    """Plan every figure of the report, then draw them, in `workers` processes where there are several.
    `uncertainty`: per physical run and field coefficient, its std and class maps (evaluation/uncertainty.pt)."""
    plan = Plan()
    figures = _plan_figures(plan, metrics, rollouts, training, Path(figures_dir), plot_times, animation,
                            uncertainty or {})
    plan.run(workers)
    return figures


def _plan_figures(plan, metrics, rollouts: Rollouts, training: Training, figures_dir: Path, plot_times: int,
                  animation: bool, uncertainty: dict[str, Any]) -> list[Figure]:
    dt = float(metrics.get("dt", 1.0))
    dynamic = [f for f in rollouts.fields if f["dynamic"]]
    extent = _extent(rollouts.domain or metrics.get("domain"))
    figures: list[Figure] = []
    if rollouts.observed_space is not None and rollouts.observed_frames is not None:
        figures.append(_observation_figure(plan, rollouts, metrics, figures_dir, extent, dt))
    figures += _error_curve_figures(plan, metrics, dynamic, figures_dir, dt)
    steps = rollouts.truth.shape[0] - 1
    maps = rollouts.truth.ndim <= 4  # [T, C, *space]: 1D and 2D fields are drawn as maps, 3D ones are not
    for spec in dynamic if maps else []:
        figures += _field_figures(plan, rollouts, spec, len(dynamic) > 1, figures_dir, extent, dt, steps, plot_times,
                                  start_state(metrics.get("observation") or {}))
    figures += _coefficient_figures(plan, metrics, training, rollouts, figures_dir, extent, uncertainty)
    cycles = _cycle_figure(plan, metrics, training, figures_dir)
    if cycles is not None:
        figures.append(cycles)
    curves = _training_figure(plan, training, figures_dir)
    if curves is not None:
        figures.append(curves)
    if animation and dynamic and maps:
        spec = dynamic[0]
        truth, shown = _shown(rollouts, spec)
        figures.append(Figure("Animation", plan.draw(plots.animate, truth, shown, figures_dir / "rollout.gif", dt=dt,
                                                         extent=extent, observed=_observed(rollouts, spec),
                                                         quantity=_label(spec)),
                              f"{_label(spec)} over the whole held-out trajectory, truth and every model.",
                              key="animation"))
    return figures


def _shown(rollouts: Rollouts, spec: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    truth = rollouts.truth
    shown = {key: field_quantity(np.concatenate([truth[:1], prediction], axis=0), rollouts.fields, spec["name"])
             for key, prediction in rollouts.predictions.items()}  # frame 0 is the shared start
    return field_quantity(truth, rollouts.fields, spec["name"]), shown


def start_state(observation: dict[str, Any]) -> str:
    """Where every judged rollout starts, in words: frame 0 as the observer has it (metrics.json's `observation`)."""
    noisy = bool(observation.get("noise_level") or any((observation.get("noise_levels") or {}).values()))
    if observation.get("states") == "initial" and observation.get("initial") == "observed":
        return f"frame 0 as observed ({'noisy, ' if noisy else ''}its hidden part filled from the observed values)"
    return "frame 0 as observed, in full" + (" and with its noise" if noisy else "")


def _field_figures(plan, rollouts, spec, several, figures_dir, extent, dt, steps, plot_times,
                   start: str) -> list[Figure]:
    name = spec["name"]
    suffix = f"_{name}" if several else ""
    truth, shown = _shown(rollouts, spec)
    observed = _observed(rollouts, spec)
    snapshot = plan.draw(plots.plot_snapshots, truth, shown, plots.snapshot_steps(steps, plot_times),
                                    figures_dir / f"snapshots{suffix}.png", dt=dt, extent=extent, observed=observed,
                                    quantity=_label(spec), title=f"{_label(spec)}, test simulation {rollouts.sim}")
    errors = plan.draw(plots.plot_error_maps, truth, shown, plots.snapshot_steps(steps, 3),
                                   figures_dir / f"error_maps{suffix}.png", dt=dt, extent=extent, observed=observed,
                                   quantity=_label(spec),
                                   title=f"prediction − truth of {_label(spec)}, test simulation {rollouts.sim}")
    outline = _outline(observed)
    where = {"drawn": " The black outline is the observed region: inside it the models were fitted, outside "
                      "they had to infer.", "everywhere": " Every grid point was observed."}.get(outline, "")
    one_d = truth.ndim == 2
    return [
        Figure("Truth and models on a held-out simulation" + (f": {name}" if several else ""), snapshot,
               f"{_label(spec)} at evenly spaced times; every model starts from the same state, {start}, and rolls "
               "out on its own (the first column shows the true frame 0). One colour scale, the truth's range "
               "(values beyond it saturate)."
               + (" Grey: the observed region." if one_d and outline == "drawn" else where),
               key="snapshots", outline=outline),
        Figure("Error maps" + (f": {name}" if several else ""), errors,
               ("Prediction − truth of every model over the whole rollout (time across, space up), each model on "
                "its own symmetric colour scale; dashed lines: the ends of the observed region."
                if one_d else "Prediction − truth of every model early, midway and at the end of the rollout, "
                "each row on its own symmetric colour scale (red: too high, blue: too low).")
               + ("" if one_d else where), key="error_maps", outline=outline),
    ]


def _error_curve_figures(plan, metrics, dynamic, figures_dir, dt) -> list[Figure]:
    runs = metrics["runs"]
    curves = {k: r["rollout"]["per_step"]["rel_l2"] for k, r in runs.items()}
    bands = {k: (q["q10"], q["q90"]) for k, r in runs.items()
             if (q := r["rollout"].get("per_step_quantiles", {}).get("rel_l2"))}
    medians = {k: r["rollout"]["per_step_quantiles"]["rel_l2"]["q50"] for k, r in runs.items()
               if "rel_l2" in r["rollout"].get("per_step_quantiles", {})}
    n = metrics.get("num_sims")
    spread = n is not None and n > 1 and len(medians) == len(curves)
    shown = medians if spread else curves
    curve_path = plan.draw(plots.plot_error_curves, shown, figures_dir / "rollout_error.png", dt=dt,
                           bands=bands if spread else None)
    figures = [Figure("Error over the rollout", curve_path,
                      "Relative L2 error of all dynamic fields against the full truth, per time t = step · dt. "
                      + (f"Line: the median over the {n} held-out simulations; band: 10–90 % of them."
                         if spread else f"Over {n} held-out simulation{'s' if n != 1 else ''} (no spread to show)."),
                      key="error_curves")]
    if len(dynamic) > 1:
        for spec in dynamic:
            name = spec["name"]
            per_field = {k: r.get("fields", {}).get(name, {}).get("per_step_rel_l2", []) for k, r in runs.items()}
            figures.append(Figure(f"Error over the rollout: {name}", plan.draw(plots.plot_error_curves,
                per_field, figures_dir / f"rollout_error_{name}.png", dt=dt),
                f"Relative L2 error of {name} alone, mean over the held-out simulations.", key="error_curves"))
    return figures


def _observation_figure(plan, rollouts: Rollouts, metrics, figures_dir, extent, dt) -> Figure:
    space = rollouts.observed_space  # [1|C, *space]
    names: list[str] = []
    if space.shape[0] > 1:  # one mask per channel: one panel per dynamic field
        panels, start = [], 0
        for spec in rollouts.fields:
            if spec["dynamic"]:
                panels.append(space[start:start + spec["channels"]].max(axis=0))
                names.append(spec["name"])
            start += spec["channels"]
        space = np.stack(panels)
    observation = metrics.get("observation", {})
    if observation.get("states") != "initial":
        states = "every input state is known in full (oracle states); only the targets are masked"
    elif observation.get("initial") == "observed":
        states = "every frame, frame 0 included, is known only where observed"
    else:
        states = "frame 0 of every trajectory is known in full; later frames only where observed"
    return Figure("What the models saw",
                  plan.draw(plots.plot_observation, space, rollouts.observed_frames, figures_dir / "observation.png",
                            names, extent=extent, dt=dt, tracks=rollouts.sensor_tracks),
                  ("Point sensors over the domain (their tracks, a dot where each starts; dark: the cells nearest to "
                   "them, where HYCO's partner is not heard) and the observed frames"
                   if rollouts.sensor_tracks is not None else "Observed grid points and frames") +
                  f" of the training and validation data of the training and validation data ({states}). "
                  f"{metrics.get('judge', '').capitalize()} is the judge of the comparison.", key="observation")


# ------------------------------------------------------------------------------------------------ coefficients
def _coefficient_figures(plan, metrics, training: Training, rollouts: Rollouts, figures_dir, extent,
                         uncertainty: dict[str, Any]) -> list[Figure]:
    runs = metrics["runs"]
    known = {n for r in runs.values() for n, e in r.get("coefficients", {}).items() if e.get("known")}
    floors = (metrics.get("model_floor") or {}).get("coefficients", {})
    learned_all = metrics.get("learned_coefficients", {})
    figures = []
    for name, true in metrics.get("true_coefficients", {}).items():
        if name in known:
            continue
        true = np.asarray(true, dtype=float)
        initial = metrics.get("initial_coefficients", {}).get(name)
        errors = {k: r["coefficients"][name].get("rel_error") for k, r in runs.items()
                  if name in r.get("coefficients", {})}
        if true.ndim == 0:
            figures += _scalar_figure(plan, name, float(true), initial, training, learned_all, runs, floors.get(name),
                                      figures_dir)
            continue
        figures += _parameter_figures(plan, runs, training, name, figures_dir)
        figures += parameter_interval_figures(plan, runs, name, figures_dir)
        learned = {k: np.broadcast_to(np.asarray(v[name], dtype=float), true.shape)
                   for k, v in learned_all.items() if name in v}
        if not learned or true.ndim > 2:
            continue
        guess = None if initial is None else np.broadcast_to(np.asarray(initial, dtype=float), true.shape)
        errors["initial guess"] = initial_error(initial, true)
        observed = _observed(rollouts)
        outline = _outline(observed)
        figures.append(Figure(f"Learned {name} against the truth", plan.draw(plots.plot_coefficient_maps,
            true, guess, learned, figures_dir / f"coefficient_{name}.png", name, extent=extent, observed=observed,
            errors=errors, floor=floors.get(name)),
            f"Top: the true {name}, the initial guess every run starts from, and each run's learned field, on one "
            f"colour scale (relative L2 error in the titles). Bottom: each one minus the truth, on one symmetric "
            "scale." + (" The black outline is the region where the state was observed: the data constrain "
                        f"{name} there; outside it only the dynamics do." if outline == "drawn" else "")
            + (" Grey: the observed region." if true.ndim == 1 and outline == "drawn" else ""),
            key="coefficient_maps", outline=outline))
        figures += field_uncertainty_figures(plan, runs, uncertainty, name, true, figures_dir, extent, observed)
    return figures


def _scalar_figure(plan, name, true, initial, training: Training, learned_all, runs, floor,
                   figures_dir) -> list[Figure]:
    start = None if initial is None else float(np.mean(initial))
    traces = {}
    for key, relative in PHYSICAL_RECORDS.items():
        values = [r[name] for r in training.records.get(relative, []) if name in r]
        if values:
            traces[key] = ([start] if start is not None else []) + values
    final = {k: float(np.mean(v[name])) for k, v in learned_all.items() if name in v}
    intervals = {k: b for k in final
                 if (b := coefficient_interval(runs.get(k, {}).get("coefficients", {}).get(name, {}), final[k]))}
    if not final and not traces:
        return []
    path = plan.draw(plots.plot_scalar_coefficient, name, true, figures_dir / f"coefficient_{name}.png", initial=start,
                                         traces=traces, final=final, intervals=intervals, floor=floor)
    return [Figure(f"Learned {name} against the truth", path,
                   (f"Left: {name} after each physical training epoch, from the initial guess (epoch 0). " if traces
                    else "") + "Right: the value each run ended with (the evaluated state) against the true value "
                   "(dashed)" + ("; bars: 95 % intervals" if intervals else "")
                   + ("; grey band: the model floor, the error the solver reaches from full, noise-free reference "
                      "data" if floor is not None else "") + ".", key="coefficient_values")]


def _parameter_figures(plan, runs, training: Training, name, figures_dir) -> list[Figure]:
    """A parametric coefficient: each learned number over the physical epochs, per run, against its true value."""
    truth = next((r["coefficients"][name].get("true_parameters") for r in runs.values()
                  if name in r.get("coefficients", {}) and r["coefficients"][name].get("true_parameters")), None)
    if not truth:
        return []
    traces: dict[str, dict[str, list[list[float]]]] = {}
    for key, relative in PHYSICAL_RECORDS.items():
        for group in truth:
            values = [r[f"{name}.{group}"] for r in training.records.get(relative, []) if f"{name}.{group}" in r]
            if values:
                traces.setdefault(group, {})[key] = values
    if not traces:
        return []
    return [Figure(f"Learned numbers of {name}", plan.draw(plots.plot_parameter_traces,
        traces, truth, figures_dir / f"parameters_{name}.png", name),
        f"The learned numbers of the parametric {name} after each physical epoch, per run (its dash), against their "
        "true values (dotted, the number's colour).", key="parameter_traces")]


# ------------------------------------------------------------------------------------------------ training
def _cycle_figure(plan, metrics, training: Training, figures_dir) -> Figure | None:
    records = training.records.get("hyco", [])
    if not records:
        return None
    series: dict[str, list] = {}
    known = {n for r in metrics["runs"].values() for n, e in r.get("coefficients", {}).items() if e.get("known")}
    for name in metrics.get("true_coefficients", {}):
        if name not in known and any(f"{name}_rel_error" in r for r in records):
            series[f"coefficient error: {name}"] = [r.get(f"{name}_rel_error") for r in records]
    for key, label in (("physical_loss", "solver: training"), ("synthetic_loss", "network: training"),
                       ("physical_val_loss", "solver: observed validation"),
                       ("synthetic_val_loss", "network: observed validation")):
        if any(key in r for r in records):
            series[f"losses: {label}"] = [r.get(key) for r in records]
    for model, label in (("physical", "solver listens to network"), ("synthetic", "network listens to solver")):
        if any(f"{model}_interaction_weight" in r for r in records):
            series[f"interaction weights: {label}"] = [r.get(f"{model}_interaction_weight") for r in records]
    best = training.summaries.get("hyco", {}).get("best_physical_cycle")
    return Figure("HYCO over its cycles", plan.draw(plots.plot_cycles, series, figures_dir / "cycles.png", best),
                  "Per cycle: the coefficient error against the truth (shown, never used in training); each model's "
                  "training loss and its error on the observed validation data, which it is judged and its saved "
                  "state chosen by; the interaction weights each model gave its partner. The dotted line marks the "
                  "cycle whose solver is evaluated (lowest observed validation error).", key="cycles")


_LOSSES = {"train_loss": "training loss", "loss": "training loss", "val_loss": "validation loss (observed values)"}


def _training_figure(plan, training: Training, figures_dir) -> Figure | None:
    panels: dict[str, dict[str, list]] = {}
    physical = training.records.get("physical", [])
    if physical:
        panels["solver alone"] = {"training loss": [r.get("loss") for r in physical],
                                  "validation loss (observed values)":
                                      training.summaries.get("physical", {}).get("val_losses", [])}
    synthetic = training.records.get("synthetic", [])
    if synthetic:
        panels["network alone"] = {label: [r.get(k) for r in synthetic if k in r] for k, label in _LOSSES.items()
                                   if any(k in r for r in synthetic)}
    panels = {t: {k: v for k, v in p.items() if np.isfinite(finite(v)).any()} for t, p in panels.items()}
    panels = {t: p for t, p in panels.items() if p}
    if not panels:
        return None
    return Figure("Training curves of the models alone", plan.draw(plots.plot_training_curves, panels,
                                                                    figures_dir / "training.png"),
                  "Per epoch: the loss each model minimised and its error on the observed values of the validation "
                  "simulations, the measure its saved state is chosen by (HYCO's are in the figure of its cycles). "
                  "The solver's and the network's losses are mean squares of the state but over different windows: "
                  "compare shapes, not levels, across panels.", key="training_curves")

