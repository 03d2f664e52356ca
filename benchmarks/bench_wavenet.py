"""Generation speed of the `wavenet` engine's fast decoder, against this machine's own matmul throughput.

    python benchmarks/bench_wavenet.py                       # widths 64 and 128; prints markdown tables
    python benchmarks/bench_wavenet.py --steps 2048 --repeats 5 --json out.json
    python benchmarks/bench_wavenet.py --render-grid         # also time engine.render on the whole grid

What it measures (not timed tests; on a shared machine read the medians as the figures, the spread as noise):
- aggregate throughput of the engine's decode path (`WaveNetEngine._decode`: the batch split over Python
  threads, one torch thread each) with batch = every request of the cat_flute grid (blend points × zones ×
  velocity layers × channels at 16 kHz), in samples of 16 kHz audio per second and × real time;
- the physical bound: the very same matmuls (same shapes, same calls, same threads, no other work) timed in
  the same run, interleaved with the generation runs; the ratio is the share of that bound achieved;
- the same batch through one generator using torch's intra-op threads instead (the alternative layout);
- batch 1 (one voice, one thread) against NSynth's published ~100 samples/s on a GPU (Engel et al. 2017
  report ~10 minutes per 4-second note), and the speed-up over re-running the full convolution over the
  receptive field for every sample (`naive_generate`, the same sampling rule);
- the decoder's queue memory per voice (every layer's ring of 2·dilation + 1 inputs) and for the grid;
- a big square GEMM for reference (the machine's peak for large matmuls, one and all threads).
The weights are random (throughput does not depend on them); the FLOP count is 2 × multiply-adds of the
tap, skip, residual and head matmuls per sample.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

# dawexport.engines before torch: the package sets the OpenMP wait policy, read once when torch loads
from dawexport.engines.common.torch_utils import cpu_threads  # noqa: E402
from dawexport.engines.wavenet import WaveNetEngine, WaveNetSettings  # noqa: E402
from dawexport.engines.wavenet.generator import FastGenerator, naive_generate  # noqa: E402
from dawexport.engines.wavenet.model import (  # noqa: E402
    CLASSES,
    WaveNetAutoencoder,
    WaveNetConfig,
)
import torch  # noqa: E402

SPEC = ROOT / "instruments" / "cat_flute.yaml"
RATE = 16000
NSYNTH_BATCH1 = 100.0          # samples/s, NSynth's published GPU generator at batch 1


class _Bar:
    def update(self, n):
        pass

    def close(self):
        pass


def cat_flute_grid():
    """(requests, samples per voice) of the cat_flute plan at 16 kHz, stereo split (L, R)."""
    from dawexport.render.plan import make_plan
    from dawexport.spec import load_spec
    spec = load_spec(SPEC)
    requests = make_plan(spec, ("L", "R")).requests()
    return requests, int(round((requests[0].duration_s + requests[0].release_s) * RATE))


def make_model(width: int) -> WaveNetAutoencoder:
    """The engine's default network (guided, with the guide prior) at this width, random weights."""
    torch.manual_seed(0)
    config = WaveNetEngine(WaveNetSettings(width=width), sample_rate=RATE).model_config()
    return WaveNetAutoencoder(config).eval()


def guide_wave(steps: int, batch: int) -> torch.Tensor:
    """(steps, batch) stand-in guide waveforms (tones): the decode's work does not depend on them."""
    t = torch.arange(steps, dtype=torch.float32)[:, None] / RATE
    return 0.3 * torch.sin(2 * torch.pi * (220.0 + 10.0 * torch.arange(batch)) * t)


class ToneGuide:
    """Stands in for the engine's ddsp guide when timing the decode alone."""

    def render(self, requests, progress=None):
        return [guide_wave(int(round((r.duration_s + r.release_s) * RATE)), 1)[:, 0].numpy() for r in requests]


