"""The ddsp engine's training data: every (source, channel) of the corpus becomes a *key* (its timbre
frames, loudness top, pitch and contour), and its clips become examples, plain and augmented (pitch shifts
that keep the source's formants, time stretches), cut into batches of frame-aligned crops.

    >>> _frame_aligned(np.ones(5, np.float32), 4)[1]
    2
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace

import numpy as np

from ...audio.analysis import FLOOR_DB, hz_to_midi, loudness_db
from ...audio.spectral import log_mel_shape, pitch_shift, restore_envelope, time_stretch
from ...errors import EngineError
from ...progress import SILENT
from ..base import Corpus
from ..common.seeding import SILENT_PEAK, stable_seed
from ..common.trajectory import sample_track
from .features import clip_features, pooling_weights, warp_track
from .settings import DDSPSettings


@dataclass
class Example:
    key: int
    audio: np.ndarray        # float32, frames * hop samples
    f0_hz: np.ndarray        # float32 (frames,)
    loudness: np.ndarray     # float32 (frames,)
    mel: np.ndarray          # float32 (frames, n_mels): what the encoder reads for this example's z(t)

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
    loudness: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))  # first take, dB per frame

    @property
    def take_mel(self) -> np.ndarray:
        """The first take's mel frames, the ones its latent trajectory z(t) is read from."""
        return self.mel[:len(self.loudness)]


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
    rng = np.random.default_rng(stable_seed("ddsp-augment", seed))
    pairs = list(dict.fromkeys((c.source, c.channel) for c in corpus.clips))
    pv_fft = int(2 ** round(math.log2(0.046 * sample_rate)))
    seen: dict[str, int] = {}
    for k, (source, channel) in enumerate(pairs):
        clips = corpus.recordings(source, channel)
        digest = _audio_digest(clips)
        if digest in seen:          # e.g. a mono source feeding both sides of a stereo instrument
            keys.append(replace(keys[seen[digest]], source=source, channel=channel, alias=seen[digest]))
            continue
        seen[digest] = k
        mels, weights, contours, tops, pitches, louds = [], [], [], [], [], []
        silent = all(float(np.max(np.abs(c.audio))) < SILENT_PEAK for c in clips)
        for clip in clips:
            x = np.asarray(clip.audio, dtype=np.float32)
            if float(np.max(np.abs(x))) < SILENT_PEAK:
                continue
            fallback = clip.pitch.hz if np.isfinite(clip.pitch.hz) else 261.6256
            feat = clip_features(x, sample_rate, hop, settings.fmin, settings.fmax, fallback)
            mel = log_mel_shape(x, sample_rate, hop, settings.n_mels)
            mels.append(mel)
            louds.append(feat.loudness_db[:len(mel)].astype(np.float32))
            weights.append(pooling_weights(feat))
            tops.append(float(feat.loudness_db.max()))
            midi = clip.pitch.midi if np.isfinite(clip.pitch.midi) else float(hz_to_midi(fallback))
            pitches.append(midi)
            contours.append((100.0 * (hz_to_midi(feat.f0_hz) - midi)).astype(np.float32))
            audio, n = _frame_aligned(x, hop)
            ex = Example(k, audio, feat.f0_hz[:n].astype(np.float32), feat.loudness_db[:n].astype(np.float32),
                         fit_frames(mel, n))
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
                    # z(t) of a shifted copy is read from the *unshifted* source at the same moment: the decoder
                    # learns to put a source's timbre on other pitches, as it must when a note is rendered
                    mel_y = sample_track(mel, np.arange(n_y) * ratio / stretch).astype(np.float32)
                    examples.append(Example(k, ya, f0_y.astype(np.float32), loud_y.astype(np.float32), mel_y))
        if silent or not mels:
            keys.append(KeyInfo(source, channel, True, FLOOR_DB, float("nan"), np.zeros(1, np.float32),
                                np.zeros((1, settings.n_mels), np.float32), np.zeros(1), digest, k))
            continue
        keys.append(KeyInfo(source, channel, False, max(tops), float(np.mean(pitches)), contours[0],
                            np.concatenate(mels), np.concatenate(weights), digest, k, louds[0]))
    if not examples:
        raise EngineError("the ddsp engine found no audible clip to learn from", key="sources",
                          fix="check that the sources are not silent")
    progress.info(f"ddsp: {len(keys)} keys ({', '.join(f'{k.source}/{k.channel}' for k in keys)}), "
                  f"{len(examples)} examples ({len(plain)} plain + augmented), "
                  f"{sum(e.frames for e in examples) * hop / sample_rate:.1f} s of audio")
    return keys, examples, plain


def fit_frames(track: np.ndarray, n: int) -> np.ndarray:
    """A (frames, ...) track cut or extended (last frame held) to n frames."""
    track = np.asarray(track, np.float32)
    if len(track) >= n:
        return track[:n]
    return np.concatenate([track, np.repeat(track[-1:], n - len(track), axis=0)])


def _crop(ex: Example, offset: int, n_frames: int, hop: int):
    f0 = ex.f0_hz[offset:offset + n_frames]
    loud = ex.loudness[offset:offset + n_frames]
    mel = ex.mel[offset:offset + n_frames]
    audio = ex.audio[offset * hop:(offset + n_frames) * hop]
    if len(f0) < n_frames:
        pad = n_frames - len(f0)
        f0 = np.concatenate([f0, np.full(pad, f0[-1], np.float32)])
        loud = np.concatenate([loud, np.full(pad, FLOOR_DB, np.float32)])
        mel = fit_frames(mel, n_frames)
        audio = np.concatenate([audio, np.zeros(n_frames * hop - len(audio), np.float32)])
    return audio, f0, loud, mel


def make_batch(examples: list[Example], picks: list[tuple[int, int]], n_frames: int, hop: int,
               white: np.ndarray) -> dict[str, np.ndarray]:
    rows = [_crop(examples[i], o, n_frames, hop) for i, o in picks]
    return {"audio": np.stack([r[0] for r in rows]), "f0": np.stack([r[1] for r in rows]),
            "loud": np.stack([r[2] for r in rows]), "mel": np.stack([r[3] for r in rows]),
            "key": np.array([examples[i].key for i, _ in picks], dtype=np.int64), "white": white}
