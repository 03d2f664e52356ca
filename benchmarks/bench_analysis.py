"""Speed of the analysis every build runs on its sources: the f0 tracker, as multiples of real time.

    python benchmarks/bench_analysis.py

Prints a markdown table. Timing lives here, not in tests (a busy machine would make a timed test fail).
"""
from __future__ import annotations

import time

import numpy as np

from dawexport.audio.analysis import f0_track, loudness_db

SR = 44100


def glide(seconds: float) -> np.ndarray:
    """A harmonic tone gliding 220 → 330 Hz with a little noise: a source like the ones users bring."""
    t = np.arange(int(seconds * SR)) / SR
    f = 220.0 * (1.5 ** (t / seconds))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    print("| analysis | source length | time (best of 3) | × real time |")
    print("|---|---|---|---|")
    for seconds in (3.0, 30.0):
        x = glide(seconds)
        f0_track(x[:SR], SR)  # warm-up
        for name, fn in (("f0 track", lambda: f0_track(x, SR)), ("loudness", lambda: loudness_db(x, SR))):
            t = best_of(fn)
            print(f"| {name} | {seconds:.0f} s | {t * 1000:.0f} ms | {seconds / t:.0f}× |")


if __name__ == "__main__":
    main()
