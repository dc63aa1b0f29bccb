"""The report's opening paragraph (which model for which purpose, with the numbers behind it) and the list
of what the comparison was run on. Plain sentences, computed from metrics.json alone."""

from __future__ import annotations

from hyco.evaluation.figure_style import run_label
from hyco.evaluation.significance import MIN_SIMS, NOTHING, TOO_FEW, WIN, compare_best

_TWINS = (("hyco_physical", "physical", "solver"), ("hyco_synthetic", "synthetic", "network"))


def verdict(metrics: dict) -> str:
    """One paragraph: the best forecaster, the best estimate of each coefficient, what HYCO changed for each
    model against the same model trained alone, and what the training cost."""
    sentences = [_forecast(metrics), *_coefficients(metrics), _missing(metrics), _not_learned(metrics),
                 _coupling(metrics), _cost(metrics)]
    return " ".join(s for s in sentences if s)


def _per_sim(run: dict, key: str = "rel_l2") -> list | None:
    return run.get("rollout", {}).get("per_sim", {}).get(key)


def _forecast(metrics: dict) -> str:
    runs = metrics.get("runs", {})
    errors = {k: r["rollout"]["rel_l2"] for k, r in runs.items() if r.get("rollout", {}).get("rel_l2") is not None}
    if not errors:
        return "Every model diverged on the held-out simulations."
    best = min(errors, key=errors.get)
    horizon = metrics.get("num_steps", 0) * float(metrics.get("dt", 1.0))
    others = sorted((v, k) for k, v in errors.items() if k != best)
    n = metrics.get("num_sims")
    per_sim = {k: _per_sim(r) for k, r in runs.items()}
    result = compare_best(per_sim) if all(v is not None for v in per_sim.values()) and len(per_sim) > 1 else None
    # "best" only when the paired comparison says so; else the lowest error, and why it is not a ranking
    established = not others or (result is not None and result.verdict == WIN and result.best == best)
    text = (f"To forecast the state (up to t = {horizon:.3g}), {run_label(best)} "
            f"{'is best' if established else 'has the lowest error'}: relative L2 error {errors[best]:.3g}")
    vrmse = runs[best]["rollout"].get("vrmse")
    text += f" (VRMSE {vrmse:.3g})" if vrmse is not None else ""
    if others:
        text += f", next {run_label(others[0][1])} with {others[0][0]:.3g}"
    diverged = [run_label(k) for k in runs if k not in errors]
    if diverged:
        text += f"; {', '.join(diverged)} diverged"
    if n is not None and n < MIN_SIMS and others:
        text += f"; with {_sims(n)} the ranking is not established (a verdict needs {MIN_SIMS}), so no model is best"
    elif established and others:
        text += f"; the lead holds over the {result.num_sims} test simulations (paired 95 % interval)"
    elif result is not None and result.verdict not in (NOTHING, TOO_FEW):
        text += f"; over {_sims(result.num_sims)} the two are not told apart: a tie, no model is best"
    return text + "."


def _coefficients(metrics: dict) -> list[str]:
    runs = metrics.get("runs", {})
    floor = (metrics.get("model_floor") or {}).get("coefficients", {})
    out = []
    for name in metrics.get("true_coefficients", {}):
        entries = {k: r["coefficients"][name] for k, r in runs.items() if name in r.get("coefficients", {})}
        if not entries or any(e.get("known") for e in entries.values()):
            continue
        errors = {k: e["rel_error"] for k, e in entries.items() if e.get("rel_error") is not None}
        if not errors:
            continue
        best = min(errors, key=errors.get)
        text = (f"The coefficient {name} is closest to the truth with {run_label(best)}: relative error "
                f"{errors[best]:.3g}")
        others = [f"{run_label(k)} {v:.3g}" for k, v in errors.items() if k != best]
        text += f" (against {', '.join(others)})" if others else ""
        inside, outside = entries[best].get("rel_error_observed"), entries[best].get("rel_error_unobserved")
        if inside is not None and outside is not None:
            text += f"; {inside:.3g} inside the observed region and {outside:.3g} outside it"
        if name in floor and floor[name] is not None:
            ratio = errors[best] / floor[name] if floor[name] > 0 else float("inf")
            text += (f"; the model floor is {floor[name]:.3g}" +
                     (", so this is as close as the solver's discretisation allows" if ratio <= 1.5 else ""))
        out.append(text + ".")
    return out


def _missing(metrics: dict) -> str:
    """Only where the experiment declares physics the solver lacks (hyco.evaluation.missing_physics)."""
    return (metrics.get("missing_physics") or {}).get("sentence", "")


