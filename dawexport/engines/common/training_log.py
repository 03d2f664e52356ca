"""The training log: one JSON line per training step and per validation, beside the checkpoints while a model
trains and in the model cache once it is done (the build report draws the training curve from it).

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> log = TrainingLog(folder / TRAINING_LOG, resumed_from=None)
    >>> log.validation(0, 1.25, 0.0); log.step(1, 1.0, 1e-3, 0.1); log.close()
    >>> [sorted(e) for e in read_training_log(folder / TRAINING_LOG)]
    [['seconds', 'step', 'val'], ['loss', 'lr', 'seconds', 'step']]

No torch here: reading a log must not cost a torch import.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

TRAINING_LOG = "training_log.jsonl"


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


class TrainingLog:
    """The per-step record of a run in `workdir/training_log.jsonl`, kept in step with the checkpoint: a
    resumed run first drops the lines after its checkpoint's step (those steps are taken again)."""

    def __init__(self, path: Path, resumed_from: int | None):
        self.path = Path(path)
        kept = [e for e in read_training_log(self.path) if e["step"] <= resumed_from] if resumed_from else []
        self._file = self.path.open("w")
        for entry in kept:
            self._file.write(json.dumps(entry) + "\n")

    def step(self, step: int, loss: float, lr: float, seconds: float) -> None:
        self._file.write(json.dumps({"step": step, "loss": _finite_or_none(loss), "lr": lr,
                                     "seconds": round(seconds, 3)}) + "\n")

    def validation(self, step: int, val: float, seconds: float) -> None:
        self._file.write(json.dumps({"step": step, "val": _finite_or_none(val), "seconds": round(seconds, 3)}) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_training_log(path) -> list[dict]:
    """The entries of a training log, in order; a missing file is empty and a torn or foreign line is skipped
    (a run killed mid-write leaves half a line; the log is a record, never worth failing a build for).

        >>> read_training_log("no/such/training_log.jsonl")
        []
    """
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int):
            entries.append(entry)
    return entries
