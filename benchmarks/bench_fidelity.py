"""How close learned instruments sound to their sources: ddsp against the sampler baseline, played in sfizz.

    python benchmarks/bench_fidelity.py                          # engine defaults; prints one markdown table
    python benchmarks/bench_fidelity.py --max-steps 300 --minutes 3 --png docs/cat_corner.png --json out.json
    python benchmarks/bench_fidelity.py --max-steps 300 --set loudness_weight=1     # any other ddsp setting
    python benchmarks/bench_fidelity.py --max-steps 300 --pairs vowel-pluck         # one instrument only
    python benchmarks/bench_fidelity.py --floors        # each sound's formant floor only (seconds, no build)
    python benchmarks/bench_fidelity.py --harmonics     # where each sound has harmonics, per band (seconds)

Four sounds with real movement: the repository's cat meow (a two-syllable glide, stereo) and flute (a breathy
attack), and two made here with real articulation: a sung vowel that glides /a/ → /i/ with its pitch rising and a
vibrato, and a plucked string (Karplus-Strong, bright attack, long decay). They make two two-corner instruments
(cat-flute, vowel-pluck), each built by `dawexport build` with `ddsp` and with `sampler` (rendered roots on the
source's key and an octave either side, one velocity layer), and each source is measured against its corner of
its instrument played through sfizz with the three measures of `dawexport.audio.fidelity` (DESIGN.md): timbre at
the source's key, evolution over the source's length, and formants 12 semitones below and above. The goals are
those of issue 10: timbre ≤ max(1.5 × sampler, 2 dB), evolution ≤ max(1.5 × sampler, 3 dB), formants ≤ 0.5 ×
sampler. It also prints each sound's formant floors: the source moved ±12 semitones with its own harmonic
envelope (`formant_keeping_shift`, read at points or over bands), what a perfect formant-keeping model scores,
and the best any steady harmonic note scores there (`best_formant_note`). With --png it also draws
the source and the ddsp notes of the cat corner as spectrograms side by side.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dawexport.audio.analysis import estimate_pitch, f0_track  # noqa: E402
from dawexport.audio.fidelity import (best_formant_note, evolution_distance, formant_distance,  # noqa: E402
                                     formant_keeping_shift, timbre_distance)
from dawexport.audio.spectral import mel_filterbank  # noqa: E402
from dawexport.pipeline import build  # noqa: E402
from dawexport.spec import parse_spec  # noqa: E402

SR = 44100
SOUNDS = ROOT / "instruments" / "sounds"
PAIRS = (("cat", "flute"), ("vowel", "pluck"))


# --------------------------------------------------------------------------- two sounds with articulation

def make_vowel(sr: int = SR, seconds: float = 1.4, seed: int = 3) -> np.ndarray:
    """A sung vowel gliding /a/ → /i/: a glottal source (harmonics falling 12 dB/octave) whose pitch rises
    196 → 233 Hz with a 5.5 Hz vibrato that sets in after the attack, through three formants that move from
    (730, 1090, 2440) to (300, 2250, 3000) Hz; breath noise on the onset, a swell and a fall in level."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    u = t / seconds
    vib = 25 * np.sin(2 * np.pi * 5.5 * t) * np.clip((t - 0.25) / 0.3, 0, 1)
    f0 = 196 * 2 ** ((300 * np.clip((u - 0.15) / 0.6, 0, 1) + vib) / 1200)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    blend = 0.5 - 0.5 * np.cos(np.pi * np.clip((u - 0.2) / 0.55, 0, 1))
    formants = [(730 + (300 - 730) * blend, 90), (1090 + (2250 - 1090) * blend, 110),
                (2440 + (3000 - 2440) * blend, 160)]
    y = np.zeros_like(t)
    for k in range(1, int(0.45 * sr / 196)):
        freq = k * f0
        gain = sum(g / (1 + ((freq - fc) / bw) ** 2) for (fc, bw), g in zip(formants, (1.0, 0.6, 0.3)))
        amp = np.where(freq < 0.45 * sr, (1.0 / k) * (0.05 + gain), 0.0)
        y += amp * np.sin(k * phase)
    level = np.clip(t / 0.08, 0, 1) ** 2 * (0.7 + 0.3 * np.sin(np.pi * np.clip(u / 0.7, 0, 1))) \
        * np.clip((seconds - t) / 0.35, 0, 1) ** 1.5
    breath = np.convolve(rng.standard_normal(len(t)), np.ones(4) / 4, "same") * 0.04 * np.exp(-t / 0.15)
    y = y / np.abs(y).max() * level + breath
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def make_pluck(sr: int = SR, seconds: float = 1.6, f0: float = 146.83, seed: int = 4) -> np.ndarray:
    """A plucked string (Karplus-Strong with a fractional delay, plucked a fifth of the way along): a bright
    attack whose upper harmonics die first, a pitch that settles a few cents flat, a 1.6 s decay."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    period = sr / f0
    d = int(period - 0.5)
    frac = period - 0.5 - d
    excite = rng.uniform(-1, 1, d)
    pick = int(d / 5)
    excite = excite - np.concatenate([np.zeros(pick), excite[:-pick]])       # pick position comb
    buf = np.zeros(n + d + 2)
    buf[:d] = excite
    out = np.zeros(n)
    loss = 0.996
    for i in range(n):
        j = i + d
        a = buf[i] * (1 - frac) + buf[i + 1] * frac
        b = buf[i + 1] * (1 - frac) + buf[i + 2] * frac
        buf[j] = loss * 0.5 * (a + b) if i + 2 < j else buf[j]
        out[i] = buf[i]
    out *= np.clip((seconds - np.arange(n) / sr) / 0.1, 0, 1)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


# --------------------------------------------------------------------------- building and playing

def source_files(folder: Path) -> dict[str, Path]:
    sf.write(folder / "vowel.wav", make_vowel(), SR, subtype="FLOAT")
    sf.write(folder / "pluck.wav", make_pluck(), SR, subtype="FLOAT")
    return {"cat": SOUNDS / "cat_meow.flac", "flute": SOUNDS / "flute.wav",
            "vowel": folder / "vowel.wav", "pluck": folder / "pluck.wav"}


def load_mono(path: Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


def instrument_spec(sound: str, pair: tuple[str, str], engine: str, files: dict, root: int, seconds: float,
                    settings: dict, out: Path, seed: int = 0):
    data = {"name": f"{sound}_{engine}", "sources": {name: str(files[name]) for name in pair},
            "engine": {"name": engine, "sample_rate": SR, "seed": seed, "device": "cpu", "settings": settings},
            "blend": {"corners": list(pair), "points_per_side": 2},
            # zones of 12 keys are rendered at their 6th key: these bounds put rendered roots on the source's
            # key and an octave either side, so each measured note is a render, not a transposed neighbour
            "keys": {"low": root - 17, "high": root + 18, "every": 12},
            "velocity_layers": 1, "round_robins": 1,
            "note": {"length": round(seconds, 3), "release": 0.5, "attack": 0.002},
            "stereo": "mono", "loop": "auto",
            "output": {"dir": str(out / f"{sound}_{engine}"), "sample_rate": SR, "bit_depth": "24",
                       "normalise": "even", "formats": ["sfz"]}}
    return parse_spec(data, out / "spec.yaml")


def play(sfz: Path, note: int, cc1: int, hold_s: float) -> np.ndarray:
    from support.players import render_sfizz, sfizz_synth
    synth = sfizz_synth(sfz, SR)
    return render_sfizz(synth, note, 127, hold_s, hold_s + 0.6, cc={1: cc1}).mean(axis=0)


def f0_frames(x: np.ndarray, sr: int) -> np.ndarray:
    tr = f0_track(x, sr, fmin=60.0, fmax=2000.0, hop=1024)
    return np.where(tr.voiced, tr.hz, 0.0)


def held_pitch_cents(note: np.ndarray, key: int, hold_s: float) -> float:
    """The held part's pitch (`estimate_pitch` of the note up to note-off, the measure the pipeline gives a
    sample's root and fine tune by) in cents from the key: what the instrument leaves of the tuning."""
    return float(100 * (estimate_pitch(note[:int(hold_s * SR)], SR).midi - key))


