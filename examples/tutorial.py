# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # hyco in a notebook: a solver, a network, and both together
#
# This tutorial learns the diffusivity **field** κ(x) of a 2D heat equation, ∂T/∂t = ∇·(κ∇T), from
# observations of the centre quarter of the domain only. It trains three ways and compares them on held-out
# simulations:
#
# 1. **physical-only**: the differentiable PhiFlow solver's κ fitted to the observations;
# 2. **network-only** (synthetic): a UNet that predicts the next state, trained on the observations;
# 3. **HYCO**: both together, each also learning from the other's predictions where nothing is observed.
#
# It runs on the quick settings (`experiment=heat_2d_quick`: a 16² grid, a few simulations, tiny budgets) in
# about a minute on a laptop's CPU. For the real thing set `HYCO_TUTORIAL_EXPERIMENT=heat_2d`.
#
# This file is a [jupytext](https://jupytext.readthedocs.io) script: run it with `python
# examples/tutorial.py`, or open it as a notebook (`jupytext --to ipynb examples/tutorial.py`). Run it again
# as often as you like: the data are reused and every model is trained anew in the same run directory.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import hyco

EXPERIMENT = os.environ.get("HYCO_TUTORIAL_EXPERIMENT", "heat_2d_quick")
WORKDIR = Path(os.environ.get("HYCO_TUTORIAL_DIR", "hyco_tutorial"))

# %% [markdown]
# ## 1. Compose the experiment
#
# `hyco.compose` takes the same overrides as the command line (`hyco run experiment=... key=value`) and
# returns the validated, typed config. A wrong key or value raises `hyco.HycoError` with one line naming it.
# A `hyco.Run` is one run directory: every model trained below writes its checkpoints and logs there.
# `overwrite=True` lets a model be trained again there (re-running a cell starts it over); without it, hyco
# refuses to train on top of an earlier run and asks for `resume=True` or another `output_dir`.
#
# The tutorial gives the models the initial state of every trajectory in full (`observation.initial=full`,
# the HYCO paper's setting). The shipped experiment knows frame 0, too, only in the centre quarter
# (`observation.initial=observed`): from there no model can forecast the rest of the domain, and the comparison
# is the one in docs/results.md.

# %%
cfg = hyco.compose([f"experiment={EXPERIMENT}", "observation.initial=full", "evaluation.animation=false"],
                   output_dir=WORKDIR / "run", data_dir=WORKDIR / "data")
print(cfg.experiment_name, "| grid", cfg.physics["resolution"], "| observed:", cfg.observation.spatial)
run = hyco.Run(cfg, overwrite=True)

# %% [markdown]
# ## 2. Generate the data
#
# The solver simulates train, validation and test trajectories with the **true** κ (a background plus two
# gaussian bumps; `heat_2d` simulates them on a 2x finer grid and averages them onto the learning grid, so no
# model here can match them exactly) into one HDF5 file in `data_dir`; a second call, or another run with the
# same physics and data settings, reuses it. The models only ever see what the observation lets through: here
# the centre quarter of every frame, with 1 % noise.

# %%
dataset = run.generate()
store = run.experiment.store
print(dataset.name, {split: store.num_sims(split) for split in ("train", "val", "test")}, "simulations of",
      store.num_frames, "frames")

true_kappa = run.experiment.true_coefficients()["diffusivity"].cpu().numpy()
guess_kappa = run.experiment.physics.initial_guess()["diffusivity"].cpu().numpy()

# %% [markdown]
# ## 3. Train physical-only, network-only and HYCO
#
# Each call does what `hyco train mode=<mode>` does and returns the trainer's last metrics. The budgets are
# comparable: HYCO spends its cycles on the same numbers of solver and network epochs as the two alone.

# %%
physical = run.train("physical")
print("physical-only: κ relative error", round(physical["diffusivity_rel_error"], 4))

# %%
synthetic = run.train("synthetic")
print("network-only: validation loss", f"{synthetic['best_val_loss']:.3g}")

# %%
hybrid = run.train("hybrid")
print("HYCO: κ relative error", round(hybrid["diffusivity_rel_error"], 4),
      "| network validation loss", f"{hybrid['synthetic_val_loss']:.3g}")

