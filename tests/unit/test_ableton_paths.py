"""Round trip of every element and attribute a Live-saved Sampler, Instrument Rack and Drum Rack has, per Live
version: the element paths of the presets dawexport writes are compared with the paths of presets Live 11 and
Live 12 saved (tests/support/data/ableton_paths/, README there). Every path Live wrote must be in ours; for Live 11,
which refuses elements it does not know, ours may hold nothing else.
"""
from __future__ import annotations

import dataclasses
import gzip
import re
from pathlib import Path

import pytest
from lxml import etree
from support.data import ableton_facts as facts
from support.helpers import make_test_instrument

from dawexport.export import ableton

PATHS = Path(__file__).parent.parent / "support" / "data" / "ableton_paths"
STOP = {"KeyMidi", "MacroSnapshots"}                     # what a preset holds, not what Live knows
NOT_DESCENDED = {"SourceContext", "DevicePresets", "PresetRef", "SlicePoints", "WarpMarkers"}
LIVE_12_ONLY = facts.MULTISAMPLER_ONLY_12 | facts.MULTISAMPLEMAP_ONLY_12 | facts.DRUMGROUPDEVICE_ONLY_12 | {
    "MpeSettings", "InitUpdateAreSlicesFromOnsetsEditableAfterRead", "InitialSlicePointsFromOnsets",
    "AreSlicesFromOnsetsEditable", "SamplesToAutoWarp"}


def facts_of(name: str) -> set[str]:
    return set((PATHS / f"{name}.txt").read_text().split())


def element_paths(element, zones_apart: bool = True) -> set[str]:
    """The paths of ``element`` and everything in it, as tests/support/data/ableton_paths/README.md defines them."""
    found: set[str] = set()

    def walk(e, prefix: str) -> None:
        if e.tag in STOP or (zones_apart and e.tag == "MultiSamplePart" and prefix):
            return
        path = f"{prefix}/{re.sub(r'[.][0-9]+$', '.N', e.tag)}"
        found.add(path)
        found.update(f"{path}/@{name}" for name in e.attrib)
        if e.tag in NOT_DESCENDED or (e.tag == "Value" and prefix.endswith(("/Slot", "/LastPresetRef"))):
            return
        for child in e:
            walk(child, path)

    walk(element, "")
    found.discard("/MultiSampler/@Id")
    return found


def documents(tmp_path_factory, version: int) -> dict[str, etree._Element]:
    folder = tmp_path_factory.mktemp(f"paths{version}")
    inst = make_test_instrument(folder, blend_points=3, round_robins=2, seconds=0.3)
    names = ableton.write(inst, folder, live_version=version)
    kit_folder = tmp_path_factory.mktemp(f"kitpaths{version}")
    kit = make_test_instrument(kit_folder, keys=(36, 38), zone_width=1, layers=1, blend_points=1, round_robins=2,
                               seconds=0.2, loop=False)
    kit = dataclasses.replace(kit, kind="kit", loop_mode="one_shot")
    kit_names = ableton.write(kit, kit_folder, live_version=version)
    load = lambda path: etree.fromstring(gzip.decompress(path.read_bytes()))
    return {"rack": load(folder / names[0]), "adv": load(folder / names[1]), "drum": load(kit_folder / kit_names[0])}


@pytest.fixture(scope="module", params=[11, 12])
def written(request, tmp_path_factory):
    return request.param, documents(tmp_path_factory, request.param)


def ours(docs, kind: str) -> set[str]:
    """Paths of every Sampler, zone or top rack of one kind in the written documents."""
    if kind == "sampler":
        return set().union(*(element_paths(e) for d in docs.values() for e in d.iter("MultiSampler")))
    if kind == "sample_part":
        return set().union(*(element_paths(e) for d in docs.values() for e in d.iter("MultiSamplePart")))
    return element_paths(docs["rack" if kind == "instrument_rack" else "drum"][0])


def live_paths(version: int, kind: str) -> set[str]:
    if version == 11 and kind == "drum_rack":     # no Live 11 Drum Rack found: Live 12's without its 12-only parts
        return {p for p in facts_of("live12_drum_rack")
                if not any(part.lstrip("@") in LIVE_12_ONLY for part in p.split("/"))}
    return facts_of(f"live{version}_{kind}")


@pytest.mark.parametrize("kind", ["sampler", "sample_part", "instrument_rack", "drum_rack"])
def test_every_path_live_wrote_is_written(written, kind):
    version, docs = written
    missing = live_paths(version, kind) - ours(docs, kind)
    assert not missing, sorted(missing)[:20]


def test_live_11_files_hold_nothing_live_11_does_not_know(written):
    version, docs = written
    if version != 11:
        pytest.skip("Live 12 reads what it does not know (tests/support/data/ableton_facts.py)")
    known = set().union(*(live_paths(11, kind) for kind in ("sampler", "sample_part", "instrument_rack",
                                                             "drum_rack")))
    # Live 11.0 writes OriginalCrc in every FileRef (live11_instrument_rack); the zone template lacks it
    known |= {"/MultiSamplePart/SampleRef/FileRef/OriginalCrc", "/MultiSamplePart/SampleRef/FileRef/OriginalCrc/@Value"}
    unknown = set()
    for kind in ("sampler", "sample_part", "instrument_rack", "drum_rack"):
        unknown |= ours(docs, kind) - known
    assert not unknown, sorted(unknown)[:20]
    for doc in docs.values():           # and none of the elements only Live 12 writes, anywhere
        assert not {e.tag for e in doc.iter()} & LIVE_12_ONLY


def test_the_facts_differ_between_versions_only_where_live_12_added_elements():
    """A check on the facts themselves: the Live 12 Sampler holds the Live 11 one plus 12-only elements."""
    s11, s12 = facts_of("live11_sampler"), facts_of("live12_sampler")
    added = {p for p in s12 - s11}
    assert added and all(any(part.lstrip("@") in LIVE_12_ONLY for part in p.split("/")) for p in added), added
    assert facts_of("live11_instrument_rack") - facts_of("live12_instrument_rack") <= {
        "/GroupDevicePreset/BranchPresets/InstrumentBranchPreset/DevicePresets/VstPreset"}
