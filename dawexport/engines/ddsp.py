"""The `ddsp` engine: a harmonic-plus-noise instrument learned from the user's own sounds, at full bandwidth.

    >>> engine = DDSPEngine(DDSPEngine.Settings(max_minutes=5), sample_rate=44100, seed=0)
    >>> engine.fit(corpus, workdir, progress)          # resumable: checkpoints live in workdir
    >>> engine.save(model_dir); engine.load(model_dir)
    >>> takes = engine.render([RenderRequest((("cat", 0.5), ("flute", 0.5)), "L", 60, 100, 2.0, 0.4)])

What it learns. Every (source, channel) of the corpus is a *key* with its own timbre latent z: the encoder
maps each normalised log-mel frame to a latent and z is their mean over the key's voiced frames (so the
latent the decoder trains with is exactly the corner latent it renders with). A GRU decoder turns (f0,
A-weighted loudness, z) per ~5 ms frame into an additive harmonic bank (amplitude + harmonic distribution,
harmonics above Nyquist removed) plus filtered noise, optionally through a learned room per key, trained with
a multi-resolution spectral loss at the model's own rate (16 to 48 kHz). The output level is anchored to the
loudness asked for (the network learns a bounded correction and the timbre), so velocities outside the corpus's
dynamic range still land at their level. Small corpora are augmented by pitch shifting (resampling, with the
source's spectral envelope put back so low notes keep their top end) and time stretching (phase vocoder).

How it plays. f0 is exactly the note (optionally with the source's vibrato/glide contour); velocity sets the
target loudness (127 = the loudest frame of the corner sources, lower velocities `velocity_range_db` lower on
the sampler's dB law), and since the decoder is conditioned on loudness the timbre darkens as it gets
quieter; the latent is the weight-blend of the corners' latents on the request's channel, which keeps the
stereo image. All requests render in a few batched passes.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal, Sequence

from . import torch_utils  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)

import numpy as np
import torch
from pydantic import Field, model_validator
from scipy import signal as sps

from ..audio.analysis import FLOOR_DB, default_hop, f0_track, hz_to_midi, loudness_db, midi_to_hz
from ..errors import EngineError
from ..progress import SILENT
from .base import Capabilities, Corpus, Engine, RenderRequest, TrainingSettings
from .ddsp_model import DDSP, DDSPConfig, fft_sizes, multi_resolution_stft_loss
from .torch_utils import load_engine_state, cpu_threads, load_module_state, pick_device, save_state
from .training import TrainConfig, Trainer, TrainResult

MODEL_NAME = "ddsp"
SILENT_PEAK = 10.0 ** (-90.0 / 20.0)
_CHUNK_SAMPLES = 1 << 21          # output samples per batched render pass (bounds memory to ~0.3 GB)


class DDSPSettings(TrainingSettings):
    """Small CPU-friendly defaults: a usable cat_flute instrument in about five minutes on two cores."""
    latent_size: int = Field(16, ge=1, le=128, description="dimensions of the timbre latent z")
    hidden_size: int = Field(128, ge=8, le=1024, description="width of the GRU and MLPs")
    n_harmonics: int = Field(100, ge=1, le=256, description="harmonics of the oscillator bank (100 reach 13 kHz at C3)")
    noise_bands: int = Field(65, ge=2, le=512)
    n_mels: int = Field(64, ge=8, le=256, description="mel bands the encoder reads")
    table_size: int = Field(2048, ge=64, le=16384, description="samples per single-cycle table")
    crop_s: float = Field(0.75, gt=0.05, le=10.0, description="seconds of audio per training example")
    lr: float = Field(2e-3, gt=0, le=1.0)
    augment: bool = True
    augment_copies: int = Field(8, ge=0, le=64, description="augmented copies of each clip")
    pitch_shift_semitones: float = Field(12.0, ge=0.0, le=24.0, description="shifts drawn from ±this")
    time_stretch: float = Field(1.25, ge=1.0, le=2.0, description="stretches drawn from 1/x..x")
    keep_formants: bool = Field(True, description="pitch-shifted copies keep the source's spectral envelope "
                                "(else tape-speed: formants move with the pitch)")
    contour: Literal["flat", "source"] = "flat"
    blend: Literal["output", "latent"] = Field(
        "output", description="how corners mix: 'output' runs the decoder at each corner's latent and mixes its "
        "outputs (a steady morph); 'latent' feeds it the weighted mean of the latents (NSynth's way)")
    reverb: bool = False
    reverb_s: float = Field(0.5, gt=0.0, le=4.0)
    velocity_range_db: float = Field(30.0, ge=0.0, le=96.0, description="dB from velocity 127 down to 1")
    attack_s: float = Field(0.015, ge=0.0, le=2.0, description="loudness rise at note-on")
    fmin: float = Field(40.0, gt=0)
    threads: int | None = Field(None, ge=1, le=256,
                                description="torch CPU threads for training and rendering (None: all cores)")
    fmax: float = Field(2000.0, gt=0)

    @model_validator(mode="after")
    def _check(self):
        if self.table_size < 2 * (self.n_harmonics + 1):
            raise ValueError(f"table_size must be at least 2 * (n_harmonics + 1) = {2 * (self.n_harmonics + 1)}")
        if self.fmin >= self.fmax:
            raise ValueError("fmin must be below fmax")
        return self


# --------------------------------------------------------------------------- features (numpy)

def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 20.0,
                   fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters evenly spaced on the mel scale (HTK formula)."""
    fmax = fmax or sample_rate / 2.0

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs) / np.maximum(hi - mid, 1e-9)
    return np.maximum(0.0, np.minimum(up, down))