def _not_learned(metrics: dict) -> str:
    """A solver that ended worse than its initial guess on the observed data (hyco.training.hybrid)."""
    runs = metrics.get("runs", {})
    worse = [run_label(k) for k, r in runs.items() if r.get("worse_than_initial_guess")]
    untrained = [run_label(k) for k, r in runs.items() if r.get("trained") is False]
    sentences = []
    if worse:
        sentences.append(f"The coefficients of {', '.join(worse)} are not learned: its solver explains the observed "
                         "validation data worse than its initial guess did.")
    if untrained:
        sentences.append(f"The coefficients of {', '.join(untrained)} are not learned: its solver never trained "
                         "(its initial guess).")
    return " ".join(sentences)


def _coupling(metrics: dict) -> str:
    runs = metrics.get("runs", {})
    parts = []
    for hyco, alone, model in _TWINS:
        if hyco not in runs or alone not in runs:
            continue
        a, b = runs[alone]["rollout"].get("rel_l2"), runs[hyco]["rollout"].get("rel_l2")
        if a is None or b is None:
            continue
        change = (b - a) / a if a else 0.0
        part = f"the {model}'s rollout error from {a:.4g} to {b:.4g} ({change:+.1%}"
        pair = {alone: _per_sim(runs[alone]), hyco: _per_sim(runs[hyco])}
        if all(v is not None for v in pair.values()):
            result = compare_best(pair)
            part += {WIN: ", significant", TOO_FEW: f", untested with {_sims(result.num_sims)}"}.get(
                result.verdict, ", within the spread over the test simulations")
        parts.append(part + ")")
    return ("Against the same model trained alone, HYCO moves " + " and ".join(parts) + ".") if parts else ""


def _cost(metrics: dict) -> str:
    runs = metrics.get("runs", {})
    seconds = {k: r.get("train_seconds") for k, r in runs.items() if r.get("train_seconds") is not None}
    if not seconds:
        return ""
    shown = {run_label(k) if not k.startswith("hyco") else "HYCO (both models)": v for k, v in seconds.items()}
    return "Training took " + ", ".join(f"{v:.3g} s for {k}" for k, v in shown.items()) + "."


def _sims(n: int) -> str:
    return f"{n} test simulation{'' if n == 1 else 's'}"


def setting_lines(metrics: dict) -> list[str]:
    """What was compared on what: the held-out data, what the models saw, the judge, which coefficients were
    given or have no known truth, what simulated the data and the model floor there, how the network alone was
    matched to HYCO's, what the solver was fitted on, which saved state of each run is evaluated."""
    runs = metrics.get("runs", {})
    n = metrics.get("num_sims")
    lines = [f"Experiment {metrics.get('experiment')}: {_sims(n) if n is not None else 'test simulations'} "
             f"(held-out {metrics.get('split', 'test')} split) of {metrics.get('num_steps')} steps, "
             f"dt = {float(metrics.get('dt', 1.0)):.4g}."]
    observation = metrics.get("observation")
    if observation:
        lines.append(f"What the models saw: {observation['description']}.")
    if metrics.get("judge"):
        lines.append(f"Judge: {metrics['judge']}.")
    known = sorted({name for r in runs.values() for name, e in r.get("coefficients", {}).items() if e.get("known")})
    if known:
        lines.append(f"Known coefficients (given, never learned): {', '.join(known)}.")
    unknown = [n for n in metrics.get("unknown_coefficients", []) if n not in known]
    if unknown:
        lines.append("True value unknown (data made elsewhere; data.external.known_truth names those known): "
                     f"{', '.join(unknown)}.")
    if metrics.get("reference"):
        lines.append(f"Data simulated on: {metrics['reference']}.")
    floor = metrics.get("model_floor") or {}
    errors = [f"{name} {error:.3g}" for name, error in (floor.get("coefficients") or {}).items() if error is not None]
    if errors:
        lines.append(f"Model floor: {', '.join(errors)}, the solver's coefficient error on "
                     f"{floor.get('how') or 'full, noise-free data'}.")
    if "synthetic_matched" in runs and runs["synthetic_matched"].get("matched"):
        lines.append(f"{run_label('synthetic_matched')}: {runs['synthetic_matched']['matched']}.")
    elif "hyco_synthetic" in runs and "synthetic" in runs:
        lines.append("HYCO's network trained on (1 + alpha) x the samples of the network alone; "
                     "trainer.hybrid.matched_baseline=true adds a network alone with as many (docs/results.md).")
    fitted = [f"{run_label(k)}: {r['fitted_on']}" for k, r in runs.items() if r.get("fitted_on")]
    if fitted:
        lines.append("The solver's data term: " + "; ".join(fitted) + ".")
    selected = [f"{run_label(k)}: {r['selected']}" for k, r in runs.items() if r.get("selected")]
    if selected:
        lines.append("Evaluated states: " + "; ".join(selected) + ".")
    return lines
