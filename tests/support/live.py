"""Checks that an Ableton Live preset has the structure of presets Live itself saved (`data/ableton_facts.py`),
and passes the checks Live makes on load: unique sibling Ids, zone bounds, samples present and in range."""
from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
from lxml import etree

from support.data import ableton_facts as facts

RANGE_TAGS = ("KeyRange", "VelocityRange", "SelectorRange", "BranchSelectorRange")


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
        check_part(part, folder, version)
    # version-specific elements
    for tag in facts.MULTISAMPLER_ONLY_12 | facts.MULTISAMPLEMAP_ONLY_12:
        assert (next(root.iter(tag), None) is not None) == (version >= 12), tag


def check_part(part: etree._Element, folder: Path, version: int) -> None:
    children = [c.tag for c in part]
    required = [t for t in facts.MULTISAMPLEPART_CHILDREN if t not in facts.MULTISAMPLEPART_OPTIONAL]
    assert [t for t in children if t in required] == required
    assert is_subsequence(children, facts.MULTISAMPLEPART_CHILDREN)
    assert set(part.attrib) <= facts.MULTISAMPLEPART_ATTRIBUTES
    ref = part.find("SampleRef")
    assert [c.tag for c in ref] == [t for t in facts.SAMPLEREF_CHILDREN
                                    if version >= 12 or t not in facts.SAMPLEREF_ONLY_12]
    file_ref = ref.find("FileRef")
    assert [c.tag for c in file_ref] == facts.FILEREF_CHILDREN
    assert file_ref.find("RelativePathType").get("Value") == facts.RELATIVE_PATH_TYPE_DOCUMENT
    assert file_ref.find("Type").get("Value") == facts.SAMPLE_FILEREF_TYPE
    rel = file_ref.find("RelativePath").get("Value")
    assert not rel.startswith("/") and ".." not in rel.split("/")
    path = folder / rel
    assert path.is_file(), f"{rel} is missing"
    assert int(file_ref.find("OriginalFileSize").get("Value")) == path.stat().st_size
    assert int(ref.find("LastModDate").get("Value")) == int(path.stat().st_mtime) > 0
    absolute = file_ref.find("Path").get("Value")     # absolute, '/'-separated, the same file
    assert "\\" not in absolute and Path(absolute).is_absolute()
    assert Path(absolute).resolve() == path.resolve()
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
