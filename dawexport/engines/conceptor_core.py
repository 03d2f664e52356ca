"""Conceptor-controlled reservoirs in plain numpy (Jaeger 2014; Kiefer's conceptular synthesis).

A fixed random leaky reservoir is driven by short patterns ("grains"); each grain leaves a state
correlation matrix R and a conceptor C = R (R + aperture^-2 I)^-1. After loading (the recurrent weights
re-fitted so the reservoir reproduces its own input, and a linear readout), running the reservoir freely
with a conceptor in the loop regenerates that conceptor's grain:

    x <- C [(1 - a) x + a tanh(rho W x + b)],      y = w_out . x + b_out

    >>> res = make_reservoir(200, spectral_radius=1.2, leak=0.4, seed=0)
    >>> model = load_patterns(res, [grain_a, grain_b], aperture="auto")
    >>> c = model.conceptor(0)                          # eigen-factored: C = U diag(c) U^T
    >>> y = run_conceptor(model, c.dense(), 1000)      # regenerate grain_a
    >>> half = morph([model.conceptor(0), model.conceptor(1)], [0.5, 0.5])
    >>> either = OR(model.conceptor(0).dense(), model.conceptor(1).dense())

Conceptors come in three forms, all rendered by the same batched kernel (`render`):
- dense: C is N x N; one stacked GEMM per step for W x and one for C z.
- lowrank: a conceptor has rank <= its learn length, so C = Q M Q^T with Q (N x r) orthonormal; the state
  lives in the r coordinates h = Q^T x and a step costs 2 N r multiply-adds instead of N^2 (W Q precomputed).
- diagonal: "conception weights" c = m / (m + aperture^-2), m the mean squared (pre-conceptor) state,
  learned with the conceptor in the loop; N numbers per grain, applied elementwise.

Rendering is batched: voices are stacked as groups (voices of a group share one conceptor schedule:
a sequence of segments, each a linear-in-time blend of library conceptors); leak, spectral radius and gain
are per voice and elementwise. Loading and linear algebra run in float64, rendering in float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

Form = Literal["dense", "lowrank", "diagonal"]
RENDER_DTYPE = np.float32
_EIG_TOL = 1e-10        # relative eigenvalue floor: below it a direction is outside a conceptor's range


# =============================================================================== reservoir

@dataclass(frozen=True)
class Reservoir:
    """The fixed random network: x <- (1 - leak) x + leak tanh(W x + w_in p + b). Never trained."""
    weights: np.ndarray         # W* (N, N), scaled to `spectral_radius`
    input_weights: np.ndarray   # w_in (N,)
    bias: np.ndarray            # b (N,)
    leak: float
    spectral_radius: float
    seed: int

    @property
    def size(self) -> int:
        return self.weights.shape[0]


def spectral_radius_of(w: np.ndarray) -> float:
    """Largest eigenvalue magnitude of a square matrix."""
    if w.shape[0] > 64:
        from scipy.sparse.linalg import ArpackNoConvergence, eigs
        try:
            vals = eigs(w, k=4, which="LM", return_eigenvectors=False, tol=1e-6, maxiter=20 * w.shape[0],
                        v0=np.ones(w.shape[0]))
            return float(np.max(np.abs(vals)))
        except ArpackNoConvergence:
            pass
    return float(np.max(np.abs(np.linalg.eigvals(w))))


def make_reservoir(size: int, *, spectral_radius: float = 1.2, leak: float = 0.4, seed: int = 0,
                   connections: float = 10.0, input_scale: float = 1.0, bias_scale: float = 0.2) -> Reservoir:
    """A seeded random sparse reservoir: each unit receives about `connections` random weights.

        >>> make_reservoir(100, spectral_radius=1.5, leak=0.5, seed=1).size
        100
    """
    if size < 2:
        raise ValueError(f"reservoir size must be >= 2, got {size}")
    if not 0.0 < leak <= 1.0:
        raise ValueError(f"leak must be in (0, 1], got {leak}")
    rng = np.random.default_rng(seed)
    density = min(1.0, connections / size)
    w = rng.standard_normal((size, size)) * (rng.random((size, size)) < density)
    radius = spectral_radius_of(w)
    if radius > 0:
        w *= spectral_radius / radius
    w_in = input_scale * rng.standard_normal(size)
    b = bias_scale * rng.standard_normal(size)
    return Reservoir(w, w_in, b, float(leak), float(spectral_radius), int(seed))


# =============================================================================== conceptors (algebra)

@dataclass(frozen=True)
class Conceptor:
    """A conceptor in eigen-factored form, C = U diag(values) U^T, U (N, r) with orthonormal columns.

    r <= N; directions outside U have eigenvalue 0. `dense()` gives the N x N matrix.
    """
    basis: np.ndarray
    values: np.ndarray

    @property
    def size(self) -> int:
        return self.basis.shape[0]

    @property
    def rank(self) -> int:
        return self.basis.shape[1]

    def dense(self) -> np.ndarray:
        return (self.basis * self.values) @ self.basis.T

    def truncated(self, tol: float = 1e-3) -> "Conceptor":
        """Drop directions whose eigenvalue is below `tol` (they are squashed to ~0 every step anyway)."""
        keep = self.values > tol
        return Conceptor(self.basis[:, keep], self.values[keep])

    def adapt(self, gamma: float) -> "Conceptor":
        """Aperture adaptation phi(C, gamma): the conceptor of the same R at aperture gamma * alpha."""
        return Conceptor(self.basis, _phi_values(self.values, gamma))

    @classmethod
    def from_matrix(cls, c: np.ndarray, tol: float = _EIG_TOL) -> "Conceptor":
        """Eigen-factor a symmetric conceptor matrix, keeping eigenvalues above `tol`."""
        vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
        keep = vals > tol
        return cls(vecs[:, keep], np.clip(vals[keep], 0.0, 1.0))

    @classmethod
    def from_correlation(cls, basis: np.ndarray, spectrum: np.ndarray, aperture: float) -> "Conceptor":
        """C(R, aperture) for R = basis diag(spectrum) basis^T."""
        return cls(basis, spectrum / (spectrum + aperture ** -2.0))


def conceptor(r: np.ndarray, aperture: float) -> np.ndarray:
    """C = R (R + aperture^-2 I)^-1 for a correlation matrix R (computed via its eigenvectors)."""
    s, u = np.linalg.eigh(0.5 * (r + r.T))
    s = np.maximum(s, 0.0)
    return (u * (s / (s + aperture ** -2.0))) @ u.T


def _phi_values(c: np.ndarray, gamma: float) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    if gamma == 0:
        return (c >= 1.0).astype(np.float64)
    if np.isinf(gamma):
        return (c > 0.0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = c / (c + gamma ** -2.0 * (1.0 - c))
    return np.where(c > 0.0, out, 0.0)


def aperture_adapt(c: np.ndarray, gamma: float) -> np.ndarray:
    """phi(C, gamma) = C (C + gamma^-2 (I - C))^-1, in the eigenbasis (safe for singular C and gamma in {0, inf}).

        >>> np.allclose(aperture_adapt(conceptor(R, 2.0), 3.0), conceptor(R, 6.0))
        True
    """
    vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
    return (vecs * _phi_values(vals, gamma)) @ vecs.T


def NOT(c: np.ndarray) -> np.ndarray:
    """NOT C = I - C."""
    return np.eye(c.shape[0]) - c


def _range_basis(c: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of range(C) and the pseudo-inverse of symmetric PSD C."""
    vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
    keep = vals > tol * max(1.0, float(np.max(np.abs(vals))))
    u = vecs[:, keep]
    return u, (u / vals[keep]) @ u.T


