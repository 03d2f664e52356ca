"""Exporter registry: one module per format, each reading only the format-neutral Instrument.

An exporter is a function `write(instrument, folder) -> list[str]` that writes its files into `folder`
(the staging copy of the instrument folder, where the samples already are) and returns the paths it
wrote, relative to `folder`.

    >>> write_formats(instrument, staging, ["sfz", "midi"])
    ['cat_flute.sfz', 'cat_flute_preview.mid']
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

# format name -> "module:function"; imported lazily.
EXPORTERS: dict[str, str] = {
    "sfz": "dawexport.export.sfz:write",
    "midi": "dawexport.export.midi_preview:write",
    "ableton": "dawexport.export.ableton:write",
    "decent_sampler": "dawexport.export.decent_sampler:write",
    "bitwig": "dawexport.export.bitwig:write",
    "sf2": "dawexport.export.sf2:write",
}


def file_stem(name: str) -> str:
    """The instrument name made safe as a file name (no path separators or control characters)."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", name).strip(" .")
    return stem or "instrument"


def check_instrument(instrument, loop_modes) -> None:
    """The checks every exporter makes first: a loop mode it can write, and at least one zone."""
    from ..errors import ExportError
    if instrument.loop_mode not in loop_modes:
        raise ExportError(f"unknown loop mode {instrument.loop_mode!r}", key="loop_mode",
                          fix=f"use one of {', '.join(sorted(loop_modes))}")
    if not instrument.groups or not any(g.zones for g in instrument.groups):
        raise ExportError("the instrument has no zones to map", key="groups",
                          fix="render at least one key, velocity layer and blend point")


def exporter(name: str):
    module, func = EXPORTERS[name].split(":")
    return getattr(importlib.import_module(module), func)


def write_formats(instrument, folder: Path, formats: list[str]) -> list[str]:
    written: list[str] = []
    for name in formats:
        written += exporter(name)(instrument, Path(folder))
    return written
