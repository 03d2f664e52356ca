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
    def generate(self, prime: torch.Tensor, steps: int, noise: torch.Tensor | None,
                 temperature: float = 1.0) -> torch.Tensor:
        """Run over `prime` (B, P, features), then feed each predicted frame back `steps` times.
        `noise` (steps, B, latent) standard normal; None or temperature 0 takes the latent's mean."""
        mu, logvar, state = self.step(prime)
        mu, logvar = mu[:, -1], logvar[:, -1]
        out = []
        for t in range(steps):
            z = mu if noise is None or temperature <= 0 else mu + temperature * noise[t] * torch.exp(0.5 * logvar)
            frame = self.decode(z)
            out.append(frame)
            mu, logvar, state = self.step(frame[:, None], state)
            mu, logvar = mu[:, 0], logvar[:, 0]
        return torch.stack(out, dim=1)
