"""How far apart two builds of cat_flute can land when the arithmetic underneath changes.

    python benchmarks/bench_reproducibility.py                  # 2000 training steps per variant (~30 min)
    python benchmarks/bench_reproducibility.py --steps 300      # a quicker look

On one machine with one torch build and a fixed `threads` setting, a build is bit-for-bit the same (see
tests/test_reproducible.py). This measures what changes when that does not hold, each variant run in its own
process against the reference (1 torch thread, this CPU's best kernels):

- threads 2: the same model trained and rendered with 2 torch threads (parallel reductions add in another order);
- avx2: torch's AVX2 kernels instead of AVX-512 (`ATEN_CPU_CAPABILITY=avx2`), standing in for an older CPU;
- no oneDNN: `torch.backends.mkldnn` switched off (other matmul/convolution kernels).

Two rows per variant: *render only* renders the reference's trained model under the variant (what a render
worker on another machine does with a model trained elsewhere); *train + render* trains a model under the
variant too. Figures per rendered take of the whole cat_flute grid (234 renders): the sample-wise peak
difference in dBFS, and the timbre difference (mean |dB| between time-averaged 64-band mel spectra, 40 Hz to
16 kHz, of the frames within 20 dB of the loudest, level removed: DESIGN.md's timbre measure) between the
two renders and, for fidelity, how much the variant's distance to the source recording differs from the
reference's at the source's own pitch. A GPU is not measured here unless one is present (`--device cuda`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "instruments" / "cat_flute.yaml"
VARIANTS = {                     # name -> (torch threads, extra environment, oneDNN on)
    "reference": (1, {}, True),
    "threads 2": (2, {}, True),
    "avx2": (1, {"ATEN_CPU_CAPABILITY": "avx2"}, True),
    "no oneDNN": (1, {}, False),
}


def _setup(threads: int, steps: int, device: str):
    sys.path.insert(0, str(ROOT))
    import dawexport.engines  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
    from dawexport.engines import make_engine
    from dawexport.pipeline import build_corpus
    from dawexport.render.plan import make_plan
    from dawexport.spec import parse_spec
    data = yaml.safe_load(SPEC.read_text())
    data["engine"] = {**data["engine"], "device": device,
                      "settings": {"max_steps": steps, "max_minutes": None, "threads": threads}}
    spec = parse_spec(data, SPEC)
    engine = make_engine(spec)
    corpus = build_corpus(spec, engine.sample_rate)
    requests = make_plan(spec, corpus.channels).requests()
    return engine, corpus, requests


def worker(args) -> int:
    """One variant in its own process: train (or load the reference model), render the grid, save it."""
    import torch
    threads, _, onednn = VARIANTS[args.variant]
    torch.backends.mkldnn.enabled = onednn
    engine, corpus, requests = _setup(threads, args.steps, args.device)
    out = Path(args.out)
    if args.model:
        engine.load(Path(args.model))
    elif (out / "model").is_dir():                  # trained by an earlier run: render it again
        engine.load(out / "model")
    else:
        t0 = time.perf_counter()
        engine.fit(corpus, out / "work", None)
        engine.save(out / "model")
        print(f"{args.variant}: trained {args.steps} steps in {time.perf_counter() - t0:.0f} s", flush=True)
    takes = engine.render(requests)
    np.savez(out / ("render_only.npz" if args.model else "takes.npz"), *takes)
    return 0


def mel_profile(x: np.ndarray, rate: int, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Time-averaged 64-band mel power (dB) of the frames within 20 dB of the loudest, level removed."""
    sys.path.insert(0, str(ROOT))
    from dawexport.audio.spectral import mel_filterbank
    x = np.asarray(x, np.float64)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    mel = power @ mel_filterbank(rate, n_fft, 64, 40.0, 16000.0).T
    energy = 10 * np.log10(power.sum(axis=1) + 1e-20)
    keep = energy >= energy.max() - 20.0
    db = 10 * np.log10(mel[keep].mean(axis=0) + 1e-20)
    return db - db.mean()


def timbre_db(a: np.ndarray, b: np.ndarray, rate: int) -> float:
    return float(np.mean(np.abs(mel_profile(a, rate) - mel_profile(b, rate))))


