"""The conceptor engine's settings: reservoir and grains, and the render controls that corners and key
zones can override.

    >>> ConceptorSettings(grains_per_source=4).zones
    []
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..base import EngineSettings


class ConceptorControls(BaseModel):
    """Render controls; unset values inherit (engine defaults, then corners, then key zones)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    spectral_radius_scale: float | None = Field(None, gt=0.0, le=4.0,
                                                description="scales the loaded W: <1 calmer, >1 towards chaos")
    leak_scale: float | None = Field(None, gt=0.0, le=4.0,
                                     description="leak multiplier; with exact pitch on, a formant/timbre shift")
    speed: float | None = Field(None, description="steps per grain; negative plays the sequence backwards")
    gain: float | None = Field(None, ge=0.0, le=16.0, description="linear output gain")
    aperture_scale: float | None = Field(None, gt=0.0, le=1000.0,
                                         description="aperture adaptation gamma: <1 softer, >1 harder conceptors")

    @field_validator("speed")
    @classmethod
    def _speed(cls, v):
        if v is not None and abs(v) < 1.0:
            raise ValueError("speed is steps per grain: use |speed| >= 1 (negative plays backwards)")
        return v


class ZoneControls(ConceptorControls):
    """Controls for the keys low..high (note names or MIDI numbers)."""
    low: int
    high: int

    @field_validator("low", "high", mode="before")
    @classmethod
    def _note(cls, v):
        from ...notes import note_to_midi
        return note_to_midi(v)

    @model_validator(mode="after")
    def _order(self):
        if self.low > self.high:
            raise ValueError(f"zone low ({self.low}) is above high ({self.high})")
        return self


