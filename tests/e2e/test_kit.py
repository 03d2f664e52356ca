"""Grain kits: a tiny conceptor kit built end to end and played in sfizz, its Drum Rack checked against the
structure of Drum Racks Live saved (tests/support/data/ableton_facts.py), its grain-morph wavetable, and the spec's
errors. One build (~10 s on a busy 2-core machine) serves the module."""
from __future__ import annotations

import dataclasses
import gzip
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf
import yaml
from support import REPO, copy_example_sounds
from support.data import ableton_facts as facts
from support.helpers import make_test_instrument
from lxml import etree
from support.players import render_fluidsynth, render_sfizz, rms_db, segment, sfizz_synth, sfzlint_errors
from support.live import check_live_invariants, check_sampler, is_subsequence

from dawexport.audio.io import read_wav_metadata
from dawexport.errors import SpecError
from dawexport.export import ableton
from dawexport.export.wavetables import read_serum_wav, read_surge_wt
from dawexport.pipeline import build
from dawexport.render.plan import kit_pads
from dawexport.spec import KitSpec, parse_spec

LOW, PADS = 36, 6
KEYS = list(range(LOW, LOW + PADS))


def kit_spec(tmp_path: Path, **changes) -> Path:
    copy_example_sounds(tmp_path)
    spec = {"name": "kit", "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"},
            # a tiny reservoir holds its grains at 22050 Hz (the engine's 44100 Hz default wants N = 400)
            "engine": {"name": "conceptor", "sample_rate": 22050,
                       "settings": {"reservoir_size": 100, "grains_per_source": 4, "n_reservoirs": 1}},
            "kit": {"low": LOW, "grains": PADS, "length": 0.4},
            "velocity_layers": 2,
            "wavetables": [{"name": "morph", "along": "grains", "frames": 8, "corners": ["cat", "flute"]}],
            "output": {"dir": "out/kit"}}                      # every format, the default
    spec.update(changes)
    path = tmp_path / "kit.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("kit")
    result = build(kit_spec(tmp_path), quiet=True)
    return result.folder, result


def load_gz_xml(path: Path) -> etree._Element:
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b", f"{path.name} is not gzip"
    return etree.fromstring(gzip.decompress(data))


def band_db(audio: np.ndarray, sr: int) -> np.ndarray:
    """Third-octave band levels (dB re the loudest band): a timbre fingerprint."""
    x = audio.mean(axis=0) if audio.ndim == 2 else audio
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    edges = 100 * 2 ** np.arange(0, 7.5, 1 / 3)
    db = 10 * np.log10(np.array([mag[(freqs >= lo) & (freqs < hi)].sum() + 1e-12 for lo, hi in zip(edges, edges[1:])]))
    return db - db.max()


# ------------------------------------------------------------------------------------- the build

def test_kit_folder_and_sfz_read_as_a_drum_map(kit):
    folder, _ = kit
    names = {p.name for p in folder.iterdir()}
    assert {"kit.sfz", "kit.adg", "kit.adv", "kit.dspreset", "kit.multisample", "kit.sf2",
            "kit_preview.mid"} <= names
    sfz = (folder / "kit.sfz").read_text()
    assert "loop_mode=one_shot" in sfz and "xfin_" not in sfz and "<control>" not in sfz
    assert "// key C2 (36): grain 1 of cat" in sfz and "of flute" in sfz
    regions = [line for line in sfz.splitlines() if line.startswith("lokey=")]
    assert len(regions) == PADS * 2
    for line in regions:               # a drum map: one key per region, rooted on that key
        ops = dict(op.split("=") for op in line.split())
        assert ops["lokey"] == ops["hikey"] == ops["pitch_keycenter"]
    lines = sfz.splitlines()
    samples = {line.split("sample=")[1]: int(after.split()[0].removeprefix("lokey="))
               for line, after in zip(lines, lines[1:]) if line.startswith("<region> sample=")}
    assert len(samples) == PADS * 2
    for path, key in samples.items():  # the WAV's own root key is the pad's key too, and it has no loop
        smpl = read_wav_metadata(folder / path)["smpl"]
        assert smpl["unity_note"] == key and not smpl["loops"]
    assert sfzlint_errors(folder / "kit.sfz") == []


