"""Wavetable files: Serum-compatible WAV (with the ``clm `` chunk) and Surge's ``.wt``.

    >>> write_serum_wav("cat_flute_blend.wav", table)
    >>> read_serum_wav("cat_flute_blend.wav")[1]
    '<!>2048 10000000 wavetable (made with dawexport)'
    >>> write_surge_wt("cat_flute_blend.wt", table)
    >>> read_surge_wt("cat_flute_blend.wt").shape
    (16, 2048)

Serum WAV. Mono 32-bit IEEE float (format tag 3), frames of 2048 samples back to back, up to 256 frames,
and a ``clm `` chunk holding 48 ASCII bytes ``<!>2048 <8 flag digits> wavetable (<21-character vendor>)``,
placed right after ``fmt `` as Serum writes it (tests/support/data/wavetable_facts.py). Being 48 bytes, the chunk
needs no pad byte, which old readers do not skip. What each part means, and who reads it:
- ``<!>2048``: the samples per frame. Serum always assumes 2048 (Steve Duda, Xfer Records, on the KVR
  thread "Wavetable file format?", Dec 2018). Surge XT treats the file as a 2048-sample table only when
  the four characters after ``<!>`` are exactly ``2048`` (surge ``src/common/WavSupport.cpp``,
  ``load_wt_wav_portable``); Vital cuts 2048-sample frames whatever the number says.
- flag digit 1 (the first character after the space): the table's interpolation. ``0`` none (frames
  step), ``1`` linear crossfade between frames, ``2``/``3``/``4`` spectral morph (same KVR post). Vital
  reads exactly this character when importing: ``0`` -> "No Interpolate", ``1`` -> "Time Interpolate",
  anything else -> "Freq Interpolate" (vital ``wavetable_edit_section.cpp``,
  ``getFadeStyleFromWavetableString``), and writes ``<!>2048 20000000 wavetable (vital.audio)`` itself.
- flag digit 2: "Serum factory wavetable": Serum then assumes every user has the file and does not embed
  it in presets that use it (same KVR post). Serum's own saved tables read ``<!>2048 01000000 wavetable
  (www.xferrecords.com)``: no interpolation, factory. dawexport never sets it, so presets embed our tables.
- flag digits 3-8: unused (zeros).
- the rest, after one space: ``wavetable (www.xferrecords.com)`` in Serum's own tables; dawexport writes
  ``wavetable (made with dawexport)``, the same length. No reader interprets it.
soundfile writes the audio, ``riff.insert_chunks_after`` adds the chunk right after ``fmt ``; Surge and
Vital read every top-level chunk wherever it sits.

Surge ``.wt`` (surge ``resources/data/wavetables/WT fileformat.txt`` and ``wt_header`` in
``src/common/dsp/Wavetable.h``): 12-byte header ``'vawt'``, u32 LE samples per wave (a power of two,
2..4096), u16 LE wave count (1..512), u16 LE flags (1 sample, 2 looped sample, 4 int16 data, 8 full-range
int16; 0 = a wavetable of float32 data), then the waves as float32 LE. Bitwig reads it too.

Never put ``clm `` into a sampler WAV: sfizz turns any WAV carrying it into a single-cycle oscillator.
``dawexport.audio.io.write_wav`` does not write one; only this module does.
"""
from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from dawexport.audio import riff
from dawexport.errors import ExportError

SERUM_FRAME = 2048          # samples per frame Serum (and Surge, for clm-tagged files) expects
SERUM_MAX_FRAMES = 256
WT_MAX_FRAMES = 512         # Surge's .wt limit
WT_MAX_SIZE = 4096
_WT_MAGIC = b"vawt"
_WT_HEADER = struct.Struct("<4sIHH")
_WT_INT16 = 0x4


SERUM_CLM_VENDOR = "wavetable (made with dawexport)"   # as long as Serum's "wavetable (www.xferrecords.com)"


def serum_clm_text(interpolation: int = 1) -> str:
    """The ``clm `` chunk text: ``<!>2048 `` + 8 flag digits + `` wavetable (...)``, 48 bytes as Serum's.

    ``interpolation`` is the first flag digit: 0 none, 1 linear crossfade, 2-4 spectral morph. The factory
    flag (second digit) and the rest stay 0.

        >>> serum_clm_text()
        '<!>2048 10000000 wavetable (made with dawexport)'
        >>> len(serum_clm_text(3))
        48
    """
    if isinstance(interpolation, bool) or not isinstance(interpolation, (int, np.integer)) \
            or not 0 <= int(interpolation) <= 4:
        raise ExportError(f"wavetable interpolation {interpolation!r} is not one of 0..4",
                          fix="use 0 (none), 1 (linear crossfade) or 2-4 (spectral morph)")
    return f"<!>{SERUM_FRAME} {int(interpolation)}0000000 {SERUM_CLM_VENDOR}"


