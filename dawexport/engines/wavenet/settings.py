"""The wavenet engine's settings: network size, training data, and how notes are held and played.

    >>> WaveNetSettings().pitch_mode in ("shifted", "conditioning", "off")
    True
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..base import TrainingSettings


class WaveNetSettings(TrainingSettings):
    """Small CPU-friendly defaults (NSynth itself: width 512, skip 256, 3 × 10 layers, encoder 128 × 30).

    The guide (default `ddsp`) is what makes a CPU-trained WaveNet play notes: see the engine's docstring."""
    # the network
    width: int = Field(64, ge=4, le=1024, description="decoder residual channels (NSynth: 512)")
    skip_width: int | None = Field(None, ge=4, le=1024, description="decoder skip channels (default: width)")
    stacks: int = Field(1, ge=1, le=8, description="decoder stacks (NSynth: 3; 1 stack of 10 layers hears 128 ms "
                        "at 16 kHz, enough to refine a guide, and trains 6× faster than 2 × 10 at 4096-sample crops)")
    layers: int = Field(10, ge=1, le=14, description="layers per stack; dilations 1 … 2^(layers-1)")
    pitch_conditioning: bool = True
    encoder_width: int = Field(64, ge=4, le=1024, description="encoder channels (NSynth: 128)")
    encoder_layers: int = Field(10, ge=1, le=60, description="encoder residual layers (NSynth: 30)")
    encoder_cycle: int = Field(10, ge=1, le=14, description="encoder dilations cycle 1 … 2^(cycle-1)")
    latent_size: int = Field(16, ge=1, le=128, description="latent channels (NSynth: 16)")
    hop: int = Field(512, ge=16, le=4096, description="samples per latent frame (NSynth: 512 at 16 kHz)")
    guide: Literal["ddsp", "none"] = Field(
        "ddsp", description="the waveform the WaveNet refines: 'ddsp' trains the ddsp engine on the same sources "
                            "and conditions every sample on its render of the note; 'none' learns audio from "
                            "the latent alone (NSynth's way: a GPU's weeks of work, noise after CPU minutes)")
    high_band: Literal["guide", "none"] = Field(
        "guide", description="what plays above the 16 kHz WaveNet's band (it has nothing above 8 kHz): 'guide' "
                             "trains the ddsp guide at the output rate and takes its band above ~7 kHz through a "
                             "crossover; 'none' (or guide: none) leaves it empty: pure 16 kHz output")
    guide_prior: bool = Field(True, description="centre the predicted distribution on the guide's sample "
                              "(the network learns the residual around it)")
    guide_residual: float = Field(0.25, ge=0, le=2, description="the WaveNet codes the difference from the "
                                  "guide, in 8-bit mu-law over ± this (its quantisation floor then sits under the "
                                  "difference, not under the note); 0 = it codes the waveform itself")
    guide_steps: int = Field(600, ge=1, description="training steps of the ddsp guide model")
    guide_settings: dict = Field(default_factory=dict, description="other ddsp settings of the guide model "
                                 "(hidden_size, n_harmonics, …; its defaults otherwise)")
    guide_snr_db: float = Field(24.0, ge=-20, le=80, description="training guides are the target with noise "
                                "this many dB (up to 20 dB more) below it, so the WaveNet learns to refine "
                                "(the spread it learns is the spread it samples: 12 dB left a noise floor)")
    pitch_mode: Literal["shifted", "conditioning"] = Field(
        "shifted", description="shifted: encode the source repitched to each note; conditioning: encode it "
                               "at its own pitch and play the note through the pitch conditioning only")
    # training
    max_steps: int = Field(600, ge=1, description="WaveNet training steps (after the guide's `guide_steps`); "
                           "guided, a few hundred steps learn to refine the guide; unguided (guide: none) even "
                           "thousands leave noise on a CPU")
    batch_size: int = Field(4, ge=1, le=256)
    crop_samples: int = Field(2048, ge=64, le=65536, description="samples per training example")
    augment_low: int = Field(36, ge=0, le=127, description="lowest MIDI note the sources are shifted to")
    augment_high: int = Field(96, ge=0, le=127, description="highest MIDI note the sources are shifted to")
    augment_step: float = Field(1.0, gt=0, le=24, description="semitones between shifted copies")
    max_shift: float = Field(24.0, ge=0, le=48, description="largest shift of a source, in semitones")
    gain_augment_db: float = Field(12.0, ge=0, le=60, description="examples are attenuated by up to this")
    unpitched_root: int = Field(60, ge=0, le=127, description="root assumed for sources with no pitch")
    # rendering
    temperature: float = Field(0.25, ge=0, le=4, description="sampling temperature; 0 = always the likeliest "
                               "(0.25: a flute's quiet upper bands stay clear; 0.5 left a noise floor over them)")
    velocity_range_db: float = Field(24.0, ge=0, le=96, description="dB from velocity 127 down to 1")
    velocity_timbre: float = Field(0.5, ge=0, le=2, description="how far velocity moves the latent along the "
                                                              "corpus's loudness direction (0 = gain only)")
    attack_s: float = Field(0.25, ge=0, le=5, description="longest attack kept from the source's latents")
    sustain_db: float = Field(12.0, gt=0, le=60, description="sustain frames: within this of the peak")
    crossfade_s: float = Field(0.1, ge=0, le=2, description="latent glide from the attack into the hold")
    render_batch: int = Field(256, ge=1, le=4096, description="voices decoded together (memory bound)")
    threads: int = Field(2, ge=1, le=256, description="CPU threads for training (torch intra-op) and decoding "
                         "(voices split over threads); the result depends on it, so it is a fixed number")

    @model_validator(mode="after")
    def _check(self):
        if self.augment_low > self.augment_high:
            raise ValueError("augment_low must not be above augment_high")
        if self.pitch_mode == "conditioning" and not self.pitch_conditioning:
            raise ValueError("pitch_mode 'conditioning' needs pitch_conditioning: true")
        if self.guide_settings:
            from ..ddsp.settings import DDSPSettings
            try:
                DDSPSettings(**self.guide_settings)       # a bad key or value is refused here, by name
            except ValueError as error:
                keys = ", ".join(".".join(map(str, e["loc"])) for e in getattr(error, "errors", lambda: [])())
                raise ValueError(f"guide_settings ({keys or error}): not a ddsp setting or not a valid value "
                                 "(see the ddsp engine's settings)") from None
        return self
