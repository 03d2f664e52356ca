"""Pitch tracking, one-pitch-per-sound estimates and A-weighted loudness on synthetic sounds."""
from __future__ import annotations


import numpy as np
import pytest

from dawexport.audio.analysis import (F0Track, PitchEstimate, a_weighting_db, estimate_pitch, f0_track,
                                      hz_to_midi, integrated_loudness_db, loudness_db, midi_to_hz, rms_db)

SR = 44100


def _cents(a, b):
    return 1200.0 * np.log2(np.asarray(a) / np.asarray(b))


def _from_freq(inst_hz, harmonics=(1.0, 0.5, 0.3)):
    phase = 2 * np.pi * np.cumsum(inst_hz) / SR
    return sum(a * np.sin((k + 1) * phase) for k, a in enumerate(harmonics)).astype(np.float32)


@pytest.mark.parametrize("hz", [40.0, 82.41, 261.63, 441.3, 1000.0, 2000.0])
def test_pure_tones_within_5_cents(hz):
    t = np.arange(SR) / SR
    x = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    tr = f0_track(x, SR)
    assert isinstance(tr, F0Track) and tr.hop == 256 and tr.sample_rate == SR
    assert tr.voiced.mean() > 0.9
    inner = tr.hz[10:-10]
    assert np.all(np.abs(_cents(inner, hz)) < 5)
    assert np.all(tr.confidence[10:-10] > 0.9)
    est = estimate_pitch(x, SR)
    assert abs(_cents(est.hz, hz)) < 5 and est.confidence > 0.9


@pytest.mark.parametrize("hz", [80.0, 220.0, 440.0])
def test_stronger_second_harmonic_gives_no_octave_error(hz):
    t = np.arange(SR) / SR
    x = _from_freq(np.full(len(t), hz), harmonics=(0.2, 1.0, 0.5, 0.3))
    tr = f0_track(x, SR)
    assert tr.voiced.mean() > 0.9
    assert np.nanmax(np.abs(_cents(tr.hz, hz))) < 50
    assert abs(_cents(estimate_pitch(x, SR).hz, hz)) < 5


def test_glide_of_three_semitones_is_followed():
    t = np.arange(int(1.5 * SR)) / SR
    inst = 300.0 * 2 ** (3 / 12 * np.clip((t - 0.25) / 1.0, 0, 1))
    tr = f0_track(_from_freq(inst), SR)
    truth = np.interp(tr.times, t, inst)
    assert tr.voiced[5:-5].all()
    assert np.max(np.abs(_cents(tr.hz[5:-5], truth[5:-5]))) < 10
    assert tr.hz[-10] / tr.hz[10] == pytest.approx(2 ** 0.25, rel=0.01)


def test_vibrato_and_flat_tone_give_the_centre_pitch():
    t = np.arange(int(1.5 * SR)) / SR
    centre = 440.0 * 2 ** (-17 / 1200)
    env = np.minimum(1, t / 0.05) * np.minimum(1, (t[-1] - t) / 0.1)
    vib = _from_freq(centre * 2 ** (30 / 1200 * np.sin(2 * np.pi * 5.5 * t))) * env
    flat = _from_freq(np.full(len(t), centre))
    for x in (vib, flat):
        est = estimate_pitch(x, SR)
        assert isinstance(est, PitchEstimate)
        assert est.note == 69
        assert est.cents == pytest.approx(-17, abs=3)
        assert est.voiced_fraction > 0.9


def test_scooped_attack_does_not_pull_the_pitch():
    t = np.arange(int(1.2 * SR)) / SR
    inst = 330.0 * 2 ** (-2 / 12 * np.clip(1 - t / 0.15, 0, 1))       # 2-semitone scoop into the note
    est = estimate_pitch(_from_freq(inst), SR)
    assert abs(_cents(est.hz, 330.0)) < 3


def test_tone_in_noise_is_voiced_and_in_tune():
    rng = np.random.default_rng(1)
    x = _from_freq(np.full(SR, 196.0))
    x = x + rng.standard_normal(SR).astype(np.float32) * np.std(x) * 10 ** (-10 / 20)   # 10 dB SNR
    tr = f0_track(x, SR)
    assert tr.voiced.mean() > 0.9
    assert abs(_cents(estimate_pitch(x, SR).hz, 196.0)) < 5


def test_white_noise_and_silence_are_unpitched():
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal(SR)).astype(np.float32)
    tr = f0_track(noise, SR)
    assert tr.voiced.mean() < 0.05
    assert np.all(np.isnan(tr.hz[~tr.voiced]))
    for x in (noise, np.zeros(SR, np.float32), np.zeros(0, np.float32), np.ones(10, np.float32)):
        est = estimate_pitch(x, SR)
        assert np.isnan(est.hz) and est.confidence == 0.0 and est.note == -1


def test_frame_must_hold_two_periods_of_fmin():
    with pytest.raises(ValueError, match="two periods"):
        f0_track(np.zeros(SR, np.float32), SR, fmin=40.0, frame=1024)


def test_midi_conversions():
    assert hz_to_midi(440.0) == pytest.approx(69.0)
    assert midi_to_hz(60) == pytest.approx(261.6256, abs=1e-4)
    m = np.array([21.0, 60.5, 108.0])
    np.testing.assert_allclose(hz_to_midi(midi_to_hz(m)), m)
    assert np.isnan(hz_to_midi(np.array([0.0, -1.0, np.nan]))).all()
    est = PitchEstimate(hz=436.0, midi=68.84, confidence=1.0, voiced_fraction=1.0)
    assert est.note == 69 and est.cents == pytest.approx(-16.0)


def test_a_weighting_reference_points():
    assert a_weighting_db(1000.0) == pytest.approx(0.0, abs=0.01)
    assert a_weighting_db(100.0) == pytest.approx(-19.1, abs=0.05)
    np.testing.assert_allclose(a_weighting_db(np.array([10000.0, 50.0])), [-2.5, -30.2], atol=0.1)
    assert a_weighting_db(0.0) == -np.inf


def test_loudness_levels():
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    loud = loudness_db(x, SR)
    assert len(loud) == len(f0_track(x, SR).hz) == 1 + SR // 256
    assert loud[50] == pytest.approx(-3.01, abs=0.05)
    np.testing.assert_allclose(loudness_db(0.25 * x, SR)[10:-10], loud[10:-10] - 12.04, atol=0.01)
    low = loudness_db(np.sin(2 * np.pi * 100 * t), SR)
    assert loud[50] - low[50] == pytest.approx(19.1, abs=0.3)
    assert loudness_db(np.sin(2 * np.pi * 100 * t), SR, a_weighted=False)[50] == pytest.approx(-3.01, abs=0.05)
    assert loudness_db(np.zeros(1000), SR).min() == -120.0


def test_integrated_loudness_ignores_silence_and_rms():
    t = np.arange(SR) / SR
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    padded = np.concatenate([np.zeros(SR // 2, np.float32), x, np.zeros(SR, np.float32)])
    assert integrated_loudness_db(padded, SR) == pytest.approx(integrated_loudness_db(x, SR), abs=0.2)
    assert integrated_loudness_db(x, SR) == pytest.approx(-9.03, abs=0.1)
    assert integrated_loudness_db(2 * x, SR) - integrated_loudness_db(x, SR) == pytest.approx(6.02, abs=0.01)
    assert integrated_loudness_db(np.zeros(100), SR) == -120.0
    assert rms_db(np.full(100, 0.1)) == pytest.approx(-20.0)
    assert rms_db(np.zeros(10)) == -120.0
