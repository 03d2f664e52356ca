"""The instrument spec's pydantic models: the shape of the YAML and the checks that need nothing else.

Checks that need the engine or exporter registries live in `dawexport.spec.validate`.

    >>> KeysSpec(low="C3", high="C6").low
    48
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, field_validator,
                      ValidationInfo, model_validator)

from ..notes import note_to_midi

BIT_DEPTHS = ("16", "24", "32f")
OUTPUT_RATES = (44100, 48000)
LOOP_MODES = ("auto", "sustain", "continuous", "one_shot", "none")
NORMALISE_POLICIES = ("even", "peak", "none")
STEREO_MODES = ("split", "mono", "mid_side")
MIN_MODEL_RATE, MAX_MODEL_RATE = 8000, 192000
DEFAULT_FORMATS = ("sfz", "midi", "ableton", "decent_sampler", "bitwig", "sf2")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _note(value: Any) -> int:
    try:
        return note_to_midi(value)
    except ValueError as error:
        raise ValueError(str(error)) from None


class Recording(_Strict):
    """One recording of a source sound. `root` overrides the measured pitch (for unpitched or odd sounds)."""
    file: Path
    root: int | None = None

    _root = field_validator("root", mode="before")(lambda v: None if v is None else _note(v))


class EngineSpec(_Strict):
    name: str = "sampler"
    sample_rate: int | None = Field(None, ge=MIN_MODEL_RATE, le=MAX_MODEL_RATE,
                                    description="the model's own rate; default: the engine's preference")
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    settings: dict[str, Any] = Field(default_factory=dict)


class BlendSpec(_Strict):
    corners: list[str] = Field(..., min_length=1, max_length=4)
    points_per_side: int = Field(3, ge=2, le=16)

    @field_validator("corners")
    @classmethod
    def _corner_count(cls, corners: list[str]) -> list[str]:
        if len(corners) not in (1, 2, 4):
            raise ValueError("give 1 corner (no blend), 2 (a line) or 4 (a square: A B on top, C D below)")
        if len(set(corners)) != len(corners):
            raise ValueError("each corner must name a different source")
        return corners


class KeysSpec(_Strict):
    low: int = 48
    high: int = 72
    every: int = Field(3, ge=1, le=24, description="semitones between rendered root keys")

    _notes = field_validator("low", "high", mode="before")(lambda v: _note(v))

    @model_validator(mode="after")
    def _ordered(self) -> "KeysSpec":
        if self.low > self.high:
            raise ValueError(f"keys.low ({self.low}) must not be above keys.high ({self.high})")
        return self


class NoteSpec(_Strict):
    length: float = Field(2.0, gt=0.05, le=30.0, description="seconds the key is held while rendering")
    release: float = Field(0.3, ge=0.0, le=10.0, description="seconds rendered after the key is let go")
    attack: float = Field(0.002, ge=0.0, le=5.0, description="sampler amp-envelope attack in seconds")


class OutputSpec(_Strict):
    dir: Path | None = None
    sample_rate: int = 44100
    bit_depth: str = "24"
    normalise: Literal["even", "peak", "none"] = "even"
    formats: list[str] = Field(default_factory=lambda: list(DEFAULT_FORMATS))
    live_version: Literal[11, 12] = Field(11, description="Ableton files for Live 11 (load in 11 and 12) or "
                                                          "12 (native round robin; Live 12 only)")

    @field_validator("formats", mode="before")
    @classmethod
    def _some_format(cls, formats: Any) -> Any:
        if isinstance(formats, list) and not formats:
            raise ValueError("list at least one format (an empty list would build a folder of bare samples); "
                             f"e.g. {', '.join(DEFAULT_FORMATS)}")
        return formats

    @field_validator("sample_rate")
    @classmethod
    def _rate(cls, rate: int) -> int:
        if rate not in OUTPUT_RATES:
            raise ValueError(f"output sample_rate must be one of {', '.join(map(str, OUTPUT_RATES))}")
        return rate

    @field_validator("bit_depth", mode="before")
    @classmethod
    def _depth(cls, depth: Any) -> str:
        depth = str(depth).lower()
        depth = {"32": "32f", "float": "32f", "32float": "32f"}.get(depth, depth)
        if depth not in BIT_DEPTHS:
            raise ValueError("bit_depth must be 16, 24 or 32f (32-bit float)")
        return depth

    @field_validator("formats")
    @classmethod
    def _formats(cls, formats: list[str], info: ValidationInfo) -> list[str]:
        # The names come from the exporter registry, passed in by `validate.parse_spec` as context
        # (so this module does not import the exporters).
        known = (info.context or {}).get("formats")
        for fmt in formats:
            if known is not None and fmt not in known:
                raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(sorted(known))}")
        if len(set(formats)) != len(formats):
            raise ValueError("a format is listed twice")
        return formats


class KitSpec(_Strict):
    """A grain kit: one pad per key from `low`, each playing grains of the sources as a one-shot.

        kit: {low: C2, grains: 16, length: 0.5, sources: [cat, flute], sequence: 1}   # C2 = MIDI 36
    """
    low: int = Field(36, description="the first pad's key; default 36 (C2 here, Live's C1: where drum pads start)")
    grains: int = Field(16, ge=1, le=128, description="how many pads: one per key from low up")
    length: float = Field(0.5, gt=0.02, le=10.0, description="seconds each pad sounds (a one-shot)")
    decay: float | None = Field(None, gt=0.0, le=30.0,
                                description="seconds to fall 60 dB; default: the pad's length")
    sources: list[str] | None = Field(None, min_length=1, description="sources to take grains from; default all")
    sequence: int = Field(1, ge=1, le=16, description="grains per pad, walked in a loop (1 = one held grain)")

    _notes = field_validator("low", mode="before")(lambda v: _note(v))

    @model_validator(mode="after")
    def _fits(self) -> "KitSpec":
        top = self.low + self.grains - 1
        if top > 127:
            raise ValueError(f"{self.grains} pads from key {self.low} run up to key {top}, past MIDI 127: "
                             f"start at {127 - self.grains + 1} or lower, or ask for at most "
                             f"{127 - self.low + 1} grains")
        if self.sources is not None and len(set(self.sources)) != len(self.sources):
            raise ValueError("kit.sources names a source twice")
        return self

    @property
    def high(self) -> int:
        return self.low + self.grains - 1

    @property
    def decay_s(self) -> float:
        return self.length if self.decay is None else self.decay


class TextureSpec(_Strict):
    """A texture instrument: the engine babbles `candidates` textures, the curator keeps `count` of them
    (labelled, as different as possible), one pad per key from `low`, looped seamlessly or one-shot.

        texture: {low: C2, count: 8, length: 4.0, candidates: 32, loop: true}
    """
    low: int = Field(36, description="the first pad's key; default 36 (C2 here, Live's C1)")
    count: int = Field(8, ge=1, le=128, description="how many textures are kept: one pad per key from low up")
    length: float = Field(4.0, gt=0.1, le=60.0, description="seconds of each texture")
    candidates: int | None = Field(None, ge=1, le=1024,
                                   description="textures generated for the curator to choose from; "
                                               "default 4 × count")
    rounds: int = Field(2, ge=1, le=8, description="rounds of candidates at most, while too few pass")
    loop: bool = Field(True, description="seamless loops (held pads sustain); false: one-shots")
    crossfade: float = Field(0.25, ge=0.0, le=5.0, description="seconds of the loop's crossfade")
    fade_out: float = Field(0.5, ge=0.0, le=10.0, description="one-shots: seconds of the final fade")
    release: float = Field(0.5, ge=0.0, le=20.0, description="looping pads: amp release when let go")

    _notes = field_validator("low", mode="before")(lambda v: _note(v))

    @model_validator(mode="after")
    def _fits(self) -> "TextureSpec":
        if self.high > 127:
            raise ValueError(f"{self.count} pads from key {self.low} run up to key {self.high}, past MIDI 127: "
                             f"start at {127 - self.count + 1} or lower, or keep at most {127 - self.low + 1}")
        if self.candidates is not None and self.candidates < self.count:
            raise ValueError(f"texture.candidates ({self.candidates}) must be at least texture.count "
                             f"({self.count}): the curator keeps count of the candidates")
        if self.loop and self.crossfade >= self.length / 2:
            raise ValueError(f"texture.crossfade ({self.crossfade} s) must be under half the length "
                             f"({self.length} s)")
        return self

    @property
    def high(self) -> int:
        return self.low + self.count - 1

    @property
    def candidate_count(self) -> int:
        return self.candidates if self.candidates is not None else 4 * self.count


class WavetableSpec(_Strict):
    """A Serum-compatible wavetable: along the blend path, along the time of one note, a morph from one
    grain to another (`grains`: engines with the grains capability, e.g. conceptor), or through the tonal
    textures a texture instrument kept (`texture`)."""
    name: str
    along: Literal["blend", "time", "grains", "texture"] = "blend"
    note: int = 60
    frames: int = Field(64, ge=2, le=256)
    corners: list[str] | None = None

    _notes = field_validator("note", mode="before")(lambda v: _note(v))

    @field_validator("name")
    @classmethod
    def _file_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
            raise ValueError("a wavetable name must be 1-64 letters, digits, '_', '-' or '.', starting with a letter "
                             "or digit (it becomes a file name)")
        return name


class InstrumentSpec(_Strict):
    name: str
    description: str = ""
    sources: dict[str, list[Recording]]
    engine: EngineSpec = Field(default_factory=EngineSpec)
    blend: BlendSpec | None = None
    keys: KeysSpec = Field(default_factory=KeysSpec)
    velocity_layers: int = Field(3, ge=1, le=16)
    round_robins: int = Field(1, ge=1, le=8)
    note: NoteSpec = Field(default_factory=NoteSpec)
    stereo: Literal["split", "mono", "mid_side"] = "split"
    loop: Literal["auto", "sustain", "continuous", "one_shot", "none"] = "auto"
    output: OutputSpec = Field(default_factory=OutputSpec)
    wavetables: list[WavetableSpec] = Field(default_factory=list)
    kit: KitSpec | None = None
    texture: TextureSpec | None = None

    # Where the spec came from: relative paths in it are relative to this folder.
    spec_path: Path | None = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
            raise ValueError("name must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
                             " (it becomes the output folder and file names)")
        return name

    @field_validator("description")
    @classmethod
    def _printable(cls, text: str) -> str:
        """Line breaks and tabs become spaces (it is written into one-line comments); other control
        characters are refused."""
        text = " ".join(text.split()) if any(c in text for c in "\n\r\t") else text
        bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c not in "\u200d"), None)
        if bad is not None:
            raise ValueError(f"description holds the control character {bad!r}; write plain text")
        return text

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, sources: Any) -> Any:
        if not isinstance(sources, dict) or not sources:
            raise ValueError("sources must map a name to a sound file, e.g.  cat: sounds/cat.wav")
        normalised = {}
        for name, value in sources.items():
            items = value if isinstance(value, list) else [value]
            normalised[name] = [{"file": item} if isinstance(item, (str, Path)) else item for item in items]
            if not items:
                raise ValueError(f"source {name!r} lists no files")
        return normalised

    @model_validator(mode="after")
    def _cross_checks(self) -> "InstrumentSpec":
        names = list(self.sources)
        for name in names:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", str(name)):
                raise ValueError(f"source name {name!r} may only use letters, digits, '_' and '-'")
        for corner in self.blend_corners:
            if corner not in self.sources:
                raise ValueError(f"blend corner {corner!r} is not a source; sources are: {', '.join(names)}")
        seen_tables = set()
        for table in self.wavetables:
            if table.name in seen_tables:
                raise ValueError(f"wavetables: two tables are named {table.name!r} twice; one file would replace "
                                 "the other")
            seen_tables.add(table.name)
            for corner in table.corners or []:
                if corner not in self.sources:
                    raise ValueError(f"wavetable {table.name!r} names {corner!r}, which is not a source")
        return self

    @property
    def blend_corners(self) -> list[str]:
        """The corners of the blend grid; with no `blend` key, the first source alone."""
        return self.blend.corners if self.blend else [next(iter(self.sources))]

    @property
    def base_dir(self) -> Path:
        return self.spec_path.parent if self.spec_path else Path.cwd()

    def source_path(self, recording: Recording) -> Path:
        path = recording.file.expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def output_dir(self) -> Path:
        """`output.dir` (relative to the spec file) or build/<name> in the current folder."""
        if self.output.dir is None:
            return Path.cwd() / "build" / self.name
        path = self.output.dir.expanduser()
        return path if path.is_absolute() else self.base_dir / path
