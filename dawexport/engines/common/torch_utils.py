"""Torch plumbing shared by the learning engines: device, mixed precision, seeding, CPU threads.

    >>> device = pick_device("cpu")                  # "auto": cuda, then mps, then cpu
    >>> pick_precision(device).describe()            # bf16 (or fp16 + GradScaler) autocast on CUDA; fp32 elsewhere
    'float32'
    >>> with cpu_threads(1):
    ...     torch.get_num_threads()
    1

Weight files are in `persistence`. The OpenMP wait policy is set by `dawexport.engines` (the package), which
Python runs before any module in it, so before this one imports torch.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ...errors import EngineError


# --------------------------------------------------------------------------- device and precision

def pick_device(requested: str = "auto") -> torch.device:
    """`auto` → CUDA, then Apple MPS, then CPU; an explicit device that is not there is an EngineError."""
    requested = (requested or "auto").lower()
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if has_mps:
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("engine.device is 'cuda' but no CUDA GPU is available", key="engine.device",
                          fix="use device: auto (falls back to the CPU) or install a CUDA build of torch")
    if requested == "mps" and not has_mps:
        raise EngineError("engine.device is 'mps' but Apple MPS is not available", key="engine.device",
                          fix="use device: auto (falls back to the CPU)")
    try:
        return torch.device(requested)
    except RuntimeError:
        raise EngineError(f"unknown device {requested!r}", key="engine.device",
                          fix="use auto, cpu, cuda or mps") from None


@dataclass(frozen=True)
class Precision:
    """How a step runs: `dtype` None is plain float32; `scaler` tells whether fp16 needs a GradScaler."""
    device: torch.device
    dtype: torch.dtype | None = None

    @property
    def scaler(self) -> bool:
        return self.dtype == torch.float16 and self.device.type == "cuda"

    def autocast(self):
        """A context that runs the forward pass in mixed precision (a no-op for float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def make_scaler(self):
        """A GradScaler for fp16 on CUDA, else None."""
        if not self.scaler:
            return None
        return torch.amp.GradScaler("cuda")

    def describe(self) -> str:
        return "float32" if self.dtype is None else f"{str(self.dtype).replace('torch.', '')} autocast"


def pick_precision(device: torch.device, mixed: bool = True) -> Precision:
    """bf16 autocast on CUDA GPUs that support it, else fp16 (with a GradScaler); float32 on CPU and MPS."""
    if not mixed or device.type != "cuda":
        return Precision(device, None)
    return Precision(device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def no_autocast(device_type: str):
    """A context where DSP maths (FFTs, phase sums) runs in float32 even inside an autocast region."""
    return torch.autocast(device_type=device_type, enabled=False)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy's legacy state and torch (all devices); return a fresh numpy Generator."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


@contextlib.contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Ask torch for deterministic kernels inside the block (warn-only where none exists), then restore."""
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.benchmark
    try:
        if enabled:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)
        torch.backends.cudnn.benchmark = cudnn


@contextlib.contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` torch intra-op threads (None: leave torch's choice), then restore.

    Tiny models and busy machines are faster with one thread: a parallel region waits for its slowest
    thread, and on a shared CPU that thread may be descheduled. The count is part of an engine's settings
    because it can change float rounding (parallel reductions), and resume must replay the same arithmetic.
    """
    if not count:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["Precision", "cpu_threads", "deterministic", "no_autocast", "pick_device", "pick_precision",
           "seed_everything"]
