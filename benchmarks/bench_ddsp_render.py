"""Render speed of the `ddsp` engine on the cat_flute grid, against `sampler` in the same run, in CPU time.

    python benchmarks/bench_ddsp_render.py            # prints a markdown table (about a minute of CPU)

Rendering costs the same whatever the weights, so the model here trains for one step (no augmentation): the
figure is the render of the whole cat_flute grid (3 blend points × 13 zones × 3 layers × 2 channels = 234 takes
of 2.4 s at 44.1 kHz) on one torch thread. It is given per CPU-second (process time), which a busy machine
moves far less than wall time, and as a ratio to the sampler rendering the same requests in the same run.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dawexport.audio.analysis import estimate_pitch  # noqa: E402
from dawexport.audio.resample import resample  # noqa: E402
from dawexport.engines.base import Clip, Corpus, RenderRequest  # noqa: E402
from dawexport.engines.ddsp import DDSPEngine  # noqa: E402
from dawexport.engines.sampler import SamplerEngine  # noqa: E402
from dawexport.progress import SILENT  # noqa: E402

SR = 44100


def corpus() -> Corpus:
    clips = []
    for name, file in (("cat", "cat_meow.flac"), ("flute", "flute.wav")):
        x, sr = sf.read(str(ROOT / "instruments" / "sounds" / file), dtype="float32", always_2d=True)
        for i, channel in enumerate(("L", "R")):
            mono = resample(x[:, min(i, x.shape[1] - 1)], sr, SR).astype(np.float32)
            clips.append(Clip(name, channel, 0, mono, estimate_pitch(mono, SR)))
    return Corpus(SR, ("L", "R"), tuple(clips))


def cpu_render(engine, requests) -> tuple[float, float]:
    """(CPU seconds, seconds of audio) of one render of all requests, after a small warm-up."""
    engine.render(requests[:2])
    start = time.process_time()
    takes = engine.render(requests)
    return time.process_time() - start, sum(len(t) for t in takes) / SR


def main() -> int:
    torch.set_num_threads(1)
    data = corpus()
    ddsp = DDSPEngine(DDSPEngine.Settings(max_steps=1, augment=False, threads=1), sample_rate=SR, device="cpu")
    ddsp.fit(data, Path(tempfile.mkdtemp(prefix="bench_ddsp_render_")))
    sampler = SamplerEngine(SamplerEngine.Settings(), sample_rate=SR)
    sampler.fit(data, Path(tempfile.mkdtemp(prefix="bench_ddsp_render_")), SILENT)
    requests = [RenderRequest((("cat", 1 - b), ("flute", b)), channel, note, velocity, 2.0, 0.4)
                for b in (0.0, 0.5, 1.0) for note in range(48, 85, 3) for velocity in (40, 90, 127)
                for channel in ("L", "R")]
    rows = [(name, *cpu_render(engine, requests)) for name, engine in (("ddsp", ddsp), ("sampler", sampler))]
    print("| engine | takes | CPU s | × real time per CPU-second (1 thread) |")
    print("|---|---|---|---|")
    for name, cpu, audio in rows:
        print(f"| {name} | {len(requests)} | {cpu:.1f} | {audio / cpu:.0f}× |")
    print(f"\nddsp renders {rows[1][1] / rows[0][1]:.2f}× as fast as the sampler (CPU time, same run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
