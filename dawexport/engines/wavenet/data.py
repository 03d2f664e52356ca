"""The wavenet engine's training data: the corpus's recordings as stored with the model, and examples
pitch-shifted onto the augmentation grid, cropped for training.

    >>> crop(Example(np.arange(4, dtype=np.float32), 60.0), 2, 4).tolist()
    [2.0, 3.0, 0.0, 0.0]
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np

from ...audio.repitch import repitch
from ...audio.resample import resample
from ...errors import EngineError
from ...progress import SILENT
from ..base import Corpus
from ..common.seeding import SILENT_PEAK
from .settings import WaveNetSettings


@dataclass(frozen=True)
class SourceClip:
    """One recording of one source on one channel, as stored with the model (to encode at render time)."""
    source: str
    channel: str
    recording: int
    audio: np.ndarray        # float32 at the model's rate
    midi: float              # measured pitch (unpitched_root when there is none)
    silent: bool


@dataclass(frozen=True)
class Example:
    audio: np.ndarray        # float32
    midi: float


def corpus_at(corpus: Corpus, rate: int) -> Corpus:
    """The corpus resampled to `rate` (the same object when it is already there)."""
    if corpus.sample_rate == rate:
        return corpus
    clips = tuple(replace(c, audio=resample(np.asarray(c.audio, np.float32), corpus.sample_rate, rate))
                  for c in corpus.clips)
    return Corpus(rate, corpus.channels, clips)


def source_clips(corpus: Corpus, unpitched_root: int) -> list[SourceClip]:
    out = []
    for clip in corpus.clips:
        x = np.asarray(clip.audio, dtype=np.float32)
        midi = float(clip.pitch.midi) if np.isfinite(clip.pitch.midi) else float(unpitched_root)
        out.append(SourceClip(clip.source, clip.channel, clip.recording, x, midi,
                              bool(len(x) == 0 or float(np.max(np.abs(x))) < SILENT_PEAK)))
    return out


def shifts_for(midi: float, settings: WaveNetSettings) -> list[float]:
    """Semitone shifts that take a source at `midi` onto the augmentation grid (always including 0)."""
    lo = max(settings.augment_low - midi, -settings.max_shift)
    hi = min(settings.augment_high - midi, settings.max_shift)
    step = settings.augment_step
    shifts = {0.0}
    k = math.ceil(lo / step)
    while k * step <= hi + 1e-9:
        shifts.add(round(k * step, 6))
        k += 1
    return sorted(shifts)


def make_examples(clips: list[SourceClip], settings: WaveNetSettings, sample_rate: int, progress=SILENT
                  ) -> tuple[list[Example], list[Example]]:
    """(training examples with pitch-shifted copies, plain validation examples); identical audio (a mono
    source feeding both sides of a stereo instrument) is learned once."""
    seen: set[str] = set()
    train, plain = [], []
    for clip in clips:
        if clip.silent:
            continue
        digest = hashlib.sha256(clip.audio.tobytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        plain.append(Example(clip.audio, clip.midi))
        for shift in shifts_for(clip.midi, settings):
            audio = clip.audio if shift == 0 else repitch(clip.audio, 2.0 ** (shift / 12.0))
            if len(audio) >= 16:
                train.append(Example(np.asarray(audio, dtype=np.float32), clip.midi + shift))
    if not train:
        raise EngineError("the wavenet engine found no audible clip to learn from", key="sources",
                          fix="check that the sources are not silent")
    progress.info(f"wavenet: {len(plain)} distinct clip(s) → {len(train)} examples with pitch shifts "
                  f"({sum(len(e.audio) for e in train) / sample_rate:.0f} s of audio)")
    return train, plain


def crop(example: Example, offset: int, length: int) -> np.ndarray:
    """`length` samples from `offset` (which may be negative or run past the end: zero-padded)."""
    out = np.zeros(length, dtype=np.float32)
    lo, hi = max(0, offset), min(len(example.audio), offset + length)
    if hi > lo:
        out[lo - offset:hi - offset] = example.audio[lo:hi]
    return out


def noisy_guides(rows: np.ndarray, snr_db: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Training guides: each row (B, T) with white noise `snr_db` (B, 1) below its RMS, so the WaveNet learns
    to refine an imperfect version of what it must play, not to copy it.

        >>> rows = np.ones((1, 4000), np.float32)
        >>> g = noisy_guides(rows, np.array([[20.0]]), np.random.default_rng(0))
        >>> round(float(np.std(g - rows)), 2), g.dtype
        (0.1, dtype('float32'))
    """
    rms = np.sqrt(np.mean(np.square(rows, dtype=np.float64), axis=1, keepdims=True))
    sigma = rms * 10.0 ** (-np.asarray(snr_db, dtype=np.float64) / 20.0)
    return (rows + sigma * rng.standard_normal(rows.shape)).astype(np.float32)
