"""Match EQ: a fixed equaliser, given in dB at the centres of the 64 mel bands both spectrum measures use
(`fidelity.mel_power`, `features.mel_profile_db`: 40 Hz up to 16 kHz or half the rate), that an engine
measures once on its own output against its sources and applies to everything it renders afterwards.
The conceptor fits one per pitched source on a note (`engines/conceptor/match.py`); the texture engines fit
one on a few takes of their babble (`texture_curve`).

    >>> from scipy.signal import lfilter
    >>> sr = 16000
    >>> rng = np.random.default_rng(0)
    >>> bright = rng.standard_normal(4 * sr)
    >>> dull = [lfilter([0.3], [1.0, -0.7], rng.standard_normal(2 * sr)) for _ in range(4)]    # top lost
    >>> curve = texture_curve(mel_profile_db(bright, sr), dull, sr)
    >>> bool(curve[-1] - curve[0] > 10), bool(np.abs(curve).max() <= TEXTURE_MAX_DB)    # the top lifted
    (True, True)
    >>> reference, take = mel_profile_db(bright, sr), lfilter([0.3], [1.0, -0.7], rng.standard_normal(sr))
    >>> d_before = profile_distance_db(mel_profile_db(take, sr), reference)
    >>> d_after = profile_distance_db(mel_profile_db(equalise(take, sr, curve), sr), reference)
    >>> bool(d_after < 0.5 < 3 < d_before)                          # a take the EQ was not fitted on
    True
"""
from __future__ import annotations

import numpy as np

from .features import MEL_BANDS, MEL_HIGH_HZ, MEL_LOW_HZ, mel_profile_db, profile_distance_db
from .spectral import hz_to_mel, mel_band_edges

N_BANDS = MEL_BANDS
FILTER_PAD = 2048                    # zeros after a sound before filtering it, so nothing wraps around
TEXTURE_MAX_DB = 12.0                # a texture EQ boosts or cuts no band further than this
TEXTURE_SMOOTH_BANDS = 3             # ... and follows the sources' spectrum over this many bands at a time


def band_centres_hz(sr: int) -> np.ndarray:
    """The centres (Hz) of the 64 mel bands at rate `sr`."""
    return mel_band_edges(N_BANDS, MEL_LOW_HZ, min(MEL_HIGH_HZ, sr / 2.0))[1:-1]


def equalise(y: np.ndarray, sr: int, curve_db, *, scale: float = 1.0) -> np.ndarray:
    """`y` through a zero-phase filter whose gain is `curve_db` at the band centres times `scale` (2: the
    curve an octave up), interpolated on the mel scale between them and held beyond them; zero-padded, so
    nothing wraps around. `curve_db` may also be a list of (curve, weight, scale) terms, mixed in dB by
    weight (negative weights count as 0): the corners of a blend, each moved to its own pitch."""
    y = np.asarray(y, dtype=np.float64)
    terms = [(curve_db, 1.0, scale)] if isinstance(curve_db, np.ndarray) else list(curve_db)
    weights = np.array([max(float(w), 0.0) for _, w, _ in terms])
    if len(y) == 0 or weights.sum() <= 0 or not any(np.any(c) for c, _, _ in terms):
        return y
    n = len(y) + FILTER_PAD
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    centres = hz_to_mel(band_centres_hz(sr))
    gain_db = sum(w * np.interp(hz_to_mel(freqs / sc), centres, np.asarray(c, dtype=np.float64))
                  for (c, _, sc), w in zip(terms, weights) if w > 0) / weights.sum()
    return np.fft.irfft(np.fft.rfft(y, n) * 10.0 ** (gain_db / 20.0), n)[:len(y)]


def smooth_bands(d: np.ndarray, width: int) -> np.ndarray:
    """A moving average over `width` neighbouring bands (the ends averaged over the bands there are).

        >>> smooth_bands(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), 3)
        array([0., 1., 1., 1., 0.])
    """
    if width <= 1:
        return np.asarray(d, dtype=np.float64)
    kernel = np.ones(width)
    return np.convolve(d, kernel, "same") / np.convolve(np.ones(len(d)), kernel, "same")


def texture_curve(reference_db: np.ndarray, takes: list[np.ndarray], sr: int, *, rounds: int = 3,
                  max_db: float = TEXTURE_MAX_DB, width: int = TEXTURE_SMOOTH_BANDS) -> np.ndarray:
    """The EQ (dB per band, mean 0, within ±`max_db`, smoothed over `width` bands) that brings a typical take's
    time-averaged log-mel spectrum (`mel_profile_db`, level removed) to `reference_db` (the sources'): per
    band the median over the takes of what each one misses, so one odd take (a noise burst, a hum) does not
    set it; silent or non-finite takes are left out (none left: no EQ). Refined over `rounds` passes (the
    takes re-measured through the EQ so far: a band's power is not exactly its centre's gain times its power
    where the gain slopes)."""
    target = np.asarray(reference_db, dtype=np.float64)
    target = target - target.mean()
    takes = [np.asarray(t, dtype=np.float64) for t in takes if len(t) and np.any(t) and np.all(np.isfinite(t))]
    curve = np.zeros(N_BANDS)
    if not takes:
        return curve
    for _ in range(rounds):
        misses = []
        for take in takes:
            p = mel_profile_db(equalise(take, sr, curve), sr)
            misses.append(target - (p - p.mean()))
        curve = curve + smooth_bands(np.median(misses, axis=0), width)
        curve = np.clip(curve - curve.mean(), -max_db, max_db)
    return curve


__all__ = ["N_BANDS", "TEXTURE_MAX_DB", "TEXTURE_SMOOTH_BANDS", "band_centres_hz", "equalise",
           "profile_distance_db", "smooth_bands", "texture_curve"]
