"""Conceptors and their algebra: C = R (R + aperture^-2 I)^-1, aperture adaptation, NOT, AND, OR, morph.

    >>> c = conceptor(np.diag([4.0, 1.0, 0.0]), 1.0)
    >>> np.allclose(NOT(NOT(c)), c), np.allclose(AND(c, np.eye(3)), c), np.allclose(OR(c, 0 * c), c)
    (True, True, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .reservoir import EIG_TOL


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
        return Conceptor(self.basis, phi_values(self.values, gamma))

    @classmethod
    def from_matrix(cls, c: np.ndarray, tol: float = EIG_TOL) -> "Conceptor":
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


def phi_values(c: np.ndarray, gamma: float) -> np.ndarray:
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

        >>> R = np.diag([4.0, 1.0, 0.25])
        >>> np.allclose(aperture_adapt(conceptor(R, 2.0), 3.0), conceptor(R, 6.0))
        True
    """
    vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
    return (vecs * phi_values(vals, gamma)) @ vecs.T


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
