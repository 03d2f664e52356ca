"""Progress for long work: stage lines and bars (steps, loss, ETA) on stderr, silenced with quiet=True.

    progress = Progress(quiet=False)
    progress.stage("render", "48 takes")
    for batch in progress.bar(batches, total=len(batches), unit="batch"): ...
"""
from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._start = time.monotonic()

    def stage(self, name: str, detail: str = "") -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self._start
            print(f"[{elapsed:6.1f}s] {name}" + (f": {detail}" if detail else ""), file=self.stream, flush=True)

    def info(self, message: str) -> None:
        if not self.quiet:
            print(f"         {message}", file=self.stream, flush=True)

    def bar(self, iterable=None, *, total=None, desc: str = "", unit: str = "it"):
        """A tqdm bar (ETA, rate); with quiet=True it still counts but prints nothing."""
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=self.stream, disable=self.quiet,
                    leave=False, dynamic_ncols=True, mininterval=0.5)


SILENT = Progress(quiet=True)
