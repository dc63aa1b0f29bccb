"""The physics config of external data: the solver runs on the file's domain and time step (`frame_stride` times
the file's dt), with as many substeps as that time step needs for the explicit scheme's stability limit, and a
true value the config does not know (unknown, or held by a file field) is not checked against that limit."""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np

from hyco.config.schema import HycoConfig
from hyco.data.external.importer import split_files
from hyco.data.external.mapping import truth_sources
from hyco.data.external.reading import coefficient_truth
from hyco.data.external.source import Source
from hyco.errors import ConfigError

log = logging.getLogger(__name__)

MAX_SUBSTEPS_FACTOR = 4096  # beyond this many times the configured substeps the scheme is left as configured


def physics_config(cfg: HycoConfig) -> dict[str, Any]:
    """`cfg.physics` for `data.external`: the file's bounds and dt where the file has them and the config has the
    keys, the truth of a learned coefficient that is not known (not in `known_truth`) or that a file field holds
    set to its guess (the config's truth is not the data's: it is neither used nor checked), and the substeps
    raised to the fewest that keep every value the solver must represent inside the stability limit."""
    section = copy.deepcopy(dict(cfg.physics))
    ext = cfg.data.external
    if not ext.enabled:
        return section
    files = split_files(ext)
    path = (files.get("train") or next(iter(files.values())))[0]
    with Source(path, ext.format) as source:
        found = {"bounds": list(source.bounds) if source.bounds is not None else None,
                 "dt": source.dt * ext.frame_stride if source.dt is not None else None}
        from_file = _file_truths(cfg, section, source)
    for key, value in found.items():
        if value is None or key not in section:
            continue
        old = section[key]
        if not np.allclose(np.atleast_1d(np.asarray(old, dtype=float)), np.atleast_1d(value), rtol=1e-6, atol=0):
            log.info("physics.%s = %s from %s (the config said %s)", key, _short(value), path, _short(old))
        section[key] = value
    for name, params in _coefficients(section).items():
        unknown = params.get("learn", True) and name not in ext.known_truth
        if (unknown or name in from_file) and params.get("kind") != "parametric" and "guess" in params:
            params["truth"] = copy.deepcopy(params["guess"])
    return _stable_substeps(section, from_file, ext.frame_stride)


def _coefficients(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The coefficient sub-sections of a physics section (those with a truth and a guess)."""
    return {k: v for k, v in section.items() if isinstance(v, dict) and "truth" in v and "kind" in v}


def _file_truths(cfg: HycoConfig, section: dict[str, Any], source: Source) -> dict[str, float]:
    """The largest value of each coefficient whose truth a file field holds (`data.external.fields`), read from
    the first trajectory: the solver must represent it."""
    coefficients = _coefficients(section)
    out = {}
    frames = slice(cfg.data.external.start_frame, cfg.data.external.start_frame + 1)
    for name, channel in truth_sources(source, list(coefficients), [], cfg.data.external.fields).items():
        kind = "field" if coefficients[name].get("kind") != "scalar" else "scalar"
        out[name] = float(np.max(coefficient_truth(source, channel, [0], frames, kind, name)))
    return out


def _stability_problem(section: dict[str, Any], peaks: dict[str, float]) -> str | None:
    """Why the solver of `section` cannot run on these values (the stability limit), or None."""
    from hyco.physics import build_physics

    try:
        model = build_physics(section, "cpu")
    except ConfigError as error:
        return str(error) if "stability limit" in str(error) else None
    for spec in model.coefficient_specs:
        if spec.name in peaks and spec.upper is not None and peaks[spec.name] >= spec.upper:
            return (f"the file's {spec.name} reaches {peaks[spec.name]:.6g}, above the stability limit "
                    f"{spec.upper:.6g}")
    return None


def _stable_substeps(section: dict[str, Any], peaks: dict[str, float], stride: int) -> dict[str, Any]:
    """`section` with the fewest substeps from its own on that make `_stability_problem` None (unchanged when
    its own do, when it has no substeps, or when none up to MAX_SUBSTEPS_FACTOR times them do: the model's own
    error then names the limit)."""
    if "substeps" not in section:
        return section
    configured = int(section["substeps"])
    problem = _stability_problem(section, peaks)
    if problem is None:
        return section
    low, high = configured, configured * 2
    while _stability_problem({**section, "substeps": high}, peaks) is not None:
        low, high = high, high * 2
        if high > configured * MAX_SUBSTEPS_FACTOR:
            return section
    while high - low > 1:
        middle = (low + high) // 2
        if _stability_problem({**section, "substeps": middle}, peaks) is None:
            high = middle
        else:
            low = middle
    log.info("physics.substeps = %d (the config said %d): the data's time step %.6g%s needs at least %d solver "
             "steps per frame for the explicit scheme's stability limit (%s)", high, configured, section["dt"],
             f" ({stride} x the file's, data.external.frame_stride)" if stride > 1 else "", high, problem)
    return {**section, "substeps": high}


def _short(value: Any) -> str:
    values = np.atleast_1d(np.asarray(value, dtype=float)).tolist()
    text = ", ".join(f"{v:.6g}" for v in values)
    return f"[{text}]" if len(values) > 1 or isinstance(value, (list, tuple)) else text



