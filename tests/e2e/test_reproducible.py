"""Reproducible builds: the same spec gives the same files whatever else the machine is doing.

Every engine renders a take from the take's own request and the spec's seed alone, so rendering a grid whole,
in shards or in another order gives the same bytes; a tiny spec built in separate caches (quiet, with the CPU
busy, with another torch thread count) gives byte-identical folders.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import dawexport.engines  # noqa: F401,I001  (before torch: sets the OpenMP wait policy)
import torch

from dawexport.audio.analysis import PitchEstimate
from dawexport.cli import main
from dawexport.engines import engine_class
from dawexport.engines.base import Clip, Corpus, GrainRequest, RenderRequest
from dawexport.pipeline import MANIFEST, build
from dawexport.progress import Progress
from dawexport.report import RUN_SPECIFIC

SOUNDS = Path(__file__).resolve().parents[2] / "instruments" / "sounds"

SR = 16000


def _tone(f0: float, seconds: float, bright: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(bright ** (k - 1) * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 8))
    x = 0.4 * x / np.max(np.abs(x)) * np.minimum(1.0, t / 0.03) * np.exp(-0.8 * t)
    x += 0.005 * np.random.default_rng(seed).standard_normal(len(t))
    return x.astype(np.float32)


def _corpus(channels=("L", "R")) -> Corpus:
    clips = []
    for i, (name, f0, bright) in enumerate((("dark", 220.0, 0.3), ("bright", 330.0, 0.7))):
        midi = 69 + 12 * np.log2(f0 / 440)
        for j, channel in enumerate(channels):
            audio = _tone(f0, 0.8, bright, seed=10 * i + j) * (1.0 if j == 0 else 0.6)
            clips.append(Clip(name, channel, 0, audio, PitchEstimate(f0, float(midi), 1.0, 1.0)))
    return Corpus(SR, tuple(channels), tuple(clips))


def _grid(channels=("L", "R")) -> list[RenderRequest]:
    """Blend points × notes × velocities × round robins × channels, with two note lengths."""
    out = []
    for weights in ((("dark", 1.0), ("bright", 0.0)), (("dark", 0.5), ("bright", 0.5)),
                    (("dark", 0.0), ("bright", 1.0))):
        for note in (55, 62):
            for velocity in (40, 127):
                for variation in (0, 1):
                    for channel in channels:
                        duration = 0.3 if note == 55 else 0.2
                        out.append(RenderRequest(weights, channel, note, velocity, duration, 0.1, variation))
    return out


TINY = {
    "ddsp": dict(latent_size=4, hidden_size=16, n_harmonics=12, noise_bands=9, n_mels=16, table_size=128,
                 max_steps=3, batch_size=2, crop_s=0.2, augment_copies=1, checkpoint_every=10, validate_every=10),
    "wavenet": dict(width=32, stacks=1, layers=4, encoder_width=8, encoder_layers=2, encoder_cycle=2, hop=128,
                    max_steps=3, batch_size=2, crop_samples=512, augment_low=55, augment_high=62,
                    augment_step=7.0, render_batch=64, checkpoint_every=10, validate_every=10,
                    guide_steps=3, guide_settings=dict(latent_size=4, hidden_size=16, n_harmonics=12, noise_bands=9,
                                                       n_mels=16, table_size=128, batch_size=2, crop_s=0.2,
                                                       augment_copies=1, checkpoint_every=10,
                                                       validate_every=10)),
    "sampler": {},
    # a tiny reservoir: its grains' conceptors span all 60 units, so the auto form runs the grid densely (the
    # low-rank form is tested on its own below)
    "conceptor": dict(reservoir_size=60, grains_per_source=3, grain_spacing_ms=None, n_reservoirs=1),
}


@pytest.fixture(scope="module", params=sorted(TINY))
def fitted(request, tmp_path_factory):
    name = request.param
    cls = engine_class(name)
    engine = cls(cls.Settings(**TINY[name]), sample_rate=SR, seed=7, device="cpu")
    engine.fit(_corpus(), tmp_path_factory.mktemp(name), None)
    return engine


def test_a_grid_renders_the_same_whole_in_shards_and_in_any_order(fitted):
    requests = _grid()
    if fitted.name == "wavenet":            # sample by sample: a quarter of the grid keeps the test short
        requests = requests[::4]
    whole = fitted.render(requests)
    shards = [requests[i:i + 5] for i in range(0, len(requests), 5)]
    sharded = [take for shard in shards for take in fitted.render(shard)]
    order = np.random.default_rng(3).permutation(len(requests))
    shuffled = fitted.render([requests[i] for i in order])
    alone = [fitted.render([r])[0] for r in requests[::7]]
    for i, take in enumerate(whole):
        assert take.dtype == np.float32 and np.any(take != 0), i
        assert sharded[i].tobytes() == take.tobytes(), (fitted.name, "shard", requests[i])
    for j, i in enumerate(order):
        assert shuffled[j].tobytes() == whole[i].tobytes(), (fitted.name, "order", requests[i])
    for j, take in enumerate(alone):
        assert take.tobytes() == whole[7 * j].tobytes(), (fitted.name, "alone", requests[7 * j])
    # what lets a cluster shard the engine's renders
    assert fitted.capabilities.batch_invariant


def _same_whole_and_in_shards(render, requests, size):
    """render(requests) whole, in shards of `size` and in reverse order: the same bytes, take by take."""
    whole = render(requests)
    sharded = [take for i in range(0, len(requests), size) for take in render(requests[i:i + size])]
    backwards = render(requests[::-1])[::-1]
    for i, take in enumerate(whole):
        assert np.any(take != 0), i
        assert sharded[i].tobytes() == take.tobytes(), ("shard", requests[i])
        assert backwards[i].tobytes() == take.tobytes(), ("order", requests[i])


def test_wavenet_takes_with_the_guides_high_band_render_the_same_whole_and_in_shards(tmp_path):
    """high_band: guide: the ddsp guide at the output rate, the WaveNet at 16 kHz, joined take by take."""
    from dawexport.engines.wavenet.data import corpus_at
    cls = engine_class("wavenet")
    engine = cls(cls.Settings(**TINY["wavenet"]), sample_rate=SR, seed=7, device="cpu", output_rate=44100)
    engine.fit(corpus_at(_corpus(), 44100), tmp_path, None)
    assert engine.take_rate == 44100 and engine.guide.sample_rate == 44100
    _same_whole_and_in_shards(engine.render, _grid()[::6], 3)


@pytest.fixture(scope="module")
def conceptor():
    cls = engine_class("conceptor")
    engine = cls(cls.Settings(**TINY["conceptor"]), sample_rate=SR, seed=7)
    engine.fit(_corpus(), None, None)
    return engine


def test_conceptor_low_rank_voices_and_grain_pads_render_the_same_whole_and_in_shards(conceptor):
    """The low-rank form (the grid test above runs the tiny reservoir's full-rank grains densely): voice
    blocks, bases padded per voice, whole transitions; and grain-kit pads, which the cluster shards too."""
    assert conceptor.capabilities.batch_invariant
    low = conceptor.settings.model_copy(update={"form": "lowrank"})
    dense, conceptor.settings = conceptor.settings, low
    try:
        _same_whole_and_in_shards(conceptor.render, _grid()[::2], 3)
    finally:
        conceptor.settings = dense
    pads = [GrainRequest(source, 0, positions, channel, note, 127, duration, 0.2)
            for source in ("dark", "bright") for positions, note, duration in (((0,), 36, 0.15), ((1, 2), 38, 0.25))
            for channel in ("L", "R")]
    _same_whole_and_in_shards(conceptor.render_grains, pads, 2)


# --------------------------------------------------------------------------- whole builds

BUILD_SETTINGS = dict(latent_size=4, hidden_size=16, n_harmonics=12, noise_bands=9, n_mels=16, table_size=128,
                      max_steps=4, batch_size=2, crop_s=0.2, augment_copies=1, validate_every=2)


def _spec(folder: Path, **settings) -> Path:
    for name in ("cat_meow.flac", "flute.wav"):
        shutil.copy(SOUNDS / name, folder / name)
    spec = {"name": "tiny", "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"},
            "engine": {"name": "ddsp", "sample_rate": 16000, "seed": 3,
                       "settings": {**BUILD_SETTINGS, **settings}},
            "blend": {"corners": ["cat", "flute"], "points_per_side": 2},
            "keys": {"low": "G3", "high": "D4", "every": 3}, "velocity_layers": 2, "round_robins": 2,
            "note": {"length": 0.6, "release": 0.2},
            "wavetables": [{"name": "morph", "along": "blend", "note": "C4", "frames": 3}]}   # every format
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _build_in(label: str, tmp_path: Path, spec: Path, monkeypatch) -> dict[str, bytes]:
    """Build into tmp_path/work/build/tiny with a fresh cache (work/build/.dawexport-cache), then move the
    build and its cache aside to tmp_path/label. The folder's place stays the same: Ableton presets record it."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    result = build(spec, quiet=True)
    assert result.trained and result.folder == work / "build" / "tiny"
    (work / "build").rename(tmp_path / label)
    return _files(tmp_path / label / "tiny")


def test_a_build_is_byte_identical_when_busy_and_with_another_thread_count(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    quiet = _build_in("quiet", tmp_path, spec, monkeypatch)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = _build_in("busy", tmp_path, spec, monkeypatch)
    finally:
        spinner.kill()
        spinner.wait()
    before = torch.get_num_threads()
    torch.set_num_threads(3 if before != 3 else 1)
    try:
        threads = _build_in("threads", tmp_path, spec, monkeypatch)
    finally:
        torch.set_num_threads(before)
    assert any(name.endswith(".wav") for name in quiet) and any(name.endswith(".adg") for name in quiet)
    for other in (busy, threads):
        assert sorted(other) == sorted(quiet)
        # report.html and report/build.json record this run's times and memory; every other file, the report's
        # pictures and sounds included, is the same
        assert [name for name in quiet if other[name] != quiet[name] and name not in RUN_SPECIFIC] == []
    record = json.loads(quiet[MANIFEST])["depends_on"]
    assert record["engine"]["training"]["steps"] == 4 and record["engine"]["training"]["stopped_by"] == "steps"
    assert record["engine"]["seed"] == 3 and record["reproducible"] is True
    assert {"numpy", "torch", "python"} <= set(record["libraries"])
    assert record["sources"]["cat"] == [{"file": "cat_meow.flac",
                                         "sha256": hashlib.sha256((SOUNDS / "cat_meow.flac").read_bytes()
                                                                  ).hexdigest()}]


def test_a_clock_stopped_build_records_its_step_and_says_so(tmp_path, monkeypatch, capsys):
    spec = _spec(tmp_path, max_steps=100_000, max_minutes=0.001)
    monkeypatch.chdir(tmp_path)
    result = build(spec, progress=Progress(stream=sys.stdout))
    out = capsys.readouterr().out
    record = json.loads((result.folder / MANIFEST).read_text())["depends_on"]
    training = record["engine"]["training"]
    assert training["stopped_by"] == "time" and 1 <= training["steps"] < 100_000
    assert record["reproducible"] is False
    assert f"at step {training['steps']} of 100000" in out and "remove max_minutes" in out
    assert main(["inspect", str(result.folder)]) == 0
    shown = capsys.readouterr().out
    assert f"training: {training['steps']} steps (stopped by time" in shown
    assert "reproducible: no" in shown and "sha256" in shown and "torch" in shown


def test_inspect_refuses_a_folder_that_is_not_a_build(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a dawexport build folder" in err and str(tmp_path) in err and "Traceback" not in err