def test_sfizz_plays_every_pad_and_only_the_pads(kit):
    folder, _ = kit
    synth = sfizz_synth(folder / "kit.sfz")
    assert synth.playable_keys == KEYS
    pads = {key: render_sfizz(synth, key, 127, hold_s=0.3, total_s=0.45) for key in [LOW - 1] + KEYS + [KEYS[-1] + 1]}
    assert rms_db(pads[LOW - 1]) < -90 and rms_db(pads[KEYS[-1] + 1]) < -90
    for key in KEYS:
        assert rms_db(pads[key]) > -40, f"pad {key} is silent"
    for a, b in zip(KEYS, KEYS[1:]):   # every pad is its own sound
        assert np.mean(np.abs(band_db(pads[a], 44100) - band_db(pads[b], 44100))) > 1.0, (a, b)


def test_pads_are_one_shots_and_layers_grow_louder(kit):
    folder, _ = kit
    synth = sfizz_synth(folder / "kit.sfz")
    for key in (KEYS[0], KEYS[-1]):
        tapped = render_sfizz(synth, key, 127, hold_s=0.02, total_s=0.4)
        held = render_sfizz(synth, key, 127, hold_s=0.4, total_s=0.4)
        # letting go at once neither cuts the pad nor starts a release: it plays to its end as if held
        assert rms_db(held[:, 4410:]) > rms_db(held) - 20          # (it decays, but goes on sounding)
        assert abs(rms_db(tapped[:, 4410:]) - rms_db(held[:, 4410:])) < 0.5
        assert abs(rms_db(tapped) - rms_db(held)) < 0.5
        soft = render_sfizz(synth, key, 40, hold_s=0.3, total_s=0.4)
        assert rms_db(held) - rms_db(soft) > 3.0


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth is not installed")
def test_soundfont_pads_ring_on_after_a_tap_in_fluidsynth(kit, tmp_path):
    """SF2 has no one-shot mode: the kit's long release keeps a tapped pad sounding like a held one."""
    folder, _ = kit
    tapped = render_fluidsynth(folder / "kit.sf2", [(0.0, "on", LOW, 127), (0.02, "off", LOW, 0)], tmp_path)
    held = render_fluidsynth(folder / "kit.sf2", [(0.0, "on", LOW, 127), (0.4, "off", LOW, 0)], tmp_path)
    assert rms_db(segment(held, 0.0, 0.4)) > -50
    assert abs(rms_db(segment(tapped, 0.1, 0.4)) - rms_db(segment(held, 0.1, 0.4))) < 3.0


