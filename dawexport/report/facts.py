"""What the build report tells, gathered while the build runs and kept in `report/build.json`, so that
`dawexport report FOLDER` can draw the page again from the folder alone.

    >>> stage_seconds([("sources", 0.0), ("train", 1.0), ("render", 31.0)], now=33.5)
    [{'name': 'sources', 'seconds': 1.0}, {'name': 'train', 'seconds': 30.0}, {'name': 'render', 'seconds': 2.5}]
    >>> thin_curve([1, 2, 3, 4], [4.0, 3.0, 2.0, 1.0], points=2)
    ([2, 4], [3.5, 1.5])

The facts are plain JSON: the spec as written, the engine's effective settings, each source's measured
pitch, how long each stage took, peak memory, warnings, the training curve (from the training log in the
model cache) and the finished Instrument (every sample's root, tune, loop and loudness).
"""
from __future__ import annotations

import json
import math
import resource
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..engines.common.training_log import TRAINING_LOG, read_training_log
from ..errors import ExportError
from ..instrument import BlendAxis, BlendGroup, Envelope, Instrument, Loop, Sample, Wavetable, Zone

FACTS = "report/build.json"
_FORMAT = "dawexport-build-facts"
CURVE_POINTS = 600


def stage_seconds(stages: list[tuple[str, float]], now: float) -> list[dict]:
    """Durations of consecutive stages (name, start time); the last one runs until `now`."""
    ends = [start for _, start in stages[1:]] + [now]
    return [{"name": name, "seconds": round(end - start, 3)} for (name, start), end in zip(stages, ends)]


def thin_curve(steps: list[int], values: list[float], points: int = CURVE_POINTS) -> tuple[list, list]:
    """At most `points` (step, mean value) pairs: consecutive steps averaged, each pair at its last step."""
    if len(steps) <= points:
        return list(steps), list(values)
    edges = np.linspace(0, len(steps), points + 1).astype(int)
    v = np.asarray(values, dtype=float)
    return ([int(steps[b - 1]) for b in edges[1:]],
            [float(np.mean(v[a:b])) for a, b in zip(edges[:-1], edges[1:])])


def training_curve(model_dir: Path, trained_now: bool) -> dict | None:
    """The training and validation losses from the model's training log; None when there is no log."""
    entries = read_training_log(Path(model_dir) / TRAINING_LOG)
    if not entries:
        return None
    train = [(e["step"], e["loss"]) for e in entries if "loss" in e and _finite(e["loss"])]
    val = [(e["step"], e["val"]) for e in entries if "val" in e and _finite(e["val"])]
    steps, loss = thin_curve([s for s, _ in train], [v for _, v in train])
    best = min(val, key=lambda sv: sv[1]) if val else None
    return {"steps": steps, "loss": loss, "val_steps": [s for s, _ in val], "val": [v for _, v in val],
            "total_steps": max(e["step"] for e in entries), "seconds": max(e.get("seconds", 0.0) for e in entries),
            "best_step": best[0] if best else None, "best_val": best[1] if best else None,
            "trained_now": trained_now, "model": Path(model_dir).name}


def peak_memory_mb() -> dict:
    """The process's peak resident memory so far (and the GPU's peak allocation when torch used CUDA)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 2**10      # bytes on macOS, KiB elsewhere
    out = {"process_mb": round(peak_mb, 1)}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def collect(spec, engine, corpus, instrument: Instrument, rendered, progress, first_stage: int,
            model_dir: Path | None, trained: bool, now: float) -> dict:
    """Everything the page shows about this build (sources are described, not copied: see sources.py)."""
    sources = []
    for name, recordings in spec.sources.items():
        for take, recording in enumerate(recordings):
            clip = next(c for c in corpus.clips if c.source == name and c.recording == take)
            pitch = clip.pitch
            sources.append({"name": name, "take": take, "takes": len(recordings),
                            "file": spec.source_path(recording).name,
                            "pitch_hz": pitch.hz if pitch.pitched else None,
                            "pitch_midi": pitch.midi if pitch.pitched else None,
                            "confidence": pitch.confidence, "root_forced": recording.root is not None})
    settings = engine.settings.model_dump(mode="json")
    return {
        "format": _FORMAT, "version": 1, "dawexport": __version__,
        "name": spec.name, "description": spec.description,
        "spec": spec.model_dump(mode="json"),
        "engine": {"name": engine.name, "sample_rate": engine.sample_rate, "device": engine.device,
                   "settings": settings, "set_in_spec": sorted(spec.engine.settings)},
        "corpus": {"sample_rate": corpus.sample_rate, "channels": list(corpus.channels)},
        "sources": sources,
        "stages": stage_seconds(progress.stages[first_stage:], now),
        "memory": peak_memory_mb(),
        "warnings": list(progress.warnings),
        "training": training_curve(model_dir, trained) if model_dir is not None else None,
        "asked": {r.sample.path: r.cell.zone.root for r in rendered},
        "instrument": instrument_to_json(instrument),
    }


def instrument_to_json(instrument: Instrument) -> dict:
    return _clean(asdict(instrument))


def instrument_from_json(data: dict) -> Instrument:
    """The Instrument back from `instrument_to_json` (lists become the tuples the dataclasses hold)."""
    def sample(d):
        return Sample(**{**d, "loop": Loop(**d["loop"]) if d.get("loop") else None})

    groups = tuple(BlendGroup(index=g["index"], label=g["label"], position=tuple(g["position"]),
                              grid_index=tuple(g["grid_index"]), weights=dict(g["weights"]),
                              zones=tuple(Zone(**{**z, "sample": sample(z["sample"])}) for z in g["zones"]))
                   for g in data["groups"])
    return Instrument(
        name=data["name"], sample_rate=data["sample_rate"], groups=groups,
        axes=tuple(BlendAxis(**a) for a in data["axes"]),
        velocity_layers=tuple(tuple(v) for v in data["velocity_layers"]), round_robins=data["round_robins"],
        key_range=tuple(data["key_range"]), loop_mode=data["loop_mode"], envelope=Envelope(**data["envelope"]),
        wavetables=tuple(Wavetable(**{**w, "extra_paths": tuple(w["extra_paths"])}) for w in data["wavetables"]),
        metadata=dict(data["metadata"]), kind=data["kind"])


def _clean(value):
    """JSON-safe: tuples to lists, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def write_facts(folder: Path, facts: dict) -> str:
    path = Path(folder) / FACTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(facts), indent=1, sort_keys=True))
    return FACTS


def read_facts(folder: Path) -> dict:
    """The facts a build kept; an ExportError naming the folder when there are none (an older build)."""
    path = Path(folder) / FACTS
    try:
        facts = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError("this folder has no build facts to draw a report from (it was built by an older "
                          "dawexport, or is not a build folder)", file=str(path),
                          fix="build the instrument again: every build writes report.html") from None
    except (OSError, ValueError) as error:
        raise ExportError(f"the build facts are unreadable ({error})", file=str(path),
                          fix="build the instrument again") from None
    if not isinstance(facts, dict) or facts.get("format") != _FORMAT:
        raise ExportError("not dawexport build facts", file=str(path), fix="build the instrument again")
    return facts
