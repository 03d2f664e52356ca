"""The `wavenet` engine: an NSynth-style WaveNet autoencoder trained on the user's own sounds, at 16 kHz.

    >>> engine = WaveNetEngine(WaveNetEngine.Settings(max_steps=400), sample_rate=16000, seed=0)
    >>> engine.model_config().receptive_field > 0
    True

Then `engine.fit(corpus, workdir, progress)` trains (resumable: checkpoints live in workdir),
`engine.save(folder)` / `engine.load(folder)` keep the model, and `engine.render(plan.requests(), progress)`
decodes the whole grid as one batch (tests/test_wavenet.py trains a tiny one).

The guide (issue 16). Trained from scratch, a WaveNet needs a GPU's days before it plays notes; on a CPU it
renders noise. So by default (`guide: ddsp`) the engine first trains the ddsp engine on the same corpus at the
same rate (`guide_steps`, through its public API), and the WaveNet is conditioned, sample by sample, on a guide
waveform as well as on the latent: in training the target itself with white noise injected `guide_snr_db` …
+20 dB below it, at render time the ddsp engine's render of the very same request (its pitch trajectory,
envelope, blend, velocity and release). By default (`guide_residual`) the network codes the difference from
the guide in 8-bit mu-law, so the quantisation floor sits under that difference rather than under the note (a
flute's quiet upper bands lie below the ~38 dB floor of 8-bit mu-law over the note itself); with
`guide_residual: 0` it codes the waveform and a prior (`guide_prior`) centres each sample's distribution on the
guide's mu-law class. Either way it learns the residual around the guide, not audio from nothing. It then plays in
tune from its first hundred steps, and the take has the guide's level and envelope (no extra gain or release
envelope is applied). `guide: none` is NSynth's original recipe (below).

The high band (`high_band: guide`, the default for a guided model). A 16 kHz WaveNet has nothing above 8 kHz,
which sounds dull and which a comparison with the 44.1/48 kHz sources counts. So the guide is trained at the
instrument's output rate (the corpus is read at that rate; the WaveNet learns from it resampled to 16 kHz), and
every take is made at the output rate: the guide renders the note at the output rate; that render, resampled to
16 kHz, is what the WaveNet refines; the WaveNet's 16 kHz take is resampled to the output rate (the same
resampler as everywhere, flat to 7.2 kHz) and a crossover (`dawexport.audio.crossover`: one linear-phase FIR
low-pass h, output = guide + h * (wavenet - guide), so the two bands' filters sum to exactly 1 in gain and
phase) keeps the WaveNet below 6.4 kHz, the guide above 7.2 kHz and a complementary blend between. `none` (or an
unguided model) gives the pure 16 kHz takes, resampled by the pipeline with nothing above 8 kHz.

What it learns. A non-causal dilated-convolution encoder turns audio into 16-dimensional timbre latents, one
every `hop` (512) samples; a causal WaveNet decoder, conditioned on the repeated latents and (by default) on
the note's pitch, predicts each 8-bit mu-law sample from the ones before it. The corpus is augmented with
tape-speed pitch shifts of every source (made with `dawexport.audio.repitch`) over `augment_low` …
`augment_high`, each shifted copy labelled with its exact (fractional) pitch, so the model has heard every
source at every key it will be asked to play.

How it plays (NSynth's recipe). For every corner of a request the source recording is shifted to the
requested note (`pitch_mode: shifted`, the default: the same kind of audio the model was trained on) — or
left at its own pitch with the note given only through the pitch conditioning (`pitch_mode: conditioning`) —
and encoded. A note longer than the source is made by keeping the attack's latent frames, then holding the
mean of the sustain frames (those within `sustain_db` of the peak), cross-faded over `crossfade_s`: a stable
latent gives a stable tone the pipeline can loop. The blend is the weighted sum of the corners' latent
sequences. Velocity sets the gain on the sampler's dB law and moves the latent along the corpus's own
loudness direction (`velocity_timbre`, so soft notes are also darker, as the sources get when they fade).
After note-off the latent glides to the encoder's latent of silence over the release while a raised-cosine
gain envelope guarantees the take ends in silence. Requests are decoded together by the fast generator
(cached per-layer queues), in whole blocks of 8 voices so that a take does not depend on its batch; the round-robin `variation` (with the seed, channel, note and velocity)
seeds each voice's sampling, and the blend points of one key share that seed, so a blend changes the timbre
and not the performance.

Cost on a 2-core CPU (benchmarks/bench_wavenet.py): the default decoder (width 64, one stack of 10 layers)
decodes the 234 voices of cat_flute (2.4 s each, 9 M samples at 16 kHz) in about 2.5 minutes on 2 quiet
cores; up to several times that while the machine is busy. Training is the expensive part on a CPU: the default step (4 crops of 2048 samples, one stack) costs about 0.17× the CPU time of the two-stack
step on 4096-sample crops (~3 s on 2 quiet cores), far from the ~10^5 steps NSynth trained for, which is why
the default is guided (600 ddsp guide steps, at the output rate with the high band, then 600 WaveNet steps:
about 14 minutes on 2 quiet cores). Unguided, a
CPU-trained model plays noisy, barely pitched notes; train it on a GPU (and at NSynth's sizes).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...audio.crossover import crossover
from ...audio.repitch import repitch
from ...audio.resample import resample
from ...errors import EngineError
from ...progress import SILENT
from ..base import Capabilities, Corpus, Engine, RenderRequest
from ..common.envelopes import release_envelope, tail_fade
from ..common.persistence import load_module_state, read_torch_model, save_state, torch_model_record
from ..common.seeding import stable_seed
from ..common.torch_utils import cpu_threads, pick_device
from ..common.training import TrainConfig, Trainer, TrainResult
from ..common.velocity import velocity_db
from .data import SourceClip, corpus_at, crop, make_examples, noisy_guides, source_clips
from .generator import FastGenerator
from .latents import frame_loudness_db, held_latents, loudness_direction, release_mix
from ..ddsp import DDSPEngine
from .model import WaveNetAutoencoder, WaveNetConfig, to_audio
from .settings import WaveNetSettings

MODEL_NAME = "wavenet"
FLOOR_DB = -120.0
VOICE_BLOCK = 8     # voices per decode block (see _decode)
# the high band's crossover, as fractions of the WaveNet's Nyquist: all WaveNet up to 0.8, all guide from 0.9
# (the resampler is flat to 0.9 of it, so the WaveNet's band reaches the crossover unaltered)
CROSSOVER = (0.8, 0.9)


class WaveNetEngine(Engine):
    name = "wavenet"
    version = 3                       # 2: guided by the ddsp engine's render (guide_features, guide prior)
                                      # 3: codes the difference from the guide; 1 stack, 2048-sample crops
    capabilities = Capabilities(pitched=True, blendable=True, trainable=True, gpu=True, native_rates=None,
                                default_rate=16000, batch_invariant=True)
    Settings = WaveNetSettings
    render_only = ("temperature", "velocity_range_db", "velocity_timbre", "attack_s", "sustain_db",
                   "crossfade_s", "render_batch")
    Guide = DDSPEngine

    def __init__(self, settings, *, sample_rate, seed=0, device="auto", output_rate=None):
        super().__init__(settings, sample_rate=sample_rate, seed=seed, device=device)
        self.output_rate = output_rate
        self.model: WaveNetAutoencoder | None = None
        self.clips: list[SourceClip] = []
        self.silence_latent: np.ndarray | None = None
        self.velocity_direction: np.ndarray | None = None
        self.train_result: TrainResult | None = None
        self.guide: DDSPEngine | None = None
        self._encoded: dict = {}

    # ------------------------------------------------------------------ building

    def model_config(self) -> WaveNetConfig:
        s = self.settings
        return WaveNetConfig(sample_rate=self.sample_rate, hop=s.hop, latent=s.latent_size, width=s.width,
                             skip=s.skip_width or s.width, stacks=s.stacks, layers=s.layers,
                             enc_width=s.encoder_width, enc_layers=s.encoder_layers, enc_cycle=s.encoder_cycle,
                             pitch_features=16 if s.pitch_conditioning else 0,
                             guide_features=3 if s.guide == "ddsp" else 0,
                             guide_prior=s.guide == "ddsp" and s.guide_prior,
                             residual_scale=s.guide_residual if s.guide == "ddsp" else 0.0)

    @property
    def high_band(self) -> bool:
        """Whether the takes carry the guide's band above the WaveNet's (`high_band: guide`, a guided model and
        an output rate above the WaveNet's)."""
        s = self.settings
        return (s.guide == "ddsp" and s.high_band == "guide" and self.output_rate is not None
                and self.output_rate > self.sample_rate)

    @property
    def guide_rate(self) -> int:
        """The ddsp guide's rate: the output rate when it plays the high band, else the WaveNet's."""
        return int(self.output_rate) if self.high_band else self.sample_rate

    @property
    def corpus_rate(self) -> int:
        return self.guide_rate            # the guide learns from the full band, the WaveNet from it resampled

    @property
    def take_rate(self) -> int:
        return self.guide_rate

    def crossover_hz(self) -> tuple[float, float]:
        """(all WaveNet below, all guide above) in Hz: 6.4 and 7.2 kHz for a 16 kHz WaveNet."""
        return CROSSOVER[0] * self.sample_rate / 2, CROSSOVER[1] * self.sample_rate / 2

    def guide_engine(self) -> DDSPEngine:
        """The ddsp engine whose render of each note the WaveNet refines (same seed, device, threads; at the
        output rate when it also plays the high band)."""
        s = self.settings
        settings = DDSPEngine.Settings(**{"threads": s.threads, **s.guide_settings, "max_steps": s.guide_steps})
        return DDSPEngine(settings, sample_rate=self.guide_rate, seed=self.seed, device=self.device)

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_settings(self.settings, seed=self.seed, device=self.device)

    def fit(self, corpus: Corpus, workdir: Path, progress=SILENT) -> None:
        progress = progress or SILENT
        self.check_corpus_rate(corpus)
        s = self.settings
        t0 = time.monotonic()
        clips = source_clips(corpus_at(corpus, self.sample_rate), s.unpitched_root)
        train, plain = make_examples(clips, s, self.sample_rate, progress)
        progress.info(f"wavenet: prepared the corpus in {time.monotonic() - t0:.1f} s")
        guide = None
        if s.guide == "ddsp":
            progress.info(f"wavenet: training its guide, the ddsp engine at {self.sample_rate} Hz "
                          f"({s.guide_steps} steps)")
            guide = self.guide_engine()
            guide.fit(corpus, Path(workdir) / "guide", progress)
        torch.manual_seed(self.seed)
        model = WaveNetAutoencoder(self.model_config())
        length = s.crop_samples
        pitched = s.pitch_conditioning
        guided = guide is not None

        def batch_fn(step: int, rng: np.random.Generator):
            idx = rng.integers(0, len(train), size=s.batch_size)
            rows, pitch = [], []
            for i in idx:
                ex = train[int(i)]
                # crops may start before the note (so onsets from silence are learned) or run past its end
                offset = int(rng.integers(-length // 2, max(1, len(ex.audio) - length // 2)))
                gain = 10.0 ** (-rng.uniform(0.0, s.gain_augment_db) / 20.0)
                rows.append(crop(ex, offset, length + 1) * np.float32(gain))
                pitch.append(ex.midi)
            batch = {"audio": np.stack(rows)[:, :length], "pitch": np.asarray(pitch, dtype=np.float32)}
            if guided:
                snr = rng.uniform(s.guide_snr_db, s.guide_snr_db + 20.0, size=(len(rows), 1))
                batch["guide"] = noisy_guides(np.stack(rows), snr, rng)
            return batch

        val_rng = np.random.default_rng(stable_seed("wavenet-validation", self.seed))
        val_rows, val_pitch = [], []
        for ex in plain:
            for offset in (-length // 4, max(0, (len(ex.audio) - length) // 2)):
                val_rows.append(crop(ex, offset, length + 1))
                val_pitch.append(ex.midi)
        val_batches = []
        for i in range(0, len(val_rows), 8):
            rows = np.stack(val_rows[i:i + 8])
            batch = {"audio": rows[:, :length], "pitch": np.asarray(val_pitch[i:i + 8], np.float32)}
            if guided:
                batch["guide"] = noisy_guides(rows, np.full((len(rows), 1), s.guide_snr_db + 10.0), val_rng)
            val_batches.append(batch)

        def loss_fn(model: WaveNetAutoencoder, batch) -> torch.Tensor:
            return model.loss(batch["audio"], batch["pitch"] if pitched else None, batch.get("guide"))

        trainer = Trainer(model, self.train_config(), batch_fn=batch_fn, loss_fn=loss_fn,
                          val_batches=val_batches, workdir=Path(workdir), progress=progress,
                          desc="wavenet train")
        cfg = model.config
        progress.info(f"wavenet: training on {trainer.device.type} ({trainer.precision.describe()}), "
                      f"{sum(p.numel() for p in model.parameters()):,} parameters, receptive field "
                      f"{cfg.receptive_field} samples, {s.max_steps} steps"
                      + (f" or {s.max_minutes} min" if s.max_minutes else ""))
        with cpu_threads(s.threads):
            self.train_result = trainer.run()
        self.training = self.train_result.record()
        if guide is not None:
            self.training = {**self.training, "guide": guide.training}
        self.model = model.cpu().eval()
        self.guide = guide
        self.clips = clips
        self._encoded = {}
        self._analyse()

    def _analyse(self) -> None:
        """The latent of silence (where releases glide to) and the corpus's loudness direction."""
        hop = self.settings.hop
        with torch.no_grad():
            z = self.model.encoder(torch.zeros(1, 8 * hop))[0].numpy()
        self.silence_latent = z[3:5].mean(axis=0).astype(np.float64)
        lats, louds = [], []
        for clip in self.clips:
            if clip.silent:
                continue
            lat, loud = self._encode_audio(clip.audio)
            keep = loud >= max(float(loud.max()) - 40.0, FLOOR_DB + 1)      # the note, not the silence
            lats.append(lat[keep])
            louds.append(loud[keep])
        self.velocity_direction = (loudness_direction(np.concatenate(lats), np.concatenate(louds))
                                   if lats else np.zeros(self.model.config.latent))

    # ------------------------------------------------------------------ save / load

    def save(self, directory: Path) -> None:
        tensors, meta = torch_model_record(self, self.model, self.train_result)
        for i, clip in enumerate(self.clips):
            tensors[f"clip/{i}"] = torch.from_numpy(np.ascontiguousarray(clip.audio, dtype=np.float32))
        tensors["silence_latent"] = torch.from_numpy(self.silence_latent.astype(np.float32))
        tensors["velocity_direction"] = torch.from_numpy(self.velocity_direction.astype(np.float32))
        meta["clips"] = [{"source": c.source, "channel": c.channel, "recording": c.recording, "midi": c.midi,
                          "silent": c.silent} for c in self.clips]
        save_state(directory, MODEL_NAME, tensors, meta)
        if self.guide is not None:
            self.guide.save(directory)              # ddsp.safetensors beside wavenet.safetensors

    def load(self, directory: Path) -> None:
        def read(tensors, meta, config):
            clips = [SourceClip(c["source"], c["channel"], int(c["recording"]), tensors[f"clip/{i}"].numpy(),
                                float(c["midi"]), bool(c["silent"])) for i, c in enumerate(meta["clips"])]
            return clips, tensors["silence_latent"].double().numpy(), tensors["velocity_direction"].double().numpy()

        config, (clips, silence, direction), weights, file = read_torch_model(self, directory, MODEL_NAME,
                                                                              WaveNetConfig, read)
        fix = "delete that folder and build again"
        model = WaveNetAutoencoder(config)
        load_module_state(model, weights, file=file)
        if silence.shape != (config.latent,) or direction.shape != (config.latent,):
            raise EngineError("model file's latent statistics do not match its model", file=file, fix=fix)
        guide = None
        if config.guide_features:
            guide = self.guide_engine()
            guide.load(directory)
        self.model, self.clips, self.guide = model.eval(), clips, guide
        self.silence_latent, self.velocity_direction = silence, direction
        self._encoded = {}

    # ------------------------------------------------------------------ encoding and latent sequences

    def _encode_audio(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(latents (F, latent), frame loudness dB (F,)) of one recording."""
        with torch.no_grad():
            z = self.model.encoder(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None])
        return z[0].double().numpy(), frame_loudness_db(audio, self.model.config.hop)

    def _nearest_clip(self, source: str, channel: str, note: int) -> SourceClip:
        takes = [c for c in self.clips if c.source == source and c.channel == channel]
        if not takes:
            takes = [c for c in self.clips if c.source == source]
        if not takes:
            raise EngineError(f"the wavenet model has no source named {source!r}",
                              fix="train again with that source in the spec")
        return min(takes, key=lambda c: (abs(c.midi - note), c.recording))

    def corner_encoding(self, source: str, channel: str, note: int) -> tuple[np.ndarray, np.ndarray]:
        """The latents and frame loudness of `source` as this engine plays it at `note` on `channel`: the
        nearest recording, shifted to the note in `shifted` pitch mode (cached)."""
        clip = self._nearest_clip(source, channel, note)
        shifted = self.settings.pitch_mode == "shifted"
        key = (clip.source, clip.channel, clip.recording, note if shifted else None)
        if key not in self._encoded:
            audio = clip.audio
            if shifted and not clip.silent:
                audio = repitch(audio, 2.0 ** ((note - clip.midi) / 12.0))
            if clip.silent or len(audio) == 0:
                f = max(1, -(-len(clip.audio) // self.model.config.hop))
                self._encoded[key] = (np.tile(self.silence_latent, (f, 1)), np.full(f, FLOOR_DB))
            else:
                self._encoded[key] = self._encode_audio(audio)
        return self._encoded[key]

    def request_latents(self, request: RenderRequest, n_frames: int) -> np.ndarray:
        """The blended latent sequence (n_frames, latent) that drives one request."""
        s = self.settings
        hop, sr = self.model.config.hop, self.sample_rate
        attack = max(0, int(round(s.attack_s * sr / hop)))
        xfade = max(0, int(round(s.crossfade_s * sr / hop)))
        z = np.zeros((n_frames, self.model.config.latent))
        total = 0.0
        for source, weight in request.weights:
            if weight <= 0:
                continue
            lat, loud = self.corner_encoding(source, request.channel, request.note)
            z += weight * held_latents(lat, loud, n_frames, attack, s.sustain_db, xfade)
            total += weight
        if total <= 0:
            z[:] = self.silence_latent
            return z
        vdb = velocity_db(request.velocity, s.velocity_range_db)
        z += s.velocity_timbre * vdb * self.velocity_direction
        mix = release_mix(n_frames, hop, sr, request.duration_s, request.release_s)[:, None]
        return (1 - mix) * z + mix * self.silence_latent

    # ------------------------------------------------------------------ rendering

    def _decode_threads(self, device: torch.device, batch: int) -> int:
        if device.type != "cpu":
            return 1
        wanted = self.settings.threads or torch.get_num_threads()
        return max(1, min(wanted, batch // 8 if batch >= 16 else 1))

    def render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        if self.model is None:
            raise EngineError("the wavenet engine has no model; call fit() or load() first")
        progress = progress or SILENT
        requests = list(requests)
        s = self.settings
        model = self.model.cpu().eval()
        device = pick_device(self.device)
        if device.type == "mps":
            device = torch.device("cpu")      # thousands of tiny ops per sample: the CPU is faster than MPS
        hop = model.config.hop
        lengths = [max(1, int(round((r.duration_s + r.release_s) * self.sample_rate))) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: -lengths[i])
        batches = [order[i:i + s.render_batch] for i in range(0, len(order), s.render_batch)]
        total_steps = sum(lengths[b[0]] for b in batches)
        progress.info(f"wavenet: decoding {len(requests)} voice(s) in {len(batches)} batch(es), "
                      f"{sum(lengths) / self.sample_rate:.1f} s of audio at {self.sample_rate} Hz on {device.type}")
        guides = full_band = None
        if model.config.guide_features:
            if self.guide is None:
                raise EngineError("the wavenet model has lost its ddsp guide; delete its folder and build again")
            guides = self.guide.render(requests, progress)
            if self.high_band:        # the guide plays at the output rate: the high band too
                full_band = guides
                guides = [resample(g, self.guide_rate, self.sample_rate) for g in guides]
        out: list[np.ndarray | None] = [None] * len(requests)
        bar = progress.bar(total=total_steps, desc="wavenet render", unit="step")
        t0 = time.monotonic()
        try:
            for chunk in batches:
                n = lengths[chunk[0]]
                n_frames = -(-n // hop)
                cond, uniforms = [], np.empty((n, len(chunk)), dtype=np.float32)
                for j, i in enumerate(chunk):
                    r = requests[i]
                    z = torch.from_numpy(self.request_latents(r, n_frames).astype(np.float32))[None]
                    cond.append(model.conditioning(z, torch.tensor([float(r.note)])))
                    rng = np.random.default_rng(stable_seed("wavenet-sampling", self.seed, r.channel, r.note,
                                                            r.velocity, r.variation))
                    uniforms[:, j] = rng.random(n, dtype=np.float32)
                guide = None
                if guides is not None:
                    guide = np.zeros((n, len(chunk)), dtype=np.float32)
                    for j, i in enumerate(chunk):
                        m = min(n, len(guides[i]))
                        guide[:m, j] = guides[i][:m]
                    guide = torch.from_numpy(guide)
                classes = self._decode(model, torch.cat(cond), n, torch.from_numpy(uniforms), device, bar, guide)
                audio = to_audio(classes.cpu().numpy().T, guide.numpy().T if guide is not None else None,
                                 model.config.residual_scale if model.config.residual else 0.0)   # (B, n)
                for j, i in enumerate(chunk):
                    r = requests[i]
                    take = audio[j, :lengths[i]].copy()
                    rate = self.sample_rate
                    if guides is None:      # a guided take has the guide's level, envelope and release
                        take *= np.float32(10.0 ** (velocity_db(r.velocity, s.velocity_range_db) / 20.0))
                        take *= release_envelope(lengths[i], self.sample_rate, r.duration_s, r.release_s)
                    if full_band is not None:
                        take, rate = self.add_high_band(take, full_band[i]), self.guide_rate
                    if sum(w for _, w in r.weights if w > 0) <= 0:
                        take[:] = 0.0
                    out[i] = tail_fade(take.astype(np.float32), rate, r.release_s)
        finally:
            bar.close()
        seconds = time.monotonic() - t0
        progress.info(f"wavenet: {sum(lengths):,} samples in {seconds:.1f} s "
                      f"({sum(lengths) / max(seconds, 1e-9) / self.sample_rate:.2f}× real time, aggregate)")
        return out  # type: ignore[return-value]

    def add_high_band(self, take: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """The WaveNet's take (at its rate) resampled to the guide's full-band render's rate, with the guide's
        band above the crossover (`crossover_hz`) in place of its empty top: one take at the guide's rate."""
        low = resample(take, self.sample_rate, self.guide_rate)
        n = len(guide)
        low = low[:n] if len(low) >= n else np.pad(low, (0, n - len(low)))
        return crossover(low, guide, self.guide_rate, *self.crossover_hz())

    def _decode(self, model: WaveNetAutoencoder, cond: torch.Tensor, n: int, uniforms: torch.Tensor,
                device: torch.device, bar, guide: torch.Tensor | None = None) -> torch.Tensor:
        """Decode one batch: on the CPU, split over `threads` Python threads with one torch thread each
        (independent voices, no per-op thread barrier: robust on a busy machine)."""
        b = cond.shape[0]
        # Matrix products round differently for 1, 2-3 and 4+ rows (measured with torch's CPU kernels), so
        # every thread decodes whole blocks of VOICE_BLOCK voices, padded with silent ones: a voice's samples
        # then do not depend on how many others share its batch (render shards, cache hits, worker count).
        padded = -(-b // VOICE_BLOCK) * VOICE_BLOCK
        if padded > b:
            cond = torch.cat([cond, cond.new_zeros((padded - b, *cond.shape[1:]))])
            uniforms = torch.cat([uniforms, uniforms.new_full((uniforms.shape[0], padded - b), 0.5)], dim=1)
            if guide is not None:
                guide = torch.cat([guide, guide.new_zeros((guide.shape[0], padded - b))], dim=1)
        decoder = model.decoder.to(device)
        temperature = self.settings.temperature
        k = self._decode_threads(device, padded)
        blocks = padded // VOICE_BLOCK
        parts = [slice(i * blocks // k * VOICE_BLOCK, (i + 1) * blocks // k * VOICE_BLOCK) for i in range(k)]
        results: list[torch.Tensor | None] = [None] * k
        errors: list[BaseException] = []
        last = [0]

        def report(t: int) -> None:
            bar.update(t - last[0])
            last[0] = t

        def work(j: int) -> None:
            try:
                gen = FastGenerator(decoder, batch=parts[j].stop - parts[j].start, device=device,
                                    temperature=temperature)
                results[j] = gen.generate(cond[parts[j]], n, uniforms[:, parts[j]] if temperature > 0 else None,
                                          guide=guide[:, parts[j]] if guide is not None else None,
                                          callback=report if j == 0 else None)
            except BaseException as error:          # re-raised in the calling thread
                errors.append(error)

        with cpu_threads(1 if device.type == "cpu" else None):
            if k == 1:
                work(0)
            else:
                threads = [threading.Thread(target=work, args=(j,), daemon=True) for j in range(k)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        model.decoder.cpu()
        if errors:
            raise errors[0]
        return torch.cat(results, dim=1)[:, :b]