def make_engine(model: WaveNetAutoencoder, threads: int) -> WaveNetEngine:
    cfg = model.config
    engine = WaveNetEngine(WaveNetSettings(width=cfg.width, threads=threads), sample_rate=RATE, device="cpu")
    engine.model = model
    engine.guide = ToneGuide()
    return engine


def conditioning(model: WaveNetAutoencoder, batch: int, frames: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    z = 0.1 * torch.randn(batch, frames, model.config.latent, generator=g)
    return model.conditioning(z, torch.full((batch,), 60.0))


def clocks():
    """(wall, process CPU) seconds: CPU time counts only this process's own work, so it is far less
    disturbed by other processes on a shared machine than wall time is."""
    return np.array([time.perf_counter(), time.process_time()])


def time_engine_decode(engine, model, cond, steps, uniforms) -> np.ndarray:
    guide = guide_wave(steps, cond.shape[0])
    t0 = clocks()
    engine._decode(model, cond, steps, uniforms, torch.device("cpu"), _Bar(), guide)
    return clocks() - t0


def time_matmuls(model: WaveNetAutoencoder, cond: torch.Tensor, parts: list[int], steps: int) -> np.ndarray:
    """Clocks of only the decode's matmuls, for `steps` steps: the very calls `FastGenerator._step` and
    `_set_frame` make (same weights, buffers, queue slots, threads: one Python thread with one torch thread
    per part of the batch, as the engine runs them), and nothing else."""
    hop = model.config.hop
    bounds = np.cumsum([0] + parts)
    with cpu_threads(1):
        gens = [FastGenerator(model.decoder, batch=b) for b in parts]
    conds = [cond[lo:hi].permute(1, 2, 0).contiguous() for lo, hi in zip(bounds[:-1], bounds[1:])]
    feats = [torch.zeros(model.config.guide_features, b) for b in parts]

    def work(gen: FastGenerator, cond_t: torch.Tensor, feat: torch.Tensor) -> None:
        dil, n = gen.dilations, len(gen.dilations)
        for t in range(steps):
            if t % hop == 0:
                gen._set_frame(cond_t[t // hop])
            if gen.w_guide is not None:
                torch.addmm(gen.cond_frame, gen.w_guide, feat, out=gen.cond_now)
            slots = [gen.slots[i][t % (2 * dil[i] + 1)] for i in range(n)]
            for i in range(n):
                d, ring, (w_far, w_near, w_now) = dil[i], gen.slots[i], gen.w_taps[i]
                torch.addmm(gen.cond_layers[i], w_far, ring[(t - 2 * d) % (2 * d + 1)], out=gen.g)
                gen.g.addmm_(w_near, ring[(t - d) % (2 * d + 1)])
                gen.g.addmm_(w_now, slots[i])
                if i == 0:
                    torch.addmm(gen.b_skip, gen.w_skip[0], gen.z, out=gen.skip)
                else:
                    gen.skip.addmm_(gen.w_skip[i], gen.z)
                if i < n - 1:
                    torch.addmm(slots[i], gen.w_res[i], gen.z, out=slots[i + 1])
            torch.addmm(gen.b_out1, gen.w_out1, gen.h1, out=gen.h2)
            torch.addmm(gen.b_out2, gen.h2.t(), gen.w_out2, out=gen.logits)

    with cpu_threads(1):
        threads = [threading.Thread(target=work, args=(g, c, f)) for g, c, f in zip(gens, conds, feats)]
        t0 = clocks()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return clocks() - t0


def time_intra_op(model, cond, steps, uniforms, threads: int) -> np.ndarray:
    with cpu_threads(threads):
        gen = FastGenerator(model.decoder, batch=cond.shape[0])
        guide = guide_wave(steps, cond.shape[0])
        gen.generate(cond, min(64, steps), uniforms[:min(64, steps)], guide=guide[:min(64, steps)])
        t0 = clocks()
        gen.generate(cond, steps, uniforms, guide=guide)
        return clocks() - t0


def gemm_peak(threads: int, size: int = 1024, reps: int = 10) -> float:
    """GFLOP/s of size³ float32 matmuls, one per Python thread (one torch thread each), all together."""
    def work(out: list) -> None:
        a, b, c = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
        torch.mm(a, b, out=c)
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=c)
        out.append(time.perf_counter() - t0)

    results: list[float] = []
    with cpu_threads(1):
        ts = [threading.Thread(target=work, args=(results,)) for _ in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.perf_counter() - t0
    return threads * reps * 2 * size ** 3 / wall / 1e9


def scratch_floats_per_voice(cfg: WaveNetConfig) -> int:
    c, s, n = cfg.width, cfg.skip, len(cfg.dilations)
    # gate, z, skip and head, logits + probabilities + cdf + prior, every layer's conditioning (frame and now)
    return 2 * c + c + 3 * s + 4 * CLASSES + 1 + 2 * n * 2 * c


def bench_width(width: int, batch: int, grid_samples: int, steps: int, repeats: int, threads: int,
                batch1_steps: int, naive_steps: int, naive_grid_steps: int, log) -> dict:
    model = make_model(width)
    cfg = model.config
    engine = make_engine(model, threads)
    frames = -(-steps // cfg.hop)
    cond = conditioning(model, batch, frames)
    uniforms = torch.rand(steps, batch, generator=torch.Generator().manual_seed(2))
    k = engine._decode_threads(torch.device("cpu"), batch)
    parts = [(j + 1) * batch // k - j * batch // k for j in range(k)]
    flops = cfg.flops_per_sample()
    warm = min(256, steps)
    time_engine_decode(engine, model, cond, warm, uniforms[:warm])            # warm-up
    gen_c, mm_c, intra_c = [], [], []
    load = [os.getloadavg()[0]]
    for r in range(repeats):
        gen_c.append(time_engine_decode(engine, model, cond, steps, uniforms))
        mm_c.append(time_matmuls(model, cond, parts, steps))
        intra_c.append(time_intra_op(model, cond, steps, uniforms, threads))
        load.append(os.getloadavg()[0])
        log(f"  width {width} repeat {r + 1}: decode {batch * steps / gen_c[-1][0]:,.0f} samples/s, "
            f"matmuls only {batch * steps * flops / mm_c[-1][0] / 1e9:.1f} GFLOP/s, "
            f"intra-op {batch * steps / intra_c[-1][0]:,.0f} samples/s; CPU-time share of the bound "
            f"{mm_c[-1][1] / gen_c[-1][1]:.2f}; load {load[-1]:.1f}")
    gen_t, mm_t, intra_t = ([c[0] for c in cs] for cs in (gen_c, mm_c, intra_c))
    ratios = [m / g for g, m in zip(gen_t, mm_t)]
    cpu_ratios = [m[1] / g[1] for g, m in zip(gen_c, mm_c)]
    rate = batch * steps / statistics.median(gen_t)

    # batch 1, one thread: the fast generator and the full convolution
    with cpu_threads(1):
        c1 = conditioning(model, 1, -(-batch1_steps // cfg.hop))
        u1 = torch.rand(batch1_steps, 1, generator=torch.Generator().manual_seed(3))
        gen1 = FastGenerator(model.decoder, batch=1)
        g1 = guide_wave(batch1_steps, 1)
        gen1.generate(c1, min(256, batch1_steps), u1[:min(256, batch1_steps)], guide=g1[:min(256, batch1_steps)])
        b1 = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            gen1.generate(c1, batch1_steps, u1, guide=g1)
            b1.append(batch1_steps / (time.perf_counter() - t0))
        # the naive sampler at its steady state: a full receptive field of history behind every sample
        cn = conditioning(model, 1, -(-(cfg.receptive_field + naive_steps + 1) // cfg.hop) + 1)
        un = torch.rand(cfg.receptive_field + naive_steps, 1)
        t0 = time.perf_counter()
        naive_generate(model.decoder, cn, naive_steps, un, guide=guide_wave(naive_steps, 1))
        early = time.perf_counter() - t0
        # time steps that see a full window: run the window directly (same work as one naive step)
        window = torch.full((1, cfg.receptive_field), 128, dtype=torch.long)
        gw = guide_wave(cfg.receptive_field + 1, 1).t()
        with torch.no_grad():
            model.decoder(window, cn, gw)
            t0 = time.perf_counter()
            for _ in range(naive_steps):
                model.decoder(window, cn, gw)
            naive_rate = naive_steps / (time.perf_counter() - t0)
    naive_grid = None
    if naive_grid_steps:
        # the full convolution at the grid's batch: one forward over a receptive field per sample
        with torch.no_grad():
            window = torch.full((batch, cfg.receptive_field), 128, dtype=torch.long)
            cg = conditioning(model, batch, -(-cfg.receptive_field // cfg.hop))
            gg = guide_wave(cfg.receptive_field + 1, batch).t()
            t0 = time.perf_counter()
            for _ in range(naive_grid_steps):
                model.decoder(window, cg, gg)
            naive_grid = batch * naive_grid_steps / (time.perf_counter() - t0)
            del window
    batch1 = statistics.median(b1)
    state = cfg.queue_floats_per_voice() * 4
    scratch = scratch_floats_per_voice(cfg) * 4
    return {
        "width": width, "skip": cfg.skip, "layers": len(cfg.dilations), "params": sum(
            p.numel() for p in model.decoder.parameters()), "flops_per_sample": flops,
        "receptive_field": cfg.receptive_field, "batch": batch, "threads": k, "steps": steps,
        "samples_per_s": rate, "realtime": rate / RATE, "gflops": rate * flops / 1e9,
        "samples_per_s_best": batch * steps / min(gen_t),
        "matmul_gflops": statistics.median(batch * steps * flops / t / 1e9 for t in mm_t),
        "bound_ratio": statistics.median(ratios), "bound_ratio_range": [min(ratios), max(ratios)],
        "cpu_bound_ratio": statistics.median(cpu_ratios), "cpu_bound_ratio_range": [min(cpu_ratios),
                                                                                    max(cpu_ratios)],
        "decode_cpu_s_per_wall_s": statistics.median(c[1] / c[0] for c in gen_c),
        "load_average": load,
        "intra_op_samples_per_s": batch * steps / statistics.median(intra_t),
        "batch1_samples_per_s": batch1, "batch1_vs_nsynth": batch1 / NSYNTH_BATCH1,
        "naive_batch1_samples_per_s": naive_rate, "naive_first_steps_s": early,
        "speedup_vs_naive": batch1 / naive_rate, "naive_grid_samples_per_s": naive_grid,
        "speedup_vs_naive_grid": rate / naive_grid if naive_grid else None,
        "queue_bytes_per_voice": state, "scratch_bytes_per_voice": scratch,
        "grid_state_mb": batch * (state + scratch) / 2 ** 20,
        "grid_decode_minutes": batch * grid_samples / rate / 60.0,
    }


def render_grid(width: int, threads: int, log) -> dict:
    """engine.render of the whole cat_flute grid (random weights and a tone for the guide: the decode's work is
    the same as a trained model's; the ddsp guide's own render, seconds, is not included)."""
    from dawexport.pipeline import build_corpus
    from dawexport.render.plan import make_plan
    from dawexport.spec import load_spec
    spec = load_spec(SPEC)
    corpus = build_corpus(spec, RATE)
    requests = make_plan(spec, corpus.channels).requests()
    model = make_model(width)
    engine = make_engine(model, threads)
    from dawexport.engines.wavenet.data import source_clips
    engine.clips = source_clips(corpus, 60)
    engine._analyse()
    t0 = time.perf_counter()
    takes = engine.render(requests)
    seconds = time.perf_counter() - t0
    samples = sum(len(t) for t in takes)
    log(f"  render-grid width {width}: {len(requests)} voices, {samples:,} samples in {seconds:.1f} s")
    return {"width": width, "voices": len(requests), "samples": samples, "seconds": seconds,
            "realtime": samples / RATE / seconds}


# --------------------------------------------------------------------------- does it make music? (issue 16)

WAVENET_SPEC = ROOT / "instruments" / "cat_flute_wavenet.yaml"


def spec_copy(path: Path, work: Path, label: str, settings: dict):
    """The spec at `path` with absolute sources, output under `work`, sfz only and `settings` applied."""
    import yaml
    from dawexport.spec import parse_spec
    data = yaml.safe_load(path.read_text())
    data["sources"] = {k: str((path.parent / v).resolve()) for k, v in data["sources"].items()}
    data["engine"]["settings"] = {**data["engine"].get("settings", {}), **settings}
    data["engine"]["device"] = "cpu"
    data["output"] = {**data.get("output", {}), "formats": ["sfz"], "dir": str(work / label)}
    data.pop("wavetables", None)
    return parse_spec(data, work / f"{label}.yaml")


def steps_per_s(log: Path) -> tuple[int, float]:
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    last = max((r for r in rows if "loss" in r), key=lambda r: r["step"])
    return last["step"], last["step"] / max(last["seconds"], 1e-9)


def quality(work: Path, wavenet_settings: dict, ddsp_settings: dict, log) -> dict:
    """Build cat_flute with `engine: wavenet` (instruments/cat_flute_wavenet.yaml) and with ddsp (cat_flute.yaml),
    play both in sfizz and measure the goals of issue 16."""
    sys.path.insert(0, str(ROOT / "tests"))
    import soundfile as sf
    from support.players import render_sfizz, rms_db, sfizz_synth

    from dawexport.audio.analysis import estimate_pitch
    from dawexport.audio.fidelity import timbre_distance
    from dawexport.audio.resample import resample
    from dawexport.pipeline import build, cache_root
    out = {"load_before": os.getloadavg()[0]}
    built = {}
    for label, path, settings in (("wavenet", WAVENET_SPEC, wavenet_settings), ("ddsp", SPEC, ddsp_settings)):
        spec = spec_copy(path, work, label, settings)
        t0 = time.perf_counter()
        result = build(spec, quiet=True, force=True)
        out[f"{label}_build_minutes"] = (time.perf_counter() - t0) / 60
        built[label] = (spec, result.folder / f"{spec.name}.sfz")
        folders = sorted((cache_root(spec) / "models").glob(f"{label}-*"), key=lambda q: q.stat().st_mtime)
        if folders and (folders[-1] / "training_log.jsonl").exists():
            out[f"{label}_steps"], out[f"{label}_steps_per_s"] = steps_per_s(folders[-1] / "training_log.jsonl")
        if folders and (folders[-1] / "ddsp.json").exists() and label == "wavenet":
            # the guide's training log stays in its training folder (deleted once the model is saved); its
            # TrainResult (steps, seconds) is saved with it
            trained = json.loads((folders[-1] / "ddsp.json").read_text())["training"]
            out["guide_steps"] = trained["step"]
            out["guide_steps_per_s"] = trained["step"] / max(trained["seconds"], 1e-9)
        log(f"  built {label} in {out[f'{label}_build_minutes']:.1f} min")
    spec, sfz = built["wavenet"]
    synth = sfizz_synth(sfz)
    keys = list(range(spec.keys.low, spec.keys.high + 1, 3))
    medians = []
    for cc in (0, 64, 127):
        cents = [100 * (estimate_pitch(render_sfizz(synth, k, 127, 1.5, 1.5, cc={1: cc}).mean(axis=0)[4410:],
                                       44100).midi - k) for k in keys]
        cents = [abs(c) for c in cents if np.isfinite(c)]
        medians.append(float(np.median(cents)) if cents else float("nan"))
    out["cents_worst_median"], out["cents_best_median"] = max(medians), min(medians)
    levels = [rms_db(render_sfizz(synth, 67, v, 1.0, 1.0)) for v in (40, 80, 127)]
    out["layers_ordered"] = bool(levels[0] < levels[1] < levels[2])
    held = render_sfizz(synth, 67, 127, 6.0, 6.0).mean(axis=0)
    out["loop_last_vs_first_db"] = rms_db(held[5 * 44100:]) - rms_db(held[44100:2 * 44100])
    out["loops_sustain"] = bool(out["loop_last_vs_first_db"] > -6.0)
    for name, cc in (("cat", 0), ("flute", 127)):
        x, sr = sf.read(str((ROOT / "instruments" / "cat_flute.yaml").parent / ("sounds/cat_meow.flac" if name == "cat"
                                                                                 else "sounds/flute.wav")),
                        dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        key = int(round(estimate_pitch(x, sr).midi))
        # the measure covers 40 Hz-16 kHz, and a 16 kHz engine has nothing above 8 kHz: the source
        # itself through 16 kHz is this far from the source (a floor for any 16 kHz engine) ...
        x16 = resample(x, sr, RATE)
        out[f"timbre_{name}_source_16k"] = timbre_distance(x, sr, resample(x16, RATE, 44100), 44100)
        for label in ("wavenet", "ddsp"):
            note = render_sfizz(sfizz_synth(built[label][1]), key, 127, len(x) / sr, len(x) / sr + 0.4,
                                cc={1: cc}).mean(axis=0)
            out[f"timbre_{name}_{label}"] = timbre_distance(x, sr, note, 44100)
            # ... so the same measure is also taken in the band both can play: source and note at 16 kHz
            out[f"timbre_{name}_{label}_16k"] = timbre_distance(x16, RATE, resample(note, 44100, RATE), RATE)
        out[f"timbre_{name}_ratio"] = out[f"timbre_{name}_wavenet"] / out[f"timbre_{name}_ddsp"]
        out[f"timbre_{name}_ratio_16k"] = out[f"timbre_{name}_wavenet_16k"] / out[f"timbre_{name}_ddsp_16k"]
    out["load_after"] = os.getloadavg()[0]
    return out


def quality_table(q: dict, speed: dict | None) -> str:
    ok = lambda c: "✓" if c else "✗"        # noqa: E731
    rows = ["| measure | wavenet (guided) | goal | met |", "|---|---|---|---|",
            f"| cents, worst blend point's median (cc1 0/64/127) | {q['cents_worst_median']:.1f} | ≤ 25 | "
            f"{ok(q['cents_worst_median'] <= 25)} |",
            f"| cents, best blend point's median | {q['cents_best_median']:.1f} | ≤ 5 | {ok(q['cents_best_median'] <= 5)} |",
            f"| velocity layers ordered | {q['layers_ordered']} | yes | {ok(q['layers_ordered'])} |",
            f"| loop sustains (6 s held: last s vs 2nd s) | {q['loop_last_vs_first_db']:+.1f} dB | > -6 dB | "
            f"{ok(q['loops_sustain'])} |"]
    for name in ("cat", "flute"):
        r = q[f"timbre_{name}_ratio"]
        rows.append(f"| timbre distance to {name}, 40 Hz-16 kHz: wavenet / ddsp (44.1 kHz) | "
                    f"{q[f'timbre_{name}_wavenet']:.2f} / {q[f'timbre_{name}_ddsp']:.2f} dB = {r:.2f}× | ≤ 1.5× | "
                    f"{ok(r <= 1.5)} |")
        rows.append(f"| … the {name} itself through 16 kHz (the floor of any 16 kHz engine on that measure) | "
                    f"{q[f'timbre_{name}_source_16k']:.2f} dB = "
                    f"{q[f'timbre_{name}_source_16k'] / q[f'timbre_{name}_ddsp']:.2f}× | | |")
        r16 = q[f"timbre_{name}_ratio_16k"]
        rows.append(f"| timbre distance to {name}, band both play (all at 16 kHz): wavenet / ddsp | "
                    f"{q[f'timbre_{name}_wavenet_16k']:.2f} / {q[f'timbre_{name}_ddsp_16k']:.2f} dB = {r16:.2f}× | "
                    f"(≤ 1.5×) | {ok(r16 <= 1.5)} |")
    rows.append(f"| training: ddsp guide, steps (steps/s) | {q.get('guide_steps')} ({q.get('guide_steps_per_s', 0):.2f}) | | |")
    rows.append(f"| training: WaveNet, steps (steps/s) | {q.get('wavenet_steps')} ({q.get('wavenet_steps_per_s', 0):.2f}) | | |")
    rows.append(f"| build (train + render), wavenet / ddsp reference | {q['wavenet_build_minutes']:.1f} / "
                f"{q['ddsp_build_minutes']:.1f} min | training ≤ 15 min on 2 quiet cores | |")
    if speed:
        rows.append(f"| generation, share of the same-run matmul bound (width {speed['width']}) | "
                    f"{100 * speed['bound_ratio']:.0f} % | ≥ 70 % | {ok(speed['bound_ratio'] >= 0.7)} |")
        rows.append(f"| whole cat_flute grid decode (width {speed['width']}) | {speed['grid_decode_minutes']:.1f} min "
                    f"| ≤ 3 min | {ok(speed['grid_decode_minutes'] <= 3)} |")
        rows.append(f"| samples/s at batch 1 (one thread) vs NSynth's ~100 | {speed['batch1_samples_per_s']:,.0f} "
                    f"({speed['batch1_vs_nsynth']:.0f}×) | | |")
    rows.append(f"| load average, before / after | {q['load_before']:.1f} / {q['load_after']:.1f} | | |")
    return "\n".join(rows)


def tables(results: list[dict], peaks: dict, grid: list[dict]) -> str:
    lines = ["| decoder width | FLOP/sample | batch (threads) | aggregate samples/s: median (best) | × real time | "
             "GFLOP/s | same matmuls alone, GFLOP/s | share of that bound, wall time (min-max) | "
             "share, CPU time (min-max) | intra-op layout, samples/s | full grid decode | load average |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lo, hi = r["bound_ratio_range"]
        clo, chi = r["cpu_bound_ratio_range"]
        loads = r["load_average"]
        lines.append(f"| {r['width']} | {r['flops_per_sample'] / 1e6:.2f} M | {r['batch']} ({r['threads']}) | "
                     f"{r['samples_per_s']:,.0f} ({r['samples_per_s_best']:,.0f}) | {r['realtime']:.2f}× | "
                     f"{r['gflops']:.1f} | {r['matmul_gflops']:.1f} | "
                     f"{100 * r['bound_ratio']:.0f} % ({100 * lo:.0f}-{100 * hi:.0f}) | "
                     f"{100 * r['cpu_bound_ratio']:.0f} % ({100 * clo:.0f}-{100 * chi:.0f}) | "
                     f"{r['intra_op_samples_per_s']:,.0f} | {r['grid_decode_minutes']:.1f} min | "
                     f"{min(loads):.1f}-{max(loads):.1f} |")
    lines += ["", "| decoder width | batch-1 samples/s | vs NSynth's ~100/s | full convolution per sample, "
              "batch 1 / grid batch, samples/s | speed-up from the queues, batch 1 / grid batch | "
              "queue memory per voice | grid state |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        ng = f"{r['naive_grid_samples_per_s']:.1f}" if r["naive_grid_samples_per_s"] else "-"
        sg = f"{r['speedup_vs_naive_grid']:,.0f}×" if r["speedup_vs_naive_grid"] else "-"
        lines.append(f"| {r['width']} | {r['batch1_samples_per_s']:,.0f} | {r['batch1_vs_nsynth']:.0f}× | "
                     f"{r['naive_batch1_samples_per_s']:.1f} / {ng} | {r['speedup_vs_naive']:,.0f}× / {sg} | "
                     f"{r['queue_bytes_per_voice'] / 2 ** 20:.2f} MiB (+{r['scratch_bytes_per_voice'] / 1024:.1f} KiB "
                     f"scratch) | {r['grid_state_mb']:.0f} MiB |")
    lines += ["", f"Big-GEMM reference (1024³ float32): {peaks['one']:.0f} GFLOP/s on one thread, "
              f"{peaks['all']:.0f} GFLOP/s on {peaks['threads']} threads together."]
    for g in grid:
        lines.append(f"engine.render of the full cat_flute grid, width {g['width']}: {g['voices']} voices, "
                     f"{g['samples'] / 1e6:.1f} M samples in {g['seconds'] / 60:.1f} min "
                     f"({g['realtime']:.2f}× real time aggregate).")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--steps", type=int, default=1024, help="decode steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: torch.get_num_threads()")
    parser.add_argument("--batch1-steps", type=int, default=2048)
    parser.add_argument("--naive-steps", type=int, default=5, help="full-convolution steps timed at batch 1")
    parser.add_argument("--naive-grid-steps", type=int, default=1,
                        help="full-convolution steps timed at the grid's batch (0: skip)")
    parser.add_argument("--render-grid", action="store_true", help="also time engine.render on the grid "
                                                                    "(width 64: minutes)")
    parser.add_argument("--quality", action="store_true", help="also build cat_flute with the wavenet and the ddsp "
                        "engine and measure the instrument (issue 16's goals; the engines' default budgets: long)")
    parser.add_argument("--max-steps", type=int, default=None, help="with --quality: WaveNet training steps")
    parser.add_argument("--guide-steps", type=int, default=None, help="with --quality: ddsp guide training steps")
    parser.add_argument("--ddsp-steps", type=int, default=None, help="with --quality: the ddsp reference's steps")
    parser.add_argument("--work", type=Path, default=None, help="with --quality: build folder")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    threads = args.threads or torch.get_num_threads()
    requests, grid_samples = cat_flute_grid()
    log(f"cat_flute grid: {len(requests)} voices × {grid_samples} samples at {RATE} Hz; {threads} thread(s); "
        f"torch {torch.__version__}")
    peaks = {"one": gemm_peak(1), "all": gemm_peak(threads), "threads": threads}
    results = [bench_width(w, len(requests), grid_samples, args.steps, args.repeats, threads,
                           args.batch1_steps, args.naive_steps, args.naive_grid_steps, log)
               for w in args.widths]
    # the big-GEMM reference again after the runs (the machine's load changes): keep the better figure
    peaks = {"one": max(peaks["one"], gemm_peak(1)), "all": max(peaks["all"], gemm_peak(threads)),
             "threads": threads}
    grid = [render_grid(64, threads, log)] if args.render_grid else []
    q = None
    if args.quality:
        import tempfile
        work = args.work or Path(tempfile.mkdtemp(prefix="bench_wavenet_"))
        wn = {k: v for k, v in (("max_steps", args.max_steps), ("guide_steps", args.guide_steps)) if v is not None}
        dd = {"max_steps": args.ddsp_steps} if args.ddsp_steps is not None else {}
        q = quality(work, wn, dd, log)
        print(f"wavenet settings: {wn or 'defaults'}; ddsp reference: {dd or 'defaults'}\n")
        print(quality_table(q, next((r for r in results if r["width"] == 64), results[0] if results else None)))
        print()
    print(tables(results, peaks, grid))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "gemm": peaks, "render_grid": grid, "quality": q},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
