"""Draw the build report: read the build facts and the folder's sounds, write the images and report.html.

    write_page(folder, read_facts(folder))      # -> ['report.html', 'report/cells/....png', ...]

The page lives at the top of the build folder and links to what is next to it (samples/, wavetables/,
report/), so the folder can be moved or zipped and the page still plays. Nothing comes from the network.
"""
from __future__ import annotations

import math
import os
import time
from html import escape
from pathlib import Path
from urllib.parse import quote

import numpy as np
import soundfile as sf

from ..instrument import Instrument, Sample, Zone
from ..notes import midi_to_note
from ..templating import render_template
from .facts import instrument_from_json
from .images import png_bytes, spectrogram_image
from .sound import morph_through, read_mono
from .svg import curve_svg, loop_seam_svg, seam_step_db, waveform_svg, wavetable_svg

PAGE = "report.html"
CELL_SIZE = (80, 40)          # grid thumbnails (width, height) in pixels
WIDE_SIZE = (480, 120)        # sources and the side-by-side comparison
CLICK_DB = 6.0                # a seam bending more than this over the loop's own largest bend may click
STAGE_NAMES = {"sources": "read and analyse sources", "model": "load the cached model", "train": "train",
               "render": "render", "samples": "post-process", "wavetables": "wavetables",
               "export": "export", "report": "report"}


def _url(relative: str) -> str:
    return quote(relative)


def _stem(relative: str) -> str:
    return Path(relative).stem


