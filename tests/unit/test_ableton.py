"""Ableton Live exporter: structure compared with presets Live saved (tests/support/data/ableton_facts.py), plus the
checks Live itself makes on load (gzip, XML, unique sibling Ids, zone bounds, samples present and in range).

Live cannot run here, so every check is against facts observed in Live-saved files, not against our reader.
"""
from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest
from support.data import ableton_facts as facts
from support.live import check_live_invariants, check_rack, check_sampler
from lxml import etree

from dawexport.errors import ExportError
from dawexport.export import ableton, exporter
from dawexport.instrument import BlendAxis



# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def line(test_instrument):
    """3 blend points on one knob, 2 keys x 2 velocity layers x 2 round robins."""
    inst, folder = test_instrument("ableton_line", blend_points=3, round_robins=2, seconds=0.4)
    return inst, folder


@pytest.fixture(scope="module")
def square(corner_square):
    """A 4-corner grid: 2 x 2 blend points on two knobs (X, Y)."""
    axes = (BlendAxis(name="X", cc=1, points=2), BlendAxis(name="Y", cc=2, points=2))
    return corner_square("ableton_square", axes, seconds=0.3)


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
            assert part.find("ReleaseLoop/Mode").get("Value") == facts.LOOP_RELEASE_PLAY_ON   # sustain loop
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


@pytest.mark.parametrize("loop_mode, sustain_mode, release_mode", [
    ("sustain", facts.SUSTAIN_LOOP_FORWARD, facts.LOOP_RELEASE_PLAY_ON),
    ("continuous", facts.SUSTAIN_LOOP_FORWARD, facts.LOOP_RELEASE_OFF),
    ("one_shot", facts.SUSTAIN_LOOP_OFF, facts.LOOP_RELEASE_OFF),
    ("none", facts.SUSTAIN_LOOP_OFF, facts.LOOP_RELEASE_OFF),
])
def test_every_loop_mode_gets_the_release_mode_live_means(line, loop_mode, sustain_mode, release_mode):
    inst, folder = line
    root = etree.fromstring(ableton.render_device_preset(dataclasses.replace(inst, loop_mode=loop_mode), folder))
    parts = list(root.iter("MultiSamplePart"))
    assert parts
    for part in parts:
        assert part.find("SustainLoop/Mode").get("Value") == sustain_mode
        assert part.find("ReleaseLoop/Mode").get("Value") == release_mode


def test_default_is_live_11_which_live_12_also_opens(line, tmp_path):
    inst, folder = line
    root = etree.fromstring(ableton.render_rack(inst, folder))
    assert root.get("MinorVersion") == facts.ROOT[11]["MinorVersion"]
    assert next(root.iter("RoundRobin"), None) is None
    from dawexport.spec import OutputSpec
    assert OutputSpec().live_version == 11 == ableton.DEFAULT_LIVE_VERSION
    with pytest.raises(ValueError):
        OutputSpec(live_version=10)


def test_sample_paths_are_absolute_at_build_time_and_relative_after_a_move(line, tmp_path):
    """Path points where the folder is published (``location``); moved elsewhere, the relative path, read
    against the preset's own folder as Live does for RelativePathType 1, still finds every sample."""
    import shutil
    inst, folder = line
    staging = tmp_path / ".staging"
    shutil.copytree(folder, staging)
    final = tmp_path / "published"
    names = ableton.write(inst, staging, live_version=11, location=final)
    staging.rename(final)
    check_live_invariants(load(final / names[0]), final, 11)          # absolute paths point at `final`
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(final, moved)
    shutil.rmtree(final)
    for name in names:
        root = load(moved / name)
        for ref in root.iter("FileRef"):
            if ref.find("RelativePathType").get("Value") != facts.RELATIVE_PATH_TYPE_DOCUMENT:
                continue
            assert not Path(ref.find("Path").get("Value")).exists()       # the absolute path is gone ...
            assert (moved / ref.find("RelativePath").get("Value")).is_file()   # ... the relative one holds
