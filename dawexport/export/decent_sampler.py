"""Decent Sampler exporter: ``<name>.dspreset`` beside ``samples/``, rendered from templates/decent_sampler/.

Every blend point is a ``<group>``. A "Blend" knob (named after the blend axis) on the UI sets each
group's volume through a translation table, an equal-power crossfade between neighbouring points
(the ranges of `axis_crossfades`), and the axis' MIDI CC moves that knob. On a 2-D grid the first axis
drives group volumes and the second drives tag volumes (every group carries the tag of its row), so a
group plays at the product of its X and Y gains. Samples keep key and velocity ranges, root note,
tuning (semitones), sustain loops (``loopStart``/``loopEnd``, end inclusive, with crossfade) and round
robin (``seqMode="round_robin"`` with ``seqPosition``); the amp envelope sits on ``<groups>`` and the
velocity response (``ampVelTrack``) on each ``<group>``, where the Developers Guide documents it; the
envelope is also exposed as Attack and Release knobs. Sample paths are relative to the preset, with exact case
(Decent Sampler's own "Validate Preset" rejects a path whose capitalisation differs from the disk).

Decent Sampler loops keep looping through the release, so ``sustain`` and ``continuous`` write the
same loop; ``one_shot`` and ``none`` write none.

    write(instrument, Path("build/cat_flute"))   # -> ['cat_flute.dspreset']
"""
from __future__ import annotations

import math
from pathlib import Path

from dawexport.errors import ExportError
from dawexport.instrument import Instrument, axis_crossfades
from dawexport.export.common import (check_instrument, check_loop, check_zone, clamp, decimal, file_stem,
                                     parse_xml, relative_sample_path, xml_attr)
from dawexport.templating import render_template

TEMPLATE = "decent_sampler/instrument.dspreset.j2"
LOOPING = {"sustain", "continuous"}
LOOP_MODES = LOOPING | {"one_shot", "none"}
FADE_STEPS = 8              # table points per fade: an equal-power curve drawn with straight segments
ONE_LAYER_VEL_TRACK = 1.0   # one velocity layer: velocity is all the dynamics there is
LAYERED_VEL_TRACK = 0.25    # several layers already differ in level; keep a little touch
KNOB_X0, KNOB_DX = 20, 100


def write(instrument: Instrument, folder: Path) -> list[str]:
    """Write ``<name>.dspreset`` into ``folder`` and return its relative path."""
    name = f"{file_stem(instrument.name)}.dspreset"
    (Path(folder) / name).write_bytes(render_dspreset(instrument).encode("utf-8"))
    return [name]


def render_dspreset(instrument: Instrument) -> str:
    """The preset's XML text (pure: no file access)."""
    text = render_template(TEMPLATE, **dspreset_context(instrument))
    parse_xml(text, "Decent Sampler")
    return text


def crossfade_gain(points: int, index: int, value: float, top: int = 127) -> float:
    """Equal-power gain of point ``index`` of ``points`` at knob ``value`` (0..top)."""
    in_lo, in_hi, out_lo, out_hi = axis_crossfades(points, top)[index]
    if in_hi > in_lo and in_lo <= value < in_hi:
        return math.sin(0.5 * math.pi * (value - in_lo) / (in_hi - in_lo))
    if out_hi > out_lo and out_lo < value <= out_hi:
        return math.cos(0.5 * math.pi * (value - out_lo) / (out_hi - out_lo))
    if in_hi <= value <= out_lo or (index == 0 and value <= in_hi) or (index == points - 1 and value >= out_lo):
        return 1.0
    return 0.0


def crossfade_table(points: int, index: int, top: int = 127) -> list[tuple[float, float]]:
    """(knob 0..1, gain) pairs of one point: flat where nothing changes, FADE_STEPS segments per fade."""
    in_lo, in_hi, out_lo, out_hi = axis_crossfades(points, top)[index]
    xs = {0.0, float(top), float(in_lo), float(in_hi), float(out_lo), float(out_hi)}
    for lo, hi in ((in_lo, in_hi), (out_lo, out_hi)):
        xs |= {lo + (hi - lo) * k / FADE_STEPS for k in range(FADE_STEPS + 1)}
    return [(x / top, crossfade_gain(points, index, x, top)) for x in sorted(xs)]


