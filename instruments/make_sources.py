#!/usr/bin/env python3
"""Synthesise the two example source sounds used by ``instruments/cat_flute.yaml``.

The repository must not depend on anything downloaded, so the example
"recordings" are generated here, deterministically, with numpy/scipy only:

* ``cat_meow.flac`` -- a cat-like "mi-a-ow": 1.6 s, stereo, 44.1 kHz, 24-bit FLAC.
  A band-limited glottal-like harmonic source (harmonics up to ~10 kHz) whose f0
  glides 500 -> 700 -> 450 Hz (median ~ D5 + 15 cents), shaped by moving formants
  (~900/1800/3000 Hz -> ~700/1100/2600 Hz), with pulsed breath noise, panned a
  little left and placed in a small synthetic room whose early reflections and
  diffuse tail differ per channel (so the stereo image is real, not dual-mono).
* ``flute.wav`` -- a flute-like sustained G4: 2.0 s, mono, 48 kHz (a different
  rate on purpose), 24-bit WAV, tuned ~12 cents flat on purpose, mostly odd
  harmonics with a steep roll-off, breath noise around the harmonics, a delayed
  5 Hz +-15 cent vibrato, ~80 ms soft attack, long steady sustain (the instrument
  loops it) and a short release.

Usage::

    python instruments/make_sources.py [--out DIR]

``DIR`` defaults to ``instruments/sounds`` next to this script.  A small
``README.md`` with the measured facts is written alongside the sounds.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal
from scipy.interpolate import PchipInterpolator

CAT_SR = 44100
CAT_DURATION = 1.6
CAT_FILE = "cat_meow.flac"

FLUTE_SR = 48000
FLUTE_DURATION = 2.0
FLUTE_FILE = "flute.wav"
FLUTE_DETUNE_CENTS = -12.0
FLUTE_F0 = 392.0 * 2.0 ** (FLUTE_DETUNE_CENTS / 1200.0)  # G4, ~12 cents flat

# The meow's median f0: near D5 (587.33 Hz) but deliberately not on it.
CAT_MEDIAN_F0 = 587.33 * 2.0 ** (15.0 / 1200.0)

PEAK_DBFS = -3.0

# the cat's small synthetic room: interaural delay of the (left-panned) voice,
# strength of the first early reflection, and diffuse-tail energy, all relative
# to a unit direct path
CAT_ITD_S = 0.00002
CAT_REFLECTION_GAIN = 0.18
TAIL_ENERGY = 0.015

# texture sources (instruments/textures.yaml): three short sounds of different kinds
TEXTURE_SR = 44100
DRUM_FILE, BABBLE_FILE, FIELD_FILE = "drum_hits.flac", "babble.flac", "field.flac"

__all__ = ["make_cat", "make_flute", "make_drum", "make_babble", "make_field", "main", "estimate_f0",
           "f0_track", "CAT_FILE", "FLUTE_FILE", "DRUM_FILE", "BABBLE_FILE", "FIELD_FILE"]


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------

def _normalise_peak(x: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    peak = float(np.max(np.abs(x)))
    if peak <= 0.0:
        return x.astype(np.float32)
    return (x * (10.0 ** (peak_dbfs / 20.0) / peak)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, n: int, sr: int, cutoff_hz: float) -> np.ndarray:
    """Zero-mean, unit-peak-ish low-pass noise (for slow random drifts)."""
    sos = signal.butter(2, cutoff_hz, fs=sr, output="sos")
    x = signal.sosfiltfilt(sos, rng.standard_normal(n))
    return x / (np.max(np.abs(x)) + 1e-12)


def _raised_cos(x: np.ndarray) -> np.ndarray:
    """0 -> 1 half-cosine ramp of x in [0, 1] (clipped)."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _bandpass_mag(f: np.ndarray, fc: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Magnitude of a 2nd-order band-pass resonator (unit gain at fc)."""
    f = np.maximum(f, 1.0)
    q = fc / bw
    return 1.0 / np.sqrt(1.0 + (q * (f / fc - fc / f)) ** 2)


