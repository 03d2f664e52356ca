"""General spectral DSP on mono float arrays: Hann STFT and its inverse, a mel filterbank and log-mel
shapes, a phase-vocoder time stretch, a tape-speed pitch shift and the formant-keeping envelope transfer.

    >>> x = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)
    >>> len(time_stretch(x, 1.5, 1024))
    24000
    >>> y, ratio = pitch_shift(x, 12.0)
    >>> ratio, len(y)
    (2.0, 8000)
    >>> mel_filterbank(16000, 512, 24).shape
    (24, 257)
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal as sps


def hz_to_mel(f):
    """Hz → mel (HTK formula)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """mel → Hz (HTK formula)."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """The n_mels + 2 edges (Hz) of `mel_filterbank`'s triangles: band i rises from edge i, peaks at edge
    i + 1 (its centre) and falls to edge i + 2.

        >>> mel_band_edges(2, 0.0, 1000.0).round(1)
        array([   0. ,  240.9,  564.7, 1000. ])
    """
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 20.0,
                   fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters evenly spaced on the mel scale (HTK formula)."""
    edges = mel_band_edges(n_mels, fmin, fmax or sample_rate / 2.0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs) / np.maximum(hi - mid, 1e-9)
    return np.maximum(0.0, np.minimum(up, down))


def log_mel_shape(x: np.ndarray, sample_rate: int, hop: int, n_mels: int) -> np.ndarray:
    """(frames, n_mels) log-mel *shape* per centred frame (1 + len // hop frames): log power with each
    frame's mean removed, so it describes timbre and not level."""
    n_fft = 4 * hop
    x = np.asarray(x, dtype=np.float64)
    n_frames = 1 + len(x) // hop
    padded = np.zeros((n_frames - 1) * hop + n_fft)
    seg = x[: len(padded) - n_fft // 2]
    padded[n_fft // 2: n_fft // 2 + len(seg)] = seg
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft + 2)[1:-1], axis=1)) ** 2
    logmel = np.log(power @ mel_filterbank(sample_rate, n_fft, n_mels).T + 1e-10)
    return (logmel - logmel.mean(axis=1, keepdims=True)).astype(np.float32)


def pitch_shift(x: np.ndarray, semitones: float, max_denominator: int = 64) -> tuple[np.ndarray, float]:
    """Tape-speed pitch shift by resampling: returns (audio, exact frequency ratio used)."""
    ratio = Fraction(2.0 ** (semitones / 12.0)).limit_denominator(max_denominator)
    if ratio == 1:
        return np.asarray(x, dtype=np.float32), 1.0
    y = sps.resample_poly(np.asarray(x, dtype=np.float64), ratio.denominator, ratio.numerator)
    return y.astype(np.float32), float(ratio)


def frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Uncentred frames of `x` (frame k starts at sample k·hop), zero-padded to one frame if shorter: a view.

        >>> frames(np.arange(10.0), 4, 3).tolist()
        [[0.0, 1.0, 2.0, 3.0], [3.0, 4.0, 5.0, 6.0], [6.0, 7.0, 8.0, 9.0]]
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if len(x) < n_fft:
        x = np.concatenate([x, np.zeros(n_fft - len(x))])
    return np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]


