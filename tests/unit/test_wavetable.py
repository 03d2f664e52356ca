"""Wavetables: single-cycle extraction, phase alignment, normalisation, and the Serum WAV / Surge .wt files.

Every table is read back from disk and checked for what a wavetable player needs: 2048-sample frames, one
period per frame (fundamental in FFT bin 1), no jump at the wrap, nothing above the source's Nyquist, no DC,
neighbouring frames in phase (a morph does not swirl), one gain for the whole table, and the exact bytes of
the ``clm `` chunk.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support.data import wavetable_facts as wt_facts

from dawexport.audio import riff
from dawexport.audio.io import write_wav
from dawexport.errors import ExportError
from dawexport.export.wavetables import (read_serum_wav, read_surge_wt, serum_clm_text, write_serum_wav,
                                              write_surge_wt)
from dawexport.audio.cycles import (align_phase, extract_cycle, measure_period, normalise_table,
                                        note_frame_positions, table_from_note, table_from_takes,
                                        wrap_discontinuity)

SR = 44100
SIZE = 2048


# --------------------------------------------------------------------------- synthetic sounds

def harmonic_tone(f0: float, seconds: float, sr: int, amps, phases, *, start_phase: float = 0.0):
    """sum_h amps[h-1] cos(2 pi h f0 t + phases[h-1] + h start_phase)."""
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    for h, (a, p) in enumerate(zip(amps, phases), start=1):
        x += a * np.cos(2 * np.pi * h * f0 * t + p + h * start_phase)
    return x


def brightness(t):
    """Harmonic h of the evolving note has amplitude brightness(t)**(h-1) (over 1.3 for h > 1)."""
    return 0.15 + 0.6 * np.clip(t / 0.8, 0.0, 1.0)


def evolving_note(seconds=1.2, f0=220.0 * 2 ** (13 / 1200), vibrato_cents=10.0, release=0.2, seed=0):
    """A note whose harmonics grow over 0.8 s, with vibrato, a 30 ms attack, a release and a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    inst = f0 * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(inst) / SR
    ph = rng.uniform(0, 2 * np.pi, 24)
    b = brightness(t)
    x = np.zeros(n)
    for h in range(1, 25):
        x += b ** (h - 1) * np.cos(h * phase + ph[h - 1]) / (1.0 if h == 1 else 1.3)
    env = np.minimum(1.0, t / 0.03) * np.clip((seconds - t) / release, 0.0, 1.0)
    return 0.4 * env * x + 1e-4 * rng.standard_normal(n)


_H = 30
_rng = np.random.default_rng(5)
CAT = (np.array([1.0] + [0.7 / h ** 0.5 * (1.5 if h in (3, 4, 5) else 1.0) for h in range(2, _H + 1)]),
       _rng.uniform(0, 2 * np.pi, _H))
FLUTE = (np.array([1.0, 0.25, 0.06] + [0.0] * (_H - 3)), _rng.uniform(0, 2 * np.pi, _H))


def blend_take(w: float, seed: int, f0=261.63 * 2 ** (-7 / 1200)):
    """A render at blend position w (0 = cat, 1 = flute): own length, own start phase, onset, breath noise."""
    r = np.random.default_rng(seed)
    seconds = r.uniform(0.35, 0.6)
    start = r.uniform(0, 2 * np.pi)
    x = (1 - w) * harmonic_tone(f0, seconds, SR, *CAT, start_phase=start) \
        + w * harmonic_tone(f0, seconds, SR, *FLUTE, start_phase=start)
    t = np.arange(len(x)) / SR
    return 0.3 * np.minimum(1.0, t / 0.02) * x + w * 0.003 * r.standard_normal(len(x))


def spectrum(table):
    return np.abs(np.fft.rfft(np.atleast_2d(table), axis=1))


def neighbour_correlation(table):
    return np.array([np.corrcoef(table[i], table[i + 1])[0, 1] for i in range(len(table) - 1)])


def assert_playable(table, frames, *, harmonic_limit):
    """What every table must satisfy: shape, one period per frame, continuity, band, DC, phase, level."""
    assert table.shape == (frames, SIZE)
    spec = spectrum(table)
    assert np.all(np.argmax(spec[:, 1:], axis=1) == 0), "fundamental not in bin 1"
    assert max(wrap_discontinuity(f) for f in table) < 1.5
    energy = spec ** 2
    assert np.max(energy[:, harmonic_limit:].sum(axis=1) / energy.sum(axis=1)) < 1e-4
    assert np.max(np.abs(table.mean(axis=1))) < 1e-6
    assert abs(float(np.max(np.abs(table))) - 0.98) < 1e-6


