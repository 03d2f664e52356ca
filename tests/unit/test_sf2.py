"""SoundFont 2 exporter, checked by two real readers: sf2utils parses the bank, and the fluidsynth command
line (Debian package ``fluidsynth``) renders a mido-written MIDI file whose pitch, loop and level we measure.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support.data import sf2_facts
from support.helpers import make_test_instrument, tone
from support.players import FLUIDSYNTH, render_fluidsynth, segment
from sf2utils.sf2parse import Sf2File

from dawexport.audio.io import write_wav
from dawexport.errors import ExportError
from dawexport.export import exporter, sf2
from dawexport.instrument import Sample

needs_fluidsynth = pytest.mark.skipif(FLUIDSYNTH is None, reason="fluidsynth is not installed "
                                      "(apt-get install fluidsynth)")
SR = 44100


@pytest.fixture(scope="module")
def stereo(test_instrument):
    """2 blend points x 2 keys (60, 67; zones 3 keys wide) x 2 velocity layers x 2 round robins, 1 s stereo."""
    inst, folder = test_instrument("sf2_stereo", blend_points=2, round_robins=2, seconds=1.0)
    names = sf2.write(inst, folder)
    return inst, folder, folder / names[0]


def parse(path: Path) -> Sf2File:
    """Parse with sf2utils; the bytes stay in memory because it reads sample data lazily."""
    return Sf2File(io.BytesIO(path.read_bytes()))


def test_sf2utils_parses_without_warnings(stereo, caplog):
    _, _, font = stereo
    with caplog.at_level(logging.WARNING):
        bank = parse(font)
        for sample in bank.samples[:-1]:
            assert sample.raw_sample_data
    # sf2utils files smpl and sm24 as two entries of sdta and says so; it then reads smpl, as it should
    warnings = [r.getMessage() for r in caplog.records if r.getMessage() != sf2_facts.SF2UTILS_SM24_NOTE]
    assert not warnings, warnings


def hz(key: float) -> float:
    return 440.0 * 2 ** ((key - 69) / 12)


def cents(f: float, ref: float) -> float:
    return 1200 * np.log2(f / ref)


def pitch(x: np.ndarray, sr: int, expect: float) -> float:
    """Frequency of the strongest partial near ``expect`` (Hann window, 8x zero padding, parabolic peak)."""
    n = len(x)
    spec = np.abs(np.fft.rfft(x * np.hanning(n), 8 * n))
    freqs = np.fft.rfftfreq(8 * n, 1 / sr)
    band = (freqs > expect * 0.8) & (freqs < expect * 1.2)
    k = np.flatnonzero(band)[np.argmax(spec[band])]
    a, b, c = np.log(spec[k - 1:k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / (8 * n)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


# ------------------------------------------------------------------------------------ sf2utils parse

def test_sf2utils_reads_one_preset_per_blend_point(stereo):
    inst, _, font = stereo
    bank = parse(font)
    presets = [p for p in bank.presets if p.name != "EOP"]
    assert [(p.name, p.bank, p.preset) for p in presets] == [(g.label, 0, i) for i, g in enumerate(inst.groups)]
    instruments = [i for i in bank.instruments if i.name != "EOI"]
    assert len(instruments) == len(inst.groups)
    for preset, instrument in zip(presets, instruments):
        (bag,) = preset.bags
        assert bag.instrument is instrument


def test_zones_keep_ranges_root_loops_and_stereo_links(stereo):
    inst, folder, font = stereo
    bank = parse(font)
    instruments = [i for i in bank.instruments if i.name != "EOI"]
    for group, instrument in zip(inst.groups, instruments):
        global_zone, *zones = instrument.bags
        assert global_zone.sample is None                          # the envelope lives in the global zone
        assert global_zone.gens[sf2.GEN_RELEASE_VOL_ENV].short == sf2.timecents(inst.envelope.release)
        first_cycle = [z for z in group.zones if z.round_robin == 1]
        assert len(zones) == 2 * len(first_cycle)                  # stereo: a left and a right zone each
        for zone, (left, right) in zip(sorted(first_cycle, key=lambda z: (z.lokey, z.lovel)),
                                       zip(zones[::2], zones[1::2])):
            for bag, kind, pan in ((left, "LEFT", -500), (right, "RIGHT", 500)):
                assert bag.key_range == [zone.lokey, zone.hikey]
                assert bag.velocity_range == [zone.lovel, zone.hivel]
                assert bag.gens[sf2.GEN_OVERRIDING_ROOT_KEY].short == zone.root_key
                assert bag.gens[sf2.GEN_PAN].short == pan
                assert bag.gens[sf2.GEN_SAMPLE_MODES].short == 3   # loop while held, then play on
                assert kind in str(bag.sample)
                lp = zone.sample.loop
                assert bag.sample.start_loop == lp.start                   # sf2utils: relative to the start
                assert bag.sample.end_loop == lp.end + 1                   # SF2 loop end is exclusive
                assert bag.sample.end - bag.sample.start == zone.sample.frames
                assert bag.sample.sample_rate == zone.sample.sample_rate
            assert left.sample.sample_link == bank.samples.index(right.sample)
            assert right.sample.sample_link == bank.samples.index(left.sample)
            # the 16-bit data is the WAV's audio, rounded
            audio, _ = sf.read(str(folder / zone.sample.path), dtype="float64", always_2d=True)
            raw = np.frombuffer(left.sample.raw_sample_data, dtype="<i2")
            assert np.max(np.abs(raw / 32767.0 - audio[:, 0])) < 1.5 / 32767


def test_riff_layout_and_padding(stereo):
    _, _, font = stereo
    data = font.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"sfbk"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    lists = []
    pos = 12
    while pos < len(data):
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        lists.append(data[pos + 8:pos + 12])
        pos += 8 + size + size % 2
    assert lists == [b"INFO", b"sdta", b"pdta"] and pos == len(data)
    bank = parse(font)
    for sample in bank.samples[:-1]:             # 46 zero points follow every sample
        nxt = bank.samples[bank.samples.index(sample) + 1]
        if nxt.name != "EOS":
            assert nxt.start - sample.end == sf2.PAD_SAMPLES


def test_output_is_deterministic_and_registered(stereo):
    inst, folder, font = stereo
    before = font.read_bytes()
    assert exporter("sf2")(inst, folder) == [font.name]
    assert font.read_bytes() == before


def test_mono_samples_have_no_pan(tmp_path):
    inst = make_test_instrument(tmp_path, blend_points=1, layers=1, keys=(64,), channels=1, seconds=0.3,
                                loop=False)
    font = tmp_path / sf2.write(inst, tmp_path)[0]
    bank = parse(font)
    (instrument,) = [i for i in bank.instruments if i.name != "EOI"]
    (zone,) = instrument.bags[1:]
    assert sf2.GEN_PAN not in zone.gens and sf2.GEN_SAMPLE_MODES not in zone.gens   # one-shot: no loop
    assert "MONO" in str(zone.sample)


def test_units():
    assert sf2.timecents(1.0) == 0 and sf2.timecents(0.0) == sf2.timecents(0.001) == -11959 and sf2.timecents(2.0) == 1200
    assert sf2.sustain_centibels(1.0) == 0 and sf2.sustain_centibels(0.1) == 200 and sf2.sustain_centibels(0) == 1440
    assert sf2.split_tune(30.4) == (0, 30) and sf2.split_tune(-130) == (-1, -30) and sf2.split_tune(250) == (2, 50)
    assert sf2.range_amount(59, 61) == struct.unpack("<h", bytes((59, 61)))[0]


def test_bad_loop_is_a_clear_error(stereo):
    inst, folder, _ = stereo
    group = inst.groups[0]
    zone = group.zones[0]
    bad = dataclasses.replace(zone.sample, loop=dataclasses.replace(zone.sample.loop, end=zone.sample.frames))
    broken = dataclasses.replace(inst, groups=(dataclasses.replace(group, zones=(
        dataclasses.replace(zone, sample=bad),)),))
    with pytest.raises(ExportError, match="loop"):
        sf2.write(broken, folder)


# ---------------------------------------------------------------------------------- fluidsynth renders

@needs_fluidsynth
def test_fluidsynth_plays_in_tune_sustains_the_loop_and_layers_velocity(stereo, tmp_path):
    _, _, font = stereo
    out = render_fluidsynth(font, [(0.0, "on", 61, 100), (2.6, "off", 61, 0),     # transposed +1 from root 60
                        (3.2, "on", 68, 40), (3.9, "off", 68, 0),      # soft layer, root 67 +1
                        (4.4, "on", 68, 120), (5.1, "off", 68, 0)],    # loud layer
                 tmp_path)
    for start, stop, key in ((0.2, 0.9, 61), (3.3, 3.8, 68), (4.5, 5.0, 68)):
        f = pitch(segment(out, start, stop), SR, hz(key))
        assert abs(cents(f, hz(key))) < 5, (key, f)
    early, held = rms(segment(out, 0.2, 0.9)), rms(segment(out, 1.5, 2.5))
    assert held > 0.7 * early, "the 1 s sample must keep sounding through its loop while the key is held"
    assert rms(segment(out, 3.3, 3.8)) * 3 < rms(segment(out, 4.5, 5.0)), "the loud layer must be louder"
    assert rms(segment(out, 3.0, 3.15)) < 0.05 * held, "release ends the note"


@needs_fluidsynth
def test_fluidsynth_program_change_picks_the_blend_point(stereo, tmp_path):
    _, _, font = stereo

    def brightness(x):   # energy of partials 2..4 over the fundamental
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        f = np.fft.rfftfreq(len(x), 1 / SR)
        band = lambda h: spec[(f > h * hz(60) * 0.97) & (f < h * hz(60) * 1.03)].max()
        return sum(band(h) for h in (2, 3, 4)) / band(1)

    dull = render_fluidsynth(font, [(0.0, "program", 0, 0), (0.0, "on", 60, 110), (0.6, "off", 60, 0)], tmp_path)
    bright = render_fluidsynth(font, [(0.0, "program", 1, 0), (0.0, "on", 60, 110), (0.6, "off", 60, 0)], tmp_path)
    assert brightness(segment(bright, 0.1, 0.5)) > 5 * brightness(segment(dull, 0.1, 0.5))


@needs_fluidsynth
def test_fluidsynth_applies_tune_cents(tmp_path):
    """A sample recorded 30 cents flat of A4 (tune_cents=+30) and one 130 cents sharp (tune_cents=-130)."""
    base = make_test_instrument(tmp_path, blend_points=1, layers=1, keys=(69,), channels=1, seconds=0.6)
    (group,) = base.groups
    (zone,) = group.zones
    zones = []
    for i, (offset_cents, lo, hi) in enumerate(((-30, 60, 69), (130, 70, 80))):
        rel = f"samples/detuned_{i}.wav"
        audio = tone(hz(69 + offset_cents / 100), 0.6, SR, bright=0.05, amp=0.4)
        write_wav(tmp_path / rel, audio, SR, "24", unity_note=69)
        sample = Sample(path=rel, frames=audio.shape[1], sample_rate=SR, channels=1, root_key=69,
                        tune_cents=-offset_cents, loop=None)
        zones.append(dataclasses.replace(zone, sample=sample, lokey=lo, hikey=hi))
    inst = dataclasses.replace(base, groups=(dataclasses.replace(group, zones=tuple(zones)),), loop_mode="none")
    font = tmp_path / sf2.write(inst, tmp_path)[0]
    out = render_fluidsynth(font, [(0.0, "on", 69, 100), (0.5, "off", 69, 0), (1.0, "on", 72, 100), (1.5, "off", 72, 0)],
                 tmp_path)
    assert abs(cents(pitch(segment(out, 0.1, 0.45), SR, hz(69)), hz(69))) < 5
    assert abs(cents(pitch(segment(out, 1.1, 1.45), SR, hz(72)), hz(72))) < 5


# ------------------------------------------------------------------------------------------- 24 bits

def sdta_chunks(font: Path) -> dict[str, bytes]:
    """The sub-chunks of the sdta LIST and the ifil version, read by walking the RIFF tree."""
    raw = font.read_bytes()
    found, pos = {}, 12
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        if cid == b"LIST":
            inner, end = pos + 12, pos + 8 + size
            while inner + 8 <= end:
                sub, sub_size = raw[inner:inner + 4], struct.unpack_from("<I", raw, inner + 4)[0]
                found[sub.decode()] = raw[inner + 8:inner + 8 + sub_size]
                inner += 8 + sub_size + sub_size % 2
        pos += 8 + size + size % 2
    return found


def test_24_bit_samples_go_to_sm24_and_16_bit_ones_do_not(stereo, tmp_path):
    """SoundFont 2.04: ifil 2.04, sm24 right after smpl, one byte per sample point, padded to even (FluidSynth
    compares it with half of smpl rounded up to even); smpl and sm24 together give back the WAV's 24 bits."""
    inst, folder, font = stereo
    chunks = sdta_chunks(font)
    assert struct.unpack("<HH", chunks["ifil"]) == sf2.VERSION_24_BIT == sf2_facts.IFIL_24_BIT
    assert list(chunks).index("sm24") == list(chunks).index(sf2_facts.SM24_FOLLOWS) + 1
    smpl, sm24 = chunks["smpl"], chunks["sm24"]
    points = len(smpl) // 2
    assert len(sm24) == sf2_facts.sm24_size(len(smpl))
    upper = np.frombuffer(smpl, "<i2").astype(np.int32)
    whole = upper * 256 + np.frombuffer(sm24[:points], np.uint8)
    path = inst.groups[0].zones[0].sample.path
    wav = sf.read(str(folder / path), dtype="int32", always_2d=True)[0][:, 0] >> 8     # 24-bit left channel
    bank = parse(font)
    header = next(s for s in bank.samples if s.name.startswith("000 "))
    assert np.array_equal(whole[header.start:header.end], wav)

    quiet = make_test_instrument(tmp_path, blend_points=1, layers=1, keys=(64,), channels=1, seconds=0.3,
                                 loop=False)
    for sample in quiet.samples:       # the same audio as 16-bit WAVs: a 2.01 bank without sm24
        audio, rate = sf.read(str(tmp_path / sample.path), dtype="float64")
        sf.write(str(tmp_path / sample.path), audio, rate, subtype="PCM_16")
    chunks16 = sdta_chunks(tmp_path / sf2.write(quiet, tmp_path)[0])
    assert struct.unpack("<HH", chunks16["ifil"]) == sf2_facts.IFIL_16_BIT and "sm24" not in chunks16
    audio16, _ = sf.read(str(tmp_path / quiet.samples[0].path), dtype="int16")
    assert np.array_equal(np.frombuffer(chunks16["smpl"], "<i2")[:len(audio16)], audio16)   # exact


