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
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .audio.analysis import PitchEstimate, estimate_pitch, midi_to_hz
from .audio.io import read_audio
from .audio.resample import resample
from .audio.stereo import channel_names, split_channels
from .engines import Engine, make_engine
from .engines.base import Clip, Corpus
from .engines.common.training_log import TRAINING_LOG
from .errors import BuildError, DawexportError, EngineError, ExportError, SpecError
from .progress import SILENT, Progress
from .render.plan import RenderPlan, make_plan
from .render.samples import SampleSettings, make_samples
from .spec import InstrumentSpec, load_spec
from .provenance import build_time, clock_stop_note, depends_on, stamp_files
from .publish import Staging, check_target, recover

from .publish import MANIFEST  # noqa: E402


@dataclass
class BuildResult:
    folder: Path
    files: list[str] = field(default_factory=list)
    reused: bool = False
    trained: bool = False


CACHE_ENV = "DAWEXPORT_CACHE"


def cache_root(spec: InstrumentSpec) -> Path:
    """Stage caches live beside the output folders (build/.dawexport-cache/), or where $DAWEXPORT_CACHE says
    (`dawexport build --cache DIR`: one cache for many specs, or storage every node of a cluster sees)."""
    chosen = os.environ.get(CACHE_ENV)
    return Path(chosen).expanduser().resolve() if chosen else spec.output_dir().parent / ".dawexport-cache"


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
            _say_if_long(key, path, audio.shape[1] / rate, progress)
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


LONG_SOURCE_S = 60.0


def _say_if_long(key: str, path: Path, seconds: float, progress: Progress) -> None:
    """Say early that a long source takes a while (about 4 s of analysis per minute of sound on one core)."""
    if seconds > LONG_SOURCE_S:
        progress.info(f"{key} {path.name} is {seconds / 60:.1f} minutes long: analysing it takes about "
                      f"{4 * seconds / 60:.0f} s or more; trim it to the sound you want to play for a faster build")


def _channel_of(parts: dict[str, np.ndarray], channel: str) -> np.ndarray:
    """A mono source feeds both sides of a stereo instrument; its side channel is silent."""
    if channel in parts:
        return parts[channel]
    mono = parts["mono"]
    return np.zeros_like(mono) if channel == "S" else mono


# ---------------------------------------------------------------- model

def model_folder(spec: InstrumentSpec, engine: Engine, key: str) -> Path:
    """Where the trained model for `key` (`engine.cache_key(corpus)`) is cached."""
    return cache_root(spec) / "models" / f"{engine.name}-{key}"


def fit_or_load(engine: Engine, corpus: Corpus, spec: InstrumentSpec, progress: Progress = SILENT) -> bool:
    """Train the engine (resuming an interrupted run) unless a model for this corpus+settings is cached.

    Returns True when it trained.
    """
    key = engine.cache_key(corpus)
    model_dir = _model_dir(engine, corpus, spec)
    if (model_dir / "complete").exists() and _load_cached_model(engine, model_dir, progress):
        progress.stage("model", f"cached {engine.name} model {key}")
        return False
    workdir = cache_root(spec) / "training" / f"{engine.name}-{key}"
    workdir.mkdir(parents=True, exist_ok=True)
    if engine.capabilities.trainable:
        progress.stage("train", f"{engine.name} on {len(corpus.clips)} clips at {corpus.sample_rate} Hz "
                       f"(checkpoints in {workdir})")
    else:
        progress.stage("model", f"{engine.name} (no training)")
    _fit_healing(engine, corpus, workdir, progress)
    previews = workdir / "previews"
    if previews.is_dir():             # clips written while it trained: keep them for listening
        kept = cache_root(spec) / "previews" / f"{engine.name}-{key}"
        shutil.rmtree(kept, ignore_errors=True)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(previews), str(kept))
        progress.info(f"training previews: {kept}")
    partial = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        engine.save(partial)
        if (workdir / TRAINING_LOG).exists():  # the training curve stays with the model (the build report reads it)
            shutil.copy2(workdir / TRAINING_LOG, partial / TRAINING_LOG)
        (partial / "complete").write_text(key)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)     # a full disk keeps no half-written model
        raise _as_os_error(error, partial) from None
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(partial, model_dir)
    shutil.rmtree(workdir, ignore_errors=True)
    # Render from the saved model, not the one in memory: a model that does not survive saving bit for bit
    # (the conceptor's does not) would otherwise render differently in a cold build, a warm one and on a cluster.
    engine.load(model_dir)
    return True


