"""The NumPy reference backend: the primitives of :mod:`dropout_lab.backends.mlp` in NumPy.

The network itself (layer loop, modes, backward pass, optimizers) is written once in
:class:`~dropout_lab.backends.mlp.MLP`, with the formulas beside each line; this module fills
its primitives. Every matrix product goes through NumPy's own BLAS (one library, one thread
pool): ``np.matmul``, and for the two routines NumPy does not expose, gemm with beta and axpy,
the same library reached through :mod:`~dropout_lab.backends.blas`. With them the momentum
update is fused into the weight gradient's product (``v <- mu v + a^T g``, see
:attr:`MLP.fuse_momentum`) and ``W <- W - lr v`` is one threaded pass, so a step allocates
nothing the size of the weights. Where that BLAS cannot be reached the same formulas run in
NumPy. (An earlier version fused the update into *SciPy's* gemm; SciPy brings a second
OpenBLAS with its own thread pool, and alternating between the two made ``--threads 2`` up to
2x slower than one thread; see docs/performance.md.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from dropout_lab.backends.base import NetSpec, Weights
from dropout_lab.backends.blas import BLAS
from dropout_lab.backends.mlp import MLP
from dropout_lab.errors import BackendError
from dropout_lab.specs.backends import OptimizerSpec

# Below this many output elements plain NumPy beats the BLAS routines reached through ctypes,
# whose call costs ~5-10 us more (1 thread, float32: axpy 5.8 vs 2.6 us at 4,096 elements and
# 35 vs 44 us at 131,072; the fused gemm 31 vs 24 us for a 64 x 256 gradient of batch 32 and
# 3.0 vs 3.4 ms for 784 x 1024 of batch 128, against matmul + two in-place passes).
BLAS_MIN_SIZE = 65_536

Array = npt.NDArray[Any]  # the backend's array type (float32/float64; int64 for labels)


def log_softmax(z: Array) -> Array:
    """log softmax(z) per row: z - max - log sum exp(z - max)."""
    shifted = z - z.max(axis=1, keepdims=True)
    out: Array = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


class NumpyNetwork(MLP[np.ndarray]):
    """An MLP on the CPU in NumPy. Inputs and outputs are NumPy arrays, as the Protocol says."""

    fuse_momentum = True  # gemm with beta: v <- mu v + a^T g in one product

    def __init__(self, spec: NetSpec, weights: Weights, train: OptimizerSpec) -> None:
        self.dtype = np.dtype(spec.dtype)
        # Scratch arrays for in-place updates (x += alpha y without a temporary), by shape.
        self._tmp: dict[tuple[int, ...], np.ndarray] = {}
        super().__init__(spec, weights, train)

    def _scratch(self, like: Array) -> Array:
        buf = self._tmp.get(like.shape)
        if buf is None:
            buf = self._tmp[like.shape] = np.empty_like(like)
        return buf

    # -- array conversion ---------------------------------------------------------------------
    def _to_backend(self, a: Array) -> Array:
        return np.asarray(a, dtype=self.dtype)

    def _labels(self, y: Array) -> Array:
        return np.asarray(y)

    def _to_numpy(self, t: Array) -> Array:
        return t

    def _item(self, t: Array) -> float:
        return float(t)

    def _zeros_like(self, t: Array) -> Array:
        return np.zeros_like(t)

    # -- products -----------------------------------------------------------------------------
    def _addmm(self, b: Array, a: Array, W: Array) -> Array:
        z = a @ W
        z += b
        return z

    def _matmul_tn(self, a: Array, g: Array, out: Array | None,
                   beta: float = 0.0) -> Array:
        if out is not None and out.size >= BLAS_MIN_SIZE and BLAS is not None \
                and BLAS.gemm_tn(a, g, out, beta):
            return out  # out <- a^T g + beta out, one gemm
        if beta:
            assert out is not None, "beta needs out"
            out *= self.dtype.type(beta)
            out += np.matmul(a.T, g, out=self._scratch(out))
            return out
        # a.T is a transposed view: matmul passes it to gemm as "transposed", no copy.
        return np.matmul(a.T, g, out=out)

    def _matmul_nt(self, g: Array, W: Array) -> Array:
        out: Array = g @ W.T
        return out

    # -- elementwise --------------------------------------------------------------------------
    def _mul(self, x: Array, y: Array) -> Array:
        return x * y

    def _mul_(self, x: Array, y: Array) -> Array:
        x *= y
        return x

    def _scale(self, x: Array, s: float) -> Array:
        out: Array = x * self.dtype.type(s)
        return out

    def _scale_(self, x: Array, s: float) -> Array:
        x *= self.dtype.type(s)
        return x

    def _add_(self, x: Array, y: Array, alpha: float = 1.0) -> Array:
        if x.size >= BLAS_MIN_SIZE and BLAS is not None and BLAS.axpy(alpha, y, x):
            return x  # x <- x + alpha y: one (threaded) pass
        if alpha == 1.0:
            x += y
        else:
            x += np.multiply(y, self.dtype.type(alpha), out=self._scratch(y))
        return x

    def _addcmul_(self, x: Array, a: Array, b: Array, value: float
                  ) -> Array:
        tmp = np.multiply(a, b, out=self._scratch(a))
        tmp *= self.dtype.type(value)
        x += tmp
        return x

    def _addcdiv_(self, x: Array, a: Array, b: Array, value: float
                  ) -> Array:
        tmp = np.divide(a, b, out=self._scratch(a))
        tmp *= self.dtype.type(value)
        x += tmp
        return x

    def _sqrt(self, x: Array) -> Array:
        return np.sqrt(x)

    def _add_scalar_(self, x: Array, s: float) -> Array:
        x += self.dtype.type(s)
        return x

    def _flush_(self, x: Array, below: float) -> None:
        np.copyto(x, 0, where=np.abs(x) < below)

    # -- activation, loss ---------------------------------------------------------------------
    def _act_(self, z: Array) -> Array:
        return np.maximum(z, 0, out=z) if self.relu else np.tanh(z, out=z)

    def _act_grad_(self, g: Array, h: Array) -> Array:
        if self.relu:
            g *= h > 0  # f'(z) = 1[z > 0] = 1[h > 0]
        else:
            g *= 1.0 - h * h  # tanh' = 1 - tanh^2
        return g

    def _softmax_xent(self, z: Array, y: Array) -> tuple[Array, np.ndarray]:
        n = z.shape[0]
        logp = log_softmax(z)
        rows = np.arange(n)
        loss = -logp[rows, y].sum() / n  # the mean (ndarray.mean costs ~5 us more per call)
        g = np.exp(logp)  # softmax
        g[rows, y] -= 1.0
        g /= n  # g_{L-1} = (softmax(z) - onehot(y)) / N
        return loss, g

    def _sum_rows(self, g: Array) -> Array:
        out: Array = g.sum(axis=0)
        return out

    # -- max-norm -----------------------------------------------------------------------------
    def _column_norms(self, W: Array) -> Array:
        out: Array = np.sqrt(np.einsum("ij,ij->j", W, W))  # without a W-sized temporary
        return out

    def _rescale_columns_(self, W: Array, norms: Array, cap: float) -> None:
        over = norms > cap
        if over.any():  # touch W only when some column is over the cap
            W[:, over] *= (cap / norms[over]).astype(W.dtype)


class NumpyBackend:
    """The NumPy reference backend (CPU only)."""

    name = "numpy"

    def resolve_device(self, device: str) -> str:
        if device in ("auto", "cpu"):
            return "cpu"
        raise BackendError(f"the numpy backend runs on the CPU only; device {device!r} is not "
                           "available (use backend: torch for cuda/mps)")

    def set_threads(self, n: int) -> None:
        from threadpoolctl import threadpool_limits

        # NumPy's BLAS, the only one training uses. The process's thread budget as a whole
        # (the *_NUM_THREADS variables that a BLAS loaded later reads, SciPy's, every pool
        # loaded now) is the worker's business: dropout_lab/executors/threads.py.
        # Kept on the instance: the limit holds for this process for the backend's lifetime.
        self._limits = threadpool_limits(limits=n)

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def build(self, spec: NetSpec, weights: Weights, train: OptimizerSpec,
              device: str) -> NumpyNetwork:
        self.resolve_device(device)
        return NumpyNetwork(spec, weights, train)
