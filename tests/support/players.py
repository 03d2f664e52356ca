"""Real players and checkers for tests: sfizz (Python API and the sfizz_render CLI), sfzlint, pitch.

    synth = sfizz_synth(folder / "tiny.sfz")
    audio = render_sfizz(synth, 60, 100, hold_s=0.5, total_s=0.8, cc={1: 127})   # (2, frames)
    measure_pitch_cents(audio, 44100, 60)          # signed error in cents
    sfzlint_errors(folder / "tiny.sfz")            # [] when the file is clean
    audio, sr = render_midi_sfizz(sfz, mid, tmp_path / "out.wav")
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from dawexport.audio.analysis import estimate_pitch
from dawexport.audio.io import write_wav
from dawexport.instrument import BlendAxis
from support.helpers import make_test_instrument

BLOCK = 512
# Output frames at which sfizz's preloaded 8192 frames of a sample run out (a zone transposes by up to
# half an octave, and a 48 kHz file plays at 44.1 kHz): a voice ending there may be the streaming race.
PRELOAD_END = (int(8192 / 1.5), int(8192 * 1.5) + BLOCK)


def sfizz_synth(sfz_path, sr: int = 44100, block_size: int = BLOCK):
    """A pysfizz.Synth with ``sfz_path`` loaded (freewheeling, i.e. offline rendering); fails loudly."""
    import pysfizz

    synth = pysfizz.Synth(sr, block_size)
    if not synth.load_sfz_file(str(sfz_path)):
        raise AssertionError(f"sfizz could not load {sfz_path} (or it has no regions)")
    return synth


def _block(synth) -> np.ndarray:
    left, right = synth._synth.render_block()
    return np.stack([np.array(left, dtype=np.float32, copy=True),
                     np.array(right, dtype=np.float32, copy=True)])


def render_sfizz(synth, note: int, velocity: int, hold_s: float, total_s: float,
                 cc: dict[int, int] | None = None) -> np.ndarray:
    """Play one note through ``synth``: CCs first, note on, note off after ``hold_s``; (2, frames) float32.

    Any voice still sounding from an earlier call is silenced first; CC values and round-robin
    counters persist in the synth between calls (as in a real player).

    sfizz streams all but the first 8192 frames of a sample from a background thread; in freewheeling
    mode it waits for that loader before each block, but only for jobs already dispatched, so a voice
    can race past its preloaded part and stop early. A short sleep after the first block lets the
    dispatcher pick the file up (a second one, still inside the preloaded part, covers a busy machine).
    On a machine so busy that the loader thread still missed it, the voice ends while the note is held
    or about where its preloaded part runs out; such a note is played again with a long pause (a
    sample that really ends there plays the same both times, so the retry changes nothing but time).
    """
    audio, suspect = _play(synth, note, velocity, hold_s, total_s, cc, pause_s=0.01)
    if suspect:
        audio, _ = _play(synth, note, velocity, hold_s, total_s, cc, pause_s=0.25)
    return audio


def _play(synth, note, velocity, hold_s, total_s, cc, pause_s: float) -> tuple[np.ndarray, bool]:
    s = synth._synth
    sr = s.get_sample_rate()
    s.all_sound_off()
    _block(synth)                      # flush the all-sound-off
    for number, value in (cc or {}).items():
        s.cc(0, int(number), int(value))
    total = int(round(total_s * sr))
    off_at = int(round(hold_s * sr))
    s.note_on(0, int(note), int(velocity))
    blocks, pos, released, suspect = [], 0, False, False
    while pos < total:
        if not released and off_at < pos + BLOCK:
            s.note_off(max(0, off_at - pos), int(note), 0)
            released = True
        blocks.append(_block(synth))
        if pos in (0, 8 * BLOCK):
            time.sleep(pause_s)
        if not suspect and s.get_num_active_voices() == 0:
            suspect = not released or PRELOAD_END[0] <= pos <= PRELOAD_END[1]
        pos += BLOCK
    return np.concatenate(blocks, axis=1)[:, :total], suspect


def sfizz_render_cli_path() -> Path:
    """The ``sfizz_render`` binary that the pysfizz wheel installs into ``<site-packages>/bin``."""
    import pysfizz

    candidate = Path(pysfizz.__file__).resolve().parent.parent / "bin" / "sfizz_render"
    if candidate.is_file():
        return candidate
    found = shutil.which("sfizz_render")
    if found:
        return Path(found)
    raise FileNotFoundError("sfizz_render not found: install the pysfizz wheel into this environment")


def render_midi_sfizz(sfz_path, midi_path, wav_path, sr: int = 44100, timeout: float = 120.0):
    """Render a MIDI file through an SFZ with the sfizz_render CLI; returns ((channels, frames), sr)."""
    cmd = [str(sfizz_render_cli_path()), "--sfz", str(sfz_path), "--midi", str(midi_path),
           "--wav", str(wav_path), "-s", str(sr), "--use-eot"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not Path(wav_path).is_file():
        raise AssertionError(f"sfizz_render failed ({proc.returncode}): {proc.stderr[-2000:]}")
    data, rate = sf.read(str(wav_path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T), int(rate)


def sfzlint_errors(sfz_path) -> list[str]:
    """The error lines (``:E ``) sfzlint reports for ``sfz_path`` (it always exits 0)."""
    script = Path(sys.executable).parent / "sfzlint"
    if script.is_file():
        cmd = [str(script), str(sfz_path)]
    else:  # the console script is missing (e.g. a venv without bin/): call its entry point
        cmd = [sys.executable, "-c", "import sys; from sfzlint.cli import sfzlint; sys.exit(sfzlint())",
               str(sfz_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 and not out.strip():
        raise AssertionError(f"sfzlint did not run (exit {proc.returncode})")
    return [line for line in out.splitlines() if ":E " in line]


def _mono(audio) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    return x.mean(axis=0) if x.ndim == 2 else x


def measure_pitch_cents(audio, sr: int, expected_midi: float) -> float:
    """Signed pitch error of ``audio`` against ``expected_midi``, in cents (NaN if no pitch is found)."""
    est = estimate_pitch(_mono(audio), sr)
    return 100.0 * (est.midi - expected_midi)


def rms_db(audio) -> float:
    x = np.asarray(audio, dtype=np.float64)
    return float(10 * np.log10(np.mean(x ** 2) + 1e-20))


def spectral_centroid(audio, sr: int) -> float:
    x = _mono(audio)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    return float(np.sum(freqs * mag) / (np.sum(mag) + 1e-20))


def harmonic_amplitudes(audio, sr: int, f0: float, count: int = 3) -> np.ndarray:
    """Amplitudes of the first ``count`` harmonics of ``f0`` (peak of a Hann-windowed spectrum)."""
    x = _mono(audio)
    n = len(x)
    mag = np.abs(np.fft.rfft(x * np.hanning(n), 4 * n))
    freqs = np.fft.rfftfreq(4 * n, 1 / sr)
    out = []
    for k in range(1, count + 1):
        band = np.abs(freqs - k * f0) < 0.3 * f0
        out.append(mag[band].max())
    return np.array(out)


# --- fluidsynth (the SoundFont player) ----------------------------------------------------------

FLUIDSYNTH = shutil.which("fluidsynth")
SR = 44100


def render_fluidsynth(font: Path, events, folder: Path, tail: float = 0.5, float_file: bool = False) -> np.ndarray:
    """The fluidsynth command line playing the SoundFont `font` at SR: render (seconds, 'on'|'off'|'program',
    note_or_program, velocity) events; returns mono audio (from a 32-bit float file with `float_file`, to
    hear what lies below 16 bits)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))      # 960 ticks per second
    now = 0
    for seconds, kind, value, velocity in sorted(events, key=lambda e: (e[0], e[1] != "program")):
        tick = int(round(seconds * 960))
        delta, now = tick - now, tick
        if kind == "program":
            track.append(mido.Message("program_change", program=value, time=delta))
        else:
            track.append(mido.Message("note_on" if kind == "on" else "note_off", note=value,
                                      velocity=velocity, time=delta))
    track.append(mido.MetaMessage("end_of_track", time=int(tail * 960)))
    midi_path, wav_path = folder / "notes.mid", folder / "render.wav"
    mid.save(str(midi_path))
    wav_path.unlink(missing_ok=True)
    result = subprocess.run([FLUIDSYNTH, "-ni", "-q", "-F", str(wav_path), "-r", str(SR),
                             "-o", "synth.chorus.active=0", "-o", "synth.reverb.active=0",
                             *(["-o", "audio.file.format=float"] if float_file else []),
                             str(font), str(midi_path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    audio, sr = sf.read(str(wav_path), dtype="float64", always_2d=True)
    assert sr == SR
    return audio.mean(axis=1)


def segment(x: np.ndarray, start: float, stop: float, sr: int = SR) -> np.ndarray:
    """The part of `x` from `start` to `stop` seconds."""
    return x[int(start * sr):int(stop * sr)]


# --- test instruments beyond helpers.make_test_instrument ------------------------------------------

def make_grid_instrument(folder, *, nx: int = 2, ny: int = 2, name: str = "grid", **kwargs):
    """A 2-D blend grid (nx x ny points; 2 x 2 = the four corners): CC1 "Blend X", CC2 "Blend Y".

    Built from make_test_instrument's ``nx * ny`` blend points, so group ``j * nx + i`` (grid point
    (i, j)) is brighter the higher its index: with 2 x 2, (0,0) is darkest and (1,1) brightest, and
    (1,0) is darker than (0,1).
    """
    inst = make_test_instrument(folder, name=name, blend_points=nx * ny, **kwargs)
    groups = []
    for group in inst.groups:
        i, j = group.index % nx, group.index // nx
        x, y = i / max(1, nx - 1), j / max(1, ny - 1)
        weights = {"a": (1 - x) * (1 - y), "b": x * (1 - y), "c": (1 - x) * y, "d": x * y}
        groups.append(replace(group, label=f"x{i} y{j}", position=(x, y), grid_index=(i, j), weights=weights))
    axes = (BlendAxis(name="Blend X", cc=1, points=nx), BlendAxis(name="Blend Y", cc=2, points=ny))
    return replace(inst, groups=tuple(groups), axes=axes)


def make_round_robin_instrument(folder, *, round_robins: int = 2, rr_gain: float = 0.4, **kwargs):
    """make_test_instrument with audibly different round robins: take ``r`` is scaled by rr_gain**(r-1)."""
    inst = make_test_instrument(folder, round_robins=round_robins, **kwargs)
    folder = Path(folder)
    for group in inst.groups:
        for zone in group.zones:
            if zone.round_robin == 1:
                continue
            s = zone.sample
            data, sr = sf.read(str(folder / s.path), dtype="float32", always_2d=True)
            audio = np.ascontiguousarray(data.T) * rr_gain ** (zone.round_robin - 1)
            write_wav(folder / s.path, audio, sr, "24", unity_note=s.root_key,
                      loop=None if s.loop is None else (s.loop.start, s.loop.end),
                      key_range=(zone.lokey, zone.hikey), velocity_range=(zone.lovel, zone.hivel))
    return inst


__all__ = ["render_fluidsynth", "segment", "make_grid_instrument", "make_round_robin_instrument", "sfizz_synth", "render_sfizz", "sfizz_render_cli_path", "render_midi_sfizz", "sfzlint_errors",
           "measure_pitch_cents", "rms_db", "spectral_centroid", "harmonic_amplitudes"]
