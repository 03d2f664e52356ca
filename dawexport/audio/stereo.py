"""Split stereo sources into mono signals for the models, and join rendered channels back.

Modes: ``split`` (L and R learned separately), ``mono`` (downmix), ``mid_side`` (M and S).

    >>> audio = np.stack([x, 0.5 * x])                 # (2, frames)
    >>> parts = split_channels(audio, "mid_side")      # {"M": ..., "S": ...}
    >>> stereo = join_channels(parts, "mid_side")      # (2, frames), equal to audio
"""
from __future__ import annotations

import numpy as np

from dawexport.errors import SourceError

STEREO_MODES = ("split", "mono", "mid_side")


def _check_mode(mode: str) -> None:
    if mode not in STEREO_MODES:
        raise ValueError(f"stereo mode must be one of {STEREO_MODES}, got {mode!r}")


def channel_names(mode: str, n_channels: int, *, file: str | None = None) -> tuple[str, ...]:
    """Names of the signals ``split_channels`` makes for ``n_channels`` input channels.

    More than two channels raise SourceError (naming ``file`` when given).

        >>> channel_names("split", 2)
        ('L', 'R')
    """
    _check_mode(mode)
    if n_channels not in (1, 2):
        raise SourceError(f"{n_channels} channels cannot be split", file=file,
                          fix="export the source as a stereo or mono file")
    if n_channels == 1 or mode == "mono":
        return ("mono",)
    return ("L", "R") if mode == "split" else ("M", "S")


def split_channels(audio: np.ndarray, mode: str, *, file: str | None = None
                   ) -> dict[str, np.ndarray]:
    """Channel name → 1-D float32 signal. Mono sources give {"mono": ...} in every mode.

        >>> split_channels(np.zeros((2, 10), np.float32), "split").keys()
        dict_keys(['L', 'R'])
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[np.newaxis, :]
    names = channel_names(mode, audio.shape[0], file=file)
    if names == ("mono",):
        return {"mono": audio.mean(axis=0, dtype=np.float32)}
    left, right = audio[0], audio[1]
    if mode == "split":
        return {"L": left.copy(), "R": right.copy()}
    return {"M": (left + right) * np.float32(0.5), "S": (left - right) * np.float32(0.5)}


def join_channels(channels: dict[str, np.ndarray], mode: str) -> np.ndarray:
    """Inverse of ``split_channels``: (channels, frames) float32; shorter signals are zero-padded.

        >>> join_channels({"M": np.zeros(5), "S": np.zeros(3)}, "mid_side").shape
        (2, 5)
    """
    _check_mode(mode)
    if set(channels) == {"mono"}:
        order = ("mono",)
    elif mode == "split" and set(channels) == {"L", "R"}:
        order = ("L", "R")
    elif mode == "mid_side" and set(channels) == {"M", "S"}:
        order = ("M", "S")
    else:
        raise ValueError(f"channels {sorted(channels)} do not fit stereo mode {mode!r}")
    signals = [np.asarray(channels[name], dtype=np.float32).reshape(-1) for name in order]
    frames = max(len(s) for s in signals)
    stacked = np.zeros((len(signals), frames), dtype=np.float32)
    for row, s in zip(stacked, signals):
        row[:len(s)] = s
    if order == ("M", "S"):
        mid, side = stacked
        return np.stack([mid + side, mid - side])
    return stacked
