"""What runs on a Ray worker: plain functions of picklable data, reading and writing only the shared cache.

Each task rebuilds the engine from the spec and loads the trained model from the cache, so any node can run
any task, and a retried task (its worker died) finds what the first attempt left: a fit resumes from its
last checkpoint in the cache's training folder.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def warm_up() -> None:
    """Import the pipeline (numpy, scipy, the engines' seams) while the driver still reads the sources."""
    from .. import pipeline  # noqa: F401


def fit_model(spec, corpus) -> bool:
    """Train (resuming) or find the cached model for this spec and corpus; True when it trained."""
    from ..engines import make_engine
    from ..pipeline import fit_or_load
    return fit_or_load(make_engine(spec), corpus, spec)


def render_shard(spec, model_key: str, kind: str, requests: Sequence) -> list[np.ndarray]:
    """Render a slice of a plan's requests with the cached model `model_key`."""
    from ..engines import make_engine
    from ..pipeline import model_folder
    engine = make_engine(spec)
    engine.load(model_folder(spec, engine, model_key))
    return engine.render_grains(requests) if kind == "kit" else engine.render(requests)


def process_chunk(fn, *columns) -> list:
    """Apply `fn` to a chunk of argument rows (a slice of the post-processing map)."""
    return [fn(*row) for row in zip(*columns)]
