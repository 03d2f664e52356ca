"""Model files for every engine: safetensors plus JSON, atomic, each carrying a SHA-256 of its arrays and meta.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> save_numpy_model(folder, "m", {"w": np.ones(3, np.float32)}, {"rate": 44100})
    >>> arrays, meta = load_numpy_model(folder, "m", "test")
    >>> arrays["w"].tolist(), meta
    ([1.0, 1.0, 1.0], {'rate': 44100})

Torch models use `save_tensors`/`load_tensors` (or `save_state`/`load_state` for a folder), numpy models
`save_numpy_model`/`load_numpy_model`; both write the same layout. Nothing here unpickles, so loading a file
never runs code, and a file whose bytes were edited after writing is refused like a truncated or pickled one.
Torch is imported only by the torch functions, so numpy engines load without it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from ...errors import EngineError
from ..base import RemovedSetting, RemovedSettingError, without_removed

if TYPE_CHECKING:
    import torch

_META_KEY = "dawexport"
_DIGEST_KEY = "dawexport.sha256"
_FIX = "delete the file (or its folder) and train again; only files dawexport wrote are loaded"


def _digest_of(items: Iterable[tuple[str, str, tuple, bytes]], meta_json: str) -> str:
    """SHA-256 over (name, dtype, shape, raw bytes) of every array, in name order, then the meta JSON: an
    edited value in the meta (a rate of the wrong type, a renamed key) is caught like an edited weight."""
    h = hashlib.sha256()
    for name, dtype, shape, data in sorted(items, key=lambda item: item[0]):
        h.update(f"{name}|{dtype}|{shape}|".encode())
        h.update(data)
    h.update(b"meta|" + meta_json.encode())
    return h.hexdigest()


def _torch_digest(tensors: Mapping[str, "torch.Tensor"], meta_json: str) -> str:
    import torch

    def raw(t):
        if not t.numel():
            return b""
        return (t.reshape(-1).view(torch.uint8) if t.dtype != torch.bool else t.to(torch.uint8)).numpy().tobytes()
    return _digest_of(((name, str(t.dtype), tuple(t.shape), raw(t)) for name, t in tensors.items()), meta_json)


def _numpy_digest(arrays: Mapping[str, np.ndarray], meta_json: str) -> str:
    return _digest_of(((name, str(a.dtype), tuple(a.shape), np.ascontiguousarray(a).tobytes())
                       for name, a in arrays.items()), meta_json)


def _cpu_copies(tensors: Mapping[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """Detached, contiguous CPU copies that share no storage (safetensors refuses shared tensors)."""
    import torch
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


def _read_checked(path: Path, framework: str, what: str) -> tuple[dict, dict[str, Any]]:
    """(arrays, meta) of a file written here; anything else is an EngineError naming the file."""
    from safetensors import SafetensorError, safe_open
    if not path.is_file():
        raise EngineError(f"{what} file is missing", file=str(path), fix=_FIX)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        if len(head) == 8 and head[:2] == b"PK":
            raise EngineError(f"{what} file is a pickle/zip archive (torch.save), not safetensors; refusing to "
                              "load it because unpickling can run code", file=str(path), fix=_FIX)
        with safe_open(str(path), framework=framework, device="cpu") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except EngineError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as error:
        raise EngineError(f"{what} file is not a valid safetensors file ({error})", file=str(path),
                          fix=_FIX) from None
    if _DIGEST_KEY not in metadata or _META_KEY not in metadata:
        raise EngineError(f"{what} file was not written by dawexport (no checksum)", file=str(path), fix=_FIX)
    digest = (_torch_digest if framework == "pt" else _numpy_digest)(arrays, metadata[_META_KEY])
    if digest != metadata[_DIGEST_KEY]:
        raise EngineError(f"{what} file fails its checksum: it was edited or damaged after it was written",
                          file=str(path), fix=_FIX)
    try:
        meta = json.loads(metadata[_META_KEY])
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise EngineError(f"{what} file has unreadable metadata", file=str(path), fix=_FIX)
    return arrays, meta


def save_tensors(path, tensors: Mapping[str, "torch.Tensor"], meta: dict[str, Any] | None = None) -> None:
    """Write tensors (and JSON-able `meta`) as one safetensors file, atomically (temp file + rename).

    The file's metadata holds `meta` as JSON and a SHA-256 over the tensors, which `load_tensors` checks.
    """
    from safetensors.torch import save as st_save
    tensors = _cpu_copies(tensors)
    meta_json = json.dumps(meta or {}, sort_keys=True)
    metadata = {_META_KEY: meta_json, _DIGEST_KEY: _torch_digest(tensors, meta_json)}
    _atomic_write_bytes(Path(path), st_save(tensors, metadata=metadata))


def load_tensors(path, *, device: "str | torch.device" = "cpu", what: str = "weights"
                 ) -> tuple[dict[str, "torch.Tensor"], dict[str, Any]]:
    """Read a file written by `save_tensors`: (tensors, meta).

    Anything else (a pickle from torch.save, a truncated or edited file, a foreign safetensors file without
    our checksum) raises EngineError naming the file. Nothing is unpickled or executed.
    """
    tensors, meta = _read_checked(Path(path), "pt", what)
    if str(device) != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def _write_meta_json(directory: Path, name: str, meta: dict[str, Any]) -> None:
    _atomic_write_bytes(directory / f"{name}.json", json.dumps(meta, indent=1, sort_keys=True).encode())


def save_state(directory, name: str, state: Mapping[str, "torch.Tensor"], meta: dict[str, Any]) -> None:
    """`directory/name.safetensors` (tensors, with `meta` embedded) + `directory/name.json` (the same
    meta, for people and tools). Both are written atomically; the JSON is informative, the embedded copy
    is what `load_state` trusts."""
    directory = Path(directory)
    save_tensors(directory / f"{name}.safetensors", state, meta)
    _write_meta_json(directory, name, meta)


def load_state(directory, name: str, *, device: "str | torch.device" = "cpu", what: str = "model"
               ) -> tuple[dict[str, "torch.Tensor"], dict[str, Any]]:
    """Read what `save_state` wrote: (tensors, meta)."""
    return load_tensors(Path(directory) / f"{name}.safetensors", device=device, what=what)


def save_numpy_model(directory: Path, stem: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """`save_state` for numpy arrays: `stem.safetensors` (arrays, meta and checksum) + `stem.json`."""
    from safetensors.numpy import save as st_save
    directory = Path(directory)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    meta_json = json.dumps(meta, sort_keys=True)
    metadata = {_META_KEY: meta_json, _DIGEST_KEY: _numpy_digest(arrays, meta_json)}
    _atomic_write_bytes(directory / f"{stem}.safetensors", st_save(arrays, metadata=metadata))
    _write_meta_json(directory, stem, meta)


def load_numpy_model(directory: Path, stem: str, what: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read what `save_numpy_model` wrote; a missing, foreign or edited file is an EngineError naming it."""
    return _read_checked(Path(directory) / f"{stem}.safetensors", "numpy", f"cached {what} model")


