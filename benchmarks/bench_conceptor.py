"""Benchmarks of the conceptor engine; prints markdown tables.

    python benchmarks/bench_conceptor.py            # everything (~2-4 minutes on a 2-core CPU)
    python benchmarks/bench_conceptor.py --quick    # shorter renders
    python benchmarks/bench_conceptor.py --only render --quick --against main   # and main's kernels, same run

1. Loading: 60 grains (the example sounds, 15 per clip) into N = 400 at 22050 Hz.
2. Render throughput at 44.1 kHz steps, B = 64 voices, N = 100 and 400, for each conceptor form: seconds of
   compute per voice-second, aggregate x real time, and the ratio to this machine's own matmul throughput
   for the same FLOPs, measured in the same run: the very same GEMM calls (same shapes, same thread count)
   timed alone in a loop. Also a naive float64 dense step for reference, and the large-GEMM peak.
3. Reconstruction: NRMSE between each grain and its conceptor's free run after washout, per source.
   Percussion: the repository ships no drum recordings, so three synthetic hits stand in (labelled).
4. Reconstruction per grain (`--only grains`): cat + flute at 44.1 kHz, every grain's place, pitch confidence,
   NRMSE and timbre distance to its source (looped, free run, free run with the noise term).
5. Model rate (`--only rate`): fit and render time at 22050 vs 44100 Hz, same notes, same run.
6. Instruments (`--only instrument`): built through the pipeline from the repository's sounds (cat_meow,
   flute) and a gliding, noisy voice-like sound made here (`glide_voice`), each blended with the flute on
   CC 1, keys C3-C6, and played in sfizz: pitch error of every key at every blend point, level 3 s into a
   held note against its first second, and the timbre distance (`dawexport.audio.fidelity`) of the corners
   to their sources, next to the ddsp engine trained on the same sources (`--ddsp-steps`).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dawexport.audio.analysis import estimate_pitch, f0_track  # noqa: E402
from dawexport.audio.io import read_audio  # noqa: E402
from dawexport.audio.resample import resample  # noqa: E402
from dawexport.engines.base import Clip, Corpus  # noqa: E402
from dawexport.engines.conceptor import ConceptorEngine, blas, grains, kernels, loading, reservoir  # noqa: E402

SR_MODEL = 22050


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times))


def example_clips(sr):
    clips = []
    for name, src in (("flute.wav", "flute"), ("cat_meow.flac", "cat")):
        audio, rate = read_audio(ROOT / "instruments" / "sounds" / name)
        x = resample(audio, rate, sr)
        if x.shape[0] == 1:
            x = np.vstack([x, x])
        pitch = estimate_pitch(x.mean(axis=0), sr)
        for ch, i in (("L", 0), ("R", 1)):
            clips.append(Clip(src, ch, 0, x[i], pitch))
    return clips


def grains_of(x, sr, count):
    tr = f0_track(x, sr)
    hz = np.interp(np.arange(len(x)), tr.times * sr, np.where(tr.voiced, tr.hz, np.nan))
    return grains.cut_grains(x, sr, count, period=sr / hz, min_length=int(0.005 * sr))


# ------------------------------------------------------------------ 1. loading

def bench_loading(repeats):
    clips = example_clips(SR_MODEL)
    pats = [g.audio for c in clips for g in grains_of(np.asarray(c.audio, np.float64), SR_MODEL, 15)]
    assert len(pats) == 60
    rows = []
    res = reservoir.make_reservoir(400, spectral_radius=1.7, leak=0.5, seed=0)

    def load(aperture):
        return lambda: loading.load_patterns(res, pats, aperture=aperture, washout=110)
    t_make = best_of(lambda: reservoir.make_reservoir(400, spectral_radius=1.7, leak=0.5, seed=0), repeats)
    t_fixed = best_of(load(100.0), repeats)
    t_auto = best_of(load("auto"), repeats)
    model = load("auto")()
    t_err = best_of(lambda: loading.reconstruction_errors(model, pats, washout=110), repeats)
    lengths = [len(p) for p in pats]
    rows.append(("new reservoir (random sparse W, spectral radius)", *t_make))
    rows.append(("load 60 grains, fixed aperture", *t_fixed))
    rows.append(("load 60 grains, aperture auto (least attenuation)", *t_auto))
    rows.append(("reconstruction check of 60 grains (for picking a reservoir)", *t_err))
    rows.append(("one reservoir tried: new + load auto + check", t_make[0] + t_auto[0] + t_err[0],
                 t_make[1] + t_auto[1] + t_err[1]))
    print(f"\n### Loading: 60 grains ({min(lengths)}-{max(lengths)} samples, the example sounds at "
          f"{SR_MODEL} Hz) into N = 400\n")
    print("| step | best s | median s |")
    print("|---|---:|---:|")
    for name, best, med in rows:
        print(f"| {name} | {best:.3f} | {med:.3f} |")
    ranks = [b.shape[1] for b in model.bases]
    print(f"\nconceptor ranks: median {int(np.median(ranks))}, max {max(ranks)} (<= learn length); "
          f"engine default n_reservoirs = 2 doubles the last row.")


# ------------------------------------------------------------------ 2. render throughput

def toy_model(n, seed=0):
    res = reservoir.make_reservoir(n, spectral_radius=1.7, leak=0.5, seed=seed)
    t = np.arange(113)
    pats = [0.6 * np.sin(2 * np.pi * 2 * t / 113 + k) + 0.2 * np.sin(2 * np.pi * 6 * t / 113 + 2 * k)
            for k in range(4)]
    return loading.load_patterns(res, pats, aperture=100.0), loading.load_patterns(res, pats, aperture=10.0, form="diagonal")


def gemm_bound(shapes, steps, threads, dtype):
    """Seconds for `steps` repetitions of the same GEMM calls (shapes: list of (stack, m, k, n))."""
    rng = np.random.default_rng(0)
    ops = []
    for g, m, k, n in shapes:
        a = rng.standard_normal((g, m, k) if g > 1 else (m, k)).astype(dtype)
        b = rng.standard_normal((g, k, n) if g > 1 else (k, n)).astype(dtype)
        out = np.empty((g, m, n) if g > 1 else (m, n), dtype)
        ops.append((a, b, out))
    with blas.blas_threads(threads):
        for a, b, out in ops:
            np.matmul(a, b, out=out)
        t = time.perf_counter()
        for _ in range(steps):
            for a, b, out in ops:
                np.matmul(a, b, out=out)
        return time.perf_counter() - t


def flops_of(shapes):
    return sum(2 * g * m * k * n for g, m, k, n in shapes)


def naive_dense_step_time(model, c, b, steps):
    """A straightforward float64 dense loop, new arrays every step (the reference implementation)."""
    x = np.tile(model.start_states[0][:, None], (1, b))
    a = np.full(b, 0.5)
    t = time.perf_counter()
    for _ in range(steps):
        y = model.readout @ x
        x = c @ ((1 - a) * x + a * np.tanh(model.weights @ x + model.reservoir.bias[:, None]))
    del y
    return time.perf_counter() - t


def kernels_at(ref: str):
    """The conceptor's kernels module as it is at git revision `ref` (to time it against this one)."""
    import importlib.util
    import subprocess
    source = subprocess.run(["git", "show", f"{ref}:dawexport/engines/conceptor/kernels.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("dawexport.engines.conceptor._kernels_at_ref", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "dawexport.engines.conceptor"
    sys.modules[spec.name] = module          # dataclasses look their module up there
    exec(compile(source, f"{ref}:kernels.py", "exec"), module.__dict__)
    return module


def bench_render(quick, threads_list, against=None):
    rate = 44100
    steps = 2205 if quick else 8820
    b = 64
    rng = np.random.default_rng(0)
    rows = []
    peak = {}
    for threads in threads_list:
        n_big = 1024
        t = gemm_bound([(1, n_big, n_big, n_big)], 3, threads, np.float32)
        peak[threads] = flops_of([(1, n_big, n_big, n_big)]) * 3 / t / 1e9
    for n in (100, 400):
        full, diag = toy_model(n)
        for form in ("dense", "lowrank", "diagonal"):
            for groups in (1, 8):
                model = diag if form == "diagonal" else full
                cons = [model.diag_values(j) for j in range(4)] if form == "diagonal" else \
                    [model.conceptor(j) for j in range(4)]
                lib = kernels.ConceptorLibrary(model, cons, form)
                per = b // groups
                scheds = []
                for g in range(groups):
                    order = [(g + k) % 4 for k in range(4)]
                    scheds.append([kernels.Segment(steps // 3, (order[k], order[k + 1]), (1.0, 0.0), (0.0, 1.0))
                                   for k in range(3)] + kernels.hold(order[3], steps))
                group_of = np.repeat(np.arange(groups), per)
                leak = rng.uniform(0.3, 0.7, b)
                radius = rng.uniform(0.95, 1.05, b)
                if form == "lowrank":
                    # the segment basis spans two grains: measure it as the kernel builds it
                    r = kernels._Bases(lib).rank((0, 1))
                    shapes = [(groups, n + 1, r, per), (groups, r, n, per), (groups, r, r, per)]
                elif form == "dense":
                    r = n
                    shapes = [(1, n + 1, n, b), (groups, n, n, per)]
                else:
                    r = n
                    shapes = [(1, n + 1, n, b)]
                ref_lib = None if against is None else against.ConceptorLibrary(model, cons, form)
                for threads in threads_list:
                    def run():
                        kernels.render(lib, scheds, group_of, steps, leak=leak, radius=radius, threads=threads)

                    def run_ref():
                        against.render(ref_lib, scheds, group_of, steps, leak=leak, radius=radius, threads=threads)
                    run()
                    t_best, _ = best_of(run, 2)
                    t_ref = float("nan") if against is None else best_of(run_ref, 2)[0]
                    t_bound = min(gemm_bound(shapes, steps, threads, np.float32) for _ in range(2))
                    voice_s = b * steps / rate
                    gflops = flops_of(shapes) * steps / t_best / 1e9
                    rows.append((n, form, groups, r, threads, t_best / voice_s, voice_s / t_best, gflops,
                                 t_bound / t_best, t_bound / t_ref))
        # the naive reference (float64, 1 thread, fewer steps)
        c = full.conceptor(0).dense()
        with blas.blas_threads(1):
            t = naive_dense_step_time(full, c, b, steps // 4)
        voice_s = b * (steps // 4) / rate
        rows.append((n, "dense float64 naive", 1, n, 1, t / voice_s, voice_s / t, float("nan"), float("nan"),
                     float("nan")))
    print(f"\n### Render throughput at {rate} Hz, B = {b} voices ({steps} steps per run, best of 2)\n")
    pct = lambda v: '' if np.isnan(v) else f'{100 * v:.0f} %'      # noqa: E731
    print("| N | form | groups | R | BLAS threads | s per voice-second | aggregate x real time | GFLOP/s | "
          "share of matmul bound |" + (" share with the reference kernels |" if against is not None else ""))
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if against is not None else ""))
    for n, form, groups, r, threads, spv, xrt, gf, ratio, ref in rows:
        print(f"| {n} | {form} | {groups} | {r} | {threads} | {spv:.4f} | {xrt:.1f} | "
              f"{'' if np.isnan(gf) else f'{gf:.0f}'} | {pct(ratio)} |" + (f" {pct(ref)} |" if against is not None else ""))
    print("\nmatmul bound: the same GEMM calls (same shapes, stacks and threads) timed alone for the same steps. "
          "Large-GEMM peak (1024^3 float32): " + ", ".join(f"{v:.0f} GFLOP/s with {k} thread(s)"
                                                           for k, v in peak.items()) + ".")
    if against is not None:
        print("The last column times the kernels of the reference revision (--against) in the same loop, against the "
              "same bound (the unblocked GEMM shapes).")


# ------------------------------------------------------------------ 3. reconstruction

def drum_hits(sr):
    """Synthetic stand-ins: the repository ships no drum recordings."""
    rng = np.random.default_rng(7)
    t = np.arange(int(0.35 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * t + 90 / 18 * (1 - np.exp(-18 * t)))) * np.exp(-t / 0.12)
    noise = rng.standard_normal(len(t))
    snare = (0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
             + 0.6 * np.convolve(noise, [1, -0.5], "same") * np.exp(-t / 0.09))
    hat = np.diff(np.concatenate([[0], noise])) * np.exp(-t / 0.03)
    return {"kick": kick, "snare": snare, "hat": hat}


def bench_reconstruction():
    sr = SR_MODEL
    clips = example_clips(sr)
    for name, x in drum_hits(sr).items():
        x = (0.7 * x / np.max(np.abs(x))).astype(np.float32)
        clips.append(Clip(f"synthetic-{name}", "L", 0, x, estimate_pitch(x, sr)))
        clips.append(Clip(f"synthetic-{name}", "R", 0, x, estimate_pitch(x, sr)))
    def fit(subset):
        eng = ConceptorEngine(ConceptorEngine.Settings(), sample_rate=sr, seed=0)
        t = time.perf_counter()
        eng.fit(Corpus(sr, ("L", "R"), tuple(subset)), Path("/tmp"), None)
        errors = {}
        for j, g in enumerate(eng.grains):
            errors.setdefault(eng.clips[g["clip"]]["source"], []).append(float(eng.errors[j]))
        return errors, time.perf_counter() - t, len(eng.grains)

    shared, shared_s, shared_n = fit(clips)
    alone = {}
    for src in dict.fromkeys(c.source for c in clips):
        errs, _, _ = fit([c for c in clips if c.source == src])
        alone.update(errs)
    print(f"\n### Reconstruction NRMSE (grain vs its conceptor's free run after washout), defaults, {sr} Hz\n")
    print("each source alone in its own N = 400 reservoir (16 grains: 8 per channel), and all five sources "
          f"sharing one reservoir ({shared_n} grains, as one blend instrument would)\n")
    print("| source | kind | median alone | 90th pct alone | median shared | 90th pct shared |")
    print("|---|---|---:|---:|---:|---:|")
    for src in alone:
        kind = "pitched (example sound)" if not src.startswith("synthetic") else "percussion (synthetic stand-in)"
        a_, s_ = np.array(alone[src]), np.array(shared[src])
        print(f"| {src} | {kind} | {np.median(a_):.3f} | {np.percentile(a_, 90):.3f} | {np.median(s_):.3f} | "
              f"{np.percentile(s_, 90):.3f} |")
    print(f"\nfit of the shared model (cut, load {shared_n} grains into 2 reservoirs, pick, calibrate): "
          f"{shared_s:.2f} s")


def bench_grains(sr: int = 44100):
    """Reconstruction per grain of the cat + flute blend at the default rate: where each grain was cut, its
    pitch confidence, NRMSE (grain vs its conceptor's free run) and the timbre distance to the whole source
    of the grain looped (what the grain choice allows) and of its free run (what the reservoir plays), both
    at the source's pitch, with and without the noise term; then the grains' loops one after another."""
    from dawexport.audio.fidelity import timbre_distance
    from dawexport.audio.repitch import repitch
    from dawexport.engines.conceptor.engine import grain_pitches
    from dawexport.engines.conceptor.noise import add_noise
    sources = {}
    for name, src in (("cat_meow.flac", "cat"), ("flute.wav", "flute")):
        audio, rate = read_audio(ROOT / "instruments" / "sounds" / name)
        sources[src] = np.asarray(resample(audio, rate, sr), np.float64).mean(axis=0)
    clips = tuple(Clip(n, "mono", 0, x.astype(np.float32), estimate_pitch(x, sr)) for n, x in sources.items())
    eng = ConceptorEngine(ConceptorEngine.Settings(), sample_rate=sr, seed=0)
    eng.fit(Corpus(sr, ("mono",), clips), Path("/tmp"), None)
    shared = grain_pitches(clips, eng.settings.shared_pitch_semitones)
    m, steps, skip = eng.model, int(0.6 * sr), int(0.1 * sr)
    lib = kernels.ConceptorLibrary(m, [eng._entry(("grain", j, 1.0)) for j in range(len(eng.grains))],
                                   "diagonal" if m.form == "diagonal" else "lowrank")
    with blas.blas_threads(1):
        free = kernels.render(lib, [kernels.hold(j, steps) for j in range(len(eng.grains))],
                              np.arange(len(eng.grains)), steps, leak=np.full(len(eng.grains), m.reservoir.leak),
                              start_states=m.start_states, washout=int(0.01 * sr), threads=1, voice_block=1)
    print(f"\n### Reconstruction per grain: cat + flute in one N = 400 reservoir, {sr} Hz, defaults\n")
    print("timbre distance (dB) to the whole source, at the source's pitch: the grain looped, its free run, "
          "its free run with the noise term\n")
    print("| source | grain | cut at s | pitch confidence | NRMSE | looped | free run | free run + noise |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    j = 0
    rng = np.random.default_rng(0)
    for c, clip in enumerate(clips):
        x = sources[clip.source]
        ratio = clip.pitch.hz / shared.get(id(clip), clip.pitch.hz)
        loops = []
        for g in (g for g in eng._cut(clip, sr, shared.get(id(clip))) if g.gain > 0):
            loop = repitch(np.tile(g.audio, steps // len(g.audio) + 1)[:steps], ratio)
            y = repitch(np.asarray(free[j], np.float64)[skip:], ratio)
            noisy = add_noise(y, sr, eng.noise[c], rng=rng)
            print(f"| {clip.source} | {j} | {g.start / sr:.2f} | {g.confidence:.2f} | {eng.errors[j]:.3f} | "
                  f"{timbre_distance(x, sr, loop[skip:], sr):.1f} | {timbre_distance(x, sr, y, sr):.1f} | "
                  f"{timbre_distance(x, sr, noisy, sr):.1f} |")
            loops.append(loop[skip:])
            j += 1
        print(f"| {clip.source} | all, looped one after another | | | | "
              f"{timbre_distance(x, sr, np.concatenate(loops), sr):.1f} | | |")
    print("\nnoise term: " + ", ".join(f"{c.source} {10 * np.log10(max(n.share, 1e-12)):.0f} dB of its power"
                                      for c, n in zip(clips, eng.noise)))


def bench_rate():
    """What 44.1 kHz costs against 22.05 kHz: the same corpus (flute + cat, mono), default settings, fitted and
    rendered at each rate in this run (4 notes of 1.2 s, each corner and the middle)."""
    from dawexport.engines.base import RenderRequest
    rows = []
    for sr in (22050, 44100):
        clips = tuple(Clip(c.source, "mono", 0, c.audio, c.pitch) for c in example_clips(sr) if c.channel == "L")
        eng = ConceptorEngine(ConceptorEngine.Settings(), sample_rate=sr, seed=0)
        t = time.perf_counter()
        eng.fit(Corpus(sr, ("mono",), clips), Path("/tmp"), None)
        fit_s = time.perf_counter() - t
        reqs = [RenderRequest((("flute", w), ("cat", 1 - w)), "mono", key, 127, 1.0, 0.2)
                for w, key in ((1.0, 62), (1.0, 74), (0.0, 69), (0.5, 67))]
        t = time.perf_counter()
        eng.render(reqs)
        rows.append((sr, fit_s, time.perf_counter() - t, eng.source_errors()))
    print("\n### Model rate: 22050 vs 44100 Hz (N = 400, defaults; 4 notes of 1.2 s)\n")
    print("| rate | fit s | render s | render x real time | NRMSE flute / cat |")
    print("|---:|---:|---:|---:|---|")
    for sr, fit_s, render_s, err in rows:
        print(f"| {sr} | {fit_s:.1f} | {render_s:.1f} | {4 * 1.2 / render_s:.2f} | "
              f"{err['flute']:.3f} / {err['cat']:.3f} |")
    print(f"\n44100 / 22050: fit {rows[1][1] / rows[0][1]:.2f}x, render {rows[1][2] / rows[0][2]:.2f}x the time")


# ------------------------------------------------------------------ 4. instruments in sfizz

def glide_voice(sr: int = 44100, seconds: float = 1.8, seed: int = 3) -> np.ndarray:
    """A gliding, noisy, voice-like sound: a glottal-ish pulse train whose f0 scoops 260 -> 370 -> 300 Hz with
    jitter, through two moving formants, with breath noise, a noisy onset burst and a room-ish tail."""
    from scipy import signal
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 260 + 110 * np.sin(np.pi * np.clip(t / 1.2, 0, 1)) ** 2 - 70 * np.clip((t - 1.0) / 0.8, 0, 1)
    f0 = f0 * (1 + 0.004 * np.convolve(rng.standard_normal(n), np.ones(400) / 20, "same"))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    src = sum((0.8 ** k) * np.sin(k * phase) for k in range(1, 30) if k * 370 < sr / 2.2)
    y = np.zeros(n)
    for lo, hi, move in ((500, 900, 300), (1400, 2000, -400)):
        for half in (0, 1):
            seg = slice(half * n // 2, (half + 1) * n // 2)
            b, a = signal.butter(2, [lo + half * move, hi + half * move], btype="band", fs=sr)
            y[seg] += signal.lfilter(b, a, src)[seg]
    y += 0.3 * src
    noise = rng.standard_normal(n)
    b, a = signal.butter(2, [1500, 6000], btype="band", fs=sr)
    breath = signal.lfilter(b, a, noise) * (0.12 + 0.5 * np.exp(-t / 0.04))
    env = np.minimum(1, t / 0.03) * np.minimum(1, (seconds - t) / 0.25)
    y = (y / np.max(np.abs(y)) + breath) * env
    return (0.7 * y / np.max(np.abs(y))).astype(np.float32)


def _instrument_spec(folder: Path, corner: str, engine: str, settings: dict, rate: int | None,
                     keys: tuple[str, str, int] = ("C3", "C6", 6)) -> Path:
    import shutil

    import yaml
    for name in ("cat_meow.flac", "flute.wav"):
        shutil.copy(ROOT / "instruments" / "sounds" / name, folder / name)
    import soundfile as sf
    sf.write(str(folder / "glide.wav"), glide_voice(), 44100, subtype="PCM_24")
    files = {"cat": "cat_meow.flac", "glide": "glide.wav"}
    spec = {"name": f"{corner}_{engine}", "sources": {corner: files[corner], "flute": "flute.wav"},
            "engine": {"name": engine, "seed": 0, "settings": settings,
                       **({"sample_rate": rate} if rate else {})},
            "blend": {"corners": [corner, "flute"], "points_per_side": 3},
            "keys": {"low": keys[0], "high": keys[1], "every": keys[2]}, "velocity_layers": 1, "round_robins": 1,
            "note": {"length": 2.0, "release": 0.4}, "stereo": "mono", "loop": "auto",
            "output": {"dir": f"out/{corner}_{engine}", "formats": ["sfz"]}}
    path = folder / f"{corner}_{engine}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def measure_instrument(sfz: Path, source: np.ndarray, source_rate: int, corner_cc: int = 0) -> dict:
    """Pitch error (cents) per key and blend point, sustain (dB, level 3.0-3.5 s vs 0-1 s) and the timbre
    distance of the corner notes to their source, all from sfizz playing the SFZ."""
    sys.path.insert(0, str(ROOT / "tests"))
    from dawexport.audio.fidelity import timbre_distance
    from support.players import measure_pitch_cents, render_sfizz, rms_db, sfizz_synth
    synth = sfizz_synth(sfz)
    sr = 44100
    out = {"cents": {}, "sustain": {}, "timbre": [], "timbre_keys": []}
    for cc in (0, 64, 127):
        cents, drops = [], []
        for key in synth.playable_keys:
            audio = render_sfizz(synth, key, 127, hold_s=3.6, total_s=3.6, cc={1: cc}).mean(axis=0)
            cents.append(measure_pitch_cents(audio[int(0.1 * sr):int(2.0 * sr)], sr, key))
            drops.append(rms_db(audio[int(3.0 * sr):int(3.5 * sr)]) - rms_db(audio[:sr]))
            if cc == corner_cc:
                out["timbre"].append(timbre_distance(source, source_rate, audio[:2 * sr], sr))
                out["timbre_keys"].append(key)
        out["cents"][cc], out["sustain"][cc] = np.array(cents), np.array(drops)
    return out


def at_source_key(m: dict, source: np.ndarray, rate: int) -> float:
    """The timbre distance at the played key nearest the source's pitch (DESIGN.md's measure)."""
    key = estimate_pitch(source, rate).midi
    keys = np.asarray(m["timbre_keys"], dtype=np.float64)
    return float(m["timbre"][int(np.argmin(np.abs(keys - key)))])


def bench_instrument(ddsp_steps: int, engines: list[str], rate: int | None = None,
                     corners: tuple[str, ...] = ("cat", "glide"), keys: tuple[str, str, int] = ("C3", "C6", 6)):
    import tempfile

    from dawexport.audio.io import read_audio
    from dawexport.pipeline import build
    work = Path(tempfile.mkdtemp(prefix="bench_conceptor_"))
    rows, timbre = [], {}
    for corner in corners:
        src_path = ROOT / "instruments" / "sounds" / "cat_meow.flac"
        for engine in engines:
            settings = ({"max_minutes": 60} | ({"max_steps": ddsp_steps} if ddsp_steps else {})) \
                if engine == "ddsp" else {}
            spec = _instrument_spec(work, corner, engine, settings, rate, keys)
            t = time.perf_counter()
            result = build(spec, quiet=True)
            built_s = time.perf_counter() - t
            if corner == "cat":     # (source_rate, not `rate`: that is the model rate asked for)
                audio, source_rate = read_audio(src_path)
                source = np.asarray(audio, np.float64).mean(axis=0)
            else:
                source, source_rate = glide_voice().astype(np.float64), 44100
            flute, flute_rate = read_audio(ROOT / "instruments" / "sounds" / "flute.wav")
            m = measure_instrument(result.folder / f"{corner}_{engine}.sfz", source, source_rate, corner_cc=0)
            m_flute = measure_instrument(result.folder / f"{corner}_{engine}.sfz",
                                         np.asarray(flute, np.float64).mean(axis=0), flute_rate, corner_cc=127) \
                if corner == "cat" else None
            timbre[(corner, engine)] = (float(np.median(m["timbre"])), at_source_key(m, source, source_rate))
            if m_flute is not None:
                flute_mono = np.asarray(flute, np.float64).mean(axis=0)
                timbre[("flute", engine)] = (float(np.median(m_flute["timbre"])),
                                             at_source_key(m_flute, flute_mono, flute_rate))
            for cc in (0, 64, 127):
                c = np.abs(m["cents"][cc])
                rows.append((corner, engine, cc, float(np.nanmedian(c)), float(np.nanmax(c)),
                             float(np.median(m["sustain"][cc])), float(np.min(m["sustain"][cc])), built_s))
    print(f"\n### Instruments in sfizz: keys {keys[0]}-{keys[1]} rendered every {keys[2]} (every key played), corners [source, flute] on CC 1, "
          f"stereo mono, 2.0 s renders looped by the pipeline; ddsp trained {ddsp_steps or 'its default'} steps; model rate "
          f"{rate or 'each engine default'}\n")
    print("| source | engine | CC 1 | median abs cents | max abs cents | median sustain dB (3 s vs 1st s) | "
          "worst sustain dB | build s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for corner, engine, cc, med, worst, sus, sus_worst, built_s in rows:
        print(f"| {corner} | {engine} | {cc} | {med:.1f} | {worst:.1f} | {sus:+.1f} | {sus_worst:+.1f} | "
              f"{built_s:.0f} |")
    print("\ntimbre distance of the corner notes to their source (`fidelity.timbre_distance`, dB): median over "
          "the played keys, and at the key nearest the source's pitch (DESIGN.md); goal: conceptor <= 1.5 x ddsp\n")
    print("| source | " + " | ".join(f"{e} median / at source key" for e in engines) + " | ratio median / at key |")
    print("|---|" + "---:|" * (len(engines) + 1))
    for src in ("cat", "flute", "glide"):
        vals = [timbre.get((src, e), (float("nan"), float("nan"))) for e in engines]
        if all(np.isnan(v[0]) for v in vals):
            continue
        ratio = [vals[0][i] / vals[1][i] for i in (0, 1)] if len(vals) > 1 else [float("nan")] * 2
        print(f"| {src} | " + " | ".join(f"{v[0]:.1f} / {v[1]:.1f}" for v in vals)
              + f" | {ratio[0]:.2f} / {ratio[1]:.2f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", default="1", help="BLAS thread counts to compare, e.g. 1,2 (2 can be ~100x slower on a busy CPU)")
    ap.add_argument("--only", choices=("loading", "render", "reconstruction", "grains", "instrument", "rate"))
    ap.add_argument("--against", default=None, metavar="REV",
                    help="also time the render kernels of this git revision, interleaved (same load)")
    ap.add_argument("--ddsp-steps", type=int, default=None, help="ddsp training steps for the comparison "
                    "(default: the ddsp engine's own, 1200)")
    ap.add_argument("--engines", default="conceptor,ddsp", help="engines for the instrument table")
    ap.add_argument("--sources", default="cat,glide", help="sources blended with the flute in the instrument "
                    "table (cat, glide)")
    ap.add_argument("--keys", default="C3-C6", help="key range of the instrument table, LOW-HIGH (C3-C6)")
    ap.add_argument("--every", type=int, default=6, help="render a key every this many semitones (6)")
    ap.add_argument("--rate", type=int, default=None, help="model sample rate for the instrument table "
                    "(default: each engine's own; the conceptor's 22050 Hz cuts the sources' top octave)")
    args = ap.parse_args(argv)
    import os
    print(f"## conceptor engine benchmarks — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, numpy {np.__version__}, load average {os.getloadavg()[0]:.1f} at start")
    threads = [int(t) for t in args.threads.split(",")]
    if args.only in (None, "loading"):
        bench_loading(2 if args.quick else 3)
    if args.only in (None, "render"):
        bench_render(args.quick, threads, None if args.against is None else kernels_at(args.against))
    if args.only in (None, "reconstruction"):
        bench_reconstruction()
    if args.only in (None, "grains"):
        bench_grains()
    if args.only in (None, "rate"):
        bench_rate()
    if args.only in (None, "instrument"):
        low, high = args.keys.split("-")
        bench_instrument(args.ddsp_steps, args.engines.split(","), args.rate, tuple(args.sources.split(",")),
                         (low, high, args.every))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (the machine is shared; figures are noisy)")


if __name__ == "__main__":
    main()
