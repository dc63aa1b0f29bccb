"""Which learned numbers the data determine: a class per number (or field cell) from its posterior's width.

The measure is the share of a number's bounds that its 95 % posterior interval still spans, where the bounds'
prior is uniform (hyco.training.laplace, `prior_fraction`): 1 when the data say nothing beyond the bounds, near
0 when they pin the number down.

    determined                   the interval spans < 5 % of the bounds
    weakly determined            5 % to 50 %
    not determined by the data   >= 50 %: the data leave most of what the bounds allowed
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DETERMINED, WEAKLY, NOT_DETERMINED = "determined", "weakly determined", "not determined by the data"
CLASSES = (DETERMINED, WEAKLY, NOT_DETERMINED)
LIMITS = (0.05, 0.5)  # prior fractions that separate the classes


def class_indices(prior_fraction) -> np.ndarray:
    """0, 1, 2 (the index into CLASSES) per number."""
    return np.digitize(np.asarray(prior_fraction, dtype=float), LIMITS)


def classify(prior_fraction) -> list[str]:
    """The class of each number, flat."""
    return [CLASSES[i] for i in class_indices(prior_fraction).reshape(-1)]


_PHRASES = {DETERMINED: "determined by the data", WEAKLY: "only weakly determined by the data",
            NOT_DETERMINED: "not determined by these observations"}


def describe(name: str, labels: Sequence[str], classes: Sequence[str]) -> str:
    """In words: `viscosity is determined by the data`; for several numbers, e.g. `diffusivity: heights[0] and
    centers[0][0] are determined by the data; heights[1] is not determined by these observations`."""
    if list(labels) == ["value"]:
        return f"{name} is {_PHRASES[classes[0]]}"
    groups = []
    for cls in CLASSES:
        members = [label for label, c in zip(labels, classes) if c == cls]
        if members:
            groups.append(f"{_join(members)} {'is' if len(members) == 1 else 'are'} {_PHRASES[cls]}")
    return f"{name}: " + "; ".join(groups)


def describe_field(name: str, classes: Sequence[str]) -> str:
    """A field's classes in words: the share of its cells in each class."""
    total = max(1, len(classes))
    shares = [(cls, sum(c == cls for c in classes) / total) for cls in CLASSES]
    return f"{name}: " + ", ".join(f"{share:.0%} of the cells {cls}" for cls, share in shares if share > 0)


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
