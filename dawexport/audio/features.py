"""Measured features of a texture: what the curator reads to tell silence, noise, drones, tones, rhythm
and "gnarly" (information-rich) material apart.

    >>> f = texture_features(x, 44100, reference=mel_profile_db(x, 44100))     # 1 s of a held C4
    >>> f.silence, f.flatness < 0.1, f.onset_rate, round(f.pitch_confidence, 1), f.source_distance
    (0.0, True, 0.0, 1.0, 0.0)

All measures come from one STFT (about 46 ms frames, hop a quarter of that) of the mono sound:
- `silence`: share of frames below -60 dBFS or 50 dB under the loudest frame;
- `flatness`: median spectral flatness (geometric / arithmetic mean, 60 Hz up to 16 kHz) of the sounding
  frames' power spectra with their envelope divided out: ~0 for a tone, ~0.5 for noise of any colour;
- `onset_rate` (per second) and `periodicity` (0..1, the highest autocorrelation of the onset strength at
  lags of 0.1–2 s): onsets are peaks of the rectified log-mel rise well above its typical value;
- `pitch_confidence`: the YIN-based confidence of `estimate_pitch` (0 unpitched .. 1);
- `flux` / `flux_tail`: mean absolute frame-to-frame change of the 64-band log-mel spectrum (dB) over the
  sounding frames, over the whole sound and over its last half (a frozen spectrum is output that got stuck);
- `source_distance`: mean |dB| between the time-averaged 64-band log-mel spectra (40 Hz–16 kHz, frames
  within 20 dB of the loudest, level removed) of the sound and a reference (the sources); the curator
  compares it with white noise's distance (`white_noise_profile_db`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .analysis import estimate_pitch
from .spectral import mel_filterbank

SILENT_DBFS = -60.0
SILENT_BELOW_PEAK_DB = 50.0
MEL_BANDS = 64
MEL_LOW_HZ, MEL_HIGH_HZ = 40.0, 16000.0
FLOOR_BELOW_PEAK_DB = 60.0


@dataclass(frozen=True)
class TextureFeatures:
    level_db: float
    silence: float
    tail_silence: float
    flatness: float
    onset_rate: float
    periodicity: float
    pitch_confidence: float
    flux: float
    flux_tail: float
    source_distance: float
    profile: np.ndarray = field(repr=False, compare=False)

    def summary(self) -> str:
        """For people (format comments): 'onsets 3.9/s, periodicity 0.93, pitch 0.10, flux 4.2 dB'."""
        return (f"onsets {self.onset_rate:.1f}/s, periodicity {self.periodicity:.2f}, pitch "
                f"{self.pitch_confidence:.2f}, flatness {self.flatness:.2f}, flux {self.flux:.1f} dB")


def _mel_filterbank(sample_rate: int, n_fft: int) -> np.ndarray:
    return mel_filterbank(sample_rate, n_fft, MEL_BANDS, MEL_LOW_HZ, min(MEL_HIGH_HZ, sample_rate / 2.0))


def fft_size(sample_rate: int) -> int:
    """About 46 ms: 2048 at 44.1 kHz, 1024 at 16–22 kHz."""
    return int(2 ** np.round(np.log2(0.0464 * sample_rate)))


def _power_frames(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(power spectra (frames, bins), frame mean-square (frames,), hop)."""
    n_fft = fft_size(sample_rate)
    hop = n_fft // 4
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    return power, np.mean(frames ** 2, axis=1), hop


def mel_profile_db(x, sample_rate: int) -> np.ndarray:
    """Time-averaged 64-band log-mel spectrum (dB) of the frames within 20 dB of the loudest; the input may be
    one sound or a list of sounds (their frames pooled)."""
    sounds = [x] if isinstance(x, np.ndarray) and x.ndim == 1 else list(x)
    spectra, levels = [], []
    for sound in sounds:
        power, ms, _ = _power_frames(np.asarray(sound, dtype=np.float64), sample_rate)
        spectra.append(power)
        levels.append(ms)
    power, ms = np.concatenate(spectra), np.concatenate(levels)
    loud = 10 * np.log10(ms + 1e-20) >= 10 * np.log10(ms.max() + 1e-20) - 20.0
    mel = power[loud] @ _mel_filterbank(sample_rate, fft_size(sample_rate)).T
    return 10 * np.log10(mel.mean(axis=0) + 1e-12)


def white_noise_profile_db(sample_rate: int) -> np.ndarray:
    """`mel_profile_db` of white noise (any level), from the filterbank alone: a flat power spectrum puts
    into each band the sum of its weights. What "as far from the sources as noise" is measured against.

    >>> noise = np.random.default_rng(0).standard_normal(4 * 16000)
    >>> profile_distance_db(white_noise_profile_db(16000), mel_profile_db(noise, 16000)) < 0.5
    True
    """
    return 10 * np.log10(_mel_filterbank(sample_rate, fft_size(sample_rate)).sum(axis=1) + 1e-12)


