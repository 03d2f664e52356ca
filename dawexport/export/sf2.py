"""SoundFont 2 exporter: ``<name>.sf2``, a self-contained bank every General MIDI player can load.

SoundFont 2.01 has no controller crossfade between zones in its basic generators, so the blend knob
cannot live inside one preset. Instead each blend point becomes its own preset — bank 0, programs
0..N-1 in blend-group order (banks 1, 2, ... past 128 points), named by the point's label — and a
player switches timbre by program change; program 0 is blend point 0 and plays by default.

Inside a preset, one instrument holds the point's zones with their key and velocity ranges, root key
(``overridingRootKey``) and tuning (``coarseTune``/``fineTune`` from ``tune_cents``), the sustain loop
(``sampleModes`` 3 "loop while held, then play on" for ``sustain``, 1 for ``continuous``, 0 otherwise)
and, in the instrument's global zone, the amp envelope (attack, decay, sustain, release). Stereo
samples are stored as linked left/right sample pairs and mapped as two zones panned hard left and right.
SoundFont has no round robin: only the first cycle (``round_robin == 1``) is written.

Samples are stored as 16-bit PCM in ``smpl`` (rounded, no dither, so the same instrument gives the same
bytes), each followed by 46 zero samples as the specification requires. When any mapped WAV holds more
than 16 bits (``bit_depth`` 24 or 32f), the bank is SoundFont 2.04: ``smpl`` keeps the upper 16 bits of
each 24-bit sample and ``sm24`` (right after ``smpl`` in ``sdta``) the lowest 8, one byte per sample
point padded to an even size; players without 2.04 support simply play the 16 bits. The file is built
from pure functions that return chunks; only `write` touches the disk.

    write(instrument, Path("build/cat_flute"))   # -> ['cat_flute.sf2']
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf

from dawexport.export.common import check_loop, check_sample_file, check_zone, file_stem
from dawexport.errors import ExportError
from dawexport.instrument import BlendGroup, Envelope, Instrument, Sample

# Generator operators (SoundFont 2.01, section 8.1.2).
GEN_PAN = 17
GEN_ATTACK_VOL_ENV = 34
GEN_HOLD_VOL_ENV = 35
GEN_DECAY_VOL_ENV = 36
GEN_SUSTAIN_VOL_ENV = 37
GEN_RELEASE_VOL_ENV = 38
GEN_INSTRUMENT = 41
GEN_KEY_RANGE = 43
GEN_VEL_RANGE = 44
GEN_COARSE_TUNE = 51
GEN_FINE_TUNE = 52
GEN_SAMPLE_ID = 53
GEN_SAMPLE_MODES = 54
GEN_OVERRIDING_ROOT_KEY = 58

# sfSampleType
MONO_SAMPLE, RIGHT_SAMPLE, LEFT_SAMPLE = 1, 2, 4

SAMPLE_MODES = {"sustain": 3, "continuous": 1, "one_shot": 0, "none": 0}
PAD_SAMPLES = 46                 # zero samples after every sample (spec 7.10)
MIN_TIMECENTS, MAX_TIMECENTS = -12000, 8000
MAX_SUSTAIN_CB = 1440            # 144 dB of attenuation: silence
NAME_LENGTH = 19                 # characters; the 20-byte field keeps a terminating zero


VERSION_16_BIT = (2, 1)
VERSION_24_BIT = (2, 4)          # sm24 is read only from banks whose ifil says 2.04 or later
WIDE_SUBTYPES = {"PCM_24", "PCM_32", "FLOAT", "DOUBLE"}


@dataclass(frozen=True)
class StoredSample:
    """One mono sample header's worth of data (a stereo file gives two, linked)."""
    name: str
    data: np.ndarray          # int32 holding 24-bit values (-2**23 .. 2**23 - 1)
    sample_rate: int
    root_key: int
    loop: tuple[int, int] | None   # (start, end exclusive) relative to the sample
    kind: int
    link: int = 0


def write(instrument: Instrument, folder: Path) -> list[str]:
    """Write ``<name>.sf2`` into ``folder`` (reading the samples it maps from there)."""
    folder = Path(folder)
    name = f"{file_stem(instrument.name)}.sf2"
    wide = any(_is_wide(folder / s.path) for s in instrument.samples)
    data = build_sf2(instrument, lambda rel: read_sample(folder, rel), bits=24 if wide else 16)
    (folder / name).write_bytes(data)
    return [name]


def _is_wide(path: Path) -> bool:
    return Path(path).is_file() and sf.info(str(path)).subtype in WIDE_SUBTYPES


