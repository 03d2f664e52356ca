"""RIFF/WAVE chunk helpers: build, append and parse ``smpl``, ``inst`` and ``clm `` chunks.

soundfile writes the audio; these functions add the sampler metadata afterwards.

    >>> append_chunks("a.wav", [smpl_chunk(69, loops=[(100, 44099)]), inst_chunk(69, 0, 0, 0, 127, 1, 127)])
    >>> parse_smpl(read_chunks("a.wav")["smpl"])["unity_note"]
    69
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from dawexport.errors import ExportError

_FRACTION_ONE = 2 ** 32  # the smpl pitch fraction is a u32 fraction of one semitone


def _chunk(chunk_id: bytes, payload: bytes) -> bytes:
    """One RIFF chunk: id, LE u32 size (unpadded), payload, pad byte to even length."""
    if len(chunk_id) != 4:
        raise ValueError(f"RIFF chunk id must be 4 bytes, got {chunk_id!r}")
    pad = b"\0" if len(payload) % 2 else b""
    return chunk_id + struct.pack("<I", len(payload)) + payload + pad


def _check_range(name: str, value: int, low: int, high: int) -> int:
    value = int(value)
    if not low <= value <= high:
        raise ExportError(f"{name} {value} is outside {low}..{high}",
                          fix=f"pass a {name} between {low} and {high}")
    return value


def smpl_chunk(unity_note: int, pitch_fraction_cents: float = 0.0,
               loops: list[tuple[int, int]] | tuple = (), sample_rate: int = 44100) -> bytes:
    """The full ``smpl`` chunk (id, size, payload); loop ends are inclusive frame indices.

    The recorded pitch is ``unity_note + pitch_fraction_cents / 100`` semitones. The format can
    only say "above" the unity note, so callers pass 0 <= pitch_fraction_cents < 100 (a sample
    30 cents flat of C4 is unity_note=59, pitch_fraction_cents=70).

        >>> len(smpl_chunk(60, 25.0, loops=[(0, 99)], sample_rate=48000))
        68
    """
    unity_note = _check_range("unity note", unity_note, 0, 127)
    if not 0.0 <= pitch_fraction_cents < 100.0:
        raise ExportError(f"smpl pitch fraction {pitch_fraction_cents} cents is outside 0..<100",
                          fix="lower the unity note by one and add 100 cents to the fraction")
    fraction = min(int(round(pitch_fraction_cents / 100.0 * _FRACTION_ONE)), _FRACTION_ONE - 1)
    period_ns = int(round(1e9 / sample_rate))
    header = struct.pack("<9I", 0, 0, period_ns, unity_note, fraction, 0, 0, len(loops), 0)
    body = b""
    for cue_id, (start, end) in enumerate(loops):
        start, end = int(start), int(end)
        if not 0 <= start <= end:
            raise ExportError(f"loop ({start}, {end}) is not a forward range of frames",
                              fix="pass loop=(start, end) with 0 <= start <= end (end inclusive)")
        body += struct.pack("<6I", cue_id, 0, start, end, 0, 0)
    return _chunk(b"smpl", header + body)


def inst_chunk(unshifted_note: int, fine_tune_cents: int, gain_db: int, low_note: int,
               high_note: int, low_velocity: int, high_velocity: int) -> bytes:
    """The full ``inst`` chunk: 7 bytes (u8, s8, s8, u8 x4) plus a pad byte.

    ``fine_tune_cents`` is the correction (-50..50) that makes the sample play in tune.

        >>> inst_chunk(60, -30, 0, 0, 127, 1, 127)[8:]
        b'<\\xe2\\x00\\x00\\x7f\\x01\\x7f\\x00'
    """
    payload = struct.pack(
        "<BbbBBBB",
        _check_range("unshifted note", unshifted_note, 0, 127),
        _check_range("fine tune", fine_tune_cents, -50, 50),
        _check_range("gain", gain_db, -64, 64),
        _check_range("low note", low_note, 0, 127),
        _check_range("high note", high_note, 0, 127),
        _check_range("low velocity", low_velocity, 0, 127),
        _check_range("high velocity", high_velocity, 0, 127),
    )
    return _chunk(b"inst", payload)


def clm_chunk(text: str) -> bytes:
    """The Serum wavetable marker chunk ``clm `` holding ASCII ``text``.

        >>> clm_chunk("<!>2048 10000000 wavetable (made with dawexport)")[:4]
        b'clm '
    """
    try:
        payload = text.encode("ascii")
    except UnicodeEncodeError:
        raise ExportError(f"clm text {text!r} is not ASCII",
                          fix="use only ASCII characters in the wavetable comment") from None
    return _chunk(b"clm ", payload)


def _walk(data: bytes, path) -> list[tuple[bytes, int, int]]:
    """(id, payload offset, payload size) of each top-level chunk of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ExportError("not a RIFF/WAVE file", file=str(path),
                          fix="write the audio as a plain WAV (not RF64, AIFF or FLAC) first")
    chunks = []
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos:pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        if pos + 8 + size > len(data):
            raise ExportError(f"chunk {chunk_id!r} runs past the end of the file", file=str(path),
                              fix="the WAV is truncated; write it again")
        chunks.append((chunk_id, pos + 8, size))
        pos += 8 + size + (size % 2)
    return chunks