def AND(c: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """C AND B = (C^-1 + B^-1 - I)^-1, in Jaeger's form that is safe for singular matrices:

        B_ (B_^T (C^+ + B^+ - I) B_)^-1 B_^T,  B_ an orthonormal basis of range(C) ∩ range(B).
    """
    n = c.shape[0]
    uc, c_pinv = _range_basis(c, tol)
    ub, b_pinv = _range_basis(b, tol)
    # range(C) ∩ range(B) = null space of (I - P_C) + (I - P_B): both PSD, zero only on the intersection
    gap = 2.0 * np.eye(n) - uc @ uc.T - ub @ ub.T
    vals, vecs = np.linalg.eigh(gap)
    inter = vecs[:, vals < 1e3 * tol + 1e-7]
    if inter.shape[1] == 0:
        return np.zeros((n, n))
    core = inter.T @ (c_pinv + b_pinv - np.eye(n)) @ inter
    return inter @ np.linalg.solve(0.5 * (core + core.T), inter.T)


def OR(c: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """C OR B = NOT(NOT C AND NOT B); for C = C(R, a) and B = C(Q, a) it equals C(R + Q, a)."""
    return NOT(AND(NOT(c), NOT(b), tol))


def morph(conceptors: Sequence[Conceptor | np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Linear morph sum_i w_i C_i (weights may extrapolate beyond [0, 1]); a dense N x N matrix."""
    out = None
    for c, w in zip(conceptors, weights):
        m = c.dense() if isinstance(c, Conceptor) else np.asarray(c, dtype=np.float64)
        out = w * m if out is None else out + w * m
    return out


# =============================================================================== loading

@dataclass
class LoadedReservoir:
    """A reservoir after loading a set of grains: loaded W, readout, and per-grain conceptor data.

    Full conceptors are stored through their correlation's eigenpairs (`bases[j]`, `spectra[j]`), so any
    aperture is a cheap re-weighting; diagonal ones through the mean squared state `diag_energy[j]`.
    """
    reservoir: Reservoir
    weights: np.ndarray          # loaded W (N, N)
    readout: np.ndarray          # w_out (N,)
    readout_bias: float
    form: Literal["full", "diagonal"]
    apertures: np.ndarray        # (M,)
    lengths: np.ndarray          # (M,) learn lengths
    start_states: np.ndarray     # (M, N) a state on each grain's attractor (end of the driven run)
    bases: list[np.ndarray] = field(default_factory=list)      # full: U_j (N, r_j)
    spectra: list[np.ndarray] = field(default_factory=list)    # full: eigenvalues of R_j (r_j,)
    diag_energy: np.ndarray | None = None                      # diagonal: (M, N)

    @property
    def size(self) -> int:
        return self.reservoir.size

    @property
    def count(self) -> int:
        return len(self.apertures)

    def conceptor(self, j: int, aperture: float | None = None) -> Conceptor:
        """Grain j's conceptor (eigen-factored) at its own aperture or at `aperture`."""
        a = float(self.apertures[j] if aperture is None else aperture)
        if self.form == "diagonal":
            c = self.diag_values(j, a)
            return Conceptor(np.eye(self.size), c)
        return Conceptor.from_correlation(self.bases[j], self.spectra[j], a)

    def diag_values(self, j: int, aperture: float | None = None) -> np.ndarray:
        a = float(self.apertures[j] if aperture is None else aperture)
        m = self.diag_energy[j]
        return m / (m + a ** -2.0)


def _drive(res: Reservoir, inputs: np.ndarray, x0: np.ndarray | None = None,
           conception: np.ndarray | None = None) -> np.ndarray:
    """Drive with inputs (T, M) in parallel; returns states (T + 1, N, M), states[0] = x0.

    With `conception` (N, M) the diagonal conceptor is in the loop: x <- c * [(1 - a) x + a tanh(...)].
    """
    t_len, m = inputs.shape
    n = res.size
    a = res.leak
    states = np.empty((t_len + 1, n, m))
    states[0] = 0.0 if x0 is None else x0
    w, w_in, b = res.weights, res.input_weights[:, None], res.bias[:, None]
    with blas_threads(1):
        for t in range(t_len):
            x = states[t]
            z = (1.0 - a) * x + a * np.tanh(w @ x + w_in * inputs[t] + b)
            states[t + 1] = z if conception is None else conception * z
    return states


def _schedule_inputs(patterns: Sequence[np.ndarray], washout: int, loop: bool) -> tuple[np.ndarray, list[slice]]:
    """The input matrix (T, M) for a batched drive, and per pattern the time steps to learn from.

    loop=True: each pattern is cycled; the last len(pattern) steps (exactly one cycle) are learned.
    loop=False: the pattern is played once; steps washout..len-1 are learned.
    """
    lengths = [len(p) for p in patterns]
    if loop:
        t_len = washout + max(lengths)
        inputs = np.empty((t_len, len(patterns)))
        for j, p in enumerate(patterns):
            idx = (np.arange(t_len) - (t_len - len(p))) % len(p)   # learned cycle starts at phase 0
            inputs[:, j] = p[idx]
        return inputs, [slice(t_len - n, t_len) for n in lengths]
    if min(lengths) <= washout + 1:
        raise ValueError(f"with loop=False every pattern must be longer than washout={washout}")
    t_len = max(lengths)
    inputs = np.zeros((t_len, len(patterns)))
    for j, p in enumerate(patterns):
        inputs[:len(p), j] = p
    return inputs, [slice(washout, n) for n in lengths]


def _correlation_eig(x: np.ndarray, tol: float = _EIG_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs (U, s) of R = X X^T / L for states X (N, L), through the smaller Gram matrix when L < N."""
    n, length = x.shape
    if length < n:
        g = (x.T @ x) / length
        s, v = np.linalg.eigh(g)
        keep = s > tol * max(float(s[-1]), 1e-300)
        s, v = s[keep][::-1], v[:, keep][:, ::-1]
        u = (x @ v) / np.sqrt(length * s)
        # re-orthonormalise (the Gram route loses a little orthogonality for tiny s)
        q, r = np.linalg.qr(u)
        return q * np.sign(np.diag(r)), s
    s, u = np.linalg.eigh((x @ x.T) / length)
    keep = s > tol * max(float(s[-1]), 1e-300)
    return u[:, keep][:, ::-1], s[keep][::-1]


def _ridge(features: np.ndarray, targets: np.ndarray, reg: float) -> np.ndarray:
    """argmin_W ||W F - T||^2 / L + reg ||W||^2 for features F (D, L), targets T (K, L); returns (K, D)."""
    length = features.shape[1]
    gram = features @ features.T / length + reg * np.eye(features.shape[0])
    return np.linalg.solve(gram, features @ targets.T / length).T


def load_patterns(res: Reservoir, patterns: Sequence[np.ndarray], *, aperture: float | str | Sequence = "auto",
                  threads: int | None = 1, **kw) -> "LoadedReservoir":
    """Load grains into a reservoir (see `_load_patterns`); BLAS limited to `threads` (1: see `blas_threads`)."""
    with blas_threads(threads):
        return _load_patterns(res, patterns, aperture=aperture, **kw)


def _load_patterns(res: Reservoir, patterns: Sequence[np.ndarray], *, aperture: float | str | Sequence = "auto",
                  washout: int = 100, loop: bool = True, form: Literal["full", "diagonal"] = "full",
                  ridge_weights: float = 1e-4, ridge_readout: float = 1e-6, diag_iterations: int = 4,
                  aperture_candidates: Sequence[float] | None = None) -> LoadedReservoir:
    """Load grains into a reservoir: conceptors, the re-fitted W and the readout.

    Each pattern is driven (looped, after `washout` steps, when loop=True) and its states X_j collected.
    W is fitted by ridge regression so that W x(n-1) reproduces the pre-activation W* x(n-1) + w_in p(n)
    (with the leaky update this is exactly the term the input contributed); the readout, with a bias,
    maps x(n) to p(n). Full conceptors come from R_j = X_j X_j^T / L_j; diagonal ones from the mean squared
    pre-conceptor state m_j, learned over `diag_iterations` drives with c_j = m_j / (m_j + a^-2) in the loop.
    `aperture="auto"` picks each grain's aperture by minimising its attenuation (see `choose_apertures`).
    """
    patterns = [np.asarray(p, dtype=np.float64).ravel() for p in patterns]
    if not patterns:
        raise ValueError("no patterns to load")
    n, m = res.size, len(patterns)
    inputs, spans = _schedule_inputs(patterns, washout, loop)
    lengths = np.array([s.stop - s.start for s in spans])
    auto = isinstance(aperture, str)
    if auto and aperture != "auto":
        raise ValueError(f"aperture must be a number, a list or 'auto', got {aperture!r}")
    fixed = np.broadcast_to(np.asarray(10.0 if auto else aperture, dtype=np.float64), (m,)).copy()

    energy = None
    if form == "diagonal":
        # learn the conception weights with the conceptor in the loop (fixed-point iteration)
        conception = np.ones((n, m))
        guess = fixed
        for _ in range(max(1, diag_iterations)):
            states = _drive(res, inputs, conception=conception)
            pre = _pre_conceptor(res, states, inputs)
            energy = np.stack([np.mean(pre[spans[j], :, j] ** 2, axis=0) for j in range(m)])
            conception = (energy / (energy + guess[:, None] ** -2.0)).T
    else:
        states = _drive(res, inputs)

    # collect (x(n-1), x(n), p(n)) over each pattern's learned steps
    prev = np.concatenate([states[s.start:s.stop, :, j] for j, s in enumerate(spans)], axis=0).T
    cur = np.concatenate([states[s.start + 1:s.stop + 1, :, j] for j, s in enumerate(spans)], axis=0).T
    p_all = np.concatenate([inputs[s, j] for j, s in enumerate(spans)])

    target = res.weights @ prev + np.outer(res.input_weights, p_all)
    w_loaded = _ridge(prev, target, ridge_weights)
    aug = np.vstack([cur, np.ones((1, cur.shape[1]))])
    wo = _ridge(aug, p_all[None, :], ridge_readout)[0]

    bases, spectra = [], []
    if form == "full":
        for j, s in enumerate(spans):
            u, sv = _correlation_eig(states[s.start + 1:s.stop + 1, :, j].T)
            bases.append(u)
            spectra.append(sv)
    start = np.stack([states[spans[j].stop, :, j] for j in range(m)])
    model = LoadedReservoir(res, w_loaded, wo[:n], float(wo[n]), form, fixed, lengths, start, bases, spectra,
                            energy)
    if auto:
        model.apertures = choose_apertures(model, candidates=aperture_candidates)
    return model


def _pre_conceptor(res: Reservoir, states: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """z(n) = (1 - a) x(n-1) + a tanh(W* x(n-1) + w_in p(n) + b) for a driven run; (T + 1, N, M), z[0] = x[0]."""
    a = res.leak
    x = states[:-1]
    z = (1.0 - a) * x + a * np.tanh(np.einsum("ij,tjm->tim", res.weights, x)
                                    + res.input_weights[None, :, None] * inputs[:, None, :]
                                    + res.bias[None, :, None])
    return np.concatenate([states[:1], z], axis=0)


# =============================================================================== free runs (per-voice spectra)

def _free_run_factored(model: LoadedReservoir, grains: np.ndarray, values: np.ndarray, steps: int,
                       measure_from: int, leak: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run grain g's eigenbasis with per-voice eigenvalues: h <- c * [(1 - a) h + a U^T tanh(W U h + b)].

    grains (G,), values (G, r_max, B): each group g is a grain, each voice a spectrum in that grain's basis.
    Returns outputs (G, B, steps) and the attenuation (G, B) of the pre-conceptor state, averaged over
    steps >= measure_from.
    """
    n = model.size
    a = model.reservoir.leak if leak is None else leak
    g_count, r_max, b_count = values.shape
    u = np.zeros((g_count, n, r_max))
    for i, j in enumerate(grains):
        r = min(r_max, model.bases[j].shape[1])
        u[i, :, :r] = model.bases[j][:, :r]
    dt = RENDER_DTYPE
    wu = np.concatenate([model.weights @ u, (model.readout @ u)[:, None, :]], axis=1).astype(dt)  # (G, N+1, r)
    ut = np.ascontiguousarray(u.transpose(0, 2, 1)).astype(dt)
    h = np.einsum("gnr,gn->gr", u, model.start_states[grains])[:, :, None] * np.ones((1, 1, b_count))
    values = values.astype(dt)
    h = (values * h).astype(dt)
    bias = model.reservoir.bias[None, :, None].astype(dt)
    a = dt(a)
    out = np.empty((g_count, b_count, steps))
    lost = np.zeros((g_count, b_count))
    total = np.zeros((g_count, b_count))
    ctx = blas_threads(1)
    ctx.__enter__()
    for t in range(steps):
        p = wu @ h
        out[:, :, t] = p[:, n, :] + model.readout_bias
        tt = np.tanh(p[:, :n, :] + bias)
        u_t = ut @ tt
        z_in = (1.0 - a) * h + a * u_t             # U^T z
        if t >= measure_from:
            # attenuation of the fresh (nonlinear) part of the update: E||t - C t||^2 / E||t||^2
            tt2 = np.sum(tt * tt, axis=1, dtype=np.float64)
            lost += tt2 - np.sum((2 * values - values ** 2) * u_t ** 2, axis=1, dtype=np.float64)
            total += tt2
        h = values * z_in
    ctx.__exit__(None, None, None)
    return out, lost / np.maximum(total, 1e-300)


def _free_run_diagonal(model: LoadedReservoir, conception: np.ndarray, x0: np.ndarray, steps: int,
                       measure_from: int, leak: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """x <- c * [(1 - a) x + a tanh(W x + b)] for conception (N, B); outputs (B, steps), attenuation (B,)."""
    a = model.reservoir.leak if leak is None else leak
    w = np.vstack([model.weights, model.readout[None, :]])
    n = model.size
    x = x0.copy()
    out = np.empty((x.shape[1], steps))
    lost = np.zeros(x.shape[1])
    total = np.zeros(x.shape[1])
    bias = model.reservoir.bias[:, None]
    ctx = blas_threads(1)
    ctx.__enter__()
    for t in range(steps):
        p = w @ x
        out[:, t] = p[n] + model.readout_bias
        z = (1.0 - a) * x + a * np.tanh(p[:n] + bias)
        x = conception * z
        if t >= measure_from:
            lost += np.sum((z - x) ** 2, axis=0)
            total += np.sum(z * z, axis=0)
    ctx.__exit__(None, None, None)
    return out, lost / np.maximum(total, 1e-300)


def choose_apertures(model: LoadedReservoir, candidates: Sequence[float] | None = None,
                     steps: int | None = None) -> np.ndarray:
    """Each grain's aperture: the candidate with the least attenuation E||z - Cz||^2 / E||z||^2 in a free run.

    All grains and candidates run in one batch (each grain's candidates share its eigenbasis).
    """
    cands = np.asarray(candidates if candidates is not None else np.geomspace(5.0, 1000.0, 5), dtype=np.float64)
    m = model.count
    washout = 40
    steps = steps or washout + 64
    if model.form == "diagonal":
        c = np.concatenate([(model.diag_energy / (model.diag_energy + a ** -2.0)).T for a in cands], axis=1)
        x0 = np.tile(model.start_states.T, (1, len(cands)))
        _, att = _free_run_diagonal(model, c, x0 * c, steps, washout)
        att = att.reshape(len(cands), m).T
    else:
        att = np.empty((m, len(cands)))
        for chunk in _chunks_by_rank(model, range(m)):
            r_max = max(model.bases[j].shape[1] for j in chunk)
            vals = np.zeros((len(chunk), r_max, len(cands)))
            for i, j in enumerate(chunk):
                s = model.spectra[j]
                vals[i, :len(s), :] = s[:, None] / (s[:, None] + cands[None, :] ** -2.0)
            _, att_chunk = _free_run_factored(model, np.array(chunk), vals, steps, washout)
            att[chunk] = att_chunk
    att = np.where(np.isfinite(att), att, np.inf)
    return cands[np.argmin(att, axis=1)]


def _chunks_by_rank(model: LoadedReservoir, indices, budget: int = 64 * 1024 * 1024) -> list[list[int]]:
    """Group grains of similar rank so padding to the chunk's largest rank wastes little."""
    order = sorted(indices, key=lambda j: model.bases[j].shape[1])
    chunks, cur = [], []
    for j in order:
        r = model.bases[j].shape[1]
        if cur and (r > 1.5 * model.bases[cur[0]].shape[1] + 8 or (len(cur) + 1) * model.size * r * 8 > budget):
            chunks.append(cur)
            cur = []
        cur.append(j)
    if cur:
        chunks.append(cur)
    return chunks


def reconstruction_errors(model: LoadedReservoir, patterns: Sequence[np.ndarray], *, washout: int = 100,
                          periods: int = 2) -> np.ndarray:
    with blas_threads(1):
        return _reconstruction_errors(model, patterns, washout=washout, periods=periods)


def _reconstruction_errors(model: LoadedReservoir, patterns: Sequence[np.ndarray], *, washout: int = 100,
                           periods: int = 2) -> np.ndarray:
    """NRMSE between each (looped) grain and its conceptor's free-run output after `washout` steps.

    The free run starts on the grain's attractor; the error is taken at the best circular alignment over
    `periods` grain lengths and normalised by the grain's standard deviation.
    """
    m = model.count
    errors = np.empty(m)
    lengths = np.array([len(p) for p in patterns])
    if model.form == "diagonal":
        c = np.stack([model.diag_values(j) for j in range(m)], axis=1)
        steps = washout + periods * int(lengths.max())
        out, _ = _free_run_diagonal(model, c, model.start_states.T * c, steps, steps)
        for j in range(m):
            errors[j] = periodic_nrmse(out[j, washout:washout + periods * lengths[j]], patterns[j])
        return errors
    for chunk in _chunks_by_rank(model, range(m)):
        r_max = max(model.bases[j].shape[1] for j in chunk)
        vals = np.zeros((len(chunk), r_max, 1))
        for i, j in enumerate(chunk):
            c = model.conceptor(j).values
            vals[i, :len(c), 0] = c
        steps = washout + periods * int(max(lengths[chunk]))
        out, _ = _free_run_factored(model, np.array(chunk), vals, steps, steps)
        for i, j in enumerate(chunk):
            errors[j] = periodic_nrmse(out[i, 0, washout:washout + periods * lengths[j]], patterns[j])
    return errors


def periodic_nrmse(y: np.ndarray, pattern: np.ndarray) -> float:
    """NRMSE of y against the looped pattern at the best circular shift (normalised by the pattern's std)."""
    p = np.asarray(pattern, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    period = len(p)
    reps = int(np.ceil(len(y) / period)) + 1
    tiled = np.tile(p, reps)
    idx = np.arange(len(y))[None, :] + np.arange(period)[:, None]
    err = np.mean((tiled[idx] - y[None, :]) ** 2, axis=1)
    if not np.all(np.isfinite(err)):
        return float("inf")
    return float(np.sqrt(np.min(err)) / max(np.std(p), 1e-12))


def run_conceptor(model: LoadedReservoir, c: np.ndarray, steps: int, *, x0: np.ndarray | None = None,
                  leak: float | None = None, radius: float = 1.0) -> np.ndarray:
    """Reference (unbatched, float64) free run with a dense conceptor matrix; the output (steps,)."""
    a = model.reservoir.leak if leak is None else leak
    x = np.zeros(model.size) if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    out = np.empty(steps)
    for t in range(steps):
        out[t] = model.readout @ x + model.readout_bias
        x = c @ ((1.0 - a) * x + a * np.tanh(radius * (model.weights @ x) + model.reservoir.bias))
    return out


# =============================================================================== BLAS threads

def _openblas_setter():
    """(set, get) for the OpenBLAS numpy uses, found among the loaded libraries; (None, None) if not found."""
    import ctypes
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None, None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                try:
                    setter = getattr(lib, f"{prefix}_set_num_threads{suffix}")
                    getter = getattr(lib, f"{prefix}_get_num_threads{suffix}")
                except AttributeError:
                    continue
                getter.restype = ctypes.c_int
                return (lambda n, f=setter: f(int(n))), getter
    return None, None


class blas_threads:
    """Limit numpy's BLAS to `n` threads inside a `with` block (no-op where the library cannot be found).

    The render loop issues one small GEMM per step; on a busy 2-core machine a second BLAS thread that
    gets descheduled makes each call wait for it (measured here: 80 us -> 7.8 ms for 400x400 @ 400x8).
    """

    _set = _get = None
    _looked = False

    def __init__(self, n: int | None):
        self.n = n
        self.prev = None

    def __enter__(self):
        if self.n is None:
            return self
        try:
            from threadpoolctl import threadpool_limits
            self._ctl = threadpool_limits(limits=int(self.n), user_api="blas")
            return self
        except ImportError:
            self._ctl = None
        cls = type(self)
        if not cls._looked:
            cls._set, cls._get = _openblas_setter()
            cls._looked = True
        if cls._set is not None:
            self.prev = int(cls._get())
            cls._set(self.n)
        return self

    def __exit__(self, *exc):
        if self.n is None:
            return
        if getattr(self, "_ctl", None) is not None:
            self._ctl.restore_original_limits()
        elif self.prev is not None:
            type(self)._set(self.prev)


# =============================================================================== batched render

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
        cons = [_phi_values((1 - mu) * ca + mu * cb, hardening ** max(0.0, 1 - abs(2 * mu - 1))) for mu in mus]
        lib = ConceptorLibrary(model, cons, "diagonal")
    else:
        ca, cb = model.conceptor(a), model.conceptor(b)
        cons = []
        for mu in mus:
            c = Conceptor.from_matrix(morph([ca, cb], [1 - mu, mu]))
            cons.append(Conceptor(c.basis, _phi_values(c.values, hardening ** max(0.0, 1 - abs(2 * mu - 1)))))
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


# =============================================================================== grains

@dataclass(frozen=True)
class Grain:
    """A loopable slice of a source: `audio` normalised to `GRAIN_RMS`, `gain` restores its level."""
    audio: np.ndarray
    start: int           # sample offset in the source
    gain: float
    periods: int         # whole periods inside (0 for a window grain)


GRAIN_RMS = 0.4


def _rising_zero_crossings(x: np.ndarray) -> np.ndarray:
    """Indices i with x[i-1] < 0 <= x[i]."""
    return np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0)) + 1


def _nearest(candidates: np.ndarray, target: float, radius: float) -> int | None:
    if candidates.size == 0:
        return None
    k = int(np.argmin(np.abs(candidates - target)))
    return int(candidates[k]) if abs(candidates[k] - target) <= radius else None


def _best_splice(x: np.ndarray, zc: np.ndarray, start: int, target: float, radius: float, w: int) -> int | None:
    """The rising zero crossing within `radius` of `target` whose neighbourhood best matches the start's,
    so the looped grain joins smoothly."""
    cands = zc[(np.abs(zc - target) <= radius) & (zc > start)]
    if cands.size == 0:
        return None
    pad = np.concatenate([np.zeros(w), x, np.zeros(w)])
    ref = pad[start:start + 2 * w]
    errs = [float(np.sum((pad[c:c + 2 * w] - ref) ** 2)) for c in cands]
    return int(cands[int(np.argmin(errs))])


def _active_region(x: np.ndarray, sr: int, floor_db: float = 30.0) -> tuple[int, int]:
    """First and last sample where the 10 ms RMS envelope is within `floor_db` of its peak."""
    win = max(1, int(0.01 * sr))
    env = np.sqrt(np.convolve(x * x, np.ones(win) / win, mode="same"))
    if env.max() <= 0:
        return 0, len(x)
    on = np.flatnonzero(env >= env.max() * 10 ** (-floor_db / 20))
    return int(on[0]), int(on[-1]) + 1


def cut_grains(x: np.ndarray, sr: int, count: int, *, period: float | Sequence[float] | None = None,
               min_length: int = 64, window: int = 256, region: tuple[float, float] = (0.0, 1.0)) -> list[Grain]:
    """`count` loopable grains evenly spread over the active part of `x`, cut at rising zero crossings.

    With `period` (samples; one value, or one per grain for a gliding pitch) each grain holds the fewest
    whole periods that reach `min_length` samples, ending at the zero crossing nearest that many periods;
    without it, grains are windows of about `window` samples. `region` narrows the active part (fractions).
    Silent sources give silent grains (gain 0).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x - np.mean(x)
    lo, hi = _active_region(x, sr)
    lo, hi = lo + int(region[0] * (hi - lo)), lo + int(region[1] * (hi - lo))
    per = None if period is None else np.asarray(period, dtype=np.float64)
    if per is not None and per.ndim and len(per) != len(x):
        raise ValueError("period must be one number or one value per sample of x")
    zc = _rising_zero_crossings(x)
    grains = []
    for k in range(count):
        span0 = max(hi - lo - min_length, 0.0)
        guess = lo + span0 * (k + 0.5) / count
        p = None if per is None else float(per if per.ndim == 0 else per[int(np.clip(guess, 0, len(x) - 1))])
        if p is not None and np.isfinite(p) and p >= 2:
            n_per = max(1, int(np.ceil(min_length / p)))
            length = n_per * p
        else:
            p, n_per, length = None, 0, float(window)
        span = max(hi - lo - length, 0.0)
        centre = lo + span * (k + 0.5) / count if count > 1 else lo + span / 2
        radius = (p if p else length) / 2
        s = _nearest(zc[zc + length < len(x)], centre, radius)
        if s is None:
            s = int(np.clip(round(centre), 0, max(len(x) - int(length) - 1, 0)))
        e = _best_splice(x, zc, s, s + length, (p / 4) if p else length / 8, max(2, int((p or 32) / 4)))
        if e is None:
            e = s + max(2, int(round(length)))
        e = min(e, len(x))
        seg = x[s:e] - np.mean(x[s:e])
        rms = float(np.sqrt(np.mean(seg * seg))) if len(seg) else 0.0
        if rms < 1e-7:
            grains.append(Grain(np.zeros(max(len(seg), 2)), s, 0.0, n_per))
        else:
            grains.append(Grain(seg * (GRAIN_RMS / rms), s, rms / GRAIN_RMS, n_per))
    return grains
