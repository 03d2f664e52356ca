"""The networks of the `wavenet` engine: NSynth's WaveNet autoencoder (its fast incremental generator is
in `generator`).

    >>> config = WaveNetConfig(width=8, skip=8, stacks=1, layers=2, enc_width=8, enc_layers=2, enc_cycle=2,
    ...                        hop=16, pitch_features=0)
    >>> model = WaveNetAutoencoder(config)
    >>> audio = torch.zeros(1, 64)
    >>> z = model.encoder(audio)                                   # (B, T) → (B, ceil(T / hop), latent)
    >>> logits = model.decoder(shift_right(mu_law_encode(audio)), model.conditioning(z))
    >>> z.shape, logits.shape                                      # logits: (B, 256 classes, T)
    (torch.Size([1, 4, 16]), torch.Size([1, 256, 64]))

Encoder (non-causal): mu-law companded audio → a width-3 conv → residual layers (ReLU → dilated conv, kernel
3, dilations cycling 1 … 2^(cycle-1) → ReLU → 1×1, added back) → a 1×1 bottleneck to `latent` channels →
average-pooled by `hop` (512 at 16 kHz: 31.25 latent frames per second, as in NSynth).

Decoder (causal WaveNet): the previous sample's mu-law class → an embedding → `stacks × layers` gated residual
layers. Layer l sees its input at t, t - d and t - 2d (kernel 3, dilation d = 2^(l mod layers)); the frame's
conditioning (the latent, optionally with pitch features) is projected by a 1×1 and added before the gate
tanh(f) · sigmoid(g); a 1×1 of the gate's output goes to the skip sum and another back onto the residual path.
The head is ReLU → 1×1 → ReLU → 1×1 → 256 logits over 8-bit mu-law classes. The latent is upsampled by
repetition (NSynth's choice), so the conditioning is constant over each hop.

The guide (`guide_features` > 0): a second conditioning signal at the audio rate, a guide waveform the network
refines (the engine's is the ddsp engine's render of the same note; in training, the target itself with noise
injected). Its mu-law companded samples at t - 1, t and t + 1 (it is known in advance, so the decoder may look
one sample ahead) are projected by a 1×1 into every layer's gate, like the latent. The guide's class also
centres a prior on the logits (`guide_prior`): a learned scale times -((k - class(g_t)) / 8)² is added to
logit k, so an untrained network already predicts "near the guide" and learns the residual around it.

The residual (`residual_scale` > 0, guided only): the classes are then the mu-law code of (audio - guide) /
residual_scale, the difference from the guide, and the audio is guide + residual_scale · decoded class
(`to_classes`, `to_audio`). 8-bit mu-law leaves a white floor about 38 dB under whatever it codes, which fills
a flute's quiet upper bands when it codes the waveform; coding the (much smaller) difference puts that floor
under the difference instead. The prior is then centred on class 128 (no difference) at every sample.

Fast generation (`FastGenerator`) keeps, for every layer, a ring of its last 2·d + 1 inputs (the queues of
fast WaveNet generation) and runs one step for the whole batch with, per layer: three `addmm`s that apply the
tap weights (C → 2·C) straight to the ring's slots for t - 2d, t - d and t, on top of the frame's
precomputed conditioning (the conditioning and every bias folded into the first one's additive input), one
`sigmoid` for both halves (tanh(f) = 2·sigmoid(2f) - 1, the constants folded into the weights: torch's CPU
tanh is ~9× slower than its sigmoid), a subtract and a multiply for the gate, and two `addmm`s for the
residual (written straight into the next layer's queue) and skip paths.
State is stored channels-first (C, B) so every one of these is a contiguous BLAS call or a contiguous
elementwise op on preallocated buffers: no tensor memory is allocated inside the sample loop.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MU = 255
CLASSES = MU + 1
SILENCE_CLASS = 128          # mu_law_encode(0.0)


# --------------------------------------------------------------------------- mu-law

def mu_law_compand(x, mu: int = MU):
    """Continuous mu-law companding of [-1, 1] audio (torch or numpy)."""
    if isinstance(x, torch.Tensor):
        return torch.sign(x) * torch.log1p(mu * x.abs().clamp(max=1.0)) / math.log1p(mu)
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1.0)) / math.log1p(mu)


def mu_law_encode(x, mu: int = MU):
    """[-1, 1] audio → int64 classes 0 … mu (8-bit mu-law; 0.0 → 128)."""
    y = mu_law_compand(x, mu)
    if isinstance(y, torch.Tensor):
        return torch.floor((y + 1.0) * (mu / 2.0) + 0.5).long().clamp(0, mu)
    return np.clip(np.floor((y + 1.0) * (mu / 2.0) + 0.5), 0, mu).astype(np.int64)


def mu_law_decode(q, mu: int = MU):
    """Classes 0 … mu → audio in [-1, 1] (float32); the inverse of `mu_law_encode` at bin centres."""
    if isinstance(q, torch.Tensor):
        y = q.float() * (2.0 / mu) - 1.0
        return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu
    y = np.asarray(q, dtype=np.float64) * (2.0 / mu) - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu).astype(np.float32)


def to_classes(audio, guide, residual_scale: float = 0.0):
    """The classes a model codes: mu-law of the audio, or with `residual_scale` > 0 of its difference from the
    guide (same shape; torch or numpy).

        >>> to_classes(np.array([0.5]), np.array([0.5]), 0.25).tolist()         # no difference: class 128
        [128]
    """
    if residual_scale > 0:
        return mu_law_encode((audio - guide) / residual_scale)
    return mu_law_encode(audio)


def to_audio(classes, guide, residual_scale: float = 0.0):
    """The inverse of `to_classes` (at the classes' centres): audio from classes (and the guide).

        >>> x, g = np.array([0.3, -0.2]), np.array([0.25, -0.1])
        >>> bool(np.allclose(to_audio(to_classes(x, g, 0.25), g, 0.25), x, atol=2e-3))
        True
    """
    if residual_scale > 0:
        return guide + residual_scale * mu_law_decode(classes)
    return mu_law_decode(classes)


def shift_right(q: torch.Tensor) -> torch.Tensor:
    """Decoder inputs for targets q (B, T): the previous sample's class, silence before the first."""
    return F.pad(q[:, :-1], (1, 0), value=SILENCE_CLASS)


# --------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class WaveNetConfig:
    sample_rate: int = 16000
    hop: int = 512
    latent: int = 16
    width: int = 64                # decoder residual channels (NSynth: 512)
    skip: int = 64                 # decoder skip channels (NSynth: 256)
    stacks: int = 2                # decoder stacks of `layers` (NSynth: 3 × 10)
    layers: int = 10
    enc_width: int = 64            # encoder channels (NSynth: 128)
    enc_layers: int = 10           # encoder residual layers (NSynth: 30)
    enc_cycle: int = 10            # encoder dilations cycle 1 … 2^(enc_cycle - 1)
    pitch_features: int = 16       # 0 = no pitch conditioning
    guide_features: int = 0        # 0 = no guide waveform; 3 = its samples at t - 1, t, t + 1
    guide_prior: bool = False      # logits centred on the guide's class (the network learns the residual)
    residual_scale: float = 0.0    # > 0: the classes are mu-law of (audio - guide) / residual_scale (see below)

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def residual(self) -> bool:
        """Whether the classes code the difference from the guide rather than the waveform."""
        return self.residual_scale > 0 and self.guide_features > 0

    @property
    def dilations(self) -> list[int]:
        return [2 ** (i % self.layers) for i in range(self.stacks * self.layers)]

    @property
    def receptive_field(self) -> int:
        """Samples of history one output depends on (itself included)."""
        return 1 + 2 * sum(self.dilations)

    @property
    def cond_size(self) -> int:
        return self.latent + self.pitch_features

    def queue_floats_per_voice(self) -> int:
        """Floats of generator state per voice: every layer's ring of 2·d + 1 inputs."""
        return sum(2 * d + 1 for d in self.dilations) * self.width

    def flops_per_sample(self) -> int:
        """Multiply-adds × 2 of one generated sample (taps, residual, skip and head matmuls)."""
        c, s, n = self.width, self.skip, len(self.dilations)
        per_layer = 2 * (3 * c * 2 * c) + 2 * c * s
        residual = (n - 1) * 2 * c * c
        head = 2 * s * s + 2 * s * CLASSES
        guide = 2 * self.guide_features * n * 2 * c
        return n * per_layer + residual + head + guide


def pitch_features(midi, n: int) -> torch.Tensor:
    """Fixed sinusoidal features of a (fractional) MIDI pitch: (…,) → (…, n). Periods from 256 down to 3
    semitones (geometric), so nearby notes get nearby features and a semitone is resolved."""
    midi = torch.as_tensor(midi, dtype=torch.float32)
    if n == 0:
        return midi.new_zeros(midi.shape + (0,))
    k = n // 2
    periods = 256.0 * (3.0 / 256.0) ** (torch.arange(k, dtype=torch.float32) / max(1, k - 1))
    phase = 2 * math.pi * midi[..., None] / periods
    feats = torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)
    if n % 2:
        feats = torch.cat([feats, (midi[..., None] - 64.0) / 64.0], dim=-1)
    return feats


