"""SampleRNN (Mehri et al. 2017): frame-level GRU tiers that condition a sample-level MLP over 8-bit mu-law.

    >>> model = SampleRNN(SampleRNNConfig(frame_sizes=(16, 4), dim=32, mlp_dim=32))     # 3 tiers
    >>> logits, targets = model(torch.randint(0, 256, (2, 16 + 64)))    # 16 samples of context, then 64
    >>> logits.shape, targets.shape
    (torch.Size([2, 64, 256]), torch.Size([2, 64]))
    >>> model.eval().generate(torch.full((2, 16), 128), 100, torch.rand(100, 2)).shape   # 2 streams at once
    torch.Size([2, 100])

Tier k reads the `frame_sizes[k]` samples before its block (scaled to [-2, 2]) plus the conditioning its
upper tier produced for that block, steps a GRU, and projects the output to one conditioning vector per
block of the tier below (per sample for the lowest frame tier). The sample-level MLP sees the last
`frame_sizes[-1]` samples as embeddings plus that per-sample conditioning and predicts the next sample's
class. Generation precomputes embedding × first-layer weights as lookup tables, so each sample costs two
small matmuls per stream batch plus the frame tiers' steps every few samples.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..common.torch_utils import cpu_threads

CLASSES = 256
SILENCE_CLASS = 128


@dataclass(frozen=True)
class SampleRNNConfig:
    frame_sizes: tuple[int, ...] = (16, 4)   # top tier first; each divides the one above (2 or 3 tiers)
    dim: int = 256                           # frame-tier GRU size
    mlp_dim: int = 256                       # sample-level MLP width
    embed: int = 32                          # embedding size of one sample value

    def __post_init__(self):
        sizes = tuple(int(f) for f in self.frame_sizes)
        object.__setattr__(self, "frame_sizes", sizes)
        if not 1 <= len(sizes) <= 2:
            raise ValueError("SampleRNN has 2 or 3 tiers: one or two frame sizes")
        if any(a % b for a, b in zip(sizes, sizes[1:])) or min(sizes) < 1:
            raise ValueError(f"each frame size must divide the one above: {sizes}")

    @property
    def top(self) -> int:
        return self.frame_sizes[0]

    @property
    def tiers(self) -> int:
        return len(self.frame_sizes) + 1

    def to_json(self) -> dict:
        return {**asdict(self), "frame_sizes": list(self.frame_sizes)}


def dequantize(q: torch.Tensor) -> torch.Tensor:
    """Classes 0..255 → [-2, 2], the frame tiers' input scale (as in the reference implementation)."""
    return (q.float() / (CLASSES / 2.0) - 1.0) * 2.0


