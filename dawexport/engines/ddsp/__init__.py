"""The `ddsp` engine: a harmonic-plus-noise instrument learned from the user's own sounds (see `engine`).

    >>> DDSPEngine.name, DDSPEngine.capabilities.default_rate
    ('ddsp', 44100)
"""
from .engine import DDSPEngine
from .settings import DDSPSettings

__all__ = ["DDSPEngine", "DDSPSettings"]
