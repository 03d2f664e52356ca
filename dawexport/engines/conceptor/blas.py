"""The number of threads the BLAS under numpy runs with, set for a block (OpenBLAS, found at run time).

    >>> import numpy as np
    >>> with blas_threads(1):
    ...     float(np.ones((2, 2)) @ np.ones(2) @ np.ones(2))
    4.0
"""
from __future__ import annotations




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