def measure(source: np.ndarray, sr: int, root: int, sfz: Path, cc1: int) -> dict:
    hold = len(source) / sr
    note = play(sfz, root, cc1, hold)
    src_f0 = f0_frames(source, sr)
    row = {"timbre": timbre_distance(source, sr, note, SR), "evolution": evolution_distance(source, sr, note, SR),
           "held_cents": held_pitch_cents(note, root, hold)}
    for shift in (-12, 12):
        other = play(sfz, root + shift, cc1, hold)
        other_f0 = f0_frames(other, SR)
        row[f"formants{shift:+d}"] = formant_distance(source, src_f0, sr, other, other_f0, SR)
        row[f"unfloored{shift:+d}"] = formant_distance(source, src_f0, sr, other, other_f0, SR, floor_db=None)
    return row


def formant_floor(source: np.ndarray, sr: int) -> dict:
    """The formant distances, −12 and +12, of the source moved with its own envelope (`formant_keeping_shift`),
    read at each moved harmonic's frequency ("point") and over its band ("band": a smooth envelope, as the
    ddsp decoder reads one), and of the best steady note at each pitch (`best_formant_note`: the lowest
    figure any harmonic instrument can score there, whatever its envelope). A goal under the last is out of
    reach on this measure.
    "resynth" reads the point-moved notes against the same resynthesis unmoved, which removes what the
    resynthesis itself loses (a sum of sines on the smoothed f0 curve: 2.0 dB for the cat at 0 semitones,
    "floor0"), leaving what the measure loses with fewer (+12) or more (−12) harmonics tracing one envelope."""
    src_f0 = f0_frames(source, sr)
    median = float(np.median(src_f0[src_f0 > 0]))
    unmoved = formant_keeping_shift(source, sr, 0.0)
    unmoved_f0 = f0_frames(unmoved, sr)
    row = {"floor0": formant_distance(source, src_f0, sr, unmoved, unmoved_f0, sr)}
    for shift in (-12, 12):
        for read, name in (("point", "floor"), ("band", "band")):
            moved = formant_keeping_shift(source, sr, shift, read=read)
            moved_f0 = f0_frames(moved, sr)
            row[f"{name}{shift:+d}"] = formant_distance(source, src_f0, sr, moved, moved_f0, sr)
            if read == "point":
                row[f"resynth{shift:+d}"] = formant_distance(unmoved, unmoved_f0, sr, moved, moved_f0, sr)
        row[f"best{shift:+d}"] = best_formant_note(source, src_f0, sr, median * 2 ** (shift / 12))[0]
    return row


