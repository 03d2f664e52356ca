"""Pictures of sound for the build report: spectrograms as small indexed PNGs, written with numpy and zlib.

    >>> sr = 8000; t = np.arange(sr) / sr
    >>> image = spectrogram_image(np.sin(2 * np.pi * 440 * t), sr, width=40, height=24)
    >>> image.shape, image.dtype
    ((24, 40), dtype('uint8'))
    >>> png_bytes(image)[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'

Frequencies run on a log axis (low at the bottom) and levels on a fixed dB scale (0 dB = a full-scale
sine), so a quiet velocity layer looks quieter than a loud one. No plotting library: each image is one
palette index per pixel, which keeps a hundred thumbnails light.
"""
from __future__ import annotations

import struct
import zlib
from functools import lru_cache

import numpy as np
import scipy.fft

FLOOR_DB = -90.0            # the bottom of the colour scale, below a full-scale sine
TOP_DB = -6.0               # the top of the colour scale
F_LOW = 40.0

# "magma"-like anchors from black through purple and orange to pale yellow (perceptually ordered).
_ANCHORS = np.array([(0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122),
                     (229, 80, 100), (251, 135, 97), (254, 194, 135), (252, 253, 191)], dtype=float)


@lru_cache(maxsize=1)
def palette() -> np.ndarray:
    """256 RGB colours, dark (quiet) to bright (loud)."""
    where = np.linspace(0, len(_ANCHORS) - 1, 256)
    rgb = np.stack([np.interp(where, np.arange(len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], axis=1)
    return np.round(rgb).astype(np.uint8)


@lru_cache(maxsize=32)
def _bands(n_fft: int, sr: int, height: int, f_high: float) -> tuple[np.ndarray, ...]:
    """Log-spaced bands as FFT bin ranges [first, stop), lowest band first. A band too narrow to hold a bin
    reads between the two bins around its centre instead (`below`, `frac`)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = np.geomspace(F_LOW, f_high, height + 1)
    first = np.searchsorted(freqs, edges[:-1])
    stop = np.searchsorted(freqs, edges[1:])
    centre = np.sqrt(edges[:-1] * edges[1:]) / (sr / n_fft)
    below = np.minimum(np.floor(centre).astype(int), len(freqs) - 2)
    return first, stop, below, centre - below


def spectrogram_db(x: np.ndarray, sr: int, *, width: int, height: int, n_fft: int = 1024,
                   f_high: float = 16000.0) -> np.ndarray:
    """Level in dB (0 = full-scale sine) on a (height, width) grid: log frequency up (row 0 = lowest band),
    time across (columns evenly spaced over the whole sound)."""
    x = np.asarray(x, dtype=np.float32).ravel()
    f_high = min(f_high, 0.5 * sr * 0.98)
    window = np.hanning(n_fft).astype(np.float32)
    padded = np.pad(x, (n_fft // 2, n_fft // 2))
    starts = np.round(np.linspace(0, max(0, len(x) - 1), width)).astype(int)
    frames = padded[starts[:, None] + np.arange(n_fft)[None, :]] * window
    power = np.abs(scipy.fft.rfft(frames, axis=1, workers=1)) ** 2            # (width, bins)
    first, stop, below, frac = _bands(n_fft, sr, height, f_high)
    wide = stop > first                      # bands holding bins take their loudest bin (a tone's level does
    bands = power[:, below] * (1 - frac) + power[:, below + 1] * frac   # not depend on the band's width)
    if wide.any():                           # consecutive wide bands share no bins: one reduceat does them all
        edges = np.append(first[wide], stop[wide][-1])
        bands[:, wide] = np.maximum.reduceat(power, edges, axis=1)[:, :-1]
    full_scale = (float(window.sum()) / 2.0) ** 2
    return 10.0 * np.log10(bands.T / full_scale + 1e-20)


def spectrogram_image(x: np.ndarray, sr: int, *, width: int, height: int, n_fft: int = 1024) -> np.ndarray:
    """Palette indices (height, width), top row = highest frequency, ready for `png_bytes`."""
    db = spectrogram_db(x, sr, width=width, height=height, n_fft=n_fft)
    level = np.clip((db - FLOOR_DB) / (TOP_DB - FLOOR_DB), 0.0, 1.0)
    return np.round(level[::-1] * 255).astype(np.uint8)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bytes(indices: np.ndarray, colours: np.ndarray | None = None) -> bytes:
    """An 8-bit indexed PNG of `indices` (height, width) with `colours` (256, 3) as its palette."""
    colours = palette() if colours is None else colours
    indices = np.ascontiguousarray(indices, dtype=np.uint8)
    height, width = indices.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), indices], axis=1)   # filter byte 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", colours.astype(np.uint8).tobytes())
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + _chunk(b"IEND", b""))