# ----------------------------------------------------------------------------
# cat
# ----------------------------------------------------------------------------

def _cat_voice_params(u: np.ndarray):
    """Formant centre frequencies / bandwidths / gains over normalised time u."""
    # "m" (closed, nasal) -> "i" -> "a" (open) -> "ow" (rounded)
    keys_u = np.array([0.0, 0.10, 0.30, 0.55, 0.80, 1.0])
    f1 = np.array([600.0, 900.0, 1000.0, 950.0, 780.0, 700.0])
    f2 = np.array([1900.0, 1800.0, 1650.0, 1450.0, 1200.0, 1100.0])
    f3 = np.array([3100.0, 3000.0, 2900.0, 2800.0, 2650.0, 2600.0])
    interp = lambda k: PchipInterpolator(keys_u, k)(u)  # noqa: E731
    return interp(f1), interp(f2), interp(f3)


def _cat_spectral_envelope(f: np.ndarray, u: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """Vocal-tract magnitude at frequency f (Hz) and normalised time u.

    f may be (K, N) with u/opening broadcastable (N,).
    """
    F1, F2, F3 = _cat_voice_params(u)
    env = (
        1.00 * _bandpass_mag(f, F1, 110.0)
        + 0.55 * _bandpass_mag(f, F2, 160.0)
        + 0.30 * _bandpass_mag(f, F3, 260.0)
        + 0.10 * _bandpass_mag(f, 4400.0, 700.0)
        + 0.06 * _bandpass_mag(f, 7200.0, 2600.0)   # bright, broad "squeal" region
        + 0.025                                     # radiation floor
    )
    # mouth opening: a moving low-pass (closed "m" at the start, rounding at the end)
    fc = 600.0 + opening * 14000.0
    return env / np.sqrt(1.0 + (f / fc) ** 4)


def make_cat(sr: int = CAT_SR, seed: int = 0) -> np.ndarray:
    """Synthesise a cat-like meow. Returns float32 array of shape (2, frames)."""
    rng = np.random.default_rng(seed)
    n = int(round(CAT_DURATION * sr))
    t = np.arange(n) / sr

    t0, t1 = 0.035, 1.46                     # voiced section (room tail follows)
    u = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)

    # --- f0 glide: rise ~500 -> ~700, then fall to ~450 (log-domain pchip) ---
    keys_u = np.array([0.0, 0.08, 0.34, 0.50, 0.78, 1.0])
    keys_f = np.array([500.0, 535.0, 700.0, 665.0, 520.0, 450.0])
    log_f0 = PchipInterpolator(keys_u, np.log2(keys_f))(u)
    log_f0 += (8.0 / 1200.0) * _smooth_noise(rng, n, sr, 6.0)        # slow wander
    log_f0 += (4.0 / 1200.0) * _smooth_noise(rng, n, sr, 40.0)       # roughness
    voiced = (t >= t0) & (t <= t1)

    # --- amplitude envelope: soft attack, swell at the pitch peak, soft release ---
    env_keys_u = np.array([0.0, 0.07, 0.32, 0.60, 0.84, 1.0])
    env_keys_a = np.array([0.0, 0.50, 1.00, 0.85, 0.50, 0.0])
    amp = np.clip(PchipInterpolator(env_keys_u, env_keys_a)(u), 0.0, None)
    amp *= _raised_cos((t - t0) / 0.09) * _raised_cos((t1 - t) / 0.20)

    # pin the median f0 of the clearly audible part (what a pitch tracker sees)
    audible = voiced & (amp > 0.1 * amp.max())
    log_f0 += np.log2(CAT_MEDIAN_F0) - np.median(log_f0[audible])
    f0 = 2.0 ** log_f0
    amp *= 1.0 + 0.04 * _smooth_noise(rng, n, sr, 12.0)              # shimmer

    # mouth opening (0 = closed "m", 1 = wide "a"), closing a bit for "ow"
    opening = PchipInterpolator(
        np.array([0.0, 0.06, 0.16, 0.55, 0.85, 1.0]),
        np.array([0.0, 0.08, 0.85, 1.00, 0.55, 0.25]),
    )(u)
    opening = np.clip(opening, 0.0, 1.0)

    # --- band-limited glottal-like source, shaped per harmonic ---
    phase = 2.0 * np.pi * np.cumsum(f0) / sr
    k_max = int(np.ceil(10800.0 / f0[voiced].min()))
    voice = np.zeros(n)
    for k in range(1, k_max + 1):
        fk = k * f0
        # glottal spectrum ~ k^-1.15 with a soft band limit around 10 kHz
        src = k ** -1.15 * (1.0 - _raised_cos((fk - 9200.0) / 1400.0))
        if not np.any(src > 0):
            continue
        gain = src * _cat_spectral_envelope(fk, u, opening)
        voice += gain * np.sin(k * phase + 0.37 * k * k)   # fixed, non-zero phases
    voice *= amp

    # --- breath / aspiration noise, pulsed with the glottal cycle ---
    noise = rng.standard_normal(n)
    nper = 1024
    freqs, frame_t, Z = signal.stft(noise, fs=sr, nperseg=nper)
    u_fr = np.clip((frame_t - t0) / (t1 - t0), 0.0, 1.0)
    open_fr = np.interp(frame_t, t, opening)
    F = freqs[:, None]
    shape = _cat_spectral_envelope(F, u_fr[None, :], open_fr[None, :])
    shape *= np.sqrt(1.0 + (F / 2500.0) ** 2) / (1.0 + (F / 12000.0) ** 4)  # airy tilt
    _, breath = signal.istft(Z * shape, fs=sr, nperseg=nper)
    breath = breath[:n]
    breath *= 0.55 + 0.45 * (0.5 + 0.5 * np.cos(phase))          # glottal pulsing
    breath *= amp + 0.15 * _raised_cos((t - t0 + 0.02) / 0.04) * _raised_cos((t1 + 0.05 - t) / 0.1)
    breath *= 0.10 * np.std(voice) / (np.std(breath) + 1e-12)     # ~ -20 dB

    dry = voice + breath

    # --- stereo room: slight left pan + per-channel early reflections/tail ---
    pan = -0.22                                   # -1 = left, +1 = right
    theta = 0.25 * np.pi * (1.0 + pan)
    gains = (np.cos(theta), np.sin(theta))
    itd = int(round(CAT_ITD_S * sr))              # far (right) ear a touch later
    ir_len = int(round(0.30 * sr))
    tail_t = np.arange(ir_len) / sr
    out = np.zeros((2, n))
    for ch in range(2):
        ir = np.zeros(ir_len)
        ir[itd * ch] = gains[ch]
        # early reflections: distinct delays/gains/polarity per channel
        delays = np.sort(rng.uniform(0.004, 0.038, size=7))
        for d in delays:
            g = CAT_REFLECTION_GAIN * np.exp(-d / 0.025) * rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0)
            ir[int(round(d * sr))] += g
        # short diffuse tail (small room, RT60 ~ 0.3 s), decorrelated per channel
        tail = rng.standard_normal(ir_len) * np.exp(-tail_t / 0.045)
        tail *= _raised_cos((tail_t - 0.012) / 0.015)
        tail = signal.sosfilt(signal.butter(2, 6000.0, fs=sr, output="sos"), tail)
        ir += np.sqrt(TAIL_ENERGY) * tail / np.sqrt(np.sum(tail ** 2))
        out[ch] = signal.fftconvolve(dry, ir)[:n]

    # gentle fade of the last 20 ms so the file ends at digital silence
    out *= 1.0 - _raised_cos((t - (CAT_DURATION - 0.02)) / 0.02)
    return _normalise_peak(out)


