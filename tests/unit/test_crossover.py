"""The two-way crossover that puts the wavenet engine's full-band guide above its 16 kHz band: complementary
(a signal fed to both sides comes out flat, with no notch or comb where the bands meet) and selective."""
from __future__ import annotations

import numpy as np
import pytest

from dawexport.audio.crossover import crossover, crossover_filter
from dawexport.audio.resample import resample

PASS, STOP = 6400.0, 7200.0          # the wavenet engine's crossover for a 16 kHz WaveNet


def spectrum_db(x: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.abs(np.fft.rfft(np.asarray(x, np.float64))) + 1e-30)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_crossover_sum_of_a_flat_pair_is_flat(rate):
    """An impulse on both sides, the low side through the engine's own path (down to 16 kHz and back up, what a
    WaveNet that played its guide exactly would give): the sum's spectrum is flat within ±1 dB from 40 Hz to
    0.9 of Nyquist (in fact within the resampler's 0.1 dB ripple)."""
    n = 1 << 15
    impulse = np.zeros(n, np.float32)
    impulse[n // 2] = 1.0
    low = resample(resample(impulse, rate, 16000), 16000, rate)[:n]
    total = crossover(low, impulse, rate, PASS, STOP)
    hz = np.fft.rfftfreq(n, 1 / rate)
    band = (hz >= 40) & (hz <= 0.9 * rate / 2)
    gain = spectrum_db(total)[band]
    assert np.max(np.abs(gain)) < 1.0
    assert np.max(np.abs(gain)) < 0.2
    # the same pair summed without the crossover (low band plus the guide's whole band) is not flat: the test
    # can tell a comb from a flat sum
    naive = spectrum_db(low + impulse)[band]
    assert np.max(np.abs(naive)) > 5.0


@pytest.mark.parametrize("rate", [44100, 48000])
def test_each_side_keeps_only_its_band(rate):
    n = 1 << 14
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    lows = crossover(x, np.zeros_like(x), rate, PASS, STOP)
    highs = crossover(np.zeros_like(x), x, rate, PASS, STOP)
    hz = np.fft.rfftfreq(n, 1 / rate)
    window = np.hanning(n)                     # the signals' cut ends would leak over the whole spectrum
    ref, lo_spec, hi_spec = (spectrum_db(s * window) for s in (x, lows, highs))

    def bands(db, lo, hi):                     # mean power over a band, not single bins' noise
        keep = (hz >= lo) & (hz < hi)
        return 10 * np.log10(np.mean(10 ** (db[keep] / 10)))

    assert bands(lo_spec, 100, PASS) - bands(ref, 100, PASS) > -0.2
    assert bands(lo_spec, STOP + 100, rate / 2) - bands(ref, STOP + 100, rate / 2) < -60
    assert bands(hi_spec, STOP + 100, rate / 2) - bands(ref, STOP + 100, rate / 2) > -0.2
    assert bands(hi_spec, 40, PASS - 100) - bands(ref, 40, PASS - 100) < -60
    assert np.allclose(lows + highs, x, atol=1e-5)                 # complementary, sample for sample


def test_crossover_refuses_mismatched_signals_and_bad_edges():
    with pytest.raises(ValueError):
        crossover(np.zeros(10), np.zeros(11), 44100, PASS, STOP)
    with pytest.raises(ValueError):
        crossover_filter(44100, 7200.0, 6400.0)
    assert crossover(np.zeros(0), np.zeros(0), 44100, PASS, STOP).shape == (0,)
