"""The flow from a spec to a finished instrument folder, one stage after another.

    result = build("instruments/cat_flute.yaml")
    result.folder   # -> PosixPath('build/cat_flute')

spec → corpus (decode, resample, split channels, analyse) → model (fit or cached) → plan → raw takes
(rendered in batches, cached) → samples (rejoin channels, resample, trim, loop, normalise) → Instrument
→ exporters → atomic publish. Data only flows forward.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import __version__
from .audio.analysis import PitchEstimate, estimate_pitch, midi_to_hz
from .audio.io import read_audio
from .audio.resample import resample
from .audio.stereo import channel_names, split_channels
from .engines import Engine, make_engine
from .engines.base import Clip, Corpus
from .errors import DawexportError, ExportError
from .progress import SILENT, Progress
from .render.plan import RenderPlan, make_plan
from .render.samples import SampleSettings, make_samples
from .spec import InstrumentSpec, load_spec
from .publish import Staging, check_target

from .publish import MANIFEST  # noqa: E402


@dataclass
class BuildResult:
    folder: Path
    files: list[str] = field(default_factory=list)
    reused: bool = False
    trained: bool = False


def cache_root(spec: InstrumentSpec) -> Path:
    """Stage caches live beside the output folders: build/.dawexport-cache/."""
    return spec.output_dir().parent / ".dawexport-cache"


# ---------------------------------------------------------------- corpus

def corpus_channels(spec: InstrumentSpec, channel_counts: list[int]) -> tuple[str, ...]:
    """The channel layout of the whole instrument: stereo if any source is stereo (and the mode keeps it)."""
    return channel_names(spec.stereo, max(channel_counts))


def build_corpus(spec: InstrumentSpec, sample_rate: int, progress: Progress = SILENT) -> Corpus:
    """Read every source, bring it to the model's rate, split its channels and measure its pitch."""
    decoded = []
    for name, recordings in spec.sources.items():
        for index, recording in enumerate(recordings):
            key = f"sources.{name}" + (f"[{index}]" if len(recordings) > 1 else "")
            path = spec.source_path(recording)
            audio, rate = read_audio(path, key=key)
            decoded.append((name, index, recording, path, resample(audio, rate, sample_rate)))
    channels = corpus_channels(spec, [audio.shape[0] for *_, audio in decoded])
    clips = []
    for name, index, recording, path, audio in decoded:
        pitch = estimate_pitch(audio.mean(axis=0), sample_rate)
        if recording.root is not None:
            pitch = PitchEstimate(float(midi_to_hz(recording.root)), float(recording.root), 1.0, 1.0)
        progress.info(f"{name}[{index}] {path.name}: {audio.shape[0]} ch, {audio.shape[1] / sample_rate:.2f} s, "
                      + (f"pitch {pitch.hz:.1f} Hz (MIDI {pitch.midi:.2f})" if np.isfinite(pitch.hz)
                         else "unpitched"))
        parts = split_channels(audio, spec.stereo, file=str(path))
        for channel in channels:
            clips.append(Clip(name, channel, index, _channel_of(parts, channel), pitch))
    return Corpus(sample_rate, channels, tuple(clips))


def _channel_of(parts: dict[str, np.ndarray], channel: str) -> np.ndarray:
    """A mono source feeds both sides of a stereo instrument; its side channel is silent."""
    if channel in parts:
        return parts[channel]
    mono = parts["mono"]
    return np.zeros_like(mono) if channel == "S" else mono


# ---------------------------------------------------------------- model

def fit_or_load(engine: Engine, corpus: Corpus, spec: InstrumentSpec, progress: Progress = SILENT) -> bool:
    """Train the engine (resuming an interrupted run) unless a model for this corpus+settings is cached.

    Returns True when it trained.
    """
    key = engine.cache_key(corpus)
    model_dir = cache_root(spec) / "models" / f"{engine.name}-{key}"
    if (model_dir / "complete").exists():
        progress.stage("model", f"cached {engine.name} model {key}")
        engine.load(model_dir)
        return False
    workdir = cache_root(spec) / "training" / f"{engine.name}-{key}"
    workdir.mkdir(parents=True, exist_ok=True)
    if engine.capabilities.trainable:
        progress.stage("train", f"{engine.name} on {len(corpus.clips)} clips at {corpus.sample_rate} Hz "
                       f"(checkpoints in {workdir})")
    else:
        progress.stage("model", f"{engine.name} (no training)")
    engine.fit(corpus, workdir, progress)
    partial = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    engine.save(partial)
    (partial / "complete").write_text(key)
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(partial, model_dir)
    shutil.rmtree(workdir, ignore_errors=True)
    return True


# ---------------------------------------------------------------- render

