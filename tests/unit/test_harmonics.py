"""Measured harmonics of a known tone: amplitudes, the floor around them and which ones stand clear of it."""
from __future__ import annotations

import numpy as np

from dawexport.audio.harmonics import STANDS_OUT_DB, analysis_size, harmonic_levels

SR, HOP = 32000, 128


def gliding_tone(amps, noise=0.0, seconds=1.0, cents=0.0, seed=0):
    """Harmonics of amplitudes `amps` on an f0 gliding 300 Hz → 300·2^(cents/1200), white noise of rms `noise`;
    also the f0 on the frame grid."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 300.0 * 2 ** (cents * t / seconds / 1200)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amps))
    x = x + noise * np.random.default_rng(seed).standard_normal(len(t))
    frames = 1 + len(t) // HOP
    return x, np.interp(np.arange(frames) * HOP, np.arange(len(t)), f0)


def test_amplitudes_of_a_known_tone_are_read_within_a_few_hundredths_of_a_db():
    amps = [0.4, 0.0, 0.1, 0.02, 0.005]
    x, f0 = gliding_tone(amps, noise=1e-5, cents=50.0)                 # a slow glide: the peak falls between bins
    levels = harmonic_levels(x, SR, f0, HOP, 5)
    mid = slice(20, -20)                                   # away from the edges, where the window runs off
    for k in (0, 2, 3, 4):
        error_db = 20 * np.log10(levels.amplitude[mid, k] / amps[k])
        assert np.abs(error_db).max() < 0.1, (k, np.abs(error_db).max())
    assert levels.clear[mid][:, [0, 2, 3, 4]].all() and not levels.clear[mid, 1].any()


def test_the_floor_is_the_noise_and_harmonics_under_it_are_not_clear():
    """With white noise of rms σ the floor reads the noise's median spectrum level, the same at every harmonic;
    a harmonic 16 dB over that floor is clear, one 10 dB under it is not (nor is the empty second)."""
    sigma = 1e-3
    n_fft = analysis_size(SR, 300.0)
    window = np.hanning(n_fft + 2)[1:-1]
    # |X| of white noise is Rayleigh with E|X|² = σ²·Σw²: its median σ·√(ln 2 · Σw²), in the sine-amplitude
    # units (2 / Σw)
    median = sigma * np.sqrt(np.log(2) * (window ** 2).sum()) * 2 / window.sum()
    amps = [0.3, 0.0, median * 10 ** (16 / 20), median * 10 ** (-10 / 20)]
    x, f0 = gliding_tone(amps, noise=sigma, seconds=2.0)
    levels = harmonic_levels(x, SR, f0, HOP, 4)
    mid = slice(20, -20)
    floor_db = 20 * np.log10(np.median(levels.floor[mid], axis=0) / median)
    assert np.abs(floor_db[1:]).max() < 1.0, floor_db                 # the fundamental's own floor is its window's leakage
    clear = levels.clear[mid].mean(axis=0)
    assert clear[0] == 1.0 and clear[2] > 0.95, clear
    assert clear[1] < 0.05 and clear[3] < 0.05, clear                   # noise peaks pass only by chance
    assert STANDS_OUT_DB > 0


def test_harmonics_past_nyquist_read_zero():
    x, f0 = gliding_tone([0.5, 0.2])
    levels = harmonic_levels(x, SR, f0, HOP, 60)                        # 300 Hz · 60 = 18 kHz > 16 kHz
    assert (levels.amplitude[:, 53:] == 0).all() and not levels.clear[:, 53:].any()
    assert levels.amplitude.shape == (len(f0), 60)