def test_drum_rack_matches_the_structure_of_live_drum_racks(kit):
    folder, _ = kit
    root = load_gz_xml(folder / "kit.adg")
    check_live_invariants(root, folder, 11)   # the default: Live 11 and 12
    rack = root[0]
    assert rack.tag == facts.ADG_ROOT_CHILD and "Id" not in rack.attrib
    assert [c.tag for c in rack] == facts.GROUPDEVICEPRESET_CHILDREN
    device = rack.find("Device")[0]
    assert device.tag == facts.DRUM_DEVICE
    assert is_subsequence([c.tag for c in device], facts.DRUMGROUPDEVICE_CHILDREN_12)
    extra = [t for t in facts.DRUMGROUPDEVICE_EXTRA_CHILDREN if t not in facts.DRUMGROUPDEVICE_ONLY_12]
    assert [c.tag for c in device][-len(extra):] == extra     # Live 11, the default
    assert rack.find("PresetRef/AbletonDefaultPresetRef/DeviceId").get("Name") == facts.DRUM_DEVICE
    assert device.find("PadScrollPosition").get("Value") == str(facts.DRUM_PAD_SCROLL_TOP - LOW // 4)
    pads = list(rack.find("BranchPresets"))
    assert [p.tag for p in pads] == [facts.DRUM_BRANCH] * PADS
    assert [p.get("Id") for p in pads] == [str(i) for i in range(PADS)]
    notes = []
    for pad in pads:
        assert [c.tag for c in pad] == facts.DRUMBRANCHPRESET_CHILDREN
        zone = pad.find("ZoneSettings")
        assert [c.tag for c in zone] == facts.DRUM_ZONESETTINGS_CHILDREN
        assert zone.find("SendingNote").get("Value") == facts.DRUM_SENDING_NOTE
        assert zone.find("ChokeGroup").get("Value") == facts.DRUM_NO_CHOKE
        notes.append(facts.DRUM_RECEIVING_NOTE_BASE - int(zone.find("ReceivingNote").get("Value")))
        assert tuple(c.get("Value") for c in pad.find("BranchSelectorRange")) == facts.DRUM_BRANCH_SELECTOR
        assert pad.find("Name").get("Value").startswith("grain ")
        sampler = pad.find("DevicePresets/AbletonDevicePreset/Device/MultiSampler")
        assert sampler is not None and sampler.get("Id") == "0"
        check_sampler(sampler, 11)
        parts = list(sampler.iter("MultiSamplePart"))
        assert len(parts) == 2             # the pad's two velocity layers
        assert sorted((int(p.find("VelocityRange/Min").get("Value")), int(p.find("VelocityRange/Max").get("Value")))
                      for p in parts) == [(1, 64), (65, 127)]
        for part in parts:                 # every note the pad sends plays the sample as rendered
            assert (part.find("KeyRange/Min").get("Value"), part.find("KeyRange/Max").get("Value")) == \
                facts.DRUM_PAD_KEYRANGE
            assert part.find("RootKey").get("Value") == facts.DRUM_SENDING_NOTE
            assert part.find("Detune").get("Value") == "0"
            assert part.find("SustainLoop/Mode").get("Value") == "0"
    assert notes == KEYS                   # one pad per key, ascending
    adv = load_gz_xml(folder / "kit.adv")  # the whole kit as one Sampler: a zone per key
    check_live_invariants(adv, folder, 11)
    keys = {(int(p.find("KeyRange/Min").get("Value")), int(p.find("KeyRange/Max").get("Value")),
             int(p.find("RootKey").get("Value"))) for p in adv.iter("MultiSamplePart")}
    assert keys == {(k, k, k) for k in KEYS}


@pytest.mark.parametrize("version", [11, 12])
def test_drum_rack_from_any_kit_instrument(tmp_path, version):
    """Without an engine: a kit Instrument of three keys (one layer, two round robins)."""
    inst = make_test_instrument(tmp_path, keys=(36, 38, 42), zone_width=1, layers=1, blend_points=1,
                                round_robins=2, seconds=0.2, loop=False)
    group = inst.groups[0]
    zones = tuple(dataclasses.replace(z, label=f"pad {z.lokey}") for z in group.zones)
    inst = dataclasses.replace(inst, kind="kit", loop_mode="one_shot",
                               groups=(dataclasses.replace(group, zones=zones),))
    names = ableton.write(inst, tmp_path, live_version=version)
    assert names == ["tiny.adg", "tiny.adv"]
    root = load_gz_xml(tmp_path / "tiny.adg")
    check_live_invariants(root, tmp_path, version)
    device = root[0].find("Device")[0]
    assert device.tag == facts.DRUM_DEVICE
    for tag in facts.DRUMGROUPDEVICE_ONLY_12:
        assert (device.find(tag) is not None) == (version >= 12)
    pads = list(root[0].find("BranchPresets"))
    assert [facts.DRUM_RECEIVING_NOTE_BASE - int(p.find("ZoneSettings/ReceivingNote").get("Value"))
            for p in pads] == [36, 38, 42]
    assert [p.find("Name").get("Value") for p in pads] == ["pad 36", "pad 38", "pad 42"]
    for pad in pads:
        assert len(list(pad.iter("MultiSamplePart"))) == 2          # the pad's round robins
    assert ableton.render_rack(inst, tmp_path, version) == ableton.render_rack(inst, tmp_path, version)


def test_grain_wavetable_morphs_cat_into_flute(kit):
    folder, result = kit
    table, text = read_serum_wav(folder / "wavetables" / "kit_morph.wav")
    assert table.shape == (8, 2048)
    assert text == "<!>2048 10000000 wavetable (made with dawexport)"
    assert read_surge_wt(folder / "wavetables" / "kit_morph.wt").shape == (8, 2048)
    assert {"wavetables/kit_morph.wav", "wavetables/kit_morph.wt"} <= set(result.files)
    for frame in table:                    # one period per frame: the fundamental sits in bin 1
        spectrum = np.abs(np.fft.rfft(frame))
        assert spectrum[1] > 0.2 * spectrum.max()
        assert abs(frame.mean()) < 1e-3
    harmonics = np.abs(np.fft.rfft(table, axis=1))[:, 1:9]
    harmonics /= harmonics.max(axis=1, keepdims=True)
    assert np.abs(harmonics[0] - harmonics[-1]).max() > 0.1     # the cat end and the flute end differ


def test_preview_plays_each_pad_once_per_layer(kit):
    folder, _ = kit
    midi = mido.MidiFile(str(folder / "kit_preview.mid"))
    ons = [(m.note, m.velocity) for track in midi.tracks for m in track if m.type == "note_on" and m.velocity]
    assert sorted(n for n, _ in ons) == sorted(KEYS * 2)
    assert {v for _, v in ons} == {64, 127}
    assert not [m for track in midi.tracks for m in track if m.type == "control_change"]   # no blend knob


def without_location(preset: Path) -> bytes:
    root = etree.fromstring(gzip.decompress(preset.read_bytes()))
    for element in root.iter("Path", "LastModDate"):
        element.set("Value", "")
    return etree.tostring(root)


def test_the_same_spec_gives_the_same_kit(kit, tmp_path):
    folder, result = kit
    again = build(kit_spec(tmp_path), quiet=True)          # a fresh folder and a fresh model cache
    assert again.files == result.files
    for name in result.files:
        if name.startswith("wavetables/") and name.endswith(".wav"):
            # (libsndfile stamps float WAVs with the time in a PEAK chunk: compare the table and its clm text)
            assert read_serum_wav(again.folder / name)[1] == read_serum_wav(folder / name)[1]
            assert np.array_equal(read_serum_wav(again.folder / name)[0], read_serum_wav(folder / name)[0])
        elif name.endswith(".adg"):      # the same but for where the samples are and when they were written
            assert without_location(again.folder / name) == without_location(folder / name)
        elif name.endswith((".wav", ".sfz", ".wt")):
            assert (again.folder / name).read_bytes() == (folder / name).read_bytes(), name


def test_other_formats_map_one_key_per_pad(kit):
    folder, _ = kit
    ds = etree.parse(str(folder / "kit.dspreset")).getroot()
    for sample in ds.iter("sample"):
        assert sample.get("loNote") == sample.get("hiNote") == sample.get("rootNote")
        assert sample.get("loopEnabled") == "false"
    info = sf.info(str(next((folder / "samples").glob("*.wav"))))
    assert info.channels == 2 and info.samplerate == 44100


# ------------------------------------------------------------------------------------- the engine

def test_render_grains_decays_scales_velocity_and_keeps_a_stereo_pad_on_one_pitch(tmp_path):
    from dawexport.audio.analysis import estimate_pitch
    from dawexport.engines.base import Clip, Corpus, GrainRequest
    from dawexport.engines.conceptor import ConceptorEngine
    sr = 16000
    t = np.arange(int(0.5 * sr)) / sr

    def tone(f):
        x = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)
        return (0.5 * x / np.abs(x).max() * np.minimum(1, t / 0.01)).astype(np.float32)
    left, right = tone(220.0), tone(233.08)              # the right channel a semitone sharp
    clips = tuple(Clip("a", ch, 0, x, estimate_pitch(x, sr)) for ch, x in (("L", left), ("R", right)))
    engine = ConceptorEngine(ConceptorEngine.Settings(reservoir_size=80, grains_per_source=3, n_reservoirs=1),
                             sample_rate=sr, seed=0)
    engine.fit(Corpus(sr, ("L", "R"), clips), tmp_path, None)
    positions = engine.grain_catalogue()[("a", 0)]
    assert positions and set(positions) <= {0, 1, 2}
    reqs = [GrainRequest("a", 0, positions[:1], ch, 40, vel, 0.5, 0.25) for vel in (127, 64) for ch in ("L", "R")]
    loud_l, loud_r, soft_l, _ = engine.render_grains(reqs)
    assert len(loud_l) == int(0.5 * sr) and np.all(np.isfinite(loud_l)) and loud_l.dtype == np.float32
    assert np.allclose(soft_l, loud_l * 10 ** (-40 * (1 - 63 / 126) / 20), atol=1e-6)   # velocity 1..127 over 40 dB
    early, late = rms_db(loud_l[int(0.02 * sr):int(0.1 * sr)]), rms_db(loud_l[int(0.3 * sr):int(0.4 * sr)])
    assert early > -40 and early - late > 25          # -60 dB per 0.25 s: about 31 dB down by 0.35 s
    assert abs(loud_l[-1]) < 1e-4                     # and it closes to silence
    pl, pr = (estimate_pitch(x[:int(0.2 * sr)], sr) for x in (loud_l, loud_r))
    assert pl.pitched and pr.pitched and abs(1200 * np.log2(pl.hz / pr.hz)) < 25   # one pitch, not two
    seq = engine.render_grains([GrainRequest("a", 0, positions[:2], "L", 40, 127, 0.5, 0.5)])[0]
    assert seq.shape == loud_l.shape and not np.allclose(seq, loud_l)


