"""Serum-compatible wavetables rendered by the engine: along a path through the blend space, along the
time of one note (attack → sustain), (engines with the grains capability) a morph from one grain to
another, or (texture instruments) cycles through the tonal textures the curator kept. Extraction lives in audio/cycles.py, files in export/wavetables.py.

    tables = make_wavetables(spec, engine, corpus, folder, progress)   # -> [Wavetable, ...]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.analysis import estimate_pitch, midi_to_hz
from ..audio.cycles import align_phase, extract_cycle, measure_period, normalise_table, table_from_note, table_from_takes
from ..engines.base import RenderRequest
from ..errors import ExportError
from ..export.wavetables import write_serum_wav, write_surge_wt
from ..instrument import Wavetable


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


def make_wavetables(spec, engine, corpus, folder: Path, progress, textures=None, spares=None) -> list[Wavetable]:
    """`textures`: (label, mono audio at the engine's rate) of a texture instrument's kept textures;
    `spares`: the candidates it passed but did not keep (see `texture_table`)."""
    tables = []
    (Path(folder) / "wavetables").mkdir(parents=True, exist_ok=True)
    for table_spec in spec.wavetables:
        corners = table_spec.corners or spec.blend_corners
        if table_spec.along == "blend":
            requests = [RenderRequest(w, "", table_spec.note, 127, 1.0, 0.0)
                        for w in path_weights(corners, table_spec.frames)]
            table = table_from_takes(_mono(engine, corpus, requests), engine.take_rate,
                                     f0_hz=float(midi_to_hz(table_spec.note)))
            comment = f"dawexport {spec.name} {' to '.join(corners)}"
        elif table_spec.along == "texture":
            table, used = texture_table(textures or [], engine.sample_rate, table_spec.frames, spares or [])
            comment = f"dawexport {spec.name} {table_spec.name} from {used}"
        elif table_spec.along == "grains":
            table, comment = grain_morph_table(engine, corpus, corners, table_spec.frames)
            comment = f"dawexport {spec.name} {comment}"
        else:
            weights = path_weights(corners, 1)[0] if len(corners) == 1 else \
                tuple((c, 1.0 / len(corners)) for c in corners)
            [note] = _mono(engine, corpus, [RenderRequest(weights, "", table_spec.note, 127,
                                                          spec.note.length, 0.0)])
            table = table_from_note(note, engine.take_rate, frames=table_spec.frames,
                                    f0_hz=float(midi_to_hz(table_spec.note)))
            comment = f"dawexport {spec.name} {table_spec.name} over time"
        table = normalise_table(table)
        base = f"wavetables/{spec.name}_{table_spec.name}"
        write_serum_wav(Path(folder) / f"{base}.wav", table)
        write_surge_wt(Path(folder) / f"{base}.wt", table)
        progress.info(f"{base}.wav: {table.shape[0]} frames × {table.shape[1]} ({comment})")
        tables.append(Wavetable(path=f"{base}.wav", frames=table.shape[0], frame_size=table.shape[1],
                                label=table_spec.name, extra_paths=(f"{base}.wt",)))
    return tables


TEXTURE_PREFERENCE = ("tonal", "drone")


def texture_table(textures: list[tuple[str, np.ndarray]], sr: int, frames: int,
                  spares: list[tuple[str, np.ndarray]] = ()) -> tuple[np.ndarray, str]:
    """A table through the tonal textures (else the drones, else the most pitched of the others): each
    contributes an equal share of the frames, taken along its time, one cycle of its own pitch each.
    `spares`: textures the curator passed but did not keep (a kit of re-primed hits may keep no hum; the
    candidates primed once give them); their tonal and drone ones come before the kept others.
    Returns (table, what it was made from).

        >>> t = np.arange(16000) / 16000
        >>> hum = ("tonal", np.sin(2 * np.pi * 110 * t) + 0.3 * np.sin(2 * np.pi * 330 * t))
        >>> hit = ("rhythmic", np.random.default_rng(0).standard_normal(16000) * (t * 4 % 1 < 0.05))
        >>> table, used = texture_table([hit], 16000, 8, spares=[hum])
        >>> table.shape, used
        ((8, 2048), '1 tonal texture(s) passed beside the pads')
    """
    def pitched(entry) -> float:
        return estimate_pitch(entry[1], sr, fmax=min(2000.0, sr / 4.0)).confidence

    def most_pitched(entries) -> list:          # pitch-tracks every entry: only when no tonal/drone is there
        return [max(entries, key=pitched)] if entries else []

    spares = list(spares)
    beside = " passed beside the pads"
    groups = [(lambda label=label: [t for t in textures if t[0] == label], "") for label in TEXTURE_PREFERENCE]
    groups += [(lambda label=label: [t for t in spares if t[0] == label], beside) for label in TEXTURE_PREFERENCE]
    groups += [(lambda: most_pitched(textures), ""), (lambda: most_pitched(spares), beside)]
    for choose, where in groups:
        chosen = choose()[:frames]
        parts = []
        for k, (_, audio) in enumerate(chosen):
            share = frames // len(chosen) + (1 if k < frames % len(chosen) else 0)
            if share < 1:
                continue
            try:
                parts.append(table_from_note(audio, sr, frames=max(share, 1), peak=None)[:share])
            except (ExportError, ValueError):
                continue
        if parts:
            break
    else:
        raise ExportError("no kept texture has a steady enough pitch for a wavetable", key="wavetables",
                          fix="remove the texture wavetable, keep more textures (texture.count), prime some "
                              "candidates once (engine.settings.primed_once), or train longer")
    table = np.concatenate(parts)
    if len(table) < frames:                        # a texture that gave fewer cycles: repeat the last ones
        table = np.concatenate([table, table[-1:].repeat(frames - len(table), axis=0)])
    labels = sorted({label for label, _ in chosen})
    return align_phase(table[:frames]), f"{len(parts)} {'/'.join(labels)} texture(s){where}"


GRAIN_MORPH_S = 0.12        # each morph step runs this long (many grain periods) before a cycle is taken
GRAIN_MORPH_SETTLE = 0.35   # ... and the cycle comes from after this fraction of it (past the start state)
SUBHARMONIC_FLOOR = 0.25    # a cycle whose fundamental is weaker than this (of its strongest harmonic) ...
MAX_SUBHARMONIC = 8         # ... was taken over h periods of what is heard (h <= this): retaken at h x f0


def _step_cycle(run: np.ndarray, sr: int) -> np.ndarray | None:
    """One frame from a morph step's run, or None when it has no stable period.

    Between two grains a reservoir can settle on a period-doubled (or tripled...) orbit: its exact period
    spans several cycles of the pitch you hear, with a weak subharmonic. A frame of the exact period would
    put the heard fundamental in bin 2 or 3; a wavetable frame is one cycle of the heard pitch, so such a
    frame is retaken at its strongest harmonic (the subharmonic wobble is dropped)."""
    pitch = estimate_pitch(run, sr, fmin=40.0, fmax=min(4000.0, sr / 4.0))
    f0 = float(pitch.hz) if pitch.pitched else None
    try:
        frame = extract_cycle(run, sr, f0)
    except ExportError:
        return None
    mags = np.abs(np.fft.rfft(frame))[1:MAX_SUBHARMONIC + 1]
    if mags[0] >= SUBHARMONIC_FLOOR * mags.max():
        return frame
    heard = int(np.argmax(mags)) + 1
    if f0 is None:
        f0 = sr / measure_period(run, sr, at=len(run) / 2)
    try:
        return extract_cycle(run, sr, f0 * heard)
    except (ExportError, ValueError):
        return None


def morph_endpoints(catalogue: dict[tuple[str, int], tuple[int, ...]], corners: list[str]
                    ) -> tuple[tuple[str, int], tuple[str, int]]:
    """(source, grain position) of the two ends of a grain morph: the middle sounding grain of the first
    corner's first recording (the steady part of the sound, not its onset or tail), to the middle sounding
    grain of the second corner; with one corner, from its first sounding grain to its last.

        >>> morph_endpoints({("cat", 0): (0, 1, 2), ("flute", 0): (1, 2)}, ["cat", "flute"])
        (('cat', 1), ('flute', 2))
    """
    def sounding(source: str) -> tuple[int, ...]:
        for (name, _take), positions in catalogue.items():
            if name == source and positions:
                return positions
        raise ExportError(f"source {source!r} has no sounding grain to build a grain morph from",
                          key="wavetables", fix="name a source that is not silent")
    a = sounding(corners[0])
    if len(corners) > 1:
        b = sounding(corners[1])
        return (corners[0], a[len(a) // 2]), (corners[1], b[len(b) // 2])
    return (corners[0], a[0]), (corners[0], a[-1])


def grain_morph_table(engine, corpus, corners: list[str], frames: int) -> tuple[np.ndarray, str]:
    """A wavetable that morphs from grain A to grain B (see `morph_endpoints`) across `frames` frames.

    The engine runs each morph step ((1 - mu) C_A + mu C_B, `engine.morph_frames` of the grain protocol) for `GRAIN_MORPH_S` on
    the corpus's first channel, and one cycle of each run's steady part becomes a frame (`extract_cycle`,
    guided by the step's own measured pitch: the morph glides between the grains' pitches). A step whose
    run has no stable period (a morph can pass through chaos) gets the crossfade of its nearest good
    neighbours, so the table still morphs smoothly. Returns (unnormalised table, "A to B" text)."""
    if not engine.capabilities.grains:
        raise ExportError(f"engine {engine.name!r} has no grains to morph", key="wavetables",
                          fix="use along: blend or note, or the conceptor engine")
    (src_a, pos_a), (src_b, pos_b) = morph_endpoints(engine.grain_catalogue(), corners)
    channel = corpus.channels[0]
    runs = engine.morph_frames((src_a, pos_a), (src_b, pos_b), channel, frames, GRAIN_MORPH_S)
    sr = engine.sample_rate
    runs = [np.asarray(r[int(GRAIN_MORPH_SETTLE * len(r)):], dtype=np.float64) for r in runs]
    cycles = [_step_cycle(run, sr) for run in runs]
    good = [i for i, c in enumerate(cycles) if c is not None]
    if not good:
        raise ExportError(f"no step of the grain morph from {src_a} to {src_b} has a stable pitch, so no "
                          "single cycle can be taken from it", key="wavetables",
                          fix="morph between pitched sources, or use along: blend")
    aligned = dict(zip(good, align_phase(np.stack([cycles[i] for i in good]))))
    for i in range(len(cycles)):
        if i not in aligned:
            before = max((g for g in good if g < i), default=None)
            after = min((g for g in good if g > i), default=None)
            if before is None or after is None:
                aligned[i] = aligned[after if before is None else before]
            else:
                t = (i - before) / (after - before)
                aligned[i] = (1 - t) * aligned[before] + t * aligned[after]
    table = align_phase(np.stack([aligned[i] for i in range(len(cycles))]))
    return table, f"{src_a} grain {pos_a + 1} to {src_b} grain {pos_b + 1}"
