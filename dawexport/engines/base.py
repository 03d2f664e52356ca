"""The engine seam: what every model family provides, and the data it trains on and renders.

    >>> from dawexport.audio.analysis import estimate_pitch
    >>> from dawexport.engines import engine_class
    >>> tone = np.sin(2 * np.pi * 220 * np.arange(8000) / 8000).astype(np.float32)
    >>> corpus = Corpus(8000, ("mono",), (Clip("sine", "mono", 0, tone, estimate_pitch(tone, 8000)),))
    >>> cls = engine_class("sampler")
    >>> engine = cls(cls.Settings(), sample_rate=8000, seed=0, device="cpu")
    >>> engine.fit(corpus, None, None)
    >>> [take] = engine.render([RenderRequest(weights=(("sine", 1.0),), channel="mono", note=57,
    ...                                       velocity=100, duration_s=0.5, release_s=0.1)])
    >>> take.shape
    (4800,)

Engines see mono float32 clips at their own sample rate; stereo handling, resampling to the output rate,
trimming, looping and mapping all happen outside, in the pipeline.
"""
from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..audio.analysis import PitchEstimate
from ..errors import EngineError


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do. `native_rates` None means any rate; `default_rate` None means the output rate.
    `grains`: the engine implements the grain protocol (`grain_catalogue`, `render_grains`, `morph_frames`):
    what a grain kit and a grain-morph wavetable need. `textures`: the engine babbles free-running textures
    (`render_textures`): what a texture instrument needs. Callers check these flags, never the engine's type.
    `gpu`: it trains and renders on a GPU when it has one (a cluster then asks for one GPU per fit and a
    fraction of one per render task). `batch_invariant`: a request renders to the same bytes whatever else
    is in its batch, so a cluster may split a plan's requests into shards. A matrix product's last bits can
    depend on how many rows it multiplies, and a reservoir's chaos or a GRU amplifies them, so an engine sets
    it only when its takes never see their batch: the sampler; ddsp, which renders in blocks whose row count
    depends on the note's length alone (`ddsp.engine.render_blocks`); the conceptor, whose voices run in
    blocks of a fixed size (`conceptor.kernels.render`)."""
    pitched: bool = True
    blendable: bool = True
    trainable: bool = True
    grains: bool = False
    textures: bool = False
    gpu: bool = False
    batch_invariant: bool = False
    native_rates: tuple[int, ...] | None = None
    default_rate: int | None = None


@dataclass(frozen=True)
class Clip:
    """One channel of one recording of a source, at the corpus rate, with its measured pitch."""
    source: str
    channel: str
    recording: int           # index of the recording among the source's recordings
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

    def recordings(self, source: str, channel: str) -> list[Clip]:
        """All recordings of `source` on `channel`."""
        found = [c for c in self.clips if c.source == source and c.channel == channel]
        if not found:
            raise KeyError(f"no clip for source {source!r} on channel {channel!r}")
        return found

    def fingerprint(self) -> str:
        """A content hash of the audio, names, rate and channel layout (for model caching)."""
        digest = hashlib.sha256(f"{self.sample_rate}|{self.channels}".encode())
        for clip in self.clips:
            digest.update(f"{clip.source}|{clip.channel}|{clip.recording}|{clip.audio.shape}".encode())
            digest.update(np.ascontiguousarray(clip.audio, dtype=np.float32).tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class RenderRequest:
    """One note to render: corner weights (summing to 1), a channel, a note, a velocity and timing."""
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
    recording: int
    positions: tuple[int, ...]
    channel: str
    note: int
    velocity: int
    duration_s: float
    decay_s: float
    variation: int = 0


@dataclass(frozen=True)
class TextureRequest:
    """One free-running texture: `duration_s` seconds on one channel. `variation` numbers the candidate
    (with the engine's seed and the channel it seeds the generation, so candidates differ)."""
    channel: str
    duration_s: float
    variation: int = 0


@dataclass(frozen=True)
class RemovedSetting:
    """A setting taken out of an engine: `value`, the one every model trained before had unless asked
    otherwise (the behaviour that remains), and `why` it went (with the README's figures).

    A spec or a saved model may still name it at `value`: it is dropped, nothing changes, and the cache keys
    keep it at `value` (`Engine.cache_key`), so models trained before keep theirs. Any other value asks for
    what is gone: `without_removed` refuses it, saying why and what to do.
    """
    value: Any
    why: str


class RemovedSettingError(ValueError):
    """A removed setting at a value other than the one that remains (`key`, `fix`: what to do)."""

    def __init__(self, key: str, got: Any, removed: RemovedSetting):
        self.key, self.fix = key, f"delete '{key}' (what remains is {key}: {removed.value!r})"
        super().__init__(f"{key}: {got!r} is no longer available: {removed.why}")


def without_removed(data: Mapping[str, Any], removed: Mapping[str, RemovedSetting]) -> dict[str, Any]:
    """`data` without the removed settings it names, each of which must be at the value that remains.

        >>> gone = {"read": RemovedSetting("band", "'point' missed its goals")}
        >>> without_removed({"read": "band", "size": 3}, gone)
        {'size': 3}
        >>> without_removed({"read": "point"}, gone)
        Traceback (most recent call last):
        ...
        dawexport.engines.base.RemovedSettingError: read: 'point' is no longer available: 'point' missed its goals
    """
    for key in sorted(removed.keys() & data.keys()):
        if data[key] != removed[key].value:
            raise RemovedSettingError(key, data[key], removed[key])
    return {k: v for k, v in data.items() if k not in removed}


class EngineSettings(BaseModel):
    """Base of every engine's settings model: unknown keys are errors, and so are removed ones (`removed`)
    except at the value that remains."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    removed: ClassVar[dict[str, RemovedSetting]] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_removed(cls, data):
        return without_removed(data, cls.removed) if cls.removed and isinstance(data, Mapping) else data


class TrainingSettings(EngineSettings):
    """The trainer's settings, shared by every learning engine; engines override the defaults they need.

    Training stops after `max_steps` (each engine sets a default that a 2-core CPU finishes within its time
    goal; a GPU simply gets there sooner), so the same spec gives the same model on any machine. `max_minutes`
    adds a wall-clock stop for those who prefer one: the step it reaches depends on the machine's speed and
    load, so it is recorded with the model, the renders and the build manifest. `threads` is part of the
    arithmetic (parallel sums add in a different order with another count), so it is a fixed number rather
    than "all cores".
    """
    max_steps: int = Field(3000, ge=1, description="training stops after this many steps")
    max_minutes: float | None = Field(None, gt=0, description="also stop after this many minutes of training "
                                      "(the step reached then depends on the machine: not reproducible)")
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads for training and rendering; the "
                         "result depends on it, so it does not follow the machine's core count")
    batch_size: int = Field(8, ge=1, le=256)
    lr: float = Field(1e-3, gt=0, le=1.0)
    lr_schedule: Literal["cosine", "exponential", "constant"] = "cosine"
    checkpoint_every: int = Field(100, ge=1)
    validate_every: int = Field(100, ge=1)
    patience: int | None = Field(None, ge=1, description="stop after this many validations without improvement")


class Engine(abc.ABC):
    """A model family. Subclasses set `name`, `capabilities`, `Settings` and implement the abstract methods;
    they bump `version` when a change makes models saved before unusable (it is part of the cache key)."""
    name: ClassVar[str]
    version: ClassVar[int] = 1
    capabilities: ClassVar[Capabilities]
    Settings: ClassVar[type[EngineSettings]] = EngineSettings
    render_only: ClassVar[tuple[str, ...]] = ()
    # the rate the instrument's samples are written at (`make_engine` sets it from the spec; None: unknown)
    output_rate: int | None = None

    def __init__(self, settings: EngineSettings, *, sample_rate: int, seed: int = 0, device: str = "auto"):
        self.settings = settings
        self.sample_rate = sample_rate
        self.seed = seed
        self.device = device
        # what training produced beyond the settings (TrainResult.record(): steps, what stopped them, device),
        # set by `fit` and restored by `load`; None for engines that do not train
        self.training: dict | None = None

    def cache_key(self, corpus: Corpus) -> str:
        """What the trained model depends on: the corpus content, engine, training settings, rate and seed.

        Settings named in `render_only` change how a trained model plays, not what it learns, so changing
        them re-renders without retraining (see `render_key`).
        """
        training = self._settings_record(exclude=self.render_only)
        blob = json.dumps({"engine": self.name, "settings": training,
                           "rate": self.sample_rate, "seed": self.seed, "corpus": corpus.fingerprint(),
                           "version": self.version}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def render_key(self, corpus: Corpus) -> str:
        """What rendered takes depend on: the trained model (with the steps it reached: a clock-stopped
        training reaches a different step on another machine) plus every setting, render-only ones included."""
        blob = json.dumps([self.cache_key(corpus), self._settings_record(),
                           (self.training or {}).get("steps")], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def _settings_record(self, exclude: Sequence[str] = ()) -> dict[str, Any]:
        """The settings as the keys see them: with each removed setting at the value that remains, as every
        model trained before its removal recorded it, so that those models keep their keys."""
        removed = {k: r.value for k, r in getattr(type(self.settings), "removed", {}).items() if k not in exclude}
        return {**removed, **self.settings.model_dump(mode="json", exclude=set(exclude))}

    @property
    def corpus_rate(self) -> int:
        """The rate of the corpus it learns from: the model's rate (an engine with a part at another rate, as
        the wavenet's full-band guide, says so here)."""
        return self.sample_rate

    @property
    def take_rate(self) -> int:
        """The rate of the takes `render` returns: the model's rate unless the engine says otherwise."""
        return self.sample_rate

    def check_corpus_rate(self, corpus: Corpus) -> None:
        """An EngineError unless the corpus is at the rate the engine learns from (`corpus_rate`)."""
        if corpus.sample_rate != self.corpus_rate:
            raise EngineError(f"corpus is at {corpus.sample_rate} Hz but the {self.name} model learns from "
                              f"{self.corpus_rate} Hz", fix="resample the corpus to the engine's rate")

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

    def render_group(self, request: RenderRequest):
        """Requests with the same (hashable) group share work when rendered in one batch, so a cluster keeps
        them in one task; None (the default): a request shares nothing beyond its take's channels."""
        return None

    # The grain protocol: engines with `capabilities.grains` override these three.
    def grain_catalogue(self) -> dict[tuple[str, int], tuple[int, ...]]:
        """(source, recording) -> positions along its grain sequence of the grains that sound (on the first,
        main channel), in order: what a grain kit picks its pads from."""
        raise NotImplementedError(f"engine {self.name!r} has no grains")

    def render_grains(self, requests: Sequence[GrainRequest], progress=None) -> list[np.ndarray]:
        """Render grain-kit pads in batched calls: one 1-D float32 array at `self.sample_rate` per request."""
        raise NotImplementedError(f"engine {self.name!r} cannot render grains")

    def morph_frames(self, a: tuple[str, int], b: tuple[str, int], channel: str, frames: int,
                     seconds: float) -> list[np.ndarray]:
        """`frames` runs of `seconds` each, morphing from grain `a` to grain `b` ((source, position) of the
        first recording on `channel`): what a grain-morph wavetable takes its cycles from."""
        raise NotImplementedError(f"engine {self.name!r} cannot morph grains")

    # The texture protocol: engines with `capabilities.textures` override this one.
    def render_textures(self, requests: Sequence[TextureRequest], progress=None) -> list[np.ndarray]:
        """Generate free-running textures in batched calls: one 1-D float32 array at `self.sample_rate` per
        request."""
        raise NotImplementedError(f"engine {self.name!r} cannot generate textures")
