"""Build many specs in one go: shared caches, one progress display, a summary table; no failure stops the rest.

    $ dawexport build instruments/*.yaml                    # one after another, here
    $ dawexport build instruments/*.yaml --cluster ray      # on Ray (a local one, or $RAY_ADDRESS)

    >>> outcomes = [Outcome("a.yaml", "built", 12.5, "build/a (40 files)"),
    ...             Outcome("b.yaml", "failed", 0.1, "sources.cat: file not found", bad_input=True)]
    >>> print(summary_table(outcomes))
    spec    result  time   detail
    a.yaml  built   12.5s  build/a (40 files)
    b.yaml  failed   0.1s  sources.cat: file not found
    1 built, 0 reused, 1 failed
    >>> exit_code(outcomes)
    2
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .errors import DawexportError
from .progress import Progress

MAX_PARALLEL_SPECS = 16    # specs whose driver-side work (sources, plan, export) overlaps on a cluster


@dataclass(frozen=True)
class Outcome:
    """What became of one spec: `built`, `reused` (already up to date) or `failed` (detail = the reason)."""
    spec: str
    status: str
    seconds: float
    detail: str
    bad_input: bool = False    # failed on bad input (a DawexportError with exit code 2), not on the build


def exit_code(outcomes: list[Outcome]) -> int:
    """0 when every spec was built or reused; 2 when the failures are all bad input; 1 otherwise (as `main`)."""
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return 0
    return 2 if all(o.bad_input for o in failed) else 1


def summary_table(outcomes: list[Outcome]) -> str:
    """A plain table, one row per spec, and a count line."""
    rows = [("spec", "result", "time", "detail")] + [(o.spec, o.status, f"{o.seconds:.1f}s", o.detail)
                                                     for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
    lines[0] = f"{'spec':<{widths[0]}}  {'result':<{widths[1]}}  {'time':<{widths[2]}}  detail"
    count = {s: sum(o.status == s for o in outcomes) for s in ("built", "reused", "failed")}
    return "\n".join(lines + [f"{count['built']} built, {count['reused']} reused, {count['failed']} failed"])


class SpecProgress(Progress):
    """One spec's stage lines, prefixed with its name, printed above the batch's progress bar."""

    def __init__(self, name: str, quiet: bool, stream, bars: bool):
        super().__init__(quiet=quiet, stream=stream)
        self.name = name
        self.bars = bars

    def stage(self, name: str, detail: str = "") -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self._start
            tqdm.write(f"[{elapsed:6.1f}s] {self.name} · {name}" + (f": {detail}" if detail else ""),
                       file=self.stream)

    def info(self, message: str) -> None:
        if not self.quiet:
            tqdm.write(f"         {self.name} · {message}", file=self.stream)

    def bar(self, iterable=None, *, total=None, desc: str = "", unit: str = "it"):
        """Bars only when one spec builds at a time; with many at once the batch's bar is the display."""
        return tqdm(iterable, total=total, desc=f"{self.name} {desc}", unit=unit, file=self.stream,
                    disable=self.quiet or not self.bars, leave=False, dynamic_ncols=True, mininterval=0.5)


@contextmanager
def _cache_env(cache: Path | None):
    """Point the pipeline's caches at `cache` for this batch (and back afterwards)."""
    from .pipeline import CACHE_ENV
    if cache is None:
        yield
        return
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(Path(cache).expanduser().resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = before


def build_many(paths: list, *, force: bool = False, quiet: bool = False, cluster: str | None = None,
               cache: Path | None = None, stream=None, num_cpus: int | None = None) -> list[Outcome]:
    """Build every spec (in the order given) and say what became of each; raises only on Ctrl-C.

    `cluster`: None builds here, one spec after another; "ray" or "ray://HOST:PORT" hands the work to Ray
    and overlaps the specs. `cache`: one cache folder for every spec (on a cluster: storage all nodes see)."""
    stream = stream or sys.stderr
    names = [str(p) for p in paths]
    outcomes: dict[int, Outcome] = {}
    with _cache_env(cache), tqdm(total=len(names), desc="specs", unit="spec", file=stream, disable=quiet,
                                 dynamic_ncols=True, position=0) as overall:
        session = nullcontext(None)
        if cluster is not None:
            from .cluster import ray_session
            session = ray_session(cluster, cache=cache, num_cpus=num_cpus,
                                  progress=SpecProgress("batch", quiet, stream, bars=False))
        try:
            with session as stages:
                jobs = _claim_targets(names)
                parallel = stages is not None and len(names) > 1

                def one(index: int) -> None:
                    outcomes[index] = jobs[index] or _build_one(names[index], force=force, stages=stages,
                                                                progress=SpecProgress(Path(names[index]).stem,
                                                                                      quiet, stream,
                                                                                      bars=not parallel))
                    overall.update(1)
                    overall.set_postfix_str(_counts(outcomes.values()))

                if parallel:
                    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_SPECS, len(names)))
                    try:
                        for future in [pool.submit(one, index) for index in range(len(names))]:
                            future.result()
                    finally:     # on Ctrl-C: drop the specs not started; leaving the session stops Ray's tasks
                        pool.shutdown(wait=False, cancel_futures=True)
                else:
                    for index in range(len(names)):
                        one(index)
        except DawexportError as error:    # the cluster itself could not be used: every spec fails with it
            for index, name in enumerate(names):
                outcomes.setdefault(index, Outcome(name, "failed", 0.0, str(error), bad_input=True))
    return [outcomes[i] for i in range(len(names))]


def _counts(outcomes) -> str:
    statuses = [o.status for o in outcomes]
    return ", ".join(f"{statuses.count(s)} {s}" for s in ("built", "reused", "failed") if s in statuses)


def _claim_targets(names: list[str]) -> list[Outcome | None]:
    """A failed Outcome for each spec whose output folder an earlier spec of the batch already writes."""
    from .spec import load_spec
    claimed: dict[Path, str] = {}
    jobs: list[Outcome | None] = []
    for name in names:
        try:
            target = load_spec(Path(name).resolve()).output_dir().resolve()
        except DawexportError:
            jobs.append(None)        # its build reports the problem
            continue
        if target in claimed:
            jobs.append(Outcome(name, "failed", 0.0, f"writes the same folder {target} as {claimed[target]}; "
                                "give it another output.dir", bad_input=True))
        else:
            claimed[target] = name
            jobs.append(None)
    return jobs


def _build_one(name: str, *, force: bool, stages, progress: Progress) -> Outcome:
    from .pipeline import HERE, build
    start = time.monotonic()
    try:
        result = build(Path(name).resolve(), force=force, progress=progress, stages=stages or HERE)
    except DawexportError as error:    # a task's error comes back from Ray wrapped; its cause reads better
        cause = getattr(error, "cause", None) or error
        return Outcome(name, "failed", time.monotonic() - start, str(cause),
                       bad_input=getattr(cause, "exit_code", 2) == 2)
    except Exception as error:  # noqa: BLE001 — one spec's bug must not stop the others
        if os.environ.get("DAWEXPORT_DEBUG"):
            progress.info("".join(traceback.format_exception(error)).rstrip())
        return Outcome(name, "failed", time.monotonic() - start, f"{type(error).__name__}: {error}")
    seconds = time.monotonic() - start
    if result.reused:
        return Outcome(name, "reused", seconds, f"{_shown(result.folder)} is up to date")
    return Outcome(name, "built", seconds, f"{_shown(result.folder)} ({len(result.files)} files"
                   + (", trained" if result.trained else "") + ")")


def _shown(folder: Path) -> str:
    try:
        return str(Path(folder).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(folder)
