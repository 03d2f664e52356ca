"""Fast incremental WaveNet generation (cached per-layer queues for a whole batch of voices), and the slow
reference it must agree with.

    >>> from dawexport.engines.wavenet.model import WaveNetAutoencoder, WaveNetConfig
    >>> decoder = WaveNetAutoencoder(WaveNetConfig(width=8, skip=8, stacks=1, layers=2, pitch_features=0)).decoder
    >>> gen = FastGenerator(decoder, batch=2, temperature=0.0)   # greedy: the most likely class
    >>> gen.generate(torch.zeros(2, 1, decoder.config.cond_size), 5).shape     # cond (B, frames, size)
    torch.Size([5, 2])
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .model import CLASSES, SILENCE_CLASS, Decoder, guide_features, guide_prior, mu_law_encode


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
            # taps: conv weight (2C, C, 3) → three (2C, C) matrices for the inputs at t - 2d, t - d and t, each
            # applied straight to its slot of the ring (no gather of the three into one operand)
            self.w_taps = [[(conv.weight.detach().to(dev)[..., k] * half[:, None]).contiguous() for k in range(3)]
                           for conv in decoder.taps]
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
            # the guide's per-sample projection (n·2C, k), gate half scaled like the conditioning
            self.w_guide = ((decoder.guide.weight.detach().to(dev)[..., 0] * scale[:, None]).contiguous()
                            if decoder.guide is not None else None)
            self.prior_scale = float(decoder.prior_scale) if decoder.prior_scale is not None else None
        self.set_temperature(temperature)
        # state and scratch (channels-first: column j is voice j)
        self.queues = [torch.zeros(2 * d + 1, c, b, device=dev) for d in self.dilations]
        self.slots = [list(q.unbind(0)) for q in self.queues]                     # views, made once
        self.g = torch.empty(2 * c, b, device=dev)
        self.g_f, self.g_g = self.g[:c], self.g[c:]
        self.z = torch.empty(c, b, device=dev)
        self.skip = torch.empty(s, b, device=dev)
        self.h1 = torch.empty(s, b, device=dev)
        self.h2 = torch.empty(s, b, device=dev)
        self.logits = torch.empty(b, CLASSES, device=dev)
        self.cdf = torch.empty(b, CLASSES, device=dev)
        self.thresh = torch.empty(b, 1, device=dev)
        self.half = torch.tensor(0.5, device=dev)
        self.cond_now = torch.empty(n * 2 * c, b, device=dev)
        self.cond_layers = list(self.cond_now.view(n, 2 * c, b).unbind(0))
        # guided: the frame's conditioning lives apart and each step adds the guide's projection to it
        self.cond_frame = torch.empty(n * 2 * c, b, device=dev) if self.w_guide is not None else self.cond_now
        self.prior_now = torch.empty(b, CLASSES, device=dev) if self.prior_scale is not None else None
        self.probs = torch.empty(b, CLASSES, device=dev)
        self.t = 0

    def set_temperature(self, temperature: float) -> None:
        """Sampling temperature (folded into the last layer); 0 means argmax."""
        self.temperature = float(temperature)
        scale = 1.0 / self.temperature if self.temperature > 0 else 1.0
        self.w_out2 = (self.w_out2_raw * scale).contiguous()
        # the guide prior, one row per guide class (the temperature folded in too)
        self.prior_rows = (self.prior_scale * scale * guide_prior(torch.arange(CLASSES, device=self.device))
                           ).contiguous() if self.prior_scale is not None else None
        bias = self.b_out2_raw * scale
        if self.prior_rows is not None and self.config.residual:
            # a residual model's prior is centred on "no difference" at every sample: a constant, in the bias
            bias = bias + self.prior_rows[SILENCE_CLASS]
        self.b_out2 = bias.contiguous()
        self.prior_per_sample = self.prior_rows is not None and not self.config.residual

    def reset(self) -> None:
        for q in self.queues:
            q.zero_()
        self.t = 0

    def state_bytes_per_voice(self) -> int:
        return self.config.queue_floats_per_voice() * self.queues[0].element_size()

    def _set_frame(self, cond_frame: torch.Tensor) -> None:
        """cond_frame (cond_size, B): every layer's conditioning for the coming hop."""
        torch.addmm(self.b_cond, self.w_cond, cond_frame, out=self.cond_frame)

    def _step(self, prev: torch.Tensor, guide_now: torch.Tensor | None = None,
              guide_class: torch.Tensor | None = None) -> torch.Tensor:
        """One sample for every voice: prev (B,) int64 classes → logits (B, 256) (in self.logits); a guided
        decoder also takes the guide's features at this sample (k, B) and its class (B,)."""
        t = self.t
        if guide_now is not None:
            torch.addmm(self.cond_frame, self.w_guide, guide_now, out=self.cond_now)
        dil = self.dilations
        n = len(dil)
        slots = [self.slots[i][t % (2 * dil[i] + 1)] for i in range(n)]
        torch.index_select(self.embed_t, 1, prev, out=slots[0])
        g, g_f, g_g, z = self.g, self.g_f, self.g_g, self.z
        for i in range(n):
            d, ring, (w_far, w_near, w_now) = dil[i], self.slots[i], self.w_taps[i]
            torch.addmm(self.cond_layers[i], w_far, ring[(t - 2 * d) % (2 * d + 1)], out=g)     # t - 2d
            g.addmm_(w_near, ring[(t - d) % (2 * d + 1)])                                      # t - d
            g.addmm_(w_now, slots[i])                                                          # t
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
        if guide_class is not None and self.prior_per_sample:
            torch.index_select(self.prior_rows, 0, guide_class, out=self.prior_now)
            self.logits.add_(self.prior_now)
        self.t = t + 1
        return self.logits

    def _sample(self, uniform: torch.Tensor, out: torch.Tensor) -> None:
        """Inverse-CDF sampling of every row of self.logits with uniforms (B, 1) into out (B, 1): the class
        is the number of cumulative probabilities below u · their total (`naive_generate`'s rule).

        One softmax, not exp(l - max): torch's elementwise exp takes a slow path (~15×) for inputs that
        underflow, which the guide prior's steep well makes most of them. u < 1, so the class is at most 255."""
        if self.temperature <= 0:
            torch.argmax(self.logits, 1, keepdim=True, out=out)
            return
        torch.ops.aten._softmax.out(self.logits, 1, False, out=self.probs)
        torch.cumsum(self.probs, 1, out=self.cdf)
        torch.mul(self.cdf[:, -1:], uniform, out=self.thresh)
        torch.searchsorted(self.cdf, self.thresh, out=out)

    @torch.no_grad()
    def generate(self, cond: torch.Tensor, n_samples: int, uniforms: torch.Tensor | None = None, *,
                 guide: torch.Tensor | None = None, forced: torch.Tensor | None = None, return_logits: bool = False,
                 callback: Callable[[int], None] | None = None):
        """Generate n_samples for every voice.

        cond (B, F, cond_size) per latent frame (F·hop >= n_samples); uniforms (n_samples, B) in [0, 1)
        drive the sampling (None = argmax); a guided decoder takes its guide waveform (n_samples, B) (a residual
        one returns the classes of the difference from it: see `model.to_audio`). `forced` (n_samples, B) feeds given classes instead of the
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
        feats = classes = None
        if self.w_guide is not None:
            if guide is None or tuple(guide.shape) != (n_samples, b):
                raise ValueError(f"a guided decoder needs its guide waveform ({n_samples}, {b})")
            g = guide.to(self.device, torch.float32).t()                                # (B, n)
            feats = guide_features(g, self.config.guide_features).permute(2, 1, 0).contiguous()   # (n, k, B)
            if self.prior_per_sample:                       # the prior's centres: the guide's classes (n, B)
                classes = mu_law_encode(g).t().contiguous()
        out = torch.empty(n_samples, b, 1, dtype=torch.long, device=self.device)
        logits_out = torch.empty(n_samples, CLASSES, b, device=self.device) if return_logits else None
        prev = torch.full((b,), SILENCE_CLASS, dtype=torch.long, device=self.device)
        # every sample's rows as views made once, not a tensor per index inside the loop
        none = [None] * n_samples
        feat_rows = feats.unbind(0) if feats is not None else none
        class_rows = classes.unbind(0) if classes is not None else none
        uniform_rows = uniforms.unbind(0) if uniforms is not None else none
        out_rows, prev_rows = out.unbind(0), out.view(n_samples, b).unbind(0)
        for t in range(n_samples):
            if t % hop == 0:
                self._set_frame(cond_t[t // hop])
                if callback is not None and t:
                    callback(t)
            logits = self._step(prev, feat_rows[t], class_rows[t])
            if logits_out is not None:
                logits_out[t].copy_(logits.t())
            if forced is not None:
                prev_rows[t].copy_(forced[t])
            else:
                self._sample(uniform_rows[t], out_rows[t])
            prev = prev_rows[t]
        out = out.view(n_samples, b)
        if callback is not None:
            callback(n_samples)
        return (out, logits_out) if return_logits else out


# --------------------------------------------------------------------------- the slow reference

@torch.no_grad()
def naive_generate(decoder: Decoder, cond: torch.Tensor, n_samples: int, uniforms: torch.Tensor | None = None,
                   temperature: float = 1.0, guide: torch.Tensor | None = None) -> torch.Tensor:
    """Reference sampler that re-runs the full convolution over the receptive field for every sample
    (how WaveNet sampling works without queues). Same sampling rule as FastGenerator; for benchmarks."""
    cfg = decoder.config
    b = cond.shape[0]
    rf = cfg.receptive_field
    hop = cfg.hop
    history = torch.full((b, n_samples + 1), SILENCE_CLASS, dtype=torch.long)
    padded_guide = F.pad(guide.t().float(), (0, 1)) if guide is not None else None          # (B, n + 1)
    for t in range(n_samples):
        start = max(0, t + 1 - rf)
        # inputs for positions start … t, aligned so position p has frame p // hop: pad to a frame boundary
        lead = start % hop
        first = start - lead
        inputs = history[:, first:t + 1]
        frames = cond[:, first // hop:]
        g = padded_guide[:, first:t + 2] if padded_guide is not None else None
        logits = decoder(inputs, frames, g)[..., -1]              # (B, 256); positions before `start`
        logits = logits / temperature if temperature > 0 else logits  # only add context (≤ rf history)
        if temperature <= 0 or uniforms is None:
            nxt = logits.argmax(-1)
        else:
            p = torch.softmax(logits, -1).cumsum(-1)
            nxt = (p < uniforms[t][:, None] * p[:, -1:]).sum(-1).clamp(max=CLASSES - 1)
        history[:, t + 1] = nxt
    return history[:, 1:].t()


__all__ = ["FastGenerator", "naive_generate"]