def _check_table(table, path, *, size: int | None, max_frames: int) -> np.ndarray:
    data = np.asarray(table, dtype=np.float64)
    if data.ndim == 1:
        data = data[np.newaxis, :]
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise ExportError(f"a wavetable must be (frames, samples per frame), got shape {np.shape(table)}",
                          file=str(path), fix="pass a 2-D array with one row per frame")
    frames, length = data.shape
    if size is not None and length != size:
        raise ExportError(f"wavetable frames have {length} samples, this format needs {size}",
                          file=str(path), fix=f"extract frames with size={size}")
    if size is None and not (2 <= length <= WT_MAX_SIZE and length & (length - 1) == 0):
        raise ExportError(f"wavetable frames have {length} samples, not a power of two in 2..{WT_MAX_SIZE}",
                          file=str(path), fix="extract frames of 2048 samples")
    if frames > max_frames:
        raise ExportError(f"the wavetable has {frames} frames, the format holds at most {max_frames}",
                          file=str(path), fix=f"ask for at most {max_frames} frames")
    if not np.all(np.isfinite(data)):
        raise ExportError("the wavetable contains NaN or infinite samples", file=str(path),
                          fix="check the render; the model produced non-finite output")
    return data


def _replace_atomically(path: Path, write) -> None:
    part = Path(str(path) + ".part")
    try:
        write(part)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def write_serum_wav(path, table, interpolation: int = 1, *, sample_rate: int = 44100) -> None:
    """Write a Serum-compatible wavetable: mono 32-bit float WAV of N x 2048 samples plus ``clm ``.

    ``table`` is (N, 2048), 1 <= N <= 256, already normalised (values are written as they are).
    ``sample_rate`` only labels the file; wavetable players ignore it. The file appears complete or not
    at all (written to ``path + ".part"`` and renamed).

        >>> write_serum_wav("wavetables/cat_flute_blend.wav", table)
    """
    path = Path(path)
    data = _check_table(table, path, size=SERUM_FRAME, max_frames=SERUM_MAX_FRAMES)
    chunk = riff.clm_chunk(serum_clm_text(interpolation))

    def write(part: Path) -> None:
        sf.write(str(part), data.reshape(-1).astype(np.float32), int(sample_rate), subtype="FLOAT",
                 format="WAV")
        riff.zero_peak_timestamp(part)
        riff.insert_chunks_after(part, [chunk], b"fmt ")

    _replace_atomically(path, write)


def write_surge_wt(path, table) -> None:
    """Write Surge's ``.wt``: ``vawt``, u32 samples per wave, u16 wave count, u16 flags 0, float32 LE data.

        >>> write_surge_wt("wavetables/cat_flute_blend.wt", table)
    """
    path = Path(path)
    data = _check_table(table, path, size=None, max_frames=WT_MAX_FRAMES)
    frames, size = data.shape
    payload = _WT_HEADER.pack(_WT_MAGIC, size, frames, 0) + data.astype("<f4").tobytes()

    def write(part: Path) -> None:
        with open(part, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())

    _replace_atomically(path, write)


def read_serum_wav(path) -> tuple[np.ndarray, str | None]:
    """(table (N, size) float32, clm text or None). The frame size comes from ``<!>NNNN``, else 2048.

        >>> table, text = read_serum_wav("cat_flute_blend.wav")
    """
    path = Path(path)
    chunks = riff.read_chunks(path)
    text = chunks["clm "].decode("ascii", "replace").rstrip("\0") if "clm " in chunks else None
    size = SERUM_FRAME
    if text is not None:
        match = re.match(r"<!>(\d+)", text)
        if match and int(match.group(1)) > 0:
            size = int(match.group(1))
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    samples = data[:, 0]
    if len(samples) % size:
        raise ExportError(f"{len(samples)} samples are not a whole number of {size}-sample frames",
                          file=str(path), fix="write the table again with write_serum_wav")
    return samples.reshape(-1, size), text


def read_surge_wt(path) -> np.ndarray:
    """The (N, size) float32 table of a float32 ``.wt`` file (as ``write_surge_wt`` writes them).

        >>> read_surge_wt("cat_flute_blend.wt").shape
        (16, 2048)
    """
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < _WT_HEADER.size or raw[:4] != _WT_MAGIC:
        raise ExportError("not a Surge .wt file (no 'vawt' header)", file=str(path),
                          fix="write the table with write_surge_wt")
    _, size, frames, flags = _WT_HEADER.unpack_from(raw, 0)
    if flags & _WT_INT16:
        raise ExportError(f".wt flags {flags:#06x} say int16 data; only float32 tables are read here",
                          file=str(path), fix="write the table with write_surge_wt (float32)")
    need = _WT_HEADER.size + 4 * size * frames
    if len(raw) < need:
        raise ExportError(f".wt file is {len(raw)} bytes, its header needs {need}", file=str(path),
                          fix="the file is truncated; write it again")
    data = np.frombuffer(raw, dtype="<f4", count=size * frames, offset=_WT_HEADER.size)
    return data.astype(np.float32).reshape(frames, size)


__all__ = ["serum_clm_text", "SERUM_CLM_VENDOR", "write_serum_wav", "write_surge_wt", "read_serum_wav", "read_surge_wt",
           "SERUM_FRAME", "SERUM_MAX_FRAMES"]
