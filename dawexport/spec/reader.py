"""Reading a spec's YAML with bounds, so a hostile or broken file gives a clear error, never a hang.

    >>> read_spec_yaml(Path("instruments/cat_flute.yaml"))["name"]
    'cat_flute'

A spec is small and flat, so the reader refuses what only a hostile or broken file holds: aliases
(`*name`: an "alias bomb" of a few lines expands to gigabytes), nesting deeper than `MAX_DEPTH`, a key
written twice in one mapping (YAML would silently keep the last) and files over `MAX_BYTES`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError

MAX_BYTES = 1 << 20
MAX_DEPTH = 50


class _Refused(yaml.MarkedYAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, duplicate keys or deep nesting."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _Refused(problem="aliases (*name) are not allowed in a spec",
                           problem_mark=self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(problem=f"nested more than {MAX_DEPTH} levels deep",
                               problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:           # an unhashable key: the base class reports it
                continue
            if first is not key_node.start_mark:
                raise _Refused(problem=f"key {key!r} is written twice in one mapping (first at line "
                                       f"{first.line + 1}); YAML would silently keep the last",
                               problem_mark=key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_spec_yaml(path: Path) -> Any:
    """The parsed YAML of a spec file; SpecError naming the file (and line) for anything unreadable."""
    path = Path(path)
    if path.is_dir():
        raise SpecError("is a folder, not a spec file", file=str(path),
                        fix="give the path of an instrument YAML, e.g. instruments/cat_flute.yaml")
    if not path.is_file():
        raise SpecError("spec file not found", file=str(path),
                        fix="give the path of an instrument YAML, e.g. instruments/cat_flute.yaml")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise SpecError(f"cannot read the spec ({error.strerror})", file=str(path),
                        fix="check the file's permissions") from None
    if len(raw) > MAX_BYTES:
        raise SpecError(f"the spec is larger than {MAX_BYTES >> 10} KiB; a spec is a short YAML file",
                        file=str(path), fix="give the instrument's YAML spec, not a sound or a data file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("not a text file", file=str(path), fix="save the spec as UTF-8 YAML") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        fix = ("write the value out in full instead of an alias" if "alias" in str(error) else
               "remove one of the two" if "twice" in str(error) else "check indentation and colons near that line")
        raise SpecError(f"not valid YAML{where}: {getattr(error, 'problem', error)}", file=str(path),
                        fix=fix) from None
