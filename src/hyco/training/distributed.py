"""The trainers' names for `hyco.utils.distributed` (process group, rank, DDP wrapping, reductions), which
owns everything about running as one of several `torchrun` ranks."""

from hyco.utils.distributed import ProcessInfo, all_reduce_sum, process_info, wrap_model

__all__ = ["ProcessInfo", "all_reduce_sum", "process_info", "wrap_model"]
