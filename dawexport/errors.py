"""One error family for everything a user can get wrong.

Every message names the file, the key (where there is one) and the fix; the CLI prints
``str(error)`` without a traceback and exits non-zero.

    >>> raise SpecError("keys.low must be a note name or MIDI number", file="cat.yaml",
    ...                 key="keys.low", fix="write e.g. C2, Eb3 or 36")
"""
from __future__ import annotations


class DawexportError(Exception):
    """Base of every error dawexport reports to a user."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 fix: str | None = None):
        self.message = message
        self.file = None if file is None else str(file)
        self.key = key
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.key:
            where.append(f"key '{self.key}'")
        head = ": ".join([", ".join(where), self.message]) if where else self.message
        return f"{head}\n  fix: {self.fix}" if self.fix else head


class SpecError(DawexportError):
    """The instrument spec (YAML) is malformed or asks for something impossible."""


class SourceError(DawexportError):
    """A source sound is missing, unreadable, empty, silent or not finite."""


class EngineError(DawexportError):
    """A model engine cannot train, load or render with the given settings."""


class ExportError(DawexportError):
    """An exporter cannot write its format, or the output folder is not ours to replace."""
