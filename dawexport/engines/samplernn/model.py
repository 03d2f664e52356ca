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
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import List, Optional

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
    def generate(self, prime: torch.Tensor, n: int, uniforms: torch.Tensor | None,
                 temperature: float = 1.0) -> torch.Tensor:
        """Continue `prime` (B, P ≥ top) classes by n samples for B streams at once → (B, n) classes, on the
        model's device (CPU or CUDA: the same code). A prime longer than the top frame warms the frame tiers
        up: they step through it (nothing is drawn there) before the first new sample.

        `uniforms` (n, B) in [0, 1) pick each sample from the softmax (inverse CDF: the first class whose
        cumulative probability exceeds the uniform); with temperature 0 (or uniforms None) the likeliest
        class is taken.

        The loop over samples is `_sample_loop`, run as one TorchScript call: it holds no Python lock, so
        `generate_on_cores`'s threads never wait on each other (as Python, their 9 torch calls per sample
        each took the lock twice, and two threads got 53-56 % of the matmul bound where one got 72-81 %).
        Per sample it runs nine ops on preallocated buffers: one `embedding_bag` sums the MLP's
        first layer (embeddings × weights as one lookup table, a row per past sample) and the frame tier's
        conditioning (written as extra rows of that table once per frame, the first layer's bias folded
        in); the two matmuls (1/temperature folded into the output layer); softmax, cumulative sum and
        search (over the first 255 classes: no clamp) write the drawn class straight into the (time-major)
        sample buffer. Every frame the tiers read the classes directly (the [-2, 2] scaling folded into
        their input layers) and step their GRUs (`gru_step`).
        """
        cfg = self.config
        dev = self.out.weight.device
        sizes, top, bottom = cfg.frame_sizes, cfg.top, cfg.frame_sizes[-1]
        b, warm = prime.shape[0], prime.shape[1] - top
        q = torch.zeros(top + warm + n, b, dtype=torch.long, device=dev)  # time-major: q[pos] is one row
        q[:top + warm] = prime.to(dev).t()
        # the MLP's first layer as one table: a block of 256 rows per past sample (embedding ∘ weights),
        # then one row per stream and sample of the frame: the lowest tier's conditioning + the layer's bias
        w = self.inp.weight.reshape(cfg.mlp_dim, bottom, cfg.embed)
        table = torch.empty(bottom * CLASSES + b * bottom, cfg.mlp_dim, device=dev)
        table[:bottom * CLASSES] = torch.einsum("ce,dpe->pcd", self.embed.weight, w).reshape(-1, cfg.mlp_dim)
        cond_rows = table[bottom * CLASSES:].view(b, bottom * cfg.mlp_dim)
        # row numbers of one sample's bag, for each position in the frame: the past samples' blocks
        # (their classes are added in), then the stream's conditioning row (q[pos] is 0 until drawn)
        base = torch.zeros(bottom, b, bottom + 1, dtype=torch.long, device=dev)
        base[:, :, :bottom] = torch.arange(bottom, device=dev) * CLASSES
        base[:, :, bottom] = (bottom * CLASSES + torch.arange(b, device=dev) * bottom)[None] + \
            torch.arange(bottom, device=dev)[:, None]
        idx = torch.empty(b, bottom + 1, dtype=torch.long, device=dev)
        flat_idx, bags = idx.view(-1), torch.arange(0, b * (bottom + 1), bottom + 1, device=dev)
        sample = uniforms is not None and temperature > 0
        scale = 1.0 / temperature if sample else 1.0
        w_hidden, b_hidden = self.hidden.weight.t().contiguous(), self.hidden.bias
        w_out, b_out = (self.out.weight * scale).t().contiguous(), self.out.bias * scale
        if sample:
            uniforms = uniforms.to(dev, torch.float32)[:, :, None].contiguous()
        tiers = self._generation_tiers()
        last = len(tiers) - 1
        # per tier, every view the loop reads made here once (a view made in the loop costs ~0.7 µs):
        # its layers and buffers, its GRU's weights and step buffers, and its output split per block below
        layers, grus, steps, blocks = [], [], [], []
        for k, (f, w_inp, b_inp, gru, w_up, b_up) in enumerate(tiers):
            out = cond_rows if k == last else torch.empty(b, w_up.shape[1], device=dev)
            reads = q.as_strided((len(q) - f + 1, b, f), (b, 1, b))     # reads[p]: the f samples from p on
            layers.append([w_inp, b_inp, w_up, b_up, out, reads, torch.empty(b, f, device=dev)])
            grus.append(list(gru))
            steps.append(GRUStep(b, cfg.dim, device=dev).buffers)
            blocks.append(list(out.view(b, f // (sizes[k + 1] if k < last else 1), -1).unbind(1)))
        buffers = [torch.empty(b, cfg.mlp_dim, device=dev), torch.empty(b, CLASSES, device=dev),
                   torch.empty(b, CLASSES, device=dev), torch.empty(b, CLASSES - 1, device=dev)]
        # the plain TorchScript interpreter (this thread only): no profiling runs, no specialised graphs
        with torch.jit.optimized_execution(False):
            _sample_loop_compiled()(q, warm, n, list(sizes), layers, grus, steps, blocks, table,
                                    list(base.unbind(0)), idx, flat_idx, bags, [w_hidden, b_hidden, w_out, b_out],
                                    buffers, uniforms if sample else None)
        return q[top + warm:].t()

    def _generation_tiers(self) -> list[tuple]:
        """Per frame tier, its weights for stepping on raw classes: (frame, input weights (frame, dim) and
        bias with the [-2, 2] scaling folded in, GRU weights, upsampling weights (dim, ratio·out) and bias
        with the next layer's input bias folded in: the tier below's, or the MLP's first layer's)."""
        out = []
        for k, tier in enumerate(self.tiers):
            w_inp = (tier.inp.weight / (CLASSES / 4.0)).t().contiguous()        # q / 64 - 2 = dequantize(q)
            b_inp = tier.inp.bias - 2.0 * tier.inp.weight.sum(1)
            below = self.tiers[k + 1] if k + 1 < len(self.tiers) else None
            next_bias = self.inp.bias if below is None else below.inp.bias - 2.0 * below.inp.weight.sum(1)
            b_up = tier.up.bias + next_bias.repeat(tier.ratio)
            gru = GRUStep.weights(tier.gru)
            out.append((tier.frame, w_inp, b_inp, gru, tier.up.weight.t().contiguous(), b_up))
        return out


def _sample_loop(q: torch.Tensor, warm: int, n: int, sizes: List[int], layers: List[List[torch.Tensor]],
                 grus: List[List[torch.Tensor]], steps: List[List[torch.Tensor]], blocks: List[List[torch.Tensor]],
                 table: torch.Tensor, bases: List[torch.Tensor], idx: torch.Tensor, flat_idx: torch.Tensor,
                 bags: torch.Tensor, mlp: List[torch.Tensor], buffers: List[torch.Tensor],
                 uniforms: Optional[torch.Tensor]) -> None:
    """`SampleRNN.generate`'s per-sample loop: draws q[top + warm:] (time-major) in place. Written for
    TorchScript (`_sample_loop_compiled`), which runs it in one call without Python's global lock.

    Per tier k: layers[k] = (input weights, bias, upsampling weights, bias, output, reads[p] = the frame of
    samples from p on as a (B, frame) view of q, a float buffer for it); grus[k] and steps[k] its GRU's
    weights and step buffers (`gru_step`); blocks[k][j] its output for the j-th block of the tier below."""
    top, bottom = sizes[0], sizes[-1]
    w_hidden, b_hidden, w_out, b_out = mlp[0], mlp[1], mlp[2], mlp[3]
    h2, logits, probs, cdf = buffers[0], buffers[1], buffers[2], buffers[3]
    heads = probs[:, :-1]               # the last class takes every uniform beyond the others
    # each sample's window of past samples (B, bottom + 1) and its row as a column
    b = q.shape[1]
    windows = q.as_strided((q.shape[0] - bottom, b, bottom + 1), (b, 1, b))
    columns = q.view(q.shape[0], b, 1)
    for t in range(warm + n):
        pos = top + t
        for k in range(len(sizes)):
            f = sizes[k]
            if t % f != 0:
                continue
            layer = layers[k]
            frame = layer[6]
            frame.copy_(layer[5][pos - f])
            if k > 0:
                x = torch.addmm(blocks[k - 1][(t % sizes[k - 1]) // f], frame, layer[0])
            else:
                x = torch.addmm(layer[1], frame, layer[0])
            h = gru_step(x, grus[k], steps[k])
            torch.addmm(layer[3], h, layer[2], out=layer[4])
        if t < warm:
            continue
        torch.add(windows[pos - bottom], bases[t % bottom], out=idx)
        h1 = torch.embedding_bag(table, flat_idx, bags, False, 0)[0].relu_()
        torch.addmm(b_hidden, h1, w_hidden, out=h2).relu_()
        torch.addmm(b_out, h2, w_out, out=logits)
        if uniforms is not None:
            torch.softmax(logits, 1, out=probs)
            torch.cumsum(heads, 1, out=cdf)
            torch.searchsorted(cdf, uniforms[t - warm], right=True, out=columns[pos])
        else:
            torch.argmax(logits, 1, out=q[pos])


_COMPILED: list = []
_COMPILING = threading.Lock()


def _sample_loop_compiled():
    """`_sample_loop` compiled by TorchScript when this torch has it (the same ops in the same order: the
    same draws), else the Python function; compiled once, under a lock (`generate_on_cores`' threads may
    ask at the same moment)."""
    with _COMPILING:
        if not _COMPILED:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)    # torch 2.x deprecates TorchScript
                    _COMPILED.append(torch.jit.script(_sample_loop))
            except Exception:    # noqa: BLE001 (a torch without TorchScript: the same loop in Python)
                _COMPILED.append(_sample_loop)
        return _COMPILED[0]


def gru_step(x: torch.Tensor, weights: List[torch.Tensor], buffers: List[torch.Tensor]) -> torch.Tensor:
    """One GRU step from x on `GRUStep.buffers` (scriptable): the state (buffers[0]) updated in place and
    returned. tanh is -1 + 2·sigmoid in one op (2·s is exact: the same bits as 2·s then - 1), with -1 a
    tensor (a Python number is wrapped into a new tensor on every call)."""
    w_ih, w_hh, b_ih, b_hh = weights[0], weights[1], weights[2], weights[3]
    h, gi, gh, rz, n, minus_one = buffers[0], buffers[1], buffers[2], buffers[3], buffers[4], buffers[5]
    gi_rz, gh_rz, gi_n, gh_n, r, z = buffers[6], buffers[7], buffers[8], buffers[9], buffers[10], buffers[11]
    torch.addmm(b_ih, x, w_ih, out=gi)
    torch.addmm(b_hh, h, w_hh, out=gh)
    torch.add(gi_rz, gh_rz, out=rz).sigmoid_()                                  # reset, update gates
    torch.addcmul(gi_n, r, gh_n, out=n).sigmoid_()
    torch.add(minus_one, n, alpha=2.0, out=n)                                   # tanh
    return h.sub_(n).mul_(z).add_(n)                                            # n + z·(h - n)


class GRUStep:
    """One step of a GRU layer for a batch, on preallocated buffers, with tanh(a) computed as 2·sigmoid(2a) - 1
    (the 2 folded into the weights): torch's CPU tanh ran 6× slower than its sigmoid, and `torch.gru_cell`
    spent about 30 % of its time outside its two matmuls at batch 256.

        >>> gru = nn.GRU(6, 5, batch_first=True)
        >>> x, h = torch.randn(3, 6), torch.randn(3, 5)
        >>> out = GRUStep(3, 5)(x, *GRUStep.weights(gru), h=h.clone())
        >>> torch.allclose(out, torch.gru_cell(x, h, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0,
        ...                                    gru.bias_hh_l0), atol=1e-6)
        True
    """

    def __init__(self, batch: int, dim: int, device=None):
        d = dim
        h = torch.zeros(batch, d, device=device)
        gi, gh = torch.empty(batch, 3 * d, device=device), torch.empty(batch, 3 * d, device=device)
        rz, n = torch.empty(batch, 2 * d, device=device), torch.empty(batch, d, device=device)
        # state, gate buffers, -1; then their views, made once: (input, hidden) parts of reset+update and
        # candidate, reset, update
        self.buffers = [h, gi, gh, rz, n, torch.full((1,), -1.0, device=device),
                        gi[:, :2 * d], gh[:, :2 * d], gi[:, 2 * d:], gh[:, 2 * d:], rz[:, :d], rz[:, d:]]

    @property
    def h(self) -> torch.Tensor:
        return self.buffers[0]

    @staticmethod
    def weights(gru: nn.GRU) -> tuple[torch.Tensor, ...]:
        """(input weights (in, 3·dim), hidden weights (dim, 3·dim), their biases), the candidate's rows × 2."""
        twice = torch.ones(3 * gru.hidden_size, device=gru.weight_ih_l0.device)
        twice[2 * gru.hidden_size:] = 2.0
        return ((gru.weight_ih_l0 * twice[:, None]).t().contiguous(),
                (gru.weight_hh_l0 * twice[:, None]).t().contiguous(), gru.bias_ih_l0 * twice, gru.bias_hh_l0 * twice)

    @torch.no_grad()
    def __call__(self, x, w_ih, w_hh, b_ih, b_hh, h=None) -> torch.Tensor:
        """Step from x (batch, in): the new hidden state (this object's buffer, updated in place)."""
        if h is not None:
            self.buffers[0] = h
        return gru_step(x, [w_ih, w_hh, b_ih, b_hh], self.buffers)


def generate_on_cores(model: SampleRNN, prime: torch.Tensor, n: int, uniforms: torch.Tensor | None,
                      temperature: float = 1.0, cores: int = 1) -> torch.Tensor:
    """`model.generate` with the streams split into `cores` groups, each stepped by its own thread with one
    torch thread → (B, n) classes, the same as one group gives (a stream reads only its own prime and uniforms).

    Per sample the work is a few small matmuls, too small to share between cores: their threads would
    wait on each other every few microseconds, and on a busy machine a parallel region that waits for a
    descheduled thread ran 10-40× slower. Whole streams per core never wait: each group's loop runs in
    TorchScript, outside Python's lock (see `SampleRNN.generate`). On CUDA it is one group.

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
