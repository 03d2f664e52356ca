"""The `samplernn` texture engine: a 2- or 3-tier SampleRNN over 8-bit mu-law audio (see engine.py)."""
from .engine import SampleRNNEngine
from .settings import SampleRNNSettings

__all__ = ["SampleRNNEngine", "SampleRNNSettings"]
