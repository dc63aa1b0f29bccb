"""The single place where logging is configured: console plus a log file in the run directory."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_FILE_NAME = "hyco.log"


def setup_logging(run_dir: str | Path | None = None, level: int | str = logging.INFO) -> Path | None:
    """(Re)configure the root logger; returns the log file path when a run directory is given.

    Called once per task (and per Hydra multirun job, so each job logs to its own directory).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    formatter = logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    root.addHandler(console)
    log_path = None
    if run_dir is not None:
        log_path = Path(run_dir) / LOG_FILE_NAME
        log_path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_path)
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    # Third-party libraries are chatty at INFO; keep them at WARNING.
    for name in ("matplotlib", "PIL", "h5py", "filelock", "torch", "phi", "phiml"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return log_path


def route_library_console_output() -> None:
    """Send what PhiML logs through logging's usual path (hyco's console on stderr and the run's log file)
    instead of PhiML's own handler, which prints to stdout: a command's stdout carries its result only
    (`P=$(hyco generate ...)` captures the dataset path, not `Φ-ML's default backend is now torch`).
    Called by `hyco.physics` right after PhiML is imported (it adds that handler on import)."""
    phiml_logger = logging.getLogger("Φ-ML")
    for handler in list(phiml_logger.handlers):
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (sys.stdout,
                                                                                             sys.__stdout__):
            phiml_logger.removeHandler(handler)


def fmt(value, digits: int = 4, missing: str = "diverged") -> str:
    """A number as logs and reports print it (`digits` significant); None (a diverged run's error, a weight
    not yet known) as `missing`; anything else as it is."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)
