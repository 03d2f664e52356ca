"""The `samplernn` engine: SampleRNN learns the sound of a few seconds of audio and babbles textures.

    engine = SampleRNNEngine(SampleRNNSettings(max_minutes=10), sample_rate=16000, seed=0)
    engine.fit(corpus, workdir, progress)            # resumable; preview clips in workdir/previews/
    textures = engine.render_textures([TextureRequest("L", 4.0, variation=i) for i in range(16)])

The corpus (every source and channel, plus time-stretched and optionally pitch-shifted copies) is quantised
to 8-bit mu-law; the model trains on random crops with the common trainer (device auto, checkpoints, exact
resume, budget). Generation runs the requested textures (`render_batch` at a time) as one batch of
streams, primed with a few samples of the sources, each stream drawing its samples from its own seeded
uniforms (so a texture is the same whichever batch it is in), at `temperature`; a texture re-primed every
`reprime_every` seconds is one stream per segment, and every segment of every texture is drawn at once;
on the CPU the streams are split between `threads` cores, one torch thread each. At the end of training a
match EQ is fitted on takes of its own (see `TextureEngine.fit_match_eq`) and kept with the model: every
texture goes through it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...progress import SILENT
from ..base import Capabilities, Corpus
from ..common.persistence import load_module_state, read_torch_model, save_state, torch_model_record
from ..common.seeding import stable_seed
from ..common.torch_utils import pick_device
from ..common.training import TrainConfig, Trainer, TrainResult
from ..textures import RENDER_ONLY, TextureEngine, onset_frames, preview_hook, training_audio
from ..wavenet.model import mu_law_decode
from .data import quantise, random_crops, validation_crops
from .model import SILENCE_CLASS, SampleRNN, SampleRNNConfig, generate_on_cores, parameter_count
from .settings import SampleRNNSettings

MODEL_NAME = "samplernn"
PRIME_POOL_S = 20.0          # seconds of the sources kept with the model to prime generation
ONSET_BLOCK_S = 0.016        # the blocks whose energy rise marks an onset to re-prime from
DECODED = mu_law_decode(np.arange(256))     # each class's sample value (float32)
ROWS_PER_CORE = 256          # streams one generating thread steps at most at once (100-500 cost about the same)


class SampleRNNEngine(TextureEngine):
    name = "samplernn"
    version = 1
    capabilities = Capabilities(pitched=False, blendable=False, trainable=True, textures=True,
                                default_rate=16000)
    Settings = SampleRNNSettings
    render_only = RENDER_ONLY + ("prime_seconds",)

    def __init__(self, settings, *, sample_rate, seed=0, device="auto"):
        super().__init__(settings, sample_rate=sample_rate, seed=seed, device=device)
        self.model: SampleRNN | None = None
        self.prime_pool = np.full(0, SILENCE_CLASS, dtype=np.uint8)
        self.train_result: TrainResult | None = None

    def model_config(self) -> SampleRNNConfig:
        s = self.settings
        return SampleRNNConfig(frame_sizes=s.frame_sizes, dim=s.dim, mlp_dim=s.mlp_dim, embed=s.embed)

    # ------------------------------------------------------------------ training

    def fit(self, corpus: Corpus, workdir: Path, progress=SILENT) -> None:
        progress = progress or SILENT
        s = self.settings
        sources, copies = training_audio(corpus, s, progress)
        originals, copies = quantise(sources), quantise(copies)
        clips = originals + copies
        torch.manual_seed(self.seed)
        model = SampleRNN(self.model_config())
        top = model.config.top
        length = top + s.seq_len

        def batch_fn(step: int, rng: np.random.Generator):
            return random_crops(clips, rng, s.batch_size, length, lead=top)

        val = validation_crops(originals, length)
        val_batches = [val[i:i + 8] for i in range(0, len(val), 8)]
        self.prime_pool = _prime_pool(originals, int(PRIME_POOL_S * self.sample_rate))
        trainer = Trainer(model, TrainConfig.from_settings(s, seed=self.seed, device=self.device),
                          batch_fn=batch_fn, loss_fn=lambda m, q: m.loss(q), val_batches=val_batches,
                          workdir=Path(workdir), progress=progress, desc="samplernn train",
                          on_validate=preview_hook(workdir, self.sample_rate, self._preview, s, progress))
        progress.info(f"samplernn: {model.config.tiers} tiers, frames {model.config.frame_sizes}, "
                      f"{parameter_count(model):,} parameters, training on {trainer.device.type} "
                      f"({trainer.precision.describe()}) for up to {s.max_steps} steps / {s.max_minutes} min")
        self.train_result = trainer.run()
        self.model = model.cpu().eval()
        self.fit_match_eq(sources, progress)

    # ------------------------------------------------------------------ save / load

    def save(self, directory: Path) -> None:
        tensors, meta = torch_model_record(self, self.model, self.train_result)
        tensors["prime_pool"] = torch.from_numpy(self.prime_pool.copy())
        tensors.update(self.match_eq_record())
        save_state(Path(directory), MODEL_NAME, tensors, meta)

    def load(self, directory: Path) -> None:
        config, (pool, match), weights, file = read_torch_model(
            self, directory, MODEL_NAME, SampleRNNConfig,
            lambda tensors, meta, config: (tensors["prime_pool"].numpy().astype(np.uint8),
                                           self.read_match_eq(tensors)))
        model = SampleRNN(config)
        load_module_state(model, weights, file=file)
        self.model, self.prime_pool, self.match_eq_db = model.eval(), pool, match

    # ------------------------------------------------------------------ generation

    def _generate(self, model: SampleRNN, keys: list[tuple], n: int, reprime: bool = True) -> list[np.ndarray]:
        """One stream per key (anything hashable with the seed): primed from the pool, sampled from its own
        seeded uniforms; with `reprime_every` (and `reprime`), primed afresh just after an onset of the
        sources every that many seconds. Returns float32 audio (n samples each).

        Each segment between two primes depends only on its prime and its uniforms (`_segments`), so the
        segments of one length are drawn as one batch, every texture's at once: streams × segments rows
        (at most `ROWS_PER_CORE` a core per call), not a call per segment of streams rows; a row costs about
        half as much CPU time at 100-500 rows a core as at 32, and the draws are the same."""
        s = self.settings
        segments, primes, uniforms = self._segments(model.config.top, keys, n, reprime)
        device = pick_device(self.device)
        device = device if device.type == "cuda" else torch.device("cpu")     # the per-sample loop: CUDA or CPU
        model.to(device)
        q, keys_n = np.empty((len(keys), n), dtype=np.int64), len(keys)
        for length in sorted({length for _, length in segments}, reverse=True):
            starts = [(k, t) for k, (t, size) in enumerate(segments) if size == length]
            prime = primes[[k for k, _ in starts]].reshape(len(starts) * keys_n, -1)     # row: segment, key
            draws = np.concatenate([uniforms[t:t + length] for _, t in starts], axis=1)
            for rows in even_slices(len(prime), ROWS_PER_CORE * max(1, s.threads)):
                out = generate_on_cores(model, torch.from_numpy(prime[rows]).to(device), length,
                                        torch.from_numpy(draws[:, rows]).to(device), s.temperature,
                                        s.threads).cpu().numpy()
                for i in range(rows.start // keys_n, (rows.stop - 1) // keys_n + 1):
                    lo, hi, t = max(rows.start, i * keys_n), min(rows.stop, (i + 1) * keys_n), starts[i][1]
                    q[lo - i * keys_n:hi - i * keys_n, t:t + length] = out[lo - rows.start:hi - rows.start]
        return list(DECODED[q])          # = mu_law_decode(q), by lookup (the formula took ~2 % of a build's render)

    def _segments(self, top: int, keys: list[tuple], n: int, reprime: bool = True
                  ) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
        """What `_generate` draws for each key: the segments (start, length) between primes, each segment's
        prime per key (segments, keys, span) as classes, and each key's uniforms (n, keys)."""
        s = self.settings
        span = top * (1 + int(round(s.prime_seconds * self.sample_rate / top)))      # prime: whole top frames
        period = n if s.reprime_every <= 0 or not reprime else max(top, int(round(s.reprime_every * self.sample_rate)))
        segments = [(t, min(period, n - t)) for t in range(0, n, period)]
        ends = self._prime_ends(top) if len(segments) > 1 else None
        primes = np.empty((len(segments), len(keys), span), dtype=np.int64)
        uniforms = np.empty((n, len(keys)), dtype=np.float32)
        for j, key in enumerate(keys):
            rng = np.random.default_rng(stable_seed("samplernn", self.seed, key))
            offset = int(rng.integers(0, max(1, len(self.prime_pool) - span)))
            uniforms[:, j] = rng.random(n, dtype=np.float32)
            starts = [offset] if ends is None else list(ends[rng.integers(0, len(ends), len(segments))] - span)
            for k, start in enumerate(starts):
                primes[k, j] = _padded(self.prime_pool[max(0, start):start + span], span)   # silence before
        return segments, primes, uniforms

    def _prime_ends(self, top: int) -> np.ndarray:
        """Where a re-priming prime ends (exclusive) in the pool: at the end of each onset block (16 ms) of
        the sources, so the model continues a hit from inside its attack (every position when none)."""
        block = max(1, int(round(ONSET_BLOCK_S * self.sample_rate)))
        audio = mu_law_decode(self.prime_pool[:len(self.prime_pool) // block * block].astype(np.int64))
        energy = 10 * np.log10(np.square(audio.reshape(-1, block), dtype=np.float64).sum(axis=1) + 1e-20)
        ends = (onset_frames(energy) + 1) * block
        ends = ends[ends >= top]
        return ends if len(ends) else np.arange(top, len(self.prime_pool) + 1)


def even_slices(total: int, most: int) -> list[slice]:
    """`total` rows in as few even slices as hold at most `most` rows each.

        >>> even_slices(576, 512)
        [slice(0, 288, None), slice(288, 576, None)]
    """
    parts = max(1, -(-total // max(1, most)))
    bounds = [round(i * total / parts) for i in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


def _padded(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, SILENCE_CLASS, dtype=np.int64)
    out[n - len(x):] = x
    return out


def _prime_pool(clips: list[np.ndarray], limit: int) -> np.ndarray:
    """The first `limit` samples of the original clips, end to end (uint8 classes)."""
    pool = np.concatenate(clips)[:limit] if clips else np.full(0, SILENCE_CLASS, np.uint8)
    return pool.astype(np.uint8)


__all__ = ["SampleRNNEngine", "SampleRNNSettings"]
