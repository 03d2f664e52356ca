"""From raw takes at the model's rate to finished sample files: the musician's manual chain, automated.

    samples = make_samples(plan, takes, 16000, SampleSettings.from_spec(spec), folder, progress)

Per take: rejoin channels → resample to the output rate → DC removal → onset-aligned trim → measure the
pitch (root key and fine tune come from what was measured, not from what was asked) → sustain loop at
matching zero crossings, crossfaded → loudness. A grain kit's pads (`map_by_pitch=False`) skip the pitch
and the loop: each is a one-shot rooted on its own key. Then, across all takes, one normalisation policy
(velocity layers in order, loudness even across the keyboard, nothing clips) → fades → WAV with smpl/inst.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..audio.analysis import estimate_pitch, integrated_loudness_db, midi_to_hz
from ..audio.io import write_wav
from ..audio.loops import crossfade_loop, find_sustain_loop
from ..audio.post import fade, normalise_gains, remove_dc, trim
from ..audio.resample import resample
from ..audio.stereo import join_channels
from ..instrument import Loop, Sample
from ..notes import midi_to_note
from ..progress import SILENT
from .plan import Cell, RenderPlan

LOOP_CROSSFADE_S = 0.02


@dataclass(frozen=True)
class SampleSettings:
    name: str
    stereo: str
    sample_rate: int
    bit_depth: str
    normalise: str
    loop_mode: str           # auto | sustain | continuous | one_shot | none
    held_s: float
    map_by_pitch: bool = True    # root key from the measured pitch; False: the key asked for (a drum map)
    seamless_loop_s: float = 0.0   # > 0: the whole take loops (a texture), its lead-in crossfaded into the end
    fade_out_s: float | None = None  # the final fade; default 10 ms (shorter for very short takes)

    @classmethod
    def from_spec(cls, spec) -> "SampleSettings":
        if spec.texture is not None:   # a texture kit: pads rooted on their keys, looped seamlessly or one-shot
            texture = spec.texture
            return cls(spec.name, spec.stereo, spec.output.sample_rate, spec.output.bit_depth,
                       spec.output.normalise, "continuous" if texture.loop else "one_shot", texture.length,
                       map_by_pitch=False, seamless_loop_s=texture.crossfade if texture.loop else 0.0,
                       fade_out_s=None if texture.loop else texture.fade_out)
        if spec.kit is not None:   # a grain kit: one-shots, each pad rooted on its own key
            return cls(spec.name, spec.stereo, spec.output.sample_rate, spec.output.bit_depth,
                       spec.output.normalise, "one_shot", spec.kit.length, map_by_pitch=False)
        return cls(spec.name, spec.stereo, spec.output.sample_rate, spec.output.bit_depth,
                   spec.output.normalise, spec.loop, spec.note.length)

    @property
    def wants_loops(self) -> bool:
        return self.loop_mode in ("auto", "sustain", "continuous")


@dataclass(frozen=True)
class ProcessedTake:
    """A take after the per-take chain, before the cross-take normalisation."""
    audio: np.ndarray           # (channels, frames) at the output rate
    root_key: int
    offset_cents: float         # measured pitch above root_key
    loop: Loop | None
    loudness_db: float


def _pitch(x: np.ndarray, sr: int, requested_note: int):
    """The sample's pitch; the search reaches above the note asked for, so high notes are not read an octave low."""
    return estimate_pitch(x, sr, fmax=min(sr / 4, max(2000.0, 2.5 * float(midi_to_hz(requested_note)))))


def _plausible(pitch, requested_note: int) -> bool:
    """A confident pitch within half an octave of the note asked for; anything further is an octave or
    subharmonic error (e.g. two detuned layers beating), and the asked-for note is the better root."""
    return bool(np.isfinite(pitch.hz) and pitch.confidence > 0.3 and abs(pitch.midi - requested_note) <= 6)


def played_while_held(x: np.ndarray, loop: Loop, frames: int) -> np.ndarray:
    """What a sampler plays while the key is held for `frames`: the start, then the loop over and over."""
    body = x[:loop.end + 1]
    if len(body) >= frames:
        return body[:frames]
    repeats = int(np.ceil((frames - len(body)) / loop.length))
    return np.concatenate([body, np.tile(x[loop.start:loop.end + 1], repeats)])[:frames]


