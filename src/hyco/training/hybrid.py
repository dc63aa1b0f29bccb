"""HYCO: the physical and the synthetic model, each trained on real windows plus the other's predictions.

The hybrid trainer composes one SyntheticTrainer and one PhysicalTrainer, created once and reused every
cycle; it implements no training itself. One cycle (order `sequential`):
1. draw int(alpha * N_real) initial states (real windows, or fresh random states: "ghost points"),
   roll out the PHYSICAL model with its current coefficients -> generated windows;
2. train the synthetic trainer on real + generated windows;
3. draw again, roll out the SYNTHETIC model -> generated windows;
4. train the physical trainer on real + generated windows.
With order `parallel` both generations happen at the start of the cycle from the previous cycle's
models. The whole state is checkpointed at the end of every cycle and a run resumes exactly.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import torch

from hyco.config.errors import DataError
from hyco.config.schema import HybridTrainerConfig
from hyco.training import checkpoint as ckpt
from hyco.training.augmentation import (
    AugmentedDataset,
    CacheManager,
    GeneratedWindows,
    check_balance,
    choose_strategy,
    estimate_bytes,
    num_generated,
)
from hyco.training.run_log import RunLog
from hyco.utils.memory import peak_rss_mb

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "hybrid_last.pt"


def _derived_seed(*parts: int) -> int:
    seed = 0x9E3779B9
    for part in parts:
        seed = (seed * 1_000_003 + int(part)) % (2**31 - 1)
    return seed


class HybridTrainer:
    def __init__(self, config: HybridTrainerConfig, synthetic_trainer, physical_trainer, cache_dir: str | Path,
                 run_dir: str | Path | None = None, seed: int = 0, batch_size: int = 16,
                 device: torch.device | None = None, chunk_size: int = 64, loader_factory=None):
        self.config = config
        self.synthetic = synthetic_trainer
        self.physical = physical_trainer
        self.physical_model = physical_trainer.model
        self.cache = CacheManager(cache_dir)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.seed = int(seed)
        self.batch_size = batch_size
        self.device = device or torch.device("cpu")
        self.chunk_size = chunk_size
        self.loader_factory = loader_factory or _default_loader
        self.cycle = 0
        self.warm_started = False
        self.history: list[dict[str, Any]] = []
        self.run_log = RunLog(self.run_dir, "hybrid", step_key="cycle")

    # ------------------------------------------------------------------ public
    def train(self, real, num_cycles: int | None = None) -> dict[str, Any]:
        """Run cycles until `num_cycles` (default: config.cycles) have been completed in total."""
        total = self.config.cycles if num_cycles is None else num_cycles
        if self.config.variant == "warm_start" and not self.warm_started and self.config.warm_start_epochs > 0:
            start = time.perf_counter()
            self.synthetic.train(self._loader(real, "warm_start", -1), self.config.warm_start_epochs)
            log.info("warm start: network pre-trained %d epochs on real data in %.1f s",
                     self.config.warm_start_epochs, time.perf_counter() - start)
        self.warm_started = True
        while self.cycle < total:
            cycle = self.cycle
            try:
                metrics = self._run_cycle(cycle, real)
            finally:
                start = time.perf_counter()
                self.cache.cleanup_cycle(cycle)
                cleanup_seconds = time.perf_counter() - start
            if metrics["strategy"] == "cache":  # removing the cycle's chunk files is part of the cache's cost
                metrics["seconds_storage"] += cleanup_seconds
            self.cycle = cycle + 1
            self.history.append(metrics)
            self.run_log.write(metrics)
            if self.run_dir is not None:
                self.save(self.run_dir / CHECKPOINT_NAME)
        if self.config.strategy in ("auto", "cache"):
            self.cache.log_summary()
        return dict(self.history[-1]) if self.history else {"cycle": self.cycle}

    # ------------------------------------------------------------------ one cycle
    def _run_cycle(self, cycle: int, real) -> dict[str, Any]:
        cfg = self.config
        num_real = len(real)
        count = num_generated(num_real, cfg.alpha)
        strategy = self._strategy(count, real)
        seconds: dict[str, float] = {}
        log.info("cycle %d/%d: %d real windows, generating %d (alpha %.3g) per model, storage %s",
                 cycle + 1, cfg.cycles, num_real, count, cfg.alpha, strategy)

        def timed(name: str, fn, *args):
            start = time.perf_counter()
            out = fn(*args)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            return out

        from_physics = timed("physical_rollouts", self._generate, "physical", cycle, real, count, strategy)
        from_network = None
        if cfg.order == "parallel":
            from_network = timed("synthetic_rollouts", self._generate, "synthetic", cycle, real, count, strategy)
        check_balance(num_real, len(from_physics), cfg.alpha)
        synthetic_metrics = timed("synthetic_training", self.synthetic.train,
                                  self._loader(AugmentedDataset(real, from_physics), "synthetic", cycle),
                                  cfg.synthetic_epochs_per_cycle) if cfg.synthetic_epochs_per_cycle else {}
        if from_network is None:
            from_network = timed("synthetic_rollouts", self._generate, "synthetic", cycle, real, count, strategy)
        check_balance(num_real, len(from_network), cfg.alpha)
        physical_metrics = timed("physical_training", self.physical.train,
                                 self._loader(AugmentedDataset(real, from_network), "physical", cycle),
                                 cfg.physical_epochs_per_cycle) if cfg.physical_epochs_per_cycle else {}
        metrics: dict[str, Any] = {
            "cycle": cycle + 1,
            "num_real": num_real,
            "num_generated_physical": len(from_physics),
            "num_generated_synthetic": len(from_network),
            "strategy": strategy,
            "synthetic_loss": synthetic_metrics.get("train_loss", synthetic_metrics.get("loss")),
            "physical_loss": physical_metrics.get("loss"),
            "peak_rss_mb": peak_rss_mb(),
        }
        for key, value in synthetic_metrics.items():
            if key.startswith("val_"):
                metrics[f"synthetic_{key}"] = value
        for key, value in physical_metrics.items():
            if key.endswith("_rel_error") or key in {s.name for s in self.physical_model.coefficient_specs}:
                metrics[key] = value
        metrics.update({f"seconds_{k}": v for k, v in _storage_apart(seconds, from_physics, from_network).items()})
        if torch.cuda.is_available() and self.device.type == "cuda":
            metrics["cuda_peak_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        log.info("cycle %d done: synthetic loss %s, physical loss %s%s", cycle + 1, _fmt(metrics["synthetic_loss"]),
                 _fmt(metrics["physical_loss"]),
                 "".join(f", {k} {v:.3g}" for k, v in metrics.items() if k.endswith("_rel_error")))
        return metrics

    def _strategy(self, count: int, real) -> str:
        shape = tuple(real.spatial_shape)
        estimated = estimate_bytes(count, real.rollout_steps, real.num_channels, shape)
        return choose_strategy(2 * estimated, self.config.memory_budget_gb, self.config.strategy)

    def _loader(self, dataset, kind: str, cycle: int):
        return self.loader_factory(dataset, self.batch_size, _derived_seed(self.seed, cycle, len(kind)), self.device)

    # ------------------------------------------------------------------ generation
    def _generate(self, source: str, cycle: int, real, count: int, strategy: str) -> GeneratedWindows:
        """Generated windows from `source` ('physical' or 'synthetic'), as a frozen snapshot of that model."""
        cfg = self.config
        steps = real.rollout_steps
        generator = torch.Generator().manual_seed(_derived_seed(self.seed, cycle, 1 if source == "physical" else 2))
        use_real = cfg.initial_states == "real" or cfg.variant == "mixed"
        picks = torch.randperm(len(real), generator=generator)[:count] if use_real else None
        random_seed = _derived_seed(self.seed, cycle, 3 if source == "physical" else 4)
        step_fn = self._snapshot(source)
        blend = cfg.variant == "mixed"
        chunk_size = self.chunk_size

        def produce(k: int) -> tuple[torch.Tensor, torch.Tensor]:
            rows = slice(k * chunk_size, min((k + 1) * chunk_size, count))
            if picks is not None:
                window = real.batch(picks[rows])
                states = window[0]
            else:
                states = self.physical_model.initial_state(rows.stop - rows.start, seed=random_seed + k)
            with torch.no_grad():
                prediction = step_fn(states.to(self.device), steps).detach().cpu().to(states.dtype)
            if blend:
                truth = window[1]
                mask = window[2] if len(window) > 2 else torch.ones_like(truth[:, :, :1])
                mixed = cfg.mix * truth + (1.0 - cfg.mix) * prediction
                prediction = mask * mixed + (1.0 - mask) * prediction
            return states.cpu(), prediction

        kind = "physical_preds" if source == "physical" else "synthetic_preds"
        return GeneratedWindows(produce, count, chunk_size, strategy, cache=self.cache, kind=kind, cycle=cycle,
                                weight=cfg.generated_weight)

    def _snapshot(self, source: str):
        """A frozen copy of the model's current state, so on-the-fly generation is reproducible even
        after the model has trained further."""
        if source == "physical":
            coefficients = self.physical.coefficients()
            model = self.physical_model
            return lambda states, steps: model.rollout(states, coefficients, steps)
        network = copy.deepcopy(self.synthetic.model).eval()
        return lambda states, steps: network.rollout(states, steps)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {"kind": "hybrid", "cycle": self.cycle, "warm_started": self.warm_started,
                "history": self.history, "synthetic": self.synthetic.state_dict(),
                "physical": self.physical.state_dict(), "rng": ckpt.pack_rng()}

    def save(self, path: str | Path) -> Path:
        return ckpt.save_checkpoint(self.state_dict(), path)

    def load(self, path: str | Path) -> None:
        """Restore both trainers, the cycle counter and the RNG states from a hybrid checkpoint."""
        state = ckpt.load_checkpoint(path)
        if state.get("kind") != "hybrid":
            raise DataError(f"{path}: expected a hybrid checkpoint, got kind {state.get('kind')!r}")
        self.synthetic.load_state_dict(state["synthetic"], source=str(path))
        self.physical.load_state_dict(state["physical"], source=str(path))
        self.cycle = int(state["cycle"])
        self.warm_started = bool(state["warm_started"])
        self.history = list(state["history"])
        ckpt.unpack_rng(state["rng"])
        self.run_log.truncate_after(self.cycle)

    def resume(self) -> bool:
        """Continue from `<run_dir>/hybrid_last.pt` if it exists; True when it did."""
        if self.run_dir is None or not (self.run_dir / CHECKPOINT_NAME).is_file():
            return False
        self.load(self.run_dir / CHECKPOINT_NAME)
        log.info("resumed HYCO from %s after cycle %d", self.run_dir / CHECKPOINT_NAME, self.cycle)
        return True


def _storage_apart(seconds: dict[str, float], from_physics: GeneratedWindows,
                   from_network: GeneratedWindows) -> dict[str, float]:
    """Move the cache writes/reads ("storage") and on-the-fly re-generation ("regeneration") out of the
    phase they happened in, so the phases add up to the cycle and the storage strategy's cost is visible.
    Writes happen while a model's windows are generated; reads and re-generation while the OTHER model
    trains on them."""
    out = dict(seconds)
    out["storage"], out["regeneration"] = 0.0, 0.0
    for windows, rollouts, training in ((from_physics, "physical_rollouts", "synthetic_training"),
                                        (from_network, "synthetic_rollouts", "physical_training")):
        created = windows.seconds_at_creation
        for kind in ("storage", "regeneration"):
            during_training = windows.seconds[kind] - created[kind]
            out[kind] += created[kind] + during_training
            out[rollouts] = out.get(rollouts, 0.0) - created[kind]
            if training in out:
                out[training] -= during_training
    return out


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _default_loader(dataset, batch_size: int, seed: int, device: torch.device):
    from hyco.data.loader import WindowLoader

    return WindowLoader(dataset, batch_size=batch_size, shuffle=True, seed=seed, device=device)
