"""The `ddsp` engine: a harmonic-plus-noise instrument learned from the user's own sounds, at full bandwidth.

    >>> engine = DDSPEngine(DDSPEngine.Settings(max_steps=2000), sample_rate=44100, seed=0)
    >>> engine.hop                                      # samples per control frame (~5 ms)
    256

Then `engine.fit(corpus, workdir, progress)` trains (resumable: checkpoints live in workdir),
`engine.save(folder)` / `engine.load(folder)` keep the model, and
`engine.render([RenderRequest((("cat", 0.5), ("flute", 0.5)), "L", 60, 100, 2.0, 0.4)])` plays it
(tests/test_ddsp.py trains a tiny one in seconds).

What it learns. Every (source, channel) of the corpus is a *key*. The encoder maps each normalised log-mel
frame to a timbre latent, so a recording becomes a trajectory z(t) (NSynth's temporal embedding); the decoder
trains on the per-frame z of the audio it must produce, and a pitch-shifted training copy reads z(t) from the
unshifted source, so it learns to put a source's timbre on other pitches. A GRU decoder turns (A-weighted
loudness, z) per ~5 ms frame into an additive harmonic bank (amplitude + a spectral envelope on a mel frequency
grid, which each harmonic reads over its own band, so formants stay in place at any pitch; harmonics above
Nyquist removed) plus filtered noise, optionally through a learned room per key; f0 only places the harmonics
on the envelope and sets the harmonic and noise levels through one linear term (`pitch_free`), so the colour
cannot drift with the pitch. It trains with a multi-resolution spectral loss at the model's own rate (16 to
48 kHz); a quarter of the crops start at a clip's beginning, so attacks are learned. The output level is
anchored to the loudness asked for (the network learns a bounded correction and the timbre). Small corpora
are augmented by pitch shifting (resampling, with the source's spectral envelope put back) and time
stretching (phase vocoder). Each key keeps its first take's z(t), loudness contour and pitch contour.

How it plays. A note replays its corners' trajectories re-timed to its length (`common.trajectory`): attack as
recorded, the held part wandering through the sustain without a jump or an exact repeat, the source's own
release after note-off (a note held about as long as its source replays it frame for frame, release included,
as a sampler would); corners are aligned by segment. f0 is the note bent by the source's contour (`contour`:
source, vibrato or flat; the held part's pitch on the key); away from the source's pitch the note keeps the
harmonic and noise levels the source had at its own (`transposed_levels`: a source-filter transposition);
velocity sets the level of the loudness contour (127 = the loudest frame of the corner sources, lower velocities
`velocity_range_db` lower on the engines' one velocity law, `common.velocity`), and since the decoder is
conditioned on loudness the timbre darkens as it gets quieter. Corners blend in the decoder's output space (each
corner's z(t) decoded, outputs mixed) or in latent space. Round robins take their own path through the sustain.
All requests render in a few batched passes.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...audio.analysis import FLOOR_DB, central_cents, default_hop, midi_to_hz, pitch_weights
from ...audio.spectral import log_mel_shape
from ...errors import EngineError
from ...progress import SILENT
from ..base import Capabilities, Corpus, Engine, RenderRequest
from ..common.envelopes import fade_in, note_envelope, note_rise_s, tail_fade
from ..common.persistence import load_module_state, read_torch_model, save_state, torch_model_record
from ..common.seeding import stable_seed
from ..common.torch_utils import cpu_threads, pick_device
from ..common.training import TrainConfig, Trainer, TrainResult
from ..common.trajectory import find_segments, sample_track, smooth, time_map
from ..common.velocity import velocity_db
from .data import KeyInfo, fit_frames, make_batch, prepare_training_data
from .features import clip_features
from .model import DDSP, DDSPConfig, fft_sizes, frame_loudness_loss, multi_resolution_stft_loss
from .settings import DDSPSettings

MODEL_NAME = "ddsp"
_CHUNK_SAMPLES = 1 << 21          # output samples per batched render pass (bounds memory to ~0.3 GB)
_BLOCK_ROWS = 16                  # most takes per render pass


def render_blocks(lengths: Sequence[int], key_weights: Sequence[np.ndarray], hop: int, *,
                  by_corner: bool = True) -> list[list[int | None]]:
    """Requests (by index) in the blocks they render in, each block padded with None to a row count fixed by
    the note's length alone.

    A matrix product's rounding can depend on how many rows it multiplies, so a take must not depend on which
    other takes share its batch: requests of one length (and, blending outputs, one set of corners, since the
    decoder runs once per corner on the rows that use it) go together in blocks of exactly
    `_CHUNK_SAMPLES / samples` rows (at most 16). Rendering a grid whole, in shards or in another order then
    gives the same bytes.

        >>> blocks = render_blocks([100, 100, 50], [np.ones(1)] * 3, hop=10)
        >>> [[i for i in block if i is not None] for block in blocks], len(blocks[0])
        ([[2], [0, 1]], 16)
    """
    groups: dict[tuple, list[int]] = {}
    for i, (n, kw) in enumerate(zip(lengths, key_weights)):
        corners = tuple(np.flatnonzero(np.asarray(kw) > 0).tolist()) if by_corner else ()
        groups.setdefault((n // hop + 2, corners), []).append(i)
    blocks = []
    for (n_frames, _), members in sorted(groups.items()):
        size = min(_BLOCK_ROWS, max(1, _CHUNK_SAMPLES // (n_frames * hop)))
        for start in range(0, len(members), size):
            part = members[start:start + size]
            blocks.append(part + [None] * (size - len(part)))
    return blocks


class DDSPEngine(Engine):
    name = "ddsp"
    version = 2                       # 2: latent trajectories z(t) and loudness contours per key
    capabilities = Capabilities(pitched=True, blendable=True, trainable=True, gpu=True, batch_invariant=True,
                                native_rates=(16000, 22050, 32000, 44100, 48000), default_rate=44100)
    Settings = DDSPSettings
    render_only = ("transposed_levels", "attack_s")

    def __init__(self, settings, *, sample_rate, seed=0, device="auto"):
        super().__init__(settings, sample_rate=sample_rate, seed=seed, device=device)
        if self.capabilities.native_rates and sample_rate not in self.capabilities.native_rates:
            raise EngineError(f"the ddsp engine cannot run at {sample_rate} Hz", key="engine.sample_rate",
                              fix="use one of: " + ", ".join(map(str, self.capabilities.native_rates)))
        self.hop = default_hop(sample_rate)
        self.model: DDSP | None = None
        self.keys: list[KeyInfo] = []
        self.key_tracks: list[torch.Tensor] = []           # (frames, latent) per key: its first take's z(t)
        self.train_result: TrainResult | None = None

    # ------------------------------------------------------------------ building

    def _config(self, n_keys: int) -> DDSPConfig:
        s = self.settings
        return DDSPConfig(sample_rate=self.sample_rate, hop=self.hop, n_keys=n_keys, latent=s.latent_size,
                          hidden=s.hidden_size, n_harmonics=s.n_harmonics, noise_bands=s.noise_bands,
                          n_mels=s.n_mels, table_size=s.table_size, reverb=s.reverb,
                          envelope_points=s.envelope_points, pitch_free=s.pitch_free,
                          harmonic_levels=s.harmonic_levels,
                          reverb_samples=int(round(s.reverb_s * self.sample_rate)) if s.reverb else 0)

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_settings(self.settings, seed=self.seed, device=self.device)

    def fit(self, corpus: Corpus, workdir: Path, progress=SILENT) -> None:
        progress = progress or SILENT
        self.check_corpus_rate(corpus)
        s = self.settings
        t0 = time.monotonic()
        keys, examples, plain = prepare_training_data(corpus, s, self.sample_rate, self.hop, self.seed, progress)
        progress.info(f"ddsp: analysed and augmented the corpus in {time.monotonic() - t0:.1f} s")
        voiced = [k for k in keys if not k.silent]
        torch.manual_seed(self.seed)
        model = DDSP(self._config(len(keys)))
        mel_all = np.concatenate([k.mel[k.weights > 0] for k in voiced])
        model.encoder.mel_mean.copy_(torch.from_numpy(mel_all.mean(0)))
        model.encoder.mel_std.copy_(torch.from_numpy(mel_all.std(0) + 1e-3))
        model.loud_ref.fill_(max(k.top_db for k in voiced))

        n_frames = max(4, int(round(s.crop_s * self.sample_rate / self.hop)))
        hop = self.hop
        lengths = np.array([max(1, e.frames - n_frames + 1) for e in examples], dtype=np.float64)
        probs = np.array([e.frames for e in examples], dtype=np.float64)
        probs /= probs.sum()

        def batch_fn(step: int, rng: np.random.Generator):
            idx = rng.choice(len(examples), size=s.batch_size, p=probs)
            offsets = [0 if rng.random() < s.attack_crops else int(rng.integers(0, lengths[i])) for i in idx]
            white = rng.standard_normal((s.batch_size, n_frames, 2 * hop), dtype=np.float32)
            return make_batch(examples, list(zip(idx.tolist(), offsets)), n_frames, hop, white)

        val_rng = np.random.default_rng(stable_seed("ddsp-validation", self.seed))
        picks = []
        for i, e in enumerate(plain):
            picks.append((i, 0))
            if e.frames > 2 * n_frames:
                picks.append((i, (e.frames - n_frames) // 2))
        val_white = val_rng.standard_normal((len(picks), n_frames, 2 * hop), dtype=np.float32)
        val_batches = [make_batch(plain, picks, n_frames, hop, val_white)]

        trainer = Trainer(model, self.train_config(), batch_fn=batch_fn, loss_fn=self.training_loss(len(keys)),
                          val_batches=val_batches, workdir=Path(workdir), progress=progress, desc="ddsp train")
        progress.info(f"ddsp: training on {trainer.device.type} ({trainer.precision.describe()}), "
                      f"{sum(p.numel() for p in model.parameters()):,} parameters, {s.max_steps} steps"
                      + (f" or {s.max_minutes} min" if s.max_minutes else ""))
        self.train_result = trainer.run()
        self.training = self.train_result.record()
        model = model.cpu().eval()
        with torch.no_grad():
            tracks = [model.encoder.frames(torch.from_numpy(np.ascontiguousarray(k.take_mel))) for k in keys]
        self.model, self.keys = model, keys
        self.key_tracks = [t.float() for t in tracks]

    def training_loss(self, n_keys: int):
        """The loss a training step minimises, as `loss_fn(model, batch)`: the multi-resolution spectral loss of
        the model's resynthesis of the batch (plus the loudness term where the settings ask)."""
        s, hop = self.settings, self.hop
        sizes = fft_sizes(self.sample_rate)

        def loss_fn(model: DDSP, batch) -> torch.Tensor:
            z = model.encoder.frames(batch["mel"])                     # z(t): the timbre at every frame
            kw = torch.nn.functional.one_hot(batch["key"], n_keys).float() if model.reverb is not None else None
            audio = model(batch["f0"], batch["loud"], z, batch["white"], kw)
            loss = multi_resolution_stft_loss(audio, batch["audio"], sizes)
            if s.loudness_weight:
                loss = loss + s.loudness_weight * frame_loudness_loss(audio, batch["audio"], hop)
            return loss
        return loss_fn

    # ------------------------------------------------------------------ save / load

    def save(self, directory: Path) -> None:
        tensors, meta = torch_model_record(self, self.model, self.train_result)
        for i, k in enumerate(self.keys):
            tensors[f"contour/{i}"] = torch.from_numpy(np.asarray(k.contour, np.float32))
            tensors[f"loudness/{i}"] = torch.from_numpy(np.asarray(k.loudness, np.float32))
            tensors[f"trajectory/{i}"] = self.key_tracks[i].contiguous()
        meta.update(hop=self.hop, keys=[{"source": k.source, "channel": k.channel, "silent": k.silent,
                                         "top_db": k.top_db if math.isfinite(k.top_db) else None,
                                         "pitch_midi": k.pitch_midi if math.isfinite(k.pitch_midi) else None,
                                         "digest": k.digest} for k in self.keys])
        save_state(directory, MODEL_NAME, tensors, meta)

    def load(self, directory: Path) -> None:
        def read(tensors, meta, config):
            keys = [KeyInfo(k["source"], k["channel"], bool(k["silent"]),
                            FLOOR_DB if k["top_db"] is None else float(k["top_db"]),
                            float("nan") if k["pitch_midi"] is None else float(k["pitch_midi"]),
                            tensors[f"contour/{i}"].numpy(), np.zeros((0, config.n_mels), np.float32),
                            np.zeros(0), str(k["digest"]), -1, tensors[f"loudness/{i}"].numpy())
                    for i, k in enumerate(meta["keys"])]
            tracks = [tensors[f"trajectory/{i}"].float() for i in range(len(keys))]
            return keys, tracks

        gone = {"envelope_read": self.Settings.removed["envelope_read"]}          # a model config key until session 7
        config, (keys, tracks), weights, file = read_torch_model(self, directory, MODEL_NAME, DDSPConfig,
                                                                          read, removed=gone)
        fix = "delete that folder and build again"
        model = DDSP(config)
        load_module_state(model, weights, file=file)
        if len(tracks) != len(keys) or any(t.dim() != 2 or t.shape[1] != config.latent or len(t) != len(k.loudness)
                                           for t, k in zip(tracks, keys)):
            raise EngineError("model file's latents do not match its keys", file=file, fix=fix)
        self.hop = config.hop
        self.model, self.keys, self.key_tracks = model.eval(), keys, tracks

    # ------------------------------------------------------------------ rendering

    def _key_index(self) -> dict[tuple[str, str], int]:
        return {(k.source, k.channel): i for i, k in enumerate(self.keys)}

    def key_weights(self, request: RenderRequest) -> np.ndarray:
        """The request's corner weights spread over keys on its channel (a source with no clip on that
        channel uses all its channels); silent keys get no weight; the result sums to 1 (or is all zero)."""
        index = self._key_index()
        w = np.zeros(len(self.keys))
        for source, weight in request.weights:
            if weight <= 0:
                continue
            if (source, request.channel) in index:
                hits = [index[(source, request.channel)]]
            else:
                hits = [i for (src, _), i in index.items() if src == source]
                if not hits:
                    raise EngineError(f"the ddsp model has no source named {source!r}",
                                      fix="train again with that source in the spec")
            for i in hits:
                w[i] += weight / len(hits)
        w[[i for i, k in enumerate(self.keys) if k.silent]] = 0.0
        total = w.sum()
        return w / total if total > 0 else w

    def _groups(self) -> tuple[list[int], list[int]]:
        """(group of each key, first key of each group): keys with the same audio share one decoder run."""
        first: dict[str, int] = {}
        group_of_key = [first.setdefault(k.digest or f"#{i}", i) for i, k in enumerate(self.keys)]
        reps = sorted(set(group_of_key))
        return [reps.index(g) for g in group_of_key], reps

    def note_path(self, request: RenderRequest, n_frames: int, corners: Sequence[int], weights: Sequence[float]
                  ) -> list[np.ndarray]:
        """Time maps (source frame per note frame) of the corners (key indices) for a request: the attack as
        recorded, the held part wandering through the sustain, the release after note-off (see
        `common.trajectory`). Each round robin takes its own path and a slightly different attack."""
        frame_s = self.hop / self.sample_rate
        held = int(round(request.duration_s / frame_s))
        rng = np.random.default_rng(stable_seed("ddsp-path", self.seed, request.variation, request.note,
                                                round(request.duration_s, 6)))
        stretch = 1.0
        if request.variation > 0 and self.settings.round_robin_timing > 0:
            stretch = 1.0 + rng.uniform(-1, 1) * self.settings.round_robin_timing
        segments = []
        for i in corners:
            seg = find_segments(self.keys[i].loudness)
            if stretch != 1.0:          # a take that opens a little faster or slower (onset kept, more or less attack)
                end = int(np.clip(round(seg.onset + seg.attack * stretch), seg.onset, seg.release_start))
                seg = replace(seg, attack_end=end)
            segments.append(seg)
        return time_map(segments, list(weights), held, n_frames, rng)

    def _contour_cents(self, key: KeyInfo, positions: np.ndarray) -> np.ndarray:
        contour = np.asarray(key.contour, np.float64)
        if self.settings.contour == "flat" or len(contour) == 0:
            return np.zeros(len(positions))
        if self.settings.contour == "vibrato":
            width = max(1, int(round(self.settings.vibrato_s * self.sample_rate / self.hop)))
            contour = contour - smooth(contour, width)
        return sample_track(contour, positions)

    def _controls_for(self, request: RenderRequest, n_frames: int):
        """(f0 Hz, loudness dB, group weights (G,), latent tracks (G, F, latent), audible) for one request.

        Every corner plays its own trajectory through its own time map (segment-aligned): its latents z(t),
        its loudness contour relative to its loudest frame and its pitch contour; the corners' loudness and
        pitch contours are mixed by weight, their latents go to the decoder one corner at a time (blend
        'output') or mixed (blend 'latent'). In 'source' and 'vibrato' modes the held part's pitch, weighed as
        `estimate_pitch` weighs it, is put on the key, so the exported sample's measured root and fine tune
        hold it in tune."""
        kw = self.key_weights(request)
        group_of_key, reps = self._groups()
        gw = np.zeros(len(reps))
        for i, w in enumerate(kw):
            gw[group_of_key[i]] += w
        latent = self.model.config.latent
        tracks = np.zeros((len(reps), n_frames, latent), np.float32)
        audible = kw.sum() > 0
        frame_s = self.hop / self.sample_rate
        held = min(n_frames, max(1, int(round(request.duration_s / frame_s))))
        if not audible:
            return (np.full(n_frames, midi_to_hz(request.note)), np.full(n_frames, FLOOR_DB), gw, tracks, False)
        corners = [reps[g] for g in np.flatnonzero(gw)]
        weights = [gw[g] for g in np.flatnonzero(gw)]
        maps = self.note_path(request, n_frames, corners, weights)
        cents = np.zeros(n_frames)
        rel_db = np.zeros(n_frames)
        for g, i, w, pos in zip(np.flatnonzero(gw), corners, weights, maps):
            key = self.keys[i]
            tracks[g] = sample_track(self.key_tracks[i].numpy(), pos)
            cents += w * self._contour_cents(key, pos)
            rel_db += w * (sample_track(key.loudness, pos) - float(np.max(key.loudness)))
        if self.settings.contour != "flat":
            # the held part's one pitch, weighed as `estimate_pitch` weighs it (the pipeline's measure of a
            # sample's root and fine tune), goes on the key
            loud_held, t = rel_db[:held], np.arange(held) * frame_s
            use = loud_held >= loud_held.max() - 20.0
            w = pitch_weights(cents[:held][use], loud_held[use], t[use], 1.0, frame_s)
            cents -= central_cents(cents[:held][use], w)
        f0 = np.minimum(midi_to_hz(request.note) * 2.0 ** (cents / 1200.0), 0.49 * self.sample_rate)
        tops = np.array([k.top_db for k in self.keys])
        top = 10 * np.log10(max(float(np.sum(kw * 10 ** (tops / 10))), 1e-12))
        # the note's own envelope bounds the source's: silence by the end of the release (the fall starts once
        # the source's own release has mostly played, or half-way through the release); its rise is the
        # audio's (`rise_s`), not the decoder's loudness
        own_release = frame_s * sum(w * find_segments(self.keys[i].loudness).release
                                    for i, w in zip(corners, weights)) / max(sum(weights), 1e-9)
        wait = min(own_release, 0.5 * request.release_s)
        env = note_envelope(np.arange(n_frames) * frame_s, request.duration_s + wait, request.release_s - wait)
        loud = top + velocity_db(request.velocity, self.settings.velocity_range_db) + rel_db \
            + 20 * np.log10(np.maximum(env, 1e-4))
        return f0, np.maximum(loud, FLOOR_DB), gw, tracks, True

    def rise_s(self, request: RenderRequest) -> float:
        """The note's rise at note-on, applied to its audio sample by sample: no slower than its corners' own
        attack (weighed like the corners), at least 3 ms, at most `attack_s`. On the audio, not on the
        decoder's loudness frames: a rise there lasts a whole ~6 ms frame whatever its length, its first frame
        at the floor, and cut the first, brightest milliseconds of a pluck (timbre 2.03 against 1.78 without
        a rise, bench_fidelity seed 2); the decoder also keeps the attack's own brightness."""
        kw = self.key_weights(request)
        used = np.flatnonzero(kw)
        if not len(used):
            return self.settings.attack_s
        frames = sum(kw[i] * find_segments(self.keys[i].loudness).attack for i in used) / float(kw[used].sum())
        return note_rise_s(frames * self.hop / self.sample_rate, self.settings.attack_s)

    def source_pitch(self, request: RenderRequest) -> float | None:
        """The pitch (MIDI) of the request's corners' sources, weighed like the corners (None: unpitched).

            >>> engine = DDSPEngine(DDSPEngine.Settings(), sample_rate=44100)
            >>> engine.keys = [KeyInfo(s, "L", False, -10.0, p, np.zeros(1), np.zeros((1, 4)), np.ones(1))
            ...                for s, p in (("a", 60.0), ("b", 67.0))]
            >>> engine.source_pitch(RenderRequest((("a", 0.5), ("b", 0.5)), "L", 72, 127, 1.0, 0.2))
            63.5
        """
        kw = self.key_weights(request)
        used = [(self.keys[i].pitch_midi, kw[i]) for i in np.flatnonzero(kw) if math.isfinite(self.keys[i].pitch_midi)]
        if not used:
            return None
        return float(sum(p * w for p, w in used) / sum(w for _, w in used))

    def source_f0(self, request: RenderRequest, f0_hz: np.ndarray) -> np.ndarray:
        """The pitch contour (Hz) the note's sources had under its own contour f0_hz: f0 moved back by the
        interval from their pitch to the note (f0 itself for an unpitched source)."""
        source = self.source_pitch(request)
        return f0_hz if source is None else f0_hz * 2.0 ** ((source - request.note) / 12.0)

    def _room_weights(self, kw: torch.Tensor) -> torch.Tensor:
        """Key weights with each key's weight moved to the first key with the same audio (whose room trained)."""
        first: dict[str, int] = {}
        out = torch.zeros_like(kw)
        for i, k in enumerate(self.keys):
            out[:, first.setdefault(k.digest or f"#{i}", i)] += kw[:, i]
        return out

    def _noise_seed(self, request: RenderRequest, kw: np.ndarray) -> int:
        """Seeds the take's noise: the round-robin index and the *audio* of the keys it plays, not the channel
        name, so a mono source renders identically on both sides of a stereo instrument."""
        used = sorted((self.keys[i].digest, round(float(kw[i]), 6)) for i in np.flatnonzero(kw))
        return stable_seed("ddsp-noise", self.seed, request.variation, request.note, request.velocity,
                            round(request.duration_s, 6), used)

    def render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        if self.model is None:
            raise EngineError("the ddsp engine has no model; call fit() or load() first")
        with cpu_threads(self.settings.threads):
            return self._render(requests, progress)

    def _render(self, requests: Sequence[RenderRequest], progress=None) -> list[np.ndarray]:
        progress = progress or SILENT
        requests = list(requests)
        model = self.model
        device = pick_device(self.device)
        if device.type == "mps":
            device = torch.device("cpu")     # the table gathers are faster on the CPU than through MPS
        model.to(device).eval()
        lengths = [max(1, int(round((r.duration_s + r.release_s) * self.sample_rate))) for r in requests]
        hop = self.hop
        per_take = [self._controls_for(r, n // hop + 2) for r, n in zip(requests, lengths)]
        blocks = render_blocks(lengths, [c[2] for c in per_take], hop, by_corner=self.settings.blend == "output")
        out: list[np.ndarray | None] = [None] * len(requests)
        bar = progress.bar(total=len(requests), desc="ddsp render", unit="recording")
        try:
            for block in blocks:
                chunk = [i for i in block if i is not None]
                filled = [i if i is not None else chunk[-1] for i in block]     # padding rows repeat a take
                rows = [per_take[i] for i in filled]
                n_frames = len(rows[0][0])
                f0 = torch.tensor(np.stack([r[0] for r in rows]), dtype=torch.float32, device=device)
                loud = torch.tensor(np.stack([r[1] for r in rows]), dtype=torch.float32, device=device)
                gw = torch.tensor(np.stack([r[2] for r in rows]), dtype=torch.float32, device=device)
                z = torch.from_numpy(np.stack([r[3] for r in rows])).to(device)          # (B, G, F, latent)
                kw = torch.tensor(np.stack([self.key_weights(requests[i]) for i in filled]), dtype=torch.float32,
                                  device=device)
                white = torch.stack([
                    torch.randn(n_frames, 2 * hop, generator=torch.Generator().manual_seed(
                        self._noise_seed(requests[i], self.key_weights(requests[i]))))
                    for i in filled]).to(device)
                source_f0 = None
                if self.settings.transposed_levels == "source":
                    source_f0 = torch.tensor(np.stack([self.source_f0(requests[i], per_take[i][0]) for i in filled]),
                                             dtype=torch.float32, device=device)
                with torch.no_grad():
                    if self.settings.blend == "output":
                        controls = model.controls_blend(f0, loud, z, gw, source_f0)
                    else:
                        controls = model.controls(f0, loud, (gw[:, :, None, None] * z).sum(1), source_f0)
                    audio = model.synthesize(controls, white, self._room_weights(kw) if model.reverb is not None
                                             else None)
                audio = audio.cpu().numpy()
                for row, i in enumerate(block):
                    if i is None:
                        continue
                    take = audio[row, :lengths[i]].astype(np.float32, copy=True)
                    if not rows[row][4]:
                        take[:] = 0.0
                    fade_in(take, self.sample_rate, self.rise_s(requests[i]))
                    out[i] = tail_fade(take, self.sample_rate, requests[i].release_s)
                bar.update(len(chunk))
        finally:
            bar.close()
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ analysis helpers

    def source_controls(self, audio: np.ndarray, semitones: float = 0.0) -> dict:
        """The synthesiser controls (batch of one) for a recording's own f0 (moved `semitones`), loudness and
        latent trajectory z(t): what the model makes of the source itself (quality checks)."""
        if self.model is None:
            raise EngineError("the ddsp engine has no model; call fit() or load() first")
        x = np.asarray(audio, dtype=np.float32)
        feat = clip_features(x, self.sample_rate, self.hop, self.settings.fmin, self.settings.fmax, 261.6256)
        mel = fit_frames(log_mel_shape(x, self.sample_rate, self.hop, self.model.config.n_mels), len(feat.f0_hz))
        f0 = feat.f0_hz * 2.0 ** (semitones / 12.0)
        moved = semitones != 0 and self.settings.transposed_levels == "source"     # as a moved note plays
        with torch.no_grad():
            model = self.model.cpu()
            return model.controls(torch.tensor(f0[None], dtype=torch.float32),
                                  torch.tensor(feat.loudness_db[None], dtype=torch.float32),
                                  model.encoder.frames(torch.from_numpy(mel)[None]),
                                  torch.tensor(feat.f0_hz[None], dtype=torch.float32) if moved else None)

    def resynthesize(self, audio: np.ndarray, source: str, channel: str, seed: int = 0) -> np.ndarray:
        """Play a recording's own f0, loudness and latent trajectory z(t) through the model (quality checks)."""
        controls = self.source_controls(audio)
        kw = torch.tensor(self.key_weights(RenderRequest(((source, 1.0),), channel, 60, 127, 1.0, 0.0))[None],
                          dtype=torch.float32)
        g = torch.Generator().manual_seed(seed)
        white = torch.randn(1, controls["f0_hz"].shape[1], 2 * self.hop, generator=g)
        with torch.no_grad():
            y = self.model.synthesize(controls, white, self._room_weights(kw) if self.model.reverb is not None
                                      else None)
        return y[0, :len(audio)].numpy()
