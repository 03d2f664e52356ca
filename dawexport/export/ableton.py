"""Ableton Live exporter: a Sampler device preset (.adv) and an Instrument Rack (.adg) that blends.

Writes, at the instrument folder's root (beside ``samples/``):

* ``<name>.adg`` — an Instrument Rack with one Sampler chain per blend point. Neighbouring chains
  crossfade through their chain-select zones (absolute 0..127 bounds from `axis_crossfades`), and
  macro 1, named after the blend axis ("Blend"), drives the chain selector: the NSynth-instrument
  experience as a plain Live preset. A 2-D grid (four corners or more) nests racks: the outer rack
  has one chain per row (Y) holding an inner rack with one Sampler chain per column (X); outer
  macro 1 is X and drives every inner rack (inner macro 1 and inner chain selector), outer macro 2
  is Y and drives the outer chain selector.
* ``<name>.adv`` — one Sampler preset for the blend point nearest the centre of the grid (the most
  "in between" sound; the first point when two are equally near), for users who want a single device.

A grain kit (``instrument.kind == "kit"``) becomes a Drum Rack instead: ``<name>.adg`` holds one pad per
key (``DrumBranchPreset``, ascending from the lowest key as Live lists them), each pad a Sampler with that
key's velocity layers; the pad sends ``SENDING_NOTE`` to its Sampler, whose zones span every key and are
rooted on that note, so each pad plays its sample at the pitch it was rendered at. A pad's
``ZoneSettings/ReceivingNote`` holds 128 minus its MIDI note (see tests/support/data/ableton_facts.py for why).
The ``.adv`` is the whole kit in one Sampler, a zone per key.

Every Sampler keeps key zones, root keys and tuning (``RootKey`` + ``Detune`` cents), velocity layers,
sustain loops (``SustainLoop`` Mode 1; Release Mode 0 "->|", play on to the end, for ``sustain``; 3
"OFF", keep looping, for ``continuous``), the amp envelope and round robin: Live 12's native round-robin flag
(zones overlapping in key and velocity are cycled), or for Live 11, which has none, the cycles are
spread across the sample-selector axis (only the first cycle sounds at the default selector position).
Devices are complete: every block a Sampler, rack or chain mixer saved by that Live version has, the
unused sections off and empty (tests/data/ableton_paths/ lists them; tests/test_ableton_paths.py checks).

Sample references are written as Live writes a sample beside a preset: ``RelativePathType`` 1 with the
path relative to the preset's folder (``samples/x.wav``), ``Path`` absolute to where the folder is at
build time, the file's size and ``LastModDate`` (its modification time). When the absolute path is gone
(the folder was moved, zipped or copied to another computer) Live resolves the relative one against the
preset's own folder, as it does for a moved Live Project (tests/support/data/ableton_facts.py, FILEREF_*). Files
are gzip-compressed XML rendered from templates/ableton/, with a fixed gzip timestamp.

    write(instrument, Path("build/cat_flute"))   # -> ['cat_flute.adg', 'cat_flute.adv']  (Live 11 and 12)
    write(instrument, Path("build/cat_flute"), live_version=12)   # Live 12 only
"""
from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path, PurePosixPath

from dawexport.errors import ExportError
from dawexport.instrument import BlendGroup, Instrument, Zone, axis_crossfades
from dawexport.export.common import (check_instrument, check_loop, clamp, decimal, file_stem, parse_xml,
                                     relative_sample_path, xml_attr, zone_range_error)
from dawexport.templating import render_template

# Root attributes of presets Live saved (tests/support/data/ableton_facts.py says where each was observed).
# OverwriteProtectionNumber follows the version: 0xC02 = 12.2, 0xB04 as in the Live 11 presets seen.
LIVE_VERSIONS = {
    11: {"major": 11, "minor_version": "11.0_11300", "schema_change_count": "3",
         "creator": "Ableton Live 11.3.22", "revision": "86c4913d7978d564614e61d7105424edb3d2ee4b",
         "overwrite_protection": "2820"},
    12: {"major": 12, "minor_version": "12.0_12203", "schema_change_count": "3",
         "creator": "Ableton Live 12.2.7", "revision": "828a8aa814bf84bb81588593befeb896dfbd29df",
         "overwrite_protection": "3074"},
}
DEFAULT_LIVE_VERSION = 11      # Live 12 opens Live 11 files; Live 11 refuses Live 12's round-robin block

