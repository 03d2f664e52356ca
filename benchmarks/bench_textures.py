"""Texture engines and the curator: generation speed, what the curator keeps, and a cold textures build.

    python benchmarks/bench_textures.py                        # speed only (random weights): a few minutes
    python benchmarks/bench_textures.py --train --minutes 3    # + train both engines on each of 3 sounds
    python benchmarks/bench_textures.py --build                # + a cold `dawexport build instruments/textures.yaml`

What it measures (prints markdown tables; not timed tests: on a shared machine compare ratios in one run):
- SampleRNN batched generation (`generate_on_cores`, the engine's path: streams split between cores, one
  thread each, each thread's loop one TorchScript call) of the default model at batch B: samples per second,
  × real time at 44.1 kHz (aggregate), and the share of this machine's matmul bound: the very same matmuls
  (per sample the MLP's two, plus the frame tiers' GRU, input and upsampling matmuls every frame) timed
  alone in the same run, split between threads the same way and looped by TorchScript the same way (so
  neither holds Python's lock), interleaved with the generation runs (medians; the share by wall clock, and
  by CPU time, which a busy machine disturbs less);
- SampleRNN in a build (`render_textures`, the engine's own path, as a build calls it): instruments/
  textures.yaml's 48 candidates × 2 channels of 4.3 s at the default settings (re-primed every 0.5 s:
  every segment of every texture is a stream, all drawn at once in calls of at most 256 rows a core), on
  `--render-cores`; the bound is the matmuls of the very calls it made (rows, prime warm-up, length),
  split between threads the same way, interleaved with the renders (medians); Python's share of the render
  (primes, uniforms, decoding) counts against the generator;
- LSTM-VAE generation of 64 textures of 4 s (`LSTMVAEEngine._generate`: the LSTM steps, the decoding to
  audio, the FFT phase rebuild) in × real time, for both domains;
- with --train: each engine trained within the budget on each of three short sounds of different kinds
  (instruments/sounds: a drum take, a speech-like babble, a field recording), then 64 candidates of 4 s:
  the share the curator passes, the labels, and for the kept ones the time-averaged log-mel distance to the
  source's spectrum (mean |dB|, level removed) against that of white noise at the same level; each as
  generated and through the match EQ fitted at the end of training (what a build renders; the training
  time includes fitting it);
- with --build: wall time and peak memory of a cold build of instruments/textures.yaml.
Weights for the speed rows are random (speed does not depend on them).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dawexport.engines  # noqa: E402,F401  (sets the OpenMP wait policy before torch loads)
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from dawexport.audio.analysis import PitchEstimate  # noqa: E402
from dawexport.audio.features import mel_profile_db, profile_distance_db, sources_flatness  # noqa: E402
from dawexport.audio.resample import resample  # noqa: E402
from dawexport.engines.base import Clip, Corpus, TextureRequest  # noqa: E402
from dawexport.engines.lstm_vae import LSTMVAEEngine, LSTMVAESettings  # noqa: E402
from dawexport.engines.samplernn import SampleRNNEngine, SampleRNNSettings  # noqa: E402
from dawexport.engines.common.torch_utils import cpu_threads  # noqa: E402
from dawexport.engines.samplernn.model import SampleRNN, SampleRNNConfig, generate_on_cores  # noqa: E402
from dawexport.progress import Progress, SILENT  # noqa: E402
from dawexport.render.curator import curate  # noqa: E402

SOUNDS = {"drum": "drum_hits.flac", "babble": "babble.flac", "field": "field.flac"}
CD_RATE = 44100


# ------------------------------------------------------------------------------------- SampleRNN speed

def _bound_loop(steps: int, warm: int, frames: List[int], tiers: List[List[torch.Tensor]],
                mlp: List[torch.Tensor]) -> None:
    """The generator's matmuls alone, in its order, each into a buffer (a result left unused would be
    dropped by TorchScript); TorchScript like the generator's loop: no Python lock. The first `warm` steps
    step the frame tiers only, as the generator does through a long prime."""
    h, out1, out2, w_hidden, b_hidden, w_out, b_out = mlp[0], mlp[1], mlp[2], mlp[3], mlp[4], mlp[5], mlp[6]
    for t in range(warm + steps):
        for k in range(len(frames)):
            if t % frames[k] == 0:
                w = tiers[k]    # frame, state, w_inp, b_inp, w_ih, w_hh, w_up, b_up, x, gi, gh, up
                torch.addmm(w[3], w[0], w[2], out=w[8])
                torch.mm(w[8], w[4], out=w[9])
                torch.mm(w[1], w[5], out=w[10])
                torch.addmm(w[7], w[1], w[6], out=w[11])
        if t < warm:
            continue
        torch.addmm(b_hidden, h, w_hidden, out=out1)
        torch.addmm(b_out, out1, w_out, out=out2)


_BOUND_LOOP: list = []


def samplernn_bound(model: SampleRNN, batch: int, steps: int, cores: int, warm: int = 0) -> float:
    """Seconds for the generator's matmuls alone over `steps` samples after `warm` frame-tier-only steps
    (same shapes, same order), the streams split between `cores` threads with one torch thread each, as
    `generate_on_cores` splits them, each thread's loop run by TorchScript's plain interpreter as the
    generator's is."""
    cfg = model.config
    groups = max(1, min(cores, batch))
    bounds = [round(i * batch / groups) for i in range(groups + 1)]
    if not _BOUND_LOOP:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            _BOUND_LOOP.append(torch.jit.script(_bound_loop))
    loop = _BOUND_LOOP[0]

    def run(rows: int) -> None:
        torch.set_num_threads(1)
        with torch.no_grad():
            mlp = [torch.randn(rows, cfg.mlp_dim), torch.empty(rows, cfg.mlp_dim), torch.empty(rows, 256),
                   model.hidden.weight.t().contiguous(), model.hidden.bias.clone(),
                   model.out.weight.t().contiguous(), model.out.bias.clone()]
            tiers = [[torch.randn(rows, tier.frame), torch.randn(rows, cfg.dim), tier.inp.weight.t().contiguous(),
                      tier.inp.bias.clone(), tier.gru.weight_ih_l0.t().contiguous(),
                      tier.gru.weight_hh_l0.t().contiguous(), tier.up.weight.t().contiguous(),
                      tier.up.bias.clone(), torch.empty(rows, cfg.dim), torch.empty(rows, 3 * cfg.dim),
                      torch.empty(rows, 3 * cfg.dim), torch.empty(rows, tier.up.out_features)]
                     for tier in model.tiers]
            with torch.jit.optimized_execution(False):
                loop(steps, warm, [tier.frame for tier in model.tiers], tiers, mlp)

    with cpu_threads(1), ThreadPoolExecutor(groups) as pool:
        t0 = time.perf_counter()
        list(pool.map(run, [hi - lo for lo, hi in zip(bounds, bounds[1:])]))
        return time.perf_counter() - t0