def _write(folder: Path, relative: str, data: bytes) -> str:
    """Write a new file (never into an existing one in place: it may be a hard link to a published file)."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return relative


def _spectrogram_png(folder: Path, relative: str, x: np.ndarray, sr: int, size: tuple[int, int],
                     n_fft: int) -> str:
    return _write(folder, relative, png_bytes(spectrogram_image(x, sr, width=size[0], height=size[1],
                                                                n_fft=n_fft)))


def _cents(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{round(value, 1) + 0.0:+.1f} ct"


def _seconds(frames: int, sr: int) -> str:
    return f"{frames / sr:.3f} s"


# ---------------------------------------------------------------- summary

def summary(facts: dict, instrument: Instrument, derived_warnings: list[str]) -> dict:
    engine = facts["engine"]
    set_in_spec = set(engine.get("set_in_spec", []))
    settings = [(k, v, k in set_in_spec) for k, v in sorted(engine["settings"].items())]
    stages = [s for s in facts["stages"] if s["name"] != "done"]
    total = sum(s["seconds"] for s in stages) or 1.0
    spec = facts["spec"]
    output = spec["output"]
    return {
        "engine": engine, "settings": settings,
        "layout": _layout(instrument),
        "output": f"{output['sample_rate']} Hz, {output['bit_depth']}-bit, normalise {output['normalise']}; "
                  f"formats: {', '.join(output['formats'])}",
        "stages": [{"label": STAGE_NAMES.get(s["name"], s["name"]), "seconds": s["seconds"],
                    "share": 100.0 * s["seconds"] / total} for s in stages],
        "total_s": total,
        "memory": facts.get("memory", {}),
        "warnings": list(facts.get("warnings", [])) + derived_warnings,
    }


def _layout(instrument: Instrument) -> str:
    samples = len(instrument.samples)
    layers, rr = len(instrument.velocity_layers), instrument.round_robins
    if instrument.is_kit:
        pads = len({z.lokey for z in instrument.groups[0].zones})
        return f"a kit of {pads} pads × {layers} velocity layer(s) × {rr} round robin(s) = {samples} samples"
    zones = len({(z.lokey, z.hikey) for z in instrument.groups[0].zones})
    return (f"{len(instrument.groups)} blend point(s) × {zones} key zone(s) × {layers} velocity layer(s) × "
            f"{rr} round robin(s) = {samples} samples, {midi_to_note(instrument.key_range[0])}–"
            f"{midi_to_note(instrument.key_range[1])}, loop mode {instrument.loop_mode}")


# ---------------------------------------------------------------- sources

def sources(folder: Path, facts: dict) -> list[dict]:
    out = []
    for source in facts["sources"]:
        preview = source.get("preview")
        if not preview or not (folder / preview).exists():
            continue
        x, sr = read_mono(folder / preview)
        image = _spectrogram_png(folder, f"report/sources/{_stem(preview)}.png", x, sr, WIDE_SIZE, 2048)
        midi = source.get("pitch_midi")
        pitch = ("unpitched" if midi is None else
                 f"{midi_to_note(int(round(midi)))} {100 * (midi - round(midi)):+.0f} ct ({source['pitch_hz']:.1f} Hz)"
                 + (", root set in the spec" if source.get("root_forced") else ""))
        label = source["name"] + (f" (recording {source['take'] + 1})" if source.get("takes", 1) > 1 else "")
        out.append({"label": label, "name": source["name"], "file": source["file"], "pitch": pitch,
                    "midi": midi, "channels": source.get("channels"), "rate": source.get("sample_rate"),
                    "seconds": source.get("seconds"), "wave": waveform_svg(x, label=f"waveform of {label}"),
                    "image": _url(image), "audio": _url(preview), "files": [image]})
    return out


# ---------------------------------------------------------------- training

def training(facts: dict) -> dict | None:
    curve = facts.get("training")
    if not curve:
        return None
    series = [("train", "training", curve["steps"], curve["loss"])]
    if curve.get("val"):
        series.append(("val", "validation", curve["val_steps"], curve["val"]))
    when = "in this build" if curve.get("trained_now") else "earlier (the model came from the cache)"
    text = (f"{curve['total_steps']} steps in {curve['seconds']:.0f} s, trained {when}"
            + (f"; best validation loss {curve['best_val']:.4g} at step {curve['best_step']}"
               if curve.get("best_val") is not None else ""))
    return {"svg": curve_svg(series, x_label="step", y_label="loss"), "text": text, "model": curve.get("model")}


# ---------------------------------------------------------------- the grid

class Cells:
    """One entry per sample of the instrument: its thumbnail, its link, and what the info panel shows."""

    def __init__(self, folder: Path, instrument: Instrument, asked: dict[str, int]):
        self.folder = folder
        self.name = instrument.name
        self.by_path: dict[str, dict] = {}
        self.files: list[str] = []
        self.audio: dict[str, tuple[np.ndarray, int]] = {}
        zones: dict[str, tuple[Zone, str]] = {}
        for group in instrument.groups:
            for zone in group.zones:
                zones.setdefault(zone.sample.path, (zone, group.label))
        for index, sample in enumerate(instrument.samples):
            zone, point = zones[sample.path]
            self.by_path[sample.path] = self._cell(index, sample, zone, point, asked.get(sample.path))

    def _cell(self, index: int, sample: Sample, zone: Zone, point: str, asked: int | None) -> dict:
        x, sr = read_mono(self.folder / sample.path)
        self.audio[sample.path] = (x, sr)
        image = _spectrogram_png(self.folder, f"report/cells/{_stem(sample.path)}.png", x, sr, CELL_SIZE, 1024)
        self.files.append(image)
        tune = sample.tune_cents if sample.tune_cents is not None else 0.0
        # the sample sounds at root - tune/100; how far that is from the note the engine was asked for:
        error = None if asked is None else 100.0 * (sample.root_key - asked) - tune
        loop = sample.loop
        seam = seam_step_db(x, loop.start, loop.end) if loop else float("nan")
        info = {
            "name": Path(sample.path).name, "point": point,
            "keys": f"{midi_to_note(zone.lokey)}–{midi_to_note(zone.hikey)}",
            "vel": f"{zone.lovel}–{zone.hivel}", "root": midi_to_note(sample.root_key),
            "tune": _cents(tune), "error": _cents(error),
            "loud": f"{sample.loudness_db:.1f} dB" if sample.loudness_db is not None else "—",
            "peak": f"{sample.peak_db:.1f} dBFS" if sample.peak_db is not None else "—",
            "loop": (f"{loop.start}–{loop.end} ({1000 * loop.length / sr:.1f} ms, seam {seam:+.0f} dB)"
                     if loop else "none"),
            "length": _seconds(sample.frames, sample.sample_rate),
        }
        title = (f"{info['name']}\nkeys {info['keys']} · velocity {info['vel']}\nroot {info['root']}, fine tune "
                 f"{info['tune']}, pitch error {info['error']}\nloudness {info['loud']} · loop {info['loop']}")
        short = Path(sample.path).stem.removeprefix(f"{self.name}_").replace("_", " ")
        return {"id": f"s{index}", "path": sample.path, "short": short, "wav": _url(sample.path), "img": _url(image),
                "info": info, "title": title, "zone": zone, "seam": seam, "label": zone.label,
                "velocity": zone.velocity}


def grid(instrument: Instrument, cells: Cells) -> list[dict]:
    """One block per blend point: columns are key zones (low to high), rows velocity layers (loud on top)
    × round robins; every cell is one sample."""
    blocks = []
    for group in instrument.groups:
        columns = sorted({(z.lokey, z.hikey) for z in group.zones})
        rows = sorted({(z.hivel, z.round_robin) for z in group.zones}, key=lambda r: (-r[0], r[1]))
        at = {((z.lokey, z.hikey), (z.hivel, z.round_robin)): cells.by_path[z.sample.path] for z in group.zones}
        roots = {}
        for z in group.zones:
            roots.setdefault((z.lokey, z.hikey), z.sample.root_key)
        blocks.append({
            "label": group.label,
            "weights": ", ".join(f"{k} {100 * v:.0f}%" for k, v in group.weights.items() if v > 1e-9),
            "columns": [{"keys": f"{midi_to_note(lo)}–{midi_to_note(hi)}", "root": midi_to_note(roots[(lo, hi)])}
                        for lo, hi in columns],
            "rows": [{"label": f"v{hivel}" + (f" rr{rr}" if instrument.round_robins > 1 else ""),
                      "cells": [at.get((col, (hivel, rr))) for col in columns]} for hivel, rr in rows],
        })
    return blocks


def square(instrument: Instrument, cells: Cells, corners: list[str]) -> dict | None:
    """A 4-corner instrument's blend square: each point at its place, playing the middle key zone's loudest
    layer (first round robin). Corner A top left, B top right, C bottom left, D bottom right."""
    if len(instrument.axes) != 2:
        return None
    points = []
    for group in instrument.groups:
        columns = sorted({(z.lokey, z.hikey) for z in group.zones})
        middle = columns[len(columns) // 2]
        zone = max((z for z in group.zones if (z.lokey, z.hikey) == middle and z.round_robin == 1),
                   key=lambda z: z.hivel)
        points.append({"col": group.grid_index[0] + 1, "row": group.grid_index[1] + 1, "label": group.label,
                       "cell": cells.by_path[zone.sample.path]})
    zone = points[0]["cell"]["info"]["keys"]
    return {"size": instrument.axes[0].points, "points": points, "corners": corners, "zone": zone}


def kit(instrument: Instrument, cells: Cells) -> list[dict]:
    """One tile per pad: its label, the loudest layer's picture, a button per velocity layer × round robin."""
    tiles = []
    for key in sorted({z.lokey for z in instrument.groups[0].zones}):
        zones = sorted((z for z in instrument.groups[0].zones if z.lokey == key),
                       key=lambda z: (-z.hivel, z.round_robin))
        tiles.append({"key": midi_to_note(key), "label": zones[0].label or midi_to_note(key),
                      "img": cells.by_path[zones[0].sample.path]["img"],
                      "cells": [cells.by_path[z.sample.path] for z in zones]})
    return tiles


