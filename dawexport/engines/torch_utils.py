"""Torch plumbing shared by the learning engines: device, mixed precision, seeding, safe weight files.

    >>> device = pick_device("auto")                 # cuda, then mps, then cpu
    >>> precision = pick_precision(device)           # bf16 (or fp16 + GradScaler) autocast on CUDA; fp32 elsewhere
    >>> with precision.autocast():
    ...     y = model(x)
    >>> save_tensors("w.safetensors", model.state_dict(), meta={"step": 10})
    >>> tensors, meta = load_tensors("w.safetensors")   # EngineError naming the file if it is not ours

Weights only ever travel as safetensors (plus JSON): nothing here unpickles, so loading a file never runs code.
Every file written by `save_tensors` carries a SHA-256 of its tensor bytes; a file whose bytes were edited
after writing is refused like a truncated or pickled one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

# OpenMP threads that spin while they wait turn a shared CPU into a trap: two torch jobs with two threads each
# on two cores ran a training step 50-100x slower (seconds instead of ~0.1 s). Sleeping waiters cost a few
# percent on an idle machine and remove that cliff. Read once, when torch loads its OpenMP runtime, so every
# module of ours imports this one before torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..errors import EngineError

_META_KEY = "dawexport"
_DIGEST_KEY = "dawexport.sha256"


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


# --------------------------------------------------------------------------- safe weight files

def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{str(t.dtype)}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool
                     else t.to(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _cpu_copies(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies that share no storage (safetensors refuses shared tensors)."""
    out = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} is a {type(t).__name__}, not a tensor")
        out[str(name)] = t.detach().to("cpu", copy=True).contiguous()
    return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_tensors(path, tensors: Mapping[str, torch.Tensor], meta: dict[str, Any] | None = None) -> None:
    """Write tensors (and JSON-able `meta`) as one safetensors file, atomically (temp file + rename).

    The file's metadata holds `meta` as JSON and a SHA-256 over the tensors, which `load_tensors` checks.
    """
    from safetensors.torch import save as st_save
    path = Path(path)
    tensors = _cpu_copies(tensors)
    metadata = {_META_KEY: json.dumps(meta or {}, sort_keys=True), _DIGEST_KEY: _digest(tensors)}
    _atomic_write_bytes(path, st_save(tensors, metadata=metadata))


def load_tensors(path, *, device: str | torch.device = "cpu", what: str = "weights"
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by `save_tensors`: (tensors, meta).

    Anything else (a pickle from torch.save, a truncated or edited file, a foreign safetensors file without
    our checksum) raises EngineError naming the file. Nothing is unpickled or executed.
    """
    from safetensors import SafetensorError, safe_open
    path = Path(path)
    fix = "delete the file (or its folder) and train again; only files dawexport wrote are loaded"
    if not path.is_file():
        raise EngineError(f"{what} file is missing", file=str(path), fix=fix)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        if len(head) == 8 and head[:2] == b"PK":
            raise EngineError(f"{what} file is a pickle/zip archive (torch.save), not safetensors; refusing to "
                              "load it because unpickling can run code", file=str(path), fix=fix)
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except EngineError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as error:
        raise EngineError(f"{what} file is not a valid safetensors file ({error})", file=str(path),
                          fix=fix) from None
    if _DIGEST_KEY not in metadata or _META_KEY not in metadata:
        raise EngineError(f"{what} file was not written by dawexport (no checksum)", file=str(path), fix=fix)
    if _digest(tensors) != metadata[_DIGEST_KEY]:
        raise EngineError(f"{what} file fails its checksum: it was edited or damaged after it was written",
                          file=str(path), fix=fix)
    try:
        meta = json.loads(metadata[_META_KEY])
    except ValueError:
        raise EngineError(f"{what} file has unreadable metadata", file=str(path), fix=fix) from None
    if not isinstance(meta, dict):
        raise EngineError(f"{what} file has unreadable metadata", file=str(path), fix=fix)
    if str(device) != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def save_state(directory, name: str, state: Mapping[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """`directory/name.safetensors` (tensors, with `meta` embedded) + `directory/name.json` (the same
    meta, for people and tools). Both are written atomically; the JSON is informative, the embedded copy
    is what `load_state` trusts."""
    directory = Path(directory)
    save_tensors(directory / f"{name}.safetensors", state, meta)
    _atomic_write_bytes(directory / f"{name}.json", json.dumps(meta, indent=1, sort_keys=True).encode())


def load_state(directory, name: str, *, device: str | torch.device = "cpu", what: str = "model"
               ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read what `save_state` wrote: (tensors, meta)."""
    return load_tensors(Path(directory) / f"{name}.safetensors", device=device, what=what)


def load_engine_state(engine, directory, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """`load_state` for an engine's saved model, refusing one of another engine, version or sample rate.

    Returns (tensors, meta, file) so that later checks can name the file.
    """
    file = str(Path(directory) / f"{name}.safetensors")
    tensors, meta = load_state(directory, name)
    fix = "delete that folder and build again"
    if meta.get("engine") != engine.name or meta.get("version") != engine.version:
        raise EngineError(f"not a {engine.name} model of this version", file=file, fix=fix)
    if meta.get("sample_rate") != engine.sample_rate:
        raise EngineError(f"model was trained at {meta.get('sample_rate')} Hz, the engine runs at "
                          f"{engine.sample_rate} Hz", file=file, fix=fix)
    return tensors, meta, file


def load_module_state(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, file: str) -> None:
    """`module.load_state_dict(strict=True)` with shape/name mismatches turned into an EngineError."""
    try:
        module.load_state_dict(dict(state), strict=True)
    except (RuntimeError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EngineError(f"weights do not fit the model ({first})", file=file,
                          fix="the file belongs to another model or version; delete it and train again"
                          ) from None


__all__ = ["Precision", "cpu_threads", "deterministic", "load_module_state", "load_state", "load_tensors",
           "no_autocast", "pick_device", "pick_precision", "save_state", "save_tensors", "seed_everything"]
