"""What hostile or huge input costs, before and after the limits of issue 13; prints markdown tables.

    python benchmarks/bench_hostile_input.py          # ~1-2 minutes on a 2-core CPU

1. Repitching a note from a long recording: the whole recording (as the sampler did) against only the
   frames the note plays (`repitch(frames=)`), same data, same run; the ratio is what matters.
2. Refusing hostile input: wall time and peak memory of `dawexport validate` on a YAML alias bomb and on a
   WAV whose header says 1 Hz, each in a fresh process (peak RSS from the kernel).
"""
from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dawexport.audio.repitch import repitch  # noqa: E402


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def repitch_table() -> None:
    sr, note_s = 44100, 0.6
    frames = int(note_s * sr)
    print("| recording | whole recording (s) | only the note (s) | ratio |")
    print("|---|---|---|---|")
    for minutes in (0.5, 2.0):
        x = np.sin(np.arange(int(minutes * 60 * sr)) * 0.05).astype(np.float32)
        whole = best_of(lambda: repitch(x, 2 ** (7 / 12))[:frames], repeats=1)
        part = best_of(lambda: repitch(x, 2 ** (7 / 12), frames=frames))
        print(f"| {minutes:g} min at {sr} Hz, a {note_s} s note a fifth up | {whole:.2f} | {part:.4f} | "
              f"{whole / part:.0f}x |")


BOMB = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, n in zip("abcdefgh", "bcdefghi")) + \
    "name: bomb\nsources: {x: *i}\n"


def refuse_table() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "bomb.yaml").write_text(BOMB)
        sf.write(tmp / "tone.wav", (0.3 * np.sin(np.arange(8 * 44100) * 0.05)).astype(np.float32), 44100)
        data = bytearray((tmp / "tone.wav").read_bytes())
        data[24:28], data[28:32] = (1).to_bytes(4, "little"), (4).to_bytes(4, "little")
        (tmp / "tone.wav").write_bytes(bytes(data))
        (tmp / "hz.yaml").write_text("name: hz\nsources: {tone: tone.wav}\n")
        print("| hostile input | exit | wall (s) | peak RSS (MiB) | message |")
        print("|---|---|---|---|---|")
        for label, spec in (("YAML alias bomb (9^9 strings)", "bomb.yaml"), ("WAV header saying 1 Hz", "hz.yaml")):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "dawexport", "validate", spec], cwd=tmp,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            message = proc.stderr.strip().splitlines()[0].split(": ", 2)[-1][:70]
            print(f"| {label} | {proc.returncode} | {wall:.1f} | {peak:.0f} | {message} |")


if __name__ == "__main__":
    repitch_table()
    print()
    refuse_table()