class FrameTier(nn.Module):
    def __init__(self, frame: int, ratio: int, dim: int, out_dim: int):
        super().__init__()
        self.frame, self.ratio, self.out_dim = frame, ratio, out_dim
        self.inp = nn.Linear(frame, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.up = nn.Linear(dim, out_dim * ratio)

    def forward(self, frames: torch.Tensor, cond: torch.Tensor | None, h0: torch.Tensor | None = None):
        """frames (B, T, frame) → (conditioning (B, T·ratio, out_dim), last hidden state)."""
        x = self.inp(frames)
        if cond is not None:
            x = x + cond
        out, h = self.gru(x, h0)
        b, t, _ = out.shape
        return self.up(out).reshape(b, t * self.ratio, self.out_dim), h


class SampleRNN(nn.Module):
    def __init__(self, config: SampleRNNConfig):
        super().__init__()
        self.config = config
        sizes = config.frame_sizes
        tiers = []
        for k, frame in enumerate(sizes):
            below = sizes[k + 1] if k + 1 < len(sizes) else 1
            out_dim = config.dim if k + 1 < len(sizes) else config.mlp_dim
            tiers.append(FrameTier(frame, frame // below, config.dim, out_dim))
        self.tiers = nn.ModuleList(tiers)
        self.embed = nn.Embedding(CLASSES, config.embed)
        self.inp = nn.Linear(sizes[-1] * config.embed, config.mlp_dim)
        self.hidden = nn.Linear(config.mlp_dim, config.mlp_dim)
        self.out = nn.Linear(config.mlp_dim, CLASSES)

    def forward(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q (B, top + L) classes, L a multiple of the top frame → (logits (B, L, 256), targets (B, L))."""
        top, bottom = self.config.top, self.config.frame_sizes[-1]
        b, total = q.shape
        n = total - top
        x = dequantize(q)
        cond = None
        for tier in self.tiers:
            f = tier.frame
            cond, _ = tier(x[:, top - f:top - f + n].reshape(b, n // f, f), cond)
        prev = q.unfold(1, bottom, 1)[:, top - bottom:top - bottom + n]          # (B, L, bottom)
        h = F.relu(self.inp(self.embed(prev).flatten(2)) + cond)
        h = F.relu(self.hidden(h))
        return self.out(h), q[:, top:]

    def loss(self, q: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in nats per sample."""
        logits, targets = self(q)
        return F.cross_entropy(logits.reshape(-1, CLASSES).float(), targets.reshape(-1))

    @torch.no_grad()
    def generate(self, prime: torch.Tensor, n: int, uniforms: torch.Tensor | None, temperature: float = 1.0,
                 callback=None) -> torch.Tensor:
        """Continue `prime` (B, top) classes by n samples for B streams at once → (B, n) classes, on the
        model's device (CPU or CUDA: the same code).

        `uniforms` (n, B) in [0, 1) pick each sample from the softmax (inverse CDF: the first class whose
        cumulative probability exceeds the uniform); with temperature 0 (or uniforms None) the likeliest
        class is taken.

        Per sample the loop runs the MLP's two matmuls and eight small steps on preallocated buffers: the
        embeddings × first layer are one lookup table summed by `embedding_bag`, the first layer's bias
        rides in the frame tier's conditioning (added once per frame), 1/temperature is folded into the
        output layer, and the drawn class is written straight into the (time-major) sample buffer.
        """
        cfg = self.config
        dev = self.out.weight.device
        sizes, top, bottom = cfg.frame_sizes, cfg.top, cfg.frame_sizes[-1]
        b = prime.shape[0]
        q = torch.empty(top + n, b, dtype=torch.long, device=dev)        # time-major: q[pos] is one row
        q[:top] = prime.to(dev).t()
        # embedding ∘ first layer as one table per input position: (bottom·256, mlp_dim)
        w = self.inp.weight.reshape(cfg.mlp_dim, bottom, cfg.embed)
        tables = torch.einsum("ce,dpe->pcd", self.embed.weight, w).reshape(bottom * CLASSES, cfg.mlp_dim)
        offsets = torch.arange(bottom, device=dev) * CLASSES
        sample = uniforms is not None and temperature > 0
        scale = 1.0 / temperature if sample else 1.0
        w_hidden, b_hidden = self.hidden.weight.t().contiguous(), self.hidden.bias
        w_out, b_out = (self.out.weight * scale).t().contiguous(), self.out.bias * scale
        if sample:
            uniforms = uniforms.to(dev, torch.float32)[:, :, None].contiguous()
        hidden: list[torch.Tensor | None] = [None] * len(sizes)
        conds: list[torch.Tensor | None] = [None] * len(sizes)
        tiers = [(k, tier, tier.frame) for k, tier in enumerate(self.tiers)]
        last = len(tiers) - 1
        idx = torch.empty(b, bottom, dtype=torch.long, device=dev)  # table rows of the MLP's past samples, a bag per stream
        bags = torch.arange(0, b * bottom, bottom, device=dev)
        flat_idx = idx.view(-1)
        h1 = torch.empty(b, cfg.mlp_dim, device=dev)
        h2 = torch.empty(b, cfg.mlp_dim, device=dev)
        logits = torch.empty(b, CLASSES, device=dev)
        cdf = torch.empty(b, CLASSES, device=dev)
        for t in range(n):
            pos = top + t
            for k, tier, f in tiers:
                if t % f:
                    continue
                inp = tier.inp(dequantize(q[pos - f:pos].t()))
                if k:
                    upper = tiers[k - 1][2]
                    inp = inp + conds[k - 1][:, (t % upper) // f]
                hidden[k] = torch.gru_cell(inp, hidden[k] if hidden[k] is not None else torch.zeros_like(inp),
                                           tier.gru.weight_ih_l0, tier.gru.weight_hh_l0,
                                           tier.gru.bias_ih_l0, tier.gru.bias_hh_l0)
                cond = tier.up(hidden[k]).reshape(b, tier.ratio, tier.out_dim)
                conds[k] = cond + self.inp.bias if k == last else cond
            torch.add(q[pos - bottom:pos].t(), offsets, out=idx)
            torch.add(F.embedding_bag(flat_idx, tables, bags, mode="sum"), conds[-1][:, t % bottom], out=h1).relu_()
            torch.addmm(b_hidden, h1, w_hidden, out=h2).relu_()
            torch.addmm(b_out, h2, w_out, out=logits)
            row = q[pos]
            if sample:
                torch.softmax(logits, 1, out=cdf)
                torch.cumsum(cdf, 1, out=logits)
                torch.searchsorted(logits, uniforms[t], right=True, out=row[:, None]).clamp_(max=CLASSES - 1)
            else:
                torch.argmax(logits, 1, out=row)
            if callback is not None and (t + 1) % 4096 == 0:
                callback(t + 1)
        return q[top:].t()


def generate_on_cores(model: SampleRNN, prime: torch.Tensor, n: int, uniforms: torch.Tensor | None,
                      temperature: float = 1.0, cores: int = 1) -> torch.Tensor:
    """`model.generate` with the streams split into `cores` groups, each stepped by its own thread with one
    torch thread → (B, n) classes, the same as one group gives (a stream reads only its own prime and uniforms).

    Per sample the work is a few small matmuls, too small to share between cores: their threads would
    wait on each other every few microseconds, and on a busy machine a parallel region that waits for a
    descheduled thread ran 10-40× slower. Whole streams per core never wait. On CUDA it is one group.

        >>> model = SampleRNN(SampleRNNConfig(frame_sizes=(8,), dim=16, mlp_dim=16, embed=4)).eval()
        >>> prime, uniforms = torch.full((3, 8), 128), torch.rand(40, 3)
        >>> torch.equal(generate_on_cores(model, prime, 40, uniforms, cores=2), model.generate(prime, 40, uniforms))
        True
    """
    b = prime.shape[0]
    groups = max(1, min(int(cores), b))
    if model.out.weight.device.type != "cpu" or groups == 1:
        with cpu_threads(1):
            return model.generate(prime, n, uniforms, temperature)
    bounds = [round(i * b / groups) for i in range(groups + 1)]
    parts = [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]

    def run(part: slice) -> torch.Tensor:
        torch.set_num_threads(1)            # this thread's own count (torch reads it per thread)
        return model.generate(prime[part], n, None if uniforms is None else uniforms[:, part], temperature)

    with cpu_threads(1), ThreadPoolExecutor(groups) as pool:
        return torch.cat(list(pool.map(run, parts)), 0)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2.0)