# ----------------------------------------------------------------------------
# flute
# ----------------------------------------------------------------------------

# harmonic levels (dB re fundamental): odd-dominant, steep roll-off
_FLUTE_HARMONICS_DB = np.array(
    [0.0, -13.0, -11.0, -27.0, -22.0, -36.0, -32.0, -45.0, -41.0, -54.0, -50.0, -62.0]
)


def make_flute(sr: int = FLUTE_SR, seed: int = 1) -> np.ndarray:
    """Synthesise a flute-like sustained G4 (~12 cents flat). Returns float32 (1, frames)."""
    rng = np.random.default_rng(seed)
    n = int(round(FLUTE_DURATION * sr))
    t = np.arange(n) / sr

    t_on, attack, t_off, release = 0.02, 0.08, 1.84, 0.13

    # --- pitch: tiny scoop into the note, delayed vibrato (5 Hz, +-15 cents) ---
    vib_depth = 15.0 * _raised_cos((t - 0.45) / 0.35)
    vib_phase = 2.0 * np.pi * np.cumsum(5.0 + 0.15 * _smooth_noise(rng, n, sr, 1.0)) / sr
    cents = -18.0 * np.exp(-np.maximum(t - t_on, 0.0) / 0.025)   # settles in the attack
    cents += vib_depth * np.sin(vib_phase)
    cents += 1.0 * _smooth_noise(rng, n, sr, 3.0)                 # player's micro-drift
    f0 = FLUTE_F0 * 2.0 ** (cents / 1200.0)
    phase = 2.0 * np.pi * np.cumsum(f0) / sr

    # --- overall envelope ---
    env = _raised_cos((t - t_on) / attack) * (1.0 - _raised_cos((t - t_off) / release))
    tremolo = 10.0 ** ((0.8 * (vib_depth / 15.0) * np.sin(vib_phase - 0.6)) / 20.0)
    env *= tremolo * (1.0 + 0.01 * _smooth_noise(rng, n, sr, 2.0))

    tone = np.zeros(n)
    for i, level_db in enumerate(_FLUTE_HARMONICS_DB):
        k = i + 1
        # upper harmonics speak slightly later in the attack
        h_att = _raised_cos((t - t_on - 0.004 * k) / (attack + 0.012 * k))
        tone += 10.0 ** (level_db / 20.0) * h_att * np.sin(k * phase + 0.5 * k)
    tone *= env

    # --- breath noise: bands around each harmonic plus a faint airy band ---
    noise = rng.standard_normal(n)
    spec = np.fft.rfft(noise)
    fr = np.fft.rfftfreq(n, 1.0 / sr)
    mask = np.zeros_like(fr)
    for i, level_db in enumerate(_FLUTE_HARMONICS_DB):
        k = i + 1
        mask += 10.0 ** (0.6 * level_db / 20.0) * np.exp(-0.5 * ((fr - k * FLUTE_F0) / 35.0) ** 2)
    mask += 0.10 * _bandpass_mag(fr, 3500.0, 4000.0)
    breath = np.fft.irfft(spec * mask, n)
    breath /= np.std(breath) + 1e-12
    chiff = np.exp(-np.maximum(t - t_on, 0.0) / 0.03) * _raised_cos((t - t_on + 0.005) / 0.01)
    b_env = env * 0.025 + 0.06 * chiff * _raised_cos((t - t_on + 0.01) / 0.02)
    breath *= b_env * (1.0 + 0.3 * np.sin(phase))                # loosely locked to the tone

    out = (tone + breath)[None, :]
    out[:, t >= t_off + release] = 0.0
    return _normalise_peak(out)


