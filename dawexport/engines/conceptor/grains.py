"""Cutting a recording into loopable grains: whole periods at zero crossings for pitched clips, short
windows for unpitched ones, normalised to one level (the level is kept to re-apply along the sequence).

    >>> x = np.sin(2 * np.pi * 220 * np.arange(8000) / 8000)
    >>> len(cut_grains(x, 8000, 4))
    4
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Grain:
    """A loopable slice of a source: `audio` normalised to `GRAIN_RMS`, `gain` restores its level."""
    audio: np.ndarray
    start: int           # sample offset in the source
    gain: float
    periods: int         # whole periods inside (0 for a window grain)
    confidence: float = float("nan")   # pitch confidence over the grain (periodicity, 0..1; NaN: not measured)


GRAIN_RMS = 0.4


def _rising_zero_crossings(x: np.ndarray) -> np.ndarray:
    """Indices i with x[i-1] < 0 <= x[i]."""
    return np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0)) + 1


def _nearest(candidates: np.ndarray, target: float, radius: float) -> int | None:
    if candidates.size == 0:
        return None
    k = int(np.argmin(np.abs(candidates - target)))
    return int(candidates[k]) if abs(candidates[k] - target) <= radius else None


def _best_splice(x: np.ndarray, zc: np.ndarray, start: int, target: float, radius: float, w: int) -> int | None:
    """The rising zero crossing within `radius` of `target` whose neighbourhood best matches the start's,
    so the looped grain joins smoothly."""
    cands = zc[(np.abs(zc - target) <= radius) & (zc > start)]
    if cands.size == 0:
        return None
    pad = np.concatenate([np.zeros(w), x, np.zeros(w)])
    ref = pad[start:start + 2 * w]
    errs = [float(np.sum((pad[c:c + 2 * w] - ref) ** 2)) for c in cands]
    return int(cands[int(np.argmin(errs))])


def _active_region(x: np.ndarray, sr: int, floor_db: float = 30.0) -> tuple[int, int]:
    """First and last sample where the 10 ms RMS envelope is within `floor_db` of its peak."""
    win = max(1, int(0.01 * sr))
    env = np.sqrt(np.convolve(x * x, np.ones(win) / win, mode="same"))
    if env.max() <= 0:
        return 0, len(x)
    on = np.flatnonzero(env >= env.max() * 10 ** (-floor_db / 20))
    return int(on[0]), int(on[-1]) + 1


def cut_grains(x: np.ndarray, sr: int, count: int, *, period: float | Sequence[float] | None = None,
               min_length: int = 64, window: int = 256, region: tuple[float, float] = (0.0, 1.0),
               where: np.ndarray | None = None) -> list[Grain]:
    """`count` loopable grains evenly spread over the active part of `x`, cut at rising zero crossings.

    With `period` (samples; one value, or one per grain for a gliding pitch) each grain holds the fewest
    whole periods that reach `min_length` samples, ending at the zero crossing nearest that many periods;
    without it, grains are windows of about `window` samples. `region` narrows the active part (fractions).
    `where` (one bool per sample) spreads the grains evenly over the allowed samples only (e.g. where the
    source is steady and periodic). Silent sources give silent grains (gain 0).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x - np.mean(x)
    lo, hi = _active_region(x, sr)
    lo, hi = lo + int(region[0] * (hi - lo)), lo + int(region[1] * (hi - lo))
    per = None if period is None else np.asarray(period, dtype=np.float64)
    if per is not None and per.ndim and len(per) != len(x):
        raise ValueError("period must be one number or one value per sample of x")
    zc = _rising_zero_crossings(x)
    allowed = None
    if where is not None:
        allowed = np.flatnonzero(np.asarray(where, dtype=bool)[:len(x)])
        allowed = allowed[(allowed >= lo) & (allowed < max(hi - min_length, lo + 1))]
        if allowed.size == 0:
            allowed = None
    grains = []
    for k in range(count):
        span0 = max(hi - lo - min_length, 0.0)
        guess = lo + span0 * (k + 0.5) / count
        if allowed is not None:
            guess = float(allowed[min(len(allowed) - 1, int((k + 0.5) / count * len(allowed)))])
        p = None if per is None else float(per if per.ndim == 0 else per[int(np.clip(guess, 0, len(x) - 1))])
        if p is not None and np.isfinite(p) and p >= 2:
            n_per = max(1, int(np.ceil(min_length / p)))
            length = n_per * p
        else:
            p, n_per, length = None, 0, float(window)
        span = max(hi - lo - length, 0.0)
        centre = lo + span * (k + 0.5) / count if count > 1 else lo + span / 2
        if allowed is not None:
            centre = guess
        radius = (p if p else length) / 2
        s = _nearest(zc[zc + length < len(x)], centre, radius)
        if s is None:
            s = int(np.clip(round(centre), 0, max(len(x) - int(length) - 1, 0)))
        e = _best_splice(x, zc, s, s + length, (p / 4) if p else length / 8, max(2, int((p or 32) / 4)))
        if e is None:
            e = s + max(2, int(round(length)))
        e = min(e, len(x))
        seg = x[s:e] - np.mean(x[s:e])
        rms = float(np.sqrt(np.mean(seg * seg))) if len(seg) else 0.0
        if rms < 1e-7:
            grains.append(Grain(np.zeros(max(len(seg), 2)), s, 0.0, n_per))
        else:
            grains.append(Grain(seg * (GRAIN_RMS / rms), s, rms / GRAIN_RMS, n_per))
    return grains


