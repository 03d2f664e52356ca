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
        x = np.asarray(x)
        x = x if x.dtype == np.float32 else x.astype(np.float64)
        pad = [(0, 0)] * (x.ndim - 1) + [(self.block, self.block)]
        x = np.pad(x, pad)
        count = (x.shape[-1] - self.block) // self.hop + 1
        view = np.lib.stride_tricks.sliding_window_view(x, self.block, axis=-1)
        return view[..., ::self.hop, :][..., :count, :] * self.window.astype(x.dtype)

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
        return self._decode_fft(f, length)

    def frame_energy_db(self, features: np.ndarray) -> np.ndarray:
        """Energy (dB) of each block (..., frames) from its features (Parseval: the coefficients' or the
        magnitudes' squares), for finding onsets in encoded audio."""
        f = np.asarray(features, dtype=np.float64)
        if self.domain == "dct":
            energy = np.square(np.expm1(np.abs(f) * self._scale) * DCT_EPS).sum(axis=-1)
        else:
            mag = np.maximum(np.exp(f) - MAG_EPS, 0.0)
            energy = np.square(mag[..., 1:-1]).sum(axis=-1) * 2 + np.square(mag[..., [0, -1]]).sum(axis=-1)
        return 10 * np.log10(energy + 1e-20)

    def _decode_fft(self, f: np.ndarray, length: int | None, group: int = 16) -> np.ndarray:
        """Magnitudes exp(f) with peak-locked phases, then `iters` Griffin-Lim passes (float32 throughout),
        `group` sounds at a time (the arrays of a group stay nearer the cache)."""
        lead, (frames, bins) = f.shape[:-2], f.shape[-2:]
        f = f.reshape(-1, frames, bins)
        if len(f) > group:
            y = np.concatenate([self._decode_fft(f[i:i + group], length) for i in range(0, len(f), group)])
            return y.reshape(lead + (-1,))
        mag = np.exp(f)
        mag -= np.float32(MAG_EPS)
        np.maximum(mag, np.float32(0.0), out=mag)
        spec = np.empty(mag.shape, dtype=np.complex64)
        unshift = (np.pi * np.arange(bins) % (2 * np.pi)).astype(np.float32)    # undoes the fftshift
        for t0, phase in self._phase_blocks(f):
            phase += unshift
            t1 = t0 + phase.shape[1]
            spec.real[:, t0:t1] = mag[:, t0:t1] * np.cos(phase)
            spec.imag[:, t0:t1] = mag[:, t0:t1] * np.sin(phase)
        window = self.window.astype(np.float32)
        for _ in range(self.iters):
            y = self._istft(spec, window)
            spec = sfft.rfft(self.frames(y)[..., :frames, :], axis=-1)
            scale = np.abs(spec)
            np.maximum(scale, np.float32(1e-12), out=scale)
            np.divide(mag, scale, out=scale)
            spec *= scale
        y = self._istft(spec, window).reshape(lead + (-1,))
        return y if length is None else y[..., :length]

    def _istft(self, spec: np.ndarray, window: np.ndarray) -> np.ndarray:
        blocks = sfft.irfft(spec, n=self.block, axis=-1)
        blocks *= window
        return self.overlap_add(blocks)

    def initial_phase(self, features: np.ndarray) -> np.ndarray:
        """Peak-locked phase advance (float32) for log magnitudes (..., frames, bins) of zero-phase frames:
        every spectral peak moves by its own (parabolically interpolated) frequency and the bins around it
        (nearest peak; the left one on a tie) share its phase; a frame without peaks advances each bin at
        its centre frequency."""
        f = np.asarray(features, dtype=np.float32)
        lead, (frames, bins) = f.shape[:-2], f.shape[-2:]
        parts = [phase for _, phase in self._phase_blocks(f.reshape(-1, frames, bins))]
        return np.concatenate(parts, axis=1).reshape(lead + (frames, bins))

    def _phase_blocks(self, f: np.ndarray, size: int = 32):
        """`initial_phase` of f (sounds, frames, bins), `size` frames at a time (so every pass stays in the
        cache): yields (first frame, phases (sounds, size, bins)). Worked in a (frames, bins, sounds) layout
        so that every pass runs along contiguous memory and the recursion is one gather per frame."""
        rows, frames, bins = f.shape
        k = np.arange(bins, dtype=np.int32)[:, None]
        kf = k.astype(np.float32)
        flat = np.arange(rows, dtype=np.int32)
        step = np.float32(2 * np.pi * self.hop / self.block)
        floor_db = np.float32(np.log(1e-3))
        previous = np.zeros((bins, rows), dtype=np.float32)
        for t0 in range(0, frames, size):
            m = np.ascontiguousarray(f[:, t0:t0 + size].transpose(1, 2, 0))      # (n, bins, sounds)
            a, b, c = m[:, :-2], m[:, 1:-1], m[:, 2:]
            is_peak = np.zeros(m.shape, dtype=bool)
            is_peak[:, 1:-1] = (b > a) & (b >= c) & (b > m.max(axis=1, keepdims=True) + floor_db)
            curve = a - 2 * b + c
            np.minimum(curve, np.float32(-1e-12), out=curve)      # at a peak the parabola opens downwards
            advance = np.zeros(m.shape, dtype=np.float32)
            advance[:, 1:-1] = np.clip(np.float32(0.5) * (a - c) / curve, -0.5, 0.5)
            advance *= is_peak
            advance += kf
            advance *= step                                       # per bin: its peak's advance per hop
            left = np.maximum.accumulate(np.where(is_peak, k, -1), axis=1)
            right = np.minimum.accumulate(np.where(is_peak, k, bins)[:, ::-1], axis=1)[:, ::-1]
            owner = np.where((left < 0) | ((right < bins) & (right - k < k - left)), right, left)
            owner = np.where(is_peak.any(axis=1, keepdims=True), owner, k)
            owner *= rows
            owner += flat                                         # flat index of the owner in its frame
            phase = np.empty(m.shape, dtype=np.float32)
            for t in range(len(m)):
                previous += advance[t]
                previous = np.take(previous, owner[t])
                np.mod(previous, np.float32(2 * np.pi), out=previous)
                phase[t] = previous
            yield t0, phase.transpose(2, 0, 1)
