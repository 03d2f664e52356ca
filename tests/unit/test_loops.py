"""Sustain loops: found on whole periods, crossfaded, and played ten times in a row without a click."""
from __future__ import annotations

import numpy as np
import pytest

from dawexport.audio.loops import crossfade_loop, find_sustain_loop, loop_click_db

SR = 44100
XF = int(0.02 * SR)


def _off_harmonic_db(y, f0, width_hz=15.0):
    """Power away from the harmonics of f0, relative to all power (Hann-windowed spectrum)."""
    p = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    fr = np.fft.rfftfreq(len(y), 1 / SR)
    k = np.round(fr / f0)
    near = (k >= 1) & (np.abs(fr - k * f0) <= width_hz)
    return 10 * np.log10(p[~near].sum() / p.sum())


def _play(y, start, end, times=10):
    """x[:start] followed by the loop played `times` times; also the indices of the joins."""
    n = end - start + 1
    played = np.concatenate([y[:start]] + [y[start:end + 1]] * times).astype(np.float64)
    joins = start + n * np.arange(1, times)          # first sample after each wrap
    return played, joins


def _assert_seamless(x, f0, loop):
    start, end = loop
    y = crossfade_loop(x, start, end, XF)
    played, joins = _play(y, start, end)
    d = np.abs(np.diff(played))
    at_join = d[joins - 1]
    elsewhere = np.delete(d, joins - 1)
    assert at_join.max() <= 1.5 * elsewhere.max()
    assert loop_click_db(y, start, end) < 0.0
    looped = played[start:]
    assert _off_harmonic_db(looped, f0) <= _off_harmonic_db(x[start:].astype(np.float64), f0) + 3.0
    return y


def test_sine_with_a_non_integer_period():
    f0 = 441.3
    x = (0.5 * np.sin(2 * np.pi * f0 * np.arange(2 * SR) / SR)).astype(np.float32)
    loop = find_sustain_loop(x, SR, f0)
    assert loop is not None
    start, end = loop
    assert 0.3 * len(x) <= start < end < 0.9 * len(x)
    assert end - start + 1 >= 0.1 * SR
    assert x[start - 1] < 0 <= x[start] and x[end] < 0 <= x[end + 1]
    cycles = (end - start + 1) * f0 / SR
    assert abs(cycles - round(cycles)) < 0.05
    _assert_seamless(x, f0, loop)


def test_harmonic_tone_with_drift_and_noise():
    f0 = 220.0
    t = np.arange(2 * SR) / SR
    rng = np.random.default_rng(0)
    x = sum(0.6 ** k * np.sin(2 * np.pi * (k + 1) * f0 * t + k) for k in range(8))
    x = x * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t)) + 0.01 * rng.standard_normal(len(t))
    x = (0.3 * x * np.minimum(1, t / 0.05)).astype(np.float32)
    loop = find_sustain_loop(x, SR, f0)
    assert loop is not None
    cycles = (loop[1] - loop[0] + 1) * f0 / SR
    assert abs(cycles - round(cycles)) < 0.1
    _assert_seamless(x, f0, loop)
    assert find_sustain_loop(x, SR, float("nan")) is not None        # waveform-similarity fallback


def test_unpitched_texture_gets_a_long_loop():
    x = (0.3 * np.random.default_rng(2).standard_normal(2 * SR)).astype(np.float32)
    loop = find_sustain_loop(x, SR, float("nan"))
    assert loop is not None and loop[1] - loop[0] > 0.5 * SR
    y = crossfade_loop(x, *loop, XF)
    assert loop_click_db(y, *loop) < 6.0


def test_decaying_or_short_sounds_get_no_loop():
    t = np.arange(SR) / SR
    burst = (np.random.default_rng(1).standard_normal(SR) * np.exp(-t / 0.1)).astype(np.float32)
    assert find_sustain_loop(burst, SR, float("nan")) is None
    assert find_sustain_loop(burst, SR, 300.0) is None
    short = np.sin(2 * np.pi * 440 * t[:4000]).astype(np.float32)
    assert find_sustain_loop(short, SR, 440.0) is None


def test_crossfade_touches_only_the_end_of_the_loop():
    x = np.random.default_rng(3).standard_normal(20000).astype(np.float32)
    y = crossfade_loop(x, 5000, 15000, 500)
    changed = np.nonzero(y != x)[0]
    assert changed.min() >= 15000 - 500 + 1 and changed.max() <= 15000
    assert y.dtype == np.float32 and y is not x
    assert abs(y[15000] - x[4999]) < 0.01 * np.abs(x).max()     # ends on the sample before start
    with pytest.raises(ValueError):
        crossfade_loop(x, 15000, 5000, 10)


def test_crossfade_keeps_the_level_of_in_phase_and_uncorrelated_material():
    t = np.arange(20000)
    sine = np.sin(2 * np.pi * t / 100.0)
    y = crossfade_loop(sine, 5000, 14999, 1000)                 # loop of exactly 100 periods
    np.testing.assert_allclose(y, sine, atol=1e-6)
    noise = np.random.default_rng(4).standard_normal(200000)
    y = crossfade_loop(noise, 50000, 149999, 40000)
    region = y[149999 - 40000 + 1:150000]
    assert np.sqrt(np.mean(region ** 2)) == pytest.approx(1.0, abs=0.03)


def test_click_measure_flags_a_bad_join():
    x = np.sin(2 * np.pi * np.arange(20000) / 100.0)
    assert loop_click_db(x, 5000, 14999) < -20                   # whole periods: seamless
    assert loop_click_db(x, 5000, 15024) > 20                    # a quarter period off: a click


def sweeping_glide(seconds=1.4, f0=110.0):
    """A held note that changes all through: pitch rising 300 cents with a vibrato, a formant sweeping
    300 Hz → 3 kHz across its harmonics (a sung /u/ → /i/), so no two stretches of it match."""
    t = np.arange(int(seconds * SR)) / SR
    u = t / seconds
    cents = 300 * u + 25 * np.sin(2 * np.pi * 5.5 * t)
    hz = f0 * 2 ** (cents / 1200)
    phase = 2 * np.pi * np.cumsum(hz) / SR
    centre = 300 * 10 ** u
    y = sum(np.sin(k * phase) / (1 + ((k * hz - centre) / (0.3 * centre)) ** 2) for k in range(1, 40))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def test_a_held_note_that_changes_all_through_loops_at_its_end_not_half_way():
    """No join hides a loop in such a note, so the loop goes in the last third of the region: a note held as
    long as it was rendered plays all of its change (an early loop froze a vowel half-way and read 3.5 dB off
    the source's formants an octave down, against 1.0 played whole)."""
    x = sweeping_glide()
    start, end = find_sustain_loop(x, SR, 130.0)
    a, b = int(0.3 * len(x)), int(0.9 * len(x))
    assert end >= b - (b - a) // 3 - 1, (start, end)
    assert end - start >= int(0.1 * SR)
    y = crossfade_loop(x, start, end, crossfade=882)
    assert loop_click_db(y, start, end) < 0.0