# ----------------------------------------------------------------------------
# texture sources: a drum, a speech-like babble, a field recording with birds
# ----------------------------------------------------------------------------

def _room(x: np.ndarray, sr: int, rng: np.random.Generator, rt60: float = 0.35, wet: float = 0.12) -> np.ndarray:
    """A small room: the dry sound plus an exponentially decaying noise tail (60 dB in rt60)."""
    n = int(rt60 * sr)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    ir = signal.sosfilt(signal.butter(1, 6000, fs=sr, output="sos"), ir)
    ir *= wet / np.sqrt(np.sum(ir ** 2))
    return x + signal.fftconvolve(x, ir)[:len(x)]


def make_drum(sr: int = TEXTURE_SR, seed: int = 2) -> np.ndarray:
    """Three hits on a snare-like tom, 2.4 s mono: a membrane whose modes (110 Hz and inharmonic partials
    at 1.59, 2.14, 2.30, 2.65 x) drop in pitch as the head relaxes, a stick click, a buzzing snare wire,
    each hit at its own strength and moment, in a small room."""
    rng = np.random.default_rng(seed)
    n = int(2.4 * sr)
    out = np.zeros(n)
    for start_s, strength in ((0.05, 1.0), (0.83, 0.55), (1.42, 0.8)):
        m = n - int(start_s * sr)
        t = np.arange(m) / sr
        glide = 1.0 + 0.35 * strength * np.exp(-t / 0.03)          # harder hits start sharper
        hit = np.zeros(m)
        for ratio, amp, decay in ((1.0, 1.0, 0.28), (1.59, 0.5, 0.16), (2.14, 0.35, 0.11),
                                  (2.30, 0.25, 0.09), (2.65, 0.2, 0.07)):
            phase = 2 * np.pi * np.cumsum(110.0 * ratio * glide) / sr + rng.uniform(0, 2 * np.pi)
            hit += amp * np.sin(phase) * np.exp(-t / decay)
        click = rng.standard_normal(m) * np.exp(-t / 0.004)
        click = signal.sosfilt(signal.butter(2, [2000, 7000], btype="band", fs=sr, output="sos"), click)
        wires = rng.standard_normal(m) * np.exp(-t / 0.12) * (0.5 + 0.5 * np.exp(-t / 0.02))
        wires = signal.sosfilt(signal.butter(2, [1500, 9000], btype="band", fs=sr, output="sos"), wires)
        out[-m:] += strength * (hit + 0.6 * click + 0.35 * wires)
    return _normalise_peak(_room(out, sr, rng))[None, :]


