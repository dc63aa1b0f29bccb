"""The coefficient floor of each time step (`physics.time_step`) on heat data from an independent library, and its
cost, against explicit Euler (issue 37).

Data: periodic 2D diffusion simulated by py-pde (adaptive DOP853, rtol 1e-10) from hyco's own random initial
states, full and noise-free. Floor: the diffusivity that fits those data best (one-frame windows, least squares,
solved to 1e-12 by a bounded scalar search, float64) -- no trainer, no network: what the solver itself can reach --
as its relative error against the truth py-pde was given. Cost: one objective and its gradient (forward and
backward through the rollout of every window, float32 as training runs), timed round-robin against Euler at the
configured substeps, one thread. Acceptance (issue 37): some scheme at <= 1.5 x Euler's cost with a floor <= 1/4
of Euler's.

    OMP_NUM_THREADS=1 PYTHONPATH=src python -m benchmarks.time_step_floor [--quick]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks import common
from benchmarks.pypde_reference import simulate_heat

TRUTH, RESOLUTION, DT = 0.025, 32, 0.01
EULER_SUBSTEPS = 4  # heat_2d's configured substeps: the cost every case is compared with
CASES = (("euler", 4), ("euler", 8), ("euler", 16), ("heun", 2), ("heun", 4), ("ssprk3", 2), ("rk4", 1),
         ("rk4", 2))
REFERENCE = f"euler x{EULER_SUBSTEPS}"


def _model(time_step: str, substeps: int, dtype: torch.dtype):
    from hyco.physics import build_physics

    constant = {"type": "constant", "value": TRUTH}
    return build_physics({"name": "heat", "resolution": [RESOLUTION, RESOLUTION], "dt": DT, "substeps": substeps,
                          "time_step": time_step, "init_modes": 4,
                          "diffusivity": {"kind": "scalar", "truth": constant, "guess": constant}}, "cpu", dtype)


def reference_data(samples: int, frames: int) -> torch.Tensor:
    """[samples, frames, 1, y, x] float64 from py-pde, started from hyco's heat initial states (seed 0)."""
    initial = _model("euler", EULER_SUBSTEPS, torch.float64).initial_state(samples, seed=0)[:, 0].numpy()
    return torch.from_numpy(simulate_heat(initial, TRUTH, (1.0, 1.0), DT, frames)).unsqueeze(2)


