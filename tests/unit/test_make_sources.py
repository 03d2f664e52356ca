"""Tests for instruments/make_sources.py (the synthetic example source sounds)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import soundfile as sf
from support import REPO

ROOT = REPO
SCRIPT = ROOT / "instruments" / "make_sources.py"
COMMITTED = ROOT / "instruments" / "sounds"

FLUTE_TARGET_HZ = 392.0 * 2.0 ** (-12.0 / 1200.0)


def _load_module():
    spec = importlib.util.spec_from_file_location("make_sources", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ms():
    return _load_module()


@pytest.fixture(scope="module")
def outdirs(ms, tmp_path_factory):
    """Run the script twice into two fresh directories."""
    a = tmp_path_factory.mktemp("run_a")
    b = tmp_path_factory.mktemp("run_b")
    assert ms.main(["--out", a]) == 0
    assert ms.main(["--out", str(b)]) == 0
    return a, b


@pytest.fixture(scope="module")
def cat(outdirs):
    data, sr = sf.read(outdirs[0] / "cat_meow.flac", dtype="float64", always_2d=True)
    return data, sr


@pytest.fixture(scope="module")
def flute(outdirs):
    data, sr = sf.read(outdirs[0] / "flute.wav", dtype="float64", always_2d=True)
    return data, sr


def _cents(f, ref):
    return 1200.0 * np.log2(f / ref)


def _fft_peak_hz(x, sr, fmin, fmax):
    x = (x - x.mean()) * np.hanning(len(x))
    nfft = 1 << int(np.ceil(np.log2(len(x) * 8)))
    mag = np.abs(np.fft.rfft(x, nfft))
    fr = np.fft.rfftfreq(nfft, 1.0 / sr)
    band = np.nonzero((fr >= fmin) & (fr <= fmax))[0]
    i = band[np.argmax(mag[band])]
    a, b, c = np.log(mag[i - 1:i + 2])
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * sr / nfft


def _autocorr_hz(x, sr, fmin, fmax):
    x = x - x.mean()
    n = len(x)
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * n)) ** 2)[:n]
    ac /= np.arange(n, 0, -1)  # unbiased
    lo, hi = int(sr / fmax), int(np.ceil(sr / fmin))
    lag = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[lag - 1:lag + 2]
    return sr / (lag + 0.5 * (a - c) / (a - 2 * b + c))


# --------------------------------------------------------------------------
# files and formats
# --------------------------------------------------------------------------

def test_main_writes_files(outdirs):
    out = outdirs[0]
    for name in ("cat_meow.flac", "flute.wav", "README.md"):
        assert (out / name).is_file(), name
    for name in ("cat_meow.flac", "flute.wav"):
        assert (out / name).stat().st_size < 600 * 1024, name
    readme = (out / "README.md").read_text().strip().splitlines()
    assert 3 <= len(readme) <= 9


def test_formats(outdirs):
    ci = sf.info(str(outdirs[0] / "cat_meow.flac"))
    assert (ci.format, ci.subtype, ci.channels, ci.samplerate) == ("FLAC", "PCM_24", 2, 44100)
    assert ci.duration == pytest.approx(1.6, abs=0.05)
    fi = sf.info(str(outdirs[0] / "flute.wav"))
    assert (fi.format, fi.subtype, fi.channels, fi.samplerate) == ("WAV", "PCM_24", 1, 48000)
    assert fi.duration == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("which", ["cat", "flute"])
def test_levels(which, request):
    data, _ = request.getfixturevalue(which)
    assert np.all(np.isfinite(data))
    peak_db = 20 * np.log10(np.max(np.abs(data)))
    assert peak_db < 0.0
    assert peak_db == pytest.approx(-3.0, abs=0.5)
    for ch in data.T:  # every channel carries signal
        assert 20 * np.log10(np.sqrt(np.mean(ch ** 2))) > -40.0


def test_deterministic(outdirs):
    a, b = outdirs
    assert (a / "flute.wav").read_bytes() == (b / "flute.wav").read_bytes()
    ca, _ = sf.read(a / "cat_meow.flac", dtype="int32")
    cb, _ = sf.read(b / "cat_meow.flac", dtype="int32")
    assert np.array_equal(ca, cb)
    assert (a / "README.md").read_text() == (b / "README.md").read_text()


def test_functions_return_float32_arrays(ms, cat):
    c = ms.make_cat()
    f = ms.make_flute()
    assert c.dtype == np.float32 and c.shape == (2, round(1.6 * 44100))
    assert f.dtype == np.float32 and f.shape == (1, round(2.0 * 48000))
    # the file is the 24-bit rendering of make_cat()'s default output
    assert np.max(np.abs(cat[0].T - c)) < 2.0 ** -22


# --------------------------------------------------------------------------
# content
# --------------------------------------------------------------------------

def test_flute_pitch(flute):
    data, sr = flute
    steady = data[int(0.9 * sr):int(1.8 * sr), 0]
    f_fft = _fft_peak_hz(steady, sr, 300.0, 500.0)
    f_ac = _autocorr_hz(steady, sr, 300.0, 500.0)
    assert abs(_cents(f_fft, FLUTE_TARGET_HZ)) < 30.0, f_fft
    assert abs(_cents(f_ac, FLUTE_TARGET_HZ)) < 30.0, f_ac
    # deliberately out of tune: flatter than G4
    assert _cents(f_fft, 392.0) < -5.0


def test_flute_spectrum_odd_dominant(flute):
    data, sr = flute
    steady = data[int(0.9 * sr):int(1.8 * sr), 0] * np.hanning(int(0.9 * sr))
    mag = np.abs(np.fft.rfft(steady))
    fr = np.fft.rfftfreq(len(steady), 1.0 / sr)

    def level(k):
        band = np.abs(fr - k * FLUTE_TARGET_HZ) < 20.0
        return 20 * np.log10(mag[band].max() / mag.max())

    assert level(1) == pytest.approx(0.0, abs=0.1)
    assert level(3) > level(4) and level(5) > level(6)   # odd harmonics stronger
    assert level(9) < level(3) - 20.0                    # steep roll-off


def test_flute_sustain_is_steady(flute):
    data, sr = flute
    x = data[:, 0]
    # 200 ms windows (one vibrato cycle) across the loopable region
    rms = [np.sqrt(np.mean(x[int(t * sr):int((t + 0.2) * sr)] ** 2))
           for t in np.arange(0.8, 1.6, 0.2)]
    spread_db = 20 * np.log10(max(rms) / min(rms))
    assert spread_db < 1.0
    # soft attack and a release to silence
    assert np.max(np.abs(x[: int(0.02 * sr)])) < 0.05
    assert np.max(np.abs(x[-int(0.01 * sr):])) < 1e-3


def test_cat_stereo_image(cat):
    data, _ = cat
    r = np.corrcoef(data[:, 0], data[:, 1])[0, 1]
    assert 0.3 < r < 0.99, r
    # panned a little left
    rms = np.sqrt(np.mean(data ** 2, axis=0))
    assert rms[0] > rms[1]


def test_cat_high_frequency_content(cat):
    data, sr = cat
    mono = data.mean(axis=1)
    power = np.abs(np.fft.rfft(mono)) ** 2
    fr = np.fft.rfftfreq(len(mono), 1.0 / sr)
    rel_db = 10 * np.log10(power[fr > 8000.0].sum() / power.sum())
    assert rel_db > -60.0, rel_db


def test_cat_pitch_glide(ms, cat):
    data, sr = cat
    track = ms.f0_track(data.mean(axis=1), sr)
    assert len(track) > 20
    lo, hi, med = np.min(track), np.max(track), np.median(track)
    assert 420.0 < lo < 540.0 and 640.0 < hi < 760.0
    # peak of the glide comes before its end, and it ends lower than it starts
    assert np.argmax(track) not in (0, len(track) - 1)
    assert track[-1] < track[0]
    # median near D5 but not on it
    cents = _cents(med, 587.33)
    assert 5.0 < abs(cents) < 40.0, cents


def test_committed_files_match_script(outdirs):
    """The sounds checked into instruments/sounds are what the script makes."""
    for name in ("cat_meow.flac", "flute.wav"):
        committed = COMMITTED / name
        if not committed.exists():
            pytest.skip(f"{committed} not generated yet")
        ref, sr_ref = sf.read(committed, dtype="float64")
        new, sr_new = sf.read(outdirs[0] / name, dtype="float64")
        assert sr_ref == sr_new and ref.shape == new.shape
        # allow for last-bit float differences across platforms
        assert np.max(np.abs(ref - new)) < 1e-4, name
