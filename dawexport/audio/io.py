"""Read any source sound; write sampler-ready WAVs with ``smpl``/``inst`` metadata.

    >>> audio, sr = read_audio("a.wav", key="sources.cat")   # (channels, frames) float32
    >>> write_wav("C4.wav", audio, sr, "24", unity_note=60, loop=(1000, 43999))
    >>> read_wav_metadata("C4.wav")["smpl"]["unity_note"]
    60
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from dawexport.audio import riff
from dawexport.errors import ExportError, SourceError

SILENCE_DBFS = -90.0
MIN_SOURCE_RATE, MAX_SOURCE_RATE = 8000, 768000
MIN_SOURCE_SECONDS, MAX_SOURCE_SECONDS = 0.02, 600
BIT_DEPTHS = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}


def read_audio(path, *, key: str | None = None) -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC/AIFF/OGG (anything libsndfile reads) to ((channels, frames) float32, rate).

    Raises SourceError naming the file (and ``key``) when it is missing, not a regular file,
    unreadable, empty, outside 8-768 kHz, not mono or stereo, shorter than 20 ms, longer than
    10 minutes (all checked from the header before decoding), not finite or digitally silent
    (peak below -90 dBFS).

        >>> audio, sr = read_audio("a.wav", key="sources.cat")
    """
    path = Path(path)
    name = str(path)
    _check_source_path(path, key)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises LibsndfileError, RuntimeError or TypeError
        raise SourceError(f"cannot decode audio ({exc})", file=name, key=key,
                          fix="convert it to WAV, FLAC, AIFF or OGG (e.g. `ffmpeg -i in out.wav`)"
                          ) from None
    _check_source_shape(info.samplerate, info.channels, info.frames, name, key)
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError, RuntimeError or TypeError
        raise SourceError(f"cannot decode audio ({exc})", file=name, key=key,
                          fix="convert it to WAV, FLAC, AIFF or OGG (e.g. `ffmpeg -i in out.wav`)"
                          ) from None
    if data.shape[0] == 0:
        raise SourceError("file holds no audio frames", file=name, key=key,
                          fix="export the sound again; the file has a header but no samples")
    _check_source_shape(sample_rate, data.shape[1], data.shape[0], name, key)
    audio = np.ascontiguousarray(data.T)
    if not np.all(np.isfinite(audio)):
        raise SourceError("file contains NaN or infinite samples", file=name, key=key,
                          fix="re-render it; a float WAV with NaN/inf usually comes from a model "
                              "that diverged")
    peak = float(np.max(np.abs(audio)))
    if peak < 10.0 ** (SILENCE_DBFS / 20.0):
        level = "-inf" if peak == 0.0 else f"{20 * math.log10(peak):.1f}"
        raise SourceError(f"file is digitally silent (peak {level} dBFS)", file=name, key=key,
                          fix="pick a file that contains sound, or remove it from the sources")
    return audio, int(sample_rate)


def _check_source_path(path: Path, key: str | None) -> None:
    """A source is an existing, non-empty regular file (a folder, FIFO or device is not)."""
    name = str(path)
    if path.is_dir():
        raise SourceError("is a folder, not a sound file", file=name, key=key,
                          fix="name the sound file inside it, e.g. sounds/cat.wav")
    if not path.exists():
        raise SourceError("file not found", file=name, key=key,
                          fix="check the path; relative paths are resolved from the spec's folder")
    if not path.is_file():
        raise SourceError("is not a regular file (a pipe, socket or device)", file=name, key=key,
                          fix="save the sound to a file and name that file")
    if path.stat().st_size == 0:
        raise SourceError("file is empty (0 bytes)", file=name, key=key,
                          fix="export the sound again from your editor or model")


def _check_source_shape(rate: int, channels: int, frames: int, name: str, key: str | None) -> None:
    """Bounds checked from the header, before any sample is decoded: rate, channels, length."""
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise SourceError(f"the file says its sample rate is {rate} Hz; sources must be {MIN_SOURCE_RATE}-"
                          f"{MAX_SOURCE_RATE} Hz", file=name, key=key,
                          fix="the header is damaged or the rate is wrong: export it again at 44100 or 48000 Hz")
    if channels > 2:
        raise SourceError(f"the file has {channels} channels; sources must be mono or stereo", file=name,
                          key=key, fix="mix it down to stereo or mono (e.g. `ffmpeg -i in.wav -ac 2 out.wav`)")
    if frames > MAX_SOURCE_SECONDS * rate:
        raise SourceError(f"the file is {frames / rate / 60:.1f} minutes long; a source may be at most "
                          f"{MAX_SOURCE_SECONDS // 60} minutes", file=name, key=key,
                          fix="trim it to the sound you want to play (a few seconds to a few minutes is plenty)")
    if 0 < frames < MIN_SOURCE_SECONDS * rate:
        raise SourceError(f"the file is only {frames} samples ({1000 * frames / rate:.1f} ms) long; a source "
                          f"needs at least {1000 * MIN_SOURCE_SECONDS:.0f} ms", file=name, key=key,
                          fix="export a longer recording of the sound")


