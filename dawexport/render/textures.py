"""Texture instruments: generate candidates with a texture engine, let the curator keep the good ones, and
turn each kept texture into a pad's takes (every velocity layer, every channel).

    curation, audio = choose_textures(spec, engine, corpus, model_key, cache, progress)
    plan = make_texture_plan(spec, corpus.channels, curation.kept)
    takes = texture_takes(plan, audio, velocity_range_db=24.0)    # same order as a kit's renders

Candidates are generated `texture.candidate_count` at a time (cached by model and request, like every
render); while fewer than `texture.count` pass, another round is generated (up to `texture.rounds`).
Looping textures are generated a crossfade longer than `texture.length`: that extra lead-in is what the
loop's end fades into, so the loop wraps seamlessly (see `render.samples`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..audio.features import mel_profile_db, sources_flatness
from ..engines.base import TextureRequest
from ..engines.common.velocity import velocity_gain
from ..errors import EngineError
from ..progress import SILENT
from .curator import Curation, curate


class TooFewTextures(EngineError):
    """The curator found fewer usable textures than texture.count (a model's quality, not a corrupt file)."""


class NonFiniteTextures(EngineError):
    """The model generated NaN or infinite samples: a corrupt (or diverged) model."""


def generated_length_s(texture) -> float:
    return texture.length + (texture.crossfade if texture.loop else 0.0)


def generate_candidates(engine, channels: tuple[str, ...], texture, first: int, count: int, model_key: str,
                        cache_dir: Path, progress=SILENT) -> list[dict[str, np.ndarray]]:
    """Candidates first … first + count - 1, each a dict channel → audio at the engine's rate (cached)."""
    requests = [TextureRequest(channel, generated_length_s(texture), i)
                for i in range(first, first + count) for channel in channels]
    digest = hashlib.sha256(json.dumps([model_key, [repr(r) for r in requests]]).encode()).hexdigest()[:20]
    cache = Path(cache_dir) / f"textures-{digest}.npz"
    takes = None
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as data:
                takes = [data[f"t{i}"] for i in range(len(requests))]
            if not all(t.ndim == 1 and np.all(np.isfinite(t)) for t in takes):
                raise ValueError("a candidate is not a finite signal")
            progress.stage("textures", f"cached {count} candidates")
        except Exception:  # noqa: BLE001 - zipfile, zlib, EOF, OS and format errors alike: derived data
            progress.info(f"warning: discarding an unreadable render cache entry ({cache.name}); generating again")
            takes = None
            cache.unlink(missing_ok=True)
    if takes is None:
        progress.stage("textures", f"generating {count} candidates × {len(channels)} channel(s) of "
                       f"{generated_length_s(texture):.2f} s at {engine.sample_rate} Hz")
        takes = engine.render_textures(requests, progress)
        if not all(np.all(np.isfinite(t)) for t in takes):
            raise NonFiniteTextures(f"the {engine.name} model generated NaN or infinite samples",
                                    fix="train again with a lower engine.settings.lr, or another seed")
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.stem + ".partial.npz")
        np.savez(partial, **{f"t{i}": np.asarray(t, dtype=np.float32) for i, t in enumerate(takes)})
        os.replace(partial, cache)
    n = len(channels)
    return [dict(zip(channels, takes[k * n:(k + 1) * n])) for k in range(count)]


def source_profile(corpus) -> np.ndarray:
    """The sources' time-averaged log-mel spectrum: what the curator measures distance to."""
    audible = [c.audio for c in corpus.clips if len(c.audio) and float(np.max(np.abs(c.audio))) > 1e-4]
    return mel_profile_db(audible or [corpus.clips[0].audio], corpus.sample_rate)


def mono(candidate: dict[str, np.ndarray]) -> np.ndarray:
    parts = list(candidate.values())
    length = min(len(p) for p in parts)
    return np.mean([p[:length] for p in parts], axis=0)


def choose_textures(spec, engine, corpus, model_key: str, cache_dir: Path, progress=SILENT
                    ) -> tuple[Curation, list[dict[str, np.ndarray]]]:
    """Generate candidates round by round and curate them; returns the curation and every candidate's audio."""
    texture = spec.texture
    reference = source_profile(corpus)
    hiss = sources_flatness([c.audio for c in corpus.clips], corpus.sample_rate)
    channels = tuple(corpus.channels)
    audio: list[dict[str, np.ndarray]] = []
    curation = None
    for _ in range(texture.rounds):
        audio += generate_candidates(engine, channels, texture, len(audio), texture.candidate_count, model_key,
                                     cache_dir, progress)
        per_channel = [[a[ch] for ch in channels] for a in audio] if channels == ("L", "R") else None
        curation = curate([mono(a) for a in audio], engine.sample_rate, texture.count, reference, per_channel,
                          hiss)
        passed = sum(c.rejected is None for c in curation.candidates)
        progress.info(f"curator: {passed} of {len(audio)} candidates pass ("
                      + ", ".join(f"{k} {v}" for k, v in curation.counts().items()) + ")")
        if passed >= texture.count:
            break
    if len(curation.kept) < texture.count:
        raise TooFewTextures(f"the model made only {len(curation.kept)} usable textures of "
                          f"{len(curation.candidates)} candidates (the rest were silent), but texture.count is "
                          f"{texture.count}", key="texture.count",
                          fix="train longer (engine.settings.max_minutes, max_steps), raise texture.candidates, "
                              "or lower texture.count")
    if curation.filled:
        progress.info(f"curator: {curation.filled} kept texture(s) did not pass (stuck, far from the sources, or noise) and fill the "
                      f"count; train longer or raise texture.candidates for better ones")
    return curation, audio


def texture_takes(plan, audio: list[dict[str, np.ndarray]], velocity_range_db: float = 24.0
                  ) -> list[np.ndarray]:
    """One array per cell and channel (cell-major, as `RenderPlan.requests` orders renders): the pad's
    texture at its layer's velocity (the engines' one velocity law)."""
    return [np.asarray(audio[cell.pad.candidate][channel], dtype=np.float32)
            * np.float32(velocity_gain(cell.layer.velocity, velocity_range_db))
            for cell in plan.cells for channel in plan.channels]


def kept_monos(curation: Curation, audio: list[dict[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """(label, mono audio) of each kept texture in key order (for texture wavetables)."""
    return [(c.label, mono(audio[c.index])) for c in curation.kept]


def spare_monos(curation: Curation, audio: list[dict[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """(label, mono audio) of each candidate that passed but was not kept (a texture wavetable's spares)."""
    kept = {c.index for c in curation.kept}
    return [(c.label, mono(audio[c.index])) for c in curation.candidates
            if c.rejected is None and c.index not in kept]
