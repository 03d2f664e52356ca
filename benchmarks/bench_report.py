"""How much the build report costs: time inside a build and size on disk, for cat_flute and a tiny test build.

    python benchmarks/bench_report.py                      # builds instruments/cat_flute.yaml (model cached
                                                           # after the first build) and a tiny sampler spec
    python benchmarks/bench_report.py --spec other.yaml

Goals (issue 14): the cat_flute report adds ≤ 10 s to the build and takes ≤ 5 MB on disk. Times are wall
clock inside the build (from the build's own stage record) and the CPU time of drawing the page again;
on a shared machine compare the report's share of the build, which is measured in the same run.
Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dawexport.pipeline import build  # noqa: E402
from dawexport.report.facts import read_facts  # noqa: E402
from dawexport.report.page import write_page  # noqa: E402


def report_bytes(folder: Path) -> dict[str, int]:
    """Bytes of the report's files by kind."""
    sizes = {"page": (folder / "report.html").stat().st_size, "images": 0, "sounds": 0, "facts": 0}
    for path in (folder / "report").rglob("*"):
        if path.is_file():
            kind = {".png": "images", ".wav": "sounds", ".json": "facts"}.get(path.suffix, "page")
            sizes[kind] += path.stat().st_size
    return sizes


def redraw_seconds(folder: Path) -> tuple[float, float]:
    """(wall, CPU) seconds to draw the page again, into a hard-linked scratch copy of the folder."""
    scratch = Path(tempfile.mkdtemp(prefix="bench_report_"))
    try:
        for path in folder.rglob("*"):
            if path.is_file():
                target = scratch / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
        facts = read_facts(scratch)
        wall, cpu = time.perf_counter(), time.process_time()
        write_page(scratch, facts)
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(spec_path: Path) -> dict:
    result = build(spec_path, force=True, quiet=True)
    folder = result.folder
    stages = {s["name"]: s["seconds"] for s in json.loads((folder / "report/build.json").read_text())["stages"]}
    total = sum(v for k, v in stages.items() if k != "done")
    wall, cpu = redraw_seconds(folder)
    return {"folder": folder, "samples": len(list((folder / "samples").glob("*.wav"))), "stages": stages,
            "total": total, "sizes": report_bytes(folder), "redraw_wall": wall, "redraw_cpu": cpu}


def tiny_spec(folder: Path) -> Path:
    import yaml
    for name in ("cat_meow.flac", "flute.wav"):
        shutil.copy(REPO / "instruments" / "sounds" / name, folder / name)
    spec = {"name": "tiny", "sources": {"cat": "cat_meow.flac", "flute": "flute.wav"}, "engine": {"name": "sampler"},
            "blend": {"corners": ["cat", "flute"], "points_per_side": 3},
            "keys": {"low": "G3", "high": "D4", "every": 3}, "velocity_layers": 2,
            "note": {"length": 1.2, "release": 0.2}, "output": {"dir": "out/tiny", "formats": ["sfz"]}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "instruments" / "cat_flute.yaml"))
    args = parser.parse_args()
    rows = [("cat_flute" if args.spec.endswith("cat_flute.yaml") else Path(args.spec).stem, measure(Path(args.spec)))]
    with tempfile.TemporaryDirectory() as scratch:
        rows.append(("tiny sampler build (as in the tests)", measure(tiny_spec(Path(scratch)))))

    print("| build | samples | report in the build | share of the build | post-process stage | "
          "drawing again: wall / CPU | on disk: page + images + sounds + facts | goal |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in rows:
        s = m["sizes"]
        mb = sum(s.values()) / 2**20
        report = m["stages"].get("report", float("nan"))
        goal = "≤ 10 s, ≤ 5 MB" if name == "cat_flute" else "negligible in the tests"
        print(f"| {name} | {m['samples']} | {report:.2f} s | {100 * report / m['total']:.1f} % of "
              f"{m['total']:.1f} s | {m['stages'].get('samples', float('nan')):.1f} s | "
              f"{m['redraw_wall']:.2f} s / {m['redraw_cpu']:.2f} s | {mb:.2f} MB = {s['page'] / 2**10:.0f} + "
              f"{s['images'] / 2**10:.0f} + {s['sounds'] / 2**10:.0f} + {s['facts'] / 2**10:.0f} KiB | {goal} |")


if __name__ == "__main__":
    main()
