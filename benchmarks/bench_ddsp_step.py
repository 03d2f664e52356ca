"""CPU time of one ddsp training step (forward, loss, backward, optimiser) with the default settings against
the same with other settings, as a ratio measured in one run (so the machine's load divides out).

    python benchmarks/bench_ddsp_step.py --set harmonic_levels=absolute
    python benchmarks/bench_ddsp_step.py --set harmonic_levels=absolute --repeats 7 --steps 4

The model is the engine's default at 44.1 kHz (cat_flute's rate) with a batch of the default size and crop
length, one torch thread, process time; A and B alternate so a change in load hits both alike. Prints one
markdown table: median CPU seconds per step of each and the ratio B / A.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dawexport.engines.ddsp import DDSPEngine  # noqa: E402
from dawexport.engines.ddsp.model import DDSP  # noqa: E402

SR = 44100


def make_step(settings: dict, seed: int = 0):
    """A closure running one training step of a fresh default-size model on a fixed random batch."""
    engine = DDSPEngine(DDSPEngine.Settings(**settings), sample_rate=SR, seed=seed)
    s = engine.settings
    torch.manual_seed(seed)
    model = DDSP(engine._config(2)).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=s.lr)
    frames = int(round(s.crop_s * SR / engine.hop))
    rng = np.random.default_rng(seed)
    t = np.arange(frames * engine.hop) / SR
    f0 = rng.uniform(200.0, 800.0, (s.batch_size, 1))
    audio = torch.from_numpy((0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(
        (s.batch_size, len(t)))).astype(np.float32))
    batch = {"f0": torch.from_numpy(np.repeat(f0, frames, 1).astype(np.float32)),
             "loud": torch.from_numpy(rng.uniform(-40.0, -10.0, (s.batch_size, frames)).astype(np.float32)),
             "mel": torch.from_numpy(rng.standard_normal((s.batch_size, frames, s.n_mels)).astype(np.float32)),
             "white": torch.from_numpy(rng.standard_normal((s.batch_size, frames, 2 * engine.hop)).astype(
                 np.float32)),
             "audio": audio, "key": torch.zeros(s.batch_size, dtype=torch.long)}
    loss_fn = engine.training_loss(2)                 # the engine's own loss: its loss settings count too

    def step():
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        loss.backward()
        optimiser.step()
    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a ddsp setting of B (A is the default), e.g. --set harmonic_levels=absolute")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    args = parser.parse_args()
    torch.set_num_threads(1)
    other = {}
    for item in args.set:
        name, _, value = item.partition("=")
        other[name.strip()] = yaml.safe_load(value)
    steps = {"A": make_step({}), "B": make_step(other)}
    for step in steps.values():          # warm-up: allocator, first-call costs
        step()
    times = {"A": [], "B": []}
    for _ in range(args.repeats):
        for name, step in steps.items():
            c0 = time.process_time()
            for _ in range(args.steps):
                step()
            times[name].append((time.process_time() - c0) / args.steps)
    a, b = float(np.median(times["A"])), float(np.median(times["B"]))
    ratios = [tb / ta for ta, tb in zip(times["A"], times["B"])]
    print(f"B: {other or 'the defaults'}; {args.repeats} alternating repeats of {args.steps} steps, one torch thread")
    print()
    print("| | CPU s per step (median) | ratio B / A (median of the repeats' ratios, min–max) |")
    print("|---|---|---|")
    print(f"| A (defaults) | {a:.3f} | |")
    print(f"| B | {b:.3f} | {np.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
