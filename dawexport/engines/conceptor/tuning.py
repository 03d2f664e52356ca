"""The pitch a render really plays, with octave errors told apart: the pitch tracker can read a note an
octave off (a strong even harmonic, a weak alternate period), and the reservoir can really lock onto a
period-doubled attractor. The first is a measuring error and is ignored; the second is corrected by the
caller (re-pitching by what was measured), never mapped onto another key.

    >>> sr = 22050
    >>> t = np.arange(sr // 2) / sr
    >>> tone = np.sin(2 * np.pi * 440 * t)
    >>> round(render_pitch(tone, sr, 440.0).hz), render_pitch(tone, sr, 440.0).octave_error
    (440, False)
    >>> round(render_pitch(tone, sr, 220.0).hz), render_pitch(tone, sr, 220.0).octave_error
    (440, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...audio.analysis import estimate_pitch

_HALF_OCTAVE = 2.0 ** 0.5


@dataclass(frozen=True)
class RenderPitch:
    hz: float               # what the render plays (NaN when no pitch is found)
    octave_error: bool      # the render sits an octave (or more) away from the expected pitch
    confidence: float


def render_pitch(y: np.ndarray, sr: int, expected_hz: float) -> RenderPitch:
    """The render's pitch near `expected_hz` (what leak and resampling should have given).

    A free pitch estimate within half an octave of the expectation is taken as it is. Otherwise it is
    checked against the best period within half an octave of the expectation (a narrowed search):
    - free estimate higher: a signal with period P also repeats at 2P, so the narrowed search always finds
      something; the higher pitch is real when it is at least as periodic (the shortest period wins);
    - free estimate lower (or none): the narrowed search finds a clean period only if the render really
      plays near the expectation, and the free estimate was the tracker's subharmonic error.
    """
    cap = sr / 4
    free = estimate_pitch(y, sr, fmax=min(cap, max(2000.0, 2.5 * expected_hz)))
    if free.pitched and abs(math.log2(free.hz / expected_hz)) <= 0.5:
        return RenderPitch(float(free.hz), False, float(free.confidence))
    lo, hi = max(20.0, expected_hz / _HALF_OCTAVE), min(cap, expected_hz * _HALF_OCTAVE)
    near = estimate_pitch(y, sr, fmin=lo, fmax=hi) if lo < hi else None
    near_ok = near is not None and near.pitched and near.confidence >= 0.8
    if free.pitched and free.hz > expected_hz:
        if near_ok and near.confidence > free.confidence + 0.05:
            return RenderPitch(float(near.hz), False, float(near.confidence))
        return RenderPitch(float(free.hz), True, float(free.confidence))
    if near_ok:
        return RenderPitch(float(near.hz), False, float(near.confidence))
    if free.pitched:
        return RenderPitch(float(free.hz), True, float(free.confidence))
    return RenderPitch(float("nan"), False, 0.0)


def flatten_pitch(y: np.ndarray, sr: int, target_hz: float, frames: int, *, smooth_s: float = 0.1,
                  tolerance_cents: float = 15.0) -> tuple[np.ndarray | None, float]:
    """`frames` samples of `y` time-warped so its pitch contour sits on `target_hz`: a reservoir whose pitch
    wanders along the note (a morph between the corners of a blend, a flip into a period-halved state)
    still plays the key all the way through. The contour is the f0 track (confident frames, median over
    `smooth_s`, gaps interpolated, at most an octave of correction); each input sample is read at the speed
    target / f0 there. A take whose contour stays within `tolerance_cents` is returned as it is (no
    interpolation loss). Returns (warped take, 1.0), or (None, how much more input it needs) when `y` is
    too short for the warp.

        >>> sr = 16000
        >>> t = np.arange(sr) / sr
        >>> hz = np.where(t < 0.5, 400.0, 440.0)                    # the second half plays 166 cents sharp
        >>> y = np.sin(2 * np.pi * np.cumsum(hz) / sr)
        >>> out, _ = flatten_pitch(y, sr, 400.0, sr // 2)
        >>> round(estimate_pitch(out[sr // 4:], sr).hz)
        400
    """
    from scipy.ndimage import median_filter
    from ...audio.analysis import f0_track
    y = np.asarray(y, dtype=np.float64)
    tr = f0_track(y, sr, fmax=min(sr / 4, max(2000.0, 2.5 * target_hz)))
    ok = tr.voiced & (tr.confidence >= 0.5) & np.isfinite(tr.hz)
    if ok.sum() < 3:
        return y[:frames], 1.0
    cents = 1200 * np.log2(target_hz / tr.hz[ok])
    cents = np.interp(tr.times, tr.times[ok], cents)
    cents = np.clip(median_filter(cents, size=max(1, int(smooth_s * sr / tr.hop)) | 1, mode="nearest"),
                    -1200, 1200)
    reach = min(len(y), int(frames * 2 ** (max(np.max(cents), 0) / 1200)) + 1)
    if np.percentile(np.abs(cents[tr.times * sr < reach]), 95) < tolerance_cents:
        return y[:frames], 1.0
    speed = 2 ** (np.interp(np.arange(len(y)), tr.times * sr, cents) / 1200)
    out_pos = np.concatenate([[0.0], np.cumsum(1.0 / speed[:-1])])   # output time of each input sample
    if out_pos[-1] < frames - 1:
        return None, float(frames / max(out_pos[-1], 1.0))
    read = np.interp(np.arange(frames), out_pos, np.arange(len(y)))
    return np.interp(read, np.arange(len(y)), y), 1.0
