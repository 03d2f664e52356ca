"""Training examples for SampleRNN: random crops of the mu-law–quantised training audio.

    >>> clips = quantise([np.zeros(100, np.float32), np.full(50, 0.5, np.float32)])
    >>> clips[1][:3]                                  # 8-bit mu-law classes
    array([239, 239, 239], dtype=uint8)
    >>> random_crops(clips, np.random.default_rng(0), count=4, length=40, lead=8).shape
    (4, 40)
"""
from __future__ import annotations

import numpy as np

from ..wavenet.model import mu_law_encode
from .model import SILENCE_CLASS


def quantise(audio: list[np.ndarray]) -> list[np.ndarray]:
    """8-bit mu-law classes (uint8) of each clip."""
    return [mu_law_encode(np.clip(a, -1.0, 1.0)).astype(np.uint8) for a in audio]


def crop(clip: np.ndarray, offset: int, length: int) -> np.ndarray:
    """`length` classes from `offset`; outside the clip is silence (class 128)."""
    out = np.full(length, SILENCE_CLASS, dtype=np.int64)
    lo, hi = max(0, offset), min(len(clip), offset + length)
    if hi > lo:
        out[lo - offset:hi - offset] = clip[lo:hi]
    return out


def random_crops(clips: list[np.ndarray], rng: np.random.Generator, count: int, length: int,
                 lead: int) -> np.ndarray:
    """`count` crops, clips drawn in proportion to their length; a crop may start up to `lead` samples before
    its clip (so the model learns to start from silence) and stays mostly inside it."""
    sizes = np.array([len(c) for c in clips], dtype=np.float64)
    picks = rng.choice(len(clips), size=count, p=sizes / sizes.sum())
    rows = []
    for i in picks:
        clip = clips[int(i)]
        offset = int(rng.integers(-lead, max(1 - lead, len(clip) - length // 2)))
        rows.append(crop(clip, offset, length))
    return np.stack(rows)


def validation_crops(clips: list[np.ndarray], length: int, per_clip: int = 2) -> np.ndarray:
    """Fixed crops evenly spread over each clip (the first clips are the unstretched originals)."""
    rows = []
    for clip in clips:
        for k in range(per_clip):
            offset = int((len(clip) - length) * (k + 0.5) / per_clip) if len(clip) > length else 0
            rows.append(crop(clip, offset, length))
    return np.stack(rows)