SUSTAIN_LOOP_OFF, SUSTAIN_LOOP_FORWARD = 0, 1
# Sampler's Release Mode (ReleaseLoop/Mode; tests/support/data/ableton_facts.py, LOOP_RELEASE_*): 0 is "->|", the
# sustain loop ends at note-off and the sample plays on to its end; 3 is "OFF", the loop keeps running
# through the release (and the value of a fresh zone without a loop).
RELEASE_PLAY_ON, RELEASE_OFF = 0, 3
LOOPING = {"sustain": RELEASE_PLAY_ON, "continuous": RELEASE_OFF}
LOOP_MODES = {"sustain", "continuous", "one_shot", "none"}

SAMPLER_VOLUME_DB = -6.0     # headroom for stacked velocity layers and overlapping chains
ONE_LAYER_VEL_TO_VOLUME = 1.0    # one velocity layer: velocity is all the dynamics there is
LAYERED_VEL_TO_VOLUME = 0.25     # several layers already differ in level; keep a little touch
NUM_MACROS = 16
CHAIN_COLORS = (12, 16, 20, 24, 3, 7, 9, 14)   # Live's palette indices, cycled per chain

# Drum Racks (tests/support/data/ableton_facts.py, [K12]): every pad sends C3 (MIDI 60) to its chain, and a pad's
# ReceivingNote is stored as 128 - its MIDI note; the pad view scrolls in rows of four pads.
SENDING_NOTE = 60
RECEIVING_NOTE_BASE = 128
PAD_SCROLL_TOP = 28            # PadScrollPosition that shows notes 0..15: one row of 4 pads less per step up


def write(instrument: Instrument, folder: Path, live_version: int = DEFAULT_LIVE_VERSION,
          location: Path | None = None) -> list[str]:
    """Write ``<name>.adg`` (rack) and ``<name>.adv`` (centre point's Sampler) into ``folder``.

    ``live_version`` is 11 (default: loads in Live 11 and 12) or 12 (adds Sampler's native round
    robin, which Live 11 cannot load). ``location`` is where ``folder`` will be once published (default:
    ``folder`` itself): the absolute sample paths point there.
    """
    folder = Path(folder)
    stem = file_stem(instrument.name)
    rack_name, adv_name = f"{stem}.adg", f"{stem}.adv"
    files = {rack_name: render_rack(instrument, folder, live_version, location),          # render both
             adv_name: render_device_preset(instrument, folder, live_version, location)}  # before writing
    for name, xml in files.items():
        (folder / name).write_bytes(gzip.compress(xml, mtime=0))
    return list(files)


def render_rack(instrument: Instrument, folder: Path | None = None,
                live_version: int = DEFAULT_LIVE_VERSION, location: Path | None = None) -> bytes:
    """The rack preset's XML (not yet gzipped). ``folder`` is only read for the samples' sizes and dates."""
    v = version_context(live_version, location or folder)
    _check(instrument)
    text = render_template("ableton/rack.adg.xml.j2", v=v, rack=rack_context(instrument, folder, v))
    return _tidy(text)


def render_device_preset(instrument: Instrument, folder: Path | None = None,
                         live_version: int = DEFAULT_LIVE_VERSION, location: Path | None = None,
                         group: BlendGroup | None = None) -> bytes:
    """One Sampler preset's XML (not yet gzipped) for ``group`` (default: the centre blend point)."""
    v = version_context(live_version, location or folder)
    _check(instrument)
    group = centre_group(instrument) if group is None else group
    name = instrument.name if len(instrument.groups) == 1 else f"{instrument.name} ({group.label})"
    sampler = sampler_context(instrument, group.zones, folder, v, name)
    return _tidy(render_template("ableton/sampler.adv.xml.j2", v=v, sampler=sampler))


