"""SONGSHTR's model, char-rnn for audio: Dense → LSTM → a VAE latent → Dense, predicting the next frame.

    >>> model = LSTMVAE(LSTMVAEConfig(features=257, hidden=32, latent=8))
    >>> loss = model.loss(torch.randn(4, 17, 257))       # frames (batch, steps + 1, features): log-MSE + β·KL
    >>> model.generate(torch.randn(4, 8, 257), 20, torch.randn(20, 4, 8), temperature=1.0).shape
    torch.Size([4, 20, 257])

The latent is sampled with a spread (`temperature` × the posterior's σ), so a generated sequence does
not settle into repeating itself; temperature 0 takes the posterior mean.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class LSTMVAEConfig:
    features: int                 # values per frame (DCT coefficients or FFT bins)
    hidden: int = 128             # LSTM size
    layers: int = 1
    latent: int = 32
    kl_weight: float = 1e-3

    def to_json(self) -> dict:
        return asdict(self)


class LSTMVAE(nn.Module):
    def __init__(self, config: LSTMVAEConfig):
        super().__init__()
        self.config = config
        c = config
        self.inp = nn.Linear(c.features, c.hidden)
        self.lstm = nn.LSTM(c.hidden, c.hidden, c.layers, batch_first=True)
        self.mu = nn.Linear(c.hidden, c.latent)
        self.logvar = nn.Linear(c.hidden, c.latent)
        self.dec = nn.Linear(c.latent, c.hidden)
        self.out = nn.Linear(c.hidden, c.features)

    def step(self, x: torch.Tensor, state=None):
        """x (B, T, features) → (mu, logvar) (B, T, latent) each and the LSTM state."""
        h, state = self.lstm(torch.tanh(self.inp(x)), state)
        return self.mu(h), self.logvar(h).clamp(-12.0, 6.0), state

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.dec(z)))

    def loss(self, frames: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the predicted next frames (features are log-compressed: a log-MSE) plus
        `kl_weight` × the KL divergence of the latent from N(0, 1) (summed over latent units)."""
        x, target = frames[:, :-1], frames[:, 1:]
        mu, logvar, _ = self.step(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        mse = F.mse_loss(self.decode(z).float(), target.float())
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(-1).mean()
        return mse + self.config.kl_weight * kl

    @torch.no_grad()
    def residual_spread(self, batches) -> torch.Tensor:
        """Per feature, the RMS of what the model's next-frame prediction misses on `batches` of frames
        (B, T + 1, features): the spread generation adds back, so that a generated frame is a draw, not the
        average of every frame that could follow (an average of DCT coefficients whose signs vary is
        near zero: a hiss far from the sources' spectrum)."""
        total, count = None, 0
        for frames in batches:
            frames = torch.as_tensor(frames)
            x, target = frames[:, :-1], frames[:, 1:]
            mu, logvar, _ = self.step(x)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            err = (target - self.decode(z)).square().sum(dim=(0, 1))
            total = err if total is None else total + err
            count += target.shape[0] * target.shape[1]
        return (total / max(count, 1)).sqrt()

    @torch.no_grad()
    def generate(self, prime: torch.Tensor, steps: int, noise: torch.Tensor | None,
                 temperature: float = 1.0, frame_noise: torch.Tensor | None = None) -> torch.Tensor:
        """Run over `prime` (B, P, features), then feed each predicted frame back `steps` times.
        `noise` (steps, B, latent) standard normal; None or temperature 0 takes the latent's mean.
        `frame_noise` (B, steps, features), if given, is added to each predicted frame (the one fed back
        and the one returned): the residual spread × standard normal draws.

        The loop never leaves the hidden size: a predicted frame is `out(a)` and the next step reads
        `inp(frame)`, so `inp ∘ out` is one (hidden × hidden) matrix; the frames themselves come from one
        batched matmul over every step at the end. Each step is then a few small matmuls (see `_feedback`).
        """
        mu, logvar, (h, c) = self.step(prime)
        pushed = None if frame_noise is None else F.linear(frame_noise, self.inp.weight)    # inp's share of it
        out = F.linear(self._feedback(mu[:, -1], logvar[:, -1], h, c, steps, noise, temperature, pushed),
                       self.out.weight, self.out.bias)
        return out if frame_noise is None else out.add_(frame_noise)

    def _feedback(self, mu, logvar, h, c, steps, noise, temperature, pushed=None) -> torch.Tensor:
        """The generation loop in the hidden size: (B, steps, hidden) pre-output activations `a`."""
        cfg = self.config
        b, hid = mu.shape[0], cfg.hidden
        # inp(out(a)) = a @ (W_inp W_out)^T + (W_inp b_out + b_inp)
        loop_w = (self.inp.weight @ self.out.weight).t().contiguous()
        loop_b = self.inp.weight @ self.out.bias + self.inp.bias
        layers = []
        for k in range(cfg.layers):
            w = torch.cat([getattr(self.lstm, f"weight_ih_l{k}"), getattr(self.lstm, f"weight_hh_l{k}")], 1)
            layers.append((w.t().contiguous(),
                           getattr(self.lstm, f"bias_ih_l{k}") + getattr(self.lstm, f"bias_hh_l{k}")))
        head_w = torch.cat([self.mu.weight, self.logvar.weight]).t().contiguous()
        head_b = torch.cat([self.mu.bias, self.logvar.bias])
        dec_w, dec_b = self.dec.weight.t().contiguous(), self.dec.bias
        hs, cs = list(h.unbind(0)), list(c.unbind(0))
        sample = noise is not None and temperature > 0
        acts = torch.empty(b, steps, hid)
        both = torch.empty(b, 2 * hid)
        gates = torch.empty(b, 4 * hid)
        head = torch.empty(b, 2 * cfg.latent)
        for t in range(steps):
            z = mu + (temperature * noise[t]) * torch.exp(0.5 * logvar) if sample else mu
            a = torch.addmm(dec_b, z, dec_w).tanh_()
            acts[:, t] = a
            torch.addmm(loop_b, a, loop_w, out=both[:, :hid])
            if pushed is not None:
                both[:, :hid] += pushed[:, t]
            both[:, :hid].tanh_()
            for k, (w, bias) in enumerate(layers):
                if k:
                    both[:, :hid] = hs[k - 1]
                both[:, hid:] = hs[k]
                torch.addmm(bias, both, w, out=gates)
                i, f, g, o = gates.chunk(4, 1)
                cs[k] = torch.sigmoid(f) * cs[k] + torch.sigmoid(i) * torch.tanh(g)
                hs[k] = torch.sigmoid(o) * torch.tanh(cs[k])
            torch.addmm(head_b, hs[-1], head_w, out=head)
            mu, logvar = head[:, :cfg.latent].clone(), head[:, cfg.latent:].clamp(-12.0, 6.0)
        return acts
