"""Small specs that build in seconds, for the batch and cluster tests.

    >>> small_spec(Path("."), "one", velocity_layers=2).name     # ./one.yaml, writing ./out/one
    'one.yaml'
"""
from __future__ import annotations

from pathlib import Path

import yaml

from support import copy_example_sounds


def small_spec(folder: Path, name: str, **changes) -> Path:
    """A sampler spec of 2 blend points x 2 keys writing out/<name> (SFZ only); `changes` replace its keys."""
    if not (Path(folder) / "flute.wav").exists():
        copy_example_sounds(folder)
    spec = {"name": name, "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"},
            "blend": {"corners": ["cat", "flute"], "points_per_side": 2},
            "keys": {"low": "C4", "high": "D4", "every": 3}, "velocity_layers": 1,
            "note": {"length": 0.5, "release": 0.1}, "output": {"dir": f"out/{name}", "formats": ["sfz"]}}
    spec.update(changes)
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