def version_context(live_version: int, location: Path | None = None) -> dict:
    """The Live version's root attributes, plus ``location``: the preset's folder as an absolute POSIX
    path ('/' also on Windows, as Live writes it), or "" when unknown."""
    if live_version not in LIVE_VERSIONS:
        raise ExportError(f"Live version {live_version!r} is not supported", key="output.live_version",
                          fix=f"use one of {', '.join(map(str, LIVE_VERSIONS))}")
    where = Path(location).resolve().as_posix() if location is not None else ""
    return dict(LIVE_VERSIONS[live_version], location=where)


def centre_group(instrument: Instrument) -> BlendGroup:
    """The blend point nearest the middle of the grid; the lowest index among equally near ones."""
    def distance(group: BlendGroup) -> float:
        return sum((p - 0.5) ** 2 for p in group.position)
    return min(instrument.groups, key=lambda g: (round(distance(g), 9), g.index))


# ---------------------------------------------------------------------------------------------- rack

def rack_context(instrument: Instrument, folder: Path | None, v: dict) -> dict:
    """The rack tree: chains per blend point on one axis, or rows of inner racks on two; a kit's Drum Rack."""
    if instrument.is_kit:
        return drum_rack_context(instrument, folder, v)
    axes = instrument.axes
    if len(axes) > 2:
        raise ExportError(f"{len(axes)} blend axes cannot be mapped onto Live macros", key="blend.axes",
                          fix="use at most two blend axes (a line or a square) for Ableton racks")
    if not axes:
        chains = [_sampler_chain(instrument, g, i, (0, 127, 0, 127), folder, v)
                  for i, g in enumerate(sorted(instrument.groups, key=lambda g: g.index))]
        return _rack(instrument.name, [], None, chains)
    x_axis = axes[0]
    if len(axes) == 1:
        chains = [_sampler_chain(instrument, g, i, _zone(x_axis.points, g.grid_index[0]), folder, v)
                  for i, g in enumerate(_along(instrument.groups, 0))]
        return _rack(instrument.name, [_macro(x_axis.name, x_axis.points)], 0, chains)
    y_axis = axes[1]
    rows = []
    for j in range(y_axis.points):
        row_groups = [g for g in instrument.groups if g.grid_index[1] == j]
        if not row_groups:
            continue
        inner_chains = [_sampler_chain(instrument, g, i, _zone(x_axis.points, g.grid_index[0]), folder, v)
                        for i, g in enumerate(_along(row_groups, 0))]
        # The inner rack's macro 1 follows the outer macro 1 (X) and drives the inner chain selector.
        inner = _rack(f"{instrument.name} {_text(y_axis.name)} {j + 1}",
                      [_macro(x_axis.name, x_axis.points, map_to=0)], 0, inner_chains)
        rows.append({"id": len(rows), "name": xml_attr(f"{y_axis.name} {j + 1}"),
                     "selector": _zone(y_axis.points, j), "rack": inner, "sampler": None, "pad": None,
                     "color": CHAIN_COLORS[len(rows) % len(CHAIN_COLORS)]})
    macros = [_macro(x_axis.name, x_axis.points), _macro(y_axis.name, y_axis.points)]
    return _rack(instrument.name, macros, 1, rows)


def _rack(name: str, named_macros: list[dict], selector_macro: int | None, chains: list[dict]) -> dict:
    macros = named_macros + [_macro(f"Macro {i + 1}", 0) for i in range(len(named_macros), NUM_MACROS)]
    return {"name": xml_attr(name), "macros": macros, "selector_macro": selector_macro,
            "selector_value": "0", "chains": chains,
            "ranges_visible": "true" if selector_macro is not None else "false",
            "device": "InstrumentGroupDevice", "branch": "InstrumentBranchPreset", "drum": None,
            "auto_select": "false"}


