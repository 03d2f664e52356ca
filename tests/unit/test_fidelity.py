"""The three sound measures of DESIGN.md on signals whose answer is known."""
import numpy as np
import pytest

from dawexport.audio.analysis import estimate_pitch
from dawexport.audio.fidelity import (best_formant_note, evolution_distance, formant_distance, formant_keeping_shift,
                                     harmonic_split,
                                     onset_sample, timbre_distance)

SR = 32000


def harmonic_note(f0, seconds=1.0, envelope=None, sr=SR, formant_hz=None):
    """Sum of harmonics at f0 with 1/k amplitudes, optionally shaped by one resonance at formant_hz."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = np.broadcast_to(np.asarray(f0, float), t.shape)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = np.zeros_like(t)
    for k in range(1, 80):
        freq = k * f0
        amp = np.where(freq < sr / 2 - 200, 1.0 / k, 0.0)
        if formant_hz is not None:
            amp = amp * (1.0 + 8.0 * np.exp(-0.5 * ((freq - formant_hz) / 250.0) ** 2))
        y += amp * np.sin(k * phase)
    if envelope is not None:
        y *= envelope(t)
    return y / np.abs(y).max()


def test_timbre_ignores_level_and_sees_brightness():
    a = harmonic_note(220)
    assert timbre_distance(a, SR, 0.1 * a, SR) < 1e-6
    dull = harmonic_note(220, formant_hz=None) - 0.0
    bright = harmonic_note(220, formant_hz=3000)
    assert timbre_distance(dull, SR, bright, SR) > 2.0


def test_timbre_compares_across_sample_rates():
    assert timbre_distance(harmonic_note(220), SR, harmonic_note(220, sr=44100), 44100) < 0.5


def test_evolution_sees_a_static_copy_of_a_moving_sound():
    moving = harmonic_note(220, seconds=1.0, formant_hz=np.linspace(600, 3000, SR))
    backwards = harmonic_note(220, seconds=1.0, formant_hz=np.linspace(3000, 600, SR))
    assert evolution_distance(moving, SR, moving, SR) < 1e-6
    # the same average colour, played the other way round: timbre cannot tell, evolution can
    assert timbre_distance(moving, SR, backwards, SR) < 0.5
    assert evolution_distance(moving, SR, backwards, SR) > 2.0


def test_evolution_aligns_onsets_and_removes_one_level():
    swell = harmonic_note(220, envelope=lambda t: np.minimum(1.0, t / 0.3) * np.exp(-2 * t))
    late_quiet = 0.2 * np.concatenate([np.zeros(4000), swell])
    assert evolution_distance(swell, SR, late_quiet, SR) < 0.3
    flat = harmonic_note(220)
    assert evolution_distance(swell, SR, flat, SR) > 3.0


def test_evolution_counts_a_short_note_as_silence_at_the_end():
    a = harmonic_note(220, seconds=1.0)
    assert evolution_distance(a, SR, a[: SR // 4], SR) > 10.0


def test_onset_finds_the_first_loud_block():
    x = np.concatenate([np.zeros(3200), 1e-6 * np.ones(1600), harmonic_note(220, 0.5)])
    assert abs(onset_sample(x, SR) - 4800) <= 160


def test_formants_in_place_score_low_and_moved_formants_high():
    source = harmonic_note(220, formant_hz=1500)
    kept = harmonic_note(440, formant_hz=1500)           # a model that keeps the mouth in place
    moved = harmonic_note(440, formant_hz=3000)          # tape speed: everything doubles
    assert formant_distance(source, 220.0, SR, kept, 440.0, SR) < 1.5
    assert formant_distance(source, 220.0, SR, moved, 440.0, SR) > 4.0


def test_formants_follow_a_gliding_f0_curve():
    glide = np.linspace(200, 300, SR)
    source = harmonic_note(glide, formant_hz=1500)
    f0_frames = glide[::1024]
    kept = harmonic_note(glide * 2, formant_hz=1500)
    assert formant_distance(source, f0_frames, SR, kept, 2 * f0_frames, SR) < 2.0


def test_formants_ignore_harmonics_more_than_60_db_down():
    """Two notes with the same formant whose top harmonics fall to -80 and -140 dB (inaudible either way)
    score the same envelope; unfloored, the difference between the two inaudible levels counts."""
    def steep(f0, bottom_db):
        t = np.arange(SR) / SR
        k = np.arange(1, int(7000 // f0) + 1)
        db = np.maximum(-8.0 * k, bottom_db)
        return sum(10 ** (d / 20) * np.sin(2 * np.pi * i * f0 * t) for i, d in zip(k, db))
    a, b = steep(220.0, -140.0), steep(220.0, -80.0)
    assert formant_distance(a, 220.0, SR, b, 220.0, SR) < 0.5
    assert formant_distance(a, 220.0, SR, b, 220.0, SR, floor_db=None) > 10.0


def test_formants_refuse_a_pitch_with_no_band_left():
    with pytest.raises(ValueError, match="no band"):
        formant_distance(harmonic_note(220), 6000.0, SR, harmonic_note(220), 220.0, SR)


@pytest.mark.parametrize("read", ["point", "band"])
@pytest.mark.parametrize("semitones", [-12, 12])
def test_a_formant_keeping_shift_moves_the_pitch_and_keeps_the_resonance(semitones, read):
    """The floor reference: the note an octave away with its resonance where it was, so it scores far below
    a tape-speed transposition (which moves the resonance an octave too)."""
    source = harmonic_note(300, formant_hz=1500)
    moved = formant_keeping_shift(source, SR, semitones, read=read)
    ratio = 2.0 ** (semitones / 12)
    assert abs(estimate_pitch(moved, SR).hz - 300 * ratio) < 2.0
    tape = harmonic_note(300 * ratio, formant_hz=1500 * ratio)
    kept = formant_distance(source, 300.0, SR, moved, 300 * ratio, SR)
    # read over an octave-up note's 600 Hz bands, the narrow resonance (250 Hz wide) is a little smeared
    limit = 1.5 if read == "point" or semitones < 0 else 2.0
    assert kept < limit and formant_distance(source, 300.0, SR, tape, 300 * ratio, SR) > 3 * kept


def odd_heavy_note(f0, seconds=1.0, sr=SR):
    """Harmonics at 1/k with the even ones under 2.5 kHz 12 dB down (a flute's low register pattern)."""
    t = np.arange(int(seconds * sr)) / sr
    return sum((0.25 if k % 2 == 0 and k * f0 < 2500 else 1.0) / k * np.sin(2 * np.pi * k * f0 * t)
               for k in range(1, int(7500 // f0)))


def test_a_band_read_shift_smooths_an_odd_even_pattern_an_octave_up():
    """An octave up every harmonic sits on a weak even one of the source: read at points, the moved note traces
    the weak line; read over its band, the mean of both, which is nearer the source's envelope on the measure."""
    source = odd_heavy_note(250.0)
    point = formant_keeping_shift(source, SR, 12.0)
    band = formant_keeping_shift(source, SR, 12.0, read="band")
    d_point = formant_distance(source, 250.0, SR, point, 500.0, SR)
    d_band = formant_distance(source, 250.0, SR, band, 500.0, SR)
    assert d_band < 0.8 * d_point, (d_band, d_point)
    with pytest.raises(ValueError, match="read"):
        formant_keeping_shift(source, SR, 12.0, read="nearest")


def test_the_best_formant_note_is_a_real_note_and_no_other_scores_lower():
    """The levels `best_formant_note` returns, played as a steady note, score its figure on the measure, and
    neither resynthesis of the source an octave up scores below it."""
    source = odd_heavy_note(250.0)
    best, levels = best_formant_note(source, 250.0, SR, 500.0)
    t = np.arange(SR) / SR
    note = sum(10 ** (db / 20) * np.sin(2 * np.pi * (k + 1) * 500.0 * t) for k, db in enumerate(levels)
               if (k + 1) * 500.0 < SR / 2)
    assert formant_distance(source, 250.0, SR, note, 500.0, SR) == pytest.approx(best, abs=0.15)
    for read in ("point", "band"):
        moved = formant_keeping_shift(source, SR, 12.0, read=read)
        assert formant_distance(source, 250.0, SR, moved, 500.0, SR) >= best - 0.05
    assert best > 0.5                                       # the odd/even pattern cannot be kept an octave up


def test_the_split_reads_harmonic_peaks_and_the_noise_floor_between_them():
    """Harmonics 1/k with white noise: the peaks are the harmonics' levels, the floor the noise's median
    power in a bin (10·log10(6·ln 2·σ²/n_fft)); a band with no harmonic reads NaN."""
    sr, sigma = 32000, 0.003
    t = np.arange(2 * sr) / sr
    harmonics = sum(np.sin(2 * np.pi * k * 250.0 * t) / k for k in range(1, 60) if k * 250 < sr / 2 - 500)
    x = harmonics + sigma * np.random.default_rng(1).standard_normal(len(t))
    bands = [(200, 300), (2450, 2550), (9950, 10050)]          # harmonics 1, 10 and 40
    peaks, floor = harmonic_split(x, sr, np.full(64, 250.0), bands)
    assert np.allclose(peaks, 20 * np.log10(1.0 / np.array([1, 10, 40])), atol=0.5)
    assert np.allclose(floor, 10 * np.log10(6 * np.log(2) * sigma ** 2 / 8192), atol=1.0)
    assert np.all(harmonic_split(harmonics, sr, 250.0, bands)[1] < floor - 20)   # no leak from the peaks
    assert np.isnan(harmonic_split(x, sr, 250.0, [(100, 200)])[0][0])
