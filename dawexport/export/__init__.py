"""Exporter registry: one module per format, each reading only the format-neutral Instrument.

An exporter is a function `write(instrument, folder) -> list[str]` that writes its files into `folder`
(the staging copy of the instrument folder, where the samples already are) and returns the paths it
wrote, relative to `folder`.

    write_formats(instrument, staging, ["sfz", "midi"])   # -> ['cat_flute.sfz', 'cat_flute_preview.mid']
"""
from __future__ import annotations

import importlib
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


def exporter(name: str):
    module, func = EXPORTERS[name].split(":")
    return getattr(importlib.import_module(module), func)


def write_formats(instrument, folder: Path, formats: list[str],
                  options: dict[str, dict] | None = None) -> list[str]:
    """Run each format's exporter; ``options`` holds extra keyword arguments per format name,
    e.g. ``{"ableton": {"live_version": 12}}``."""
    written: list[str] = []
    for name in formats:
        written += exporter(name)(instrument, Path(folder), **(options or {}).get(name, {}))
    return written
