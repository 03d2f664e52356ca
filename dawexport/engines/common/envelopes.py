"""Amplitude envelopes shared by the engines: a note's (attack, hold, release), a take's closing fade and a
one-shot's exponential decay. One of each; engines differ only in the numbers they pass.

    >>> env = note_envelope(np.arange(5) * 0.1, duration_s=0.2, release_s=0.2)
    >>> env.round(3).tolist()
    [1.0, 1.0, 1.0, 0.5, 0.0]
"""
from __future__ import annotations

import math

import numpy as np

CLICK_FREE_RISE_S = 0.003   # the shortest rise at note-on that starts a note without a click


def note_rise_s(own_attack_s: float, longest_s: float) -> float:
    """A note's rise at note-on: as fast as its source's own attack, at least `CLICK_FREE_RISE_S`, at most
    `longest_s` (a `longest_s` under the click-free rise is the player's choice and kept).

        >>> note_rise_s(0.0, 0.015), note_rise_s(0.008, 0.015), note_rise_s(0.2, 0.015), note_rise_s(0.2, 0.0)
        (0.003, 0.008, 0.015, 0.0)
    """
    return min(longest_s, max(own_attack_s, CLICK_FREE_RISE_S))


def note_envelope(t: np.ndarray, duration_s: float, release_s: float, attack_s: float = 0.0) -> np.ndarray:
    """Level at times `t` (s, float64): a linear rise over `attack_s`, 1 while the key is held, then a
    raised-cosine fall over `release_s` after note-off (a hard stop when `release_s` <= 0)."""
    t = np.asarray(t, dtype=np.float64)
    env = np.ones(len(t))
    if attack_s > 0:
        env = np.minimum(env, np.maximum(t / attack_s, 0.0))
    if release_s > 0:
        fall = np.clip((t - duration_s) / release_s, 0.0, 1.0)
        env = env * 0.5 * (1 + np.cos(np.pi * fall))
    else:
        env = np.where(t >= duration_s, 0.0, env)
    return env


def release_envelope(frames: int, sample_rate: int, duration_s: float, release_s: float,
                     attack_s: float = 0.0) -> np.ndarray:
    """`note_envelope` sample by sample, as float32."""
    return note_envelope(np.arange(frames) / sample_rate, duration_s, release_s, attack_s).astype(np.float32)


def fade_in(take: np.ndarray, sample_rate: int, rise_s: float) -> np.ndarray:
    """A linear rise over the first `rise_s` of the take, sample by sample, in place.

        >>> fade_in(np.ones(6, np.float32), 4, 1.0).tolist()
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    n = min(int(round(rise_s * sample_rate)), len(take))
    if n > 0:
        take[:n] *= (np.arange(n) / n).astype(take.dtype)
    return take


def tail_fade(take: np.ndarray, sample_rate: int, release_s: float) -> np.ndarray:
    """Make sure the take ends in silence: a cosine fade over the last quarter of the release (>= 5 ms),
    in place."""
    n = min(max(int(0.25 * release_s * sample_rate), int(0.005 * sample_rate)), len(take))
    if n > 0:
        take[-n:] *= 0.5 * (1 + np.cos(np.pi * np.arange(1, n + 1) / n))
    return take


def decay_envelope(frames: int, sr: int, decay_s: float) -> np.ndarray:
    """A one-shot's level: 3 ms raised-cosine attack, exponential decay reaching -60 dB at `decay_s`,
    and a raised-cosine close over the last 10 ms (or quarter) so it ends in silence."""
    t = np.arange(frames) / sr
    env = np.exp(-math.log(1000.0) * t / max(decay_s, 1e-3))
    attack = min(int(0.003 * sr), frames // 4)
    if attack > 0:
        env[:attack] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
    tail = min(int(0.01 * sr), frames // 4)
    if tail > 0:
        env[frames - tail:] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(tail) + 1) / tail)
    return env