# --------------------------------------------------------------------------- extraction

def test_extract_cycle_takes_exactly_one_period_band_limited():
    f0 = 261.63 * 2 ** (-7 / 1200)                       # period 169.1... samples: not a whole number
    rng = np.random.default_rng(2)
    amps, phases = 1.0 / np.arange(1, 25), rng.uniform(0, 2 * np.pi, 24)
    x = harmonic_tone(f0, 0.5, SR, amps, phases)
    assert abs(measure_period(x, SR, at=SR // 4) - SR / f0) < 1e-6
    frame = extract_cycle(x, SR)                           # pitch estimated, steady window found
    k = np.arange(SIZE) / SIZE
    exact = sum(a * np.cos(2 * np.pi * h * k + p) for h, (a, p) in enumerate(zip(amps, phases), start=1))
    got, want = align_phase(np.stack([frame, exact]), mode="fundamental")
    assert np.max(np.abs(got - want)) < 1e-5 * np.max(np.abs(want))
    assert abs(frame.mean()) < 1e-12
    assert wrap_discontinuity(frame) < 1.5


def test_extract_cycle_at_a_given_sample_and_several_periods():
    x = harmonic_tone(330.0, 0.4, SR, [1.0, 0.5, 0.3], [0.0, 1.0, 2.0])
    spec = spectrum(extract_cycle(x, SR, 330.0, at=SR // 5, periods=2))[0]
    assert np.argmax(spec) == 2                            # two periods: the fundamental sits in bin 2
    assert spec[[1, 3, 5, 7]].max() < 1e-6 * spec[2]
    assert spec[4] / spec[2] == pytest.approx(0.5, rel=1e-4)


def test_band_limit_of_a_high_note_rendered_at_16k():
    sr, f0 = 16000, 1234.5                                 # harmonics 1..6 lie below 8 kHz, 7 would not
    amps = 1.0 / np.arange(1, 7)
    x = harmonic_tone(f0, 0.3, sr, amps, np.linspace(0, 3, 6))
    spec = spectrum(extract_cycle(x, sr))[0]
    assert np.argmax(spec) == 1
    top = int(np.floor((sr / 2) / f0))                     # 6: the last harmonic below the source Nyquist
    assert top == 6
    assert np.sum(spec[top + 1:] ** 2) < 1e-20 * np.sum(spec ** 2)
    assert np.allclose(spec[1:top + 1] / spec[1], amps / amps[0], rtol=1e-2)


def test_band_limit_of_a_low_note_longer_than_a_frame():
    sr, f0 = 48000, 20.0                                   # 2400 samples per period > 2048
    period = np.zeros(2400 // 2 + 1, dtype=complex)
    period[1:1150] = (1.0 / np.arange(1, 1150)) * np.exp(1j * np.arange(1, 1150))
    x = np.tile(np.fft.irfft(period, n=2400), 8)
    spec = spectrum(extract_cycle(x, sr, f0))[0]
    assert spec[1024] < 1e-12 * spec[1]                    # nothing at or above the frame's Nyquist ...
    ratio = spec[990:1020] / spec[1]                       # ... and no harmonic above it folded back down
    assert np.allclose(ratio, 1.0 / np.arange(990, 1020), rtol=1e-2)


def test_unpitched_render_is_refused():
    noise = np.random.default_rng(0).standard_normal(SR // 2)
    with pytest.raises(ExportError, match="pitch"):
        extract_cycle(noise, SR)


def test_too_short_render_is_refused():
    with pytest.raises(ExportError, match="too short"):
        extract_cycle(harmonic_tone(100.0, 0.01, SR, [1.0], [0.0]), SR, 100.0)


# --------------------------------------------------------------------------- phase, level, continuity

def test_align_phase_undoes_circular_shifts():
    rng = np.random.default_rng(3)
    bins = np.zeros(SIZE // 2 + 1, dtype=complex)
    bins[1:30] = rng.standard_normal(29) + 1j * rng.standard_normal(29)
    bins[1] *= 5
    base = np.fft.irfft(bins, n=SIZE)
    shifted = np.stack([np.fft.irfft(bins * np.exp(2j * np.pi * np.arange(len(bins)) * s / SIZE), n=SIZE)
                        for s in (0.0, 300.25, 1234.6, 17.5)])
    aligned = align_phase(shifted)
    assert np.max(np.abs(aligned - aligned[0])) < 1e-9
    assert np.angle(np.fft.rfft(aligned[0])[1]) == pytest.approx(-np.pi / 2)   # starts on a rising zero
    each = align_phase(shifted, mode="fundamental")
    assert np.max(np.abs(each - each[0])) < 1e-9


def test_normalise_table_uses_one_gain():
    table = np.stack([np.sin(2 * np.pi * np.arange(SIZE) / SIZE) * a for a in (0.1, 0.5, 0.25)])
    out = normalise_table(table)
    assert float(np.max(np.abs(out))) == pytest.approx(0.98)
    assert np.allclose(np.max(np.abs(out), axis=1), [0.196, 0.98, 0.49])
    with pytest.raises(ExportError, match="silent"):
        normalise_table(np.zeros((2, SIZE)))


def test_wrap_discontinuity_tells_a_jump_from_a_smooth_join():
    k = np.arange(SIZE) / SIZE
    assert wrap_discontinuity(np.sin(2 * np.pi * k)) < 1.01
    assert wrap_discontinuity(np.cos(2 * np.pi * k)) < 1.01              # wrap on a flat part
    assert wrap_discontinuity(np.sin(2 * np.pi * 1.1 * k)) > 50           # 1.1 cycles: a jump


# --------------------------------------------------------------------------- tables

def test_table_along_one_note_follows_its_evolution():
    x = evolving_note()
    frames = 16
    positions = note_frame_positions(x, SR, frames)
    assert positions[0] / SR < 0.03                                       # starts in the attack
    assert 0.95 < positions[-1] / SR < 1.1                                # ends before the release is over
    table = table_from_note(x, SR, frames=frames)
    assert_playable(table, frames, harmonic_limit=40)
    assert neighbour_correlation(table).min() > 0.99
    spec = spectrum(table)
    truth = brightness(positions / SR) / 1.3                              # |h2| / |h1| in the source
    assert np.allclose(spec[:, 2] / spec[:, 1], truth, rtol=0.02)
    assert spec[-1, 2] / spec[-1, 1] > 3 * spec[0, 2] / spec[0, 1]        # the timbre really evolves


def test_table_along_a_blend_path_from_takes():
    weights = np.linspace(0.0, 1.0, 8)
    takes = [blend_take(w, seed) for seed, w in enumerate(weights)]
    table = table_from_takes(takes, SR)
    assert_playable(table, 8, harmonic_limit=60)
    raw = np.stack([extract_cycle(t, SR) for t in takes])                # each starts where its take was
    assert neighbour_correlation(raw).min() < 0.5                         # unaligned: the morph swirls
    assert neighbour_correlation(table).min() > 0.95                      # aligned: it does not
    h3 = spectrum(table)[:, 3] / spectrum(table)[:, 1]
    assert np.all(np.diff(h3) < 0)                                        # cat's 3rd harmonic fades out
    assert h3[0] == pytest.approx(CAT[0][2], rel=0.02)
    assert h3[-1] == pytest.approx(FLUTE[0][2], rel=0.1)


def test_table_from_takes_accepts_channels_and_pitches():
    take = blend_take(0.0, 1)
    stereo = np.stack([take, take])
    table = table_from_takes([stereo, take], SR, f0_hz=[256.0, 262.0])   # pitches refined within 6 %
    assert table.shape == (2, SIZE)
    assert np.max(np.abs(table[0] - table[1])) < 1e-6
    with pytest.raises(ExportError, match="256"):
        table_from_takes([take] * 257, SR, f0_hz=261.6)


# --------------------------------------------------------------------------- files

def chunk_order(path) -> list[tuple[str, int]]:
    """(id, payload size) of every top-level chunk, in file order, walking pad bytes as RIFF requires."""
    raw = Path(path).read_bytes()
    out, pos = [], 12
    while pos + 8 <= len(raw):
        size = struct.unpack_from("<I", raw, pos + 4)[0]
        out.append((raw[pos:pos + 4].decode("latin-1"), size))
        pos += 8 + size + size % 2
    assert pos == len(raw)
    return out


def test_serum_wav_round_trip_and_clm_bytes(tmp_path):
    table = table_from_takes([blend_take(w, i) for i, w in enumerate((0.0, 0.5, 1.0))], SR)
    path = tmp_path / "cat_flute_blend.wav"
    write_serum_wav(path, table)
    chunks = riff.read_chunks(path)
    clm = chunks["clm "]
    # as Serum writes it (tests/support/data/wavetable_facts.py): 48 bytes right after fmt, "<!>2048 " + 8 flag digits
    # + " wavetable (...)" of Serum's length; first flag 1 (linear crossfade), not a factory table
    order = chunk_order(path)
    assert order[0][0] == wt_facts.CLM_FOLLOWS and order[1] == ("clm ", wt_facts.CLM_SIZE)
    assert len(clm) == wt_facts.CLM_SIZE == len(wt_facts.CLM_PREFIX) + 8 + len(wt_facts.SERUM_VENDOR)
    text = clm.decode("ascii")
    assert text.startswith(wt_facts.CLM_PREFIX)
    flags = text[len(wt_facts.CLM_PREFIX):len(wt_facts.CLM_PREFIX) + wt_facts.CLM_FLAG_DIGITS]
    assert flags == "10000000" and flags[wt_facts.CLM_FACTORY_DIGIT] == "0"
    assert text[len(wt_facts.CLM_PREFIX) + 8:].startswith(" wavetable (") and text.endswith(")")
    fmt_tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", chunks["fmt "])
    assert (fmt_tag, channels, bits) == (wt_facts.FORMAT_TAG_FLOAT, wt_facts.CHANNELS, wt_facts.BITS)
    assert rate == 44100
    assert len(chunks["data"]) == 3 * SIZE * 4
    raw = path.read_bytes()
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    back, text = read_serum_wav(path)
    assert text == "<!>2048 10000000 wavetable (made with dawexport)"
    assert back.dtype == np.float32 and back.shape == (3, SIZE)
    assert np.array_equal(back, table.astype(np.float32))
    assert_playable(back.astype(np.float64), 3, harmonic_limit=60)
    assert not list(tmp_path.glob("*.part"))
    # what Surge XT and Vital read ([S] [V]): "2048" after "<!>", and the interpolation digit
    assert text[3:7] == "2048" and text[8] in wt_facts.CLM_FLAG_INTERPOLATION
    assert sf.info(str(path)).frames == 3 * wt_facts.FRAME      # libsndfile walks past the new chunk

    write_serum_wav(path, table, interpolation=0)
    assert riff.read_chunks(path)["clm "] == b"<!>2048 00000000 wavetable (made with dawexport)"
    assert serum_clm_text(3) == "<!>2048 30000000 wavetable (made with dawexport)"


@pytest.mark.parametrize("table, kwargs, match", [
    (np.zeros((257, SIZE)), {}, "256"),
    (np.zeros((2, 1024)), {}, "2048"),
    (np.zeros((2, SIZE)), {"interpolation": 5}, "interpolation"),
    (np.full((2, SIZE), np.nan), {}, "NaN"),
])
def test_serum_wav_refuses_what_players_cannot_read(tmp_path, table, kwargs, match):
    path = tmp_path / "bad.wav"
    with pytest.raises(ExportError, match=match):
        write_serum_wav(path, table, **kwargs)
    assert not list(tmp_path.iterdir())


def test_surge_wt_header_and_data_round_trip(tmp_path):
    table = normalise_table(np.stack([np.sin(2 * np.pi * (h + 1) * np.arange(SIZE) / SIZE) for h in range(5)]))
    path = tmp_path / "t.wt"
    write_surge_wt(path, table)
    raw = path.read_bytes()
    assert raw[:12] == b"vawt" + struct.pack("<IHH", SIZE, 5, 0)
    assert len(raw) == 12 + 5 * SIZE * 4
    assert np.array_equal(read_surge_wt(path), table.astype(np.float32))
    with pytest.raises(ExportError, match="power of two"):
        write_surge_wt(tmp_path / "odd.wt", np.zeros((2, 1000)))


def test_sampler_wavs_carry_no_clm_chunk(tmp_path):
    tone = harmonic_tone(261.63, 0.5, SR, [1.0, 0.3], [0.0, 0.0]) * 0.5
    write_wav(tmp_path / "C4.wav", tone, SR, "24", unity_note=60, loop=(1000, 20000))
    write_wav(tmp_path / "plain.wav", tone, SR, "32f")
    for name in ("C4.wav", "plain.wav"):
        assert "clm " not in riff.read_chunks(tmp_path / name)
    write_serum_wav(tmp_path / "table.wav", np.zeros((2, SIZE)))
    assert "clm " in riff.read_chunks(tmp_path / "table.wav")