def _tuning(unity_note: int, fine_tune_cents: float) -> tuple[int, float, int, int]:
    """(smpl unity note, smpl fraction cents, inst unshifted note, inst correction cents)."""
    total = unity_note * 100.0 + float(fine_tune_cents)  # recorded pitch in cents
    smpl_note = math.floor(total / 100.0)
    fraction = total - smpl_note * 100.0
    if fraction >= 100.0 - 1e-9:  # float rounding at a semitone boundary
        smpl_note, fraction = smpl_note + 1, 0.0
    inst_note = math.floor(total / 100.0 + 0.5)  # nearest note keeps the correction in -50..50
    correction = int(max(-50, min(50, round(inst_note * 100.0 - total))))
    return smpl_note, max(fraction, 0.0), inst_note, correction


def write_wav(path, audio: np.ndarray, sample_rate: int, bit_depth: str = "24", *,
              unity_note: int | None = None, fine_tune_cents: float = 0.0,
              loop: tuple[int, int] | None = None,
              key_range: tuple[int, int] | None = None,
              velocity_range: tuple[int, int] | None = None) -> None:
    """Write a WAV, optionally with ``smpl`` (unity note, fine tune, loop) and ``inst`` chunks.

    ``audio`` is (channels, frames) or 1-D. ``bit_depth`` is "16", "24" or "32f"; samples are
    clipped to [-1, 1] for every depth, float included, so all depths play at the same level.
    ``fine_tune_cents`` is how far the recorded pitch lies above ``unity_note`` (negative when
    flat). ``loop`` is (start, end) in frames, end inclusive. ``key_range``/``velocity_range``
    go into ``inst`` (default 0..127 each). Metadata needs ``unity_note``. The file appears
    complete or not at all: it is written to ``path + ".part"`` and renamed.

        >>> write_wav("A4.wav", tone, 44100, "24", unity_note=69, fine_tune_cents=-12.5,
        ...           loop=(2205, 44099), key_range=(67, 71))
    """
    path = Path(path)
    if bit_depth not in BIT_DEPTHS:
        raise ExportError(f"bit depth {bit_depth!r} is not supported", file=str(path),
                          fix=f"use one of {', '.join(BIT_DEPTHS)}")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[np.newaxis, :]
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise ExportError(f"audio must be (channels, frames) with frames > 0, got {audio.shape}",
                          file=str(path), fix="pass a non-empty 1-D or (channels, frames) array")
    if not np.all(np.isfinite(audio)):
        raise ExportError("audio contains NaN or infinite samples", file=str(path),
                          fix="check the render; the model produced non-finite output")
    frames = audio.shape[1]
    chunks = []
    if unity_note is not None:
        smpl_note, fraction, inst_note, correction = _tuning(unity_note, fine_tune_cents)
        loops = []
        if loop is not None:
            start, end = int(loop[0]), int(loop[1])
            if not 0 <= start < end < frames:
                raise ExportError(f"loop ({start}, {end}) does not fit in {frames} frames",
                                  file=str(path),
                                  fix="pass loop=(start, end) with 0 <= start < end < frames "
                                      "(end inclusive)")
            loops.append((start, end))
        low_key, high_key = key_range if key_range is not None else (0, 127)
        low_vel, high_vel = velocity_range if velocity_range is not None else (0, 127)
        chunks.append(riff.smpl_chunk(smpl_note, fraction, loops, sample_rate))
        chunks.append(riff.inst_chunk(inst_note, correction, 0, low_key, high_key,
                                      low_vel, high_vel))
    elif loop is not None or key_range is not None or velocity_range is not None:
        raise ExportError("loop, key_range and velocity_range need a unity_note", file=str(path),
                          fix="pass unity_note= (the MIDI note the sample was recorded at)")

    part = Path(str(path) + ".part")
    try:
        sf.write(str(part), np.clip(audio, -1.0, 1.0).T, int(sample_rate),
                 subtype=BIT_DEPTHS[bit_depth], format="WAV")
        riff.zero_peak_timestamp(part)
        if chunks:
            riff.append_chunks(part, chunks)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def read_wav_metadata(path) -> dict:
    """{"smpl": dict | None, "inst": dict | None, "clm": str | None} parsed from a WAV.

        >>> write_wav("A4.wav", tone, 44100, "24", unity_note=69, fine_tune_cents=-12)
        >>> read_wav_metadata("A4.wav")["inst"]["fine_tune_cents"]
        12
    """
    chunks = riff.read_chunks(path)
    return {
        "smpl": riff.parse_smpl(chunks["smpl"]) if "smpl" in chunks else None,
        "inst": riff.parse_inst(chunks["inst"]) if "inst" in chunks else None,
        "clm": chunks["clm "].decode("ascii", "replace").rstrip("\0") if "clm " in chunks else None,
    }
