"""What the ddsp engine measures on a clip, on its frame grid: f0 (filled), voicing, loudness, the frames
its encoder's input normalisation is taken from and the track warping of augmented copies.

    >>> fill_unvoiced(np.array([np.nan, 100.0, np.nan, 400.0, np.nan]), 261.6).round(1).tolist()
    [100.0, 100.0, 200.0, 400.0, 400.0]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...audio.analysis import FLOOR_DB, f0_track, loudness_db


def fill_unvoiced(hz: np.ndarray, fallback: float) -> np.ndarray:
    """Replace NaN (unvoiced) frames by log-linear interpolation between voiced neighbours (held at ends)."""
    hz = np.asarray(hz, dtype=np.float64)
    ok = np.isfinite(hz) & (hz > 0)
    if not ok.any():
        return np.full(hz.shape, fallback)
    idx = np.arange(len(hz))
    return np.exp(np.interp(idx, idx[ok], np.log(hz[ok])))


@dataclass(frozen=True)
class ClipFeatures:
    f0_hz: np.ndarray            # (frames,) filled, never NaN
    voiced: np.ndarray           # (frames,) bool
    confidence: np.ndarray       # (frames,)
    loudness_db: np.ndarray      # (frames,) A-weighted


def clip_features(x: np.ndarray, sample_rate: int, hop: int, fmin: float, fmax: float,
                  fallback_hz: float) -> ClipFeatures:
    """f0 (unvoiced frames filled), voicing, confidence and A-weighted loudness on the frame grid."""
    track = f0_track(x, sample_rate, fmin=fmin, fmax=min(fmax, 0.45 * sample_rate), hop=hop)
    loud = loudness_db(x, sample_rate, hop=hop)
    return ClipFeatures(fill_unvoiced(track.hz, fallback_hz), track.voiced, track.confidence, loud)


def pooling_weights(feat: ClipFeatures) -> np.ndarray:
    """The frames the encoder's input normalisation (each mel band's mean and spread) is taken from: voiced,
    confident and within 40 dB of the loudest frame."""
    active = feat.loudness_db >= max(float(feat.loudness_db.max()) - 40.0, FLOOR_DB + 1.0)
    w = np.where(feat.voiced & active, np.clip(feat.confidence, 0.05, 1.0), 0.0)
    return w if w.sum() > 0 else active.astype(np.float64)


def warp_track(values: np.ndarray, time_scale: float, n_out: int) -> np.ndarray:
    """Sample a frame track at times t * time_scale for n_out output frames (held past the end)."""
    src = np.arange(n_out) * time_scale
    return np.interp(src, np.arange(len(values)), values)