def played_at_rate(x: np.ndarray, loop: Loop, frames: int, rate: float) -> np.ndarray:
    """`played_while_held` as a sampler plays it `rate` times faster (a pitch shift): `frames` output samples
    read at positions k · rate, linearly interpolated."""
    content = played_while_held(x, loop, int(np.ceil(frames * rate)) + 2)
    return np.interp(np.arange(frames) * rate, np.arange(len(content)), content)


def _held_pitch(x: np.ndarray, loop: Loop, frames: int, sr: int, requested_note: int):
    """The pitch of what a sampler plays while the key the take was made for is held for `frames`, as a
    `PitchEstimate` whose root key and fine tune put that on the key (the root may be the next key when
    the take sits near a quarter tone).

    The sampler plays the sample shifted by its fine tune: in `frames` it goes through `frames` times the
    rate of it, and each frame the pitch tracker reads lands elsewhere in it. For a held part that glides,
    both move the reading: a vowel rising 300 cents read 5-8 cents off at a 45-cent fine tune when
    measured unshifted. So the take is played shifted as the sampler will, read, and the tune corrected by
    what is left (twice: the second correction is a fraction of a cent on a steady note)."""
    pitch = _pitch(played_while_held(x, loop, frames), sr, requested_note)
    for _ in range(2):
        if not _plausible(pitch, requested_note):
            return pitch
        key = requested_note
        heard = _pitch(played_at_rate(x, loop, frames, 2.0 ** ((key - pitch.midi) / 12.0)), sr, requested_note)
        if not np.isfinite(heard.midi) or abs(heard.midi - key) > 0.5:
            return pitch
        midi = pitch.midi + heard.midi - key
        pitch = replace(pitch, midi=midi, hz=midi_to_hz(midi))
    return pitch


@dataclass(frozen=True)
class RenderedSample:
    cell: Cell
    sample: Sample


