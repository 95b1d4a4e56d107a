"""Two BLAS routines NumPy does not expose, taken from the BLAS NumPy itself is linked against.

NumPy's ``matmul`` computes ``C = A B``; the BLAS routine under it computes
``C <- alpha A B + beta C``. With ``beta`` the momentum update folds into the weight gradient's
product: ``v <- mu v + a^T g`` is one gemm that reads and writes v once, instead of a gemm into
a scratch buffer and two more passes over v. ``axpy`` (``y <- y + alpha x``) is one threaded
pass where NumPy's ``y += alpha * x`` is two single-threaded ones. Both are measured in
docs/performance.md.

The routines are looked up through NumPy's own extension module, ``_multiarray_umath``:
``dlsym`` on that handle searches the module and the libraries it was linked with, so what is
found is the very library (and thread pool, and ``threadpoolctl`` limit) that ``np.matmul``
uses, never a second BLAS such as SciPy's (two BLAS thread pools alternating in one step made
``--threads 2`` up to 2x slower; issue 11). Every known symbol convention is tried (the
``scipy_`` prefix and ``64_`` suffix of NumPy's wheels, which use 64-bit integers, plain
OpenBLAS names, which use 32-bit ones). A NumPy built another way (Accelerate, MKL, a BLAS
without CBLAS symbols) simply has no :data:`BLAS`, and callers keep the pure-NumPy path.
Before use, :func:`_load` checks both routines against NumPy on a small problem.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

# (symbol prefix, symbol suffix, integer type) in the order they are tried.
_CONVENTIONS: tuple[tuple[str, str, Any], ...] = (
    ("scipy_cblas_", "64_", ctypes.c_int64),  # NumPy >= 2 wheels (scipy-openblas64)
    ("cblas_", "64_", ctypes.c_int64),  # OpenBLAS built with INTERFACE64 and a symbol suffix
    ("scipy_cblas_", "", ctypes.c_int32),  # scipy-openblas32
    ("cblas_", "", ctypes.c_int32),  # a system OpenBLAS / reference CBLAS
)

_PREFIX: dict[np.dtype[Any], str] = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


class Blas:
    """``gemm_tn`` and ``axpy`` for float32 and float64 C-contiguous arrays."""

    def __init__(self, handle: ctypes.CDLL, prefix: str, suffix: str, int_t: Any) -> None:
        self._gemm: dict[np.dtype[Any], Any] = {}
        self._axpy: dict[np.dtype[Any], Any] = {}
        for dtype, letter in _PREFIX.items():
            real = ctypes.c_float if letter == "s" else ctypes.c_double
            gemm = getattr(handle, f"{prefix}{letter}gemm{suffix}")
            gemm.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t,
                             real, ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, real,
                             ctypes.c_void_p, int_t]
            gemm.restype = None
            axpy = getattr(handle, f"{prefix}{letter}axpy{suffix}")
            axpy.argtypes = [int_t, real, ctypes.c_void_p, int_t, ctypes.c_void_p, int_t]
            axpy.restype = None
            self._gemm[dtype], self._axpy[dtype] = gemm, axpy

    @staticmethod
    def _usable(*arrays: np.ndarray) -> bool:
        dtype = arrays[0].dtype
        return dtype in _PREFIX and all(
            a.dtype == dtype and a.flags.c_contiguous and a.flags.aligned for a in arrays)

    def gemm_tn(self, a: np.ndarray, g: np.ndarray, out: np.ndarray, beta: float) -> bool:
        """``out <- a^T g + beta out`` in place, for a of shape (n, m), g (n, k), out (m, k).
        Returns False (and does nothing) when the arrays do not suit BLAS (dtype, layout)."""
        n, m = a.shape
        k = g.shape[1]
        if not self._usable(a, g, out) or g.shape[0] != n or out.shape != (m, k) \
                or not out.flags.writeable:
            return False
        # Row-major C (m x k) = A^T (m x n) B (n x k), A stored (n x m): lda = m, ldb = k.
        self._gemm[a.dtype](_ROW_MAJOR, _TRANS, _NO_TRANS, m, k, n, 1.0, a.ctypes.data, m,
                            g.ctypes.data, k, beta, out.ctypes.data, k)
        return True

    def axpy(self, alpha: float, x: np.ndarray, y: np.ndarray) -> bool:
        """``y <- y + alpha x`` in place; False (nothing done) when the arrays do not suit."""
        if not self._usable(x, y) or x.shape != y.shape or not y.flags.writeable:
            return False
        self._axpy[x.dtype](x.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
        return True


def _numpy_extension() -> str:
    core = getattr(np, "_core", None) or np.core  # NumPy 2 renamed np.core to np._core
    return str(core._multiarray_umath.__file__)


def _load() -> Blas | None:
    """NumPy's BLAS when its CBLAS symbols are found and pass a check against NumPy."""
    try:
        handle = ctypes.CDLL(_numpy_extension())
    except (OSError, AttributeError):
        return None
    for prefix, suffix, int_t in _CONVENTIONS:
        if hasattr(handle, f"{prefix}sgemm{suffix}") and hasattr(handle, f"{prefix}daxpy{suffix}"):
            blas = Blas(handle, prefix, suffix, int_t)
            return blas if _agrees_with_numpy(blas) else None
    return None


def _agrees_with_numpy(blas: Blas) -> bool:
    """Both routines, both dtypes, on a small odd-shaped problem, against NumPy's answer."""
    rng = np.random.default_rng(0)
    for dtype in _PREFIX:
        a = rng.standard_normal((5, 3)).astype(dtype)
        g = rng.standard_normal((5, 4)).astype(dtype)
        c = rng.standard_normal((3, 4)).astype(dtype)
        want = a.T @ g + 0.5 * c
        got = c.copy()
        x, y = rng.standard_normal(7).astype(dtype), rng.standard_normal(7).astype(dtype)
        y2 = y.copy()
        if not (blas.gemm_tn(a, g, got, 0.5) and blas.axpy(-2.0, x, y2)):
            return False
        tol = 1e-5 if dtype == np.float32 else 1e-12
        if not (np.allclose(got, want, rtol=tol, atol=tol)
                and np.allclose(y2, y - 2.0 * x, rtol=tol, atol=tol)):
            return False
    return True


BLAS: Blas | None = _load()
"""NumPy's own BLAS, or None where it cannot be reached (callers fall back to NumPy)."""
