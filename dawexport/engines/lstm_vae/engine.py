"""The `lstm_vae` engine: SONGSHTR's LSTM + VAE over blocks of raw audio, babbling textures.

    engine = LSTMVAEEngine(LSTMVAESettings(domain="fft"), sample_rate=22050, seed=0)
    engine.fit(corpus, workdir, progress)            # resumable; preview clips in workdir/previews/
    textures = engine.render_textures([TextureRequest("L", 4.0, variation=i) for i in range(16)])

Training audio (every source and channel with time-stretched / pitch-shifted copies, optionally high-passed)
is cut into windowed blocks (`frames.BlockCodec`); each block's features are standardised per coefficient
and the model learns to predict the next block (log-MSE + β·KL) on random runs of `seq_frames` blocks.
A texture starts from `prime_frames` blocks of the sources (a seeded position per texture) and continues
with the model's own predictions, the latent drawn at `temperature`; every `reprime_every` seconds it is
primed afresh with the blocks up to an onset of the sources (a seeded one per texture and segment), so a
model that settles into a decay or a hum after a hit gets the next hit to continue. The prime's blocks are
never part of the texture: what sounds is the model's own continuation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...errors import EngineError
from ...progress import SILENT
from ..base import Capabilities, Corpus
from ..common.persistence import load_module_state, read_torch_model, save_state, torch_model_record
from ..common.seeding import stable_seed
from ..common.torch_utils import cpu_threads
from ..common.training import TrainConfig, Trainer, TrainResult
from ..textures import RENDER_ONLY, TextureEngine, onset_frames, preview_hook, training_audio
from .frames import BlockCodec
from .model import LSTMVAE, LSTMVAEConfig
from .settings import LSTMVAESettings

MODEL_NAME = "lstm_vae"
PRIME_POOL_FRAMES = 4096


class LSTMVAEEngine(TextureEngine):
    name = "lstm_vae"
    version = 2
    capabilities = Capabilities(pitched=False, blendable=False, trainable=True, textures=True,
                                default_rate=22050)
    Settings = LSTMVAESettings
    render_only = RENDER_ONLY + ("prime_frames", "griffin_lim_iters", "frame_noise")

    def __init__(self, settings, *, sample_rate, seed=0, device="auto"):
        super().__init__(settings, sample_rate=sample_rate, seed=seed, device=device)
        self.model: LSTMVAE | None = None
        self.mean = self.std = None
        self.prime_pool: np.ndarray | None = None       # standardised features of the sources
        self.spread: np.ndarray | None = None           # per feature: what the predictions miss (standardised)
        self.train_result: TrainResult | None = None

    @property
    def codec(self) -> BlockCodec:
        s = self.settings
        return BlockCodec(s.domain, s.block_size, s.griffin_lim_iters)

    # ------------------------------------------------------------------ training

    def fit(self, corpus: Corpus, workdir: Path, progress=SILENT) -> None:
        progress = progress or SILENT
        s = self.settings
        originals, copies = training_audio(corpus, s, progress)
        sources, audio = originals, originals + copies
        codec = self.codec
        feats = [codec.encode(a) for a in audio]
        stacked = np.concatenate(feats)
        self.mean = stacked.mean(axis=0).astype(np.float32)
        self.std = np.maximum(stacked.std(axis=0), 1e-3).astype(np.float32)
        feats = [((f - self.mean) / self.std).astype(np.float32) for f in feats]
        originals = feats[:len(originals)]
        self.prime_pool = np.concatenate(originals)[:PRIME_POOL_FRAMES]
        length = s.seq_frames + 1
        silence = self._silence_features()
        sizes = np.array([len(f) for f in feats], dtype=np.float64)

        def run(f: np.ndarray, offset: int) -> np.ndarray:
            out = np.empty((length, f.shape[1]), dtype=np.float32)
            piece = f[max(0, offset):offset + length]
            out[:len(piece)] = piece
            if len(piece) < length:                       # past the end: the encoded silence
                out[len(piece):] = silence
            return out

        def batch_fn(step: int, rng: np.random.Generator):
            picks = rng.choice(len(feats), size=s.batch_size, p=sizes / sizes.sum())
            return np.stack([run(feats[int(i)], int(rng.integers(0, max(1, len(feats[int(i)]) - length // 2))))
                             for i in picks])

        val = np.stack([run(f, max(0, (len(f) - length) * k // 2)) for f in originals for k in (0, 1)])
        torch.manual_seed(self.seed)
        model = LSTMVAE(LSTMVAEConfig(features=codec.size, hidden=s.lstm_size, layers=s.lstm_layers,
                                      latent=s.latent_size, kl_weight=s.kl_weight))
        trainer = Trainer(model, TrainConfig.from_settings(s, seed=self.seed, device=self.device),
                          batch_fn=batch_fn, loss_fn=lambda m, x: m.loss(x),
                          val_batches=[val[i:i + 8] for i in range(0, len(val), 8)], workdir=Path(workdir),
                          progress=progress, desc="lstm_vae train",
                          on_validate=preview_hook(workdir, self.sample_rate, self._preview, s, progress))
        progress.info(f"lstm_vae: {s.domain} blocks of {s.block_size} ({codec.size} features, hop {codec.hop}), "
                      f"{sum(p.numel() for p in model.parameters()):,} parameters, training on "
                      f"{trainer.device.type} for up to {s.max_steps} steps / {s.max_minutes} min")
        self.train_result = trainer.run()
        self.model = model.cpu().eval()
        rng = np.random.default_rng(stable_seed("lstm_vae spread", self.seed))
        torch.manual_seed(self.seed)
        self.spread = self.model.residual_spread([batch_fn(0, rng) for _ in range(8)]).numpy().astype(np.float32)
        self.fit_match_eq(sources, progress)

    def _silence_features(self) -> np.ndarray:
        silent = self.codec.encode(np.zeros(self.settings.block_size * 2))[1]
        return ((silent - self.mean) / self.std).astype(np.float32)

    # ------------------------------------------------------------------ save / load

    def save(self, directory: Path) -> None:
        tensors, meta = torch_model_record(self, self.model, self.train_result)
        tensors["mean"] = torch.from_numpy(self.mean)
        tensors["std"] = torch.from_numpy(self.std)
        tensors["prime_pool"] = torch.from_numpy(np.ascontiguousarray(self.prime_pool))
        tensors["spread"] = torch.from_numpy(self.spread)
        tensors.update(self.match_eq_record())
        save_state(Path(directory), MODEL_NAME, tensors, meta)

    def load(self, directory: Path) -> None:
        config, (mean, std, pool, spread, match), weights, file = read_torch_model(
            self, directory, MODEL_NAME, LSTMVAEConfig,
            lambda tensors, meta, config: (tensors["mean"].numpy(), tensors["std"].numpy(),
                                           tensors["prime_pool"].numpy(), tensors["spread"].numpy(),
                                           self.read_match_eq(tensors)))
        if (mean.shape != (config.features,) or spread.shape != (config.features,) or pool.ndim != 2
                or pool.shape[1] != config.features):
            raise EngineError("model file's statistics do not match its model", file=file,
                              fix="delete that folder and build again")
        model = LSTMVAE(config)
        load_module_state(model, weights, file=file)
        self.model, self.mean, self.std, self.prime_pool, self.spread = model.eval(), mean, std, pool, spread
        self.match_eq_db = match

    # ------------------------------------------------------------------ generation

    def _generate(self, model: LSTMVAE, keys: list[tuple], n: int, reprime: bool = True) -> list[np.ndarray]:
        """One texture per key, n samples each: primed with source blocks, then the model's own blocks; with
        `reprime_every` (and `reprime`), primed afresh from a source onset every that many seconds (a new
        hit, say)."""
        s, codec = self.settings, self.codec
        prime_len = min(s.prime_frames, len(self.prime_pool))
        steps = max(1, -(-n // codec.hop) + codec.block // codec.hop)
        period = steps if s.reprime_every <= 0 or not reprime else \
            max(1, int(round(s.reprime_every * self.sample_rate / codec.hop)))
        segments = [(t, min(period, steps - t)) for t in range(0, steps, period)]
        ends = self._prime_ends(prime_len) if len(segments) > 1 else None
        primes = np.empty((len(segments), len(keys), prime_len, codec.size), dtype=np.float32)
        noise = np.empty((steps, len(keys), model.config.latent), dtype=np.float32)
        spread = None if self.spread is None or s.frame_noise <= 0 else self.spread * np.float32(s.frame_noise)
        frame_noise = None if spread is None else np.empty((len(keys), steps, codec.size), dtype=np.float32)
        for j, key in enumerate(keys):
            rng = np.random.default_rng(stable_seed("lstm_vae", self.seed, key))
            offset = int(rng.integers(0, max(1, len(self.prime_pool) - prime_len + 1)))
            noise[:, j] = rng.standard_normal((steps, model.config.latent), dtype=np.float32)
            if frame_noise is not None:
                frame_noise[j] = rng.standard_normal((steps, codec.size), dtype=np.float32)
                frame_noise[j] *= spread
            starts = [offset] if ends is None else list(ends[rng.integers(0, len(ends), len(segments))] - prime_len)
            for k, start in enumerate(starts):
                primes[k, j] = self.prime_pool[start:start + prime_len]
        feats = [primes[0]]
        with cpu_threads(1):          # a step is a few (batch × hidden) matmuls: threads only wait on each other
            for k, (t, length) in enumerate(segments):
                feats.append(model.generate(
                    torch.from_numpy(primes[k]), length, torch.from_numpy(noise[t:t + length]), s.temperature,
                    None if frame_noise is None else torch.from_numpy(frame_noise[:, t:t + length])).numpy())
        feats = np.concatenate(feats, axis=1)
        feats *= self.std
        feats += self.mean
        audio = codec.decode(feats)
        # the texture begins where the model takes over (the prime's own blocks only lead into it)
        start = prime_len * codec.hop
        audio = audio[:, start:start + n]
        if audio.shape[1] < n:
            audio = np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
        np.clip(audio, -1.0, 1.0, out=audio)
        return list(audio.astype(np.float32, copy=False))

    def _prime_ends(self, prime_len: int) -> np.ndarray:
        """Where a re-priming prime ends (exclusive) in the pool: just after each onset block of the sources
        (every position when they have none)."""
        energy = self.codec.frame_energy_db(self.prime_pool * self.std + self.mean)
        ends = onset_frames(energy) + 1
        ends = ends[ends >= prime_len]
        return ends if len(ends) else np.arange(prime_len, len(self.prime_pool) + 1)


__all__ = ["LSTMVAEEngine", "LSTMVAESettings"]
