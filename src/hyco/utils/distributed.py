"""The one place that knows whether this process is one of several (`torchrun`), and the only module that
imports `torch.distributed`.

- `process_group`: under torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT in the environment) the
  process group is initialised once, gloo on CPU and NCCL on CUDA, and destroyed on the way out, also
  when the task fails;
- `process_info`: rank, world size and local rank; only the main rank (0) writes files and shows progress;
- `rank_parts`: a rank's part of each global batch of an epoch (dealt round robin, nothing padded or dropped);
- reductions (`all_reduce_sum`, `sum_over_ranks`, `grad_share`, `broadcast_object`, `gather_objects`).

Every helper is a no-op in a single process, so trainers call them unconditionally.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hyco.errors import ConfigError, DataError
from hyco.utils.launch_env import env_int, launched

BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class ProcessInfo:
    rank: int
    world_size: int
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes files, logs metrics and shows progress bars."""
        return self.rank == 0

    @property
    def initialised(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    @property
    def parallel(self) -> bool:
        """Several ranks share the work through an initialised process group."""
        return self.initialised and self.world_size > 1


_alone = False  # set by `main_rank_alone`


def process_info() -> ProcessInfo:
    """Rank and world size: from the initialised process group, else torchrun's environment."""
    local = env_int("LOCAL_RANK", 0)
    if _alone:
        return ProcessInfo(0, 1, local)
    if dist.is_available() and dist.is_initialized():
        return ProcessInfo(dist.get_rank(), dist.get_world_size(), local)
    return ProcessInfo(env_int("RANK", 0), env_int("WORLD_SIZE", 1), local)


def choose_backend(requested: str, device: torch.device) -> str:
    """gloo for CPU, NCCL for CUDA (`auto`); NCCL without a CUDA device is refused in one line."""
    if requested not in BACKENDS:
        raise ConfigError("dist_backend", f"one of {', '.join(BACKENDS)}", requested)
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if requested == "nccl" and device.type != "cuda":
        raise ConfigError("dist_backend", "gloo on a CPU device (NCCL needs CUDA: set device=cuda on a machine with "
                          "GPUs, or dist_backend=gloo)", requested)
    return requested


@contextlib.contextmanager
def process_group(backend: str, device: torch.device) -> Iterator[ProcessInfo]:
    """Initialise the process group when torchrun started several ranks (else nothing), and tear it down
    on the way out, also when the task raised."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield process_info()
        return
    name = choose_backend(backend, device)
    kwargs: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        kwargs["device_id"] = device
    dist.init_process_group(name, init_method="env://", **kwargs)
    try:
        yield process_info()
        # every rank is past its last collective before any tears the group down: no rank destroys it while
        # another still uses it (suspected in one CI run where a rank aborted at exit, not reproduced since)
        dist.barrier()
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def main_rank_alone() -> Iterator[None]:
    """Rank 0 works as a single process (no sharding, no collectives) while the other ranks have finished:
    evaluation and reports, which read everything and write once."""
    global _alone
    before, _alone = _alone, True
    try:
        yield
    finally:
        _alone = before


def rank_device(device: torch.device) -> torch.device:
    """Under torchrun a plain `cuda` means this rank's GPU, `cuda:LOCAL_RANK`."""
    if device.type != "cuda" or not launched():
        return device
    local = env_int("LOCAL_RANK", 0)
    if local >= torch.cuda.device_count():
        raise ConfigError("device", f"one CUDA device per local rank (LOCAL_RANK {local} of "
                          f"{torch.cuda.device_count()} device(s)); lower --nproc_per_node", str(device))
    return torch.device("cuda", local)


# ------------------------------------------------------------------------------------------ sharding
def check_shareable(size: int, info: ProcessInfo | None = None) -> None:
    """Refuse more ranks than windows in one line (a rank would never have work)."""
    info = info or process_info()
    if info.world_size > 1 and size < info.world_size:
        raise DataError(f"{size} window(s) cannot be shared by {info.world_size} ranks: lower --nproc_per_node to "
                        f"at most {size} or give the experiment more data")


def rank_parts(order: torch.Tensor, global_batch: int, info: ProcessInfo | None = None) -> list[torch.Tensor]:
    """This rank's part of each global batch of an epoch's order: the order is cut into batches of
    `global_batch` windows, and each batch is dealt round robin (rank r takes its positions r, r + W, ...).

    Nothing is padded or dropped: the parts of all ranks together hold every window of the order exactly once,
    step k of all ranks together is the k-th batch of one process, and every rank has the same number of steps
    (a part is empty where a batch holds fewer windows than there are ranks, e.g. an epoch's last batch)."""
    info = info or process_info()
    batches = order.split(global_batch)
    if info.world_size <= 1:
        return list(batches)
    return [batch[info.rank::info.world_size] for batch in batches]


def rank_share(count: int, info: ProcessInfo | None = None) -> int:
    """How many of the first `count` positions of a global batch dealt round robin are this rank's."""
    info = info or process_info()
    return max(0, -(-(count - info.rank) // info.world_size)) if info.world_size > 1 else count


# ------------------------------------------------------------------------------------------ reductions
def all_reduce_sum(values: torch.Tensor, info: ProcessInfo | None = None) -> torch.Tensor:
    """Sum a tensor over ranks (a copy; the tensor itself in a single process)."""
    info = info or process_info()
    if info.parallel:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


class _SumOverRanks(torch.autograd.Function):
    """Forward: the sum over ranks. Backward: the incoming gradient unchanged, because every rank computes
    the same function of the sum and so receives the same gradient; each rank's local part of the parameter
    gradient is then summed by `all_reduce_grads`."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of `tensor` over ranks, differentiable with respect to this rank's part."""
    return _SumOverRanks.apply(tensor) if process_info().parallel else tensor


def grad_share(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` unchanged in value, its gradient divided by the world size: a term every rank computes in
    full (e.g. a smoothness penalty) then counts once when the ranks' gradients are summed."""
    info = process_info()
    if not info.parallel:
        return tensor
    return tensor.detach() + (tensor - tensor.detach()) / info.world_size


def all_reduce_grads(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """The sum over ranks of each rank's gradient parts (one flat all-reduce)."""
    if not process_info().parallel or not grads:
        return grads
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    out, offset = [], 0
    for g in grads:
        out.append(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
    return out


def broadcast_object(value: Any = None) -> Any:
    """Rank 0's `value` on every rank (picklable objects)."""
    if not process_info().parallel:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_objects(value: Any) -> list[Any] | None:
    """Every rank's `value`, in rank order, on rank 0 (None on the others)."""
    info = process_info()
    if not info.parallel:
        return [value]
    out = [None] * info.world_size if info.is_main else None
    dist.gather_object(value, out, dst=0)
    return out


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank."""
    info = process_info()
    if not info.parallel:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def barrier() -> None:
    if process_info().parallel:
        dist.barrier()


def same_on_all_ranks(tensor: torch.Tensor) -> bool:
    """Whether every rank holds the same values (a cheap check: max and min over ranks of a checksum)."""
    if not process_info().parallel:
        return True
    checksum = tensor.detach().double().sum().reshape(1)
    high, low = checksum.clone(), checksum.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return bool(high == low)


def wrap_model(model: nn.Module, device: torch.device, info: ProcessInfo | None = None) -> nn.Module:
    """DistributedDataParallel when a process group is up (gradients are averaged across ranks)."""
    info = info or process_info()
    if not info.initialised:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)
