"""Batched rendering: voices stacked in groups that share a conceptor schedule (segments blending library
conceptors linearly in time), with per-voice leak, spectral radius and gain, in the dense, low-rank or
diagonal form; the morph runs a grain-morph wavetable is cut from; and the BLAS thread count they run with.
Voices run in fixed-size blocks so that a voice's bytes never depend on the rest of its batch (see `render`).

    >>> [segment] = hold(0, 100)
    >>> segment.weights_at(0.5).tolist()
    [1.0]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .algebra import Conceptor, morph, phi_values
from .blas import blas_threads
from .loading import LoadedReservoir
from .reservoir import RENDER_DTYPE, Form


@dataclass(frozen=True)
class Segment:
    """`steps` time steps during which a group's conceptor is sum_i w_i C_{indices[i]}; each weight moves
    linearly from `start[i]` to `end[i]` across the segment (updated once per control block)."""
    steps: int
    indices: tuple[int, ...]
    start: tuple[float, ...]
    end: tuple[float, ...]

    def weights_at(self, frac: float) -> np.ndarray:
        s, e = np.asarray(self.start, dtype=np.float64), np.asarray(self.end, dtype=np.float64)
        return s + (e - s) * float(np.clip(frac, 0.0, 1.0))


def hold(index: int, steps: int, weight: float = 1.0) -> list[Segment]:
    """A schedule that holds one library conceptor."""
    return [Segment(steps, (index,), (weight,), (weight,))]


class ConceptorLibrary:
    """The conceptors a render can use, prepared for one form.

    Full forms take `Conceptor`s (dense uses the N x N matrices; lowrank truncates eigenvalues below
    `rank_tol` and precomputes W U_i sqrt(c_i)); the diagonal form takes (N,) conception-weight vectors.
    """

    def __init__(self, model: LoadedReservoir, conceptors: Sequence, form: Form, *, rank_tol: float = 1e-3):
        if form not in ("dense", "lowrank", "diagonal"):
            raise ValueError(f"unknown conceptor form {form!r}")
        self.model = model
        self.form = form
        self.rank_tol = rank_tol
        if form == "diagonal":
            vecs = []
            for c in conceptors:
                if isinstance(c, Conceptor):
                    if c.rank != model.size or not np.allclose(np.abs(c.basis), np.eye(model.size)):
                        raise ValueError("the diagonal form needs diagonal conceptors (conception weights)")
                    c = c.values
                vecs.append(np.asarray(c, dtype=np.float64))
            self.diag = np.stack(vecs)
        elif form == "dense":
            self.dense = np.stack([c.dense() if isinstance(c, Conceptor) else np.asarray(c, dtype=np.float64)
                                   for c in conceptors]).astype(RENDER_DTYPE)
        else:
            self.factors = [(c if isinstance(c, Conceptor) else Conceptor.from_matrix(c)).truncated(rank_tol)
                            for c in conceptors]
            self.scaled = [f.basis * np.sqrt(f.values) for f in self.factors]
            self.w_scaled = [np.vstack([model.weights @ v, model.readout @ v]) for v in self.scaled]

    def __len__(self) -> int:
        if self.form == "diagonal":
            return len(self.diag)
        return len(self.dense) if self.form == "dense" else len(self.factors)

    def ranks(self) -> list[int]:
        if self.form == "lowrank":
            return [f.rank for f in self.factors]
        return [self.model.size] * len(self)


VOICE_BLOCK = 8      # voices per GEMM call: every call has this many columns, used or not
FLAT_CHUNK = 8       # rows per call of the flat forms' shared [W; w_out] GEMM: one voice block (OpenBLAS's
                     # AVX2 sgemm rounds a row by its place in a call of 16+ rows; up to 8 alike)
RANK_STEP = 16       # low-rank bases are padded to a multiple of this (per voice, from its own schedule)


class _Timeline:
    """When a group's conceptor weights are evaluated: once per control block of its own, cut every `block`
    steps and at its own segment ends (never at another group's), at the block's middle. So a voice hears
    the same weights whatever else is rendered with it and however long the render runs."""

    def __init__(self, sched: Sequence[Segment], washout: int, block: int):
        self.sched, self.washout, self.block = sched, washout, max(1, int(block))
        self.ends = washout + np.cumsum([seg.steps for seg in sched])

    def begin(self, s: int) -> int:
        return 0 if s == 0 else int(self.ends[s - 1])

    def where(self, t: int):
        """(segment index, its library indices, its weights) for the control block holding step t."""
        ends, b = self.ends, self.block
        lo, hi = (t // b) * b, (t // b + 1) * b
        i = int(np.searchsorted(ends, t, side="right"))
        if i > 0:
            lo = max(lo, int(ends[i - 1]))
        if i < len(ends):
            hi = min(hi, int(ends[i]))
        mid = 0.5 * (lo + hi)
        s = min(int(np.searchsorted(ends, mid, side="right")), len(self.sched) - 1)
        begin = self.washout if s == 0 else ends[s - 1]
        frac = (mid - begin) / max(self.sched[s].steps, 1)
        return s, self.sched[s].indices, self.sched[s].weights_at(frac)

    def reached(self, steps: int) -> range:
        """The segments a voice that needs `steps` output steps (after the washout) passes through."""
        last = self.washout + max(int(steps), 1) - 1
        return range(min(int(np.searchsorted(self.ends, last, side="right")), len(self.sched) - 1) + 1)


def reached_segments(sched: Sequence[Segment], washout: int, steps: int) -> range:
    """The segments of a schedule a voice passes through in its first `steps` output steps."""
    return _Timeline(sched, washout, 1).reached(steps)


def render(library: ConceptorLibrary, schedules: Sequence[Sequence[Segment]], groups, steps: int, *,
           leak, radius=None, start_states: np.ndarray | None = None, washout: int = 0, block: int = 32,
           threads: int | None = 1, progress=None, lengths=None, voice_block: int = VOICE_BLOCK) -> np.ndarray:
    """Run many voices in one batch; returns (V, steps) float32 readout values (no gain applied).

    groups (V,) maps each voice to its schedule: voices of a group share the conceptor sequence. leak and
    radius (V,) are per voice (elementwise). `washout` extra steps are run first with the first segment's
    start weights and not returned. start_states (V, N) default: the first segment's weighted mix of the
    grains' attractor states (library indices below model.count are grains).

    A voice's first `lengths[v]` output steps (default: all) are the same bytes whatever else is in the
    batch: voices run in blocks of `voice_block` columns of one group, every BLAS call has a fixed shape
    (one block, or `FLAT_CHUNK` rows of the flat forms' shared GEMM), a low-rank voice's basis is padded
    to a size set by its own schedule, and a group's weights change only at its own control blocks.

        >>> from .loading import load_patterns
        >>> from .reservoir import make_reservoir
        >>> t = np.arange(30)
        >>> model = load_patterns(make_reservoir(40, seed=0), [np.sin(t / 3), np.sin(t / 5)], aperture=20.0)
        >>> lib = ConceptorLibrary(model, [model.conceptor(0), model.conceptor(1)], "lowrank")
        >>> sched = [Segment(50, (0, 1), (1.0, 0.0), (0.0, 1.0))] + hold(1, 100)
        >>> both = render(lib, [sched, hold(0, 200)], [0, 1], 200, leak=[0.5, 0.4])
        >>> alone = render(lib, [sched], [0], 120, leak=[0.5])
        >>> both[0, :120].tobytes() == alone[0].tobytes()
        True
    """
    model = library.model
    n = model.size
    groups = np.asarray(groups, dtype=np.int64).ravel()
    v_count, g_count = len(groups), len(schedules)
    if v_count == 0:
        return np.zeros((0, steps), dtype=RENDER_DTYPE)
    if groups.min() < 0 or groups.max() >= g_count:
        raise ValueError("a voice names a schedule that does not exist")
    vb = max(1, int(voice_block))
    lengths = np.full(v_count, steps, dtype=np.int64) if lengths is None else \
        np.asarray(lengths, dtype=np.int64).ravel()
    timelines = [_Timeline(sched, washout, block) for sched in schedules]
    bases = _Bases(library) if library.form == "lowrank" else None

    # voice blocks: voices of one group (and, low-rank, one padded rank), `vb` to a block
    pad = np.zeros(v_count, dtype=np.int64)
    if bases is not None:
        with blas_threads(threads):     # the bases' eigendecompositions too
            for v in range(v_count):
                g = groups[v]
                rank = max(bases.rank(schedules[g][s].indices) for s in timelines[g].reached(lengths[v]))
                pad[v] = min(n, -(-max(rank, 1) // RANK_STEP) * RANK_STEP)
    blocks: list[tuple[int, int, list[int]]] = []           # (group, padded rank, voices)
    # ordered by rank, then by how many blocks the group has there (groups with as many blocks share one
    # stacked GEMM call per step in the low-rank kernel), then by group
    members = {}
    for v in range(v_count):
        members.setdefault((int(groups[v]), int(pad[v])), []).append(v)
    for key in sorted(members, key=lambda k: (k[1], -(-len(members[k]) // vb), k[0])):
        mine = members[key]
        blocks += [(key[0], key[1], mine[k:k + vb]) for k in range(0, len(mine), vb)]
    cols = len(blocks) * vb
    slot = np.empty(v_count, dtype=np.int64)
    for k, (_, _, mine) in enumerate(blocks):
        slot[mine] = k * vb + np.arange(len(mine))

    def spread(values, fill):
        arr = np.full(cols, fill, dtype=np.float64)
        arr[slot] = np.broadcast_to(np.asarray(values, dtype=np.float64), (v_count,))
        return arr

    leak_s = spread(leak, 1.0)
    rho_s = None if radius is None or np.allclose(radius, 1.0) else spread(radius, 1.0)
    if start_states is None:
        start_states = np.zeros((v_count, n))
        for g, sched in enumerate(schedules):
            seg = sched[0]
            w = np.array([wi if i < model.count else 0.0 for wi, i in zip(seg.start, seg.indices)])
            if np.sum(np.abs(w)) > 0:
                mix = sum(wi * model.start_states[i] for wi, i in zip(w, seg.indices) if wi != 0.0)
                start_states[groups == g] = mix / np.sum(w) if abs(np.sum(w)) > 1e-9 else mix
    x0 = np.zeros((cols, n))
    x0[slot] = start_states

    # the render runs in pieces cut at every group's control-block cuts
    total = washout + steps
    cuts = set(range(0, total, max(1, int(block))))
    for tl in timelines:
        cuts.update(int(e) for e in tl.ends if 0 < e < total)
    cuts = sorted(cuts) + [total]

    layout = (blocks, vb)
    if library.form == "lowrank":
        kernel = _LowRankKernel(library, bases, layout, x0, leak_s, rho_s)
    else:
        kernel = (_DenseKernel if library.form == "dense" else _DiagonalKernel)(library, layout, x0, leak_s, rho_s)
    out = np.empty((total, kernel.cols), dtype=RENDER_DTYPE)
    bar = progress.bar(total=total, desc="render", unit="step") if progress is not None else None
    with blas_threads(threads):
        for k in range(len(cuts) - 1):
            t0, t1 = cuts[k], cuts[k + 1]
            kernel.run([tl.where(t0) for tl in timelines], out[t0:t1])
            if bar is not None:
                bar.update(t1 - t0)
    if bar is not None:
        bar.close()
    return np.ascontiguousarray(out[washout:, slot].T)


def morph_frames(model: LoadedReservoir, a: int, b: int, frames: int, steps: int, *, washout: int = 0,
                 mus: Sequence[float] | None = None, hardening: float = 1.0, form: Form = "lowrank",
                 threads: int | None = 1) -> np.ndarray:
    """Free runs of the morphs (1 - mu) C_a + mu C_b for `frames` values of mu in [0, 1] (or `mus`, which may
    extrapolate), all in one batch: (frames, steps). The raw material of a morph wavetable.

    `hardening` > 1 applies phi(C_mu, hardening ** h) with h = 1 - |2 mu - 1| (full at the middle, none at the
    ends): a plain morph between dissimilar grains shrinks every direction and the middle frames fall silent.
    """
    mus = np.linspace(0.0, 1.0, frames) if mus is None else np.asarray(mus, dtype=np.float64)
    if model.form == "diagonal":
        ca, cb = model.diag_values(a), model.diag_values(b)
        cons = [phi_values((1 - mu) * ca + mu * cb, hardening ** max(0.0, 1 - abs(2 * mu - 1))) for mu in mus]
        lib = ConceptorLibrary(model, cons, "diagonal")
    else:
        ca, cb = model.conceptor(a), model.conceptor(b)
        cons = []
        for mu in mus:
            c = Conceptor.from_matrix(morph([ca, cb], [1 - mu, mu]))
            cons.append(Conceptor(c.basis, phi_values(c.values, hardening ** max(0.0, 1 - abs(2 * mu - 1)))))
        lib = ConceptorLibrary(model, cons, form)
    schedules = [hold(i, steps) for i in range(len(mus))]
    starts = np.stack([(1 - mu) * model.start_states[a] + mu * model.start_states[b] for mu in mus])
    return render(lib, schedules, np.arange(len(mus)), steps, leak=np.full(len(mus), model.reservoir.leak),
                  start_states=starts, washout=washout, threads=threads, voice_block=1)


class _FlatKernel:
    """Dense and diagonal forms: states as rows, x (C, FLAT_CHUNK, N), in chunks of whole voice blocks; per
    step one GEMM x [W; w_out]^T per chunk, shared by all groups. (Voices as rows: the BLAS vectorises
    along the N + 1 outputs, not along a block's few voices.)"""

    def __init__(self, library, layout, x0, leak, rho):
        model = library.model
        dt = RENDER_DTYPE
        blocks, vb = layout
        self.lib, self.n, self.vb = library, model.size, vb
        self.blocks = blocks
        width = max(FLAT_CHUNK // vb, 1) * vb
        chunks = max(1, -(-len(blocks) * vb // width))
        self.cols = chunks * width
        self.width = width

        def shaped(a, fill):
            full = np.full(self.cols, fill, dtype=np.float64)
            full[:len(a)] = a
            return full.reshape(chunks, width, 1).astype(dt)

        self.wt = np.ascontiguousarray(np.vstack([model.weights, model.readout[None, :]]).T, dtype=dt)  # (N, N+1)
        self.rb = dt(model.readout_bias)
        self.bias = model.reservoir.bias.astype(dt)[None, None, :]
        self.leak = shaped(leak, 1.0)
        self.keep = shaped(1.0 - leak, 0.0)
        self.rho = None if rho is None else shaped(rho, 1.0)
        x = np.zeros((self.cols, self.n))
        x[:len(x0)] = x0
        self.x = np.ascontiguousarray(x.reshape(chunks, width, self.n), dtype=dt)
        self.p = np.empty((chunks, width, self.n + 1), dtype=dt)
        self.z = np.empty_like(self.x)
        self.keys = {}

    def _changed(self, g, s, w) -> bool:
        key = (s, tuple(np.round(w, 12)))
        if self.keys.get(g) == key:
            return False
        self.keys[g] = key
        return True

    def _view(self, a, k):
        """Block k's (vb, columns) rows of a chunked array."""
        c, o = divmod(k * self.vb, self.width)
        return a[c, o:o + self.vb]

    def _nonlinear(self):
        """p <- x [W; w_out]^T, then z <- (1 - a) x + a tanh(rho W x + b); returns the readout values."""
        n, p, z = self.n, self.p, self.z
        np.matmul(self.x, self.wt, out=p)
        pre = p[:, :, :n]
        if self.rho is not None:
            np.multiply(pre, self.rho, out=pre)
        np.add(pre, self.bias, out=pre)
        np.tanh(pre, out=pre)
        np.multiply(pre, self.leak, out=pre)
        np.multiply(self.x, self.keep, out=z)
        np.add(z, pre, out=z)
        return p[:, :, n].reshape(-1)


class _DenseKernel(_FlatKernel):
    """x = C_g z per voice block (as rows: z C_g^T); C_g rebuilt when its weights change (once per control
    block)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.ct = {}
        self.groups = sorted({b[0] for b in self.blocks})
        at = {}
        for k, (g, _, _) in enumerate(self.blocks):
            at.setdefault(g, []).append(k)
        self.runs = [(g, slice(ks[0], ks[-1] + 1)) for g, ks in at.items()]

    def run(self, where, out):
        for g in self.groups:
            s, idx, w = where[g]
            if self._changed(g, s, w):
                # sum_i w_i C_i as one GEMV over the stacked float32 library
                stack = self.lib.dense[list(idx)].reshape(len(idx), -1)
                c = np.matmul(np.asarray(w, dtype=RENDER_DTYPE), stack).reshape(self.n, self.n)
                self.ct[g] = np.ascontiguousarray(c.T)
        # a group's blocks are consecutive rows: one broadcast GEMM per group, C_g read once per step
        zb, xb = self.z.reshape(-1, self.vb, self.n), self.x.reshape(-1, self.vb, self.n)
        runs = [(zb[sl], self.ct[g], xb[sl]) for g, sl in self.runs]
        for t in range(len(out)):
            out[t] = self._nonlinear()
            for z, ct, x in runs:
                np.matmul(z, ct, out=x)
        out += self.rb


class _DiagonalKernel(_FlatKernel):
    """x = c * z elementwise with per-voice conception weights c."""

    def __init__(self, *args):
        super().__init__(*args)
        self.c = np.zeros_like(self.x)

    def run(self, where, out):
        for k, (g, _, _) in enumerate(self.blocks):
            s, idx, w = where[g]
            if self._changed((g, k), s, w):
                vec = np.asarray(w) @ self.lib.diag[list(idx)]
                self._view(self.c, k)[:] = vec[None, :]
        for t in range(len(out)):
            out[t] = self._nonlinear()
            np.multiply(self.z, self.c, out=self.x)
        out += self.rb


class _Bases:
    """Per segment (its library indices): an orthonormal basis Q (N x r) of the union of its conceptors'
    ranges, [W; w_out] Q, and each conceptor in Q coordinates; computed once per render."""

    def __init__(self, library: ConceptorLibrary):
        self.lib = library
        self.done: dict = {}

    def rank(self, idx) -> int:
        return self.get(idx)[0].shape[1]

    def get(self, idx):
        idx = tuple(idx)
        if idx not in self.done:
            lib = self.lib
            scaled = np.concatenate([lib.scaled[i] for i in idx], axis=1)
            w_scaled = np.concatenate([lib.w_scaled[i] for i in idx], axis=1)
            lam, e = np.linalg.eigh(scaled.T @ scaled)
            keep = lam > 1e-9 * max(float(lam[-1]), 1e-300)
            inv = e[:, keep] / np.sqrt(lam[keep])
            q = scaled @ inv
            terms = []
            for i in idx:
                t_i = q.T @ lib.factors[i].basis
                terms.append((t_i * lib.factors[i].values) @ t_i.T)
            self.done[idx] = (q, w_scaled @ inv, terms)
        return self.done[idx]


class _RankStack:
    """The voice blocks of one padded rank R, voices as rows: h (K, vb, R). A group's blocks are a run sharing
    one [W Q; w_out Q]^T (R, N+1), Q (N, R) and M^T (R, R), so the BLAS reads them once per step; runs of
    the same length m are one bucket, h seen as (G, m, vb, R) against the G groups' matrices (G, 1, ...):
    one matmul call per bucket and step, however many groups, each BLAS call still one block."""

    def __init__(self, ids, groups, r, n, vb, leak, keep, rho):
        dt = RENDER_DTYPE
        k = len(ids)
        self.ids, self.r = ids, r
        self.h = np.zeros((k, vb, r), dt)
        self.p = np.empty((k, vb, n + 1), dt)
        self.u = np.empty((k, vb, r), dt)
        self.v = np.empty((k, vb, r), dt)
        self.keep = keep.astype(dt)
        self.rho = None if rho is None else rho.astype(dt)
        # the state is kept as rho * h (rho per voice commutes with Q and M): rho then scales the R
        # coordinates together with the leak instead of the N pre-activations, and divides the readout
        self.gain = (leak if rho is None else leak * rho).astype(dt)
        self.unscale = None if rho is None else (1.0 / rho[..., 0]).astype(dt)
        self.runs = {}             # group -> [slice of blocks, wqt, q, mt] (views into its bucket's stacks)
        self.buckets = []          # (h, wqt, p, pre, q, u, mt) views, one matmul per stage and bucket
        spans = []                 # (group, first block, blocks), in block order
        for i, g in enumerate(groups):
            if spans and spans[-1][0] == g:
                spans[-1][2] += 1
            else:
                spans.append([g, i, 1])
        i = 0
        while i < len(spans):
            m = spans[i][2]
            j = i
            while j < len(spans) and spans[j][2] == m:
                j += 1
            count, a = j - i, spans[i][1]
            b = a + count * m
            wqt, q, mt = (np.zeros((count, 1, r, n + 1), dt), np.zeros((count, 1, n, r), dt),
                          np.zeros((count, 1, r, r), dt))
            p = self.p[a:b].reshape(count, m, vb, n + 1)
            self.buckets.append((self.h[a:b].reshape(count, m, vb, r), wqt, p, p[..., :n], q,
                                 self.u[a:b].reshape(count, m, vb, r), mt))
            for c, (g, first, _) in enumerate(spans[i:j]):
                self.runs[g] = [slice(first, first + m), wqt[c, 0], q[c, 0], mt[c, 0]]
            i = j


class _LowRankKernel:
    """State h: coordinates in a per-segment orthonormal basis Q_g (N x r) of the segment's conceptors'
    ranges (x = Q_g h), zero-padded to the block's rank R. Per step

        P = [W Q; w_out Q] h,   h <- M_g [(1 - a) h + a Q^T tanh(rho P + b)],

    M_g = sum_i w_i (Q^T U_i) diag(c_i) (Q^T U_i)^T: 2 N R + R^2 multiply-adds per voice instead of 2 N^2.
    (The leak a and rho act per voice, so they are applied to the R coordinates, not the N units: the state
    kept is rho h, and the readout is divided by rho.)
    On entering a new segment the step's recurrent term still uses the old basis and h is carried over by
    Q_new^T Q_old, so the result equals the dense form's up to the truncated eigenvalues. A segment wider
    than its block's R (reached only after every voice of the block has all its steps) is cut to R.
    """

    def __init__(self, library, bases, layout, x0, leak, rho):
        model = library.model
        blocks, vb = layout
        self.lib, self.bases, self.n, self.vb, self.blocks = library, bases, model.size, vb, blocks
        self.cols = len(blocks) * vb
        self.rb = RENDER_DTYPE(model.readout_bias)
        self.bias = model.reservoir.bias.astype(RENDER_DTYPE)[None, None, :]
        per = lambda a: a.reshape(len(blocks), vb, 1)          # noqa: E731
        self.stacks = []
        for r in sorted({b[1] for b in blocks}):
            ids = [k for k, b in enumerate(blocks) if b[1] == r]      # contiguous, a group's blocks together
            self.stacks.append(_RankStack(ids, [blocks[k][0] for k in ids], r, self.n, vb, per(leak)[ids],
                                          per(1.0 - leak)[ids], None if rho is None else per(rho)[ids]))
        self.x0 = x0.reshape(len(blocks), vb, self.n)     # (K, vb, N) float64
        self.groups = sorted({b[0] for b in blocks})
        self.seg = {}          # group -> current segment index
        self.q = {}            # group -> float64 basis of that segment
        self.terms = {}
        self.keys = {}

    def run(self, where, out):
        switching = {}
        for g in self.groups:
            s, idx, w = where[g]
            if self.seg.get(g) != s:
                q, wq, terms = self.bases.get(idx)
                switching[g] = (self.q.get(g), q, wq)
                self.q[g], self.terms[g], self.seg[g] = q, terms, s
                self.keys[g] = None
            key = tuple(np.round(w, 12))
            if self.keys[g] != key:
                self.keys[g] = key
                r = self.q[g].shape[1]
                acc = np.zeros((r, r))
                for wi, a_i in zip(w, self.terms[g]):
                    if wi != 0.0:
                        acc += wi * a_i
                for st in self.stacks:
                    if g in st.runs:
                        mt, rr = st.runs[g][3], min(r, st.r)
                        mt[:] = 0.0
                        mt[:rr, :rr] = acc[:rr, :rr].T
        n = self.n
        for t in range(len(out)):
            for st in self.stacks:
                for h, wqt, p, _, _, _, _ in st.buckets:
                    np.matmul(h, wqt, out=p)
            if t == 0 and switching:
                self._switch(switching)
            for st in self.stacks:
                c0 = st.ids[0] * self.vb
                row = out[t, c0:c0 + len(st.ids) * self.vb].reshape(len(st.ids), self.vb)
                if st.unscale is None:
                    row[:] = st.p[:, :, n]
                else:
                    np.multiply(st.p[:, :, n], st.unscale, out=row)
                pre = st.p[:, :, :n]
                np.add(pre, self.bias, out=pre)
                np.tanh(pre, out=pre)
                for _, _, _, pre_b, q, u, _ in st.buckets:
                    np.matmul(pre_b, q, out=u)
                np.multiply(st.u, st.gain, out=st.u)
                np.multiply(st.h, st.keep, out=st.v)
                np.add(st.u, st.v, out=st.u)
                for h, _, _, _, _, u, mt in st.buckets:
                    np.matmul(u, mt, out=h)
        out += self.rb

    def _switch(self, switching):
        """Install the new segments' bases, carry h over (or project the start state), after this step's P."""
        model = self.lib.model
        for st in self.stacks:
            for g, (sl, wqt, q, _) in st.runs.items():
                if g not in switching:
                    continue
                q_old, q_new, wq = switching[g]
                r = min(q_new.shape[1], st.r)
                if q_old is None:      # first segment: project the start state
                    x0 = self.x0[st.ids[sl.start]:st.ids[sl.stop - 1] + 1]
                    hk = x0 @ q_new
                    # a voice that starts here has no previous basis: its recurrent term uses x0 itself
                    st.p[sl] = np.concatenate([x0 @ model.weights.T, (x0 @ model.readout)[..., None]], axis=-1)
                    if st.rho is not None:         # the state is rho h (see the class docstring)
                        hk = hk * st.rho[sl]
                        st.p[sl] *= st.rho[sl]
                else:
                    ro = min(q_old.shape[1], st.r)
                    hk = st.h[sl, :, :ro].astype(np.float64) @ (q_old[:, :ro].T @ q_new)
                wqt[:] = 0.0
                q[:] = 0.0
                wqt[:r] = wq[:, :r].T
                q[:, :r] = q_new[:, :r]
                st.h[sl] = 0.0
                st.h[sl, :, :r] = hk[..., :r]
