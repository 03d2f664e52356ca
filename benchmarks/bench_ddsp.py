"""Benchmark of the `ddsp` engine on the cat_flute spec: speed, memory and quality against `sampler`.

    python benchmarks/bench_ddsp.py                 # train (2000 steps), render, measure; prints a table
    python benchmarks/bench_ddsp.py --build         # also time a cold `dawexport build` (another ~6-8 min)
    python benchmarks/bench_ddsp.py --minutes 1 --json out.json

Figures (not timed tests; the machine may be shared, so read them as orders of magnitude):
- render throughput: seconds of model-rate audio per second of wall time for the whole cat_flute grid
  (blend points × zones × layers × channels in one `render` call);
- training time to usable: first validation whose spectral loss is within 5 % of the best the run reached;
- pitch error: median |cents| of `estimate_pitch` on the renders, per zone (the worst zone is reported);
- resynthesis distance: multi-resolution spectral distance of a source re-played through the model (its own
  f0 and loudness) to the original, and of a rendered note at the source's pitch to the original;
- loudness monotonic in velocity: share of (blend point, zone, channel) whose layers get louder with velocity;
- blend smoothness: share of (zone, layer, channel) whose spectral distance to corner A grows at every step;
- energy above 8 kHz of the renders and sources (dB relative to the total).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dawexport.audio.analysis import estimate_pitch, integrated_loudness_db  # noqa: E402
from dawexport.engines import make_engine  # noqa: E402
from dawexport.engines.sampler import SamplerEngine  # noqa: E402
from dawexport.pipeline import build_corpus  # noqa: E402
from dawexport.progress import Progress  # noqa: E402
from dawexport.render.plan import make_plan  # noqa: E402
from dawexport.spec import parse_spec  # noqa: E402

SPEC = ROOT / "instruments" / "cat_flute.yaml"


def load_cat_flute(engine: str, rate: int | None, settings: dict, out_dir: Path):
    data = yaml.safe_load(SPEC.read_text())
    data["engine"] = {**data.get("engine", {}), "name": engine, "settings": settings}
    if rate:
        data["engine"]["sample_rate"] = rate
    data["output"] = {**data.get("output", {}), "dir": str(out_dir)}
    return parse_spec(data, SPEC), data


def spectral_distance(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    import torch
    from dawexport.engines.ddsp.model import fft_sizes, multi_resolution_stft_loss
    n = min(len(a), len(b))
    ta = torch.tensor(np.asarray(a[:n], np.float32))[None]
    tb = torch.tensor(np.asarray(b[:n], np.float32))[None]
    return float(multi_resolution_stft_loss(ta, tb, fft_sizes(sample_rate)))


def hf_db(x: np.ndarray, sample_rate: int, cutoff: float = 8000.0) -> float:
    spec = np.abs(np.fft.rfft(np.asarray(x, np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    return float(10 * np.log10(max(spec[freqs > cutoff].sum(), 1e-30) / max(spec.sum(), 1e-30)))


def quality(engine, spec, corpus, requests, takes, rate) -> dict:
    """Pitch error per zone, loudness vs velocity, blend smoothness, HF energy."""
    plan = make_plan(spec, corpus.channels)
    by = {}
    for r, t in zip(requests, takes):
        point = tuple(round(w, 3) for _, w in r.weights)
        by[(point, r.note, r.velocity, r.channel)] = t
    points = sorted({k[0] for k in by}, reverse=True)      # corner A (weight 1 on the first source) first
    notes = sorted({k[1] for k in by})
    vels = sorted({k[2] for k in by})
    chans = sorted({k[3] for k in by})
    zone_err = {}
    for note in notes:
        errs = []
        for (_, n, v, _), t in by.items():
            if n != note or v != vels[-1]:
                continue
            est = estimate_pitch(t[: int(spec.note.length * rate)], rate)
            errs.append(abs(100 * (est.midi - note)) if np.isfinite(est.midi) else np.inf)
        zone_err[note] = float(np.median(errs))
    mono = total = 0
    steps_db = []
    for p in points:
        for n in notes:
            for c in chans:
                loud = [integrated_loudness_db(by[(p, n, v, c)], rate) for v in vels]
                total += 1
                mono += all(b > a for a, b in zip(loud, loud[1:]))
                steps_db += list(np.diff(loud))
    smooth = smooth_total = 0
    rough = []
    if len(points) > 2:
        for n in notes:
            for v in vels:
                for c in chans:
                    a = by[(points[0], n, v, c)]
                    d = [spectral_distance(a, by[(p, n, v, c)], rate) for p in points[1:]]
                    smooth_total += 1
                    ok = all(y > x for x, y in zip(d, d[1:]))
                    smooth += ok
                    if not ok:
                        rough.append({"note": n, "velocity": v, "channel": c, "distances": d})
    hf = [hf_db(t, rate) for t in takes[:: max(1, len(takes) // 40)]]
    return {"zone_median_cents": zone_err, "worst_zone_cents": max(zone_err.values()),
            "loud_monotonic": f"{mono}/{total}", "loud_step_db": float(np.mean(steps_db)) if steps_db else None,
            "blend_smooth": f"{smooth}/{smooth_total}" if smooth_total else "n/a", "blend_rough": rough,
            "hf_db_median": float(np.median(hf)), "takes": len(plan.cells)}


def resynthesis(engine, corpus, rate) -> dict:
    from dawexport.engines.base import RenderRequest
    out = {}
    for clip in corpus.clips:
        if clip.channel not in ("L", "mono", "M"):
            continue
        x = clip.audio
        row = {}
        if hasattr(engine, "resynthesize"):
            row["resynth"] = spectral_distance(engine.resynthesize(x, clip.source, clip.channel), x, rate)
        note = int(round(clip.pitch.midi))
        [take] = engine.render([RenderRequest(((clip.source, 1.0),), clip.channel, note, 127,
                                              len(x) / rate, 0.0)])
        row["note"] = spectral_distance(take, x, rate)
        out[clip.source] = row
    return out


def time_render(engine, requests, repeats: int = 1) -> tuple[list, float, float]:
    """(takes, best wall seconds, CPU seconds of that pass) over `repeats` renders of the whole grid."""
    best, cpu = float("inf"), float("nan")
    takes = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        takes = engine.render(requests)
        wall = time.perf_counter() - t0
        if wall < best:
            best, cpu = wall, time.process_time() - c0
    return takes, best, cpu


def time_to_usable(history: list[dict], tolerance: float = 0.05) -> tuple[int, float]:
    vals = [(h["step"], h["val"], h["seconds"]) for h in history if h.get("val") is not None]
    if not vals:
        return 0, float("nan")
    best = min(v for _, v, _ in vals)
    for step, val, seconds in vals:
        if val <= best * (1 + tolerance):
            return step, seconds
    return vals[-1][0], vals[-1][2]


def cold_build(spec_data: dict, workdir: Path) -> tuple[float, float]:
    """Wall time and peak RSS (GB) of `dawexport build` on a copy of the spec with a fresh cache."""
    data = dict(spec_data)
    data["output"] = {**data["output"], "dir": str(workdir / "build" / "cat_flute")}
    data["sources"] = {k: str((SPEC.parent / v).resolve()) if isinstance(v, str) else v
                       for k, v in data["sources"].items()}
    spec_file = workdir / "cat_flute.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dawexport", "build", str(spec_file), "-q"], check=True, cwd=workdir,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, peak_kb / 1024 ** 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None,
                        help="add a wall-clock stop (default: none, the step count alone)")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--build", action="store_true", help="also time a cold `dawexport build`")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON too")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--save-model", type=Path, default=None, help="keep the trained model in this folder")
    args = parser.parse_args()

    import torch
    load = os.getloadavg()[0]
    settings = {}
    if args.minutes is not None:
        settings["max_minutes"] = args.minutes
    if args.max_steps is not None:
        settings["max_steps"] = args.max_steps
    tmp = Path(tempfile.mkdtemp(prefix="bench_ddsp_"))
    spec, data = load_cat_flute("ddsp", args.rate, settings, tmp / "out")
    engine = make_engine(spec)
    rate = engine.sample_rate
    progress = Progress(quiet=args.quiet)
    corpus = build_corpus(spec, rate)
    plan = make_plan(spec, corpus.channels)
    requests = plan.requests()
    seconds_audio = sum(r.duration_s + r.release_s for r in requests)
    progress.stage("bench", f"{len(requests)} renders, {seconds_audio:.0f} s of audio at {rate} Hz, "
                   f"torch threads {torch.get_num_threads()}")

    t0 = time.perf_counter()
    engine.fit(corpus, tmp / "train", progress)
    fit_s = time.perf_counter() - t0
    result = engine.train_result
    if args.save_model:
        engine.save(args.save_model)
    usable_step, usable_s = time_to_usable(result.history)

    takes, render_s, render_cpu = time_render(engine, requests, repeats=3)
    q = quality(engine, spec, corpus, requests, takes, rate)
    resyn = resynthesis(engine, corpus, rate)

    base_spec, _ = load_cat_flute("sampler", rate, {}, tmp / "out_sampler")
    sampler = SamplerEngine(SamplerEngine.Settings(), sample_rate=rate)
    sampler.fit(corpus, tmp / "sampler", progress)
    s_takes, s_render_s, s_render_cpu = time_render(sampler, requests, repeats=2)
    sq = quality(sampler, base_spec, corpus, requests, s_takes, rate)
    s_resyn = resynthesis(sampler, corpus, rate)
    src_hf = {c.source: hf_db(c.audio, rate) for c in corpus.clips if c.channel == corpus.channels[0]}

    build_wall = build_mem = None
    if args.build:
        build_wall, build_mem = cold_build(data, tmp)

    def f(x, fmt="{:.2f}"):
        return "n/a" if x is None else fmt.format(x)

    rows = [
        ("render throughput (× real time, whole grid)", f(seconds_audio / render_s, "{:.0f}×"),
         f(seconds_audio / s_render_s, "{:.0f}×"), "≥ 100×"),
        ("render wall time / CPU time (s)", f"{render_s:.2f} / {render_cpu:.2f}",
         f"{s_render_s:.2f} / {s_render_cpu:.2f}", "best of 3 (ddsp) / 2 (sampler)"),
        ("training: steps / wall time", f"{result.step} / {fit_s:.0f} s ({result.stopped_by})", "—", ""),
        ("training time to usable (val within 5 % of best)", f"{usable_s / 60:.1f} min (step {usable_step})",
         "—", "≤ 5 min"),
        ("best validation spectral loss", f(result.best_val), "—", ""),
        ("pitch error, worst zone median (cents)", f(q["worst_zone_cents"]), f(sq["worst_zone_cents"]), "≤ 5"),
    ]
    for source in resyn:
        rows.append((f"spectral distance to source, {source}: resynthesis",
                     f(resyn[source].get("resynth")), "—", "lower is better"))
        rows.append((f"spectral distance to source, {source}: note at its pitch",
                     f(resyn[source]["note"]), f(s_resyn[source]["note"]), "lower is better"))
    rows += [
        ("loudness rises with velocity", f"{q['loud_monotonic']} (mean step {q['loud_step_db']:.1f} dB)",
         f"{sq['loud_monotonic']} (mean step {sq['loud_step_db']:.1f} dB)", "all"),
        ("blend smoothness (distance to A grows at each step)", q["blend_smooth"], sq["blend_smooth"], "all"),
        ("energy above 8 kHz, median render (dB)", f(q["hf_db_median"], "{:.1f}"),
         f(sq["hf_db_median"], "{:.1f}"), "sources: " + ", ".join(f"{k} {v:.1f}" for k, v in src_hf.items())),
        ("cold `dawexport build` wall time (s)", f(build_wall, "{:.0f}"), "—", "≤ 600"),
        ("cold `dawexport build` peak memory (GB)", f(build_mem), "—", "≤ 4"),
    ]
    print(f"\n### ddsp on cat_flute at {rate} Hz ({len(requests)} renders × "
          f"{requests[0].duration_s + requests[0].release_s:.1f} s; {os.cpu_count()} CPU cores, "
          f"device {result.device}, {result.precision}; load average {load:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end)\n")
    print("| measure | ddsp | sampler | goal / note |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nvalidation loss by step (seconds): " + ", ".join(
        f"{h['step']}: {h['val']:.2f} ({h['seconds']:.0f} s)" for h in result.history if h.get("val") is not None))
    print("per-zone median pitch error (cents), ddsp: "
          + ", ".join(f"{n}: {c:.2f}" for n, c in q["zone_median_cents"].items()))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ddsp": q, "sampler": sq, "resynthesis": resyn,
                                         "history": result.history}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