def process_take(channels: dict[str, np.ndarray], requested_note: int, model_rate: int,
                 settings: SampleSettings) -> ProcessedTake:
    """The per-take chain (pure): returns the processed audio with its measured pitch and loop."""
    sr = settings.sample_rate
    audio = resample(join_channels(channels, settings.stereo), model_rate, sr)
    audio = np.stack([remove_dc(ch, sr) for ch in audio]).astype(np.float32)
    if settings.seamless_loop_s > 0:
        return seamless_loop(audio, sr, settings, requested_note)
    mono = audio.mean(axis=0)
    trimmed, start = trim(mono, sr)
    audio = audio[:, start:start + len(trimmed)]
    mono = audio.mean(axis=0)
    if not settings.map_by_pitch:     # a drum map: the sample plays as rendered on the key it was made for
        return ProcessedTake(audio.astype(np.float32), requested_note, 0.0, None,
                             integrated_loudness_db(mono, sr))
    held = mono[:max(0, int(round(settings.held_s * sr)) - start)]

    pitch = _pitch(held if len(held) > sr // 10 else mono, sr, requested_note)
    loop = None
    if settings.wants_loops and len(held) > sr // 5:
        found = find_sustain_loop(held, sr, pitch.hz if np.isfinite(pitch.hz) else float("nan"),
                                  crossfade_s=LOOP_CROSSFADE_S)
        if found is not None:
            loop_start, loop_end = found
            xfade = min(int(LOOP_CROSSFADE_S * sr), loop_start, (loop_end - loop_start) // 2)
            audio = np.stack([crossfade_loop(ch, loop_start, loop_end, xfade) for ch in audio])
            loop = Loop(int(loop_start), int(loop_end), int(xfade))
            # A held note spends its time in the loop: measure the pitch of what a sampler will play.
            played = _held_pitch(audio.mean(axis=0), loop, len(held), sr, requested_note)
            pitch = played if _plausible(played, requested_note) else pitch

    if _plausible(pitch, requested_note):
        root_key = int(np.clip(round(pitch.midi), 0, 127))
        offset_cents = float(100 * (pitch.midi - root_key))
    else:
        root_key, offset_cents = requested_note, 0.0
    return ProcessedTake(audio.astype(np.float32), root_key, offset_cents, loop,
                         integrated_loudness_db(audio.mean(axis=0), sr))


def seamless_loop(audio: np.ndarray, sr: int, settings: SampleSettings, key: int) -> ProcessedTake:
    """A texture that loops whole: the first `seamless_loop_s` are a lead-in, the loop runs from there to the
    last sample, and its end is crossfaded into the lead-in so the wrap continues the sound (no trim)."""
    lead = int(round(settings.seamless_loop_s * sr))
    length = int(round(settings.held_s * sr))
    audio = audio[:, :lead + length]
    end = audio.shape[1] - 1
    lead = min(lead, end // 2)
    audio = np.stack([crossfade_loop(ch, lead, end, lead) for ch in audio]).astype(np.float32)
    return ProcessedTake(audio, key, 0.0, Loop(lead, end, lead), integrated_loudness_db(audio.mean(axis=0), sr))


def sample_path(settings: SampleSettings, cell: Cell) -> str:
    note = midi_to_note(cell.zone.root).replace("#", "s")
    rr = f"_rr{cell.round_robin}"
    label = cell.pad.label if cell.pad is not None else cell.point.label
    return f"samples/{settings.name}_{label}_{note}_v{cell.layer.velocity}{rr}.wav"


def make_samples(plan: RenderPlan, takes: list[np.ndarray], model_rate: int, settings: SampleSettings,
                 folder: Path, progress=SILENT, map_fn=map) -> list[RenderedSample]:
    """Post-process every take of the plan and write the WAVs into folder/samples/.

    `map_fn` applies the per-take chain to every take (builtin `map` here; a cluster maps it in parallel)."""
    n_channels = len(plan.channels)
    channels = [dict(zip(plan.channels, takes[i * n_channels:(i + 1) * n_channels])) for i in range(len(plan.cells))]
    bar = progress.bar(plan.cells, total=len(plan.cells), desc="samples", unit="take")
    processed = list(map_fn(process_take, channels, (c.zone.root for c in bar), [model_rate] * len(plan.cells),
                            [settings] * len(plan.cells)))
    off = [sample_path(settings, t) for t, p in zip(plan.cells, processed) if abs(p.root_key - t.zone.root) > 1]
    if off:
        progress.warn(f"{len(off)} take(s) sound more than a semitone away from the note asked for (a gliding "
                      f"source?), e.g. {off[0]}: they are mapped by the pitch they were measured at")

    peaks = np.array([np.max(np.abs(p.audio)) for p in processed])
    gains = normalise_gains(np.array([p.loudness_db for p in processed]),
                            np.array([t.layer.index for t in plan.cells]), len(plan.layers),
                            policy=settings.normalise, peak=peaks)
    (Path(folder) / "samples").mkdir(parents=True, exist_ok=True)
    rendered = []
    for cell, item, gain in zip(plan.cells, processed, gains):
        fade_out = min(0.01 if settings.fade_out_s is None else settings.fade_out_s,
                       0.25 * item.audio.shape[1] / settings.sample_rate)
        if item.loop is not None:  # keep the fade-out clear of the loop
            fade_out = min(fade_out, (item.audio.shape[1] - 1 - item.loop.end) / settings.sample_rate)
        audio = np.stack([fade(ch * gain, settings.sample_rate, fade_in_s=0.001, fade_out_s=max(0.0, fade_out))
                          for ch in item.audio]).astype(np.float32)
        rel = sample_path(settings, cell)
        write_wav(Path(folder) / rel, audio, settings.sample_rate, settings.bit_depth,
                  unity_note=item.root_key, fine_tune_cents=item.offset_cents,
                  loop=None if item.loop is None else (item.loop.start, item.loop.end),
                  key_range=(cell.zone.lokey, cell.zone.hikey), velocity_range=(cell.layer.lovel, cell.layer.hivel))
        peak = float(np.max(np.abs(audio)))
        rendered.append(RenderedSample(cell, Sample(
            path=rel, frames=audio.shape[1], sample_rate=settings.sample_rate, channels=audio.shape[0],
            root_key=item.root_key, tune_cents=-item.offset_cents, loop=item.loop,
            peak_db=float(20 * np.log10(max(peak, 1e-9))), loudness_db=float(item.loudness_db + 20 * np.log10(gain)))))
    return rendered
