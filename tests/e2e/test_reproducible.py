"""Reproducible builds: the same spec gives the same files whatever else the machine is doing.

Every engine renders a take from the take's own request and the spec's seed alone, so rendering a grid whole,
in shards or in another order gives the same bytes; a tiny spec built in separate caches (quiet, with the CPU
busy, with another torch thread count) gives byte-identical folders.
"""
from __future__ import annotations

import numpy as np
import pytest

import dawexport.engines  # noqa: F401,I001  (before torch: sets the OpenMP wait policy)

from dawexport.audio.analysis import PitchEstimate
from dawexport.engines import engine_class
from dawexport.engines.base import Clip, Corpus, RenderRequest

SR = 16000


def _tone(f0: float, seconds: float, bright: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(bright ** (k - 1) * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 8))
    x = 0.4 * x / np.max(np.abs(x)) * np.minimum(1.0, t / 0.03) * np.exp(-0.8 * t)
    x += 0.005 * np.random.default_rng(seed).standard_normal(len(t))
    return x.astype(np.float32)


def _corpus(channels=("L", "R")) -> Corpus:
    clips = []
    for i, (name, f0, bright) in enumerate((("dark", 220.0, 0.3), ("bright", 330.0, 0.7))):
        midi = 69 + 12 * np.log2(f0 / 440)
        for j, channel in enumerate(channels):
            audio = _tone(f0, 0.8, bright, seed=10 * i + j) * (1.0 if j == 0 else 0.6)
            clips.append(Clip(name, channel, 0, audio, PitchEstimate(f0, float(midi), 1.0, 1.0)))
    return Corpus(SR, tuple(channels), tuple(clips))


def _grid(channels=("L", "R")) -> list[RenderRequest]:
    """Blend points × notes × velocities × round robins × channels, with two note lengths."""
    out = []
    for weights in ((("dark", 1.0), ("bright", 0.0)), (("dark", 0.5), ("bright", 0.5)),
                    (("dark", 0.0), ("bright", 1.0))):
        for note in (55, 62):
            for velocity in (40, 127):
                for variation in (0, 1):
                    for channel in channels:
                        duration = 0.3 if note == 55 else 0.2
                        out.append(RenderRequest(weights, channel, note, velocity, duration, 0.1, variation))
    return out


TINY = {
    "ddsp": dict(latent_size=4, hidden_size=16, n_harmonics=12, noise_bands=9, n_mels=16, table_size=128,
                 max_steps=3, batch_size=2, crop_s=0.2, augment_copies=1, checkpoint_every=10, validate_every=10),
    "wavenet": dict(width=8, stacks=1, layers=4, encoder_width=8, encoder_layers=2, encoder_cycle=2, hop=128,
                    max_steps=3, batch_size=2, crop_samples=512, augment_low=55, augment_high=62,
                    augment_step=7.0, render_batch=5, checkpoint_every=10, validate_every=10),
    "sampler": {},
}


@pytest.fixture(scope="module", params=sorted(TINY))
def fitted(request, tmp_path_factory):
    name = request.param
    cls = engine_class(name)
    engine = cls(cls.Settings(**TINY[name]), sample_rate=SR, seed=7, device="cpu")
    engine.fit(_corpus(), tmp_path_factory.mktemp(name), None)
    return engine


def test_a_grid_renders_the_same_whole_in_shards_and_in_any_order(fitted):
    requests = _grid()
    whole = fitted.render(requests)
    shards = [requests[i:i + 5] for i in range(0, len(requests), 5)]
    sharded = [take for shard in shards for take in fitted.render(shard)]
    order = np.random.default_rng(3).permutation(len(requests))
    shuffled = fitted.render([requests[i] for i in order])
    alone = [fitted.render([r])[0] for r in requests[::7]]
    for i, take in enumerate(whole):
        assert take.dtype == np.float32 and np.any(take != 0), i
        assert sharded[i].tobytes() == take.tobytes(), (fitted.name, "shard", requests[i])
    for j, i in enumerate(order):
        assert shuffled[j].tobytes() == whole[i].tobytes(), (fitted.name, "order", requests[i])
    for j, take in enumerate(alone):
        assert take.tobytes() == whole[7 * j].tobytes(), (fitted.name, "alone", requests[7 * j])
