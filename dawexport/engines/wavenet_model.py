"""The networks of the `wavenet` engine: NSynth's WaveNet autoencoder, and its fast incremental generator.

    >>> model = WaveNetAutoencoder(WaveNetConfig(width=64))
    >>> z = model.encoder(audio)                                   # (B, T) → (B, ceil(T / hop), 16)
    >>> logits = model.decoder(shift_right(mu_law_encode(audio)), model.conditioning(z, pitch))
    >>> gen = FastGenerator(model.decoder, batch=234)
    >>> classes = gen.generate(model.conditioning(z, pitch), n_samples, uniforms)   # (n_samples, B) int64

Encoder (non-causal): mu-law companded audio → a width-3 conv → residual layers (ReLU → dilated conv, kernel
3, dilations cycling 1 … 2^(cycle-1) → ReLU → 1×1, added back) → a 1×1 bottleneck to `latent` channels →
average-pooled by `hop` (512 at 16 kHz: 31.25 latent frames per second, as in NSynth).

Decoder (causal WaveNet): the previous sample's mu-law class → an embedding → `stacks × layers` gated residual
layers. Layer l sees its input at t, t - d and t - 2d (kernel 3, dilation d = 2^(l mod layers)); the frame's
conditioning (the latent, optionally with pitch features) is projected by a 1×1 and added before the gate
tanh(f) · sigmoid(g); a 1×1 of the gate's output goes to the skip sum and another back onto the residual path.
The head is ReLU → 1×1 → ReLU → 1×1 → 256 logits over 8-bit mu-law classes. The latent is upsampled by
repetition (NSynth's choice), so the conditioning is constant over each hop.

Fast generation (`FastGenerator`) keeps, for every layer, a ring of its last 2·d + 1 inputs (the queues of
fast WaveNet generation) and runs one step for the whole batch with, per layer: one `index_select` that
gathers the three taps, one `addmm` that applies the fused (3·C → 2·C) tap weights on top of the frame's
precomputed conditioning (the conditioning and every bias folded into the matmul's additive input), one
`sigmoid` for both halves (tanh(f) = 2·sigmoid(2f) - 1, the constants folded into the weights: torch's CPU
tanh is ~9× slower than its sigmoid), a subtract and a multiply for the gate, and two `addmm`s for the
residual (written straight into the next layer's queue) and skip paths.
State is stored channels-first (C, B) so every one of these is a contiguous BLAS call or a contiguous
elementwise op on preallocated buffers: no tensor memory is allocated inside the sample loop.
"""
from __future__ import annotations