# ------------------------------------------------------------------------------------- the spec

def test_the_example_kit_spec_is_valid():
    from dawexport.spec import load_spec
    spec = load_spec(REPO / "instruments" / "conceptor_kit.yaml")
    assert spec.kit.grains == 16 and spec.wavetables[0].along == "grains" and spec.engine.name == "conceptor"


def test_kit_pads_spread_evenly_over_the_sources_grains():
    catalogue = {("cat", 0): (0, 1, 2, 3), ("flute", 0): (0, 2, 3)}   # flute's grain 2 is silent
    pads = kit_pads(KitSpec(low=36, grains=4), ["cat", "flute"], catalogue)
    assert [(p.key, p.source, p.positions) for p in pads] == \
        [(36, "cat", (0,)), (37, "cat", (2,)), (38, "flute", (0,)), (39, "flute", (3,))]
    assert [p.description for p in pads][:2] == ["grain 1 of cat", "grain 3 of cat"]
    pads = kit_pads(KitSpec(low=40, grains=2, sequence=2), ["flute"], catalogue)
    assert [p.positions for p in pads] == [(0, 2), (3, 0)]               # sequences skip silence and wrap
    assert [p.label for p in pads] == ["flute_g1+3", "flute_g4+1"]
    with pytest.raises(SpecError, match="only 7 sounding grains") as error:
        kit_pads(KitSpec(grains=8), ["cat", "flute"], catalogue)
    assert error.value.key == "kit.grains"


