"""The `sampler` engine: no learning. It repitches the user's own recording, as a classic sampler does.

For each request it takes, for every blend corner, the recording of that source whose measured pitch is
nearest the note, repitches it by tape-speed to land exactly on the note, scales it by velocity and
mixes the corners by their weights (a plain layered mix: no timbre interpolation at all). It is the
baseline every neural engine is measured against, and it makes tests run in seconds.

    >>> from dawexport.audio.analysis import PitchEstimate
    >>> tone = np.sin(2 * np.pi * 440 * np.arange(4000) / 8000).astype(np.float32)
    >>> corpus = Corpus(8000, ("mono",), (Clip("flute", "mono", 0, tone, PitchEstimate(440.0, 69.0, 1.0, 1.0)),))
    >>> engine = SamplerEngine(SamplerEngine.Settings(), sample_rate=8000)
    >>> engine.fit(corpus, None, None)
    >>> [take] = engine.render([RenderRequest((("flute", 1.0),), "mono", 81, 127, 0.2, 0.1)])
    >>> len(take)                                          # (0.2 s held + 0.1 s release) at 8 kHz
    2400
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from pydantic import Field

from ..audio.analysis import midi_to_hz
from ..audio.repitch import repitch
from ..errors import EngineError
from .base import Capabilities, Clip, Corpus, Engine, EngineSettings, RenderRequest
from .common.envelopes import release_envelope
from .common.persistence import load_numpy_model, save_numpy_model
from .common.velocity import velocity_gain


class SamplerSettings(EngineSettings):
    velocity_curve_db: float = Field(40.0, ge=0.0, le=96.0,
                                     description="dB between velocity 127 and velocity 1 (40 = amplitude ∝ v²)")
    round_robin_offset_ms: float = Field(9.0, ge=0.0, le=200.0,
                                         description="each round robin starts this much later into the source")
    unpitched_root: int = Field(60, ge=0, le=127, description="root key assumed for sources with no pitch")


class SamplerEngine(Engine):
    name = "sampler"
    version = 3  # 2: model files sampler.safetensors + sampler.json; 3: with a checksum, one velocity law
    capabilities = Capabilities(pitched=True, blendable=True, trainable=False, batch_invariant=True,
                                native_rates=None, default_rate=None)
    Settings = SamplerSettings

    def __init__(self, settings, *, sample_rate, seed=0, device="auto"):
        super().__init__(settings, sample_rate=sample_rate, seed=seed, device=device)
        self.corpus: Corpus | None = None

    def fit(self, corpus: Corpus, workdir: Path, progress) -> None:
        self.corpus = corpus

    def save(self, directory: Path) -> None:
        arrays = {f"clip{i}": clip.audio for i, clip in enumerate(self.corpus.clips)}
        meta = {"sample_rate": self.corpus.sample_rate, "channels": list(self.corpus.channels),
                "clips": [{"source": c.source, "channel": c.channel, "recording": c.recording,
                           "pitch": [c.pitch.hz, c.pitch.midi, c.pitch.confidence, c.pitch.voiced_fraction]}
                          for c in self.corpus.clips]}
        save_numpy_model(directory, "sampler", arrays, meta)

    def load(self, directory: Path) -> None:
        from ..audio.analysis import PitchEstimate
        arrays, meta = load_numpy_model(directory, "sampler", "sampler")
        clips = tuple(Clip(m["source"], m["channel"], m["recording"], arrays[f"clip{i}"], PitchEstimate(*m["pitch"]))
                      for i, m in enumerate(meta["clips"]))
        self.corpus = Corpus(meta["sample_rate"], tuple(meta["channels"]), clips)

    def _nearest_take(self, source: str, channel: str, note: int) -> tuple[Clip, float]:
        """The recording nearest `note` in pitch, and the playback ratio that lands it on the note."""
        takes = self.corpus.recordings(source, channel)
        target = float(midi_to_hz(note))

        def source_midi(clip: Clip) -> float:
            return clip.pitch.midi if np.isfinite(clip.pitch.hz) else float(self.settings.unpitched_root)

        clip = min(takes, key=lambda c: abs(source_midi(c) - note))
        return clip, target / float(midi_to_hz(source_midi(clip)))

    def _frames(self, request: RenderRequest) -> int:
        return int(round((request.duration_s + request.release_s) * self.sample_rate))

    def _offset(self, request: RenderRequest) -> int:
        return int(request.variation * self.settings.round_robin_offset_ms * 1e-3 * self.sample_rate)

    def _frames_needed(self, requests: Sequence[RenderRequest]) -> dict[tuple[str, str, int, int], int]:
        """Per repitched recording, how many of its output frames the longest request reads."""
        needed: dict[tuple[str, str, int, int], int] = {}
        for request in requests:
            for source, weight in request.weights:
                if weight > 1e-6:
                    clip, _ = self._nearest_take(source, request.channel, request.note)
                    key = (source, request.channel, clip.recording, request.note)
                    needed[key] = max(needed.get(key, 0), self._offset(request) + self._frames(request))
        return needed

    def render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        if self.corpus is None:
            raise EngineError("the sampler engine has no corpus; call fit() or load() first")
        if self.corpus.sample_rate != self.sample_rate:
            raise EngineError(f"corpus is at {self.corpus.sample_rate} Hz but the engine at {self.sample_rate} Hz")
        out = []
        needed = self._frames_needed(requests)
        cache: dict[tuple[str, str, int, int], np.ndarray] = {}
        iterator = progress.bar(requests, total=len(requests), desc="render", unit="recording") if progress else requests
        for request in iterator:
            frames = self._frames(request)
            mix = np.zeros(frames, dtype=np.float32)
            for source, weight in request.weights:
                if weight <= 1e-6:
                    continue
                clip, ratio = self._nearest_take(source, request.channel, request.note)
                key = (source, request.channel, clip.recording, request.note)
                if key not in cache:      # only as much as the longest note needs, not the whole recording
                    cache[key] = repitch(clip.audio, ratio, frames=needed[key])
                audio = cache[key][self._offset(request):][:frames]
                mix[:len(audio)] += weight * audio
            gain = velocity_gain(request.velocity, self.settings.velocity_curve_db)
            out.append(mix * gain * release_envelope(frames, self.sample_rate, request.duration_s,
                                                     request.release_s))
        return out
