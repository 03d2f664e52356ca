"""Bitwig .multisample exporter, validated against the format's published XSD (tests/support/data/bitwig_multisample.xsd,
transcribed from the bitwig/multisample README; the same schema accepts the Bitwig-saved "Toy Xylophone"
example of that repository, whose sample-stop and loop stop are the file length, i.e. exclusive ends).
"""
from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from support import DATA
from support.helpers import make_test_instrument
from lxml import etree

from dawexport.errors import ExportError
from dawexport.export import bitwig, exporter
from dawexport.instrument import BlendAxis, BlendGroup

SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "bitwig_multisample.xsd")))


@pytest.fixture(scope="module")
def line(test_instrument):
    inst, folder = test_instrument("bitwig_line", name="cat & flute", blend_points=3, round_robins=2, seconds=0.3)
    return inst, folder, bitwig.write(inst, folder)


def open_archive(path: Path):
    archive = zipfile.ZipFile(path)
    assert archive.testzip() is None
    xml = etree.fromstring(archive.read("multisample.xml"))
    return archive, xml


def select_gain(select, value: int) -> float:
    lo, hi = int(select.get("low")), int(select.get("high"))
    lo_fade, hi_fade = int(select.get("low-fade")), int(select.get("high-fade"))
    if not lo <= value <= hi:
        return 0.0
    if lo_fade and value < lo + lo_fade:
        return (value - lo) / lo_fade
    if hi_fade and value > hi - hi_fade:
        return (hi - value) / hi_fade
    return 1.0


def test_archive_validates_against_bitwigs_xsd(line):
    inst, folder, names = line
    assert names == ["cat & flute.multisample"]
    archive, xml = open_archive(folder / names[0])
    assert SCHEMA.validate(xml), SCHEMA.error_log
    assert xml.get("name") == "cat & flute"
    infos = archive.infolist()
    assert infos[0].filename == "multisample.xml"
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos), "entries must be STORED for streaming"
    assert all("/" not in i.filename for i in infos)


def test_every_sample_is_inside_and_mapped_faithfully(line):
    inst, folder, names = line
    archive, xml = open_archive(folder / names[0])
    entries = set(archive.namelist())
    mapped = xml.findall("sample")
    zones = {(Path(z.sample.path).name, g.label): z for g in inst.groups for z in g.zones}
    groups = [g.get("name") for g in xml.findall("group")]
    assert groups == [g.label for g in inst.groups]
    assert len(mapped) == len(zones)
    for element in mapped:
        name = element.get("file")
        assert name in entries
        data, _ = sf.read(io.BytesIO(archive.read(name)), always_2d=True)
        zone = zones[(name, groups[int(element.get("group"))])]
        assert float(element.get("sample-stop")) == data.shape[0] == zone.sample.frames
        key, vel, loop = element.find("key"), element.find("velocity"), element.find("loop")
        assert (int(key.get("low")), int(key.get("high")), int(key.get("root"))) == \
            (zone.lokey, zone.hikey, zone.root_key)
        assert (int(vel.get("low")), int(vel.get("high"))) == (zone.lovel, zone.hivel)
        assert loop.get("mode") == "loop"
        start, stop = float(loop.get("start")), float(loop.get("stop"))
        assert (start, stop) == (zone.sample.loop.start, zone.sample.loop.end + 1)
        assert 0 <= start < stop <= data.shape[0]
        assert element.get("zone-logic") == "round-robin"


def test_select_axis_crossfades_the_blend_points(line):
    inst, folder, names = line
    _, xml = open_archive(folder / names[0])
    by_group = {}
    for element in xml.findall("sample"):
        by_group.setdefault(int(element.get("group")), element.find("select"))
    for value in range(128):
        gains = [select_gain(by_group[g], value) for g in sorted(by_group)]
        assert sum(gains) == pytest.approx(1.0) and sum(g > 0 for g in gains) <= 2
    for g, centre in enumerate((0, 64, 127)):
        assert select_gain(by_group[g], centre) == 1.0


def test_square_grid_writes_one_archive_per_row(tmp_path):
    base = make_test_instrument(tmp_path, blend_points=4, keys=(60,), layers=1, seconds=0.2, loop=False)
    groups = tuple(BlendGroup(index=g.index, label=f"corner {g.index}", position=(g.index % 2, g.index // 2),
                              grid_index=(g.index % 2, g.index // 2), weights={}, zones=g.zones)
                   for g in base.groups)
    inst = dataclasses.replace(base, groups=groups, axes=(BlendAxis("X", 1, 2), BlendAxis("Y", 2, 2)))
    names = exporter("bitwig")(inst, tmp_path)
    assert names == ["tiny.multisample", "tiny_Y 2.multisample"]
    for j, name in enumerate(names):
        archive, xml = open_archive(tmp_path / name)
        assert SCHEMA.validate(xml), SCHEMA.error_log
        assert [g.get("name") for g in xml.findall("group")] == [f"corner {2 * j}", f"corner {2 * j + 1}"]
        assert all(s.find("loop").get("mode") == "off" for s in xml.findall("sample"))
        assert all(s.get("zone-logic") == "always-play" for s in xml.findall("sample"))


def test_deterministic_bytes(line):
    inst, folder, names = line
    before = (folder / names[0]).read_bytes()
    bitwig.write(inst, folder)
    assert (folder / names[0]).read_bytes() == before


def test_missing_sample_leaves_no_archive(line, tmp_path):
    inst, _, _ = line
    with pytest.raises(ExportError, match="missing"):
        bitwig.write(inst, tmp_path)
    assert list(tmp_path.iterdir()) == []
