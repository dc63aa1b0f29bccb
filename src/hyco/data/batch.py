"""One typed batch of windows: what the data layer hands the trainers, and what the loss reads.

A `Batch` holds B windows of R steps each, by name:

- `inputs` `[B, C, *space]`: the state each window starts from;
- `targets` `[B, R, C, *space]`: the R frames after it;
- `mask`: where a target value counts (1; 0 = not observed, or outside the interaction region), broadcastable
  to `[B, R, 1|C, *space]` (one channel: shared by every channel); None = every value counts;
- `term` `[B]` (long): the loss term of each window, `DATA` for real observations, `INTERACTION` for a
  partner's predictions (hyco.training.loss); None = every window is DATA;
- `sensor_index`, `sensor_weight` `[B, R, K, 2^d]`: the linear-interpolation stencils of K point sensors in each
  target frame (hyco.data.sensors; a sensor whose weights are all 0 reads nothing in that frame), and
  `sensor_values` `[B, R, C, K]` what they read; None = no sensors. A sensor window's `mask` is 0 on the grid:
  its observations are the sensor samples alone.

Real windows (hyco.data.windows) and a partner's predictions (hyco.training.augmentation) are both made as a
Batch, and nothing reads one by position: this module is the only place where the tuple form
`(inputs, targets[, mask[, term]])` (what a user or a test may pass, and how chunks are stored) is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

DATA = 0
INTERACTION = 1
NUM_TERMS = 2


@dataclass(frozen=True, eq=False)
class Batch:
    """B windows: `inputs`, `targets`, `mask`, `term` (see the module docstring)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor | None = None
    term: torch.Tensor | None = None
    sensor_index: torch.Tensor | None = None
    sensor_weight: torch.Tensor | None = None
    sensor_values: torch.Tensor | None = None

    # ------------------------------------------------------------------ making one
    @classmethod
    def of(cls, value: Any) -> Batch:
        """`value` as a Batch: a Batch as it is, or the tuple `(inputs, targets[, mask[, term]])`."""
        if isinstance(value, Batch):
            return value
        if isinstance(value, (tuple, list)) and 2 <= len(value) <= 4:
            return cls(*value)
        raise TypeError("a batch is a hyco.data.batch.Batch or a tuple (inputs, targets[, mask[, term]]), got "
                        f"{type(value).__name__}" + (f" of {len(value)} items" if isinstance(value, (tuple, list))
                                                     else ""))

    @classmethod
    def from_trajectories(cls, trajectories: torch.Tensor) -> Batch:
        """Whole trajectories `[N, T, C, *space]`, every value observed: frame 0 the input, the rest targets."""
        return cls(trajectories[:, 0], trajectories[:, 1:])

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The tuple form `(inputs, targets[, mask[, term]])` that `Batch.of` reads back (a term without a mask
        gets a mask of ones)."""
        mask = self.full_mask() if self.mask is None and self.term is not None else self.mask
        return tuple(t for t in (self.inputs, self.targets, mask, self.term) if t is not None)

    # ------------------------------------------------------------------ shape
    @property
    def size(self) -> int:
        """Windows in the batch (B)."""
        return int(self.inputs.shape[0])

    @property
    def steps(self) -> int:
        """Target frames per window (R)."""
        return int(self.targets.shape[1])

    def full_mask(self) -> torch.Tensor:
        """An all-ones mask `[B, R, 1, *space]` (every value counts)."""
        return torch.ones_like(self.targets[:, :, :1])

    @property
    def has_sensors(self) -> bool:
        return self.sensor_index is not None

    def seen(self) -> torch.Tensor:
        """Where the observations of each window speak, `[B, R, 1|C, *space]`: the mask, and with sensors the
        cell nearest to each sensor (the complement is HYCO's interaction region, the ghost points)."""
        mask = self.full_mask() if self.mask is None else self.mask
        if not self.has_sensors:
            return mask
        from hyco.data.sensors import nearest_cells

        cells = nearest_cells(self.sensor_index.cpu(), self.sensor_weight.cpu(), self.targets.shape[3:])
        return torch.maximum(mask, cells.to(mask.device, mask.dtype))

    # ------------------------------------------------------------------ moving and selecting
    def _map(self, fn) -> Batch:
        return Batch(**{f.name: None if getattr(self, f.name) is None else fn(getattr(self, f.name))
                        for f in fields(self)})

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
           non_blocking: bool = False) -> Batch:
        """On `device`; the floating-point tensors (inputs, targets, a float mask) in `dtype` when given."""
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, dtype if dtype is not None and t.is_floating_point() else t.dtype,
                        non_blocking=non_blocking)
        return self._map(move)

    def pin_memory(self) -> Batch:
        """In page-locked host memory (torch's DataLoader calls this on the batches it pins)."""
        return self._map(torch.Tensor.pin_memory)

    def rows(self, index: Any) -> Batch:
        """The windows `index` (a mask or term shared by every window, batch size 1, is kept as it is)."""
        return self._map(lambda t: t if t.shape[0] == 1 and self.size != 1 else t[index])

    def head(self, count: int) -> Batch:
        """The first `count` windows (a shared mask expanded first: every tensor then has B rows)."""
        return self.expanded()._map(lambda t: t[:count])

    def expanded(self) -> Batch:
        """The mask as a `[B, R, 1|C, *space]` view (a mask shared by all windows or frames broadcast)."""
        if self.mask is None:
            return self
        return replace(self, mask=self.mask.expand(self.size, self.steps, *self.mask.shape[2:]))

    def with_defaults(self, term: int = DATA) -> Batch:
        """Mask and term made explicit: a mask of ones where there is none, every window in `term` where the
        batch carries no terms."""
        mask = self.full_mask() if self.mask is None else self.mask
        terms = self.term if self.term is not None else torch.full((self.size,), term, dtype=torch.long,
                                                                   device=self.inputs.device)
        return replace(self, mask=mask, term=terms)

    def dynamic_mask(self, dynamic: torch.Tensor) -> torch.Tensor | None:
        """The mask restricted to the `dynamic` channels (a mask shared by the channels as it is)."""
        if self.mask is None or self.mask.shape[2] == 1:
            return self.mask
        return self.mask.index_select(2, dynamic.to(self.mask.device))

    # ------------------------------------------------------------------ joining
    @staticmethod
    def cat(batches: Sequence[Batch]) -> Batch:
        """Batches of one rollout length, one after the other. Batches with and without masks or terms, or
        with masks of 1 and of C channels, are first completed to one form (`with_defaults`)."""
        forms = {(b.mask is None, b.term is None, 0 if b.mask is None else b.mask.shape[2]) for b in batches}
        if len(forms) > 1:
            batches = _one_mask_width([b.with_defaults() for b in batches])
        if len({b.has_sensors for b in batches}) > 1:
            batches = _silent_sensors(batches)
        return Batch(*(None if parts[0] is None else torch.cat(parts)
                       for parts in zip(*(tuple(getattr(b, f.name) for f in fields(Batch)) for b in batches))))

    @staticmethod
    def placed(parts: Sequence[tuple[torch.Tensor, Batch]], size: int) -> Batch:
        """One batch of `size` windows from `(rows, batch)` parts of one form: the windows of each part at its
        `rows` (masks of 1 and of C channels mix; values take the first part's dtypes)."""
        if len({b.has_sensors for _, b in parts}) > 1:
            parts = list(zip([rows for rows, _ in parts], _silent_sensors([b for _, b in parts])))
        first = parts[0][1]
        channels = max(b.mask.shape[2] for _, b in parts) if first.mask is not None else 0
        out = {}
        for f in fields(first):
            template = getattr(first, f.name)
            if template is None:
                out[f.name] = None
                continue
            shape = (size, *template.shape[1:])
            if f.name == "mask":
                shape = (size, template.shape[1], channels, *template.shape[3:])
            out[f.name] = template.new_empty(shape)
            for rows, batch in parts:
                out[f.name][rows] = getattr(batch, f.name).to(template.dtype)
        return Batch(**out)


def _one_mask_width(batches: list[Batch]) -> list[Batch]:
    """Complete batches with the masks of every one expanded to the widest channel count among them."""
    channels = max(b.mask.shape[2] for b in batches)
    return [replace(b, mask=b.mask.expand(*b.mask.shape[:2], channels, *b.mask.shape[3:])) for b in batches]


def _silent_sensors(batches: list[Batch]) -> list[Batch]:
    """Give batches without sensors the sensor tensors of the others' form, every weight 0 (they read nothing)."""
    like = next(b for b in batches if b.has_sensors)
    out = []
    for b in batches:
        if not b.has_sensors:
            k, p = like.sensor_index.shape[2:]
            index = like.sensor_index.new_zeros((b.size, b.steps, k, p))
            weight = like.sensor_weight.new_zeros((b.size, b.steps, k, p))
            values = like.sensor_values.new_zeros((b.size, b.steps, like.sensor_values.shape[2], k))
            b = replace(b, sensor_index=index, sensor_weight=weight, sensor_values=values)
        out.append(b)
    return out