def power_frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Power spectra of the Hann-windowed `frames` of `x`: (frames, n_fft // 2 + 1)."""
    return np.abs(np.fft.rfft(frames(x, n_fft, hop) * np.hanning(n_fft + 2)[1:-1], axis=1)) ** 2


def stft(x: np.ndarray, n_fft: int) -> np.ndarray:
    """Hann STFT with hop n_fft / 4 of x padded by n_fft zeros on each side: (frames, n_fft // 2 + 1)."""
    hop = n_fft // 4
    padded = np.concatenate([np.zeros(n_fft), np.asarray(x, np.float64), np.zeros(n_fft)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.fft.rfft(frames * np.hanning(n_fft + 2)[1:-1], axis=1)


def istft(spec: np.ndarray, n_fft: int, length: int) -> np.ndarray:
    """Inverse of `stft` (weighted overlap-add), cropped to `length` samples."""
    hop = n_fft // 4
    window = np.hanning(n_fft + 2)[1:-1]
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
    total = (len(frames) - 1) * hop + n_fft
    y, norm = np.zeros(total), np.zeros(total)
    for k in range(len(frames)):                            # a few hundred frames
        y[k * hop:k * hop + n_fft] += frames[k]
        norm[k * hop:k * hop + n_fft] += window ** 2
    y = y / np.maximum(norm, 1e-3 * norm.max())
    return y[n_fft:n_fft + length]


def time_stretch(x: np.ndarray, factor: float, n_fft: int = 2048) -> np.ndarray:
    """Phase-vocoder time stretch: `factor` > 1 is longer, pitch unchanged. Output has round(len * factor)."""
    x = np.asarray(x, dtype=np.float64)
    if abs(factor - 1.0) < 1e-6:
        return x.astype(np.float32)
    hop = n_fft // 4
    spec = stft(x, n_fft)
    n = len(spec)
    steps = np.arange(0.0, n - 1, 1.0 / factor)
    i = steps.astype(int)
    a = (steps - i)[:, None]
    mag = (1 - a) * np.abs(spec[i]) + a * np.abs(spec[i + 1])
    omega = 2 * np.pi * hop * np.arange(spec.shape[1]) / n_fft
    dphi = np.angle(spec[i + 1]) - np.angle(spec[i]) - omega
    dphi = dphi - 2 * np.pi * np.round(dphi / (2 * np.pi))
    phase = np.angle(spec[0]) + np.concatenate([np.zeros((1, spec.shape[1])),
                                                np.cumsum(omega + dphi, axis=0)[:-1]])
    return istft(mag * np.exp(1j * phase), n_fft, int(round(len(x) * factor))).astype(np.float32)


def log_envelope(spec: np.ndarray, f0_hz: float, sample_rate: int, n_fft: int) -> np.ndarray:
    """Log-magnitude spectral envelope per frame through the harmonic peaks of a note at about f0_hz.

    A maximum filter one harmonic spacing wide picks the peaks (so the estimate does not depend on how dense
    the harmonics are), a moving average as wide smooths them, and below the fundamental the envelope is held
    at its value there (a source says nothing about frequencies under its own f0).
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d
    width = max(3, int(round(f0_hz * n_fft / sample_rate)))
    env = np.log(maximum_filter1d(np.abs(spec), size=width, axis=1) + 1e-9)
    env = uniform_filter1d(env, size=width, axis=1)
    f0_bin = min(env.shape[1] - 1, int(round(f0_hz * n_fft / sample_rate)))
    env[:, :f0_bin] = env[:, f0_bin:f0_bin + 1]
    return env


def restore_envelope(shifted: np.ndarray, reference: np.ndarray, ratio: float, f0_hz: float,
                     sample_rate: int, n_fft: int = 2048, max_db: float = 30.0) -> np.ndarray:
    """Put the reference's spectral envelope (formants, brightness) back on a tape-speed pitch shift of it.

    `shifted` is `reference` played `ratio` times faster. Each of its frames is re-weighted by the ratio of the
    reference's envelope (at the same moment) to its own (both traced through their harmonic peaks), limited to
    ±max_db. A shifted cat still sounds like the same cat's mouth,
    not a chipmunk's, so a low note keeps the source's energy above 8 kHz.
    """
    ref_env = log_envelope(stft(reference, n_fft), f0_hz, sample_rate, n_fft)
    spec = stft(shifted, n_fft)
    own_env = log_envelope(spec, f0_hz * ratio, sample_rate, n_fft)
    frames = np.clip(np.round(np.arange(len(spec)) * ratio).astype(int), 0, len(ref_env) - 1)
    limit = max_db / 20.0 * np.log(10.0)
    gain = np.exp(np.clip(ref_env[frames] - own_env, -limit, limit))
    return istft(spec * gain, n_fft, len(shifted)).astype(np.float32)
