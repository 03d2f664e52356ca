"""Ableton Live exporter: structure compared with presets Live saved (tests/data/ableton_facts.py), plus the
checks Live itself makes on load (gzip, XML, unique sibling Ids, zone bounds, samples present and in range).

Live cannot run here, so every check is against facts observed in Live-saved files, not against our reader.
"""
from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest
import soundfile as sf
from data import ableton_facts as facts
from helpers import make_test_instrument
from lxml import etree

from dawexport.errors import ExportError
from dawexport.export import ableton, exporter
from dawexport.instrument import BlendAxis, BlendGroup

RANGE_TAGS = ("KeyRange", "VelocityRange", "SelectorRange", "BranchSelectorRange")


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def line(tmp_path_factory):
    """3 blend points on one knob, 2 keys x 2 velocity layers x 2 round robins."""
    folder = tmp_path_factory.mktemp("ableton_line")
    inst = make_test_instrument(folder, blend_points=3, round_robins=2, seconds=0.4)
    return inst, folder


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    """A 4-corner grid: 2 x 2 blend points on two knobs (X, Y)."""
    folder = tmp_path_factory.mktemp("ableton_square")
    base = make_test_instrument(folder, blend_points=4, keys=(60,), layers=1, seconds=0.3)
    groups = tuple(BlendGroup(index=g.index, label=f"corner {g.index}", position=(g.index % 2, g.index // 2),
                              grid_index=(g.index % 2, g.index // 2), weights={}, zones=g.zones)
                   for g in base.groups)
    axes = (BlendAxis(name="X", cc=1, points=2), BlendAxis(name="Y", cc=2, points=2))
    return dataclasses.replace(base, groups=groups, axes=axes), folder


def load(path: Path) -> etree._Element:
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b", f"{path.name} is not gzip"
    xml = gzip.decompress(data)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return etree.fromstring(xml)    # raises on malformed XML


def written(inst, folder, version=12):
    names = ableton.write(inst, folder, live_version=version)
    return {Path(n).suffix: load(folder / n) for n in names}, names


# --------------------------------------------------------------------------------- generic invariants

def check_live_invariants(root: etree._Element, folder: Path, version: int) -> None:
    # root attributes as Live writes them
    want = facts.ROOT[version]
    assert root.tag == "Ableton"
    assert list(root.attrib) == facts.ROOT_ATTRIBUTE_ORDER
    for key, value in want.items():
        assert root.get(key) == value, key
    # every Id unique among its same-named siblings (Live refuses the file otherwise)
    for element in root.iter():
        seen = {}
        for child in element:
            if child.get("Id") is not None:
                key = (child.tag, child.get("Id"))
                assert key not in seen, f"duplicate Id {child.get('Id')} of {child.tag} in {element.tag}"
                seen[key] = True
    # every range: bounds inside 0..127 and Min <= CrossfadeMin <= CrossfadeMax <= Max
    for tag in RANGE_TAGS:
        for rng in root.iter(tag):
            assert [c.tag for c in rng] == facts.RANGE_CHILDREN
            lo, hi, cf_lo, cf_hi = (int(rng.find(t).get("Value")) for t in facts.RANGE_CHILDREN)
            assert 0 <= lo <= cf_lo <= cf_hi <= hi <= 127, (tag, lo, cf_lo, cf_hi, hi)
    # every KeyMidi is a macro mapping on channel 16
    for km in root.iter("KeyMidi"):
        assert [c.tag for c in km] == facts.KEYMIDI_CHILDREN
        assert km.find("Channel").get("Value") == facts.KEYMIDI_CHANNEL
        assert km.getparent().index(km) == 1 and km.getparent()[0].tag == "LomId"
        assert 0 <= int(km.find("NoteOrController").get("Value")) < 16
    # every sample referenced is present, and its lengths and loops lie inside the file
    parts = list(root.iter("MultiSamplePart"))
    assert parts
    for part in parts:
        check_part(part, folder)
    # version-specific elements
    for tag in facts.MULTISAMPLER_ONLY_12 | facts.MULTISAMPLEMAP_ONLY_12:
        assert (next(root.iter(tag), None) is not None) == (version >= 12), tag


def check_part(part: etree._Element, folder: Path) -> None:
    children = [c.tag for c in part]
    required = [t for t in facts.MULTISAMPLEPART_CHILDREN if t not in facts.MULTISAMPLEPART_OPTIONAL]
    assert [t for t in children if t in required] == required
    assert is_subsequence(children, facts.MULTISAMPLEPART_CHILDREN)
    assert set(part.attrib) <= facts.MULTISAMPLEPART_ATTRIBUTES | {"InitUpdateAreSlicesFromOnsetsEditableAfterRead"}
    ref = part.find("SampleRef")
    assert [c.tag for c in ref] == facts.SAMPLEREF_CHILDREN
    file_ref = ref.find("FileRef")
    assert [c.tag for c in file_ref] == facts.FILEREF_CHILDREN
    assert file_ref.find("RelativePathType").get("Value") == facts.RELATIVE_PATH_TYPE_DOCUMENT
    assert file_ref.find("Type").get("Value") == facts.SAMPLE_FILEREF_TYPE
    rel = file_ref.find("RelativePath").get("Value")
    assert not rel.startswith("/") and ".." not in rel.split("/")
    path = folder / rel
    assert path.is_file(), f"{rel} is missing"
    assert int(file_ref.find("OriginalFileSize").get("Value")) == path.stat().st_size
    info = sf.info(str(path))
    assert int(ref.find("DefaultDuration").get("Value")) == info.frames
    assert int(ref.find("DefaultSampleRate").get("Value")) == info.samplerate
    last = info.frames - 1
    assert int(part.find("SampleStart").get("Value")) == 0
    assert int(part.find("SampleEnd").get("Value")) == last
    for loop_tag in ("SustainLoop", "ReleaseLoop"):
        loop = part.find(loop_tag)
        assert [c.tag for c in loop] == facts.LOOP_CHILDREN
        start, end = int(loop.find("Start").get("Value")), int(loop.find("End").get("Value"))
        assert 0 <= start < end <= last
    assert 0 <= int(part.find("RootKey").get("Value")) <= 127
    assert -50 <= int(part.find("Detune").get("Value")) <= 50


def is_subsequence(items, reference) -> bool:
    it = iter(reference)
    return all(any(x == r for r in it) for x in items)


def check_sampler(sampler: etree._Element, version: int) -> None:
    children = [c.tag for c in sampler]
    reference = [t for t in facts.MULTISAMPLER_CHILDREN_12 if version >= 12 or t not in facts.MULTISAMPLER_ONLY_12]
    assert is_subsequence(children, reference), children
    for section, reference in facts.SUBSECTION_CHILDREN_12.items():
        assert is_subsequence([c.tag for c in sampler.find(section)], reference), section
    msm = sampler.find("Player/MultiSampleMap")
    ms_ref = [t for t in facts.MULTISAMPLEMAP_CHILDREN_12 if version >= 12 or t not in facts.MULTISAMPLEMAP_ONLY_12]
    assert [c.tag for c in msm] == ms_ref
    env = sampler.find("VolumeAndPan/Envelope")
    assert [c.tag for c in env] == facts.ENVELOPE_CHILDREN
    for name, (lo, hi) in facts.ENVELOPE_RANGES.items():
        param = env.find(name)
        assert is_subsequence([c.tag for c in param], ["LomId", "KeyMidi"] + facts.PARAMETER_CHILDREN[1:])
        rng = param.find("MidiControllerRange")
        assert float(rng.find("Min").get("Value")) == pytest.approx(lo)
        assert float(rng.find("Max").get("Value")) == pytest.approx(hi)
        assert lo <= float(param.find("Manual").get("Value")) <= hi


def check_rack(rack: etree._Element, version: int, top: bool) -> None:
    assert rack.tag == facts.ADG_ROOT_CHILD
    assert ("Id" in rack.attrib) != top, "only a nested rack carries an Id"
    assert [c.tag for c in rack] == facts.GROUPDEVICEPRESET_CHILDREN
    device = rack.find("Device/InstrumentGroupDevice")
    children = [c.tag for c in device]
    assert is_subsequence(children, facts.INSTRUMENTGROUPDEVICE_CHILDREN_12), children
    for i in range(16):   # all 16 macro slots, always
        assert f"MacroControls.{i}" in children and f"MacroDisplayNames.{i}" in children
    for chain in rack.find("BranchPresets"):
        assert chain.tag == "InstrumentBranchPreset"
        assert [c.tag for c in chain] == facts.INSTRUMENTBRANCHPRESET_CHILDREN
        assert [c.tag for c in chain.find("ZoneSettings")] == facts.ZONESETTINGS_CHILDREN
        mixer = chain.find("MixerPreset/AbletonDevicePreset")
        assert [c.tag for c in mixer] == facts.ABLETONDEVICEPRESET_CHILDREN
        mixer_device = mixer.find("Device")[0]
        assert mixer_device.tag == facts.MIXER_DEVICE
        assert is_subsequence([c.tag for c in mixer_device], facts.AUDIOBRANCHMIXERDEVICE_CHILDREN_12)
        assert (mixer_device.find("MpePitchBendUsesTuning") is not None) == (version >= 12)
        rng = mixer_device.find("Volume/MidiControllerRange")
        assert (float(rng.find("Min").get("Value")), float(rng.find("Max").get("Value"))) == \
            pytest.approx(facts.MIXER_VOLUME_RANGE)
        (preset,) = list(chain.find("DevicePresets"))
        if preset.tag == "AbletonDevicePreset":
            assert [c.tag for c in preset] == facts.ABLETONDEVICEPRESET_CHILDREN
            sampler = preset.find("Device/MultiSampler")
            assert sampler.get("Id") is not None
            check_sampler(sampler, version)
        else:
            check_rack(preset, version, top=False)


def macro_names(device) -> list[str]:
    return [device.find(f"MacroDisplayNames.{i}").get("Value") for i in range(16)]


def mapped_macro(param) -> int | None:
    km = param.find("KeyMidi")
    return None if km is None else int(km.find("NoteOrController").get("Value"))


def chain_gain(selector_range, value: float) -> float:
    lo, hi, cf_lo, cf_hi = (float(selector_range.find(t).get("Value")) for t in facts.RANGE_CHILDREN)
    if value < lo or value > hi:
        return 0.0
    if value < cf_lo:
        return (value - lo) / (cf_lo - lo)
    if value > cf_hi:
        return (hi - value) / (hi - cf_hi)
    return 1.0


# ------------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("version", [11, 12])
def test_line_rack_and_device_preset_match_live_structure(line, version):
    inst, folder = line
    docs, names = written(inst, folder, version)
    assert names == ["tiny.adg", "tiny.adv"]
    for root in docs.values():
        check_live_invariants(root, folder, version)
    # .adv: the Sampler directly under <Ableton>, without Id
    adv = docs[".adv"]
    assert [c.tag for c in adv] == [facts.ADV_ROOT_CHILD] and "Id" not in adv[0].attrib
    check_sampler(adv[0], version)
    # .adg: a rack with one chain per blend point
    rack = docs[".adg"][0]
    check_rack(rack, version, top=True)
    assert len(rack.find("BranchPresets")) == len(inst.groups)


def test_blend_macro_drives_crossfading_chain_selector(line):
    inst, folder = line
    rack = written(inst, folder)[0][".adg"][0]
    device = rack.find("Device/InstrumentGroupDevice")
    assert macro_names(device)[0] == "Blend"
    assert mapped_macro(device.find("ChainSelector")) == 0
    rng = device.find("ChainSelector/MidiControllerRange")
    assert (float(rng.find("Min").get("Value")), float(rng.find("Max").get("Value"))) == facts.CHAIN_SELECTOR_RANGE
    assert float(device.find("MacroControls.0/Manual").get("Value")) == 0   # starts on blend point 0
    chains = list(rack.find("BranchPresets"))
    assert [c.find("Name").get("Value") for c in chains] == [g.label for g in inst.groups]
    ranges = [c.find("BranchSelectorRange") for c in chains]
    centres = [0, 64, 127]
    for i, centre in enumerate(centres):   # each point alone at its own knob position
        gains = [chain_gain(r, centre) for r in ranges]
        assert gains[i] == 1.0 and sum(gains) == 1.0
    for value in range(128):               # neighbours overlap: never a silent gap, at most two chains
        gains = [chain_gain(r, value) for r in ranges]
        assert sum(g > 0 for g in gains) <= 2 and sum(gains) == pytest.approx(1.0)


def test_zones_roots_layers_loops_and_envelope_survive(line):
    inst, folder = line
    rack = written(inst, folder)[0][".adg"][0]
    for chain, group in zip(rack.find("BranchPresets"), inst.groups):
        sampler = chain.find("DevicePresets/AbletonDevicePreset/Device/MultiSampler")
        parts = {p.find("SampleRef/FileRef/RelativePath").get("Value"): p for p in sampler.iter("MultiSamplePart")}
        assert len(parts) == len(group.zones)
        for zone in group.zones:
            part = parts[zone.sample.path]
            key, vel = part.find("KeyRange"), part.find("VelocityRange")
            assert (int(key.find("Min").get("Value")), int(key.find("Max").get("Value"))) == (zone.lokey, zone.hikey)
            assert (int(vel.find("Min").get("Value")), int(vel.find("Max").get("Value"))) == (zone.lovel, zone.hivel)
            assert int(part.find("RootKey").get("Value")) == zone.root_key
            loop = part.find("SustainLoop")
            assert int(loop.find("Mode").get("Value")) == 1
            assert (int(loop.find("Start").get("Value")), int(loop.find("End").get("Value"))) == \
                (zone.sample.loop.start, zone.sample.loop.end)
            assert int(part.find("ReleaseLoop/Mode").get("Value")) == ableton.RELEASE_PLAY_TO_END
        env = sampler.find("VolumeAndPan/Envelope")
        assert float(env.find("ReleaseTime/Manual").get("Value")) == pytest.approx(1000 * inst.envelope.release)
        assert float(env.find("AttackTime/Manual").get("Value")) == pytest.approx(1000 * inst.envelope.attack)
        assert float(env.find("SustainLevel/Manual").get("Value")) == pytest.approx(inst.envelope.sustain)


def test_round_robin_native_in_live12_selector_slices_in_live11(line):
    inst, folder = line
    s12 = written(inst, folder, 12)[0][".adv"][0]
    assert s12.find("Player/MultiSampleMap/RoundRobin").get("Value") == "true"
    assert s12.find("Player/MultiSampleMap/RoundRobinMode").get("Value") == facts.ROUND_ROBIN_MODE_FORWARD
    for part in s12.iter("MultiSamplePart"):
        sel = part.find("SelectorRange")
        assert (sel.find("Min").get("Value"), sel.find("Max").get("Value")) == ("0", "127")
    s11 = written(inst, folder, 11)[0][".adv"][0]
    slices = {}
    for part in s11.iter("MultiSamplePart"):
        rr = int(part.find("Name").get("Value").rsplit("_rr", 1)[1])
        sel = part.find("SelectorRange")
        slices.setdefault(rr, set()).add((int(sel.find("Min").get("Value")), int(sel.find("Max").get("Value"))))
    assert slices == {1: {(0, 63)}, 2: {(64, 127)}}    # cycle 1 sounds at the default selector (0)


def test_four_corner_grid_nests_racks_with_x_and_y_macros(square):
    inst, folder = square
    docs, _ = written(inst, folder)
    check_live_invariants(docs[".adg"], folder, 12)
    outer = docs[".adg"][0]
    check_rack(outer, 12, top=True)
    device = outer.find("Device/InstrumentGroupDevice")
    assert macro_names(device)[:2] == ["X", "Y"]
    assert mapped_macro(device.find("ChainSelector")) == 1            # Y picks the row
    rows = list(outer.find("BranchPresets"))
    assert len(rows) == 2
    seen = set()
    for j, row in enumerate(rows):
        inner = row.find("DevicePresets/GroupDevicePreset")
        assert inner is not None and inner.get("Id") == "0"
        inner_device = inner.find("Device/InstrumentGroupDevice")
        assert mapped_macro(inner_device.find("MacroControls.0")) == 0   # follows outer X
        assert mapped_macro(inner_device.find("ChainSelector")) == 0
        assert macro_names(inner_device)[0] == "X"
        for i, chain in enumerate(inner.find("BranchPresets")):
            seen.add(chain.find("Name").get("Value"))
            assert chain_gain(chain.find("BranchSelectorRange"), 127 * i) == 1.0
        assert chain_gain(row.find("BranchSelectorRange"), 127 * j) == 1.0
    assert seen == {g.label for g in inst.groups}
    # the .adv is one corner (both equally near the centre: the first)
    assert docs[".adv"][0].find("UserName").get("Value") == "tiny (corner 0)"


def test_tuning_goes_to_root_key_and_detune(line):
    inst, folder = line
    group = inst.groups[0]
    zone = group.zones[0]
    sample = dataclasses.replace(zone.sample, tune_cents=-130.0)   # needs 1.3 semitones down
    zones = (dataclasses.replace(zone, sample=sample),) + group.zones[1:]
    detuned = dataclasses.replace(inst, groups=(dataclasses.replace(group, zones=zones),))
    root = etree.fromstring(ableton.render_device_preset(detuned, folder))
    part = next(p for p in root.iter("MultiSamplePart")
                if p.find("SampleRef/FileRef/RelativePath").get("Value") == zone.sample.path)
    # RootKey + 1 semitone and Detune -30 cents: plays 130 cents lower than the sample's pitch
    assert int(part.find("RootKey").get("Value")) == zone.root_key + 1
    assert int(part.find("Detune").get("Value")) == -30


def test_output_is_deterministic_and_registered(line, tmp_path):
    inst, folder = line
    first = [(folder / n).read_bytes() for n in ableton.write(inst, folder)]
    second = [(folder / n).read_bytes() for n in exporter("ableton")(inst, folder)]
    assert first == second


def test_bad_version_and_bad_paths_are_clear_errors(line):
    inst, folder = line
    with pytest.raises(ExportError, match="Live version"):
        ableton.write(inst, folder, live_version=10)
    group = inst.groups[0]
    zone = dataclasses.replace(group.zones[0], sample=dataclasses.replace(group.zones[0].sample,
                                                                        path="../outside.wav"))
    bad = dataclasses.replace(inst, groups=(dataclasses.replace(group, zones=(zone,)),))
    with pytest.raises(ExportError, match="not relative"):
        ableton.render_rack(bad, folder)