def append_chunks(path, chunks: list[bytes]) -> None:
    """Append pre-built chunks to an existing RIFF/WAVE file and update the RIFF size.

        >>> append_chunks("a.wav", [clm_chunk("<!>2048 01000000 wavetable")])
    """
    path = Path(path)
    with open(path, "r+b") as f:
        data = f.read()
        parsed = _walk(data, path)
        _, last_offset, last_size = parsed[-1] if parsed else (b"", 12, 0)
        end = last_offset + last_size
        # A writer may leave an odd-sized final chunk unpadded; RIFF needs the pad byte.
        end += end % 2
        f.seek(end)
        f.truncate()
        if f.tell() < end:
            f.write(b"\0" * (end - f.tell()))
        for chunk in chunks:
            if len(chunk) < 8 or len(chunk) % 2:
                raise ExportError("a RIFF chunk must have a header and even length", file=str(path),
                                  fix="build chunks with smpl_chunk/inst_chunk/clm_chunk")
            f.write(chunk)
        total = f.tell()
        if total - 8 >= _FRACTION_ONE:
            raise ExportError("WAV file would exceed 4 GiB", file=str(path),
                              fix="render shorter samples")
        f.seek(4)
        f.write(struct.pack("<I", total - 8))
        f.flush()
        os.fsync(f.fileno())


def insert_chunks_after(path, chunks: list[bytes], after: bytes = b"fmt ") -> None:
    """Insert pre-built chunks right after the first `after` chunk (Serum writes `clm ` right after
    `fmt `), updating the RIFF size.

        >>> insert_chunks_after("table.wav", [clm_chunk("<!>2048 10000000 wavetable (made with dawexport)")])
    """
    path = Path(path)
    data = path.read_bytes()
    ends = [offset + size + size % 2 for chunk_id, offset, size in _walk(data, path) if chunk_id == after]
    if not ends:
        raise ExportError(f"no {after!r} chunk to insert after", file=str(path),
                          fix="write the audio with soundfile first")
    if any(len(chunk) < 8 or len(chunk) % 2 for chunk in chunks):
        raise ExportError("a RIFF chunk must have a header and even length", file=str(path),
                          fix="build chunks with smpl_chunk/inst_chunk/clm_chunk")
    joined = data[:ends[0]] + b"".join(chunks) + data[ends[0]:]
    joined = joined[:4] + struct.pack("<I", len(joined) - 8) + joined[8:]
    with open(path, "wb") as f:
        f.write(joined)
        f.flush()
        os.fsync(f.fileno())


def zero_peak_timestamp(path) -> None:
    """Set the timestamp in libsndfile's PEAK chunk (float WAVs) to 0, so that the same audio always gives
    the same bytes. Files without a PEAK chunk are left alone.

        >>> zero_peak_timestamp("table.wav")
    """
    path = Path(path)
    with open(path, "r+b") as f:
        data = f.read()
        for chunk_id, offset, size in _walk(data, path):
            if chunk_id == b"PEAK" and size >= 8:
                f.seek(offset + 4)
                f.write(b"\0\0\0\0")


def read_chunks(path) -> dict[str, bytes]:
    """Chunk id (as text, e.g. ``"smpl"``, ``"clm "``) → payload, the first of each id.

        >>> append_chunks("a.wav", [smpl_chunk(60)])
        >>> sorted(read_chunks("a.wav"))
        ['data', 'fmt ', 'smpl']
    """
    path = Path(path)
    data = path.read_bytes()
    found: dict[str, bytes] = {}
    for chunk_id, offset, size in _walk(data, path):
        found.setdefault(chunk_id.decode("latin-1"), data[offset:offset + size])
    return found


def parse_smpl(payload: bytes) -> dict:
    """Decode a ``smpl`` payload (without id and size).

        >>> parse_smpl(smpl_chunk(60, 25.0)[8:])["pitch_fraction_cents"]
        25.0
    """
    if len(payload) < 36:
        raise ValueError(f"smpl payload is {len(payload)} bytes, expected at least 36")
    (_, _, period_ns, unity, fraction, _, _, n_loops, _) = struct.unpack_from("<9I", payload, 0)
    loops = []
    for i in range(n_loops):
        offset = 36 + 24 * i
        if offset + 24 > len(payload):
            break
        _, _, start, end, _, _ = struct.unpack_from("<6I", payload, offset)
        loops.append((start, end))
    return {
        "unity_note": unity,
        "pitch_fraction_cents": round(fraction / _FRACTION_ONE * 100.0, 6),
        "sample_period_ns": period_ns,
        "loops": loops,
    }


def parse_inst(payload: bytes) -> dict:
    """Decode an ``inst`` payload (without id and size).

        >>> parse_inst(inst_chunk(60, -30, 0, 0, 127, 1, 127)[8:])["fine_tune_cents"]
        -30
    """
    if len(payload) < 7:
        raise ValueError(f"inst payload is {len(payload)} bytes, expected 7")
    values = struct.unpack_from("<BbbBBBB", payload, 0)
    keys = ("unshifted_note", "fine_tune_cents", "gain_db", "low_note", "high_note",
            "low_velocity", "high_velocity")
    return dict(zip(keys, values))
