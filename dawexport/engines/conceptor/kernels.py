"""Batched rendering: voices stacked in groups that share a conceptor schedule (segments blending library
conceptors linearly in time), with per-voice leak, spectral radius and gain, in the dense, low-rank or
diagonal form; the morph runs a grain-morph wavetable is cut from; and the BLAS thread count they run with.

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


def render(library: ConceptorLibrary, schedules: Sequence[Sequence[Segment]], groups, steps: int, *,
           leak, radius=None, start_states: np.ndarray | None = None, washout: int = 0, block: int = 32,
           threads: int | None = 1, progress=None) -> np.ndarray:
    """Run many voices in one batch; returns (V, steps) float32 readout values (no gain applied).

    groups (V,) maps each voice to its schedule: voices of a group share the conceptor sequence and run as
    one GEMM. leak and radius (V,) are per voice (elementwise). `washout` extra steps are run first with
    the first segment's start weights and not returned. start_states (V, N) default: the first segment's
    weighted mix of the grains' attractor states (library indices below model.count are grains).
    """
    model = library.model
    n = model.size
    groups = np.asarray(groups, dtype=np.int64).ravel()
    v_count, g_count = len(groups), len(schedules)
    if v_count == 0:
        return np.zeros((0, steps), dtype=RENDER_DTYPE)
    if groups.min() < 0 or groups.max() >= g_count:
        raise ValueError("a voice names a schedule that does not exist")
    members = [np.flatnonzero(groups == g) for g in range(g_count)]
    b_max = max(1, max(len(mm) for mm in members))
    slot = np.empty(v_count, dtype=np.int64)          # voice -> g * b_max + position
    for g, mm in enumerate(members):
        slot[mm] = g * b_max + np.arange(len(mm))

    def spread(values, fill):
        arr = np.full(g_count * b_max, fill, dtype=np.float64)
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
                start_states[members[g]] = mix / np.sum(w) if abs(np.sum(w)) > 1e-9 else mix
    x0 = np.zeros((g_count * b_max, n))
    x0[slot] = start_states

    # control blocks: cut at every segment boundary of every group, and every `block` steps
    total = washout + steps
    bounds = []
    for sched in schedules:
        ends = washout + np.cumsum([seg.steps for seg in sched])
        bounds.append(ends)
    cuts = set(range(0, total, max(1, int(block))))
    for ends in bounds:
        cuts.update(int(e) for e in ends if 0 < e < total)
    cuts = sorted(cuts) + [total]

    kernel_cls = {"dense": _DenseKernel, "lowrank": _LowRankKernel, "diagonal": _DiagonalKernel}[library.form]
    kernel = kernel_cls(library, g_count, b_max, x0, leak_s, rho_s)
    out = np.empty((total, g_count * b_max), dtype=RENDER_DTYPE)
    bar = progress.bar(total=total, desc="render", unit="step") if progress is not None else None
    with blas_threads(threads):
        for k in range(len(cuts) - 1):
            t0, t1 = cuts[k], cuts[k + 1]
            mid = 0.5 * (t0 + t1)
            where = []
            for g, sched in enumerate(schedules):
                ends = bounds[g]
                s = min(int(np.searchsorted(ends, mid, side="right")), len(sched) - 1)
                begin = washout if s == 0 else ends[s - 1]
                frac = (mid - begin) / max(sched[s].steps, 1)
                where.append((s, sched[s].indices, sched[s].weights_at(frac)))
            kernel.run(where, out[t0:t1])
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
                  start_states=starts, washout=washout, threads=threads)


class _FlatKernel:
    """Dense and diagonal forms: state x (N, G*B); one shared GEMM [W; w_out] x per step for all voices."""

    def __init__(self, library, g_count, b_max, x0, leak, rho):
        model = library.model
        dt = RENDER_DTYPE
        self.lib, self.n, self.g, self.b = library, model.size, g_count, b_max
        self.w = np.vstack([model.weights, model.readout[None, :]]).astype(dt)
        self.rb = dt(model.readout_bias)
        self.bias = model.reservoir.bias.astype(dt)[:, None]
        self.leak = leak.astype(dt)[None, :]
        self.keep = (1.0 - leak).astype(dt)[None, :]
        self.rho = None if rho is None else rho.astype(dt)[None, :]
        self.x = np.ascontiguousarray(x0.T, dtype=dt)          # (N, G*B)
        self.p = np.empty((self.n + 1, g_count * b_max), dtype=dt)
        self.z = np.empty((self.n, g_count * b_max), dtype=dt)
        self.keys = [None] * g_count

    def _changed(self, g, s, w) -> bool:
        key = (s, tuple(np.round(w, 12)))
        if self.keys[g] == key:
            return False
        self.keys[g] = key
        return True

    def _nonlinear(self):
        """p <- [W; w_out] x, then z <- (1 - a) x + a tanh(rho W x + b); returns the readout row."""
        n, p, z = self.n, self.p, self.z
        np.matmul(self.w, self.x, out=p)
        pre = p[:n]
        if self.rho is not None:
            np.multiply(pre, self.rho, out=pre)
        np.add(pre, self.bias, out=pre)
        np.tanh(pre, out=pre)
        np.multiply(pre, self.leak, out=pre)
        np.multiply(self.x, self.keep, out=z)
        np.add(z, pre, out=z)
        return p[n]


class _DenseKernel(_FlatKernel):
    """x = C_g z with a stacked GEMM over groups; C_g rebuilt when its weights change (once per block)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.c = np.zeros((self.g, self.n, self.n), dtype=RENDER_DTYPE)

    def run(self, where, out):
        for g, (s, idx, w) in enumerate(where):
            if self._changed(g, s, w):
                # sum_i w_i C_i as one GEMV over the stacked float32 library
                stack = self.lib.dense[list(idx)].reshape(len(idx), -1)
                np.matmul(np.asarray(w, dtype=RENDER_DTYPE), stack, out=self.c[g].reshape(-1))
        n, g, b = self.n, self.g, self.b
        z3 = self.z.reshape(n, g, b).transpose(1, 0, 2)
        x3 = self.x.reshape(n, g, b).transpose(1, 0, 2)
        for t in range(len(out)):
            out[t] = self._nonlinear()
            np.matmul(self.c, z3, out=x3)
        out += self.rb


