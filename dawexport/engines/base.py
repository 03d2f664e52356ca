"""The engine seam: what every model family provides, and the data it trains on and renders.

    >>> engine = get_engine("sampler")(settings, sample_rate=44100, seed=0, device="cpu")
    >>> engine.fit(corpus, workdir, progress)
    >>> takes = engine.render([RenderRequest(weights=(("cat", 1.0),), channel="L", note=60,
    ...                                      velocity=100, duration_s=1.0, release_s=0.3)])

Engines see mono float32 clips at their own sample rate; stereo handling, resampling to the output rate,
trimming, looping and mapping all happen outside, in the pipeline.
"""
from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..audio.analysis import PitchEstimate


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do. `native_rates` None means any rate; `default_rate` None means the output rate.
    `grains`: the engine renders single grains of its sources (`grain_catalogue`, `render_grains`,
    `morph_frames`): what a grain kit and a grain-morph wavetable need."""
    pitched: bool = True
    blendable: bool = True
    trainable: bool = True
    grains: bool = False
    native_rates: tuple[int, ...] | None = None
    default_rate: int | None = None


@dataclass(frozen=True)
class Clip:
    """One channel of one recording of a source, at the corpus rate, with its measured pitch."""
    source: str
    channel: str
    take: int
    audio: np.ndarray
    pitch: PitchEstimate


@dataclass(frozen=True)
class Corpus:
    """Everything an engine learns from: mono clips at one sample rate, analysed."""
    sample_rate: int
    channels: tuple[str, ...]
    clips: tuple[Clip, ...]

    @property
    def sources(self) -> list[str]:
        return list(dict.fromkeys(clip.source for clip in self.clips))

    def takes(self, source: str, channel: str) -> list[Clip]:
        """All recordings of `source` on `channel`."""
        found = [c for c in self.clips if c.source == source and c.channel == channel]
        if not found:
            raise KeyError(f"no clip for source {source!r} on channel {channel!r}")
        return found

    def fingerprint(self) -> str:
        """A content hash of the audio, names, rate and channel layout (for model caching)."""
        digest = hashlib.sha256(f"{self.sample_rate}|{self.channels}".encode())
        for clip in self.clips:
            digest.update(f"{clip.source}|{clip.channel}|{clip.take}|{clip.audio.shape}".encode())
            digest.update(np.ascontiguousarray(clip.audio, dtype=np.float32).tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class RenderRequest:
    """One take to render: corner weights (summing to 1), a channel, a note, a velocity and timing."""
    weights: tuple[tuple[str, float], ...]
    channel: str
    note: int
    velocity: int
    duration_s: float
    release_s: float
    variation: int = 0  # round-robin index; engines use it to seed small differences between takes

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(self.weights)


@dataclass(frozen=True)
class GrainRequest:
    """One pad of a grain kit: grains of one recording (positions along its grain sequence, looped when
    there are several) on one channel, played for `duration_s` under a decay that falls 60 dB in `decay_s`.
    `note` is the pad's key (engines may apply per-key settings; the grains keep their own pitch)."""
    source: str
    take: int
    positions: tuple[int, ...]
    channel: str
    note: int
    velocity: int
    duration_s: float
    decay_s: float
    variation: int = 0


def save_numpy_model(directory: Path, stem: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write `stem.safetensors` (numpy arrays) and `stem.json` into `directory`: no pickle anywhere."""
    from safetensors.numpy import save_file
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(directory / f"{stem}.safetensors"))
    (directory / f"{stem}.json").write_text(json.dumps(meta, indent=1))


def load_numpy_model(directory: Path, stem: str, what: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read what `save_numpy_model` wrote; an unreadable or foreign file is an EngineError naming the folder."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from ..errors import EngineError
    directory = Path(directory)
    try:
        return (load_file(str(directory / f"{stem}.safetensors")),
                json.loads((directory / f"{stem}.json").read_text()))
    except (OSError, ValueError, SafetensorError) as error:
        raise EngineError(f"cached {what} model is unreadable ({error})", file=str(directory),
                          fix="delete that folder and build again") from None


class EngineSettings(BaseModel):
    """Base of every engine's settings model: unknown keys are errors."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainingSettings(EngineSettings):
    """The trainer's settings, shared by every learning engine; engines override the defaults they need."""
    max_steps: int = Field(3000, ge=1)
    max_minutes: float | None = Field(5.0, gt=0, description="training wall-clock budget")
    batch_size: int = Field(8, ge=1, le=256)
    lr: float = Field(1e-3, gt=0, le=1.0)
    lr_schedule: Literal["cosine", "exponential", "constant"] = "cosine"
    checkpoint_every: int = Field(100, ge=1)
    validate_every: int = Field(100, ge=1)
    patience: int | None = Field(None, ge=1, description="stop after this many validations without improvement")


class Engine(abc.ABC):
    """A model family. Subclasses set `name`, `capabilities`, `Settings` and implement the methods."""
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    Settings: ClassVar[type[EngineSettings]] = EngineSettings
    render_only: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: EngineSettings, *, sample_rate: int, seed: int = 0, device: str = "auto"):
        self.settings = settings
        self.sample_rate = sample_rate
        self.seed = seed
        self.device = device

    def cache_key(self, corpus: Corpus) -> str:
        """What the trained model depends on: the corpus content, engine, training settings, rate and seed.

        Settings named in `render_only` change how a trained model plays, not what it learns, so changing
        them re-renders without retraining (see `render_key`).
        """
        training = self.settings.model_dump(mode="json", exclude=set(self.render_only))
        blob = json.dumps({"engine": self.name, "settings": training,
                           "rate": self.sample_rate, "seed": self.seed, "corpus": corpus.fingerprint(),
                           "version": getattr(self, "version", 1)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def render_key(self, corpus: Corpus) -> str:
        """What rendered takes depend on: the trained model plus every setting, render-only ones included."""
        blob = json.dumps([self.cache_key(corpus), self.settings.model_dump(mode="json")], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @abc.abstractmethod
    def fit(self, corpus: Corpus, workdir: Path, progress) -> None:
        """Learn from the corpus. Trainable engines checkpoint into `workdir` and resume from it."""

    @abc.abstractmethod
    def save(self, directory: Path) -> None:
        """Write the trained state into `directory` (safetensors + JSON; never pickle)."""

    @abc.abstractmethod
    def load(self, directory: Path) -> None:
        """Restore the state written by `save`."""

    @abc.abstractmethod
    def render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        """Render many takes in batched calls: one 1-D float32 array at `self.sample_rate` per request."""

    # Engines with `capabilities.grains` override these two.
    def grain_catalogue(self) -> dict[tuple[str, int], tuple[int, ...]]:
        """(source, take) -> positions along its grain sequence of the grains that sound (on the first,
        main channel), in order: what a grain kit picks its pads from."""
        raise NotImplementedError(f"engine {self.name!r} has no grains")

    def render_grains(self, requests: Sequence[GrainRequest], progress=None) -> list[np.ndarray]:
        """Render grain-kit pads in batched calls: one 1-D float32 array at `self.sample_rate` per request."""
        raise NotImplementedError(f"engine {self.name!r} cannot render grains")