def loops(instrument: Instrument, cells: Cells) -> list[dict]:
    out = []
    for sample in instrument.samples:
        if sample.loop is None:
            continue
        cell = cells.by_path[sample.path]
        x, sr = cells.audio[sample.path]
        out.append({"cell": cell, "svg": loop_seam_svg(x, sample.loop.start, sample.loop.end, sr),
                    "seam": cell["seam"], "clicks": bool(cell["seam"] > CLICK_DB)})
    return out


# ---------------------------------------------------------------- wavetables and comparison

def wavetables(folder: Path, instrument: Instrument) -> tuple[list[dict], list[str]]:
    out, files = [], []
    for table in instrument.wavetables:
        audio, _ = sf.read(str(folder / table.path), dtype="float32", always_2d=True)
        frames = audio[:, 0][: table.frames * table.frame_size].reshape(-1, table.frame_size)
        morph = morph_through(frames, sample_rate=instrument.sample_rate)
        buffer = _wav_bytes(morph, instrument.sample_rate)
        relative = _write(folder, f"report/wavetables/{_stem(table.path)}_morph.wav", buffer)
        files.append(relative)
        out.append({"label": table.label, "path": table.path, "frames": len(frames),
                    "svg": wavetable_svg(frames), "morph": _url(relative),
                    "files": ", ".join([Path(table.path).name] + [Path(p).name for p in table.extra_paths])})
    return out, files


