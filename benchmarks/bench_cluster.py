"""Many instruments through Ray vs one after another; prints a markdown table.

    python benchmarks/bench_cluster.py              # eight small conceptor specs (~4-5 minutes on 2 cores)
    python benchmarks/bench_cluster.py --specs 4    # fewer (--specs 0: only Ray's overhead)
    python benchmarks/bench_cluster.py --repeats 9  # the cold overhead over more tries (default 5)

1. Eight small specs (conceptor engine, distinct seeds, so nothing is shared between them) built serially in
   this process (`build_many(specs)`), then, from empty caches, through a local Ray with two workers
   (`build_many(specs, cluster="ray")`, the time to start Ray included). Both in the same run: the ratio is
   the figure (goal >= 1.7x on this 2-core machine). Beside it, what two processes get out of these cores:
   the same render (the first spec's model, single-threaded as a Ray worker runs it) alone, then twice at
   once; 2 x alone / at once is the most any two workers can gain here (2.0 on two free, whole cores).
2. Ray's overhead for one tiny build (a sampler spec): the Ray build (starting Ray included) minus the same
   build here (goal <= 5 s), `--repeats` times (min / median / max: a cold start varies from run to run);
   beside it, what starting and stopping Ray alone costs, and the same build through a Ray already running on
   this machine (`ray start --head`, then RAY_ADDRESS): the overhead left when the start-up is paid once.
Both builds of a spec must write byte-identical folders; the script checks it and says so.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))        # support.ray_cluster: a Ray head of our own, stopped cleanly

from dawexport.batch import build_many  # noqa: E402

SOUNDS = ROOT / "instruments" / "sounds"


def write_spec(folder: Path, name: str, engine: dict, **changes) -> Path:
    for sound in ("cat_meow.flac", "flute.wav"):
        if not (folder / sound).exists():
            shutil.copy(SOUNDS / sound, folder / sound)
    spec = {"name": name, "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"}, "engine": engine,
            "blend": {"corners": ["cat", "flute"], "points_per_side": 2},
            "keys": {"low": "C3", "high": "C5", "every": 4}, "velocity_layers": 2,
            "note": {"length": 1.0, "release": 0.2}, "output": {"dir": f"out/{name}", "formats": ["sfz"]}}
    spec.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def conceptor_specs(folder: Path, count: int) -> list[Path]:
    """Small reservoirs (N = 100) at 22050 Hz: at the engine's 44.1 kHz default a reservoir this small cannot
    hold the grains' pitch (it wants N = 400), and the instrument would play unpitched noise."""
    return [write_spec(folder, f"reservoir{i}", {"name": "conceptor", "seed": i, "sample_rate": 22050, "settings": {
        "reservoir_size": 100, "grains_per_source": 4, "n_reservoirs": 1}}) for i in range(count)]


def hashes(folder: Path) -> dict[str, str]:
    """Every file's hash, but the report's record of this run's times and memory."""
    from dawexport.report import RUN_SPECIFIC
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.relative_to(folder).as_posix() not in RUN_SPECIFIC}


def timed_batch(folder: Path, specs: list[Path], **options) -> float:
    start = time.perf_counter()
    outcomes = build_many(specs, quiet=True, cache=folder / "cache", **options)
    seconds = time.perf_counter() - start
    failed = [o for o in outcomes if o.status != "built"]
    if failed:
        raise SystemExit(f"not built: {failed}")
    return seconds


