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

__all__ = ["make_cat", "make_flute", "main", "estimate_f0", "f0_track", "CAT_FILE", "FLUTE_FILE"]


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
    (out / "README.md").write_text(readme)
    print(f"wrote {out / CAT_FILE}, {out / FLUTE_FILE}, {out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