def _as_os_error(error: BaseException, path: Path) -> BaseException:
    """safetensors reports a full disk as 'SafetensorError: ... (os error 28)': make it the OSError it is."""
    found = re.search(r"\(os error (\d+)\)", str(error)) if not isinstance(error, OSError) else None
    if found is None:
        return error
    code = int(found.group(1))
    return OSError(code, os.strerror(code), str(path))


def _model_dir(engine: Engine, corpus: Corpus, spec: InstrumentSpec) -> Path:
    return model_folder(spec, engine, engine.cache_key(corpus))


def _load_cached_model(engine: Engine, model_dir: Path, progress: Progress) -> bool:
    """Load a cached model; a corrupt one is derived data: warn, discard it and return False (train again).

    Nothing in the cache can run code (no pickle), so discarding is always safe.
    """
    try:
        engine.load(model_dir)
        return True
    except (DawexportError, OSError, ValueError, KeyError, IndexError, TypeError) as error:
        _discard(model_dir, f"cached {engine.name} model", error, progress)
        return False


def _fit_healing(engine: Engine, corpus: Corpus, workdir: Path, progress: Progress) -> None:
    """Fit, resuming from the checkpoint in `workdir`; a corrupt checkpoint is discarded and training restarts."""
    try:
        engine.fit(corpus, workdir, progress)
    except DawexportError as error:
        if error.file is None or not _inside(Path(error.file), workdir):
            raise
        _discard(workdir, "training checkpoint", error, progress)
        workdir.mkdir(parents=True, exist_ok=True)
        engine.fit(corpus, workdir, progress)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _discard(path: Path, what: str, error: Exception, progress: Progress) -> None:
    reason = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
    progress.info(f"warning: {what} {path} is corrupt ({reason}); discarding it and making it again")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- render

def render_here(engine: Engine, plan: RenderPlan, requests: list, progress: Progress = SILENT) -> list[np.ndarray]:
    """Render requests in this process, in the engine's own batches."""
    return engine.render_grains(requests, progress) if plan.kind == "kit" else engine.render(requests, progress)


def render_takes(engine: Engine, plan: RenderPlan, model_key: str, spec: InstrumentSpec,
                 progress: Progress = SILENT, render: Callable = render_here) -> list[np.ndarray]:
    """Render every request of the plan (cached by model and plan), one array per request."""
    requests = plan.requests()
    digest = hashlib.sha256(json.dumps([model_key, [repr(r) for r in requests]]).encode()).hexdigest()[:20]
    cache = cache_root(spec) / "renders" / f"{digest}.npz"
    takes = _load_cached_takes(cache, len(requests), progress)
    if takes is not None:
        progress.stage("render", f"cached {len(requests)} takes")
        return takes
    what = "pads" if plan.kind == "kit" else "cells"
    progress.stage("render", f"{len(plan.cells)} {what} × {len(plan.channels)} channel(s) = {len(requests)} "
                   f"renders at {engine.take_rate} Hz")
    takes = render(engine, plan, requests, progress)
    _check_finite(takes, engine)
    _save_takes(cache, takes)
    return takes


class NonFiniteRender(BuildError):
    """The model rendered NaN or infinite samples."""


def _check_finite(takes: list[np.ndarray], engine: Engine) -> None:
    for i, take in enumerate(takes):
        if not np.all(np.isfinite(take)):
            raise NonFiniteRender(f"the {engine.name} model rendered NaN or infinite samples (render {i})",
                                  fix="train again with a lower engine.settings.lr, or another seed")


def _load_cached_takes(cache: Path, count: int, progress: Progress) -> list[np.ndarray] | None:
    """The cached renders, or None when there are none; a corrupt cache (truncated, bit-flipped, empty,
    wrong shape, NaN) is warned about, discarded and rendered again. Pickles are never loaded."""
    if not os.path.lexists(cache):
        return None
    try:
        with np.load(cache, allow_pickle=False) as data:
            takes = [data[f"t{i}"] for i in range(count)]
        for take in takes:
            if take.ndim not in (1, 2) or take.dtype != np.float32 or not np.all(np.isfinite(take)):
                raise ValueError("a take is not a finite float32 signal")
        return takes
    except Exception as error:  # noqa: BLE001 - zipfile, zlib, EOF, OS and format errors alike: derived data
        _discard(cache, "render cache", error, progress)
        return None