def copy_specs(specs: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    for path in specs[0].parent.iterdir():
        if path.is_file():
            shutil.copy(path, folder / path.name)
    return [folder / p.name for p in specs]


def ray_start_stop(workers: int) -> tuple[float, float]:
    """Seconds to start a local Ray as a build does (`ray_session`: no dashboard, `workers` CPUs, its workers
    warmed up) and to stop it again, with no build."""
    from dawexport.cluster import ray_session
    start = time.perf_counter()
    with ray_session("ray", num_cpus=workers) as stages:
        stages.warmed_up()
        started = time.perf_counter()
    return started - start, time.perf_counter() - started


def tiny_overhead(tmp: Path, workers: int, repeats: int) -> list[tuple[str, str, str]]:
    from support.ray_cluster import two_node_cluster
    (tmp / "tiny").mkdir()
    tiny = write_spec(tmp / "tiny", "tiny", {"name": "sampler"}, keys={"low": "C4", "high": "D4", "every": 3},
                      velocity_layers=1)
    names = ["warm-up", "running"] + [f"{side}{i}" for i in range(repeats) for side in ("here", "ray")]
    folders = {name: copy_specs([tiny], tmp / f"tiny-{name}") for name in names}
    timed_batch(tmp / "tiny-warm-up", folders["warm-up"])     # imports paid here, by neither side
    here, on_ray = [], []
    for i in range(repeats):       # each Ray build beside a build here, so both see the same load
        here.append(timed_batch(tmp / f"tiny-here{i}", folders[f"here{i}"]))
        on_ray.append(timed_batch(tmp / f"tiny-ray{i}", folders[f"ray{i}"], cluster="ray", num_cpus=workers))
    overhead = [r - h for r, h in zip(on_ray, here)]
    local_one = statistics.median(here)
    start, stop = ray_start_stop(workers)
    with two_node_cluster(cpus_per_node=workers, nodes=1) as address:
        os.environ["RAY_ADDRESS"] = address
        try:
            running = timed_batch(tmp / "tiny-running", folders["running"], cluster="ray")
        finally:
            os.environ.pop("RAY_ADDRESS", None)
    reference = hashes(tmp / "tiny-here0" / "out" / "tiny")
    same = all(hashes(tmp / f"tiny-{name}" / "out" / "tiny") == reference for name in names if name != "warm-up")
    spread = (f"{min(overhead):.2f} / **{statistics.median(overhead):.2f}** / {max(overhead):.2f} s"
              if repeats > 1 else f"**{overhead[0]:.2f} s**")
    return [("one tiny sampler build here (median)", f"{local_one:.2f} s", ""),
            ("the same through Ray, starting and stopping Ray included (median)",
             f"{statistics.median(on_ray):.2f} s", ""),
            (f"Ray's overhead, a Ray started for the build (min / median / max of {repeats})", spread, "≤ 5 s"),
            ("starting Ray alone, until its workers have imported dawexport (no build)", f"{start:.2f} s", ""),
            ("stopping it alone", f"{stop:.2f} s", ""),
            ("the same build through a Ray already running here (RAY_ADDRESS)", f"{running:.2f} s", ""),
            ("Ray's overhead when it is already running", f"{running - local_one:.2f} s", "≤ 5 s"),
            (f"byte-identical folders ({len(names) - 1} tiny builds)", "yes" if same else "NO", "yes")]


def _render_alone(spec: Path, cache: Path, count: int, barrier, seconds) -> None:
    """Render the first `count` requests of the spec with its cached model; time only the render."""
    from dawexport.engines import make_engine
    from dawexport.pipeline import CACHE_ENV, build_corpus, fit_or_load
    from dawexport.render.plan import make_plan
    from dawexport.spec import load_spec
    os.environ[CACHE_ENV] = str(cache)
    loaded = load_spec(spec)
    engine = make_engine(loaded)
    corpus = build_corpus(loaded, engine.sample_rate)
    fit_or_load(engine, corpus, loaded)
    requests = make_plan(loaded, corpus.channels).requests()[:count]
    barrier.wait()
    start = time.perf_counter()
    engine.render(requests)
    seconds.put(time.perf_counter() - start)


def two_at_once(spec: Path, cache: Path, count: int = 14) -> tuple[float, float]:
    """Seconds of one render process alone, and the mean of two running it at once (one thread each)."""
    context = multiprocessing.get_context("spawn")
    threads = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({name: "1" for name in threads})      # as Ray runs a 1-CPU task
    try:
        times = []
        for processes in (1, 2):
            barrier, seconds = context.Barrier(processes), context.Queue()
            runs = [context.Process(target=_render_alone, args=(spec, cache, count, barrier, seconds))
                    for _ in range(processes)]
            for run in runs:
                run.start()
            times.append([seconds.get(timeout=600) for _ in runs])
            for run in runs:
                run.join()
    finally:
        for name, value in threads.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return times[0][0], statistics.mean(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="tries of the tiny build's cold overhead")
    args = parser.parse_args()
    os.environ.pop("RAY_ADDRESS", None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        tmp = Path(tmp)
        if args.specs:
            (tmp / "specs").mkdir()
            specs = conceptor_specs(tmp / "specs", args.specs)
            here = copy_specs(specs, tmp / "here")
            on_ray = copy_specs(specs, tmp / "ray")
            serial = timed_batch(tmp / "here", here)
            ray_s = timed_batch(tmp / "ray", on_ray, cluster="ray", num_cpus=args.workers)
            differ = [f"{p.stem}/{name}" for p in specs
                      for a, b in [(hashes(tmp / "here" / "out" / p.stem), hashes(tmp / "ray" / "out" / p.stem))]
                      for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]
            same = not differ
            if differ:
                print(f"{len(differ)} file(s) differ between the two builds: " + ", ".join(differ[:12]))
            rows += [(f"{args.specs} conceptor specs, serially in one process", f"{serial:.1f} s", ""),
                     (f"the same through Ray, {args.workers} workers (starting Ray included)", f"{ray_s:.1f} s", ""),
                     ("speed-up", f"**{serial / ray_s:.2f}×**", "≥ 1.7×"),
                     ("byte-identical folders", "yes" if same else "NO", "yes")]
            alone, together = two_at_once(here[0], tmp / "here" / "cache")
            rows += [("one render of the first spec, alone (1 thread)", f"{alone:.1f} s", ""),
                     ("the same, two processes at once (each)", f"{together:.1f} s", ""),
                     ("what two processes can gain on these cores (2 × alone / at once)",
                      f"{2 * alone / together:.2f}×", "")]
        rows += tiny_overhead(tmp, args.workers, max(1, args.repeats))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} "
          "at the end (other jobs share these cores)\n")
    print("| measure | value | goal |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