def dspreset_context(instrument: Instrument) -> dict:
    check_instrument(instrument, LOOP_MODES)
    axes = instrument.axes
    if len(axes) > 2:
        raise ExportError(f"{len(axes)} blend axes cannot be mapped onto Decent Sampler knobs",
                          key="blend.axes", fix="use at most two blend axes (a line or a square)")
    groups = sorted(instrument.groups, key=lambda g: g.index)
    for g in groups:
        if len(g.grid_index) < len(axes) or any(not 0 <= i < a.points for a, i in zip(axes, g.grid_index)):
            raise ExportError(f"blend point {g.label!r} has grid index {g.grid_index}", key="groups",
                              fix="give every blend group one grid coordinate per axis, 0..points-1")
    knobs, tags = [], []
    if axes:
        x = axes[0]
        knobs.append({"label": xml_attr(x.name or "Blend"), "cc": x.cc, "bindings": [
            {"level": "group", "position": n, "table": _table(crossfade_table(x.points, g.grid_index[0]))}
            for n, g in enumerate(groups)]})
    if len(axes) == 2:
        y = axes[1]
        knobs.append({"label": xml_attr(y.name or "Blend Y"), "cc": y.cc, "bindings": [
            {"level": "tag", "identifier": _row_tag(j), "table": _table(crossfade_table(y.points, j))}
            for j in range(y.points)]})
        tags = [{"name": _row_tag(j), "volume": decimal(crossfade_gain(y.points, j, 0))} for j in range(y.points)]
    for n, knob in enumerate(knobs):
        knob["x"] = KNOB_X0 + KNOB_DX * n
    seq_length = max([instrument.round_robins] + [z.round_robin for g in groups for z in g.zones])
    layers = {(z.lovel, z.hivel) for g in groups for z in g.zones}
    env = instrument.envelope
    return {
        "title": xml_attr(instrument.name),
        "knobs": knobs,
        "attack_x": KNOB_X0 + KNOB_DX * len(knobs) + 40,
        "tags": tags,
        "envelope": {"attack": decimal(clamp(env.attack, 0, 10)), "decay": decimal(clamp(env.decay, 0, 25)),
                     "sustain": decimal(clamp(env.sustain, 0, 1)), "release": decimal(clamp(env.release, 0, 25))},
        "amp_vel_track": decimal(ONE_LAYER_VEL_TRACK if len(layers) <= 1 else LAYERED_VEL_TRACK),
        "seq_length": seq_length if seq_length > 1 else 0,
        "groups": [_group(instrument, g) for g in groups],
    }


def _group(instrument: Instrument, group) -> dict:
    axes = instrument.axes
    volume = crossfade_gain(axes[0].points, group.grid_index[0], 0) if axes else 1.0
    return {
        "name": xml_attr(group.label),
        "volume": decimal(volume),      # the knob starts at 0; bindings set the same on load
        "tags": _row_tag(group.grid_index[1]) if len(axes) == 2 else "",
        "samples": [_sample(instrument, z) for z in sorted(group.zones, key=lambda z: (z.lokey, z.lovel,
                                                                                       z.round_robin))],
    }


def _sample(instrument: Instrument, zone) -> dict:
    sample = zone.sample
    path = relative_sample_path(sample.path)
    check_zone(zone, path)
    loop = None
    if instrument.loop_mode in LOOPING and sample.loop is not None:
        lp = sample.loop
        check_loop(lp, sample.frames, path)
        loop = (lp.start, lp.end, max(0, int(lp.crossfade)))
    tuning = sample.tune_cents / 100.0
    return {
        "path": xml_attr(path),
        "root": sample.root_key,
        "lokey": zone.lokey, "hikey": zone.hikey, "lovel": zone.lovel, "hivel": zone.hivel,
        "tuning": decimal(tuning) if abs(tuning) > 1e-9 else "",
        "seq_position": zone.round_robin,
        "loop": loop,
    }


def _row_tag(j: int) -> str:
    return f"blend_row_{j}"


def _table(pairs) -> str:
    return ";".join(f"{decimal(x)},{decimal(y)}" for x, y in pairs)