class ConceptorSettings(EngineSettings):
    # the reservoir and loading
    reservoir_size: int = Field(400, ge=16, le=2048, description="reservoir units N")
    spectral_radius: float = Field(1.7, gt=0.0, le=5.0, description="spectral radius of the random W")
    leak: float = Field(0.5, gt=0.0, le=1.0, description="base leak rate (below 1 leaves room to pitch up)")
    input_scale: float = Field(1.0, gt=0.0, le=10.0)
    bias_scale: float = Field(0.2, ge=0.0, le=5.0)
    aperture: float | Literal["auto"] = Field("auto", description="'auto': per grain, least attenuation")
    grain_mode: Literal["auto", "period", "window"] = Field(
        "auto", description="period: whole periods at zero crossings; window: fixed slices; auto: by pitch")
    grains_per_source: int = Field(8, ge=1, le=256)
    grain_spacing_ms: float | None = Field(150.0, gt=10.0, le=10000.0, description=(
        "a pitched clip gets one grain per this much steady sound when that is more than grains_per_source "
        "(longer sequences for timbres that move); None: exactly grains_per_source"))
    min_pitch_confidence: float = Field(0.9, ge=0.0, le=1.0, description=(
        "pitched grains are cut only where the source is periodic (pitch confidence >= this) and within "
        "steady_db of its loudest part; noisy and percussive parts stay out of the pitched notes"))
    steady_db: float = Field(12.0, gt=0.0, le=60.0)
    flatten_glide: bool = Field(True, description=(
        "resample each grain of a gliding source to the clip's pitch, so every key plays its note; "
        "false keeps the glide (the key then names its average)"))
    shared_pitch_semitones: float = Field(12.0, ge=0.0, le=48.0, description=(
        "with flatten_glide, the grains of all pitched sources on a channel are retuned onto one shared pitch "
        "(their geometric mean) when within this many semitones of it, so a blend of corners plays one "
        "period; 0 retunes each clip onto its own pitch"))
    hold_level: bool = Field(True, description=(
        "hold the reservoir's output at the loaded grains' level (a gain following its RMS envelope)"))
    revive_hardening: float = Field(4.0, ge=1.0, le=100.0, description=(
        "a voice whose level dips more than max_dropout_db below its median (its free run passed through a "
        "dead state) is rendered again with its conceptors hardened by this aperture adaptation, up to "
        "twice; 1 = never"))
    max_dropout_db: float = Field(10.0, gt=0.0, le=120.0)
    level_contour: float = Field(0.5, ge=0.0, le=1.0, description=(
        "how much of the source's loudness contour a note follows (in dB): 1 all, 0 a flat held level"))
    fade_out_db: float | None = Field(3.0, ge=0.0, le=60.0, description=(
        "a source's last grains more than this below its median grain level are its fade-out: a note does "
        "not follow it there but holds the level of the last grain before it (None: follows it)"))
    grain_min_ms: float = Field(5.0, gt=0.0, le=100.0, description="period grains hold >= this much audio")
    window_ms: float = Field(12.0, gt=0.5, le=200.0, description="window grain length")
    n_reservoirs: int = Field(2, ge=1, le=16, description="random reservoirs tried; the best is kept")
    form: Literal["auto", "dense", "lowrank", "diagonal"] = Field(
        "auto", description="conceptor form at render time; auto = lowrank unless a segment spans > 0.9 N dimensions")
    # render controls (defaults; see `corners` and `zones` for overrides)
    spectral_radius_scale: float = Field(1.0, gt=0.0, le=4.0)
    leak_scale: float = Field(1.0, gt=0.0, le=4.0)
    speed: float | Literal["auto"] = Field("auto", description="steps per grain; auto = the source's timing")
    gain: float = Field(1.0, ge=0.0, le=16.0)
    aperture_scale: float = Field(1.0, gt=0.0, le=1000.0)
    sequence: Literal["hold", "loop", "pingpong"] = "hold"
    blend_mode: Literal["morph", "or"] = Field(
        "morph", description="morph: (1-mu) C_a + mu C_b; or: the conceptor of the weighted sum of correlations")
    morph_hardening: float = Field(4.0, ge=1.0, le=100.0, description=(
        "aperture adaptation applied to interior blend points (full strength at the centre, none at the "
        "corners): a plain linear morph between dissimilar sounds shrinks every direction and the note dies; "
        "1 = the plain morph"))
    max_leak: float = Field(0.85, gt=0.0, le=1.0, description="leak cap when pitching up (1.0 gets unstable)")
    blend_stretch: float = Field(1.0, ge=0.0, le=4.0, description=">1 extrapolates the morph past the mix")
    corners: dict[str, ConceptorControls] = Field(default_factory=dict)
    zones: list[ZoneControls] = Field(default_factory=list)
    # pitch, dynamics, envelope, execution
    pitch_by: Literal["leak", "resample"] = Field("resample", description=(
        "resample: the reservoir runs at its loaded leak (where it reproduces the grains and holds its pitch) "
        "and the take is resampled onto the key; leak: the leak rate moves the pitch within leak_range "
        "(a high leak can flip the reservoir into a period-halved state, an octave up)"))
    leak_range: tuple[float, float] = Field((0.5, 2.0), description="leak multipliers used for pitch")
    exact_pitch: bool = Field(True, description="measure each take and resample it onto the note")
    flatten_render: bool = Field(True, description=(
        "with exact_pitch, time-warp a take whose pitch wanders along the note (a morph between blend "
        "corners) so it stays on the key all the way through"))
    noise: float = Field(1.0, ge=0.0, le=4.0, description=(
        "the noise term: what each pitched source's periodic grains leave out (breath, bow, hiss: the noise "
        "between its harmonics) is measured at fit time and added to its notes as shaped noise following the "
        "note's level; this scales its level (1: as measured, 0: none)"))
    match_eq: float = Field(1.0, ge=0.0, le=2.0, description=(
        "the match EQ: each pitched source's note at its own key is measured at fit time against the source "
        "and equalised to its time-averaged spectrum, on every key (fixed in frequency, like formants); this "
        "scales the EQ in dB (1: as measured, 0: none)"))
    unpitched_root: int = Field(60, ge=0, le=127)
    velocity_curve_db: float = Field(40.0, ge=0.0, le=96.0)
    washout_ms: float = Field(10.0, ge=0.0, le=500.0)
    threads: int = Field(1, ge=1, le=64, description="BLAS threads in the step loop (1 is safest on busy CPUs)")

    @field_validator("speed")
    @classmethod
    def _speed(cls, v):
        if v != "auto" and abs(v) < 1.0:
            raise ValueError("speed is steps per grain: use 'auto' or |speed| >= 1 (negative = backwards)")
        return v

    @field_validator("leak_range")
    @classmethod
    def _range(cls, v):
        lo, hi = v
        if not 0 < lo <= 1.0 <= hi:
            raise ValueError("leak_range must be (low, high) with 0 < low <= 1 <= high")
        return v