def samplernn_speed(batch: int, steps: int, repeats: int, cores: int, shared: bool = False) -> dict:
    settings = SampleRNNSettings()
    torch.manual_seed(0)
    model = SampleRNN(SampleRNNConfig(frame_sizes=settings.frame_sizes, dim=settings.dim,
                                      mlp_dim=settings.mlp_dim, embed=settings.embed)).eval()
    prime = torch.full((batch, model.config.top), 128)
    uniforms = torch.rand(steps, batch)
    generate_on_cores(model, prime, 64, uniforms[:64], 1.0, cores)    # warm: compiling, first-call costs
    samplernn_bound(model, batch, 64, cores)
    gen, bound, gen_cpu, bound_cpu = [], [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        if shared:                       # the previous way: one group, `cores` torch threads sharing each matmul
            with cpu_threads(cores):
                model.generate(prime, steps, uniforms, 1.0)
        else:
            generate_on_cores(model, prime, steps, uniforms, 1.0, cores)
        gen.append(time.perf_counter() - t0)
        gen_cpu.append(time.process_time() - c0)
        c0 = time.process_time()
        bound.append(samplernn_bound(model, batch, steps, cores))
        bound_cpu.append(time.process_time() - c0)
    g, b = statistics.median(gen), statistics.median(bound)
    rate = batch * steps / g
    return {"batch": batch, "cores": cores, "shared": shared, "samples_per_s": rate, "x_real_time_44k": rate / CD_RATE,
            "share_of_bound": b / g, "bound_samples_per_s": batch * steps / b,
            "share_of_bound_cpu": statistics.median(bound_cpu) / statistics.median(gen_cpu)}


def samplernn_render_speed(candidates: int, channels: int, seconds: float, repeats: int, cores: int) -> dict:
    """A build's generation, the engine's own path: `render_textures` of `candidates` × `channels` textures
    of `seconds` (the default settings: re-primed every 0.5 s from the drum take's onsets, 0.1 s primes,
    `render_batch` textures at a time, every segment of them one batch) on a default model with random
    weights, no match EQ; against the bound of the very calls it made to the generator (each call's rows,
    prime and length: its matmuls alone, split between the threads the same way), each call's bound run
    right after the call (A B A B … a few seconds apart, so a burst of load hits both alike) and its time
    taken out of the render's."""
    from dawexport.engines.samplernn import engine as samplernn_engine
    from dawexport.engines.samplernn.data import quantise
    settings = SampleRNNSettings(threads=cores)
    engine = SampleRNNEngine(settings, sample_rate=SampleRNNEngine.capabilities.default_rate, seed=0, device="cpu")
    torch.manual_seed(0)
    engine.model = SampleRNN(engine.model_config()).eval()
    drum = corpus_of("drum", engine.sample_rate)
    engine.prime_pool = np.concatenate(quantise([c.audio for c in drum.clips]))
    requests = [TextureRequest(ch, seconds, i) for i in range(candidates) for ch in ("L", "R")[:channels]]
    calls, real = [], samplernn_engine.generate_on_cores
    bound = {"wall": 0.0, "cpu": 0.0, "aside": 0.0, "on": False}

    def recording(model, prime, n, uniforms, temperature=1.0, cores=1):
        out = real(model, prime, n, uniforms, temperature, cores)
        rows, warm = prime.shape[0], prime.shape[1] - model.config.top
        calls.append((rows, warm, n))
        if bound["on"]:
            t0, c0 = time.perf_counter(), time.process_time()
            bound["wall"] += samplernn_bound(model, rows, n, cores, warm)
            bound["cpu"] += time.process_time() - c0
            bound["aside"] += time.perf_counter() - t0
        return out

    samplernn_engine.generate_on_cores = recording
    try:
        engine.render_textures(requests[:2 * cores])                   # warm: compiling, first-call costs
        samplernn_bound(engine.model, 2 * cores, 64, cores, 16)
        gen, bounds, gen_cpu, bounds_cpu = [], [], [], []
        for _ in range(repeats):
            calls.clear()
            bound.update(wall=0.0, cpu=0.0, aside=0.0, on=True)
            t0, c0 = time.perf_counter(), time.process_time()
            engine.render_textures(requests)
            gen.append(time.perf_counter() - t0 - bound["aside"])
            gen_cpu.append(time.process_time() - c0 - bound["cpu"])
            bounds.append(bound["wall"])
            bounds_cpu.append(bound["cpu"])
    finally:
        samplernn_engine.generate_on_cores = real
    samples = sum(round(r.duration_s * engine.sample_rate) for r in requests)
    g, b = statistics.median(gen), statistics.median(bounds)
    return {"cores": cores, "textures": len(requests), "seconds": seconds, "calls": list(calls),
            "rows_per_core": sorted({-(-rows // cores) for rows, _, _ in calls}, reverse=True),
            "samples_per_s": samples / g, "x_real_time_44k": samples / g / CD_RATE,
            "x_real_time": samples / g / engine.sample_rate, "wall_s": g,
            "share_of_bound": b / g, "share_of_bound_cpu": statistics.median(bounds_cpu) / statistics.median(gen_cpu),
            "shares": [bb / gg for bb, gg in zip(bounds, gen)]}


def lstm_vae_speed(domain: str, textures: int, seconds: float) -> dict:
    settings = LSTMVAESettings(domain=domain)
    engine = LSTMVAEEngine(settings, sample_rate=22050, seed=0, device="cpu")
    from dawexport.engines.lstm_vae.model import LSTMVAE, LSTMVAEConfig
    codec = engine.codec
    torch.manual_seed(0)
    engine.model = LSTMVAE(LSTMVAEConfig(codec.size, settings.lstm_size, settings.lstm_layers,
                                         settings.latent_size)).eval()
    rng = np.random.default_rng(0)
    engine.prime_pool = rng.standard_normal((512, codec.size)).astype(np.float32)
    engine.mean = np.full(codec.size, -4.0 if domain == "fft" else 0.0, np.float32)
    engine.std = np.full(codec.size, 1.0 if domain == "fft" else 0.05, np.float32)
    engine.spread = np.full(codec.size, 0.5, np.float32)
    n = int(seconds * engine.sample_rate)
    t0, c0 = time.perf_counter(), time.process_time()
    engine._generate(engine.model, [("bench", k) for k in range(textures)], n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"domain": domain, "textures": textures, "seconds": wall, "cpu_seconds": cpu,
            "x_real_time": textures * seconds / wall, "x_real_time_cpu": textures * seconds / cpu}


# ------------------------------------------------------------------------------------- training + curator

def corpus_of(name: str, rate: int) -> Corpus:
    audio, sr = sf.read(ROOT / "instruments" / "sounds" / SOUNDS[name], always_2d=True, dtype="float32")
    audio = resample(audio.T, sr, rate)
    none = PitchEstimate(float("nan"), float("nan"), 0.0, 0.0)
    channels = ("L", "R") if audio.shape[0] == 2 else ("mono",)
    return Corpus(rate, channels, tuple(Clip(name, ch, 0, audio[i], none) for i, ch in enumerate(channels)))


def train_and_curate(engine_name: str, sound: str, minutes: float | None, candidates: int, count: int,
                     seconds: float, quiet: bool) -> dict:
    cls = {"samplernn": SampleRNNEngine, "lstm_vae": LSTMVAEEngine}[engine_name]
    overrides = {"preview_every": 0}
    if minutes is not None:
        overrides["max_minutes"] = minutes
    settings = cls.Settings(**overrides)
    rate = cls.capabilities.default_rate
    engine = cls(settings, sample_rate=rate, seed=0, device="auto")
    corpus = corpus_of(sound, rate)
    progress = SILENT if quiet else Progress()
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        engine.fit(corpus, Path(work), progress)
        train_s = time.perf_counter() - t0
    # the candidates as generated, then through the match EQ fitted at the end of training (exactly what
    # render_textures applies: one generation gives both rows)
    curve, engine.match_eq_db = engine.match_eq_db, None
    t0 = time.perf_counter()
    raw = engine.render_textures([TextureRequest(corpus.channels[0], seconds, k) for k in range(candidates)],
                                 progress)
    render_s = time.perf_counter() - t0
    engine.match_eq_db = curve
    source = [c.audio for c in corpus.clips]
    reference = mel_profile_db(source, rate)
    out = []
    for match_eq, textures in ((False, raw), (True, [engine._equalised(x) for x in raw])):
        if match_eq and curve is None:
            continue
        curation = curate(textures, rate, count, reference, sources_flatness=sources_flatness(source, rate))
        rng = np.random.default_rng(0)
        kept = [c for c in curation.candidates if c.rejected is None]
        distances, noise = [], []
        for c in kept:
            x = textures[c.index]
            level = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
            white = rng.standard_normal(len(x)) * level
            distances.append(c.features.source_distance)
            noise.append(profile_distance_db(mel_profile_db(white, rate), reference))
        result = engine.train_result
        out.append({"engine": engine_name, "sound": sound, "match_eq": match_eq, "train_s": train_s,
                    "steps": result.step if result else None, "stopped_by": result.stopped_by if result else None,
                    "render_s": render_s, "keep_share": curation.keep_share, "labels": curation.counts(),
                    "rejected": {r: sum(c.rejected == r for c in curation.candidates)
                                 for r in ("silence", "noise", "far", "stuck")},
                    "kept_distance_db": float(np.mean(distances)) if distances else None,
                    "noise_distance_db": float(np.mean(noise)) if noise else None,
                    "load": os.getloadavg()[0]})
    return out


# ------------------------------------------------------------------------------------- cold build

def cold_build(workdir: Path) -> tuple[float, float]:
    data = yaml.safe_load((ROOT / "instruments" / "textures.yaml").read_text())
    data["output"] = {**data["output"], "dir": str(workdir / "build" / "textures")}
    data["sources"] = {k: str((ROOT / "instruments" / v).resolve()) for k, v in data["sources"].items()}
    spec = workdir / "textures.yaml"
    spec.write_text(yaml.safe_dump(data))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dawexport", "build", str(spec), "-q"], check=True, cwd=workdir,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--steps", type=int, default=1024, help="samples generated per SampleRNN run")
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2], help="SampleRNN generation threads")
    parser.add_argument("--shared-threads", action="store_true",
                        help="also the streams in one group with torch's threads sharing each matmul (the "
                             "previous way), against the same bound")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--render-candidates", type=int, default=48,
                        help="SampleRNN in a build: candidates (× 2 channels) rendered by `render_textures` (0: skip)")
    parser.add_argument("--render-seconds", type=float, default=4.3,
                        help="their length (instruments/textures.yaml: 4 s + the 0.3 s loop crossfade)")
    parser.add_argument("--render-cores", type=int, nargs="+", default=[2],
                        help="SampleRNN in a build: generation threads (the goal's: 2)")
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--engines", nargs="+", default=["lstm_vae", "samplernn"])
    parser.add_argument("--sounds", nargs="+", default=list(SOUNDS))
    parser.add_argument("--minutes", type=float, default=None, help="training budget (default: the engine's)")
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    figures: dict = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()}

    rows = [samplernn_speed(b, args.steps, args.repeats, c) for c in args.cores for b in args.batch]
    if args.shared_threads:
        rows += [samplernn_speed(b, args.steps, args.repeats, max(args.cores), shared=True) for b in args.batch]
    figures["samplernn_speed"] = rows
    s = SampleRNNSettings()
    print(f"\n**SampleRNN generation** (default model: {s.tiers} tiers, frames {s.frame_sizes}, GRU {s.dim}, "
          f"MLP {s.mlp_dim}; streams split between cores, one torch thread each; {args.steps} samples, "
          f"median of {args.repeats}; load average {os.getloadavg()[0]:.1f})\n")
    print("| cores | batch | samples/s | × real time at 44.1 kHz | matmul bound (samples/s) | share of bound | "
          "… by CPU time |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cores']}{' (shared matmuls)' if r['shared'] else ''} | {r['batch']} | {r['samples_per_s']:,.0f} | {r['x_real_time_44k']:.2f}× | "
              f"{r['bound_samples_per_s']:,.0f} | {100 * r['share_of_bound']:.0f} % | "
              f"{100 * r['share_of_bound_cpu']:.0f} % |")

    if args.render_candidates:
        rows = [samplernn_render_speed(args.render_candidates, 2, args.render_seconds, args.repeats, c)
                for c in args.render_cores]
        figures["samplernn_render"] = rows
        print(f"\n**SampleRNN generation in a build** (`render_textures`, the engine's path: "
              f"{args.render_candidates} candidates × 2 channels of {args.render_seconds:g} s (instruments/"
              f"textures.yaml asks 48 of 4.3 s); default settings: re-primed every 0.5 s, each segment a stream, "
              f"all drawn at once; random weights; median of {args.repeats} (each run's in brackets), each "
              f"generator call followed by its bound; load average {os.getloadavg()[0]:.1f})\n")
        print("| cores | rows a core per call | wall s | × real time at 16 kHz (44.1 kHz) | share of bound | "
              "… by CPU time |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['cores']} | {' / '.join(map(str, r['rows_per_core']))} | {r['wall_s']:.1f} | "
                  f"{r['x_real_time']:.1f}× ({r['x_real_time_44k']:.2f}×) | {100 * r['share_of_bound']:.0f} % ("
                  + " / ".join(f"{100 * x:.0f}" for x in r["shares"]) + f") | {100 * r['share_of_bound_cpu']:.0f} % |")

    vae = [lstm_vae_speed(d, 64, args.seconds) for d in ("dct", "fft")]
    figures["lstm_vae_speed"] = vae
    print(f"\n**LSTM-VAE generation** (default model, 64 textures × {args.seconds:g} s at 22.05 kHz)\n")
    print("| domain | wall seconds | × real time (aggregate, wall) | CPU seconds | × real time per CPU second |")
    print("|---|---|---|---|---|")
    for r in vae:
        print(f"| {r['domain']} | {r['seconds']:.2f} | {r['x_real_time']:.0f}× | {r['cpu_seconds']:.2f} | "
              f"{r['x_real_time_cpu']:.0f}× |")

    if args.train:
        runs = []
        for engine in args.engines:
            for sound in args.sounds:
                rows = train_and_curate(engine, sound, args.minutes, args.candidates, 16, args.seconds, args.quiet)
                runs += rows
                for row in rows:
                    print(json.dumps(row), file=sys.stderr, flush=True)
        figures["curator"] = runs
        budget = f"{args.minutes:g} min" if args.minutes else "the default budget"
        print(f"\n**Curator** ({args.candidates} candidates of {args.seconds:g} s after training for {budget} "
              f"on one sound; distance: time-averaged log-mel mean |dB| to the sound, level removed)\n")
        print("| engine | sound | match EQ | steps (stopped by), training wall s (load) | passed | labels | "
              "rejected (silence/noise/far/stuck) | kept: distance | white noise: distance | ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in runs:
            ratio = (r["kept_distance_db"] / r["noise_distance_db"]) if r["kept_distance_db"] is not None else None
            rej = r["rejected"]
            print(f"| {r['engine']} | {r['sound']} | {'on' if r['match_eq'] else 'off'} | {r['steps']} "
                  f"({r['stopped_by']}), {r['train_s']:.0f} s ({r['load']:.1f}) | {100 * r['keep_share']:.0f} % | "
                  + ", ".join(f"{k} {v}" for k, v in r["labels"].items())
                  + f" | {rej['silence']}/{rej['noise']}/{rej['far']}/{rej['stuck']} | "
                  + (f"{r['kept_distance_db']:.1f} dB | {r['noise_distance_db']:.1f} dB | {ratio:.2f} |"
                     if ratio is not None else "— | — | — |"))

    if args.build:
        with tempfile.TemporaryDirectory() as work:
            wall, peak = cold_build(Path(work))
        figures["cold_build"] = {"seconds": wall, "peak_gb": peak}
        print(f"\n**Cold build** of instruments/textures.yaml: {wall / 60:.1f} min, peak {peak:.2f} GB\n")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
