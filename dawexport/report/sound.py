"""The few sounds the report writes itself: a listening copy of each source, and a morph through each
wavetable. The instrument's samples are never copied: the page links to them in samples/.

    >>> table = np.stack([np.sin(2 * np.pi * np.arange(2048) / 2048), np.sign(np.sin(2 * np.pi * np.arange(2048) / 2048))])
    >>> morph = morph_through(table, seconds=0.5, sample_rate=8000, hz=100.0)
    >>> morph.shape, float(np.max(np.abs(morph))) <= 1.0
    ((4000,), True)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

PREVIEW_MAX_S = 10.0
MORPH_SECONDS = 4.0
MORPH_HZ = 130.81           # C3: low enough to hear every harmonic the table holds


def morph_through(table: np.ndarray, *, seconds: float = MORPH_SECONDS, sample_rate: int = 44100,
                  hz: float = MORPH_HZ) -> np.ndarray:
    """A steady note whose wavetable position sweeps from the first frame to the last (linear crossfade
    between neighbouring frames, as Serum's default), with short fades at both ends; peak 0.8."""
    table = np.asarray(table, dtype=np.float64)
    frames, size = table.shape
    n = int(round(seconds * sample_rate))
    phase = (np.arange(n) * hz / sample_rate) % 1.0 * size
    i0 = np.floor(phase).astype(int)
    frac = phase - i0
    i1 = (i0 + 1) % size
    position = np.linspace(0, frames - 1, n)
    f0 = np.floor(position).astype(int)
    f1 = np.minimum(f0 + 1, frames - 1)
    blend = position - f0

    def read(frame):
        return table[frame, i0] * (1 - frac) + table[frame, i1] * frac

    x = read(f0) * (1 - blend) + read(f1) * blend
    ramp = min(n // 2, int(0.01 * sample_rate))
    if ramp:
        x[:ramp] *= np.linspace(0, 1, ramp)
        x[-ramp:] *= np.linspace(1, 0, ramp)
    peak = float(np.max(np.abs(x))) or 1.0
    return (0.8 * x / peak).astype(np.float32)


def write_preview(source: Path, target: Path) -> tuple[int, int, float]:
    """A 16-bit listening copy of a source recording (at most PREVIEW_MAX_S seconds, its own rate and
    channels). Returns (sample rate, channels, seconds of the whole recording)."""
    from ..audio.io import read_audio
    audio, rate = read_audio(source)
    seconds = audio.shape[1] / rate
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(target), np.clip(audio[:, :int(PREVIEW_MAX_S * rate)].T, -1, 1), rate, subtype="PCM_16")
    return rate, audio.shape[0], seconds


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """A WAV as one float channel (the mean of its channels) and its rate."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = audio[:, 0].copy()
    for channel in range(1, audio.shape[1]):     # a column at a time: far faster than mean(axis=1)
        mono += audio[:, channel]
    return mono / audio.shape[1], rate