import math
from collections.abc import Callable
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

    def to_json(self) -> dict:
        return asdict(self)

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
        return n * per_layer + residual + head


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

    def forward(self, inputs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) int64: the previous sample's class at every step (see `shift_right`);
        cond (B, F, cond_size) per latent frame with F·hop >= T → logits (B, 256, T)."""
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
        skip = None
        for i, (conv, d) in enumerate(zip(self.taps, self.config.dilations)):
            g = conv(F.pad(h, (2 * d, 0)))                                      # taps t-2d, t-d, t
            cl = cproj[..., i * c2:(i + 1) * c2].transpose(1, 2)                # (B, 2C, F)
            g = (g.view(b, c2, frames, hop) + cl[..., None]).view(b, c2, padded)
            f, gate = g.chunk(2, dim=1)
            z = torch.tanh(f) * torch.sigmoid(gate)
            sk = self.skip[i](z)
            skip = sk if skip is None else skip + sk
            if i < len(self.res):
                h = h + self.res[i](z)
        y = F.relu(skip + self.skip_bias[:, None])
        y = self.out2(F.relu(self.out1(y)))
        return y[..., :t]


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

    def forward(self, audio: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, 256, T) for audio (B, T)."""
        z = self.encoder(audio)
        return self.decoder(shift_right(mu_law_encode(audio)), self.conditioning(z, pitch))

    def loss(self, audio: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy (nats) of the next mu-law sample."""
        logits = self(audio, pitch)
        return F.cross_entropy(logits.float(), mu_law_encode(audio))


# --------------------------------------------------------------------------- fast generation

class FastGenerator:
    """Autoregressive sampling with cached per-layer queues for a whole batch of voices.

    Weights are re-laid out once (channels-first, taps fused, the gate's constants, the biases and the
    temperature folded in); the state is every layer's ring of its last 2·d + 1 inputs, (2d + 1, C, B) each
    (slot t mod (2d + 1) holds the input at t, so the taps t - 2d, t - d, t are three slots of the ring),
    plus preallocated scratch. Memory per voice: `config.queue_floats_per_voice()` floats.
    """

    def __init__(self, decoder: Decoder, batch: int, device: torch.device | str | None = None,
                 temperature: float = 1.0):
        cfg = decoder.config
        self.config = cfg
        self.batch = batch
        self.device = torch.device(device) if device is not None else next(decoder.parameters()).device
        dev, b = self.device, batch
        c, s = cfg.width, cfg.skip
        self.dilations = cfg.dilations
        n = len(self.dilations)
        with torch.no_grad():
            half = torch.ones(2 * c, device=dev)
            half[:c] = 2.0                                   # tanh(f) = 2·sigmoid(2f) - 1
            # fused taps: conv weight (2C, C, 3) → (2C, 3C), column blocks [t-2d | t-d | t]
            self.w_taps = [(conv.weight.detach().to(dev).permute(0, 2, 1).reshape(2 * c, 3 * c)
                            * half[:, None]).contiguous() for conv in decoder.taps]
            # conditioning (B, cond) → (n·2C, B), conv biases folded in, gate half scaled
            tap_bias = torch.cat([conv.bias.detach().to(dev) for conv in decoder.taps])
            scale = half.repeat(n)
            self.w_cond = (decoder.cond.weight.detach().to(dev) * scale[:, None]).contiguous()
            self.b_cond = ((decoder.cond.bias.detach().to(dev) + tap_bias) * scale)[:, None].contiguous()
            # the gate output computed below is (sigmoid(2f) - 1/2)·sigmoid(g) = z / 2: double the 1×1s after it
            self.w_res = [(2.0 * m.weight.detach().to(dev)[..., 0]).contiguous() for m in decoder.res]
            self.w_skip = [(2.0 * m.weight.detach().to(dev)[..., 0]).contiguous() for m in decoder.skip]
            self.b_skip = decoder.skip_bias.detach().to(dev)[:, None].contiguous()
            self.w_out1 = decoder.out1.weight.detach().to(dev)[..., 0].contiguous()
            self.b_out1 = decoder.out1.bias.detach().to(dev)[:, None].contiguous()
            # the last layer writes voice-major logits (B, 256): its rows are contiguous for the sampling
            self.w_out2_raw = decoder.out2.weight.detach().to(dev)[..., 0].t().contiguous()     # (S, 256)
            self.b_out2_raw = decoder.out2.bias.detach().to(dev)[None, :].contiguous()          # (1, 256)
            self.embed_t = decoder.embed.weight.detach().to(dev).t().contiguous()      # (C, 256)
        self.set_temperature(temperature)
        # state and scratch (channels-first: column j is voice j)
        self.queues = [torch.zeros(2 * d + 1, c, b, device=dev) for d in self.dilations]
        self.slots = [list(q.unbind(0)) for q in self.queues]                     # views, made once
        self.taps_index = [[torch.tensor([(p - 2 * d) % (2 * d + 1), (p - d) % (2 * d + 1), p],
                                         device=dev) for p in range(2 * d + 1)] for d in self.dilations]
        self.x = torch.empty(3, c, b, device=dev)
        self.x_mat = self.x.view(3 * c, b)
        self.g = torch.empty(2 * c, b, device=dev)
        self.g_f, self.g_g = self.g[:c], self.g[c:]
        self.z = torch.empty(c, b, device=dev)
        self.skip = torch.empty(s, b, device=dev)
        self.h1 = torch.empty(s, b, device=dev)
        self.h2 = torch.empty(s, b, device=dev)
        self.logits = torch.empty(b, CLASSES, device=dev)
        self.cdf = torch.empty(b, CLASSES, device=dev)
        self.peak = torch.empty(b, 1, device=dev)
        self.thresh = torch.empty(b, 1, device=dev)
        self.half = torch.tensor(0.5, device=dev)
        self.cond_now = torch.empty(n * 2 * c, b, device=dev)
        self.cond_layers = list(self.cond_now.view(n, 2 * c, b).unbind(0))
        self.t = 0

    def set_temperature(self, temperature: float) -> None:
        """Sampling temperature (folded into the last layer); 0 means argmax."""
        self.temperature = float(temperature)
        scale = 1.0 / self.temperature if self.temperature > 0 else 1.0
        self.w_out2 = (self.w_out2_raw * scale).contiguous()
        self.b_out2 = (self.b_out2_raw * scale).contiguous()

    def reset(self) -> None:
        for q in self.queues:
            q.zero_()
        self.t = 0

    def state_bytes_per_voice(self) -> int:
        return self.config.queue_floats_per_voice() * self.queues[0].element_size()

    def _set_frame(self, cond_frame: torch.Tensor) -> None:
        """cond_frame (cond_size, B): every layer's conditioning for the coming hop."""
        torch.addmm(self.b_cond, self.w_cond, cond_frame, out=self.cond_now)

    def _step(self, prev: torch.Tensor) -> torch.Tensor:
        """One sample for every voice: prev (B,) int64 classes → logits (B, 256) (in self.logits)."""
        t = self.t
        dil = self.dilations
        n = len(dil)
        slots = [self.slots[i][t % (2 * dil[i] + 1)] for i in range(n)]
        torch.index_select(self.embed_t, 1, prev, out=slots[0])
        x, x_mat, g, g_f, g_g, z = self.x, self.x_mat, self.g, self.g_f, self.g_g, self.z
        for i in range(n):
            d = dil[i]
            torch.index_select(self.queues[i], 0, self.taps_index[i][t % (2 * d + 1)], out=x)
            torch.addmm(self.cond_layers[i], self.w_taps[i], x_mat, out=g)
            g.sigmoid_()                                             # torch's CPU sigmoid is ~9× its tanh
            g_f.sub_(self.half)                                      # sigmoid(2f) - 1/2 = tanh(f) / 2
            torch.mul(g_f, g_g, out=z)                               # z / 2
            if i == 0:
                torch.addmm(self.b_skip, self.w_skip[0], z, out=self.skip)
            else:
                self.skip.addmm_(self.w_skip[i], z)
            if i < n - 1:
                torch.addmm(slots[i], self.w_res[i], z, out=slots[i + 1])
        torch.clamp_min(self.skip, 0.0, out=self.h1)
        torch.addmm(self.b_out1, self.w_out1, self.h1, out=self.h2)
        self.h2.relu_()
        torch.addmm(self.b_out2, self.h2.t(), self.w_out2, out=self.logits)
        self.t = t + 1
        return self.logits

    def _sample(self, uniform: torch.Tensor, out: torch.Tensor) -> None:
        """Inverse-CDF sampling of every row of self.logits with uniforms (B, 1) into out (B,): the class
        is the number of cumulative probabilities below u (unnormalised: exp(l - max), u scaled)."""
        if self.temperature <= 0:
            torch.argmax(self.logits, 1, out=out)
            return
        torch.amax(self.logits, 1, keepdim=True, out=self.peak)
        self.logits.sub_(self.peak).exp_()
        torch.cumsum(self.logits, 1, out=self.cdf)
        torch.mul(self.cdf[:, -1:], uniform, out=self.thresh)
        torch.searchsorted(self.cdf, self.thresh, out=out.view(-1, 1))
        out.clamp_(max=CLASSES - 1)

    @torch.no_grad()
    def generate(self, cond: torch.Tensor, n_samples: int, uniforms: torch.Tensor | None = None, *,
                 forced: torch.Tensor | None = None, return_logits: bool = False,
                 callback: Callable[[int], None] | None = None):
        """Generate n_samples for every voice.

        cond (B, F, cond_size) per latent frame (F·hop >= n_samples); uniforms (n_samples, B) in [0, 1)
        drive the sampling (None = argmax). `forced` (n_samples, B) feeds given classes instead of the
        sampled ones (teacher forcing through the fast path, for checks). Returns (n_samples, B) int64
        classes, and (n_samples, 256, B) logits (divided by the temperature) when return_logits.
        `callback(t)` runs once per hop.
        """
        hop = self.config.hop
        b = self.batch
        if cond.shape[0] != b:
            raise ValueError(f"generator was built for {b} voices, got {cond.shape[0]}")
        frames_needed = -(-n_samples // hop)
        if cond.shape[1] < frames_needed:
            raise ValueError(f"{n_samples} samples need {frames_needed} conditioning frames, got {cond.shape[1]}")
        self.reset()
        cond_t = cond.to(self.device, torch.float32).permute(1, 2, 0).contiguous()    # (F, cond, B)
        if uniforms is not None:
            if tuple(uniforms.shape) != (n_samples, b):
                raise ValueError(f"uniforms must be ({n_samples}, {b}), got {tuple(uniforms.shape)}")
            uniforms = uniforms.to(self.device, torch.float32).reshape(n_samples, b, 1)
        elif self.temperature > 0 and forced is None:
            raise ValueError("sampling with a temperature needs uniforms (or set temperature 0)")
        out = torch.empty(n_samples, b, dtype=torch.long, device=self.device)
        logits_out = torch.empty(n_samples, CLASSES, b, device=self.device) if return_logits else None
        prev = torch.full((b,), SILENCE_CLASS, dtype=torch.long, device=self.device)
        for t in range(n_samples):
            if t % hop == 0:
                self._set_frame(cond_t[t // hop])
                if callback is not None and t:
                    callback(t)
            logits = self._step(prev)
            if logits_out is not None:
                logits_out[t].copy_(logits.t())
            if forced is not None:
                out[t].copy_(forced[t])
            else:
                self._sample(uniforms[t] if uniforms is not None else None, out[t])
            prev = out[t]
        if callback is not None:
            callback(n_samples)
        return (out, logits_out) if return_logits else out


# --------------------------------------------------------------------------- the slow reference

@torch.no_grad()
def naive_generate(decoder: Decoder, cond: torch.Tensor, n_samples: int, uniforms: torch.Tensor | None = None,
                   temperature: float = 1.0) -> torch.Tensor:
    """Reference sampler that re-runs the full convolution over the receptive field for every sample
    (how WaveNet sampling works without queues). Same sampling rule as FastGenerator; for benchmarks."""
    cfg = decoder.config
    b = cond.shape[0]
    rf = cfg.receptive_field
    hop = cfg.hop
    history = torch.full((b, n_samples + 1), SILENCE_CLASS, dtype=torch.long)
    for t in range(n_samples):
        start = max(0, t + 1 - rf)
        # inputs for positions start … t, aligned so position p has frame p // hop: pad to a frame boundary
        lead = start % hop
        first = start - lead
        inputs = history[:, first:t + 1]
        frames = cond[:, first // hop:]
        logits = decoder(inputs, frames)[..., -1]                 # (B, 256); positions before `start`
        logits = logits / temperature if temperature > 0 else logits  # only add context (≤ rf history)
        if temperature <= 0 or uniforms is None:
            nxt = logits.argmax(-1)
        else:
            p = torch.softmax(logits, -1).cumsum(-1)
            nxt = (p < uniforms[t][:, None] * p[:, -1:]).sum(-1).clamp(max=CLASSES - 1)
        history[:, t + 1] = nxt
    return history[:, 1:].t()


__all__ = [
    "CLASSES",
    "MU",
    "SILENCE_CLASS",
    "Decoder",
    "Encoder",
    "FastGenerator",
    "WaveNetAutoencoder",
    "WaveNetConfig",
    "mu_law_compand",
    "mu_law_decode",
    "mu_law_encode",
    "naive_generate",
    "pitch_features",
    "shift_right",
]
