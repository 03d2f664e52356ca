"""The `wavenet` engine: NSynth's WaveNet autoencoder trained on the user's sounds (see `engine`).

    >>> WaveNetEngine.name, WaveNetEngine.capabilities.trainable
    ('wavenet', True)
"""
from .engine import WaveNetEngine
from .settings import WaveNetSettings

__all__ = ["WaveNetEngine", "WaveNetSettings"]
