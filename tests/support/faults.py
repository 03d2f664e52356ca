"""Tiny inputs for the fault and hostile-input tests: a sine source, a one-sample spec, the leftovers check.

    >>> import tempfile
    >>> tiny(Path(tempfile.mkdtemp())).name
    'tiny.yaml'
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from dawexport.cli import main

SR = 22050


def sine(path: Path, seconds: float = 0.5, sr: int = SR, channels: int = 1, freq: float = 262.0) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    tone = (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    sf.write(path, np.tile(tone[:, None], (1, channels)), sr)
    return path


def tiny(folder: Path, name: str = "tiny", **changes) -> Path:
    """A spec for a one-sample instrument, with its source, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    sine(folder / "tone.wav")
    spec = {"name": name, "sources": {"tone": "tone.wav"}, "engine": {"name": "sampler"},
            "keys": {"low": "C4", "high": "C4", "every": 1}, "velocity_layers": 1,
            "note": {"length": 0.3, "release": 0.1}, "output": {"dir": f"out/{name}", "formats": ["sfz"]}}
    spec.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def leftovers(folder: Path) -> list[str]:
    """Half-written things anywhere under `folder`: staging folders, old copies, partial files."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if ".staging-" in p.name or ".old-" in p.name or ".partial" in p.name or p.suffix == ".part")


def cli(*args) -> int:
    return main([*map(str, args)])


ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
name: bomb
sources: {x: *i}
"""


def one_hertz_wav(path: Path) -> Path:
    """A WAV whose header says 1 Hz (decoding it at face value and resampling wants ~15 GiB)."""
    sine(path, seconds=8.0, sr=44100)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"fmt "
    data[24:28] = (1).to_bytes(4, "little")                # sample rate
    data[28:32] = (4).to_bytes(4, "little")                # byte rate
    path.write_bytes(bytes(data))
    return path