def log_mel_shape(x: np.ndarray, sample_rate: int, hop: int, n_mels: int) -> np.ndarray:
    """(frames, n_mels) log-mel *shape* per centred frame (1 + len // hop frames): log power with each
    frame's mean removed, so it describes timbre and not level."""
    n_fft = 4 * hop
    x = np.asarray(x, dtype=np.float64)
    n_frames = 1 + len(x) // hop
    padded = np.zeros((n_frames - 1) * hop + n_fft)
    seg = x[: len(padded) - n_fft // 2]
    padded[n_fft // 2: n_fft // 2 + len(seg)] = seg
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft + 2)[1:-1], axis=1)) ** 2
    logmel = np.log(power @ mel_filterbank(sample_rate, n_fft, n_mels).T + 1e-10)
    return (logmel - logmel.mean(axis=1, keepdims=True)).astype(np.float32)


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
    """Which frames define a key's timbre: voiced, confident and within 40 dB of the loudest frame."""
    active = feat.loudness_db >= max(float(feat.loudness_db.max()) - 40.0, FLOOR_DB + 1.0)
    w = np.where(feat.voiced & active, np.clip(feat.confidence, 0.05, 1.0), 0.0)
    return w if w.sum() > 0 else active.astype(np.float64)


# --------------------------------------------------------------------------- augmentation (numpy)

def pitch_shift(x: np.ndarray, semitones: float, max_denominator: int = 64) -> tuple[np.ndarray, float]:
    """Tape-speed pitch shift by resampling: returns (audio, exact frequency ratio used)."""
    ratio = Fraction(2.0 ** (semitones / 12.0)).limit_denominator(max_denominator)
    if ratio == 1:
        return np.asarray(x, dtype=np.float32), 1.0
    y = sps.resample_poly(np.asarray(x, dtype=np.float64), ratio.denominator, ratio.numerator)
    return y.astype(np.float32), float(ratio)


