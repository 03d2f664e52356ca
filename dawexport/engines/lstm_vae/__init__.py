"""The `lstm_vae` texture engine: SONGSHTR's LSTM + VAE over DCT or FFT frames of raw audio (see engine.py)."""
from .engine import LSTMVAEEngine
from .settings import LSTMVAESettings

__all__ = ["LSTMVAEEngine", "LSTMVAESettings"]