VOWELS = {"a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010), "o": (570, 840, 2410),
          "u": (300, 870, 2240)}


def _formants(source: np.ndarray, sr: int, formants, bandwidths=(80, 100, 140)) -> np.ndarray:
    out = np.zeros_like(source)
    for f, bw, gain in zip(formants, bandwidths, (1.0, 0.6, 0.3)):
        r = np.exp(-np.pi * bw / sr)
        b, a = [1 - r], [1, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
        out += gain * signal.lfilter(b, a, source)
    return out


def make_babble(sr: int = TEXTURE_SR, seed: int = 3) -> np.ndarray:
    """Speech-like babble, 3.0 s mono: syllables of irregular length (consonant + vowel), a glottal source
    whose pitch falls through each phrase with accents, vowel formants, hissed, plosive and nasal
    consonants, and short pauses; no words."""
    rng = np.random.default_rng(seed)
    n = int(3.0 * sr)
    out = np.zeros(n)
    pos = int(0.05 * sr)
    phrase_start = pos
    while pos < n - int(0.15 * sr):
        dur = int(rng.uniform(0.12, 0.3) * sr)
        dur = min(dur, n - pos)
        t = np.arange(dur) / sr
        declination = 170.0 - 25.0 * (pos - phrase_start) / sr
        f0 = declination * (1.0 + rng.uniform(-0.05, 0.12) * np.sin(np.pi * t / t[-1])) * (1 + 0.01 * rng.standard_normal())
        phase = 2 * np.pi * np.cumsum(f0) / sr
        glottal = sum(np.sin(k * phase) / k ** 1.2 for k in range(1, 40) if k * f0.max() < 0.45 * sr)
        a, b = rng.choice(list(VOWELS), size=2)
        mix = np.clip(t / t[-1], 0, 1)[:, None]
        first = _formants(glottal, sr, VOWELS[a])
        second = _formants(glottal, sr, VOWELS[b])
        vowel = (1 - mix[:, 0]) * first + mix[:, 0] * second            # a diphthong glide
        env = np.sin(np.pi * np.clip(t / t[-1], 0, 1)) ** 0.6
        syllable = vowel * env / (np.max(np.abs(vowel)) + 1e-9)
        kind = rng.choice(["s", "t", "m", ""], p=[0.3, 0.3, 0.2, 0.2])
        lead = int(rng.uniform(0.03, 0.09) * sr)
        if kind == "s":
            hiss = signal.sosfilt(signal.butter(2, [4000, 9000], btype="band", fs=sr, output="sos"),
                                  rng.standard_normal(lead)) * np.hanning(lead) * 0.25
            out[max(0, pos - lead):pos] += hiss[-(pos - max(0, pos - lead)):]
        elif kind == "t":
            burst = int(0.012 * sr)
            noise = signal.sosfilt(signal.butter(2, 2500, btype="high", fs=sr, output="sos"),
                                   rng.standard_normal(burst)) * np.exp(-np.arange(burst) / (0.003 * sr)) * 0.5
            syllable[:burst] += noise
        elif kind == "m":
            hum = np.sin(2 * np.pi * np.cumsum(np.full(lead, f0[0])) / sr) * np.hanning(lead) * 0.3
            out[max(0, pos - lead):pos] += hum[-(pos - max(0, pos - lead)):]
        out[pos:pos + dur] += syllable
        pos += dur
        if rng.random() < 0.3:                                   # a pause: a new phrase starts higher
            pos += int(rng.uniform(0.1, 0.3) * sr)
            phrase_start = pos
        else:
            pos += int(rng.uniform(0.0, 0.04) * sr)
    return _normalise_peak(_room(out, sr, rng, rt60=0.25, wet=0.08))[None, :]


def make_field(sr: int = TEXTURE_SR, seed: int = 4) -> np.ndarray:
    """A field recording, 3.0 s stereo: wind in grass (slowly swelling, band-passed noise, different on each
    side), a cricket's pulsed 4.6 kHz song on the right, and a bird on the left: chirps and a trill."""
    rng = np.random.default_rng(seed)
    n = int(3.0 * sr)
    t = np.arange(n) / sr
    out = np.zeros((2, n))
    for ch in range(2):
        wind = signal.sosfilt(signal.butter(2, [150, 1200], btype="band", fs=sr, output="sos"), rng.standard_normal(n))
        wind *= 0.6 + 0.4 * _smooth_noise(rng, n, sr, 0.8)
        out[ch] += 0.02 * wind / np.std(wind)
    pulses = (np.sin(2 * np.pi * 12 * t) > 0.3) * (0.6 + 0.4 * (np.sin(2 * np.pi * 1.7 * t) > -0.4))
    cricket = np.sin(2 * np.pi * 4600 * t) * signal.sosfiltfilt(signal.butter(2, 40, fs=sr, output="sos"),
                                                               pulses.astype(float))
    out[1] += 0.25 * cricket
    out[0] += 0.1 * cricket
    bird = np.zeros(n)
    start = 0.1
    while start < 2.85:                                   # a chirp every 0.15-0.4 s, the trill at 1.6 s
        if not 1.55 < start < 2.0:
            dur = rng.uniform(0.05, 0.12)
            f_lo, f_hi = rng.uniform(2200, 3200), rng.uniform(3800, 5400)
            if rng.random() < 0.3:
                f_lo, f_hi = f_hi, f_lo                   # a falling call now and then
            m = int(dur * sr)
            tt = np.arange(m) / m
            f = f_lo + (f_hi - f_lo) * tt ** 0.7
            chirp = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.sin(np.pi * tt) ** 2
            i = int(start * sr)
            bird[i:i + m] += chirp + 0.2 * np.sin(2 * np.pi * np.cumsum(2 * f) / sr) * np.sin(np.pi * tt) ** 2
        start += rng.uniform(0.15, 0.4)
    trill_start, trill = int(1.6 * sr), int(0.35 * sr)
    tt = np.arange(trill) / sr
    bird[trill_start:trill_start + trill] += (np.sin(2 * np.pi * (3500 * tt + 300 * np.sin(2 * np.pi * 22 * tt) / (2 * np.pi * 22)))
                                             * (0.5 + 0.5 * np.sin(2 * np.pi * 22 * tt)) * np.hanning(trill))
    out[0] += 0.5 * bird
    out[1] += 0.2 * np.roll(bird, int(0.0004 * sr))
    return _normalise_peak(out)


# ----------------------------------------------------------------------------
# measurement helpers (used for the README and by the tests)
# ----------------------------------------------------------------------------

def estimate_f0(x: np.ndarray, sr: int, fmin: float = 150.0, fmax: float = 1200.0) -> float:
    """Fundamental of a steady mono segment: FFT peak with parabolic interpolation."""
    x = np.asarray(x, dtype=np.float64)
    x = (x - x.mean()) * np.hanning(len(x))
    nfft = 1 << int(np.ceil(np.log2(len(x) * 16)))
    mag = np.abs(np.fft.rfft(x, nfft))
    fr = np.fft.rfftfreq(nfft, 1.0 / sr)
    band = np.nonzero((fr >= fmin) & (fr <= fmax))[0]
    i = band[np.argmax(mag[band])]
    a, b, c = np.log(mag[i - 1: i + 2] + 1e-20)
    delta = 0.5 * (a - c) / (a - 2.0 * b + c)
    return float((i + delta) * sr / nfft)


def f0_track(x: np.ndarray, sr: int, fmin: float = 300.0, fmax: float = 1000.0,
             frame: int = 2048, hop: int = 512) -> np.ndarray:
    """Per-frame f0 (Hz) by normalised autocorrelation; unvoiced frames are dropped."""
    x = np.asarray(x, dtype=np.float64)
    lag_min, lag_max = int(sr / fmax), int(np.ceil(sr / fmin))
    starts = range(0, len(x) - frame, hop)
    rms = np.array([np.sqrt(np.mean(x[s:s + frame] ** 2)) for s in starts])
    thresh = 0.1 * rms.max()                      # frames within 20 dB of the loudest
    out = []
    win = np.hanning(frame)
    for start, level in zip(starts, rms):
        seg = x[start:start + frame]
        if level < thresh:
            continue
        seg = (seg - seg.mean()) * win
        ac = np.fft.irfft(np.abs(np.fft.rfft(seg, 2 * frame)) ** 2)[:frame]
        ac /= ac[0] + 1e-20
        # unbias for the window overlap
        ac /= np.maximum(np.correlate(win, win, "full")[frame - 1:] / np.sum(win ** 2), 1e-3)
        region = ac[lag_min:lag_max]
        best = float(region.max())
        # first local maximum close to the best one (avoids octave-down errors)
        peaks = np.nonzero((region[1:-1] >= region[:-2]) & (region[1:-1] > region[2:])
                           & (region[1:-1] >= 0.9 * best))[0] + 1
        lag = lag_min + (int(peaks[0]) if len(peaks) else int(np.argmax(region)))
        if ac[lag] < 0.6:
            continue
        a, b, c = ac[lag - 1: lag + 2]
        delta = 0.5 * (a - c) / (a - 2.0 * b + c) if (a - 2.0 * b + c) != 0 else 0.0
        out.append(sr / (lag + delta))
    return np.asarray(out)


def _cents(f: float, ref: float) -> float:
    return 1200.0 * np.log2(f / ref)


def _note_name(f: float) -> str:
    names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    midi = 69.0 + 12.0 * np.log2(f / 440.0)
    m = int(round(midi))
    return f"{names[m % 12]}{m // 12 - 1} {100.0 * (midi - m):+.0f} cents"


# ----------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "sounds"),
                        help="output directory (default: instruments/sounds next to this script)")
    args = parser.parse_args(None if argv is None else [os.fspath(a) for a in argv])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    cat = make_cat()
    flute = make_flute()
    sf.write(out / CAT_FILE, cat.T, CAT_SR, subtype="PCM_24", format="FLAC")
    sf.write(out / FLUTE_FILE, flute.T, FLUTE_SR, subtype="PCM_24", format="WAV")

    # measured facts, from the files as written
    c, csr = sf.read(out / CAT_FILE, dtype="float64", always_2d=True)
    fl, fsr = sf.read(out / FLUTE_FILE, dtype="float64", always_2d=True)
    cat_track = f0_track(c.mean(axis=1), csr)
    cat_med = float(np.median(cat_track))
    steady = fl[int(0.9 * fsr):int(1.8 * fsr), 0]
    fl_f0 = estimate_f0(steady, fsr)
    cat_peak = 20 * np.log10(np.max(np.abs(c)))
    fl_peak = 20 * np.log10(np.max(np.abs(fl)))
    readme = (
        "# Example source sounds\n\n"
        "Synthesised with numpy/scipy only (seeded, deterministic) by "
        "`instruments/make_sources.py`; regenerate with `python instruments/make_sources.py "
        "[--out DIR]`.\n"
        f"- `{CAT_FILE}`: cat-like \"mi-a-ow\", {len(c) / csr:.2f} s, {csr} Hz, {c.shape[1]} ch "
        f"(panned left, per-channel room), 24-bit FLAC; f0 glides {cat_track[0]:.0f} -> "
        f"{cat_track.max():.0f} -> {cat_track[-1]:.0f} Hz, "
        f"measured median {cat_med:.1f} Hz ({_note_name(cat_med)}); peak {cat_peak:.1f} dBFS.\n"
        f"- `{FLUTE_FILE}`: flute-like sustained tone, {len(fl) / fsr:.2f} s, {fsr} Hz, "
        f"{fl.shape[1]} ch, 24-bit WAV; intended G4 {FLUTE_DETUNE_CENTS:+.0f} cents "
        f"({FLUTE_F0:.2f} Hz), measured {fl_f0:.2f} Hz ({_note_name(fl_f0)}); delayed 5 Hz "
        f"+-15 cent vibrato (full from 0.8 s), steady sustain ~0.1-1.84 s for looping; "
        f"peak {fl_peak:.1f} dBFS.\n"
    )
    textures = ((DRUM_FILE, make_drum(), "three hits on a snare-like tom (membrane modes with a pitch drop, "
                 "stick click, snare wires) in a small room, mono"),
                (BABBLE_FILE, make_babble(), "speech-like babble: irregular syllables, falling-pitch phrases, "
                 "vowel formants, hissed/plosive/nasal consonants, pauses; no words; mono"),
                (FIELD_FILE, make_field(), "a field at dusk: wind in grass, a cricket (right), a bird's chirps "
                 "and trill (left); stereo"))
    for name, audio, what in textures:
        sf.write(out / name, audio.T, TEXTURE_SR, subtype="PCM_16", format="FLAC")
        info = sf.info(str(out / name))
        readme += f"- `{name}`: {what}; {info.duration:.2f} s, {info.samplerate} Hz, 16-bit FLAC (textures.yaml).\n"
    (out / "README.md").write_text(readme)
    print(f"wrote {out / CAT_FILE}, {out / FLUTE_FILE}, {', '.join(str(out / t[0]) for t in textures)}, "
          f"{out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
