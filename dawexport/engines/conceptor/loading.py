"""Loading grains into a reservoir: the recurrent weights re-fitted so the reservoir reproduces its own
input, a linear readout, one conceptor per grain (dense eigen-factored or diagonal), aperture choice and the
reconstruction measures.

    >>> from dawexport.engines.conceptor.reservoir import make_reservoir
    >>> res = make_reservoir(60, seed=0)
    >>> sine = np.sin(2 * np.pi * np.arange(40) / 8.0)
    >>> model = load_patterns(res, [sine], aperture=10.0, washout=50)
    >>> model.count
    1
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from .algebra import Conceptor
from .blas import blas_threads
from .reservoir import EIG_TOL, RENDER_DTYPE, Reservoir


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


def _correlation_eig(x: np.ndarray, tol: float = EIG_TOL) -> tuple[np.ndarray, np.ndarray]:
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