def _save_takes(cache: Path, takes: list[np.ndarray]) -> None:
    """Write the renders atomically; on failure (a full disk) no partial file stays behind."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(cache.stem + ".partial.npz")
    try:
        np.savez(partial, **{f"t{i}": np.asarray(t, dtype=np.float32) for i, t in enumerate(takes)})
        os.replace(partial, cache)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- build

@dataclass(frozen=True)
class Stages:
    """Where the heavy stages run. By default all here, one after another; `dawexport.cluster` hands them
    to Ray workers. `fit` is `fit_or_load`'s signature, `render` is `render_here`'s, `map` the builtin's
    (post-processing applies `process_take` to every take through it)."""
    fit: Callable = fit_or_load
    render: Callable = render_here
    map: Callable = map


HERE = Stages()


def build_key(spec: InstrumentSpec) -> str:
    """What the finished folder depends on: the spec's content, the sources' bytes and this version."""
    digest = hashlib.sha256(__version__.encode())
    digest.update(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode())
    for recordings in spec.sources.values():
        for recording in recordings:
            digest.update(spec.source_path(recording).read_bytes())
    return digest.hexdigest()[:20]


def build(spec_or_path, *, quiet: bool = False, force: bool = False, progress: Progress | None = None,
          stop_after: str | None = None, stages: Stages = HERE) -> BuildResult:
    """Build the instrument folder for a spec. `stop_after="train"` stops once the model exists."""
    progress = progress or Progress(quiet=quiet)
    first_stage = len(progress.stages)           # the build report shows this build's stages
    spec = spec_or_path if isinstance(spec_or_path, InstrumentSpec) else load_spec(spec_or_path)
    target = spec.output_dir()
    key = build_key(spec)
    made_by = _spec_identity(spec)
    _check_output_place(spec, target)
    _recover_output(target, progress)
    check_target(target, spec=made_by)
    if not force and stop_after is None and _up_to_date(target, key):
        progress.stage("done", f"{target} is up to date (use --force to rebuild)")
        return BuildResult(target, reused=True)

    engine = make_engine(spec)
    progress.stage("sources", f"{sum(len(r) for r in spec.sources.values())} recording(s) → "
                   f"{engine.corpus_rate} Hz, stereo mode {spec.stereo}")
    corpus = build_corpus(spec, engine.corpus_rate, progress)
    trained = stages.fit(engine, corpus, spec, progress)
    note = clock_stop_note(engine.training, engine.settings)
    if note:
        progress.stage("train", note)
    if stop_after == "train":
        return BuildResult(target, trained=trained)

    textures = None
    if spec.texture is not None:      # the curator's kept candidates are the pads
        from .render.plan import make_texture_plan
        from .render.textures import kept_monos, spare_monos, texture_takes
        curation, candidates = _textures_or_retrain(engine, corpus, spec, progress, trained, stages)
        plan = make_texture_plan(spec, corpus.channels, curation.kept)
        takes = texture_takes(plan, candidates)
        textures = (kept_monos(curation, candidates), spare_monos(curation, candidates))
    else:
        plan = make_plan(spec, corpus.channels,
                         grains=engine.grain_catalogue() if spec.kit is not None else None)
        takes = _render_or_retrain(engine, corpus, plan, spec, progress, trained, stages)

    from .export import write_formats
    from .render.assemble import assemble_instrument
    from .report import write_build_report
    with Staging(target, spec=made_by) as staging:
        progress.stage("samples", f"post-processing {len(plan.cells)} samples → {spec.output.sample_rate} Hz, "
                       f"{spec.output.bit_depth}-bit")
        settings = SampleSettings.from_spec(spec)
        samples = make_samples(plan, takes, engine.take_rate, settings, staging.path, progress, stages.map)
        instrument = assemble_instrument(spec, plan, samples, engine)
        instrument = replace(instrument, wavetables=tuple(_wavetables(spec, engine, corpus, staging.path,
                                                                      progress, textures)))
        progress.stage("export", ", ".join(spec.output.formats))
        files = [s.path for s in instrument.samples]
        files += [p for table in instrument.wavetables for p in (table.path, *table.extra_paths)]
        stamp_files(staging.path, files, build_time(spec))        # presets record the samples' dates
        options = {"ableton": {"live_version": spec.output.live_version, "location": target}}
        files += write_formats(instrument, staging.path, spec.output.formats, options)
        files += write_build_report(staging.path, spec, engine, corpus, instrument, samples, progress,
                                    first_stage=first_stage, model_dir=_model_dir(engine, corpus, spec),
                                    trained=trained)
        manifest = {"dawexport": __version__, "build_key": key, "engine": engine.name, "spec": made_by,
                    "files": sorted(set(files)), "depends_on": depends_on(spec, engine)}
        (staging.path / MANIFEST).write_text(json.dumps(manifest, indent=1))
        staging.publish()
    progress.stage("done", f"{target} ({len(files)} files)")
    return BuildResult(target, files=sorted(set(files)), trained=trained)


def _render_or_retrain(engine, corpus, plan, spec, progress, trained: bool, stages: Stages = HERE
                       ) -> list[np.ndarray]:
    """Render; a cached model that renders NaN or fails to render is corrupt (a value of the wrong type,
    say): discard it, train again and render once more."""
    try:
        return render_takes(engine, plan, engine.render_key(corpus), spec, progress, stages.render)
    except (NonFiniteRender, EngineError) as error:
        if trained:
            raise
        _discard(_model_dir(engine, corpus, spec), f"cached {engine.name} model", error, progress)
        stages.fit(engine, corpus, spec, progress)
        return render_takes(engine, plan, engine.render_key(corpus), spec, progress, stages.render)


def _textures_or_retrain(engine, corpus, spec, progress, trained: bool, stages: Stages = HERE):
    """Generate and curate texture candidates; a cached model that generates NaN or fails to generate is
    corrupt (as in `_render_or_retrain`): discard it, train again and generate once more. Too few usable
    textures is the model's quality, not corruption: that error stands."""
    from .render.textures import TooFewTextures, choose_textures

    def choose():
        return choose_textures(spec, engine, corpus, engine.render_key(corpus), cache_root(spec) / "renders",
                               progress)
    try:
        return choose()
    except EngineError as error:
        if trained or isinstance(error, TooFewTextures):
            raise
        _discard(_model_dir(engine, corpus, spec), f"cached {engine.name} model", error, progress)
        stages.fit(engine, corpus, spec, progress)
        return choose()


