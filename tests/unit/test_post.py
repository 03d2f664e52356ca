"""Post-processing of takes: DC removal, onset, trim, fades and the gain policies."""
from __future__ import annotations

import numpy as np
import pytest

from dawexport.audio.post import fade, find_onset, normalise_gains, remove_dc, trim

SR = 44100


def _note(seconds=0.5, hz=440.0, decay_s=0.1, phase=0.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.8 * np.sin(2 * np.pi * hz * t + phase) * np.exp(-t / decay_s)).astype(np.float32)


def test_remove_dc_keeps_the_tone():
    t = np.arange(SR) / SR
    tone = 0.5 * np.sin(2 * np.pi * 220 * t)
    y = remove_dc(tone + 0.2, SR)
    assert y.dtype == np.float32 and len(y) == SR
    assert abs(np.mean(y)) < 1e-3
    np.testing.assert_allclose(y[1000:-1000], tone[1000:-1000], atol=5e-3)
    short = remove_dc(np.full(100, 0.3, np.float32) + np.arange(100) % 2, SR)
    assert abs(np.mean(short)) < 1e-6


@pytest.mark.parametrize("phase", [0.0, 1.0, 2.5])
def test_onset_is_found_within_a_couple_of_ms(phase):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(4410, np.float32), _note(phase=phase)])
    x += 1e-5 * rng.standard_normal(len(x)).astype(np.float32)
    onset = find_onset(x, SR)
    assert 4410 - 0.002 * SR <= onset <= 4410 + 5
    assert find_onset(np.zeros(100), SR) == 0


def test_trim_cuts_lead_in_and_silent_tail():
    note = _note(seconds=1.0, decay_s=0.05)
    x = np.concatenate([np.zeros(4410, np.float32), note, np.zeros(SR, np.float32)])
    y, removed = trim(x, SR)
    assert 4410 - int(0.005 * SR) <= removed <= 4410
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[:100], x[removed:removed + 100])
    # the tail goes when the 50 ms decay is 70 dB down (~0.4 s in), far before the end of the padding
    assert 0.3 * SR < removed + len(y) - 4410 < 0.5 * SR
    silent = np.zeros(1000, np.float32)
    y, removed = trim(silent, SR)
    assert removed == 0 and len(y) == 1000


def test_fade_shapes():
    y = fade(np.ones(SR, np.float32), SR)
    assert y[0] == 0.0 and y[-1] == 0.0 and y.dtype == np.float32
    assert np.all(y[88:-441] == 1.0)
    assert np.all(np.diff(y[:89]) >= 0) and np.all(np.diff(y[-441:]) <= 0)
    short = fade(np.ones(100, np.float32), SR)
    assert short[0] == 0.0 and short[-1] == 0.0 and short.max() <= 1.0


def test_even_policy_levels_keys_and_orders_layers():
    # 3 keys x 3 layers, loudness all over the place
    layer = np.tile(np.arange(3), 3)
    loud = np.array([-30.0, -20.0, -12.0, -25.0, -26.0, -8.0, -40.0, -18.0, -15.0])
    peak = 10 ** ((loud + 8.0) / 20)                       # crest factor 8 dB
    g = normalise_gains(loud, layer, 3, peak=peak)
    after = loud + 20 * np.log10(g)
    top = after[layer == 2]
    np.testing.assert_allclose(top, top[0], atol=1e-9)       # loudest layer equally loud on every key
    for key in range(3):
        assert np.all(np.diff(after[key * 3:key * 3 + 3]) == pytest.approx(6.0))
    assert np.max(peak * g) <= 10 ** (-1 / 20) + 1e-12        # nothing above the ceiling
    np.testing.assert_allclose(after, [-26, -20, -14] * 3)   # no trim needed: target reached


def test_even_policy_trims_all_takes_together_when_one_would_clip():
    layer = np.array([0, 1, 0, 1])
    loud = np.full(4, -20.0)
    peak = np.array([0.1, 0.1, 0.1, 0.9])                  # one spiky take
    g = normalise_gains(loud, layer, 2, peak=peak, target_db=-6.0)
    after = loud + 20 * np.log10(g)
    assert np.max(peak * g) == pytest.approx(10 ** (-1 / 20))
    assert after[1] == pytest.approx(after[3]) and after[1] - after[0] == pytest.approx(6.0)


def test_peak_and_none_policies():
    layer = np.array([0, 1, 2])
    peak = np.array([0.2, 0.5, 2.0])
    g = normalise_gains(np.zeros(3), layer, 3, policy="peak", peak=peak)
    np.testing.assert_allclose(20 * np.log10(peak * g), [-13.0, -7.0, -1.0])
    np.testing.assert_array_equal(normalise_gains(np.zeros(3), layer, 3, policy="none"), 1.0)
    g = normalise_gains(np.zeros(3), layer, 3, policy="none", peak=peak)
    np.testing.assert_allclose(g, 10 ** (-1 / 20) / 2.0)
    with pytest.raises(ValueError):
        normalise_gains(np.zeros(3), layer, 3, policy="peak")
    with pytest.raises(ValueError):
        normalise_gains(np.zeros(3), layer, 3, policy="loud")
    with pytest.raises(ValueError):
        normalise_gains(np.zeros(3), np.array([0, 1, 3]), 3)
