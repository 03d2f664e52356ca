"""Reading and validating a spec: the checks that need the engine and exporter registries.

    >>> spec = load_spec("instruments/cat_flute.yaml", check_sources=False)
    >>> spec.name, spec.keys.low, [s for s in spec.sources]
    ('cat_flute', 48, ['cat', 'flute'])

Every problem is reported as a `SpecError` naming the file, the key path and what is allowed.
Engine settings are validated by the engine's own `Settings` model (see `dawexport.engines`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import SpecError, format_validation_error
from ..export import EXPORTERS
from .reader import read_spec_yaml
from .schema import InstrumentSpec


def parse_spec(data: Any, spec_path: Path | str | None = None) -> InstrumentSpec:
    """Validate already-parsed YAML data. Raises SpecError."""
    file = str(spec_path) if spec_path else "<spec>"
    if not isinstance(data, dict):
        raise SpecError("the spec must be a YAML mapping (name:, sources:, ...)", file=file,
                        fix="start from instruments/cat_flute.yaml")
    try:
        spec = InstrumentSpec.model_validate({**data, "spec_path": Path(spec_path) if spec_path else None},
                                            context={"formats": EXPORTERS})
    except ValidationError as error:
        raise format_validation_error(error, InstrumentSpec, file) from None
    from ..engines import validate_engine
    validate_engine(spec, file)
    _check_kit(spec, file)
    _check_grain_features(spec, file)
    _check_texture(spec, file)
    return spec


def _check_kit(spec: InstrumentSpec, file: str) -> None:
    """A kit's sources exist, and nothing in the spec is set that a kit would silently ignore."""
    if spec.kit is None:
        return
    for source in spec.kit.sources or []:
        if source not in spec.sources:
            raise SpecError(f"{source!r} is not a source; sources are: {', '.join(spec.sources)}", file=file,
                            key="kit.sources", fix="name sources from the sources section")
    ignored = [key for key in ("blend", "keys", "note", "loop") if key in spec.model_fields_set]
    if ignored:
        raise SpecError(f"with kit the instrument is a grain kit, so {' and '.join(ignored)} would do nothing",
                        file=file, key=ignored[0],
                        fix=f"remove {' and '.join(ignored)}: the kit has its own keys (kit.low, kit.grains) and "
                            f"length (kit.length), its pads are one-shots, and wavetables name their own "
                            f"corners")


def _check_grain_features(spec: InstrumentSpec, file: str) -> None:
    """A grain kit and a grain-morph wavetable need an engine that renders grains (Capabilities.grains)."""
    from ..engines import ENGINES, engine_class
    wants = spec.kit is not None or any(t.along == "grains" for t in spec.wavetables)
    if not wants or _has_grains(engine_class, spec.engine.name):
        return
    with_grains = sorted(n for n in ENGINES if _has_grains(engine_class, n))
    fix = f"use an engine that renders grains ({', '.join(with_grains) or 'none is installed'})"
    if spec.kit is not None:
        raise SpecError(f"engine {spec.engine.name!r} cannot render grains, so it cannot make a grain kit",
                        file=file, key="kit", fix=fix + ", or remove the kit section")
    for i, table in enumerate(spec.wavetables):
        if table.along == "grains":
            raise SpecError(f"engine {spec.engine.name!r} cannot render grains, so wavetable {table.name!r} "
                            f"cannot morph between grains", file=file, key=f"wavetables[{i}].along",
                            fix=fix + ", or use along: blend or along: time")


def _check_texture(spec: InstrumentSpec, file: str) -> None:
    """A texture instrument needs an engine that babbles textures, and nothing it would silently ignore;
    a texture wavetable needs a texture instrument."""
    from ..engines import ENGINES, engine_class
    for i, table in enumerate(spec.wavetables):
        if table.along == "texture" and spec.texture is None:
            raise SpecError(f"wavetable {table.name!r} is made from kept textures, but the spec has no texture "
                            f"section", file=file, key=f"wavetables[{i}].along",
                            fix="add a texture: section, or use along: blend or along: time")
        if spec.texture is not None and table.along in ("blend", "time", "grains"):
            raise SpecError(f"a texture instrument's wavetables come from its textures, not along "
                            f"{table.along}", file=file, key=f"wavetables[{i}].along", fix="use along: texture")
    if spec.texture is None:
        try:
            caps = engine_class(spec.engine.name).capabilities
        except Exception:  # noqa: BLE001 - validate_engine has reported an engine that cannot be imported
            return
        if caps.textures and not caps.pitched:
            raise SpecError(f"engine {spec.engine.name!r} makes textures, not notes", file=file, key="texture",
                            fix="add a texture: section (low, count, length; see instruments/textures.yaml), or "
                                "use a pitched engine (ddsp, sampler)")
        return
    if spec.kit is not None:
        raise SpecError("a spec is a grain kit or a texture instrument, not both", file=file, key="texture",
                        fix="remove the kit section or the texture section")
    try:
        makes_textures = bool(engine_class(spec.engine.name).capabilities.textures)
    except Exception:  # noqa: BLE001 - an engine that cannot be imported makes none
        makes_textures = False
    if not makes_textures:
        names = []
        for name in sorted(ENGINES):
            try:
                if engine_class(name).capabilities.textures:
                    names.append(name)
            except Exception:  # noqa: BLE001
                continue
        raise SpecError(f"engine {spec.engine.name!r} cannot generate textures", file=file, key="engine.name",
                        fix=f"use a texture engine ({', '.join(names)}) or remove the texture section")
    ignored = [key for key in ("blend", "keys", "note", "loop") if key in spec.model_fields_set]
    if ignored:
        raise SpecError(f"with texture the instrument is a texture kit, so {' and '.join(ignored)} would do "
                        f"nothing", file=file, key=ignored[0],
                        fix=f"remove {' and '.join(ignored)}: the texture section has its own keys "
                            f"(texture.low, texture.count), length (texture.length) and looping (texture.loop)")
    if spec.round_robins != 1:
        raise SpecError("a texture pad has one texture: round robins would repeat it", file=file,
                        key="round_robins", fix="remove round_robins (or set it to 1); raise texture.count "
                                                "for more textures")


def _has_grains(engine_class, name: str) -> bool:
    try:
        return bool(engine_class(name).capabilities.grains)
    except Exception:  # noqa: BLE001 - best effort, for a hint: an engine that cannot be imported has none
        return False


def load_spec(path: Path | str, *, check_sources: bool = True) -> InstrumentSpec:
    """Read, validate and (by default) check that every source sound is readable, finite and not silent."""
    path = Path(path)
    data = read_spec_yaml(path)
    spec = parse_spec(data, path)
    if check_sources:
        check_source_files(spec)
    return spec


def check_source_files(spec: InstrumentSpec) -> None:
    """Open every source once so that bad audio is reported before any work starts."""
    from ..audio.io import read_audio
    for name, recordings in spec.sources.items():
        for i, recording in enumerate(recordings):
            key = f"sources.{name}" + (f"[{i}]" if len(recordings) > 1 else "")
            read_audio(spec.source_path(recording), key=key)