def guide_features(guide, n: int) -> torch.Tensor:
    """(B, T) guide waveform → (B, n, T) features: its mu-law companded samples at t - 1, t, t + 1 (n = 3;
    zeros outside the waveform).

        >>> guide_features(torch.tensor([[0.0, 1.0, -1.0]]), 3)[0].tolist()
        [[0.0, 0.0, 1.0], [0.0, 1.0, -1.0], [1.0, -1.0, 0.0]]
    """
    if n != 3:
        raise ValueError("guide features are the samples at t - 1, t and t + 1 (guide_features: 3)")
    g = mu_law_compand(torch.as_tensor(guide, dtype=torch.float32))
    padded = F.pad(g, (1, 1))
    return torch.stack([padded[:, :-2], padded[:, 1:-1], padded[:, 2:]], dim=1)


PRIOR_WIDTH = 8.0            # classes: the guide prior's scale (a quadratic well -((k - q) / 8)²)


def guide_prior(guide_class: torch.Tensor) -> torch.Tensor:
    """(…) int64 guide classes → (…, 256) unscaled prior -((k - q) / PRIOR_WIDTH)² over the classes k."""
    k = torch.arange(CLASSES, dtype=torch.float32, device=guide_class.device)
    return -((k - guide_class[..., None].float()) / PRIOR_WIDTH) ** 2


