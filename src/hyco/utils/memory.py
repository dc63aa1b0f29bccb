"""Memory of this process: its peak and current resident size (per-cycle metrics, benchmarks), and handing
freed heap memory back to the operating system between the phases of a HYCO cycle."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import resource
from pathlib import Path


def _status_mb(field: str) -> float | None:
    """A size from /proc/self/status (e.g. VmHWM, VmRSS) in MiB; None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB.

    Linux's `ru_maxrss` survives fork + exec (a child started by a big parent reports the parent's peak),
    so the high-water mark of this process image, VmHWM, is read where it exists.
    """
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float | None:
    """This process's resident memory now, in MiB (None where /proc is not available)."""
    return _status_mb("VmRSS")


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's `malloc_trim`, or None (macOS, musl, Windows: nothing to call)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the heap's free pages to the operating system (glibc `malloc_trim(0)`); False where there is
    no such call.

    Why: CPU tensors come from glibc's heap, which keeps what a phase frees for later use. A HYCO cycle
    alternates phases whose allocations differ in size and lifetime (PhiFlow's traced rollouts, the
    network's micro-batches), so the pieces one phase leaves behind do not fit the next one's tensors and
    the resident size grows by the sum. On the issue-16 case (benchmarks/time_to_accuracy.py) a trim after
    each phase took the peak RSS from about 1660 to 1400 MiB but cost 10-15 % more CPU time, the next phase
    faulting the pages in again: hence opt-in (`trainer.hybrid.release_memory`). (With every block over
    1 MiB mapped on its own, MALLOC_MMAP_THRESHOLD_=1048576, the peak is 1080 MiB at 1.8x the CPU time.)"""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
