"""Automatic sustain loops for sustained notes: find click-free loop points, crossfade them, measure the join.

    >>> loop = find_sustain_loop(x, 44100, 261.6)         # (start, end), end inclusive, or None
    >>> if loop:
    ...     y = crossfade_loop(x, *loop, crossfade=882)
    ...     click = loop_click_db(y, *loop)               # < 0 dB: the join is smoother than the sound itself
"""
from __future__ import annotations

import numpy as np

_ENV_WIN_S = 0.02           # envelope window for the sustain checks
_MAX_DECAY_DB = 10.0        # a region whose fitted level falls more than this is decaying, not sustained
_MAX_JOIN_LEVEL_DB = 2.0    # start and end of a loop must be within this level of each other
_MAX_STARTS, _MAX_ENDS, _MAX_SCORED = 48, 400, 400
_POOR_JOIN = 0.1            # best join score over this: no join matches, the loop goes in the region's last third


def _envelope_db(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """RMS level in dB on a grid of ``step`` samples (centred 20 ms windows)."""
    win = max(1, int(_ENV_WIN_S * sr))
    step = max(1, win // 4)
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    centres = np.arange(0, len(x), step)
    lo = np.clip(centres - win // 2, 0, len(x))
    hi = np.clip(centres + win // 2 + 1, 0, len(x))
    ms = (cs[hi] - cs[lo]) / np.maximum(hi - lo, 1)
    return 10.0 * np.log10(np.maximum(ms, 1e-20)), step


def _rising_crossings(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Indices z in [lo, hi) with x[z-1] < 0 <= x[z]."""
    lo = max(lo, 1)
    if hi <= lo:
        return np.zeros(0, dtype=np.int64)
    seg = x[lo - 1:hi]
    return np.nonzero((seg[:-1] < 0) & (seg[1:] >= 0))[0] + lo


def _thin(idx: np.ndarray, n: int) -> np.ndarray:
    return idx if len(idx) <= n else idx[np.linspace(0, len(idx) - 1, n).round().astype(int)]


def find_sustain_loop(x, sr: int, f0_hz: float, *, region: tuple[float, float] = (0.3, 0.9),
                      min_length_s: float = 0.1, crossfade_s: float = 0.02) -> tuple[int, int] | None:
    """Loop points (start, end inclusive) in the steady part of a sustained note, or None.

    Both points sit on rising zero crossings; with a finite ``f0_hz`` the length is within a quarter
    period of a whole number of periods, otherwise any length (for textures). Each candidate pair is
    scored by how well the waveform around ``end + 1`` matches the waveform around ``start`` (one period,
    or 5 ms, either side: value, slope and shape together), normalised by their energy; among the
    pairs within 25% of the best score the longest wins. When even the best join is poor (a score over
    0.1, of 1 for uncorrelated waveforms: a held part that glides or changes colour all through), no join
    hides the loop, so it is chosen among the pairs ending in the region's last third: a note held as
    long as it was rendered then plays all of it, not a loop frozen half-way. None when the sound is shorter than
    ``min_length_s`` plus the crossfade inside ``region``, when its level falls by more than 10 dB
    across the region (a decaying hit or pluck), or when no pair has ends within 2 dB of each other.

        >>> start, end = find_sustain_loop(tone, 44100, 441.3)    # (end - start + 1) * 441.3 / 44100 ~ 456.0
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    n = len(x)
    sr = int(sr)
    if not (0.0 <= region[0] < region[1] <= 1.0):
        raise ValueError(f"region must satisfy 0 <= start < end <= 1, got {region}")
    xf = max(0, int(round(crossfade_s * sr)))
    min_len = max(int(round(min_length_s * sr)), xf, 2)
    pitched = f0_hz is not None and np.isfinite(f0_hz) and f0_hz > 0
    period = sr / f0_hz if pitched else None
    half = int(np.clip(round(period), 8, 2048)) if pitched else max(8, int(0.005 * sr))

    a = max(int(region[0] * n), xf + half + 1)
    b = min(int(region[1] * n), n - half - 2)
    if b - a < min_len or not np.all(np.isfinite(x)):
        return None

    env, step = _envelope_db(x, sr)
    reg = env[a // step:b // step + 1]
    if reg.size < 2 or np.median(reg) < env.max() - 40.0:
        return None
    slope = np.polyfit(np.arange(reg.size) * step / sr, reg, 1)[0]
    if -slope * (b - a) / sr > _MAX_DECAY_DB:
        return None

    y = x[a:b + 1] - np.mean(x[a:b + 1])           # crossings of the waveform, not of a DC offset
    ybuf = np.zeros(n)
    ybuf[a:b + 1] = y
    span = b - a
    starts = _thin(_rising_crossings(ybuf, a, a + max(span - min_len, 1) // 2 + 1), _MAX_STARTS)
    ends = _thin(_rising_crossings(ybuf, a + min_len, b + 1), _MAX_ENDS)    # z = end + 1
    if not len(starts) or not len(ends):
        return None
    s_idx, z_idx = np.meshgrid(starts, ends, indexing="ij")
    s_idx, z_idx = s_idx.ravel(), z_idx.ravel()
    length = z_idx - s_idx
    keep = length >= min_len
    if pitched:
        cycles = length / period
        keep &= (np.abs(cycles - np.round(cycles)) <= 0.25) & (np.round(cycles) >= 1)
    level_gap = np.abs(env[np.minimum(s_idx // step, len(env) - 1)] - env[np.minimum(z_idx // step, len(env) - 1)])
    keep &= level_gap <= _MAX_JOIN_LEVEL_DB
    s_idx, z_idx = s_idx[keep], z_idx[keep]
    if not len(s_idx):
        return None

    s_best, z_best, score = _best_joins(x, s_idx, z_idx, half)
    if score > _POOR_JOIN:
        # no join matches (a held part that glides or changes colour all through): the loop goes where it
        # costs least, at the end, so a note held as long as it was rendered plays all of it
        late = z_idx >= b + 1 - span // 3
        if late.any():
            s_best, z_best, _ = _best_joins(x, s_idx[late], z_idx[late], half)
    return s_best, z_best - 1


def _best_joins(x: np.ndarray, s_idx: np.ndarray, z_idx: np.ndarray, half: int) -> tuple[int, int, float]:
    """The longest of the (start, wrap) pairs whose join is within 25% of the best, and the best join's score
    (0: the waveforms around start and wrap match; 1: uncorrelated)."""
    # cheap pre-score (value and slope at the join), then the full window score on the best few
    ds = x[s_idx + 1] - x[s_idx - 1]
    dz = x[z_idx + 1] - x[z_idx - 1]
    pre = (x[s_idx] - x[z_idx]) ** 2 + 0.25 * (ds - dz) ** 2
    top = np.argsort(pre, kind="stable")[:_MAX_SCORED]
    s_idx, z_idx = s_idx[top], z_idx[top]
    offs = np.arange(-half, half + 1)
    ws, wz = x[s_idx[:, None] + offs], x[z_idx[:, None] + offs]
    score = np.sum((ws - wz) ** 2, axis=1) / np.maximum(np.sum(ws ** 2 + wz ** 2, axis=1), 1e-20)
    good = score <= 1.25 * score.min() + 1e-9
    lengths = np.where(good, z_idx - s_idx, -1)
    best = int(np.argmax(lengths))
    return int(s_idx[best]), int(z_idx[best]), float(score.min())


def crossfade_loop(x, start: int, end: int, crossfade: int) -> np.ndarray:
    """A copy of x whose last ``crossfade`` loop samples (up to ``end``) fade into the ones before ``start``.

    Sample end - k becomes a mix of x[end - k] (fading out) and x[start - 1 - k] (fading in), so the
    wrap from ``end`` to ``start`` continues the waveform exactly as it ran into ``start``. The gain
    law adapts to the correlation r of the two segments: raised-cosine weights (1 - t, t) are scaled by
    1 / sqrt((1-t)^2 + t^2 + 2 r t (1-t)), which keeps the power constant: a plain linear (constant-
    amplitude) fade when the segments are in phase (r = 1, what ``find_sustain_loop`` picks) and an
    equal-power fade for uncorrelated ones (r = 0, noise and textures). Samples outside the fade are
    unchanged; the fade is shortened to fit before ``start`` and inside the loop.

        >>> start, end = find_sustain_loop(x, 44100, 261.63)
        >>> y = crossfade_loop(x, start, end, crossfade=882)      # 20 ms at 44.1 kHz
    """
    x = np.asarray(x)
    out = x.astype(np.float32, copy=True) if x.dtype != np.float64 else x.copy()
    start, end = int(start), int(end)
    if not (0 <= start <= end < len(x)):
        raise ValueError(f"loop ({start}, {end}) is outside a signal of {len(x)} samples")
    c = int(min(crossfade, start, end - start + 1))
    if c < 1:
        return out
    tail = x[end - c + 1:end + 1].astype(np.float64)
    head = x[start - c:start].astype(np.float64)
    den = np.sqrt(np.sum(tail ** 2) * np.sum(head ** 2))
    r = float(np.clip(np.sum(tail * head) / den, 0.0, 1.0)) if den > 0 else 1.0
    t = 0.5 - 0.5 * np.cos(np.pi * (np.arange(c) + 1.0) / (c + 1.0))
    g = 1.0 / np.sqrt((1.0 - t) ** 2 + t ** 2 + 2.0 * r * t * (1.0 - t))
    out[end - c + 1:end + 1] = (g * ((1.0 - t) * tail + t * head)).astype(out.dtype)
    return out


def loop_click_db(x, start: int, end: int) -> float:
    """How much the loop's wrap from ``end`` to ``start`` stands out, in dB.

    The jump is the second difference across the join, x[start] - 2 x[end] + x[end - 1]: how far the
    first sample after the wrap lands from where the waveform was heading. It is compared with the
    99th percentile of the same quantity inside the loop. Around 0 dB or below the join is as smooth as
    the sound itself; +6 dB and up is an audible click. A sine cut at the wrong phase reads +10..+50 dB.

        >>> start, end = find_sustain_loop(x, 44100, 261.63)
        >>> y = crossfade_loop(x, start, end, crossfade=882)
        >>> loop_click_db(y, start, end) < 0       # a found and crossfaded loop joins smoothly
        True
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    start, end = int(start), int(end)
    if not (1 <= start and start + 2 <= end < len(x)):
        raise ValueError(f"loop ({start}, {end}) is too short or outside a signal of {len(x)} samples")
    jump = abs(x[start] - 2.0 * x[end] + x[end - 1])
    ref = np.percentile(np.abs(np.diff(x[start:end + 1], 2)), 99)
    return float(20.0 * np.log10(max(jump, 1e-12) / max(ref, 1e-12)))
