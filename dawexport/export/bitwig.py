"""Bitwig Studio / PreSonus Studio One exporter: ``<name>.multisample``, the open multi-sample format.

A ``.multisample`` is a ZIP archive with STORED (uncompressed) entries so players can stream from it:
``multisample.xml`` at its root, then the WAVs beside it (by base name). The mapping follows the
format's published XSD (bitwig/multisample README): per sample a ``<key>`` (root, tune in semitones,
low/high), ``<velocity>``, ``<select>`` and an optional ``<loop>``.

The blend knob becomes the *select* axis: every blend point is a ``<group>`` and its samples' select
ranges crossfade neighbouring points over 0..127 (``low-fade``/``high-fade`` from `axis_crossfades`),
so Bitwig's Sampler morphs timbre when its Select parameter is modulated. Round robins are marked
``zone-logic="round-robin"``. The format has one select axis only: on a 2-D grid ``<name>.multisample``
holds the first row (Y = 0) crossfaded along X, and each further row is written as
``<name>_<Y name> <j+1>.multisample``.

The format leaves envelopes to the player's preset ("out of scope" in its README): none is written.
Loop ``stop`` is exclusive, like ``sample-stop`` (the file length).

    write(instrument, Path("build/cat_flute"))   # -> ['cat_flute.multisample']
"""
from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from dawexport.errors import ExportError
from dawexport.instrument import BlendGroup, Instrument, axis_crossfades
from dawexport.export.common import (check_loop, check_sample_file, check_zone, decimal, file_stem, parse_xml,
                                     xml_attr, xml_text)
from dawexport.templating import render_template

TEMPLATE = "bitwig/multisample.xml.j2"
LOOPING = {"sustain", "continuous"}
GROUP_COLORS = ("d92e24", "e57b1f", "d9b626", "67b533", "2eb2a7", "3c7fd9", "8a53d9", "d94f9c")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)      # fixed timestamps: the same instrument gives the same bytes


def write(instrument: Instrument, folder: Path) -> list[str]:
    """Write ``<name>.multisample`` (plus one per further row of a 2-D grid) into ``folder``."""
    folder = Path(folder)
    written = []
    for file_name, groups in archives(instrument):
        write_archive(folder / file_name, render_multisample(instrument, groups), groups, folder)
        written.append(file_name)
    return written


def archives(instrument: Instrument) -> list[tuple[str, list[BlendGroup]]]:
    """(file name, blend groups) of every archive: one per row of the grid along the first axis."""
    if not instrument.groups or not any(g.zones for g in instrument.groups):
        raise ExportError("the instrument has no zones to map", key="groups",
                          fix="render at least one key, velocity layer and blend point")
    if len(instrument.axes) > 2:
        raise ExportError(f"{len(instrument.axes)} blend axes cannot be written as .multisample",
                          key="blend.axes", fix="use at most two blend axes (a line or a square)")
    stem = file_stem(instrument.name)
    if len(instrument.axes) < 2:
        return [(f"{stem}.multisample", _along_x(instrument.groups))]
    y_axis = instrument.axes[1]
    rows = []
    for j in range(y_axis.points):
        groups = _along_x([g for g in instrument.groups if g.grid_index[1] == j])
        if groups:
            name = f"{stem}.multisample" if not rows else f"{stem}_{file_stem(f'{y_axis.name} {j + 1}')}.multisample"
            rows.append((name, groups))
    return rows


def render_multisample(instrument: Instrument, groups: list[BlendGroup]) -> str:
    """multisample.xml for ``groups`` (one row of the blend grid)."""
    if instrument.loop_mode not in LOOPING | {"one_shot", "none"}:
        raise ExportError(f"unknown loop mode {instrument.loop_mode!r}", key="loop_mode",
                          fix="use one of sustain, continuous, one_shot, none")
    meta = instrument.metadata
    x_points = instrument.axes[0].points if instrument.axes else 1
    round_robin = instrument.round_robins > 1 or any(z.round_robin > 1 for g in groups for z in g.zones)
    samples = []
    for number, group in enumerate(groups):
        x = group.grid_index[0] if instrument.axes else 0
        in_lo, in_hi, out_lo, out_hi = axis_crossfades(x_points)[x]
        select = (in_lo, out_hi, in_hi - in_lo, out_hi - out_lo)
        for zone in sorted(group.zones, key=lambda z: (z.lokey, z.lovel, z.round_robin)):
            samples.append(_sample(instrument, zone, number, select, round_robin))
    extra = meta.get("keywords", "")
    keywords = ["dawexport", str(meta.get("engine", ""))] + (extra.split(",") if isinstance(extra, str)
                                                            else [str(k) for k in extra])
    context = {
        "title": xml_attr(instrument.name),
        "generator": "dawexport",
        "category": xml_text(meta.get("category", "Instrument")),
        "creator": xml_text(meta.get("creator", "dawexport")),
        "description": xml_text(meta.get("description", "")),
        "keywords": [xml_text(k) for k in dict.fromkeys(k.strip() for k in keywords) if k],
        "groups": [{"name": xml_attr(g.label), "color": GROUP_COLORS[i % len(GROUP_COLORS)]}
                   for i, g in enumerate(groups)],
        "samples": samples,
    }
    text = render_template(TEMPLATE, **context)
    parse_xml(text, "Bitwig")
    return text


def _sample(instrument: Instrument, zone, group_number: int, select, round_robin: bool) -> dict:
    sample = zone.sample
    loop = None
    if instrument.loop_mode in LOOPING and sample.loop is not None:
        lp = sample.loop
        check_loop(lp, sample.frames, sample.path)
        fade = min(1.0, max(0.0, lp.crossfade / lp.length)) if lp.crossfade else 0.0
        loop = (lp.start, lp.end + 1, decimal(fade))
    check_zone(zone, sample.path)
    return {
        "file": xml_attr(archive_name(sample.path)),
        "frames": sample.frames,
        "group": group_number,
        "zone_logic": "round-robin" if round_robin else "always-play",
        "root": sample.root_key,
        "tune": decimal(sample.tune_cents / 100.0),
        "lokey": zone.lokey, "hikey": zone.hikey,
        "lovel": zone.lovel, "hivel": zone.hivel,
        "select": select,
        "loop": loop,
    }


def archive_name(path: str) -> str:
    """Where a sample sits inside the archive: its base name, at the root beside multisample.xml."""
    return PurePosixPath(path).name


def write_archive(target: Path, xml: str, groups: list[BlendGroup], folder: Path) -> None:
    """The ZIP: multisample.xml first, then every mapped WAV once, all STORED, fixed timestamps."""
    paths = list(dict.fromkeys(z.sample.path for g in groups for z in sorted(
        g.zones, key=lambda z: (z.lokey, z.lovel, z.round_robin))))
    names = [archive_name(p) for p in paths]
    if len(set(names)) != len(names):
        raise ExportError("two samples share a file name", key="samples",
                          fix="give every sample a distinct file name inside samples/")
    part = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(_entry("multisample.xml"), xml.encode("utf-8"))
            for path, name in zip(paths, names):
                source = check_sample_file(folder, path)
                archive.writestr(_entry(name), source.read_bytes())
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _along_x(groups) -> list[BlendGroup]:
    return sorted(groups, key=lambda g: (g.grid_index[0] if g.grid_index else 0, g.index))