def spec_data(**changes) -> dict:
    data = {"name": "k", "sources": {"cat": "cat.wav", "flute": "flute.wav"}, "engine": {"name": "conceptor"},
            "kit": {"low": 36, "grains": 8}}
    data.update(changes)
    return data


@pytest.mark.parametrize("changes, key, match", [
    ({"engine": {"name": "sampler"}}, "kit", "cannot render grains"),
    ({"kit": {"low": 120, "grains": 16}}, None, "run up to key 135, past MIDI 127"),
    ({"kit": {"low": "C9", "grains": 9}}, None, "past MIDI 127"),
    ({"kit": {"grains": 0}}, None, "kit.grains"),
    ({"kit": {"sources": ["dog"]}}, "kit.sources", "'dog' is not a source"),
    ({"kit": {"sequence": 2, "lenght": 1}}, None, "did you mean 'length'"),
    ({"keys": {"low": 40}}, "keys", "would do nothing"),
    ({"blend": {"corners": ["cat", "flute"]}}, "blend", "would do nothing"),
    ({"kit": None, "engine": {"name": "sampler"},
      "wavetables": [{"name": "w", "along": "grains"}]}, "wavetables[0].along", "cannot morph between grains"),
])
def test_bad_kits_are_clear_errors(changes, key, match):
    data = spec_data(**changes)
    if data.get("kit") is None:
        data.pop("kit")
    with pytest.raises(SpecError, match=match) as error:
        parse_spec(data, "kit.yaml")
    if key is not None:
        assert error.value.key == key
    assert "kit.yaml" in str(error.value)


def test_a_valid_kit_spec_parses_with_defaults():
    spec = parse_spec(spec_data(kit={"low": "C2", "sources": ["flute"], "length": 0.3}), "kit.yaml")
    assert (spec.kit.low, spec.kit.high, spec.kit.grains, spec.kit.decay_s) == (36, 51, 16, 0.3)


def test_kit_report_has_a_tile_per_pad_in_a_real_browser(kit):
    """The build report of a kit: one tile per pad with its label, one play button per sample, all playable."""
    from support.browser import chromium_page, media_of

    folder, _ = kit
    samples = sorted(p.relative_to(folder).as_posix() for p in (folder / "samples").glob("*.wav"))
    with chromium_page(width=390) as page:
        page.goto((folder / "report.html").as_uri())
        page.wait_for_load_state("load")
        assert page.locator(".tile").count() == PADS
        assert page.locator("#cells button.cell").count() == len(samples)
        assert "grain" in page.locator(".tile").nth(0).inner_text()
        media = media_of(page)
        assert all(i["width"] > 0 for i in media["images"])
        assert all(a["error"] is None and a["duration"] > 0 for a in media["audio"]), media["audio"]
        assert set(samples) <= {a["src"] for a in media["audio"]}
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        assert page.errors == []
