"""The noise term: what a source's periodic grains leave out (breath, bow and hiss, the noise between the
harmonics), measured at fit time as a noise spectrum and added to every note as shaped noise that follows
the note's level. A conceptor's free run is an exactly periodic attractor, so without it a note has deep
gaps between its harmonics where the recording has a noise floor (the "stochastic part" of spectral
modelling synthesis: the deterministic part here is the reservoir).

    >>> sr = 8000
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(sr) / sr
    >>> tone = np.sin(2 * np.pi * 200 * t)
    >>> clean = noise_profile(tone, sr, 200.0)
    >>> breathy = noise_profile(tone + 0.1 * rng.standard_normal(sr), sr, 200.0)
    >>> clean.share < 1e-4, 0.015 < breathy.share < 0.025     # noise power / total: 0.01 / 0.51
    (True, True)
    >>> y = add_noise(tone, sr, breathy, rng=np.random.default_rng(1))
    >>> round(float(noise_profile(y, sr, 200.0).share / breathy.share), 1)
    1.0
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.ndimage import median_filter

from dawexport.audio.spectral import power_frames

from .level import rms_envelope

N_FFT = 2048
HOP = 512
MAX_SHARE = 0.75          # the noise never more than 3x the periodic part's power (a whisper is unpitched)


@dataclass(frozen=True)
class NoiseProfile:
    """Noise power per rfft bin of `N_FFT` points (`psd`, summing to 1) and its share of the total power."""
    psd: np.ndarray
    share: float

    @staticmethod
    def silent() -> "NoiseProfile":
        return NoiseProfile(np.zeros(N_FFT // 2 + 1), 0.0)


def noise_profile(x: np.ndarray, sr: int, f0_hz: float | np.ndarray, within_db: float = 20.0) -> NoiseProfile:
    """The noise between the harmonics of `x` (f0: one pitch, or one per frame of `HOP`), averaged over the
    frames within `within_db` of the loudest: per frame, the median power over one harmonic spacing (which
    skips the harmonic peaks), corrected for the median's bias on noise (ln 2)."""
    power = power_frames(x, N_FFT, HOP)
    energy = power.sum(axis=1) + 1e-30
    loud = 10 * np.log10(energy) >= 10 * np.log10(energy.max()) - within_db
    f0 = np.asarray(f0_hz, dtype=np.float64)
    if f0.ndim == 0 or len(f0) != len(power):
        f0 = np.broadcast_to(f0, (len(power),)) if f0.ndim == 0 else \
            np.interp(np.linspace(0, len(f0) - 1, len(power)), np.arange(len(f0)), f0)
    noise, total = np.zeros(power.shape[1]), np.zeros(power.shape[1])
    for k in np.flatnonzero(loud):
        width = int(round(f0[k] / (sr / N_FFT))) if np.isfinite(f0[k]) and f0[k] > 0 else 0
        if width < 3:
            continue
        noise += median_filter(power[k], size=width, mode="nearest") / np.log(2.0)
        total += power[k]
    if total.sum() <= 0 or noise.sum() <= 0:
        return NoiseProfile.silent()
    return NoiseProfile(noise / noise.sum(), float(min(noise.sum() / total.sum(), MAX_SHARE)))


def blend_profiles(profiles: Sequence[NoiseProfile], weights: Sequence[float]) -> NoiseProfile:
    """Corners' noise mixed by weight, as two noises mix: noise power sum_k w_k share_k psd_k (negative
    weights count as 0), its share the weighted mean share.

        >>> a = NoiseProfile(np.array([0.5, 0.5, 0.0]), 0.1)
        >>> b = NoiseProfile(np.array([0.0, 0.5, 0.5]), 0.1)
        >>> m = blend_profiles([a, b], [0.5, 0.5])
        >>> m.psd.tolist(), round(m.share, 3)
        ([0.25, 0.5, 0.25], 0.1)
    """
    w = np.maximum(np.asarray(weights, dtype=np.float64), 0.0)
    power = sum(wk * p.share * p.psd for p, wk in zip(profiles, w))
    if w.sum() <= 0 or np.sum(power) <= 0:
        return NoiseProfile.silent()
    return NoiseProfile(power / np.sum(power), float(sum(wk * p.share for p, wk in zip(profiles, w)) / w.sum()))


def add_noise(y: np.ndarray, sr: int, profile: NoiseProfile, *, rng: np.random.Generator,
              scale: float = 1.0) -> np.ndarray:
    """`y` plus noise of the profile's spectrum whose level follows the RMS envelope of `y`, so that the
    noise is `profile.share` of the sum's power (times `scale`^2)."""
    y = np.asarray(y, dtype=np.float64)
    if profile.share <= 0 or scale <= 0 or len(y) == 0:
        return y
    n = len(y)
    bins = np.fft.rfftfreq(n, 1.0 / sr)
    grid = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    shaped = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * np.sqrt(np.interp(bins, grid, profile.psd)), n)
    shaped /= max(float(np.sqrt(np.mean(shaped * shaped))), 1e-30)
    share = min(profile.share, MAX_SHARE)
    return y + scale * np.sqrt(share / (1.0 - share)) * rms_envelope(y, sr) * shaped