def load_engine_state(engine, directory, name: str) -> tuple[dict[str, "torch.Tensor"], dict[str, Any], str]:
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


def load_module_state(module, state: Mapping[str, "torch.Tensor"], *, file: str) -> None:
    """`module.load_state_dict(strict=True)` with shape/name mismatches turned into an EngineError."""
    try:
        module.load_state_dict(dict(state), strict=True)
    except (RuntimeError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EngineError(f"weights do not fit the model ({first})", file=file,
                          fix="the file belongs to another model or version; delete it and train again"
                          ) from None


def torch_model_record(engine, model, train_result) -> tuple[dict[str, "torch.Tensor"], dict[str, Any]]:
    """What every torch engine saves first: the model's weights under `model/`, and meta naming the engine,
    its version, rate, seed, settings, the model's config, a summary of the training (last 50 points) and
    its record (`Engine.training`: steps and what stopped them, which the renders' cache key includes)."""
    if model is None:
        raise EngineError(f"the {engine.name} engine has no model to save; call fit() or load() first")
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    result = None
    if train_result is not None:
        result = {k: v for k, v in vars(train_result).items() if k != "history"}
        result["history"] = train_result.history[-50:]
    meta = {"engine": engine.name, "version": engine.version, "sample_rate": engine.sample_rate,
            "seed": engine.seed, "settings": engine.settings.model_dump(mode="json"),
            "config": model.config.to_json(), "training": result, "record": engine.training}
    return tensors, meta


def model_weights(tensors: Mapping[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """The `model/` part of what `torch_model_record` saved, as the model's own state dict."""
    return {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}


def read_torch_model(engine, directory, name: str, config_cls, read,
                     removed: Mapping[str, RemovedSetting] | None = None):
    """Load what `torch_model_record` (plus the engine's own parts) saved: (config, read(tensors, meta, config),
    the model weights, file). `read` picks the engine's parts; a missing or malformed part is an EngineError.

    `removed` names config keys taken out of the model (`base.RemovedSetting`s): a file that has one at the
    value that remains loads (that is the model it is); at another value it is refused, naming file and key."""
    tensors, meta, file = load_engine_state(engine, directory, name)
    engine.training = meta.get("record")        # steps trained and what stopped them (see Engine.training)
    try:
        config = config_cls(**without_removed(meta["config"], removed or {}))
        parts = read(tensors, meta, config)
    except RemovedSettingError as error:
        raise EngineError(f"model was trained with a setting that was removed: {error}", file=file, key=error.key,
                          fix="delete that folder and build again (with the settings that remain)") from None
    except (KeyError, TypeError, ValueError) as error:
        raise EngineError(f"model file is incomplete ({error})", file=file,
                          fix="delete that folder and build again") from None
    return config, parts, model_weights(tensors), file
