"""The match EQ: a fixed equaliser per pitched source, measured at fit time on a whole note the engine renders
at the source's own key (grains walked in order, noise term added) against the source itself, so that the
note's time-averaged spectrum is the source's. The reservoir's free runs lose the top octave and weigh the
harmonics their own way; what that does to a note is only seen on the note (the grains' spectra, one by one,
say little about it), so it is measured there and undone on every note of that source (fixed in frequency,
like a formant, as the noise term is).

    >>> sr = 16000
    >>> rng = np.random.default_rng(0)
    >>> bright = rng.standard_normal(sr)
    >>> dull = np.convolve(bright, np.ones(8) / 8, "same")          # a low-pass copy: the top is missing
    >>> curve = match_curve(bright, dull, sr)
    >>> bool(curve[-1] - curve[0] > 20)                                # the top is boosted
    True
    >>> band_distance(bright, equalise(dull, sr, curve), sr) < 0.5 < band_distance(bright, dull, sr)
    True
"""
from __future__ import annotations

import numpy as np

from dawexport.audio.fidelity import LOUD_WITHIN_DB, MEL_RANGE_HZ, N_FFT, N_MELS, mel_power

MAX_DB = 30.0             # no band is boosted or cut further (a band the note does not play stays as it is)


def _mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _centres(sr: int) -> np.ndarray:
    """The mel bands' centres (Hz), as `fidelity.mel_power` lays them out."""
    lo, hi = MEL_RANGE_HZ[0], min(MEL_RANGE_HZ[1], sr / 2.0)
    return 700.0 * (10.0 ** (np.linspace(_mel(lo), _mel(hi), N_MELS + 2)[1:-1] / 2595.0) - 1.0)


def band_levels(x: np.ndarray, sr: int) -> np.ndarray:
    """Time-averaged power (dB) in the timbre measure's mel bands over the frames within `LOUD_WITHIN_DB`
    of the loudest."""
    power = mel_power(np.asarray(x, dtype=np.float64), sr)
    energy = power.sum(axis=1)
    loud = energy >= energy.max() * 10.0 ** (-LOUD_WITHIN_DB / 10.0)
    return 10.0 * np.log10(power[loud].mean(axis=0))


def band_distance(source: np.ndarray, note: np.ndarray, sr: int) -> float:
    """Mean |dB| between the two time-averaged band spectra, overall level removed."""
    d = band_levels(source, sr) - band_levels(note, sr)
    return float(np.mean(np.abs(d - d.mean())))


def equalise(y: np.ndarray, sr: int, curve_db: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
    """`y` through a zero-phase filter whose gain is `curve_db` at the band centres times `scale` (2: the
    curve an octave up), interpolated on the mel scale between them and held beyond them; zero-padded, so
    nothing wraps around. `curve_db` may also be a list of (curve, weight, scale) terms, mixed in dB by
    weight (negative weights count as 0): the corners of a blend, each moved to its own pitch."""
    y = np.asarray(y, dtype=np.float64)
    terms = [(curve_db, 1.0, scale)] if isinstance(curve_db, np.ndarray) else list(curve_db)
    weights = np.array([max(float(w), 0.0) for _, w, _ in terms])
    if len(y) == 0 or weights.sum() <= 0 or not any(np.any(c) for c, _, _ in terms):
        return y
    n = len(y) + N_FFT
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    centres = _mel(_centres(sr))
    gain_db = sum(w * np.interp(_mel(freqs / sc), centres, np.asarray(c, dtype=np.float64))
                  for (c, _, sc), w in zip(terms, weights) if w > 0) / weights.sum()
    return np.fft.irfft(np.fft.rfft(y, n) * 10.0 ** (gain_db / 20.0), n)[:len(y)]


def match_curve(source: np.ndarray, note: np.ndarray, sr: int, *, f0_hz: float | None = None, then=None,
                rounds: int = 4) -> np.ndarray:
    """The EQ (dB per band, mean 0, within ±`MAX_DB`) that brings the note's time-averaged band spectrum to
    the source's; `then` (optional) is what follows the EQ on every note (the noise term), applied before
    measuring. Refined over `rounds` passes (a band's power is not exactly its centre's gain times its
    power where the gain slopes).

    With the note's pitch `f0_hz` the EQ shapes only its envelope: from just below the fundamental up, the
    correction is averaged over one harmonic spacing (it cannot lift the gaps between harmonics, where a
    steady note has only stray sound: lifted, that sound pulls the heard pitch away, as matching a glide's
    smeared spectrum would), and below the fundamental it only cuts."""
    target = band_levels(source, sr)
    centres = _centres(sr)
    curve = np.zeros(N_MELS)
    for _ in range(rounds):
        y = equalise(note, sr, curve)
        d = target - band_levels(y if then is None else then(y), sr)
        d -= d.mean()
        if f0_hz is not None and f0_hz > 0:
            low = centres < 0.9 * f0_hz
            near = np.abs(centres[:, None] - centres[None, :]) <= f0_hz / 2
            d = np.where(low, np.minimum(d, 0.0), (near[:, ~low] @ d[~low]) / np.maximum(near[:, ~low].sum(1), 1))
        curve = np.clip(curve + d, -MAX_DB, MAX_DB)
    curve -= curve.mean()

    def distance(c):
        y = equalise(note, sr, c)
        d = target - band_levels(y if then is None else then(y), sr)
        return float(np.mean(np.abs(d - d.mean())))
    # the envelope-only EQ is not the best fit band by band: keep the share of it that brings the note
    # closest (none, if it does not help)
    return min((share * curve for share in (0.0, 0.25, 0.5, 0.75, 1.0)), key=distance)
