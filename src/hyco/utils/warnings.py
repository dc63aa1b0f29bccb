"""The single place where harmless bulk warnings of PhiFlow, PhiML, torch and SciPy are silenced."""

from __future__ import annotations

import sys
import warnings

_FILTERS = (
    # torch.jit.trace, used by PhiFlow's jit on torch, warns on every trace.
    (r".*TracerWarning.*", Warning),
    (r".*Converting a tensor to a Python.*", Warning),
    (r".*torch\.jit\..*deprecated.*", Warning),
    (r".*Sparse CSR tensor support is in beta.*", UserWarning),
    (r".*Sparse invariant checks are implicitly disabled.*", UserWarning),
    (r".*SparseEfficiencyWarning.*", Warning),
    (r".*is deprecated.*", DeprecationWarning),
    (r".*TypedStorage is deprecated.*", UserWarning),
    # PhiML counts traces of a jit-compiled function; hyco calls its compiled frame with a handful of
    # batch sizes (training batch, generation chunks, evaluation), each traced once.
    (r".*jit-compiled function .* was traced \d+ times", RuntimeWarning),
)


def silence_library_warnings() -> None:
    """Install the filters. The two library categories are filtered only once their library is loaded: the
    CLI calls this before it checks a command line, which must not pay for importing torch (seconds) to
    refuse a bad key; `hyco.physics` calls it again when it loads torch and PhiFlow."""
    for message, category in _FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category)
    if "scipy.sparse" in sys.modules:
        warnings.filterwarnings("ignore", category=sys.modules["scipy.sparse"].SparseEfficiencyWarning)
    if "torch.jit" in sys.modules:
        warnings.filterwarnings("ignore", category=sys.modules["torch.jit"].TracerWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(phi|phiml|torch)(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(phi|phiml|torch)(\..*)?")