def _spec_identity(spec: InstrumentSpec) -> str | None:
    """Which spec made a folder, as the manifest records it: the spec file's path from the output folder
    (so a project folder moved as a whole keeps its builds), or its absolute path where there is none."""
    if spec.spec_path is None:
        return None
    path = spec.spec_path.resolve()
    try:
        return Path(os.path.relpath(path, spec.output_dir().resolve())).as_posix()
    except ValueError:      # another drive (Windows)
        return str(path)


def _check_output_place(spec: InstrumentSpec, target: Path) -> None:
    """The output folder may not lie inside a cache (found before any work, not at publish)."""
    if ".dawexport-cache" in target.parts:
        raise SpecError("output.dir points into dawexport's own cache", file=str(spec.spec_path or "<spec>"),
                        key="output.dir", fix="point output.dir at a folder of its own, e.g. build/"
                        f"{spec.name}")


def _recover_output(target: Path, progress: Progress) -> None:
    """Roll back or clean up what a killed build left beside the output folder."""
    for line in recover(target):
        progress.info(line)


def _wavetables(spec, engine, corpus, folder, progress, textures=None) -> list:
    """`textures`: a texture instrument's (kept, spare) textures, see `make_wavetables`."""
    if not spec.wavetables:
        return []
    from .render.wavetables import make_wavetables
    progress.stage("wavetables", ", ".join(t.name for t in spec.wavetables))
    kept, spares = textures if textures is not None else (None, None)
    return make_wavetables(spec, engine, corpus, folder, progress, kept, spares)


def _up_to_date(target: Path, key: str) -> bool:
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("build_key") == key and all((target / f).exists() for f in manifest.get("files", []))


__all__ = ["build", "build_corpus", "fit_or_load", "render_takes", "render_here", "Stages", "BuildResult",
           "DawexportError",
           "ExportError", "MANIFEST"]
