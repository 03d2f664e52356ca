"""A two-way crossover: the band below an edge from one signal, the band above it from another, summed with no
notch or comb where they meet.

The split is one linear-phase low-pass FIR `h` (Kaiser window, delay-compensated): the output is
`high + h * (low - high)`, i.e. `h * low + (δ - h) * high`. The two bands' filters add up to exactly δ (the same
delay, the same phase), so a signal fed to both sides comes out unchanged at every frequency.

    >>> x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    >>> bool(np.allclose(crossover(x, x, 44100, 6400, 7200), x, atol=1e-5))
    True
    >>> lows = crossover(x, np.zeros_like(x), 44100, 6400, 7200)     # the low band alone
    >>> band_power_db(lows, 44100, 8000, 20000) < -60
    True
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import signal


@lru_cache(maxsize=16)
def crossover_filter(sample_rate: int, pass_hz: float, stop_hz: float, stopband_db: float = 80.0) -> np.ndarray:
    """Odd-length linear-phase low-pass taps (read-only, unit DC gain): flat to `pass_hz`, at least
    `stopband_db` down from `stop_hz`.

        >>> len(crossover_filter(44100, 6400, 7200)) % 2
        1
    """
    if not 0 < pass_hz < stop_hz <= sample_rate / 2:
        raise ValueError(f"need 0 < pass_hz < stop_hz <= {sample_rate / 2:g}, got {pass_hz:g} and {stop_hz:g}")
    nyquist = sample_rate / 2.0
    numtaps, beta = signal.kaiserord(stopband_db + 1.0, (stop_hz - pass_hz) / nyquist)
    numtaps |= 1
    taps = signal.firwin(numtaps, (pass_hz + stop_hz) / 2.0, window=("kaiser", beta), fs=sample_rate)
    taps.flags.writeable = False
    return taps


def crossover(low: np.ndarray, high: np.ndarray, sample_rate: int, pass_hz: float, stop_hz: float) -> np.ndarray:
    """`low`'s band below the crossover plus `high`'s band above it (1-D, same length; float32 out).

    The crossover's transition runs from `pass_hz` (all `low`) to `stop_hz` (all `high`); across it the two
    bands' gains add up to 1 with the same phase."""
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    if low.shape != high.shape or low.ndim != 1:
        raise ValueError(f"crossover needs two 1-D signals of one length, got {low.shape} and {high.shape}")
    taps = crossover_filter(int(sample_rate), float(pass_hz), float(stop_hz))
    delay = len(taps) // 2
    diff = low - high
    if len(diff) == 0:
        return high.astype(np.float32)
    smoothed = signal.oaconvolve(diff, taps)[delay:delay + len(diff)]
    return (high + smoothed).astype(np.float32)


def band_power_db(x: np.ndarray, sample_rate: int, lo_hz: float, hi_hz: float) -> float:
    """The share of `x`'s power between `lo_hz` and `hi_hz`, in dB (Hann-windowed spectrum of the whole
    signal; -inf for silence).

        >>> t = np.arange(8000) / 8000
        >>> round(band_power_db(np.sin(2 * np.pi * 1000 * t), 8000, 900, 1100), 3)
        -0.0
    """
    x = np.asarray(x, dtype=np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    hz = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    total = power.sum()
    if total <= 0:
        return -math.inf
    return 10.0 * math.log10(max(power[(hz >= lo_hz) & (hz < hi_hz)].sum() / total, 1e-300))


__all__ = ["band_power_db", "crossover", "crossover_filter"]