def _wav_bytes(x: np.ndarray, sr: int) -> bytes:
    import io
    buffer = io.BytesIO()
    sf.write(buffer, x, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def compare(folder: Path, instrument: Instrument, cells: Cells, source_rows: list[dict],
            corners: list[str], asked: dict[str, int]) -> tuple[list[dict], list[str]]:
    """For each corner: its source next to the instrument's note nearest the source's pitch at that corner
    (loudest layer, first round robin)."""
    out, files = [], []
    if instrument.is_kit:
        return out, files
    for corner in corners:
        source = next((s for s in source_rows if s["name"] == corner), None)
        group = next((g for g in instrument.groups if g.weights.get(corner, 0.0) > 1 - 1e-6), None)
        if source is None or group is None:
            continue
        target = source["midi"] if source["midi"] is not None else 60.0
        candidates = [z for z in group.zones if z.round_robin == 1]
        top = max(z.hivel for z in candidates)
        zone = min((z for z in candidates if z.hivel == top),
                   key=lambda z: abs(asked.get(z.sample.path, z.sample.root_key) - target))
        x, sr = cells.audio[zone.sample.path]
        image = _spectrogram_png(folder, f"report/compare/{_stem(zone.sample.path)}.png", x, sr, WIDE_SIZE, 2048)
        files.append(image)
        out.append({"corner": corner, "source": source, "img": _url(image),
                    "cell": cells.by_path[zone.sample.path],
                    "note": midi_to_note(asked.get(zone.sample.path, zone.sample.root_key))})
    return out, files


# ---------------------------------------------------------------- the page

def write_page(folder: Path, facts: dict, *, count_own_time: bool = False) -> list[str]:
    """Draw every section into `folder` (report.html and report/...); returns the files written.
    `count_own_time` adds the drawing time to the build's last stage ("report") before the page is written."""
    folder = Path(folder)
    began = time.monotonic()
    instrument = instrument_from_json(facts["instrument"])
    asked = {k: int(v) for k, v in facts.get("asked", {}).items()}
    spec = facts["spec"]
    corners = list(spec["blend"]["corners"]) if spec.get("blend") else list(spec["sources"])[:1]
    cells = Cells(folder, instrument, asked)
    source_rows = sources(folder, facts)
    loop_rows = loops(instrument, cells)
    table_rows, table_files = wavetables(folder, instrument)
    compare_rows, compare_files = compare(folder, instrument, cells, source_rows, corners, asked)
    derived = _derived_warnings(instrument, loop_rows, cells)
    stages = facts["stages"]
    if count_own_time and stages and stages[-1]["name"] == "report":
        stages[-1]["seconds"] = round(stages[-1]["seconds"] + time.monotonic() - began, 3)
    html = render_template(
        "report/report.html.j2", title=f"{facts['name']} — dawexport build report", facts=facts,
        summary=summary(facts, instrument, derived), sources=source_rows, training=training(facts),
        grid=grid(instrument, cells) if not instrument.is_kit else [], square=square(instrument, cells, corners),
        kit=kit(instrument, cells) if instrument.is_kit else [], loops=loop_rows, wavetables=table_rows,
        compare=compare_rows, cells=list(cells.by_path.values()), escape=escape, click_db=CLICK_DB)
    files = cells.files + [f for row in source_rows for f in row["files"]] + table_files + compare_files
    return [_write(folder, PAGE, html.encode())] + files


def _derived_warnings(instrument: Instrument, loop_rows: list[dict], cells: Cells) -> list[str]:
    warnings = []
    clicks = [row["cell"]["info"]["name"] for row in loop_rows if row["clicks"]]
    if clicks:
        warnings.append(f"{len(clicks)} loop seam(s) bend the waveform more than {CLICK_DB:g} dB over the loop's "
                        f"own largest bend and may click, e.g. {clicks[0]} (see Loops)")
    hot = [Path(s.path).name for s in instrument.samples if s.peak_db is not None and s.peak_db > -0.1]
    if hot:
        warnings.append(f"{len(hot)} sample(s) peak above -0.1 dBFS, e.g. {hot[0]}")
    return warnings