def profile_distance_db(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |dB| between two mel profiles with their levels removed."""
    return float(np.mean(np.abs((a - a.mean()) - (b - b.mean()))))


def local_flatness(power: np.ndarray, width: int = 9, range_db: float = 25.0) -> float:
    """Median over frames of the spectral flatness of each power spectrum divided by its own moving average
    over `width` bins, over the bins whose average lies within `range_db` of the frame's highest: the
    colour is divided out, so white, pink or "windy" noise read about 0.6 and tones or harmonic spectra
    (peaks standing out of their neighbourhood) read low."""
    if power.size == 0:
        return 0.0
    kernel = np.ones(width) / width
    envelope = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="same"), 1, power) + 1e-30
    ratio = (power + 1e-30) / envelope
    values = []
    for r, e in zip(ratio, envelope):
        use = e >= e.max() * 10.0 ** (-range_db / 10.0)
        values.append(np.exp(np.mean(np.log(r[use]))) / np.mean(r[use]))
    return float(np.median(values))


def _onsets(strength: np.ndarray, frames_per_s: float) -> np.ndarray:
    """Frame indices of onsets: local maxima of the onset strength above median + 4 × MAD and 1 dB,
    at least 50 ms apart (the stronger wins)."""
    if len(strength) < 3:
        return np.zeros(0, dtype=int)
    med = np.median(strength)
    mad = np.median(np.abs(strength - med))
    threshold = max(med + 4.0 * mad, 1.0)
    peaks = np.flatnonzero((strength[1:-1] > strength[:-2]) & (strength[1:-1] >= strength[2:])
                           & (strength[1:-1] > threshold)) + 1
    gap = max(1, int(round(0.05 * frames_per_s)))
    kept: list[int] = []
    for p in peaks[np.argsort(-strength[peaks])]:
        if all(abs(p - q) >= gap for q in kept):
            kept.append(int(p))
    return np.array(sorted(kept), dtype=int)


def _periodicity(strength: np.ndarray, frames_per_s: float) -> float:
    s = strength - strength.mean()
    if len(s) < 4 or float(np.dot(s, s)) <= 0:
        return 0.0
    lo, hi = max(1, int(0.1 * frames_per_s)), min(len(s) // 2, int(2.0 * frames_per_s))
    if hi <= lo:
        return 0.0
    spectrum = np.fft.rfft(s, 2 * len(s))
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[:len(s)]
    ac = ac / ac[0] * len(s) / (len(s) - np.arange(len(s)))        # unbiased: long lags are not penalised
    return float(np.clip(ac[lo:hi + 1].max(), 0.0, 1.0))


def _flatness_band(sample_rate: int) -> np.ndarray:
    freqs = np.fft.rfftfreq(fft_size(sample_rate), 1.0 / sample_rate)
    return (freqs >= 60.0) & (freqs <= min(16000.0, 0.45 * sample_rate))


def _silent_frames(ms: np.ndarray) -> np.ndarray:
    frame_db = 10 * np.log10(ms + 1e-20)
    return (frame_db < SILENT_DBFS) | (frame_db < frame_db.max() - SILENT_BELOW_PEAK_DB)


def sources_flatness(sounds, sample_rate: int) -> float:
    """The `flatness` of the hissiest of `sounds` (each measured as a texture is): how much hiss the sources
    themselves hold. A field recording of wind and crickets reads about 0.5, a drum or a voice under 0.1.

        >>> noise = np.random.default_rng(0).standard_normal(16000)
        >>> round(sources_flatness([x, noise], 44100), 1), round(sources_flatness([x], 44100), 2)   # x: a C4
        (0.6, 0.01)
    """
    values = [0.0]
    for sound in sounds:
        sound = np.asarray(sound, dtype=np.float64).ravel()
        if len(sound) == 0 or not np.any(sound):
            continue
        power, ms, _ = _power_frames(sound, sample_rate)
        values.append(local_flatness(power[~_silent_frames(ms)][:, _flatness_band(sample_rate)]))
    return float(max(values))


def texture_features(x, sample_rate: int, reference: np.ndarray | None = None) -> TextureFeatures:
    """The features of one (mono) texture; `reference` is `mel_profile_db` of the sources."""
    x = np.asarray(x, dtype=np.float64).ravel()
    power, ms, hop = _power_frames(x, sample_rate)
    level_db = float(10 * np.log10(np.mean(x ** 2) + 1e-20)) if len(x) else -200.0
    silent = _silent_frames(ms)
    half = len(silent) // 2
    silence, tail_silence = float(np.mean(silent)), float(np.mean(silent[half:])) if half else 1.0
    fb = _mel_filterbank(sample_rate, fft_size(sample_rate))
    mel_db = 10 * np.log10(power @ fb.T + 1e-12)
    mel_db = np.maximum(mel_db, mel_db.max() - FLOOR_BELOW_PEAK_DB)
    profile = mel_profile_db(x, sample_rate) if not silent.all() else np.full(MEL_BANDS, -120.0)
    if silent.all():
        return TextureFeatures(level_db, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float("nan"), profile)
    flatness = local_flatness(power[~silent][:, _flatness_band(sample_rate)])
    frames_per_s = sample_rate / hop
    rise = np.diff(mel_db, axis=0)
    strength = np.concatenate([[0.0], np.maximum(rise, 0.0).mean(axis=1)])
    onsets = _onsets(strength, frames_per_s)
    onset_rate = len(onsets) / max(len(x) / sample_rate, 1e-9)
    periodicity = _periodicity(strength, frames_per_s) if len(onsets) >= 3 else 0.0
    sounding_pair = ~silent[1:] & ~silent[:-1]
    change = np.abs(rise).mean(axis=1)
    flux = float(change[sounding_pair].mean()) if sounding_pair.any() else 0.0
    tail = sounding_pair.copy()
    tail[:half] = False
    flux_tail = float(change[tail].mean()) if tail.any() else 0.0
    pitch = estimate_pitch(x, sample_rate, fmax=min(2000.0, sample_rate / 4.0))
    distance = profile_distance_db(profile, reference) if reference is not None else float("nan")
    return TextureFeatures(level_db, silence, tail_silence, flatness, float(onset_rate), periodicity,
                           float(pitch.confidence), flux, flux_tail, distance, profile)
