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
