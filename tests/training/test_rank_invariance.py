"""Data parallelism does not change the physical objective: 1, 2 and 3 ranks (gloo processes) minimise the same
sum over the same windows, on a case whose 7 windows do not divide among the ranks.

Bounds: in float64 the loss, its gradient and its noise floor at fixed coefficients agree within 1e-12 relative
(only the order of the sums over windows differs) and the coefficient after two epochs of L-BFGS-B within 1e-9;
in float32 the loss agrees within 1e-6 relative (float32 round-off of a sum over 7 x 2 x 16 values)."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from . import rank_objective


def ranks(world: int, tmp_path, dtype: torch.dtype, batch_windows: int = 0) -> list[dict]:
    """Every rank's figures of a run with `world` processes."""
    mp.spawn(rank_objective.rank_main, args=(world, str(tmp_path), dtype, batch_windows), nprocs=world)
    return [torch.load(tmp_path / f"world{world}-rank{r}.pt", weights_only=False) for r in range(world)]


def relative(a: float | torch.Tensor, b: float | torch.Tensor) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def assert_same_objective(single: dict, parallel: list[dict], loss_bound: float, coefficient_bound: float) -> None:
    worst = {key: max(relative(r[key], single[key]) for r in parallel) for key in ("loss", "gradient", "noise_floor")}
    worst["coefficients"] = max(relative(r["coefficients"][n], v) for r in parallel
                                for n, v in single["coefficients"].items())
    print(f"{len(parallel)} ranks against 1, largest relative differences: "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    for rank in parallel:
        assert rank["windows"] == single["windows"]  # every window once: none padded, none dropped
        assert relative(rank["loss"], single["loss"]) <= loss_bound
        assert relative(rank["gradient"], single["gradient"]) <= loss_bound * 10
        assert relative(rank["noise_floor"], single["noise_floor"]) <= loss_bound * 10
        assert relative(rank["round_off"], single["round_off"]) <= loss_bound
        assert len(rank["losses"]) == len(single["losses"])
        for name, value in single["coefficients"].items():
            assert relative(rank["coefficients"][name], value) <= coefficient_bound, name
    # every rank holds the same coefficients after each epoch (checked by the trainer) and reports the same loss
    assert len({r["losses"][-1] for r in parallel}) == 1


@pytest.mark.slow
def test_one_two_and_three_ranks_minimise_the_same_objective_in_float64(tmp_path):
    single = rank_objective.figures(1, torch.float64)
    assert single["windows"] == [rank_objective.WINDOWS] * len(single["windows"])
    for world in (2, 3):
        parallel = ranks(world, tmp_path, torch.float64)
        assert_same_objective(single, parallel, loss_bound=1e-12, coefficient_bound=1e-9)
    print(f"float64: loss {single['loss']:.6e}, viscosity {float(single['coefficients']['viscosity']):.12g}")


@pytest.mark.slow
def test_a_window_budget_smaller_than_the_data_takes_the_same_windows_on_any_number_of_ranks(tmp_path):
    single = rank_objective.figures(1, torch.float64, batch_windows=5)
    assert single["windows"][0] == 5
    assert_same_objective(single, ranks(3, tmp_path, torch.float64, batch_windows=5), 1e-12, 1e-9)


def test_two_ranks_give_the_float32_objective_of_one_process(tmp_path):
    """The fast check of the default suite: 2 gloo ranks, float32, an uneven last batch."""
    single = rank_objective.figures(1, torch.float32)
    parallel = ranks(2, tmp_path, torch.float32)
    assert_same_objective(single, parallel, loss_bound=1e-6, coefficient_bound=1e-5)


@pytest.mark.slow
def test_three_ranks_train_the_network_like_one_process_with_an_empty_part_in_the_last_batch(tmp_path):
    """10 windows in global batches of 4: the last batch of 2 leaves rank 2 without a window. DDP averages the
    gradients of the same global batches (each term normalised by its count over all ranks), so the weights
    agree to float32 round-off of the reductions; the epoch's loss is the mean over the same 10 windows."""
    from . import ddp_worker

    single = ddp_worker.train(tmp_path / "single")
    mp.spawn(rank_objective.synthetic_rank_main, args=(3, str(tmp_path)), nprocs=3)
    parallel = [torch.load(tmp_path / f"synthetic-world3-rank{r}.pt", weights_only=False) for r in range(3)]
    difference = max(relative(parallel[0]["weights"][k], v) for k, v in single["weights"].items())
    print(f"3 ranks against 1: weights within {difference:.1e} relative, loss {parallel[0]['loss']:.8g} against "
          f"{single['loss']:.8g}")
    assert difference <= 1e-5
    for rank in parallel:
        assert rank["samples"] == single["samples"] == 10 and rank["steps"] == single["steps"] == 3 * 3
        assert rank["loss"] == pytest.approx(single["loss"], rel=1e-6)
        assert all(torch.equal(rank["weights"][k], parallel[0]["weights"][k]) for k in rank["weights"])
    seen = sorted(i for rank in parallel for i in rank["seen"])
    assert seen == sorted(single["seen"])  # every window once per epoch, none repeated to even the shards out