@needs_fluidsynth
def test_fluidsynth_plays_the_24_bit_samples(tmp_path):
    """A sine 100 dB down (about 0.3 of a 16-bit step) is only a sine with sm24: the same bank stamped 2.01,
    which FluidSynth must read as 16 bits, plays a staircase of a step or two."""
    base = make_test_instrument(tmp_path, blend_points=1, layers=1, keys=(69,), channels=1, seconds=0.8,
                                loop=False)
    (group,) = base.groups
    (zone,) = group.zones
    quiet = tone(440.0, 0.8, SR, bright=0.0, amp=10 ** (-100 / 20))
    write_wav(tmp_path / zone.sample.path, quiet, SR, "24", unity_note=69)
    inst = dataclasses.replace(base, loop_mode="none")
    font = tmp_path / sf2.write(inst, tmp_path)[0]
    as_16 = tmp_path / "as16.sf2"
    raw = bytearray(font.read_bytes())
    at = raw.index(b"ifil") + 8
    raw[at:at + 4] = struct.pack("<HH", *sf2.VERSION_16_BIT)
    as_16.write_bytes(bytes(raw))

    def purity(path):           # level of the 440 Hz partial over everything else, in dB
        out = segment(render_fluidsynth(path, [(0.0, "on", 69, 127), (0.7, "off", 69, 0)], tmp_path,
                                        float_file=True),
                      0.2, 0.6)
        spec = np.abs(np.fft.rfft(out * np.hanning(len(out)))) ** 2
        f = np.fft.rfftfreq(len(out), 1 / SR)
        near = (f > 430) & (f < 450)
        return 10 * np.log10(spec[near].sum() / spec[~near & (f > 20)].sum())

    full, truncated = purity(font), purity(as_16)
    assert full > 25 and full > truncated + 15, (full, truncated)