def peak_dbfs(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Largest sample-wise difference per take in dBFS; -inf where the takes are identical."""
    peaks = np.array([float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b)])
    with np.errstate(divide="ignore"):
        return 20 * np.log10(peaks)


def _load(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per variant")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, reference first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep models and renders here")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        return worker(args)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_repro_"))
    names = args.variants.split(",")

    def run(name: str, model: Path | None = None) -> None:
        out = work / name.replace(" ", "_")
        out.mkdir(parents=True, exist_ok=True)
        done = out / ("render_only.npz" if model else "takes.npz")
        if done.exists():
            return
        cmd = [sys.executable, __file__, "--variant", name, "--out", str(out), "--steps", str(args.steps),
               "--device", args.device] + (["--model", str(model)] if model else [])
        subprocess.run(cmd, check=True, env={**os.environ, **VARIANTS[name][1]})

    for name in names:
        run(name)
    ref_dir = work / names[0].replace(" ", "_")
    for name in names:                      # the reference too: render-only rows compare like with like
        run(name, ref_dir / "model")

    sys.path.insert(0, str(ROOT))
    engine, corpus, requests = _setup(1, args.steps, "cpu")
    rate = engine.sample_rate
    reference = _load(ref_dir / "takes.npz")
    reference_render = _load(ref_dir / "render_only.npz")
    sources = {(c.source, c.channel): c.audio for c in corpus.clips}

    def fidelity(takes) -> list[float]:
        """Timbre distance to the source at its own pitch, per corner source and channel (top velocity)."""
        out = []
        for i, r in enumerate(requests):
            if len(r.weights) == 1 or max(w for _, w in r.weights) == 1.0:
                source = max(r.weights, key=lambda sw: sw[1])[0]
                clip = next(c for c in corpus.clips if c.source == source and c.channel == r.channel)
                if r.velocity == max(q.velocity for q in requests) and r.note == int(round(clip.pitch.midi)):
                    out.append(timbre_db(takes[i], sources[(source, r.channel)], rate))
        return out

    ref_fid = fidelity(reference)
    rows, figures = [], {"steps": args.steps, "renders": len(requests), "torch": __import__("torch").__version__}
    for name in names[1:]:
        folder = work / name.replace(" ", "_")
        for label, file in (("render only", "render_only.npz"), ("train + render", "takes.npz")):
            takes = _load(folder / file)
            base = reference_render if file == "render_only.npz" else reference
            peaks = peak_dbfs(base, takes)
            timbre = [timbre_db(a, b, rate) for a, b in zip(base, takes)]
            fid = fidelity(takes)
            fid_diff = max((abs(a - b) for a, b in zip(fidelity(base), fid)), default=float("nan"))
            same = sum(np.array_equal(a, b) for a, b in zip(base, takes))
            row = {"variant": name, "what": label, "identical": f"{same}/{len(takes)}",
                   "peak_max_dbfs": float(peaks.max()), "peak_median_dbfs": float(np.median(peaks)),
                   "timbre_max_db": float(max(timbre)), "timbre_median_db": float(np.median(timbre)),
                   "fidelity_diff_db": float(fid_diff)}
            rows.append(row)
    figures["rows"] = rows
    figures["reference_fidelity_db"] = ref_fid
    print(f"\ncat_flute, {args.steps} training steps, {len(requests)} renders, torch {figures['torch']}; "
          f"reference: 1 thread, {os.environ.get('ATEN_CPU_CAPABILITY', 'default')} kernels\n")
    print("| variant | what differs | identical takes | sample-wise difference, worst / median take | "
          "timbre difference, worst / median take | fidelity change at the source's pitch |")
    print("|---|---|---|---|---|---|")

    def dbfs(value: float) -> str:
        return "none" if value == -np.inf else f"{value:.1f}"

    for r in rows:
        print(f"| {r['variant']} | {r['what']} | {r['identical']} | {dbfs(r['peak_max_dbfs'])} / "
              f"{dbfs(r['peak_median_dbfs'])} dBFS | {r['timbre_max_db']:.3f} / {r['timbre_median_db']:.3f} dB | "
              f"{r['fidelity_diff_db']:.3f} dB |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