def _stft(x: np.ndarray, n_fft: int) -> np.ndarray:
    """Hann STFT with hop n_fft / 4 of x padded by n_fft zeros on each side: (frames, n_fft // 2 + 1)."""
    hop = n_fft // 4
    padded = np.concatenate([np.zeros(n_fft), np.asarray(x, np.float64), np.zeros(n_fft)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.fft.rfft(frames * np.hanning(n_fft + 2)[1:-1], axis=1)


def _istft(spec: np.ndarray, n_fft: int, length: int) -> np.ndarray:
    """Inverse of `_stft` (weighted overlap-add), cropped to `length` samples."""
    hop = n_fft // 4
    window = np.hanning(n_fft + 2)[1:-1]
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
    total = (len(frames) - 1) * hop + n_fft
    y, norm = np.zeros(total), np.zeros(total)
    for k in range(len(frames)):                            # a few hundred frames
        y[k * hop:k * hop + n_fft] += frames[k]
        norm[k * hop:k * hop + n_fft] += window ** 2
    y = y / np.maximum(norm, 1e-3 * norm.max())
    return y[n_fft:n_fft + length]


def time_stretch(x: np.ndarray, factor: float, n_fft: int = 2048) -> np.ndarray:
    """Phase-vocoder time stretch: `factor` > 1 is longer, pitch unchanged. Output has round(len * factor)."""
    x = np.asarray(x, dtype=np.float64)
    if abs(factor - 1.0) < 1e-6:
        return x.astype(np.float32)
    hop = n_fft // 4
    spec = _stft(x, n_fft)
    n = len(spec)
    steps = np.arange(0.0, n - 1, 1.0 / factor)
    i = steps.astype(int)
    a = (steps - i)[:, None]
    mag = (1 - a) * np.abs(spec[i]) + a * np.abs(spec[i + 1])
    omega = 2 * np.pi * hop * np.arange(spec.shape[1]) / n_fft
    dphi = np.angle(spec[i + 1]) - np.angle(spec[i]) - omega
    dphi = dphi - 2 * np.pi * np.round(dphi / (2 * np.pi))
    phase = np.angle(spec[0]) + np.concatenate([np.zeros((1, spec.shape[1])),
                                                np.cumsum(omega + dphi, axis=0)[:-1]])
    return _istft(mag * np.exp(1j * phase), n_fft, int(round(len(x) * factor))).astype(np.float32)


def log_envelope(spec: np.ndarray, f0_hz: float, sample_rate: int, n_fft: int) -> np.ndarray:
    """Log-magnitude spectral envelope per frame through the harmonic peaks of a note at about f0_hz.

    A maximum filter one harmonic spacing wide picks the peaks (so the estimate does not depend on how dense
    the harmonics are), a moving average as wide smooths them, and below the fundamental the envelope is held
    at its value there (a source says nothing about frequencies under its own f0).
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d
    width = max(3, int(round(f0_hz * n_fft / sample_rate)))
    env = np.log(maximum_filter1d(np.abs(spec), size=width, axis=1) + 1e-9)
    env = uniform_filter1d(env, size=width, axis=1)
    f0_bin = min(env.shape[1] - 1, int(round(f0_hz * n_fft / sample_rate)))
    env[:, :f0_bin] = env[:, f0_bin:f0_bin + 1]
    return env


def restore_envelope(shifted: np.ndarray, reference: np.ndarray, ratio: float, f0_hz: float,
                     sample_rate: int, n_fft: int = 2048, max_db: float = 30.0) -> np.ndarray:
    """Put the reference's spectral envelope (formants, brightness) back on a tape-speed pitch shift of it.

    `shifted` is `reference` played `ratio` times faster. Each of its frames is re-weighted by the ratio of the
    reference's envelope (at the same moment) to its own (both traced through their harmonic peaks), limited to
    ±max_db. A shifted cat still sounds like the same cat's mouth,
    not a chipmunk's, so a low note keeps the source's energy above 8 kHz.
    """
    ref_env = log_envelope(_stft(reference, n_fft), f0_hz, sample_rate, n_fft)
    spec = _stft(shifted, n_fft)
    own_env = log_envelope(spec, f0_hz * ratio, sample_rate, n_fft)
    frames = np.clip(np.round(np.arange(len(spec)) * ratio).astype(int), 0, len(ref_env) - 1)
    limit = max_db / 20.0 * np.log(10.0)
    gain = np.exp(np.clip(ref_env[frames] - own_env, -limit, limit))
    return _istft(spec * gain, n_fft, len(shifted)).astype(np.float32)


def warp_track(values: np.ndarray, time_scale: float, n_out: int) -> np.ndarray:
    """Sample a frame track at times t * time_scale for n_out output frames (held past the end)."""
    src = np.arange(n_out) * time_scale
    return np.interp(src, np.arange(len(values)), values)


# --------------------------------------------------------------------------- render-time pure functions

def velocity_db(velocity: int, range_db: float) -> float:
    """dB relative to the loudest playing: 0 at 127, -range_db at 1 (the sampler engine's law)."""
    v = min(max(int(velocity), 1), 127)
    return -range_db * (1.0 - (v - 1) / 126.0)


def note_envelope(n_frames: int, frame_s: float, duration_s: float, release_s: float,
                  attack_s: float) -> np.ndarray:
    """Amplitude envelope per frame: linear attack, hold, raised-cosine release after note-off."""
    t = np.arange(n_frames) * frame_s
    env = np.ones(n_frames)
    if attack_s > 0:
        env = np.minimum(env, np.maximum(t / attack_s, 0.0))
    if release_s > 0:
        fall = np.clip((t - duration_s) / release_s, 0.0, 1.0)
        env = env * 0.5 * (1 + np.cos(np.pi * fall))
    else:
        env = np.where(t >= duration_s, 0.0, env)
    return env


def extend_contour(cents: np.ndarray, n_frames: int) -> np.ndarray:
    """A source contour, continued past its end by mirroring its second half back and forth."""
    if len(cents) == 0:
        return np.zeros(n_frames)
    if len(cents) >= n_frames:
        return cents[:n_frames]
    tail = cents[len(cents) // 2:]
    if len(tail) < 2:
        return np.concatenate([cents, np.full(n_frames - len(cents), cents[-1])])
    cycle = np.concatenate([tail[::-1][1:], tail[1:]])
    reps = int(np.ceil((n_frames - len(cents)) / len(cycle)))
    return np.concatenate([cents, np.tile(cycle, reps)])[:n_frames]


def _stable_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & (2 ** 63 - 1)


# --------------------------------------------------------------------------- training data

@dataclass
class Example:
    key: int
    audio: np.ndarray        # float32, frames * hop samples
    f0_hz: np.ndarray        # float32 (frames,)
    loudness: np.ndarray     # float32 (frames,)

    @property
    def frames(self) -> int:
        return len(self.f0_hz)


@dataclass
class KeyInfo:
    source: str
    channel: str
    silent: bool
    top_db: float
    pitch_midi: float
    contour: np.ndarray      # cents around pitch_midi per frame (float32)
    mel: np.ndarray          # (frames, n_mels) of all takes
    weights: np.ndarray      # (frames,)
    digest: str = ""         # of the key's audio: channels with identical audio share training and noise
    alias: int = -1          # index of the first key with the same audio (itself when it is the first)


def _audio_digest(clips) -> str:
    h = hashlib.sha256()
    for c in clips:
        h.update(np.ascontiguousarray(c.audio, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def _frame_aligned(x: np.ndarray, hop: int) -> tuple[np.ndarray, int]:
    n_frames = 1 + len(x) // hop
    out = np.zeros(n_frames * hop, dtype=np.float32)
    out[:len(x)] = x[:n_frames * hop]
    return out, n_frames


def prepare_training_data(corpus: Corpus, settings: DDSPSettings, sample_rate: int, hop: int, seed: int,
                          progress=SILENT) -> tuple[list[KeyInfo], list[Example], list[Example]]:
    """Analyse every clip, build the keys, and the (augmented) training and (plain) validation examples."""
    keys: list[KeyInfo] = []
    examples: list[Example] = []
    plain: list[Example] = []
    rng = np.random.default_rng(_stable_seed("ddsp-augment", seed))
    pairs = list(dict.fromkeys((c.source, c.channel) for c in corpus.clips))
    pv_fft = int(2 ** round(math.log2(0.046 * sample_rate)))
    seen: dict[str, int] = {}
    for k, (source, channel) in enumerate(pairs):
        clips = corpus.takes(source, channel)
        digest = _audio_digest(clips)
        if digest in seen:          # e.g. a mono source feeding both sides of a stereo instrument
            keys.append(replace(keys[seen[digest]], source=source, channel=channel, alias=seen[digest]))
            continue
        seen[digest] = k
        mels, weights, contours, tops, pitches = [], [], [], [], []
        silent = all(float(np.max(np.abs(c.audio))) < SILENT_PEAK for c in clips)
        for clip in clips:
            x = np.asarray(clip.audio, dtype=np.float32)
            if float(np.max(np.abs(x))) < SILENT_PEAK:
                continue
            fallback = clip.pitch.hz if np.isfinite(clip.pitch.hz) else 261.6256
            feat = clip_features(x, sample_rate, hop, settings.fmin, settings.fmax, fallback)
            mels.append(log_mel_shape(x, sample_rate, hop, settings.n_mels))
            weights.append(pooling_weights(feat))
            tops.append(float(feat.loudness_db.max()))
            midi = clip.pitch.midi if np.isfinite(clip.pitch.midi) else float(hz_to_midi(fallback))
            pitches.append(midi)
            contours.append((100.0 * (hz_to_midi(feat.f0_hz) - midi)).astype(np.float32))
            audio, n = _frame_aligned(x, hop)
            ex = Example(k, audio, feat.f0_hz[:n].astype(np.float32), feat.loudness_db[:n].astype(np.float32))
            examples.append(ex)
            plain.append(ex)
            if settings.augment:
                for _ in range(settings.augment_copies):
                    shift = rng.uniform(-settings.pitch_shift_semitones, settings.pitch_shift_semitones)
                    stretch = float(np.exp(rng.uniform(-1, 1) * math.log(settings.time_stretch)))
                    stretched = time_stretch(x, stretch, pv_fft) if stretch != 1.0 else x
                    y, ratio = pitch_shift(stretched, shift)
                    if settings.keep_formants and ratio != 1.0:
                        y = restore_envelope(y, stretched, ratio, float(np.median(feat.f0_hz)), sample_rate,
                                             pv_fft)
                    ya, n_y = _frame_aligned(y, hop)
                    f0_y = ratio * warp_track(feat.f0_hz, ratio / stretch, n_y)
                    if f0_y.max() * 1.0 >= 0.5 * sample_rate:
                        continue
                    loud_y = loudness_db(ya[:len(y)], sample_rate, hop=hop)[:n_y]
                    examples.append(Example(k, ya, f0_y.astype(np.float32), loud_y.astype(np.float32)))
        if silent or not mels:
            keys.append(KeyInfo(source, channel, True, FLOOR_DB, float("nan"), np.zeros(1, np.float32),
                                np.zeros((1, settings.n_mels), np.float32), np.zeros(1), digest, k))
            continue
        keys.append(KeyInfo(source, channel, False, max(tops), float(np.mean(pitches)), contours[0],
                            np.concatenate(mels), np.concatenate(weights), digest, k))
    if not examples:
        raise EngineError("the ddsp engine found no audible clip to learn from", key="sources",
                          fix="check that the sources are not silent")
    progress.info(f"ddsp: {len(keys)} keys ({', '.join(f'{k.source}/{k.channel}' for k in keys)}), "
                  f"{len(examples)} examples ({len(plain)} plain + augmented), "
                  f"{sum(e.frames for e in examples) * hop / sample_rate:.1f} s of audio")
    return keys, examples, plain


def _crop(ex: Example, offset: int, n_frames: int, hop: int):
    f0 = ex.f0_hz[offset:offset + n_frames]
    loud = ex.loudness[offset:offset + n_frames]
    audio = ex.audio[offset * hop:(offset + n_frames) * hop]
    if len(f0) < n_frames:
        pad = n_frames - len(f0)
        f0 = np.concatenate([f0, np.full(pad, f0[-1], np.float32)])
        loud = np.concatenate([loud, np.full(pad, FLOOR_DB, np.float32)])
        audio = np.concatenate([audio, np.zeros(n_frames * hop - len(audio), np.float32)])
    return audio, f0, loud


def make_batch(examples: list[Example], picks: list[tuple[int, int]], n_frames: int, hop: int,
               white: np.ndarray) -> dict[str, np.ndarray]:
    rows = [_crop(examples[i], o, n_frames, hop) for i, o in picks]
    return {"audio": np.stack([r[0] for r in rows]), "f0": np.stack([r[1] for r in rows]),
            "loud": np.stack([r[2] for r in rows]),
            "key": np.array([examples[i].key for i, _ in picks], dtype=np.int64), "white": white}


# --------------------------------------------------------------------------- the engine

class DDSPEngine(Engine):
    name = "ddsp"
    version = 1
    capabilities = Capabilities(pitched=True, blendable=True, trainable=True,
                                native_rates=(16000, 22050, 32000, 44100, 48000), default_rate=44100)
    Settings = DDSPSettings

    def __init__(self, settings, *, sample_rate, seed=0, device="auto"):
        super().__init__(settings, sample_rate=sample_rate, seed=seed, device=device)
        if self.capabilities.native_rates and sample_rate not in self.capabilities.native_rates:
            raise EngineError(f"the ddsp engine cannot run at {sample_rate} Hz", key="engine.sample_rate",
                              fix="use one of: " + ", ".join(map(str, self.capabilities.native_rates)))
        self.hop = default_hop(sample_rate)
        self.model: DDSP | None = None
        self.keys: list[KeyInfo] = []
        self.key_latents: torch.Tensor | None = None
        self.train_result: TrainResult | None = None

    # ------------------------------------------------------------------ building

    def _config(self, n_keys: int) -> DDSPConfig:
        s = self.settings
        return DDSPConfig(sample_rate=self.sample_rate, hop=self.hop, n_keys=n_keys, latent=s.latent_size,
                          hidden=s.hidden_size, n_harmonics=s.n_harmonics, noise_bands=s.noise_bands,
                          n_mels=s.n_mels, table_size=s.table_size, reverb=s.reverb,
                          reverb_samples=int(round(s.reverb_s * self.sample_rate)) if s.reverb else 0)

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_settings(self.settings, seed=self.seed, device=self.device, threads=self.settings.threads)

    def fit(self, corpus: Corpus, workdir: Path, progress=SILENT) -> None:
        progress = progress or SILENT
        if corpus.sample_rate != self.sample_rate:
            raise EngineError(f"corpus is at {corpus.sample_rate} Hz but the ddsp model runs at "
                              f"{self.sample_rate} Hz", fix="resample the corpus to the engine's rate")
        s = self.settings
        t0 = time.monotonic()
        keys, examples, plain = prepare_training_data(corpus, s, self.sample_rate, self.hop, self.seed, progress)
        progress.info(f"ddsp: analysed and augmented the corpus in {time.monotonic() - t0:.1f} s")
        voiced = [k for k in keys if not k.silent]
        torch.manual_seed(self.seed)
        model = DDSP(self._config(len(keys)))
        mel_all = np.concatenate([k.mel[k.weights > 0] for k in voiced])
        model.encoder.mel_mean.copy_(torch.from_numpy(mel_all.mean(0)))
        model.encoder.mel_std.copy_(torch.from_numpy(mel_all.std(0) + 1e-3))
        model.loud_ref.fill_(max(k.top_db for k in voiced))

        n_frames = max(4, int(round(s.crop_s * self.sample_rate / self.hop)))
        hop = self.hop
        lengths = np.array([max(1, e.frames - n_frames + 1) for e in examples], dtype=np.float64)
        probs = np.array([e.frames for e in examples], dtype=np.float64)
        probs /= probs.sum()

        def batch_fn(step: int, rng: np.random.Generator):
            idx = rng.choice(len(examples), size=s.batch_size, p=probs)
            offsets = [int(rng.integers(0, lengths[i])) for i in idx]
            white = rng.standard_normal((s.batch_size, n_frames, 2 * hop), dtype=np.float32)
            return make_batch(examples, list(zip(idx.tolist(), offsets)), n_frames, hop, white)

        val_rng = np.random.default_rng(_stable_seed("ddsp-validation", self.seed))
        picks = []
        for i, e in enumerate(plain):
            picks.append((i, 0))
            if e.frames > 2 * n_frames:
                picks.append((i, (e.frames - n_frames) // 2))
        val_white = val_rng.standard_normal((len(picks), n_frames, 2 * hop), dtype=np.float32)
        val_batches = [make_batch(plain, picks, n_frames, hop, val_white)]

        key_mel, key_w = self._key_tensors(keys)
        sizes = fft_sizes(self.sample_rate)
        n_keys = len(keys)
        cache: dict = {}

        def loss_fn(model: DDSP, batch) -> torch.Tensor:
            device = batch["f0"].device
            if cache.get("device") != device:
                cache.update(device=device, mel=key_mel.to(device), w=key_w.to(device))
            z = model.encoder(cache["mel"], cache["w"])[batch["key"]]
            kw = torch.nn.functional.one_hot(batch["key"], n_keys).float() if model.reverb is not None else None
            audio = model(batch["f0"], batch["loud"], z, batch["white"], kw)
            return multi_resolution_stft_loss(audio, batch["audio"], sizes)

        trainer = Trainer(model, self.train_config(), batch_fn=batch_fn, loss_fn=loss_fn,
                          val_batches=val_batches, workdir=Path(workdir), progress=progress, desc="ddsp train")
        progress.info(f"ddsp: training on {trainer.device.type} ({trainer.precision.describe()}), "
                      f"{sum(p.numel() for p in model.parameters()):,} parameters, up to {s.max_steps} steps / "
                      f"{s.max_minutes} min")
        self.train_result = trainer.run()
        model = model.cpu().eval()
        with torch.no_grad():
            latents = model.encoder(key_mel, key_w)[[k.alias for k in keys]]
        self.model, self.keys, self.key_latents = model, keys, latents

    @staticmethod
    def _key_tensors(keys: list[KeyInfo]) -> tuple[torch.Tensor, torch.Tensor]:
        n = max(len(k.weights) for k in keys)
        mel = np.zeros((len(keys), n, keys[0].mel.shape[1]), np.float32)
        w = np.zeros((len(keys), n), np.float32)
        for i, k in enumerate(keys):
            if not k.silent:
                mel[i, :len(k.mel)] = k.mel
                w[i, :len(k.weights)] = k.weights
        return torch.from_numpy(mel), torch.from_numpy(w)

    # ------------------------------------------------------------------ save / load

    def save(self, directory: Path) -> None:
        if self.model is None:
            raise EngineError("the ddsp engine has no model to save; call fit() or load() first")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        tensors["key_latents"] = self.key_latents
        for i, k in enumerate(self.keys):
            tensors[f"contour/{i}"] = torch.from_numpy(np.asarray(k.contour, np.float32))
        result = None
        if self.train_result is not None:
            result = {k: v for k, v in vars(self.train_result).items() if k != "history"}
            result["history"] = self.train_result.history[-50:]
        meta = {"engine": self.name, "version": self.version, "sample_rate": self.sample_rate, "hop": self.hop,
                "seed": self.seed, "settings": self.settings.model_dump(mode="json"),
                "config": self.model.config.to_json(),
                "keys": [{"source": k.source, "channel": k.channel, "silent": k.silent,
                          "top_db": k.top_db if math.isfinite(k.top_db) else None,
                          "pitch_midi": k.pitch_midi if math.isfinite(k.pitch_midi) else None,
                          "digest": k.digest}
                         for k in self.keys], "training": result}
        save_state(directory, MODEL_NAME, tensors, meta)

    def load(self, directory: Path) -> None:
        tensors, meta, file = load_engine_state(self, directory, MODEL_NAME)
        fix = "delete that folder and build again"
        try:
            config = DDSPConfig(**meta["config"])
            keys = [KeyInfo(k["source"], k["channel"], bool(k["silent"]),
                            FLOOR_DB if k["top_db"] is None else float(k["top_db"]),
                            float("nan") if k["pitch_midi"] is None else float(k["pitch_midi"]),
                            tensors[f"contour/{i}"].numpy(), np.zeros((0, config.n_mels), np.float32),
                            np.zeros(0), str(k["digest"])) for i, k in enumerate(meta["keys"])]
            latents = tensors["key_latents"].float()
        except (KeyError, TypeError, ValueError) as error:
            raise EngineError(f"model file is incomplete ({error})", file=file, fix=fix) from None
        model = DDSP(config)
        load_module_state(model, {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")},
                          file=file)
        if latents.shape != (len(keys), config.latent):
            raise EngineError("model file's latents do not match its keys", file=file, fix=fix)
        self.hop = config.hop
        self.model, self.keys, self.key_latents = model.eval(), keys, latents

    # ------------------------------------------------------------------ rendering

    def _key_index(self) -> dict[tuple[str, str], int]:
        return {(k.source, k.channel): i for i, k in enumerate(self.keys)}

    def key_weights(self, request: RenderRequest) -> np.ndarray:
        """The request's corner weights spread over keys on its channel (a source with no clip on that
        channel uses all its channels); silent keys get no weight; the result sums to 1 (or is all zero)."""
        index = self._key_index()
        w = np.zeros(len(self.keys))
        for source, weight in request.weights:
            if weight <= 0:
                continue
            if (source, request.channel) in index:
                hits = [index[(source, request.channel)]]
            else:
                hits = [i for (src, _), i in index.items() if src == source]
                if not hits:
                    raise EngineError(f"the ddsp model has no source named {source!r}",
                                      fix="train again with that source in the spec")
            for i in hits:
                w[i] += weight / len(hits)
        w[[i for i, k in enumerate(self.keys) if k.silent]] = 0.0
        total = w.sum()
        return w / total if total > 0 else w

    def _controls_for(self, request: RenderRequest, n_frames: int):
        """(f0 Hz, loudness dB, key weights, audible) per frame for one request."""
        kw = self.key_weights(request)
        frame_s = self.hop / self.sample_rate
        cents = np.zeros(n_frames)
        if self.settings.contour == "source":
            for i in np.flatnonzero(kw):
                cents += kw[i] * extend_contour(self.keys[i].contour.astype(np.float64), n_frames)
        f0 = midi_to_hz(request.note) * 2.0 ** (cents / 1200.0)
        f0 = np.minimum(f0, 0.49 * self.sample_rate)
        audible = kw.sum() > 0
        tops = np.array([k.top_db for k in self.keys])
        top = 10 * np.log10(max(float(np.sum(kw * 10 ** (tops / 10))), 1e-12)) if audible else FLOOR_DB
        env = note_envelope(n_frames, frame_s, request.duration_s, request.release_s, self.settings.attack_s)
        loud = top + velocity_db(request.velocity, self.settings.velocity_range_db) \
            + 20 * np.log10(np.maximum(env, 1e-4))
        return f0, loud, kw, audible

    def _merge_identical_keys(self, kw: torch.Tensor, latents: torch.Tensor):
        """Key weights (B, K) → weights over distinct latents (keys with the same audio share one decoder run)."""
        first: dict[str, int] = {}
        group = [first.setdefault(k.digest or f"#{i}", i) for i, k in enumerate(self.keys)]
        used = sorted(set(group))
        merged = kw.new_zeros(kw.shape[0], len(used))
        for i, g in enumerate(group):
            merged[:, used.index(g)] += kw[:, i]
        return merged, latents[used]

    def _room_weights(self, kw: torch.Tensor) -> torch.Tensor:
        """Key weights with each key's weight moved to the first key with the same audio (whose room trained)."""
        first: dict[str, int] = {}
        out = torch.zeros_like(kw)
        for i, k in enumerate(self.keys):
            out[:, first.setdefault(k.digest or f"#{i}", i)] += kw[:, i]
        return out

    def _noise_seed(self, request: RenderRequest, kw: np.ndarray) -> int:
        """Seeds the take's noise: the round-robin index and the *audio* of the keys it plays, not the channel
        name, so a mono source renders identically on both sides of a stereo instrument."""
        used = sorted((self.keys[i].digest, round(float(kw[i]), 6)) for i in np.flatnonzero(kw))
        return _stable_seed("ddsp-noise", self.seed, request.variation, request.note, request.velocity,
                            round(request.duration_s, 6), used)

    def render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        if self.model is None:
            raise EngineError("the ddsp engine has no model; call fit() or load() first")
        with cpu_threads(self.settings.threads):
            return self._render(requests, progress)

    def _render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        progress = progress or SILENT
        requests = list(requests)
        model = self.model
        device = pick_device(self.device)
        if device.type == "mps":
            device = torch.device("cpu")     # the table gathers are faster on the CPU than through MPS
        model.to(device).eval()
        latents = self.key_latents.to(device)
        lengths = [max(1, int(round((r.duration_s + r.release_s) * self.sample_rate))) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: -lengths[i])
        out: list[np.ndarray | None] = [None] * len(requests)
        bar = progress.bar(total=len(requests), desc="ddsp render", unit="take")
        hop = self.hop
        try:
            start = 0
            while start < len(order):
                n_frames = lengths[order[start]] // hop + 2
                size = max(1, _CHUNK_SAMPLES // (n_frames * hop))
                chunk = order[start:start + size]
                start += len(chunk)
                rows = [self._controls_for(requests[i], n_frames) for i in chunk]
                f0 = torch.tensor(np.stack([r[0] for r in rows]), dtype=torch.float32, device=device)
                loud = torch.tensor(np.stack([r[1] for r in rows]), dtype=torch.float32, device=device)
                kw = torch.tensor(np.stack([r[2] for r in rows]), dtype=torch.float32, device=device)
                white = torch.stack([
                    torch.randn(n_frames, 2 * hop, generator=torch.Generator().manual_seed(
                        self._noise_seed(requests[i], rows[row][2])))
                    for row, i in enumerate(chunk)]).to(device)
                with torch.no_grad():
                    if self.settings.blend == "output":
                        merged, corner_latents = self._merge_identical_keys(kw, latents)
                        controls = model.controls_blend(f0, loud, corner_latents, merged)
                    else:
                        controls = model.controls(f0, loud, kw @ latents)
                    audio = model.synthesize(controls, white, self._room_weights(kw) if model.reverb is not None
                                             else None)
                audio = audio.cpu().numpy()
                for row, i in enumerate(chunk):
                    take = audio[row, :lengths[i]].astype(np.float32, copy=True)
                    if not rows[row][3]:
                        take[:] = 0.0
                    out[i] = _tail_fade(take, self.sample_rate, requests[i])
                bar.update(len(chunk))
        finally:
            bar.close()
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ analysis helpers

    def resynthesize(self, audio: np.ndarray, source: str, channel: str, seed: int = 0) -> np.ndarray:
        """Play a recording's own f0 and loudness through the model with its key's latent (for quality checks)."""
        if self.model is None:
            raise EngineError("the ddsp engine has no model; call fit() or load() first")
        x = np.asarray(audio, dtype=np.float32)
        feat = clip_features(x, self.sample_rate, self.hop, self.settings.fmin, self.settings.fmax, 261.6256)
        kw = self.key_weights(RenderRequest(((source, 1.0),), channel, 60, 127, 1.0, 0.0))
        n = len(feat.f0_hz)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            model = self.model.cpu()
            kwt = torch.tensor(kw[None], dtype=torch.float32)
            y = model(torch.tensor(feat.f0_hz[None], dtype=torch.float32),
                      torch.tensor(feat.loudness_db[None], dtype=torch.float32), kwt @ self.key_latents,
                      torch.randn(1, n, 2 * self.hop, generator=g),
                      self._room_weights(kwt) if model.reverb is not None else None)
        return y[0, :len(x)].numpy()


def _tail_fade(take: np.ndarray, sample_rate: int, request: RenderRequest) -> np.ndarray:
    """Make sure the take ends in silence: a cosine fade over the last quarter of the release (>= 5 ms)."""
    n = max(int(0.25 * request.release_s * sample_rate), int(0.005 * sample_rate))
    n = min(n, len(take))
    if n > 0:
        take[-n:] *= 0.5 * (1 + np.cos(np.pi * np.arange(1, n + 1) / n))
    return take


__all__ = ["DDSPEngine", "DDSPSettings", "clip_features", "extend_contour", "log_mel_shape", "mel_filterbank",
           "note_envelope", "pitch_shift", "prepare_training_data", "restore_envelope", "time_stretch",
           "velocity_db"]
