"""`SyntheticTrainer`: trains a `Surrogate` on `Batch`es of windows (a state, the next R states, a mask).

The trainer is created once and trained many times (`train(source, epochs, weights)`, the protocol of
hyco.training.protocol), keeping the optimizer, the learning-rate schedule, the epoch counter and the
curriculum position across calls. It knows nothing about where batches come from (real windows, the physical
model's predictions, a mix), so the hybrid trainer can feed it any `Batch`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from hyco.config.schema import SyntheticTrainerConfig
from hyco.data.batch import Batch
from hyco.errors import DataError, HycoError
from hyco.networks.surrogate import Surrogate
from hyco.training import checkpoint as ckpt
from hyco.training.best import BestKeeper
from hyco.training.distributed import all_reduce_sum, process_info, wrap_model
from hyco.training.loss import LossWeights, batch_sums, weighted_loss
from hyco.training.protocol import DEFAULT_WEIGHTS, Trainer
from hyco.training.run_log import RunLog
from hyco.training.schedule import EpochSchedule, curriculum_steps
from hyco.training.validation import observed_validation

log = logging.getLogger(__name__)

BEST = "best.pt"
LAST = "last.pt"


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


class SyntheticTrainer(Trainer):
    """Trains a Surrogate with an autoregressive rollout loss.

    `config` is a `SyntheticTrainerConfig` (or any object with its attributes). `total_epochs` is the
    length of the whole planned run, over which the LR schedule and the curriculum are spread; it
    defaults to `config.epochs` and can be changed with `set_plan`. `run_dir`, when given, receives
    `best.pt`, `last.pt`, `metrics.jsonl` (one line per epoch) and `tensorboard/`. `per_cycle`: the network
    of a HYCO run, trained a few epochs per call; `validate_every=auto` then validates once per call, after
    its last epoch when `train` is asked to (`validate_last`).
    """

    last_checkpoint = LAST

    def __init__(self, config: SyntheticTrainerConfig, model: Surrogate, device: torch.device | str = "cpu",
                 run_dir: str | Path | None = None, *, total_epochs: int | None = None, progress: bool = True,
                 tag: str = "synthetic", per_cycle: bool = False):
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
        # the best model by observed validation loss, kept in best.pt (by the main process)
        self.best = BestKeeper(self.run_dir / BEST if self.run_dir is not None else None, within_noise=False)
        # epochs between validations; None: only at the end of a `train` call that asks for it (HYCO's cycles)
        auto = None if per_cycle else 1
        self.validate_every: int | None = auto if config.validate_every == "auto" else int(config.validate_every)
        self._validated: tuple[tuple, tuple, dict[str, Any]] | None = None  # (weights' versions, data, result)
        self._filler: Batch | None = None  # a window that counts nothing, for a rank's empty part of a batch
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

    @property
    def best_val_loss(self) -> float:
        """The lowest observed validation loss so far (inf before any validation)."""
        return self.best.loss

    def spatial_ndim(self) -> int:
        return self.model.ndim

    def rollout_steps(self, epoch: int | None = None) -> int | None:
        """The curriculum's rollout length for `epoch` (default: the next one); None = all targets."""
        return curriculum_steps(list(self.config.curriculum), self.epoch if epoch is None else epoch,
                                self.total_epochs)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # --- training ---------------------------------------------------------------------------------
    def train(self, source: Iterable, epochs: int, weights: LossWeights = DEFAULT_WEIGHTS, *,
              validate_last: bool = False) -> dict[str, Any]:
        """Train `epochs` more epochs on `source`, any re-iterable of `Batch`es, with the loss weights
        `weights` = (data_weight, interaction_weight). Validates after every `validate_every` epochs and, with
        `validate_last`, after the last one. Returns metrics of the last epoch plus `history` (one record per
        epoch)."""
        history: list[dict[str, Any]] = []
        weights = (float(weights[0]), float(weights[1]))
        if self.epoch + epochs > self.total_epochs and epochs > 0 and "plan" not in self._warned:
            self._warned.add("plan")
            log.warning("training past the planned %d epochs (to %d): the LR schedule and curriculum hold their "
                        "final values; call set_plan() to plan a longer run", self.total_epochs,
                        self.epoch + epochs)
        bar = tqdm(range(epochs), desc="synthetic", unit="epoch", disable=self._bars_disabled(), leave=False)
        for index in bar:
            record = self._train_epoch(source, weights)
            due = self.validate_every is not None and self.epoch % self.validate_every == 0
            if self.validation is not None and (due or (validate_last and index == epochs - 1)):
                record |= self._validate_and_keep_best()
            self._run_log.write(record)  # before the checkpoint: a kill between them leaves the log ahead,
            self._write_checkpoint(LAST)  # which resume truncates (hyco.training.run_log)
            history.append(record)
            log.info("network epoch %d: train loss %.4g%s, %.1f s", self.epoch, record["train_loss"],
                     f", observed val loss {record['val_loss']:.4g}" + (" (best)" if record["best"] else "")
                     if "val_loss" in record else "", record["seconds"])
            bar.set_postfix(loss=f"{record['train_loss']:.3e}", refresh=False)
        bar.close()
        metrics: dict[str, Any] = dict(history[-1]) if history else {"epoch": self.epoch}
        metrics["best_val_loss"] = self.best.finite_loss
        metrics["history"] = history
        return metrics

    def _bars_disabled(self) -> bool | None:
        return True if not (self.progress and self.process.is_main) else None  # None: off when not a TTY

    def _train_epoch(self, data_source: Iterable, weights: LossWeights) -> dict[str, Any]:
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
        for value in bar:
            batch = self._batch(value)
            available = batch.steps
            used_steps = available if steps is None else min(steps, available)
            if steps is not None and steps > available and "curriculum" not in self._warned:
                self._warned.add("curriculum")
                log.warning("curriculum asks for %d rollout steps but batches hold %d targets; using %d",
                            steps, available, available)
            self.optimizer.zero_grad(set_to_none=True)
            loss, global_size = self._accumulate(batch, dynamic, used_steps, weights)
            self._step(loss)
            loss_sum += loss.detach() / self._world() * global_size  # summed over ranks: the batch's loss x size
            samples += batch.size
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

    def _accumulate(self, batch: Batch, dynamic: torch.Tensor, steps: int, weights: LossWeights
                    ) -> tuple[torch.Tensor, int]:
        """Forward and backward of one batch's loss; returns this rank's loss and the global batch's size.

        Each term is normalised by its count over the global batch (every rank's part, one all-reduce with the
        batch's size), and under DDP the loss is scaled by the world size: the gradients DDP averages are then
        those of one process's loss over the global batch, however unevenly windows, masks and partner windows
        are dealt. A rank whose part is empty (a last batch smaller than the ranks) still runs a forward and
        backward, on one window that counts nothing, because DDP reduces the gradient of every rank together.
        A batch whose rollout would keep more activation memory than `memory_budget_gb` is run in micro-batches
        (GroupNorm works per sample, so the accumulated gradient is the batch's)."""
        if self._world() > 1 and batch.size:  # a copy: a view would keep the whole batch alive
            self._filler = Batch(batch.inputs[:1].clone(), batch.targets[:1].clone(),
                                 torch.zeros_like(batch.targets[:1, :, :1]))
        elif self._world() > 1 and self._filler is not None:
            batch = self._filler
        counts, global_size = self._global_counts(batch, dynamic, steps)
        size = self._micro_batch(batch.inputs, steps) if batch.size else 0
        if size >= batch.size:
            sums = batch_sums(self._train_model(batch.inputs, steps), batch, dynamic)[0]
            loss = weighted_loss(sums, counts, weights) * self._world()
            self._backward(loss)
            return loss.detach(), global_size
        total = torch.zeros((), dtype=batch.targets.dtype, device=batch.targets.device)
        for rows in torch.arange(batch.size, device=batch.inputs.device).split(size):
            part = batch.rows(rows)
            sums, _ = batch_sums(self._train_model(part.inputs, steps), part, dynamic)
            loss = weighted_loss(sums, counts, weights) * self._world()
            self._backward(loss)
            total += loss.detach()
        return total, global_size

    def _world(self) -> int:
        return self.process.world_size if self.process.initialised else 1

    def _global_counts(self, batch: Batch, dynamic: torch.Tensor, steps: int) -> tuple[torch.Tensor, int]:
        """Each term's value count over the global batch (from masks and terms alone), and its windows."""
        with torch.no_grad():
            counts = batch_sums(batch.targets[:, :steps], batch, dynamic)[1]
        if self._world() == 1:
            return counts, batch.size
        windows = 0 if batch is self._filler else batch.size
        both = all_reduce_sum(torch.cat([counts, counts.new_tensor([float(windows)])]), self.process)
        return both[:-1], int(both[-1])

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

    def _batch(self, value: Any) -> Batch:
        """A batch of the source on the trainer's device, inputs and targets in the network's dtype."""
        batch = Batch.of(value)
        inputs, targets = batch.inputs, batch.targets
        if targets.dim() != inputs.dim() + 1 or targets.shape[2:] != inputs.shape[1:]:
            raise DataError(f"batch: expected targets [B, R, {', '.join(map(str, inputs.shape[1:]))}] for inputs "
                            f"{list(inputs.shape)}, got {list(targets.shape)}")
        return batch.to(self.device, next(self.model.parameters()).dtype, non_blocking=True)

    # --- validation -------------------------------------------------------------------------------
    def validate(self, data: Batch | tuple | torch.Tensor | None = None) -> dict[str, Any]:
        """Observed validation (hyco.training.validation) of the network's autoregressive rollout from the
        initial states of `data` (default: the `set_validation` data) over all their frames. The same data with
        the same weights are not rolled out twice (e.g. the trainer's last validation of a HYCO cycle and the
        trust weights')."""
        batch = self._validation_batch(data)
        key = self._weights_version()
        tensors = (batch.inputs, batch.targets, batch.mask)
        if self._validated is not None and self._validated[0] == key and _same(self._validated[1], tensors):
            return dict(self._validated[2])
        result = self._rollout_validation(batch)
        self._validated = (key, tensors, result)
        return dict(result)

    def _rollout_validation(self, batch: Batch) -> dict[str, Any]:
        self.model.eval()
        dynamic = torch.tensor(self.model.dynamic_channels, dtype=torch.long, device=self.device)
        result = observed_validation(self.model.rollout, batch, dynamic, self.device,
                                     next(self.model.parameters()).dtype)
        self.model.train()
        return result

    def _weights_version(self) -> tuple:
        """Changes whenever a weight or statistic is written to (torch counts in-place writes per tensor)."""
        return tuple((id(t), t._version) for t in (*self.model.parameters(), *self.model.buffers()))

    def _validate_and_keep_best(self) -> dict[str, Any]:
        if not self.process.is_main:  # only the main process writes checkpoints
            return {}
        result = self.validate()
        result["best"] = self.best.offer(result, self.epoch, self.save)
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
            "best_val_loss": self.best.loss,
            "scaler": self._scaler.state_dict() if self._scaler is not None else None,
        }

    def _write_checkpoint(self, name: str) -> Path | None:
        if self.run_dir is None or not self.process.is_main:
            return None
        return self.save(self.run_dir / name)

    def load(self, path: str | Path, *, weights_only_model: bool = False) -> dict[str, Any]:
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
        self.best.loss = float(payload["best_val_loss"])
        if int(payload["total_epochs"]) != self.total_epochs:
            log.info("resuming a run planned for %d epochs; the plan is now %d epochs",
                     payload["total_epochs"], self.total_epochs)
        self.set_plan(self.total_epochs)
        ckpt.unpack_rng(payload["rng"])
        self._run_log.truncate_after(self.epoch)
        return payload

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
