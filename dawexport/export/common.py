"""The checks and text helpers every exporter shares: file names, sample paths, key/velocity ranges, loop
bounds, numbers and XML.

    >>> decimal(0.35), decimal(100.0), decimal(1 / 3, 4)
    ('0.35', '100', '0.3333')
    >>> xml_attr('Cat "meow"\\n& flute')
    'Cat &quot;meow&quot; &amp; flute'
    >>> file_stem("cat/flute: v2")
    'cat_flute_ v2'
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

from ..errors import ExportError


def file_stem(name: str) -> str:
    """The instrument name made safe as a file name (no path separators or control characters)."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", name).strip(" .")
    return stem or "instrument"


def check_instrument(instrument, loop_modes) -> None:
    """The checks every exporter makes first: a loop mode it can write, and at least one zone."""
    if instrument.loop_mode not in loop_modes:
        raise ExportError(f"unknown loop mode {instrument.loop_mode!r}", key="loop_mode",
                          fix=f"use one of {', '.join(sorted(loop_modes))}")
    if not instrument.groups or not any(g.zones for g in instrument.groups):
        raise ExportError("the instrument has no zones to map", key="groups",
                          fix="render at least one key, velocity layer and blend point")


# ------------------------------------------------------------------------------------------ samples

def is_relative_path(path: str) -> bool:
    """A path inside the instrument folder, with '/' separators: not absolute, no '..', no drive letter."""
    return not (not path or path.startswith("/") or "\\" in path or ".." in PurePosixPath(path).parts
                or re.match(r"^[A-Za-z]:", path))


def relative_sample_path(path: str) -> str:
    """`path` if it is relative to the instrument folder; else an ExportError."""
    if not is_relative_path(path):
        raise ExportError(f"sample path {path!r} is not relative to the instrument folder", key="samples",
                          fix="keep sample paths relative (e.g. samples/x.wav) with '/' separators")
    return path


def check_sample_file(folder: Path, path: str, fix: str = "write the samples into the instrument folder "
                                                          "before exporting") -> Path:
    """The sample file `path` (relative to `folder`), which must exist."""
    source = Path(folder) / path
    if not source.is_file():
        raise ExportError(f"sample {path} is missing", file=str(source), key="samples", fix=fix)
    return source


def zone_range_error(zone, path: str) -> ExportError:
    return ExportError(f"zone of {path} has keys {zone.lokey}..{zone.hikey} and velocities "
                       f"{zone.lovel}..{zone.hivel}", key="zones",
                       fix="keys and velocities must be ordered ranges inside 0..127")


def check_zone(zone, path: str) -> None:
    """Keys and velocities are ordered ranges inside 0..127."""
    if not (0 <= zone.lokey <= zone.hikey <= 127 and 0 <= zone.lovel <= zone.hivel <= 127):
        raise zone_range_error(zone, path)


def check_loop(loop, frames: int, path: str, fix: str = "loop end is inclusive and < frames") -> None:
    """A sustain loop inside the sample: 0 <= start < end < frames (the end is inclusive)."""
    if not 0 <= loop.start < loop.end < frames:
        raise ExportError(f"loop {loop.start}..{loop.end} of {path} lies outside its {frames} frames",
                          key="loop", fix=fix)


# ---------------------------------------------------------------------------------------- numbers

def decimal(value: float, digits: int = 6) -> str:
    """A short decimal without exponent, rounded to `digits` places: 0.3 -> '0.3', 100.0 -> '100'."""
    if not math.isfinite(value):
        raise ExportError(f"value {value!r} is not a finite number", fix="check the instrument's envelope")
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def clamp(value: float, lo: float, hi: float) -> float:
    """`value` inside lo..hi; a value that is not a finite number is an ExportError."""
    if not math.isfinite(value):
        raise ExportError(f"value {value!r} is not a finite number", key="envelope",
                          fix="check the instrument's envelope")
    return min(hi, max(lo, value))


# -------------------------------------------------------------------------------------------- XML

def _one_line(text) -> str:
    return "".join(ch for ch in " ".join(str(text).split()) if ch >= " ")


def xml_text(text) -> str:
    """Text safe between XML tags: one line, no control characters, '&', '<' and '>' escaped."""
    return escape(_one_line(text))


def xml_attr(text) -> str:
    """Text safe inside a double-quoted XML attribute (one line)."""
    return escape(_one_line(text), {'"': "&quot;"})


def parse_xml(text: str, what: str) -> ET.Element:
    """Parse a rendered template, so that a template error surfaces here and not in the user's sampler."""
    try:
        return ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        raise ExportError(f"the {what} template produced malformed XML ({exc})",
                          fix="report this as a dawexport bug") from None
