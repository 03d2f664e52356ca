"""The fixed random leaky reservoir every conceptor runs in, and the shared numeric conventions.

    >>> res = make_reservoir(50, spectral_radius=1.2, leak=0.4, seed=0)
    >>> res.size, round(spectral_radius_of(res.weights), 3)
    (50, 1.2)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


Form = Literal["dense", "lowrank", "diagonal"]
RENDER_DTYPE = np.float32
EIG_TOL = 1e-10         # relative eigenvalue floor: below it a direction is outside a conceptor's range


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
