"""The common trainer of every learning engine: budgets, mixed precision, checkpoints and exact resume.

    >>> import tempfile
    >>> batch = {"x": torch.ones(4, 1)}
    >>> config = TrainConfig(max_steps=4, max_minutes=None, lr=1e-2, seed=0, validate_every=2, threads=1)
    >>> trainer = Trainer(torch.nn.Linear(1, 1), config, batch_fn=lambda step, rng: batch,
    ...                   loss_fn=lambda model, b: (model(b["x"]) ** 2).mean(), val_batches=[batch],
    ...                   workdir=Path(tempfile.mkdtemp()))
    >>> result = trainer.run()        # resumes from workdir/checkpoint.safetensors when there is one
    >>> result.step, result.stopped_by
    (4, 'steps')

`batch_fn(step, rng)` builds a batch (a dict/tuple of numpy arrays or tensors) from a numpy Generator the
trainer owns and checkpoints, so a run killed at any moment and started again reproduces the uninterrupted
run's weights exactly (same machine, CPU). `loss_fn(model, batch)` returns a scalar tensor; the same function
scores the fixed validation batches, and the weights with the best validation loss are the ones kept.

Files in `workdir` (all safetensors with JSON metadata; nothing is pickled):
  checkpoint.safetensors   model + optimizer + RNG states + step/budget/best, replaced atomically
  best.safetensors         the model weights with the lowest validation loss so far
  training_log.jsonl       one JSON line per step ({"step", "loss", "lr", "seconds"}) and per validation
                           ({"step", "val", "seconds"}); read back with `read_training_log`
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from ...errors import EngineError
from ...progress import SILENT
from .persistence import load_module_state, load_tensors, save_tensors
from .torch_utils import cpu_threads, deterministic, pick_device, pick_precision, seed_everything
from .training_log import TRAINING_LOG, TrainingLog, read_training_log

CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
_FORMAT = "dawexport-checkpoint"
_MAX_BAD_STEPS = 25


class TrainConfig(BaseModel):
    """Budgets and optimiser settings. Training stops at `max_steps`; `max_minutes` (off by default) also
    stops it by the clock, which makes the step reached depend on the machine."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int = Field(2000, ge=1)
    max_minutes: float | None = Field(None, gt=0, description="wall-clock budget over all resumed sessions")
    batch_size: int = Field(8, ge=1, description="read by the engine's batch_fn")
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["cosine", "exponential", "constant"] = "cosine"
    lr_final: float = Field(0.1, gt=0, le=1, description="lr at max_steps as a fraction of lr")
    warmup_steps: int = Field(0, ge=0)
    grad_clip: float | None = Field(3.0, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    checkpoint_every: int = Field(100, ge=1)
    validate_every: int = Field(100, ge=1)
    patience: int | None = Field(None, ge=1, description="stop after this many validations without improvement")
    min_improvement: float = Field(0.0, ge=0, description="relative drop in validation loss that counts")
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = True
    deterministic: bool = True
    threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads (None: torch's default)")

    @classmethod
    def from_settings(cls, settings, *, seed: int, device: str, **extra) -> "TrainConfig":
        """The trainer's part of an engine's `TrainingSettings`, plus `extra` (e.g. threads=...)."""
        shared = ("max_steps", "max_minutes", "batch_size", "lr", "lr_schedule", "checkpoint_every",
                  "validate_every", "patience", "threads")
        return cls(**{name: getattr(settings, name) for name in shared}, seed=seed, device=device, **extra)


@dataclass
class TrainResult:
    step: int                     # steps taken in total (over every resumed session)
    best_val: float               # lowest validation loss (NaN when there was no validation set)
    best_step: int
    stopped_by: str               # "steps" | "time" | "plateau" | "finished" (an earlier session finished it)
    resumed_from: int             # the step this session started at (0 for a fresh run)
    seconds: float                # training time over every session
    device: str
    precision: str
    history: list[dict] = field(default_factory=list)   # [{"step", "loss", "val", "seconds"}]: step 0, validations
    stop_reason: str = ""         # what ended the training, also for "finished": "steps" | "time" | "plateau"

    def record(self) -> dict:
        """What the trained weights depend on beyond the settings: the steps taken and what stopped them.

        Deterministic for a step stop (and a plateau: validation is itself deterministic); for a clock stop
        the step depends on the machine, so it must travel with everything made from these weights."""
        return {"steps": self.step, "best_step": self.best_step, "stopped_by": self.stop_reason or self.stopped_by,
                "device": self.device, "precision": self.precision}


def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate for `step` (0-based): linear warm-up, then cosine or exponential decay to lr·lr_final."""
    lr = config.lr
    if config.warmup_steps and step < config.warmup_steps:
        return lr * (step + 1) / config.warmup_steps
    span = max(1, config.max_steps - config.warmup_steps)
    t = min(1.0, max(0.0, (step - config.warmup_steps) / span))
    if config.lr_schedule == "cosine":
        return lr * (config.lr_final + (1 - config.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))
    if config.lr_schedule == "exponential":
        return lr * config.lr_final ** t
    return lr


def to_device(batch, device: torch.device):
    """Move a batch (nested dict/list/tuple of tensors and numpy arrays) to `device` as tensors."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(batch)).to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _model_fingerprint(model: torch.nn.Module, config: TrainConfig) -> str:
    """What a checkpoint must match to be resumed: parameter names/shapes and the config (minus budgets)."""
    shapes = [(n, tuple(p.shape), str(p.dtype)) for n, p in model.state_dict().items()]
    cfg = config.model_dump(mode="json")
    for key in ("max_minutes", "device", "mixed_precision", "patience", "min_improvement"):
        cfg.pop(key, None)
    return hashlib.sha256(json.dumps([shapes, cfg], sort_keys=True).encode()).hexdigest()[:16]


class Trainer:
    """Train `model` with Adam, a step-scheduled lr, grad clipping and autocast; checkpoint into `workdir`."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig, *,
                 batch_fn: Callable[[int, np.random.Generator], Any],
                 loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
                 workdir: Path, val_batches: Sequence[Any] = (), progress=SILENT, desc: str = "train",
                 restore_best: bool = True, on_validate: Callable[[int, torch.nn.Module], None] | None = None):
        self.model = model
        self.config = config
        self.batch_fn = batch_fn
        self.loss_fn = loss_fn
        self.workdir = Path(workdir)
        self.progress = progress or SILENT
        self.desc = desc
        self.restore_best = restore_best
        self.on_validate = on_validate            # e.g. preview clips: called after each validation
        self.device = pick_device(config.device)
        self.precision = pick_precision(self.device, config.mixed_precision)
        self.model.to(self.device)
        self.val_batches = [to_device(b, self.device) for b in val_batches]
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr,
                                          weight_decay=config.weight_decay)
        self.scaler = self.precision.make_scaler()
        self.fingerprint = _model_fingerprint(model, config)

    # ------------------------------------------------------------------ checkpoints

    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / CHECKPOINT

    @property
    def best_path(self) -> Path:
        return self.workdir / BEST

    def _optimizer_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        state = self.optimizer.state_dict()
        tensors, scalars = {}, {}
        for idx, entry in state["state"].items():
            for key, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim/{idx}/{key}"] = value
                else:
                    scalars[f"{idx}/{key}"] = value
        return tensors, {"param_groups": state["param_groups"], "scalars": scalars}

    def _save_checkpoint(self, step: int, state: dict) -> None:
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        opt_tensors, opt_meta = self._optimizer_tensors()
        tensors.update(opt_tensors)
        tensors["rng/torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng/cuda/{i}"] = s
        meta = {"format": _FORMAT, "version": 1, "fingerprint": self.fingerprint, "step": step,
                "optimizer": opt_meta, "scaler": self.scaler.state_dict() if self.scaler else None,
                **state}
        save_tensors(self.checkpoint_path, tensors, meta)

    def _load_checkpoint(self, rng: np.random.Generator) -> dict | None:
        """Restore everything from workdir/checkpoint.safetensors; None when there is none (or it is stale)."""
        if not self.checkpoint_path.exists():
            return None
        tensors, meta = load_tensors(self.checkpoint_path, what="checkpoint")
        if meta.get("format") != _FORMAT:
            raise EngineError("not a dawexport training checkpoint", file=str(self.checkpoint_path),
                              fix="delete the training folder and train again")
        if meta.get("fingerprint") != self.fingerprint:
            self.progress.info(f"ignoring {self.checkpoint_path.name}: it belongs to another model or settings")
            return None
        model_state = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        load_module_state(self.model, model_state, file=str(self.checkpoint_path))
        opt = meta["optimizer"]
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("optim/"):
                _, idx, key = k.split("/", 2)
                state.setdefault(int(idx), {})[key] = v.to(self.device) if key != "step" else v
        for k, v in opt["scalars"].items():
            idx, key = k.split("/", 1)
            state.setdefault(int(idx), {})[key] = v
        try:
            self.optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
        except (ValueError, KeyError) as error:
            raise EngineError(f"optimizer state does not fit the model ({error})",
                              file=str(self.checkpoint_path), fix="delete the training folder and train again"
                              ) from None
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        torch.set_rng_state(tensors["rng/torch"])
        if self.device.type == "cuda":
            cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
            if len(cuda_states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda_states)
        rng.bit_generator.state = meta["numpy_rng"]
        return meta

    def _save_best(self, step: int, val: float) -> None:
        save_tensors(self.best_path, self.model.state_dict(),
                     {"format": "dawexport-best", "fingerprint": self.fingerprint, "step": step, "val": val})

    def _load_best(self) -> None:
        if not self.best_path.exists():
            return
        tensors, meta = load_tensors(self.best_path, what="best weights")
        if meta.get("fingerprint") == self.fingerprint:
            load_module_state(self.model, tensors, file=str(self.best_path))

    # ------------------------------------------------------------------ steps

    def validate(self) -> float:
        """Mean loss over the validation batches (NaN when there are none); leaves every RNG untouched."""
        if not self.val_batches:
            return float("nan")
        was_training = self.model.training
        self.model.eval()
        total = 0.0
        with torch.random.fork_rng(devices=[self.device.index or 0] if self.device.type == "cuda" else []):
            with torch.no_grad(), self.precision.autocast():
                for batch in self.val_batches:
                    total += float(self.loss_fn(self.model, batch).float())
        self.model.train(was_training)
        return total / len(self.val_batches)

    def _step(self, batch, lr: float) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        with self.precision.autocast():
            loss = self.loss_fn(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach().float())
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            if self.config.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)     # skips the update itself when gradients overflowed
            self.scaler.update()
            return value
        if not math.isfinite(value):
            return value                          # skip the update; the caller counts bad steps
        loss.backward()
        if self.config.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            if not torch.isfinite(norm):
                self.optimizer.zero_grad(set_to_none=True)
                return float("nan")
        self.optimizer.step()
        return value

    def _call_hook(self, step: int) -> None:
        """Run `on_validate(step, model)` in eval mode without gradients, leaving every RNG untouched."""
        was_training = self.model.training
        self.model.eval()
        with torch.random.fork_rng(devices=[self.device.index or 0] if self.device.type == "cuda" else []):
            with torch.no_grad():
                self.on_validate(step, self.model)
        self.model.train(was_training)

    # ------------------------------------------------------------------ the loop

    def run(self) -> TrainResult:
        cfg = self.config
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT, BEST):                 # a write cut short by a kill leaves only its temp file
            for stale in self.workdir.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
        with deterministic(cfg.deterministic and self.device.type == "cpu"), cpu_threads(cfg.threads):
            return self._run(cfg)

    def _run(self, cfg: TrainConfig) -> TrainResult:
        rng = seed_everything(cfg.seed)
        saved = self._load_checkpoint(rng)
        step = int(saved["step"]) if saved else 0
        best_val = float(saved["best_val"]) if saved and saved["best_val"] is not None else math.inf
        best_step = int(saved["best_step"]) if saved else 0
        elapsed_before = float(saved["elapsed_s"]) if saved else 0.0
        stale = int(saved["stale"]) if saved else 0
        history = list(saved["history"]) if saved else []
        resumed_from = step
        if saved and saved.get("finished"):
            if self.restore_best:
                self._load_best()
            return TrainResult(step, best_val if math.isfinite(best_val) else float("nan"), best_step,
                               "finished", resumed_from, elapsed_before, self.device.type,
                               self.precision.describe(), history, str(saved.get("stopped_by") or "steps"))
        if saved:
            self.progress.info(f"resuming from step {step} ({CHECKPOINT} in {self.workdir})")
        budget_s = cfg.max_minutes * 60.0 if cfg.max_minutes else math.inf
        session_start = time.monotonic()

        def elapsed() -> float:
            return elapsed_before + time.monotonic() - session_start

        def state(finished: bool) -> dict:
            return {"best_val": best_val if math.isfinite(best_val) else None, "best_step": best_step,
                    "elapsed_s": elapsed(), "stale": stale, "history": history[-200:], "finished": finished,
                    "numpy_rng": rng.bit_generator.state, "stopped_by": stopped_by if finished else None}

        log = TrainingLog(self.workdir / TRAINING_LOG, resumed_from)
        if not saved and self.val_batches:            # where training starts from, for the record
            start_val = self.validate()
            history.append({"step": 0, "loss": None, "val": start_val if math.isfinite(start_val) else None,
                            "seconds": 0.0})
            log.validation(0, start_val, 0.0)
        stopped_by = "steps"
        bad_steps = 0
        recent: list[float] = []
        last_val = float("nan")
        bar = self.progress.bar(range(step, cfg.max_steps), total=cfg.max_steps - step, desc=self.desc,
                                unit="step")
        try:
            for _ in bar:
                batch = to_device(self.batch_fn(step, rng), self.device)
                lr = lr_at(step, cfg)
                loss = self._step(batch, lr)
                step += 1
                log.step(step, loss, lr, elapsed())
                if math.isfinite(loss):
                    bad_steps = 0
                    recent = (recent + [loss])[-20:]
                else:
                    bad_steps += 1
                    if bad_steps >= _MAX_BAD_STEPS:
                        raise EngineError(f"training diverged: the loss was not finite for {bad_steps} steps "
                                          f"in a row (step {step})", key="engine.settings.lr",
                                          fix="lower the learning rate or check the sources for clipping")
                out_of_time = elapsed() >= budget_s
                last = step >= cfg.max_steps or out_of_time
                if step % cfg.validate_every == 0 or last:
                    last_val = self.validate()
                    if math.isfinite(last_val):
                        if last_val < best_val * (1.0 - cfg.min_improvement) or not math.isfinite(best_val):
                            stale = 0
                        else:
                            stale += 1
                        if last_val < best_val:
                            best_val, best_step = last_val, step
                            self._save_best(step, last_val)
                    history.append({"step": step, "loss": float(np.mean(recent)) if recent else None,
                                    "val": last_val if math.isfinite(last_val) else None,
                                    "seconds": round(elapsed(), 3)})
                    log.validation(step, last_val, elapsed())
                    if self.on_validate is not None:
                        self._call_hook(step)
                if hasattr(bar, "set_postfix"):
                    post = {"loss": f"{np.mean(recent):.4f}" if recent else "nan"}
                    if math.isfinite(last_val):
                        post["val"] = f"{last_val:.4f}"
                    if math.isfinite(budget_s):              # the wall-clock budget may end it before the steps
                        post["time left"] = f"{max(0.0, budget_s - elapsed()) / 60:.1f} min"
                    bar.set_postfix(post, refresh=False)
                plateau = cfg.patience is not None and stale >= cfg.patience
                if out_of_time and step < cfg.max_steps:
                    stopped_by = "time"
                if plateau and step < cfg.max_steps:
                    stopped_by = "plateau"
                if stopped_by != "steps" or step >= cfg.max_steps:
                    log.flush()                          # the log never lags behind its checkpoint
                    self._save_checkpoint(step, state(finished=True))
                    break
                if step % cfg.checkpoint_every == 0:
                    log.flush()
                    self._save_checkpoint(step, state(finished=False))
        finally:
            log.close()
            if hasattr(bar, "close"):
                bar.close()
        seconds = elapsed()
        if self.restore_best:
            self._load_best()
        final_best = best_val if math.isfinite(best_val) else float("nan")
        self.progress.info(f"{self.desc}: {step} steps in {seconds:.0f} s (stopped by {stopped_by})"
                           + (f", best validation loss {final_best:.4f} at step {best_step}"
                              if math.isfinite(final_best) else ""))
        return TrainResult(step, final_best, best_step, stopped_by, resumed_from, seconds, self.device.type,
                           self.precision.describe(), history, stopped_by)


__all__ = ["BEST", "CHECKPOINT", "TRAINING_LOG", "TrainConfig", "TrainResult", "Trainer", "lr_at",
           "read_training_log", "to_device"]
