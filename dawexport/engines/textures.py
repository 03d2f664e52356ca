"""What the texture engines (`samplernn`, `lstm_vae`) share: their training settings, the augmented
training audio (time-stretched and optionally pitch-shifted copies of every channel of every source),
the preview clips written while they train, and the onsets they re-prime a texture from.

    originals, copies = training_audio(corpus, settings, progress)     # float32 arrays at the corpus rate
    hook = preview_hook(workdir, 16000, generate, settings)  # Trainer(on_validate=hook)

A texture model learns the sound of the whole corpus (every source and channel); a texture instrument asks
it to babble on each channel separately (the stereo split every engine gets), so a stereo source gives
textures whose two sides differ like the source's.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from pydantic import Field, field_validator
from scipy.signal import butter, sosfiltfilt

from ..errors import EngineError
from ..progress import SILENT
from .base import Corpus, Engine, RenderRequest, TextureRequest, TrainingSettings

SILENT_PEAK = 10.0 ** (-80.0 / 20.0)
MATCH_TAKES = 16             # takes the match EQ is fitted on, at the end of training ...
MATCH_SECONDS = 4.0          # ... each this long
MATCH_CHANNEL = "match-eq"   # their channel name in the generation seeds: no texture is ever one of them


class TextureSettings(TrainingSettings):
    """Settings both texture engines take: training budget, augmentation, previews and temperature."""
    max_steps: int = Field(1000, ge=1, description="training stops after this many steps (about 12 minutes "
                                                   "of the default SampleRNN on 2 busy CPU cores)")
    stretches: list[float] = Field(default_factory=lambda: [0.92, 1.08],
                                   description="time-stretch factors of the extra copies (1.0 = the source)")
    pitch_shifts: list[float] = Field(default_factory=list, description="semitones of pitch-shifted copies")
    highpass_hz: float | None = Field(None, gt=0, le=4000,
                                      description="high-pass the sources first (SONGSHTR: 500 Hz often helps)")
    preview_every: int = Field(500, ge=0, description="steps between preview clips (0: none)")
    preview_clips: int = Field(3, ge=1, le=16)
    preview_seconds: float = Field(2.0, gt=0, le=30)
    temperature: float = Field(1.0, ge=0, le=4, description="sampling spread; 0 = always the likeliest")
    reprime_every: float = Field(0.5, ge=0, le=60, description="seconds between fresh primes from an onset of the "
                                                              "sources (0: primed once: a model trained on a drum "
                                                              "take then decays into a held hum or silence)")
    primed_once: float = Field(0.0, ge=0, le=1, description="share of the textures primed once and left to run "
                                                          "even when re-priming is on (they settle into hums "
                                                          "and drones: what a texture wavetable needs)")
    render_batch: int = Field(64, ge=1, le=1024, description="textures generated together")
    match_eq: float = Field(1.0, ge=0, le=1, description="the match EQ: at the end of training the model babbles "
                                                       f"{MATCH_TAKES} takes of {MATCH_SECONDS:g} s (seeds of "
                                                       "their own), and the smooth EQ that brings their typical "
                                                       "spectrum to the sources' is kept with the model; every "
                                                       "texture goes through this share of it (0: none fitted)")

    @field_validator("stretches")
    @classmethod
    def _stretches(cls, values: list[float]) -> list[float]:
        if any(not 0.5 <= v <= 2.0 for v in values):
            raise ValueError("time-stretch factors lie between 0.5 and 2.0")
        return values

    @field_validator("pitch_shifts")
    @classmethod
    def _shifts(cls, values: list[float]) -> list[float]:
        if any(abs(v) > 24 for v in values):
            raise ValueError("pitch shifts lie within ±24 semitones")
        return values


RENDER_ONLY = ("temperature", "reprime_every", "primed_once", "render_batch", "preview_every", "preview_clips",
               "preview_seconds")


def highpass(x: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase 4th-order Butterworth high-pass (clips shorter than the filter's reach are returned as is)."""
    sos = butter(2, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    if len(x) <= 3 * 2 * (len(sos) * 2 + 1):
        return np.asarray(x, dtype=np.float32)
    return sosfiltfilt(sos, np.asarray(x, dtype=np.float64)).astype(np.float32)


def training_audio(corpus: Corpus, settings: TextureSettings, progress=SILENT
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(every distinct, audible clip of the corpus (a mono source feeding both sides is learned once), their
    time-stretched and pitch-shifted copies): float32 arrays at the corpus rate."""
    from ..audio.spectral import pitch_shift, time_stretch
    seen: set[str] = set()
    originals = []
    for clip in corpus.clips:
        x = np.asarray(clip.audio, dtype=np.float32)
        if len(x) == 0 or float(np.max(np.abs(x))) < SILENT_PEAK:
            continue
        digest = hashlib.sha256(x.tobytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        if settings.highpass_hz:
            x = highpass(x, corpus.sample_rate, settings.highpass_hz)
        originals.append(x)
    if not originals:
        raise EngineError("the texture engine found no audible clip to learn from", key="sources",
                          fix="check that the sources are not silent")
    copies = []
    for x in originals:
        copies += [time_stretch(x, factor) for factor in settings.stretches if abs(factor - 1.0) > 1e-6]
        copies += [pitch_shift(x, shift)[0] for shift in settings.pitch_shifts if shift != 0]
    copies = [np.asarray(c, dtype=np.float32) for c in copies if len(c) > 0]
    progress.info(f"{len(originals)} distinct clip(s) + {len(copies)} stretched/shifted copies: "
                  f"{sum(len(a) for a in originals + copies) / corpus.sample_rate:.1f} s of training audio")
    return originals, copies


def preview_hook(workdir: Path, sample_rate: int, generate: Callable[..., list],
                 settings: TextureSettings, progress=SILENT):
    """A `Trainer(on_validate=...)` hook writing `preview_clips` clips of `preview_seconds` into
    workdir/previews/ every `preview_every` steps (step_000500_1.wav ...), so a user can listen while it trains.
    `generate(model, count, frames, seed)` returns `count` float arrays."""
    if settings.preview_every <= 0:
        return None
    from ..audio.io import write_wav
    folder = Path(workdir) / "previews"
    frames = int(round(settings.preview_seconds * sample_rate))
    announced = []

    def hook(step: int, model) -> None:
        if step % settings.preview_every:
            return
        clips = generate(model, settings.preview_clips, frames, step)
        folder.mkdir(parents=True, exist_ok=True)
        for k, clip in enumerate(clips, 1):
            clip = np.asarray(clip, dtype=np.float32)
            peak = float(np.max(np.abs(clip))) if len(clip) else 0.0
            write_wav(folder / f"step_{step:06d}_{k}.wav", (clip / max(peak, 1.0))[None], sample_rate, "24")
        if not announced:
            progress.info(f"preview clips are written to {folder} while it trains")
            announced.append(True)

    return hook


def onset_frames(energy_db: np.ndarray, rise_db: float = 6.0, floor_db: float = 30.0, gap: int = 8) -> np.ndarray:
    """Onsets for re-priming a texture: blocks whose energy rises `rise_db` above both blocks before it, within `floor_db` of the loudest,
    at least `gap` blocks after the previous onset.

        >>> onset_frames(np.array([-60, -60, -10, -12, -14, -60, -60, -5, -8, -9.0]), gap=2)
        array([2, 7])
    """
    e = np.asarray(energy_db, dtype=np.float64)
    before = np.maximum(np.concatenate([[np.inf], e[:-1]]), np.concatenate([[np.inf, np.inf], e[:-2]]))
    candidates = np.flatnonzero((e - before >= rise_db) & (e >= e.max() - floor_db))
    kept: list[int] = []
    for i in candidates:
        if not kept or i - kept[-1] >= gap:
            kept.append(int(i))
    return np.array(kept, dtype=np.int64)


def is_primed_once(variation: int, share: float) -> bool:
    """Whether texture number `variation` is primed once (not re-primed): spread evenly, so any first k
    textures hold round(k · share) of them, give or take one.

        >>> [k for k in range(12) if is_primed_once(k, 0.25)]
        [3, 7, 11]
    """
    return share > 0 and int((variation + 1) * share + 1e-9) > int(variation * share + 1e-9)


__all__ = ["RENDER_ONLY", "TextureSettings", "highpass", "is_primed_once", "onset_frames", "preview_hook",
           "training_audio"]


class TextureEngine(Engine):
    """What the texture engines share: they refuse notes, and render textures longest first in batches of
    `settings.render_batch`, each texture seeded by its own (channel, variation) key, never by its batch;
    with `reprime_every`, the `primed_once` share of them (by variation) is generated without re-priming;
    every texture goes through the match EQ fitted at the end of training (`fit_match_eq`), if any.
    Subclasses implement `_generate(model, keys, n, reprime=True) -> list of arrays of n samples`, call
    `fit_match_eq(originals)` at the end of `fit` and keep `match_eq_db` with the model."""
    model = None
    match_eq_db: np.ndarray | None = None      # the match EQ (dB per band of `audio.match_eq`), or None

    def fit_match_eq(self, originals: list[np.ndarray], progress=SILENT) -> None:
        """Fit the match EQ: `MATCH_TAKES` takes of `MATCH_SECONDS`, generated as textures are (re-primed,
        the `primed_once` share not) from seeds no texture uses, against the time-averaged spectrum of
        `originals` (the training audio before its copies; see `audio.match_eq.texture_curve`)."""
        from ..audio.features import mel_profile_db
        from ..audio.match_eq import texture_curve
        self.match_eq_db = None
        if self.settings.match_eq <= 0:
            return
        t0 = time.monotonic()
        takes = self.render_textures([TextureRequest(MATCH_CHANNEL, MATCH_SECONDS, k) for k in range(MATCH_TAKES)],
                                     progress)
        curve = texture_curve(mel_profile_db(originals, self.sample_rate), takes, self.sample_rate)
        self.match_eq_db = curve.astype(np.float32)
        progress.info(f"{self.name}: match EQ fitted on {MATCH_TAKES} takes of {MATCH_SECONDS:g} s in "
                      f"{time.monotonic() - t0:.0f} s (from {curve.min():+.1f} to {curve.max():+.1f} dB)")

    def match_eq_record(self) -> dict:
        """The tensors that keep the match EQ with a saved model (none when there is none)."""
        import torch
        return {} if self.match_eq_db is None else {"match_eq_db": torch.from_numpy(self.match_eq_db.copy())}

    def read_match_eq(self, tensors) -> np.ndarray | None:
        """The match EQ a saved model holds; None from a model saved before there was one (it plays without)."""
        from ..audio.match_eq import N_BANDS
        if "match_eq_db" not in tensors:
            return None
        curve = tensors["match_eq_db"].numpy().astype(np.float32)
        if curve.shape != (N_BANDS,) or not np.all(np.isfinite(curve)):
            raise ValueError(f"match_eq_db has shape {curve.shape}, not ({N_BANDS},) finite values")
        return curve

    def _equalised(self, audio: np.ndarray) -> np.ndarray:
        if self.match_eq_db is None or self.settings.match_eq <= 0:
            return audio
        from ..audio.match_eq import equalise
        return equalise(audio, self.sample_rate, self.settings.match_eq * self.match_eq_db).astype(np.float32)

    def _preview(self, model, count: int, frames: int, step: int) -> list[np.ndarray]:
        """Preview clips during training (on the CPU, then the model goes back to its device)."""
        device = next(model.parameters()).device
        model.cpu()
        try:
            return self._generate(model, [(f"preview-{step}", k) for k in range(count)], frames)
        finally:
            model.to(device)

    def render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        raise EngineError(f"the {self.name} engine makes textures, not notes", key="engine.name",
                          fix="give the spec a texture: section, or use a pitched engine (ddsp, sampler)")

    def render_textures(self, requests: Sequence[TextureRequest], progress=None) -> list[np.ndarray]:
        if self.model is None:
            raise EngineError(f"the {self.name} engine has no model; call fit() or load() first")
        progress = progress or SILENT
        requests = list(requests)
        lengths = [max(1, int(round(r.duration_s * self.sample_rate))) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: -lengths[i])
        size = self.settings.render_batch
        out: list[np.ndarray | None] = [None] * len(requests)
        t0 = time.monotonic()
        bar = progress.bar(total=sum(lengths), desc=f"{self.name} generate", unit="sample")
        try:
            for start in range(0, len(order), size):
                chunk = order[start:start + size]
                once = [is_primed_once(requests[i].variation, self.settings.primed_once) for i in chunk]
                for reprime in (True, False):
                    group = [i for i, o in zip(chunk, once) if o != reprime]
                    if not group:
                        continue
                    keys = [(requests[i].channel, requests[i].variation) for i in group]
                    audio = self._generate(self.model, keys, lengths[chunk[0]], reprime)
                    for j, i in enumerate(group):
                        out[i] = self._equalised(audio[j][:lengths[i]])
                bar.update(sum(lengths[i] for i in chunk))
        finally:
            bar.close()
        seconds = time.monotonic() - t0
        progress.info(f"{self.name}: {len(requests)} texture(s), {sum(lengths):,} samples in {seconds:.1f} s "
                      f"({sum(lengths) / max(seconds, 1e-9) / self.sample_rate:.2f}× real time, aggregate)")
        return out  # type: ignore[return-value]