def floor_table(floors: dict) -> str:
    lines = ["| sound | source moved, envelope read at points, −12 / +12 dB | read over each harmonic's band "
             "| best steady note | point-moved vs the unmoved resynthesis (its own loss) |", "|---|---|---|---|---|"]
    for k, v in floors.items():
        lines.append(f"| {k} | {v['floor-12']:.1f} / {v['floor+12']:.1f} | {v['band-12']:.1f} / {v['band+12']:.1f} "
                     f"| {v['best-12']:.1f} / {v['best+12']:.1f} | {v['resynth-12']:.1f} / {v['resynth+12']:.1f} "
                     f"({v['floor0']:.1f}) |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- where a source has harmonics

PRESENCE_BANDS_HZ = ((1000, 2500), (2500, 4500), (4500, 6000), (6000, 8000), (8000, 12000))


def harmonic_presence(source: np.ndarray, sr: int, hop: int = 256) -> dict:
    """Per band, how far the source's harmonics stand above the floor around them (median dB over its frames
    within 20 dB of the loudest, `harmonics.harmonic_levels` on its own f0 track) and the same for white noise
    read on that track: where the two agree the source has no harmonics there, only noise (breath), and a
    harmonic model can only hand that band to its noise."""
    from dawexport.audio.analysis import loudness_db
    from dawexport.audio.harmonics import harmonic_levels
    track = f0_track(source, sr, fmin=60.0, fmax=2000.0, hop=hop)
    voiced = track.voiced & np.isfinite(track.hz)
    idx = np.arange(len(track.hz))
    f0 = np.interp(idx, idx[voiced], track.hz[voiced])
    loud = loudness_db(source, sr, hop=hop)[:len(f0)]
    active = np.zeros(len(f0), bool)
    active[:len(loud)] = (loud >= loud.max() - 20.0) & voiced[:len(loud)]
    n_harmonics = int(0.5 * sr / f0[active].min())
    noise = np.random.default_rng(0).standard_normal(len(source)) * 0.01
    row = {}
    for name, x in (("source", source), ("noise", noise)):
        levels = harmonic_levels(x, sr, f0, hop, n_harmonics)
        stands = 20 * np.log10(np.maximum(levels.amplitude, 1e-12) / np.maximum(levels.floor, 1e-12))
        at = np.arange(1, n_harmonics + 1)[None, :] * f0[:, None]
        for lo, hi in PRESENCE_BANDS_HZ:
            sel = (at >= lo) & (at < hi) & active[:, None] & (levels.amplitude > 0)
            row[f"{name}{lo}"] = float(np.median(stands[sel])) if sel.any() else float("nan")
    return row


def presence_table(presence: dict) -> str:
    bands = " | ".join(f"{lo / 1000:g}–{hi / 1000:g} kHz" for lo, hi in PRESENCE_BANDS_HZ)
    lines = [f"| sound | {bands} |", "|---|" + "---|" * len(PRESENCE_BANDS_HZ)]
    for k, v in presence.items():
        cells = " | ".join(f"{v[f'source{lo}']:.1f} ({v[f'noise{lo}']:.1f})" for lo, _ in PRESENCE_BANDS_HZ)
        lines.append(f"| {k} | {cells} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the picture

def _colour(v: np.ndarray) -> np.ndarray:
    """[0, 1] → RGB bytes on a dark-to-bright ramp (black, purple, orange, pale yellow)."""
    stops = np.array([[0, 0, 4], [80, 18, 123], [229, 92, 48], [252, 253, 191]], np.float64)
    x = np.clip(v, 0, 1) * (len(stops) - 1)
    i = np.minimum(x.astype(int), len(stops) - 2)
    f = (x - i)[..., None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def spectrogram_panel(x: np.ndarray, sr: int, width: int = 220, height: int = 128, seconds: float = 2.0):
    n_fft, hop = 2048, max(1, int(seconds * sr / width))
    x = np.concatenate([np.asarray(x, np.float64), np.zeros(int(seconds * sr) + n_fft)])[:int(seconds * sr) + n_fft]
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:width]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    mel = power @ mel_filterbank(sr, n_fft, height, fmin=40.0, fmax=min(16000.0, sr / 2)).T
    db = 10 * np.log10(mel + 1e-12)
    v = (db - (db.max() - 70.0)) / 70.0
    return _colour(v.T[::-1])                                     # low frequencies at the bottom


def write_png(path: Path, rgb: np.ndarray) -> None:
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def cat_picture(path: Path, files: dict, root: int, sfz_ddsp: Path, sfz_sampler: Path) -> None:
    """Source | ddsp at the source's key | ddsp an octave down | ddsp an octave up | sampler an octave up."""
    source, sr = load_mono(files["cat"])
    hold = len(source) / sr
    panels = [spectrogram_panel(source, sr)]
    panels += [spectrogram_panel(play(sfz_ddsp, root + s, 0, hold), SR) for s in (0, -12, 12)]
    panels.append(spectrogram_panel(play(sfz_sampler, root + 12, 0, hold), SR))
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    row = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    write_png(path, row)


# --------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="ddsp training budget per instrument")
    parser.add_argument("--max-steps", type=int, default=None, help="ddsp training steps per instrument")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="another ddsp setting, e.g. --set loudness_weight=1 (a YAML value)")
    parser.add_argument("--pairs", default=",".join("-".join(p) for p in PAIRS),
                        help="the two-corner instruments to build, e.g. vowel-pluck (default: all)")
    parser.add_argument("--png", type=Path, default=None, help="write the cat corner's spectrograms here")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None, help="build folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0, help="the engines' seed (another training run's spread)")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--floors", action="store_true", help="only print each sound's formant floor (seconds)")
    parser.add_argument("--harmonics", action="store_true", help="only print where each sound has harmonics: "
                        "how far they stand above the floor around them, per band, against white noise's (seconds)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_fidelity_"))
    work.mkdir(parents=True, exist_ok=True)
    files = source_files(work)
    settings = {}
    if args.minutes is not None:
        settings["max_minutes"] = args.minutes
    if args.max_steps is not None:
        settings["max_steps"] = args.max_steps
    for item in args.set:
        name, _, value = item.partition("=")
        settings[name.strip()] = yaml.safe_load(value)
    sources = {name: load_mono(path) for name, path in files.items()}
    roots = {name: int(round(estimate_pitch(x, sr).midi)) for name, (x, sr) in sources.items()}
    results, built, seconds = [], {}, {}
    pairs = [tuple(p.split("-")) for p in args.pairs.split(",")]
    if any(p not in PAIRS for p in pairs):
        parser.error(f"--pairs: choose from {', '.join('-'.join(p) for p in PAIRS)}")
    if args.harmonics:
        presence = {sound: harmonic_presence(*sources[sound]) for pair in pairs for sound in pair}
        print("how far each sound's harmonics stand above the floor around them, median dB (white noise read on "
              "the same f0 track in brackets: the figure where there are no harmonics):\n")
        print(presence_table(presence))
        return 0
    floors = {sound: formant_floor(*sources[sound]) for pair in pairs for sound in pair}
    floor_line = ("formant floors (`formant_keeping_shift`: the source moved with its own harmonic envelope, "
                  "what a perfect formant-keeping model scores; `best_formant_note`: the lowest figure any steady "
                  "harmonic note scores):\n\n" + floor_table(floors))
    if args.floors:
        print(floor_line)
        return 0
    for pair in pairs:
        for engine in ("ddsp", "sampler"):
            for corner, sound in enumerate(pair):
                x, sr = sources[sound]
                length = len(x) / sr               # the note is rendered as long as it is then held in sfizz
                spec = instrument_spec(sound, pair, engine, files, roots[sound], length,
                                       settings if engine == "ddsp" else {}, work, args.seed)
                t0 = time.perf_counter()
                build(spec, quiet=args.quiet, force=True)
                seconds[(sound, engine)] = time.perf_counter() - t0
                sfz = spec.output_dir() / f"{sound}_{engine}.sfz"
                built[(sound, engine)] = sfz
                row = measure(x, sr, roots[sound], sfz, 0 if corner == 0 else 127)
                results.append({"sound": sound, "engine": engine, "key": roots[sound], **row})
    if args.png and ("cat", "ddsp") in built:
        cat_picture(args.png, files, roots["cat"], built[("cat", "ddsp")], built[("cat", "sampler")])

    by = {(r["sound"], r["engine"]): r for r in results}
    print(f"ddsp settings: {settings or 'engine defaults'}, seed {args.seed}; build seconds (incl. training, first of each "
          f"pair): " + ", ".join(f"{s}/{e} {v:.0f}" for (s, e), v in seconds.items()))
    print()
    print("| sound | engine | key | timbre dB | evolution dB | formants −12 dB | formants +12 dB | held pitch, cents "
          "| goals met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        goals = ""
        if r["engine"] == "ddsp":
            s = by[(r["sound"], "sampler")]
            checks = [r["timbre"] <= max(1.5 * s["timbre"], 2.0), r["evolution"] <= max(1.5 * s["evolution"], 3.0),
                      r["formants-12"] <= 0.5 * s["formants-12"], r["formants+12"] <= 0.5 * s["formants+12"]]
            goals = " ".join("✓" if c else "✗" for c in checks)
        print(f"| {r['sound']} | {r['engine']} | {r['key']} | {r['timbre']:.1f} | {r['evolution']:.1f} | "
              f"{r['formants-12']:.1f} | {r['formants+12']:.1f} | {r['held_cents']:+.1f} | {goals} |")
    print("\n(goals, in order: timbre ≤ max(1.5 × sampler, 2 dB); evolution ≤ max(1.5 × sampler, 3 dB); "
          "formants −12 and +12 ≤ 0.5 × sampler)")
    print("\nformants without the 60 dB floor (harmonics down to the 24-bit floor count), −12 / +12 dB: "
          + "; ".join(f"{r['sound']} {r['engine']} {r['unfloored-12']:.1f} / {r['unfloored+12']:.1f}" for r in results))
    print("\n" + floor_line)
    if args.json:
        args.json.write_text(json.dumps({"settings": settings, "rows": results, "floors": floors}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