def drum_rack_context(instrument: Instrument, folder: Path | None, v: dict) -> dict:
    """A Drum Rack: one pad per key of the kit, each holding a Sampler with that key's zones (velocity
    layers, round robins), rerooted on the note the pad sends so it plays the sample as rendered."""
    zones = [z for g in instrument.groups for z in g.zones]
    keys = sorted({z.lokey for z in zones})
    for z in zones:
        if z.lokey != z.hikey or not 0 <= z.lokey <= 127:
            raise ExportError(f"kit zone of {z.sample.path} spans keys {z.lokey}..{z.hikey}", key="zones",
                              fix="a kit maps one key per pad")
    chains = []
    for i, key in enumerate(keys):
        pad = [replace(z, lokey=0, hikey=127, sample=replace(z.sample, root_key=SENDING_NOTE, tune_cents=0.0))
               for z in zones if z.lokey == key]
        # the pad shows its own note in Live (which names MIDI 36 C1, not C2 as dawexport does): name the sound
        name = next((z.label for z in zones if z.lokey == key and z.label), PurePosixPath(pad[0].sample.path).stem)
        chains.append({"id": i, "name": xml_attr(name), "selector": (0, 0, 0, 0), "rack": None,
                       "sampler": sampler_context(instrument, pad, folder, v, name),
                       "color": CHAIN_COLORS[i % len(CHAIN_COLORS)],
                       "pad": {"receiving_note": RECEIVING_NOTE_BASE - key, "sending_note": SENDING_NOTE,
                               "choke_group": 0}})
    rack = _rack(instrument.name, [], None, chains)
    rack.update(device="DrumGroupDevice", branch="DrumBranchPreset", auto_select="true",
                drum={"pad_scroll": max(0, min(PAD_SCROLL_TOP, PAD_SCROLL_TOP - keys[0] // 4))})
    return rack


def _macro(name: str, points: int, map_to: int | None = None) -> dict:
    note = (f"Blends {points} rendered points; chain zones crossfade neighbours" if points > 1 else "")
    return {"name": xml_attr(name) or "Blend", "value": "0", "map_to": map_to, "annotation": xml_attr(note)}


def _zone(points: int, index: int) -> tuple[int, int, int, int]:
    """Chain-select zone (Min, Max, CrossfadeMin, CrossfadeMax) of point ``index`` on a 0..127 knob."""
    in_lo, in_hi, out_lo, out_hi = axis_crossfades(points)[index]
    return (in_lo, out_hi, in_hi, out_lo)


def _along(groups, axis: int) -> list[BlendGroup]:
    return sorted(groups, key=lambda g: (g.grid_index[axis] if len(g.grid_index) > axis else 0, g.index))


def _sampler_chain(instrument: Instrument, group: BlendGroup, chain_id: int, selector, folder, v) -> dict:
    sampler = sampler_context(instrument, group.zones, folder, v, group.label)
    return {"id": chain_id, "name": xml_attr(group.label), "selector": selector, "rack": None,
            "sampler": sampler, "color": CHAIN_COLORS[chain_id % len(CHAIN_COLORS)], "pad": None}


# ------------------------------------------------------------------------------------------- sampler

def sampler_context(instrument: Instrument, zones, folder: Path | None, v: dict, name: str) -> dict:
    """One Sampler: its zones as MultiSampleParts plus the global amp envelope and volume."""
    zones = sorted(zones, key=lambda z: (z.lokey, z.lovel, z.round_robin, z.sample.path))
    rr_count = max([z.round_robin for z in zones] + [instrument.round_robins, 1])
    native_rr = v["major"] >= 12 and rr_count > 1
    parts = [_part(instrument, zone, i, folder, v, rr_count, native_rr) for i, zone in enumerate(zones)]
    env = instrument.envelope
    layers = {(z.lovel, z.hivel) for z in zones}
    return {
        "name": xml_attr(name),
        "parts": parts,
        "round_robin": "true" if native_rr else "false",
        "random_seed": "1",
        "volume_db": decimal(SAMPLER_VOLUME_DB, 10),
        "velocity_to_volume": decimal(ONE_LAYER_VEL_TO_VOLUME if len(layers) <= 1 else LAYERED_VEL_TO_VOLUME, 10),
        "env": {
            "attack_ms": decimal(clamp(1000.0 * env.attack, 0.1000000015, 20000.0), 10),
            "decay_ms": decimal(clamp(1000.0 * env.decay, 1.0, 60000.0), 10),
            "sustain": decimal(clamp(env.sustain, 0.0003162277571, 1.0), 10),
            "release_ms": decimal(clamp(1000.0 * env.release, 1.0, 60000.0), 10),
        },
    }


def _part(instrument: Instrument, zone: Zone, part_id: int, folder: Path | None, v: dict, rr_count: int,
          native_rr: bool) -> dict:
    sample = zone.sample
    rel = relative_sample_path(sample.path)
    if sample.frames < 2:
        raise ExportError(f"sample {rel} has {sample.frames} frames", key="samples",
                          fix="render samples of at least a few milliseconds")
    last = sample.frames - 1
    tune = float(sample.tune_cents)
    semitones = round(tune / 100.0)
    detune = round(tune - 100 * semitones)
    root = sample.root_key - semitones
    if not 0 <= root <= 127:
        raise ExportError(f"root key {root} of {rel} is outside 0..127", key="zones",
                          fix="check the sample's root key and tuning")
    if native_rr or rr_count <= 1:
        selector = (0, 127, 0, 127)
    else:   # Live 11: cycle r of n owns slice r of the sample-selector axis
        lo = (zone.round_robin - 1) * 128 // rr_count
        hi = zone.round_robin * 128 // rr_count - 1
        selector = (lo, hi, lo, hi)
    release_mode = LOOPING.get(instrument.loop_mode)
    loop = sample.loop
    if release_mode is not None and loop is not None:
        check_loop(loop, sample.frames, rel, fix="re-run the loop stage; loop end is inclusive")
        sustain = {"start": loop.start, "end": loop.end, "mode": SUSTAIN_LOOP_FORWARD,
                   "crossfade": max(0, int(loop.crossfade))}
        release = {"start": 0, "end": last, "mode": release_mode}
    else:
        sustain = {"start": 0, "end": last, "mode": SUSTAIN_LOOP_OFF, "crossfade": 0}
        release = {"start": 0, "end": last, "mode": RELEASE_OFF}
    size = modified = 0
    if folder is not None and (Path(folder) / rel).is_file():
        stat = (Path(folder) / rel).stat()
        size, modified = stat.st_size, int(stat.st_mtime)
    lokey, hikey = _clip_int(zone.lokey, 0, 127), _clip_int(zone.hikey, 0, 127)
    lovel, hivel = _clip_int(zone.lovel, 1, 127), _clip_int(zone.hivel, 1, 127)
    if lokey > hikey or lovel > hivel:
        raise zone_range_error(zone, rel)
    return {
        "id": part_id,
        "name": xml_attr(PurePosixPath(rel).stem),
        "key": (lokey, hikey, lokey, hikey),
        "vel": (lovel, hivel, lovel, hivel),
        "sel": selector,
        "root": root,
        "detune": detune,
        "volume": "1",
        "last_frame": last,
        "sustain": sustain,
        "release": release,
        "relative_path": xml_attr(rel),
        "path": xml_attr(f"{v['location']}/{rel}" if v["location"] else rel),
        "file_size": size,
        "modified": modified,
        "frames": sample.frames,
        "sample_rate": int(sample.sample_rate),
    }


# ------------------------------------------------------------------------------------------- helpers

def _check(instrument: Instrument) -> None:
    check_instrument(instrument, LOOP_MODES)
    for group in instrument.groups:
        if len(group.grid_index) < len(instrument.axes):
            raise ExportError(f"blend point {group.label!r} has grid index {group.grid_index} for "
                              f"{len(instrument.axes)} axes", key="groups",
                              fix="give every blend group one grid coordinate per axis")
        for axis, i in zip(instrument.axes, group.grid_index):
            if not 0 <= i < axis.points:
                raise ExportError(f"blend point {group.label!r} lies outside axis {axis.name!r}",
                                  key="groups", fix="grid indices run from 0 to points - 1")


def _tidy(text: str) -> bytes:
    """Parse the rendered XML (a template error surfaces here, not in Live) and indent it with tabs."""
    root = parse_xml(text, "Ableton")
    for element in root.iter():          # drop the template's whitespace, then indent like Live
        element.text = None if element.text is not None and not element.text.strip() else element.text
        element.tail = None
    ET.indent(root, space="\t")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def _text(text: str) -> str:
    return " ".join(str(text).split())


def _clip_int(value: int, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, int(value))))

