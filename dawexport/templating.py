"""Jinja templates from templates/, found both in a source checkout and in an installed wheel.

    render_template("sfz/instrument.sfz.j2", instrument=inst)
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2


def templates_dir() -> Path:
    """templates/ packaged inside dawexport (wheel), else the repository's top-level templates/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("dawexport's templates/ folder is missing from this installation; reinstall dawexport")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render_template(name: str, **context) -> str:
    return environment().get_template(name).render(**context)
