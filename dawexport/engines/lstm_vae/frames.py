"""Blocks of audio ↔ the features the LSTM-VAE models: signed-log DCT coefficients or log FFT magnitudes.

    >>> blocks = BlockCodec("dct", 512)
    >>> feats = blocks.encode(x)                   # (frames, 512): one row per block (50 % overlap)
    >>> y = blocks.decode(feats)                   # ≈ x: sqrt-Hann analysis and synthesis windows
    >>> y = BlockCodec("fft", 512).decode(BlockCodec("fft", 512).encode(x))   # phases rebuilt

DCT (the seed's choice: a narrower, more coherent range) keeps sign and phase in the coefficients, so
decoding is exact overlap-add. FFT keeps only log magnitudes ("more ethereal"); decoding rebuilds phases
that do not smear or flange: each frame's spectral peaks advance by their own interpolated frequency,
the bins around a peak are locked to it (zero-phase frames: a steady partial's main lobe shares one
phase), and a few Griffin-Lim iterations then make the spectrogram consistent.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

DCT_EPS = 1e-4          # signed log: f = sign(c) log1p(|c| / eps) / log1p(1 / eps)
MAG_EPS = 1e-5


def sqrt_hann(n: int) -> np.ndarray:
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n))


class BlockCodec:
    def __init__(self, domain: str, block: int, griffin_lim_iters: int = 8):
        if domain not in ("dct", "fft"):
            raise ValueError("domain is dct or fft")
        self.domain, self.block, self.iters = domain, int(block), int(griffin_lim_iters)
        self.hop = self.block // (2 if domain == "dct" else 4)
        self.window = sqrt_hann(self.block)
        self._scale = float(np.log1p(1.0 / DCT_EPS))

    @property
    def size(self) -> int:
        """Features per frame."""
        return self.block if self.domain == "dct" else self.block // 2 + 1

    # ------------------------------------------------------------------ framing

    def frames(self, x: np.ndarray) -> np.ndarray:
        """Windowed blocks (..., frames, block) of x (..., samples), padded by a block on both sides."""
        x = np.asarray(x, dtype=np.float64)
        pad = [(0, 0)] * (x.ndim - 1) + [(self.block, self.block)]
        x = np.pad(x, pad)
        count = (x.shape[-1] - self.block) // self.hop + 1
        view = np.lib.stride_tricks.sliding_window_view(x, self.block, axis=-1)
        return view[..., ::self.hop, :][..., :count, :] * self.window

    def overlap_add(self, blocks: np.ndarray, length: int | None = None) -> np.ndarray:
        """Inverse of `frames`: (..., frames, block) blocks, already windowed for synthesis → (..., samples)."""
        count = blocks.shape[-2]
        parts = self.block // self.hop                   # the hop divides the block: add `parts` shifted sums
        y = np.zeros(blocks.shape[:-2] + (count + parts - 1, self.hop), dtype=blocks.dtype)
        norm = np.zeros((count + parts - 1, self.hop))
        split = blocks.reshape(blocks.shape[:-1] + (parts, self.hop))
        w2 = (self.window ** 2).reshape(parts, self.hop)
        for j in range(parts):
            y[..., j:j + count, :] += split[..., j, :]
            norm[j:j + count] += w2[j]
        y, norm = y.reshape(y.shape[:-2] + (-1,)), norm.reshape(-1)
        y /= np.maximum(norm, 1e-3 * max(norm.max(), 1e-12)).astype(y.dtype)
        y = y[..., self.block:]
        return (y if length is None else y[..., :length]).astype(np.float32)

    # ------------------------------------------------------------------ features

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Features (..., frames, size) of audio (..., samples)."""
        frames = self.frames(x)
        if self.domain == "dct":
            c = sfft.dct(frames, type=2, norm="ortho", axis=-1)
            return (np.sign(c) * np.log1p(np.abs(c) / DCT_EPS) / self._scale).astype(np.float32)
        spec = sfft.rfft(np.fft.fftshift(frames, axes=-1), axis=-1)
        return np.log(np.abs(spec) + MAG_EPS).astype(np.float32)

    def decode(self, features: np.ndarray, length: int | None = None) -> np.ndarray:
        """Audio (..., samples) from features (..., frames, size)."""
        f = np.asarray(features, dtype=np.float32)
        if self.domain == "dct":
            c = np.expm1(np.abs(f) * np.float32(self._scale))          # float32, in place: the bulk of the work
            np.copysign(c, f, out=c)
            c *= np.float32(DCT_EPS)
            blocks = sfft.idct(c, type=2, norm="ortho", axis=-1)
            blocks *= self.window.astype(np.float32)
            return self.overlap_add(blocks, length)
        mag = np.maximum(np.exp(f) - np.float32(MAG_EPS), np.float32(0.0))
        spec = mag * np.exp(1j * self.initial_phase(mag))
        count = mag.shape[-2]
        for _ in range(self.iters):
            y = self._istft(spec)
            again = sfft.rfft(np.fft.fftshift(self.frames(y)[..., :count, :], axes=-1), axis=-1)
            spec = again * (mag / np.maximum(np.abs(again), 1e-12))
        y = self._istft(spec)
        return y if length is None else y[..., :length]

    def _istft(self, spec: np.ndarray) -> np.ndarray:
        blocks = np.fft.ifftshift(sfft.irfft(spec, n=self.block, axis=-1), axes=-1) * self.window
        return self.overlap_add(blocks)

    def initial_phase(self, mag: np.ndarray) -> np.ndarray:
        """Peak-locked phase advance for magnitudes (..., frames, bins): every spectral peak moves by its own
        (parabolically interpolated) frequency and the bins around it share its phase; a frame without
        peaks advances each bin at its centre frequency."""
        mag = np.asarray(mag, dtype=np.float64)
        lead, (frames, bins) = mag.shape[:-2], mag.shape[-2:]
        mag = mag.reshape(-1, frames, bins)
        k = np.arange(bins)
        m = np.log(mag + MAG_EPS)
        is_peak = np.zeros_like(m, dtype=bool)
        is_peak[..., 1:-1] = ((m[..., 1:-1] > m[..., :-2]) & (m[..., 1:-1] >= m[..., 2:])
                              & (mag[..., 1:-1] > 1e-3 * mag.max(axis=-1, keepdims=True)))
        delta = np.zeros_like(m)
        a, b, c = m[..., :-2], m[..., 1:-1], m[..., 2:]
        curve = a - 2 * b + c
        delta[..., 1:-1] = np.clip(0.5 * (a - c) / np.where(np.abs(curve) > 1e-12, curve, -1e-12), -0.5, 0.5)
        # each bin follows its nearest peak (the left one on a tie); a frame without peaks, its own centre
        left = np.maximum.accumulate(np.where(is_peak, k, -1), axis=-1)
        right = np.minimum.accumulate(np.where(is_peak, k, bins)[..., ::-1], axis=-1)[..., ::-1]
        use_right = (left < 0) | ((right < bins) & (right - k < k - left))
        owner = np.where(use_right, right, left)
        owner = np.where(is_peak.any(axis=-1, keepdims=True), np.clip(owner, 0, bins - 1), k)
        step = 2 * np.pi * self.hop / self.block
        advance = step * (owner + np.take_along_axis(delta, owner, axis=-1))
        phase = np.zeros_like(m)
        previous = np.zeros(m.shape[::2])
        for t in range(frames):
            previous = np.take_along_axis(previous, owner[:, t], axis=-1) + advance[:, t]
            phase[:, t] = previous
        return np.mod(phase, 2 * np.pi).reshape(lead + (frames, bins))
