"""Atomic publishing of an instrument folder: all of it appears at once, or nothing changes.

    with Staging(Path("build/cat_flute")) as staging:
        write_everything(staging.path)
        staging.publish()

Work happens in a hidden sibling folder. Publishing swaps it in with renames on the same filesystem.
A folder that exists already is replaced only if dawexport made it (it has our manifest) and it holds no
file that dawexport did not write; otherwise the build stops before any work, naming what is in the way.
If anything fails before `publish()`, the staging folder is removed and the old folder is untouched.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .errors import ExportError

MANIFEST = ".dawexport-manifest.json"


def check_target(target: Path) -> None:
    """Raise ExportError unless `target` is absent or a dawexport build holding only its own files."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ExportError("the output path exists and is not a folder", file=str(target),
                          fix="set output.dir in the spec to another place, or move that file away")
    manifest = target / MANIFEST
    if not manifest.exists():
        if any(target.iterdir()):
            raise ExportError("the output folder exists and was not made by dawexport; it will not be touched",
                              file=str(target), fix="set output.dir in the spec to another place, or move "
                              "that folder away")
        return
    try:
        owned = set(json.loads(manifest.read_text())["files"]) | {MANIFEST}
    except (OSError, ValueError, KeyError):
        raise ExportError("the output folder's manifest is unreadable, so dawexport cannot tell its files "
                          "from yours", file=str(manifest), fix="move the folder away and build again") from None
    foreign = sorted(p.relative_to(target).as_posix() for p in target.rglob("*")
                     if p.is_file() and p.relative_to(target).as_posix() not in owned)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ExportError(f"the output folder holds files dawexport did not write: {shown}", file=str(target),
                          fix="move those files out of the folder (a rebuild replaces the whole folder)")


class Staging:
    """A hidden folder beside `target` that becomes `target` on publish()."""

    def __init__(self, target: Path):
        self.target = Path(target)
        self.path = self.target.parent / f".{self.target.name}.staging-{os.getpid()}"
        self.published = False

    def __enter__(self) -> "Staging":
        self.target.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.target.parent.glob(f".{self.target.name}.staging-*"):
            if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
                shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir()
        return self

    def publish(self) -> None:
        check_target(self.target)
        old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
        if self.target.exists():
            os.replace(self.target, old)
        try:
            os.replace(self.path, self.target)
        except OSError:
            if old.exists():
                os.replace(old, self.target)
            raise
        shutil.rmtree(old, ignore_errors=True)
        self.published = True

    def __exit__(self, *exc) -> None:
        if not self.published:
            shutil.rmtree(self.path, ignore_errors=True)


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
