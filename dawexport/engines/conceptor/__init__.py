"""The `conceptor` engine (see `engine`) and its maths: conceptor-controlled reservoirs in plain numpy
(Jaeger 2014; Kiefer's conceptular synthesis).

A fixed random leaky reservoir is driven by short patterns ("grains"); each grain leaves a state
correlation matrix R and a conceptor C = R (R + aperture^-2 I)^-1. After loading (the recurrent weights
re-fitted so the reservoir reproduces its own input, and a linear readout), running the reservoir freely
with a conceptor in the loop regenerates that conceptor's grain:

    x <- C [(1 - a) x + a tanh(rho W x + b)],      y = w_out . x + b_out

    >>> import numpy as np
    >>> from dawexport.engines.conceptor.algebra import OR, morph
    >>> from dawexport.engines.conceptor.loading import load_patterns, run_conceptor
    >>> from dawexport.engines.conceptor.reservoir import make_reservoir
    >>> grain_a, grain_b = (np.sin(2 * np.pi * np.arange(40) / p) for p in (8.0, 10.0))
    >>> res = make_reservoir(60, spectral_radius=1.2, leak=0.4, seed=0)
    >>> model = load_patterns(res, [grain_a, grain_b], aperture="auto")
    >>> c = model.conceptor(0)                          # eigen-factored: C = U diag(c) U^T
    >>> y = run_conceptor(model, c.dense(), 200)        # regenerate grain_a
    >>> half = morph([model.conceptor(0), model.conceptor(1)], [0.5, 0.5])
    >>> either = OR(model.conceptor(0).dense(), model.conceptor(1).dense())
    >>> y.shape, half.shape
    ((200,), (60, 60))

Conceptors come in three forms, all rendered by the same batched kernel (`render`):
- dense: C is N x N; one stacked GEMM per step for W x and one for C z.
- lowrank: a conceptor has rank <= its learn length, so C = Q M Q^T with Q (N x r) orthonormal; the state
  lives in the r coordinates h = Q^T x and a step costs 2 N r multiply-adds instead of N^2 (W Q precomputed).
- diagonal: "conception weights" c = m / (m + aperture^-2), m the mean squared (pre-conceptor) state,
  learned with the conceptor in the loop; N numbers per grain, applied elementwise.

Rendering is batched: voices are stacked as groups (voices of a group share one conceptor schedule:
a sequence of segments, each a linear-in-time blend of library conceptors); leak, spectral radius and gain
are per voice and elementwise. Loading and linear algebra run in float64, rendering in float32.

Modules: `reservoir` (the random reservoir), `algebra` (conceptors, NOT/AND/OR/morph), `loading` (grains
into a reservoir, apertures, reconstruction), `kernels` (batched rendering in the three forms, morph runs),
`blas` (BLAS threads), `grains` (cutting, retuning and walking grains), `level` (holding a note's level),
`tuning` (a render's pitch, octave errors told apart), `noise` (the noise term), `settings`, `engine`, `pads` (the grain protocol).
"""
from .engine import ConceptorEngine
from .settings import ConceptorSettings

__all__ = ["ConceptorEngine", "ConceptorSettings"]
