"""The single place where harmless bulk warnings of PhiFlow, PhiML, torch and SciPy are silenced."""

from __future__ import annotations

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
    for message, category in _FILTERS:
        warnings.filterwarnings("ignore", message=message, category=category)
    try:
        from scipy.sparse import SparseEfficiencyWarning

        warnings.filterwarnings("ignore", category=SparseEfficiencyWarning)
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass
    try:
        from torch.jit import TracerWarning

        warnings.filterwarnings("ignore", category=TracerWarning)
    except ImportError:  # pragma: no cover
        pass
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(phi|phiml|torch)(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(phi|phiml|torch)(\..*)?")