# %% [markdown]
# ## 4. Compare on held-out simulations
#
# `evaluate` rolls every model out from frame 0 of each test simulation as the observer has it (here in full,
# with its 1 % noise) to its end, on its own, and compares with the hidden, noise-free truth. HYCO yields two
# models: its solver (`HYCO solver`) and its network (`HYCO network`). The first table is the rollout error, the
# second the learned κ.

# %%
metrics = run.evaluate()
run.table()  # a notebook shows an HTML table; print(run.table()) prints it as Markdown

# %%
errors = run.coefficient_errors()
for key, values in errors.items():
    print(f"{key:>14}: κ relative error {values['diffusivity']:.4f}")

# %% [markdown]
# ## 5. Plots
#
# Top: the learned κ next to the truth and the initial guess (the dashed square is the observed region).
# Bottom: the temperature at the end of a test rollout, each model on its own from the same initial state,
# and the error along the rollout.

# %%
LABELS = {"physical": "solver alone", "synthetic": "network alone", "hyco_physical": "HYCO solver",
          "hyco_synthetic": "HYCO network"}  # the report's names
rollouts = run.rollouts()
observed = rollouts["observed_space"].numpy()  # 1 where observed in some frame, per channel
observed = observed.reshape(-1, *observed.shape[-2:]).max(axis=0)
learned = {key: np.asarray(values["diffusivity"]) for key, values in metrics["learned_coefficients"].items()}
truth = rollouts["truth"].numpy()[:, 0]  # [T, *space]: the temperature of one test simulation
final = {key: prediction.numpy()[-1, 0] for key, prediction in rollouts["predictions"].items()}


def show(ax, image, title, vmin, vmax):
    """One field as an image, with the observed region outlined."""
    im = ax.imshow(image, origin="lower", vmin=vmin, vmax=vmax, cmap="viridis")
    ax.contour(observed, levels=[0.5], colors="white", linestyles="--", linewidths=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def rel_error(image, reference):
    return np.linalg.norm(image - reference) / np.linalg.norm(reference)


fig = plt.figure(figsize=(13, 5.4), layout="constrained")
top, bottom = fig.subfigures(2, 1)
axes = top.subplots(1, 4)
low, high = float(true_kappa.min()), float(true_kappa.max())
panels = {"true κ": true_kappa, "initial guess": guess_kappa, LABELS["physical"]: learned["physical"],
          LABELS["hyco_physical"]: learned["hyco_physical"]}
for ax, (title, image) in zip(axes, panels.items()):
    note = "" if image is true_kappa else f": error {rel_error(image, true_kappa):.3f}"
    im = show(ax, image, title + note, low, high)
top.colorbar(im, ax=axes, shrink=0.9, label="diffusivity κ")
top.suptitle("learned coefficient", fontsize=10)

axes = bottom.subplots(1, 6, width_ratios=[1, 1, 1, 1, 1, 1.7])
low, high = float(truth.min()), float(truth.max())
show(axes[0], truth[-1], "truth", low, high)
for ax, (key, image) in zip(axes[1:5], final.items()):
    show(ax, image, LABELS[key], low, high)
for key, entry in metrics["runs"].items():
    curve = [np.nan if v is None else v for v in entry["rollout"]["per_step"]["rel_l2"]]
    axes[5].plot(np.arange(1, len(curve) + 1), curve, label=LABELS[key])
axes[5].set(xlabel="rollout step", ylabel="relative L2 error", yscale="log")
axes[5].legend(fontsize=7)
bottom.suptitle(f"temperature after {truth.shape[0] - 1} steps of a held-out simulation", fontsize=10)
overview = WORKDIR / "overview.png"
fig.savefig(overview, dpi=72)
plt.show()
print("saved", overview)

# %% [markdown]
# ## 6. The full report
#
# `run.report()` (or `hyco report output_dir=...`) writes `report.html` and `report.md` with the tables,
# these comparisons and the training curves; `hyco.run([...])` does steps 2 to 6 in one call, as
# `hyco run` does. The API reference lists every method: see `docs/` (`make docs`).
