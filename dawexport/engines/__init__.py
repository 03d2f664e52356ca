"""Engine registry: one module or package per model family. Adding an engine is adding its package (a class
deriving `base.Engine`) and one line in `ENGINES`; what engines share lives in `common/`.

    >>> engine_class("sampler").capabilities.trainable
    False
    >>> sorted(ENGINES)
    ['conceptor', 'ddsp', 'lstm_vae', 'sampler', 'samplernn', 'wavenet']
"""
from __future__ import annotations

import importlib
import os

# Torch's OpenMP threads spin while they wait; with another busy process on a small machine a training step
# ran 50-100x slower. Sleeping waiters cost a few percent when idle. The value is read once, when torch
# starts. Python runs this file before any module inside the package, so before any engine imports torch;
# this is the only place it is set, and a user's own setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pydantic import ValidationError

from ..errors import SpecError, format_validation_error
from .base import (Capabilities, Clip, Corpus, Engine, EngineSettings, GrainRequest, RemovedSettingError,
                   RenderRequest, without_removed)

# name -> "module:Class"; modules are imported on first use so torch loads only when an engine needs it.
ENGINES: dict[str, str] = {
    "sampler": "dawexport.engines.sampler:SamplerEngine",
    "conceptor": "dawexport.engines.conceptor:ConceptorEngine",
    "ddsp": "dawexport.engines.ddsp:DDSPEngine",
    "wavenet": "dawexport.engines.wavenet:WaveNetEngine",
    "samplernn": "dawexport.engines.samplernn:SampleRNNEngine",
    "lstm_vae": "dawexport.engines.lstm_vae:LSTMVAEEngine",
}


def engine_class(name: str) -> type[Engine]:
    if name not in ENGINES:
        raise KeyError(name)
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def engine_rate(spec) -> int:
    """The model's sample rate for a spec: the spec's, else the engine's default, else the output rate."""
    caps = engine_class(spec.engine.name).capabilities
    return spec.engine.sample_rate or caps.default_rate or spec.output.sample_rate


def validate_engine(spec, file: str) -> None:
    """Check the engine name, its settings and its rate; raise SpecError naming the key."""
    name = spec.engine.name
    if name not in ENGINES:
        raise SpecError(f"unknown engine {name!r}", file=file, key="engine.name",
                        fix=f"use one of: {', '.join(sorted(ENGINES))}")
    cls = engine_class(name)
    try:
        without_removed(spec.engine.settings, cls.Settings.removed)
    except RemovedSettingError as error:
        raise SpecError(str(error), file=file, key=f"engine.settings.{error.key}", fix=error.fix) from None
    try:
        cls.Settings.model_validate(spec.engine.settings)
    except ValidationError as error:
        raise format_validation_error(error, cls.Settings, file, prefix="engine.settings") from None
    rates = cls.capabilities.native_rates
    rate = engine_rate(spec)
    if rates is not None and rate not in rates:
        raise SpecError(f"engine {name!r} cannot run at {rate} Hz", file=file, key="engine.sample_rate",
                        fix=f"use one of: {', '.join(map(str, rates))}")
    if len(spec.blend_corners) > 1 and not cls.capabilities.blendable:
        raise SpecError(f"engine {name!r} cannot blend sources", file=file, key="blend",
                        fix="remove the blend section or choose another engine")


def make_engine(spec) -> Engine:
    cls = engine_class(spec.engine.name)
    settings = cls.Settings.model_validate(spec.engine.settings)
    engine = cls(settings, sample_rate=engine_rate(spec), seed=spec.engine.seed, device=spec.engine.device)
    engine.output_rate = spec.output.sample_rate
    return engine


__all__ = ["Capabilities", "Clip", "Corpus", "Engine", "EngineSettings", "GrainRequest", "RenderRequest", "ENGINES",
           "engine_class", "engine_rate", "make_engine", "validate_engine"]
