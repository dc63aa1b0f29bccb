"""Graceful stop on SIGTERM, SIGHUP and SIGINT: the signal becomes an exception in the main thread.

Schedulers stop jobs with SIGTERM (SLURM preemption, `timeout`, `docker stop`), a closed terminal sends
SIGHUP, Ctrl-C SIGINT. Python's default for the first two ends the process at once, skipping every
`finally` block: the HYCO cycle cache and temporary checkpoint files stay behind. Raised as
`Interrupted` (a KeyboardInterrupt, so code that already handles Ctrl-C handles these too, and
no `except Exception` swallows it), the signal unwinds the stack like Ctrl-C does: every `finally` and
context manager runs, atomic writes drop their temporary files, and the checkpoint of the last
completed epoch or cycle stays the state a `resume=true` continues from.

Some libraries turn the exception into another one on its way up: a signal that lands while a C
extension initialises (a lazy `import scipy.optimize`) surfaces as `ImportError: initialization
failed`. `as_interrupted` recognises those: any exception raised after a stop signal arrived is that
stop.

While the stack unwinds, further signals are ignored so that they cannot cut a cleanup short (a
process that must die at once still can: SIGKILL). The console command keeps ignoring them after the
task is over (`afterwards="ignore"`): a scheduler's SIGTERM that arrives while the interpreter shuts
down, after every file is written, must not turn a finished run into one killed by a signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

GRACEFUL_SIGNALS = tuple(s for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT) if s is not None)


class Interrupted(KeyboardInterrupt):  # noqa: N818 (the name reads as what happened, like KeyboardInterrupt)
    """The process was asked to stop by `signum`; `exit_code` is the shell's convention, 128 + signum."""

    def __init__(self, signum: int | str):
        # also from the name: copying or pickling an exception rebuilds it from its args, the name
        self.signum = int(signal.Signals[signum] if isinstance(signum, str) else signum)
        super().__init__(signal.Signals(self.signum).name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_received: list[int] = []  # the signal that started the current stop, if any (main thread only)


def as_interrupted(error: BaseException) -> Interrupted | None:
    """`error` as the stop it stands for: itself if it is an Interrupted, an Interrupted for the signal
    received if a stop signal arrived before it was raised (a library converted the exception), else None."""
    if isinstance(error, Interrupted):
        return error
    return Interrupted(_received[-1]) if _received else None


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = GRACEFUL_SIGNALS, afterwards: str = "restore") -> Iterator[None]:
    """Within the block, the first of `signals` raises Interrupted; later ones are ignored.

    After the block the previous handlers come back (`afterwards="restore"`), or the signals stay ignored
    (`"ignore"`, for a process that has nothing left to do but exit). Outside the main thread (where
    Python cannot install handlers) the block runs unchanged.
    """
    if afterwards not in ("restore", "ignore"):
        raise ValueError(f"afterwards: expected 'restore' or 'ignore', got {afterwards!r}")
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum, frame):
        nonlocal stopping
        if stopping:
            # no logging here: a handler may run inside a logging call that holds the handler's lock
            os.write(2, f"hyco: {signal.Signals(signum).name} received while stopping; still cleaning up\n".encode())
            return
        stopping = True
        _received.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    _received.clear()
    try:
        yield
    finally:
        _received.clear()
        for s, old in previous.items():
            signal.signal(s, signal.SIG_IGN if afterwards == "ignore" else old)