def render_takes(engine: Engine, plan: RenderPlan, model_key: str, spec: InstrumentSpec,
                 progress: Progress = SILENT) -> list[np.ndarray]:
    """Render every request of the plan (cached by model and plan), one array per request."""
    requests = plan.requests()
    digest = hashlib.sha256(json.dumps([model_key, [repr(r) for r in requests]]).encode()).hexdigest()[:20]
    cache = cache_root(spec) / "renders" / f"{digest}.npz"
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as data:
                takes = [data[f"t{i}"] for i in range(len(requests))]
            progress.stage("render", f"cached {len(requests)} takes")
            return takes
        except (OSError, KeyError, ValueError):
            cache.unlink(missing_ok=True)
    what = "pads" if plan.kind == "kit" else "cells"
    progress.stage("render", f"{len(plan.cells)} {what} × {len(plan.channels)} channel(s) = {len(requests)} "
                   f"renders at {engine.sample_rate} Hz")
    takes = engine.render_grains(requests, progress) if plan.kind == "kit" else engine.render(requests, progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(cache.stem + ".partial.npz")
    np.savez(partial, **{f"t{i}": np.asarray(t, dtype=np.float32) for i, t in enumerate(takes)})
    os.replace(partial, cache)
    return takes


# ---------------------------------------------------------------- build

def build_key(spec: InstrumentSpec) -> str:
    """What the finished folder depends on: the spec's content, the sources' bytes and this version."""
    digest = hashlib.sha256(__version__.encode())
    digest.update(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode())
    for recordings in spec.sources.values():
        for recording in recordings:
            digest.update(spec.source_path(recording).read_bytes())
    return digest.hexdigest()[:20]


def build(spec_or_path, *, quiet: bool = False, force: bool = False, progress: Progress | None = None,
          stop_after: str | None = None) -> BuildResult:
    """Build the instrument folder for a spec. `stop_after="train"` stops once the model exists."""
    progress = progress or Progress(quiet=quiet)
    spec = spec_or_path if isinstance(spec_or_path, InstrumentSpec) else load_spec(spec_or_path)
    target = spec.output_dir()
    key = build_key(spec)
    check_target(target)
    if not force and stop_after is None and _up_to_date(target, key):
        progress.stage("done", f"{target} is up to date (use --force to rebuild)")
        return BuildResult(target, reused=True)

    engine = make_engine(spec)
    progress.stage("sources", f"{sum(len(r) for r in spec.sources.values())} recording(s) → "
                   f"{engine.sample_rate} Hz, stereo mode {spec.stereo}")
    corpus = build_corpus(spec, engine.sample_rate, progress)
    trained = fit_or_load(engine, corpus, spec, progress)
    if stop_after == "train":
        return BuildResult(target, trained=trained)

    plan = make_plan(spec, corpus.channels, grains=engine.grain_catalogue() if spec.kit is not None else None)
    takes = render_takes(engine, plan, engine.render_key(corpus), spec, progress)

    from .export import write_formats
    from .render.assemble import assemble_instrument
    with Staging(target) as staging:
        progress.stage("samples", f"post-processing {len(plan.cells)} samples → {spec.output.sample_rate} Hz, "
                       f"{spec.output.bit_depth}-bit")
        settings = SampleSettings.from_spec(spec)
        samples = make_samples(plan, takes, engine.sample_rate, settings, staging.path, progress)
        instrument = assemble_instrument(spec, plan, samples, engine)
        instrument = replace(instrument, wavetables=tuple(_wavetables(spec, engine, corpus, staging.path,
                                                                      progress)))
        progress.stage("export", ", ".join(spec.output.formats))
        files = [s.path for s in instrument.samples]
        files += [p for table in instrument.wavetables for p in (table.path, *table.extra_paths)]
        options = {"ableton": {"live_version": spec.output.live_version, "location": target}}
        files += write_formats(instrument, staging.path, spec.output.formats, options)
        manifest = {"dawexport": __version__, "build_key": key, "engine": engine.name,
                    "files": sorted(set(files))}
        (staging.path / MANIFEST).write_text(json.dumps(manifest, indent=1))
        staging.publish()
    progress.stage("done", f"{target} ({len(files)} files)")
    return BuildResult(target, files=sorted(set(files)), trained=trained)


def _wavetables(spec, engine, corpus, folder, progress) -> list:
    if not spec.wavetables:
        return []
    from .render.wavetables import make_wavetables
    progress.stage("wavetables", ", ".join(t.name for t in spec.wavetables))
    return make_wavetables(spec, engine, corpus, folder, progress)


def _up_to_date(target: Path, key: str) -> bool:
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("build_key") == key and all((target / f).exists() for f in manifest.get("files", []))


__all__ = ["build", "build_corpus", "fit_or_load", "render_takes", "BuildResult", "DawexportError",
           "ExportError", "MANIFEST"]
