"""The build report: report.html in every build folder, to see and hear an instrument before a DAW.

    write_build_report(staging, spec, engine, corpus, instrument, rendered, progress, first_stage=0,
                       model_dir=None, trained=False)     # during a build: -> the files it wrote
    remake_report(Path("build/cat_flute"))                # `dawexport report build/cat_flute` -> report.html

A build keeps what the page tells in report/build.json (facts.py) and a listening copy of each source
(report/sources/); the page itself (page.py, templates/report/) is drawn from those and the folder's own
samples and wavetables, so it can be drawn again from the folder alone.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from ..errors import ExportError
from ..publish import MANIFEST, Staging, check_target
from .facts import FACTS, collect, read_facts, write_facts
from .page import PAGE, write_page
from .sound import write_preview

# Files of a build that say how that run went (times, memory): they differ from one build to the next even
# when every sound is identical.
RUN_SPECIFIC = (PAGE, FACTS)


def write_build_report(folder: Path, spec, engine, corpus, instrument, rendered, progress, *, first_stage: int,
                       model_dir: Path | None, trained: bool) -> list[str]:
    """Write report/build.json, the sources' listening copies and the page into a build's staging folder."""
    progress.stage("report", "report.html")
    folder = Path(folder)
    facts = collect(spec, engine, corpus, instrument, rendered, progress, first_stage, model_dir, trained,
                    time.monotonic())
    files: list[str] = []
    for source in facts["sources"]:
        recording = spec.sources[source["name"]][source["take"]]
        stem = re.sub(r"[^A-Za-z0-9._+-]+", "_", source["name"]) + (f"_{source['take'] + 1}" if source["takes"] > 1
                                                                     else "")
        while f"report/sources/{stem}.wav" in files:      # two names that differ only in odd characters
            stem += "_"
        preview = f"report/sources/{stem}.wav"
        rate, channels, seconds = write_preview(spec.source_path(recording), folder / preview)
        source.update(preview=preview, sample_rate=rate, channels=channels, seconds=round(seconds, 3))
        files.append(preview)
    files += write_page(folder, facts, count_own_time=True)
    files.append(write_facts(folder, facts))
    return files


def remake_report(folder: Path) -> Path:
    """Draw a build folder's report again (after a dawexport update, say) and publish the folder atomically:
    the old page stays until the new one is complete."""
    target = Path(folder)
    check_target(target)
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        raise ExportError("not a dawexport build folder (no readable manifest)", file=str(target),
                          fix="give the folder a build wrote, e.g. build/cat_flute") from None
    facts = read_facts(target)
    drawn = {PAGE} | {f for f in manifest["files"] if f.startswith("report/")
                      and f != FACTS and not f.startswith("report/sources/")}
    with Staging(target) as staging:
        kept = [f for f in manifest["files"] if f not in drawn]
        for relative in kept:
            _link_or_copy(target / relative, staging.path / relative)
        files = kept + write_page(staging.path, facts)
        manifest["files"] = sorted(set(files))
        (staging.path / MANIFEST).write_text(json.dumps(manifest, indent=1))
        staging.publish()
    return target / PAGE


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


__all__ = ["PAGE", "RUN_SPECIFIC", "remake_report", "write_build_report"]
