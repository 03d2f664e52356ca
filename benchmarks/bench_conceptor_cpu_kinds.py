"""How far apart the conceptor's renders land on another kind of CPU (numpy's OpenBLAS kernels).

    python benchmarks/bench_conceptor_cpu_kinds.py                 # N = 100, 48 takes per variant (~2 minutes)
    python benchmarks/bench_conceptor_cpu_kinds.py --size 400

On one CPU kind a conceptor take is the same bytes whatever its batch (tests/e2e/test_reproducible.py). numpy's
OpenBLAS picks its kernels by instruction set; `OPENBLAS_CORETYPE=Haswell` (AVX2) stands in for an older CPU
against this machine's own choice. Each variant fits the same tiny two-tone model (the reproducibility test's
corpus) and renders the same grid in its own process, in the auto and the low-rank form. Per take: the
sample-wise peak difference (dBFS), and the differences of RMS level (dB) and pitch (cents).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"this CPU's kernels": {}, "AVX2 kernels (Haswell)": {"OPENBLAS_CORETYPE": "Haswell"}}
FORMS = ("auto", "lowrank")


def worker(size: int, out: str) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]
    import test_reproducible as t
    from dawexport.engines import engine_class
    cls = engine_class("conceptor")
    takes = {}
    for form in FORMS:
        settings = cls.Settings(reservoir_size=size, grains_per_source=4, grain_spacing_ms=None, n_reservoirs=1,
                                form=form)
        engine = cls(settings, sample_rate=t.SR, seed=7)
        engine.fit(t._corpus(), None, None)
        rendered = engine.render(t._grid())
        longest = max(len(x) for x in rendered)
        takes[form] = np.stack([np.pad(x, (0, longest - len(x))) for x in rendered])
    np.savez(out, **takes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100, help="reservoir units N")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.size, args.worker)
        return 0
    sys.path.insert(0, str(ROOT))
    from dawexport.audio.analysis import estimate_pitch
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for name, env in VARIANTS.items():
            out = str(Path(tmp) / f"{len(runs)}.npz")
            subprocess.run([sys.executable, __file__, "--size", str(args.size), "--worker", out], check=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1", **env})
            runs[name] = np.load(out)
        (ref_name, ref), (name, other) = runs.items()
        print(f"## conceptor renders on another CPU kind — N = {args.size}, load average {os.getloadavg()[0]:.1f}\n")
        print(f"against {ref_name}; per take of the grid, worst / median\n")
        print("| form | variant | identical takes | sample-wise difference | level difference | pitch difference |")
        print("|---|---|---|---|---|---|")
        for form in FORMS:
            peak, level, cents, same = [], [], [], 0
            for a, b in zip(ref[form], other[form]):
                same += a.tobytes() == b.tobytes()
                peak.append(20 * np.log10(max(float(np.max(np.abs(a - b))), 1e-30)))
                level.append(abs(20 * np.log10(np.sqrt(np.mean(b.astype(float) ** 2) / np.mean(a.astype(float) ** 2)))))
                pa, pb = estimate_pitch(a[1000:5000], 16000), estimate_pitch(b[1000:5000], 16000)
                cents.append(abs(1200 * np.log2(pb.hz / pa.hz)) if pa.pitched and pb.pitched else np.nan)
            print(f"| {form} | {name} | {same}/{len(peak)} | {max(peak):.1f} / {np.median(peak):.1f} dBFS | "
                  f"{max(level):.3f} / {np.median(level):.3f} dB | {np.nanmax(cents):.2f} / {np.nanmedian(cents):.2f} cents |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
