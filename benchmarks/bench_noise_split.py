"""Which branch of a trained ddsp model carries the top of a source's spectrum: harmonics or noise.

    python benchmarks/bench_noise_split.py MODEL_DIR                 # the flute at its own pitch
    python benchmarks/bench_noise_split.py MODEL_DIR --sound cat --shift 12

MODEL_DIR is a trained ddsp model folder (e.g. a bench run's `.dawexport-cache/models/ddsp-…`; `--work DIR`
of bench_fidelity.py keeps them). The source is played through the model on its own f0, loudness and latent
trajectory z(t) (moved `--shift` semitones), once with the harmonic branch alone and once with the noise
branch alone, and `fidelity.harmonic_split` reads per band the level of the harmonic peaks and of the floor
between them (`harmonics.harmonic_levels` on the f0 track the model played, frame by model frame): the
source's (its harmonics and its breath), the model's harmonics' peaks and its noise's floor.
A model whose noise sits above the source's floor while its harmonics sit below the source's peaks fills the
band with noise where the source has harmonics. Levels are relative: the model's total power over the loud
frames is matched to the source's. Seconds of CPU; prints one markdown table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dawexport.audio.fidelity import SPLIT_HOP, harmonic_split  # noqa: E402
from dawexport.audio.resample import resample  # noqa: E402
from dawexport.engines.ddsp.engine import DDSPEngine  # noqa: E402

SOUNDS = {"flute": ROOT / "instruments" / "sounds" / "flute.wav", "cat": ROOT / "instruments" / "sounds" / "cat_meow.flac"}
BANDS = [(1000, 2000), (2000, 3000), (3000, 4500), (4500, 6000), (6000, 8000), (8000, 11000), (11000, 15000)]


def branches(engine: DDSPEngine, x: np.ndarray, shift: float, seed: int = 0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The model's harmonic and noise branches for the source x's own controls, f0 moved `shift` semitones,
    and the f0 they play (one value per model frame)."""
    model = engine.model
    c = engine.source_controls(x, shift)
    white = torch.randn(1, c["f0_hz"].shape[1], 2 * engine.hop, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        harm = model.harmonic.get_signal(c["harm_amps"], c["f0_hz"])[0].numpy()[:len(x)]
        noise = model.noise.get_signal(c["magnitudes"], white)[0].numpy()[:len(x)]
    return harm, noise, c["f0_hz"][0].numpy().astype(np.float64)


def loud_power(x: np.ndarray, n_fft: int = 8192) -> float:
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(x, np.float64), n_fft)[::SPLIT_HOP]
    energy = (frames ** 2).sum(axis=1)
    return float(energy[energy >= energy.max() / 100.0].sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a trained ddsp model folder")
    parser.add_argument("--sound", choices=sorted(SOUNDS), default="flute")
    parser.add_argument("--shift", type=float, default=0.0, help="semitones the model's note is moved")
    torch.set_num_threads(1)
    parser.add_argument("--levels", choices=("source", "learned"), default="source",
                        help="transposed_levels: how the moved note sets its levels (the engine's setting)")
    args = parser.parse_args()
    engine = DDSPEngine(DDSPEngine.Settings(transposed_levels=args.levels), sample_rate=44100, seed=0)
    engine.load(args.model)
    sr = engine.sample_rate
    x, rate = sf.read(str(SOUNDS[args.sound]), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if rate != sr:
        x = resample(x, rate, sr).astype(np.float32).ravel()
    harm, noise, moved = branches(engine, x, args.shift)
    f0, hop = moved * 2.0 ** (-args.shift / 12.0), engine.hop        # the source's own track, as the model read it
    offset = 10 * np.log10(loud_power(x) / loud_power(harm + noise))
    src_peaks, src_floor = harmonic_split(x, sr, f0, BANDS, hop=hop)
    harm_peaks, _ = harmonic_split(harm, sr, moved, BANDS, hop=hop)
    _, noise_floor = harmonic_split(noise, sr, moved, BANDS, hop=hop)
    mix_peaks, _ = harmonic_split(harm + noise, sr, moved, BANDS, hop=hop)
    harm_peaks, noise_floor, mix_peaks = harm_peaks + offset, noise_floor + offset, mix_peaks + offset
    print(f"{args.sound}, model note {args.shift:+g} semitones (median f0 {np.median(moved):.0f} Hz), "
          f"model level {offset:+.1f} dB to the source's; {args.model}")
    print()
    print("| band, Hz | source peaks dB | source floor dB | model harmonics' peaks | model noise floor "
          "| model peaks (both) | harmonics − source peaks | noise − source floor |")
    print("|---|---|---|---|---|---|---|---|")
    for i, (lo, hi) in enumerate(BANDS):
        print(f"| {lo}–{hi} | {src_peaks[i]:.1f} | {src_floor[i]:.1f} | {harm_peaks[i]:.1f} | {noise_floor[i]:.1f} "
              f"| {mix_peaks[i]:.1f} | {harm_peaks[i] - src_peaks[i]:+.1f} | {noise_floor[i] - src_floor[i]:+.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
