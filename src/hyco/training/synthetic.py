"""`SyntheticTrainer`: trains a `Surrogate` on windows `(state, next R states[, mask])`.

The trainer is created once and trained many times (`train(data_source, num_epochs)`), keeping the
optimizer, the learning-rate schedule, the epoch counter and the curriculum position across calls.
It knows nothing about where batches come from (real windows, the physical model's predictions, a
mix), so the hybrid trainer can feed it anything in the batch format of the trainer data contract.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from hyco.config.errors import DataError, HycoError
from hyco.config.schema import SyntheticTrainerConfig
from hyco.networks.surrogate import Surrogate
from hyco.physics.accuracy import relative_l2
from hyco.training import checkpoint as ckpt
from hyco.training.distributed import all_reduce_sum, process_info, wrap_model
from hyco.training.loss import dynamic_mask, term_sums, weighted_loss
from hyco.training.run_log import RunLog
from hyco.training.schedule import EpochSchedule, curriculum_steps

log = logging.getLogger(__name__)

BEST = "best.pt"
LAST = "last.pt"
_VALIDATION_CHUNK = 64  # validation simulations rolled out together (no autograd: a few states per simulation)


def rollout_loss(model: Surrogate, inputs: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor | None,
                 steps: int, dynamic_channels: Sequence[int] | torch.Tensor, terms: torch.Tensor | None = None,
                 weights: Sequence[float] | None = None) -> torch.Tensor:
    """The HYCO loss (hyco.training.loss) of the surrogate's autoregressive rollout of `steps` steps from
    `inputs`, against `targets[:, :steps]` on the dynamic channels."""
    return frames_loss(model.rollout(inputs, steps), targets, masks, dynamic_channels, terms, weights)


def frames_loss(frames: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor | None,
                dynamic_channels: Sequence[int] | torch.Tensor, terms: torch.Tensor | None = None,
                weights: Sequence[float] | None = None) -> torch.Tensor:
    """`hyco_loss` of predicted frames `[B, S, C, *s]` against the first S targets, dynamic channels only."""
    return weighted_loss(*frames_sums(frames, targets, masks, dynamic_channels, terms), weights)


def frames_sums(frames: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor | None,
                dynamic_channels: Sequence[int] | torch.Tensor, terms: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """`term_sums` (per loss term: summed squared errors, values counted) of `frames_loss`."""
    dynamic = torch.as_tensor(dynamic_channels, dtype=torch.long, device=frames.device)
    steps = frames.shape[1]
    mask = None if masks is None else dynamic_mask(masks[:, :steps] if masks.shape[1] > 1 else masks, dynamic)
    return term_sums(frames.index_select(2, dynamic), targets[:, :steps].index_select(2, dynamic), mask, terms)


class RolloutModule(nn.Module):
    """The whole R-step rollout as ONE forward call, so DistributedDataParallel sees one forward per
    backward (its gradient hooks then fire once per parameter however many steps are taken).

    With `checkpoint_steps` every step but the last keeps only its input state for the backward pass and
    runs again there (torch.utils.checkpoint): the activations of one step are held instead of R, for
    about R-1 extra forward passes."""

    def __init__(self, surrogate: Surrogate, checkpoint_steps: bool = False):
        super().__init__()
        self.surrogate = surrogate
        self.checkpoint_steps = checkpoint_steps

    def forward(self, state: torch.Tensor, steps: int) -> torch.Tensor:
        if not (self.checkpoint_steps and torch.is_grad_enabled() and steps > 1):
            return self.surrogate.rollout(state, steps)
        from torch.utils.checkpoint import checkpoint

        frames = []
        for step in range(steps):
            if step < steps - 1:
                state = checkpoint(self.surrogate, state, use_reentrant=False)
            else:
                state = self.surrogate(state)
            frames.append(state)
        return torch.stack(frames, dim=1)


class SyntheticTrainer:
    """Trains a Surrogate with an autoregressive rollout loss.

    `config` is a `SyntheticTrainerConfig` (or any object with its attributes). `total_epochs` is the
    length of the whole planned run, over which the LR schedule and the curriculum are spread; it
    defaults to `config.epochs` and can be changed with `set_plan`. `run_dir`, when given, receives
    `best.pt`, `last.pt`, `metrics.jsonl` (one line per epoch) and `tensorboard/`.
    """

    def __init__(self, config: SyntheticTrainerConfig, model: Surrogate, device: torch.device | str = "cpu",
                 run_dir: str | Path | None = None, *, total_epochs: int | None = None, progress: bool = True,
                 tag: str = "synthetic"):
        self.config = config
        self.device = torch.device(device)
        self.process = process_info()
        self.model = model.to(self.device)
        self._checkpoint_steps = bool(getattr(config, "checkpoint_rollout", False))
        self._train_model = wrap_model(RolloutModule(self.model, self._checkpoint_steps), self.device, self.process)
        self._step_bytes: dict[tuple, int] = {}  # autograd bytes one sample's network step keeps, by state shape
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress
        self.total_epochs = int(config.epochs if total_epochs is None else total_epochs)
        self.epoch = 0  # completed epochs over all calls of `train`
        self.best_val_loss = math.inf
        self.loss_weights: tuple[float, float] = (1.0, 1.0)  # (data, interaction): see hyco.training.loss
        self._validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        # epochs between validations; None: only at the end of a `train` call that asks for it (HYCO's cycles)
        self.validate_every: int | None = 1 if config.validate_every == "auto" else int(config.validate_every)
        self._validated: tuple[tuple, tuple, dict[str, Any]] | None = None  # (weights' versions, data, result)
        self._warned: set[str] = set()
        self._run_log = RunLog(self.run_dir if self.process.is_main else None, tag)
        self.optimizer = self._make_optimizer()
        # fp16 autocast (network.autocast on CUDA) needs loss scaling, or small gradients underflow to zero
        self._scaler = torch.amp.GradScaler(self.device.type) if model.grad_scaling(self.device) else None
        self._schedule = EpochSchedule(config.scheduler, self.total_epochs, config.step_size, config.gamma)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._schedule)

    # --- set-up -----------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.config.optimizer]
        return cls(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def set_plan(self, total_epochs: int) -> None:
        """Declare the length of the whole run (LR schedule and curriculum are spread over it)."""
        self.total_epochs = int(total_epochs)
        self._schedule.total_epochs = self.total_epochs
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * self._schedule(self.epoch)

    def set_validation(self, data: torch.Tensor | tuple | None) -> None:
        """Validation data, rolled out after every `validate_every` epochs; `best.pt` is chosen on its loss
        (never on training loss; without validation data no `best.pt` is written). `data` is what an
        observer of the validation split has: `(initial states [N, C, *s], later frames [N, T-1, C, *s],
        masks broadcastable to them or None)`, e.g. the one frame-0 window per simulation of a
        WindowDataset with `rollout_steps = T - 1`; or full trajectories `[N, T, C, *s]` (all observed)."""
        self._validation = None if data is None else self._as_validation(data)

    def _as_validation(self, data: torch.Tensor | tuple) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if isinstance(data, torch.Tensor):
            if data.dim() != self.model.ndim + 3 or data.shape[1] < 2:
                raise DataError(f"validation trajectories: expected [N, T>=2, C, *space], got shape "
                                f"{tuple(data.shape)}")
            return data[:, 0], data[:, 1:], None
        return data[0], data[1], data[2] if len(data) > 2 else None

    def rollout_steps(self, epoch: int | None = None) -> int | None:
        """The curriculum's rollout length for `epoch` (default: the next one); None = all targets."""
        return curriculum_steps(list(self.config.curriculum), self.epoch if epoch is None else epoch,
                                self.total_epochs)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # --- training ---------------------------------------------------------------------------------
    def train(self, data_source: Iterable, num_epochs: int, *, validate_last: bool = False) -> dict[str, Any]:
        """Train `num_epochs` more epochs on `data_source`, any re-iterable of batches
        `(inputs [B,C,*s], targets [B,R,C,*s])` or `(inputs, targets, masks)`. Validates after every
        `validate_every` epochs and, with `validate_last`, after the last one. Returns metrics of the
        last epoch plus `history` (one record per epoch)."""
        history: list[dict[str, Any]] = []
        if self.epoch + num_epochs > self.total_epochs and num_epochs > 0 and "plan" not in self._warned:
            self._warned.add("plan")
            log.warning("training past the planned %d epochs (to %d): the LR schedule and curriculum hold their "
                        "final values; call set_plan() to plan a longer run", self.total_epochs,
                        self.epoch + num_epochs)
        epochs = tqdm(range(num_epochs), desc="synthetic", unit="epoch", disable=self._bars_disabled(), leave=False)
        for index in epochs:
            record = self._train_epoch(data_source)
            due = self.validate_every is not None and self.epoch % self.validate_every == 0
            if self._validation is not None and (due or (validate_last and index == num_epochs - 1)):
                record |= self._validate_and_keep_best()
            self._run_log.write(record)  # before the checkpoint: a kill between them leaves the log ahead,
            self._write_checkpoint(LAST)  # which resume truncates (hyco.training.run_log)
            history.append(record)
            log.info("network epoch %d: train loss %.4g%s, %.1f s", self.epoch, record["train_loss"],
                     f", observed val loss {record['val_loss']:.4g}" + (" (best)" if record["best"] else "")
                     if "val_loss" in record else "", record["seconds"])
            epochs.set_postfix(loss=f"{record['train_loss']:.3e}", refresh=False)
        epochs.close()
        metrics: dict[str, Any] = dict(history[-1]) if history else {"epoch": self.epoch}
        metrics["best_val_loss"] = self.best_val_loss if math.isfinite(self.best_val_loss) else None
        metrics["history"] = history
        return metrics

    def _bars_disabled(self) -> bool | None:
        return True if not (self.progress and self.process.is_main) else None  # None: off when not a TTY

    def _train_epoch(self, data_source: Iterable) -> dict[str, Any]:
        steps = self.rollout_steps()
        self._train_model.train()
        dynamic = torch.tensor(self.model.dynamic_channels, dtype=torch.long, device=self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        samples = 0
        used_steps = 0
        start = time.perf_counter()
        total = len(data_source) if hasattr(data_source, "__len__") else None
        bar = tqdm(data_source, total=total, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False,
                   disable=self._bars_disabled())
        for batch in bar:
            inputs, targets, masks, terms = self._unpack(batch)
            available = targets.shape[1]
            used_steps = available if steps is None else min(steps, available)
            if steps is not None and steps > available and "curriculum" not in self._warned:
                self._warned.add("curriculum")
                log.warning("curriculum asks for %d rollout steps but batches hold %d targets; using %d",
                            steps, available, available)
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._accumulate(inputs, targets, masks, terms, dynamic, used_steps)
            self._step(loss)
            loss_sum += loss.detach() * inputs.shape[0]
            samples += inputs.shape[0]
        bar.close()
        totals = all_reduce_sum(torch.stack([loss_sum, loss_sum.new_tensor(float(samples))]), self.process)
        seconds = time.perf_counter() - start
        if samples == 0:
            raise DataError("synthetic training: the data source yielded no batches")
        train_loss = float(totals[0] / totals[1])
        if not math.isfinite(train_loss):
            raise HycoError(f"synthetic training diverged in epoch {self.epoch + 1} (loss {train_loss}); "
                            "lower trainer.synthetic.lr or set trainer.synthetic.grad_clip")
        lr = self.lr
        self.scheduler.step()
        self.epoch += 1
        return {"epoch": self.epoch, "train_loss": train_loss, "rollout_steps": used_steps, "lr": lr,
                "samples": int(totals[1]), "seconds": seconds, "samples_per_s": float(totals[1]) / max(seconds, 1e-9)}

    def _accumulate(self, inputs: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor | None,
                    terms: torch.Tensor | None, dynamic: torch.Tensor, steps: int) -> torch.Tensor:
        """Forward and backward of one batch's loss, in micro-batches when its rollout would keep more
        activation memory than `memory_budget_gb`: each term is still normalised by its count over the whole
        batch, so the accumulated gradient is the batch's (GroupNorm works per sample)."""
        size = self._micro_batch(inputs, steps)
        if size >= inputs.shape[0]:
            loss = self._rank_loss(*frames_sums(self._train_model(inputs, steps), targets, masks, dynamic, terms))
            self._backward(loss)
            return loss.detach()
        rows = torch.arange(inputs.shape[0], device=inputs.device).split(size)
        pick = [(lambda t, r=r: None if t is None else (t if t.shape[0] == 1 else t[r])) for r in rows]
        with torch.no_grad():  # the batch's counts per term first: masks and terms only
            counts = sum(frames_sums(targets[r, :steps], targets[r], p(masks), dynamic, p(terms))[1]
                         for r, p in zip(rows, pick))
            counts = all_reduce_sum(counts, self.process)
        total = torch.zeros((), dtype=targets.dtype, device=targets.device)
        for r, p in zip(rows, pick):
            sums, _ = frames_sums(self._train_model(inputs[r], steps), targets[r], p(masks), dynamic, p(terms))
            loss = weighted_loss(sums, counts, self.loss_weights) * self._world()
            self._backward(loss)
            total += loss.detach()
        return total

    def _world(self) -> int:
        return self.process.world_size if self.process.initialised else 1

    def _rank_loss(self, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The loss of this rank's shard of the batch. Under DDP each term is normalised by its count over
        all ranks' shards and the loss scaled by the world size: the gradients DDP averages are then those of
        one process's loss over the global batch, however unevenly masks and partner windows are dealt."""
        if self._world() == 1:
            return weighted_loss(sums, counts, self.loss_weights)
        return weighted_loss(sums, all_reduce_sum(counts.detach(), self.process), self.loss_weights) * self._world()

    def _micro_batch(self, inputs: torch.Tensor, steps: int) -> int:
        """Samples per forward/backward: as many as keep the rollout's activations within the budget."""
        budget = float(getattr(self.config, "memory_budget_gb", 0) or 0) * 2**30
        if budget <= 0:
            return inputs.shape[0]
        key = (tuple(inputs.shape[1:]), inputs.dtype, self.model.training)
        if key not in self._step_bytes:
            self._step_bytes[key] = _saved_bytes(self.model, inputs[:1])
        held = 1 if self._checkpoint_steps else steps  # steps whose activations are kept at once
        return max(1, int(budget // max(1, self._step_bytes[key] * held)))

    def _backward(self, loss: torch.Tensor) -> None:
        (self._scaler.scale(loss) if self._scaler is not None else loss).backward()

    def _step(self, loss: torch.Tensor) -> None:
        scaler = self._scaler
        if self.config.grad_clip > 0:
            if scaler is not None:
                scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()

    def _unpack(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3, 4):
            raise TypeError("a batch must be (inputs, targets), (inputs, targets, masks) or "
                            "(inputs, targets, masks, terms)")
        inputs, targets = batch[0], batch[1]
        masks = batch[2] if len(batch) >= 3 else None
        terms = batch[3] if len(batch) == 4 else None
        if targets.dim() != inputs.dim() + 1 or targets.shape[2:] != inputs.shape[1:]:
            raise DataError(f"batch: expected targets [B, R, {', '.join(map(str, inputs.shape[1:]))}] for inputs "
                            f"{list(inputs.shape)}, got {list(targets.shape)}")
        move = {"device": self.device, "non_blocking": True}
        dtype = next(self.model.parameters()).dtype
        inputs = inputs.to(**move, dtype=dtype)
        targets = targets.to(**move, dtype=dtype)
        if masks is not None:
            masks = masks.to(**move)
        if terms is not None:
            terms = terms.to(**move)
        return inputs, targets, masks, terms

    # --- validation -------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, data: torch.Tensor | tuple | None = None) -> dict[str, Any]:
        """Autoregressive rollout from the initial states of the validation data over all their frames, all
        simulations in one batch (up to 64 at a time).

        Returns `val_loss` (the MSE over the observed values of the dynamic channels), `val_rel_l2` (the
        relative L2 error over the observed values per step, mean over simulations), its mean and its last
        value. `data` defaults to what `set_validation` was given. The same data with the same weights are
        not rolled out twice (e.g. the trainer's last validation of a HYCO cycle and the trust weights').
        """
        inputs, targets, masks = self._validation if data is None else self._as_validation(data)
        key = self._weights_version()
        if self._validated is not None and self._validated[0] == key and _same(self._validated[1],
                                                                               (inputs, targets, masks)):
            return dict(self._validated[2])
        result = self._rollout_validation(inputs, targets, masks)
        self._validated = (key, (inputs, targets, masks), result)
        return dict(result)

    def _weights_version(self) -> tuple:
        """Changes whenever a weight or statistic is written to (torch counts in-place writes per tensor)."""
        return tuple((id(t), t._version) for t in (*self.model.parameters(), *self.model.buffers()))

    def _rollout_validation(self, inputs: torch.Tensor, targets: torch.Tensor,
                            masks: torch.Tensor | None) -> dict[str, Any]:
        self.model.eval()
        dynamic = torch.tensor(self.model.dynamic_channels, dtype=torch.long, device=self.device)
        dtype = next(self.model.parameters()).dtype
        steps = targets.shape[1]
        sq_sum = torch.zeros((), dtype=torch.float64)
        count = torch.zeros((), dtype=torch.float64)
        rel_sum = torch.zeros(steps, dtype=torch.float64)
        rel_n = torch.zeros(steps, dtype=torch.float64)
        for rows in torch.arange(inputs.shape[0]).split(_VALIDATION_CHUNK):
            pred = self.model.rollout(inputs[rows].to(self.device, dtype), steps).index_select(2, dynamic)
            truth = targets[rows].to(self.device, dtype).index_select(2, dynamic)
            mask = None
            if masks is not None:
                mask = dynamic_mask(masks[rows] if masks.shape[0] > 1 else masks, dynamic).to(self.device, dtype)
            sums, counts = term_sums(pred.double(), truth.double(), mask)
            sq_sum += sums[0].cpu()
            count += counts[0].cpu()
            rel = relative_l2(pred, truth, mask).double().cpu()  # [n, steps]
            seen = torch.ones_like(rel) if mask is None else (
                torch.broadcast_to(mask, pred.shape).flatten(2).amax(dim=2).double().cpu())
            rel_sum += (rel * seen).sum(dim=0)
            rel_n += seen.sum(dim=0)
        self.model.train()
        per_step = [float(r / n) if n > 0 else None for r, n in zip(rel_sum, rel_n)]
        observed = [r for r in per_step if r is not None]
        return {"val_loss": float(sq_sum / count.clamp_min(1.0)), "val_rel_l2": per_step,
                "val_rel_l2_mean": sum(observed) / max(1, len(observed)),
                "val_rel_l2_final": observed[-1] if observed else None}

    def _validate_and_keep_best(self) -> dict[str, Any]:
        if not self.process.is_main:  # only the main process writes checkpoints
            return {}
        result = self.validate()
        result["best"] = result["val_loss"] < self.best_val_loss
        if result["best"]:
            self.best_val_loss = result["val_loss"]
            self._write_checkpoint(BEST)
        return result

    # --- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        model = self.model
        return {
            "kind": "synthetic",
            "fingerprint": model.fingerprint(),
            "network_config": model.config,
            "model": model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.pack_rng(),
            "epoch": self.epoch,
            "total_epochs": self.total_epochs,
            "best_val_loss": self.best_val_loss,
            "scaler": self._scaler.state_dict() if self._scaler is not None else None,
        }

    def _write_checkpoint(self, name: str) -> Path | None:
        if self.run_dir is None or not self.process.is_main:
            return None
        return ckpt.save_checkpoint(self.state_dict(), self.run_dir / name)

    def save_checkpoint(self, path: str | Path) -> Path:
        return ckpt.save_checkpoint(self.state_dict(), path)

    def load_checkpoint(self, path: str | Path, *, weights_only_model: bool = False) -> dict[str, Any]:
        """Restore from a checkpoint; refuses (DataError) one made for another network config.

        With `weights_only_model` only the weights and statistics are loaded (e.g. `best.pt` for
        evaluation); otherwise everything, so that training continues exactly where it stopped.
        """
        return self.load_state_dict(ckpt.load_checkpoint(path), source=str(path),
                                    weights_only_model=weights_only_model)

    def load_state_dict(self, payload: dict[str, Any], source: str = "checkpoint", *,
                        weights_only_model: bool = False) -> dict[str, Any]:
        """Restore from a `state_dict()` (e.g. nested in a hybrid checkpoint); same checks as loading a file."""
        path = source
        model = self.model
        if payload.get("kind") != "synthetic":
            raise DataError(f"{path}: expected a synthetic-trainer checkpoint, got kind {payload.get('kind')!r}")
        if payload["fingerprint"] != model.fingerprint():
            diff = ckpt.config_difference(payload["network_config"], model.config)
            raise DataError(f"{path}: checkpoint was made for a different network config ("
                            f"{'; '.join(diff[:4]) or 'fingerprint ' + payload['fingerprint']}); "
                            "use a new output_dir or the matching network settings")
        model.load_state_dict(payload["model"])
        if weights_only_model:
            return payload
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])  # restores the schedule's plan too
        if self._scaler is not None and payload.get("scaler"):
            self._scaler.load_state_dict(payload["scaler"])
        self.epoch = int(payload["epoch"])
        self.best_val_loss = float(payload["best_val_loss"])
        if int(payload["total_epochs"]) != self.total_epochs:
            log.info("resuming a run planned for %d epochs; the plan is now %d epochs",
                     payload["total_epochs"], self.total_epochs)
        self.set_plan(self.total_epochs)
        ckpt.unpack_rng(payload["rng"])
        self._run_log.truncate_after(self.epoch)
        return payload

    def resume(self) -> bool:
        """Continue from `<run_dir>/last.pt` if it exists; True when it did."""
        if self.run_dir is None or not (self.run_dir / LAST).is_file():
            return False
        self.load_checkpoint(self.run_dir / LAST)
        log.info("resumed synthetic training from %s at epoch %d", self.run_dir / LAST, self.epoch)
        return True

    def close(self) -> None:
        self._run_log.close()


def _saved_bytes(model: Surrogate, sample: torch.Tensor) -> int:
    """Bytes that autograd keeps for one sample's network step (measured with saved-tensor hooks; a tensor
    saved by several nodes counts once)."""
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(sample.detach())
    return sum(seen.values())


def _same(a: tuple, b: tuple) -> bool:
    return all(x is y for x, y in zip(a, b))


def load_surrogate(path: str | Path, device: torch.device | str = "cpu") -> Surrogate:
    """Rebuild a trained Surrogate from a checkpoint alone (architecture, weights and statistics), e.g.
    `best.pt` for evaluation; the network config is taken from the checkpoint, not from the caller."""
    from hyco.networks.surrogate import build_network

    payload = ckpt.load_checkpoint(path)
    if payload.get("kind") != "synthetic":
        raise DataError(f"{path}: expected a synthetic-trainer checkpoint, got kind {payload.get('kind')!r}")
    config = payload["network_config"]
    section = {"name": config["name"], **config["params"]}
    model = build_network(section, config["num_channels"], config["dynamic_channels"], config["ndim"])
    model.load_state_dict(payload["model"])
    dtype = next(iter(payload["model"].values())).dtype
    return model.to(device=torch.device(device), dtype=dtype)
