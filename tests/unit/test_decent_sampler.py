"""Decent Sampler exporter. Decent Sampler cannot run here and publishes no schema, so the preset is checked
against tests/support/data/decent_sampler.xsd (written from the Developers Guide's tables), against what the player's
own "Validate Preset" tool checks (well-formed XML; every path found relative to the preset, with exactly the
capitalisation on disk), and the blend knob's translation tables are evaluated as the guide defines them.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import pytest
import soundfile as sf
from support import DATA
from lxml import etree

from dawexport.errors import ExportError
from dawexport.export import decent_sampler, exporter
from dawexport.instrument import BlendAxis

SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "decent_sampler.xsd")))


@pytest.fixture(scope="module")
def line(test_instrument):
    inst, folder = test_instrument("ds_line", blend_points=3, round_robins=2, seconds=0.3)
    names = decent_sampler.write(inst, folder)
    return inst, folder, folder / names[0]


@pytest.fixture(scope="module")
def square(corner_square):
    inst, folder = corner_square("ds_square", (BlendAxis("X", 20, 2), BlendAxis("Y", 21, 2)), seconds=0.2)
    return inst, folder, folder / exporter("decent_sampler")(inst, folder)[0]


def load(path: Path) -> etree._Element:
    return etree.parse(str(path)).getroot()


def table(binding) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in binding.get("translationTable").split(";")]


def lookup(points, x: float) -> float:
    """The guide's table translation: straight lines between the given (input, output) points."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[0][1] if x < points[0][0] else points[-1][1]


def exact_case_exists(folder: Path, rel: str) -> bool:
    """Decent Sampler's Validate Preset: each path component found with exactly this capitalisation."""
    here = folder
    for part in rel.split("/"):
        if part not in os.listdir(here):
            return False
        here = here / part
    return here.is_file()


def test_preset_validates_against_the_documented_schema(line, square):
    for _, _, path in (line, square):
        root = load(path)
        assert SCHEMA.validate(root), SCHEMA.error_log
        assert root.tag == "DecentSampler" and root.get("minVersion") == "1.0.0"
        assert [c.tag for c in root] in (["ui", "groups", "effects", "midi"], ["ui", "tags", "groups", "effects", "midi"])


def test_validate_preset_checks_pass(line):
    inst, folder, path = line
    root = load(path)
    paths = [s.get("path") for s in root.iter("sample")]
    assert paths and all(exact_case_exists(path.parent, p) for p in paths)
    assert not any(p.startswith("/") or "\\" in p for p in paths)


def test_samples_keep_mapping_loops_and_round_robin(line):
    inst, folder, path = line
    root = load(path)
    groups = root.findall("groups/group")
    assert [g.get("name") for g in groups] == [g.label for g in inst.groups]
    for element, group in zip(groups, inst.groups):
        assert element.get("seqMode") == "round_robin" and element.get("seqLength") == "2"
        by_path = {s.get("path"): s for s in element.findall("sample")}
        assert len(by_path) == len(group.zones)
        for zone in group.zones:
            s = by_path[zone.sample.path]
            assert (int(s.get("loNote")), int(s.get("hiNote")), int(s.get("rootNote"))) == \
                (zone.lokey, zone.hikey, zone.root_key)
            assert (int(s.get("loVel")), int(s.get("hiVel"))) == (zone.lovel, zone.hivel)
            assert int(s.get("seqPosition")) == zone.round_robin
            assert s.get("loopEnabled") == "true"
            start, end = int(s.get("loopStart")), int(s.get("loopEnd"))
            frames = sf.info(str(folder / zone.sample.path)).frames
            assert (start, end) == (zone.sample.loop.start, zone.sample.loop.end) and 0 <= start < end < frames
    env = root.find("groups")
    # the Developers Guide (the-groups-element.md) documents ampVelTrack on <group>, not on <groups>
    assert env.get("ampVelTrack") is None
    assert {g.get("ampVelTrack") for g in groups} == {"0.25"}    # two velocity layers: a little touch
    assert float(env.get("release")) == pytest.approx(inst.envelope.release)
    assert float(env.get("attack")) == pytest.approx(inst.envelope.attack)


def test_blend_knob_and_cc_crossfade_the_groups(line):
    inst, _, path = line
    root = load(path)
    knob = root.find("ui/tab/labeled-knob")
    assert knob.get("label") == "Blend"
    (cc,) = root.findall("midi/cc")
    assert int(cc.get("number")) == inst.axes[0].cc
    cc_binding = cc.find("binding")
    assert (cc_binding.get("level"), cc_binding.get("type"), cc_binding.get("parameter")) == ("ui", "control", "VALUE")
    assert root.find("ui/tab")[int(cc_binding.get("position"))] is knob
    bindings = knob.findall("binding")
    assert [(b.get("level"), int(b.get("position")), b.get("parameter")) for b in bindings] == \
        [("group", i, "AMP_VOLUME") for i in range(len(inst.groups))]
    tables = [table(b) for b in bindings]
    for step in range(128):
        gains = [lookup(t, step / 127) for t in tables]
        assert sum(g * g for g in gains) == pytest.approx(1.0, abs=0.03), step   # equal power
        assert sum(g > 1e-6 for g in gains) <= 2
    for i, centre in enumerate((0, 64, 127)):
        gains = [lookup(t, centre / 127) for t in tables]
        assert gains[i] == pytest.approx(1.0) and sum(gains) == pytest.approx(1.0)
    # the knob starts at 0 and the groups' own volumes agree with the tables there
    assert float(knob.get("value")) == 0
    assert [float(g.get("volume")) for g in root.findall("groups/group")] == [lookup(t, 0) for t in tables]


def test_square_grid_multiplies_group_and_row_tag_volumes(square):
    inst, _, path = square
    root = load(path)
    x_knob, y_knob = root.findall("ui/tab/labeled-knob")[:2]
    assert (x_knob.get("label"), y_knob.get("label")) == ("X", "Y")
    assert [int(c.get("number")) for c in root.findall("midi/cc")] == [20, 21]
    assert {b.get("level") for b in y_knob.findall("binding")} == {"tag"}
    rows = {b.get("identifier"): table(b) for b in y_knob.findall("binding")}
    columns = [table(b) for b in x_knob.findall("binding")]
    groups = root.findall("groups/group")
    for x, y in ((0, 0), (1, 0), (0, 1), (1, 1)):
        gains = [lookup(columns[n], x) * lookup(rows[g.get("tags")], y) for n, g in enumerate(groups)]
        assert gains == pytest.approx([1.0 if n == x + 2 * y else 0.0 for n in range(4)])
    assert {t.get("name"): float(t.get("volume")) for t in root.findall("tags/tag")} == \
        {"blend_row_0": 1.0, "blend_row_1": 0.0}


def test_crossfade_gain_is_equal_power():
    for points in (2, 3, 5):
        for value in range(128):
            power = sum(decent_sampler.crossfade_gain(points, i, value) ** 2 for i in range(points))
            assert math.isclose(power, 1.0, abs_tol=1e-9)


def test_bad_path_and_determinism(line, tmp_path):
    inst, folder, path = line
    assert decent_sampler.render_dspreset(inst) == path.read_text(encoding="utf-8")
    group = inst.groups[0]
    zone = dataclasses.replace(group.zones[0], sample=dataclasses.replace(group.zones[0].sample, path="/abs.wav"))
    with pytest.raises(ExportError, match="not relative"):
        decent_sampler.render_dspreset(dataclasses.replace(inst, groups=(dataclasses.replace(group, zones=(zone,)),)))
