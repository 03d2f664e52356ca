"""Atomic publishing of an instrument folder: all of it appears at once, or nothing changes.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "cat_flute"
    >>> with Staging(target, spec="/home/me/cat_flute.yaml") as staging:
    ...     _ = (staging.path / MANIFEST).write_text('{"files": [], "spec": "/home/me/cat_flute.yaml"}')
    ...     staging.publish()
    >>> [p.name for p in target.parent.iterdir()]
    ['cat_flute']

Work happens in a hidden sibling folder. Publishing swaps it in with one atomic exchange of the two
folders where the filesystem allows it (Linux `renameat2(RENAME_EXCHANGE)`), else with two renames.
A folder that exists already is replaced only if dawexport made it (it has our manifest), from the same
spec, and it holds nothing dawexport did not write (no extra file, folder or link); otherwise the build
stops before any work, naming what is in the way. If anything fails before `publish()`, the staging
folder is removed and the old folder is untouched. What a killed build leaves behind (a staging folder,
or the old folder between the two renames) is rolled back or removed by the next build: `recover()`.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
from pathlib import Path

from .errors import ExportError

MANIFEST = ".dawexport-manifest.json"


def check_target(target: Path, *, spec: str | None = None) -> None:
    """Raise ExportError unless `target` is absent or a dawexport build (of `spec`, when both are known)
    holding only its own files."""
    target = Path(target)
    if target.is_symlink() and not target.exists():
        raise ExportError("the output path is a symbolic link to nothing", file=str(target),
                          fix="remove the link, or point it at a folder")
    if not target.exists():
        return
    if not target.is_dir():
        raise ExportError("the output path exists and is not a folder", file=str(target),
                          fix="set output.dir in the spec to another place, or move that file away")
    if target.is_mount():
        raise ExportError("the output folder is a mount point, which cannot be replaced in one step",
                          file=str(target), fix=f"set output.dir to a folder inside it, e.g. {target / 'build'}")
    manifest = target / MANIFEST
    if not manifest.is_file():
        if any(target.iterdir()):
            raise ExportError("the output folder exists and was not made by dawexport; it will not be touched",
                              file=str(target), fix="set output.dir in the spec to another place, or move "
                              "that folder away")
        return
    try:
        record = json.loads(manifest.read_text())
        owned = set(record["files"]) | {MANIFEST}
    except (OSError, ValueError, KeyError, TypeError):
        raise ExportError("the output folder's manifest is unreadable, so dawexport cannot tell its files "
                          "from yours", file=str(manifest), fix="move the folder away and build again") from None
    built_from = record.get("spec") if isinstance(record, dict) else None
    if spec is not None and built_from is not None and built_from != str(spec):
        raise ExportError(f"the output folder holds an instrument built from another spec ({built_from}); "
                          f"it will not be replaced", file=str(target),
                          fix="give one of the two specs another name or output.dir, or move that folder away")
    foreign = foreign_entries(target, owned)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ExportError(f"the output folder holds things dawexport did not write: {shown}", file=str(target),
                          fix="move them out of the folder (a rebuild replaces the whole folder)")


def foreign_entries(folder: Path, owned: set[str]) -> list[str]:
    """Everything under `folder` that dawexport did not write, as relative paths: files not in `owned`,
    folders holding none of `owned`, and every link, FIFO or device (dawexport writes none)."""
    owned_folders = {parent.as_posix() for f in owned for parent in Path(f).parents}
    foreign = []
    for root, dirs, files in os.walk(folder):           # links to folders are listed, never followed
        base = Path(root).relative_to(folder)
        inside = []
        for name in dirs:
            rel = (base / name).as_posix()
            if (Path(root) / name).is_symlink():
                foreign.append(rel)
            elif rel not in owned_folders:
                foreign.append(rel + "/")
            else:
                inside.append(name)
        dirs[:] = inside
        for name in files:
            path, rel = Path(root) / name, (base / name).as_posix()
            if path.is_symlink() or not path.is_file() or rel not in owned:
                foreign.append(rel)
    return sorted(foreign)


def recover(target: Path) -> list[str]:
    """Undo what a killed build left beside `target`; returns what it did, one line each.

    A build killed between the two renames of a publish left the old folder as `.<name>.old-PID` and no
    `target`: the old folder is put back. Leftovers of dead processes otherwise are removed.
    """
    target = Path(target)
    done = []
    if not target.parent.is_dir():
        return done
    for old in sorted(target.parent.glob(f".{target.name}.old-*")):
        if _pid_alive(old.name.rsplit("-", 1)[-1]):
            continue
        if not os.path.lexists(target) and old.is_dir() and not old.is_symlink():
            os.replace(old, target)
            done.append(f"restored {target} from an interrupted publish")
        else:
            _remove(old)
            done.append(f"removed {old.name} left by an interrupted publish")
    for stale in sorted(target.parent.glob(f".{target.name}.staging-*")):
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            _remove(stale)
            done.append(f"removed {stale.name} left by an interrupted build")
    return done


class Staging:
    """A hidden folder beside `target` that becomes `target` on publish().

    When `target` is a link to a folder, the folder it points at is replaced and the link is kept.
    """

    def __init__(self, target: Path, *, spec: str | None = None):
        target = Path(target)
        self.target = target.resolve() if target.is_symlink() and target.exists() else target
        self.spec = spec
        self.path = self.target.parent / f".{self.target.name}.staging-{os.getpid()}"
        self.published = False

    def __enter__(self) -> "Staging":
        self.target.parent.mkdir(parents=True, exist_ok=True)
        recover(self.target)
        try:                                # a signal here would skip __exit__: clean up ourselves
            _remove(self.path)
            self.path.mkdir()
        except BaseException:
            _remove(self.path)
            raise
        return self

    def publish(self) -> None:
        check_target(self.target, spec=self.spec)
        if self.target.exists() and _exchange(self.path, self.target):
            _remove(self.path)              # now the old folder; a kill here leaves a stale staging folder
        else:
            self._two_renames()
        self.published = True

    def _two_renames(self) -> None:
        old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
        if self.target.exists():
            os.replace(self.target, old)    # a kill between here and the next rename: recover() rolls back
        try:
            os.replace(self.path, self.target)
        except BaseException:
            if old.exists():
                os.replace(old, self.target)
            raise
        _remove(old)

    def __exit__(self, *exc) -> None:
        if not self.published:
            _remove(self.path)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where the system cannot."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False                        # this filesystem or kernel cannot exchange
    raise OSError(code, os.strerror(code), str(b))


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _remove(path: Path) -> None:
    """Remove a folder, file or link (never what a link points at)."""
    if os.path.islink(path) or os.path.isfile(path):
        Path(path).unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
