"""Ranks in the default suite (issue 36, item 4): 2 gloo processes against 1, on the toy diffusion in float64.

Data parallelism must not change what is minimised: the physical objective over the same windows, and one
HYCO cycle, give the same numbers on 2 ranks as in 1 process (float64: only the order of additions differs).
The slow suite (test_torchrun.py) runs the `hyco` command the same way on PhiFlow models.
"""

import pytest
import torch
import torch.multiprocessing as mp

from tests.training import rank_worker


def _two_ranks(tmp_path, windows: int) -> list[dict]:
    mp.spawn(rank_worker.spawned, args=(2, str(tmp_path), windows), nprocs=2)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.fixture(scope="module")
def even(tmp_path_factory):
    """8 windows, 4 per rank."""
    tmp = tmp_path_factory.mktemp("ranks-even")
    return _two_ranks(tmp, 8), rank_worker.physical_objective(8), rank_worker.hyco_cycle(str(tmp / "one"))


def test_the_physical_objective_is_the_same_on_two_ranks(even):
    ranks, single, _ = even
    for rank in ranks:
        objective = rank["objective"]
        assert objective["windows"] == single["windows"] == 8
        for key in ("loss", "noise_floor", "kappa"):
            assert objective[key] == pytest.approx(single[key], rel=1e-9), key


def test_one_hyco_cycle_is_the_same_on_two_ranks(even):
    ranks, _, single = even
    for rank in ranks:
        cycle = rank["cycle"]
        for key in ("kappa", "physical_loss", "synthetic_loss", "physical_val_loss", "synthetic_val_loss"):
            assert cycle[key] == pytest.approx(single[key], rel=1e-9), key
        difference = max(float((cycle["weights"][k] - single["weights"][k]).abs().max()) for k in single["weights"])
        assert difference < 1e-12


def test_the_physical_objective_is_the_same_on_two_ranks_with_an_odd_number_of_windows(tmp_path):
    """9 windows: one rank holds 5, the other 4, and no window may count twice."""
    ranks = _two_ranks(tmp_path, 9)
    single = rank_worker.physical_objective(9)
    for rank in ranks:
        objective = rank["objective"]
        assert objective["windows"] == single["windows"] == 9
        for key in ("loss", "noise_floor", "kappa"):
            assert objective[key] == pytest.approx(single[key], rel=1e-9), key
