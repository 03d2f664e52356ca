"""The instrument spec: one YAML file that describes an instrument, validated before any work starts.

`schema` holds the pydantic models, `validate` the checks that need the engine and exporter registries
(and `load_spec`/`parse_spec`).
"""
from ..errors import format_validation_error
from .schema import (BIT_DEPTHS, DEFAULT_FORMATS, LOOP_MODES, NORMALISE_POLICIES, OUTPUT_RATES, STEREO_MODES,
                     BlendSpec, EngineSpec, InstrumentSpec, KeysSpec, KitSpec, NoteSpec, OutputSpec, Recording,
                     TextureSpec, WavetableSpec)
from .validate import check_source_files, load_spec, parse_spec

__all__ = ["BIT_DEPTHS", "DEFAULT_FORMATS", "LOOP_MODES", "NORMALISE_POLICIES", "OUTPUT_RATES", "STEREO_MODES",
           "BlendSpec", "EngineSpec", "InstrumentSpec", "KeysSpec", "KitSpec", "NoteSpec", "OutputSpec",
           "Recording", "TextureSpec", "WavetableSpec", "check_source_files", "format_validation_error", "load_spec",
           "parse_spec"]
