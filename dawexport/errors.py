"""One error family for everything a user can get wrong.

Every message names the file, the key (where there is one) and the fix; the CLI prints
``str(error)`` without a traceback and exits with the error's ``exit_code``: 2 for bad input,
1 for a build that could not finish (`BuildError`).

    >>> print(SpecError("keys.low must be a note name or MIDI number", file="cat.yaml",
    ...                 key="keys.low", fix="write e.g. C2, Eb3 or 36"))
    cat.yaml, key 'keys.low': keys.low must be a note name or MIDI number
      fix: write e.g. C2, Eb3 or 36

`format_validation_error` turns pydantic's errors (the spec's and each engine's settings') into one SpecError
naming every bad key and what is allowed:

    >>> from pydantic import BaseModel, ConfigDict, ValidationError
    >>> class Knobs(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    ...     depth: float = 0.5
    >>> try:
    ...     Knobs.model_validate({"dpeth": 1})
    ... except ValidationError as error:
    ...     print(format_validation_error(error, Knobs, "synth.yaml", prefix="engine.settings"))
    synth.yaml: engine.settings.dpeth: unknown key (did you mean 'depth'?); allowed here: depth
      fix: correct the key(s) above; see instruments/cat_flute.yaml for a complete, commented example
"""
from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError


class DawexportError(Exception):
    """Base of every error dawexport reports to a user. `exit_code` is what the CLI exits with."""
    exit_code = 2       # bad input

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


def _key_path(loc: tuple) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
        elif item in ("function-after", "function-before") or str(item).startswith("function-"):
            continue
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed where an unknown key was found, for a 'did you mean' hint."""
    current: Any = model
    for item in loc[:-1]:
        if isinstance(item, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(item)
        if field is None:
            return []
        annotation = field.annotation
        current = next((a for a in getattr(annotation, "__args__", (annotation,))
                        if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None and hasattr(annotation, "__args__"):
            inner = [a for arg in annotation.__args__ for a in getattr(arg, "__args__", (arg,))]
            current = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return list(getattr(current, "model_fields", {})) if current else []


def format_validation_error(error: ValidationError, model: type[BaseModel], file: str,
                            prefix: str = "") -> SpecError:
    """Turn pydantic's errors into one SpecError listing every bad key with what is allowed."""
    lines = []
    first_key = None
    for item in error.errors():
        key = (prefix + "." if prefix else "") + _key_path(item["loc"])
        first_key = first_key or key
        if item["type"] == "extra_forbidden":
            allowed = [k for k in _allowed_keys(model, item["loc"]) if k != "spec_path"]
            hint = difflib.get_close_matches(str(item["loc"][-1]), allowed, n=1)
            message = "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            if allowed:
                message += f"; allowed here: {', '.join(allowed)}"
        elif item["type"] == "missing":
            message = "is required"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if item.get("input") is not None and item["type"] not in ("value_error",):
                message += f" (got {item['input']!r})"
        lines.append(f"{key}: {message}")
    summary = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
    example = {"kit": "conceptor_kit.yaml", "texture": "textures.yaml"}.get(
        (first_key or "").split(".")[0].split("[")[0], "cat_flute.yaml")
    return SpecError(summary, file=file, fix=f"correct the key(s) above; see instruments/{example} "
                     "for a complete, commented example")
class BuildError(DawexportError):
    """The input is fine but the build could not finish: a full disk, a read-only folder, a diverged model."""
    exit_code = 1
