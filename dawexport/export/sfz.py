"""SFZ exporter: one ``<name>.sfz`` at the instrument folder's root, rendered from templates/sfz/.

Every blend point becomes a ``<group>`` crossfaded by the blend knob(s) (``xfin_loccN``/``xfout_loccN``,
power curve), every zone a ``<region>`` with a relative ``sample=`` path, key/velocity range, root key,
tuning, round-robin position and sustain loop. Plays in sfizz, Sforzando and other SFZ v1/v2 players.

    write(instrument, Path("build/cat_flute"))   # -> ['cat_flute.sfz']
    print(render_sfz(instrument)[:60])   # -> // cat_flute - SFZ instrument written by dawexport
"""
from __future__ import annotations

import re
import statistics
from pathlib import Path

from dawexport.errors import ExportError
from dawexport.instrument import BlendGroup, Instrument, Zone
from dawexport.export.common import (check_instrument, check_loop, check_zone, decimal, file_stem,
                                     is_relative_path)
from dawexport.notes import midi_to_note
from dawexport.templating import render_template

TEMPLATE = "sfz/instrument.sfz.j2"

LOOP_MODES = {"sustain": "loop_sustain", "continuous": "loop_continuous",
              "one_shot": "one_shot", "none": "no_loop"}
LOOPING_MODES = {"sustain", "continuous"}

# Velocity inside a layer (see the comment in the template): the softest velocity of a layer plays its
# sample this many dB quieter than the layer's top velocity.
LONE_LAYER_DEPTH_DB = 18.0     # a single layer: velocity is the only dynamics there is
BOTTOM_LAYER_DEPTH_DB = 6.0    # the softest of several layers: nothing below it to collide with
MAX_LAYER_DEPTH_DB = 6.0       # upper layers: at most this, and at most half the step to the layer below
UNKNOWN_STEP_DEPTH_DB = 3.0    # upper layers when the samples' loudness was not measured

_BAD_PATH_CHARS = re.compile(r"[=<>\r\n\t\\]|//")


def write(instrument: Instrument, folder: Path) -> list[str]:
    """Write ``<name>.sfz`` into ``folder`` (beside the samples) and return its relative path."""
    folder = Path(folder)
    name = f"{file_stem(instrument.name)}.sfz"
    text = render_sfz(instrument)
    (folder / name).write_bytes(text.encode("utf-8"))
    return [name]


def render_sfz(instrument: Instrument) -> str:
    """The SFZ text for ``instrument`` (pure: no file access)."""
    return render_template(TEMPLATE, **sfz_context(instrument))


def sfz_context(instrument: Instrument) -> dict:
    """Everything the template needs, already validated and formatted."""
    check_instrument(instrument, LOOP_MODES)
    env = instrument.envelope
    depths = layer_depths_db(instrument)
    looping = instrument.loop_mode in LOOPING_MODES
    meta = instrument.metadata
    return {
        "title": _one_line(instrument.name),
        "description": [_one_line(line) for line in str(meta.get("description", "")).splitlines()
                        if line.strip()],
        "engine": _one_line(str(meta.get("engine", "unknown"))),
        "sample_rate": instrument.sample_rate,
        "key_range": instrument.key_range,
        "velocity_layers": len(instrument.velocity_layers),
        "round_robins": instrument.round_robins,
        "axes": [{"cc": a.cc, "name": _label(a.name) or f"Blend {a.cc}", "points": a.points}
                 for a in instrument.axes],
        "voices_per_note": len(instrument.groups),
        "kit": instrument.is_kit,
        "textures": _one_line(str(meta.get("textures", ""))) if meta.get("category") == "Textures" else None,
        "looping": looping,
        "key_names": [_note_name(k) for k in instrument.key_range],
        "envelope": {"attack": decimal(env.attack), "decay": decimal(env.decay),
                     "sustain": decimal(100.0 * env.sustain), "release": decimal(env.release)},
        "loop_mode": LOOP_MODES[instrument.loop_mode],
        "groups": [_group_context(instrument, g, depths, looping) for g in instrument.groups],
    }


def crossfade_opcodes(instrument: Instrument, group: BlendGroup) -> list[tuple[str, int]]:
    """``xfin_loccN``... opcodes of one group; a degenerate fade-in at 0 or fade-out at 127 is left out.

    A missing fade-in/-out pair means "always fully in" in every SFZ player, so the first point of an
    axis plays at full level at CC 0 and the last at CC 127 without relying on how a player treats an
    empty 0..0 or 127..127 range (sfizz treats them as fully in too; checked in tests/unit/test_sfz.py).
    """
    ops: list[tuple[str, int]] = []
    for axis, (in_lo, in_hi, out_lo, out_hi) in instrument.group_crossfades(group):
        if not (in_lo == in_hi and in_hi <= 0):
            ops += [(f"xfin_locc{axis.cc}", in_lo), (f"xfin_hicc{axis.cc}", in_hi)]
        if not (out_lo == out_hi and out_lo >= 127):
            ops += [(f"xfout_locc{axis.cc}", out_lo), (f"xfout_hicc{axis.cc}", out_hi)]
    return ops


