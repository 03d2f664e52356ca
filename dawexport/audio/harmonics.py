"""The harmonics of a pitched sound, measured frame by frame on its known f0 track: each harmonic's sine
amplitude and the noise floor around it.

    >>> sr, hop = 16000, 128
    >>> t = np.arange(sr) / sr
    >>> tone = 0.5 * np.sin(2 * np.pi * 400 * t) + 0.1 * np.sin(2 * np.pi * 1200 * t)
    >>> levels = harmonic_levels(tone, sr, np.full(1 + sr // hop, 400.0), hop, 4)
    >>> levels.amplitude[60].round(3).tolist()            # harmonics 1-4 of 400 Hz, mid-note
    [0.5, 0.0, 0.1, 0.0]
    >>> levels.clear[60].tolist()                         # standing above the floor around them
    [True, False, True, False]

A frame j is centred on sample j·hop, the ddsp engine's control frames. `fidelity.harmonic_split` sums these
levels up per frequency band. A harmonic's amplitude is the
Hann-windowed spectrum's peak near k·f0 (scaled so a steady sine of amplitude a reads a, wherever it falls
between bins); its floor is the median of the spectrum over the rest of its band (k ± ½)·f0, away from the
peak's main lobe, in the same units. A harmonic is *clear* where it stands `STANDS_OUT_DB` above that floor: there its
level is the harmonic's own, not the noise's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STANDS_OUT_DB = 10.0               # white noise's own peaks pass this in a few % of cases
PITCH_TOLERANCE = 0.003            # relative f0 error the search for a harmonic's peak allows (5 cents)
MIN_BINS_PER_HARMONIC = 8          # the window is long enough to leave room for a floor between harmonics
LOBE_BINS = 3                      # bins either side of a peak that belong to it (a Hann main lobe is ±2)


@dataclass(frozen=True)
class HarmonicLevels:
    amplitude: np.ndarray      # (frames, harmonics) sine amplitude; 0 at or above Nyquist
    floor: np.ndarray          # (frames, harmonics) the spectrum's median around the harmonic, same units
    clear: np.ndarray          # (frames, harmonics) bool: amplitude ≥ STANDS_OUT_DB above the floor
    power: np.ndarray          # (frames,) the frame's power, summed over its bins (which frames are loud)


def analysis_size(sample_rate: int, lowest_f0_hz: float) -> int:
    """The FFT size (a power of two, ~46 ms or more) that gives the lowest f0 `MIN_BINS_PER_HARMONIC` bins.

        >>> analysis_size(44100, 392.0), analysis_size(44100, 100.0)
        (2048, 4096)
    """
    need = max(0.046 * sample_rate, MIN_BINS_PER_HARMONIC * sample_rate / max(lowest_f0_hz, 1.0))
    return int(min(2 ** int(np.ceil(np.log2(need))), 1 << 15))


def harmonic_levels(x: np.ndarray, sample_rate: int, f0_hz: np.ndarray, hop: int, n_harmonics: int,
                    n_fft: int | None = None) -> HarmonicLevels:
    """Amplitude, floor and clarity of harmonics 1..n_harmonics at each frame of the f0 track `f0_hz`
    (one value per frame of `hop` samples, frame j centred on sample j·hop; no NaN)."""
    x = np.asarray(x, np.float64).ravel()
    f0 = np.asarray(f0_hz, np.float64).ravel()
    n_frames = len(f0)
    n_fft = n_fft or analysis_size(sample_rate, float(f0.min()))
    window = np.hanning(n_fft + 2)[1:-1]
    scale = 2.0 / window.sum()
    bin_hz = sample_rate / n_fft
    padded = np.zeros((n_frames - 1) * hop + n_fft)
    seg = x[:len(padded) - n_fft // 2]
    padded[n_fft // 2:n_fft // 2 + len(seg)] = seg
    ks = np.arange(1, n_harmonics + 1, dtype=np.float64)
    amplitude = np.zeros((n_frames, n_harmonics))
    floor = np.zeros((n_frames, n_harmonics))
    power = np.zeros(n_frames)
    starts = np.arange(n_frames) * hop
    for lo in range(0, n_frames, 256):                       # blocks of frames bound the memory
        idx = starts[lo:lo + 256, None] + np.arange(n_fft)
        mag = np.abs(np.fft.rfft(padded[idx] * window, axis=1)) * scale
        power[lo:lo + len(mag)] = np.square(mag).sum(axis=1)
        for j in range(len(mag)):
            hz = f0[lo + j]
            below = ks * hz < 0.5 * sample_rate - 0.5 * hz
            k = ks[below]
            if not len(k):
                continue
            half = max(2, int(0.5 * hz / bin_hz))
            # the peak is sought within ±1 bin plus PITCH_TOLERANCE of k·f0: a wider search would find a
            # noise peak where there is no harmonic
            reach = np.minimum(half - 1, 1 + np.round(k * hz * PITCH_TOLERANCE / bin_hz)).astype(int)
            centre = np.round(k * hz / bin_hz).astype(int)
            offsets = np.arange(-half, half + 1)
            span = np.clip(centre[:, None] + offsets, 1, len(mag[j]) - 2)
            near = np.where(np.abs(offsets)[None, :] <= reach[:, None], mag[j][span], -1.0)
            peak_at = span[np.arange(len(k)), np.argmax(near, axis=1)]
            # Hann's own interpolation (Grandke): the larger neighbour's ratio gives the offset δ of the
            # true frequency from the peak bin, and the window's response there the scalloping to undo
            peak, left, right = mag[j][peak_at], mag[j][peak_at - 1], mag[j][peak_at + 1]
            ratio = np.maximum(left, right) / np.maximum(peak, 1e-20)
            delta = np.clip((2.0 * ratio - 1.0) / (ratio + 1.0), 0.0, 0.5)
            peak_amp = peak / (np.sinc(delta) / (1.0 - delta ** 2))
            away = np.abs(span - peak_at[:, None]) > LOBE_BINS
            rest = np.where(away, mag[j][span], np.nan)
            amplitude[lo + j, :len(k)] = peak_amp
            floor[lo + j, :len(k)] = np.nan_to_num(np.nanmedian(rest, axis=1), nan=np.inf) \
                if away.any(axis=1).all() else np.inf
    with np.errstate(divide="ignore"):
        clear = (amplitude > 0) & (20.0 * np.log10(np.maximum(amplitude, 1e-12) / np.maximum(floor, 1e-12))
                                   >= STANDS_OUT_DB)
    return HarmonicLevels(amplitude, np.where(np.isfinite(floor), floor, 0.0), clear, power)


__all__ = ["HarmonicLevels", "STANDS_OUT_DB", "analysis_size", "harmonic_levels"]
