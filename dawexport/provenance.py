"""What a build depends on: recorded in its manifest, shown by `dawexport inspect BUILD_FOLDER`.

    >>> from dawexport.engines import make_engine
    >>> from dawexport.spec import load_spec
    >>> spec = load_spec("instruments/cat_flute.yaml")
    >>> record = depends_on(spec, make_engine(spec))
    >>> sorted(record)
    ['dawexport', 'engine', 'libraries', 'reproducible', 'sources']
    >>> record["engine"]["settings"]["max_steps"], record["sources"]["cat"][0]["file"]
    (1200, 'sounds/cat_meow.flac')

Everything here is a pure function of the spec, the sources' bytes, the engine (with what its training
reached) and the library versions, never of the clock or the machine's name, so two builds of one spec on one
machine write the same manifest byte for byte; the files a build writes carry the sources' date
(`build_time`), not the build's, because the Ableton presets record it.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

from . import __version__
from .errors import DawexportError


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_hashes(spec) -> dict[str, list[dict]]:
    """Each source's recordings as the spec names them, with the SHA-256 of their bytes."""
    return {name: [{"file": recording.file.as_posix(), "sha256": file_sha256(spec.source_path(recording))}
                   for recording in recordings]
            for name, recordings in spec.sources.items()}


def library_versions() -> dict[str, str]:
    """Versions of what computes the sound: Python, numpy, scipy and (when an engine loaded it) torch."""
    import numpy
    import scipy
    versions = {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__}
    torch = sys.modules.get("torch")
    if torch is not None:
        versions["torch"] = torch.__version__
    return versions


def depends_on(spec, engine) -> dict:
    """The build's dependencies: dawexport's version, the engine with its settings, seed and what training
    reached, the sources' hashes and the library versions; `reproducible` is False when training was stopped
    by the clock (another machine, or a busier one, stops at another step)."""
    training = engine.training
    return {
        "dawexport": __version__,
        "engine": {"name": engine.name, "sample_rate": engine.sample_rate, "seed": engine.seed,
                   "device": spec.engine.device, "settings": engine.settings.model_dump(mode="json"),
                   "training": training},
        "sources": source_hashes(spec),
        "libraries": library_versions(),
        "reproducible": not (training and training.get("stopped_by") == "time"),
    }


def build_time(spec) -> int:
    """The date (Unix seconds) a build stamps on the audio files it writes, which the Ableton presets record
    beside each sample: `SOURCE_DATE_EPOCH` when set (the reproducible-builds convention), else the newest
    modification time of the spec and its sources, so that building again gives the same bytes (a spec made
    in code, with no file behind it, counts by its sources)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return int(epoch)
    paths = [spec.source_path(r) for recordings in spec.sources.values() for r in recordings]
    if spec.spec_path is not None and Path(spec.spec_path).exists():
        paths.append(Path(spec.spec_path))
    return max(int(p.stat().st_mtime) for p in paths)


def stamp_files(folder: Path, files, when: int) -> None:
    """Set the modification time of `files` (relative to `folder`) to `when`."""
    for name in files:
        os.utime(Path(folder) / name, (when, when))


def clock_stop_note(training: dict | None, settings) -> str | None:
    """What a build says when its training stopped by the clock (None when it did not)."""
    if not training or training.get("stopped_by") != "time":
        return None
    return (f"training stopped by its {settings.max_minutes:g}-minute budget at step {training['steps']} of "
            f"{settings.max_steps}: another machine, or this one when busier, reaches another step and builds "
            "another instrument. The step is recorded in the manifest; remove max_minutes for a reproducible "
            "build")


def read_manifest(folder: Path) -> dict:
    """The manifest of a build folder; a DawexportError naming the folder when there is none."""
    from .publish import MANIFEST
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        raise DawexportError("not a dawexport build folder (no readable manifest)", file=str(folder),
                             fix="pass a folder that `dawexport build` wrote, or the spec (YAML) itself"
                             ) from None
    if not isinstance(manifest, dict):
        raise DawexportError("the build manifest is damaged", file=str(path), fix="build the spec again")
    return manifest


def describe_build(folder: Path) -> str:
    """A few lines on what a build folder depends on, from its manifest."""
    manifest = read_manifest(folder)
    record = manifest.get("depends_on")
    lines = [f"{folder}: built by dawexport {manifest.get('dawexport', '?')}, {len(manifest.get('files', []))} "
             f"files, build key {manifest.get('build_key', '?')}"]
    if not isinstance(record, dict):
        lines.append("this build predates dependency records: rebuild it to record them")
        return "\n".join(lines)
    engine = record.get("engine", {})
    lines.append(f"engine: {engine.get('name')} at {engine.get('sample_rate')} Hz, seed {engine.get('seed')}, "
                 f"device {engine.get('device')}")
    training = engine.get("training")
    if training:
        lines.append(f"training: {training.get('steps')} steps (stopped by {training.get('stopped_by')}; best "
                     f"validation at step {training.get('best_step')}) on {training.get('device')}, "
                     f"{training.get('precision')}")
    settings = engine.get("settings") or {}
    if settings:
        lines.append("settings: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(settings.items())))
    for name, recordings in (record.get("sources") or {}).items():
        for recording in recordings:
            lines.append(f"source {name}: {recording.get('file')} sha256 {recording.get('sha256')}")
    libraries = record.get("libraries") or {}
    lines.append("libraries: " + ", ".join(f"{k} {v}" for k, v in libraries.items()))
    if record.get("reproducible"):
        lines.append("reproducible: yes, byte for byte with the same spec, sources, versions and CPU kind "
                     "(see README: Reproducible builds)")
    else:
        lines.append("reproducible: no, training stopped by the clock (max_minutes) at the step above")
    return "\n".join(lines)


__all__ = ["build_time", "clock_stop_note", "depends_on", "describe_build", "file_sha256", "library_versions",
           "read_manifest", "source_hashes", "stamp_files"]