def read_sample(folder: Path, rel: str) -> np.ndarray:
    """(channels, frames) float32 audio of one mapped sample, `rel` inside `folder`."""
    path = check_sample_file(folder, rel, fix="write the samples into the instrument folder before exporting SF2")
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.T)


# --------------------------------------------------------------------------------------- the bank

def build_sf2(instrument: Instrument, load_audio, bits: int = 16) -> bytes:
    """The whole .sf2 file; ``load_audio(relative_path)`` returns (channels, frames) float audio.
    ``bits`` 24 adds the ``sm24`` chunk (SoundFont 2.04)."""
    if bits not in (16, 24):
        raise ExportError(f"SoundFont samples of {bits} bits", fix="use 16 or 24 bits")
    if instrument.loop_mode not in SAMPLE_MODES:
        raise ExportError(f"unknown loop mode {instrument.loop_mode!r}", key="loop_mode",
                          fix=f"use one of {', '.join(SAMPLE_MODES)}")
    groups = sorted(instrument.groups, key=lambda g: g.index)
    if not groups or not any(z.round_robin == 1 for g in groups for z in g.zones):
        raise ExportError("the instrument has no zones to map", key="groups",
                          fix="render at least one key, velocity layer and blend point")
    samples: list[StoredSample] = []
    sample_ids: dict[str, list[int]] = {}
    for group in groups:
        for zone in group.zones:
            if zone.round_robin != 1 or zone.sample.path in sample_ids:
                continue
            audio = load_audio(zone.sample.path)
            sample_ids[zone.sample.path] = _store(samples, zone.sample, audio, len(sample_ids))
    instruments = [instrument_zones(instrument, g, sample_ids, samples) for g in groups]
    presets = [(_name(g.label or f"Blend {i}"), i % 128, i // 128) for i, g in enumerate(groups)]
    info = info_chunk(instrument, VERSION_24_BIT if bits == 24 else VERSION_16_BIT)
    smpl, sm24 = sample_data(samples)
    sdta = list_chunk(b"sdta", [chunk(b"smpl", smpl)] + ([chunk(b"sm24", sm24)] if bits == 24 else []))
    pdta = pdta_chunk(presets, [(_name(g.label or f"Blend {i}"), zones)
                                for i, (g, zones) in enumerate(zip(groups, instruments))], samples)
    return riff(b"sfbk", [info, sdta, pdta])


def _store(samples: list[StoredSample], sample: Sample, audio: np.ndarray, number: int) -> list[int]:
    """Append one file's channels as sample headers; returns their indices (one, or left and right)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[np.newaxis]
    if audio.shape[0] not in (1, 2):
        raise ExportError(f"sample {sample.path} has {audio.shape[0]} channels", key="samples",
                          fix="SoundFont stores mono or stereo samples; render 1 or 2 channels")
    frames = audio.shape[1]
    if frames < 8:
        raise ExportError(f"sample {sample.path} has only {frames} frames", key="samples",
                          fix="render samples of at least a few milliseconds")
    loop = None
    if sample.loop is not None:
        check_loop(sample.loop, frames, sample.path)
        loop = (sample.loop.start, sample.loop.end + 1)   # SF2 loop end: first point after the loop
    pcm = to_int24(audio)
    stem = _name(PurePosixPath(sample.path).stem, 200)
    base = f"{number:03d} {stem[-(NAME_LENGTH - 5):]}"   # the distinctive end of the name
    if pcm.shape[0] == 1:
        samples.append(StoredSample(_name(base), pcm[0], sample.sample_rate, sample.root_key, loop, MONO_SAMPLE))
        return [len(samples) - 1]
    left, right = len(samples), len(samples) + 1
    samples.append(StoredSample(f"{base}L", pcm[0], sample.sample_rate, sample.root_key, loop, LEFT_SAMPLE, right))
    samples.append(StoredSample(f"{base}R", pcm[1], sample.sample_rate, sample.root_key, loop, RIGHT_SAMPLE, left))
    return [left, right]


def to_int24(audio: np.ndarray) -> np.ndarray:
    """float [-1, 1) -> 24-bit integers (in int32), rounded and clipped. The scale is 2**23, the one
    soundfile reads PCM with, so 16- and 24-bit WAVs come back exactly (``>> 8`` is the 16-bit value)."""
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 8388608.0), -8388608, 8388607).astype(np.int32)


def instrument_zones(instrument: Instrument, group: BlendGroup, sample_ids: dict[str, list[int]],
                     samples: list[StoredSample]) -> list[list[tuple[int, int]]]:
    """Generator lists of one instrument: a global zone (envelope), then one zone per mapped channel."""
    zones = [envelope_generators(instrument.envelope)]
    mode = SAMPLE_MODES[instrument.loop_mode]
    for zone in sorted(group.zones, key=lambda z: (z.lokey, z.lovel, z.sample.path)):
        if zone.round_robin != 1:
            continue
        check_zone(zone, zone.sample.path)
        if not 0 <= zone.root_key <= 127:
            raise ExportError(f"root key {zone.root_key} of {zone.sample.path} is outside 0..127", key="zones",
                              fix="check the sample's root key")
        ids = sample_ids[zone.sample.path]
        coarse, fine = split_tune(zone.sample.tune_cents)
        for channel, sample_id in enumerate(ids):
            gens = [(GEN_KEY_RANGE, range_amount(zone.lokey, zone.hikey)),
                    (GEN_VEL_RANGE, range_amount(zone.lovel, zone.hivel))]
            if len(ids) == 2:
                gens.append((GEN_PAN, -500 if channel == 0 else 500))
            if coarse:
                gens.append((GEN_COARSE_TUNE, coarse))
            if fine:
                gens.append((GEN_FINE_TUNE, fine))
            gens.append((GEN_OVERRIDING_ROOT_KEY, zone.root_key))
            looped = mode if samples[sample_id].loop is not None else 0
            if looped:
                gens.append((GEN_SAMPLE_MODES, looped))
            gens.append((GEN_SAMPLE_ID, sample_id))
            zones.append(gens)
    return zones


def envelope_generators(env: Envelope) -> list[tuple[int, int]]:
    """Volume envelope generators of the instrument's global zone."""
    gens = [(GEN_ATTACK_VOL_ENV, timecents(env.attack))]
    if env.sustain < 1.0:
        gens.append((GEN_DECAY_VOL_ENV, timecents(env.decay)))
        gens.append((GEN_SUSTAIN_VOL_ENV, sustain_centibels(env.sustain)))
    gens.append((GEN_RELEASE_VOL_ENV, timecents(env.release)))
    return gens


def timecents(seconds: float) -> int:
    """Seconds as SoundFont timecents (1200 * log2 s), 1 ms at the least."""
    if not math.isfinite(seconds):
        raise ExportError(f"envelope time {seconds!r} is not finite", key="envelope",
                          fix="check the instrument's envelope")
    return int(min(MAX_TIMECENTS, max(MIN_TIMECENTS, round(1200.0 * math.log2(max(seconds, 0.001))))))


def sustain_centibels(level: float) -> int:
    """Sustain level (linear 0..1) as attenuation in centibels."""
    if level <= 0:
        return MAX_SUSTAIN_CB
    return int(min(MAX_SUSTAIN_CB, max(0, round(-200.0 * math.log10(min(1.0, level))))))


def split_tune(cents: float) -> tuple[int, int]:
    """tune_cents -> (coarseTune semitones, fineTune cents within -99..99)."""
    total = round(float(cents))
    coarse = math.trunc(total / 100)
    return coarse, total - 100 * coarse


def range_amount(lo: int, hi: int) -> int:
    """A keyRange/velRange amount: low byte lo, high byte hi, read as one signed 16-bit word."""
    return struct.unpack("<h", bytes((lo, hi)))[0]


# ------------------------------------------------------------------------------------------ chunks

def chunk(chunk_id: bytes, payload: bytes) -> bytes:
    """A RIFF chunk, padded to an even length."""
    return chunk_id + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def list_chunk(list_type: bytes, chunks: list[bytes]) -> bytes:
    return chunk(b"LIST", list_type + b"".join(chunks))


def riff(form: bytes, chunks: list[bytes]) -> bytes:
    return chunk(b"RIFF", form + b"".join(chunks))


def zstr(text: str) -> bytes:
    """An INFO string: ASCII, zero-terminated, padded to an even length."""
    data = text.encode("ascii", "replace")[:255] + b"\0"
    return data + (b"\0" if len(data) % 2 else b"")


def info_chunk(instrument: Instrument, version: tuple[int, int] = VERSION_16_BIT) -> bytes:
    meta = instrument.metadata
    parts = [chunk(b"ifil", struct.pack("<HH", *version)),
             chunk(b"isng", zstr("EMU8000")),
             chunk(b"INAM", zstr(_ascii(instrument.name) or "dawexport instrument")),
             chunk(b"ISFT", zstr("dawexport"))]
    comment = _ascii(" ".join(str(meta.get("description", "")).split()))
    engine = _ascii(str(meta.get("engine", "")))
    text = "; ".join(t for t in (comment, f"engine: {engine}" if engine else "",
                                 "one preset per blend point (program = blend point)") if t)
    parts.append(chunk(b"ICMT", zstr(text)))
    return list_chunk(b"INFO", parts)


def sample_data(samples: list[StoredSample]) -> tuple[bytes, bytes]:
    """(``smpl`` payload, ``sm24`` payload): the upper 16 and the lowest 8 bits of every 24-bit sample point,
    each sample followed by 46 zero points. ``sm24`` has one byte per point, padded to an even size
    (FluidSynth checks its size against half of ``smpl``'s, rounded up to even)."""
    points = np.concatenate([np.concatenate([s.data, np.zeros(PAD_SAMPLES, np.int32)]) for s in samples])
    smpl = (points >> 8).astype("<i2").tobytes()
    sm24 = (points & 0xFF).astype(np.uint8).tobytes()
    return smpl, sm24 + (b"\0" if len(sm24) % 2 else b"")


def pdta_chunk(presets: list[tuple[str, int, int]], instruments: list[tuple[str, list[list[tuple[int, int]]]]],
               samples: list[StoredSample]) -> bytes:
    """The hydra: presets (one zone each, pointing at instrument i), instruments, sample headers."""
    phdr, pbag, pgen = b"", b"", b""
    gen_count = 0
    for i, (name, program, bank) in enumerate(presets):
        phdr += struct.pack("<20sHHHIII", _fixed(name), program, bank, i, 0, 0, 0)
        pbag += struct.pack("<HH", gen_count, 0)
        pgen += struct.pack("<Hh", GEN_INSTRUMENT, i)
        gen_count += 1
    phdr += struct.pack("<20sHHHIII", _fixed("EOP"), 0, 0, len(presets), 0, 0, 0)
    pbag += struct.pack("<HH", gen_count, 0)
    pgen += struct.pack("<Hh", 0, 0)

    inst, ibag, igen = b"", b"", b""
    bag_count, gen_count = 0, 0
    for name, zones in instruments:
        inst += struct.pack("<20sH", _fixed(name), bag_count)
        for gens in zones:
            ibag += struct.pack("<HH", gen_count, 0)
            for oper, amount in gens:
                igen += struct.pack("<Hh", oper, amount)
            gen_count += len(gens)
            bag_count += 1
    inst += struct.pack("<20sH", _fixed("EOI"), bag_count)
    ibag += struct.pack("<HH", gen_count, 0)
    igen += struct.pack("<Hh", 0, 0)
    if max(bag_count, gen_count) > 0xFFFF:
        raise ExportError(f"{gen_count} generators do not fit a SoundFont", key="groups",
                          fix="render fewer keys, layers or blend points for SF2")

    shdr = b""
    offset = 0
    for s in samples:
        start, end = offset, offset + len(s.data)
        if s.loop:
            loop_start, loop_end = start + s.loop[0], start + s.loop[1]
        else:   # unused, but kept inside the data with the 8 guard points readers expect
            margin = 8 if len(s.data) >= 48 else 0
            loop_start, loop_end = start + margin, end - margin
        shdr += struct.pack("<20sIIIIIBbHH", _fixed(s.name), start, end, loop_start, loop_end,
                            int(s.sample_rate), s.root_key, 0, s.link, s.kind)
        offset = end + PAD_SAMPLES
    shdr += struct.pack("<20sIIIIIBbHH", _fixed("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0)
    terminal_mod = struct.pack("<HHhHH", 0, 0, 0, 0, 0)
    return list_chunk(b"pdta", [chunk(b"phdr", phdr), chunk(b"pbag", pbag), chunk(b"pmod", terminal_mod),
                                chunk(b"pgen", pgen), chunk(b"inst", inst), chunk(b"ibag", ibag),
                                chunk(b"imod", terminal_mod), chunk(b"igen", igen), chunk(b"shdr", shdr)])


def _ascii(text: str) -> str:
    return "".join(ch if " " <= ch < "\x7f" else "_" for ch in str(text)).strip()


def _name(text: str, length: int = NAME_LENGTH) -> str:
    return _ascii(" ".join(str(text).split()))[:length] or "unnamed"


def _fixed(text: str) -> bytes:
    """A 20-byte name field: at most 19 characters and zero padding."""
    return _ascii(text).encode("ascii")[:NAME_LENGTH].ljust(20, b"\0")