# --------------------------------------------------------------------------- encoder

class Encoder(nn.Module):
    """Non-causal dilated residual convolutions → 1×1 bottleneck → average pool by the hop."""

    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.config = config
        w = config.enc_width
        self.start = nn.Conv1d(1, w, 3, padding=1)
        self.dilated = nn.ModuleList(nn.Conv1d(w, w, 3, dilation=2 ** (i % config.enc_cycle),
                                               padding=2 ** (i % config.enc_cycle))
                                     for i in range(config.enc_layers))
        self.mix = nn.ModuleList(nn.Conv1d(w, w, 1) for _ in range(config.enc_layers))
        self.bottleneck = nn.Conv1d(w, config.latent, 1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) audio in [-1, 1] → (B, ceil(T / hop), latent) latent frames; frame j pools samples
        [j·hop, (j + 1)·hop) (the last frame is zero-padded)."""
        hop = self.config.hop
        t = audio.shape[-1]
        frames = max(1, -(-t // hop))
        x = F.pad(audio, (0, frames * hop - t))
        h = self.start(mu_law_compand(x)[:, None, :])
        for conv, mix in zip(self.dilated, self.mix):
            h = h + mix(F.relu(conv(F.relu(h))))
        z = self.bottleneck(h)
        return F.avg_pool1d(z, hop).transpose(1, 2)


# --------------------------------------------------------------------------- decoder

class Decoder(nn.Module):
    """Causal conditioned WaveNet over mu-law classes (teacher-forced forward; see FastGenerator)."""

    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.config = config
        c, s, n = config.width, config.skip, len(config.dilations)
        self.embed = nn.Embedding(CLASSES, c)
        self.taps = nn.ModuleList(nn.Conv1d(c, 2 * c, 3, dilation=d) for d in config.dilations)
        self.cond = nn.Linear(config.cond_size, n * 2 * c)       # every layer's 1×1 of the conditioning
        self.res = nn.ModuleList(nn.Conv1d(c, c, 1, bias=False) for _ in range(n - 1))
        self.skip = nn.ModuleList(nn.Conv1d(c, s, 1, bias=False) for _ in range(n))
        self.skip_bias = nn.Parameter(torch.zeros(s))
        self.out1 = nn.Conv1d(s, s, 1)
        self.out2 = nn.Conv1d(s, CLASSES, 1)
        self.guide = nn.Conv1d(config.guide_features, n * 2 * c, 1, bias=False) if config.guide_features else None
        self.prior_scale = nn.Parameter(torch.ones(())) if config.guide_prior else None

    def forward(self, inputs: torch.Tensor, cond: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """inputs (B, T) int64: the previous sample's class at every step (see `shift_right`);
        cond (B, F, cond_size) per latent frame with F·hop >= T; guide (B, T + k) waveform, k ≥ 1 samples
        beyond the last input's position (the look-ahead), for a guided model → logits (B, 256, T)."""
        hop = self.config.hop
        b, t = inputs.shape
        frames = -(-t // hop)
        if cond.shape[1] < frames:
            raise ValueError(f"{t} samples need {frames} conditioning frames, got {cond.shape[1]}")
        padded = frames * hop
        x = F.pad(inputs, (0, padded - t), value=SILENCE_CLASS)
        h = self.embed(x).transpose(1, 2)                                       # (B, C, T')
        c2 = 2 * self.config.width
        cproj = self.cond(cond[:, :frames])                                     # (B, F, n·2C)
        gproj = None
        if self.guide is not None:
            if guide is None or guide.shape[-1] < t + 1:
                raise ValueError(f"a guided decoder needs the guide waveform for {t + 1} samples")
            feats = guide_features(guide[:, :t + 1], self.config.guide_features)[..., :t]
            gproj = self.guide(F.pad(feats, (0, padded - t)))                    # (B, n·2C, T')
        skip = None
        for i, (conv, d) in enumerate(zip(self.taps, self.config.dilations)):
            g = conv(F.pad(h, (2 * d, 0)))                                      # taps t-2d, t-d, t
            cl = cproj[..., i * c2:(i + 1) * c2].transpose(1, 2)                # (B, 2C, F)
            g = (g.view(b, c2, frames, hop) + cl[..., None]).view(b, c2, padded)
            if gproj is not None:
                g = g + gproj[:, i * c2:(i + 1) * c2]
            f, gate = g.chunk(2, dim=1)
            z = torch.tanh(f) * torch.sigmoid(gate)
            sk = self.skip[i](z)
            skip = sk if skip is None else skip + sk
            if i < len(self.res):
                h = h + self.res[i](z)
        y = F.relu(skip + self.skip_bias[:, None])
        y = self.out2(F.relu(self.out1(y)))[..., :t]
        if self.prior_scale is not None:
            centre = (torch.full_like(inputs, SILENCE_CLASS) if self.config.residual
                      else mu_law_encode(guide[:, :t]))
            y = y + self.prior_scale * guide_prior(centre).transpose(1, 2)
        return y


class WaveNetAutoencoder(nn.Module):
    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def conditioning(self, latents: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        """(B, F, latent) latents and (B,) MIDI pitches → (B, F, cond_size) decoder conditioning."""
        n = self.config.pitch_features
        if n == 0:
            return latents
        if pitch is None:
            raise ValueError("this model is pitch-conditioned: pass the MIDI pitch")
        feats = pitch_features(pitch.detach().float().cpu(), n).to(latents.device, latents.dtype)
        return torch.cat([latents, feats[:, None, :].expand(-1, latents.shape[1], -1)], dim=-1)

    def targets(self, audio: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) int64 classes the decoder predicts for audio (B, T) (see `to_classes`)."""
        if self.config.residual:
            return to_classes(audio, guide[:, :audio.shape[-1]], self.config.residual_scale)
        return mu_law_encode(audio)

    def forward(self, audio: torch.Tensor, pitch: torch.Tensor | None = None,
                guide: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, 256, T) for audio (B, T) (and, guided, its guide (B, T + 1))."""
        z = self.encoder(audio)
        return self.decoder(shift_right(self.targets(audio, guide)), self.conditioning(z, pitch), guide)

    def loss(self, audio: torch.Tensor, pitch: torch.Tensor | None = None,
             guide: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy (nats) of the next sample's class."""
        logits = self(audio, pitch, guide)
        return F.cross_entropy(logits.float(), self.targets(audio, guide))


__all__ = ["CLASSES", "MU", "SILENCE_CLASS", "Decoder", "Encoder", "WaveNetAutoencoder", "WaveNetConfig",
           "guide_features", "guide_prior", "mu_law_compand", "mu_law_decode", "mu_law_encode", "pitch_features",
           "shift_right", "to_audio", "to_classes"]