class _DiagonalKernel(_FlatKernel):
    """x = c * z elementwise with per-voice conception weights c (N, G*B)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.c = np.zeros((self.n, self.g * self.b), dtype=RENDER_DTYPE)

    def run(self, where, out):
        for g, (s, idx, w) in enumerate(where):
            if self._changed(g, s, w):
                vec = np.asarray(w) @ self.lib.diag[list(idx)]
                self.c[:, g * self.b:(g + 1) * self.b] = vec[:, None]
        for t in range(len(out)):
            out[t] = self._nonlinear()
            np.multiply(self.z, self.c, out=self.x)
        out += self.rb


class _LowRankKernel:
    """State h (G, R, B): coordinates in a per-segment orthonormal basis Q_g (N x R) of the segment's
    conceptors' ranges (x = Q_g h). Per step

        P = [W Q; w_out Q] h,   h <- M_g [(1 - a) h + a Q^T tanh(rho P + b)],

    M_g = sum_i w_i (Q^T U_i) diag(c_i) (Q^T U_i)^T: 2 N R + R^2 multiply-adds per voice instead of 2 N^2.
    On entering a new segment the step's recurrent term still uses the old basis and h is carried over by
    Q_new^T Q_old, so the result equals the dense form's up to the truncated eigenvalues.
    """

    def __init__(self, library, g_count, b_max, x0, leak, rho):
        model = library.model
        dt = RENDER_DTYPE
        self.lib, self.n, self.g, self.b = library, model.size, g_count, b_max
        self.rb = dt(model.readout_bias)
        self.bias = model.reservoir.bias.astype(dt)[None, :, None]
        self.leak = leak.reshape(g_count, 1, b_max).astype(dt)
        self.keep = (1.0 - leak).reshape(g_count, 1, b_max).astype(dt)
        self.rho = None if rho is None else rho.reshape(g_count, 1, b_max).astype(dt)
        self.x0 = x0.reshape(g_count, b_max, self.n).transpose(0, 2, 1)     # (G, N, B) float64
        self.seg = [None] * g_count
        self.q = [None] * g_count          # float64 bases
        self.terms = [None] * g_count
        self.keys = [None] * g_count
        self.r = 0
        self.h = None

    def _grow(self, r):
        if r <= self.r:
            return
        dt, g, b, n = RENDER_DTYPE, self.g, self.b, self.n
        old = (self.h, self.wq, self.qt, self.m) if self.h is not None else None
        self.h = np.zeros((g, r, b), dt)
        self.wq = np.zeros((g, n + 1, r), dt)
        self.qt = np.zeros((g, r, n), dt)
        self.m = np.zeros((g, r, r), dt)
        if old is not None:
            k = self.r
            self.h[:, :k], self.wq[:, :, :k], self.qt[:, :k], self.m[:, :k, :k] = old
        self.p = np.empty((g, n + 1, b), dt)
        self.u = np.empty((g, r, b), dt)
        self.v = np.empty((g, r, b), dt)
        self.r = r

    def _basis(self, idx):
        """Orthonormal basis of the union of the terms' ranges, [W; w_out] Q, and each term in Q coordinates."""
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
        return q, w_scaled @ inv, terms

    def _install(self, g, q, wq):
        r = q.shape[1]
        self.wq[g] = 0.0
        self.qt[g] = 0.0
        self.wq[g, :, :r] = wq
        self.qt[g, :r] = q.T

    def run(self, where, out):
        switching = []
        for g, (s, idx, w) in enumerate(where):
            if self.seg[g] != s or self.q[g] is None:
                q, wq, terms = self._basis(idx)
                self._grow(q.shape[1])
                switching.append((g, self.q[g], q, wq))
                self.q[g], self.terms[g], self.seg[g] = q, terms, s
                self.keys[g] = None
        for g, (s, idx, w) in enumerate(where):
            key = tuple(np.round(w, 12))
            if self.keys[g] != key:
                self.keys[g] = key
                r = self.q[g].shape[1]
                acc = np.zeros((r, r))
                for wi, a_i in zip(w, self.terms[g]):
                    if wi != 0.0:
                        acc += wi * a_i
                self.m[g] = 0.0
                self.m[g, :r, :r] = acc
        n = self.n
        for t in range(len(out)):
            np.matmul(self.wq, self.h, out=self.p)
            if t == 0 and switching:
                for g, q_old, q_new, wq in switching:
                    if q_old is None:      # first segment: project the start state
                        hg = q_new.T @ self.x0[g]
                    else:
                        hg = (q_new.T @ q_old) @ self.h[g, :q_old.shape[1]].astype(np.float64)
                    self._install(g, q_new, wq)
                    self.h[g] = 0.0
                    self.h[g, :q_new.shape[1]] = hg
                fresh = [g for g, q_old, _, _ in switching if q_old is None]
                if fresh:
                    # a voice that starts here has no previous basis: its recurrent term uses x0 itself
                    for g in fresh:
                        x = self.x0[g]
                        self.p[g] = np.vstack([self.lib.model.weights @ x, self.lib.model.readout @ x])
            out[t] = self.p[:, n, :].reshape(-1)
            pre = self.p[:, :n, :]
            if self.rho is not None:
                np.multiply(pre, self.rho, out=pre)
            np.add(pre, self.bias, out=pre)
            np.tanh(pre, out=pre)
            np.multiply(pre, self.leak, out=pre)
            np.matmul(self.qt, pre, out=self.u)
            np.multiply(self.h, self.keep, out=self.v)
            np.add(self.u, self.v, out=self.u)
            np.matmul(self.m, self.u, out=self.h)
        out += self.rb
