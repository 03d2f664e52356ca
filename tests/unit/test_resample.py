"""The resampler's two promises, proved on the filter and end to end:
flat within 0.1 dB to 90 % of the lower Nyquist, and >= 80 dB down from the lower Nyquist on."""
import numpy as np
import pytest
from scipy import signal

from dawexport.audio.resample import design_filter, resample, resample_ratio

RATES = [(16000, 44100), (44100, 48000), (48000, 16000)]


def _response_db(sr_in, sr_out):
    """(frequency relative to the lower Nyquist, gain in dB relative to unity)."""
    up, down = resample_ratio(sr_in, sr_out)
    taps = design_filter(up, down)
    # FFT grid >= 32 points per tap-length: every sidelobe peak is sampled within ~0.01 dB.
    n = 1 << (int(np.ceil(np.log2(len(taps)))) + 5)
    w, h = signal.freqz(taps / up, worN=n)
    return w / np.pi * max(up, down), 20 * np.log10(np.maximum(np.abs(h), 1e-300))


def test_resample_ratio():
    assert resample_ratio(16000, 44100) == (441, 160)
    assert resample_ratio(44100, 48000) == (160, 147)
    assert resample_ratio(48000, 16000) == (1, 3)
    assert resample_ratio(44100, 44100) == (1, 1)


@pytest.mark.parametrize("sr_in,sr_out", RATES)
def test_filter_passband_ripple(sr_in, sr_out):
    f, db = _response_db(sr_in, sr_out)
    passband = db[f <= 0.9]
    assert passband.max() - passband.min() <= 0.1
    assert abs(passband.mean()) < 0.05  # unity gain, so levels survive resampling


@pytest.mark.parametrize("sr_in,sr_out", RATES)
def test_filter_stopband_attenuation(sr_in, sr_out):
    f, db = _response_db(sr_in, sr_out)
    assert db[f >= 1.0].max() <= -80.0


def test_filter_is_cached_odd_and_read_only():
    h = design_filter(441, 160)
    assert h is design_filter(441, 160)
    assert len(h) % 2 == 1
    np.testing.assert_allclose(h, h[::-1])  # linear phase
    assert not h.flags.writeable


def _sine(freq, sr, seconds, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def test_image_rejection_end_to_end():
    tone = 7000.0
    y = resample(_sine(tone, 16000, 2.0), 16000, 44100)
    # 1 s from the middle (away from the edge transients): 1 Hz bins, the tone on a bin.
    seg = y[22050:22050 + 44100].astype(np.float64)
    spec = np.abs(np.fft.rfft(seg * signal.windows.blackmanharris(len(seg))))
    freqs = np.fft.rfftfreq(len(seg), 1 / 44100)
    peak = spec[int(tone)]
    assert peak == spec.max()
    others = spec[np.abs(freqs - tone) > 10]  # outside the window's main lobe (+-4 bins)
    worst_db = 20 * np.log10(others.max() / peak)
    assert worst_db <= -80.0, worst_db
    # The first images sit at 16000 - 7000 and (aliased) 44100 - 23000 Hz.
    for image in (9000, 21100):
        assert 20 * np.log10(spec[image] / peak) <= -80.0


def _amplitude(x, freq, sr):
    """Least-squares amplitude of a sine of known frequency."""
    t = np.arange(len(x)) / sr
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x.astype(np.float64), rcond=None)
    return float(np.hypot(*coef))


@pytest.mark.parametrize("sr_in,sr_out", [(16000, 44100), (48000, 16000)])
def test_passband_sweep_end_to_end(sr_in, sr_out):
    lower_nyquist = min(sr_in, sr_out) / 2
    gains = []
    for freq in np.linspace(50, 0.9 * lower_nyquist, 7):
        y = resample(_sine(freq, sr_in, 0.5), sr_in, sr_out)
        mid = y[sr_out // 8: sr_out * 3 // 8]
        t0 = sr_out // 8 / sr_out
        shifted = _amplitude(mid, freq, sr_out)
        gains.append(20 * np.log10(shifted / 0.5))
        # Zero phase: the resampled sine lines up with the ideal one at the output rate.
        ideal = 0.5 * np.sin(2 * np.pi * freq * (t0 + np.arange(len(mid)) / sr_out))
        assert np.max(np.abs(mid - ideal)) < 1e-3
    assert max(gains) - min(gains) <= 0.1 and max(abs(g) for g in gains) <= 0.1, gains


def test_onset_does_not_move():
    x = np.zeros(16000, np.float32)
    x[8000] = 1.0
    y = resample(x, 16000, 44100)
    assert abs(int(np.argmax(y)) - 8000 * 44100 / 16000) <= 1


def test_shapes_dtype_and_identity():
    stereo = np.random.default_rng(1).standard_normal((2, 1600)).astype(np.float32)
    y = resample(stereo, 16000, 44100)
    assert y.shape == (2, 4410) and y.dtype == np.float32
    np.testing.assert_allclose(y[0], resample(stereo[0], 16000, 44100), atol=1e-6)
    same = resample(stereo, 44100, 44100)
    np.testing.assert_array_equal(same, stereo)
    assert same is not stereo