def layer_depths_db(instrument: Instrument) -> dict[tuple[int, int], float]:
    """How many dB quieter each velocity layer plays at its lowest velocity than at its highest.

    Keeps layers ordered: an upper layer's depth is at most half its loudness step over the layer below
    (from the samples' measured ``loudness_db``), so the softest note of a layer is still louder than
    the loudest note of the layer below it.
    """
    layers = sorted(set(instrument.velocity_layers) |
                    {(z.lovel, z.hivel) for g in instrument.groups for z in g.zones})
    if len(layers) == 1:
        return {layers[0]: LONE_LAYER_DEPTH_DB}
    zones = [z for g in instrument.groups for z in g.zones]
    measured = any(z.sample.loudness_db != 0.0 for z in zones)
    loudness = {}
    for layer in layers:
        values = [z.sample.loudness_db for z in zones if (z.lovel, z.hivel) == layer]
        loudness[layer] = statistics.median(values) if values else None
    depths = {layers[0]: BOTTOM_LAYER_DEPTH_DB}
    for below, layer in zip(layers, layers[1:]):
        if not measured or loudness[below] is None or loudness[layer] is None:
            depths[layer] = UNKNOWN_STEP_DEPTH_DB
        else:
            depths[layer] = min(MAX_LAYER_DEPTH_DB, max(0.0, 0.5 * (loudness[layer] - loudness[below])))
    return depths


def _group_context(instrument: Instrument, group: BlendGroup, depths, looping: bool) -> dict:
    weights = ", ".join(f"{k}={v:.2f}" for k, v in group.weights.items())
    position = ", ".join(f"{p:.3f}" for p in group.position)
    return {
        "index": group.index,
        "label": _one_line(group.label),
        "position": position,
        "weights": weights,
        "crossfades": crossfade_opcodes(instrument, group),
        "seq_length": instrument.round_robins if instrument.round_robins > 1 else None,
        "regions": _regions(instrument, group, depths, looping),
    }


def _regions(instrument: Instrument, group: BlendGroup, depths, looping: bool) -> list[dict]:
    """The group's regions; in a kit each key's first region carries a comment naming its pad."""
    regions, seen = [], set()
    for zone in group.zones:
        region = _region_context(instrument, zone, depths, looping)
        region["comment"] = None
        if instrument.is_kit and zone.lokey not in seen:
            seen.add(zone.lokey)
            region["comment"] = f"key {_note_name(zone.lokey)}" + (f": {_one_line(zone.label)}" if zone.label else "")
        regions.append(region)
    return regions


def _note_name(key: int) -> str:
    return f"{midi_to_note(key)} ({key})"


def _region_context(instrument: Instrument, zone: Zone, depths, looping: bool) -> dict:
    sample = zone.sample
    path = sample.path
    if not is_relative_path(path) or _BAD_PATH_CHARS.search(path) or path != path.strip():
        raise ExportError(f"sample path {path!r} cannot be written into an SFZ file", key="sample",
                          fix="keep sample paths relative to the instrument folder, with '/' separators "
                              "and without '=', '<', '>', '//', '..' or leading/trailing spaces")
    check_zone(zone, path)
    tune = int(round(sample.tune_cents))
    loop = None
    if looping and sample.loop is not None:
        lp = sample.loop
        check_loop(lp, sample.frames, path, fix="re-run the loop stage; loop_end is inclusive")
        loop = (lp.start, lp.end)
    depth = depths.get((zone.lovel, zone.hivel), UNKNOWN_STEP_DEPTH_DB)
    if zone.lovel < zone.hivel and depth > 0:
        velcurve = [(zone.lovel, decimal(10.0 ** (-depth / 20.0), 4)), (zone.hivel, "1")]
    else:
        velcurve = [(zone.hivel, "1")]
    return {
        "sample": path,
        "lokey": zone.lokey, "hikey": zone.hikey, "pitch_keycenter": sample.root_key,
        "lovel": zone.lovel, "hivel": zone.hivel,
        "tune": tune if tune else None,
        "seq_position": zone.round_robin if instrument.round_robins > 1 else None,
        "loop": loop,
        # a region without a loop in a looping instrument must not loop the whole file
        "no_loop": looping and loop is None,
        "velcurve": velcurve,
        "velocity": zone.velocity,
    }


def _label(text: str) -> str:
    """A value for label_ccN: one line without '=' or '//' (which would end the value)."""
    return _one_line(text).replace("//", "/").replace("=", "-")


def _one_line(text: str) -> str:
    """Text safe inside a `//` comment or a label value: one line, no SFZ header brackets."""
    return " ".join(str(text).replace("<", "(").replace(">", ")").split())
