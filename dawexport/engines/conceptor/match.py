"""The match EQ: a fixed equaliser per pitched source, measured at fit time on a whole note the engine renders
at the source's own key (grains walked in order, noise term added) against the source itself, so that the
note's time-averaged spectrum is the source's. The reservoir's free runs lose the top octave and weigh the
harmonics their own way; what that does to a note is only seen on the note (the grains' spectra, one by one,
say little about it), so it is measured there and undone on every note of that source (fixed in frequency,
like a formant, as the noise term is). The filter itself (`equalise`) is the shared `dawexport.audio.match_eq`.

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

from dawexport.audio.fidelity import LOUD_WITHIN_DB, N_MELS, mel_power
from dawexport.audio.match_eq import band_centres_hz as _centres, equalise as _equalise

from .level import keep_contour

MAX_DB = 30.0             # no band is boosted or cut further (a band the note does not play stays as it is)


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


def equalise(y: np.ndarray, sr: int, curve_db, *, scale: float = 1.0, keep_level: bool = False) -> np.ndarray:
    """The shared filter (`dawexport.audio.match_eq.equalise`: a curve, or corners' (curve, weight, scale)
    terms); `keep_level`: the output keeps the level contour of `y` (one overall gain; see
    `level.keep_contour`), so grains the curve colours differently do not come out at different levels."""
    out = _equalise(y, sr, curve_db, scale=scale)
    return keep_contour(out, y, sr) if keep_level and out is not y else out


def match_curve(source: np.ndarray, note: np.ndarray, sr: int, *, f0_hz: float | None = None, then=None,
                rounds: int = 4, keep_level: bool = False) -> np.ndarray:
    """The EQ (dB per band, mean 0, within ±`MAX_DB`) that brings the note's time-averaged band spectrum to
    the source's; `then` (optional) is what follows the EQ on every note (the noise term), applied before
    measuring; `keep_level` as in `equalise`. Refined over `rounds` passes (a band's power is not exactly its centre's gain times its
    power where the gain slopes).

    With the note's pitch `f0_hz` the EQ shapes only its envelope: from just below the fundamental up, the
    correction is averaged over one harmonic spacing (it cannot lift the gaps between harmonics, where a
    steady note has only stray sound: lifted, that sound pulls the heard pitch away, as matching a glide's
    smeared spectrum would), and below the fundamental it only cuts."""
    target = band_levels(source, sr)
    centres = _centres(sr)
    curve = np.zeros(N_MELS)
    for _ in range(rounds):
        y = equalise(note, sr, curve, keep_level=keep_level)
        d = target - band_levels(y if then is None else then(y), sr)
        d -= d.mean()
        if f0_hz is not None and f0_hz > 0:
            low = centres < 0.9 * f0_hz
            near = np.abs(centres[:, None] - centres[None, :]) <= f0_hz / 2
            d = np.where(low, np.minimum(d, 0.0), (near[:, ~low] @ d[~low]) / np.maximum(near[:, ~low].sum(1), 1))
        curve = np.clip(curve + d, -MAX_DB, MAX_DB)
    curve -= curve.mean()

    def distance(c):
        y = equalise(note, sr, c, keep_level=keep_level)
        d = target - band_levels(y if then is None else then(y), sr)
        return float(np.mean(np.abs(d - d.mean())))
    # the envelope-only EQ is not the best fit band by band: keep the share of it that brings the note
    # closest (none, if it does not help)
    return min((share * curve for share in (0.0, 0.25, 0.5, 0.75, 1.0)), key=distance)
