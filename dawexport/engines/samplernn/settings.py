"""Settings of the `samplernn` engine (checked when the spec is loaded)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..textures import TextureSettings


class SampleRNNSettings(TextureSettings):
    """Small CPU-friendly defaults; the sound designer's seed ran 3 tiers at 44.1 kHz on a GPU."""
    tiers: Literal[2, 3] = Field(3, description="2: one frame tier; 3: two frame tiers")
    frame_size: int = Field(16, ge=2, le=256, description="samples per top-tier frame")
    sub_frame_size: int = Field(4, ge=1, le=64, description="samples per lower-tier frame (3 tiers); also how "
                                                            "many past samples the sample-level MLP sees")
    dim: int = Field(128, ge=8, le=2048, description="frame-tier GRU size")
    mlp_dim: int = Field(128, ge=8, le=2048, description="sample-level MLP width")
    embed: int = Field(32, ge=2, le=256, description="embedding size of one 8-bit sample value")
    seq_len: int = Field(512, ge=16, le=65536, description="samples per training example")
    batch_size: int = Field(16, ge=1, le=256)
    temperature: float = Field(0.6, ge=0, le=4, description="sampling spread; 0 = always the likeliest (after "
                                                            "1000 steps, re-primed: 0.6 passed 88-100 % of the "
                                                            "candidates on a drum, a babble and a field "
                                                            "recording, 0.8 gave the babble all noise, 1.0 all "
                                                            "three)")

    render_batch: int = Field(128, ge=1, le=1024, description="textures generated together (each re-primed "
                                                            "segment is a stream of its own: 128 textures of 4 s "
                                                            "re-primed every 0.5 s are ~1000 streams)")
    prime_seconds: float = Field(0.1, ge=0, le=2, description="seconds of the sources each texture (and each "
                                                              "re-primed segment) starts from: the frame tiers "
                                                              "step through them before the first new sample "
                                                              "(0: one top frame; 0.1 brought a drum's textures "
                                                              "from 0.62 to 0.57 of white noise's distance)")

    @model_validator(mode="after")
    def _frames(self):
        if self.seq_len % self.frame_size:
            raise ValueError(f"seq_len ({self.seq_len}) must be a multiple of frame_size ({self.frame_size})")
        if self.tiers == 3 and (self.sub_frame_size >= self.frame_size or self.frame_size % self.sub_frame_size):
            raise ValueError(f"sub_frame_size ({self.sub_frame_size}) must divide frame_size "
                             f"({self.frame_size}) and be smaller")
        return self

    @property
    def frame_sizes(self) -> tuple[int, ...]:
        return (self.frame_size, self.sub_frame_size) if self.tiers == 3 else (self.frame_size,)