def steady_mask(x: np.ndarray, sr: int, confidence: np.ndarray, min_confidence: float,
                within_db: float) -> np.ndarray:
    """Per sample: is the source steady and periodic here (pitch confidence >= `min_confidence` and the
    50 ms RMS within `within_db` of its loudest)? Onsets, decays, breaths and noise bursts are not.

        >>> sr = 8000
        >>> x = np.concatenate([np.sin(2 * np.pi * 200 * np.arange(sr) / sr), 0.01 * np.ones(sr)])
        >>> m = steady_mask(x, sr, np.r_[np.ones(sr), np.zeros(sr)], 0.9, 12.0)
        >>> bool(m[sr // 2]), bool(m[3 * sr // 2])
        (True, False)
    """
    x = np.asarray(x, dtype=np.float64)
    win = max(1, int(0.05 * sr))
    env = np.sqrt(np.convolve(x * x, np.ones(win) / win, mode="same"))
    loud = env >= env.max() * 10 ** (-within_db / 20) if env.max() > 0 else np.zeros(len(x), bool)
    return loud & (np.asarray(confidence)[:len(x)] >= min_confidence)


def retune_grain(audio: np.ndarray, periods: int, period: float) -> np.ndarray:
    """A loopable grain of `periods` whole periods resampled (as one cycle, band-limited) so each period
    lasts `period` samples: the grains of a gliding source all play one pitch.

        >>> g = np.sin(2 * np.pi * 3 * np.arange(60) / 60)          # 3 periods of 20 samples
        >>> len(retune_grain(g, 3, 25.0))
        75
    """
    from scipy.signal import resample
    audio = np.asarray(audio, dtype=np.float64)
    if abs(periods * period - len(audio)) < 1.0:      # already there to within a sample: leave it alone
        return audio
    return resample(audio, max(2, int(round(periods * period))))


def grain_walk(total: int, speed: float, count: int, sequence: str = "hold",
               reverse: bool = False) -> list[tuple[int, int, int]]:
    """The grain sequence as (from, to, steps) transitions covering `total` steps, `speed` steps each.

    hold: 0, 1, ..., K-1 then stay; loop: ..., K-1, 0, 1, ...; pingpong: 0..K-1..0..; reverse starts at K-1.

        >>> grain_walk(10, 4, 3)
        [(0, 1, 4), (1, 2, 4), (2, 2, 2)]
    """
    speed = max(float(speed), 1.0)
    if count <= 1:
        return [(0, 0, total)]
    order = list(range(count))
    if reverse:
        order = order[::-1]
    if sequence == "pingpong":
        cycle = order + order[-2:0:-1]
    else:
        cycle = order
    out, t, i = [], 0, 0
    while t < total:
        if sequence == "hold" and i >= count - 1:
            out.append((order[-1], order[-1], total - t))
            break
        a = cycle[i % len(cycle)]
        b = cycle[(i + 1) % len(cycle)]
        end = min(total, int(round((i + 1) * speed)))
        if end > t:
            out.append((a, b, end - t))
        t = max(t, end)
        i += 1
    return out


def walk_curve(walk: list[tuple[int, int, int]], values: np.ndarray) -> np.ndarray:
    """Per-step linear interpolation of per-grain `values` along a grain walk."""
    parts = []
    for a, b, n in walk:
        f = np.arange(n) / max(n, 1)
        parts.append((1 - f) * values[a] + f * values[b])
    return np.concatenate(parts) if parts else np.zeros(0)
