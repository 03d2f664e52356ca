"""Settings of the `lstm_vae` engine (checked when the spec is loaded)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..textures import TextureSettings


class LSTMVAESettings(TextureSettings):
    """SONGSHTR's defaults: one 128-unit LSTM layer; quality peaked around 2-3 thousand iterations. `fft` by
    default: on the repository's sounds its output lies at ~0.6 × white noise's distance from the sources'
    spectrum after 600 steps, `dct`'s at ~1.5 × (it predicts the average of coefficients whose signs vary).
    Re-primed from an onset every 0.5 s by default: primed once, the drum take gave 0 of 64 candidates the
    curator keeps (a held decay, then silence) and the field recording 15 (hums), re-primed 64 and 60."""
    domain: Literal["dct", "fft"] = Field("fft", description="dct: coherent, narrower; fft: magnitudes only, "
                                                             "phases rebuilt (more ethereal)")
    block_size: int = Field(512, ge=32, le=8192, description="samples per block (a power of two)")
    lstm_size: int = Field(128, ge=8, le=2048)
    lstm_layers: int = Field(1, ge=1, le=4)
    latent_size: int = Field(32, ge=1, le=512)
    kl_weight: float = Field(1e-3, ge=0, le=10)
    seq_frames: int = Field(64, ge=2, le=4096, description="frames per training example")
    prime_frames: int = Field(8, ge=1, le=256, description="frames of the sources that start each texture")
    frame_noise: float = Field(0.0, ge=0, le=4, description="spread added to each generated frame, × what the "
                                                           "model's predictions missed in training (0: the "
                                                           "predicted frame; dct output moves nearer the "
                                                           "sources' spectrum with 1, but as noise)")
    griffin_lim_iters: int = Field(1, ge=0, le=200, description="fft: phase refinement after the peak-locked "
                                                               "phase advance")
    max_steps: int = Field(3000, ge=1)
    batch_size: int = Field(16, ge=1, le=256)

    @model_validator(mode="after")
    def _block(self):
        if self.block_size & (self.block_size - 1):
            raise ValueError(f"block_size must be a power of two, not {self.block_size}")
        return self
