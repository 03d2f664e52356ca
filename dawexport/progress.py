"""Progress for long work: stage lines and bars (steps, loss, ETA) on stderr, silenced with quiet=True.

    >>> progress = Progress(quiet=True)
    >>> progress.stage("render", "48 takes")
    >>> progress.warn("2 takes are off-pitch")
    >>> [name for name, _ in progress.stages], progress.warnings
    (['render'], ['2 takes are off-pitch'])

Stages and warnings are remembered (quiet or not): the build report shows where the time went and what was
warned about.
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
        self.stages: list[tuple[str, float]] = []     # (name, time.monotonic() when it began)
        self.warnings: list[str] = []

    def stage(self, name: str, detail: str = "") -> None:
        self.stages.append((name, time.monotonic()))
        if not self.quiet:
            elapsed = time.monotonic() - self._start
            print(f"[{elapsed:6.1f}s] {name}" + (f": {detail}" if detail else ""), file=self.stream, flush=True)

    def info(self, message: str) -> None:
        if not self.quiet:
            print(f"         {message}", file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        """Something the musician should know; kept for the build report even when quiet."""
        self.warnings.append(message)
        if not self.quiet:
            print(f"warning: {message}", file=self.stream, flush=True)

    def bar(self, iterable=None, *, total=None, desc: str = "", unit: str = "it"):
        """A tqdm bar (ETA, rate); with quiet=True it still counts but prints nothing."""
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=self.stream, disable=self.quiet,
                    leave=False, dynamic_ncols=True, mininterval=0.5)


SILENT = Progress(quiet=True)
