"""Holding a note's level: the reservoir's own gain can drift over a long free run (a conceptor that
shrinks the state a little each step, or a morph between dissimilar grains), so the raw output is held at
the loaded grains' level by a gain that follows its RMS envelope; a filter that colours some grains more
than others (the match EQ) keeps the level contour it was given (`keep_contour`); and a source's fade-out
is not a level a held note settles to (`without_fade_out`).

    >>> sr = 8000
    >>> t = np.arange(2 * sr) / sr
    >>> fading = np.sin(2 * np.pi * 200 * t) * np.exp(-t)         # the reservoir's output dying away
    >>> held = hold_level(fading, sr, 0.4)
    >>> late, early = held[-sr // 4:], held[sr // 4:sr // 2]
    >>> round(float(np.sqrt(np.mean(late ** 2)) / np.sqrt(np.mean(early ** 2))), 2)
    1.0
"""
from __future__ import annotations

import numpy as np


def rms_envelope(y: np.ndarray, sr: int, window_s: float = 0.05) -> np.ndarray:
    """Per-sample RMS over a centred `window_s` window (linearly interpolated between half-window hops)."""
    y = np.asarray(y, dtype=np.float64)
    win = max(2, int(window_s * sr))
    hop = max(1, win // 2)
    if len(y) <= win:
        return np.full(len(y), float(np.sqrt(np.mean(y * y))) if len(y) else 0.0)
    starts = np.arange(0, len(y) - win + 1, hop)
    csum = np.concatenate([[0.0], np.cumsum(y * y)])
    rms = np.sqrt(np.maximum(csum[starts + win] - csum[starts], 0.0) / win)
    return np.interp(np.arange(len(y)), starts + win / 2, rms)


def hold_level(y: np.ndarray, sr: int, target_rms: float, *, window_s: float = 0.05,
               max_gain_db: float = 24.0, skip: int = 0) -> np.ndarray:
    """`y` with its RMS envelope held at `target_rms` (gain limited to +-`max_gain_db`; the first `skip`
    samples get the gain found just after them, so an onset is not pumped)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0:
        return y
    env = rms_envelope(y, sr, window_s)
    limit = 10.0 ** (max_gain_db / 20.0)
    gain = np.clip(target_rms / np.maximum(env, 1e-12), 1.0 / limit, limit)
    if 0 < skip < len(y):
        gain[:skip] = gain[skip]
    return y * gain


def keep_contour(y: np.ndarray, like: np.ndarray, sr: int, *, window_s: float = 0.05,
                 max_gain_db: float = 24.0) -> np.ndarray:
    """`y`, a filtered copy of `like`, with the RMS envelope of `like` times one overall gain (the filter's
    gain over the whole sound): a fixed EQ that cuts where later grains have their formants changes the
    level along the note; this keeps its colour and gives back the contour. Where `like` is silent (60 dB
    below its loudest) the overall gain applies.

        >>> sr = 8000
        >>> t = np.arange(2 * sr) / sr
        >>> like = np.where(t < 1, np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 1000 * t))
        >>> y = np.where(t < 1, 1.0, 0.25) * like                     # an EQ that cuts 1 kHz by 12 dB
        >>> kept = keep_contour(y, like, sr)
        >>> first, late = kept[sr // 4:3 * sr // 4], kept[5 * sr // 4:7 * sr // 4]
        >>> round(float(20 * np.log10(np.std(late) / np.std(first))), 1)
        0.0
    """
    y = np.asarray(y, dtype=np.float64)
    like = np.asarray(like, dtype=np.float64)
    if len(y) == 0 or not np.any(like) or not np.any(y):
        return y
    overall = float(np.sqrt(np.sum(y * y) / np.sum(like * like)))
    env_y, env_like = rms_envelope(y, sr, window_s), rms_envelope(like, sr, window_s)
    limit = 10.0 ** (max_gain_db / 20.0)
    gain = np.clip(overall * env_like / np.maximum(env_y, 1e-12), overall / limit, overall * limit)
    gain = np.where(env_like > 1e-3 * env_like.max(), gain, overall)
    return y * gain


def without_fade_out(gains, fade_db: float | None = 3.0) -> np.ndarray:
    """Grain levels (linear, in the source's order; 0 = a silent grain) with the source's fade-out taken
    out: the last grains more than `fade_db` below the median level get the level of the last grain before
    them, so a note that walks to the end of the source holds the level the source sustained, not where it
    faded out (None: as they are).

        >>> db = [-4.2, -4.5, -4.2, -5.5, -10.4]                     # the last grain cut in the fade-out
        >>> [round(float(20 * np.log10(g)), 1) for g in without_fade_out(10 ** (np.array(db) / 20))]
        [-4.2, -4.5, -4.2, -5.5, -5.5]
    """
    out = np.array(gains, dtype=np.float64)
    sounding = out > 0
    if fade_db is None or sounding.sum() < 2:
        return out
    floor = float(np.median(out[sounding])) * 10.0 ** (-fade_db / 20.0)
    body = np.flatnonzero(out >= floor)
    last = int(body[-1])
    out[last + 1:] = np.where(out[last + 1:] > 0, out[last], 0.0)
    return out


def dropout_db(y: np.ndarray, sr: int, *, window_s: float = 0.05, skip_s: float = 0.05) -> float:
    """How deep the level of `y` dips below its median (dB, RMS over `window_s`; the first `skip_s` left out):
    a free run that passes through a dead state (a morph between dissimilar grains) shows a deep dip that
    no level follower can hide.

        >>> sr = 8000
        >>> tone = np.sin(2 * np.pi * 200 * np.arange(sr) / sr)
        >>> round(dropout_db(tone, sr), 1)
        0.0
        >>> tone[sr // 2:sr // 2 + 800] *= 0.01                       # 0.1 s gone (-40 dB)
        >>> dropout_db(tone, sr) > 30
        True
    """
    y = np.asarray(y, dtype=np.float64)[int(skip_s * sr):]
    win = max(2, int(window_s * sr))
    if len(y) < 2 * win:
        return 0.0
    starts = np.arange(0, len(y) - win + 1, win // 2)
    csum = np.concatenate([[0.0], np.cumsum(y * y)])
    db = 10 * np.log10(np.maximum(csum[starts + win] - csum[starts], 0.0) / win + 1e-20)
    return float(np.median(db) - db.min())


def level_drop_db(y: np.ndarray, sr: int, *, early=(0.1, 0.5), late_s: float = 0.25) -> float:
    """How far the last `late_s` seconds sit below the `early` span (dB; positive = quieter at the end)."""
    y = np.asarray(y, dtype=np.float64)
    a = y[int(early[0] * sr):int(early[1] * sr)]
    b = y[-int(late_s * sr):]
    if len(a) == 0 or len(b) == 0:
        return 0.0
    return float(10 * np.log10((np.mean(a * a) + 1e-20) / (np.mean(b * b) + 1e-20)))