def windows(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(states, next frames) of every one-frame window."""
    return data[:, :-1].flatten(0, 1), data[:, 1:].flatten(0, 1)


def floor(model, states: torch.Tensor, targets: torch.Tensor, truth: float = TRUTH) -> dict:
    """The best-fitting scalar diffusivity of `model` for one-frame windows (`states` [W, 1, y, x], `targets` the
    frames after them) and its relative error against `truth` (bounded scalar search, float64)."""
    from scipy.optimize import minimize_scalar

    upper = float(model.coefficient_specs[0].upper)

    def loss(kappa: float) -> float:
        with torch.no_grad():
            out = model.rollout(states, {"diffusivity": torch.tensor(kappa, dtype=torch.float64)}, 1)[:, 0]
        return float((out - targets).square().mean())

    found = minimize_scalar(loss, bounds=(0.5 * truth, min(1.5 * truth, 0.999 * upper)), method="bounded",
                            options={"xatol": 1e-12 * truth})
    return {"diffusivity": float(found.x), "rel_error": abs(float(found.x) - truth) / truth, "loss": float(found.fun)}


GRAY_SCOTT = {"D_u": 0.2, "D_v": 0.08, "f": 0.018, "k": 0.051}  # gray_scott_paper_quick's truth and grid
GRAY_SCOTT_CASES = (("euler", 100), ("euler", 200), ("heun", 50), ("ssprk3", 50), ("rk4", 50))


def gray_scott_floors(samples: int, frames: int) -> list[dict]:
    """D_u and D_v fitted together (Nelder-Mead, float64) to py-pde's Gray-Scott on gray_scott_paper_quick's grid
    (32² on 50², dt 50), for each time step; Euler x100 is that experiment's. Floors only (h < 1.5 holds for every
    scheme, so RK4 cannot take fewer substeps here than 34)."""
    from scipy.optimize import minimize

    from hyco.physics import build_physics

    def model(time_step: str, substeps: int):
        return build_physics({"name": "gray_scott", "resolution": [32, 32], "bounds": [50.0, 50.0], "dt": 50.0,
                              "substeps": substeps, "time_step": time_step}, "cpu", torch.float64)

    from benchmarks.pypde_reference import simulate_gray_scott

    initial = model("euler", 100).initial_state(samples, seed=0).numpy()
    states, targets = windows(torch.from_numpy(simulate_gray_scott(initial, GRAY_SCOTT, (50.0, 50.0), 50.0, frames)))
    rows = []
    for time_step, substeps in GRAY_SCOTT_CASES:
        gs = model(time_step, substeps)
        known = gs.true_coefficients()

        def loss(x, gs=gs, known=known) -> float:
            coefficients = {**known, "D_u": torch.tensor(x[0], dtype=torch.float64),
                            "D_v": torch.tensor(x[1], dtype=torch.float64)}
            with torch.no_grad():
                return float((gs.rollout(states, coefficients, 1)[:, 0] - targets).square().mean())

        found = minimize(loss, [0.98 * GRAY_SCOTT["D_u"], 0.98 * GRAY_SCOTT["D_v"]], method="Nelder-Mead",
                         options={"xatol": 1e-9, "fatol": 1e-20, "maxiter": 400})
        rows.append({"case": f"{time_step} x{substeps}", "time_step": time_step, "substeps": substeps,
                     "rate_evaluations": substeps * {"euler": 1, "heun": 2, "ssprk3": 3, "rk4": 4}[time_step],
                     "D_u_rel_error": abs(found.x[0] - GRAY_SCOTT["D_u"]) / GRAY_SCOTT["D_u"],
                     "D_v_rel_error": abs(found.x[1] - GRAY_SCOTT["D_v"]) / GRAY_SCOTT["D_v"]})
    return rows


BURGERS = {"viscosity": 0.005, "resolution": 64, "dt": 0.01, "refine": 8}  # burgers_1d's truth and grid
BURGERS_CASES = (("euler", 2), ("euler", 8), ("heun", 2), ("ssprk3", 1), ("rk4", 1))


def burgers_floors(samples: int, frames: int, repeats: int) -> list[dict]:
    """The viscosity that fits py-pde's 1D Burgers best (one-frame windows, float64), for each time step on
    burgers_1d's grid: py-pde runs on an 8x finer grid and its cells are averaged onto the learner's, so the floor
    holds the spatial error too. Euler x2 is burgers_1d's (semi-Lagrangian); the Runge–Kutta schemes integrate the
    method of lines (central advection). Cost: a gradient of the loss, interleaved, against Euler x2."""
    from scipy.optimize import minimize_scalar

    from benchmarks.pypde_reference import simulate_burgers_1d
    from hyco.physics import build_physics

    nu, n, refine = BURGERS["viscosity"], BURGERS["resolution"], BURGERS["refine"]

    def model(time_step: str, substeps: int, cells: int, dtype=torch.float64):
        constant = {"type": "constant", "value": nu}
        return build_physics({"name": "burgers", "resolution": [cells], "bounds": [1.0], "dt": BURGERS["dt"],
                              "substeps": substeps, "time_step": time_step,
                              "viscosity": {"kind": "scalar", "truth": constant, "guess": constant}}, "cpu", dtype)

    initial = model("euler", 2 * refine**2, n * refine).initial_state(samples, seed=0)[:, 0].numpy()
    fine = simulate_burgers_1d(initial, nu, 1.0, BURGERS["dt"], frames)
    data = torch.from_numpy(fine).reshape(samples, frames, n, refine).mean(-1).unsqueeze(2)
    states, targets = windows(data)
    rows, timed = [], {}
    for time_step, substeps in BURGERS_CASES:
        solver = model(time_step, substeps, n)

        def loss(value: float, solver=solver) -> float:
            with torch.no_grad():
                out = solver.rollout(states, {"viscosity": torch.tensor(value, dtype=torch.float64)}, 1)[:, 0]
            return float((out - targets).square().mean())

        upper = float(solver.coefficient_specs[0].upper)
        found = minimize_scalar(loss, bounds=(1e-3 * nu, min(4 * nu, 0.999 * upper)), method="bounded",
                                options={"xatol": 1e-10})
        name = f"{time_step} x{substeps}"
        rows.append({"case": name, "viscosity": float(found.x), "rel_error": abs(float(found.x) - nu) / nu,
                     "rmse": float(found.fun) ** 0.5})
        fast = model(time_step, substeps, n, torch.float32)

        def gradient(fast=fast):
            def run() -> None:
                value = torch.tensor(0.9 * nu, requires_grad=True)
                out = fast.rollout(states.float(), {"viscosity": value}, 1)[:, 0]
                (out - targets.float()).square().mean().backward()
            return common.seconds(run)

        timed[name] = gradient()
    timing = common.interleaved(timed, repeats=repeats, warmup=2, reference="euler x2")
    euler = rows[0]["rel_error"]
    for row in rows:
        row["cost_ratio"] = timing["ratio"][row["case"]]
        row["floor_ratio"] = row["rel_error"] / euler
    return rows


def _gradient_case(model, states: torch.Tensor, targets: torch.Tensor):
    def run() -> None:
        kappa = torch.tensor(0.9 * TRUTH, requires_grad=True)
        loss = (model.rollout(states, {"diffusivity": kappa}, 1)[:, 0] - targets).square().mean()
        loss.backward()

    return common.seconds(run)


def run(quick: bool = False) -> dict:
    samples, frames, repeats = (4, 6, 3) if quick else (8, 21, 7)
    data = reference_data(samples, frames)
    states, targets = windows(data)
    rows, timed = [], {}
    for time_step, substeps in CASES:
        name = f"{time_step} x{substeps}"
        row = {"case": name, "time_step": time_step, "substeps": substeps,
               **floor(_model(time_step, substeps, torch.float64), states, targets)}
        rows.append(row)
        timed[name] = _gradient_case(_model(time_step, substeps, torch.float32), states.float(), targets.float())
    timing = common.interleaved(timed, repeats=repeats, warmup=2, reference=REFERENCE)
    euler = next(r for r in rows if r["case"] == REFERENCE)
    for row in rows:
        row["seconds"] = timing["cases"][row["case"]]["median"]
        row["cost_ratio"] = timing["ratio"][row["case"]]
        row["floor_ratio"] = row["rel_error"] / euler["rel_error"]
    return {"truth": TRUTH, "resolution": RESOLUTION, "dt": DT, "samples": samples, "frames": frames,
            "windows": int(states.shape[0]), "reference": "py-pde DiffusionPDE, scipy DOP853, rtol 1e-10",
            "rows": rows, "timing": timing,
            "gray_scott": gray_scott_floors(*((1, 3) if quick else (2, 7))),
            "burgers": burgers_floors(*((2, 4, 3) if quick else (4, 10, 7)))}


def figures(result: dict) -> list[dict]:
    out = []
    for row in result["rows"]:
        out.append(common.figure(f"time step {row['case']}: floor ÷ euler x{EULER_SUBSTEPS}'s", row["floor_ratio"],
                                 note=f"floor {row['rel_error']:.3g}, cost {row['cost_ratio']:.2f} x"))
    affordable = [r for r in result["rows"] if r["time_step"] != "euler" and r["cost_ratio"] <= 1.5]
    best = min(affordable, key=lambda r: r["floor_ratio"], default=None)
    out.append(common.figure("best higher-order floor ÷ euler's at <= 1.5 x its cost",
                             best["floor_ratio"] if best else None, 0.25, higher_is_better=False,
                             note=best["case"] if best else "no case within 1.5 x"))
    cheap = [r for r in result.get("burgers", []) if r["case"] != "euler x2" and r["cost_ratio"] <= 1.5]
    best = min(cheap, key=lambda r: r["floor_ratio"], default=None)
    out.append(common.figure("burgers 1D: best floor ÷ euler x2's (semi-Lagrangian) at <= 1.5 x its cost",
                             best["floor_ratio"] if best else None, 0.25, higher_is_better=False,
                             note=f"{best['case']}: {best['rel_error']:.3g} against "
                             f"{result['burgers'][0]['rel_error']:.3g}" if best else "no case within 1.5 x"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = run(quick=args.quick)
    print(f"{'case':<12} {'floor':>10} {'÷ euler':>8} {'cost ÷ euler':>13} {'seconds':>9}")
    for row in result["rows"]:
        print(f"{row['case']:<12} {row['rel_error']:>10.3g} {row['floor_ratio']:>8.3g} {row['cost_ratio']:>13.2f} "
              f"{row['seconds']:>9.4f}")
    print("gray_scott (D_u, D_v fitted together; rate evaluations per frame):")
    for row in result["gray_scott"]:
        print(f"  {row['case']:<12} D_u {row['D_u_rel_error']:>10.3g}  D_v {row['D_v_rel_error']:>10.3g}  "
              f"{row['rate_evaluations']:>4}")
    print(f"burgers 1D, {BURGERS['resolution']} cells, nu {BURGERS['viscosity']} (py-pde on {BURGERS['refine']}x "
          "finer, cell-averaged):")
    for row in result["burgers"]:
        print(f"  {row['case']:<12} floor {row['rel_error']:>8.3g}  ÷ euler {row['floor_ratio']:>6.3g}  "
              f"cost ÷ euler {row['cost_ratio']:>5.2f}")
    for fig in figures(result):
        print(f"{fig['name']}: {common.format_value(fig['value'])} {common.target_text(fig)} [{fig['status']}] "
              f"{fig['note']}")
    print(common.write_json("time_step_floor", {**result, "figures": figures(result)}))


if __name__ == "__main__":
    main()
