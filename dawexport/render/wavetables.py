"""Serum-compatible wavetables rendered by the engine: along a path through the blend space, or along
the time of one note (attack → sustain). Extraction lives in render/wavetable.py, files in export/.

    >>> tables = make_wavetables(spec, engine, corpus, folder, progress)   # -> [Wavetable, ...]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.analysis import midi_to_hz
from ..engines.base import RenderRequest
from ..export.wavetable_files import write_serum_wav, write_surge_wt
from ..instrument import Wavetable
from .wavetable import normalise_table, table_from_note, table_from_takes


def path_weights(corners: list[str], frames: int) -> list[tuple[tuple[str, float], ...]]:
    """Corner weights at `frames` evenly spaced points along the polyline corner[0] → corner[1] → ..."""
    if len(corners) == 1:
        return [((corners[0], 1.0),)] * frames
    weights = []
    for u in np.linspace(0.0, len(corners) - 1, frames):
        i = min(int(np.floor(u)), len(corners) - 2)
        t = float(u - i)
        w = {name: 0.0 for name in corners}
        w[corners[i]] += 1 - t
        w[corners[i + 1]] += t
        weights.append(tuple(w.items()))
    return weights


def _mono(engine, corpus, requests: list[RenderRequest]) -> list[np.ndarray]:
    """Render every request on each channel of the corpus and average the channels."""
    per_channel = [RenderRequest(r.weights, ch, r.note, r.velocity, r.duration_s, r.release_s, r.variation)
                   for r in requests for ch in corpus.channels]
    takes = engine.render(per_channel)
    n = len(corpus.channels)
    out = []
    for i in range(len(requests)):
        group = takes[i * n:(i + 1) * n]
        length = min(len(t) for t in group)
        out.append(np.mean([t[:length] for t in group], axis=0))
    return out


def make_wavetables(spec, engine, corpus, folder: Path, progress) -> list[Wavetable]:
    tables = []
    (Path(folder) / "wavetables").mkdir(parents=True, exist_ok=True)
    for table_spec in spec.wavetables:
        corners = table_spec.corners or spec.blend_corners
        if table_spec.along == "blend":
            requests = [RenderRequest(w, "", table_spec.note, 127, 1.0, 0.0)
                        for w in path_weights(corners, table_spec.frames)]
            table = table_from_takes(_mono(engine, corpus, requests), engine.sample_rate,
                                     f0_hz=float(midi_to_hz(table_spec.note)))
            comment = f"dawexport {spec.name} {' to '.join(corners)}"
        else:
            weights = path_weights(corners, 1)[0] if len(corners) == 1 else \
                tuple((c, 1.0 / len(corners)) for c in corners)
            [note] = _mono(engine, corpus, [RenderRequest(weights, "", table_spec.note, 127,
                                                          spec.note.length, 0.0)])
            table = table_from_note(note, engine.sample_rate, frames=table_spec.frames,
                                    f0_hz=float(midi_to_hz(table_spec.note)))
            comment = f"dawexport {spec.name} {table_spec.name} over time"
        table = normalise_table(table)
        base = f"wavetables/{spec.name}_{table_spec.name}"
        write_serum_wav(Path(folder) / f"{base}.wav", table, comment=comment)
        write_surge_wt(Path(folder) / f"{base}.wt", table)
        progress.info(f"{base}.wav: {table.shape[0]} frames × {table.shape[1]}")
        tables.append(Wavetable(path=f"{base}.wav", frames=table.shape[0], frame_size=table.shape[1],
                                label=table_spec.name, extra_paths=(f"{base}.wt",)))
    return tables
